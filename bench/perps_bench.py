#!/usr/bin/env python3
"""Perpetuals benchmark: cross-margined perp transactions per second, and the cost of a liquidation pass.

**Throughput.** The standard workload's 1 M-op reference stream (bench/refstream.py) through four perps
(bench/perps_workload.toml: tick 1, lot 1, maker -1 bp, taker 5 bp, 20x, one USD risk group); the
order with id `oid` goes to market `oid % 4`, so each of the 10,000 accounts (buyers and sellers
never share one) holds positions in several markets under one cross margin. Every order that adds
risk passes unified margin's initial check over all the account's positions; fills move positions,
realise PnL through the pools and charge fees. `submit_batch`, batches of 1,000, journal off. The
same stream through one spot market runs alternately in the same process for comparison.

**Liquidation pass.** N accounts long one market (1,000 of them at 10x, the rest at 1x), a few whales
short; the oracle falls 50% in one update; the pass liquidates the 1,000 (into resting bids, then the
backstop, the insurance fund and ADL against the whales). Timed: the one command that moves the
oracle. N = 100,000 and 1,000,000.

    python bench/perps_bench.py --n 1000000 --write bench/results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import sys
import time
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import refstream  # noqa: E402
from book_bench import machine  # noqa: E402
from exos.commands import Actor, CancelOrder, Command, Deposit, MarketAction, OracleUpdate, PlaceOrder  # noqa: E402
from exos.engine import Engine  # noqa: E402
from exos.events import EventKind  # noqa: E402
from exos.marketctx import system_address  # noqa: E402
from exos.simulate import (  # noqa: E402
    STANDARD_ACCOUNTS_PER_SIDE,
    account_address,
    standard_funding,
    standard_owner,
    standard_workload,
)

MANIFEST = HERE / "perps_workload.toml"
SPOT = HERE / "workload.toml"
PUBLISHER = bytes.fromhex("0000000000000000000000000000000000000a11")
MARKETS = ("P0-PERP", "P1-PERP", "P2-PERP", "P3-PERP")
BATCH = 1000
FILL = int(EventKind.FILL)
MID = 100_000


def perp_workload(stream: list[tuple[int, int, int, int, int]]) -> list[Command]:
    """The reference stream over four perps: order `oid` in market `(oid // 5000) % 4`; the standard accounts."""
    out: list[Command] = []
    for op, side, qty, price, oid in stream:
        actor = Actor(account_address(standard_owner(oid, side)))
        market = MARKETS[(oid // STANDARD_ACCOUNTS_PER_SIDE) % len(MARKETS)]
        if op == 1:
            out.append(CancelOrder(actor=actor, timestamp=1, market=market, order_id=oid))
        else:
            out.append(PlaceOrder(actor=actor, timestamp=1, market=market, side=side, price=price, size=qty))
    return out


def perp_engine() -> Engine:
    """A funded perps engine with every oracle at the stream's mid."""
    engine = Engine.from_manifest(MANIFEST)
    admin = engine.manifest.venue.admins[0]
    setup: list[Command] = [OracleUpdate(actor=Actor(PUBLISHER), timestamp=1, feed=f"{m[:2]}-USD", price=MID,
                                         published_ms=1) for m in MARKETS]  # fmt: skip
    for account in range(1, 10_001):
        setup.append(Deposit(actor=Actor(account_address(account), 0, admin), timestamp=1, asset="USD",
                             amount=10**15))  # fmt: skip
    engine.submit_batch(setup)
    gc.collect()
    gc.freeze()
    return engine


def spot_engine() -> Engine:
    """The standard workload's funded spot engine."""
    engine = Engine.from_manifest(SPOT)
    engine.submit_batch(standard_funding(engine.manifest))
    gc.collect()
    gc.freeze()
    return engine


