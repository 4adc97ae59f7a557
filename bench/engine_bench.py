#!/usr/bin/env python3
"""Engine benchmark: full spot transactions on the standard workload (../shared/bench/README.md).

The reference stream (bench/refstream.py) through one spot market (bench/workload.toml: tick 1, lot
1, maker -1 bp, taker 5 bp), with 10,000 funded accounts; buyers and sellers never share an account.
Figures: transactions/s through `submit` (one command per call, attrs events), `submit_records`
(one command per call, raw events) and `submit_batch` (batches of 1,000), each with the journal off
and on (fsync per batch); latency percentiles; memory per resting order through the engine; replay
speed; the pause a snapshot causes. Every path must end with the same state hash.

    python bench/engine_bench.py --n 1000000 --write bench/engine_results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import refstream  # noqa: E402
from book_bench import machine, rss_bytes  # noqa: E402
from exos.engine import Engine  # noqa: E402
from exos.events import EventKind  # noqa: E402
from exos.recovery import replay_directory, snapshot  # noqa: E402
from exos.simulate import standard_funding, standard_workload  # noqa: E402

MANIFEST = HERE / "workload.toml"
BATCH = 1000
PER_COMMAND_FSYNC_PREFIX = 5000
FILL = int(EventKind.FILL)
DONE = int(EventKind.COMMAND_DONE)


def fresh(journal: pathlib.Path | None) -> Engine:
    """A funded engine at the start of the workload."""
    engine = Engine.from_manifest(MANIFEST, journal=journal)
    engine.submit_batch(standard_funding(engine.manifest))
    gc.collect()
    gc.freeze()
    return engine


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p99/p99.9/max of nanosecond samples."""
    samples = sorted(samples)
    n = len(samples)
    return {
        "p50_ns": samples[n // 2],
        "p99_ns": samples[min(n - 1, int(n * 0.99))],
        "p999_ns": samples[min(n - 1, int(n * 0.999))],
        "max_ns": samples[-1],
    }


def run_path(records: list[bytes], commands: list[Any], path: str, journal: pathlib.Path | None) -> dict[str, Any]:
    """One path over the whole workload: throughput, latency, fills, state hash."""
    engine = fresh(journal)
    clock = time.perf_counter_ns
    samples: list[float] = []
    batch_samples: list[float] = []
    fills = accepted = 0
    start = clock()
    if path == "submit_batch":
        for i in range(0, len(records), BATCH):
            chunk = records[i : i + BATCH]
            t0 = clock()
            events = engine.submit_records(chunk)
            elapsed = clock() - t0
            batch_samples.append(elapsed)
            samples.append(elapsed / len(chunk))
            fills += sum(1 for e in events if e[3] == FILL)
            accepted += sum(1 for e in events if e[3] == DONE and e[4])
    elif path == "submit_records":
        submit = engine.submit_records
        for record in records:
            t0 = clock()
            events = submit([record])
            samples.append(clock() - t0)
            fills += sum(1 for e in events if e[3] == FILL)
            accepted += events[-1][4]
    else:
        from exos.events import Fill

        submit = engine.submit
        for command in commands:
            t0 = clock()
            events_public = submit(command)
            samples.append(clock() - t0)
            fills += sum(1 for e in events_public if isinstance(e, Fill))
            accepted += events_public[-1].accepted  # type: ignore[attr-defined]
    seconds = (clock() - start) / 1e9
    engine.check_invariants()
    out = {
        "path": path,
        "journal": journal is not None,
        "tx_per_s": len(records) / seconds,
        "seconds": seconds,
        "fills": fills // 2,
        "accepted": accepted,
        "latency_per_command": percentiles(samples),
        "state_hash": engine.state_hash(),
    }
    if batch_samples:
        out["latency_per_batch"] = percentiles(batch_samples)
    if journal is not None:
        t0 = time.perf_counter()
        snap = snapshot(engine)
        out["snapshot_pause_ms"] = (time.perf_counter() - t0) * 1e3
        out["snapshot_bytes"] = snap.stat().st_size
        del engine
        gc.collect()
        t0 = time.perf_counter()
        os.remove(snap)  # replay the whole journal, not from the snapshot
        replayed = replay_directory(journal)
        replay_seconds = time.perf_counter() - t0
        out["replay_commands_per_s"] = replayed.seq / replay_seconds
        out["replay_state_hash"] = replayed.state_hash()
    return out


def memory_per_order(resting: int) -> dict[str, float]:
    """RSS growth per resting order when `resting` orders rest in one market (through the engine)."""
    engine = fresh(None)
    records = []
    from exos.commands import Actor, PlaceOrder
    from exos.simulate import account_address, standard_owner

    for oid in range(1, resting + 1):
        side = oid & 1
        price = 100_000 - 1 - (oid % 2000) if side == 0 else 100_000 + 1 + (oid % 2000)
        actor = Actor(account_address(standard_owner(oid, side)))
        records.append(PlaceOrder(actor=actor, timestamp=1, market="BENCH", side=side, price=price, size=1).pack())
    gc.collect()
    before = rss_bytes()
    for i in range(0, len(records), BATCH):
        engine.submit_records(records[i : i + BATCH])
    gc.collect()
    after = rss_bytes()
    book = engine.markets[0].book
    assert book.open_orders == resting
    return {"resting_orders": resting, "rss_bytes_per_order": (after - before) / resting,
            "book_bytes_per_order": book.memory() / resting}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every path and print the figures."""
    parser = argparse.ArgumentParser(description="exos engine benchmark (standard workload)")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resting", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="skip the per-command paths with the journal on")
    parser.add_argument("--write", type=pathlib.Path)
    args = parser.parse_args(argv)
    stream = refstream.read(refstream.ensure(args.n, args.seed, HERE / "data"))
    commands = standard_workload(stream, "BENCH")
    records = [c.pack() for c in commands]
    print(f"standard workload: {args.n:,} transactions, seed {args.seed}, 10,000 accounts, one spot market")
    results = []
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="exos-bench-"))
    try:
        plan: list[tuple[str, bool]] = [("submit_batch", False), ("submit_records", False), ("submit", False),
                                        ("submit_batch", True)]  # fmt: skip
        if not args.quick:
            plan.append(("submit_records", True))
        for path, journaled in plan:
            journal = scratch / f"{path}-journal" if journaled else None
            # one fsync per command: measured on a prefix, since a million fsyncs take many minutes
            prefix = PER_COMMAND_FSYNC_PREFIX if (journaled and path != "submit_batch") else len(records)
            result = run_path(records[:prefix], commands[:prefix], path, journal)
            result["prefix"] = prefix
            results.append(result)
            scope = "" if prefix == len(records) else f" (first {prefix:,})"
            line = (f"{path:<15} journal {'on ' if journaled else 'off'}{scope}: {result['tx_per_s']:>10,.0f} tx/s  "
                    f"p50 {result['latency_per_command']['p50_ns'] / 1e3:.2f} us  "
                    f"p99 {result['latency_per_command']['p99_ns'] / 1e3:.2f} us  "
                    f"p99.9 {result['latency_per_command']['p999_ns'] / 1e3:.2f} us  "
                    f"max {result['latency_per_command']['max_ns'] / 1e6:.2f} ms")  # fmt: skip
            print(line)
            if "latency_per_batch" in result:
                lb = result["latency_per_batch"]
                print(f"{'':<15} per batch of {BATCH}: p50 {lb['p50_ns'] / 1e6:.2f} ms  p99 {lb['p99_ns'] / 1e6:.2f} ms"
                      f"  max {lb['max_ns'] / 1e6:.2f} ms")  # fmt: skip
            if journaled:
                print(f"{'':<15} snapshot pause {result['snapshot_pause_ms']:.1f} ms ({result['snapshot_bytes']:,} B); "
                      f"replay {result['replay_commands_per_s']:,.0f} commands/s")  # fmt: skip
            if journal is not None:
                shutil.rmtree(journal, ignore_errors=True)
        whole = [r for r in results if r["prefix"] == len(records)]  # the fsync-per-command run is a prefix
        hashes = {r["state_hash"] for r in whole} | {r["replay_state_hash"] for r in whole if "replay_state_hash" in r}
        if len(hashes) != 1:
            detail = [
                (r["path"], r["journal"], r["state_hash"][:12], r.get("replay_state_hash", "")[:12]) for r in whole
            ]
            raise SystemExit(f"paths disagree on the final state: {detail}")
        print(f"fills: {results[0]['fills']:,}; every path ends with state hash {hashes.pop()}")
        mem = memory_per_order(args.resting)
        print(
            f"memory per resting order through the engine ({mem['resting_orders']:,}): "
            f"{mem['rss_bytes_per_order']:.0f} B of RSS ({mem['book_bytes_per_order']:.0f} B in the book)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = {"workload": {"n": args.n, "seed": args.seed, "batch": BATCH}, "paths": results, "memory": mem,
               "machine": machine(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    best = max(r["tx_per_s"] for r in results if r["path"] == "submit_batch" and not r["journal"])
    print(f"submit_batch, journal off: {best:,.0f} tx/s (floor 150,000; target 300,000)")
    if args.write:
        args.write.write_text(json.dumps(figures, indent=2, default=float) + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
