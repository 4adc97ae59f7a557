"""The plugin-facing protocols: what a market type, fee model, order check or margin provider implements.

Every registered object carries an `api_version`; the plugin manager refuses, at load time, an object
whose version differs from the core's `API_VERSION`, so a plugin built for another core fails with a
clear message, never mid-trade. Plugins see the engine only through the narrow `LedgerContext`, never
the ledger's internals. Amounts are integers in an asset's smallest unit, prices are ticks, sizes are
lots (DESIGN §2.1).

Per DESIGN §2.2 none of these is called through pluggy on the order path: when a market is listed the
engine asks the plugins once (the `exos_register_*` hooks) and keeps the returned objects, whose
methods the hot path calls directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

# compiled with the engine (exos/fill.py); re-exported here for plugins, in PEP 484's explicit form
from exos.fill import FillSide as FillSide  # noqa: PLC0414

API_VERSION = 2


class OrderRejection(Exception):
    """Raised by plugin code on the order path to reject an order with a machine-readable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class OrderIntent:
    """An order as plugins see it before it reaches the book (price in ticks, size in lots)."""

    market: int
    account: int
    side: int
    price: int
    size: int
    tif: int
    post_only: bool
    outcome: int = 0


@attrs.frozen
class MarketInfo:
    """What a market type knows about a market it serves (integers derived from the manifest)."""

    market_id: int
    name: str
    base_asset: int
    quote_asset: int
    lot_units: int
    quote_per_tick_lot: int
    min_lots: int
    min_notional_units: int
    params: Mapping[str, Any]
    outcome_assets: tuple[int, ...] = ()
    base_decimals: int = 0
    quote_decimals: int = 0


class LedgerContext(Protocol):
    """The narrow view of the ledger a market type uses while it settles a fill."""

    def pay_locked(self, payer: int, asset: int, amount: int, payee: int) -> None:
        """Move amount out of the payer's locked balance into the payee's available balance."""
        ...

    def unlock(self, account: int, asset: int, amount: int) -> None:
        """Move amount from an account's locked balance back to its available balance."""
        ...

    def charge_fee(self, payer: int, asset: int, amount: int) -> None:
        """Move a fee from the payer's available balance to the venue's fee account (negative: a rebate)."""
        ...

    def move(self, source: int, asset: int, amount: int, target: int) -> None:
        """Move available balance between two accounts (an outcome market's vault paying out)."""
        ...

    def issue(self, account: int, asset: int, amount: int) -> None:
        """Create shares of an asset the market owns in an account's available balance (a mint)."""
        ...

    def burn_locked(self, account: int, asset: int, amount: int) -> None:
        """Destroy shares out of an account's locked balance (a merge)."""
        ...


@runtime_checkable
class StatefulPlugin(Protocol):
    """Plugin state that lives in snapshots and in the state hash."""

    def dump(self) -> bytes:
        """Canonical bytes of the state: equal states give equal bytes."""
        ...

    def load(self, data: bytes) -> None:
        """Replace the state with what `dump` wrote."""
        ...

    def check_invariants(self) -> None:
        """Raise AssertionError naming a broken invariant."""
        ...


class FeeModel(Protocol):
    """Turns what one order has received in one liquidity role into the fee charged for it so far.

    A model whose `fee` is exactly `exos.rates.venue_fee(received, maker_centibps if maker else
    taker_centibps)` may say so with a class attribute `flat = True` (and keep those two integer rates as
    attributes): a market type may then compute the fee inline rather than call `fee` (perpetuals do)."""

    def fee(self, received: int, maker: bool) -> int:
        """Total fee (negative: a rebate) on `received` units, rounded once, in the venue's favour."""
        ...


class FeeModelFactory(Protocol):
    """A kind of fee model a plugin registers; builds one per market from `[markets.fees]`."""

    api_version: int
    name: str

    def create(self, maker_centibps: int, taker_centibps: int, params: Mapping[str, Any]) -> FeeModel:
        """The fee model of one market (rates in hundredths of a basis point)."""
        ...


