"""The history store: a projection of the journal that catches up, rebuilds identically and serves pages."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port, serving
from tests.test_server import KEY, manifest

from exos import history
from exos.engine import Engine
from exos.events import EventKind
from exos.journal import JournalTail
from exos.recovery import manifest_of, replay_directory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journaled spot simulation (orders, fills, cancels, expiries, deposits)."""
    directory = tmp_path_factory.mktemp("history") / "journal"
    subprocess.run([sys.executable, "-m", "exos.cli", "simulate", str(ROOT / "examples" / "spot.toml"), "--orders",
                    "20000", "--seed", "3", "--journal", str(directory)], check=True, capture_output=True)  # fmt: skip
    return directory


def project(journal: Path, database: Path | str, *, batch: int = 20_000, stop_after: int | None = None) -> int:
    """Follow the journal into `database` with a fresh replica (as the projector process does on start)."""
    with history.connect(database) as store:
        projection = history.Projection(store, Engine.from_parsed(manifest_of(journal)))
        tail = JournalTail(journal)
        applied = 0
        while records := tail.poll(limit=batch):
            applied += projection.apply(records)
            if stop_after is not None and projection.last_seq >= stop_after:
                break
        tail.close()
    return applied


def rows(store: Path | str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every projected row of a store."""
    with history.connect(store) as db:
        return list(history.dump(db))


def test_a_rebuild_and_a_resumed_projection_are_identical(journal: Path, tmp_path: Path, history_store: str) -> None:
    """Projecting in one go (SQLite), in small batches across three restarts (SQLite or PostgreSQL), or again after
    the file is deleted: the same rows, and the last sequence is the journal's."""
    whole, pieces = tmp_path / "whole.db", history_store
    project(journal, whole)
    for stop in (3_000, 11_000, None):
        project(journal, pieces, batch=700, stop_after=stop)
    first = rows(whole)
    assert first and first == rows(pieces)
    whole.unlink()
    project(journal, whole)
    assert rows(whole) == first
    engine = replay_directory(journal)
    with history.connect(whole) as db:
        meta = db.value("SELECT value FROM meta WHERE key = 'last_seq'")
    assert int(meta) == engine.seq


def test_the_rows_agree_with_the_engine(journal: Path, tmp_path: Path) -> None:
    """Every fill event is a row; open orders are the engine's; candles are the trades' OHLC and volume."""
    database = tmp_path / "h.db"
    project(journal, database)
    db = history.connect(database)
    engine = Engine.from_parsed(manifest_of(journal))
    fills: list[tuple[Any, ...]] = []
    times: dict[int, int] = {}
    tail = JournalTail(journal)
    for seq, payload in tail.poll(limit=10**9):
        times[seq] = int.from_bytes(payload[10:18], "little", signed=True)
        fills += [e for e in engine.submit_records([payload]) if e[3] == int(EventKind.FILL)]
    tail.close()
    assert db.value("SELECT count(*) FROM fills") == len(fills) > 1000
    open_rows = {(r["market"], r["order_id"]) for r in db.rows("SELECT market, order_id FROM orders WHERE "
                                                               "status = 'open'")}  # fmt: skip
    open_engine = {(ms.name, o.order_id) for ms in engine.markets for o in ms.book.orders()}
    assert open_rows == open_engine
    candles: dict[tuple[str, int], list[int]] = {}
    volume: dict[tuple[str, int], int] = defaultdict(int)
    for e in fills:
        if e[10]:
            continue
        key = (e[4], times[e[0]] - times[e[0]] % 300_000)
        row = candles.setdefault(key, [e[11], e[11], e[11], e[11]])
        row[1], row[2], row[3] = max(row[1], e[11]), min(row[2], e[11]), e[11]
        volume[key] += e[12]
    stored = {(r["market"], r["start_ms"]): ([r["open"], r["high"], r["low"], r["close"]], r["volume"])
              for r in db.rows("SELECT market, start_ms, open, high, low, close, volume FROM candles WHERE "
                               "interval = '5m'")}  # fmt: skip
    assert stored == {k: (v, volume[k]) for k, v in candles.items()}


def test_pages_walk_back_without_gaps_or_repeats(journal: Path, tmp_path: Path) -> None:
    """Following `before` through pages of 97 visits every fill of a market exactly once, newest first."""
    database = tmp_path / "h.db"
    project(journal, database)
    db = history.connect(database, readonly=True)
    seen: list[tuple[int, int]] = []
    before = None
    while True:
        rows = history.page(db, "fills", {"market": "BTC-USDC"}, before=before, limit=97)
        seen += [(int(r["seq"]), int(r["idx"])) for r in rows]
        if len(rows) < 97:
            break
        seq, idx = history.cursor("fills", rows[-1]).split(".")  # a trade's two fills share a seq: pages split them
        before = (int(seq), int(idx))
    total = db.value("SELECT count(*) FROM fills WHERE market = 'BTC-USDC'")
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen, reverse=True)


