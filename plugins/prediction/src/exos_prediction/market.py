"""Binary outcome markets: one book per market in YES price, complementary matching, split/merge, fees.

Units. The manifest names the collateral as both base and quote, so a share counts in collateral
units: one lot is `lot_units` share units and pays `lot_units` collateral units if it wins. A price
is in ticks; `n` ticks make one unit of collateral per share (tick 0.01: n = 100; 0.0025: n = 400),
so valid prices are 1..n-1 and one tick on one lot is `per_tick_lot` = lot_units / n collateral units.

The book. A YES buy at p is a bid at p, a YES sell an ask at p; a NO buy at q is an ask at n - q and
a NO sell at q a bid at n - q. Slot 3 holds the order's token (0 YES, 1 NO); the pair that matched
decides the settlement: YES buy × YES sell and NO buy × NO sell are normal swaps, YES buy × NO buy is
a mint (both payments, p + (n - p) = one unit per share, go to the vault and a full set is issued),
YES sell × NO sell a merge (both tokens burn and the vault pays p and n - p). Trades happen at the
maker's price; the taker keeps any improvement.

Locks. A buy locks its payment at its own limit plus the most fee its size can cost; a sell locks its
shares. Both are linear in size, so a fill of s lots releases exactly s lots' worth; settle_fill pays
the counterparty or vault, charges the fee and unlocks the rest.

Fees (collateral, rounded once per order and role): flat model: rate × notional; probability model:
rate × p × (1 - p) per share, p the price of the token the order trades. Slot 1 (taker) and slot 2
(maker) accumulate the order's weighted notional: e·s (flat) or e·(n - e)·s (probability) for a fill
of s lots at own price e.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from exos.protocols import FeeModel, FillSide, LedgerContext, MarketContext, MarketInfo, OrderRejection
from exos.rates import venue_fee

if TYPE_CHECKING:
    from exos_prediction.outcome_event import OutcomeEvent

YES, NO = 0, 1
BID, ASK = 0, 1
NORMAL, MINT, MERGE = 0, 1, 2
TAKER_SLOT, MAKER_SLOT = 1, 2


class BinaryMarket:
    """One binary market: the per-market object the engine keeps (its lifecycle lives in its event)."""

    outcomes = 2
    manages_status = True

    __slots__ = (
        "buy_lock",
        "collateral",
        "event",
        "fee_denominator",
        "fee_lock_rate",
        "fees",
        "index",
        "info",
        "lot_units",
        "maker_rate",
        "market_id",
        "min_lots",
        "n",
        "name",
        "no",
        "per_tick_lot",
        "probability",
        "taker_delay_ms",
        "taker_rate",
        "yes",
    )

    def __init__(self, info: MarketInfo, fees: FeeModel, event: OutcomeEvent, index: int) -> None:
        """A market over `info` (validated by the market type), member `index` of `event`."""
        self.info = info
        self.name = info.name
        self.market_id = info.market_id
        self.fees = fees
        self.event = event
        self.index = index
        self.collateral = info.quote_asset
        self.yes, self.no = info.outcome_assets
        self.lot_units = info.lot_units
        self.per_tick_lot = info.quote_per_tick_lot
        self.n = info.lot_units // info.quote_per_tick_lot
        self.min_lots = info.min_lots
        self.maker_rate = int(getattr(fees, "maker_centibps", 0))
        self.taker_rate = int(getattr(fees, "taker_centibps", 0))
        self.probability = getattr(fees, "weighting", "notional") == "probability"
        self.fee_denominator = self.n if self.probability else 1
        self.fee_lock_rate = max(self.maker_rate, self.taker_rate, 0)
        # what one lot of a buy locks at each own limit price: payment plus the most fee it can cost
        self.buy_lock = [p * self.per_tick_lot + self.fee_lock(p) if p else 0 for p in range(self.n)]
        self.taker_delay_ms = 0  # the event sets it while the market is in play

    # ------------------------------------------------------------ the order path

    def book_order(self, side: int, price: int, outcome: int) -> tuple[int, int]:
        """A NO order at q is the opposite side at n - q in the book (and back: the map is its own inverse).

        The engine validates the book price next, so an out-of-range NO price is refused there."""
        return 1 - side, self.n - price

    def validate(self, side: int, price: int, size: int, tif: int) -> None:
        """Prices strictly between 0 and one unit; the market's minimum size."""
        if not 0 < price < self.n:
            raise OrderRejection("BAD_PRICE", f"price: {self.name} takes 1..{self.n - 1} ticks, got {price}")
        if size < self.min_lots:
            raise OrderRejection("MIN_SIZE", f"size: {size} lots is below the minimum of {self.min_lots}")

    def fee_lock(self, own_limit: int) -> int:
        """The most fee one lot of a buy at `own_limit` can cost (any fill price at or below its limit)."""
        if not self.fee_lock_rate:
            return 0
        if self.probability:
            half = self.n // 2
            top = own_limit if own_limit <= half else half
            weight = top * (self.n - top)
        else:
            weight = own_limit
        return venue_fee(weight * self.per_tick_lot, self.fee_lock_rate, self.fee_denominator)

    def lock_requirement(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """Buys lock payment plus fee at their own limit (a per-price table); sells lock their shares."""
        if side == BID:
            if outcome == YES:
                return self.collateral, size * self.buy_lock[price]
            return self.no, size * self.lot_units
        if outcome == NO:
            return self.collateral, size * self.buy_lock[self.n - price]
        return self.yes, size * self.lot_units

    def initial_slots(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """No weighted notional yet in either role."""
        return (0, 0)

    def settle_fill(
        self, taker: FillSide, maker: FillSide, price: int, size: int, ledger: LedgerContext
    ) -> tuple[int, int, int, int, int]:
        """Settle one fill by the pair of tokens that matched (normal, mint or merge); fees in collateral.

        The pair also fixes each side's own price (YES sides trade at `price`, NO sides at n - price)
        and whether it is a buyer (its lock beyond the payment is released here)."""
        bid, ask = (taker, maker) if taker.side == BID else (maker, taker)
        bid_yes, ask_yes = bid.slots[3] == YES, ask.slots[3] == YES
        n, per, coll = self.n, self.per_tick_lot, self.collateral
        no_price = n - price
        shares = size * self.lot_units
        yes_paid, no_paid = price * size * per, no_price * size * per
        if bid_yes:  # a YES buyer at `price`
            if ask_yes:
                kind = NORMAL
                ledger.pay_locked(bid.account, coll, yes_paid, ask.account)
                ledger.pay_locked(ask.account, self.yes, shares, bid.account)
            else:
                kind = MINT
                vault = self.event.vault
                ledger.pay_locked(bid.account, coll, yes_paid, vault)
                ledger.pay_locked(ask.account, coll, no_paid, vault)
                ledger.issue(bid.account, self.yes, shares)
                ledger.issue(ask.account, self.no, shares)
        elif not ask_yes:  # a NO seller meets a NO buyer at n - price
            kind = NORMAL
            ledger.pay_locked(ask.account, coll, no_paid, bid.account)
            ledger.pay_locked(bid.account, self.no, shares, ask.account)
        else:  # a NO seller meets a YES seller: the full set burns
            kind = MERGE
            vault = self.event.vault
            ledger.burn_locked(bid.account, self.no, shares)
            ledger.burn_locked(ask.account, self.yes, shares)
            ledger.move(vault, coll, no_paid, bid.account)
            ledger.move(vault, coll, yes_paid, ask.account)
        # buyers (a YES bid, a NO ask) release their lock beyond what they paid at their own price
        buy_lock = self.buy_lock
        if bid_yes:
            spare = size * buy_lock[bid.limit_price] - yes_paid
            if spare:
                ledger.unlock(bid.account, coll, spare)
        if not ask_yes:
            spare = size * buy_lock[n - ask.limit_price] - no_paid
            if spare:
                ledger.unlock(ask.account, coll, spare)
        # each side's fee accrues on its weighted notional: p(n - p) per lot for both tokens (probability),
        # or its own price per lot (flat)
        if self.probability:
            taker_weight = maker_weight = price * no_price * size
        else:
            taker_weight = (price if taker.slots[3] == YES else no_price) * size
            maker_weight = (price if maker.slots[3] == YES else no_price) * size
        taker_fee = self._fee(taker, TAKER_SLOT, self.taker_rate, taker_weight) if self.taker_rate else 0
        if taker_fee:
            ledger.charge_fee(taker.account, coll, taker_fee)
        maker_fee = self._fee(maker, MAKER_SLOT, self.maker_rate, maker_weight) if self.maker_rate else 0
        if maker_fee:
            ledger.charge_fee(maker.account, coll, maker_fee)
        return taker_fee, coll, maker_fee, coll, kind

    def _fee(self, side: FillSide, slot: int, rate: int, weight: int) -> int:
        """The fee of this fill: the fee on the side's cumulative weight after it, less the fee before it."""
        slots = side.slots
        before = slots[slot]
        slots[slot] = after = before + weight
        per, denominator = self.per_tick_lot, self.fee_denominator
        return venue_fee(after * per, rate, denominator) - venue_fee(before * per, rate, denominator)

    # ------------------------------------------------------------ lifecycle (delegated to the event)

    def on_listed(self, ctx: MarketContext) -> None:
        """Join the event: the first member creates the vault and the kickoff timer."""
        self.event.member_listed(ctx, self)

    def action(self, ctx: MarketContext, action: str, args: Mapping[str, Any]) -> None:
        """split, merge, convert, resolution and admin actions (exos_prediction.outcome_event)."""
        self.event.act(ctx, self, action, args)

    def on_timer(self, ctx: MarketContext, tag: int) -> None:
        """The event's timers fire on its first market."""
        self.event.on_timer(ctx, tag)

    def dump(self) -> bytes:
        """A binary market's state lives in its event (dumped by the market type)."""
        return b""

    def load(self, data: bytes) -> None:
        """Nothing to restore here."""

    def check_invariants(self) -> None:
        """Checked per event by the market type."""