class OrderCheck(Protocol):
    """A pre-trade check run on every order of every market of a venue that enables its plugin.

    `check` must not change any state: the order may still be refused after it (for balance, by the
    book), and a refused command changes nothing. A stateful check also implements StatefulPlugin."""

    api_version: int
    name: str

    def check(self, intent: OrderIntent) -> None:
        """Raise OrderRejection to refuse the order; return to let it through."""
        ...


class Market(StatefulPlugin, Protocol):
    """The per-market object a market type creates; the order path calls its methods directly.

    Sides and prices are in book terms. A market with outcomes (`outcomes` > 1, e.g. YES and NO of a
    binary market) serves them all from one book: `book_order(side, price, outcome)` maps an order on
    outcome k into the book (and back: it must be its own inverse), and the core stores k in the
    order's slot 3. Optional extras the engine looks for: `manages_status` (the market type drives the
    status through its context; SetMarketStatus is refused), `taker_delay_ms` (while > 0, an order
    that would trade at once waits that long first), `on_listed(ctx)`, `action(ctx, name, args)` for
    MarketAction commands and `on_timer(ctx, tag)` for timers it scheduled (see `MarketContext`)."""

    def validate(self, side: int, price: int, size: int, tif: int) -> None:
        """Raise OrderRejection for an order this market cannot take (minimum size or notional, ...)."""
        ...

    def lock_requirement(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """(asset, amount) an order of `size` lots at limit `price` must hold locked while it rests.

        The asset may depend on the side and outcome only (an amend re-locks in the same asset), and
        size 0 needs 0 (an amend to the filled size releases the whole lock). It must be linear in
        size: a fill of s lots releases exactly lock(s), so what settle_fill pays comes out of it."""
        ...

    def initial_slots(self, side: int, price: int, size: int, outcome: int = 0) -> tuple[int, int]:
        """The order's slots 1-2 when it enters the book."""
        ...

    def settle_fill(
        self, taker: FillSide, maker: FillSide, price: int, size: int, ledger: LedgerContext
    ) -> tuple[int, int, int, int, int]:
        """Move assets for one fill at the maker's price; return (taker fee, its asset, maker fee, its asset, kind).

        Both orders hold their `lock_requirement`; the market type pays out of those locks (and
        unlocks a taker's price improvement), charges fees through `ledger.charge_fee` and may update
        the sides' slots 1-2. `kind` names the settlement (0 normal; outcome markets: 1 mint, 2 merge)."""
        ...


class MarginedMarket(Market, Protocol):
    """A market whose orders reserve margin instead of locking what they pay (perpetuals); `margined` is True.

    Its orders' slot 3 holds their *class*, which the market decides at `admit`: the margin an order
    reserves per lot (0: a reduce-only order, which reserves nothing). The order path computes its lock
    as size × class in the `settlement` asset (what `lock_requirement(side, price, size, class)` must
    return) and starts its slots 1-2 at 0 (what `initial_slots` must return). That lock may take the
    account's available balance below zero (a borrow) as long as unified margin (`exos.margin`) covers it. The
    engine asks `terms`/`isolated_terms` for the account's position to sum equity and requirements,
    calls `on_oracle` when the market's feed publishes (the mark is recomputed only then), and drives
    liquidation through `transfer`, `holders`, `adl_inputs` and the partial-liquidation hooks. The market tells unified
    margin (`bind_margin`) when an account's position opens or closes (`position_opened`/`position_closed`)
    and after every fill or transfer (`traded`: with the change of the position's uPnL − IM, the account's
    cached sum moves by it; without, it is recomputed at the account's next order). The engine's invariant
    check compares those sums with `initial_terms`; `exos.margintesting` checks a market type against all this."""

    margined: bool
    settlement: int
    mark: int | None
    q: int
    mm_ppm_max: int
    oracle_feed: str
    external_feed: str | None
    partial_bps: int
    waive_taker: bool
    reclip_pending: dict[int, None]

    def bind_margin(self, margin: Any) -> None:
        """Keep the engine's unified margin (to report positions opening and closing, and shrinking equity)."""
        ...

    def admit(self, account: int, side: int, price: int, size: int, reduce_only: bool) -> tuple[int, int]:
        """(the order's class, its size: clipped if reduce-only), or OrderRejection (stale oracle, band, OI cap)."""
        ...

    def terms(self, account: int) -> tuple[int, int, int, int] | None:
        """(uPnL, initial margin, maintenance margin, notional) of a cross position at mark, or None."""
        ...

    def initial_terms(self, account: int) -> int | None:
        """uPnL − initial margin of a cross position at mark, or None (the order path's cheaper `terms`)."""
        ...

    def maintenance_terms(self, account: int) -> tuple[int, int] | None:
        """(uPnL, maintenance margin) of a cross position at mark, or None (liquidation's cheaper `terms`)."""
        ...

    def isolated_terms(self, account: int) -> tuple[int, int, int, int] | None:
        """(margin + uPnL, initial margin, maintenance margin, notional) of an isolated position, or None."""
        ...

    def on_oracle(self, oracle: int | None, external: int | None, now: int) -> bool:
        """The feed published (prices in ticks; None: stale): recompute the mark; True if it moved."""
        ...

    def transfer(self, ledger: Any, source: int, target: int, lots: int, price: int) -> None:
        """Hand `lots` (signed like the source's position) of position from source to target at `price`."""
        ...

    def adl_inputs(self, longs: bool) -> list[tuple[int, int, int, int, int | None]]:
        """(account, uPnL, notional, |entry notional|, isolated margin + uPnL or None) of every long or short."""
        ...


class MarketType(Protocol):
    """A kind of market (spot, perpetual, binary outcome) that a plugin registers.

    Optional extras the engine looks for: `listing_assets(name, params, quote_decimals)` returns the
    (symbol, decimals) of assets to create with each market (a binary market's YES and NO shares,
    passed back as `MarketInfo.outcome_assets`); `bind(view)` hands over an `EngineView` once; a
    market type that keeps state across markets (a neg-risk event) implements `StatefulPlugin`."""

    api_version: int
    name: str

    def create_market(self, info: MarketInfo, fees: FeeModel) -> Market:
        """Build the per-market object of a newly listed market; raise ValueError to refuse the listing.

        It must validate everything before it records anything: a refused listing changes nothing."""
        ...


class EngineView(Protocol):
    """A read-only view of the engine, for market types' invariants and decisions."""

    @property
    def now(self) -> int:
        """The timestamp of the command being applied (ms)."""
        ...

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, locked) of an account in an asset."""
        ...

    def supply(self, asset: int) -> int:
        """Everything of an asset the venue holds: deposits (or issuance) minus withdrawals (or burns)."""
        ...

    def holders(self, asset: int) -> list[tuple[int, int, int]]:
        """(account, available, locked) of every account with a non-zero balance, in account order."""
        ...

    def address(self, account: int) -> tuple[bytes, int]:
        """The (address, sub-account) of an account index."""
        ...

    def open_orders(self, market_id: int) -> int:
        """How many orders rest in a market's book."""
        ...

    @property
    def resolution_sources(self) -> Mapping[str, Any]:
        """The resolution sources the enabled plugins register, by name."""
        ...


