"""The history store: a projection of the journal into SQL for paged queries by account, market and time.

The journal stays the truth. A projector process (`python -m exos.history JOURNAL DB`, started by
`exos serve --journal`) follows the journal read-only (`JournalTail`), replays every record through
its own engine to regenerate the events, and writes orders, fills, candles (1m, 5m, 1h, 1d),
deposits/withdrawals/transfers and settlement payouts, with the last sequence it applied, in one
transaction per batch. On start it catches up from that sequence; a missing database is rebuilt
from the journal. It runs outside the sequencer, so the hot path never waits on SQL.

SQLite by default (a file beside the journal; WAL mode, so API processes read while it writes).
Numbers: prices, sizes and sequences are 64-bit integers; amounts and fees are decimal strings
(they are 128-bit in the engine). Addresses are `0x`-hex, lower case. Timestamps are the command's
(the sequencer's clock, ms).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog

from exos import commands as C
from exos.events import EventKind, RawEvent

log = structlog.get_logger(__name__)

INTERVALS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
PAGE_MAX = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    market TEXT NOT NULL, order_id BIGINT NOT NULL, address TEXT NOT NULL, sub INTEGER NOT NULL,
    side INTEGER NOT NULL, price BIGINT NOT NULL, size BIGINT NOT NULL, outcome INTEGER NOT NULL,
    client_id TEXT, status TEXT NOT NULL, filled BIGINT NOT NULL, reason TEXT,
    created_seq BIGINT NOT NULL, created_ms BIGINT NOT NULL, updated_seq BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL, PRIMARY KEY (market, order_id));
CREATE INDEX IF NOT EXISTS orders_by_account ON orders (address, sub, created_seq);
CREATE TABLE IF NOT EXISTS fills (
    seq BIGINT NOT NULL, idx INTEGER NOT NULL, ts BIGINT NOT NULL, market TEXT NOT NULL, trade_id BIGINT NOT NULL,
    order_id BIGINT NOT NULL, address TEXT NOT NULL, sub INTEGER NOT NULL, side INTEGER NOT NULL,
    maker INTEGER NOT NULL, price BIGINT NOT NULL, size BIGINT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL,
    outcome INTEGER NOT NULL, fill_kind INTEGER NOT NULL, PRIMARY KEY (seq, idx));
CREATE INDEX IF NOT EXISTS fills_by_account ON fills (address, sub, seq);
CREATE INDEX IF NOT EXISTS fills_by_market ON fills (market, seq);
CREATE TABLE IF NOT EXISTS candles (
    market TEXT NOT NULL, interval TEXT NOT NULL, start_ms BIGINT NOT NULL, open BIGINT NOT NULL,
    high BIGINT NOT NULL, low BIGINT NOT NULL, close BIGINT NOT NULL, volume BIGINT NOT NULL,
    trades BIGINT NOT NULL, PRIMARY KEY (market, interval, start_ms));
CREATE TABLE IF NOT EXISTS transfers (
    seq BIGINT NOT NULL, idx INTEGER NOT NULL, ts BIGINT NOT NULL, kind TEXT NOT NULL, address TEXT NOT NULL,
    sub INTEGER NOT NULL, to_sub INTEGER, asset TEXT NOT NULL, amount TEXT NOT NULL, PRIMARY KEY (seq, idx));
CREATE INDEX IF NOT EXISTS transfers_by_account ON transfers (address, sub, seq);
CREATE TABLE IF NOT EXISTS settlements (
    seq BIGINT NOT NULL, idx INTEGER NOT NULL, ts BIGINT NOT NULL, market TEXT NOT NULL, name TEXT NOT NULL,
    address TEXT, sub INTEGER, detail TEXT NOT NULL, PRIMARY KEY (seq, idx));
CREATE INDEX IF NOT EXISTS settlements_by_account ON settlements (address, seq);
CREATE INDEX IF NOT EXISTS settlements_by_market ON settlements (market, seq);
"""

