"""Stateful property tests of the engine: random command sequences checked against a model after every step.

`Harness` drives one engine over a small unit venue (two spot markets on the same two assets: UNIT with tick
and lot 1, MULT with 5 base units per lot and 3 quote units per tick-lot, small caps; maker −1 bp, taker 5 bp)
and keeps a model of what the ledger must hold: deposits − withdrawals per asset, each account's holdings
replayed from the events, each fill's fee (on the order's cumulative receipts per role), the fee account's
balance, and the locks the open orders need. `EngineMachine` (hypothesis) and the seeded long run share its
command builders; both check that replaying their commands into a fresh engine gives the same state hash.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from exos import commands as C
from exos import events as E
from exos.commands import Actor, Command
from exos.engine import Engine
from exos.manifest import Manifest

ADMIN = bytes.fromhex("11" * 20)
FEE_ADDRESS = bytes.fromhex("fee0000000000000000000000000000000000fee")
ADDRESSES = tuple(b"\xa0" + n.to_bytes(19, "big") for n in (1, 2, 3))
ACTORS = tuple(Actor(address, sub) for address in ADDRESSES for sub in (0, 1))  # index = 2 * address + sub
QUOTE, BASE = "QUO", "BAS"
ASSETS = (QUOTE, BASE)
UNIT, MULT = "UNIT", "MULT"
BUY, SELL = 0, 1
GTC, GTD, IOC, FOK = 0, 1, 2, 3
START = 1_000
CLIENT_IDS = (None, b"A" * 16, b"B" * 16, bytes(16))  # an all-zero client id is still a client id
UNKNOWN_IDS = (0, 999_999_999, 2**64 - 1)
# the statuses a market moves through; settled (terminal) is added once, where a rule may pick it
STATUSES = ("open", "open", "open", "open", "open", "cancel_only", "cancel_only", "reduce_only", "halted", "halted")
AMEND_MODES = ("down", "up", "price", "move", "below_filled", "same", "overflow")

MANIFEST_TOML = """
[venue]
name = "stateful venue"
admins = ["0x1111111111111111111111111111111111111111"]
fee_account = "0xfee0000000000000000000000000000000000fee"

[[plugins]]
name = "spot"

[[assets]]
symbol = "QUO"
decimals = 0

[[assets]]
symbol = "BAS"
decimals = 0

[[markets]]
name = "UNIT"
type = "spot"
base = "BAS"
quote = "QUO"
tick_size = "1"
lot_size = "1"
max_orders = 4096
max_levels = 256

[markets.fees]
maker_bps = "-1"
taker_bps = "5"

[[markets]]
name = "MULT"
type = "spot"
base = "BAS"
quote = "QUO"
tick_size = "0.6"
lot_size = "5"
min_size = "10"
min_notional = "250"
max_orders = 6
max_levels = 4

[markets.fees]
maker_bps = "-1"
taker_bps = "5"
"""
MANIFEST = Manifest.from_bytes(MANIFEST_TOML.encode(), source="<stateful venue>")


class MarketModel(NamedTuple):
    """What the model knows of a market: where its prices centre and its unit multipliers."""

    mid: int
    lot_units: int
    quote_per_tick_lot: int


MARKETS = {UNIT: MarketModel(1_000, 1, 1), MULT: MarketModel(40, 5, 3)}
MAKER_CENTIBPS, TAKER_CENTIBPS = -100, 500  # both markets: maker −1 bp, taker 5 bp


class OrderRef(NamedTuple):
    """An order id seen in an OrderAccepted event, with its market and owner (an index into ACTORS)."""

    market: str
    order_id: int
    owner: int
    client_id: bytes | None


class Outcome(NamedTuple):
    """One submitted command, its events and the state hashes around it."""

    command: Command
    events: list[E.Event]
    seq: int
    hash_before: str
    hash_after: str
    not_later: bool  # the command's timestamp is not after the previous one (no timer can fire)


def flat_fee(received: int, maker: bool) -> int:
    """The total fee on `received` units: taker 5 bp rounded up, maker rebate 1 bp rounded down (toward 0)."""
    rate = MAKER_CENTIBPS if maker else TAKER_CENTIBPS
    if rate >= 0:
        return -(-received * rate // 1_000_000)
    return -(received * -rate // 1_000_000)


def accepted(events: list[E.Event]) -> bool:
    """Whether a command's CommandDone says it was applied."""
    done = events[-1]
    assert isinstance(done, E.CommandDone), events
    return bool(done.accepted)


