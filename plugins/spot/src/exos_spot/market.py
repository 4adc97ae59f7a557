"""Spot markets: buys lock quote at their limit, sells lock base; fills swap the two; fees in the asset received.

Slots (the order's engine slots 1 and 2) accumulate what the order has received as taker and as
maker, in lots (buys: base) or tick-lots (sells: quote), so fees are charged on the cumulative amount
and many partial fills cost exactly what one fill would.
"""

from __future__ import annotations

from exos.protocols import API_VERSION, FeeModel, FillSide, LedgerContext, MarketInfo, OrderRejection
from exos.providers import FullyCollateralised

BUY = 0
TAKER_SLOT, MAKER_SLOT = 1, 2


class SpotMarket:
    """One spot market (the per-market object the engine keeps)."""

    __slots__ = ("base", "fees", "info", "lot_units", "min_lots", "min_notional", "quote", "quote_per_tick_lot")

    def __init__(self, info: MarketInfo, fees: FeeModel) -> None:
        """A market over `info`'s assets and units."""
        self.info = info
        self.fees = fees
        self.base = info.base_asset
        self.quote = info.quote_asset
        self.lot_units = info.lot_units
        self.quote_per_tick_lot = info.quote_per_tick_lot
        self.min_lots = info.min_lots
        self.min_notional = info.min_notional_units

    def validate(self, side: int, price: int, size: int, tif: int) -> None:
        """Minimum size and minimum notional (at the order's limit price)."""
        # exos.minimums.check_minimums states the same rule; inlined here because every spot order runs it
        if size < self.min_lots:
            raise OrderRejection("MIN_SIZE", f"size: {size} lots is below the minimum of {self.min_lots}")
        notional = price * size * self.quote_per_tick_lot
        if notional < self.min_notional:
            raise OrderRejection(
                "MIN_NOTIONAL", f"notional: {notional} quote units is below the minimum of {self.min_notional}"
            )

    def lock_requirement(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """A buy holds quote at its limit price; a sell holds its base."""
        if side == BUY:
            return self.quote, price * size * self.quote_per_tick_lot
        return self.base, size * self.lot_units

    def initial_slots(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """Nothing received yet in either role."""
        return (0, 0)

    def settle_fill(
        self, taker: FillSide, maker: FillSide, price: int, size: int, ledger: LedgerContext
    ) -> tuple[int, int, int, int, int]:
        """Swap base and quote out of both locks, refund a taker buy's price improvement, charge fees.

        Fees are charged in the asset each side receives, on the order's cumulative receipts in its
        role (slot 1 as taker, slot 2 as maker), so they round once per order and role."""
        quote, base, per_tick_lot, lot_units = self.quote, self.base, self.quote_per_tick_lot, self.lot_units
        ticks_lots = price * size
        if taker.side == BUY:
            buyer, seller = taker, maker
        else:
            buyer, seller = maker, taker
        ledger.pay_locked(buyer.account, quote, ticks_lots * per_tick_lot, seller.account)
        if buyer.limit_price > price:
            ledger.unlock(buyer.account, quote, (buyer.limit_price - price) * size * per_tick_lot)
        ledger.pay_locked(seller.account, base, size * lot_units, buyer.account)
        fee = self.fees.fee
        # the buyer receives base (counted in lots), the seller quote (counted in tick-lots)
        if taker.side == BUY:
            taker_asset, taker_unit, taker_got = base, lot_units, size
            maker_asset, maker_unit, maker_got = quote, per_tick_lot, ticks_lots
        else:
            taker_asset, taker_unit, taker_got = quote, per_tick_lot, ticks_lots
            maker_asset, maker_unit, maker_got = base, lot_units, size
        slots = taker.slots
        before = slots[TAKER_SLOT]
        slots[TAKER_SLOT] = after = before + taker_got
        taker_fee = fee(after * taker_unit, False) - fee(before * taker_unit, False)
        slots = maker.slots
        before = slots[MAKER_SLOT]
        slots[MAKER_SLOT] = after = before + maker_got
        maker_fee = fee(after * maker_unit, True) - fee(before * maker_unit, True)
        if taker_fee:
            ledger.charge_fee(taker.account, taker_asset, taker_fee)
        if maker_fee:
            ledger.charge_fee(maker.account, maker_asset, maker_fee)
        return taker_fee, taker_asset, maker_fee, maker_asset, 0

    def dump(self) -> bytes:
        """A spot market keeps no state outside the book."""
        return b""

    def load(self, data: bytes) -> None:
        """Nothing to restore."""

    def check_invariants(self) -> None:
        """Nothing to check outside the book and the ledger."""


class SpotMarketType:
    """Registers as market type "spot"."""

    api_version = API_VERSION
    name = "spot"

    def create_market(self, info: MarketInfo, fees: FeeModel) -> SpotMarket:
        """A spot market over `info` (base and quote must differ)."""
        if info.base_asset == info.quote_asset:
            raise ValueError("quote: a spot market trades two different assets, base and quote are the same")
        return SpotMarket(info, fees)


class SpotMargin(FullyCollateralised):
    """Spot positions are fully collateralised: an account needs exactly what its orders lock."""

    name = "spot"
