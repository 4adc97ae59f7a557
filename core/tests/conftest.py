"""Fixtures shared by the core tests: engines built from manifests, actors, funding and a command driver.

The test modules run under `--import-mode=importlib`, so they cannot import this file: everything here
reaches them through fixtures. `venue` (a `Venue` over the example spot manifest) is the usual entry
point; `make_venue(toml_text)` builds one over a manifest written to `tmp_path` and `venue_for(engine)` over an
engine the test built; `engine`, `actor` and `fund` are the bare pieces for tests that drive an engine
themselves.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exos import commands as C
from exos import events as E
from exos.commands import Actor, Command
from exos.engine import Engine
from exos.testing import EventReader

REPO_ROOT = Path(__file__).resolve().parents[2]
SPOT_MANIFEST = REPO_ROOT / "examples" / "spot.toml"
BUY, SELL = 0, 1
GTC, GTD, IOC, FOK = 0, 1, 2, 3
START_TIME = 1_000

# A small venue in round numbers: 1 lot = 1 base unit, 1 tick on 1 lot = 1 quote unit, no minimum notional.
# Fees: maker 3 bps, taker 7.77 bps (ROUND), a 1 bp rebate and 5 bps taker (REBATE).
UNIT_VENUE = """
[venue]
name = "unit venue"
admins = ["0x1111111111111111111111111111111111111111"]
fee_account = "0xfee0000000000000000000000000000000000fee"

[[plugins]]
name = "spot"
{plugins}
[[assets]]
symbol = "QUO"
decimals = 0

[[assets]]
symbol = "BAS"
decimals = 0

[[markets]]
name = "ROUND"
type = "spot"
base = "BAS"
quote = "QUO"
tick_size = "1"
lot_size = "1"

[markets.fees]
maker_bps = "3"
taker_bps = "7.77"

[[markets]]
name = "REBATE"
type = "spot"
base = "BAS"
quote = "QUO"
tick_size = "1"
lot_size = "1"