class MarketContext(EngineView, Protocol):
    """What a market's `action` (a MarketAction command) and `on_timer` may do.

    Validate first: raise OrderRejection before the first mutation, and the command changes
    nothing; an exception after a mutation stops the engine (fail-stop, restart from the journal)."""

    market_id: int
    signer: bytes
    actor: tuple[bytes, int]
    is_admin: bool

    def account(self, address: bytes, sub: int) -> int | None:
        """The index of an existing account, or None."""
        ...

    def open_account(self, address: bytes, sub: int) -> int:
        """The index of an account, creating it if new."""
        ...

    def system_account(self, label: str) -> int:
        """A venue-owned account (a vault, an escrow) whose address derives from `label`; no key signs for it."""
        ...

    def move(self, source: int, asset: int, amount: int, target: int) -> None:
        """Move available balance between accounts (the caller checked it is there)."""
        ...

    def issue(self, account: int, asset: int, amount: int) -> None:
        """Create `amount` of an asset the market owns (its outcome shares) in an account's available balance."""
        ...

    def burn(self, account: int, asset: int, amount: int) -> None:
        """Destroy `amount` of an asset the market owns from an account's available balance."""
        ...

    def charge_fee(self, payer: int, asset: int, amount: int) -> None:
        """Move an amount from the payer's available balance to the venue's fee account."""
        ...

    def schedule(self, time: int, market_id: int, tag: int) -> None:
        """Call `on_timer(ctx, tag)` of a market at `time` (ms)."""
        ...

    def close_into_book(self, market_id: int, account: int, side: int, price: int, lots: int) -> int:
        """An IOC for a venue account (reduce-only and fee-free on a margined market); the lots it filled."""
        ...

    def set_status(self, market_id: int, status: str) -> None:
        """Set a market's engine status (open, cancel_only, halted, settled)."""
        ...

    def cancel_orders(self, market_id: int) -> None:
        """Cancel every resting order of a market, releasing its locks."""
        ...

    def emit(self, market_id: int, name: str, detail: Mapping[str, Any]) -> None:
        """Report a market event (dotted name, JSON-able detail of ints, strings, lists)."""
        ...