def other_actor(owner: int, mode: int) -> int:
    """The owner itself (mode 0), its sibling sub-account (1) or the next address's same sub-account (2)."""
    if mode == 1:
        return owner ^ 1
    if mode == 2:
        return (owner + 2) % len(ACTORS)
    return owner


def _ignore(_: str) -> None:
    """A note sink that drops its argument."""


class Harness:
    """An engine under test, the commands it was given, and the model the checks compare it to."""

    def __init__(self, note: Callable[[str], None] = _ignore) -> None:
        """A fresh engine at START with an empty model."""
        self.engine = Engine.from_parsed(MANIFEST)
        self.note = note
        self.now = START
        self.commands: list[Command] = []
        self.net = dict.fromkeys(ASSETS, 0)  # deposits − withdrawals, from the accepted commands
        self.fees = dict.fromkeys(ASSETS, 0)  # Σ fee over Fill events, per fee asset
        self.received: dict[tuple[str, int, bool], int] = {}  # (market, order id, maker) -> units received
        self.holdings: dict[tuple[bytes, int], dict[str, int]] = {}  # account -> asset -> available + locked
        self.last: Outcome | None = None
        self.clean = True  # False while a submit or a check is under way (so after one raised)

    # ------------------------------------------------------------ submitting and checking

    def submit(self, command: Command) -> list[E.Event]:
        """Submit one command, recording its outcome and updating the model."""
        self.clean = False
        engine = self.engine
        before = engine.state_hash()
        not_later = command.timestamp <= engine.last_timestamp
        seq = engine.seq + 1
        events = engine.submit(command)
        self.commands.append(command)
        self.last = Outcome(command, events, seq, before, engine.state_hash(), not_later)
        ok = accepted(events)
        self.note(f"command: {type(command).__name__} {'applied' if ok else 'rejected'}")
        for e in events:
            self.note(f"event: {type(e).__name__}")
            if isinstance(e, E.Fill):
                self._settle(e)
            elif isinstance(e, E.Deposited):
                self._hold(e.address, e.sub, e.asset, e.amount)
            elif isinstance(e, E.Withdrawn):
                self._hold(e.address, e.sub, e.asset, -e.amount)
            elif isinstance(e, E.Transferred):
                self._hold(e.address, e.sub, e.asset, -e.amount)
                self._hold(e.address, e.to_sub, e.asset, e.amount)
            elif isinstance(e, E.Rejected):
                self.note(f"rejected: {e.code}")
            elif isinstance(e, E.OrderCancelled):
                self.note(f"{type(e).__name__}: {e.reason} ({e.cause.name.lower()})")
        if ok and isinstance(command, C.Deposit):
            self.net[command.asset] += command.amount
        elif ok and isinstance(command, C.Withdraw):
            self.net[command.asset] -= command.amount
        self.clean = True
        return events

    def _hold(self, address: bytes, sub: int, asset: str, amount: int) -> None:
        """Move an account's modelled holdings."""
        held = self.holdings.setdefault((address, sub), dict.fromkeys(ASSETS, 0))
        held[asset] += amount

    def _settle(self, fill: E.Fill) -> None:
        """One side of a trade: the model's fee (on the order's cumulative receipts in its role) and holdings."""
        model = MARKETS[fill.market]
        base = fill.size * model.lot_units
        quote = fill.price * fill.size * model.quote_per_tick_lot
        got_asset, got, paid_asset, paid = (
            (BASE, base, QUOTE, quote) if fill.side == BUY else (QUOTE, quote, BASE, base)
        )
        key = (fill.market, fill.order_id, fill.maker)
        before = self.received.get(key, 0)
        self.received[key] = after = before + got
        fee = flat_fee(after, fill.maker) - flat_fee(before, fill.maker)
        assert (fill.fee, fill.fee_asset) == (fee, got_asset), (fill, fee, got_asset, before, after)
        self.fees[got_asset] += fill.fee
        self._hold(fill.address, fill.sub, got_asset, got - fill.fee)
        self._hold(fill.address, fill.sub, paid_asset, -paid)
        self._hold(FEE_ADDRESS, 0, got_asset, fill.fee)
        if fill.fee < 0:
            self.note("fill: maker rebate")

    def check_last_command(self) -> None:
        """The last command's events: one final CommandDone, indexes 0..n-1, its seq; a rejection changed nothing."""
        out = self.last
        if out is None:
            return
        self.clean = False
        events = out.events
        assert self.engine.seq == out.seq, (self.engine.seq, out)
        assert [e.index for e in events] == list(range(len(events))), events
        assert all(e.seq == out.seq for e in events), events
        dones = [e for e in events if isinstance(e, E.CommandDone)]
        assert len(dones) == 1 and events[-1] is dones[0], events
        rejections = [e for e in events if isinstance(e, E.Rejected)]
        assert len(rejections) <= 1, events
        assert dones[0].accepted == (not rejections), events
        if rejections:
            assert events[-2] is rejections[0], events
            if out.not_later:
                assert len(events) == 2, events
                assert out.hash_after == out.hash_before, f"rejected {out.command!r} changed the state: {events}"
        fills = [e for e in events if isinstance(e, E.Fill)]
        assert len(fills) % 2 == 0, events
        for taker, maker in zip(fills[::2], fills[1::2], strict=True):
            assert not taker.maker and maker.maker, (taker, maker)
            assert (taker.trade_id, taker.price, taker.size) == (maker.trade_id, maker.price, maker.size)
            assert (taker.order_id, taker.counter_order_id) == (maker.counter_order_id, maker.order_id)
            assert taker.side == 1 - maker.side and taker.size > 0, (taker, maker)
            command = out.command
            if isinstance(command, C.PlaceOrder | C.AmendOrder):  # the taker never pays more than its limit
                within = taker.price <= command.price if taker.side == BUY else taker.price >= command.price
                assert within, (command, taker)
        self.clean = True

    def check_state(self) -> None:
        """The engine's own invariants, then the model: totals, fees, holdings, no negative balance, locks."""
        self.clean = False
        engine = self.engine
        engine.check_invariants()
        ledger = engine.ledger
        fee_account = ledger.find_account(FEE_ADDRESS, 0)
        assert fee_account is not None
        for index, asset in enumerate(ledger.assets):
            available, locked = ledger.available[index], ledger.locked[index]
            for account, (free, held) in enumerate(zip(available, locked, strict=True)):
                assert held >= 0, (asset.symbol, ledger.accounts[account], held)
                assert free >= 0 or account == fee_account, (asset.symbol, ledger.accounts[account], free)
            total = sum(available) + sum(locked)
            assert total == self.net[asset.symbol], (asset.symbol, total, self.net)
            assert locked[fee_account] == 0, asset.symbol
            assert available[fee_account] == self.fees[asset.symbol], (asset.symbol, available[fee_account], self.fees)
        for account, key in enumerate(ledger.accounts):
            owned = {
                a.symbol: ledger.available[i][account] + ledger.locked[i][account] for i, a in enumerate(ledger.assets)
            }
            assert owned == self.holdings.get(key, dict.fromkeys(ASSETS, 0)), (key, owned, self.holdings.get(key))
        assert set(self.holdings) <= set(ledger.accounts), (set(self.holdings), ledger.accounts)
        for actor in ACTORS:
            want = dict.fromkeys(ASSETS, 0)
            for market, order in engine.open_orders(actor.address, actor.sub):
                model = MARKETS[market]
                if order.side == BUY:
                    want[QUOTE] += order.price * order.remaining * model.quote_per_tick_lot
                else:
                    want[BASE] += order.remaining * model.lot_units
            got = {asset: held for asset, (_, held) in engine.balances(actor.address, actor.sub).items()}
            assert got == want, (actor, got, want, engine.open_orders(actor.address, actor.sub))
        self.clean = True

    def check_replay(self) -> None:
        """Replaying every command into a fresh engine gives the same state."""
        fresh = Engine.from_parsed(MANIFEST)
        assert fresh.replay([c.pack() for c in self.commands]) == len(self.commands)
        assert fresh.seq == self.engine.seq
        assert fresh.state_hash() == self.engine.state_hash()

    # ------------------------------------------------------------ commands

    def deposit(self, who: int, asset: str, amount: int, by_admin: bool = True) -> None:
        """An admin-signed deposit (or, with by_admin False, one the account signs itself)."""
        actor = ACTORS[who]
        signer = ADMIN if by_admin else actor.address
        command = C.Deposit(
            actor=Actor(actor.address, actor.sub, signer), timestamp=self.now, asset=asset, amount=amount
        )
        events = self.submit(command)
        assert accepted(events) == (by_admin and amount > 0), events

    def fund_all(self) -> list[OrderRef]:
        """Fund every account but the last (sub-account 1 with less), then rest a bid and an ask per market."""
        for who in range(len(ACTORS) - 1):
            self.deposit(who, QUOTE, 60_000 if who % 2 == 0 else 9_001)
            self.deposit(who, BASE, 150 if who % 2 == 0 else 30)
        refs: list[OrderRef] = []
        refs += self.place(0, UNIT, BUY, -1, 4, GTC, False, 0, CLIENT_IDS[1], 0)
        refs += self.place(2, UNIT, SELL, 1, 4, GTD, False, 0, CLIENT_IDS[1], 6)
        refs += self.place(0, MULT, BUY, -1, 4, GTD, False, 0, CLIENT_IDS[1], 3)
        refs += self.place(2, MULT, SELL, 1, 4, GTC, False, 0, CLIENT_IDS[2], 0)
        assert len(refs) == 4, refs
        return refs

    def _available(self, who: int, asset: str) -> int:
        """An actor's available balance."""
        actor = ACTORS[who]
        return self.engine.balances(actor.address, actor.sub)[asset][0]

    def _amount(self, who: int, asset: str, percent: int) -> int:
        """`percent` of the available balance; above 100, always more than available."""
        available = self._available(who, asset)
        amount = available * percent // 100
        return max(amount, available + 1) if percent > 100 else amount

    def withdraw(self, who: int, asset: str, percent: int) -> None:
        """Withdraw a share of the available balance (sometimes more than there is)."""
        available = self._available(who, asset)
        amount = self._amount(who, asset, percent)
        events = self.submit(C.Withdraw(actor=ACTORS[who], timestamp=self.now, asset=asset, amount=amount))
        assert accepted(events) == (0 < amount <= available), events

    def transfer(self, who: int, asset: str, percent: int, to_sub: int) -> None:
        """Move a share of the available balance to a sub-account of the same address."""
        available = self._available(who, asset)
        amount = self._amount(who, asset, percent)
        actor = ACTORS[who]
        events = self.submit(C.Transfer(actor=actor, timestamp=self.now, asset=asset, amount=amount, to_sub=to_sub))
        assert accepted(events) == (0 < amount <= available and to_sub != actor.sub), events

    def _new_orders(self, events: list[E.Event], who: int) -> list[OrderRef]:
        """The OrderRefs of a place command's OrderAccepted events (at most one, the last id)."""
        refs = [OrderRef(e.market, e.order_id, who, e.client_id) for e in events if isinstance(e, E.OrderAccepted)]
        assert len(refs) <= 1, events
        if refs:
            assert refs[0].order_id == self.engine.next_order_id - 1, (refs, self.engine.next_order_id)
            self.note(f"place: {'rests' if self.engine.order(refs[0].market, refs[0].order_id) else 'done'}")
        return refs

    def place(
        self,
        who: int,
        market: str,
        side: int,
        offset: int,
        size: int,
        tif: int,
        post_only: bool,
        stp: int,
        client_id: bytes | None,
        expiry_delta: int,
    ) -> list[OrderRef]:
        """A limit order near the market's mid price; returns the id it was given, if any."""
        command = C.PlaceOrder(
            actor=ACTORS[who],
            timestamp=self.now,
            market=market,
            side=side,
            price=MARKETS[market].mid + offset,
            size=size,
            tif=tif,
            post_only=post_only,
            stp=stp,
            expiry=self.now + expiry_delta if tif == GTD else 0,
            client_id=client_id,
        )
        return self._new_orders(self.submit(command), who)

    def market_order(self, who: int, market: str, side: int, offset: int, size: int, stp: int) -> list[OrderRef]:
        """A market order whose worst acceptable price is near the mid."""
        command = C.MarketOrder(
            actor=ACTORS[who],
            timestamp=self.now,
            market=market,
            side=side,
            price=MARKETS[market].mid + offset,
            size=size,
            stp=stp,
        )
        return self._new_orders(self.submit(command), who)

    def take(self, who: int, market: str, side: int, depth: int, size: int, tif: int, stp: int) -> list[OrderRef]:
        """An order priced `depth` ticks through the best opposite price (at the mid if that side is empty)."""
        book = self.engine.market_state(market).book
        best = book.best_ask() if side == BUY else book.best_bid()
        price = MARKETS[market].mid
        if best is not None:
            price = best[0] + depth if side == BUY else best[0] - depth
        command = C.PlaceOrder(
            actor=ACTORS[who], timestamp=self.now, market=market, side=side, price=price, size=size, tif=tif, stp=stp
        )
        return self._new_orders(self.submit(command), who)

    def cancel(self, ref: OrderRef, who_mode: int, unknown: int | None) -> None:
        """Cancel an order by id (as its owner or another account; or an id no order has)."""
        order_id = ref.order_id if unknown is None else unknown
        who = other_actor(ref.owner, who_mode)
        self.submit(C.CancelOrder(actor=ACTORS[who], timestamp=self.now, market=ref.market, order_id=order_id))

    def cancel_by_client_id(self, ref: OrderRef, who_mode: int, client_id: bytes | None) -> None:
        """Cancel by client id: the order's own (None), or another one of the pool."""
        client_id = client_id or ref.client_id or CLIENT_IDS[1]
        who = other_actor(ref.owner, who_mode)
        self.submit(C.CancelByClientId(actor=ACTORS[who], timestamp=self.now, market=ref.market, client_id=client_id))

    def cancel_all(self, who: int, market: str) -> None:
        """Cancel all of an account's orders in one market or ("") in every market."""
        self.submit(C.CancelAll(actor=ACTORS[who], timestamp=self.now, market=market))

    def amend(self, ref: OrderRef, mode: str, k: int, delta: int, who_mode: int, unknown: int | None) -> None:
        """Amend an order: size down or up, a new price, both, to or below its filled size, no change, overflow."""
        order_id = ref.order_id if unknown is None else unknown
        order = self.engine.order(ref.market, order_id)
        if order is None:
            price, size = MARKETS[ref.market].mid + delta, k
        else:
            price, size = order.price, order.size
            if mode == "down":
                size -= k
            elif mode == "up":
                size += k
            elif mode == "price":
                price += delta
            elif mode == "move":
                price, size = price + delta, size + k - 3
            elif mode == "below_filled":
                size = order.size - order.remaining - (k - 1)
            elif mode == "overflow":
                size = 2**62
            self.note(f"amend: {mode} of an open order")
        who = other_actor(ref.owner, who_mode)
        command = C.AmendOrder(
            actor=ACTORS[who], timestamp=self.now, market=ref.market, order_id=order_id, price=price, size=size
        )
        self.submit(command)

    def set_status(self, market: str, status: str, by_admin: bool) -> None:
        """Move a market to a new status (admin-signed unless by_admin is False)."""
        actor = Actor(ADMIN) if by_admin else ACTORS[0]
        self.submit(C.SetMarketStatus(actor=actor, timestamp=self.now, market=market, status=status))

    def tick(self, dt: int) -> None:
        """Advance the clock and submit a Tick (firing due GTD expiries)."""
        self.now += dt
        self.submit(C.Tick(actor=Actor(ADMIN), timestamp=self.now))

    def stale(self, dt: int) -> None:
        """A command timestamped before the last one: refused, and nothing changes."""
        events = self.submit(C.Tick(actor=Actor(ADMIN), timestamp=self.engine.last_timestamp - dt))
        assert [type(e) for e in events] == [E.Rejected, E.CommandDone], events
        assert isinstance(events[0], E.Rejected) and events[0].code == "TIMESTAMP_REGRESSION", events

    def snapshot_restore(self) -> None:
        """Replace the engine by a fresh one loaded from its state dump; nothing changes."""
        self.clean = False
        old = self.engine
        state = old.dump_state()
        new = Engine.from_parsed(old.manifest)
        new.load_state(state)
        new.seq = old.seq
        assert new.dump_state() == state
        assert new.state_hash() == old.state_hash()
        self.engine = new
        self.clean = True


