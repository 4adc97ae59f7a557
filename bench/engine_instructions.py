"""Instructions per command under callgrind: a cost figure the shared VM's noise does not move.

Runs the standard workload's first N commands through `submit_batch` after funding, once with N and
once with none, each under `valgrind --tool=callgrind`, and prints (total(N) - total(0)) / N. Needs
valgrind. Example: `.venv/bin/python bench/engine_instructions.py --n 40000` (one spot market), or
with `--perps` the same stream over bench/perps_bench.py's four cross-margined perpetuals. With
`--warm W` the first W commands run uninstrumented and the N counted are the next ones: the stream's
steady state (every account holding its positions) rather than its opening.

`--cache` (with `--warm`) instead runs the N commands as `perps_bench.py` does (batches of 1,000 through
`submit_records`, the collector as in the bench) under callgrind's cache simulation, instrumented around that
loop only, and prints instructions and I1, D1 and last-level misses per command: where a command's time goes
beyond its instruction count, on a VM whose `perf` has no cache counters.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def child(n: int, records: pathlib.Path, perps: bool, warm: int) -> None:
    """Fund a fresh engine, apply `warm` records uninstrumented, then n more (the measured process)."""
    sys.path.insert(0, str(HERE))
    from engine_bench import fresh
    from exos.commands import RECORD
    from perps_bench import perp_engine

    engine = perp_engine() if perps else fresh(None)
    data = records.read_bytes()
    if warm:
        for start in range(0, warm * RECORD.size, 1000 * RECORD.size):
            engine.submit_batch(data[start : min(start + 1000 * RECORD.size, warm * RECORD.size)])
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    engine.submit_batch(data[warm * RECORD.size : (warm + n) * RECORD.size])


def cache_child(n: int, records: pathlib.Path, perps: bool, warm: int) -> None:
    """Fund an engine as the perps bench does, apply `warm` records, then n more in its batches, instrumented."""
    sys.path.insert(0, str(HERE))
    from exos.commands import RECORD
    from perps_bench import BATCH, perp_engine, spot_engine

    engine = perp_engine() if perps else spot_engine()
    data = records.read_bytes()
    size = RECORD.size
    batches = [[data[i * size : (i + 1) * size] for i in range(start, min(start + BATCH, warm + n))]
               for start in range(0, warm + n, BATCH)]  # fmt: skip
    for batch in batches[: warm // BATCH]:
        engine.submit_records(batch)
    control = ["callgrind_control", "-i"]
    subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
    for batch in batches[warm // BATCH :]:
        engine.submit_records(batch)
    subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)
    os._exit(0)  # the interpreter's teardown is not the workload's


def cache_figures(n: int, records: pathlib.Path, out: pathlib.Path, perps: bool, warm: int) -> dict[str, int]:
    """callgrind's cache simulation of the bench loop over n commands: instructions and misses."""
    command = ["valgrind", "--tool=callgrind", "--cache-sim=yes", "--instr-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, __file__, "--cache-child", str(n),
               "--records", str(records), "--warm", str(warm), *(["--perps"] if perps else [])]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ,
                            "PYTHONHASHSEED": "0"})  # fmt: skip
    figures = {}
    for name, label in (("instructions", "I   refs"), ("I1", "I1  misses"), ("D1", "D1  misses"), ("LL", "LL misses")):
        match = re.search(label + r":\s+([\d,]+)", result.stderr)
        if match is None:
            raise RuntimeError(result.stderr[-2000:])
        figures[name] = int(match.group(1).replace(",", ""))
    return figures


def collected(n: int, records: pathlib.Path, out: pathlib.Path, perps: bool, warm: int) -> int:
    """callgrind's instruction count for a child run over n commands (after `warm` uncounted ones)."""
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               *(["--instr-atstart=no"] if warm else []), sys.executable, __file__,
               "--child", str(n), "--records", str(records), "--warm", str(warm),
               *(["--perps"] if perps else [])]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ,
                            "PYTHONHASHSEED": "0"})  # fmt: skip
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(result.stderr[-2000:])
    return int(match.group(1))


def main() -> int:
    """Print instructions per command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--warm", type=int, default=0, help="commands to run uncounted first (the steady state)")
    parser.add_argument("--cache", action="store_true", help="the bench loop, cache simulated")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--perps", action="store_true", help="four cross-margined perpetuals instead of one spot market"
    )
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.records, args.perps, args.warm)
        return 0
    if args.cache_child is not None:
        cache_child(args.cache_child, args.records, args.perps, args.warm)
        return 0
    sys.path.insert(0, str(HERE))
    from perps_bench import BATCH, perp_workload

    if args.cache and (args.warm % BATCH or args.n % BATCH or not args.warm):
        parser.error(f"--cache needs --warm and --n in whole batches of {BATCH:,}")
    import refstream
    from exos.simulate import standard_workload

    stream = refstream.read(refstream.ensure(1_000_000, 42, HERE / "data"))
    workload = perp_workload(stream) if args.perps else standard_workload(stream, "BENCH")
    with tempfile.TemporaryDirectory() as scratch:
        records = pathlib.Path(scratch) / "records.bin"
        records.write_bytes(b"".join(c.pack() for c in workload[: args.warm + args.n]))
        what = "perp (four markets, cross margin)" if args.perps else "spot"
        if args.cache:
            figures = cache_figures(args.n, records, pathlib.Path(scratch) / "cg.cache", args.perps, args.warm)
            print(f"per {what} command (callgrind's cache simulation, the bench's batches, {args.n:,} commands after "
                  f"the first {args.warm:,}): " + ", ".join(f"{name} {value / args.n:,.0f}"
                                                          for name, value in figures.items()))  # fmt: skip
            return 0
        base = collected(0, records, pathlib.Path(scratch) / "cg.0", args.perps, args.warm)
        total = collected(args.n, records, pathlib.Path(scratch) / "cg.n", args.perps, args.warm)
    after = f"the first {args.warm:,} uncounted" if args.warm else "funding"
    print(f"instructions per {what} command (callgrind, {args.n:,} commands after {after}): "
          f"{(total - base) / args.n:,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