_ACCEPTED, _FILL = int(EventKind.ORDER_ACCEPTED), int(EventKind.FILL)
_CANCELLED, _EXPIRED = int(EventKind.ORDER_CANCELLED), int(EventKind.ORDER_EXPIRED)
_AMENDED, _DELAYED = int(EventKind.ORDER_AMENDED), int(EventKind.ORDER_DELAYED)
_DEPOSITED, _WITHDRAWN = int(EventKind.DEPOSITED), int(EventKind.WITHDRAWN)
_TRANSFERRED, _MARKET_EVENT = int(EventKind.TRANSFERRED), int(EventKind.MARKET_EVENT)


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


class Store:
    """One connection to the store, SQLite (a file path) or PostgreSQL (a `postgresql://` DSN), in one SQL dialect:
    statements are written for SQLite and translated (placeholders, GREATEST/LEAST) for PostgreSQL."""

    def __init__(self, target: str | Path, *, readonly: bool = False) -> None:
        """Connect (and create the schema unless read-only)."""
        self.postgres = str(target).startswith(("postgresql://", "postgres://"))
        self.target = str(target)
        if self.postgres:
            import psycopg

            self.db: Any = psycopg.connect(self.target, autocommit=True)
            if not readonly:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
        elif readonly:
            self.db = sqlite3.connect(f"file:{target}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # the journal is the truth: a lost tail is re-projected
            self.db.executescript(SCHEMA)

    def _sql(self, sql: str) -> str:
        """The statement in this store's dialect."""
        if not self.postgres:
            return sql
        return (
            sql.replace("?", "%s")
            .replace("MAX(candles.", "GREATEST(candles.")
            .replace("MIN(candles.", "LEAST(candles.")
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        self.db.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Any) -> None:
        """Run one statement per row."""
        rows = list(rows)
        if rows:
            cursor = self.db.cursor()
            cursor.executemany(self._sql(sql), rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A query's rows as dicts."""
        cursor = self.db.execute(self._sql(sql), params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of a query's first row, or None."""
        row = self.db.execute(self._sql(sql), params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
        """Use in a with-block that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()


def connect(target: str | Path, *, readonly: bool = False) -> Store:
    """The store at a file path (SQLite) or a `postgresql://` DSN."""
    return Store(target, readonly=readonly)


class AnotherJournal(Exception):
    """The store was built from another journal (the record at its last sequence differs, or the journal is
    shorter): it is emptied and rebuilt."""


class Projection:
    """Writes one engine's events into the store; knows the last sequence it applied."""

    def __init__(self, db: Store, engine: Any) -> None:
        """Project `engine`'s events (a replica replaying the journal) into `db`."""
        self.db = db
        self.engine = engine
        value = db.value("SELECT value FROM meta WHERE key = 'last_seq'")
        self.last_seq = int(value) if value is not None else 0
        self.last_record = db.value("SELECT value FROM meta WHERE key = 'last_record'")  # sha256 of that record

    def clear(self) -> None:
        """Empty the store (to rebuild it from another journal)."""
        for table in ("orders", "fills", "candles", "transfers", "settlements", "meta"):
            self.db.execute(f"DELETE FROM {table}")
        self.last_seq, self.last_record = 0, None

    def apply(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Replay journal records through the replica; project those past `last_seq` in one transaction."""
        for seq, payload in records:
            if seq == self.last_seq and hashlib.sha256(payload).hexdigest() != self.last_record:
                raise AnotherJournal(f"the store's record {seq} is not this journal's")
        skip = [payload for seq, payload in records if seq <= self.last_seq]
        if skip:
            self.engine.replay(skip)
        fresh = [(seq, payload) for seq, payload in records if seq > self.last_seq]
        if not fresh:
            return 0
        times = {seq: C.timestamp_of(payload) for seq, payload in fresh}
        events = self.engine.submit_records([payload for _, payload in fresh])
        db = self.db
        db.execute("BEGIN")
        try:
            self._write(events, times)
            self.last_seq = fresh[-1][0]
            self.last_record = hashlib.sha256(fresh[-1][1]).hexdigest()
            for key, value in (("last_seq", str(self.last_seq)), ("last_record", self.last_record)):
                db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                           "value = excluded.value", (key, value))  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(fresh)

    def _write(self, events: list[RawEvent], times: dict[int, int]) -> None:
        """Insert or update the rows the events stand for.

        Orders placed in this batch are kept in memory until its end, so an order that is placed and then
        filled or cancelled in the same batch (most of them, under load) is written once."""
        db = self.db
        candles: dict[tuple[str, str, int], list[int]] = {}
        fresh: dict[tuple[str, int], list[Any]] = {}
        fills: list[tuple[Any, ...]] = []
        transfers: list[tuple[Any, ...]] = []
        for e in events:
            kind, seq = e[3], e[0]
            ts = times[seq]
            if kind == _FILL:
                fills.append((seq, e[1], ts, e[4], e[5], e[6], _hex(e[7]), e[8], e[9], int(e[10]), e[11], e[12],
                              str(e[13]), e[14], e[17], e[18]))  # fmt: skip
                row = fresh.get((e[4], e[6]))
                if row is None:
                    db.execute("UPDATE orders SET filled = filled + ?, status = CASE WHEN filled + ? >= size THEN "
                               "'filled' ELSE status END, updated_seq = ?, updated_ms = ? WHERE market = ? AND "
                               "order_id = ?", (e[12], e[12], seq, ts, e[4], e[6]))  # fmt: skip
                else:
                    row[10] += e[12]
                    if row[10] >= row[6]:
                        row[9] = "filled"
                    row[14], row[15] = seq, ts
                if not e[10]:
                    self._candle(candles, e, ts)
            elif kind == _ACCEPTED or kind == _DELAYED:
                row = fresh.get((e[4], e[5]))
                if row is None:
                    client_id = _hex(e[12]) if kind == _ACCEPTED and e[12] is not None else None
                    outcome = e[14] if kind == _ACCEPTED else e[11]
                    status = "open" if kind == _ACCEPTED else "delayed"
                    fresh[(e[4], e[5])] = [e[4], e[5], _hex(e[6]), e[7], e[8], e[9], e[10], outcome, client_id,
                                           status, 0, None, seq, ts, seq, ts]  # fmt: skip
                else:  # a delayed order entering the book
                    row[9], row[14], row[15] = "open", seq, ts
            elif kind == _CANCELLED or kind == _EXPIRED:
                status = "expired" if kind == _EXPIRED else "cancelled"
                row = fresh.get((e[4], e[5]))
                if row is None:
                    db.execute("UPDATE orders SET status = ?, reason = ?, updated_seq = ?, updated_ms = ? WHERE "
                               "market = ? AND order_id = ? AND status != 'filled'",
                               (status, e[9], seq, ts, e[4], e[5]))  # fmt: skip
                elif row[9] != "filled":
                    row[9], row[11], row[14], row[15] = status, e[9], seq, ts
            elif kind == _AMENDED:
                row = fresh.get((e[4], e[5]))
                if row is None:
                    db.execute("UPDATE orders SET price = ?, size = filled + ?, updated_seq = ?, updated_ms = ? WHERE "
                               "market = ? AND order_id = ?", (e[8], e[10], seq, ts, e[4], e[5]))  # fmt: skip
                else:
                    row[5], row[6], row[14], row[15] = e[8], row[10] + e[10], seq, ts
            elif kind == _DEPOSITED or kind == _WITHDRAWN:
                transfers.append((seq, e[1], ts, "deposit" if kind == _DEPOSITED else "withdrawal", _hex(e[4]), e[5],
                                  None, e[6], str(e[7])))  # fmt: skip
            elif kind == _TRANSFERRED:
                transfers.append((seq, e[1], ts, "transfer", _hex(e[4]), e[5], e[6], e[7], str(e[8])))
            elif kind == _MARKET_EVENT and ("payout" in e[5] or "settled" in e[5] or "resolved" in e[5]):
                detail = json.loads(e[6])
                db.execute("INSERT INTO settlements VALUES (?,?,?,?,?,?,?,?)",
                           (seq, e[1], ts, e[4], e[5], detail.get("address"), detail.get("sub"), e[6]))  # fmt: skip
        # an order seen first as delayed in an earlier batch exists already: it keeps its creation
        db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (market, order_id) DO "
                       "UPDATE SET status = excluded.status, filled = excluded.filled, reason = excluded.reason, "
                       "price = excluded.price, size = excluded.size, client_id = excluded.client_id, "
                       "updated_seq = excluded.updated_seq, updated_ms = excluded.updated_ms",
                       fresh.values())  # fmt: skip
        db.executemany("INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", fills)
        db.executemany("INSERT INTO transfers VALUES (?,?,?,?,?,?,?,?,?)", transfers)
        for (market, interval, start), (o, h, lo, c, v, n) in candles.items():
            db.execute("INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (market, interval, start_ms) DO "
                       "UPDATE SET high = MAX(candles.high, excluded.high), low = MIN(candles.low, excluded.low), "
                       "close = excluded.close, volume = candles.volume + excluded.volume, "
                       "trades = candles.trades + excluded.trades",
                       (market, interval, start, o, h, lo, c, v, n))  # fmt: skip

    def _candle(self, candles: dict[tuple[str, str, int], list[int]], fill: RawEvent, ts: int) -> None:
        """Fold a trade (its taker fill) into every interval's candle, at the book's price (YES terms)."""
        market, price = fill[4], fill[11]
        if fill[17]:
            ms = self.engine.market_state(market)
            price = ms.market.book_order(fill[9], price, fill[17])[1]
        for name, length in INTERVALS.items():
            key = (market, name, ts - ts % length)
            row = candles.get(key)
            if row is None:
                candles[key] = [price, price, price, price, fill[12], 1]
            else:
                row[1], row[2], row[3] = max(row[1], price), min(row[2], price), price
                row[4] += fill[12]
                row[5] += 1


def follow(journal: str | Path, database: str | Path, *, stop: Any = None, poll_s: float = 0.05) -> int:
    """Catch up with the journal and keep following it (until `stop()` is true); the last sequence projected."""
    while not any(True for _ in Path(journal).glob("journal-*.seg")):
        time.sleep(poll_s)
    with connect(database) as store:
        return _follow(journal, database, store, stop, poll_s)


def _follow(journal: str | Path, database: str | Path, store: Store, stop: Any, poll_s: float) -> int:
    """The loop of `follow`: a fresh replica and tail each time the store must be rebuilt."""
    from exos.engine import Engine
    from exos.journal import JournalTail
    from exos.recovery import manifest_of

    while True:
        tail = JournalTail(journal)
        projection = Projection(store, Engine.from_parsed(manifest_of(journal)))
        log.info("exos.history.started", journal=str(journal), database=str(database), last_seq=projection.last_seq)
        try:
            while stop is None or not stop():
                records = tail.poll(limit=20_000)
                if records:
                    projection.apply(records)
                elif tail.next_seq <= projection.last_seq and not _growing(journal):
                    raise AnotherJournal(f"the journal ends at {tail.next_seq - 1}, the store at {projection.last_seq}")
                else:
                    time.sleep(poll_s)
            return projection.last_seq
        except AnotherJournal as exc:
            log.warning("exos.history.rebuilding", reason=str(exc))
            projection.clear()
        finally:
            tail.close()


def _growing(journal: str | Path) -> bool:
    """Whether the journal's last segment grew in the last 50 ms (a writer is appending)."""
    segments = sorted(Path(journal).glob("journal-*.seg"))
    size = segments[-1].stat().st_size if segments else 0
    time.sleep(0.05)
    return bool(segments) and segments[-1].stat().st_size != size


# ------------------------------------------------------------------ reads


PAGE_KEYS = {"orders": ("created_seq", "order_id", "created_ms")}  # others: (seq, idx, ts)


def cursor(table: str, row: dict[str, Any]) -> str:
    """The `before` cursor that continues after `row` (its table's unique key, newest first)."""
    first, second, _ = PAGE_KEYS.get(table, ("seq", "idx", "ts"))
    return f"{row[first]}.{row[second]}"


class _Null:
    """The `page` filter that matches rows whose column is NULL (None means no filter on it)."""


NULL = _Null()


def page(db: Store, table: str, where: dict[str, Any], *, before: tuple[int, int] | None, limit: int,
         since_ms: int | None = None, until_ms: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of a history table, newest first, keyset-paged (`before`: the key of the last row already seen)."""
    first, second, ts = PAGE_KEYS.get(table, ("seq", "idx", "ts"))
    clauses, params = [], []
    for column, value in where.items():
        if value is NULL:
            clauses.append(f"{column} IS NULL")
        elif value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if before is not None:
        clauses.append(f"({first} < ? OR ({first} = ? AND {second} < ?))")
        params += [before[0], before[0], before[1]]
    for op, value in ((">=", since_ms), ("<", until_ms)):
        if value is not None:
            clauses.append(f"{ts} {op} ?")
            params.append(value)
    sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(clauses) if clauses else "")
    sql += f" ORDER BY {first} DESC, {second} DESC LIMIT ?"
    rows = db.rows(sql, (*params, min(limit, PAGE_MAX)))
    return [{k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in r.items()}
            for r in rows]  # fmt: skip


def candles(db: Store, market: str, interval: str, *, since_ms: int | None, until_ms: int | None,
            limit: int) -> list[dict[str, str]]:  # fmt: skip
    """A market's candles of one interval, oldest first within the window (the newest `limit`)."""
    rows = db.rows(
        "SELECT start_ms, open, high, low, close, volume, trades FROM candles WHERE market = ? AND interval = ? AND "
        "start_ms >= ? AND start_ms < ? ORDER BY start_ms DESC LIMIT ?",
        (market, interval, since_ms or 0, until_ms or 2**62, min(limit, PAGE_MAX)),
    )
    return [{k: str(v) for k, v in r.items()} for r in reversed(rows)]


def dump(db: Store) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every row of every projected table in a fixed order (for comparing two stores)."""
    for table, key in (("orders", "market, order_id"), ("fills", "seq, idx"), ("candles", "market, interval, start_ms"),
                       ("transfers", "seq, idx"), ("settlements", "seq, idx")):  # fmt: skip
        for row in db.rows(f"SELECT * FROM {table} ORDER BY {key}"):
            yield table, tuple(row.values())


def main(argv: list[str]) -> int:
    """`python -m exos.history JOURNAL DATABASE`: follow the journal into the store until SIGTERM."""
    import signal

    from exos.cli import _configure_logging

    _configure_logging(False)  # a process of the CLI's: its logs go where the CLI's go (stderr)
    parent = os.getppid()  # the sequencer: when it dies (even by SIGKILL) this process must not outlive it
    # The sequencer and the verifiers come first: this process runs only on CPU time nobody else wants (Linux's
    # SCHED_IDLE), so under saturation the projection lags (`as_of_seq` says how far) and catches up afterwards.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sequencer stops this process
    database = argv[2]
    # one projector per store: a restarted venue's waits for its predecessor (held for the life of the process)
    lock: Any
    if database.startswith(("postgresql://", "postgres://")):
        lock = Store(database, readonly=True)
        lock.execute("SELECT pg_advisory_lock(hashtext('exos.history'))")
    else:
        import fcntl

        lock = open(database + ".lock", "w")  # noqa: SIM115
        fcntl.flock(lock, fcntl.LOCK_EX)
    follow(argv[1], database, stop=lambda: bool(stopping) or os.getppid() != parent)
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
