"""SpotMarket.settle_fill and validate, hand-computed, through the real exos.ledger.Ledger."""

from __future__ import annotations

from types import MappingProxyType

import attrs
import pytest

from exos.ledger import Ledger
from exos.protocols import FillSide, MarketInfo, OrderRejection
from exos_spot import FlatFees, SpotMarket

USDC, BTC = 0, 1
BUY, SELL = 0, 1
LOT = 10_000  # satoshi per lot
FUNDS = 10**15
FEE_ADDRESS = b"\xfe" * 20


def _info(min_lots: int = 1, min_notional_units: int = 1_000_000, quote_per_tick_lot: int = 1) -> MarketInfo:
    """BTC-USDC as examples/spot.toml lists it (tick 0.01 USDC, lot 0.0001 BTC), with overridable minimums."""
    return MarketInfo(
        market_id=0,
        name="BTC-USDC",
        base_asset=BTC,
        quote_asset=USDC,
        lot_units=LOT,
        quote_per_tick_lot=quote_per_tick_lot,
        min_lots=min_lots,
        min_notional_units=min_notional_units,
        params=MappingProxyType({}),
    )


@attrs.define
class Venue:
    """A ledger with USDC and BTC, a fee account and two funded accounts, and one spot market over it."""

    market: SpotMarket
    ledger: Ledger
    alice: int
    bob: int

    @classmethod
    def create(cls, maker_centibps: int = 0, taker_centibps: int = 0) -> Venue:
        """A fresh venue whose market charges the given flat rates."""
        ledger = Ledger(FEE_ADDRESS)
        ledger.add_asset("USDC", 6)
        ledger.add_asset("BTC", 8)
        alice, bob = ledger.open_account(b"\xaa" * 20, 0), ledger.open_account(b"\xbb" * 20, 0)
        for account in (alice, bob):
            for asset in (USDC, BTC):
                ledger.deposit(account, asset, FUNDS)
        return cls(SpotMarket(_info(), FlatFees(maker_centibps, taker_centibps)), ledger, alice, bob)

    def order(self, account: int, side: int, limit: int, size: int) -> FillSide:
        """An order entering the book: its lock taken, its slots initialised."""
        asset, amount = self.market.lock_requirement(side, limit, size)
        assert self.ledger.lock(account, asset, amount)
        return FillSide(account, side, limit, [account, *self.market.initial_slots(side, limit, size), 0])

    def fill(self, taker: FillSide, maker: FillSide, size: int) -> tuple[int, int, int, int]:
        """Settle `size` lots at the maker's price, then check the ledger balances (spot fills are all normal)."""
        *result, kind = self.market.settle_fill(taker, maker, maker.limit_price, size, self.ledger)
        assert kind == 0
        self.ledger.check_invariants()
        return (result[0], result[1], result[2], result[3])

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, locked)."""
        return self.ledger.available[asset][account], self.ledger.locked[asset][account]

    def fees(self, asset: int) -> int:
        """What the fee account holds of an asset (negative: it paid out rebates)."""
        return self.ledger.available[asset][self.ledger.fee_account]


class TestPriceImprovement:
    """A fill happens at the maker's price; a buyer's lock at a higher limit comes back exactly."""

    def test_taker_buyer_gets_the_improvement_back(self) -> None:
        """A buy limit 66,000 filling a 65,000 ask pays 65,000 and gets the 1,000 x 40 lots unlocked."""
        v = Venue.create()
        maker = v.order(v.bob, SELL, 6_500_000, 40)
        taker = v.order(v.alice, BUY, 6_600_000, 40)
        assert v.balance(v.alice, USDC) == (FUNDS - 264_000_000, 264_000_000)
        assert v.fill(taker, maker, 40) == (0, BTC, 0, USDC)
        assert v.balance(v.alice, USDC) == (FUNDS - 260_000_000, 0)
        assert v.balance(v.alice, BTC) == (FUNDS + 40 * LOT, 0)
        assert v.balance(v.bob, USDC) == (FUNDS + 260_000_000, 0)
        assert v.balance(v.bob, BTC) == (FUNDS - 40 * LOT, 0)

    def test_partial_fill_keeps_the_rest_locked_at_the_limit(self) -> None:
        """After 40 of 100 lots fill below the limit, exactly the other 60 lots stay locked at the limit."""
        v = Venue.create()
        maker = v.order(v.bob, SELL, 6_500_000, 40)
        taker = v.order(v.alice, BUY, 6_600_000, 100)
        v.fill(taker, maker, 40)
        assert v.balance(v.alice, USDC) == (FUNDS - 6_600_000 * 100 + 100_000 * 40, 6_600_000 * 60)
        assert v.market.lock_requirement(BUY, 6_600_000, 60) == (USDC, 6_600_000 * 60)

    def test_taker_seller_gets_the_makers_higher_price(self) -> None:
        """A sell limit 64,000 filling a 65,000 bid receives 65,000; the maker's lock is spent exactly."""
        v = Venue.create()
        maker = v.order(v.alice, BUY, 6_500_000, 40)
        taker = v.order(v.bob, SELL, 6_400_000, 40)
        assert v.fill(taker, maker, 40) == (0, USDC, 0, BTC)
        assert v.balance(v.bob, USDC) == (FUNDS + 260_000_000, 0)
        assert v.balance(v.bob, BTC) == (FUNDS - 40 * LOT, 0)
        assert v.balance(v.alice, USDC) == (FUNDS - 260_000_000, 0)
        assert v.balance(v.alice, BTC) == (FUNDS + 40 * LOT, 0)


