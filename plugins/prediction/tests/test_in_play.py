"""In play: after kickoff an `in_play` market stays open and a marketable order waits out the taker delay."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from exos import commands as C
from exos import events as E
from exos.engine import Engine

ADMIN = bytes.fromhex("11" * 20)
MAKER, TAKER = b"\xa1" * 20, b"\xa2" * 20
KICKOFF, DELAY = 10_000, 3_000
UNIT = 1_000_000  # USDC units per share (lot 1, 6 decimals)
PER_TICK = 10_000  # tick 0.01 on one lot


class Venue:
    """One engine over the in-play manifest, with a clock."""

    def __init__(self, pm: ModuleType, tmp_path: Path) -> None:
        """A market in play from KICKOFF with a DELAY ms taker delay; a maker and a taker with 1,000 USDC each."""
        market = pm.market("FINAL", close_at=KICKOFF, in_play=True, taker_delay_ms=DELAY)
        self.path = pm.write_manifest(tmp_path, [market])
        self.engine = Engine.from_manifest(self.path)
        self.now = 1_000
        for who in (MAKER, TAKER):
            self.submit(
                C.Deposit(actor=C.Actor(who, signer=ADMIN), timestamp=self.now, asset="USDC", amount=1000 * UNIT)
            )

    def submit(self, command: C.Command) -> list[E.Event]:
        """Apply a command, check every invariant, return its events."""
        events = self.engine.submit(command)
        self.engine.check_invariants()
        return events

    def at(self, when: int, command_type: Any, who: bytes, **fields: Any) -> list[E.Event]:
        """A command by `who` at time `when`."""
        self.now = when
        return self.submit(command_type(actor=C.Actor(who), timestamp=when, **fields))

    def usdc(self, who: bytes) -> tuple[int, int]:
        """(available, locked) USDC."""
        return self.engine.balances(who)["USDC"]


def kinds(events: list[E.Event]) -> list[str]:
    """Event class names, for compact assertions."""
    return [type(e).__name__ for e in events]


def test_before_kickoff_orders_match_at_once(pm: ModuleType, tmp_path: Path) -> None:
    """No delay before kickoff: a crossing order fills in its own command."""
    v = Venue(pm, tmp_path)
    v.at(2_001, C.MarketAction, MAKER, market="FINAL", action="split", args={"size": 5})
    v.at(2_002, C.PlaceOrder, MAKER, market="FINAL", side=1, price=60, size=5)
    events = v.at(2_003, C.PlaceOrder, TAKER, market="FINAL", side=0, price=60, size=5)
    assert "Fill" in kinds(events) and "OrderDelayed" not in kinds(events)


def test_in_play_a_marketable_order_waits_then_matches_the_book_as_it_is_then(pm: ModuleType, tmp_path: Path) -> None:
    """After kickoff a crossing buy is held (funds locked) for the delay; the maker can still cancel meanwhile."""
    v = Venue(pm, tmp_path)
    v.at(2_000, C.MarketAction, MAKER, market="FINAL", action="split", args={"size": 10})
    v.at(2_001, C.PlaceOrder, MAKER, market="FINAL", side=1, price=60, size=5)
    ask2 = v.at(2_002, C.PlaceOrder, MAKER, market="FINAL", side=1, price=70, size=5)
    ask2_id = next(e.order_id for e in ask2 if isinstance(e, E.OrderAccepted))
    v.at(KICKOFF, C.Tick, ADMIN)  # in play from here
    assert v.engine.market_state("FINAL").status == C.Status.OPEN

    held = v.at(KICKOFF + 10, C.PlaceOrder, TAKER, market="FINAL", side=0, price=70, size=5)
    delayed = [e for e in held if isinstance(e, E.OrderDelayed)]
    assert len(delayed) == 1 and delayed[0].release_at == KICKOFF + 10 + DELAY
    assert "Fill" not in kinds(held)
    assert v.usdc(TAKER) == (1000 * UNIT - 5 * 70 * PER_TICK, 5 * 70 * PER_TICK)

    # the maker sees the goal and pulls the cheaper ask before the taker's order is released
    first = v.engine.open_orders(MAKER, 0, "FINAL")[0][1]
    v.at(KICKOFF + 20, C.CancelOrder, MAKER, market="FINAL", order_id=first.order_id)
    released = v.at(KICKOFF + 10 + DELAY, C.Tick, ADMIN)
    fills = [e for e in released if isinstance(e, E.Fill)]
    assert [(f.order_id, f.price, f.size, f.maker) for f in fills] == [
        (delayed[0].order_id, 70, 5, False),
        (ask2_id, 70, 5, True),
    ]
    assert all(f.cause == E.Cause.SYSTEM for f in fills)
    assert v.usdc(TAKER) == (1000 * UNIT - 5 * 70 * PER_TICK, 0)


def test_a_post_only_or_resting_order_is_not_delayed(pm: ModuleType, tmp_path: Path) -> None:
    """Only orders that would trade wait: one that rests enters the book at once."""
    v = Venue(pm, tmp_path)
    v.at(KICKOFF, C.Tick, ADMIN)
    events = v.at(KICKOFF + 1, C.PlaceOrder, TAKER, market="FINAL", side=0, price=40, size=3)
    assert kinds(events)[:2] == ["OrderAccepted", "BookDelta"]


def test_a_delayed_order_can_be_cancelled_and_its_funds_return(pm: ModuleType, tmp_path: Path) -> None:
    """Cancel by id reaches an order that waits; its release then does nothing."""
    v = Venue(pm, tmp_path)
    v.at(2_001, C.PlaceOrder, MAKER, market="FINAL", side=0, price=55, size=5)  # a YES bid at 55
    v.at(KICKOFF, C.Tick, ADMIN)
    held = v.at(KICKOFF + 1, C.PlaceOrder, TAKER, market="FINAL", side=0, price=45, size=5, outcome=1)  # NO buy: mint
    order_id = next(e.order_id for e in held if isinstance(e, E.OrderDelayed))
    cancelled = v.at(KICKOFF + 2, C.CancelOrder, TAKER, market="FINAL", order_id=order_id)
    assert [(e.order_id, e.reason) for e in cancelled if isinstance(e, E.OrderCancelled)] == [(order_id, "user")]
    assert v.usdc(TAKER) == (1000 * UNIT, 0)
    assert "Fill" not in kinds(v.at(KICKOFF + 1 + DELAY, C.Tick, ADMIN))


def test_closing_the_market_cancels_waiting_orders_and_state_round_trips(pm: ModuleType, tmp_path: Path) -> None:
    """A held order is in the state (dump/load equal) and the admin's close releases its lock."""
    v = Venue(pm, tmp_path)
    v.at(2_000, C.MarketAction, MAKER, market="FINAL", action="split", args={"size": 5})
    v.at(2_001, C.PlaceOrder, MAKER, market="FINAL", side=0, price=50, size=5)  # YES bid
    v.at(KICKOFF, C.Tick, ADMIN)
    v.at(KICKOFF + 1, C.PlaceOrder, MAKER, market="FINAL", side=1, price=50, size=2, stp=1)
    state = v.engine.dump_state()
    again = Engine.from_manifest(v.path)
    again.load_state(state)
    assert again.dump_state() == state
    closed = v.at(KICKOFF + 5, C.MarketAction, ADMIN, market="FINAL", action="close", args={})
    assert any(isinstance(e, E.OrderCancelled) and e.reason == "market_status" for e in closed)
    assert v.engine.balances(MAKER)["FINAL-Y"] == (5 * UNIT, 0)


