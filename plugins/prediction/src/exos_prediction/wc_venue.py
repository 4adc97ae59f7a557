"""The World Cup 2026 venue: `exos simulate examples/worldcup-2026.toml --seed S` plays the tournament on exos.

Everything the venue does goes through engine commands, in timestamp order: the admin lists the 72
group-match events (home / draw / away, neg-risk), the 12 group-winner events and the tournament
winner at the start, and each knockout "to advance" event as soon as its two teams are known; traders
deposit, buy and sell YES and NO, split, merge and convert; kickoff timers close the books; the
committee (two votes of three) resolves each event from the seeded tournament
(`worldcup.simulate_tournament(seed)`), and resolution pays every holder. The run exits non-zero
unless every market ends settled with zero collateral and the ledger balances.

Traders here are a workload, not part of the engine: their beliefs come from the match model's
integer probabilities (exact binomial odds of the 12-chance model) plus seeded noise, and they read
balances straight from the engine to keep most commands valid.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from math import comb
from typing import Any

import attrs

from exos import commands as C
from exos.events import EventKind
from exos.protocols import API_VERSION
from exos_prediction import worldcup as wc

NAME = "worldcup-2026"
START_MS = wc.utc_ms(6, 1)
RESOLVE_AFTER_MS = 2 * wc.HOUR_MS + 15 * 60_000  # 90 minutes, stoppage and half time, then the committee
KNOCKOUT_RESOLVE_AFTER_MS = 3 * wc.HOUR_MS  # extra time and penalties
KNOCKOUT_CLOSE_AFTER_MS = 2 * wc.HOUR_MS + 45 * 60_000  # knockout books trade in play until the final whistle
TAKER_DELAY_MS = 3_000  # in play, a marketable order waits this long (Polymarket's sports delay)
_FILL, _REJECTED, _DELAYED = int(EventKind.FILL), int(EventKind.REJECTED), int(EventKind.ORDER_DELAYED)


@attrs.define
class Listing:
    """One event as the venue lists it: engine market names per outcome key, kickoff (close) time."""

    event_id: str
    kind: str
    keys: tuple[str, ...]
    markets: dict[str, str]
    close_at: int
    fair: dict[str, Fraction]
    listed_at: int = 0


@attrs.define
class Stats:
    """What the run reports."""

    commands: int = 0
    rejected: int = 0
    delayed: int = 0
    fills: list[int] = attrs.Factory(lambda: [0, 0, 0])
    lots: int = 0
    notional: int = 0
    actions: dict[str, int] = attrs.Factory(dict)
    last_yes: dict[str, int] = attrs.Factory(dict)


def _address(label: str) -> bytes:
    """A deterministic 20-byte address for a simulated actor."""
    return hashlib.sha256(f"exos-wc26|{label}".encode()).digest()[:20]


def _outcome_probabilities(home: str, away: str) -> tuple[Fraction, Fraction, Fraction]:
    """Exact (home win, draw, away win) after 90 minutes under the model's 12 independent chances a side."""
    n = wc.CHANCES_90
    ph, pa = Fraction(wc.chance_permille(home, away), 1000), Fraction(wc.chance_permille(away, home), 1000)
    home_goals = [comb(n, k) * ph**k * (1 - ph) ** (n - k) for k in range(n + 1)]
    away_goals = [comb(n, k) * pa**k * (1 - pa) ** (n - k) for k in range(n + 1)]
    win = sum((home_goals[i] * away_goals[j] for i in range(n + 1) for j in range(i)), Fraction(0))
    draw = sum((home_goals[i] * away_goals[i] for i in range(n + 1)), Fraction(0))
    return win, draw, 1 - win - draw


def _strength_shares(teams: Sequence[str], power: int) -> dict[str, Fraction]:
    """Rough winner odds from ratings: (strength - weakest + 50) ** power, normalised."""
    strengths = {t: wc.RATINGS[t] + (wc.HOST_BONUS if t in wc.HOSTS else 0) for t in teams}
    low = min(strengths.values())
    weights = {t: (s - low + 50) ** power for t, s in strengths.items()}
    total = sum(weights.values())
    return {t: Fraction(w, total) for t, w in weights.items()}


