"""The engine as a state machine: sequencing and the event envelope, timestamps, nonces, what the state hash
covers, typed rejections that change nothing, snapshot/restore, replay without clocks or randomness, and
batch submission.

The module-level helpers (`random_flow`, `snapshot_roundtrip`, the counting order-check plugin) do not
depend on pytest fixtures: the hash-seed test runs `snapshot_roundtrip` in fresh interpreters.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from exos import commands as C
from exos import events as E
from exos.commands import Actor, Command, CommandError
from exos.engine import Engine
from exos.hookspecs import hookimpl
from exos.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
SPOT_MANIFEST = REPO_ROOT / "examples" / "spot.toml"
BUY, SELL = 0, 1
GTC, GTD, IOC, FOK = 0, 1, 2, 3
P = 3_000_000
LOT = 10_000
BTC = "BTC-USDC"
ETH = "ETH-USDC"
START = 1_000
ADMIN = bytes.fromhex("11" * 20)

# ---------------------------------------------------------------- a stateful order-check plugin

PLUGIN_MODULE = "exos_test_stateful_check"
PLUGIN_TOML = f"""
[[plugins]]
name = "stateful-test"
module = "{PLUGIN_MODULE}"
"""


class CountingCheck:
    """An order check with state: it counts the orders it has checked (in snapshots and the state hash)."""

    api_version = 2
    name = "counting"

    def __init__(self) -> None:
        self.checked = 0

    def check(self, intent: Any) -> None:
        """Let every order through, counting it."""
        self.checked += 1

    def dump(self) -> bytes:
        """The counter as u64."""
        return struct.pack("<Q", self.checked)

    def load(self, data: bytes) -> None:
        """Restore the counter."""
        (self.checked,) = struct.unpack("<Q", data)

    def check_invariants(self) -> None:
        """The counter never goes below zero."""
        assert self.checked >= 0, f"counting: checked {self.checked} < 0"


def make_plugin_module() -> types.ModuleType:
    """A module registering one CountingCheck per engine (per plugin load)."""
    module = types.ModuleType(PLUGIN_MODULE)

    @hookimpl
    def exos_register_order_checks(register: Any) -> None:
        register(CountingCheck())

    module.exos_register_order_checks = exos_register_order_checks  # type: ignore[attr-defined]
    return module


def install_plugin() -> None:
    """Make the plugin module importable (for the subprocess runs)."""
    sys.modules.setdefault(PLUGIN_MODULE, make_plugin_module())


def spot_with_plugin_toml() -> str:
    """examples/spot.toml with the stateful test plugin enabled as well."""
    return SPOT_MANIFEST.read_text() + PLUGIN_TOML


def counting_check(engine: Engine) -> CountingCheck:
    """The engine's CountingCheck instance."""
    check = engine.plugins.order_checks["counting"]
    assert isinstance(check, CountingCheck)
    return check


# ---------------------------------------------------------------- command flows


def address(n: int) -> bytes:
    """The address of test account n (as conftest's `actor`)."""
    return b"\xa0" + n.to_bytes(19, "big")


SOL_ASSET = C.ListAsset(actor=Actor(ADMIN), timestamp=START, symbol="SOL", decimals=9)
SOL_MARKET = C.ListMarket(
    actor=Actor(ADMIN),
    timestamp=START,
    spec={"name": "SOL-USDC", "type": "spot", "base": "SOL", "quote": "USDC", "tick_size": "0.01",
          "lot_size": "0.1", "fees": {"maker_bps": "-0.5", "taker_bps": "3.33"}},
)  # fmt: skip
# name, mid price (ticks), price step, base asset, base units per lot
MARKETS = (("BTC-USDC", 3_000_000, 1_000, "BTC"), ("ETH-USDC", 300_000, 100, "ETH"))
SOL = (("SOL-USDC", 15_000, 10, "SOL"),)
FUNDING = {"USDC": 10**11, "BTC": 10**7, "ETH": 10**19, "SOL": 10**11}
CLIENT_IDS = [bytes([k]) * 16 for k in range(1, 5)]
STATUSES = ("cancel_only", "reduce_only", "halted")


