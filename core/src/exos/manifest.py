"""The venue manifest (``venue.toml``): what a builder writes, parsed once into frozen records.

Human decimals live only here and at the other edges (API, CLI): sizes, prices and fees are read
as TOML strings (``"0.01"``) or integers, never floats, with ``decimal.Decimal`` and exact
``fractions.Fraction`` arithmetic, and turned into the integers the engine keeps (lots, ticks,
smallest units of an asset, hundredths of a basis point). Every rule broken raises
:class:`ManifestError` with a message of the form
``<file>: <table path>.<key>: <rule>, got <value>``, e.g.
``venue.toml: markets[2].tick_size: must be > 0, got "0"``.

The parser checks the file on its own. Whether a market ``type`` or ``fee_model`` is registered
by an enabled plugin is the engine's check, once the plugins are loaded.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import re
import tomllib
import types
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, NoReturn

import attrs

from exos.errors import ExosError
from exos.types import DEFAULT_MAX_LEVELS, DEFAULT_MAX_ORDERS, I64_MAX, MAX_CAP

__all__ = [
    "MARKET_STATUSES",
    "AssetSpec",
    "FeeSpec",
    "Manifest",
    "ManifestError",
    "MarketSpec",
    "PluginSpec",
    "VenueSpec",
]

MARKET_STATUSES: Final = ("open", "cancel_only", "reduce_only", "halted")
MAX_ASSET_DECIMALS: Final = 30
MAX_FEE_BPS: Final = 1000
MAX_DECIMAL_DIGITS: Final = 40  # digits in a decimal string; keeps every product small and exact
I128_MAX: Final = 2**127 - 1

_ASSET_SYMBOL = re.compile(r"[A-Z0-9_-]{1,16}", re.ASCII)
ASSET_SYMBOL = _ASSET_SYMBOL  # runtime listings follow the manifest's rule
_MARKET_NAME = re.compile(r"[A-Za-z0-9_/.-]{1,32}", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)  # plugin, market type and fee model names
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)

_FLOAT_RULE: Final = 'must be a decimal string such as "0.01" or an integer, not a float: binary floats are inexact'
_DECIMAL_RULE: Final = 'must be a decimal string such as "0.01" or an integer'
_SHOW_MAX: Final = 80


class ManifestError(ExosError):
    """The manifest cannot be read, is not TOML, or breaks a rule; the message names file, key, rule and value."""

    code = "MANIFEST"

    def __init__(self, message: str, *, source: str = "", location: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.location = location


# --- records --------------------------------------------------------------------------------------------------------


@attrs.frozen
class VenueSpec:
    """The ``[venue]`` table: who administers the venue and where fees and the journal go."""

    name: str
    admins: tuple[bytes, ...]  # 20-byte addresses; admin commands must be signed by one of them
    fee_account: bytes  # 20-byte address of the account that receives fees
    journal: Path | None  # resolved against the manifest's directory
    # signed-nonce window (ms): a nonce must lie in (timestamp - past, timestamp + future); None: no window
    nonce_window: tuple[int, int] | None = None
    compliance: tuple[str, ...] = ()  # compliance policies checked venue-wide (deposits, withdrawals, every order)
    chain_id: int = 1337  # the EIP-712 signing domain: the venue's name, version "1", this chain id, and
    verifying_contract: bytes = bytes(20)  # this verifying address
    faucet: Mapping[str, Decimal] = attrs.field(factory=dict, hash=False)  # `exos serve` hands these out (demos)
    history: str | None = None  # the history store: a `postgresql://` DSN (default: SQLite beside the journal)


@attrs.frozen
class PluginSpec:
    """One ``[[plugins]]`` entry: an entry point name in group ``exos``, or a module loaded instead."""

    name: str
    module: str | None


@attrs.frozen
class AssetSpec:
    """One ``[[assets]]`` entry: amounts of it are integers in units of ``10**-decimals``."""

    symbol: str
    decimals: int

    @property
    def unit(self) -> int:
        """Smallest units in one whole unit of the asset (``10**decimals``)."""
        return int(10**self.decimals)  # int ** int is typed as Any


@attrs.frozen
class FeeSpec:
    """A market's ``[markets.fees]`` table, as decimals and as exact hundredths of a basis point."""

    maker_bps: Decimal  # negative is a rebate
    taker_bps: Decimal
    maker_centibps: int
    taker_centibps: int


