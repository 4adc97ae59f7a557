"""A hypothesis state machine over a prediction venue: trading, split/merge/convert, lifecycle and resolution.

The venue lists a standalone market S (optimistic resolution: bond, liveness, dispute to the committee) and
a neg-risk event E of three markets (committee resolution, kickoff timer). After every step the engine's
own invariants run, and then checks computed here: every holder's balance moved by exactly what the
command implies (split, merge, convert, bonds, payouts rounded down per holder, the fills the command
reported), collateral is conserved, locks equal what the open orders need, each vault covers every
outcome, and a final event leaves no share, no collateral in its vault or escrow and no order.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from exos import commands as C
from exos import events as E
from exos.commands import Actor
from exos.engine import Engine
from exos.manifest import Manifest

USDC = "USDC"
YES, NO = 0, 1
BUY, SELL = 0, 1
GTC, IOC = 0, 2
MINT, MERGE = 1, 2
N, PER, LOT = 100, 10_000, 1_000_000  # tick 0.01 and lot 1 on USDC with 6 decimals
BOND, LIVENESS, DISPUTE_FEE_BPS = 2 * LOT, 300, 1_000
KICKOFF = 1_700  # 700 ms after the machine starts (the venue driver's START, 1_000)
STANDALONE, EVENT = "S", "E"
MEMBERS = ("E-A", "E-B", "E-C")
MARKETS = (STANDALONE, *MEMBERS)
MIDS = {STANDALONE: 50, "E-A": 50, "E-B": 30, "E-C": 20}
# (maker, taker) in centi-bps and whether the fee weight is p(1 - p) (probability) or p (flat)
RATES = {STANDALONE: (-500, 5_000, True), **dict.fromkeys(MEMBERS, (0, 2_000, False))}
SHARES = tuple(f"{m}-{t}" for m in MARKETS for t in "YN")
ASSETS = (USDC, *SHARES)
TRADERS = 4
KINDS = ("normal YES", "normal NO", "mint", "merge")
LIFECYCLE = ("kickoff closed E", "liveness over", "dispute decided", "void returns the bonds", "settled E: E-",
             "settled E: void", "settled S: void")  # fmt: skip
traders, markets = st.integers(0, TRADERS - 1), st.sampled_from(MARKETS)
outcomes, sides = st.sampled_from((YES, NO)), st.sampled_from((BUY, SELL))
# (trader, market, outcome, side, offset from the mid or ticks through the best price, size, kind)
limit_orders = st.tuples(traders, markets, outcomes, sides, st.integers(-4, 4), st.integers(1, 5),
                         st.sampled_from(("gtc", "gtc", "ioc", "post")))  # fmt: skip
take_orders = st.tuples(traders, markets, outcomes, sides, st.integers(0, 2), st.integers(1, 6),
                        st.sampled_from(("gtc", "ioc")))  # fmt: skip
SEEN: Counter[str] = Counter()  # what the runs exercised (fill kinds among it), over every run of the machine


def note(label: str) -> None:
    """Report a behaviour to hypothesis and count it."""
    event(label)
    SEEN[label] += 1


def venue_markets(pm: ModuleType) -> list[dict[str, Any]]:
    """S (optimistic, probability fees) and the neg-risk event E (committee, flat fees, kickoff at KICKOFF)."""
    standalone = pm.market(STANDALONE, maker_bps="-5", taker_bps="50", resolution="optimistic", bond=BOND,
                           liveness_ms=LIVENESS, dispute_fee_bps=DISPUTE_FEE_BPS)  # fmt: skip
    members = [pm.market(name, fee_model="flat", taker_bps="20", event=EVENT, event_size=3, close_at=KICKOFF)
               for name in MEMBERS]  # fmt: skip
    return [standalone, *members]


def event_of(market: str) -> str:
    """The event a market belongs to."""
    return STANDALONE if market == STANDALONE else EVENT


def fee_weight(market: str, own_price: int) -> int:
    """One lot's fee weight at own price e: e(n - e) or e."""
    return own_price * (N - own_price) if RATES[market][2] else own_price


