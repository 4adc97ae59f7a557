"""Perpetuals' scenarios: oracle faults, bands, withdrawals, open interest, funding, margin modes, collateral."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exos.commands import Actor, AmendOrder, CancelAll, OracleUpdate
from exos.engine import Engine
from exos.events import OrderAccepted
from exos.manifest import Manifest
from exos_perps.testing import INSURANCE, PUBLISHER, Venue, who

A, B, C, D = who(0xA), who(0xB), who(0xC), who(0xD)


def _pair(venue: Venue, market: str = "X-PERP", size: int = 100, price: int = 100, funds: int = 10_000,
          short_funds: int = 1_000_000) -> None:  # fmt: skip
    """A long `size` at `price` on `funds`; B (well funded) the short side."""
    venue.deposit(A, "USD", funds)
    venue.deposit(B, "USD", short_funds)
    venue.order(A, market, 0, price, size)
    assert venue.accepted(), venue.rejection()
    venue.order(B, market, 1, price, size)
    assert venue.accepted(), venue.rejection()
    assert venue.position(A, market) == [size, size * price, 0]


class TestOracleFaults:
    """A market trades only on a live oracle; reduce-only orders and cancels always go through."""

    def test_never_published_blocks_every_order(self, venue: Venue) -> None:
        """Before its oracle's first price a perp takes no order that adds risk, and there is nothing to reduce."""
        venue.deposit(A, "USD", 10_000)
        before, venue.step = venue.engine.state_hash(), 0
        venue.order(A, "X-PERP", 0, 100, 1)
        assert venue.rejection() == "NO_ORACLE"
        venue.order(A, "X-PERP", 1, 100, 1, reduce_only=True)
        assert venue.rejection() == "REDUCE_ONLY"
        assert venue.engine.state_hash() == before

    def test_stale_oracle_blocks_risk_but_not_reduce_only_or_cancels(self, venue: Venue) -> None:
        """Past max_age the feed is stale: new risk is refused, reduce-only and cancels are taken."""
        venue.oracle(100, feed="Y-USD")
        _pair(venue, "Y-PERP", size=10)
        venue.order(A, "Y-PERP", 0, 95, 5)
        resting = next(e for e in venue.events if type(e).__name__ == "OrderAccepted").order_id
        venue.wait(venue.now + 61_000)  # the only source is older than 60 s: the timer reports the feed stale
        assert venue.engine.oracle_price("Y-USD") is None
        venue.order(A, "Y-PERP", 0, 100, 1)
        assert venue.rejection() == "ORACLE_STALE"
        venue.cancel(A, "Y-PERP", resting)
        assert venue.accepted()
        venue.order(B, "Y-PERP", 0, 100, 3, reduce_only=True)
        assert venue.accepted(), venue.rejection()
        venue.order(A, "Y-PERP", 1, 100, 3, reduce_only=True)
        assert venue.accepted()
        assert venue.position(A, "Y-PERP") == [7, 700, 0]

    def test_zero_negative_and_non_integer_prices_are_refused(self, venue: Venue) -> None:
        """A price that is not a positive integer changes nothing."""
        venue.oracle(100)
        before, venue.step = venue.engine.state_hash(), 0
        for price in (0, -5):
            venue.oracle(price)
            assert venue.rejection() == "ORACLE"
        assert venue.engine.state_hash() == before


class TestBands:
    """Orders are banded around mark, and the mark around the oracle: a thin book cannot drag it away."""

    def test_limit_orders_outside_the_band_are_refused(self, venue: Venue) -> None:
        """Z-PERP's band is 5%: 94 and 106 around a mark of 100 are refused, 95 and 105 taken."""
        venue.deposit(A, "USD", 100_000)
        venue.oracle(100)
        for price, code in ((94, "PRICE_BAND"), (106, "PRICE_BAND"), (95, None), (105, None)):
            venue.order(A, "Z-PERP", 0 if price < 100 else 1, price, 1)
            assert venue.rejection() == code, price

    def test_pumping_a_thin_book_cannot_move_mark_beyond_the_band(self, venue: Venue) -> None:
        """Two accounts walk the book up at the order band's edge, oracle flat: the mark stops at oracle + 10%."""
        venue.deposit(A, "USD", 10**9)
        venue.deposit(B, "USD", 10**9)
        venue.oracle(100)
        market = venue.engine.market_state("Z-PERP").market
        for _ in range(12):
            for who_ in (A, B):
                venue.submit(CancelAll(actor=Actor(who_), timestamp=venue.tick(), market="Z-PERP"))
            top = market.mark * 105 // 100  # the highest price the order band allows
            venue.order(B, "Z-PERP", 1, top, 2)
            venue.order(A, "Z-PERP", 0, top, 1)  # a print at the top; one lot stays offered there
            venue.order(A, "Z-PERP", 0, top - 1, 1)
            venue.tick(150_000)  # long enough for the basis EMA to follow the book
            venue.oracle(100)
            assert market.mark <= 110
        assert market.mark == 110  # without the clamp the book would have taken it far higher