def random_flow(
    seed: int, n: int, *, markets: tuple[Any, ...] = MARKETS, prefix: tuple[Command, ...] = ()
) -> list[Command]:
    """A seeded flow over 4 addresses x 2 sub-accounts: `prefix`, funding, then n mixed commands.

    It is generated against a shadow engine, so most cancels and amends name one of the actor's open orders;
    the rest, and some nonces, timestamps, signers and amounts, are wrong on purpose."""
    rng = random.Random(seed)
    shadow = Engine.from_manifest(SPOT_MANIFEST)
    out: list[Command] = []

    def emit(command: Command) -> None:
        shadow.submit(command)
        out.append(command)

    for command in prefix:
        emit(command)
    actors = [Actor(address(k), sub) for k in range(1, 5) for sub in (0, 1)]
    assets = sorted({"USDC"} | {m[3] for m in markets})
    now = START
    for who in actors:
        for asset in assets:
            emit(C.Deposit(actor=Actor(who.address, who.sub, ADMIN), timestamp=now, asset=asset,
                           amount=FUNDING[asset]))  # fmt: skip
    last_nonce: dict[bytes, int] = {}
    used: list[int] = []
    for _ in range(n):
        now += rng.choice((0, 0, 1, 2, 5, 20))
        ts = now - 7 if rng.random() < 0.03 else now
        who = rng.choice(actors)
        nonce = 0
        if rng.random() < 0.2:
            if used and rng.random() < 0.25:
                nonce = rng.choice(used)
            else:
                nonce = last_nonce.get(who.address, 0) + rng.randint(1, 3)
                last_nonce[who.address] = nonce
                used.append(nonce)
        name, mid, step, _ = rng.choice(markets)
        kw: dict[str, Any] = {"actor": who, "timestamp": ts, "nonce": nonce}
        own = shadow.open_orders(who.address, who.sub)
        target = None
        if own and rng.random() < 0.85:  # cancels and amends then name this order (and its market)
            name, target = rng.choice(own)
            _, mid, step, _ = next(m for m in markets if m[0] == name)
        order_id = target.order_id if target is not None else rng.randint(1, shadow.next_order_id)
        r = rng.random()
        closed = [m[0] for m in markets if shadow.market_state(m[0]).status != C.Status.OPEN]
        if closed and rng.random() < 0.15:  # markets reopen soon, so most orders meet an open market
            emit(C.SetMarketStatus(actor=Actor(ADMIN), timestamp=ts, market=closed[0], status="open"))
        elif r < 0.45:
            tif = rng.choice((GTC, GTC, GTC, GTC, GTD, GTD, IOC, IOC, FOK))
            side = rng.randint(0, 1)  # mostly passive prices: bids below the mid, asks above
            emit(C.PlaceOrder(
                **kw, market=name, side=side, price=mid + (2 * side - 1) * rng.randint(-2, 8) * step,
                size=rng.randint(1, 12), tif=tif, expiry=ts + rng.randint(1, 60) if tif == GTD else 0,
                post_only=tif in (GTC, GTD) and rng.random() < 0.1, stp=rng.choice((0, 0, 0, 1, 2)),
                client_id=rng.choice(CLIENT_IDS) if rng.random() < 0.3 else None,
            ))  # fmt: skip
        elif r < 0.50:
            emit(C.MarketOrder(**kw, market=name, side=rng.randint(0, 1),
                               price=mid + rng.choice((-1, 1)) * 20 * step, size=rng.randint(1, 20)))  # fmt: skip
        elif r < 0.58:
            emit(C.CancelOrder(**kw, market=name, order_id=order_id))
        elif r < 0.62:
            client_id = target.client_id if target is not None and target.client_id else rng.choice(CLIENT_IDS)
            emit(C.CancelByClientId(**kw, market=name, client_id=client_id))
        elif r < 0.64:
            emit(C.CancelAll(**kw, market=rng.choice((name, C.ALL_MARKETS))))
        elif r < 0.76:
            price = target.price if target is not None and rng.random() < 0.5 else mid + rng.randint(-8, 8) * step
            size = max(1, target.size + rng.randint(-3, 3)) if target is not None else rng.randint(1, 12)
            emit(C.AmendOrder(**kw, market=name, order_id=order_id, price=price, size=size))
        elif r < 0.81:
            signer = ADMIN if rng.random() < 0.9 else who.address
            emit(C.Deposit(actor=Actor(who.address, who.sub, signer), timestamp=ts, asset=rng.choice(assets),
                           amount=rng.randint(1, 10**9)))  # fmt: skip
        elif r < 0.86:
            emit(C.Withdraw(**kw, asset=rng.choice(assets), amount=rng.randint(1, 10**11)))
        elif r < 0.91:
            emit(C.Transfer(**kw, asset=rng.choice(assets), amount=rng.randint(1, 10**10), to_sub=1 - who.sub))
        elif r < 0.98:
            emit(C.Tick(actor=Actor(ADMIN), timestamp=ts))
        else:
            signer = ADMIN if rng.random() < 0.8 else who.address
            status = rng.choice(STATUSES) if shadow.market_state(name).status == C.Status.OPEN else "open"
            emit(C.SetMarketStatus(actor=Actor(signer), timestamp=ts, market=name, status=status))
    return out


