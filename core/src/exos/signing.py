"""Signing trading commands the way Hyperliquid signs actions: an EIP-712 `Agent` struct over the action's hash.

What is signed. A command's canonical record (`exos.commands`, the bytes the journal stores) with its
timestamp and its 20-byte signer zeroed: the signer is what verification recovers, and the time is
the sequencer's to stamp (the nonce, the client's clock in ms, dates the signature). The record holds
the nonce, the account address and the sub-account, so one hash binds all of them:
`connection_id = keccak256(record with timestamp = 0 and signer = 0)`. The signer signs the EIP-712
typed data

    domain:  EIP712Domain(string name, string version, uint256 chainId, address verifyingContract)
             = the venue's name, version, chain id and verifying address
    message: Agent(string source, bytes32 connectionId) = (`source`, connection_id)

which any EIP-712 wallet or `eth_account.Account.sign_typed_data` produces. A signed batch of up to
100 trading commands is one Agent signature whose `connectionId` is keccak256 of the unsigned records
concatenated in order (a batch of one is exactly the single command's digest); the test suite signs with
plain eth-account from this description alone. `source` names the deployment ("a" mainnet, "b"
testnet, as Hyperliquid uses them).

Account actions (withdraw, transfer, approve and revoke an agent) are signed as full typed data that
a wallet shows field by field, under the same domain:

    Withdraw(address account,uint16 subAccount,string asset,uint256 amount,uint64 nonce)
    Transfer(address account,uint16 subAccount,uint16 toSubAccount,string asset,uint256 amount,uint64 nonce)
    ApproveAgent(address account,address agent,string name,uint64 expiry,uint64 nonce)
    RevokeAgent(address account,address agent,uint64 nonce)

(amounts in the asset's smallest unit; `typed_data(record, domain)` builds the whole message).

Private reads are signed too, under the same domain, by the account's key or an agent it approved:

    Login(address account,uint64 timestamp)
    Request(address account,string method,string path,uint64 timestamp)

`Login` opens a WebSocket's user channel for `account`; `Request` authorises one REST read: `method`
in capitals, `path` the request target exactly as sent (the percent-encoded path, then `?` and the
query string if there is one), `timestamp` the signer's clock in ms (`exos.auth` checks the window).

Verification rejects what eth-account accepts silently: signatures that are not 65 bytes, `v`
outside {27, 28} (0/1 and EIP-155 forms included), `r` or `s` of zero or not below the curve order,
and high-s twins (`s > n/2`). Replay protection is the engine's nonce check on the signer, never the
signature bytes. Recovery uses coincurve (libsecp256k1); the digest is computed by hand (about 10 µs
instead of eth-account's 80 µs encoder).

Needs the `signing` extra (`pip install "exos[signing]"`: eth-hash with pycryptodome, coincurve);
the engine itself never imports this module.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import attrs
from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak as _eth_keccak

from exos.commands import ADDRESS_LEN, RECORD, SIGNER_OFFSET, TIMESTAMP_OFFSET, Kind, split, stamped
from exos.errors import ExosError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
AGENT_TYPE = b"Agent(string source,bytes32 connectionId)"
LOGIN_TYPE = b"Login(address account,uint64 timestamp)"
REQUEST_TYPE = b"Request(address account,string method,string path,uint64 timestamp)"


def _sponge() -> Callable[[bytes], bytes]:
    """keccak256 through pycryptodome's C sponge directly, one state per thread: a third of the ~7 µs eth-hash takes
    building its wrapper objects, and a verification hashes three times. eth-hash's own where that is unavailable."""
    try:
        from Crypto.Hash.keccak import _raw_keccak_lib as lib  # type: ignore[attr-defined]
        from Crypto.Util._raw_api import VoidPointer, backend, c_size_t, ffi
    except ImportError:
        return _eth_keccak
    if backend != "cffi":
        return _eth_keccak
    reset, absorb, squeeze = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
    local = threading.local()

    def state() -> tuple[Any, Any, Any, Any]:
        handle = VoidPointer()
        if lib.keccak_init(handle.address_of(), c_size_t(64), 24):  # capacity 512 bits: keccak256's rate
            raise RuntimeError("keccak_init failed")
        out = ffi.new("uint8_t[32]")
        local.state = (handle.get(), out, ffi.buffer(out), handle)  # the handle keeps the state alive
        return local.state  # type: ignore[no-any-return]

    def keccak256(data: bytes) -> bytes:
        try:
            sponge, out, view, _ = local.state
        except AttributeError:
            sponge, out, view, _ = state()
        reset(sponge)
        absorb(sponge, data, len(data))
        squeeze(sponge, out, 32, 0x01)  # 0x01: Keccak's padding (SHA-3's would be 0x06)
        return bytes(view)

    # a wrong answer here would recover wrong signers: check against eth-hash before use
    samples = (b"", b"abc", bytes(range(256)) * 3)
    return keccak256 if all(keccak256(x) == _eth_keccak(x) for x in samples) else _eth_keccak


