"""REST endpoints over the history store (read-only; the projector process writes it).

    GET /v1/history/orders?address&sub&market&before&since&until&limit
    GET /v1/history/fills?address&sub&market&before&since&until&limit
    GET /v1/history/transfers?address&sub&before&since&until&limit      deposits, withdrawals, transfers
    GET /v1/history/settlements?address&market&before&since&until&limit payouts and resolutions
    GET /v1/markets/{m}/candles?interval=1m|5m|1h|1d&since&until&limit

Pages are newest first: pass the answer's `next_before` as `before` for the next page. `since` and
`until` are command times in ms. Each answer says `as_of_seq`, the last journal sequence projected.

An account's orders, fills, transfers and payouts are private: `address` is required and the request
signed for it (`exos.auth`). Settlements without an address are the markets' resolutions, public.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from exos import history
from exos.auth import may_read
from exos.sequencer import QueryError, address_param, bounded


class HistoryReader:
    """A read-only connection to the store, opened once the projector has created it."""

    def __init__(self, path: str | Path | None) -> None:
        """Read the store at `path` (None: this server keeps no history)."""
        self.path = path
        self.db: history.Store | None = None

    def connection(self) -> history.Store:
        """The connection (QueryError 404 without a store, 503 before the projector made it)."""
        if self.path is None:
            raise QueryError(404, "NO_HISTORY", "this server keeps no history (start it with --journal)")
        if self.db is None:
            if not str(self.path).startswith(("postgresql://", "postgres://")) and not Path(self.path).exists():
                raise QueryError(503, "HISTORY_STARTING", "the history store is being built from the journal")
            self.db = history.connect(self.path, readonly=True)
        return self.db

    def as_of(self) -> str:
        """The last journal sequence the store holds."""
        value = self.connection().value("SELECT value FROM meta WHERE key = 'last_seq'")
        return str(value) if value is not None else "0"


@contextlib.contextmanager
def _built() -> Iterator[None]:
    """Read the store, answering 503 HISTORY_STARTING while the projector is still creating its tables."""
    try:
        yield
    except Exception as exc:
        # the file (or database) exists a moment before its schema: SQLite's and psycopg's errors for that
        if "no such table" in str(exc) or type(exc).__name__ == "UndefinedTable":
            raise QueryError(503, "HISTORY_STARTING", "the history store is being built from the journal") from None
        raise


def _check(limit: int, since: int | None, until: int | None) -> None:
    """Query bounds."""
    bounded("limit", limit, 1, history.PAGE_MAX)
    for name, value in (("since", since), ("until", until)):
        if value is not None and not 0 <= value < 2**63:
            raise QueryError(422, "BAD_REQUEST", f"{name}: 0..2^63-1")


def _cursor(before: str | None) -> tuple[int, int] | None:
    """A `before` cursor ("seq.idx" from a previous page's `next_before`)."""
    if before is None:
        return None
    parts = before.split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise QueryError(422, "BAD_REQUEST", "before: a previous page's next_before (two integers joined by '.')")
    return int(parts[0]), int(parts[1])


def add_routes(app: FastAPI, reader: HistoryReader, responses: dict[int | str, dict[str, Any]],
               signed_by: Callable[..., Awaitable[bytes]], signed_if_named: Callable[..., Awaitable[bytes | None]],
               private: dict[int | str, dict[str, Any]]) -> None:  # fmt: skip
    """Register the history endpoints on `app`. `signed_by`: the dependency giving a private read's signed account
    (`signed_if_named`: the same, or None when the query names no account); `private`: what private reads answer."""

    def owner(signed: bytes, address: str) -> str:
        """The address filter of a private read, which must be the signed account's (QueryError 403 otherwise)."""
        may_read(signed, raw := address_param(address))
        return "0x" + raw.hex()

    def listing(table: str, where: dict[str, Any], before: str | None, since: int | None, until: int | None,
                limit: int) -> dict[str, Any]:  # fmt: skip
        _check(limit, since, until)
        db = reader.connection()
        with _built():
            items = history.page(db, table, where, before=_cursor(before), limit=limit, since_ms=since,
                                 until_ms=until)  # fmt: skip
            next_before = history.cursor(table, items[-1]) if len(items) == limit else None
            return {"items": items, "next_before": next_before, "as_of_seq": reader.as_of()}

    @app.get("/v1/history/orders", responses=private)
    async def order_history(address: str, sub: int | None = None, market: str | None = None,
                            before: str | None = None, since: int | None = None, until: int | None = None,
                            limit: int = 100, signed: bytes = Depends(signed_by)) -> Any:  # fmt: skip
        """Private: the account's orders (with final status and filled size), newest first."""
        where = {"address": owner(signed, address), "sub": sub, "market": market}
        return listing("orders", where, before, since, until, limit)

    @app.get("/v1/history/fills", responses=private)
    async def fill_history(address: str, sub: int | None = None, market: str | None = None,
                           before: str | None = None, since: int | None = None, until: int | None = None,
                           limit: int = 100, signed: bytes = Depends(signed_by)) -> Any:  # fmt: skip
        """Private: the account's fills, newest first."""
        where = {"address": owner(signed, address), "sub": sub, "market": market}
        return listing("fills", where, before, since, until, limit)

    @app.get("/v1/history/transfers", responses=private)
    async def transfer_history(
        address: str, sub: int | None = None, before: str | None = None, since: int | None = None,
        until: int | None = None, limit: int = 100, signed: bytes = Depends(signed_by),
    ) -> Any:  # fmt: skip
        """Private: the account's deposits, withdrawals and transfers between sub-accounts, newest first."""
        return listing("transfers", {"address": owner(signed, address), "sub": sub}, before, since, until, limit)

    @app.get("/v1/history/settlements", responses=private)
    async def settlement_history(
        address: str | None = None, market: str | None = None, before: str | None = None, since: int | None = None,
        until: int | None = None, limit: int = 100, signed: bytes | None = Depends(signed_if_named),
    ) -> Any:  # fmt: skip
        """Markets' resolutions (no address: public), or an account's payouts (with its address: private)."""
        if address is None or signed is None:
            where: dict[str, Any] = {"address": history.NULL, "market": market}
        else:
            where = {"address": owner(signed, address), "market": market}
        return listing("settlements", where, before, since, until, limit)

    @app.get("/v1/markets/{market}/candles", responses=responses)
    async def market_candles(market: str, interval: str = "1m", since: int | None = None, until: int | None = None,
                             limit: int = 500) -> Any:  # fmt: skip
        """OHLC candles in ticks (YES terms for outcome markets) with volume in lots and trade counts."""
        if interval not in history.INTERVALS:
            raise QueryError(422, "BAD_REQUEST", f"interval: one of {', '.join(history.INTERVALS)}")
        _check(limit, since, until)
        with _built():
            items = history.candles(reader.connection(), market, interval, since_ms=since, until_ms=until, limit=limit)
            return {"market": market, "interval": interval, "items": items, "as_of_seq": reader.as_of()}
