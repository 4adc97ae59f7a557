"""Signing trading commands the way Hyperliquid signs actions: an EIP-712 `Agent` struct over the action's hash.

What is signed. A command's canonical record (`exos.commands`, the bytes the journal stores) with its
20-byte signer field zeroed: the signer is what verification recovers, so it cannot be part of what
is signed. The record already holds the nonce, the account address and the sub-account, so one hash
binds all of them: `connection_id = keccak256(record with signer = 0)`. The signer signs the EIP-712
typed data

    domain:  EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
             = the venue's name, version, chain id and verifying address
    message: Agent(string source, bytes32 connectionId) = (`source`, connection_id)

which any EIP-712 wallet or `eth_account.Account.sign_typed_data` produces; the test suite signs with
plain eth-account from this description alone. `source` names the deployment ("a" mainnet, "b"
testnet, as Hyperliquid uses them).

Verification rejects what eth-account accepts silently: signatures that are not 65 bytes, `v`
outside {27, 28} (0/1 and EIP-155 forms included), `r` or `s` of zero or not below the curve order,
and high-s twins (`s > n/2`). Replay protection is the engine's nonce check on the signer, never the
signature bytes. Recovery uses coincurve (libsecp256k1); the digest is computed by hand (about 10 µs
instead of eth-account's 80 µs encoder).

Needs the `signing` extra (`pip install "exos[signing]"`: eth-hash with pycryptodome, coincurve);
the engine itself never imports this module.
"""

from __future__ import annotations

import struct

import attrs
from coincurve import PublicKey
from eth_hash.auto import keccak

from exos.commands import ADDRESS_LEN, RECORD
from exos.errors import ExosError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
SIGNER_OFFSET = struct.calcsize("<BBBBBBHHqQ20s")  # the record's signer follows kind .. nonce and the address
DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"


class SignatureError(ExosError):
    """A signature that cannot authorise anything (malformed, malleable, or for another domain)."""

    code = "BAD_SIGNATURE"


@attrs.frozen
class Domain:
    """The EIP-712 domain of one venue."""

    name: str
    version: str
    chain_id: int
    verifying_contract: bytes

    def separator(self) -> bytes:
        """The EIP-712 domain separator."""
        if len(self.verifying_contract) != ADDRESS_LEN:
            raise SignatureError("domain: the verifying contract is a 20-byte address")
        return keccak(
            keccak(DOMAIN_TYPE)
            + keccak(self.name.encode())
            + keccak(self.version.encode())
            + self.chain_id.to_bytes(32, "big")
            + bytes(12)
            + self.verifying_contract
        )

    def typed_data(self) -> dict[str, object]:
        """The domain as eth-account's `sign_typed_data` takes it."""
        return {"name": self.name, "version": self.version, "chainId": self.chain_id,
                "verifyingContract": "0x" + self.verifying_contract.hex()}  # fmt: skip


def unsigned(record: bytes) -> bytes:
    """A canonical record with its signer field zeroed: what the signature covers."""
    if len(record) < RECORD.size:
        raise SignatureError(f"record: {len(record)} bytes is shorter than {RECORD.size}")
    return record[:SIGNER_OFFSET] + bytes(ADDRESS_LEN) + record[SIGNER_OFFSET + ADDRESS_LEN :]


def with_signer(record: bytes, signer: bytes) -> bytes:
    """The record with the recovered signer filled in (what the gateway forwards to the engine)."""
    return record[:SIGNER_OFFSET] + signer + record[SIGNER_OFFSET + ADDRESS_LEN :]


def connection_id(record: bytes) -> bytes:
    """keccak256 of the unsigned record: the action, its nonce, address and sub-account in one hash."""
    return keccak(unsigned(record))


def digest(record: bytes, domain: Domain, source: str = "a") -> bytes:
    """The EIP-712 digest the signer signs for a trading command."""
    struct_hash = keccak(keccak(AGENT_TYPE) + keccak(source.encode()) + connection_id(record))
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def typed_message(record: bytes, source: str = "a") -> dict[str, object]:
    """The Agent message as eth-account's `sign_typed_data` takes it (with `AGENT_TYPES`)."""
    return {"source": source, "connectionId": connection_id(record)}


AGENT_TYPES = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}


def recover(record: bytes, signature: bytes, domain: Domain, source: str = "a") -> bytes:
    """The 20-byte address that signed `record` under `domain`; SignatureError for anything malleable or malformed."""
    if len(signature) != 65:
        raise SignatureError(f"signature: 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(f"signature: v must be 27 or 28, got {v}")
    if not 0 < r < SECP256K1_N:
        raise SignatureError("signature: r is out of range")
    if not 0 < s <= HALF_N:
        raise SignatureError("signature: s must be in the lower half of the curve order (no malleable twins)")
    try:
        key = PublicKey.from_signature_and_message(signature[:64] + bytes([v - 27]), digest(record, domain, source),
                                                   hasher=None)  # fmt: skip
    except Exception as exc:  # coincurve raises plain Exception for an unrecoverable point
        raise SignatureError(f"signature: no public key recovers from it ({exc})") from None
    return keccak(key.format(compressed=False)[1:])[-20:]


def sign(record: bytes, private_key: bytes, domain: Domain, source: str = "a") -> bytes:
    """A 65-byte (r, s, v) signature of a trading command, low-s, v in {27, 28} (for clients and tests)."""
    from coincurve import PrivateKey

    raw = PrivateKey(private_key).sign_recoverable(digest(record, domain, source), hasher=None)
    return raw[:64] + bytes([raw[64] + 27])
