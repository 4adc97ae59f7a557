"""Linear perpetual futures: one-way positions as (size, cost basis), margined in the settlement asset.

Units. Size in lots (signed: long > 0), prices in ticks, money in the settlement asset's smallest
units; `q` is the money one tick moves one lot. A position is (size, basis) where basis is the signed
notional it was opened for (Σ size × price × q of its opening fills): never an average price.
Unrealised PnL = size × mark × q − basis. A fill that shrinks a position realises
`closed × price × q × sign − ceil(basis × closed / |size|)`, so the closed share of the basis is rounded
up (against the account) and the rounding remainder stays in the basis. Realised PnL is paid between
the account and the market's **pool** account, which therefore always holds −Σ basis (= Σ of every
position's unrealised PnL): money is conserved exactly, and the pool is never a user.

Margin. An order reserves, per lot, its initial margin at the order price (the highest of the
account's leverage, the tier its position would reach, and the open-interest ramp), its worst fee,
and its loss against mark if it buys above or sells below it; the per-lot amount is the order's class,
kept in its slot 3, and is locked in the settlement asset (the balance may go negative: a borrow that
unified margin must cover). A reduce-only order reserves nothing (class 0). Initial margin of a
position = max(notional / leverage, tiered IM) raised linearly toward 100% of notional as open
interest goes from `oi_ramp_start` to `oi_cap`; maintenance = notional × mmr − deduction from the
tiers (continuous at each bound). Cross positions count in the account's unified equity; an isolated
position carries its own margin in the market's isolated account.

Mark = median(oracle + EMA(book mid − oracle), median(best bid, best ask, last trade), external mark),
of the inputs that exist, clamped to oracle × (1 ± mark_band), recomputed only when the oracle updates.
Funding: the premium is sampled on a timer in command time, averaged over the interval, and paid at
each funding time: rate = avg + clamp(interest − avg, ±clamp), capped at ±cap; each position pays or
gets size × oracle × q × rate (payers round up, receivers down; the difference goes to the group's dust
account). After a gap in command time a timer fires once: at most one interval is paid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from exos.minimums import check_minimums
from exos.protocols import FeeModel, FillSide, MarketContext, MarketInfo, OrderRejection
from exos_perps.config import PPB, PPM, PerpConfig, Tier

# Hot products multiply magnitudes and apply the sign after, and round up as (x + d - 1) // d: compiled, mypyc
# multiplies inline only when both factors are non-negative and below 2^30, and otherwise through Python's long
# objects (three allocations a product).
# Final: mypyc folds these literals into the compiled market, where a module global costs a dict lookup per use
BUY: Final = 0
SELL: Final = 1
FINE: Final = 10**9  # EMAs keep 9 more digits than the prices they average (integers: the same everywhere)
TAKER_SLOT: Final = 1
MAKER_SLOT: Final = 2
SAMPLE_TIMER: Final = 1
FUNDING_TIMER: Final = 2
_BPS: Final = 10_000
_CENTIBPS_PER_UNIT: Final = 1_000_000  # exos.rates.CENTIBPS_PER_UNIT (tests/test_fees.py checks)


def _median(values: list[int]) -> int:
    """The median of integers; the floor of the two middle values' mean for an even count."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2