@attrs.frozen
class MarketSpec:
    """One ``[[markets]]`` entry, with the integers the engine trades in derived at parse time."""

    name: str
    type: str
    base: str
    quote: str
    tick_size: Decimal  # quote per one unit of base
    lot_size: Decimal  # base per lot
    min_size: Decimal
    min_notional: Decimal  # in quote
    fee_model: str
    fees: FeeSpec
    max_orders: int
    max_levels: int
    status: str
    params: Mapping[str, Any] = attrs.field(hash=False)  # read-only, nested tables and arrays frozen too
    lot_units: int  # base smallest units per lot
    quote_per_tick_lot: int  # quote smallest units per one tick on one lot
    min_lots: int  # min_size in lots
    min_notional_units: int  # min_notional in quote smallest units
    compliance: tuple[str, ...] = ()  # policies this market adds to the venue's for its orders

    def price_to_ticks(self, price: Decimal) -> int:
        """The price in ticks; ValueError if it is not finite or not a multiple of ``tick_size``."""
        return _to_steps(price, self.tick_size, "price", "tick_size")

    def ticks_to_price(self, ticks: int) -> Decimal:
        """The price of ``ticks`` ticks, exactly, with ``tick_size``'s decimal places."""
        return _exact_mul(Decimal(ticks), self.tick_size)

    def size_to_lots(self, size: Decimal) -> int:
        """The size in lots; ValueError if it is not finite or not a multiple of ``lot_size``."""
        return _to_steps(size, self.lot_size, "size", "lot_size")

    def lots_to_size(self, lots: int) -> Decimal:
        """The size of ``lots`` lots in base, exactly, with ``lot_size``'s decimal places."""
        return _exact_mul(Decimal(lots), self.lot_size)


@attrs.frozen
class SimulationSpec:
    """`[simulation]`: which registered simulation `exos simulate` runs, and its params."""

    driver: str
    params: Mapping[str, Any]


@attrs.frozen
class OracleSpec:
    """One ``[[oracles]]`` entry: a price feed by name, the registered oracle kind that computes it, its params.

    A feed's prices are integers: ``decimals`` says how many of their digits are decimals (a price of
    6_500_012 with ``decimals = 2`` is 65,000.12 quote per whole unit of base)."""

    name: str
    kind: str
    params: Mapping[str, Any]
    decimals: int = 0


@attrs.frozen
class GroupSpec:
    """One ``[[margin.groups]]`` entry: a risk group, named by its settlement asset."""

    asset: str
    backstop_cap: Decimal = Decimal(0)  # most notional (in the asset) the group's backstop may hold; 0: none
    dust_account: bytes | None = None  # where funding rounding dust goes (default: the venue's fee account)


@attrs.frozen
class CollateralSpec:
    """One ``[[margin.collateral]]`` entry: an asset that backs a risk group's margin at its oracle price."""

    asset: str
    group: str
    oracle: str
    haircut_bps: int
    stable_ema_ms: int = 3_600_000
    stable_bps_per_hour: int = 600


@attrs.frozen
class MarginSpec:
    """The ``[margin]`` table: unified margin's venue-wide rules, risk groups and collateral."""

    withdraw_floor_bps: int = 1000  # a withdrawal leaves at least this share of open notional (10%)
    upnl_withdraw_bps: int = 0  # the share of positive unrealised PnL that counts toward withdrawals
    groups: tuple[GroupSpec, ...] = ()
    collateral: tuple[CollateralSpec, ...] = ()


