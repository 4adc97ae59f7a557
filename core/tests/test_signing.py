"""Trading-command signatures: plain eth-account signs from the documented schema; malleable forms are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from exos import commands as C
from exos import events as E
from exos.engine import Engine
from exos.signing import HALF_N, SECP256K1_N, Domain, SignatureError, recover, sign, unsigned, with_signer

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
ADDRESS = bytes.fromhex(Account.from_key(KEY).address[2:])
DOMAIN = Domain("exos spot demo", "1", 1337, bytes.fromhex("e0" * 20))


def order(nonce: int = 1_700_000_000_000, sub: int = 0) -> bytes:
    """An unsigned order record for ADDRESS (the signer field is filled in by verification)."""
    actor = C.Actor(ADDRESS, sub, bytes(20))
    return C.PlaceOrder(actor=actor, timestamp=5, nonce=nonce, market="BTC-USDC", side=0, price=6_500_000,
                        size=2).pack()  # fmt: skip


def eth_account_signature(record: bytes, domain: Domain = DOMAIN, source: str = "a") -> bytes:
    """A signature made with plain eth-account from the schema in exos.signing's docstring, not its helpers."""
    from eth_hash.auto import keccak

    message = {"source": source, "connectionId": keccak(unsigned(record))}
    types = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}
    domain_data = {"name": domain.name, "version": domain.version, "chainId": domain.chain_id,
                   "verifyingContract": "0x" + domain.verifying_contract.hex()}  # fmt: skip
    signed = Account.sign_typed_data(KEY, domain_data, types, message)
    return bytes(signed.signature)


def test_plain_eth_account_signatures_recover_the_signer() -> None:
    """A wallet-style signature over the documented typed data recovers to its address (and agrees with ours)."""
    record = order()
    signature = eth_account_signature(record)
    assert recover(record, signature, DOMAIN) == ADDRESS
    assert recover(record, sign(record, KEY, DOMAIN), DOMAIN) == ADDRESS
    # the signer field is not covered: whatever a client put there, the recovered signer replaces it
    assert recover(with_signer(record, b"\x99" * 20), signature, DOMAIN) == ADDRESS
    # nor is the timestamp: the sequencer stamps it; the nonce dates the signature
    assert recover(with_signer(record, ADDRESS, timestamp=123_456), signature, DOMAIN) == ADDRESS
    # and eth-account's own typed-data encoder agrees with the hand-written digest
    from exos.signing import digest, typed_data

    encoded = encode_typed_data(full_message=typed_data(record, DOMAIN))
    assert Account.recover_message(encoded, signature=signature).lower() == "0x" + ADDRESS.hex()
    assert len(digest(record, DOMAIN)) == 32


@pytest.mark.parametrize(
    "other",
    [
        Domain("exos spot demo", "1", 1338, DOMAIN.verifying_contract),  # chain id off by one
        Domain("another venue", "1", 1337, DOMAIN.verifying_contract),
        Domain("exos spot demo", "2", 1337, DOMAIN.verifying_contract),
        Domain("exos spot demo", "1", 1337, bytes.fromhex("e1" * 20)),
    ],
    ids=["chain-id", "name", "version", "verifying-contract"],
)
def test_a_signature_for_another_domain_recovers_someone_else(other: Domain) -> None:
    """Under any other domain the same signature recovers a different address, which owns nothing."""
    record = order()
    assert recover(record, eth_account_signature(record, other), DOMAIN) != ADDRESS


def test_changing_any_signed_field_changes_the_signer() -> None:
    """Nonce, sub-account and the order's fields are all covered by the one connection id."""
    record = order()
    signature = eth_account_signature(record)
    for changed in (order(nonce=1_700_000_000_001), order(sub=1), record.replace(b"BTC-USDC", b"ETH-USDC")):
        assert recover(changed, signature, DOMAIN) != ADDRESS
    assert recover(record, eth_account_signature(record, source="b"), DOMAIN) != ADDRESS


def bad_signatures() -> dict[str, bytes]:
    """Malleable or malformed variants of a good signature of `order()`."""
    good = eth_account_signature(order())
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    return {
        "high-s twin": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]),  # v: 27 <-> 28
        "v=0": good[:64] + bytes([v - 27]),
        "v=1": good[:64] + bytes([1]),
        "v=37": good[:64] + bytes([37]),
        "r=0": bytes(32) + good[32:],
        "s=0": r + bytes(32) + good[64:],
        "s=n": r + SECP256K1_N.to_bytes(32, "big") + good[64:],
        "64 bytes": good[:64],
        "66 bytes": good + b"\x00",
    }


def test_eth_account_alone_accepts_the_high_s_twin() -> None:
    """Why exos checks itself: eth-account recovers the signer from the malleable twin without complaint."""
    good = eth_account_signature(order())
    assert int.from_bytes(good[32:64], "big") <= HALF_N
    twin = bad_signatures()["high-s twin"]
    assert bytes.fromhex(Account._recover_hash(_digest(order()), signature=twin)[2:]) == ADDRESS


