"""What market types see of the engine outside the order path: a read-only view and the action context.

A market's `action` (a MarketAction command) and `on_timer` run with a `Context`; every mutation goes
through it, so the core keeps its accounting: shares a market issues or burns count as the asset's
deposits or withdrawals, and the ledger invariant (balances sum to deposits − withdrawals) holds for
outcome shares as for any asset. Events a context emits carry the command's sequence number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from exos.commands import STATUS_NAMES, canonical_json
from exos.events import EventKind
from exos.timers import TimerKind

if TYPE_CHECKING:
    from exos.engine import Engine
    from exos.events import RawEvent

_MARKET_EVENT = int(EventKind.MARKET_EVENT)
_STATUS_CHANGED = int(EventKind.MARKET_STATUS_CHANGED)


def system_address(label: str) -> bytes:
    """The 20-byte address of a venue-owned account: a hash no private key is known for."""
    return hashlib.sha256(b"exos/system/" + label.encode()).digest()[:20]


class View:
    """The read-only `EngineView` (it reads the engine live, so it survives a state load)."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        """A view over `engine`."""
        self._engine = engine

    @property
    def now(self) -> int:
        """The timestamp of the command being applied (ms)."""
        return self._engine.last_timestamp

    def balance(self, account: int, asset: int) -> tuple[int, int]:
        """(available, locked) of an account in an asset."""
        ledger = self._engine.ledger
        return ledger.available[asset][account], ledger.locked[asset][account]

    def supply(self, asset: int) -> int:
        """Deposits (issuance) minus withdrawals (burns) of an asset."""
        ledger = self._engine.ledger
        return ledger.deposits[asset] - ledger.withdrawals[asset]

    def holders(self, asset: int) -> list[tuple[int, int, int]]:
        """(account, available, locked) of every account with a non-zero balance, in account order."""
        ledger = self._engine.ledger
        available, locked = ledger.available[asset], ledger.locked[asset]
        return [(i, a, lk) for i, (a, lk) in enumerate(zip(available, locked, strict=True)) if a or lk]

    def address(self, account: int) -> tuple[bytes, int]:
        """The (address, sub-account) of an account index."""
        return self._engine.ledger.accounts[account]

    def open_orders(self, market_id: int) -> int:
        """How many orders rest in a market's book."""
        return self._engine.markets[market_id].book.open_orders

    @property
    def resolution_sources(self) -> Mapping[str, Any]:
        """The resolution sources the enabled plugins register, by name."""
        return self._engine.plugins.resolution_sources

    def best_prices(self, market_id: int) -> tuple[int | None, int | None]:
        """(best bid, best ask) of a market's book in ticks (None for an empty side)."""
        book = self._engine.markets[market_id].book
        bid, ask = book.best_bid(), book.best_ask()
        return (bid[0] if bid else None), (ask[0] if ask else None)

    def market_index(self, name: str) -> int | None:
        """The id (index) of a listed market by name, or None while no market of that name is listed."""
        try:
            index: int = self._engine.market_state(name).index
            return index
        except KeyError:
            return None

    def last_trade(self, market_id: int) -> int | None:
        """The price (ticks) of a market's last trade, for market types that keep one as `last_price` (perpetuals
        do; spot keeps none), else None."""
        last = getattr(self._engine.markets[market_id].market, "last_price", None)
        return last if type(last) is int else None

    def feed_units(self, market_id: int, ticks: int, feed: str) -> int:
        """A price in a market's ticks expressed in a feed's fixed point (its manifest `decimals`), rounded half up.

        The inverse of the engine's feed-to-ticks conversion (`Engine.feed_scale`); KeyError for a feed the
        manifest does not name."""
        num, den = self._engine.feed_scale(market_id, feed)
        return (2 * ticks * den + num) // (2 * num)

    def depth(self, market_id: int, side: int, levels: int) -> list[tuple[int, int, int]]:
        """A market's best `levels` levels on one side (0 bids, 1 asks): (price, size, count), best first."""
        return [(lv.price, lv.size, lv.count) for lv in self._engine.markets[market_id].book.depth(side, levels)]

    def open_orders_of(self, market_id: int, account: int) -> int:
        """How many open orders an account has in a market."""
        engine = self._engine
        return len(engine.markets[market_id].book.owner_orders(engine.ledger.masters[account], 0, account))


