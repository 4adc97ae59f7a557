"""The unified venue: `exos simulate examples/unified.toml --seed S` runs spot, perps and a prediction market together.

A workload outside the engine (it only produces commands; seeded, integers only, so every run of a
seed gives one state hash). Every 15 s of command time a publisher moves the BTC-USD and ETH-USD
oracles (a seeded walk, with a crash at `crash_hour`: BTC −25%, ETH −20% in one update); every minute
three market makers re-quote both perpetuals leaning toward the index (as arbitrage would, within
the order band around mark), the spot book and the prediction market; traders open positions at
leverage from 3x to the market's maximum (through the book), close them with reduce-only orders,
trade spot and outcome shares, and back their margin with USDC and BTC. Funding pays every hour;
the crash liquidates the most leveraged through the whole waterfall: the book, collateral sales,
the capped backstop, the insurance fund and ADL. At the end the committee resolves the prediction
market on BTC's last price. The report counts each of those, shows the venue accounts, checks every
invariant and prints the state hash; the exit code is 1 if a check fails.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exos import commands as C
from exos.events import EventKind
from exos.marketctx import system_address
from exos.protocols import API_VERSION

STEP_MS = 15_000
START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
PUBLISHER = bytes.fromhex("0b0000000000000000000000000000000000000b")
_FILL, _REJECTED, _EVENT = int(EventKind.FILL), int(EventKind.REJECTED), int(EventKind.MARKET_EVENT)
PERPS = ("BTC-PERP", "ETH-PERP")
FEEDS = {"BTC-PERP": "BTC-USD", "ETH-PERP": "ETH-USD"}


def _address(kind: int, index: int) -> bytes:
    """A deterministic address: a kind byte and an index."""
    return bytes([kind]) + index.to_bytes(19, "big")


class Run:
    """One seeded run over an engine built from the unified manifest."""

    def __init__(self, engine: Any, seed: int, params: Mapping[str, Any]) -> None:
        """Accounts, prices and counters for a run of `params.hours` hours."""
        self.engine = engine
        self.rng = random.Random(seed)
        self.hours = int(params.get("hours", 12))
        self.crash_hour = int(params.get("crash_hour", self.hours // 2))
        self.traders = [_address(0x7A, i) for i in range(int(params.get("traders", 200)))]
        self.makers = [_address(0x3A, i) for i in range(3)]
        self.admin = engine.manifest.venue.admins[0]
        self.now = START_MS
        self.prices = {"BTC-USD": 6_500_000, "ETH-USD": 320_000}  # cents
        self.leverage: dict[tuple[bytes, str], int] = {}
        self.stats: Counter[str] = Counter()
        self.commands = 0

    # ------------------------------------------------------------ plumbing

    def submit(self, commands: list[C.Command]) -> None:
        """Apply commands in one batch and count what happened."""
        if not commands:
            return
        self.commands += len(commands)
        for event in self.engine.submit_batch(commands):
            kind = event[3]
            if kind == _FILL and event[9]:  # the maker's side: one per trade
                self.stats[f"trades {event[4]}"] += 1
                if event[2] == 2:
                    self.stats["liquidation fills"] += 1
            elif kind == _REJECTED:
                self.stats["rejected"] += 1
                self.stats["refused " + event[4]] += 1
            elif kind == _EVENT:
                name, detail = event[5], json.loads(event[6])
                self.stats[name] += 1
                if name in ("exos.liquidation.backstop", "exos.liquidation.insurance", "exos.liquidation.adl"):
                    self.stats[name + " lots"] += int(detail["size"])
                elif name == "exos.perps.funding":
                    self.stats["funding paid"] += int(detail["paid"])
                elif name == "exos.perps.unwind":
                    self.stats["unwound lots"] += int(detail["filled"])

    def actor(self, address: bytes, signer: bytes | None = None) -> C.Actor:
        """An actor (signed by itself unless told)."""
        return C.Actor(address, 0, signer or address)

    def mark(self, market: str) -> int:
        """A perp's mark in ticks (its oracle's price before it has one)."""
        ms = self.engine.market_state(market)
        mark = ms.market.mark
        if mark is not None:
            return int(mark)
        return ms.info.quote_per_tick_lot and self.ticks(market, self.prices[FEEDS[market]])

    def ticks(self, market: str, cents: int) -> int:
        """A price in cents as ticks of a market (0.1 USD for BTC-PERP, 0.01 otherwise)."""
        return cents // 10 if market == "BTC-PERP" else cents

    def lots(self, market: str, usd: int, price_ticks: int) -> int:
        """How many lots `usd` of notional buys at `price_ticks`."""
        q: int = self.engine.market_state(market).info.quote_per_tick_lot
        return max(1, usd * 1_000_000 // (price_ticks * q))

    # ------------------------------------------------------------ the run

    def fund(self) -> None:
        """Deposits: traders (USDC, some BTC), market makers, the backstop and the insurance fund."""
        admin = self.admin
        out: list[C.Command] = []
        t = self.now
        for i, trader in enumerate(self.traders):
            usd = self.rng.randrange(2_000, 40_000) * 1_000_000
            out.append(C.Deposit(actor=C.Actor(trader, 0, admin), timestamp=t, asset="USDC", amount=usd))
            if i % 5 == 0:
                out.append(C.Deposit(actor=C.Actor(trader, 0, admin), timestamp=t, asset="BTC",
                                     amount=self.rng.randrange(5, 60) * 1_000_000))  # fmt: skip
        for maker in self.makers:
            out.append(C.Deposit(actor=C.Actor(maker, 0, admin), timestamp=t, asset="USDC", amount=10**13))
            out.append(C.Deposit(actor=C.Actor(maker, 0, admin), timestamp=t, asset="BTC", amount=100 * 10**8))
        for label, usd in (("backstop/USDC", 40_000), ("insurance/USDC", 10_000)):
            out.append(C.Deposit(actor=C.Actor(system_address(label), 0, admin), timestamp=t, asset="USDC",
                                 amount=usd * 1_000_000))  # fmt: skip
        self.submit(out)
        self.publish(0)

    def publish(self, step: int) -> None:
        """The publisher's prices: a seeded walk, and the crash."""
        rng = self.rng
        out: list[C.Command] = []
        crash = step == self.crash_hour * 3_600_000 // STEP_MS
        for feed, shock in (("BTC-USD", 25), ("ETH-USD", 20)):
            price = self.prices[feed]
            move = rng.randint(-12, 12) + rng.randint(-12, 12)  # basis points
            price = price * (10_000 + move) // 10_000
            if crash:
                price = price * (100 - shock) // 100
            self.prices[feed] = price
            out.append(C.OracleUpdate(actor=self.actor(PUBLISHER), timestamp=self.now, feed=feed, price=price,
                                      published_ms=self.now))  # fmt: skip
        if crash:
            self.stats["crash at step"] = step
        self.submit(out)

    def quote(self) -> None:
        """Market makers replace their quotes, leaning toward each index price (and the spot and outcome books)."""
        rng = self.rng
        out: list[C.Command] = []
        for i, maker in enumerate(self.makers):
            actor = self.actor(maker)
            out.append(C.CancelAll(actor=actor, timestamp=self.now))
            for market in PERPS:
                # makers lean toward the index, as arbitrage would, within what the order band allows
                index, mark = self.ticks(market, self.prices[FEEDS[market]]), self.mark(market)
                mark = max(mark * 96 // 100, min(index, mark * 104 // 100))
                step = max(1, mark // 2_000)  # 5 bp between levels
                for level in range(1, 5):
                    size = self.lots(market, rng.randrange(20_000, 120_000), mark)
                    for side, price in ((0, mark - step * (level + i)), (1, mark + step * (level + i))):
                        out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market=market, side=side,
                                                price=price, size=size))  # fmt: skip
            spot = self.prices["BTC-USD"]
            for side, price in ((0, spot - 300 * (i + 1)), (1, spot + 300 * (i + 1))):
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market="BTC-USDC", side=side, price=price,
                                        size=rng.randrange(100, 2_000)))  # fmt: skip
            fair = max(2, min(98, 50 + (self.prices["BTC-USD"] - 6_000_000) // 10_000))
            for side, price in ((0, fair - 1 - i), (1, fair + 1 + i)):
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market="BTC-ABOVE-60K", side=side,
                                        price=max(1, min(99, price)), size=rng.randrange(50, 500)))  # fmt: skip
        self.submit(out)

    def trade(self) -> None:
        """A few traders act: open at a leverage, close reduce-only, trade spot or outcome shares."""
        rng = self.rng
        out: list[C.Command] = []
        for _ in range(rng.randint(0, 5)):
            trader = rng.choice(self.traders)
            actor = self.actor(trader)
            roll = rng.random()
            if roll < 0.55:
                market = rng.choice(PERPS)
                ceiling = 40 if market == "BTC-PERP" else 25
                leverage = rng.choice((3, 5, 10, 20, ceiling, ceiling))
                if self.leverage.get((trader, market)) != leverage:
                    self.leverage[(trader, market)] = leverage
                    out.append(C.MarketAction(actor=actor, timestamp=self.now, market=market, action="leverage",
                                              args={"leverage": leverage}))  # fmt: skip
                mark = self.mark(market)
                side = rng.randrange(2)
                price = mark * (10_200 if side == 0 else 9_800) // 10_000
                size = self.lots(market, rng.randrange(1_000, 60_000), mark)
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market=market, side=side, price=price,
                                        size=size, tif=2))  # fmt: skip
            elif roll < 0.80:
                market = rng.choice(PERPS)
                mark = self.mark(market)
                side = rng.randrange(2)
                price = mark * (10_200 if side == 0 else 9_800) // 10_000
                size = self.lots(market, rng.randrange(1_000, 60_000), mark)
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market=market, side=side, price=price,
                                        size=size, tif=2, reduce_only=True))  # fmt: skip
            elif roll < 0.90:
                spot = self.prices["BTC-USD"]
                side = rng.randrange(2)
                price = spot + (1_000 if side == 0 else -1_000)
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market="BTC-USDC", side=side, price=price,
                                        size=rng.randrange(1, 30), tif=2))  # fmt: skip
            else:
                out.append(C.PlaceOrder(actor=actor, timestamp=self.now, market="BTC-ABOVE-60K", side=0,
                                        price=rng.randrange(5, 95), size=rng.randrange(10, 300), tif=2,
                                        outcome=rng.randrange(2)))  # fmt: skip
        self.submit(out)

    def unwind(self) -> None:
        """The operator hands a quarter of what the backstop and the insurance fund hold back to the market: an
        IOC at 1% through mark, into the makers' quotes."""
        margin = self.engine.margin
        group = margin.groups[self.engine.ledger.asset_ids["USDC"]]
        out: list[C.Command] = []
        for name in PERPS:
            market = self.engine.market_state(name).market
            for holder, account in (("backstop", group.backstop), ("insurance", group.insurance)):
                size = market.size_of(account)
                if size:
                    mark = self.mark(name)
                    price = mark * 99 // 100 if size > 0 else -(-mark * 101 // 100)
                    out.append(C.MarketAction(actor=self.actor(self.admin), timestamp=self.now, market=name,
                                              action="unwind", args={"holder": holder, "lots": max(1, abs(size) // 4),
                                                                     "price": price}))  # fmt: skip
        self.submit(out)

    def resolve(self) -> None:
        """The committee closes the outcome market and votes on BTC's last price; resolution pays every holder."""
        admin = self.actor(self.admin)
        outcome = "yes" if self.prices["BTC-USD"] > 6_000_000 else "no"
        self.now += 1
        self.submit([
            C.CancelAll(actor=self.actor(m), timestamp=self.now) for m in self.makers
        ] + [
            C.MarketAction(actor=admin, timestamp=self.now, market="BTC-ABOVE-60K", action="close", args={}),
            C.MarketAction(actor=admin, timestamp=self.now, market="BTC-ABOVE-60K", action="vote",
                           args={"outcome": outcome}),
        ])  # fmt: skip
        self.stats["prediction resolved " + outcome] = 1

    def run(self) -> None:
        """Fund, then step through the hours, then resolve."""
        self.fund()
        steps = self.hours * 3_600_000 // STEP_MS
        for step in range(1, steps + 1):
            self.now = START_MS + step * STEP_MS
            self.publish(step)
            if step % 4 == 1:
                self.quote()
            self.trade()
            if step > self.crash_hour * 3_600_000 // STEP_MS and step % (3_600_000 // STEP_MS) == 2:
                self.unwind()  # hourly after the crash, just after the makers quote
        self.resolve()


def report(run: Run, seconds: float) -> list[str]:
    """Print the summary; return what failed."""
    engine, stats = run.engine, run.stats
    ledger = engine.ledger
    usdc = ledger.asset_ids["USDC"]

    def usd(units: int) -> str:
        return f"{Decimal(units) / 1_000_000:,.2f}"

    print(f"unified venue, {run.hours} h in {STEP_MS // 1000} s steps, crash at hour {run.crash_hour}")
    print(f"commands: {run.commands:,} ({stats['rejected']:,} refused) in {seconds:.2f} s")
    print("trades: " + ", ".join(f"{m} {stats['trades ' + m]:,}" for m in ("BTC-USDC", *PERPS, "BTC-ABOVE-60K")))
    print(f"funding: {stats['exos.perps.funding']:,} rounds, {stats['exos.perps.funding_payment']:,} "
          f"account payments, {usd(stats['funding paid'])} USDC paid by the paying side")  # fmt: skip
    print(f"liquidations: {stats['exos.liquidation.started']:,} accounts; book closes "
          f"{stats['exos.liquidation.book']:,} ({stats['liquidation fills']:,} fills), collateral sales "
          f"{stats['exos.liquidation.collateral']:,}")  # fmt: skip
    print(f"backstop: {stats['exos.liquidation.backstop']:,} takeovers, {stats['exos.liquidation.backstop lots']:,} "
          f"lots; insurance fund: {stats['exos.liquidation.insurance']:,} takeovers, "
          f"{stats['exos.liquidation.insurance lots']:,} lots, {stats['exos.liquidation.insurance_cover']:,} "
          f"deficits covered")  # fmt: skip
    print(f"ADL: {stats['exos.liquidation.adl']:,} counterparties, {stats['exos.liquidation.adl lots']:,} lots; "
          f"bad debt events: {stats['exos.liquidation.bad_debt']:,}")  # fmt: skip
    print(f"unwound by the operator: {stats['exos.perps.unwind']:,} actions, {stats['unwound lots']:,} lots filled")
    margin = engine.margin
    group = margin.groups[usdc]
    for label, account in (("backstop", group.backstop), ("insurance fund", group.insurance)):
        equity = margin.equity(account, usdc)
        held = [f"{ms.name} {ms.market.size_of(account):+,} lots" for ms in group.markets if ms.market.size_of(account)]
        print(f"{label}: equity {usd(equity)} USDC, cash {usd(ledger.available[usdc][account])}"
              + (f", holds {', '.join(held)}" if held else ""))  # fmt: skip
    for name in PERPS:
        market = engine.market_state(name).market
        print(f"{name}: mark {market.mark:,} ticks, open interest {market.long_oi:,} lots, last funding rate "
              f"{Decimal(market.funding_rate_ppb) / 10**7}%")  # fmt: skip
    print(
        f"fees: {usd(ledger.available[usdc][ledger.fee_account])} USDC; "
        f"prediction market {'resolved ' + ('yes' if stats['prediction resolved yes'] else 'no')}"
    )
    problems = []
    try:
        engine.check_invariants()
    except Exception as exc:  # every invariant: ledger, locks, OI, pools, no negative equity
        problems.append(f"{type(exc).__name__}: {exc}")
    for needed in ("exos.perps.funding", "exos.liquidation.started", "exos.liquidation.backstop",
                   "exos.liquidation.insurance", "exos.liquidation.adl", "unwound lots"):  # fmt: skip
        if not stats[needed]:
            problems.append(f"nothing reported {needed}")
    print(f"state hash: {engine.state_hash()}")
    return problems


class UnifiedSimulation:
    """Registers as simulation "unified" (the manifest's `[simulation] driver`)."""

    api_version = API_VERSION
    name = "unified"

    def run(self, engine: Any, *, seed: int, orders: int | None, params: Mapping[str, Any]) -> int:
        """Run the unified venue on `engine`, print the summary; 1 if an invariant failed or a stage never ran."""
        run = Run(engine, seed, params)
        start = time.perf_counter()
        run.run()
        problems = report(run, time.perf_counter() - start)
        for problem in problems:
            print(f"FAILED: {problem}")
        if not problems:
            print("invariants hold: money conserved, OI long = short, locks recomputed, no equity below zero")
        return 1 if problems else 0