class TestFees:
    """Fees are charged in the asset each side receives; a negative maker rate is a rebate."""

    def test_buyer_pays_base_seller_quote(self) -> None:
        """Taker buys 40 lots: 5 bp of 400,000 sat = 200 sat; maker sells: 1 bp rebate on 260 USDC = 0.026 USDC."""
        v = Venue.create(maker_centibps=-100, taker_centibps=500)
        maker = v.order(v.bob, SELL, 6_500_000, 40)
        taker = v.order(v.alice, BUY, 6_600_000, 40)
        assert v.fill(taker, maker, 40) == (200, BTC, -26_000, USDC)
        assert v.balance(v.alice, BTC) == (FUNDS + 400_000 - 200, 0)
        assert v.balance(v.bob, USDC) == (FUNDS + 260_000_000 + 26_000, 0)
        assert (v.fees(BTC), v.fees(USDC)) == (200, -26_000)

    def test_taker_seller_pays_quote_maker_buyer_gets_base(self) -> None:
        """Taker sells 40 lots: 5 bp of 260 USDC = 0.13 USDC; the maker buyer's rebate is 1 bp of 400,000 sat."""
        v = Venue.create(maker_centibps=-100, taker_centibps=500)
        maker = v.order(v.alice, BUY, 6_500_000, 40)
        taker = v.order(v.bob, SELL, 6_500_000, 40)
        assert v.fill(taker, maker, 40) == (130_000, USDC, -40, BTC)
        assert v.balance(v.bob, USDC) == (FUNDS + 260_000_000 - 130_000, 0)
        assert v.balance(v.alice, BTC) == (FUNDS + 400_000 + 40, 0)
        assert (v.fees(USDC), v.fees(BTC)) == (130_000, -40)

    def test_fees_round_in_the_venues_favour(self) -> None:
        """One lot at 3.33 sat of taker fee pays 4; a 0.77 sat maker rebate pays 0."""
        v = Venue.create(maker_centibps=-77, taker_centibps=333)
        maker = v.order(v.alice, BUY, 6_543_217, 1)
        taker = v.order(v.bob, SELL, 6_543_217, 1)
        assert v.fill(taker, maker, 1) == (2_179, USDC, 0, BTC)  # ceil(2,178.89) and -floor(0.77)
        maker = v.order(v.bob, SELL, 6_543_217, 1)
        taker = v.order(v.alice, BUY, 6_543_217, 1)
        assert v.fill(taker, maker, 1) == (4, BTC, -503, USDC)  # ceil(3.33) and -floor(503.83)


