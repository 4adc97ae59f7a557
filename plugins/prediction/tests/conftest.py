"""Helpers for the prediction plugin's tests: manifests written to a directory and a Venue driving one engine.

The tests run under `--import-mode=importlib` and cannot import this file: they reach it through fixtures.
`pm` (session scope, so hypothesis tests may use it) is this module itself; `make_venue(markets, ...)`
builds a `Venue` over a manifest written to `tmp_path`. `market(...)` builds one `[[markets]]` table.

Units of the default market (USDC with 6 decimals, tick 0.01, lot 1): n = 100 ticks per unit, one lot is
1_000_000 units of a share and one tick on one lot is 10_000 USDC units.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exos import commands as C
from exos import events as E
from exos.commands import Actor, Command
from exos.engine import Engine
from exos.manifest import Manifest
from exos.testing import EventReader

ADMIN = bytes.fromhex("11" * 20)
FEE_ADDRESS = bytes.fromhex("fee0000000000000000000000000000000000fee")
COMMITTEE = tuple(bytes.fromhex(f"{n:02x}" * 20) for n in (0x31, 0x32, 0x33))  # never an admin
USDC = "USDC"
YES, NO = 0, 1
BUY, SELL = 0, 1
GTC, GTD, IOC, FOK = 0, 1, 2, 3
NORMAL, MINT, MERGE = 0, 1, 2
START = 1_000
SCALE = 1_000_000  # centi-basis-points per unit


def address(n: int) -> bytes:
    """A distinct 20-byte trader address (never an admin's, a committee member's or the fee account's)."""
    return b"\xa0" + n.to_bytes(19, "big")


def trader(n: int, sub: int = 0) -> Actor:
    """Trader `n`, sub-account `sub`, signing for itself."""
    return Actor(address(n), sub)


def hex_address(raw: bytes) -> str:
    """The manifest form of an address."""
    return "0x" + raw.hex()


def system_address(label: str) -> bytes:
    """A venue-owned account's address, derived from its label as the core documents it (sha256, first 20 bytes)."""
    return hashlib.sha256(b"exos/system/" + label.encode()).digest()[:20]


def vault_address(event: str) -> bytes:
    """The address of an outcome event's vault."""
    return system_address(f"prediction/vault/{event}")


def escrow_address(event: str) -> bytes:
    """The address of an outcome event's bond escrow."""
    return system_address(f"prediction/escrow/{event}")


# ---------------------------------------------------------------- manifests


def market(
    name: str,
    *,
    tick: str = "0.01",
    lot: str = "1",
    fee_model: str = "probability",
    maker_bps: str = "0",
    taker_bps: str = "0",
    **params: Any,
) -> dict[str, Any]:
    """One `[[markets]]` table of type prediction over USDC; keyword arguments become its params."""
    params.setdefault("committee", [hex_address(m) for m in COMMITTEE])
    params.setdefault("quorum", 2)
    return {
        "name": name, "type": "prediction", "base": USDC, "quote": USDC, "tick_size": tick, "lot_size": lot,
        "fee_model": fee_model, "fees": {"maker_bps": maker_bps, "taker_bps": taker_bps}, "params": params,
    }  # fmt: skip


def _toml_value(value: Any) -> str:
    """A scalar or array as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_table(header: str, table: Mapping[str, Any]) -> list[str]:
    """A table's scalar keys under `header`, then its sub-tables."""
    lines = [header]
    nested = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in nested:
        lines += _toml_table(f"[{header.strip('[]')}.{key}]", value)
    return lines


def manifest_toml(markets: Sequence[Mapping[str, Any]], *, spot: bool = False, decimals: int = 6) -> str:
    """A venue (one admin, the fee account) with the prediction plugin (and spot for "flat"), USDC and `markets`."""
    lines = ["[venue]", 'name = "prediction tests"', f'admins = ["{hex_address(ADMIN)}"]',
             f'fee_account = "{hex_address(FEE_ADDRESS)}"', "", "[[plugins]]", 'name = "prediction"', ""]  # fmt: skip
    if spot:
        lines += ["[[plugins]]", 'name = "spot"', ""]
    lines += ["[[assets]]", f'symbol = "{USDC}"', f"decimals = {decimals}", ""]
    for table in markets:
        lines += [*_toml_table("[[markets]]", table), ""]
    return "\n".join(lines)


def write_manifest(directory: Path, markets: Sequence[Mapping[str, Any]], **options: Any) -> Path:
    """Write `manifest_toml(markets, **options)` to a new file in `directory`; returns its path."""
    count = len(list(directory.glob("venue*.toml")))
    path = directory / f"venue{count}.toml"
    path.write_text(manifest_toml(markets, **options))
    return path


def parsed_manifest(directory: Path, markets: Sequence[Mapping[str, Any]], **options: Any) -> Manifest:
    """A manifest written to `directory` and parsed (build engines from it with `Engine.from_parsed`)."""
    return Manifest.from_toml(write_manifest(directory, markets, **options))


# ---------------------------------------------------------------- arithmetic the tests compute independently


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up (b > 0)."""
    return -(-a // b)


def fee_total(weight: int, rate: int, denominator: int) -> int:
    """`rate` (centi-bps) of `weight / denominator`: a fee (rate >= 0) rounds up, a rebate (rate < 0) toward zero."""
    if rate >= 0:
        return ceil_div(weight * rate, SCALE * denominator)
    return -(weight * -rate // (SCALE * denominator))


# ---------------------------------------------------------------- the venue driver


class Venue(EventReader):
    """Drives one engine: each command a millisecond after the last (unless told otherwise), invariants after."""

    def __init__(self, engine: Engine) -> None:
        """A driver at START over a fresh engine."""
        self.engine = engine
        self.now = START
        self.commands: list[Command] = []

    @classmethod
    def build(cls, directory: Path, markets: Sequence[Mapping[str, Any]], **options: Any) -> Venue:
        """A venue over a manifest written to `directory`."""
        return cls(Engine.from_manifest(write_manifest(directory, markets, **options)))

    # ------------------------------------------------------------ commands

    def submit(self, command: Command, *, check: bool = True) -> list[E.Event]:
        """Submit one command; check the engine's invariants afterwards."""
        events = self.engine.submit(command)
        self.commands.append(command)
        if check:
            self.engine.check_invariants()
        return events

    def do(self, cls: type[Command], who: Actor, *, same_time: bool = False, **fields: Any) -> list[E.Event]:
        """Build and submit a command, one ms after the last (or at the same time: a rejection then changes nothing)."""
        if not same_time:
            self.now += 1
        return self.submit(cls(actor=who, timestamp=self.now, **fields))

    def deposit(self, who: Actor, amount: int, asset: str = USDC) -> list[E.Event]:
        """An admin-signed deposit (asserted accepted)."""
        events = self.do(C.Deposit, Actor(who.address, who.sub, ADMIN), asset=asset, amount=amount)
        assert self.accepted(events), events
        return events

    def place(
        self, who: Actor, market: str, side: int, price: int, size: int, outcome: int = YES, **fields: Any
    ) -> list[E.Event]:
        """An order in its own token's terms (GTC unless `tif` says otherwise)."""
        return self.do(C.PlaceOrder, who, market=market, side=side, price=price, size=size, outcome=outcome, **fields)

    def cancel(self, who: Actor, market: str, order_id: int) -> list[E.Event]:
        """Cancel an order by id."""
        return self.do(C.CancelOrder, who, market=market, order_id=order_id)

    def action(self, who: Actor, market: str, action: str, *, same_time: bool = False, **args: Any) -> list[E.Event]:
        """A MarketAction with `args`."""
        return self.do(C.MarketAction, who, same_time=same_time, market=market, action=action, args=args)

    def admin(self, market: str, action: str, **args: Any) -> list[E.Event]:
        """An admin action signed by the venue's admin."""
        return self.action(Actor(ADMIN), market, action, **args)

    def vote(self, member: int, market: str, outcome: str) -> list[E.Event]:
        """Committee member `member` (an index into COMMITTEE) votes."""
        return self.action(Actor(COMMITTEE[member]), market, "vote", outcome=outcome)

    def tick(self, at: int | None = None) -> list[E.Event]:
        """A Tick at `at` (default: one ms later): due timers fire."""
        self.now = self.now + 1 if at is None else at
        return self.submit(C.Tick(actor=Actor(ADMIN), timestamp=self.now))

    # ------------------------------------------------------------ reading state

    def balance(self, who: Actor | bytes, asset: str = USDC) -> tuple[int, int]:
        """(available, locked) of an actor (or an address, sub-account 0)."""
        if isinstance(who, bytes):
            return self.engine.balances(who, 0)[asset]
        return self.engine.balances(who.address, who.sub)[asset]

    def total(self, who: Actor | bytes, asset: str = USDC) -> int:
        """Available plus locked."""
        return sum(self.balance(who, asset))

    def fees(self) -> int:
        """The fee account's USDC."""
        return self.total(FEE_ADDRESS)

    def vault(self, event: str) -> int:
        """An event vault's USDC."""
        return self.total(vault_address(event))

    def escrow(self, event: str) -> int:
        """An event's bond escrow (USDC)."""
        return self.total(escrow_address(event))

    def supply(self, asset: str) -> int:
        """Σ over every account of available + locked (what exists of an asset on the venue)."""
        ledger = self.engine.ledger
        index = ledger.asset_ids[asset]
        return sum(ledger.available[index]) + sum(ledger.locked[index])

    def hash(self) -> str:
        """The engine's state hash."""
        return self.engine.state_hash()

    def status(self, market: str) -> str:
        """A market's engine status name."""
        return C.Status(self.engine.market_state(market).status).name.lower()

    # ------------------------------------------------------------ reading events

    @staticmethod
    def market_events(events: list[E.Event], name: str) -> list[E.MarketEvent]:
        """The plugin's MarketEvents of one name."""
        return [e for e in events if isinstance(e, E.MarketEvent) and e.name == name]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pm() -> ModuleType:
    """This module: the helpers, for tests (hypothesis ones too) that cannot import it."""
    return sys.modules[__name__]


@pytest.fixture
def make_venue(tmp_path: Path) -> Callable[..., Venue]:
    """`make_venue(markets, spot=False, decimals=6)`: a Venue over a manifest written to tmp_path."""

    def make(markets: Sequence[Mapping[str, Any]], **options: Any) -> Venue:
        return Venue.build(tmp_path, markets, **options)

    return make