def snapshot_flow() -> list[Command]:
    """List SOL and SOL-USDC, then a random flow over all three markets."""
    return random_flow(11, 500, markets=MARKETS + SOL, prefix=(SOL_ASSET, SOL_MARKET))


def digest(events: list[E.Event]) -> str:
    """A digest of events (their attrs reprs: kinds, every field, in order)."""
    return hashlib.sha256("\n".join(map(repr, events)).encode()).hexdigest()


def snapshot_roundtrip(manifest_path: str) -> str:
    """Run the snapshot flow, restore mid-way into a fresh engine, continue both; returns a one-line summary.

    Asserts on the way that the restored engine's hash and events equal the live engine's at every step."""
    manifest = Manifest.from_toml(manifest_path)
    commands = snapshot_flow()
    cut = len(commands) // 2
    live = Engine.from_parsed(manifest)
    for command in commands[:cut]:
        live.submit(command)
    snapshot = live.dump_state()
    restored = Engine.from_parsed(manifest)
    restored.load_state(snapshot)
    restored.seq = live.seq
    assert restored.state_hash() == live.state_hash()
    assert restored.dump_state() == snapshot
    restored.check_invariants()
    later: list[E.Event] = []
    for command in commands[cut:]:
        events = live.submit(command)
        assert restored.submit(command) == events, command
        assert restored.state_hash() == live.state_hash(), command
        later += events
    restored.check_invariants()
    checked = restored.plugins.order_checks["counting"].checked  # type: ignore[attr-defined]
    return f"{hashlib.sha256(snapshot).hexdigest()} {live.state_hash()} {digest(later)} {len(later)} {checked}"