class PerpMarket:
    """One perpetual market: positions, settings, mark and funding state (the per-market object the engine keeps)."""

    margined = True

    def __init__(self, info: MarketInfo, fees: FeeModel, config: PerpConfig, view: Any) -> None:
        """A market over `info` (quote = settlement asset) with parsed `config`."""
        self.info = info
        # typed here, not only through MarketInfo: mypyc then compiles their arithmetic even where exos's types are
        # not in view (a wheel built outside the workspace: plugins/perps/setup.py)
        self.name: str = info.name
        self.market_id: int = info.market_id
        self.settlement: int = info.quote_asset
        self.q: int = info.quote_per_tick_lot
        self.fees = fees
        self.config = config
        self.view = view
        self.oracle_feed = config.oracle
        self.external_feed = config.external_mark
        self.mm_ppm_max = config.mm_ppm_max
        self.partial_bps = config.partial_bps
        self.min_lots: int = info.min_lots
        self.min_notional: int = info.min_notional_units
        self.fee_ppm: int = max(getattr(fees, "taker_centibps", 0), getattr(fees, "maker_centibps", 0), 0)
        # a flat model's fee is computed here (_flat_fee) rather than called: four calls a fill (FeeModel.flat)
        self._flat_fees: bool = getattr(fees, "flat", False) is True
        self._taker_rate: int = getattr(fees, "taker_centibps", 0) if self._flat_fees else 0
        self._maker_rate: int = getattr(fees, "maker_centibps", 0) if self._flat_fees else 0
        single: Tier | None = config.tiers[0] if len(config.tiers) == 1 else None
        self._single_tier = single
        self._user_rates: dict[int, int] = {}
        self._im_rates: dict[int, int] = {}  # leverage -> max(its rate, the one tier's): a cache
        # farther than this from mark, a fill may put an account under water: check it in the same command
        self.far_bps = max(1, config.tiers[0].mm_ppm // 200)
        self.margin: Any = None
        # the config is an attrs class (a Python object to compiled code): the fields the order path reads, kept here
        self._oi_cap: int = config.oi_cap
        self._oi_ramp_start: int = config.oi_ramp_start
        self._default_leverage: int = config.default_leverage
        self.waive_taker = False
        self.reclip_pending: dict[int, None] = {}
        self._band = (0, 0, 0)  # (mark, lowest, highest price) the order band allows at that mark
        self._reset()

    def _reset(self) -> None:
        """The state of a freshly listed market."""
        self.positions: dict[int, list[int]] = {}  # account -> [size, basis, isolated margin]
        self._longs: set[int] = set()  # accounts long and short (ADL ranks one side without walking the other)
        self._shorts: set[int] = set()
        # accounts in isolated mode here (settings[account][1], kept as a set for the fill path)
        self._isolated: set[int] = set()
        self.settings: dict[int, tuple[int, bool]] = {}  # account -> (leverage, isolated)
        self.cooldowns: dict[int, int] = {}  # account -> end of its partial-liquidation cooldown (ms)
        self.long_oi = 0
        self.mark: int | None = None
        self.oracle_ticks: int | None = None
        self.basis_ema: int | None = None  # in FINE units of a tick: a floor at whole ticks would only ever fall
        self.basis_ms = 0
        self.last_price: int | None = None
        self.premium_sum = 0
        self.premium_samples = 0
        self.last_funding_ms: int | None = None
        self.funding_rate_ppb = 0
        self.pool = -1
        self.isolated_account = -1
        self.ramp_num, self.ramp_den = 0, 1

    # ------------------------------------------------------------ binding and listing

    def bind_margin(self, margin: Any) -> None:
        """Keep the engine's unified margin (told of positions opening, closing and shrinking equity)."""
        self.margin = margin

    def on_listed(self, ctx: MarketContext) -> None:
        """Open the market's pool and isolated-margin accounts; start the funding clock."""
        self.pool = ctx.system_account(f"perp-pool/{self.name}")
        self.isolated_account = ctx.system_account(f"perp-isolated/{self.name}")
        start = max(ctx.now, 0)
        config = self.config
        ctx.schedule(_next(start, config.funding_sample_ms), self.market_id, SAMPLE_TIMER)
        ctx.schedule(_next(start, config.funding_interval_ms), self.market_id, FUNDING_TIMER)

    # ------------------------------------------------------------ the order path

    def validate(self, side: int, price: int, size: int, tif: int) -> None:
        """Minimum size and minimum notional at the order's limit price."""
        # exos.minimums.check_minimums states the same rule; inlined because every order runs it
        if size < self.min_lots or price * size * self.q < self.min_notional:
            check_minimums(price, size, self.q, self.min_lots, self.min_notional)

    def admit(self, account: int, side: int, price: int, size: int, reduce_only: bool) -> tuple[int, int]:
        """(the order's class: margin reserved per lot, 0 for reduce-only; its size, clipped) or OrderRejection."""
        if reduce_only:
            position = self.positions.get(account)
            current = position[0] if position is not None else 0
            if current == 0 or (current > 0) == (side == BUY):
                raise OrderRejection("REDUCE_ONLY", f"{self.name}: a reduce-only order must shrink a position "
                                     f"(position {current} lots)")  # fmt: skip
            return 0, min(size, _abs(current))
        mark = self.mark
        if mark is None:
            raise OrderRejection("NO_ORACLE", f"{self.name}: its oracle has never published; only reduce-only "
                                 "orders and cancels are taken")  # fmt: skip
        if self.oracle_ticks is None:
            raise OrderRejection("ORACLE_STALE", f"{self.name}: its oracle is stale; only reduce-only orders and "
                                 "cancels are taken")  # fmt: skip
        band = self._band  # the common case, inline: the bounds kept for this mark, and the price inside them
        if band[0] != mark or not band[1] <= price <= band[2]:
            self._check_band(price, mark)
        oi_cap = self._oi_cap
        if oi_cap and self.long_oi + size > oi_cap:
            raise OrderRejection("OI_CAP", f"{self.name}: open interest {self.long_oi} + {size} lots would pass the "
                                 f"cap of {oi_cap}")  # fmt: skip
        q = self.q
        settings = self.settings.get(account)
        leverage = settings[0] if settings is not None else self._default_leverage
        if self._single_tier is not None:
            rate = self._im_rates.get(leverage) or self._im_rate(leverage)
        else:  # the tier the position would reach
            position = self.positions.get(account)
            current = position[0] if position is not None else 0
            rate = max(self._user_rates.get(leverage) or self._user_rate(leverage),
                       self._tier((_abs(current) + size) * price * q).im_ppm)  # fmt: skip
        if oi_cap and self.long_oi + size > self._oi_ramp_start:
            over = self.long_oi + size - self._oi_ramp_start
            rate += (PPM - rate) * over // (oi_cap - self._oi_ramp_start)
        per_lot = price * q
        reserve = (per_lot * rate + PPM - 1) // PPM + (per_lot * self.fee_ppm + PPM - 1) // PPM  # each rounded up
        if side == BUY and price > mark:  # its loss against mark the moment it fills
            reserve += (price - mark) * q
        elif side != BUY and price < mark:
            reserve += (mark - price) * q
        return (reserve if reserve > 0 else 1), size

    def _check_band(self, price: int, mark: int) -> None:
        """OrderRejection PRICE_BAND unless `price` lies in mark × (1 ± price_band) (the bounds kept per mark)."""
        band = self._band
        if band[0] != mark:
            bps = self.config.price_band_bps
            band = self._band = (mark, -(-mark * (_BPS - bps) // _BPS), mark * (_BPS + bps) // _BPS)
        _, low, high = band
        if not low <= price <= high:
            raise OrderRejection("PRICE_BAND", f"{self.name}: price {price} is outside the band {low}..{high} "
                                 f"around mark {mark}")  # fmt: skip

    def lock_requirement(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """An order holds its class (margin per lot) times its size, in the settlement asset."""
        return self.settlement, size * outcome

    def initial_slots(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """Nothing traded yet in either role (slots 1 and 2 count tick-lots as taker and as maker, for fees)."""
        return (0, 0)

    def settle_fill(
        self, taker: FillSide, maker: FillSide, price: int, size: int, ledger: Any
    ) -> tuple[int, int, int, int, int]:
        """Release both orders' reservations, move both positions, charge fees in the settlement asset."""
        asset = self.settlement
        q = self.q
        # each side's fields read once: every read of a compiled core object's attribute from here is a lookup
        t_account, t_slots = taker.account, taker.slots
        m_account, m_slots = maker.account, maker.slots
        t_class, m_class = t_slots[3], m_slots[3]
        if t_class:
            ledger.unlock(t_account, asset, size * t_class)
        if m_class:
            ledger.unlock(m_account, asset, size * m_class)
        delta = size if taker.side == BUY else -size
        self._trade(t_account, delta, price, ledger)
        self._trade(m_account, -delta, price, ledger)
        self.last_price = price
        ticks_lots = price * size
        before = t_slots[TAKER_SLOT]
        t_slots[TAKER_SLOT] = after = before + ticks_lots
        maker_before = m_slots[MAKER_SLOT]
        m_slots[MAKER_SLOT] = maker_after = maker_before + ticks_lots
        if self._flat_fees:
            rate = self._taker_rate
            taker_fee = 0 if self.waive_taker else _flat_fee(after * q, rate) - _flat_fee(before * q, rate)
            rate = self._maker_rate
            maker_fee = _flat_fee(maker_after * q, rate) - _flat_fee(maker_before * q, rate)
        else:
            fee = self.fees.fee
            taker_fee = 0 if self.waive_taker else fee(after * q, False) - fee(before * q, False)
            maker_fee = fee(maker_after * q, True) - fee(maker_before * q, True)
        if taker_fee:
            ledger.charge_fee(t_account, asset, taker_fee)
        if maker_fee:
            ledger.charge_fee(m_account, asset, maker_fee)
        mark = self.mark
        if mark is not None and _abs(price - mark) * _BPS > mark * self.far_bps:
            self.margin.check_soon(t_account)
            self.margin.check_soon(m_account)
        return taker_fee, asset, maker_fee, asset, 0

    def _trade(self, account: int, delta: int, price: int, ledger: Any) -> None:
        """Move an account's position by `delta` lots at `price`: basis, realised PnL, isolated margin, OI."""
        margin = self.margin
        epoch = margin.epoch  # a ramp this trade moves bumps it: then the account's cached sums are dropped
        positions = self.positions
        position = positions.get(account)
        if position is None:
            position = positions[account] = [0, 0, 0]
            self.margin.position_opened(account, self)
        size, basis = position[0], position[1]
        q = self.q
        asset = self.settlement
        isolated = account in self._isolated
        if size == 0 or (size > 0) == (delta > 0):
            position[0] = size + delta
            opened = (delta if delta > 0 else -delta) * price * q
            position[1] = basis + opened if delta > 0 else basis - opened
            if isolated:
                self._fund_isolated(account, position, _abs(delta), price, ledger)
        else:
            magnitude = _abs(size)
            closed = min(_abs(delta), magnitude)
            if basis > 0:  # the basis closed, rounded up: ceil(basis × closed / |size|)
                basis_closed = (basis * closed + magnitude - 1) // magnitude
            else:
                basis_closed = -(-basis * closed // magnitude)
            value_closed = closed * price * q
            realised = (value_closed if size > 0 else -value_closed) - basis_closed
            size_left = size - closed if size > 0 else size + closed
            position[1] = basis - basis_closed
            payee = self.isolated_account if isolated else account
            if realised > 0:
                ledger.move(self.pool, asset, realised, payee)
            elif realised < 0:
                ledger.move(payee, asset, -realised, self.pool)
            if isolated:
                position[2] += realised
                if size_left:
                    released = max(position[2], 0) * closed // magnitude
                    if released:
                        ledger.move(self.isolated_account, asset, released, account)
                        position[2] -= released
            remainder = _abs(delta) - closed
            position[0] = size_left
            if remainder:
                flipped = remainder if delta > 0 else -remainder
                position[0] = flipped
                position[1] = remainder * price * q if delta > 0 else -(remainder * price * q)
                if isolated:
                    self._return_isolated(account, position, ledger)
                    self._fund_isolated(account, position, remainder, price, ledger)
            self.reclip_pending[account] = None
        after = position[0]
        self.long_oi += (after if after > 0 else 0) - (size if size > 0 else 0)
        if (after > 0) != (size > 0) or (after < 0) != (size < 0):  # it opened, closed or flipped: its side changed
            (self._longs if size > 0 else self._shorts).discard(account)
            if after:
                (self._longs if after > 0 else self._shorts).add(account)
        if after == 0:
            if isolated:
                self._return_isolated(account, position, ledger)
            assert position[1] == 0, f"{self.name}: a closed position keeps basis {position[1]}"
            del positions[account]
            self.margin.position_closed(account, self)
        if self._oi_cap:
            self._ramp()
        # the change of the position's uPnL − IM (0 for an isolated one): the account's cached sum moves by it
        mark = self.mark
        if mark is None or isolated:
            change = None if mark is None else 0
        else:
            settings = self.settings.get(account)
            leverage = settings[0] if settings is not None else self._default_leverage
            basis_after = position[1] if after else 0
            if self._single_tier is not None and not self.ramp_num:  # _term_change's one-tier case, inline: per fill
                rate = self._im_rates.get(leverage) or self._im_rate(leverage)
                tick_lot = mark * self.q
                value_abs, value_before_abs = _abs(after) * tick_lot, _abs(size) * tick_lot
                value = value_abs if after > 0 else -value_abs
                value_before = value_before_abs if size > 0 else -value_before_abs
                im = (value_abs * rate + PPM - 1) // PPM  # rounded up
                im_before = (value_before_abs * rate + PPM - 1) // PPM
                change = (value - basis_after - im) - (value_before - basis - im_before)
            else:
                change = self._term_change(size, basis, after, basis_after, leverage)
        margin.traded(account, self.settlement, change, epoch)

    def _fund_isolated(self, account: int, position: list[int], lots: int, price: int, ledger: Any) -> None:
        """Move the initial margin of `lots` opened at `price` at the account's leverage into its isolated margin."""
        added = -(-lots * price * self.q // self.settings[account][0])
        ledger.move(account, self.settlement, added, self.isolated_account)
        position[2] += added

    def _return_isolated(self, account: int, position: list[int], ledger: Any) -> None:
        """Hand an isolated position's remaining margin back to the account (a negative remainder is the pool's)."""
        margin = position[2]
        if margin > 0:
            ledger.move(self.isolated_account, self.settlement, margin, account)
        elif margin < 0:
            ledger.move(account, self.settlement, -margin, self.isolated_account)
        position[2] = 0

    def _ramp(self) -> None:
        """The open-interest ramp of initial margin, as a fraction num/den (0 below the ramp's start, 1 at the cap)."""
        over = self.long_oi - self._oi_ramp_start
        before = self.ramp_num
        span = self._oi_cap - self._oi_ramp_start
        self.ramp_num, self.ramp_den = (0, 1) if over <= 0 else (min(over, span), span)
        if self.ramp_num != before and self.margin is not None:
            self.margin.epoch += 1  # every position's initial margin in this market moved

    # ------------------------------------------------------------ margin arithmetic

    def _im_rate(self, leverage: int) -> int:
        """The one-tier initial margin rate at a leverage, ppm: max(1 / leverage, the tier's) (rounded up)."""
        assert self._single_tier is not None
        rate = self._im_rates[leverage] = max(self._user_rate(leverage), self._single_tier.im_ppm)
        return rate

    def _term_change(self, size: int, basis: int, after: int, basis_after: int, leverage: int) -> int:
        """How uPnL − IM of a cross position at mark moves from (size, basis) to (after, basis_after) (no position
        counts 0); from (0, 0) it is the position's term."""
        tick_lot = self.mark * self.q  # type: ignore[operator]
        value, value_before = after * tick_lot, size * tick_lot
        notional = value if value > 0 else -value
        notional_before = value_before if value_before > 0 else -value_before
        if self._single_tier is None or self.ramp_num:
            im, im_before = self.initial_margin(notional, leverage), self.initial_margin(notional_before, leverage)
        else:  # initial_margin's one-tier case, inline (every fill asks): a rate <= 100% keeps IM <= notional
            rate = self._im_rates.get(leverage) or self._im_rate(leverage)
            im, im_before = -(-notional * rate // PPM), -(-notional_before * rate // PPM)
        return int((value - basis_after - im) - (value_before - basis - im_before))

    def _user_rate(self, leverage: int) -> int:
        """Initial margin rate of a leverage, ppm (rounded up)."""
        rate = self._user_rates.get(leverage)
        if rate is None:
            rate = self._user_rates[leverage] = -(-PPM // leverage)
        return rate

    def _tier(self, notional: int) -> Tier:
        """The margin tier a notional falls in."""
        if self._single_tier is not None:
            return self._single_tier
        found = self.config.tiers[0]
        for tier in self.config.tiers:
            if notional >= tier.lower:
                found = tier
        return found

    def initial_margin(self, notional: int, leverage: int) -> int:
        """max(notional / leverage, tiered IM), raised toward notional by the open-interest ramp."""
        tier = self._tier(notional)
        im = max(
            -(-notional * self._user_rate(leverage) // PPM), -(-(notional * tier.im_ppm - tier.im_deduction) // PPM)
        )
        if self.ramp_num:
            im += -(-(notional - im) * self.ramp_num // self.ramp_den)
        return min(im, notional) if notional else 0

    def maintenance_margin(self, notional: int) -> int:
        """notional × mmr − deduction of the notional's tier (rounded up)."""
        tier = self._tier(notional)
        return max(-(-(notional * tier.mm_ppm - tier.mm_deduction) // PPM), 0)

    def _cross(self, account: int) -> tuple[int, int, int] | None:
        """(value at mark, basis, leverage) of a cross position; None if the account holds none or it is isolated."""
        position = self.positions.get(account)
        settings = self.settings.get(account)
        if position is None or (settings is not None and settings[1]):
            return None
        leverage = settings[0] if settings is not None else self._default_leverage
        return position[0] * self.mark * self.q, position[1], leverage  # type: ignore[operator]

    def terms(self, account: int) -> tuple[int, int, int, int] | None:
        """(uPnL, IM, MM, notional) of a cross position at mark; None if the account holds none or it is isolated."""
        cross = self._cross(account)
        if cross is None:
            return None
        value, basis, leverage = cross
        notional = _abs(value)
        return value - basis, self.initial_margin(notional, leverage), self.maintenance_margin(notional), notional

    def initial_terms(self, account: int) -> int | None:
        """uPnL − IM of a cross position at mark (the order path's check); None as `terms`."""
        position = self.positions.get(account)
        if position is None:
            return None
        settings = self.settings.get(account)
        if settings is None:
            leverage = self._default_leverage
        elif settings[1]:
            return None
        else:
            leverage = settings[0]
        return self._term_change(0, 0, position[0], position[1], leverage)

    def maintenance_terms(self, account: int) -> tuple[int, int] | None:
        """(uPnL, MM) of a cross position at mark (what liquidation reads: no initial margin); None as `terms`."""
        cross = self._cross(account)
        if cross is None:
            return None
        value, basis, _ = cross
        return value - basis, self.maintenance_margin(_abs(value))

    def isolated_terms(self, account: int) -> tuple[int, int, int, int] | None:
        """(margin + uPnL, IM, MM, notional) of an isolated position; None for none or a cross one."""
        settings = self.settings.get(account)
        if settings is None or not settings[1]:
            return None
        position = self.positions.get(account)
        if position is None:
            return None
        value = position[0] * self.mark * self.q  # type: ignore[operator]
        notional = _abs(value)
        upnl = value - position[1]
        return (position[2] + upnl, self.initial_margin(notional, settings[0]), self.maintenance_margin(notional),
                notional)  # fmt: skip

    @property
    def venue_accounts(self) -> tuple[int, int]:
        """The market's own accounts (its pool and its isolated margins): never a trader's."""
        return self.pool, self.isolated_account

    def size_of(self, account: int) -> int:
        """The account's position in lots (0: none)."""
        position = self.positions.get(account)
        return position[0] if position is not None else 0

    def notional_of(self, account: int) -> int:
        """The account's position notional at mark."""
        position = self.positions.get(account)
        return _abs(position[0] * self.mark * self.q) if position is not None and self.mark is not None else 0

    def pnl_of(self, account: int) -> tuple[int, int, int]:
        """(uPnL, notional, basis) of the account's position at mark."""
        position = self.positions.get(account)
        if position is None or self.mark is None:
            return 0, 0, 0
        value = position[0] * self.mark * self.q
        return value - position[1], _abs(value), position[1]

    def adl_inputs(self, longs: bool) -> list[tuple[int, int, int, int, int | None]]:
        """(account, uPnL, notional, |basis|, margin + uPnL if isolated else None) of every long (or short) at mark,
        in no order: what ADL ranks them by, gathered in one pass."""
        tick_lot = self.mark * self.q  # type: ignore[operator]
        positions = self.positions
        isolated = self._isolated
        out = []
        for account in self._longs if longs else self._shorts:
            size, basis, margin = positions[account]
            value = size * tick_lot
            upnl = value - basis
            out.append((account, upnl, value if value > 0 else -value, basis if basis > 0 else -basis,
                        margin + upnl if account in isolated else None))  # fmt: skip
        return out

    def accounts(self) -> list[int]:
        """Accounts holding a position, in index order."""
        return sorted(self.positions)

    def holders(self, longs: bool | None = None) -> list[tuple[int, int]]:
        """(account, size) of every position (or only the longs, or only the shorts), in account order."""
        accounts = self.positions if longs is None else self._longs if longs else self._shorts
        return [(account, self.positions[account][0]) for account in sorted(accounts)]

    def partial_applies(self, account: int, size: int, now: int) -> bool:
        """Whether a liquidation closes only part of this position: it is large and not in a cooldown."""
        if not self.config.partial_notional or self.mark is None:
            return False
        if self.cooldowns.get(account, -(2**63)) > now:
            return False
        return _abs(size) * self.mark * self.q > self.config.partial_notional

    def start_cooldown(self, account: int, now: int) -> None:
        """After a partial liquidation, the next ones within `cooldown_ms` close the whole position."""
        self.cooldowns[account] = now + self.config.cooldown_ms

    def transfer(self, ledger: Any, source: int, target: int, lots: int, price: int) -> None:
        """Hand `lots` (signed like the source's position) from `source` to `target` at `price` (no fee)."""
        self._trade(source, -lots, price, ledger)
        self._trade(target, lots, price, ledger)

    def reclip_plan(self, account: int, orders: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """Reduce-only orders (id, side, remaining) in entry order → (id, lots to keep): the newest are cut first."""
        size = self.size_of(account)
        plan: list[tuple[int, int]] = []
        budget = _abs(size)
        closing_side = SELL if size > 0 else BUY
        for order_id, side, remaining in orders:
            if size == 0 or side != closing_side:
                plan.append((order_id, 0))
                continue
            budget -= remaining
        # the reducing side's orders beyond the position are cut from the newest
        excess = -budget if budget < 0 else 0
        for order_id, side, remaining in reversed(orders):
            if excess <= 0:
                break
            if size == 0 or side != closing_side:
                continue
            cut = min(excess, remaining)
            plan.append((order_id, remaining - cut))
            excess -= cut
        return plan

    # ------------------------------------------------------------ actions: leverage and isolated margin

    def action(self, ctx: MarketContext, name: str, args: Mapping[str, Any]) -> None:
        """`leverage` {leverage, isolated?}; `margin` {amount: signed units}: add to or take from isolated margin;
        `unwind` {holder: backstop | insurance, lots, price} (an admin's): close the venue's inventory into the book."""
        account = ctx.account(*ctx.actor)
        if name == "leverage":
            self._set_leverage(ctx, account, args)
        elif name == "margin":
            self._move_margin(ctx, account, args)
        elif name == "unwind":
            self._unwind(ctx, args)
        else:
            raise OrderRejection("UNKNOWN_ACTION", f"{self.name}: actions are leverage, margin and unwind, not "
                                 f"{name!r}")  # fmt: skip

    def _unwind(self, ctx: MarketContext, args: Mapping[str, Any]) -> None:
        """Close up to `lots` of the backstop's or insurance fund's position with an IOC at limit `price` (no fee).

        Liquidation leaves those venue accounts holding what they took at bankruptcy prices; this is how the
        venue's operator gives it back to the market. The limit must lie in the order band around mark, and
        the holder's equity must stay >= 0 even if every lot fills at the limit."""
        if not ctx.is_admin:
            raise OrderRejection("NOT_ADMIN", f"{self.name}: only a venue admin unwinds the venue's positions")
        holder, lots, price = args.get("holder"), args.get("lots"), args.get("price")
        group = self.margin.groups[self.settlement]
        accounts = {"backstop": group.backstop, "insurance": group.insurance}
        if holder not in accounts:
            raise OrderRejection("BAD_ACTION", f"{self.name}: holder is backstop or insurance, got {holder!r}")
        if type(lots) is not int or lots <= 0 or type(price) is not int or price <= 0:
            raise OrderRejection("BAD_ACTION", f"{self.name}: lots and price are positive integers (lots, ticks), "
                                 f"got {lots!r} and {price!r}")  # fmt: skip
        account = accounts[holder]
        size = self.size_of(account)
        if size == 0:
            raise OrderRejection("NO_POSITION", f"{self.name}: the {holder} holds no position here")
        mark = self.mark
        if mark is None:
            raise OrderRejection("NO_ORACLE", f"{self.name}: its oracle has never published")
        self._check_band(price, mark)
        lots = min(lots, _abs(size))
        worst = lots * (mark - price if size > 0 else price - mark) * self.q  # the equity lost if all fill at the limit
        equity = self.margin.equity(account, self.settlement)
        if worst > 0 and equity - worst < 0:
            raise OrderRejection("INSUFFICIENT_MARGIN", f"{self.name}: closing {lots} lots at {price} could cost the "
                                 f"{holder} {worst}, more than its equity {equity}")  # fmt: skip
        filled = ctx.close_into_book(self.market_id, account, SELL if size > 0 else BUY, price, lots)
        ctx.emit(self.market_id, "exos.perps.unwind",
                 {"holder": holder, "lots": str(lots), "price": str(price), "filled": str(filled)})  # fmt: skip

    def _set_leverage(self, ctx: MarketContext, account: int | None, args: Mapping[str, Any]) -> None:
        """Set the account's leverage (and cross or isolated mode while it has no position here)."""
        config = self.config
        leverage = args.get("leverage")
        if type(leverage) is not int or not 1 <= leverage <= config.max_leverage:
            raise OrderRejection("BAD_LEVERAGE", f"{self.name}: leverage is an integer 1..{config.max_leverage}, "
                                 f"got {leverage!r}")  # fmt: skip
        if account is None:
            account = ctx.open_account(*ctx.actor)
        old = self.settings.get(account, (config.default_leverage, False))
        isolated = args.get("isolated", old[1])
        if not isinstance(isolated, bool):
            raise OrderRejection("BAD_LEVERAGE", f"{self.name}: isolated is true or false")
        position = self.positions.get(account)
        if isolated != old[1] and (position is not None or self.view.open_orders_of(self.market_id, account)):
            raise OrderRejection("MARGIN_MODE", f"{self.name}: cross/isolated changes only without a position "
                                 "or open orders here")  # fmt: skip
        if position is not None and leverage < old[0] and self.mark is not None:
            notional = _abs(position[0] * self.mark * self.q)
            need = self.initial_margin(notional, leverage) - self.initial_margin(notional, old[0])
            if isolated:
                terms = self.isolated_terms(account)
                assert terms is not None
                if terms[0] < self.initial_margin(notional, leverage):
                    raise OrderRejection("INSUFFICIENT_MARGIN", f"{self.name}: isolated margin {terms[0]} is below "
                                         f"the initial margin at {leverage}x")  # fmt: skip
            elif self.margin.free_initial(account, self.settlement) < need:
                raise OrderRejection("INSUFFICIENT_MARGIN", f"{self.name}: {leverage}x needs {need} more initial "
                                     "margin than the account has free")  # fmt: skip
        self.settings[account] = (leverage, isolated)
        if isolated:
            self._isolated.add(account)
        else:
            self._isolated.discard(account)
        self.margin.forget_initial(account)
        self.margin.touched(account)
        ctx.emit(self.market_id, "exos.perps.leverage",
                 {"address": "0x" + ctx.actor[0].hex(), "sub": ctx.actor[1], "leverage": leverage,
                  "isolated": isolated})  # fmt: skip

    def _move_margin(self, ctx: MarketContext, account: int | None, args: Mapping[str, Any]) -> None:
        """Add (amount > 0) or remove (amount < 0) isolated margin; removal keeps max(IM, floor) covered."""
        amount = args.get("amount")
        if type(amount) is not int or amount == 0:
            raise OrderRejection("BAD_AMOUNT", f"{self.name}: amount is a non-zero integer (units), got {amount!r}")
        terms = self.isolated_terms(account) if account is not None else None
        if account is None or terms is None:
            raise OrderRejection("NOT_ISOLATED", f"{self.name}: the account holds no isolated position here")
        position = self.positions[account]
        asset = self.settlement
        if amount > 0:
            if self.margin.free_withdraw(account, asset) < amount or ctx.balance(account, asset)[0] < amount:
                raise OrderRejection("INSUFFICIENT_MARGIN", f"{self.name}: adding {amount} would leave the account "
                                     "below its margin")  # fmt: skip
            ctx.move(account, asset, amount, self.isolated_account)
            position[2] += amount
        else:
            floor = -(-terms[3] * self.margin.withdraw_floor_bps // _BPS)
            upnl = terms[0] - position[2]
            if position[2] + amount < 0 or position[2] + amount + min(upnl, 0) < max(terms[1], floor):
                raise OrderRejection("INSUFFICIENT_MARGIN", f"{self.name}: removing {-amount} would leave less than "
                                     f"max(initial margin, {self.margin.withdraw_floor_bps} bp of "
                                     "notional)")  # fmt: skip
            ctx.move(self.isolated_account, asset, -amount, account)
            position[2] += amount
        self.margin.touched(account)
        ctx.emit(self.market_id, "exos.perps.margin",
                 {"address": "0x" + ctx.actor[0].hex(), "sub": ctx.actor[1], "amount": str(amount),
                  "isolated_margin": str(position[2])})  # fmt: skip

    # ------------------------------------------------------------ oracle, mark and funding

    def on_oracle(self, oracle: int | None, external: int | None, now: int) -> bool:
        """The oracle published (None: it is stale): recompute the mark; True if the mark moved."""
        self.oracle_ticks = oracle
        if oracle is None:
            return False
        bid, ask = self.view.best_prices(self.market_id)
        config = self.config
        if bid is not None and ask is not None:
            sample = ((bid + ask) * FINE) // 2 - oracle * FINE
            if self.basis_ema is None:
                self.basis_ema = sample
            else:
                dt = max(now - self.basis_ms, 0)
                tau = config.basis_ema_ms
                self.basis_ema = (self.basis_ema * tau + sample * dt) // (tau + dt)
            self.basis_ms = now
        inputs = [oracle + (self.basis_ema or 0) // FINE]
        book = [p for p in (bid, ask, self.last_price) if p is not None]
        if book:
            inputs.append(_median(book))
        if external is not None:
            inputs.append(external)
        mark = _median(inputs)
        band = config.mark_band_bps
        mark = max(-(-oracle * (_BPS - band) // _BPS), min(mark, oracle * (_BPS + band) // _BPS))
        mark = max(mark, 1)
        moved = mark != self.mark
        self.mark = mark
        return moved

    def on_timer(self, ctx: MarketContext, tag: int) -> None:
        """Funding: sample the premium, or pay the interval's funding (one interval at most after a gap)."""
        config = self.config
        now = ctx.now
        if tag == SAMPLE_TIMER:
            premium = self._premium()
            if premium is not None:
                self.premium_sum += premium
                self.premium_samples += 1
            ctx.schedule(_next(now, config.funding_sample_ms), self.market_id, SAMPLE_TIMER)
        elif tag == FUNDING_TIMER:
            self._pay_funding(ctx)
            ctx.schedule(_next(now, config.funding_interval_ms), self.market_id, FUNDING_TIMER)

    def _premium(self) -> int | None:
        """(impact bid − oracle)⁺ − (oracle − impact ask)⁺ over oracle, in ppb; None without an oracle."""
        oracle = self.oracle_ticks
        if oracle is None:
            return None
        bid = self._impact(0)
        ask = self._impact(1)
        difference = (max(bid - oracle, 0) if bid is not None else 0) - (max(oracle - ask, 0) if ask is not None else 0)
        return difference * PPB // oracle

    def _impact(self, side: int) -> int | None:
        """The average price of filling the impact notional against one side (best price if the notional is 0)."""
        target = self.config.impact_notional
        levels = self.view.depth(self.market_id, side, 64 if target else 1)
        if not levels:
            return None
        if not target:
            return int(levels[0][0])
        q = self.q
        cost = lots = 0
        for price, size, _ in levels:
            need = -(-(target - cost) // (price * q))
            take = min(size, need)
            cost += take * price * q
            lots += take
            if cost >= target:
                break
        return cost // (lots * q) if lots else None

    def _pay_funding(self, ctx: MarketContext) -> None:
        """Pay one interval's funding between longs and shorts at the oracle price."""
        config = self.config
        samples = self.premium_samples
        total = self.premium_sum
        oracle = self.oracle_ticks
        self.premium_sum, self.premium_samples = 0, 0
        self.last_funding_ms = ctx.now
        if not samples or oracle is None or not self.positions:
            self.funding_rate_ppb = 0
            return
        average = total // samples  # floor: the same integer everywhere
        rate = average + max(-config.clamp_ppb, min(config.clamp_ppb, config.interest_ppb - average))
        rate = max(-config.cap_ppb, min(config.cap_ppb, rate))
        self.funding_rate_ppb = rate
        if rate == 0:
            return
        asset = self.settlement
        q = self.q
        paid = received = 0
        margin = self.margin
        group = margin.groups[asset]
        for account in sorted(self.positions):
            position = self.positions[account]
            owed = position[0] * oracle * q * rate  # > 0: the account pays
            isolated = self.isolated_terms(account) is not None
            holder = self.isolated_account if isolated else account
            if owed > 0:
                amount = -(-owed // PPB)
                ctx.move(holder, asset, amount, group.dust)
                paid += amount
                if isolated:
                    position[2] -= amount
                margin.check_soon(account)
                change = -amount
            else:
                amount = -owed // PPB
                if amount:
                    ctx.move(group.dust, asset, amount, holder)
                    received += amount
                    if isolated:
                        position[2] += amount
                change = amount
            address, sub = ctx.address(account)
            ctx.emit(self.market_id, "exos.perps.funding_payment",
                     {"address": "0x" + address.hex(), "sub": sub, "amount": str(change)})  # fmt: skip
        ctx.emit(self.market_id, "exos.perps.funding",
                 {"rate_ppb": str(rate), "oracle": str(oracle), "samples": samples, "paid": str(paid),
                  "received": str(received), "dust": str(paid - received)})  # fmt: skip

    # ------------------------------------------------------------ state

    def dump(self) -> bytes:
        """Canonical JSON of positions, settings, cooldowns, mark and funding state."""
        state = {
            "positions": [[a, *self.positions[a]] for a in sorted(self.positions)],
            "settings": [[a, *self.settings[a]] for a in sorted(self.settings)],
            "cooldowns": [[a, self.cooldowns[a]] for a in sorted(self.cooldowns)],
            "oi": self.long_oi, "mark": self.mark, "oracle": self.oracle_ticks, "basis_ema": self.basis_ema,
            "basis_ms": self.basis_ms, "last_price": self.last_price,
            "premium": [self.premium_sum, self.premium_samples],
            "last_funding": self.last_funding_ms, "rate": self.funding_rate_ppb,
            "accounts": [self.pool, self.isolated_account],
        }  # fmt: skip
        return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()

    def load(self, data: bytes) -> None:
        """Replace the state with a dump's."""
        state = json.loads(data)
        self.positions = {row[0]: list(row[1:]) for row in state["positions"]}
        self._longs = {a for a, p in self.positions.items() if p[0] > 0}
        self._shorts = {a for a, p in self.positions.items() if p[0] < 0}
        self.settings = {row[0]: (row[1], bool(row[2])) for row in state["settings"]}
        self._isolated = {account for account, (_, isolated) in self.settings.items() if isolated}
        self.cooldowns = {row[0]: row[1] for row in state["cooldowns"]}
        self.long_oi = state["oi"]
        self.mark, self.oracle_ticks, self.basis_ema = state["mark"], state["oracle"], state["basis_ema"]
        self.basis_ms, self.last_price = state["basis_ms"], state["last_price"]
        self.premium_sum, self.premium_samples = state["premium"]
        self.last_funding_ms, self.funding_rate_ppb = state["last_funding"], state["rate"]
        self.pool, self.isolated_account = state["accounts"]
        self.reclip_pending = {}
        if self.config.oi_cap:
            self._ramp()

    def check_invariants(self) -> None:
        """Long OI = short OI = the kept OI; the pool holds −Σ basis; the isolated account Σ isolated margins."""
        longs = sum(p[0] for p in self.positions.values() if p[0] > 0)
        shorts = -sum(p[0] for p in self.positions.values() if p[0] < 0)
        assert longs == shorts == self.long_oi, f"{self.name}: long OI {longs}, short OI {shorts}, kept {self.long_oi}"
        assert all(p[0] != 0 for p in self.positions.values()), f"{self.name}: a zero position is kept"
        assert self._longs == {a for a, p in self.positions.items() if p[0] > 0}, f"{self.name}: the longs' index"
        assert self._shorts == {a for a, p in self.positions.items() if p[0] < 0}, f"{self.name}: the shorts' index"
        assert self._isolated == {a for a, (_, i) in self.settings.items() if i}, f"{self.name}: the isolated index"
        if self.pool >= 0:
            basis = sum(p[1] for p in self.positions.values())
            pool = sum(self.view.balance(self.pool, self.settlement))
            assert pool == -basis, f"{self.name}: the pool holds {pool}, −Σ basis is {-basis}"
            isolated = sum(p[2] for p in self.positions.values())
            held = sum(self.view.balance(self.isolated_account, self.settlement))
            assert held == isolated, f"{self.name}: the isolated account holds {held}, positions' margins {isolated}"


def _abs(value: int) -> int:
    """|value|: compiled, builtins.abs boxes the integer and calls into Python; this stays a machine integer."""
    return value if value >= 0 else -value


def _flat_fee(received: int, centibps: int) -> int:
    """exos.rates.venue_fee(received, centibps), compiled here with the market: a fee rounds up, a rebate toward 0."""
    if centibps >= 0:
        return (received * centibps + _CENTIBPS_PER_UNIT - 1) // _CENTIBPS_PER_UNIT
    return -(received * -centibps // _CENTIBPS_PER_UNIT)


def _next(now: int, every: int) -> int:
    """The first multiple of `every` after `now` (timers align to the clock, so a gap skips what it missed)."""
    return (now // every + 1) * every