class Venue:
    """One seeded run of the World Cup venue over an engine."""

    def __init__(self, engine: Any, seed: int, orders: int, params: Mapping[str, Any]) -> None:
        """Read the simulation params and prepare the tournament (its results are fixed by `seed`)."""
        self.engine = engine
        self.seed = seed
        self.rng = random.Random(seed)
        self.orders = orders
        self.admin = engine.manifest.venue.admins[0]
        self.collateral = str(params.get("collateral", "USDC"))
        self.tick = Decimal(str(params.get("tick_size", "0.0025")))
        self.lot = Decimal(str(params.get("lot_size", "1")))
        self.n = int(1 / self.tick)
        self.committee = [str(a) for a in params["committee"]]
        self.quorum = int(params.get("quorum", 2))
        self.fees = {"maker_bps": str(params.get("maker_bps", "0")), "taker_bps": str(params.get("taker_bps", "100"))}
        self.traders = [_address(f"trader-{i}") for i in range(int(params.get("traders", 48)))]
        self.deposit = int(params.get("deposit", 50_000)) * 10 ** self._decimals()
        self.tournament = wc.simulate_tournament(seed)
        self.now = START_MS
        self.shift = 0  # a live venue moves the 2026 schedule to start when it opens
        self.stats = Stats()
        self.listings: dict[str, Listing] = {}
        self.heap: list[tuple[int, int, str, str]] = []
        self.pushed = 0
        self.results: dict[int, wc.MatchResult] = {}
        self.listed_pairings: set[int] = set()
        self.beliefs = {t: self.rng.randrange(-8, 9) for t in range(len(self.traders))}
        self.weight_total = 72 + 12 + 4 + 32  # events, the tournament winner counting four
        self.lot_units = 0

    def _decimals(self) -> int:
        """The collateral's decimals."""
        return int(next(a.decimals for a in self.engine.ledger.assets if a.symbol == self.collateral))

    # ------------------------------------------------------------ commands

    def submit(self, command: C.Command) -> list[tuple[Any, ...]]:
        """Apply one command at the venue clock; tally its outcome."""
        events: list[tuple[Any, ...]] = self.engine.submit_records([command.pack()])
        stats = self.stats
        stats.commands += 1
        for e in events:
            kind = e[3]
            if kind == _DELAYED:
                stats.delayed += 1
            if kind == _FILL and not e[10]:  # the taker's side: count each trade once
                stats.fills[e[18]] += 1
                stats.lots += e[12]
                stats.notional += e[11] * e[12]
            if kind == _FILL:
                stats.last_yes[e[4]] = e[11] if e[17] == 0 else self.n - e[11]
            elif kind == _REJECTED:
                stats.rejected += 1
        return events

    def actor(self, address: bytes) -> C.Actor:
        """An actor signing for itself."""
        return C.Actor(address)

    def admin_actor(self, address: bytes) -> C.Actor:
        """An account acted on by the venue admin (deposits)."""
        return C.Actor(address, signer=self.admin)

    def push(self, at: int, kind: str, key: str) -> None:
        """Schedule a venue step (ties keep their push order)."""
        self.pushed += 1
        heapq.heappush(self.heap, (at, self.pushed, kind, key))

    # ------------------------------------------------------------ listing

    def list_event(
        self, event: wc.Event, short: str, close_at: int, fair: dict[str, Fraction], in_play: bool = False
    ) -> None:
        """List one neg-risk event, one binary market per outcome, and schedule its trading (some in play)."""
        close_at += self.shift
        keys = tuple(o.key for o in event.outcomes)
        markets = {key: f"{event.event_id}-{key.upper()}" for key in keys}
        listing = Listing(event.event_id, event.kind, keys, markets, close_at, fair, self.now)
        for key in keys:
            spec = {
                "name": markets[key], "type": "prediction", "base": self.collateral, "quote": self.collateral,
                "tick_size": str(self.tick), "lot_size": str(self.lot), "fee_model": "probability",
                "max_orders": 4096, "max_levels": 1024, "fees": self.fees,
                "params": {
                    "symbol": f"{short}-{key.upper()[:4]}", "event": event.event_id, "event_size": len(keys),
                    "close_at": close_at, "committee": self.committee, "quorum": self.quorum,
                    "in_play": in_play, "taker_delay_ms": TAKER_DELAY_MS if in_play else 0,
                },
            }  # fmt: skip
            self._expect_ok(self.submit(C.ListMarket(actor=self.actor(self.admin), timestamp=self.now, spec=spec)))
        self.listings[event.event_id] = listing
        weight = 4 if event.kind == "tournament_winner" else 1
        count = self.orders * weight // self.weight_total
        window = close_at - 60_000 - (self.now + 1_000)
        live = count // 6 if in_play else 0
        for _ in range(count - live):
            self.push(self.now + 1_000 + self.rng.randrange(max(window, 1)), "trade", event.event_id)
        for _ in range(live):
            self.push(close_at + self.rng.randrange(KNOCKOUT_CLOSE_AFTER_MS - 60_000), "trade", event.event_id)
        if in_play:
            self.push(close_at + KNOCKOUT_CLOSE_AFTER_MS, "close", event.event_id)

    def _expect_ok(self, events: Sequence[tuple[Any, ...]]) -> None:
        """A venue (admin) command must succeed."""
        if not events[-1][4]:
            raise RuntimeError(f"venue command rejected: {events[-2][4:]}")

    def _ticks(self, p: Fraction) -> int:
        """A probability as a price in ticks, inside 1..n-1."""
        return min(self.n - 1, max(1, round(p * self.n)))

    def open_tournament(self) -> None:
        """List the group-stage and tournament-winner events, fund the traders."""
        for fixture, event in zip(wc.group_fixtures(), wc.match_events(), strict=True):
            win, draw, loss = _outcome_probabilities(fixture.home, fixture.away)
            fair = {fixture.home: win, "draw": draw, fixture.away: loss}
            self.list_event(event, f"M{fixture.number:02d}", fixture.kickoff_ms, fair)
            self.push(fixture.kickoff_ms + RESOLVE_AFTER_MS, "resolve", event.event_id)
        for event in wc.group_winner_events():
            letter = event.event_id.split("-")[1]
            fair = _strength_shares([o.key for o in event.outcomes], 2)
            self.list_event(event, f"G{letter}", event.end_ms, fair)
            self.push(event.end_ms + RESOLVE_AFTER_MS + 1, "resolve", event.event_id)
        winner = wc.tournament_winner_event()
        self.list_event(winner, "W", winner.end_ms, _strength_shares([o.key for o in winner.outcomes], 3))
        self.push(winner.end_ms + KNOCKOUT_RESOLVE_AFTER_MS + 1, "resolve", winner.event_id)
        for trader in self.traders:
            self.submit(C.Deposit(actor=self.admin_actor(trader), timestamp=self.now, asset=self.collateral,
                                  amount=self.deposit))  # fmt: skip
        first = next(iter(self.listings.values()))
        self.lot_units = self.engine.market_state(first.markets[first.keys[0]]).info.lot_units

    def list_known_pairings(self) -> None:
        """List every knockout pairing whose teams are known and that is not listed yet."""
        tables = self.tournament.group_tables()
        r32 = wc.round_of_32(tables, self.seed)
        for pairing in wc.known_pairings(r32, self.results):
            if pairing.number in self.listed_pairings:
                continue
            self.listed_pairings.add(pairing.number)
            event = wc.to_advance_events([pairing])[0]
            win, draw, loss = _outcome_probabilities(pairing.home, pairing.away)
            fair = {pairing.home: win + draw / 2, pairing.away: loss + draw / 2}
            self.list_event(event, f"K{pairing.number}", pairing.kickoff_ms, fair, in_play=True)
            self.push(pairing.kickoff_ms + KNOCKOUT_RESOLVE_AFTER_MS, "resolve", event.event_id)

    # ------------------------------------------------------------ traders

    def balance(self, account: bytes, asset: str) -> int:
        """An account's available balance of an asset (read straight from the ledger)."""
        ledger = self.engine.ledger
        index = ledger.find_account(account, 0)
        if index is None:
            return 0
        return int(ledger.available[ledger.asset_ids[asset]][index])

    def shares(self, market: str) -> tuple[str, str]:
        """The YES and NO asset symbols of a market."""
        ms = self.engine.market_state(market)
        yes, no = ms.info.outcome_assets
        return self.engine.ledger.assets[yes].symbol, self.engine.ledger.assets[no].symbol

    def trade(self, event_id: str) -> None:
        """One trader does one thing in one market of an open event."""
        listing = self.listings[event_id]
        rng = self.rng
        number = rng.randrange(len(self.traders))
        trader = self.traders[number]
        key = rng.choice(listing.keys)
        market = listing.markets[key]
        yes_symbol, no_symbol = self.shares(market)
        lots = self.lot_units
        roll = rng.randrange(100)
        if roll < 10:
            self._act(trader, market, "split", {"size": rng.randrange(5, 60)})
        elif roll < 16:
            both = min(self.balance(trader, yes_symbol), self.balance(trader, no_symbol)) // lots
            if both:
                self._act(trader, market, "merge", {"size": rng.randrange(1, both + 1)})
        elif roll < 22:
            self._convert(trader, listing)
        elif roll < 34:
            own = [o for _, o in self.engine.open_orders(trader, 0, market)]
            if own:
                order = own[rng.randrange(len(own))]
                self.submit(C.CancelOrder(actor=self.actor(trader), timestamp=self.now, market=market,
                                          order_id=order.order_id))  # fmt: skip
        else:
            self._order(number, trader, listing, key, market, (yes_symbol, no_symbol))

    def _act(self, trader: bytes, market: str, action: str, args: dict[str, Any]) -> None:
        """A MarketAction by a trader."""
        events = self.submit(C.MarketAction(actor=self.actor(trader), timestamp=self.now, market=market,
                                            action=action, args=args))  # fmt: skip
        if events[-1][4]:
            self.stats.actions[action] = self.stats.actions.get(action, 0) + 1

    def _convert(self, trader: bytes, listing: Listing) -> None:
        """Convert the NO shares a trader holds in some of an event's markets."""
        held = []
        for key in listing.keys:
            no = self.balance(trader, self.shares(listing.markets[key])[1]) // self.lot_units
            if no:
                held.append((key, no))
        if not held:
            return
        chosen = held[: self.rng.randrange(1, len(held) + 1)]
        size = min(no for _, no in chosen)
        self._act(trader, listing.markets[chosen[0][0]], "convert",
                  {"markets": [listing.markets[k] for k, _ in chosen], "size": size})  # fmt: skip

    def _order(self, number: int, trader: bytes, listing: Listing, key: str, market: str,
               symbols: tuple[str, str]) -> None:  # fmt: skip
        """A limit or IOC order on YES or NO around the trader's belief; sells only what the trader holds."""
        rng = self.rng
        outcome = rng.randrange(2)
        belief = self._ticks(listing.fair[key]) + self.beliefs[number]
        if outcome:
            belief = self.n - belief
        held = self.balance(trader, symbols[outcome]) // self.lot_units
        side = 1 if held and rng.randrange(100) < 65 else 0
        spread = rng.randrange(0, 12)
        price = belief - spread if side == 0 else belief + spread - 6
        price = min(self.n - 1, max(1, price))
        size = rng.randrange(1, 30)
        if side:
            size = min(size, held)
        tif = 2 if rng.randrange(100) < 25 else 0
        self.submit(C.PlaceOrder(actor=self.actor(trader), timestamp=self.now, market=market, side=side,
                                 price=price, size=size, tif=tif, outcome=outcome))  # fmt: skip

    # ------------------------------------------------------------ resolution

    def close(self, event_id: str) -> None:
        """The final whistle of an in-play event: the admin closes its books."""
        listing = self.listings[event_id]
        market = listing.markets[listing.keys[0]]
        events = self.submit(C.MarketAction(actor=self.actor(self.admin), timestamp=self.now, market=market,
                                            action="close", args={}))  # fmt: skip
        self._expect_ok(events)

    def resolve(self, event_id: str) -> None:
        """The committee votes the event's result (two of three), which pays every holder."""
        winner = dict(wc.resolutions(self.tournament))[event_id]
        key = winner.split(": ", 1)[1]
        listing = self.listings[event_id]
        if listing.kind == "to_advance":  # WC26-M<number>-ADV
            number = int(event_id.split("-")[1][1:])
            self.results[number] = {p.number: r for p, r in self.tournament.knockout_matches}[number]
        market = listing.markets[key]
        for member in self.committee[: self.quorum]:
            events = self.submit(C.MarketAction(actor=self.actor(bytes.fromhex(member[2:])), timestamp=self.now,
                                                market=market, action="vote", args={"outcome": market}))  # fmt: skip
            self._expect_ok(events)
        group_stage_over = all(self.listings[e.event_id].close_at <= self.now for e in wc.group_winner_events())
        if listing.kind == "to_advance" or (listing.kind == "group_winner" and group_stage_over):
            self.list_known_pairings()

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        """Play the tournament: list, trade, close at kickoff, resolve, list the next round."""
        self.open_tournament()
        steps: dict[str, Callable[[str], None]] = {"trade": self.trade, "resolve": self.resolve, "close": self.close}
        while self.heap:
            at, _, kind, key = heapq.heappop(self.heap)
            self.now = max(self.now, at)
            steps[kind](key)
        self.now += 1
        self.submit(C.Tick(actor=self.actor(self.admin), timestamp=self.now))


