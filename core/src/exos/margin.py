"""Margin: what an account must hold for its positions and orders, and unified margin across market types.

Fully collateralised market types (spot, prediction) register a `MarginProvider` whose requirement is
exactly the locks their orders hold. Margined market types (perpetuals) implement `MarginedMarket`:
their orders reserve margin in the market's settlement asset, and their positions carry unrealised
PnL and initial and maintenance requirements. `UnifiedMargin` adds everything an account holds in a
**risk group** (named by its settlement asset, e.g. USDC) into one equity:

    equity  = settlement balance                      (may be negative: a borrow, only within margin)
            + Σ collateral units × min(oracle, stable) × (1 − haircut)
            + Σ outcome shares at their worst-case payout (a YES and its NO net; a neg-risk event nets)
            + Σ unrealised PnL of cross positions at mark

and compares it with the requirements summed over positions: the initial margin for anything that
adds risk (an order, a withdrawal), the maintenance margin for liquidation. Locked balances back
open orders, so the initial check counts available balances only (spot locks are requirements too),
while the maintenance check counts everything the account owns. Isolated positions carry their own
margin and are checked alone.

All amounts are integers in smallest units; every derived value rounds against the account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from exos.engine import Engine, MarketState
    from exos.manifest import CollateralSpec

_BPS: Final = 10_000
# the stable price and its EMA keep 9 more digits than the feed: a floor at whole units would stall them
_FINE: Final = 10**9


def order_locks(engine: Engine, account: int, market_type: str) -> dict[int, int]:
    """Per asset index, what the account's open orders in markets of one type hold locked."""
    locks: dict[int, int] = {}
    for ms in engine.markets:
        if ms.market_type != market_type:
            continue
        for order in ms.book.orders():
            if order.slots[0] == account:
                asset, amount = ms.market.lock_requirement(order.side, order.price, order.remaining, order.slots[3])
                locks[asset] = locks.get(asset, 0) + amount
        for held in engine.delayed.values():  # orders waiting out a taker delay hold their locks too
            if held.market == ms.index and held.account == account:
                locks[held.asset] = locks.get(held.asset, 0) + held.amount
    return locks


def requirement(engine: Engine, address: bytes, sub: int = 0) -> dict[str, int]:
    """Per asset symbol, what the account must keep for its positions and open orders (zeros omitted)."""
    ledger = engine.ledger
    account = ledger.find_account(address, sub)
    if account is None:
        return {}
    total: dict[int, int] = {}
    for market_type in sorted({ms.market_type for ms in engine.markets}):
        provider = engine.plugins.margin_providers.get(market_type)
        if provider is None:
            continue
        for asset, amount in provider.requirement(account, order_locks(engine, account, market_type)).items():
            total[asset] = total.get(asset, 0) + amount
    if engine.margin is not None:
        for market in engine.margin.positions.get(account, ()):
            terms = market.terms(account) or market.isolated_terms(account)
            if terms is not None:
                total[market.settlement] = total.get(market.settlement, 0) + terms[1]
    return {ledger.assets[asset].symbol: amount for asset, amount in sorted(total.items()) if amount}