class TestWithdrawals:
    """Withdrawals keep max(initial margin, 10% of notional); unrealised gains are not withdrawable."""

    def test_unrealised_gains_are_not_withdrawable(self, venue: Venue) -> None:
        """A long up 2,000 cannot take out its cash; once it realises the gain, it can."""
        venue.oracle(100)
        _pair(venue, size=100, funds=1_000)
        venue.deposit(C, "USD", 100_000)
        venue.oracle(120)
        assert venue.equity(A) == 3_000
        before, venue.step = venue.engine.state_hash(), 0
        venue.withdraw(A, "USD", 1_000)
        assert venue.rejection() == "INSUFFICIENT_MARGIN"
        assert venue.engine.state_hash() == before
        venue.step = 1
        venue.order(C, "X-PERP", 0, 120, 100)
        venue.order(A, "X-PERP", 1, 120, 100, reduce_only=True)
        assert venue.position(A) is None
        venue.withdraw(A, "USD", 3_000)
        assert venue.accepted(), venue.rejection()

    def test_the_floor_is_ten_percent_of_notional(self, venue: Venue) -> None:
        """At 20x (5% initial margin) the floor binds: 10% of a 10,000 notional must stay."""
        venue.oracle(100)
        _pair(venue, "Z-PERP", size=100, funds=5_000)
        venue.withdraw(A, "USD", 4_001)
        assert venue.rejection() == "INSUFFICIENT_MARGIN"
        venue.withdraw(A, "USD", 4_000)
        assert venue.accepted(), venue.rejection()


class TestOpenInterest:
    """Initial margin rises with open interest toward 100% at the cap, and the cap refuses new risk."""

    def test_ramp_and_cap(self, venue: Venue) -> None:
        """Y-PERP: 5x (20%) below 500 lots of OI, 60% at 750, and no order past 1,000."""
        venue.oracle(100, feed="Y-USD")
        _pair(venue, "Y-PERP", size=500, funds=100_000)
        market = venue.engine.market_state("Y-PERP").market
        assert market.initial_margin(50_000, 5) == 10_000
        venue.deposit(C, "USD", 100_000)
        venue.deposit(D, "USD", 100_000)
        venue.order(C, "Y-PERP", 0, 100, 250)
        venue.order(D, "Y-PERP", 1, 100, 250)
        assert market.long_oi == 750
        assert market.initial_margin(50_000, 5) == 10_000 + (40_000 * 250) // 500
        before, venue.step = venue.engine.state_hash(), 0
        venue.order(C, "Y-PERP", 0, 100, 251)
        assert venue.rejection() == "OI_CAP"
        assert venue.engine.state_hash() == before
        venue.step = 1
        venue.order(C, "Y-PERP", 1, 100, 100, reduce_only=True)  # reducing is always allowed
        assert venue.accepted()


