"""Who may sign what: the address itself, or (trading only) an agent it approved; agents are engine state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exos import commands as C
from exos import events as E
from exos.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
ADMIN = bytes.fromhex("11" * 20)
MASTER, AGENT, OTHER, STRANGER = b"\x0a" * 20, b"\xa9" * 20, b"\x0c" * 20, b"\x0d" * 20
EXPIRY = 1_000


@pytest.fixture
def engine() -> Engine:
    """The spot example with the master funded in USDC (sub-accounts 0 and 1) and BTC, at t = 1."""
    engine = Engine.from_manifest(ROOT / "examples" / "spot.toml")
    for sub in (0, 1):
        engine.submit(C.Deposit(actor=C.Actor(MASTER, sub, ADMIN), timestamp=1, asset="USDC", amount=10**12))
    engine.submit(C.Deposit(actor=C.Actor(MASTER, 0, ADMIN), timestamp=1, asset="BTC", amount=10**8))
    return engine


def code(events: list[E.Event]) -> str | None:
    """The rejection code, or None if the command was applied."""
    rejected = [e for e in events if isinstance(e, E.Rejected)]
    return rejected[0].code if rejected else None


def order(signer: bytes, t: int, sub: int = 0) -> C.PlaceOrder:
    """A resting buy (1 lot at 65,000 USDC) for the master's sub-account `sub`, signed by `signer`."""
    return C.PlaceOrder(
        actor=C.Actor(MASTER, sub, signer), timestamp=t, market="BTC-USDC", side=0, price=6_500_000, size=1
    )


def approve(engine: Engine, agent: bytes = AGENT, t: int = 2, master: bytes = MASTER) -> list[E.Event]:
    """The master approves an agent until EXPIRY."""
    return engine.submit(C.ApproveAgent(actor=C.Actor(master), timestamp=t, agent=agent, name="bot", expiry=EXPIRY))


def refused_unchanged(engine: Engine, command: C.Command, expected: str) -> None:
    """The command is refused with `expected` and the state hash does not move (its time is the last one)."""
    before = engine.state_hash()
    assert code(engine.submit(command)) == expected
    assert engine.state_hash() == before


def test_the_address_itself_signs(engine: Engine) -> None:
    """A command signed by its own address (any sub-account) needs no approval."""
    assert code(engine.submit(order(MASTER, 2, sub=1))) is None


def test_a_stranger_cannot_sign_for_an_address(engine: Engine) -> None:
    """Orders, cancels, withdrawals, transfers and agent approvals by another signer are refused, changing nothing."""
    refused_unchanged(engine, order(STRANGER, 1), "NOT_AUTHORISED")
    refused_unchanged(engine, C.CancelAll(actor=C.Actor(MASTER, 0, STRANGER), timestamp=1), "NOT_AUTHORISED")
    withdraw = C.Withdraw(actor=C.Actor(MASTER, 0, STRANGER), timestamp=1, asset="USDC", amount=1)
    refused_unchanged(engine, withdraw, "NOT_AUTHORISED")
    approve_as = C.ApproveAgent(actor=C.Actor(MASTER, 0, STRANGER), timestamp=1, agent=OTHER, name="x", expiry=9)
    refused_unchanged(engine, approve_as, "NOT_AUTHORISED")


def test_an_agent_trades_for_its_master_and_its_sub_accounts(engine: Engine) -> None:
    """After approval the agent's orders and cancels act on the master's accounts."""
    events = approve(engine)
    assert [type(e).__name__ for e in events] == ["AgentApproved", "CommandDone"]
    assert engine.agents_of(MASTER) == [(AGENT, "bot", EXPIRY)]
    placed = engine.submit(order(AGENT, 3, sub=1))
    accepted = next(e for e in placed if isinstance(e, E.OrderAccepted))
    assert (accepted.address, accepted.sub) == (MASTER, 1)
    cancel = C.CancelOrder(actor=C.Actor(MASTER, 1, AGENT), timestamp=4, market="BTC-USDC", order_id=accepted.order_id)
    assert code(engine.submit(cancel)) is None


def test_an_agent_never_moves_funds_or_manages_agents(engine: Engine) -> None:
    """Withdraw, transfer, approve and revoke signed by an agent are refused."""
    approve(engine)
    as_agent = C.Actor(MASTER, 0, AGENT)
    refused_unchanged(engine, C.Withdraw(actor=as_agent, timestamp=2, asset="USDC", amount=1), "NOT_AUTHORISED")
    transfer = C.Transfer(actor=as_agent, timestamp=2, asset="USDC", amount=1, to_sub=1)
    refused_unchanged(engine, transfer, "NOT_AUTHORISED")
    another = C.ApproveAgent(actor=as_agent, timestamp=2, agent=OTHER, name="x", expiry=EXPIRY)
    refused_unchanged(engine, another, "NOT_AUTHORISED")
    refused_unchanged(engine, C.RevokeAgent(actor=as_agent, timestamp=2, agent=AGENT), "NOT_AUTHORISED")