keccak: Callable[[bytes], bytes] = _sponge()
_SEPARATORS: dict[Domain, bytes] = {}
_AGENT_TYPE_HASH = keccak(AGENT_TYPE)
_LOGIN_TYPE_HASH = keccak(LOGIN_TYPE)
_REQUEST_TYPE_HASH = keccak(REQUEST_TYPE)
_SOURCE_HASHES = {"a": keccak(b"a"), "b": keccak(b"b")}
_ADDRESSES: dict[bytes, bytes] = {}  # public key -> address: signers repeat, and keccak costs ~8 µs


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
        """The EIP-712 domain separator (computed once per domain)."""
        cached = _SEPARATORS.get(self)
        if cached is None:
            cached = _SEPARATORS[self] = self._separator()
        return cached

    def _separator(self) -> bytes:
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

    @classmethod
    def from_info(cls, info: dict[str, str]) -> Domain:
        """The domain `GET /v1/info` describes."""
        return cls(info["name"], info["version"], int(info["chain_id"]), bytes.fromhex(info["verifying_contract"][2:]))

    def typed_data(self) -> dict[str, object]:
        """The domain as eth-account's `sign_typed_data` takes it."""
        return {"name": self.name, "version": self.version, "chainId": self.chain_id,
                "verifyingContract": "0x" + self.verifying_contract.hex()}  # fmt: skip


def unsigned(record: bytes) -> bytes:
    """A canonical record with its timestamp and signer zeroed: what the signature covers.

    The sequencer stamps the time and verification supplies the signer; the nonce (the client's
    clock, ms) is what ties a signature to a moment (see the engine's nonce window)."""
    if len(record) < RECORD.size:
        raise SignatureError(f"record: {len(record)} bytes is shorter than {RECORD.size}")
    return (record[:TIMESTAMP_OFFSET] + bytes(8) + record[TIMESTAMP_OFFSET + 8 : SIGNER_OFFSET] + bytes(ADDRESS_LEN)
            + record[SIGNER_OFFSET + ADDRESS_LEN :])  # fmt: skip


def with_signer(record: bytes, signer: bytes, timestamp: int | None = None) -> bytes:
    """The record with the recovered signer (and the sequencer's timestamp) filled in: what the engine gets."""
    if timestamp is not None:
        record = stamped(record, timestamp)
    return record[:SIGNER_OFFSET] + signer + record[SIGNER_OFFSET + ADDRESS_LEN :]


def connection_id(record: bytes) -> bytes:
    """keccak256 of the unsigned record: the action, its nonce, address and sub-account in one hash."""
    return keccak(unsigned(record))


def _source_hash(source: str) -> bytes:
    """keccak256 of the Agent struct's source string."""
    cached = _SOURCE_HASHES.get(source)
    return cached if cached is not None else keccak(source.encode())