class TestFunding:
    """Funding samples the premium on a timer and pays once per interval, at most one interval after a gap."""

    def _book(self, venue: Venue) -> None:
        """A long 100, B short 100 at 100; C quotes 101 / 102 so the premium is (101 - 100) / 100 = 1%."""
        venue.oracle(100)
        _pair(venue, size=100, funds=100_000)
        venue.deposit(C, "USD", 100_000)
        venue.order(C, "X-PERP", 0, 101, 1)
        venue.order(C, "X-PERP", 1, 102, 1)
        venue.oracle(100)

    def test_one_interval(self, venue: Venue) -> None:
        """rate = 1% + clamp(0.00125% − 1%, ±0.05%) = 0.95%: the long pays 100 × 100 × 0.95% = 95 to the short."""
        self._book(venue)
        cash_a, cash_b = venue.cash(A), venue.cash(B)
        venue.wait(3_600_000)
        funding = [json.loads(e.detail) for e in venue.market_events("exos.perps.funding")
                   if e.name.endswith("funding")]  # fmt: skip
        assert funding and funding[0]["rate_ppb"] == str(9_500_000)
        assert venue.cash(A) == cash_a - 95
        assert venue.cash(B) == cash_b + 95

    def test_a_long_gap_pays_one_interval(self, venue: Venue) -> None:
        """A day without commands, then one: the funding timer fires once and pays one interval, not 24."""
        self._book(venue)
        cash_a = venue.cash(A)
        venue.wait(24 * 3_600_000 + 5)
        assert venue.cash(A) == cash_a - 95
        payments = venue.market_events("exos.perps.funding_payment")
        assert len(payments) == 2  # A and B, once
        venue.wait(25 * 3_600_000 + 5)  # the next interval pays again, from the new samples
        assert venue.cash(A) == cash_a - 2 * 95


class TestMarginModes:
    """Leverage changes on open positions; isolated positions carry their own margin."""

    def test_leverage_up_is_free_and_down_needs_margin(self, venue: Venue) -> None:
        """At 10x the position needs 1,000; lowering to 2x needs 5,000, more than the 2,000 A has."""
        venue.oracle(100)
        _pair(venue, size=100, funds=2_000)
        venue.action(A, "X-PERP", "leverage", leverage=2)
        assert venue.rejection() == "INSUFFICIENT_MARGIN"
        venue.action(A, "X-PERP", "leverage", leverage=5)
        assert venue.accepted()
        assert venue.free(A) == 0
        venue.action(A, "X-PERP", "leverage", leverage=1, isolated=True)
        assert venue.rejection() == "MARGIN_MODE"

    @staticmethod
    def _isolated_long(venue: Venue) -> None:
        """A long 100 X-PERP at 100, isolated at 10x (margin 1,000) out of 50,000 USD; B (100,000 USD) short."""
        venue.oracle(100)
        venue.deposit(A, "USD", 50_000)
        venue.deposit(B, "USD", 100_000)
        venue.action(A, "X-PERP", "leverage", leverage=10, isolated=True)
        venue.order(A, "X-PERP", 0, 100, 100)
        venue.order(B, "X-PERP", 1, 100, 100)
        assert venue.position(A) == [100, 10_000, 1_000]

    def test_isolated_liquidation_spares_the_cross_balance(self, venue: Venue) -> None:
        """An isolated long loses at most its margin; the account's other cash is untouched."""
        self._isolated_long(venue)
        assert venue.cash(A) == 49_000
        venue.action(A, "X-PERP", "margin", amount=-1)
        assert venue.rejection() == "INSUFFICIENT_MARGIN"
        venue.action(A, "X-PERP", "margin", amount=500)
        assert venue.position(A) == [100, 10_000, 1_500]
        venue.oracle(80)  # margin 1,500 + uPnL −2,000 < 0: bankrupt
        assert venue.position(A) is None
        assert venue.cash(A) == 48_500  # lost exactly its isolated margin
        assert [e.name for e in venue.market_events()][:1] == ["exos.liquidation.started"]

    def test_an_isolated_flip_returns_the_old_margin_and_funds_the_new_side(self, venue: Venue) -> None:
        """Long 100 isolated at 10x, then sell 150 at 101: its margin and PnL come back, the short is funded."""
        self._isolated_long(venue)
        venue.deposit(C, "USD", 100_000)
        venue.order(A, "X-PERP", 1, 101, 150)
        venue.order(C, "X-PERP", 0, 101, 150)
        assert venue.position(A) == [-50, -5_050, 505]  # margin ceil(50 × 101 / 10)
        assert venue.cash(A) == 50_000 + 100 - 505  # the long's 1,000 and its 100 of PnL back, the short's 505 out


