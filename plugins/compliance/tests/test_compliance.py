"""Compliance through the engine: sanctions venue-wide, a KYC-only market beside an open one, lists as commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from exos import commands as C
from exos import events as E
from exos.engine import Engine, EngineError
from exos.testing import EventReader, StatefulPluginContract
from exos_compliance import KycRegistry, SanctionsList

ROOT = Path(__file__).resolve().parents[3]
ADMIN = bytes.fromhex("11" * 20)
ALICE, BOB, AGENT = b"\x0a" * 20, b"\x0b" * 20, b"\xa9" * 20
read = EventReader()


def manifest(tmp_path: Path) -> Path:
    """The spot example with sanctions venue-wide and a KYC market (level 2, closed to US) beside an open one."""
    text = (ROOT / "examples" / "spot.toml").read_text()
    text = text.replace('[[plugins]]\nname = "spot"', '[[plugins]]\nname = "spot"\n\n[[plugins]]\nname = "compliance"')
    text = text.replace('journal = "journal"', 'journal = "journal"\ncompliance = ["sanctions"]')
    text = text.replace(
        'name = "ETH-USDC"\ntype = "spot"',
        'name = "ETH-USDC"\ntype = "spot"\ncompliance = ["kyc"]',
    )
    text += '\nmin_kyc_level = 2\nclosed_jurisdictions = ["US"]\n'  # appended to ETH-USDC's [markets.params]
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


class Venue:
    """An engine over the manifest; Alice and Bob funded before any list exists."""

    def __init__(self, tmp_path: Path) -> None:
        """Deposit USDC, BTC and ETH to Alice and Bob at t = 1."""
        self.engine = Engine.from_manifest(manifest(tmp_path))
        self.now = 1
        for who in (ALICE, BOB):
            for asset, amount in (("USDC", 10**12), ("BTC", 10**8), ("ETH", 10**19)):
                assert read.accepted(self.deposit(who, asset, amount))

    def submit(self, command: C.Command) -> list[E.Event]:
        """Apply, then check every invariant."""
        events = self.engine.submit(command)
        self.engine.check_invariants()
        return events

    def deposit(self, who: bytes, asset: str, amount: int) -> list[E.Event]:
        """An admin-signed deposit."""
        return self.submit(C.Deposit(actor=C.Actor(who, 0, ADMIN), timestamp=self.now, asset=asset, amount=amount))

    def update(self, policy: str, **payload: object) -> list[E.Event]:
        """An admin list update."""
        return self.submit(C.ComplianceUpdate(actor=C.Actor(ADMIN), timestamp=self.now, policy=policy,
                                              payload=dict(payload)))  # fmt: skip

    def order(self, who: bytes, market: str, side: int = 0) -> list[E.Event]:
        """A resting order (BTC at 65,000, ETH at 3,000)."""
        price = 6_500_000 if market == "BTC-USDC" else 300_000
        return self.submit(C.PlaceOrder(actor=C.Actor(who), timestamp=self.now, market=market, side=side,
                                        price=price, size=10))  # fmt: skip

    def refused(self, command_events: list[E.Event]) -> str | None:
        """The rejection code."""
        return read.rejection(command_events)


def hex_address(raw: bytes) -> str:
    """The list form of an address, upper-case hex to show case does not matter."""
    return "0x" + raw.hex().upper()


def test_an_unknown_policy_name_stops_the_engine_at_start(tmp_path: Path) -> None:
    """A manifest naming a policy no enabled plugin registers fails with one clear error."""
    path = manifest(tmp_path)
    path.write_text(path.read_text().replace('compliance = ["sanctions"]', 'compliance = ["aml"]'))
    with pytest.raises(EngineError, match="no enabled plugin registers compliance policy 'aml'"):
        Engine.from_manifest(path)


def test_sanctioning_cancels_orders_and_freezes_everything(tmp_path: Path) -> None:
    """A newly listed address loses its resting orders and cannot deposit, withdraw, trade or approve agents."""
    v = Venue(tmp_path)
    v.order(ALICE, "BTC-USDC")
    v.order(BOB, "BTC-USDC")
    events = v.update("sanctions", version=1, add=[hex_address(ALICE)])
    updated = read.of(events, E.ComplianceUpdated)
    assert [(u.policy, u.barred) for u in updated] == [("sanctions", (ALICE,))]
    assert [c.address for c in read.of(events, E.OrderCancelled)] == [ALICE]
    assert v.engine.balances(ALICE)["USDC"][1] == 0 and v.engine.open_orders(BOB) != []
    before = v.engine.state_hash()
    assert v.refused(v.order(ALICE, "BTC-USDC")) == "COMPLIANCE"
    assert v.refused(v.submit(C.Withdraw(actor=C.Actor(ALICE), timestamp=1, asset="USDC", amount=1))) == "COMPLIANCE"
    assert v.refused(v.deposit(ALICE, "USDC", 1)) == "COMPLIANCE"
    approve = C.ApproveAgent(actor=C.Actor(BOB), timestamp=1, agent=ALICE, name="x", expiry=10)
    assert v.refused(v.submit(approve)) == "COMPLIANCE"
    assert v.engine.state_hash() == before
    message = v.engine.submit(C.Withdraw(actor=C.Actor(ALICE), timestamp=1, asset="USDC", amount=1))[0]
    assert isinstance(message, E.Rejected) and "sanctions list (version 1)" in message.message
    v.update("sanctions", version=2, remove=[hex_address(ALICE)])
    assert read.accepted(v.submit(C.Withdraw(actor=C.Actor(ALICE), timestamp=1, asset="USDC", amount=1)))


def test_a_kyc_market_beside_an_open_one(tmp_path: Path) -> None:
    """ETH-USDC needs KYC level 2 outside the US; BTC-USDC stays open to all."""
    v = Venue(tmp_path)
    assert v.refused(v.order(ALICE, "ETH-USDC")) == "COMPLIANCE"
    assert read.accepted(v.order(ALICE, "BTC-USDC"))
    v.update("kyc", version=1, set=[
        {"address": hex_address(ALICE), "level": 2, "jurisdiction": "gb"},
        {"address": hex_address(BOB), "level": 1, "jurisdiction": "GB"},
    ])  # fmt: skip
    assert read.accepted(v.order(ALICE, "ETH-USDC"))
    low = v.engine.submit(C.PlaceOrder(actor=C.Actor(BOB), timestamp=1, market="ETH-USDC", side=1, price=300_000,
                                       size=10))  # fmt: skip
    assert isinstance(low[0], E.Rejected) and "needs KYC level 2" in low[0].message
    v.update("kyc", version=2, set=[{"address": hex_address(BOB), "level": 3, "jurisdiction": "US"}])
    closed = v.engine.submit(C.PlaceOrder(actor=C.Actor(BOB), timestamp=1, market="ETH-USDC", side=1,
                                          price=300_000, size=10))  # fmt: skip
    assert isinstance(closed[0], E.Rejected) and "closed to US" in closed[0].message
    removed = v.update("kyc", version=3, remove=[hex_address(ALICE)])
    assert [c.address for c in read.of(removed, E.OrderCancelled)] == [ALICE, ALICE]  # both markets' orders


@pytest.mark.parametrize(
    ("policy", "payload", "needle"),
    [
        ("sanctions", {"version": 0, "add": []}, "higher one"),
        ("sanctions", {"version": 1, "add": ["0x12"]}, "40 hex digits"),
        ("sanctions", {"version": 1, "ad": []}, "unknown key"),
        ("kyc", {"version": 1, "set": [{"address": "0x" + "ab" * 20, "level": 0, "jurisdiction": "GB"}]}, "level"),
        ("kyc", {"version": 1, "set": [{"address": "0x" + "ab" * 20, "level": 1}]}, "a table of"),
    ],
)
def test_bad_updates_change_nothing(tmp_path: Path, policy: str, payload: dict[str, object], needle: str) -> None:
    """A malformed update or a non-increasing version is refused, state unchanged."""
    v = Venue(tmp_path)
    before = v.engine.state_hash()
    events = v.update(policy, **payload)
    assert v.refused(events) == "BAD_UPDATE" and needle in events[0].message  # type: ignore[attr-defined]
    assert v.engine.state_hash() == before


def test_only_admins_update_lists_of_enabled_policies(tmp_path: Path) -> None:
    """A non-admin update is refused; so is one for a policy no market uses."""
    v = Venue(tmp_path)
    stranger = C.ComplianceUpdate(actor=C.Actor(ALICE), timestamp=1, policy="sanctions", payload={"version": 1})
    assert v.refused(v.submit(stranger)) == "NOT_ADMIN"
    assert v.refused(v.update("permissionless", version=1)) == "UNKNOWN_POLICY"


def test_lists_are_state_and_replay_alike(tmp_path: Path) -> None:
    """Updates change the hash; dump/load gives the same hash and the loaded engine decides the same."""
    v = Venue(tmp_path)
    before = v.engine.state_hash()
    v.update("sanctions", version=7, add=[hex_address(BOB)])
    assert v.engine.state_hash() != before
    copy = Engine.from_manifest(manifest(tmp_path))
    copy.load_state(v.engine.dump_state())
    assert copy.state_hash() == v.engine.state_hash()
    refused = copy.submit(C.Withdraw(actor=C.Actor(BOB), timestamp=1, asset="USDC", amount=1))
    assert read.rejection(refused) == "COMPLIANCE"


class TestSanctionsState(StatefulPluginContract):
    """The sanctions list's dump/load contract."""

    @pytest.fixture
    def stateful_factory(self) -> type[SanctionsList]:
        """A fresh list."""
        return SanctionsList

    @pytest.fixture
    def stateful(self) -> SanctionsList:
        """A list with two entries."""
        listed = SanctionsList()
        listed.update({"version": 3, "add": ["0x" + "ab" * 20, "0x" + "CD" * 20]})
        return listed


class TestKycState(StatefulPluginContract):
    """The KYC registry's dump/load contract."""

    @pytest.fixture
    def stateful_factory(self) -> type[KycRegistry]:
        """A fresh registry."""
        return KycRegistry

    @pytest.fixture
    def stateful(self) -> KycRegistry:
        """A registry with one entry."""
        registry = KycRegistry()
        registry.update({"version": 1, "set": [{"address": "0x" + "ab" * 20, "level": 2, "jurisdiction": "de"}]})
        return registry
