#!/usr/bin/env python3
"""Order-book benchmark on the reference stream (bench/refstream.py, defined in ../shared/bench).

Figures (issue #3): ops/s through the raw cffi `lib` with one call per op (events written to the
sink), the same through the `exos.book.Book` wrapper, the whole stream in one batch call, latency
percentiles per op on the per-call path, and memory per resting order with 1 M resting orders.
Every run is checked against the stream's sidecar before its figure counts.

    python bench/book_bench.py --n 1000000 --runs 3 --write bench/results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from exos._book import ffi, lib  # noqa: E402  (the benchmark measures the raw binding on purpose)

import refstream  # noqa: E402
from exos.book import Book  # noqa: E402
from exos.types import ANY_OWNER, EventType  # noqa: E402

DATA = HERE / "data"
ACCOUNTS_PER_SIDE = 5000
Record = tuple[int, int, int, int, int, int]  # op, side, qty, price, oid, owner


def owner_of(oid: int, side: int) -> int:
    """The standard workload's account of an order: buyers and sellers never share one."""
    return 1 + (oid % ACCOUNTS_PER_SIDE) + ACCOUNTS_PER_SIDE * side


def load_stream(n: int, seed: int, directory: pathlib.Path = DATA) -> tuple[list[Record], dict[str, Any]]:
    """The stream's records (with owners) and its sidecar, generating the files on first use."""
    path = refstream.ensure(n, seed, directory)
    records = [(op, side, qty, price, oid, owner_of(oid, side)) for op, side, qty, price, oid in refstream.read(path)]
    return records, refstream.read_expected(path)


def max_orders_for(expected: dict[str, Any]) -> int:
    """A cap comfortably above the stream's peak of resting orders."""
    return max(1024, 2 * int(expected["peak_resting_orders"]))


def run_raw(records: list[Record], max_orders: int) -> Book:
    """The stream through the raw `lib`, one cffi call per op, events written to the sink."""
    book = Book(max_orders=max_orders)
    b, _ = book.raw
    limit, cancel, any_owner = lib.exos_book_limit, lib.exos_book_cancel, ANY_OWNER
    for op, side, qty, price, oid, owner in records:
        if op == 1:
            cancel(b, oid, any_owner, 0)
        else:
            limit(b, oid, owner, side, price, qty)
    return book


def run_wrapper(records: list[Record], max_orders: int) -> Book:
    """The stream through `Book.place` / `Book.cancel`, which decode every event into attrs objects."""
    book = Book(max_orders=max_orders)
    place, cancel = book.place, book.cancel
    for op, side, qty, price, oid, owner in records:
        if op == 1:
            cancel(oid)
        else:
            place(oid, owner, side, price, qty)
    return book


def make_commands(records: list[Record]) -> Any:
    """The stream as a C array of exos_cmd, built before timing."""
    cmds = ffi.new("exos_cmd[]", len(records))
    for i, (op, side, qty, price, oid, owner) in enumerate(records):
        c = cmds[i]
        c.id = oid
        c.side = side
        c.slot_filter = -1
        if op == 1:
            c.op = lib.EXOS_OP_CANCEL
            c.owner = ANY_OWNER
        else:
            c.op = lib.EXOS_OP_PLACE
            c.owner = owner
            c.price = price
            c.size = qty
    return cmds


def run_batch(cmds: Any, n: int, max_orders: int, sink: Any) -> tuple[Book, int]:
    """The whole stream in one C call; returns the book and the number of events written."""
    book = Book(max_orders=max_orders)
    b, _ = book.raw
    lib.exos_book_set_sink(b, sink)
    events = lib.exos_book_batch(b, cmds, n)
    return book, int(events)


def outcome(book: Book) -> dict[str, int]:
    """The sidecar's final-state figures as this book reports them (fills = trade ids issued)."""
    bids = book.depth(0, book.levels)
    asks = book.depth(1, book.levels)
    return {
        "fills": book.trade_id,
        "final_bid_orders": sum(level.count for level in bids),
        "final_ask_orders": sum(level.count for level in asks),
        "final_bid_qty": sum(level.size for level in bids),
        "final_ask_qty": sum(level.size for level in asks),
        "final_bid_levels": len(bids),
        "final_ask_levels": len(asks),
    }


def verify(book: Book, expected: dict[str, Any], label: str) -> None:
    """Refuse a figure whose run did not reproduce the sidecar."""
    got = outcome(book)
    want = {key: expected[key] for key in got}
    if got != want:
        raise SystemExit(f"{label}: final state differs from the sidecar: {got} != {want}")
    book.check()