class TestReduceOnly:
    """Reduce-only orders are clipped to the position and re-clipped when it shrinks."""

    def test_clipped_then_reclipped(self, venue: Venue) -> None:
        """A long 10 posts a reduce-only sell of 25 (clipped to 10); selling 6 elsewhere cuts it to 4."""
        venue.oracle(100)
        _pair(venue, size=10)
        venue.order(A, "X-PERP", 1, 105, 25, reduce_only=True)
        accepted = next(e for e in venue.events if type(e).__name__ == "OrderAccepted")
        assert accepted.size == 10
        venue.deposit(C, "USD", 10_000)
        venue.order(C, "X-PERP", 0, 99, 6)
        venue.order(A, "X-PERP", 1, 99, 6, reduce_only=True)
        assert venue.position(A) == [4, 400, 0]
        order = venue.engine.order("X-PERP", accepted.order_id)
        assert order is not None and order.remaining == 4
        venue.order(C, "X-PERP", 0, 99, 4)
        venue.order(A, "X-PERP", 1, 99, 4)
        assert venue.position(A) is None
        assert venue.engine.order("X-PERP", accepted.order_id) is None

    @pytest.mark.parametrize("side", [0, 1])
    def test_reduce_only_needs_a_position_to_reduce(self, venue: Venue, side: int) -> None:
        """Without a position, or on the side that would grow it, reduce-only is refused."""
        venue.oracle(100)
        _pair(venue, size=10)
        venue.deposit(C, "USD", 1_000)
        venue.order(C, "X-PERP", side, 100, 1, reduce_only=True)
        assert venue.rejection() == "REDUCE_ONLY"
        venue.order(A, "X-PERP", 0, 100, 1, reduce_only=True)
        assert venue.rejection() == "REDUCE_ONLY"


class TestPartialLiquidation:
    """A position above partial_notional is liquidated a fraction at a time, then whole during the cooldown."""

    def test_fraction_then_cooldown(self, venue: Venue) -> None:
        """Y-PERP: a 20,000 notional long under water closes 20% into the book; within 30 s, the rest."""
        venue.oracle(100, feed="Y-USD")
        venue.deposit(A, "USD", 4_000)
        venue.deposit(B, "USD", 1_000_000)
        venue.deposit(C, "USD", 1_000_000)
        venue.order(A, "Y-PERP", 0, 100, 200)
        venue.order(B, "Y-PERP", 1, 100, 200)
        venue.order(C, "Y-PERP", 0, 90, 500)
        venue.oracle(89, feed="Y-USD")  # equity 4,000 − 2,200 = 1,800 >= maintenance 10% of 17,800
        assert venue.position(A, "Y-PERP") == [200, 20_000, 0]
        venue.oracle(88, feed="Y-USD")  # 1,600 < 1,760: 20% (40 lots) closes into C's bid at 90
        assert [json.loads(e.detail)["size"] for e in venue.market_events("exos.liquidation.book")] == ["40"]
        assert venue.position(A, "Y-PERP") == [160, 16_000, 0]
        assert venue.maintenance(A) == (3_600 - 1_920, 1_408)
        venue.oracle(86, feed="Y-USD")  # 1,360 < 1,376 within the cooldown: the whole position closes
        assert [json.loads(e.detail)["size"] for e in venue.market_events("exos.liquidation.book")] == ["160"]
        assert venue.position(A, "Y-PERP") is None


