#!/usr/bin/env python3
"""Prediction benchmark: full transactions/s through the batch path on one binary market with YES and NO traders.

The workload is the standard reference stream (bench/refstream.py: 60% passive limits, 30% cancels,
10% aggressive sweeps) translated into one binary market (tick 0.001, so n = 1,000 ticks per unit;
probability fees, maker 0 bp, taker 100 bp). The stream's book price P becomes P - 100,000 + 500, and
each order is drawn (seeded) as a YES or a NO order that rests on the same book side at the same
book price: a book bid is a YES buy at p or a NO sell at n - p, a book ask a YES sell at p or a NO
buy at n - p. The book therefore sees exactly the spot stream (the same order ids, fills and
cancels), while the settlement runs all four fill kinds: normal YES, normal NO, mint and merge.

Accounts mirror the spot benchmark: 10,000 by default, buyers' side and sellers' side never share
one; each is funded with USDC and holds YES and NO shares from a "split" (setup, not timed). Only
`Engine.submit_batch` over pre-packed blobs of 1,000 records is timed (journal off; wall clock, and
CPU time as a check on a shared machine), best of --runs; the spot benchmark's workload runs through
the same harness in the same process, alternating with it, for the ratio. Invariants, the fill count
(the stream's sidecar) and the state hash are checked after every timed run. --profile TOP adds one
cProfile run.

    python bench/prediction_bench.py --n 1000000 --write bench/results.json
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pathlib
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import engine_bench  # noqa: E402
import refstream  # noqa: E402
from book_bench import machine  # noqa: E402
from exos.commands import Actor, CancelOrder, Command, Deposit, MarketAction, PlaceOrder  # noqa: E402
from exos.engine import Engine  # noqa: E402
from exos.events import EventKind  # noqa: E402
from exos.manifest import Manifest  # noqa: E402
from exos.simulate import account_address, standard_workload  # noqa: E402

MARKET = "WILL"
TICKS = 1000  # tick 0.001: n ticks make one unit of collateral
MID = TICKS // 2
SHIFT = refstream.MID - MID  # stream price -> book price
ADMIN = bytes.fromhex("11" * 20)
DEPOSIT_UNITS = 10**15  # USDC units per account (the spot benchmark deposits 10**15 of each asset)
SPLIT_LOTS = 10**8  # shares of each outcome per account (lot 1 share = 10**6 units)
BATCH = engine_bench.BATCH
FLOOR = 150_000
TARGET_RATIO = 1.5
FILL = int(EventKind.FILL)
DONE = int(EventKind.COMMAND_DONE)
REJECTED = int(EventKind.REJECTED)
KIND_NAMES = ("normal_yes", "normal_no", "mint", "merge")
MANIFEST_TOML = f"""
[venue]
name = "exos prediction benchmark"
admins = ["0x{ADMIN.hex()}"]
fee_account = "0xfee0000000000000000000000000000000000fee"

[[plugins]]
name = "prediction"

[[assets]]
symbol = "USDC"
decimals = 6

[[markets]]
name = "{MARKET}"
type = "prediction"
base = "USDC"
quote = "USDC"
tick_size = "0.001"
lot_size = "1"
fee_model = "probability"
max_orders = 1048576

[markets.fees]
maker_bps = "0"
taker_bps = "100"