def _typed(domain: Domain, struct_hash: bytes) -> bytes:
    """The EIP-712 digest of a struct hash under `domain`."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def _agent(connection: bytes, domain: Domain, source: str) -> bytes:
    """The EIP-712 digest of the Agent struct over a connection id."""
    return _typed(domain, keccak(_AGENT_TYPE_HASH + _source_hash(source) + connection))


def agent_digest(record: bytes, domain: Domain, source: str = "a") -> bytes:
    """The EIP-712 digest of a trading command: the Agent struct over its connection id."""
    return _agent(connection_id(record), domain, source)


AGENT_TYPES = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}

# Account actions are signed as full typed data a wallet can show field by field.
ACCOUNT_TYPES: dict[int, tuple[str, list[tuple[str, str]]]] = {
    int(Kind.WITHDRAW): ("Withdraw", [("account", "address"), ("subAccount", "uint16"), ("asset", "string"),
                                      ("amount", "uint256"), ("nonce", "uint64")]),
    int(Kind.TRANSFER): ("Transfer", [("account", "address"), ("subAccount", "uint16"), ("toSubAccount", "uint16"),
                                      ("asset", "string"), ("amount", "uint256"), ("nonce", "uint64")]),
    int(Kind.APPROVE_AGENT): ("ApproveAgent", [("account", "address"), ("agent", "address"), ("name", "string"),
                                               ("expiry", "uint64"), ("nonce", "uint64")]),
    int(Kind.REVOKE_AGENT): ("RevokeAgent", [("account", "address"), ("agent", "address"), ("nonce", "uint64")]),
}  # fmt: skip


def account_message(record: bytes) -> tuple[str, list[tuple[str, str]], dict[str, Any]]:
    """(primary type, its fields, the message) of an account action's record."""
    kind = record[0]
    if kind not in ACCOUNT_TYPES:
        raise SignatureError(f"record: kind {kind} is not an account action")
    fields, tail = split(record)
    primary, members = ACCOUNT_TYPES[kind]
    extra = json.loads(tail) if tail else {}
    values: dict[str, Any] = {
        "account": fields[10], "subAccount": fields[6], "toSubAccount": fields[7],
        "asset": fields[13].rstrip(b"\0").decode(), "amount": int.from_bytes(fields[16], "little", signed=True),
        "nonce": fields[9],
        "agent": bytes.fromhex(extra["agent"]) if "agent" in extra else b"", "name": extra.get("name", ""),
        "expiry": extra.get("expiry", 0),
    }  # fmt: skip
    message = {name: values[name] for name, _ in members}
    for name, type_ in members:
        if type_.startswith("uint") and not 0 <= message[name] < 2 ** int(type_[4:]):
            raise SignatureError(f"{primary}.{name}: {message[name]} does not fit {type_}")
    return primary, members, message


def _encode(type_: str, value: Any) -> bytes:
    """One member in EIP-712 encodeData form."""
    if type_ == "address":
        return bytes(12) + bytes(value)
    if type_ == "string":
        return keccak(value.encode())
    return int(value).to_bytes(32, "big")


def account_digest(record: bytes, domain: Domain) -> bytes:
    """The EIP-712 digest of an account action (withdraw, transfer, approve or revoke an agent)."""
    primary, members, message = account_message(record)
    type_string = f"{primary}({','.join(f'{t} {n}' for n, t in members)})".encode()
    return _typed(domain, keccak(keccak(type_string) + b"".join(_encode(t, message[n]) for n, t in members)))


def digest(record: bytes, domain: Domain, source: str = "a") -> bytes:
    """The digest a command's signer signs: typed data for account actions, the Agent struct for trading."""
    if record and record[0] in ACCOUNT_TYPES:
        return account_digest(record, domain)
    return agent_digest(record, domain, source)


def typed_data(record: bytes, domain: Domain, source: str = "a") -> dict[str, Any]:
    """A command's full EIP-712 typed data, as `eth_account.Account.sign_typed_data(full_message=...)` takes it."""
    domain_type = [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]
    if record and record[0] in ACCOUNT_TYPES:
        primary, members, message = account_message(record)
        shown = {n: "0x" + v.hex() if isinstance(v, bytes) else v for n, v in message.items()}
        types = {primary: [{"name": n, "type": t} for n, t in members]}
    else:
        primary, shown, types = "Agent", {"source": source, "connectionId": connection_id(record)}, AGENT_TYPES
    return {"types": {"EIP712Domain": domain_type, **types}, "primaryType": primary, "domain": domain.typed_data(),
            "message": shown}  # fmt: skip


def _uint64(name: str, value: int) -> bytes:
    """A uint64 member as an EIP-712 word (SignatureError if it does not fit)."""
    if not 0 <= value < 2**64:
        raise SignatureError(f"{name}: {value} does not fit uint64")
    return value.to_bytes(32, "big")