class Collateral:
    """An asset that backs a risk group, valued at min(oracle, stable price) less its haircut.

    The stable price is a rate-limited EMA of the oracle (Mango v4's defence against a pumped oracle):
    it follows an EMA of the oracle (time constant `stable_ema_ms`) but moves at most
    `stable_bps_per_hour` of itself per hour of command time, and starts at the first oracle price."""

    __slots__ = (
        "asset", "den", "ema", "feed", "group", "haircut_bps", "last_ms", "num", "oracle", "rate_bps_per_hour",
        "scale_den", "scale_num", "spot", "stable", "tau_ms",
    )  # fmt: skip

    def __init__(self, spec: CollateralSpec, asset: int, group: int, scale_num: int, scale_den: int) -> None:
        """Collateral from its manifest entry; `scale_num/scale_den` turns a feed price into group units per unit."""
        self.asset = asset
        self.group = group
        self.feed = spec.oracle
        self.haircut_bps = spec.haircut_bps
        self.tau_ms = spec.stable_ema_ms
        self.rate_bps_per_hour = spec.stable_bps_per_hour
        self.scale_num, self.scale_den = scale_num, scale_den
        self.spot: int | None = None  # the spot market selling it for the settlement asset (None: it counts at 0)
        self.oracle: int | None = None  # the feed's last live price
        self.stable: int | None = None  # in 10^-9 of the feed's unit, as is `ema`
        self.ema: int | None = None
        self.last_ms = 0
        self.num, self.den = 0, 1

    def observe(self, price: int, now: int) -> None:
        """Take the feed's live price at command time `now` and move the stable price toward it.

        A feed that goes stale is not observed: the collateral keeps counting at its last price (orders
        that add risk against a stale market are refused by that market; liquidation waits for a price)."""
        self.oracle = price
        fine = price * _FINE
        if self.stable is None or self.ema is None:
            self.stable = self.ema = fine
        else:
            dt = max(now - self.last_ms, 0)
            self.ema = (self.ema * self.tau_ms + fine * dt) // (self.tau_ms + dt)
            step = self.stable * self.rate_bps_per_hour * dt // (3_600_000 * _BPS)
            self.stable += max(-step, min(step, self.ema - self.stable))
        self.last_ms = now
        self._reprice()

    def _reprice(self) -> None:
        """Units of the group's asset per unit of collateral, as num/den (0 while it has no price or market)."""
        if self.oracle is None or self.stable is None or self.spot is None:
            self.num, self.den = 0, 1
            return
        price = min(self.oracle, self.stable // _FINE)
        self.num = price * self.scale_num * (_BPS - self.haircut_bps)
        self.den = self.scale_den * _BPS

    def sells_through(self, ms: MarketState) -> bool:
        """Whether a market is a spot market selling this collateral for its group's asset (never a margined one)."""
        info = ms.info
        return not ms.margined and ms.outcomes == 1 and info.base_asset == self.asset and info.quote_asset == self.group

    def value(self, units: int) -> int:
        """What `units` of the collateral count for (rounded down)."""
        return units * self.num // self.den if units > 0 else 0

    def state(self) -> list[int | None]:
        """The stable price's state."""
        return [self.oracle, self.stable, self.ema, self.last_ms]

    def restore(self, state: list[Any]) -> None:
        """Replace the state with `state()`'s."""
        self.oracle, self.stable, self.ema, self.last_ms = state
        self._reprice()


class RiskGroup:
    """A settlement asset with its margined markets, its collateral and its venue accounts."""

    __slots__ = (
        "asset", "backstop", "backstop_cap", "bad_debt", "collateral", "dust", "insurance", "markets", "symbol",
    )  # fmt: skip

    def __init__(
        self, asset: int, symbol: str, backstop_cap: int, dust: int, insurance: int, backstop: int, bad_debt: int
    ) -> None:
        """A group over `asset` whose backstop may hold at most `backstop_cap` of notional."""
        self.asset = asset
        self.symbol = symbol
        self.backstop_cap = backstop_cap
        self.dust = dust
        self.insurance = insurance
        self.backstop = backstop
        self.bad_debt = bad_debt  # takes over what no buyer, backstop or insurance could: the venue's own loss
        self.markets: list[MarketState] = []
        self.collateral: list[Collateral] = []


class UnifiedMargin:
    """One account's equity and requirements per risk group, over every market type (see the module docstring).

    Margined markets keep it told which accounts hold positions (`position_opened`/`position_closed`)
    and whose equity may have shrunk (`touched`); the liquidation pass (`exos.liquidation`) reads it."""

    def __init__(self, engine: Engine) -> None:
        """Unified margin for `engine`'s manifest (its groups and collateral; markets join as they are listed)."""
        from exos.liquidation import Liquidator
        from exos.marketctx import system_address

        self.engine = engine
        spec = engine.manifest.margin
        self.withdraw_floor_bps = spec.withdraw_floor_bps
        self.upnl_withdraw_bps = spec.upnl_withdraw_bps
        self.groups: dict[int, RiskGroup] = {}
        self._group_specs = {g.asset: g for g in spec.groups}
        self.collateral: list[Collateral] = []
        self.positions: dict[int, list[Any]] = {}  # account -> margined markets where it holds a position
        self.by_feed: dict[str, list[Any]] = {}  # oracle feed -> the margined markets and collateral it prices
        self.share_sources: list[Any] = []  # market types that value outcome shares at their worst case
        # the venue's own books (fees, pools, isolated margins, bad debt): never margined, never liquidated
        self.venue_accounts: set[int] = set()
        # Σ (uPnL − IM) of an account's cross positions per group, as of `epoch`: the order path's check reads it
        # instead of asking every position again. A fill or a settings change drops the account's entry
        # (`forget_initial`), a mark or an open-interest ramp that moves bumps `epoch`. A cache only, never in
        # the state; `check_invariants` compares it with a recomputation.
        self.epoch = 0
        self._initial: dict[int, dict[int, tuple[int, int]]] = {}
        self._system_address = system_address
        for name in sorted(engine.plugins.market_types):
            market_type = engine.plugins.market_types[name]
            if callable(getattr(market_type, "collateral_value", None)):
                self.share_sources.append(market_type)
        for group in spec.groups:
            self.group(engine.ledger.asset_ids[group.asset])
        for c in spec.collateral:
            self._add_collateral(c)
        self.liquidator = Liquidator(self)

    # ------------------------------------------------------------ structure

    def group(self, asset: int) -> RiskGroup:
        """The risk group settled in `asset` (created with its venue accounts on first use)."""
        group = self.groups.get(asset)
        if group is not None:
            return group
        ledger = self.engine.ledger
        symbol = ledger.assets[asset].symbol
        spec = self._group_specs.get(symbol)
        unit = 10 ** ledger.assets[asset].decimals
        cap = int(spec.backstop_cap * unit) if spec is not None else 0
        dust_address = spec.dust_account if spec is not None and spec.dust_account is not None else None
        dust = ledger.open_account(dust_address, 0) if dust_address is not None else ledger.fee_account
        insurance = ledger.open_account(self._system_address(f"insurance/{symbol}"), 0)
        backstop = ledger.open_account(self._system_address(f"backstop/{symbol}"), 0)
        bad_debt = ledger.open_account(self._system_address(f"bad-debt/{symbol}"), 0)
        group = RiskGroup(asset, symbol, cap, dust, insurance, backstop, bad_debt)
        self.groups[asset] = group
        self.venue_accounts.update((ledger.fee_account, bad_debt))
        for c in self.collateral:
            if c.group == asset:
                group.collateral.append(c)
        return group

    def _add_collateral(self, spec: CollateralSpec) -> None:
        """Add a collateral entry: its price scale from the feed's decimals and the spot market that sells it."""
        engine = self.engine
        ledger = engine.ledger
        asset, group = ledger.asset_ids[spec.asset], ledger.asset_ids[spec.group]
        feed_decimals = next(o.decimals for o in engine.manifest.oracles if o.name == spec.oracle)
        # a feed price P means P / 10^feed_decimals group units per whole unit of the collateral
        scale_num = 10 ** ledger.assets[group].decimals
        scale_den = 10**feed_decimals * 10 ** ledger.assets[asset].decimals
        collateral = Collateral(spec, asset, group, scale_num, scale_den)
        collateral.spot = next((ms.index for ms in engine.markets if collateral.sells_through(ms)), None)
        self.collateral.append(collateral)
        self.by_feed.setdefault(spec.oracle, []).append(collateral)
        if group in self.groups:
            self.groups[group].collateral.append(collateral)
        else:
            self.group(group)  # a new group takes every collateral entry naming it

    def add_market(self, ms: MarketState) -> None:
        """A margined market was listed: join its risk group and its oracle feed."""
        market: Any = ms.market
        group = self.group(market.settlement)
        group.markets.append(ms)
        for feed in (market.oracle_feed, market.external_feed):
            if feed and ms not in self.by_feed.get(feed, ()):
                self.by_feed.setdefault(feed, []).append(ms)
        market.bind_margin(self)
        self.venue_accounts.update(getattr(market, "venue_accounts", ()))
        self.liquidator.add_market(ms)

    def spot_listed(self, ms: MarketState) -> None:
        """A fully collateralised market was listed: it may be the spot market a collateral sells through."""
        for c in self.collateral:
            if c.spot is None and c.sells_through(ms):
                c.spot = ms.index
                c._reprice()

    @property
    def borrowable(self) -> frozenset[int]:
        """Assets an account's available balance may go below zero in (settlement assets: a borrow within margin)."""
        return frozenset(self.groups)

    # ------------------------------------------------------------ what margined markets tell it

    def position_opened(self, account: int, market: Any) -> None:
        """`account` now holds a position in `market`."""
        held = self.positions.get(account)
        if held is None:
            self.positions[account] = [market]
        elif market not in held:
            held.append(market)
            held.sort(key=_MARKET_ID)

    def position_closed(self, account: int, market: Any) -> None:
        """`account` no longer holds a position in `market`."""
        held = self.positions.get(account)
        if held is not None and market in held:
            held.remove(market)
            if not held:
                del self.positions[account]

    def touched(self, account: int) -> None:
        """`account`'s positions or equity changed without a price move: re-check it at the next liquidation pass."""
        self.liquidator.dirty[account] = None

    def traded(self, account: int, asset: int = -1, change: int | None = None, epoch: int = -1) -> None:
        """A fill or transfer moved the account's position: `touched`, and its cached initial terms dropped.

        With `change` (the position's uPnL − IM after the fill less before, at the mark of `epoch`), the cached
        sum of group `asset` moves by it instead, so the account's next order needs no recomputation."""
        self.liquidator.dirty[account] = None
        if change is not None and epoch == self.epoch:  # only this group's sum holds the position's term
            cache = self._initial.get(asset)
            if cache is not None and (entry := cache.get(account)) is not None:
                if entry[0] == epoch:
                    cache[account] = (epoch, entry[1] + change)
                else:
                    del cache[account]
            return
        self.forget_initial(account)

    def forget_initial(self, account: int) -> None:
        """Drop the account's cached sums of initial terms (a position or its settings changed)."""
        for cache in self._initial.values():
            cache.pop(account, None)

    def balance_moved(self, account: int) -> None:
        """A spot or outcome trade, or a market action, moved the account's balances outside margined markets: if
        margin constrains it, `check_soon` (it may be below maintenance now, with no price move)."""
        if self.exposed(account):
            self.check_soon(account)

    def check_soon(self, account: int) -> None:
        """`account` may be under water now (a fill far from mark, a funding payment): check it in this command."""
        self.liquidator.urgent[account] = None

    # ------------------------------------------------------------ equity and requirements

    def values(self, account: int, group: RiskGroup, locked: bool) -> int:
        """The group's settlement balance, collateral and worst-case shares of `account` (locked ones too if asked)."""
        ledger = self.engine.ledger
        asset = group.asset
        total: int = ledger.available[asset][account]
        if locked:
            total += ledger.locked[asset][account]
        for c in group.collateral:
            if c.num:
                units = ledger.available[c.asset][account]
                if locked:
                    units += ledger.locked[c.asset][account]
                if units > 0:
                    total += units * c.num // c.den
        for source in self.share_sources:
            total += source.collateral_value(account, asset, locked)
        return total

    def cross(self, account: int, group: RiskGroup) -> tuple[int, int, int, int, int]:
        """Σ over the account's cross positions in the group: (positive uPnL, negative uPnL, IM, MM, notional)."""
        gain = loss = im = mm = notional = 0
        asset = group.asset
        for market in self.positions.get(account, ()):
            if market.settlement != asset:
                continue
            terms = market.terms(account)
            if terms is None:
                continue
            upnl, t_im, t_mm, t_notional = terms
            if upnl > 0:
                gain += upnl
            else:
                loss += upnl
            im += t_im
            mm += t_mm
            notional += t_notional
        return gain, loss, im, mm, notional

    def free_initial(self, account: int, asset: int) -> int:
        """What the account can still commit in group `asset`: available value + uPnL − initial margin."""
        return self.values(account, self.groups[asset], False) + self._initial_terms(account, asset)

    def covers_initial(self, account: int, asset: int, amount: int) -> bool:
        """Whether `free_initial` is at least `amount` (the order path's check).

        The settlement balance and the positions are tried first: collateral and outcome shares only ever add
        (a venue with many prediction events would otherwise value every one of them for every order)."""
        terms = self._initial_terms(account, asset)
        if self.engine.ledger.available[asset][account] + terms >= amount:
            return True
        group = self.groups[asset]
        return bool(group.collateral or self.share_sources) and self.values(account, group, False) + terms >= amount

    def _initial_terms(self, account: int, asset: int) -> int:
        """Σ (uPnL − IM) of the account's cross positions in group `asset`, kept as of `epoch` (fills move it)."""
        cache = self._initial.get(asset)
        if cache is None:
            cache = self._initial[asset] = {}
        hit = cache.get(account)
        if hit is not None and hit[0] == self.epoch:
            return hit[1]
        positions = 0
        for market in self.positions.get(account, ()):
            if market.settlement == asset:
                terms = market.initial_terms(account)
                if terms is not None:
                    positions += terms
        cache[account] = (self.epoch, positions)
        return positions

    def free_withdraw(self, account: int, asset: int) -> int:
        """What a withdrawal or transfer may take: available value, losses, a share of gains, less max(IM, floor)."""
        group = self.groups[asset]
        gain, loss, im, _, notional = self.cross(account, group)
        floor = -(-notional * self.withdraw_floor_bps // _BPS)
        return self.values(account, group, False) + loss + gain * self.upnl_withdraw_bps // _BPS - max(im, floor)

    def maintenance(self, account: int, asset: int) -> tuple[int, int]:
        """(equity, maintenance margin) of the account's cross holdings in group `asset`."""
        group = self.groups[asset]
        upnl = mm = 0
        for market in self.positions.get(account, ()):
            if market.settlement == asset:
                terms = market.maintenance_terms(account)
                if terms is not None:
                    upnl += terms[0]
                    mm += terms[1]
        return self.values(account, group, True) + upnl, mm

    def equity(self, account: int, asset: int) -> int:
        """Everything the account owns in the group at mark (cross positions; isolated ones are their own)."""
        return self.maintenance(account, asset)[0]

    def groups_of(self, account: int) -> Iterator[RiskGroup]:
        """The groups the account holds a position in, or owes (a negative settlement balance) in."""
        available = self.engine.ledger.available
        held = {market.settlement for market in self.positions.get(account, ())}
        for asset in sorted(self.groups):
            if asset in held or available[asset][account] < 0:
                yield self.groups[asset]

    def exposed(self, account: int) -> bool:
        """Whether unified margin constrains the account (it holds a margined position or owes a settlement asset)."""
        if account in self.positions:
            return True
        available = self.engine.ledger.available
        return any(available[asset][account] < 0 for asset in self.groups)

    # ------------------------------------------------------------ oracle prices

    def on_feed(self, feed: str, price: int | None, now: int) -> tuple[list[Any], list[Collateral]]:
        """A feed moved: its collateral observes a live price; returns (its margined markets, repriced collateral)."""
        markets, collateral = [], []
        for item in self.by_feed.get(feed, ()):
            if isinstance(item, Collateral):
                if price is not None:
                    item.observe(price, now)
                    collateral.append(item)
            else:
                markets.append(item)
        return markets, collateral

    # ------------------------------------------------------------ state and checks

    def dump(self) -> bytes:
        """Canonical bytes of the margin's own state: each collateral's stable price."""
        return json.dumps([c.state() for c in self.collateral], separators=(",", ":")).encode()

    def load(self, data: bytes) -> None:
        """Replace the stable prices with a dump's, and rebuild what derives from the markets' state."""
        for c, state in zip(self.collateral, json.loads(data), strict=True):
            c.restore(state)
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute the account → markets index from the markets, and mark every exposed account for a check.

        Exposed: holding a margined position, or owing a group's asset (a debt backed by collateral)."""
        self.positions = {}
        for group in self.groups.values():
            for ms in group.markets:
                market: Any = ms.market
                for account in market.accounts():
                    self.position_opened(account, market)
        self.liquidator.reset()
        self._initial = {}
        self.epoch += 1
        available = self.engine.ledger.available
        owing = {account for asset in self.groups for account, amount in enumerate(available[asset]) if amount < 0}
        for account in sorted(owing | self.positions.keys()):
            self.touched(account)

    def check_invariants(self) -> None:
        """No account's equity is negative in any group, nor any isolated position's; cached sums are exact."""
        for asset, cache in self._initial.items():
            for account, (epoch, total) in cache.items():
                if epoch == self.epoch:
                    fresh = sum(m.initial_terms(account) or 0 for m in self.positions.get(account, ())
                                if m.settlement == asset)  # fmt: skip
                    assert total == fresh, f"account {account}: cached initial terms {total}, recomputed {fresh}"
        ledger = self.engine.ledger
        venue = self.venue_accounts  # a pool holds −Σ basis, the bad-debt account the venue's losses: below zero
        for asset, group in sorted(self.groups.items()):
            column = ledger.available[asset]
            for account in range(len(ledger.accounts)):
                if account in venue or (account not in self.positions and column[account] >= 0):
                    continue
                equity = self.equity(account, asset)
                if equity < 0:
                    address, sub = ledger.accounts[account]
                    raise AssertionError(f"{group.symbol}: account 0x{address.hex()}/{sub} has equity {equity} < 0")
            for ms in group.markets:
                market: Any = ms.market
                for account in market.accounts():
                    terms = market.isolated_terms(account)
                    if terms is not None and terms[0] < 0:
                        raise AssertionError(f"{ms.name}: isolated position of account {account} has equity {terms[0]}")


# a margined market's index: accounts list their markets in listing order (a C-level key: no Python frame)
_MARKET_ID = attrgetter("market_id")