[markets.params]
committee = ["0x{ADMIN.hex()}", "0x3333333333333333333333333333333333333333"]
quorum = 2
"""


def owner(order_id: int, side: int, per_side: int) -> int:
    """The account of an order on book side `side`: the bid side and the ask side never share one."""
    return 1 + (order_id % per_side) + per_side * side


def prediction_engine(accounts: int) -> Engine:
    """A fresh engine with every account holding USDC and split YES/NO shares (setup, not timed)."""
    engine = Engine.from_parsed(Manifest.from_bytes(MANIFEST_TOML.encode(), source="prediction_bench"))
    setup: list[Command] = []
    for index in range(1, accounts + 1):
        address = account_address(index)
        setup.append(Deposit(actor=Actor(address, 0, ADMIN), timestamp=0, asset="USDC", amount=DEPOSIT_UNITS))
        setup.append(MarketAction(actor=Actor(address), timestamp=0, market=MARKET, action="split",
                                  args={"size": SPLIT_LOTS}))  # fmt: skip
    events = engine.submit_batch(setup)
    refused = [e for e in events if e[3] == REJECTED]
    if refused:
        raise SystemExit(f"setup refused: {refused[0]}")
    engine.check_invariants()
    gc.collect()
    gc.freeze()
    return engine


def prediction_workload(
    stream: list[tuple[int, int, int, int, int]], seed: int, per_side: int, no_share: float
) -> tuple[list[Command], dict[str, int]]:
    """The stream as YES/NO orders on the binary market (same book side and price) and the order mix."""
    rng = random.Random(f"prediction-outcomes-{seed}")
    mix = {"yes_buy": 0, "yes_sell": 0, "no_buy": 0, "no_sell": 0, "cancel": 0}
    out: list[Command] = []
    for op, side, qty, price, oid in stream:
        actor = Actor(account_address(owner(oid, side, per_side)))
        if op == refstream.CANCEL:
            mix["cancel"] += 1
            out.append(CancelOrder(actor=actor, timestamp=1, market=MARKET, order_id=oid))
            continue
        book_price = price - SHIFT
        if not 0 < book_price < TICKS:
            raise SystemExit(f"stream price {price} falls outside the binary market (1..{TICKS - 1} ticks)")
        if rng.random() < no_share:  # a bid is a NO sell at n - p, an ask a NO buy at n - p
            mix["no_sell" if side == 0 else "no_buy"] += 1
            out.append(PlaceOrder(actor=actor, timestamp=1, market=MARKET, side=1 - side, price=TICKS - book_price,
                                  size=qty, outcome=1))  # fmt: skip
        else:
            mix["yes_buy" if side == 0 else "yes_sell"] += 1
            out.append(PlaceOrder(actor=actor, timestamp=1, market=MARKET, side=side, price=book_price, size=qty))
    return out, mix


def blobs_of(commands: list[Command]) -> list[bytes]:
    """Commands packed into concatenated canonical records, BATCH per blob (the batch wire format)."""
    records = [c.pack() for c in commands]
    return [b"".join(records[i : i + BATCH]) for i in range(0, len(records), BATCH)]


def tally(events: list[Any], stats: dict[str, int]) -> None:
    """Count accepted commands, rejections and fills by kind (taker side: one per fill) of one batch."""
    for e in events:
        kind = e[3]
        if kind == DONE:
            if e[4]:
                stats["accepted"] += 1
        elif kind == FILL:
            if not e[10]:
                fill_kind = e[18]
                name = KIND_NAMES[e[17]] if fill_kind == 0 else KIND_NAMES[fill_kind + 1]
                stats[name] += 1
                stats["fills"] += 1
                stats["lots"] += e[12]
            stats["fees"] += e[13]
        elif kind == REJECTED:
            stats["rejected"] += 1


def timed_run(
    engine: Engine, blobs: list[bytes], profile: cProfile.Profile | None = None
) -> tuple[float, float, dict[str, int]]:
    """Submit every blob through `Engine.submit_batch`, timing only the calls: (wall s, CPU s, counts)."""
    stats = dict.fromkeys(("accepted", "rejected", "fills", "lots", "fees", *KIND_NAMES), 0)
    submit = engine.submit_batch
    clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    elapsed = cpu = 0
    for blob in blobs:
        if profile is not None:
            profile.enable()
        c0 = cpu_clock()
        t0 = clock()
        events = submit(blob)
        elapsed += clock() - t0
        cpu += cpu_clock() - c0
        if profile is not None:
            profile.disable()
        tally(events, stats)
        del events  # freed outside the timed call
    return elapsed / 1e9, cpu / 1e9, stats


def measure(make: Callable[[], Engine], blobs: list[bytes], n: int, expected_fills: int) -> dict[str, Any]:
    """One timed run on a fresh engine, then (untimed) the invariants, the counts and the state hash."""
    engine = make()
    seconds, cpu_seconds, stats = timed_run(engine, blobs)
    engine.check_invariants()
    if stats["accepted"] != n or stats["rejected"]:
        raise SystemExit(f"{stats['rejected']:,} commands refused, {stats['accepted']:,} of {n:,} accepted")
    if stats["fills"] != expected_fills:
        raise SystemExit(f"{stats['fills']:,} fills, the stream's sidecar says {expected_fills:,}")
    result = {
        "tx_per_s": n / seconds,
        "seconds": seconds,
        "cpu_tx_per_s": n / cpu_seconds,
        "stats": stats,
        "state_hash": engine.state_hash(),
    }
    del engine
    gc.collect()
    return result


def profile_run(make: Callable[[], Engine], blobs: list[bytes], top: int) -> list[dict[str, Any]]:
    """One extra run under cProfile (not a figure); prints and returns the top functions by own time."""
    engine = make()
    profiler = cProfile.Profile()
    timed_run(engine, blobs, profiler)
    engine.check_invariants()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{pathlib.Path(path).name}:{line}({func})", "calls": calls,
                     "tottime_s": tottime, "cumtime_s": cumtime, "share": tottime / total})  # fmt: skip
    rows.sort(key=lambda r: -r["tottime_s"])
    print(f"cProfile, one prediction run ({total:.2f} s of profiled time), top {top} by own time:")
    print(f"  {'own s':>7} {'share':>6} {'cum s':>7} {'calls':>10}  function")
    for r in rows[:top]:
        print(f"  {r['tottime_s']:7.2f} {r['share']:6.1%} {r['cumtime_s']:7.2f} {r['calls']:10,}  {r['function']}")
    return rows[:top]


def modified_sources() -> list[str]:
    """Files under core/ and plugins/ that differ from the commit `machine()` names (the figure's code is not it)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--", "core", "plugins"], capture_output=True,
                                text=True, check=True, cwd=HERE.parent).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in status.splitlines()]