@functools.cache
def lock_fee(pm: ModuleType, market: str, limit: int) -> int:
    """The most fee one lot of a buy at own price `limit` can cost (any price up to it, either role)."""
    maker, taker, probability = RATES[market]
    rate = max(maker, taker, 0)
    return max(
        int(pm.fee_total(fee_weight(market, e) * PER, rate, N if probability else 1)) for e in range(1, limit + 1)
    )


def payout(event_name: str, outcome: str, asset: str) -> tuple[int, int]:
    """(numerator, denominator) one unit of a share asset pays for a final outcome."""
    market, token = asset[:-2], asset[-1]
    if event_name == STANDALONE:
        if outcome in ("half", "void"):
            return 1, 2
        return (1, 1) if (outcome == "yes") == (token == "Y") else (0, 1)
    if outcome == "void":
        return (1, 3) if token == "Y" else (2, 3)
    return (1, 1) if (market == outcome) == (token == "Y") else (0, 1)


@attrs.define
class EventModel:
    """What the machine knows of an event's lifecycle and resolution."""

    name: str
    markets: tuple[str, ...]
    phase: str = "open"  # open, paused, closed, proposed, disputed, final
    votes: dict[int, str] = attrs.Factory(dict)
    proposal: str = ""
    proposer: int = -1
    disputer: int = -1
    deadline: int = 0