# ---------------------------------------------------------------- the hypothesis state machine

actors = st.integers(0, len(ACTORS) - 1)
markets = st.sampled_from((UNIT, MULT))
assets = st.sampled_from(ASSETS)
sides = st.integers(BUY, SELL)
offsets = st.sampled_from((0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, -10_000))  # the last: a price <= 0
sizes = st.integers(0, 20)
who_modes = st.sampled_from((0, 0, 0, 0, 1, 2))
unknowns = st.sampled_from((None, None, None, None, None, None, *UNKNOWN_IDS))
admins = st.sampled_from((True, True, True, True, False))


class EngineMachine(RuleBasedStateMachine):
    """Random command sequences against one engine, checked against the harness's model after every step."""

    orders = Bundle("orders")

    def __init__(self) -> None:
        """A fresh harness reporting event kinds to hypothesis."""
        super().__init__()
        self.h = Harness(note=event)

    @initialize(target=orders)
    def fund(self) -> MultipleResults[OrderRef]:
        """Every account starts with both assets; each market with a bid and an ask."""
        return multiple(*self.h.fund_all())

    @rule(who=actors, asset=assets, units=st.integers(0, 30), by_admin=admins)
    def deposit(self, who: int, asset: str, units: int, by_admin: bool) -> None:
        """Deposit (0 is refused, as is a deposit the account signs itself)."""
        self.h.deposit(who, asset, units * (1_009 if asset == QUOTE else 3), by_admin)

    @rule(who=actors, asset=assets, percent=st.integers(0, 130))
    def withdraw(self, who: int, asset: str, percent: int) -> None:
        """Withdraw a share of the available balance, sometimes more than it."""
        self.h.withdraw(who, asset, percent)

    @rule(who=actors, asset=assets, percent=st.integers(0, 130), to_sub=st.integers(0, 1))
    def transfer(self, who: int, asset: str, percent: int, to_sub: int) -> None:
        """Transfer between the sub-accounts of one address."""
        self.h.transfer(who, asset, percent, to_sub)

    @rule(
        target=orders,
        who=actors,
        market=markets,
        side=sides,
        offset=offsets,
        size=sizes,
        tif=st.sampled_from((GTC, GTD, IOC, FOK)),
        post_only=st.booleans(),
        stp=st.integers(0, 2),
        client_id=st.sampled_from(CLIENT_IDS),
        expiry_delta=st.integers(-1, 8),
    )
    def place(
        self,
        who: int,
        market: str,
        side: int,
        offset: int,
        size: int,
        tif: int,
        post_only: bool,
        stp: int,
        client_id: bytes | None,
        expiry_delta: int,
    ) -> MultipleResults[OrderRef]:
        """Any limit order: every tif, post-only, STP mode, client id and GTD expiry."""
        return multiple(*self.h.place(who, market, side, offset, size, tif, post_only, stp, client_id, expiry_delta))

    @rule(
        target=orders,
        who=actors,
        market=markets,
        side=sides,
        offset=st.integers(-6, 6),
        size=st.integers(1, 20),
        gtd=st.booleans(),
        client_id=st.sampled_from(CLIENT_IDS),
        expiry_delta=st.integers(1, 6),
    )
    def place_resting(
        self,
        who: int,
        market: str,
        side: int,
        offset: int,
        size: int,
        gtd: bool,
        client_id: bytes | None,
        expiry_delta: int,
    ) -> MultipleResults[OrderRef]:
        """A plain GTC or GTD order (the book needs resting liquidity)."""
        tif = GTD if gtd else GTC
        return multiple(*self.h.place(who, market, side, offset, size, tif, False, 0, client_id, expiry_delta))

    @rule(
        target=orders,
        who=actors,
        market=markets,
        side=sides,
        depth=st.integers(-1, 3),
        size=st.integers(1, 12),
        tif=st.sampled_from((GTC, IOC, FOK)),
        stp=st.integers(0, 2),
    )
    def take(
        self, who: int, market: str, side: int, depth: int, size: int, tif: int, stp: int
    ) -> MultipleResults[OrderRef]:
        """An order at or through the best opposite price: it trades (or meets STP)."""
        return multiple(*self.h.take(who, market, side, depth, size, tif, stp))

    @rule(who=actors, market=markets, side=sides, offset=st.integers(-8, 8), size=sizes, stp=st.integers(0, 2))
    def market_order(self, who: int, market: str, side: int, offset: int, size: int, stp: int) -> None:
        """A market order (IOC at a worst price)."""
        self.h.market_order(who, market, side, offset, size, stp)

    @rule(ref=orders, who_mode=who_modes, unknown=unknowns)
    def cancel(self, ref: OrderRef, who_mode: int, unknown: int | None) -> None:
        """Cancel by id: a known id (by its owner or not) or an unknown one."""
        self.h.cancel(ref, who_mode, unknown)

    @rule(ref=orders, who_mode=who_modes, client_id=st.sampled_from(CLIENT_IDS))
    def cancel_by_client_id(self, ref: OrderRef, who_mode: int, client_id: bytes | None) -> None:
        """Cancel by client id: the order's own (by its owner or not), or another one."""
        self.h.cancel_by_client_id(ref, who_mode, client_id)

    @rule(who=actors, market=st.sampled_from((UNIT, MULT, C.ALL_MARKETS, "NOPE")))
    def cancel_all(self, who: int, market: str) -> None:
        """Cancel all in one market, in every market, or in a market that does not exist."""
        self.h.cancel_all(who, market)

    @rule(
        ref=orders,
        mode=st.sampled_from(AMEND_MODES),
        k=st.integers(1, 6),
        delta=st.integers(-4, 4),
        who_mode=who_modes,
        unknown=unknowns,
    )
    def amend(self, ref: OrderRef, mode: str, k: int, delta: int, who_mode: int, unknown: int | None) -> None:
        """Amend size down or up, price, both, below filled; or no change, an overflow, an unknown id."""
        self.h.amend(ref, mode, k, delta, who_mode, unknown)

    @rule(market=markets, status=st.sampled_from((*STATUSES, "settled")), by_admin=admins)
    def set_status(self, market: str, status: str, by_admin: bool) -> None:
        """Change a market's status: halt, cancel-only, reduce-only, reopen, rarely settle."""
        self.h.set_status(market, status, by_admin)

    @rule(dt=st.sampled_from((1, 2, 3, 5, 8, 0)))
    def tick(self, dt: int) -> None:
        """Advance time; GTD orders expire."""
        self.h.tick(dt)

    @rule(dt=st.integers(1, 3))
    def stale(self, dt: int) -> None:
        """A command from the past is refused."""
        self.h.stale(dt)

    @rule()
    def snapshot_restore(self) -> None:
        """Swap in an engine restored from the state dump."""
        self.h.snapshot_restore()

    @invariant()
    def command_is_well_formed(self) -> None:
        """The last command's events are well formed; a rejection at the same time changed nothing."""
        self.h.check_last_command()

    @invariant()
    def state_matches_model(self) -> None:
        """Engine invariants, totals, fees, holdings, no negative balance, locks."""
        self.h.check_state()

    def teardown(self) -> None:
        """Replaying the run into a fresh engine gives the same state (skipped after a failure)."""
        if self.h.clean:
            self.h.check_replay()


