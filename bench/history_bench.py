#!/usr/bin/env python3
"""History store benchmark: how long the projector takes to build the store from a whole journal.

Journals the World Cup venue's seeded run (`exos simulate examples/worldcup-2026.toml --seed 7 --journal`, not
timed), then projects it into a fresh SQLite store with one replica engine, as the projector process does on
start, and prints commands, seconds, commands/s and the rows of each table.

    python bench/history_bench.py
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time

from exos import history
from exos.engine import Engine
from exos.journal import JournalTail
from exos.recovery import manifest_of

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    """Journal the run, then time its projection."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="exos-history-bench-"))
    journal = directory / "journal"
    subprocess.run([sys.executable, "-m", "exos.cli", "simulate", str(ROOT / "examples" / "worldcup-2026.toml"),
                    "--seed", "7", "--journal", str(journal)], check=True, capture_output=True)  # fmt: skip
    start = time.perf_counter()
    with history.connect(directory / "history.sqlite3") as store:
        projection = history.Projection(store, Engine.from_parsed(manifest_of(journal)))
        tail = JournalTail(journal)
        applied = 0
        while records := tail.poll(limit=20_000):
            applied += projection.apply(records)
        tail.close()
        seconds = time.perf_counter() - start
        print(f"projected {applied:,} commands in {seconds:.2f} s ({applied / seconds:,.0f} commands/s)")
        for table in ("orders", "fills", "candles", "transfers", "settlements"):
            print(f"  {table}: {store.value(f'SELECT count(*) FROM {table}'):,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
