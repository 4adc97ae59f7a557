"""A journaling engine process for tests/test_crash.py to kill with SIGKILL.

    python crash_worker.py MANIFEST JOURNAL_DIR ACKS_FILE [--seed S] [--orders N] [--accounts A]
        [--snapshot-every K] [--pause SECONDS] [--snapshot-pause SECONDS] [--ready FILE]

The command list is deterministic (`build_records`: funding, then the seeded `random_flow`), so the test
rebuilds it by importing this file. The worker opens `Engine.from_manifest(MANIFEST, journal=JOURNAL_DIR)`
(recovering whatever the directory holds), continues from `engine.seq`, and submits the remaining
commands in batches of 1..50 records (sizes from `random.Random(seed)`) through `submit_records`. Once a
batch returns, it is acknowledged: the worker appends the number of acknowledged commands (= the index
after the batch's last command) as one line to ACKS_FILE with a single write, then fsync. Once the engine
has recovered, and before the first batch, it creates ACKS_FILE (if missing) and the --ready file. Every K
batches it writes a snapshot with `exos.recovery.snapshot`.

The pauses only widen windows so that random kill times land in them; they change no behaviour:
`--pause` sleeps after each acknowledged batch, `--snapshot-pause` sleeps halfway through writing a
snapshot's temp file (the real file layer, paced). The worker prints nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path

import structlog

from exos.engine import Engine
from exos.files import OsFileLayer
from exos.manifest import Manifest
from exos.recovery import snapshot
from exos.simulate import funding, random_flow

MAX_BATCH = 50


def build_records(manifest_path: str | Path, seed: int, orders: int, accounts: int) -> list[bytes]:
    """The canonical records the worker submits, in order: funding for every account, then the seeded flow."""
    manifest = Manifest.from_toml(manifest_path)
    commands = [*funding(manifest, accounts), *random_flow(manifest, orders, seed, accounts=accounts)]
    return [command.pack() for command in commands]


class PacedFiles(OsFileLayer):
    """The real file layer, sleeping halfway through each write to a temp file (a snapshot being written)."""

    def __init__(self, pause: float) -> None:
        """Sleep `pause` seconds in the middle of every temp-file write."""
        self.pause = pause
        self._temp_handles: set[int] = set()

    def write_new(self, path: Path) -> int:
        """Create the file; remember the handle if it is a temp file."""
        handle = super().write_new(path)
        if path.name.endswith(".tmp"):
            self._temp_handles.add(handle)
        return handle

    def write(self, handle: int, data: bytes) -> None:
        """Write; a temp file gets its first half, a pause, then the rest."""
        if handle in self._temp_handles and self.pause > 0 and len(data) > 1:
            half = len(data) // 2
            super().write(handle, data[:half])
            time.sleep(self.pause)
            super().write(handle, data[half:])
        else:
            super().write(handle, data)

    def close(self, handle: int) -> None:
        """Close and forget the handle."""
        self._temp_handles.discard(handle)
        super().close(handle)


def main(argv: list[str] | None = None) -> int:
    """Run the worker (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="crash_worker")
    parser.add_argument("manifest")
    parser.add_argument("journal")
    parser.add_argument("acks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--snapshot-every", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--snapshot-pause", type=float, default=0.0)
    parser.add_argument("--ready", help="a file to create once the engine has recovered, before the first batch")
    args = parser.parse_args(argv)
    # Logs (recovery, snapshots) are info-level; keep the worker silent apart from warnings on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )

    records = build_records(args.manifest, args.seed, args.orders, args.accounts)
    rng = random.Random(args.seed)
    engine = Engine.from_manifest(args.manifest, journal=args.journal, files=PacedFiles(args.snapshot_pause))
    position = engine.seq
    acks = os.open(args.acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.fsync(acks)
    if args.ready:
        Path(args.ready).touch()
    batches = 0
    while position < len(records):
        size = rng.randint(1, MAX_BATCH)
        batch = records[position : position + size]
        engine.submit_records(batch)
        position += len(batch)
        os.write(acks, f"{position}\n".encode())
        os.fsync(acks)
        batches += 1
        if args.snapshot_every and batches % args.snapshot_every == 0:
            snapshot(engine)
        if args.pause:
            time.sleep(args.pause)
    os.close(acks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