def test_a_delayed_order_answers_to_its_client_id(pm: ModuleType, tmp_path: Path) -> None:
    """Cancel by client id reaches a waiting order, and its client id stays taken while it waits."""
    v = Venue(pm, tmp_path)
    v.at(2_000, C.MarketAction, MAKER, market="FINAL", action="split", args={"size": 5})
    v.at(2_001, C.PlaceOrder, MAKER, market="FINAL", side=1, price=55, size=5)
    v.at(KICKOFF, C.Tick, ADMIN)
    cid = b"c" * 16
    held = v.at(KICKOFF + 1, C.PlaceOrder, TAKER, market="FINAL", side=0, price=55, size=2, client_id=cid)
    assert any(isinstance(e, E.OrderDelayed) for e in held)
    before = v.engine.state_hash()
    again = v.engine.submit(C.PlaceOrder(actor=C.Actor(TAKER), timestamp=KICKOFF + 1, market="FINAL", side=0,
                                         price=55, size=1, client_id=cid))  # fmt: skip
    assert isinstance(again[0], E.Rejected) and again[0].code == "DUPLICATE_CLIENT_ID"
    assert v.engine.state_hash() == before
    cancelled = v.at(KICKOFF + 2, C.CancelByClientId, TAKER, market="FINAL", client_id=cid)
    assert [e.reason for e in cancelled if isinstance(e, E.OrderCancelled)] == ["user"]
    assert v.usdc(TAKER) == (1000 * UNIT, 0)