@pytest.mark.parametrize("case", sorted(bad_signatures()))
def test_malleable_and_malformed_signatures_are_refused(case: str) -> None:
    """The high-s twin, v as 0/1 or EIP-155, zero or oversized r and s, and wrong lengths: SignatureError."""
    with pytest.raises(SignatureError):
        recover(order(), bad_signatures()[case], DOMAIN)


def _digest(record: bytes) -> bytes:
    """The digest under DOMAIN."""
    from exos.signing import digest

    return digest(record, DOMAIN)


def test_a_replayed_signed_order_is_refused_by_its_nonce() -> None:
    """The engine keys replay protection on the signer's nonce: the same signed action applies once."""
    engine = Engine.from_manifest(ROOT / "examples" / "spot.toml")
    admin = engine.manifest.venue.admins[0]
    engine.submit(C.Deposit(actor=C.Actor(ADDRESS, 0, admin), timestamp=1, asset="USDC", amount=10**12))
    record = order()
    signer = recover(record, eth_account_signature(record), DOMAIN)
    forwarded = with_signer(record, signer)
    first = engine.submit_records([forwarded])
    assert first[-1][4] is True
    before = engine.state_hash()
    again = engine.submit_records([forwarded])
    assert (again[0][4], again[-1][4]) == ("NONCE", False)
    assert engine.state_hash() == before
    assert E.decode(first[0]).order_id == 1  # type: ignore[attr-defined]


ACCOUNT_ACTIONS = {
    "withdraw": (
        C.Withdraw(actor=C.Actor(ADDRESS, 2, bytes(20)), timestamp=9, nonce=77, asset="USDC", amount=5 * 10**6),
        "Withdraw",
        [("account", "address"), ("subAccount", "uint16"), ("asset", "string"), ("amount", "uint256"),
         ("nonce", "uint64")],
        {"account": "0x" + ADDRESS.hex(), "subAccount": 2, "asset": "USDC", "amount": 5 * 10**6, "nonce": 77},
    ),
    "transfer": (
        C.Transfer(actor=C.Actor(ADDRESS, 0, bytes(20)), timestamp=9, nonce=78, asset="BTC", amount=3, to_sub=4),
        "Transfer",
        [("account", "address"), ("subAccount", "uint16"), ("toSubAccount", "uint16"), ("asset", "string"),
         ("amount", "uint256"), ("nonce", "uint64")],
        {"account": "0x" + ADDRESS.hex(), "subAccount": 0, "toSubAccount": 4, "asset": "BTC", "amount": 3,
         "nonce": 78},
    ),
    "approve": (
        C.ApproveAgent(actor=C.Actor(ADDRESS, 0, bytes(20)), timestamp=9, nonce=79, agent=b"\xa9" * 20, name="bot",
                       expiry=10**12),
        "ApproveAgent",
        [("account", "address"), ("agent", "address"), ("name", "string"), ("expiry", "uint64"), ("nonce", "uint64")],
        {"account": "0x" + ADDRESS.hex(), "agent": "0x" + "a9" * 20, "name": "bot", "expiry": 10**12, "nonce": 79},
    ),
    "revoke": (
        C.RevokeAgent(actor=C.Actor(ADDRESS, 0, bytes(20)), timestamp=9, nonce=80, agent=b"\xa9" * 20),
        "RevokeAgent",
        [("account", "address"), ("agent", "address"), ("nonce", "uint64")],
        {"account": "0x" + ADDRESS.hex(), "agent": "0x" + "a9" * 20, "nonce": 80},
    ),
}  # fmt: skip


@pytest.mark.parametrize("action", sorted(ACCOUNT_ACTIONS))
def test_account_actions_are_typed_data_a_wallet_can_show(action: str) -> None:
    """Withdraw, transfer, approve, revoke: eth-account signs the documented struct; exos recovers the signer."""
    from exos.signing import typed_data

    command, primary, members, message = ACCOUNT_ACTIONS[action]
    record = command.pack()
    domain_type = [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]
    full = {
        "types": {"EIP712Domain": domain_type, primary: [{"name": n, "type": t} for n, t in members]},
        "primaryType": primary,
        "domain": DOMAIN.typed_data(),
        "message": message,
    }
    signature = bytes(Account.sign_typed_data(KEY, full_message=full).signature)
    assert recover(record, signature, DOMAIN) == ADDRESS
    assert typed_data(record, DOMAIN) == full
    other = dict(message, nonce=message["nonce"] + 1)
    wrong = bytes(Account.sign_typed_data(KEY, full_message=dict(full, message=other)).signature)
    assert recover(record, wrong, DOMAIN) != ADDRESS
