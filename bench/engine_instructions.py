"""Instructions per command under callgrind: a cost figure the shared VM's noise does not move.

Runs the standard workload's first N commands through `submit_batch` after funding, once with N and
once with none, each under `valgrind --tool=callgrind`, and prints (total(N) - total(0)) / N. Needs
valgrind. Example: `.venv/bin/python bench/engine_instructions.py --n 40000` (one spot market), or
with `--perps` the same stream over bench/perps_bench.py's four cross-margined perpetuals. With
`--warm W` the first W commands run uninstrumented and the N counted are the next ones: the stream's
steady state (every account holding its positions) rather than its opening.
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
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--records", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--perps", action="store_true", help="four cross-margined perpetuals instead of one spot market"
    )
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.records, args.perps, args.warm)
        return 0
    sys.path.insert(0, str(HERE))
    import refstream
    from exos.simulate import standard_workload
    from perps_bench import perp_workload

    stream = refstream.read(refstream.ensure(1_000_000, 42, HERE / "data"))
    workload = perp_workload(stream) if args.perps else standard_workload(stream, "BENCH")
    with tempfile.TemporaryDirectory() as scratch:
        records = pathlib.Path(scratch) / "records.bin"
        records.write_bytes(b"".join(c.pack() for c in workload[: args.warm + args.n]))
        base = collected(0, records, pathlib.Path(scratch) / "cg.0", args.perps, args.warm)
        total = collected(args.n, records, pathlib.Path(scratch) / "cg.n", args.perps, args.warm)
    what = "perp (four markets, cross margin)" if args.perps else "spot"
    after = f"the first {args.warm:,} uncounted" if args.warm else "funding"
    print(f"instructions per {what} command (callgrind, {args.n:,} commands after {after}): "
          f"{(total - base) / args.n:,.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