class PredictionMachine(RuleBasedStateMachine):
    """Random commands against one venue; every step checked against the flows the model computes."""

    def __init__(self, pm: ModuleType, manifest: Manifest) -> None:
        """A fresh engine over the venue's manifest."""
        super().__init__()
        self.pm = pm
        self.engine = Engine.from_parsed(manifest)
        self.now = pm.START
        self.deposited = 0
        self.steps = 0
        self.events = {STANDALONE: EventModel(STANDALONE, (STANDALONE,)), EVENT: EventModel(EVENT, MEMBERS)}
        self.traders = [pm.trader(i + 1) for i in range(TRADERS)]
        self.holders: dict[str, bytes] = {f"T{i}": t.address for i, t in enumerate(self.traders)}
        self.holders |= {"fee": pm.FEE_ADDRESS, "vault:S": pm.vault_address(STANDALONE),
                         "vault:E": pm.vault_address(EVENT), "escrow:S": pm.escrow_address(STANDALONE)}  # fmt: skip
        self.by_address = {address: name for name, address in self.holders.items()}

    # ------------------------------------------------------------ reading the engine

    def totals(self) -> dict[tuple[str, str], int]:
        """Available + locked of every holder in every asset."""
        out = {}
        for name, address in self.holders.items():
            balances = self.engine.balances(address, 0)
            for asset in ASSETS:
                out[name, asset] = sum(balances[asset])
        return out

    def available(self, trader: int, asset: str) -> int:
        """A trader's available balance."""
        return self.engine.balances(self.traders[trader].address, 0)[asset][0]

    def best(self, market: str, book_side: int) -> int | None:
        """The best price on one side of a book (YES terms), or None."""
        bids, asks = self.engine.depth(market, 1)
        levels = bids if book_side == BUY else asks
        return levels[0].price if levels else None

    # ------------------------------------------------------------ submitting and checking one step

    def submit(
        self, command: C.Command, accept: bool | None, flows: Iterable[tuple[str, str, int]] = (),
        finals: dict[str, str] | None = None, apply: Callable[[], None] | None = None,
    ) -> bool:  # fmt: skip
        """Submit; if applied, update the model (`apply`) and check every holder's deltas and the final outcomes."""
        before, state = self.totals(), self.engine.state_hash()
        events = self.engine.submit(command)
        done = events[-1]
        assert isinstance(done, E.CommandDone)
        self.steps += 1
        rejection = [e.code for e in events if isinstance(e, E.Rejected)]
        if accept is not None:
            assert done.accepted == accept, (command, events)
        if not done.accepted:
            note(f"rejected: {rejection[0]}")
            assert len(events) == 2 and self.engine.state_hash() == state, events
            self.check()
            return False
        note(f"applied: {type(command).__name__}{':' + command.action if isinstance(command, C.MarketAction) else ''}")
        if apply is not None:
            apply()
        expected: Counter[tuple[str, str]] = Counter()
        for holder, asset, amount in flows:
            expected[holder, asset] += amount
        self.fills(events, expected)
        settled = {}
        for e in events:
            if isinstance(e, E.MarketEvent) and e.name == "exos.prediction.settled":
                settled[e.market] = e.detail
        want = finals or {}
        assert {event_of(m) for m in settled} == set(want), (settled, want, events)
        for name, outcome in want.items():
            self.settle(name, outcome, before, expected)
        after = self.totals()
        for key in after:
            assert after[key] - before[key] == expected[key], (command, key, after[key] - before[key], expected[key])
        self.check()
        return True

    def fills(self, events: list[E.Event], expected: Counter[tuple[str, str]]) -> None:
        """Flows of the Fill events (payments at each side's own price, shares, fees, vault for mint and merge)."""
        fills = [e for e in events if isinstance(e, E.Fill)]
        assert len(fills) % 2 == 0
        for taker, maker in zip(fills[::2], fills[1::2], strict=True):
            assert not taker.maker and maker.maker and taker.size == maker.size > 0
            assert taker.fill_kind == maker.fill_kind
            if taker.fill_kind:  # a mint or a merge pairs complementary prices of both tokens
                assert taker.price + maker.price == N and taker.outcome != maker.outcome
                assert taker.side == maker.side == (BUY if taker.fill_kind == MINT else SELL)
            else:
                assert taker.price == maker.price and taker.outcome == maker.outcome and taker.side != maker.side
            label = ("normal " + ("YES" if taker.outcome == YES else "NO"), "mint", "merge")[taker.fill_kind]
            note(label)
        for f in fills:
            holder = self.by_address[f.address]
            share = f"{f.market}-{'Y' if f.outcome == YES else 'N'}"
            notional = f.price * f.size * PER
            sign = 1 if f.side == BUY else -1
            expected[holder, USDC] += -sign * notional - f.fee
            expected[holder, share] += sign * f.size * LOT
            expected["fee", USDC] += f.fee
            if f.fill_kind:
                expected[f"vault:{event_of(f.market)}", USDC] += sign * notional

    def settle(self, name: str, outcome: str, before: dict[tuple[str, str], int], expected: Counter[Any]) -> None:
        """An event's final outcome: every share burns, each holder is paid (rounded down), dust to the fee account."""
        model = self.events[name]
        vault = before[f"vault:{name}", USDC] + expected[f"vault:{name}", USDC]
        paid = 0
        for holder in self.holders:
            for market in model.markets:
                for token in "YN":
                    asset = f"{market}-{token}"
                    units = before[holder, asset] + expected[holder, asset]
                    num, den = payout(name, outcome, asset)
                    expected[holder, asset] -= units
                    expected[holder, USDC] += units * num // den
                    paid += units * num // den
        expected[f"vault:{name}", USDC] -= vault
        expected["fee", USDC] += vault - paid
        model.phase = "final"
        note(f"settled {name}: {outcome}")

    def check(self) -> None:
        """Engine invariants, conservation, locks, vault cover; a final event holds nothing."""
        engine, pm = self.engine, self.pm
        engine.check_invariants()
        ledger = engine.ledger
        supply = {a.symbol: sum(ledger.available[i]) + sum(ledger.locked[i]) for i, a in enumerate(ledger.assets)}
        assert supply[USDC] == self.deposited
        for trader, who in enumerate(self.traders):
            locks: Counter[str] = Counter()
            for market, order in engine.open_orders(who.address):
                outcome = order.slots[3]
                side, price = (order.side, order.price) if outcome == YES else (1 - order.side, N - order.price)
                if side == BUY:
                    locks[USDC] += order.remaining * (price * PER + lock_fee(pm, market, price))
                else:
                    locks[f"{market}-{'Y' if outcome == YES else 'N'}"] += order.remaining * LOT
            for asset in ASSETS:
                assert engine.balances(who.address)[asset][1] == locks[asset], (trader, asset)
        for name, model in self.events.items():
            vault = sum(engine.balances(pm.vault_address(name))[USDC])
            yes = [supply[f"{m}-Y"] for m in model.markets]
            no = [supply[f"{m}-N"] for m in model.markets]
            if model.phase == "final":
                assert vault == 0 and not any(yes) and not any(no), (name, vault, yes, no)
                assert all(engine.market_state(m).book.open_orders == 0 for m in model.markets)
                assert all(engine.market_state(m).status == C.Status.SETTLED for m in model.markets)
            elif name == STANDALONE:
                assert vault == yes[0] == no[0], (vault, yes, no)
            else:  # whichever member wins, the vault pays its YES and every other member's NO exactly
                for w in range(len(model.markets)):
                    assert vault == yes[w] + sum(no) - no[w], (w, vault, yes, no)
            if name == STANDALONE:
                escrow = sum(engine.balances(pm.escrow_address(name))[USDC])
                bonds = {"proposed": BOND, "disputed": 2 * BOND}.get(model.phase, 0)
                assert escrow == bonds, (model.phase, escrow)

    def at(self, cls: type[C.Command], who: Actor, **fields: Any) -> C.Command:
        """A command at the machine's clock."""
        return cls(actor=who, timestamp=self.now, **fields)

    def act(self, who: Actor, market: str, action: str, **args: Any) -> C.MarketAction:
        """A MarketAction at the machine's clock."""
        return C.MarketAction(actor=who, timestamp=self.now, market=market, action=action, args=args)

    # ------------------------------------------------------------ rules

    @initialize()
    def setup(self) -> None:
        """Fund every trader, split in every market, and rest both tokens on both sides of every book."""
        for trader in range(TRADERS):
            self.deposit(trader, 60)
            for market in MARKETS:
                self.split(trader, market, 8)
        for market in MARKETS:
            low, high = MIDS[market] - 1, MIDS[market] + 1
            for trader, side, price, outcome in ((0, BUY, low, YES), (1, SELL, high, YES), (2, BUY, N - high, NO),
                                                 (3, SELL, N - low, NO)):  # fmt: skip
                self.place(trader, market, outcome, side, price, 4, "gtc")
        self.steps = 0  # the preconditions count the random steps only

    @rule(trader=traders, units=st.integers(1, 30))
    def deposit(self, trader: int, units: int) -> None:
        """An admin-signed deposit of whole USDC."""
        who = self.traders[trader]
        amount = units * LOT
        self.deposited += amount
        self.submit(self.at(C.Deposit, Actor(who.address, 0, self.pm.ADMIN), asset=USDC, amount=amount), True,
                    [(f"T{trader}", USDC, amount)])  # fmt: skip

    @rule(trader=traders, market=markets, lots=st.integers(1, 8))
    def split(self, trader: int, market: str, lots: int) -> None:
        """Collateral into a full set (refused once final or without the collateral)."""
        amount = lots * LOT
        ok = self.events[event_of(market)].phase != "final" and self.available(trader, USDC) >= amount
        holder = f"T{trader}"
        self.submit(self.act(self.traders[trader], market, "split", size=lots), ok,
                    [(holder, USDC, -amount), (holder, f"{market}-Y", amount), (holder, f"{market}-N", amount),
                     (f"vault:{event_of(market)}", USDC, amount)])  # fmt: skip

    @rule(trader=traders, market=markets, lots=st.integers(1, 8))
    def merge(self, trader: int, market: str, lots: int) -> None:
        """A full set back into collateral."""
        amount = lots * LOT
        ok = self.events[event_of(market)].phase != "final" and all(
            self.available(trader, f"{market}-{t}") >= amount for t in "YN"
        )
        holder = f"T{trader}"
        self.submit(self.act(self.traders[trader], market, "merge", size=lots), ok,
                    [(holder, USDC, amount), (holder, f"{market}-Y", -amount), (holder, f"{market}-N", -amount),
                     (f"vault:{event_of(market)}", USDC, -amount)])  # fmt: skip

    @rule(trader=traders, chosen=st.sets(st.sampled_from(MEMBERS), min_size=1),
          lots=st.integers(1, 4), via=st.sampled_from(MEMBERS))  # fmt: skip
    def convert(self, trader: int, chosen: set[str], lots: int, via: str) -> None:
        """NO in the chosen members into YES in the others plus (m - 1) units per share."""
        amount = lots * LOT
        names = sorted(chosen)
        ok = self.events[EVENT].phase != "final" and all(self.available(trader, f"{m}-N") >= amount for m in names)
        holder = f"T{trader}"
        flows = [(holder, f"{m}-N", -amount) for m in names]
        flows += [(holder, f"{m}-Y", amount) for m in MEMBERS if m not in chosen]
        flows += [(holder, USDC, (len(names) - 1) * amount), ("vault:E", USDC, -(len(names) - 1) * amount)]
        self.submit(self.act(self.traders[trader], via, "convert", markets=names, size=lots), ok, flows)

    def place(self, trader: int, market: str, outcome: int, side: int, price: int, size: int, kind: str) -> None:
        """An order in its own token's terms: refused unless the market is open; fills checked by their flows."""
        open_ = self.events[event_of(market)].phase == "open"
        command = self.at(C.PlaceOrder, self.traders[trader], market=market, side=side, price=price, size=size,
                          outcome=outcome, tif=IOC if kind == "ioc" else GTC, post_only=kind == "post")  # fmt: skip
        self.submit(command, None if open_ else False)

    @rule(orders=st.lists(limit_orders, min_size=1, max_size=3))
    def limit(self, orders: list[tuple[int, str, int, int, int, int, str]]) -> None:
        """Orders near the market's mid (limit, IOC or post-only)."""
        for trader, market, outcome, side, offset, size, kind in orders:
            mid = MIDS[market] if outcome == YES else N - MIDS[market]
            self.place(trader, market, outcome, side, mid + offset, size, kind)

    @rule(orders=st.lists(take_orders, min_size=1, max_size=4))
    def take(self, orders: list[tuple[int, str, int, int, int, int, str]]) -> None:
        """Orders at or through the best opposite price, whichever token rests there."""
        for trader, market, outcome, side, through, size, kind in orders:
            book_side = side if outcome == YES else 1 - side
            best = self.best(market, 1 - book_side)
            if best is None:
                best = MIDS[market]
            book_price = min(max(best + (through if book_side == BUY else -through), 1), N - 1)
            self.place(trader, market, outcome, side, book_price if outcome == YES else N - book_price, size, kind)

    @rule(trader=traders, market=markets, pick=st.integers(0, 50))
    def cancel(self, trader: int, market: str, pick: int) -> None:
        """Cancel one of the market's open orders (someone else's is refused)."""
        orders = self.engine.market_state(market).book.orders()
        if not orders:
            return
        order = orders[pick % len(orders)]
        account = self.engine.ledger.find_account(self.traders[trader].address, 0)
        command = self.at(C.CancelOrder, self.traders[trader], market=market, order_id=order.order_id)
        self.submit(command, order.slots[0] == account)

    @rule(dt=st.sampled_from((1, 50, 150, 400, LIVENESS)))
    def tick(self, dt: int) -> None:
        """Time passes: the kickoff closes E; a proposal's liveness ends and settles S."""
        self.now += dt
        e, s = self.events[EVENT], self.events[STANDALONE]
        if self.now >= KICKOFF and e.phase in ("open", "paused"):
            e.phase = "closed"
            note("kickoff closed E")
        finals = {}
        if s.phase == "proposed" and self.now >= s.deadline:
            finals[STANDALONE] = s.proposal
        flows = [(f"T{s.proposer}", USDC, BOND), ("escrow:S", USDC, -BOND)] if finals else []
        if finals:
            note("liveness over: the proposal stands")
        self.submit(self.at(C.Tick, Actor(self.pm.ADMIN)), True, flows, finals)

    @precondition(lambda self: self.steps > 8)
    @rule(name=st.sampled_from((STANDALONE, EVENT)), action=st.sampled_from(("close", "close", "pause", "resume")))
    def admin(self, name: str, action: str) -> None:
        """Close, pause or resume an event (through any of its markets)."""
        model = self.events[name]
        phase = {"close": ("open", "paused", "closed"), "pause": ("open", "open", "paused"),
                 "resume": ("paused", "paused", "open")}[action]  # fmt: skip
        ok = model.phase in phase[:2]
        market = model.markets[self.steps % len(model.markets)]
        self.submit(self.act(Actor(self.pm.ADMIN), market, action), ok, apply=lambda: setattr(model, "phase", phase[2]))

    @precondition(lambda self: self.steps > 40)
    @rule(name=st.sampled_from((STANDALONE, EVENT)))
    def void(self, name: str) -> None:
        """The admin cancels an event: it is void, and any bond still posted goes back to its poster."""
        model = self.events[name]
        ok = model.phase != "final"
        flows = []
        if ok and model.phase in ("proposed", "disputed"):
            flows = [(f"T{model.proposer}", USDC, BOND), ("escrow:S", USDC, -BOND)]
            if model.phase == "disputed":
                flows += [(f"T{model.disputer}", USDC, BOND), ("escrow:S", USDC, -BOND)]
            note(f"void returns the bonds of a {model.phase} event")
        self.submit(self.act(Actor(self.pm.ADMIN), model.markets[0], "cancel"), ok, flows, {name: "void"} if ok else {})

    @precondition(lambda self: self.events[EVENT].phase not in ("open", "paused"))
    @rule(member=st.integers(0, 2), market=st.sampled_from(MEMBERS),
          outcome=st.sampled_from((*MEMBERS, "void", "yes")), agree=st.booleans())  # fmt: skip
    def vote_event(self, member: int, market: str, outcome: str, agree: bool) -> None:
        """A committee vote on E (agreeing with an earlier one, or not): once closed, once per member."""
        model = self.events[EVENT]
        if agree and model.votes:
            outcome = min(model.votes.values())
        ok = model.phase == "closed" and member not in model.votes and outcome != "yes"
        finals = {}
        if ok:
            model.votes[member] = outcome
            if sum(1 for v in model.votes.values() if v == outcome) >= 2:
                finals[EVENT] = outcome
        self.submit(self.act(Actor(self.pm.COMMITTEE[member]), market, "vote", outcome=outcome), ok, (), finals)

    @precondition(lambda self: self.events[STANDALONE].phase not in ("open", "paused"))
    @rule(trader=traders, outcome=st.sampled_from(("yes", "no", "half", "void")))
    def propose(self, trader: int, outcome: str) -> None:
        """Propose S's outcome with a bond (after close, once)."""
        model = self.events[STANDALONE]
        ok = model.phase == "closed" and self.available(trader, USDC) >= BOND
        command = self.act(self.traders[trader], STANDALONE, "propose", outcome=outcome)

        def proposed() -> None:
            model.phase, model.proposal, model.proposer = "proposed", outcome, trader
            model.deadline = self.now + LIVENESS

        self.submit(command, ok, [(f"T{trader}", USDC, -BOND), ("escrow:S", USDC, BOND)], apply=proposed)

    @precondition(lambda self: self.events[STANDALONE].phase not in ("open", "paused"))
    @rule(trader=traders)
    def dispute(self, trader: int) -> None:
        """Dispute the proposal with an equal bond (before its deadline)."""
        model = self.events[STANDALONE]
        ok = model.phase == "proposed" and self.now < model.deadline and self.available(trader, USDC) >= BOND
        command = self.act(self.traders[trader], STANDALONE, "dispute")

        def disputed() -> None:
            model.phase, model.disputer = "disputed", trader

        self.submit(command, ok, [(f"T{trader}", USDC, -BOND), ("escrow:S", USDC, BOND)], apply=disputed)

    @precondition(lambda self: self.events[STANDALONE].phase not in ("open", "paused"))
    @rule(member=st.integers(0, 2), outcome=st.sampled_from(("yes", "no", "half", "void")), agree=st.booleans())
    def vote_standalone(self, member: int, outcome: str, agree: bool) -> None:
        """A committee vote on a disputed proposal: two agreeing votes decide, and the bonds go to who was right."""
        model = self.events[STANDALONE]
        if agree and model.votes:
            outcome = min(model.votes.values())
        ok = model.phase == "disputed" and member not in model.votes
        flows: list[tuple[str, str, int]] = []
        finals = {}
        if ok:
            model.votes[member] = outcome
            if sum(1 for v in model.votes.values() if v == outcome) >= 2:
                finals[STANDALONE] = outcome
                winner = model.proposer if outcome == model.proposal else model.disputer
                fee = BOND * DISPUTE_FEE_BPS // 10_000
                flows = [(f"T{winner}", USDC, 2 * BOND - fee), ("fee", USDC, fee), ("escrow:S", USDC, -2 * BOND)]
                note("dispute decided for the " + ("proposer" if winner == model.proposer else "disputer"))
        command = self.act(Actor(self.pm.COMMITTEE[member]), STANDALONE, "vote", outcome=outcome)
        self.submit(command, ok, flows, finals)

    @precondition(lambda self: self.steps > 8)
    @rule(name=st.sampled_from((STANDALONE, EVENT)), trader=traders, member=st.integers(0, 2),
          outcome=st.sampled_from(("yes", "no", "half", "void", *MEMBERS)), wait=st.booleans())  # fmt: skip
    def progress(self, name: str, trader: int, member: int, outcome: str, wait: bool) -> None:
        """Move an event's lifecycle on: close (or wait for the kickoff); propose; dispute or wait; vote."""
        model = self.events[name]
        if model.phase == "final":
            return
        if model.phase in ("open", "paused"):
            if name == EVENT and wait:
                self.tick(max(KICKOFF - self.now, 1))
            else:
                self.admin(name, "close")
        elif name == EVENT:
            choice = outcome if outcome in (*MEMBERS, "void") else MEMBERS[member]
            self.vote_event(member, MEMBERS[member], choice, True)
        elif model.phase == "closed":
            self.propose(trader, outcome if outcome not in MEMBERS else "yes")
        elif model.phase == "proposed" and wait:
            self.tick(LIVENESS)
        elif model.phase == "proposed":
            self.dispute(trader)
        else:
            self.vote_standalone(member, outcome if outcome not in MEMBERS else "no", True)