TestEngineStateful = EngineMachine.TestCase
TestEngineStateful.settings = settings(stateful_step_count=30)


# ---------------------------------------------------------------- a long seeded run, replayed


def random_step(h: Harness, rng: random.Random, refs: list[OrderRef], settle: bool) -> None:
    """One random command (or snapshot/restore), from the same domains as the state machine's rules."""
    action = rng.choices(
        ("deposit", "withdraw", "transfer", "place", "resting", "take", "market", "cancel", "client", "all",
         "amend", "status", "tick", "stale", "restore"),
        weights=(4, 2, 2, 8, 10, 6, 3, 4, 2, 1, 6, 1, 4, 1, 1),
    )[0]  # fmt: skip
    who = rng.randrange(len(ACTORS))
    market = rng.choice((UNIT, MULT))
    if action == "deposit":
        asset = rng.choice(ASSETS)
        h.deposit(who, asset, rng.randint(0, 30) * (1_009 if asset == QUOTE else 3), rng.random() < 0.9)
    elif action == "withdraw":
        h.withdraw(who, rng.choice(ASSETS), rng.randint(0, 130))
    elif action == "transfer":
        h.transfer(who, rng.choice(ASSETS), rng.randint(0, 130), rng.randint(0, 1))
    elif action == "place":
        refs += h.place(
            who, market, rng.randint(BUY, SELL), rng.randint(-6, 6), rng.randint(0, 20), rng.randint(GTC, FOK),
            rng.random() < 0.3, rng.randint(0, 2), rng.choice(CLIENT_IDS), rng.randint(-1, 8),
        )  # fmt: skip
    elif action == "resting":
        tif = rng.choice((GTC, GTD))
        refs += h.place(
            who, market, rng.randint(BUY, SELL), rng.randint(-6, 6), rng.randint(1, 20), tif, False, 0,
            rng.choice(CLIENT_IDS), rng.randint(1, 8),
        )  # fmt: skip
    elif action == "take":
        refs += h.take(
            who, market, rng.randint(BUY, SELL), rng.randint(-1, 3), rng.randint(1, 12), rng.choice((GTC, IOC, FOK)),
            rng.randint(0, 2),
        )  # fmt: skip
    elif action == "market":
        h.market_order(who, market, rng.randint(BUY, SELL), rng.randint(-8, 8), rng.randint(1, 20), rng.randint(0, 2))
    elif action == "client":
        ref = rng.choice(refs[-64:])
        h.cancel_by_client_id(ref, rng.choice((0, 0, 0, 0, 1, 2)), rng.choice(CLIENT_IDS))
    elif action == "all":
        h.cancel_all(who, rng.choice((UNIT, MULT, C.ALL_MARKETS)))
    elif action in ("cancel", "amend"):
        live = [r for r in refs[-64:] if h.engine.order(r.market, r.order_id) is not None]
        if live and rng.random() < 0.85:
            ref = rng.choice(live)
        else:
            ref = rng.choice(refs) if refs else OrderRef(market, 1, who, None)
        unknown = rng.choice(UNKNOWN_IDS) if rng.random() < 0.1 else None
        who_mode = rng.choice((0, 0, 0, 0, 1, 2))
        if action == "cancel":
            h.cancel(ref, who_mode, unknown)
        else:
            h.amend(ref, rng.choice(AMEND_MODES), rng.randint(1, 6), rng.randint(-4, 4), who_mode, unknown)
    elif action == "status":
        if settle:
            status = "settled"
        elif h.engine.market_state(market).status and rng.random() < 0.7:
            status = "open"
        else:
            status = rng.choice(STATUSES)
        h.set_status(market, status, rng.random() < 0.9)
    elif action == "tick":
        h.tick(rng.randint(0, 6))
    elif action == "stale":
        h.stale(rng.randint(1, 3))
    else:
        h.snapshot_restore()


def test_replaying_a_long_random_run_gives_the_same_hash() -> None:
    """A seeded run of 3000 commands, checked as it goes, replays into a fresh engine to the same state hash."""
    rng = random.Random(20_240_611)
    seen: Counter[str] = Counter()
    h = Harness(note=lambda label: seen.update((label,)))
    refs = h.fund_all()
    steps = 3_000
    for step in range(steps):
        random_step(h, rng, refs, settle=step >= steps * 9 // 10)
        h.check_last_command()
        h.check_state()
    fresh = Engine.from_parsed(MANIFEST)
    assert fresh.replay([c.pack() for c in h.commands]) == len(h.commands)
    assert fresh.state_hash() == h.engine.state_hash()
    # the run exercised what it is meant to
    for label in (
        "event: Fill",
        "event: OrderExpired",
        "event: OrderAmended",
        "event: OrderCancelled",
        "fill: maker rebate",
        "rejected: INSUFFICIENT_BALANCE",
        "amend: below_filled of an open order",
    ):
        assert seen[label] > 0, (label, seen)