class Simulation(Protocol):
    """A seeded workload a plugin ships (`exos simulate` runs it when the manifest's [simulation] names it)."""

    api_version: int
    name: str

    def run(self, engine: Any, *, seed: int, orders: int | None, params: Mapping[str, Any]) -> int:
        """Drive `engine` with a workload from `seed`, print a report; returns the process exit code."""
        ...


@attrs.frozen
class ComplianceRequest:
    """What a compliance policy decides on: an action by an address, in a market or venue-wide."""

    action: str  # "deposit", "withdraw", "place" or "approve_agent"
    address: bytes
    market: str = ""  # "" for a venue-wide action
    market_params: Mapping[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class CompliancePolicy(StatefulPlugin, Protocol):
    """A venue's rule on who may do what (KYC, allow lists, sanctions, jurisdictions), decided in the engine.

    Its lists enter only through journaled admin commands (`ComplianceUpdate`), so replays agree;
    a refusal names the list version it came from. `decide` must not change state."""

    api_version: int
    name: str

    def decide(self, request: ComplianceRequest) -> str | None:
        """None to allow; otherwise why not (naming the list and its version)."""
        ...

    def update(self, payload: Mapping[str, Any]) -> list[bytes]:
        """Apply an admin update (validate first: raise ValueError and change nothing).

        Returns the addresses that are now barred, whose resting orders the engine cancels."""
        ...


class OracleFeed(StatefulPlugin, Protocol):
    """One price feed's state: the publishers' latest prices and the aggregate they give (fixed-point integers).

    A feed may also define `bind(view)`: the engine calls it once, right after creating the feed, with its
    read-only `exos.marketctx.View` (a feed that samples the venue's own books, such as mark_ema, needs it).
    Only what `update` takes may change the state: reads through the view happen inside `update`."""

    name: str

    def update(self, publisher: bytes, source: str, price: int, published_ms: int, now: int) -> int:
        """Take a price (validate first: raise ValueError and change nothing); how many sources count now."""
        ...

    def value(self, now: int) -> int | None:
        """The aggregate price at command time `now`, or None while the feed is stale or never published."""
        ...

    def live(self, now: int) -> int:
        """How many sources count at `now`."""
        ...

    def expires_at(self, now: int) -> int | None:
        """The first time after `now` at which a source stops counting (the engine sets a timer), or None."""
        ...


class OracleKind(Protocol):
    """A registered oracle kind (pushed prices, a multi-source index, ...): builds the feeds a manifest names."""

    api_version: int
    name: str

    def create(self, feed: str, params: Mapping[str, Any]) -> OracleFeed:
        """A feed from its manifest params (ValueError names a bad param)."""
        ...


class MarginProvider(Protocol):
    """How much of each asset an account must keep for its positions and orders in one market type."""

    api_version: int
    name: str

    def requirement(self, account: int, locks: Mapping[int, int]) -> dict[int, int]:
        """Per asset, the amount the account needs, given its locked balances (spot: exactly its locks)."""
        ...