def traded_qty(records: list[Record], max_orders: int) -> int:
    """Traded volume counted from the fill events of a per-call run (untimed; checks the sidecar)."""
    book = Book(max_orders=max_orders)
    b, s = book.raw
    fill = int(EventType.FILL)
    total = 0
    for op, side, qty, price, oid, owner in records:
        n = (
            lib.exos_book_cancel(b, oid, ANY_OWNER, 0)
            if op == 1
            else lib.exos_book_limit(b, oid, owner, side, price, qty)
        )
        ev = s.ev
        for i in range(n):
            if ev[i].type == fill:
                total += ev[i].size
    return total


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by fn() and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def latency(records: list[Record], max_orders: int) -> dict[str, float]:
    """Per-op latency on the raw per-call path, with perf_counter_ns around each call (pair ≈ 40 ns)."""
    book = Book(max_orders=max_orders)
    b, _ = book.raw
    limit, cancel, clock = lib.exos_book_limit, lib.exos_book_cancel, time.perf_counter_ns
    samples = [0] * len(records)
    for i, (op, side, qty, price, oid, owner) in enumerate(records):
        if op == 1:
            t0 = clock()
            cancel(b, oid, ANY_OWNER, 0)
            samples[i] = clock() - t0
        else:
            t0 = clock()
            limit(b, oid, owner, side, price, qty)
            samples[i] = clock() - t0
    samples.sort()
    n = len(samples)

    def pct(p: float) -> float:
        return float(samples[min(n - 1, int(p * n))])

    return {"p50_ns": pct(0.50), "p99_ns": pct(0.99), "p999_ns": pct(0.999), "max_ns": float(samples[-1])}


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_order(resting: int) -> dict[str, float]:
    """Bytes per resting order with `resting` orders in one book (C allocation and RSS growth)."""
    gc.collect()
    before = rss_bytes()
    book = Book(max_orders=resting, max_levels=4096)
    b, _ = book.raw
    limit = lib.exos_book_limit
    for oid in range(1, resting + 1):
        side = oid & 1
        price = 100_000 - 1 - (oid % 2000) if side == 0 else 100_000 + 1 + (oid % 2000)
        limit(b, oid, owner_of(oid, side), side, price, 1 + oid % 100)
    assert book.open_orders == resting
    after = rss_bytes()
    return {
        "resting_orders": resting,
        "c_bytes_per_order": book.memory() / resting,
        "rss_bytes_per_order": (after - before) / resting,
    }


def machine() -> dict[str, str]:
    """CPU, Python and commit, so a figure can be traced to what produced it."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=HERE
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(), "commit": commit}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description="exos order-book benchmark")
    parser.add_argument("--n", type=int, default=1_000_000, help="stream length (ops)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument("--resting", type=int, default=1_000_000, help="resting orders for the memory figure")
    parser.add_argument("--quick", action="store_true", help="one run, a smaller memory figure")
    parser.add_argument("--write", type=pathlib.Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.resting = 1, min(args.resting, 200_000)

    print(f"stream: {args.n:,} ops, seed {args.seed} (bench/refstream.py)")
    records, expected = load_stream(args.n, args.seed)
    cap = max_orders_for(expected)
    if traded_qty(records, cap) != expected["traded_qty"]:
        raise SystemExit("traded quantity differs from the sidecar")
    cmds = make_commands(records)
    sink = lib.exos_sink_new(4 * args.n + 16)
    run_batch(cmds, args.n, cap, sink)  # warm-up: the sink's pages are touched once before timing
    gc.collect()
    gc.freeze()

    rates: dict[str, list[float]] = {"raw": [], "wrapper": [], "batch": []}
    events_written = 0
    for _ in range(args.runs):
        seconds, book = timed(lambda: run_raw(records, cap))
        verify(book, expected, "raw per-call")
        rates["raw"].append(args.n / seconds)
        seconds, book = timed(lambda: run_wrapper(records, cap))
        verify(book, expected, "wrapper per-call")
        rates["wrapper"].append(args.n / seconds)
        seconds, (book, events_written) = timed(lambda: run_batch(cmds, args.n, cap, sink))
        verify(book, expected, "batch")
        rates["batch"].append(args.n / seconds)
    lat = latency(records, cap)
    mem = memory_per_order(args.resting)
    lib.exos_sink_free(sink)

    figures = {
        "stream": {"n": args.n, "seed": args.seed, "fills": expected["fills"], "events_per_batch": events_written},
        "per_call_raw_ops_per_s": statistics.median(rates["raw"]),
        "per_call_wrapper_ops_per_s": statistics.median(rates["wrapper"]),
        "batch_ops_per_s": statistics.median(rates["batch"]),
        "runs": {key: [round(v) for v in values] for key, values in rates.items()},
        "latency_per_call_raw": lat,
        "memory": mem,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print("sidecar matched: fills, traded qty, resting orders, volumes and levels per side")
    print(f"per-call, raw lib     : {figures['per_call_raw_ops_per_s'] / 1e6:6.2f} M ops/s  (target >= 5)")
    print(f"per-call, Book wrapper: {figures['per_call_wrapper_ops_per_s'] / 1e6:6.2f} M ops/s")
    print(f"batch, one C call     : {figures['batch_ops_per_s'] / 1e6:6.2f} M ops/s  (target >= 20)")
    print(
        f"latency per op (raw)  : p50 {lat['p50_ns']:.0f} ns, p99 {lat['p99_ns']:.0f} ns, "
        f"p99.9 {lat['p999_ns']:.0f} ns, max {lat['max_ns']:.0f} ns"
    )
    print(
        f"memory per resting order ({mem['resting_orders']:,} resting): {mem['c_bytes_per_order']:.1f} B allocated "
        f"by the book, {mem['rss_bytes_per_order']:.1f} B of RSS  (target < 150)"
    )
    if args.write:
        args.write.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