def test_an_expired_or_revoked_agent_is_refused(engine: Engine) -> None:
    """At its expiry an agent stops; a revoked agent stops at once."""
    approve(engine)
    assert code(engine.submit(order(AGENT, EXPIRY - 1))) is None
    engine.submit(C.Tick(actor=C.Actor(ADMIN), timestamp=EXPIRY))  # time reaches the expiry
    refused_unchanged(engine, order(AGENT, EXPIRY), "NOT_AUTHORISED")
    fresh = Engine.from_manifest(ROOT / "examples" / "spot.toml")
    approve(fresh)
    revoked = fresh.submit(C.RevokeAgent(actor=C.Actor(MASTER), timestamp=3, agent=AGENT))
    assert isinstance(revoked[0], E.AgentRevoked) and (revoked[0].address, revoked[0].agent) == (MASTER, AGENT)
    refused_unchanged(fresh, order(AGENT, 3), "NOT_AUTHORISED")
    refused_unchanged(fresh, C.RevokeAgent(actor=C.Actor(MASTER), timestamp=3, agent=AGENT), "UNKNOWN_AGENT")


def test_an_agent_address_is_never_reused(engine: Engine) -> None:
    """After a revocation neither its master nor anyone else can approve that address again; nor oneself."""
    approve(engine)
    engine.submit(C.RevokeAgent(actor=C.Actor(MASTER), timestamp=3, agent=AGENT))
    again = C.ApproveAgent(actor=C.Actor(MASTER), timestamp=3, agent=AGENT, name="bot", expiry=EXPIRY)
    refused_unchanged(engine, again, "AGENT_REUSED")
    other = C.ApproveAgent(actor=C.Actor(OTHER), timestamp=3, agent=AGENT, name="bot", expiry=EXPIRY)
    refused_unchanged(engine, other, "AGENT_REUSED")
    itself = C.ApproveAgent(actor=C.Actor(MASTER), timestamp=3, agent=MASTER, name="me", expiry=EXPIRY)
    refused_unchanged(engine, itself, "BAD_AGENT")


@pytest.mark.parametrize(
    ("name", "expiry"), [("", EXPIRY), ("x" * 33, EXPIRY), ("bot", 1), ("bot", 0)], ids=["empty", "long", "now", "past"]
)
def test_bad_approvals_are_refused(engine: Engine, name: str, expiry: int) -> None:
    """A name of 1..32 characters and an expiry after the command's time."""
    command = C.ApproveAgent(actor=C.Actor(MASTER), timestamp=1, agent=AGENT, name=name, expiry=expiry)
    refused_unchanged(engine, command, "BAD_AGENT")


def test_agents_are_state(engine: Engine) -> None:
    """An approval changes the hash, survives dump/load, and a loaded engine enforces it."""
    before = engine.state_hash()
    approve(engine)
    assert engine.state_hash() != before
    copy = Engine.from_manifest(ROOT / "examples" / "spot.toml")
    copy.load_state(engine.dump_state())
    assert copy.state_hash() == engine.state_hash()
    assert code(copy.submit(order(AGENT, 3))) is None
    assert code(copy.submit(C.ApproveAgent(actor=C.Actor(OTHER), timestamp=3, agent=AGENT, name="b", expiry=9))) == (
        "AGENT_REUSED"
    )


def test_a_venue_can_require_nonces_near_the_command_time(tmp_path: Path) -> None:
    """With `nonce_window_ms = [past, future]` a nonce must lie in (t - past, t + future); older is an expired
    action; reuse stays refused."""
    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace('journal = "journal"', 'journal = "journal"\nnonce_window_ms = [1000, 500]')
    )
    path = tmp_path / "venue.toml"
    path.write_text(text)
    engine = Engine.from_manifest(path)
    assert engine.manifest.venue.nonce_window == (1000, 500)
    t = 10_000
    engine.submit(C.Deposit(actor=C.Actor(MASTER, 0, ADMIN), timestamp=t, asset="USDC", amount=10**12))

    def place(nonce: int) -> str | None:
        command = C.PlaceOrder(actor=C.Actor(MASTER), timestamp=t, nonce=nonce, market="BTC-USDC", side=0,
                               price=6_500_000, size=1)  # fmt: skip
        return code(engine.submit(command))

    assert place(t - 1000) == "EXPIRED_ACTION"  # signed too long ago
    assert place(t + 500) == "NONCE"
    assert place(t - 999) is None
    assert place(t + 499) is None
    assert place(t + 499) == "NONCE"  # used


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("5", "must be [past, future] milliseconds"),
        ("[1, 2, 3]", "must be [past, future] milliseconds"),
        ("[0, 5]", "nonce_window_ms[0]: must be an integer in 1.."),
        ('[5, "x"]', "nonce_window_ms[1]: must be an integer"),
    ],
)  # fmt: skip
def test_a_bad_nonce_window_is_a_manifest_error(tmp_path: Path, value: str, rule: str) -> None:
    """The window is two positive integers; anything else names the rule."""
    from exos.manifest import Manifest, ManifestError

    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace('journal = "journal"', f'journal = "journal"\nnonce_window_ms = {value}')
    )
    with pytest.raises(ManifestError, match=re.escape(rule)):
        Manifest.from_bytes(text.encode())