def _account(account: bytes) -> bytes:
    """An address member as an EIP-712 word."""
    if len(account) != ADDRESS_LEN:
        raise SignatureError(f"account: a 20-byte address, got {len(account)} bytes")
    return bytes(12) + account


def login_digest(account: bytes, timestamp: int, domain: Domain) -> bytes:
    """The EIP-712 digest of `Login(address account,uint64 timestamp)`: opening the user channel of `account`."""
    return _typed(domain, keccak(_LOGIN_TYPE_HASH + _account(account) + _uint64("timestamp", timestamp)))


def request_digest(account: bytes, method: str, path: str, timestamp: int, domain: Domain) -> bytes:
    """The EIP-712 digest of `Request(address account,string method,string path,uint64 timestamp)`: one private
    REST read of `account` (`path`: the request target as sent, query string included)."""
    return _typed(domain, keccak(_REQUEST_TYPE_HASH + _account(account) + keccak(method.encode())
                                 + keccak(path.encode()) + _uint64("timestamp", timestamp)))  # fmt: skip


READ_TYPES = {
    "Login": [{"name": "account", "type": "address"}, {"name": "timestamp", "type": "uint64"}],
    "Request": [{"name": "account", "type": "address"}, {"name": "method", "type": "string"},
                {"name": "path", "type": "string"}, {"name": "timestamp", "type": "uint64"}],
}  # fmt: skip


def recover(record: bytes, signature: bytes, domain: Domain, source: str = "a") -> bytes:
    """The 20-byte address that signed `record` under `domain`; SignatureError for anything malleable or malformed."""
    return recover_digest(digest(record, domain, source), signature)


def batch_digest(records: list[bytes], domain: Domain, source: str = "a") -> bytes:
    """The Agent digest of a signed batch: its connection id is keccak256 of the unsigned records concatenated.

    A batch of one is the same digest as the single command; account actions are never batched."""
    if not records:
        raise SignatureError("batch: no records")
    for record in records:
        if record[0] in ACCOUNT_TYPES:
            raise SignatureError(f"batch: kind {record[0]} is an account action, signed on its own as typed data")
    return _agent(keccak(b"".join(unsigned(r) for r in records)), domain, source)


def sign_batch(records: list[bytes], private_key: bytes, domain: Domain, source: str = "a") -> bytes:
    """One 65-byte signature over a batch of trading commands (for clients and tests)."""
    return sign_digest(batch_digest(records, domain, source), private_key)


def recover_digest(message_digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address that signed a 32-byte digest; SignatureError for anything malleable or malformed."""
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
        key = PublicKey.from_signature_and_message(signature[:64] + bytes([v - 27]), message_digest, hasher=None)
    except Exception as exc:  # coincurve raises plain Exception for an unrecoverable point
        raise SignatureError(f"signature: no public key recovers from it ({exc})") from None
    return _address(key)


def _address(key: PublicKey) -> bytes:
    """The 20-byte address of a public key (cached: signers repeat, and keccak costs ~8 µs)."""
    public = key.format(compressed=False)[1:]
    address = _ADDRESSES.get(public)
    if address is None:
        if len(_ADDRESSES) >= 100_000:
            _ADDRESSES.clear()
        address = _ADDRESSES[public] = keccak(public)[-20:]
    return address


def address_of(private_key: bytes | PrivateKey) -> bytes:
    """The 20-byte address a private key signs as."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)
    return _address(key.public_key)


def sign(record: bytes, private_key: bytes, domain: Domain, source: str = "a") -> bytes:
    """A 65-byte (r, s, v) signature of a command, low-s, v in {27, 28} (for clients and tests)."""
    return sign_digest(digest(record, domain, source), private_key)


def sign_digest(message_digest: bytes, private_key: bytes | PrivateKey) -> bytes:
    """A 65-byte low-s signature with v in {27, 28} of a 32-byte digest (pass a PrivateKey to sign many: deriving
    one from its bytes costs about as much as a signature)."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)
    raw = key.sign_recoverable(message_digest, hasher=None)
    return raw[:64] + bytes([raw[64] + 27])