N = 37
PRICE = 6_543_217  # odd, so that no rate below divides a fill evenly
MAKER_RATE, TAKER_RATE = -77, 333


def one_slots(side: int, lots: int) -> int:
    """What an order's receipts slot holds after `lots` lots at PRICE: lots (buy) or tick-lots (sell)."""
    return lots if side == BUY else lots * PRICE


class TestFeeAccrual:
    """An order's fee is charged on its cumulative receipts: N partial fills cost exactly one fill."""

    @pytest.mark.parametrize("maker_side", [SELL, BUY], ids=["maker-sells", "maker-buys"])
    def test_maker_filled_by_n_takers_pays_one_fill(self, maker_side: int) -> None:
        """A maker filled 1 lot at a time by N takers pays (or earns) what one N-lot fill would."""
        one = Venue.create(MAKER_RATE, TAKER_RATE)
        maker = one.order(one.bob, maker_side, PRICE, N)
        _, _, single, asset = one.fill(one.order(one.alice, 1 - maker_side, PRICE, N), maker, N)

        many = Venue.create(MAKER_RATE, TAKER_RATE)
        maker = many.order(many.bob, maker_side, PRICE, N)
        fees = [many.fill(many.order(many.alice, 1 - maker_side, PRICE, 1), maker, 1) for _ in range(N)]
        assert sum(f[2] for f in fees) == single
        assert {f[3] for f in fees} == {asset}
        assert maker.slots[2] == one_slots(maker_side, N)
        assert many.balance(many.bob, asset) == one.balance(one.bob, asset)
        assert fees[0][2] * N != single, "the rates must make per-fill rounding differ"

    @pytest.mark.parametrize("taker_side", [BUY, SELL], ids=["taker-buys", "taker-sells"])
    def test_taker_sweeping_n_makers_pays_one_fill(self, taker_side: int) -> None:
        """A taker filled 1 lot at a time by N makers pays what one N-lot fill would."""
        one = Venue.create(MAKER_RATE, TAKER_RATE)
        taker = one.order(one.alice, taker_side, PRICE, N)
        single, asset, _, _ = one.fill(taker, one.order(one.bob, 1 - taker_side, PRICE, N), N)

        many = Venue.create(MAKER_RATE, TAKER_RATE)
        taker = many.order(many.alice, taker_side, PRICE, N)
        fees = [many.fill(taker, many.order(many.bob, 1 - taker_side, PRICE, 1), 1) for _ in range(N)]
        assert sum(f[0] for f in fees) == single
        assert {f[1] for f in fees} == {asset}
        assert taker.slots[1] == one_slots(taker_side, N)
        assert many.balance(many.alice, asset) == one.balance(one.alice, asset)
        assert fees[0][0] * N != single, "the rates must make per-fill rounding differ"


class TestValidate:
    """validate() refuses orders below the market's minimum size and notional, by code."""

    def test_min_size(self) -> None:
        """With a 5-lot minimum, 4 lots is MIN_SIZE and 5 lots passes."""
        market = SpotMarket(_info(min_lots=5, min_notional_units=0), FlatFees(0, 0))
        with pytest.raises(OrderRejection) as excinfo:
            market.validate(BUY, 6_500_000, 4, 0)
        assert excinfo.value.code == "MIN_SIZE"
        market.validate(BUY, 6_500_000, 5, 0)

    @pytest.mark.parametrize("quote_per_tick_lot", [1, 10])
    def test_min_notional(self, quote_per_tick_lot: int) -> None:
        """Notional is price x size x quote_per_tick_lot at the limit: one unit short is MIN_NOTIONAL."""
        market = SpotMarket(_info(quote_per_tick_lot=quote_per_tick_lot), FlatFees(0, 0))
        price = 100_000 // quote_per_tick_lot  # 10 lots at this price are exactly the 1 USDC minimum
        for side in (BUY, SELL):
            with pytest.raises(OrderRejection) as excinfo:
                market.validate(side, price, 9, 0)
            assert excinfo.value.code == "MIN_NOTIONAL"
            market.validate(side, price, 10, 0)