def test_prediction_venue_state_machine(pm: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random runs keep every check; across them every fill kind occurs (the floor scales with the examples)."""
    manifest = pm.parsed_manifest(tmp_path_factory.mktemp("stateful"), venue_markets(pm), spot=True)
    SEEN.clear()
    examples = max(settings().max_examples // 4, 10)  # 125 runs of up to 60 steps in the ci profile

    class Machine(PredictionMachine):
        """The machine over this session's manifest."""

        def __init__(self) -> None:
            """A fresh engine."""
            super().__init__(pm, manifest)

    run_state_machine_as_test(Machine, settings=settings(max_examples=examples, stateful_step_count=60))
    floor = examples // 2  # the ci run gives each fill kind 130 or more
    missing = {kind: SEEN[kind] for kind in KINDS if SEEN[kind] < floor}
    assert not missing, f"fill kinds below {floor} across the runs: {missing} (all: {dict(SEEN)})"
    if examples >= 100:  # and every way an event ends (too rare to demand of a short dev run)
        lifecycle = [label for label in LIFECYCLE if not any(seen.startswith(label) for seen in SEEN)]
        assert not lifecycle, f"never exercised: {lifecycle} (all: {dict(SEEN)})"
    print(f"\nstateful runs exercised: {dict(SEEN)}")


def test_withdrawing_shares_keeps_the_vault_covered(pm: ModuleType, tmp_path: Path) -> None:
    """Shares are claims on the vault: a withdrawal must be refused, or leave vault == YES supply == NO supply."""
    venue = pm.Venue.build(tmp_path, [pm.market("RAIN")])
    a = pm.trader(1)
    venue.deposit(a, 3 * LOT)
    assert venue.accepted(venue.action(a, "RAIN", "split", size=3))
    events = venue.submit(C.Withdraw(actor=a, timestamp=venue.now + 1, asset="RAIN-Y", amount=LOT), check=False)
    assert venue.rejection(events) == "MARKET_ASSET"
    admin = C.Actor(a.address, signer=pm.ADMIN)
    events = venue.submit(C.Deposit(actor=admin, timestamp=venue.now + 1, asset="RAIN-N", amount=LOT), check=False)
    assert venue.rejection(events) == "MARKET_ASSET"
    venue.engine.check_invariants()
    assert venue.vault("RAIN") == venue.supply("RAIN-Y") == venue.supply("RAIN-N") == 3 * LOT