HASHSEED_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("engine_state_tests", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.install_plugin()
print(module.snapshot_roundtrip(sys.argv[2]))
"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting plugin importable as PLUGIN_MODULE for this test only."""
    monkeypatch.setitem(sys.modules, PLUGIN_MODULE, make_plugin_module())


@pytest.fixture
def plugin_manifest(plugin_module: None, write_manifest: Any) -> Path:
    """examples/spot.toml plus the counting plugin, written to tmp_path."""
    return write_manifest(spot_with_plugin_toml())


@pytest.fixture
def funded(venue: Any) -> Any:
    """The spot venue with accounts 1 (USDC) and 2 (BTC) funded, an open buy and an open sell."""
    a, b = venue.actor(1), venue.actor(2)
    venue.fund(a, "USDC", 20_000_000)
    venue.fund(b, "BTC", 10 * LOT)
    venue.place(a, BUY, P - 1_000, 2, client_id=CLIENT_IDS[0])
    venue.place(b, SELL, P + 1_000, 3)
    return venue


# ---------------------------------------------------------------- tests


class TestEnvelope:
    def test_sequence_index_and_command_done(self, venue):
        """Each command gets the next global seq (rejected ones too); indices count from 0; CommandDone ends it."""
        a = venue.actor(1)
        groups = [
            venue.fund(a, "USDC", 10_000_000),
            venue.do(C.Withdraw, a, asset="USDC", amount=10**9),
            venue.place(a, BUY, P, 1),
        ]
        for seq, events in enumerate(groups, start=1):
            assert {e.seq for e in events} == {seq}
            assert [e.index for e in events] == list(range(len(events)))
            assert isinstance(events[-1], E.CommandDone)
            assert sum(isinstance(e, E.CommandDone) for e in events) == 1
        assert [g[-1].accepted for g in groups] == [True, False, True]
        assert venue.engine.seq == 3

    def test_market_data_events_carry_the_books_sequence(self, venue):
        """Book events carry the book's seq: consecutive from 1 across commands; a trade's two fills share one."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 50_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        events: list[E.Event] = []
        events += venue.place(b, SELL, P, 2)
        events += venue.place(b, SELL, P + 1, 2)
        events += venue.place(a, BUY, P + 1, 3)
        placed = venue.place(a, BUY, P - 5, 1)
        events += placed
        events += venue.amend(a, venue.order_id(placed), P - 5, 2)
        events += venue.cancel(a, venue.order_id(placed))
        market_data = [e for e in events if hasattr(e, "book_seq")]
        seqs = [e.book_seq for e in market_data]
        assert seqs == sorted(seqs)
        assert sorted(set(seqs)) == list(range(1, venue.engine.market_state(BTC).book.seq + 1))
        fills = [e for e in market_data if isinstance(e, E.Fill)]
        assert len(fills) == 4
        assert [f.book_seq for f in fills[0::2]] == [f.book_seq for f in fills[1::2]]
        assert {type(e) for e in market_data} == {E.OrderAccepted, E.BookDelta, E.Fill, E.OrderAmended,
                                                  E.OrderCancelled}  # fmt: skip

    def test_timestamp_regression_is_refused(self, venue):
        """A timestamp earlier than the last command's: TIMESTAMP_REGRESSION, state unchanged; equal is fine."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 10_000_000)
        before = venue.hash()
        venue.at(START - 1)
        events = venue.place(a, BUY, P, 1)
        assert [type(e) for e in events] == [E.Rejected, E.CommandDone]
        assert events[0].code == "TIMESTAMP_REGRESSION"
        assert venue.hash() == before
        assert venue.engine.last_timestamp == START
        venue.at(START)
        assert venue.accepted(venue.place(a, BUY, P, 1))


class TestNonces:
    def _deposit(self, venue, nonce: int, signer: bytes | None = None) -> list[E.Event]:
        who = venue.actor(1)
        actor = Actor(who.address, 0, signer or venue.admin)
        return venue.do(C.Deposit, actor, asset="USDC", amount=1, nonce=nonce)

    def test_reused_nonce_is_refused(self, venue):
        """A nonce the signer already used: NONCE, nothing changes."""
        assert venue.accepted(self._deposit(venue, 7))
        before = venue.hash()
        assert venue.rejection(self._deposit(venue, 7)) == "NONCE"
        assert venue.hash() == before
        assert venue.available(venue.actor(1), "USDC") == 1

    def test_nonce_zero_means_none(self, venue):
        """Nonce 0 is never recorded: any number of commands can carry it."""
        for _ in range(3):
            assert venue.accepted(self._deposit(venue, 0))
        assert venue.available(venue.actor(1), "USDC") == 3

    def test_window_of_the_last_hundred(self, venue):
        """Below the smallest of the last 100 nonces is refused; a gap above it is still usable, once."""
        for nonce in range(2, 202, 2):  # 100 nonces: 2, 4, ..., 200
            assert venue.accepted(self._deposit(venue, nonce))
        assert venue.rejection(self._deposit(venue, 1)) == "NONCE"
        assert venue.rejection(self._deposit(venue, 100)) == "NONCE"
        assert venue.accepted(self._deposit(venue, 3))  # unused and above the smallest kept (2): 2 drops out
        assert venue.rejection(self._deposit(venue, 2)) == "NONCE"
        assert venue.rejection(self._deposit(venue, 3)) == "NONCE"
        assert venue.accepted(self._deposit(venue, 5))
        assert venue.accepted(self._deposit(venue, 1_000))

    def test_lower_nonces_are_fine_until_a_hundred_are_kept(self, venue):
        """With fewer than 100 kept, any unused nonce is accepted, even a lower one."""
        assert venue.accepted(self._deposit(venue, 50))
        assert venue.accepted(self._deposit(venue, 10))

    def test_nonces_are_per_signer(self, venue):
        """Two signers may use the same nonce."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 100)
        venue.fund(b, "USDC", 100)
        assert venue.accepted(venue.do(C.Withdraw, a, asset="USDC", amount=1, nonce=9))
        assert venue.accepted(venue.do(C.Withdraw, b, asset="USDC", amount=1, nonce=9))
        assert venue.rejection(venue.do(C.Withdraw, a, asset="USDC", amount=1, nonce=9)) == "NONCE"


def _run(make: Any, steps: Any) -> Any:
    """A fresh Venue with `steps(venue)` applied."""
    venue = make()
    steps(venue)
    return venue


class TestStateHashCoverage:
    @pytest.fixture
    def fresh(self, engine, venue_for):
        """A factory of fresh venues over examples/spot.toml."""
        return lambda: venue_for(Engine.from_parsed(engine.manifest))

    def test_queue_order_within_a_level(self, fresh):
        """Same orders, sizes, counters and balances, but two orders swapped in a level's queue: different hash."""

        def flow(first_amended: int):
            def steps(v):
                x, y = v.actor(1), v.actor(2)
                v.fund(x, "USDC", 20_000_000)
                v.fund(y, "USDC", 20_000_000)
                v.place(x, BUY, P, 2)  # order 1
                v.place(y, BUY, P, 2)  # order 2
                owners = {1: x, 2: y}
                for order in (first_amended, 3 - first_amended):  # a size increase moves an order to the tail
                    v.amend(owners[order], order, P, 3)

            return steps

        one, two = _run(fresh, flow(1)), _run(fresh, flow(2))
        assert one.queue(BTC, BUY, P) == [1, 2]
        assert two.queue(BTC, BUY, P) == [2, 1]
        assert one.engine.market_state(BTC).book.seq == two.engine.market_state(BTC).book.seq
        assert one.hash() != two.hash()
        assert _run(fresh, flow(1)).hash() == one.hash()

    def test_client_order_id(self, fresh):
        """The same order with another client id (or none) gives another hash."""

        def flow(client_id):
            def steps(v):
                v.fund(v.actor(1), "USDC", 20_000_000)
                v.place(v.actor(1), BUY, P, 2, client_id=client_id)

            return steps

        hashes = [_run(fresh, flow(cid)).hash() for cid in (CLIENT_IDS[0], CLIENT_IDS[1], None, CLIENT_IDS[0])]
        assert len(set(hashes[:3])) == 3
        assert hashes[3] == hashes[0]

    def test_one_subaccount_balance(self, fresh):
        """One unit more in one sub-account, or the same total split differently among sub-accounts: new hash."""

        def flow(sub1_amount, moved):
            def steps(v):
                v.fund(v.actor(1, 0), "USDC", 1_000)
                v.fund(v.actor(1, 1), "USDC", sub1_amount)
                v.do(C.Transfer, v.actor(1, 0), asset="USDC", amount=moved, to_sub=1)

            return steps

        base = _run(fresh, flow(500, 10)).hash()
        assert _run(fresh, flow(501, 10)).hash() != base
        assert _run(fresh, flow(500, 11)).hash() != base
        assert _run(fresh, flow(500, 10)).hash() == base

    def test_nonce(self, fresh):
        """The same command with another nonce gives another hash."""

        def flow(nonce):
            def steps(v):
                v.fund(v.actor(1), "USDC", 1_000)
                v.do(C.Withdraw, v.actor(1), asset="USDC", amount=1, nonce=nonce)

            return steps

        hashes = [_run(fresh, flow(n)).hash() for n in (5, 6, 0, 5)]
        assert len(set(hashes[:3])) == 3
        assert hashes[3] == hashes[0]

    def test_timer(self, fresh):
        """A pending timer (a GTD order placed and cancelled leaves one) or its time changes the hash."""

        def flow(tif, expiry):
            def steps(v):
                v.fund(v.actor(1), "USDC", 20_000_000)
                order = v.order_id(v.place(v.actor(1), BUY, P, 2, tif=tif, expiry=expiry))
                v.cancel(v.actor(1), order)

            return steps

        gtd = _run(fresh, flow(GTD, START + 50))
        assert len(gtd.engine.timers) == 1
        assert gtd.engine.market_state(BTC).book.open_orders == 0
        assert _run(fresh, flow(GTC, 0)).hash() != gtd.hash()
        assert _run(fresh, flow(GTD, START + 51)).hash() != gtd.hash()
        assert _run(fresh, flow(GTD, START + 50)).hash() == gtd.hash()

    def test_plugin_state(self, plugin_manifest, venue_for):
        """A stateful order check's state is in the hash and the dump, and restores with it."""
        engines = [Engine.from_manifest(plugin_manifest) for _ in range(2)]
        venues = [venue_for(e) for e in engines]
        for v in venues:
            v.fund(v.actor(1), "USDC", 20_000_000)
            v.place(v.actor(1), BUY, P, 2)
            v.place(v.actor(1), BUY, P, 1)
        assert [counting_check(e).checked for e in engines] == [2, 2]
        assert engines[0].state_hash() == engines[1].state_hash()
        counting_check(engines[1]).checked += 1
        assert engines[0].state_hash() != engines[1].state_hash()
        restored = Engine.from_manifest(plugin_manifest)
        restored.load_state(engines[1].dump_state())
        assert counting_check(restored).checked == 3
        assert restored.state_hash() == engines[1].state_hash()

    def test_invariant_check_covers_plugin_state(self, plugin_manifest):
        """engine.check_invariants() also runs a stateful plugin's check_invariants (a corrupt counter fails)."""
        engine = Engine.from_manifest(plugin_manifest)
        engine.check_invariants()
        counting_check(engine).checked = -1
        with pytest.raises(AssertionError, match="counting"):
            engine.check_invariants()


BAD_INPUT: list[tuple[str, Any, str]] = [
    ("unknown market", lambda v: v.command(C.PlaceOrder, v.actor(1), market="DOGE-USDC", side=BUY, price=P, size=1),
     "UNKNOWN_MARKET"),
    ("zero size", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=P, size=0), "BAD_SIZE"),
    ("negative size", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=P, size=-3),
     "BAD_SIZE"),
    ("zero price", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=0, size=1), "BAD_PRICE"),
    ("bad side", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=2, price=P, size=1), "BAD_SIDE"),
    ("bad tif", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=P, size=1, tif=4),
     "BAD_TIF"),
    ("insufficient balance", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=P, size=7),
     "INSUFFICIENT_BALANCE"),
    ("account that holds nothing", lambda v: v.command(C.PlaceOrder, v.actor(7), market=BTC, side=BUY, price=P,
                                                        size=1), "INSUFFICIENT_BALANCE"),
    ("below min notional", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=10, size=1),
     "MIN_NOTIONAL"),
    ("price x size overflow", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=2**40,
                                                   size=2**30), "OVERFLOW"),
    ("duplicate client id", lambda v: v.command(C.PlaceOrder, v.actor(1), market=BTC, side=BUY, price=P - 2, size=1,
                                                 client_id=CLIENT_IDS[0]), "DUPLICATE_CLIENT_ID"),
    ("forbidden status: place", lambda v: v.command(C.PlaceOrder, v.actor(1), market=ETH, side=BUY, price=300_000,
                                                     size=1), "MARKET_STATUS"),
    ("forbidden status: cancel-all", lambda v: v.command(C.CancelAll, v.actor(1), market=ETH), "MARKET_STATUS"),
    ("unknown order id: cancel", lambda v: v.command(C.CancelOrder, v.actor(1), market=BTC, order_id=99),
     "UNKNOWN_ORDER"),
    ("unknown order id: amend", lambda v: v.command(C.AmendOrder, v.actor(1), market=BTC, order_id=99, price=P,
                                                     size=1), "UNKNOWN_ORDER"),
    ("foreign order id", lambda v: v.command(C.CancelOrder, v.actor(1), market=BTC, order_id=2), "UNKNOWN_ORDER"),
    ("unknown client id", lambda v: v.command(C.CancelByClientId, v.actor(1), market=BTC, client_id=CLIENT_IDS[3]),
     "UNKNOWN_ORDER"),
    ("amend: no change", lambda v: v.command(C.AmendOrder, v.actor(1), market=BTC, order_id=1, price=P - 1_000,
                                              size=2), "NO_CHANGE"),
    ("unknown asset: deposit", lambda v: v.command(C.Deposit, v.admin_actor(v.actor(1)), asset="DOGE", amount=5),
     "UNKNOWN_ASSET"),
    ("unknown asset: withdraw", lambda v: v.command(C.Withdraw, v.actor(1), asset="DOGE", amount=5), "UNKNOWN_ASSET"),
    ("withdraw more than available", lambda v: v.command(C.Withdraw, v.actor(1), asset="USDC",
                                                          amount=20_000_000 - 2 * (P - 1_000) + 1),
     "INSUFFICIENT_BALANCE"),
    ("withdraw zero", lambda v: v.command(C.Withdraw, v.actor(1), asset="USDC", amount=0), "BAD_AMOUNT"),
    ("non-admin deposit", lambda v: v.command(C.Deposit, v.actor(1), asset="USDC", amount=5), "NOT_ADMIN"),
    ("non-admin status", lambda v: v.command(C.SetMarketStatus, v.actor(1), market=BTC, status="halted"),
     "NOT_ADMIN"),
    ("non-admin listing", lambda v: v.command(C.ListAsset, v.actor(1), symbol="SOL", decimals=9), "NOT_ADMIN"),
    ("bad market listing", lambda v: v.command(C.ListMarket, v.admin_actor(), spec={"name": "X-Y"}), "BAD_LISTING"),
    ("reused nonce", lambda v: v.command(C.Withdraw, v.actor(1), asset="USDC", amount=1, nonce=42), "NONCE"),
    ("timestamp regression", lambda v: v.command(C.Tick, v.admin_actor(), timestamp=v.now - 1),
     "TIMESTAMP_REGRESSION"),
]  # fmt: skip