def recorded_spot() -> float | None:
    """The spot batch figure of bench/engine_results.json (submit_batch, journal off), if recorded."""
    path = HERE / "engine_results.json"
    if not path.is_file():
        return None
    paths = json.loads(path.read_text()).get("paths", [])
    figures = [p["tx_per_s"] for p in paths if p.get("path") == "submit_batch" and not p.get("journal")]
    return max(figures) if figures else None


def merge_into(path: pathlib.Path, key: str, figures: dict[str, Any]) -> None:
    """Write `figures` under `key` into the JSON file at `path`, keeping everything else in it."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = figures
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Build both workloads, run them alternately, check them, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description="exos prediction-market benchmark (batch path, journal off)")
    parser.add_argument("--n", type=int, default=1_000_000, help="commands in the timed flow")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each workload; the best is reported")
    parser.add_argument("--accounts", type=int, default=10_000, help="traders, half on each book side")
    parser.add_argument("--no-outcome-share", dest="no_share", type=float, default=0.5,
                        help="fraction of orders placed on the NO outcome")  # fmt: skip
    parser.add_argument("--no-spot", action="store_true", help="skip the in-process spot run (ratio from the record)")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP", help="one extra cProfile run: print TOP rows")
    parser.add_argument("--write", type=pathlib.Path, help="merge {'prediction': ...} into this JSON file")
    args = parser.parse_args(argv)
    if args.accounts < 2 or args.accounts % 2:
        parser.error("--accounts: an even number of at least 2")
    per_side = args.accounts // 2
    stream_path = refstream.ensure(args.n, args.seed, HERE / "data")
    stream = refstream.read(stream_path)
    expected_fills = int(refstream.read_expected(stream_path)["fills"])
    commands, mix = prediction_workload(stream, args.seed, per_side, args.no_share)
    pm_blobs = blobs_of(commands)
    del commands
    spot_blobs = [] if args.no_spot else blobs_of(standard_workload(stream, "BENCH"))
    del stream
    gc.collect()
    print(f"prediction workload: {args.n:,} transactions (stream seed {args.seed}), {args.accounts:,} accounts, "
          f"one binary market (tick 0.001, probability fees 0/100 bp)")  # fmt: skip
    print("  orders: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in mix.items()))

    def make_pm() -> Engine:
        return prediction_engine(args.accounts)

    def make_spot() -> Engine:
        return engine_bench.fresh(None)

    pm_runs: list[dict[str, Any]] = []
    spot_runs: list[dict[str, Any]] = []
    for run in range(args.runs):  # alternate, so drift on the shared cores hits both alike
        pm = measure(make_pm, pm_blobs, args.n, expected_fills)
        pm_runs.append(pm)
        line = f"  run {run + 1}: prediction {pm['tx_per_s']:>9,.0f} tx/s (CPU {pm['cpu_tx_per_s']:>9,.0f})"
        if spot_blobs:
            spot = measure(make_spot, spot_blobs, args.n, expected_fills)
            spot_runs.append(spot)
            line += f"   spot {spot['tx_per_s']:>9,.0f} tx/s (CPU {spot['cpu_tx_per_s']:>9,.0f})"
        print(line, flush=True)
    hashes = {r["state_hash"] for r in pm_runs}
    if len(hashes) != 1:
        raise SystemExit(f"prediction runs disagree on the final state: {sorted(hashes)}")
    if len({r["state_hash"] for r in spot_runs}) > 1:
        raise SystemExit("spot runs disagree on the final state")
    stats = pm_runs[0]["stats"]
    if any(stats[k] == 0 for k in KIND_NAMES):
        raise SystemExit(f"a fill kind never occurred: {stats}")
    print(f"  fills {stats['fills']:,} ({stats['lots']:,} lots): "
          + ", ".join(f"{k.replace('_', ' ')} {stats[k]:,}" for k in KIND_NAMES)
          + f"; fees {stats['fees'] / 1e6:,.2f} USDC; invariants hold; state hash {hashes.pop()[:16]}")  # fmt: skip
    best = max(pm_runs, key=lambda r: r["tx_per_s"])
    recorded = recorded_spot()
    spot_best = max(r["tx_per_s"] for r in spot_runs) if spot_runs else recorded
    ratio = spot_best / best["tx_per_s"] if spot_best else None
    cpu_best = max(r["cpu_tx_per_s"] for r in pm_runs)
    spot_cpu_best = max(r["cpu_tx_per_s"] for r in spot_runs) if spot_runs else None
    profile_rows = profile_run(make_pm, pm_blobs, args.profile) if args.profile else None
    figures: dict[str, Any] = {
        "tx_per_s": best["tx_per_s"],
        "seconds": best["seconds"],
        "runs_tx_per_s": [round(r["tx_per_s"]) for r in pm_runs],
        "cpu_tx_per_s": cpu_best,
        "runs_cpu_tx_per_s": [round(r["cpu_tx_per_s"]) for r in pm_runs],
        "workload": {
            "n": args.n,
            "seed": args.seed,
            "batch": BATCH,
            "accounts": args.accounts,
            "no_share": args.no_share,
            "orders": mix,
            "stream": stream_path.name,
        },
        "market": {"tick_size": "0.001", "lot_size": "1", "fee_model": "probability", "maker_bps": 0, "taker_bps": 100},
        "fills": {k: stats[k] for k in ("fills", "lots", *KIND_NAMES)},
        "fees_units": stats["fees"],
        "spot": {
            "tx_per_s": spot_best,
            "runs_tx_per_s": [round(r["tx_per_s"]) for r in spot_runs],
            "cpu_tx_per_s": spot_cpu_best,
            "source": "in-process, same harness" if spot_runs else "bench/engine_results.json",
            "recorded_engine_results_tx_per_s": recorded,
        },
        "ratio_spot_over_prediction": ratio,
        "ratio_cpu": spot_cpu_best / cpu_best if spot_cpu_best else None,
        "floor_tx_per_s": FLOOR,
        "target_ratio": TARGET_RATIO,
        "meets_floor": best["tx_per_s"] >= FLOOR,
        "meets_target": ratio is not None and ratio <= TARGET_RATIO,
        "state_hash": best["state_hash"],
        "runs": args.runs,
        "timing": "Engine.submit_batch(blob of 1,000 records) calls only, journal off; best of runs (wall; CPU too)",
        "python": sys.version.split()[0],
        "machine": machine(),
        "modified_sources": modified_sources(),
        "date": time.strftime("%Y-%m-%d"),
    }
    if profile_rows is not None:
        figures["profile_top"] = profile_rows
    source = "" if spot_runs else " recorded in engine_results.json"
    spot_text = f"spot {spot_best:,.0f} tx/s{source}, ratio {ratio:.2f}x" if ratio else "no spot figure"
    verdict = ("meets" if figures["meets_floor"] else "misses") + f" the {FLOOR:,} floor; " + (
        "within" if figures["meets_target"] else "outside") + f" the {TARGET_RATIO}x target"  # fmt: skip
    print(f"prediction: {best['tx_per_s']:,.0f} tx/s ({spot_text}; {verdict})")
    if args.write:
        merge_into(args.write, "prediction", figures)
        print(f"wrote {args.write} (key 'prediction')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