def timed(engine: Engine, records: list[bytes]) -> tuple[float, int]:
    """Seconds to apply the records in batches of 1,000, and the trades."""
    fills = 0
    start = time.perf_counter()
    for i in range(0, len(records), BATCH):
        events = engine.submit_records(records[i : i + BATCH])
        fills += sum(1 for e in events if e[3] == FILL)
    return time.perf_counter() - start, fills // 2


def throughput(n: int, seed: int, runs: int) -> dict[str, Any]:
    """Perp and spot transactions/s on the reference stream, alternating, best of `runs`."""
    stream = refstream.read(refstream.ensure(n, seed, HERE / "data"))
    perp_records = [c.pack() for c in perp_workload(stream)]
    spot_records = [c.pack() for c in standard_workload(stream, "BENCH")]
    perp_rates, spot_rates, hashes = [], [], set()
    fills = 0
    for _ in range(runs):
        engine = perp_engine()
        seconds, fills = timed(engine, perp_records)
        perp_rates.append(len(perp_records) / seconds)
        engine.check_invariants()
        hashes.add(engine.state_hash())
        positions = sum(len(engine.market_state(m).market.positions) for m in MARKETS)
        del engine
        gc.unfreeze()
        gc.collect()
        engine = spot_engine()
        seconds, _ = timed(engine, spot_records)
        spot_rates.append(len(spot_records) / seconds)
        del engine
        gc.unfreeze()
        gc.collect()
    if len(hashes) != 1:
        raise SystemExit(f"runs disagree on the final state: {hashes}")
    return {"n": n, "seed": seed, "markets": len(MARKETS), "accounts": 10_000, "positions": positions,
              "trades": fills, "perp_tx_per_s": perp_rates, "spot_tx_per_s": spot_rates,
              "best_perp_tx_per_s": max(perp_rates), "best_spot_tx_per_s": max(spot_rates),
              "state_hash": hashes.pop()}  # fmt: skip


# ---------------------------------------------------------------- the liquidation pass


def opening_long(i: int, admin: bytes, market: str, t: int, deposit: int, leverage: int) -> list[Command]:
    """Standard account `i` deposits USD, sets its leverage and bids for 10 lots at 100 (the setup's longs)."""
    actor = Actor(account_address(i))
    return [Deposit(actor=Actor(account_address(i), 0, admin), timestamp=t, asset="USD", amount=deposit),
            MarketAction(actor=actor, timestamp=t, market=market, action="leverage", args={"leverage": leverage}),
            PlaceOrder(actor=actor, timestamp=t, market=market, side=0, price=100, size=10)]  # fmt: skip


def timed_oracle_move(engine: Engine, t: int, price: int) -> tuple[float, list[str]]:
    """Seconds for the one command that moves P0's oracle to `price` (the heap frozen first), and the names of
    its market events; the invariants are checked after it."""
    gc.collect()
    gc.freeze()
    record = OracleUpdate(actor=Actor(PUBLISHER), timestamp=t, feed="P0-USD", price=price, published_ms=t).pack()
    begin = time.perf_counter()
    events = engine.submit_records([record])
    seconds = time.perf_counter() - begin
    engine.check_invariants()
    gc.unfreeze()
    return seconds, [e[5] for e in events if e[3] == int(EventKind.MARKET_EVENT)]