def verify(engine: Any) -> list[str]:
    """Every market settled, no collateral left in any vault, no shares outstanding, the ledger balanced."""
    problems = []
    engine.check_invariants()
    market_type = engine.plugins.market_types["prediction"]
    for event in market_type.events.values():
        if event.phase not in ("settled", "void"):
            problems.append(f"{event.name} is {event.phase}")
        vault = engine.ledger.available[event.collateral][event.vault]
        if vault:
            problems.append(f"{event.name}: {vault} collateral left in the vault")
    for ms in engine.markets:
        if ms.market_type == "prediction":
            if ms.status != C.Status.SETTLED:
                problems.append(f"{ms.name}: status {ms.status}")
            for asset in ms.info.outcome_assets:
                if engine.ledger.deposits[asset] != engine.ledger.withdrawals[asset]:
                    problems.append(f"{engine.ledger.assets[asset].symbol}: shares outstanding")
    return problems


def report(venue: Venue, seconds: float) -> None:
    """Standings, final prices, volumes, fees and the state hash."""
    engine, stats, t = venue.engine, venue.stats, venue.tournament
    scale = Decimal(10) ** venue._decimals()
    print(f"World Cup 2026 venue, seed {venue.seed}: tournament digest {t.digest()[:16]}")
    print("group standings (P W D L GF GA GD Pts):")
    for letter, table in t.group_tables().items():
        rows = "  ".join(f"{r.team} {r.played}{r.won}{r.drawn}{r.lost} {r.goals_for}-{r.goals_against} {r.points}"
                         for r in table)  # fmt: skip
        print(f"  {letter}: {rows}")
    print("knockout:")
    for pairing, result in t.knockout_matches[-4:]:
        print(f"  M{pairing.number} {pairing.stage}: {pairing.home} v {pairing.away} {wc._result_text(result)}")
    print(f"champion {t.champion}, runner-up {t.runner_up}, third {t.third_place}")
    winner = venue.listings["WC26-WINNER"]
    priced = sorted(((stats.last_yes.get(m, 0), k) for k, m in winner.markets.items()), reverse=True)[:8]
    shown = ", ".join(f"{k} {Decimal(p) / venue.n:.4f}" for p, k in priced)
    print(f"final YES prices, tournament winner (last trade before the final): {shown}")
    for event_id in ("WC26-A-MEX-RSA", "WC26-M104-ADV"):
        listing = venue.listings.get(event_id)
        if listing is not None:
            shown = ", ".join(
                f"{k} {Decimal(stats.last_yes.get(m, 0)) / venue.n:.4f}" for k, m in listing.markets.items()
            )
            print(f"final YES prices, {event_id}: {shown}")
    normal, mint, merge = stats.fills
    volume = Decimal(stats.notional * venue.lot_units // venue.n) / scale
    listed = sum(1 for ms in engine.markets if ms.market_type == "prediction")
    print(f"markets: {listed} in {len(venue.listings)} events")
    print(f"commands: {stats.commands:,} ({stats.rejected:,} rejected) in {seconds:.2f} s")
    print(f"trades: {sum(stats.fills):,} (normal {normal:,}, mint {mint:,}, merge {merge:,}); "
          f"{stats.lots:,} lots, {volume:,.2f} {venue.collateral} notional")  # fmt: skip
    print("actions: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.actions.items())))
    print(f"in play: {stats.delayed:,} marketable orders waited out the {TAKER_DELAY_MS} ms taker delay")
    fee_account = engine.ledger.fee_account
    fees = engine.ledger.available[engine.ledger.asset_ids[venue.collateral]][fee_account]
    print(f"fees: {Decimal(fees) / scale:,.6f} {venue.collateral} (rounding dust included)")
    print(f"state hash: {engine.state_hash()}")


class WorldCupSimulation:
    """Registers as simulation "worldcup-2026"."""

    api_version = API_VERSION
    name = NAME

    def open(self, engine: Any, *, now: int, params: Mapping[str, Any]) -> None:
        """List what a live venue starts with (every group match, group winner and the tournament winner) on the
        2026 schedule moved to open at `now`; the knockout events follow the committee's results."""
        venue = Venue(engine, 7, 0, params)
        venue.shift = now - START_MS
        venue.now = now
        venue.open_tournament()

    def run(self, engine: Any, *, seed: int, orders: int | None, params: Mapping[str, Any]) -> int:
        """Play the tournament on `engine`, report, and return 1 unless everything settled to zero."""
        venue = Venue(engine, seed, 60_000 if orders is None else orders, params)
        start = time.perf_counter()
        venue.run()
        seconds = time.perf_counter() - start
        report(venue, seconds)
        problems = verify(engine)
        for problem in problems:
            print(f"NOT SETTLED: {problem}")
        print("every market settled, zero collateral left, ledger balanced" if not problems else "FAILED")
        return 1 if problems else 0