@attrs.frozen
class Manifest:
    """A parsed venue manifest; ``raw`` and ``sha256`` are the exact file bytes the journal pins."""

    source: str
    raw: bytes = attrs.field(repr=False)
    sha256: bytes = attrs.field(repr=False)
    venue: VenueSpec
    plugins: tuple[PluginSpec, ...]
    assets: tuple[AssetSpec, ...]
    markets: tuple[MarketSpec, ...]
    directory: Path
    simulation: SimulationSpec | None = None
    oracles: tuple[OracleSpec, ...] = ()
    margin: MarginSpec = attrs.field(factory=MarginSpec)

    @classmethod
    def from_toml(cls, path: str | Path) -> Manifest:
        """Read and parse the manifest file at ``path``; relative paths in it resolve against its directory."""
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ManifestError(f"{source}: cannot read the manifest: {exc.strerror or exc}", source=source) from exc
        return cls.from_bytes(raw, source=source, directory=Path(path).absolute().parent)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<manifest>", directory: str | Path | None = None) -> Manifest:
        """Parse manifest bytes; ``source`` names them in errors, ``directory`` (default: the cwd) anchors paths."""
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{source}: not UTF-8 text: {exc}", source=source) from exc
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{source}: invalid TOML: {exc}", source=source) from exc
        base_dir = Path.cwd() if directory is None else Path(directory).absolute()
        return _Parser(source, base_dir).manifest(raw, document)

    def asset(self, symbol: str) -> AssetSpec:
        """The listed asset ``symbol``; KeyError if there is none."""
        for asset in self.assets:
            if asset.symbol == symbol:
                return asset
        raise KeyError(symbol)

    def market(self, name: str) -> MarketSpec:
        """The listed market ``name``; KeyError if there is none."""
        for market in self.markets:
            if market.name == name:
                return market
        raise KeyError(name)


# --- exact decimal helpers ------------------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """A decimal in positional notation (``0.0000001``, never ``1E-7``)."""
    return format(value, "f")


