"""The liquidation waterfall, computed by hand: book, backstop up to its cap, insurance fund, then ADL."""

from __future__ import annotations

import json

from exos_perps.testing import BACKSTOP, INSURANCE, Venue, who

A, C, D, E = who(0xA), who(0xC), who(0xD), who(0xE)


def _opened(venue: Venue) -> None:
    """A long 100 X-PERP at 100 on 1,000 USD (10x), C the short side, D bidding 10 at 92; mark 100."""
    venue.deposit(A, "USD", 1_000)
    venue.deposit(C, "USD", 100_000)
    venue.deposit(D, "USD", 100_000)
    venue.deposit(BACKSTOP, "USD", 2_000)
    venue.deposit(INSURANCE, "USD", 150)
    venue.oracle(100)
    venue.order(A, "X-PERP", 0, 100, 100)
    assert venue.accepted(), venue.rejection()
    assert venue.free(A) == 0  # 10% of 10,000 reserved: exactly the 1,000 it has
    venue.order(C, "X-PERP", 1, 100, 100)
    assert [f.size for f in venue.fills()] == [100, 100]
    venue.order(D, "X-PERP", 0, 92, 10)
    assert venue.position(A) == [100, 10_000, 0]
    assert venue.position(C) == [-100, -10_000, 0]


class TestWaterfall:
    """A's equity goes negative in one oracle update; every stage takes its share at hand-computed prices."""

    def test_every_stage_in_order_with_exact_balances(self, venue: Venue) -> None:
        """Book 10 at 92; backstop 47 at 90 (its 4,000 cap); insurance 15 at 90 (its equity); ADL 28 at 90."""
        _opened(venue)
        venue.oracle(85)
        # A: cash 1,000, uPnL 100 × 85 − 10,000 = −1,500: equity −500, below zero: bankruptcy price 85 + 500/100 = 90
        names = [e.name for e in venue.market_events()]
        assert names == [
            "exos.liquidation.started", "exos.liquidation.book", "exos.liquidation.backstop",
            "exos.liquidation.insurance", "exos.liquidation.adl",
        ]  # fmt: skip
        details = [json.loads(e.detail) for e in venue.market_events()]
        assert details[1]["limit"] == "90" and details[1]["filled"] == "10"
        assert (details[2]["size"], details[2]["price"]) == ("47", "90")
        assert (details[3]["size"], details[3]["price"]) == ("15", "90")
        assert (details[4]["size"], details[4]["price"]) == ("28", "90")
        # book: D's bid takes 10 at 92: A realises 10 × 92 − 1,000 = −80
        assert venue.position(D) == [10, 920, 0]
        # backstop: 4,000 // 85 = 47 lots within its cap; A realises 47 × 90 − 4,700 = −470
        assert venue.position(BACKSTOP) == [47, 4_230, 0]
        assert venue.cash(BACKSTOP) == 2_000
        # insurance: its equity 150 covers 15 lots losing 5 each and needing 5 each of maintenance
        assert venue.position(INSURANCE) == [15, 1_350, 0]
        assert venue.cash(INSURANCE) == 150
        # ADL: C (the only short) buys back 28 at 90: realises −28 × 90 + 2,800 = +280
        assert venue.position(C) == [-72, -7_200, 0]
        assert venue.cash(C) == 100_280
        # A ends flat with 1,000 − 80 − 470 − 150 − 280 = 20
        assert venue.position(A) is None
        assert venue.cash(A) == 20
        pool = venue.engine.market_state("X-PERP").market.pool
        assert venue.engine.ledger.available[0][pool] == -(920 + 4_230 + 1_350 - 7_200)

    def test_healthy_after_the_book_keeps_the_rest(self, venue: Venue) -> None:
        """When the book alone brings A back above maintenance, the waterfall stops and A keeps its position."""
        _opened(venue)
        venue.order(D, "X-PERP", 0, 91, 60)
        venue.oracle(94)
        # equity 1,000 − 600 = 400 < maintenance 470: bankruptcy 94 − 4 = 90; the book takes 10 at 92, 60 at 91
        names = [e.name for e in venue.market_events()]
        assert names == ["exos.liquidation.started", "exos.liquidation.book"]
        assert venue.position(A) == [30, 3_000, 0]
        assert venue.cash(A) == 1_000 + (10 * 92 - 1_000) + (60 * 91 - 6_000)
        equity, mm = venue.maintenance(A)
        assert equity >= mm
        assert venue.position(BACKSTOP) is None


class TestUnwind:
    """An admin gives the backstop's and the insurance fund's inventory back to the market: an IOC, no fee."""

    def test_the_backstop_sells_into_a_bid_and_the_rest_is_cancelled(self, venue: Venue) -> None:
        """After the waterfall the backstop is long 47 at 90 (mark 85); E bids 20 at 86: unwinding 30 at a limit
        of 84 sells 20 at 86, realising 20 × 86 − 1,800 = −80, and the other 10 do not rest."""
        _opened(venue)
        venue.oracle(85)
        venue.deposit(E, "USD", 100_000)
        venue.order(E, "X-PERP", 0, 86, 20)
        venue.action(venue.admin, "X-PERP", "unwind", holder="backstop", lots=30, price=84)
        assert venue.accepted(), venue.rejection()
        assert [(f.size, f.price, f.fee) for f in venue.fills()] == [(20, 86, 0), (20, 86, 0)]
        [event] = venue.market_events("exos.perps.unwind")
        assert json.loads(event.detail) == {"holder": "backstop", "lots": "30", "price": "84", "filled": "20"}
        assert venue.position(BACKSTOP) == [27, 2_430, 0]
        assert venue.cash(BACKSTOP) == 2_000 - 80
        assert venue.position(E) == [20, 1_720, 0]
        assert venue.engine.open_orders(BACKSTOP) == []

    def test_refusals_change_nothing(self, venue: Venue) -> None:
        """Not an admin, an unknown holder, bad numbers, a price outside the band, a holder without a position, and
        a limit whose worst case would take the holder's equity below zero: refused, the state hash as it was."""
        _opened(venue)
        venue.oracle(85)
        venue.step = 0
        before = venue.engine.state_hash()
        for address, args, code in [
            (C, {"holder": "backstop", "lots": 1, "price": 85}, "NOT_ADMIN"),
            (venue.admin, {"holder": "fees", "lots": 1, "price": 85}, "BAD_ACTION"),
            (venue.admin, {"holder": "backstop", "lots": 0, "price": 85}, "BAD_ACTION"),
            (venue.admin, {"holder": "backstop", "lots": 1, "price": True}, "BAD_ACTION"),
            (venue.admin, {"holder": "backstop", "lots": 1, "price": 70}, "PRICE_BAND"),
            (venue.admin, {"holder": "insurance", "lots": 15, "price": 77}, "INSUFFICIENT_MARGIN"),
            (venue.admin, {"holder": "backstop", "lots": 1, "price": 85, "market": "Y-PERP"}, "NO_POSITION"),
        ]:
            venue.action(address, str(args.pop("market", "X-PERP")), "unwind", **args)
            assert venue.rejection() == code, (args, venue.rejection())
            assert venue.engine.state_hash() == before
        venue.step = 1
        venue.action(venue.admin, "X-PERP", "unwind", holder="insurance", lots=15, price=85)  # no bid: nothing fills
        assert venue.accepted(), venue.rejection()
        assert json.loads(venue.market_events("exos.perps.unwind")[0].detail)["filled"] == "0"
        assert venue.position(INSURANCE) == [15, 1_350, 0]