class Context(View):
    """The `MarketContext` of one command (or one timer firing)."""

    __slots__ = ("_base", "_cause", "_out", "_seq", "actor", "is_admin", "market_id", "signer")

    def __init__(
        self,
        engine: Engine,
        market_id: int,
        actor: tuple[bytes, int],
        signer: bytes,
        seq: int,
        base: int,
        out: list[RawEvent],
        cause: int,
    ) -> None:
        """A context for one command's (or timer's) work on `market_id`."""
        super().__init__(engine)
        self.market_id = market_id
        self.actor = actor
        self.signer = signer
        self.is_admin = signer in engine.admins
        self._seq, self._base, self._out, self._cause = seq, base, out, cause

    def account(self, address: bytes, sub: int) -> int | None:
        """The index of an existing account, or None."""
        return self._engine.ledger.find_account(address, sub)

    def open_account(self, address: bytes, sub: int) -> int:
        """The index of an account, creating it if new."""
        return self._engine.ledger.open_account(address, sub)

    def system_account(self, label: str) -> int:
        """A venue-owned account whose address derives from `label`."""
        return self._engine.ledger.open_account(system_address(label), 0)

    def move(self, source: int, asset: int, amount: int, target: int) -> None:
        """Move available balance between accounts."""
        self._engine.ledger.move_available(source, asset, amount, target)

    def issue(self, account: int, asset: int, amount: int) -> None:
        """Create shares in an account (counted as the asset's deposits)."""
        self._engine.ledger.deposit(account, asset, amount)

    def burn(self, account: int, asset: int, amount: int) -> None:
        """Destroy shares from an account's available balance (counted as the asset's withdrawals)."""
        self._engine.ledger.withdraw(account, asset, amount)

    def charge_fee(self, payer: int, asset: int, amount: int) -> None:
        """Move an amount from the payer to the venue's fee account."""
        self._engine.ledger.charge_fee(payer, asset, amount)

    def schedule(self, time: int, market_id: int, tag: int) -> None:
        """Call the market's on_timer(ctx, tag) when command time reaches `time`."""
        self._engine.timers.add(time, TimerKind.MARKET, market_id, tag)

    def set_status(self, market_id: int, status: str) -> None:
        """Set a market's engine status; settling one cancels its orders first."""
        engine = self._engine
        ms = engine.markets[market_id]
        value = int(STATUS_NAMES[status])
        if ms.status == value:
            return
        if status in ("halted", "settled"):
            self.cancel_orders(market_id)
        ms.status = value
        out = self._out
        out.append((self._seq, len(out) - self._base, self._cause, _STATUS_CHANGED, ms.name, status))

    def cancel_orders(self, market_id: int) -> None:
        """Cancel every resting order of a market (owners in index order), releasing locks."""
        engine = self._engine
        engine.cancel_market_orders(engine.markets[market_id], self._seq, self._base, self._out, self._cause)

    def close_into_book(self, market_id: int, account: int, side: int, price: int, lots: int) -> int:
        """An immediate-or-cancel order of up to `lots` at limit `price` for a venue account (reduce-only and
        fee-free on a margined market, as a liquidation's); the lots it filled, the rest cancelled."""
        engine = self._engine
        return engine.system_order(engine.markets[market_id], account, side, price, lots, self._seq, self._base,
                                   self._out, self._cause)  # fmt: skip

    def emit(self, market_id: int, name: str, detail: Mapping[str, Any]) -> None:
        """Append a MarketEvent with canonical JSON detail."""
        out = self._out
        market = self._engine.markets[market_id].name
        out.append(
            (self._seq, len(out) - self._base, self._cause, _MARKET_EVENT, market, name,
             canonical_json(dict(detail)).decode())
        )  # fmt: skip