def _exact_mul(a: Decimal, b: Decimal) -> Decimal:
    """``a * b`` with no rounding, whatever the ambient decimal context."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
    with decimal.localcontext(decimal.Context(prec=digits, traps=[decimal.Inexact, decimal.InvalidOperation])):
        return a * b


def _to_steps(value: Decimal, step: Decimal, what: str, step_name: str) -> int:
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{step_name}: {what} {value} is not finite")
    steps = Fraction(value) / Fraction(step)
    if steps.denominator != 1:
        raise ValueError(f"{step_name}: {what} {_plain(Decimal(value))} is not a multiple of {_plain(step)}")
    return steps.numerator


# --- showing values in messages -------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as TOML would spell it, shortened for a message."""
    text = _spell(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _spell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= _SHOW_MAX else value[:_SHOW_MAX] + "...", ensure_ascii=False)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() < 4096 else f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value[:8]) + (", ...]" if len(value) > 8 else "]")
    if isinstance(value, dict):
        items = [f"{_key(k)} = {_show(v)}" for k, v in list(value.items())[:8]]
        return "{" + (" " + ", ".join(items) + (", ... }" if len(value) > 8 else " }") if items else "}")
    return repr(value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _at(path: str, key: str) -> str:
    """The location of ``key`` in the table at ``path`` (``markets[0]`` + ``tick_size``)."""
    return f"{path}.{_key(key)}" if path else _key(key)


def _freeze(value: Any) -> Any:
    """Tables become read-only mappings and arrays tuples, all the way down."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


_NOTHING: Final = object()


# --- the parser -----------------------------------------------------------------------------------------------------


class _Parser:
    """Walks the TOML document table by table; the first broken rule raises."""

    def __init__(self, source: str, directory: Path) -> None:
        self.source = source
        self.directory = directory

    def fail(self, location: str, rule: str, value: object = _NOTHING) -> NoReturn:
        got = "" if value is _NOTHING else f", got {_show(value)}"
        raise ManifestError(f"{self.source}: {location}: {rule}{got}", source=self.source, location=location)

    # generic readers

    def keys(self, path: str, table: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
        """Unknown keys first (a typo is more useful than the missing key it causes), then missing ones."""
        allowed = required + optional
        for key in table:
            if key not in allowed:
                self.fail(_at(path, key), f"unknown key; expected one of {', '.join(sorted(allowed))}")
        for key in required:
            if key not in table:
                self.fail(_at(path, key), "required key is missing")

    def table(self, location: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(location, "must be a table", value)
        return value

    def tables(self, location: str, value: object) -> list[dict[str, Any]]:
        """An array of tables (``[[name]]``); each element is checked to be a table."""
        name = location.rpartition(".")[2]
        if not isinstance(value, list):
            self.fail(location, f"must be an array of tables ([[{name}]])", value)
        return [self.table(f"{location}[{i}]", item) for i, item in enumerate(value)]

    def string(self, location: str, value: object, pattern: re.Pattern[str] | None = None, rule: str = "") -> str:
        if not isinstance(value, str):
            self.fail(location, "must be a string", value)
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(location, rule, value)
        return value

    def integer(self, location: str, value: object, low: int, high: int, high_text: str = "") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(location, "must be an integer", value)
        if not low <= value <= high:
            self.fail(location, f"must be an integer in {low}..{high_text or high}", value)
        return value

    def decimal(self, location: str, value: object) -> Decimal:
        if isinstance(value, float):
            self.fail(location, _FLOAT_RULE, value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(location, _DECIMAL_RULE, value)
        if isinstance(value, int):
            return Decimal(value)
        if not _DECIMAL.fullmatch(value):
            self.fail(
                location,
                _DECIMAL_RULE + ": digits with an optional sign and decimal point, no exponent, NaN or Infinity",
                value,
            )
        if sum(c.isdigit() for c in value) > MAX_DECIMAL_DIGITS:
            self.fail(location, f"must have at most {MAX_DECIMAL_DIGITS} digits", value)
        return Decimal(value)

    def address(self, location: str, value: object) -> bytes:
        if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
            self.fail(location, 'must be an address: "0x" followed by 40 hex digits', value)
        return bytes.fromhex(value[2:])

    def units(self, location: str, value: object, amount: Fraction, asset: AssetSpec, *, at_least_one: bool) -> int:
        """``amount`` (already scaled to ``asset``'s smallest units) as an integer, or an error at ``location``."""
        unit = f"{asset.symbol} smallest units (10^-{asset.decimals} {asset.symbol})"
        if amount.denominator != 1:
            self.fail(location, f"must be a whole number of {unit}", value)
        if at_least_one and amount < 1:
            self.fail(location, f"must be at least 1 of {unit}", value)
        return amount.numerator

    # tables

    def manifest(self, raw: bytes, document: dict[str, Any]) -> Manifest:
        self.keys("", document, (), ("venue", "plugins", "assets", "markets", "simulation", "oracles", "margin"))
        if "venue" not in document:
            self.fail("venue", "required table [venue] is missing")
        venue = self.venue(self.table("venue", document["venue"]))
        plugins = tuple(self.plugin(i, t) for i, t in enumerate(self.tables("plugins", document.get("plugins", []))))
        self.unique("plugins", "name", [p.name for p in plugins], "plugin name")
        assets = tuple(self.asset(i, t) for i, t in enumerate(self.tables("assets", document.get("assets", []))))
        self.unique("assets", "symbol", [a.symbol for a in assets], "asset symbol")
        by_symbol = {a.symbol: a for a in assets}
        markets = tuple(
            self.market(i, t, by_symbol) for i, t in enumerate(self.tables("markets", document.get("markets", [])))
        )
        self.unique("markets", "name", [m.name for m in markets], "market name")
        oracles = tuple(self.oracle(i, t) for i, t in enumerate(self.tables("oracles", document.get("oracles", []))))
        self.unique("oracles", "name", [o.name for o in oracles], "oracle feed name")
        margin = self.margin(document["margin"], by_symbol, oracles) if "margin" in document else MarginSpec()
        return Manifest(
            source=self.source,
            raw=raw,
            sha256=hashlib.sha256(raw).digest(),
            venue=venue,
            plugins=plugins,
            assets=assets,
            markets=markets,
            directory=self.directory,
            simulation=self.simulation(document["simulation"]) if "simulation" in document else None,
            oracles=oracles,
            margin=margin,
        )

    def oracle(self, index: int, t: dict[str, Any]) -> OracleSpec:
        where = f"oracles[{index}]"
        self.keys(where, t, ("name", "kind"), ("params", "decimals"))
        name = self.string(f"{where}.name", t["name"], _NAME, "must be a feed name (1..64 of A-Z a-z 0-9 _ . -)")
        kind = self.string(f"{where}.kind", t["kind"], _NAME, "must be an oracle kind (1..64 of A-Z a-z 0-9 _ . -)")
        decimals = self.integer(f"{where}.decimals", t.get("decimals", 0), 0, MAX_ASSET_DECIMALS)
        return OracleSpec(name=name, kind=kind, params=_freeze(self.table(f"{where}.params", t.get("params", {}))),
                          decimals=decimals)  # fmt: skip

    def margin(self, value: object, assets: Mapping[str, AssetSpec], oracles: tuple[OracleSpec, ...]) -> MarginSpec:
        """`[margin]`: withdrawal rules, `[[margin.groups]]` and `[[margin.collateral]]`."""
        t = self.table("margin", value)
        self.keys("margin", t, (), ("withdraw_floor_bps", "upnl_withdraw_bps", "groups", "collateral"))
        floor = self.integer("margin.withdraw_floor_bps", t.get("withdraw_floor_bps", 1000), 0, 10_000)
        upnl = self.integer("margin.upnl_withdraw_bps", t.get("upnl_withdraw_bps", 0), 0, 10_000)
        groups = []
        for i, g in enumerate(self.tables("margin.groups", t.get("groups", []))):
            where = f"margin.groups[{i}]"
            self.keys(where, g, ("asset",), ("backstop_cap", "dust_account"))
            asset = self.asset_ref(f"{where}.asset", g["asset"], assets)
            cap = self.decimal(f"{where}.backstop_cap", g.get("backstop_cap", 0))
            if cap < 0:
                self.fail(f"{where}.backstop_cap", "must be >= 0", g["backstop_cap"])
            dust = self.address(f"{where}.dust_account", g["dust_account"]) if "dust_account" in g else None
            groups.append(GroupSpec(asset=asset.symbol, backstop_cap=cap, dust_account=dust))
        self.unique("margin.groups", "asset", [g.asset for g in groups], "risk group")
        feeds = {o.name for o in oracles}
        collateral = []
        for i, c in enumerate(self.tables("margin.collateral", t.get("collateral", []))):
            where = f"margin.collateral[{i}]"
            self.keys(where, c, ("asset", "group", "oracle", "haircut_bps"), ("stable_ema_ms", "stable_bps_per_hour"))
            asset = self.asset_ref(f"{where}.asset", c["asset"], assets)
            group = self.asset_ref(f"{where}.group", c["group"], assets)
            if asset.symbol == group.symbol:
                self.fail(f"{where}.asset", "a group's settlement asset is its own collateral already", c["asset"])
            oracle = self.string(f"{where}.oracle", c["oracle"])
            if oracle not in feeds:
                self.fail(f"{where}.oracle", f"must name one of the [[oracles]] ({', '.join(sorted(feeds)) or 'none'})",
                          oracle)  # fmt: skip
            collateral.append(CollateralSpec(
                asset=asset.symbol, group=group.symbol, oracle=oracle,
                haircut_bps=self.integer(f"{where}.haircut_bps", c["haircut_bps"], 0, 10_000),
                stable_ema_ms=self.integer(f"{where}.stable_ema_ms", c.get("stable_ema_ms", 3_600_000), 1, 10**10),
                stable_bps_per_hour=self.integer(f"{where}.stable_bps_per_hour", c.get("stable_bps_per_hour", 600), 0,
                                                 10**6),
            ))  # fmt: skip
        self.unique("margin.collateral", "asset", [f"{c.asset}/{c.group}" for c in collateral], "collateral entry")
        return MarginSpec(withdraw_floor_bps=floor, upnl_withdraw_bps=upnl, groups=tuple(groups),
                          collateral=tuple(collateral))  # fmt: skip

    def simulation(self, value: object) -> SimulationSpec:
        t = self.table("simulation", value)
        self.keys("simulation", t, ("driver",), ("params",))
        driver = self.string(
            "simulation.driver", t["driver"], _NAME, "must be a simulation name (1..64 of A-Z a-z 0-9 _ . -)"
        )
        params = self.table("simulation.params", t.get("params", {}))
        return SimulationSpec(driver=driver, params=_freeze(params))

    def unique(self, array: str, key: str, names: list[str], what: str) -> None:
        first: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in first:
                self.fail(f"{array}[{i}].{key}", f"duplicate {what} (also {array}[{first[name]}])", name)
            first[name] = i

    def venue(self, t: dict[str, Any]) -> VenueSpec:
        self.keys(
            "venue", t, ("name", "admins", "fee_account"),
            ("journal", "nonce_window_ms", "compliance", "chain_id", "verifying_contract", "faucet", "history"),
        )  # fmt: skip
        name = self.string("venue.name", t["name"])
        if not name.strip():
            self.fail("venue.name", "must be a non-empty string", name)
        admins_value = t["admins"]
        if not isinstance(admins_value, list):
            self.fail("venue.admins", "must be an array of addresses", admins_value)
        if not admins_value:
            self.fail("venue.admins", "must list at least one admin address", admins_value)
        admins = tuple(self.address(f"venue.admins[{i}]", v) for i, v in enumerate(admins_value))
        for i, admin in enumerate(admins):
            if admin in admins[:i]:
                self.fail(
                    f"venue.admins[{i}]",
                    f"duplicate address (also venue.admins[{admins.index(admin)}])",
                    admins_value[i],
                )
        fee_account = self.address("venue.fee_account", t["fee_account"])
        journal: Path | None = None
        if "journal" in t:
            journal_text = self.string("venue.journal", t["journal"])
            if not journal_text.strip():
                self.fail("venue.journal", "must be a non-empty path", journal_text)
            journal = self.directory / journal_text
        nonce_window = None
        if "nonce_window_ms" in t:
            window = t["nonce_window_ms"]
            if not isinstance(window, list) or len(window) != 2:
                self.fail("venue.nonce_window_ms", "must be [past, future] milliseconds", window)
            past = self.integer("venue.nonce_window_ms[0]", window[0], 1, 10**12)
            future = self.integer("venue.nonce_window_ms[1]", window[1], 1, 10**12)
            nonce_window = (past, future)
        compliance = self.policy_names("venue.compliance", t.get("compliance", []))
        chain_id = self.integer("venue.chain_id", t.get("chain_id", 1337), 1, 2**64 - 1)
        verifying = self.address("venue.verifying_contract", t.get("verifying_contract", "0x" + "00" * 20))
        faucet_table = self.table("venue.faucet", t.get("faucet", {}))
        faucet = {}
        for symbol, amount in faucet_table.items():
            value = self.decimal(f"venue.faucet.{symbol}", amount)
            if value <= 0:
                self.fail(f"venue.faucet.{symbol}", "must be > 0", amount)
            faucet[symbol] = value
        history = None
        if "history" in t:
            history = self.string("venue.history", t["history"])
            if not history.startswith(("postgresql://", "postgres://")):
                self.fail("venue.history", "must be a postgresql:// DSN (SQLite beside the journal is the default)",
                          history)  # fmt: skip
        return VenueSpec(
            name=name, admins=admins, fee_account=fee_account, journal=journal, nonce_window=nonce_window,
            compliance=compliance, chain_id=chain_id, verifying_contract=verifying,
            faucet=types.MappingProxyType(faucet), history=history,
        )  # fmt: skip

    def policy_names(self, location: str, value: object) -> tuple[str, ...]:
        """An array of distinct compliance policy names."""
        if not isinstance(value, list):
            self.fail(location, "must be an array of compliance policy names", value)
        names = tuple(
            self.string(f"{location}[{i}]", v, _NAME, "must be a policy name (1..64 of A-Z a-z 0-9 _ . -)")
            for i, v in enumerate(value)
        )
        if len(set(names)) != len(names):
            self.fail(location, "names a policy twice", value)
        return names

    def plugin(self, i: int, t: dict[str, Any]) -> PluginSpec:
        path = f"plugins[{i}]"
        self.keys(path, t, ("name",), ("module",))
        name = self.string(f"{path}.name", t["name"], _NAME, "must be 1..64 characters of A-Z a-z 0-9 _ . -")
        module = None
        if "module" in t:
            module = self.string(f"{path}.module", t["module"], _MODULE, "must be a dotted module path such as pkg.mod")
        return PluginSpec(name=name, module=module)

    def asset(self, i: int, t: dict[str, Any]) -> AssetSpec:
        path = f"assets[{i}]"
        self.keys(path, t, ("symbol", "decimals"), ())
        symbol = self.string(f"{path}.symbol", t["symbol"], _ASSET_SYMBOL, "must be 1..16 characters of A-Z 0-9 - _")
        decimals = self.integer(f"{path}.decimals", t["decimals"], 0, MAX_ASSET_DECIMALS)
        return AssetSpec(symbol=symbol, decimals=decimals)

    def asset_ref(self, location: str, value: object, assets: Mapping[str, AssetSpec]) -> AssetSpec:
        symbol = self.string(location, value)
        if symbol not in assets:
            listed = ", ".join(sorted(assets)) or "none are listed"
            self.fail(location, f"must be the symbol of a listed asset ({listed})", symbol)
        return assets[symbol]

    def market(self, i: int, t: dict[str, Any], assets: Mapping[str, AssetSpec]) -> MarketSpec:
        path = f"markets[{i}]"
        self.keys(
            path,
            t,
            ("name", "type", "base", "quote", "tick_size", "lot_size"),
            (
                "min_size",
                "min_notional",
                "fee_model",
                "max_orders",
                "max_levels",
                "status",
                "fees",
                "params",
                "compliance",
            ),
        )

        def at(key: str) -> str:
            return f"{path}.{key}"

        name = self.string(at("name"), t["name"], _MARKET_NAME, "must be 1..32 characters of A-Z a-z 0-9 - _ / .")
        type_ = self.string(at("type"), t["type"], _NAME, "must be a market type name (1..64 of A-Z a-z 0-9 _ . -)")
        base = self.asset_ref(at("base"), t["base"], assets)
        quote = self.asset_ref(at("quote"), t["quote"], assets)
        # base == quote is a market type's call: spot refuses it, an outcome market names its collateral twice

        tick_size = self.decimal(at("tick_size"), t["tick_size"])
        if tick_size <= 0:
            self.fail(at("tick_size"), "must be > 0", t["tick_size"])
        lot_size = self.decimal(at("lot_size"), t["lot_size"])
        if lot_size <= 0:
            self.fail(at("lot_size"), "must be > 0", t["lot_size"])
        tick, lot = Fraction(tick_size), Fraction(lot_size)
        lot_units = self.units(at("lot_size"), t["lot_size"], lot * base.unit, base, at_least_one=False)
        tick_lot = tick * lot * quote.unit
        if tick_lot.denominator != 1 or tick_lot < 1:
            self.fail(
                at("tick_size"),
                f"tick_size * lot_size must be a whole number >= 1 of {quote.symbol} smallest units "
                f"(10^-{quote.decimals} {quote.symbol}), and {_plain(tick_size)} * {_plain(lot_size)} = "
                f"{_plain(_exact_mul(tick_size, lot_size))} {quote.symbol} is not",
                t["tick_size"],
            )
        quote_per_tick_lot = tick_lot.numerator

        min_size = lot_size
        if "min_size" in t:
            min_size = self.decimal(at("min_size"), t["min_size"])
            if min_size < lot_size:
                self.fail(at("min_size"), f"must be >= lot_size ({_plain(lot_size)})", t["min_size"])
        min_lots_fraction = Fraction(min_size) / lot
        if min_lots_fraction.denominator != 1:
            self.fail(at("min_size"), f"must be a multiple of lot_size ({_plain(lot_size)})", t["min_size"])
        min_lots = min_lots_fraction.numerator

        min_notional = Decimal(0)
        min_notional_units = 0
        if "min_notional" in t:
            min_notional = self.decimal(at("min_notional"), t["min_notional"])
            if min_notional < 0:
                self.fail(at("min_notional"), "must be >= 0", t["min_notional"])
            amount = Fraction(min_notional) * quote.unit
            min_notional_units = self.units(at("min_notional"), t["min_notional"], amount, quote, at_least_one=False)

        for key, units, limit, limit_text in (
            ("lot_size", lot_units, I64_MAX, "2**63 - 1"),
            ("tick_size", quote_per_tick_lot, I64_MAX, "2**63 - 1"),
            ("min_size", min_lots, I64_MAX, "2**63 - 1"),
            ("min_notional", min_notional_units, I128_MAX, "2**127 - 1"),
        ):
            if units > limit:
                self.fail(at(key), f"is too large: its integer form exceeds {limit_text}", t[key])

        fee_model = "flat"
        if "fee_model" in t:
            fee_model = self.string(
                at("fee_model"), t["fee_model"], _NAME, "must be a fee model name (1..64 of A-Z a-z 0-9 _ . -)"
            )
        cap_text = f"{MAX_CAP} (2**30)"
        max_orders = DEFAULT_MAX_ORDERS
        if "max_orders" in t:
            max_orders = self.integer(at("max_orders"), t["max_orders"], 1, MAX_CAP, cap_text)
        max_levels = DEFAULT_MAX_LEVELS
        if "max_levels" in t:
            max_levels = self.integer(at("max_levels"), t["max_levels"], 1, MAX_CAP, cap_text)
        status = "open"
        if "status" in t:
            status = self.string(at("status"), t["status"])
            if status not in MARKET_STATUSES:
                self.fail(at("status"), f"must be one of {', '.join(MARKET_STATUSES)}", status)
        fees = self.fees(at("fees"), self.table(at("fees"), t.get("fees", {})))
        params = _freeze(self.table(at("params"), t.get("params", {})))

        return MarketSpec(
            name=name,
            type=type_,
            base=base.symbol,
            quote=quote.symbol,
            tick_size=tick_size,
            lot_size=lot_size,
            min_size=min_size,
            min_notional=min_notional,
            fee_model=fee_model,
            fees=fees,
            max_orders=max_orders,
            max_levels=max_levels,
            status=status,
            params=params,
            lot_units=lot_units,
            quote_per_tick_lot=quote_per_tick_lot,
            min_lots=min_lots,
            min_notional_units=min_notional_units,
            compliance=self.policy_names(at("compliance"), t.get("compliance", [])),
        )

    def fees(self, path: str, t: dict[str, Any]) -> FeeSpec:
        self.keys(path, t, (), ("maker_bps", "taker_bps"))
        values: dict[str, tuple[Decimal, int]] = {}
        for key in ("maker_bps", "taker_bps"):
            value = t.get(key, 0)
            bps = self.decimal(f"{path}.{key}", value)
            centibps = Fraction(bps) * 100
            if centibps.denominator != 1:
                self.fail(f"{path}.{key}", "must have at most 2 decimal places (hundredths of a basis point)", value)
            if abs(centibps) > MAX_FEE_BPS * 100:  # Fraction, not Decimal: abs() of a Decimal rounds
                self.fail(f"{path}.{key}", f"must be within -{MAX_FEE_BPS}..{MAX_FEE_BPS} basis points", value)
            values[key] = (bps, centibps.numerator)
        (maker, maker_centi), (taker, taker_centi) = values["maker_bps"], values["taker_bps"]
        if taker < 0:
            self.fail(f"{path}.taker_bps", "must be >= 0", t["taker_bps"])
        if -maker_centi > taker_centi:
            self.fail(
                f"{path}.maker_bps",
                f"a maker rebate must not exceed the taker fee (-maker_bps <= taker_bps = {_plain(taker)})",
                t["maker_bps"],
            )
        return FeeSpec(maker_bps=maker, taker_bps=taker, maker_centibps=maker_centi, taker_centibps=taker_centi)


def parse_market_table(table: dict[str, Any], assets: Mapping[str, AssetSpec], *, source: str) -> MarketSpec:
    """Parse one `[[markets]]` table (a runtime listing) against the assets listed so far; ManifestError if bad."""
    parser = _Parser(source, Path.cwd())
    return parser.market(0, parser.table("markets[0]", table), assets)
