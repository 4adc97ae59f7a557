"""The two views of one book, a scheduled opening, the margin requirement and listing refusals."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from exos import commands as C
from exos import events as E
from exos.engine import Engine
from exos.types import Level

ADMIN = bytes.fromhex("11" * 20)
ALICE = b"\xa1" * 20
UNIT = 1_000_000
PER_TICK = 10_000
OPEN_AT = 5_000


@pytest.fixture
def engine(pm: ModuleType, tmp_path: Path) -> Engine:
    """RAIN (2% taker fees) and SNOW (scheduled to open at OPEN_AT), with Alice funded (1,000 USDC) at t = 1."""
    rain = pm.market("RAIN", taker_bps="200")
    snow = pm.market("SNOW", open_at=OPEN_AT)
    engine = Engine.from_manifest(pm.write_manifest(tmp_path, [rain, snow]))
    engine.submit(C.Deposit(actor=C.Actor(ALICE, signer=ADMIN), timestamp=1, asset="USDC", amount=1000 * UNIT))
    return engine


def place(engine: Engine, t: int, market: str, side: int, price: int, size: int, outcome: int) -> list[E.Event]:
    """Alice places a GTC order."""
    return engine.submit(
        C.PlaceOrder(actor=C.Actor(ALICE), timestamp=t, market=market, side=side, price=price, size=size,
                     outcome=outcome)
    )  # fmt: skip


def test_the_no_view_inverts_the_yes_book(engine: Engine) -> None:
    """A YES bid at p is a NO ask at 100 - p; a NO bid at q is a YES ask at 100 - q."""
    place(engine, 2, "RAIN", 0, 30, 4, 0)
    place(engine, 2, "RAIN", 0, 20, 7, 1)
    place(engine, 2, "RAIN", 1, 85, 2, 1)  # a NO sell needs NO shares: refused, nothing rests
    assert engine.depth("RAIN") == ([Level(30, 4, 1)], [Level(80, 7, 1)])
    assert engine.depth("RAIN", outcome=1) == ([Level(20, 7, 1)], [Level(70, 4, 1)])
    with pytest.raises(ValueError, match=r"outcomes 0\.\.1"):
        engine.depth("RAIN", outcome=2)


def test_buys_lock_payment_and_the_most_fee_and_margin_reports_it(engine: Engine) -> None:
    """YES buy 4 @ 0.30 and NO buy 7 @ 0.20 with a 2% taker rate: payment plus rate × p(1 - p) per share, rounded up."""
    place(engine, 2, "RAIN", 0, 30, 4, 0)
    place(engine, 2, "RAIN", 0, 20, 7, 1)
    fee_yes = -(-200 * 100 * 30 * 70 * PER_TICK // (1_000_000 * 100))  # centibps × p(n-p) × per-tick / (SCALE × n)
    fee_no = -(-200 * 100 * 20 * 80 * PER_TICK // (1_000_000 * 100))
    locked = 4 * (30 * PER_TICK + fee_yes) + 7 * (20 * PER_TICK + fee_no)
    assert engine.balances(ALICE)["USDC"] == (1000 * UNIT - locked, locked)
    assert engine.margin_requirement(ALICE) == {"USDC": locked}


def test_a_scheduled_market_opens_at_its_time(engine: Engine) -> None:
    """Before open_at the market is halted (orders refused); the opening timer opens it."""
    assert engine.market_state("SNOW").status == C.Status.HALTED
    refused = place(engine, 2, "SNOW", 0, 30, 1, 0)
    assert isinstance(refused[0], E.Rejected) and refused[0].code == "MARKET_STATUS"
    events = place(engine, OPEN_AT, "SNOW", 0, 30, 1, 0)
    assert [type(e).__name__ for e in events][:2] == ["MarketStatusChanged", "MarketEvent"]
    assert isinstance(events[2], E.OrderAccepted)


def test_listing_refusals_change_nothing(engine: Engine) -> None:
    """A prediction listing with a bad tick, a taken symbol or an unknown resolution source is refused whole."""
    before = engine.state_hash()
    base = {"type": "prediction", "base": "USDC", "quote": "USDC", "lot_size": "1", "tick_size": "0.01",
            "fee_model": "probability",
            "params": {"committee": ["0x" + ADMIN.hex()]}}  # fmt: skip
    for spec, needle in (
        ({**base, "name": "A", "tick_size": "0.03"}, "tick_size must divide one unit"),
        ({**base, "name": "RAIN2", "params": {**base["params"], "symbol": "RAIN"}}, "listed already"),
        ({**base, "name": "B", "params": {**base["params"], "resolution": "oracle"}}, "resolution source"),
        ({**base, "name": "C", "quote": "USDC", "base": "USDC", "params": {}}, "committee"),
    ):
        events = engine.submit(C.ListMarket(actor=C.Actor(ADMIN), timestamp=1, spec=spec))  # the clock stays
        assert isinstance(events[0], E.Rejected) and events[0].code == "BAD_LISTING", events
        assert needle in events[0].message
    assert engine.state_hash() == before


def test_flow_lines_name_the_outcome_and_market_actions(engine: Engine) -> None:
    """`exos run` flows: a NO order at a NO price in human decimals, and a split as an action."""
    from exos.flow import FlowError, FlowReader

    reader = FlowReader({spec.name: spec for spec in engine.manifest.markets}, {"USDC": 6})
    who = "0x" + ALICE.hex()
    order = reader.command({"type": "place", "address": who, "timestamp": 2, "market": "RAIN", "side": "buy",
                            "price": "0.38", "size": "4", "outcome": "no"})  # fmt: skip
    assert isinstance(order, C.PlaceOrder) and (order.side, order.price, order.size, order.outcome) == (0, 38, 4, 1)
    split = reader.command({"type": "action", "address": who, "timestamp": 2, "market": "RAIN", "action": "split",
                            "args": {"size": 3}})  # fmt: skip
    assert isinstance(split, C.MarketAction) and (split.action, split.args) == ("split", {"size": 3})
    with pytest.raises(FlowError, match="outcome"):
        reader.command({"type": "place", "address": who, "timestamp": 2, "market": "RAIN", "side": "buy",
                        "price": "0.38", "size": "4", "outcome": "maybe"})  # fmt: skip
    events = engine.submit(order)
    assert isinstance(events[0], E.OrderAccepted) and (events[0].price, events[0].outcome) == (38, 1)
