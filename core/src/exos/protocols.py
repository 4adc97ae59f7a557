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

API_VERSION = 1


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


@attrs.define
class FillSide:
    """One side of a fill as a market type settles it.

    `slots` are the order's four engine slots (each an unsigned 64-bit integer); slot 0 is the core's
    (the account), slots 1-3 belong to the market type, which may update them (the core writes them
    back to the book)."""

    account: int
    side: int
    limit_price: int
    slots: list[int]


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
    """Turns what one order has received in one liquidity role into the fee charged for it so far."""

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
    """The per-market object a market type creates; the order path calls its methods directly."""

    def validate(self, side: int, price: int, size: int, tif: int) -> None:
        """Raise OrderRejection for an order this market cannot take (minimum size or notional, ...)."""
        ...

    def lock_requirement(self, side: int, price: int, size: int) -> tuple[int, int]:
        """(asset, amount) an order of `size` lots at limit `price` must hold locked while it rests.

        The asset may depend on the side only (an amend re-locks in the same asset), and size 0
        needs 0 (an amend to the filled size releases the whole lock)."""
        ...

    def initial_slots(self, side: int, price: int, size: int) -> tuple[int, int, int]:
        """The order's slots 1-3 when it enters the book (e.g. the token an outcome order trades)."""
        ...

    def settle_fill(
        self, taker: FillSide, maker: FillSide, price: int, size: int, ledger: LedgerContext
    ) -> tuple[int, int, int, int]:
        """Move assets for one fill at the maker's price; return (taker fee, its asset, maker fee, its asset).

        Both orders hold their `lock_requirement`; the market type pays out of those locks (and
        unlocks a taker's price improvement), charges fees through `ledger.charge_fee` and may update
        the sides' slots 1-3."""
        ...


class MarketType(Protocol):
    """A kind of market (spot, perpetual, binary outcome) that a plugin registers."""

    api_version: int
    name: str

    def create_market(self, info: MarketInfo, fees: FeeModel) -> Market:
        """Build the per-market object of a newly listed market."""
        ...


class MarginProvider(Protocol):
    """How much of each asset an account must keep for its positions and orders in one market type."""

    api_version: int
    name: str

    def requirement(self, account: int, locks: Mapping[int, int]) -> dict[int, int]:
        """Per asset, the amount the account needs, given its locked balances (spot: exactly its locks)."""
        ...