class TestBadInputChangesNothing:
    @pytest.fixture
    def prepared(self, funded):
        """`funded` plus a used nonce (42) for account 1 and ETH-USDC halted, all at one timestamp."""
        assert funded.accepted(funded.do(C.Withdraw, funded.actor(1), asset="USDC", amount=1, nonce=42))
        funded.fund(funded.actor(1), "USDC", 1)
        funded.set_status("halted", market=ETH)
        return funded

    @pytest.mark.parametrize(("case", "build", "code"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
    def test_typed_rejection_and_same_hash(self, prepared, case, build, code):
        """Bad input is refused with the rule's code and leaves the state hash unchanged."""
        before, seq = prepared.hash(), prepared.engine.seq
        events = prepared.submit(build(prepared))
        assert [type(e) for e in events] == [E.Rejected, E.CommandDone], case
        assert events[0].code == code
        assert events[0].message
        assert events[1].accepted is False
        assert prepared.hash() == before
        assert prepared.engine.seq == seq + 1

    @pytest.mark.parametrize(
        "fields",
        [{"size": 2**63}, {"size": 10**30}, {"price": 2**63}, {"size": -(2**63) - 1}],
        ids=["size 2**63", "size 10**30", "price 2**63", "size below i64"],
    )
    def test_unencodable_order_raises_command_error(self, prepared, fields):
        """A field that does not fit its record width raises CommandError at packing; the engine never sees it."""
        before, seq = prepared.hash(), prepared.engine.seq
        order = {"market": BTC, "side": BUY, "price": P, "size": 1, **fields}
        with pytest.raises(CommandError):
            prepared.engine.submit(prepared.command(C.PlaceOrder, prepared.actor(1), **order))
        assert prepared.hash() == before
        assert prepared.engine.seq == seq

    def test_unencodable_amount_raises_command_error(self, prepared):
        """A deposit of 2**127 does not fit i128: CommandError, nothing changes."""
        before, seq = prepared.hash(), prepared.engine.seq
        with pytest.raises(CommandError):
            prepared.engine.submit(prepared.command(C.Deposit, prepared.admin_actor(prepared.actor(1)), asset="USDC",
                                                    amount=2**127))  # fmt: skip
        assert (prepared.hash(), prepared.engine.seq) == (before, seq)

    @pytest.mark.parametrize("same_account", [True, False], ids=["one account", "two accounts"])
    def test_deposits_beyond_i128_are_refused(self, venue, same_account):
        """Deposits whose balance or asset total would leave i128 are refused, so the state stays hashable."""
        first, second = venue.actor(1), venue.actor(1 if same_account else 2)
        amount = 2**127 - 1 if same_account else 2**126
        venue.fund(first, "USDC", amount)
        before = venue.hash()
        events = venue.do(C.Deposit, venue.admin_actor(second), asset="USDC", amount=amount)
        try:
            after = venue.hash()
        except OverflowError as exc:
            after = f"state_hash() raised OverflowError: {exc}"
        assert after == before
        assert venue.rejection(events) is not None


class TestSnapshotRestore:
    def test_restore_continues_with_the_same_hash_and_events(self, plugin_manifest):
        """Snapshot mid-flow (runtime listing, GTD timers, nonces, plugin state), restore, continue: identical."""
        summary = snapshot_roundtrip(str(plugin_manifest))
        snapshot_hash, final_hash, _, count, checked = summary.split()
        assert int(count) > 500 and int(checked) > 100
        assert snapshot_hash != final_hash

    def test_restore_keeps_runtime_markets_and_pending_expiries(self, venue):
        """A restored engine knows a runtime-listed market and still expires a GTD order placed before the dump."""
        admin = venue.admin_actor()
        venue.do(C.ListAsset, admin, symbol="SOL", decimals=9)
        venue.do(C.ListMarket, admin, spec=SOL_MARKET.spec)
        b = venue.actor(2)
        venue.fund(b, "SOL", 10**9)
        order = venue.order_id(venue.place(b, SELL, 15_000, 4, market="SOL-USDC", tif=GTD, expiry=START + 10))
        restored = Engine.from_parsed(venue.engine.manifest)
        restored.load_state(venue.engine.dump_state())
        assert restored.state_hash() == venue.hash()
        tick = C.Tick(actor=admin, timestamp=START + 10)
        (expired,) = [e for e in restored.submit(tick) if isinstance(e, E.OrderExpired)]
        assert (expired.market, expired.order_id, expired.cause) == ("SOL-USDC", order, E.Cause.SYSTEM)
        assert restored.balances(b.address, 0)["SOL"] == (10**9, 0)
        restored.check_invariants()

    def test_same_output_under_three_hash_seeds(self, plugin_manifest):
        """The snapshot round trip prints the same hashes and event digest under PYTHONHASHSEED 0, 1 and 2."""
        outputs = []
        for seed in ("0", "1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            result = subprocess.run(
                [sys.executable, "-c", HASHSEED_SCRIPT, __file__, str(plugin_manifest)],
                env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
        assert outputs[0].strip()
        assert outputs == [outputs[0]] * 3
        assert outputs[0].strip() == snapshot_roundtrip(str(plugin_manifest))


class TestDeterminism:
    def test_replay_needs_no_clock_or_randomness(self, engine, monkeypatch):
        """Replaying a flow's records with clocks, random and urandom all raising gives the live run's hash."""
        commands = random_flow(3, 600)
        engine.submit_batch(commands)
        engine.check_invariants()
        records = [c.pack() for c in commands]
        fresh = Engine.from_parsed(engine.manifest)

        def forbidden(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the engine consulted a clock or a random source")

        with monkeypatch.context() as patch:
            for module, name in ((time, "time"), (time, "monotonic"), (time, "perf_counter"), (time, "time_ns"),
                                 (random, "random"), (random, "randrange"), (os, "urandom")):  # fmt: skip
                patch.setattr(module, name, forbidden)
            with pytest.raises(AssertionError):
                time.time()
            assert fresh.replay(records) == len(records)
        assert fresh.state_hash() == engine.state_hash()
        fresh.check_invariants()


class TestBatch:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_batch_equals_one_by_one(self, engine, seed):
        """submit_batch gives exactly the decoded events and state of submitting the commands one by one."""
        commands = random_flow(seed, 700)
        single = Engine.from_parsed(engine.manifest)
        one_by_one: list[E.Event] = []
        for command in commands:
            one_by_one += single.submit(command)
            single.check_invariants()
        batched = E.decode_all(engine.submit_batch(commands))
        assert batched == one_by_one
        assert engine.state_hash() == single.state_hash()
        assert engine.seq == single.seq == len(commands)
        # the flow is worth comparing: it trades, expires, rejects and refuses nonces
        kinds = {type(e) for e in one_by_one}
        assert {E.Fill, E.OrderExpired, E.OrderAmended, E.Rejected, E.Transferred} <= kinds
        codes = {e.code for e in one_by_one if isinstance(e, E.Rejected)}
        assert {"NONCE", "TIMESTAMP_REGRESSION", "UNKNOWN_ORDER"} <= codes

    def test_batch_of_records_and_of_chunks(self, engine):
        """A batch given as concatenated records, or split into uneven batches, ends in the same state and events."""
        commands = random_flow(4, 400)
        whole = E.decode_all(engine.submit_batch(b"".join(c.pack() for c in commands)))
        chunked = Engine.from_parsed(engine.manifest)
        events: list[E.Event] = []
        rng = random.Random(5)
        start = 0
        while start < len(commands):
            stop = start + rng.randint(1, 50)
            events += E.decode_all(chunked.submit_batch(commands[start:stop]))
            start = stop
        assert events == whole
        assert chunked.state_hash() == engine.state_hash()