[markets.fees]
maker_bps = "-1"
taker_bps = "5"
"""


def address(n: int) -> bytes:
    """A distinct 20-byte test address (never an admin's or the fee account's)."""
    return b"\xa0" + n.to_bytes(19, "big")


def make_actor(n: int, sub: int = 0) -> Actor:
    """Test account `n`, sub-account `sub`, signing for itself."""
    return Actor(address(n), sub)


def fund(engine: Engine, who: Actor, asset: str, amount: int) -> list[E.Event]:
    """Deposit (admin-signed) `amount` of `asset` into `who`'s account, at the engine's current time."""
    admin = engine.manifest.venue.admins[0]
    timestamp = max(engine.last_timestamp, 0)
    events = engine.submit(
        C.Deposit(actor=Actor(who.address, who.sub, signer=admin), timestamp=timestamp, asset=asset, amount=amount)
    )
    assert isinstance(events[-1], E.CommandDone) and events[-1].accepted, events
    return events


def unit_venue_toml(plugins: str = "") -> str:
    """The UNIT_VENUE manifest, with extra `[[plugins]]` tables."""
    return textwrap.dedent(UNIT_VENUE).format(plugins=plugins)


class Venue(EventReader):
    """Drives one engine: commands at the venue's clock, invariants checked after every command.

    The clock only moves when a test calls `advance`/`at`, so a rejected command at the same time as
    the previous one changes nothing at all (no timer can fire, the last timestamp stays)."""

    BUY, SELL = BUY, SELL
    GTC, GTD, IOC, FOK = GTC, GTD, IOC, FOK

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = START_TIME
        self.commands: list[Command] = []

    # ------------------------------------------------------------ identities and time

    @property
    def admin(self) -> bytes:
        """The first admin address of the venue."""
        return self.engine.manifest.venue.admins[0]

    @property
    def fee_address(self) -> bytes:
        """The address that receives fees."""
        return self.engine.manifest.venue.fee_account

    def actor(self, n: int, sub: int = 0) -> Actor:
        """Test account `n`, sub-account `sub`."""
        return make_actor(n, sub)

    def admin_actor(self, who: Actor | None = None) -> Actor:
        """`who` (default: the admin's own account) with the admin as signer."""
        if who is None:
            return Actor(self.admin, 0)
        return Actor(who.address, who.sub, signer=self.admin)

    def advance(self, dt: int = 1) -> int:
        """Move the clock forward; returns the new time."""
        self.now += dt
        return self.now

    def at(self, timestamp: int) -> None:
        """Set the clock (tests may set it backwards to provoke a timestamp regression)."""
        self.now = timestamp

    # ------------------------------------------------------------ commands

    def command(self, cls: type[Command], who: Actor, **fields: Any) -> Command:
        """A command of `cls` for `who` at the current time."""
        fields.setdefault("timestamp", self.now)
        return cls(actor=who, **fields)

    def submit(self, command: Command, *, check: bool = True) -> list[E.Event]:
        """Submit one command; check the engine's invariants afterwards."""
        events = self.engine.submit(command)
        self.commands.append(command)
        if check:
            self.engine.check_invariants()
        return events

    def do(self, cls: type[Command], who: Actor, **fields: Any) -> list[E.Event]:
        """Build and submit a command of `cls` for `who` at the current time."""
        return self.submit(self.command(cls, who, **fields))

    def fund(self, who: Actor, asset: str, amount: int) -> list[E.Event]:
        """An admin-signed deposit into `who`'s account (asserted accepted)."""
        events = self.do(C.Deposit, self.admin_actor(who), asset=asset, amount=amount)
        assert self.accepted(events), events
        return events

    def place(
        self, who: Actor, side: int, price: int, size: int, market: str = "BTC-USDC", **fields: Any
    ) -> list[E.Event]:
        """Place a limit order (GTC unless `tif` says otherwise)."""
        return self.do(C.PlaceOrder, who, market=market, side=side, price=price, size=size, **fields)

    def cancel(self, who: Actor, order_id: int, market: str = "BTC-USDC") -> list[E.Event]:
        """Cancel an order by id."""
        return self.do(C.CancelOrder, who, market=market, order_id=order_id)

    def amend(self, who: Actor, order_id: int, price: int, size: int, market: str = "BTC-USDC") -> list[E.Event]:
        """Amend an order's price and total size."""
        return self.do(C.AmendOrder, who, market=market, order_id=order_id, price=price, size=size)

    def set_status(self, status: str, market: str = "BTC-USDC", who: Actor | None = None) -> list[E.Event]:
        """SetMarketStatus, admin-signed unless `who` is given."""
        return self.do(C.SetMarketStatus, who or self.admin_actor(), market=market, status=status)

    def tick(self) -> list[E.Event]:
        """A Tick at the current time (fires due timers)."""
        return self.do(C.Tick, self.admin_actor())

    # ------------------------------------------------------------ reading state and events

    def balance(self, who: Actor | bytes, asset: str) -> tuple[int, int]:
        """(available, locked) of `asset` for an actor (or an address, sub-account 0)."""
        if isinstance(who, bytes):
            return self.engine.balances(who, 0)[asset]
        return self.engine.balances(who.address, who.sub)[asset]

    def available(self, who: Actor | bytes, asset: str) -> int:
        """Available balance."""
        return self.balance(who, asset)[0]

    def locked(self, who: Actor | bytes, asset: str) -> int:
        """Locked balance."""
        return self.balance(who, asset)[1]

    def fees(self, asset: str) -> int:
        """The fee account's available balance of `asset` (negative after rebates)."""
        return self.available(self.fee_address, asset)

    def hash(self) -> str:
        """The engine's state hash."""
        return self.engine.state_hash()

    def order(self, order_id: int, market: str = "BTC-USDC") -> Any:
        """An open order's state, or None."""
        return self.engine.order(market, order_id)

    def queue(self, market: str, side: int, price: int) -> list[int]:
        """Order ids resting at one price level, head of the queue first."""
        book = self.engine.market_state(market).book
        return [o.order_id for o in book.orders() if o.side == side and o.price == price]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def engine() -> Engine:
    """A fresh engine over examples/spot.toml (BTC-USDC and ETH-USDC)."""
    return Engine.from_manifest(SPOT_MANIFEST)


@pytest.fixture
def venue(engine: Engine) -> Venue:
    """A driver over the `engine` fixture."""
    return Venue(engine)


@pytest.fixture
def venue_for() -> Callable[[Engine], Venue]:
    """`venue_for(engine)`: a Venue driving an engine the test built itself."""
    return Venue


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[[str], Path]:
    """Write manifest TOML text to a file under tmp_path; returns its path."""
    count = 0

    def write(text: str) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"venue{count}.toml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def make_venue(write_manifest: Callable[[str], Path]) -> Callable[[str], Venue]:
    """Build a Venue over manifest TOML text (default: the UNIT_VENUE manifest)."""

    def make(text: str | None = None) -> Venue:
        return Venue(Engine.from_manifest(write_manifest(text if text is not None else unit_venue_toml())))

    return make


@pytest.fixture
def unit_venue(make_venue: Callable[[str], Venue]) -> Venue:
    """A Venue over UNIT_VENUE (markets ROUND and REBATE, 1 lot = 1 BAS, 1 tick-lot = 1 QUO)."""
    return make_venue(unit_venue_toml())


@pytest.fixture
def actor() -> Callable[..., Actor]:
    """`actor(n, sub=0)`: test account n."""
    return make_actor


@pytest.fixture(name="fund")
def fund_fixture() -> Callable[[Engine, Actor, str, int], list[E.Event]]:
    """`fund(engine, actor, asset, amount)`: an admin-signed deposit."""
    return fund