class TestCollateral:
    """Unified margin: spot holdings back perp positions at min(oracle, stable) less their haircut."""

    def _borrowing(self, venue: Venue) -> None:
        """A holds only 100 X (worth 8,000 after a 20% haircut) and goes long 100 Y-PERP at 100 on it."""
        venue.oracle(100)
        venue.oracle(100, feed="Y-USD")
        venue.deposit(A, "X", 100)
        venue.deposit(B, "USD", 1_000_000)
        venue.order(A, "Y-PERP", 0, 100, 100)
        assert venue.accepted(), venue.rejection()
        assert venue.engine.balances(A)["USD"] == (-2_000, 2_000)  # the 5x reservation is a borrow within margin
        venue.order(B, "Y-PERP", 1, 100, 100)
        assert venue.position(A, "Y-PERP") == [100, 10_000, 0]
        assert venue.free(A) == 8_000 - 2_000

    def test_collateral_is_sold_through_its_spot_market(self, venue: Venue) -> None:
        """Under water and owing USD after the book stage, A sells X into C's bid until it is healthy."""
        self._borrowing(venue)
        venue.deposit(C, "USD", 100_000)
        venue.deposit(D, "USD", 100_000)
        venue.oracle(25, feed="Y-USD")
        venue.order(D, "Y-PERP", 0, 21, 10)
        venue.order(C, "X-USD", 0, 95, 100)
        venue.oracle(21, feed="Y-USD")  # equity 8,000 − 7,900 = 100 < maintenance 210
        names = [e.name for e in venue.market_events()]
        assert names == ["exos.liquidation.started", "exos.liquidation.book", "exos.liquidation.collateral"]
        sale = json.loads(venue.market_events("exos.liquidation.collateral")[0].detail)
        assert (sale["size"], sale["sold"], sale["limit"]) == ("11", "11", "81")  # a lot counts for 80: sold at >= 81
        assert venue.engine.balances(A)["USD"] == (-790 + 11 * 95, 0)
        assert venue.engine.balances(A)["X"] == (89, 0)
        assert venue.position(A, "Y-PERP") == [90, 9_000, 0]
        equity, mm = venue.maintenance(A)
        assert equity >= mm

    def test_a_debt_without_position_is_covered_by_the_insurance_fund(self, venue: Venue) -> None:
        """Collateral crashing through its haircut with no buyer leaves a deficit the insurance fund pays."""
        from exos_perps.testing import INSURANCE

        self._borrowing(venue)
        venue.deposit(INSURANCE, "USD", 10_000)
        venue.oracle(20, feed="Y-USD")  # 0 < 200: no bids; backstop has nothing; the insurance fund takes it at 20
        assert venue.position(A, "Y-PERP") is None
        usd, x = venue.cash(A), venue.cash(A, "X")
        assert (usd, x) == (-8_000, 100)
        venue.oracle(50)  # X halves: 100 X count for 4,000 against an 8,000 debt, and nobody bids for X
        names = [e.name for e in venue.market_events()]
        assert names[-1] == "exos.liquidation.insurance_cover"
        assert venue.equity(A) == 0
        assert venue.cash(INSURANCE) == 10_000 - 4_000  # it also holds the 100 Y-PERP it took at 20
        assert venue.position(INSURANCE, "Y-PERP") == [100, 2_000, 0]


class TestMarketStatus:
    """A perpetual set to reduce_only takes reduce-only orders and cancels, nothing else."""

    def test_reduce_only_status(self, venue: Venue) -> None:
        """The admin sets X-PERP to reduce_only: a new position is refused, closing one is not."""
        from exos.commands import SetMarketStatus

        venue.oracle(100)
        _pair(venue, size=10)
        venue.submit(SetMarketStatus(actor=Actor(venue.admin), timestamp=venue.tick(), market="X-PERP",
                                     status="reduce_only"))  # fmt: skip
        venue.order(A, "X-PERP", 0, 100, 1)
        assert venue.rejection() == "MARKET_STATUS"
        venue.order(B, "X-PERP", 0, 100, 4, reduce_only=True)
        assert venue.accepted(), venue.rejection()
        venue.order(A, "X-PERP", 1, 100, 4, reduce_only=True)
        assert venue.position(A) == [6, 600, 0]


class TestRestore:
    """A restored engine liquidates what the live one does, debt-only accounts included."""

    def test_a_debt_backed_by_collateral_survives_a_restore(self, venue: Venue) -> None:
        """A owes USD against X and holds no position; after a snapshot, an X crash covers it alike in both engines."""
        TestCollateral()._borrowing(venue)
        venue.deposit(INSURANCE, "USD", 10_000)
        venue.oracle(20, feed="Y-USD")
        assert venue.position(A, "Y-PERP") is None and venue.cash(A) < 0
        restored = Engine.from_manifest(venue.engine.manifest.source)
        restored.load_state(venue.engine.dump_state())
        crash = OracleUpdate(actor=Actor(PUBLISHER), timestamp=venue.tick(), feed="X-USD", price=50,
                             published_ms=venue.now)  # fmt: skip
        live = [getattr(e, "name", type(e).__name__) for e in venue.engine.submit(crash)]
        again = [getattr(e, "name", type(e).__name__) for e in restored.submit(crash)]
        assert "exos.liquidation.insurance_cover" in live
        assert again == live
        assert restored.state_hash() == venue.engine.state_hash()