def liquidation_pass(accounts: int, at_risk: int) -> dict[str, Any]:
    """Build `accounts` longs (`at_risk` of them at 10x), crash the oracle 50%, time the one command."""
    engine = Engine.from_manifest(MANIFEST)
    admin = engine.manifest.venue.admins[0]
    market = "P0-PERP"
    whales = [system_address(f"bench-whale/{i}") for i in range(4)]
    bidder = system_address("bench-bidder")
    t = 1
    setup: list[Command] = [OracleUpdate(actor=Actor(PUBLISHER), timestamp=t, feed="P0-USD", price=100,
                                         published_ms=t)]  # fmt: skip
    for whale in (*whales, bidder):
        setup.append(Deposit(actor=Actor(whale, 0, admin), timestamp=t, asset="USD", amount=10**12))
    for label, amount in (("backstop/USD", 20_000), ("insurance/USD", 20_000)):
        setup.append(Deposit(actor=Actor(system_address(label), 0, admin), timestamp=t, asset="USD", amount=amount))
    engine.submit_batch(setup)
    started = time.perf_counter()
    for first in range(0, accounts, 50_000):
        chunk: list[Command] = []
        for i in range(first, min(first + 50_000, accounts)):
            risky = i % (accounts // at_risk) == 0
            # 10 lots at 100 reserve 10 or 100 a lot (10x or 1x) and one for the fee
            chunk += opening_long(i, admin, market, t, 110 if risky else 1_010, 10 if risky else 1)
        engine.submit_batch(chunk)
        sells = [PlaceOrder(actor=Actor(whales[(first // 50_000) % len(whales)]), timestamp=t, market=market,
                            side=1, price=100, size=10 * (min(first + 50_000, accounts) - first))]  # fmt: skip
        engine.submit_batch(sells)
    # resting bids that absorb part of the liquidations (the book stage), far below the old mark
    engine.submit_batch([OracleUpdate(actor=Actor(PUBLISHER), timestamp=t + 1, feed="P0-USD", price=95,
                                      published_ms=t + 1)])  # fmt: skip
    engine.submit_batch([PlaceOrder(actor=Actor(bidder), timestamp=t + 1, market=market, side=0, price=91,
                                    size=2_000)])  # fmt: skip
    setup_seconds = time.perf_counter() - started
    assert engine.market_state(market).market.long_oi == 10 * accounts
    seconds, names = timed_oracle_move(engine, t + 2, 50)
    return {
        "accounts": accounts, "at_risk": at_risk, "pass_ms": seconds * 1e3,
        "evaluated": engine.margin.liquidator.evaluated,
        "liquidated": names.count("exos.liquidation.started"),
        "stages": {stage: names.count(f"exos.liquidation.{stage}") for stage in ("book", "backstop", "insurance",
                                                                                  "adl")},
        "setup_seconds": setup_seconds, "state_hash": engine.state_hash(),
    }  # fmt: skip


def adl_pass(holders: int) -> dict[str, Any]:
    """ADL against `holders` longs: one whale short at 10x is liquidated by a +25% oracle move and the backstop and
    insurance fund cannot take its 1,000 lots, so ADL closes them against the best-ranked longs (about 70 of them).

    Timed: the one command that moves the oracle (after a pass that indexed everyone)."""
    engine = Engine.from_manifest(MANIFEST)
    admin = engine.manifest.venue.admins[0]
    market, t = "P0-PERP", 1
    whale, seller = system_address("bench-adl-whale"), system_address("bench-adl-seller")
    setup: list[Command] = [
        OracleUpdate(actor=Actor(PUBLISHER), timestamp=t, feed="P0-USD", price=100, published_ms=t),
        Deposit(actor=Actor(whale, 0, admin), timestamp=t, asset="USD", amount=11_000),
        Deposit(actor=Actor(seller, 0, admin), timestamp=t, asset="USD", amount=10**13),
        *(Deposit(actor=Actor(system_address(label), 0, admin), timestamp=t, asset="USD", amount=1_000)
          for label in ("backstop/USD", "insurance/USD")),
    ]  # fmt: skip
    engine.submit_batch(setup)
    for first in range(0, holders, 50_000):
        chunk: list[Command] = []
        for i in range(first, min(first + 50_000, holders)):
            chunk += opening_long(i, admin, market, t, 1_010 + i % 500, 1 + i % 5)
        engine.submit_batch(chunk)
    engine.submit_batch([
        MarketAction(actor=Actor(seller), timestamp=t, market=market, action="leverage", args={"leverage": 1}),
        PlaceOrder(actor=Actor(seller), timestamp=t, market=market, side=1, price=100, size=10 * holders - 1_000),
        MarketAction(actor=Actor(whale), timestamp=t, market=market, action="leverage", args={"leverage": 10}),
        PlaceOrder(actor=Actor(whale), timestamp=t, market=market, side=1, price=100, size=1_000),
        OracleUpdate(actor=Actor(PUBLISHER), timestamp=t + 1, feed="P0-USD", price=97, published_ms=t + 1),
    ])  # fmt: skip
    seconds, names = timed_oracle_move(engine, t + 2, 125)
    return {"holders": holders, "pass_ms": seconds * 1e3, "evaluated": engine.margin.liquidator.evaluated,
            "adl_counterparties": names.count("exos.liquidation.adl")}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description="exos perpetuals benchmark")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--accounts", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--at-risk", type=int, default=1_000)
    parser.add_argument(
        "--adl-holders",
        type=int,
        nargs="*",
        default=[10_000, 100_000],
        help="ADL passes against this many opposite holders (none: skip)",
    )
    parser.add_argument("--write", type=pathlib.Path, help="merge the figures into this JSON file (key 'perps')")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if args.n:
        tp = throughput(args.n, args.seed, args.runs)
        figures["throughput"] = tp
        print(f"perps: {args.n:,} transactions over {len(MARKETS)} markets, 10,000 accounts with "
              f"{tp['positions']:,} positions, {tp['trades']:,} trades")  # fmt: skip
        print("  perp tx/s per run: " + ", ".join(f"{r:,.0f}" for r in tp["perp_tx_per_s"]))
        print("  spot tx/s per run (same stream, one market): " + ", ".join(f"{r:,.0f}" for r in tp["spot_tx_per_s"]))
        print(f"  best: perp {tp['best_perp_tx_per_s']:,.0f} tx/s (floor 150,000), spot {tp['best_spot_tx_per_s']:,.0f}"
              f"; state hash {tp['state_hash'][:16]}")  # fmt: skip
    stream = refstream.read(refstream.ensure(200_000, args.seed, HERE / "data"))
    spot_records = [c.pack() for c in standard_workload(stream, "BENCH")]
    seconds, _ = timed(spot_engine(), spot_records)
    figures["spot_calibration_tx_per_s"] = len(spot_records) / seconds  # how fast this machine is right now
    print(f"machine now: the spot engine runs the first 200,000 of the stream at {len(spot_records) / seconds:,.0f} "
          "tx/s (batches of 1,000)")  # fmt: skip
    passes = []
    for accounts in args.accounts:
        result = liquidation_pass(accounts, args.at_risk)
        passes.append(result)
        print(f"liquidation pass, {accounts:,} accounts, {args.at_risk:,} at risk, oracle -50%: "
              f"{result['pass_ms']:.1f} ms; evaluated {result['evaluated']:,}, liquidated {result['liquidated']:,}; "
              f"stages {result['stages']} (setup {result['setup_seconds']:.0f} s)")  # fmt: skip
    figures["liquidation"] = passes
    if len(passes) >= 2:
        ratio = passes[-1]["pass_ms"] / passes[0]["pass_ms"]
        figures["liquidation_ratio"] = ratio
        print(f"  {passes[-1]['accounts']:,} vs {passes[0]['accounts']:,} accounts: {ratio:.2f}x "
              "(target: within 1.2x; the first under 100 ms)")  # fmt: skip
    adl = [adl_pass(holders) for holders in args.adl_holders]
    for result in adl:
        print(f"ADL pass against {result['holders']:,} long holders: {result['pass_ms']:.1f} ms; evaluated "
              f"{result['evaluated']:,}, ADL counterparties {result['adl_counterparties']} (ranking every holder: "
              "this grows with the holders, see the README)")  # fmt: skip
    figures["adl"] = adl
    if args.write:
        data = json.loads(args.write.read_text()) if args.write.exists() else {}
        data["perps"] = figures
        args.write.write_text(json.dumps(data, indent=2, default=float) + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
