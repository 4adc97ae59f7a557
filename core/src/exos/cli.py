"""The `exos` command: simulate, replay, run, plugins. The only place that configures logging.

Errors print one line, `error: CODE: message`, and exit 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog

from exos.errors import ExosError

BATCH = 1000


def _configure_logging(debug: bool) -> None:
    """Pretty logs on a terminal, JSON lines otherwise; to stderr so stdout stays the command's output."""
    import logging

    renderer: Any = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if debug else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


def _engine(manifest: str, journal: str | None) -> Any:
    """An engine for the manifest (recovering from the journal when one is given)."""
    from exos.engine import Engine

    return Engine.from_manifest(manifest, journal=journal)


def _progress(total: int, label: str) -> Any:
    """A progress bar on stderr (tqdm), silent when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="cmd", unit_scale=True, file=sys.stderr, disable=not sys.stderr.isatty())


def _apply(engine: Any, commands: Iterable[Any], total: int, label: str) -> tuple[int, int, int, float]:
    """Submit commands in batches; returns (commands, accepted, fills, seconds)."""
    from exos.events import EventKind

    fill, done = int(EventKind.FILL), int(EventKind.COMMAND_DONE)
    count = accepted = fills = 0
    seconds = 0.0
    batch: list[bytes] = []
    with _progress(total, label) as bar:

        def flush() -> None:
            nonlocal accepted, fills, seconds
            start = time.perf_counter()
            events = engine.submit_records(batch)
            seconds += time.perf_counter() - start
            for event in events:
                if event[3] == fill:
                    fills += 1
                elif event[3] == done and event[4]:
                    accepted += 1
            bar.update(len(batch))
            batch.clear()

        for command in commands:
            batch.append(command.pack())
            count += 1
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    return count, accepted, fills // 2, seconds


def _top_of_books(engine: Any) -> list[str]:
    """One line per market: best bid and ask in human units."""
    lines = []
    for ms in engine.markets:
        spec = next((m for m in engine.manifest.markets if m.name == ms.name), None)
        bid, ask = ms.book.best_bid(), ms.book.best_ask()

        def show(level: tuple[int, int] | None, spec: Any = spec) -> str:
            if level is None:
                return "-"
            if spec is None:
                return f"{level[1]} @ {level[0]}"
            return f"{spec.lots_to_size(level[1])} @ {spec.ticks_to_price(level[0])}"

        lines.append(f"  {ms.name}: bid {show(bid)} | ask {show(ask)} | {ms.book.open_orders} open orders")
    return lines


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a seeded flow of many accounts through the manifest's markets."""
    from exos.simulate import funding, random_flow

    engine = _engine(args.manifest, args.journal)
    simulation = engine.manifest.simulation
    if simulation is not None:
        driver = engine.plugins.simulations.get(simulation.driver)
        if driver is None:
            print(f"error: simulation.driver: no enabled plugin registers {simulation.driver!r}", file=sys.stderr)
            return 1
        return int(driver.run(engine, seed=args.seed, orders=args.orders, params=simulation.params))
    if args.orders is None:
        args.orders = 100_000
    gc.collect()
    gc.freeze()
    fund = funding(engine.manifest, args.accounts, timestamp=max(engine.last_timestamp, 0))
    if engine.seq == 0:
        _apply(engine, fund, len(fund), "funding")
    flow = random_flow(
        engine.manifest, args.orders, args.seed, accounts=args.accounts, start=max(engine.last_timestamp, 1)
    )
    count, accepted, fills, seconds = _apply(engine, flow, args.orders, "simulating")
    engine.check_invariants()
    rate = count / seconds if seconds else float("inf")
    print(f"commands: {count:,} ({accepted:,} accepted) in {seconds:.2f} s: {rate:,.0f} commands/s")
    print(f"fills: {fills:,}")
    print("top of book:")
    print("\n".join(_top_of_books(engine)))
    print(f"state hash: {engine.state_hash()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a venue over HTTP (needs `pip install "exos[server]"`)."""
    from exos.ratelimit import Limits
    from exos.server import serve

    limits = Limits(args.limit_address, 2 * args.limit_address, args.limit_ip, 2 * args.limit_ip, args.limit_read,
                    2 * args.limit_read)  # fmt: skip
    return serve(args.manifest, args.host, args.port, args.journal, args.verifiers, limits, not args.no_history)


def cmd_replay(args: argparse.Namespace) -> int:
    """Recover a journal directory and print its state hash."""
    from exos.recovery import replay_directory

    start = time.perf_counter()
    engine = replay_directory(args.directory)
    seconds = time.perf_counter() - start
    if engine.recovery is not None:
        print(f"recovered after a torn tail: {engine.recovery.reason} (last good record {engine.recovery.last_seq})")
    print(f"replayed {engine.seq:,} commands in {seconds:.2f} s")
    print(f"state hash: {engine.state_hash()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Apply a JSON-lines flow and print its events."""
    from exos.events import decode
    from exos.flow import FlowReader

    engine = _engine(args.manifest, args.journal)
    markets = {spec.name: spec for spec in engine.manifest.markets}
    decimals = {asset.symbol: asset.decimals for asset in engine.ledger.assets}
    reader = FlowReader(markets, decimals)
    for command in reader.read(Path(args.flow)):
        for raw in engine.submit_records([command.pack()]):
            print(_describe(decode(raw)))
    engine.check_invariants()
    print(f"state hash: {engine.state_hash()}")
    return 0


def _describe(event: Any) -> str:
    """One event as a readable line (addresses as hex)."""
    import attrs

    fields = []
    for name, value in attrs.asdict(event, recurse=False).items():
        if name in ("seq", "index"):
            continue
        shown = "0x" + value.hex() if isinstance(value, bytes) else value
        fields.append(f"{name}={shown.name.lower() if hasattr(shown, 'name') else shown}")
    return f"{event.seq}.{event.index} {type(event).__name__} " + " ".join(fields)


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed plugins, and those a manifest enables."""
    from exos.plugins import installed_plugins, load_plugins

    print("installed (entry points in group 'exos'):")
    for plugin in installed_plugins():
        print(f"  {plugin.name:<16} {plugin.distribution} {plugin.version}  ({plugin.value})")
    if args.manifest:
        from exos.manifest import Manifest

        manifest = Manifest.from_toml(args.manifest)
        plugins = load_plugins(manifest.plugins)
        print(f"enabled by {args.manifest}:")
        for name, version in plugins.versions:
            print(f"  {name:<16} {version}")
        kinds = ("market_types", "fee_models", "order_checks", "margin_providers", "oracles", "compliance_policies",
                 "resolution_sources", "simulations")  # fmt: skip
        for kind in kinds:
            names = ", ".join(getattr(plugins, kind)) or "-"
            print(f"    {kind.replace('_', ' ')}: {names}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `exos`."""
    parser = argparse.ArgumentParser(prog="exos", description="exos: an open exchange engine")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    simulate = sub.add_parser("simulate", help="run a seeded flow of many accounts through a venue")
    simulate.add_argument("manifest")
    simulate.add_argument(
        "--orders", type=int, help="commands in the flow (default 100,000; a plugin's simulation: its own)"
    )
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--accounts", type=int, default=1000)
    simulate.add_argument("--journal", help="journal directory (recovered first if it exists)")
    simulate.set_defaults(run=cmd_simulate)
    serve = sub.add_parser("serve", help="serve a venue over HTTP: signed actions, books, accounts, a faucet")
    serve.add_argument("manifest")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--journal", help="journal directory (recovered first if it exists)")
    serve.add_argument(
        "--verifiers",
        type=int,
        default=1,
        choices=range(33),
        metavar="N",
        help="API processes that check signatures (0: everything in this one process)",
    )
    serve.add_argument(
        "--limit-address",
        type=float,
        default=1000.0,
        metavar="PER_S",
        help="actions per second per account address, bursts of twice that (0: unlimited)",
    )
    serve.add_argument(
        "--limit-ip",
        type=float,
        default=5000.0,
        metavar="PER_S",
        help="requests per second per IP, bursts of twice that (0: unlimited)",
    )
    serve.add_argument(
        "--limit-read",
        type=float,
        default=500.0,
        metavar="PER_S",
        help="reads, logins and subscriptions per second per IP and API process, bursts of twice that (0: unlimited)",
    )
    serve.add_argument(
        "--no-history",
        action="store_true",
        help="keep no history store (with --journal, a projector process keeps one by default)",
    )
    serve.set_defaults(run=cmd_serve)
    replay = sub.add_parser("replay", help="recover a journal directory and print its state hash")
    replay.add_argument("directory")
    replay.set_defaults(run=cmd_replay)
    run = sub.add_parser("run", help="apply a JSON-lines flow of commands")
    run.add_argument("manifest")
    run.add_argument("--flow", required=True)
    run.add_argument("--journal")
    run.set_defaults(run=cmd_run)
    plugins = sub.add_parser("plugins", help="list installed and enabled plugins")
    plugins.add_argument("manifest", nargs="?")
    plugins.set_defaults(run=cmd_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `exos` command."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.debug)
    try:
        return int(args.run(args))
    except ExosError as exc:
        if args.debug:
            raise
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