class TestCollateralMarket:
    """Collateral sells through a spot market against its group's asset, never through a perpetual."""

    def test_a_perpetual_listed_first_is_not_the_collateral_market(self) -> None:
        """With X-PERP listed before the X-USD spot market, X's collateral still sells through X-USD."""
        text = (Path(__file__).parent / "unit.toml").read_text()
        spot_start = text.index('[[markets]]\nname = "X-USD"')
        spot_end = text.index("[[markets]]", spot_start + 1)
        spot = text[spot_start:spot_end]
        text = text[:spot_start] + text[spot_end:]
        at = text.index("[margin]")
        text = text[:at] + spot + text[at:]
        engine = Engine.from_parsed(Manifest.from_bytes(text.encode(), source="reordered.toml",
                                                        directory=Path(__file__).parent))  # fmt: skip
        (collateral,) = engine.margin.collateral
        assert engine.markets[collateral.spot].name == "X-USD"


class TestOutcomeSharesAsMargin:
    """Outcome shares count at their worst case toward a perp order's margin, valued only when the balance is short."""

    def test_pairs_back_an_order_and_are_valued_only_when_needed(self) -> None:
        """A splits all its 1,000 USD into RAIN pairs (worth 1,000 whatever happens) and still opens a perp position
        on them; B, whose balance covers its order, never has its shares valued; an order beyond A's pairs fails."""
        venue = Venue(Path(__file__).parent / "stateful.toml")
        for feed in ("X-USD", "Y-USD"):
            venue.oracle(100, feed=feed)
        venue.deposit(A, "USD", 1_000)
        venue.deposit(B, "USD", 100_000)
        venue.action(A, "RAIN", "split", size=10)
        assert venue.accepted(), venue.rejection()
        assert venue.cash(A) == 0 and venue.free(A) == 1_000
        source = venue.engine.margin.share_sources[0]
        valued: list[int] = []
        value = source.collateral_value

        def counting(account: int, asset: int, locked: bool) -> int:
            valued.append(account)
            return int(value(account, asset, locked))

        source.collateral_value = counting
        venue.order(B, "X-PERP", 1, 100, 50)
        assert venue.accepted(), venue.rejection()
        assert valued == []  # B's balance alone covers it
        venue.order(A, "X-PERP", 0, 100, 50)  # 10% of 5,000 plus the fee reserve: backed by the pairs
        assert venue.accepted(), venue.rejection()
        assert venue.account(A) in valued and venue.position(A) == [50, 5_000, 0]
        venue.step = 0
        before = venue.engine.state_hash()
        venue.order(A, "X-PERP", 0, 100, 500)
        assert venue.rejection() == "INSUFFICIENT_MARGIN" and venue.engine.state_hash() == before


class TestSpotOrdersUnderMargin:
    """A spot order that spends the settlement asset backing an account's positions is a risk-increasing order."""

    def test_a_spot_buy_must_leave_the_initial_margin_covered(self, venue: Venue) -> None:
        """A, long 100 X-PERP at 100 on 1,500 USD (IM 1,000 at 10x), has 500 free: a spot buy locking more than that
        is refused (state unchanged), one within it rests, and so does any buy of an account with no position."""
        venue.oracle(100)
        _pair(venue, funds=1_500)
        assert venue.free(A) == 500
        venue.step = 0
        before = venue.engine.state_hash()
        venue.order(A, "X-USD", 0, 100, 6)  # locks 600 USD
        assert venue.rejection() == "INSUFFICIENT_MARGIN" and venue.engine.state_hash() == before
        venue.step = 1
        venue.order(A, "X-USD", 0, 100, 4)
        assert venue.accepted(), venue.rejection()
        assert venue.free(A) == 100
        [accepted] = [e for e in venue.events if isinstance(e, OrderAccepted)]
        venue.step = 0
        before = venue.engine.state_hash()
        venue.submit(AmendOrder(actor=Actor(A), timestamp=venue.now, market="X-USD", order_id=accepted.order_id,
                                price=100, size=6))  # fmt: skip
        assert venue.rejection() == "INSUFFICIENT_MARGIN" and venue.engine.state_hash() == before
        venue.step = 1
        venue.deposit(D, "USD", 600)
        venue.order(D, "X-USD", 0, 100, 6)
        assert venue.accepted(), venue.rejection()