def test_served_history_survives_a_restart(tmp_path: Path, history_store: str) -> None:
    """`exos serve --journal`: a trade through the API shows in history and candles; after a restart (and after
    the store is dropped and rebuilt) the history answers the same. SQLite beside the journal, or the manifest's
    PostgreSQL DSN."""
    from exos.client import Client

    port = free_port()
    path, journal = manifest(tmp_path), tmp_path / "journal"
    postgres = history_store.startswith("postgresql://")
    if postgres:
        path.write_text(
            path.read_text().replace('journal = "journal"', f'journal = "journal"\nhistory = "{history_store}"')
        )
    base = f"http://127.0.0.1:{port}"
    answers = []
    for attempt in range(3):
        if attempt == 2:
            _drop(history_store if postgres else journal / "history.sqlite3")
        with serving(path, "--journal", str(journal), port=port):
            if attempt == 0:
                with Client(base, KEY) as maker, Client(base, bytes(31) + b"\x07") as taker:
                    maker.faucet()
                    taker.faucet()
                    maker.place("BTC-USDC", "sell", "65000", "0.0003")
                    assert taker.place("BTC-USDC", "buy", "65000", "0.0002").fills
            answers.append(_wait_for_history(base))
    assert answers[0] == answers[1] == answers[2]
    fills, candles = answers[0]
    assert [(f["side"], f["maker"], f["size"]) for f in fills] == [("1", "1", "2")]
    assert [(c["open"], c["volume"], c["trades"]) for c in candles] == [("6500000", "2", "1")]


def _wait_for_history(base: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The maker's fills (a private read: signed by the client) and the market's 1m candles (public) once the
    projector has caught up with the trade."""
    from exos.client import Client, ClientError

    deadline = time.monotonic() + 20
    with Client(base, KEY) as maker:
        while True:
            try:
                fills = maker.history("fills")["items"]
            except ClientError as exc:  # 503 while the projector builds the store
                if exc.code != "HISTORY_STARTING":
                    raise
                fills = []
            if fills:
                candles = httpx.get(f"{base}/v1/markets/BTC-USDC/candles", params={"interval": "1m"}, timeout=10)
                return fills, candles.json()["items"]
            assert time.monotonic() < deadline, "the history store never caught up"
            time.sleep(0.1)


def _drop(store: str | Path) -> None:
    """Delete a history store: the file, or every table of the database."""
    if isinstance(store, Path):
        store.unlink()
        return
    db = history.connect(store)
    for table in ("meta", "orders", "fills", "candles", "transfers", "settlements"):
        db.execute(f"DROP TABLE {table}")
    db.close()


def test_a_store_from_another_journal_is_rebuilt(journal: Path, tmp_path: Path, history_store: str) -> None:
    """A store built from one venue's journal, then pointed at another's, is emptied and rebuilt from the new one."""
    other = tmp_path / "other-journal"
    subprocess.run([sys.executable, "-m", "exos.cli", "simulate", str(ROOT / "examples" / "spot.toml"), "--orders",
                    "3000", "--seed", "9", "--journal", str(other)], check=True, capture_output=True)  # fmt: skip
    project(journal, history_store)
    history.follow(other, history_store, stop=_caught_up(other, history_store))  # what the projector process does
    fresh = tmp_path / "fresh.db"
    project(other, fresh)
    assert rows(history_store) == rows(fresh)


def _caught_up(journal: Path, store: str) -> Any:
    """A `stop` for `follow`: true once the store holds the journal's last record."""
    last = replay_directory(journal).seq

    def stop() -> bool:
        with history.connect(store) as db:
            return db.value("SELECT value FROM meta WHERE key = 'last_seq'") == str(last)

    return stop
