"""The venue manifest: the example parses, every schema rule rejects with file, key path, rule and value."""

from __future__ import annotations

import decimal
import hashlib
import types
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from exos.errors import ExosError
from exos.manifest import AssetSpec, FeeSpec, Manifest, ManifestError, PluginSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spot.toml"

# Every line that a test edits is unique in this text, so `_edit` can find it by itself.
VALID = """\
[venue]
name = "test venue"
admins = ["0x1111111111111111111111111111111111111111", "0x33333333333333333333333333333333333333aB"]
fee_account = "0x2222222222222222222222222222222222222222"
journal = "journal"

[[plugins]]
name = "spot"

[[plugins]]
name = "extra"
module = "exos_extra.plugin"

[[assets]]
symbol = "USDC"
decimals = 6

[[assets]]
symbol = "BTC"
decimals = 8

[[assets]]
symbol = "ETH"
decimals = 18

[[markets]]
name = "BTC-USDC"
type = "spot"
base = "BTC"
quote = "USDC"
tick_size = "0.01"
lot_size = "0.0001"
min_size = "0.0002"
min_notional = "1"
fee_model = "flat"
max_orders = 1000
max_levels = 100
status = "open"

[markets.fees]
maker_bps = "-1"
taker_bps = "5"

[markets.params]
style = "demo"
limits = [1, 2]
nested = { deep = { x = 1 } }

[[markets]]
name = "ETH-USDC"
type = "spot"  # second
base = "ETH"
quote = "USDC"  # second
tick_size = "0.1"
lot_size = "0.001"
"""

VENUE_KEYS = (
    "admins, chain_id, compliance, faucet, fee_account, history, journal, name, nonce_window_ms, verifying_contract"
)
MARKET_KEYS = (
    "base, compliance, fee_model, fees, lot_size, max_levels, max_orders, min_notional, min_size, name, params, quote, "
    "status, tick_size, type"
)
FLOAT_RULE = 'must be a decimal string such as "0.01" or an integer, not a float: binary floats are inexact'
DECIMAL_RULE = 'must be a decimal string such as "0.01" or an integer'
PLAIN_RULE = DECIMAL_RULE + ": digits with an optional sign and decimal point, no exponent, NaN or Infinity"
ADDRESS_RULE = 'must be an address: "0x" followed by 40 hex digits'
TICK_LOT_RULE = "tick_size * lot_size must be a whole number >= 1 of USDC smallest units (10^-6 USDC)"
CAP = "must be an integer in 1..1073741824 (2**30)"
A1, A2, A3 = ('"0x' + "1" * 40 + '"'), ('"0x' + "2" * 40 + '"'), ('"0x' + "3" * 38 + 'aB"')  # as TOML strings


def _edit(old: str, new: str, text: str = VALID) -> str:
    """Replace the one occurrence of ``old``; the test is wrong if there is not exactly one."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _parse(text: str) -> Manifest:
    return Manifest.from_bytes(text.encode(), source="venue.toml", directory="/venue")


def _error(text: str) -> str:
    with pytest.raises(ManifestError) as info:
        _parse(text)
    return str(info.value)


class TestExample:
    def test_example_parses_with_exact_integers(self) -> None:
        """examples/spot.toml parses, and its lots, ticks, minimums and fees come out as the right integers."""
        manifest = Manifest.from_toml(EXAMPLE)
        assert manifest.venue.name == "exos spot demo"
        assert len(manifest.venue.admins) == 2
        assert all(len(a) == 20 for a in (*manifest.venue.admins, manifest.venue.fee_account))
        assert manifest.venue.journal == EXAMPLE.parent / "journal"
        assert manifest.directory == EXAMPLE.parent
        assert manifest.plugins == (PluginSpec(name="spot", module=None),)
        assert manifest.assets == (AssetSpec("USDC", 6), AssetSpec("BTC", 8), AssetSpec("ETH", 18))
        btc = manifest.market("BTC-USDC")
        assert (btc.lot_units, btc.quote_per_tick_lot, btc.min_lots, btc.min_notional_units) == (10**4, 1, 1, 10**6)
        assert btc.fees == FeeSpec(Decimal("-1"), Decimal("5"), -100, 500)
        eth = manifest.market("ETH-USDC")
        assert (eth.lot_units, eth.quote_per_tick_lot, eth.min_lots, eth.min_notional_units) == (10**15, 10, 1, 10**6)
        assert eth.fees == FeeSpec(Decimal("0"), Decimal("4"), 0, 400)
        assert (eth.max_orders, eth.max_levels) == (1048576, 16384)

    def test_valid_text_parses(self) -> None:
        """The test fixture itself is valid, so each broken variant fails for its own edit alone."""
        manifest = _parse(VALID)
        btc, eth = manifest.markets
        assert (btc.lot_units, btc.quote_per_tick_lot, btc.min_lots, btc.min_notional_units) == (10**4, 1, 2, 10**6)
        assert (eth.lot_units, eth.quote_per_tick_lot, eth.min_lots, eth.min_notional_units) == (10**15, 100, 1, 0)
        assert manifest.venue.admins[1] == bytes.fromhex("33" * 19 + "ab")
        assert manifest.plugins[1] == PluginSpec(name="extra", module="exos_extra.plugin")
        assert manifest.venue.journal == Path("/venue/journal")


class TestDefaults:
    def test_optional_market_keys_take_their_defaults(self) -> None:
        """A market with only the required keys gets min_size = lot_size, zero fees, flat, open and the caps."""
        eth = _parse(VALID).market("ETH-USDC")
        assert eth.min_size == eth.lot_size
        assert eth.min_notional == 0
        assert eth.fee_model == "flat"
        assert eth.fees == FeeSpec(Decimal(0), Decimal(0), 0, 0)
        assert (eth.max_orders, eth.max_levels, eth.status) == (4194304, 16384, "open")
        assert dict(eth.params) == {}

    def test_optional_tables_and_journal_may_be_absent(self) -> None:
        """Without plugins, assets, markets or a journal the manifest is empty but valid."""
        text = VALID.split("[[plugins]]", maxsplit=1)[0].replace('journal = "journal"\n', "")
        manifest = _parse(text)
        assert (manifest.plugins, manifest.assets, manifest.markets) == ((), (), ())
        assert manifest.venue.journal is None

    def test_integer_decimals_are_accepted(self) -> None:
        """A TOML integer is a valid decimal value: tick_size = 1 is one whole quote unit."""
        market = _parse(_edit('tick_size = "0.1"', "tick_size = 1")).market("ETH-USDC")
        assert market.tick_size == Decimal(1)
        assert market.quote_per_tick_lot == 1000

    def test_fees_in_hundredths_of_a_bp(self) -> None:
        """Fees keep two decimal places exactly as integer centi-bps."""
        fees = _parse(_edit('maker_bps = "-1"', 'maker_bps = "-0.25"')).markets[0].fees
        assert (fees.maker_bps, fees.maker_centibps, fees.taker_centibps) == (Decimal("-0.25"), -25, 500)

    def test_from_bytes_default_directory_is_cwd(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """from_bytes without a directory resolves the journal against the current directory."""
        monkeypatch.chdir(tmp_path)
        manifest = Manifest.from_bytes(VALID.encode())
        assert manifest.venue.journal == tmp_path / "journal"
        assert manifest.source == "<manifest>"


BROKEN: list[tuple[str, str, str, str]] = [
    # (id, old text, new text, expected message after "venue.toml: ")
    # root and venue
    (
        "root-unknown",
        "[venue]\n",
        "perps = 1\n[venue]\n",
        "perps: unknown key; expected one of assets, margin, markets, oracles, plugins, simulation, venue",
    ),
    (
        "venue-unknown",
        'name = "test venue"',
        'name = "test venue"\ntick = 1',
        f"venue.tick: unknown key; expected one of {VENUE_KEYS}",
    ),
    (
        "venue-unknown-quoted",
        'name = "test venue"',
        'name = "test venue"\n"a b" = 1',
        f'venue."a b": unknown key; expected one of {VENUE_KEYS}',
    ),
    ("venue-name-missing", 'name = "test venue"\n', "", "venue.name: required key is missing"),
    ("venue-name-empty", 'name = "test venue"', 'name = "  "', 'venue.name: must be a non-empty string, got "  "'),
    ("venue-name-int", 'name = "test venue"', "name = 3", "venue.name: must be a string, got 3"),
    ("admins-missing", f"admins = [{A1}, {A3}]\n", "", "venue.admins: required key is missing"),
    (
        "admins-empty",
        f"admins = [{A1}, {A3}]",
        "admins = []",
        "venue.admins: must list at least one admin address, got []",
    ),
    (
        "admins-string",
        f"admins = [{A1}, {A3}]",
        f"admins = {A1}",
        f"venue.admins: must be an array of addresses, got {A1}",
    ),
    ("admin-short", A3, '"0x3333"', f'venue.admins[1]: {ADDRESS_RULE}, got "0x3333"'),
    ("admin-no-prefix", A3, f'"{"3" * 40}"', f'venue.admins[1]: {ADDRESS_RULE}, got "{"3" * 40}"'),
    ("admin-not-hex", A3, f'"0x{"3" * 39}g"', f'venue.admins[1]: {ADDRESS_RULE}, got "0x{"3" * 39}g"'),
    ("admin-long", A3, A3[:-1] + '00"', f'venue.admins[1]: {ADDRESS_RULE}, got {A3[:-1]}00"'),
    ("admin-int", A3, "7", f"venue.admins[1]: {ADDRESS_RULE}, got 7"),
    ("admin-duplicate", A3, A1, f"venue.admins[1]: duplicate address (also venue.admins[0]), got {A1}"),
    ("fee-account-missing", f"fee_account = {A2}\n", "", "venue.fee_account: required key is missing"),
    ("fee-account-bad", f"fee_account = {A2}", "fee_account = 5", f"venue.fee_account: {ADDRESS_RULE}, got 5"),
    ("journal-empty", 'journal = "journal"', 'journal = ""', 'venue.journal: must be a non-empty path, got ""'),
    ("journal-int", 'journal = "journal"', "journal = 1", "venue.journal: must be a string, got 1"),
    # plugins
    (
        "plugin-unknown",
        'name = "extra"',
        'name = "extra"\nversion = "1"',
        "plugins[1].version: unknown key; expected one of module, name",
    ),
    (
        "plugin-name-missing",
        '[[plugins]]\nname = "spot"\n',
        "[[plugins]]\n",
        "plugins[0].name: required key is missing",
    ),
    (
        "plugin-name-bad",
        'name = "extra"',
        'name = "ex tra"',
        'plugins[1].name: must be 1..64 characters of A-Z a-z 0-9 _ . -, got "ex tra"',
    ),
    ("plugin-name-int", 'name = "extra"', "name = 1", "plugins[1].name: must be a string, got 1"),
    (
        "plugin-module-bad",
        'module = "exos_extra.plugin"',
        'module = "exos_extra..plugin"',
        'plugins[1].module: must be a dotted module path such as pkg.mod, got "exos_extra..plugin"',
    ),
    (
        "plugin-duplicate",
        'name = "extra"',
        'name = "spot"',
        'plugins[1].name: duplicate plugin name (also plugins[0]), got "spot"',
    ),
    # assets
    (
        "asset-unknown",
        "decimals = 18",
        'decimals = 18\nname = "Ether"',
        "assets[2].name: unknown key; expected one of decimals, symbol",
    ),
    ("asset-symbol-missing", 'symbol = "ETH"\n', "", "assets[2].symbol: required key is missing"),
    ("asset-decimals-missing", "decimals = 18\n", "", "assets[2].decimals: required key is missing"),
    (
        "asset-symbol-lower",
        'symbol = "ETH"',
        'symbol = "eth"',
        'assets[2].symbol: must be 1..16 characters of A-Z 0-9 - _, got "eth"',
    ),
    (
        "asset-symbol-long",
        'symbol = "ETH"',
        'symbol = "ABCDEFGHIJKLMNOPQ"',
        'assets[2].symbol: must be 1..16 characters of A-Z 0-9 - _, got "ABCDEFGHIJKLMNOPQ"',
    ),
    (
        "asset-symbol-empty",
        'symbol = "ETH"',
        'symbol = ""',
        'assets[2].symbol: must be 1..16 characters of A-Z 0-9 - _, got ""',
    ),
    (
        "asset-decimals-high",
        "decimals = 18",
        "decimals = 31",
        "assets[2].decimals: must be an integer in 0..30, got 31",
    ),
    (
        "asset-decimals-negative",
        "decimals = 18",
        "decimals = -1",
        "assets[2].decimals: must be an integer in 0..30, got -1",
    ),
    ("asset-decimals-string", "decimals = 18", 'decimals = "18"', 'assets[2].decimals: must be an integer, got "18"'),
    ("asset-decimals-float", "decimals = 18", "decimals = 18.0", "assets[2].decimals: must be an integer, got 18.0"),
    ("asset-decimals-bool", "decimals = 18", "decimals = true", "assets[2].decimals: must be an integer, got true"),
    (
        "asset-duplicate",
        'symbol = "ETH"',
        'symbol = "BTC"',
        'assets[2].symbol: duplicate asset symbol (also assets[1]), got "BTC"',
    ),
    # markets: keys
    (
        "market-unknown",
        'lot_size = "0.001"',
        'lot_size = "0.001"\ntick = "0.01"',
        f"markets[1].tick: unknown key; expected one of {MARKET_KEYS}",
    ),
    (
        "fees-unknown",
        'taker_bps = "5"',
        'taker_bps = "5"\nmaker = "1"',
        "markets[0].fees.maker: unknown key; expected one of maker_bps, taker_bps",
    ),
    ("market-name-missing", 'name = "ETH-USDC"\n', "", "markets[1].name: required key is missing"),
    ("market-type-missing", 'type = "spot"  # second\n', "", "markets[1].type: required key is missing"),
    ("market-base-missing", 'base = "ETH"\n', "", "markets[1].base: required key is missing"),
    ("market-quote-missing", 'quote = "USDC"  # second\n', "", "markets[1].quote: required key is missing"),
    ("market-tick-missing", 'tick_size = "0.1"\n', "", "markets[1].tick_size: required key is missing"),
    ("market-lot-missing", 'lot_size = "0.001"\n', "", "markets[1].lot_size: required key is missing"),
    # markets: names and references
    (
        "market-name-space",
        'name = "ETH-USDC"',
        'name = "ETH USDC"',
        'markets[1].name: must be 1..32 characters of A-Z a-z 0-9 - _ / ., got "ETH USDC"',
    ),
    (
        "market-name-long",
        'name = "ETH-USDC"',
        'name = "' + "E" * 33 + '"',
        'markets[1].name: must be 1..32 characters of A-Z a-z 0-9 - _ / ., got "' + "E" * 33 + '"',
    ),
    (
        "market-duplicate",
        'name = "ETH-USDC"',
        'name = "BTC-USDC"',
        'markets[1].name: duplicate market name (also markets[0]), got "BTC-USDC"',
    ),
    (
        "market-type-empty",
        'type = "spot"  # second',
        'type = ""',
        'markets[1].type: must be a market type name (1..64 of A-Z a-z 0-9 _ . -), got ""',
    ),
    (
        "base-unlisted",
        'base = "ETH"',
        'base = "DOGE"',
        'markets[1].base: must be the symbol of a listed asset (BTC, ETH, USDC), got "DOGE"',
    ),
    (
        "quote-unlisted",
        'quote = "USDC"  # second',
        'quote = "usdc"',
        'markets[1].quote: must be the symbol of a listed asset (BTC, ETH, USDC), got "usdc"',
    ),
    # markets: tick and lot
    ("tick-zero", 'tick_size = "0.1"', 'tick_size = "0"', 'markets[1].tick_size: must be > 0, got "0"'),
    ("tick-negative", 'tick_size = "0.1"', 'tick_size = "-0.1"', 'markets[1].tick_size: must be > 0, got "-0.1"'),
    ("tick-int-zero", 'tick_size = "0.1"', "tick_size = 0", "markets[1].tick_size: must be > 0, got 0"),
    ("tick-float", 'tick_size = "0.1"', "tick_size = 0.1", f"markets[1].tick_size: {FLOAT_RULE}, got 0.1"),
    ("tick-float-whole", 'tick_size = "0.1"', "tick_size = 1.0", f"markets[1].tick_size: {FLOAT_RULE}, got 1.0"),
    ("tick-float-inf", 'tick_size = "0.1"', "tick_size = inf", f"markets[1].tick_size: {FLOAT_RULE}, got inf"),
    ("tick-float-nan", 'tick_size = "0.1"', "tick_size = nan", f"markets[1].tick_size: {FLOAT_RULE}, got nan"),
    ("tick-bool", 'tick_size = "0.1"', "tick_size = true", f"markets[1].tick_size: {DECIMAL_RULE}, got true"),
    ("tick-array", 'tick_size = "0.1"', 'tick_size = ["0.1"]', f'markets[1].tick_size: {DECIMAL_RULE}, got ["0.1"]'),
    ("tick-exponent", 'tick_size = "0.1"', 'tick_size = "1e-1"', f'markets[1].tick_size: {PLAIN_RULE}, got "1e-1"'),
    ("tick-nan", 'tick_size = "0.1"', 'tick_size = "NaN"', f'markets[1].tick_size: {PLAIN_RULE}, got "NaN"'),
    (
        "tick-infinity",
        'tick_size = "0.1"',
        'tick_size = "Infinity"',
        f'markets[1].tick_size: {PLAIN_RULE}, got "Infinity"',
    ),
    ("tick-spaces", 'tick_size = "0.1"', 'tick_size = " 0.1"', f'markets[1].tick_size: {PLAIN_RULE}, got " 0.1"'),
    ("tick-underscore", 'tick_size = "0.1"', 'tick_size = "1_0"', f'markets[1].tick_size: {PLAIN_RULE}, got "1_0"'),
    ("tick-bare-point", 'tick_size = "0.1"', 'tick_size = ".1"', f'markets[1].tick_size: {PLAIN_RULE}, got ".1"'),
    ("tick-empty", 'tick_size = "0.1"', 'tick_size = ""', f'markets[1].tick_size: {PLAIN_RULE}, got ""'),
    (
        "tick-digits",
        'tick_size = "0.1"',
        'tick_size = "0.' + "0" * 40 + '1"',
        'markets[1].tick_size: must have at most 40 digits, got "0.' + "0" * 40 + '1"',
    ),
    ("lot-zero", 'lot_size = "0.001"', 'lot_size = "0.000"', 'markets[1].lot_size: must be > 0, got "0.000"'),
    ("lot-float", 'lot_size = "0.001"', "lot_size = 0.001", f"markets[1].lot_size: {FLOAT_RULE}, got 0.001"),
    (
        "lot-below-base-unit",
        'lot_size = "0.0001"',
        'lot_size = "0.000000001"',
        'markets[0].lot_size: must be a whole number of BTC smallest units (10^-8 BTC), got "0.000000001"',
    ),
    (
        "tick-lot-fraction",
        'tick_size = "0.01"',
        'tick_size = "0.001"',
        f'markets[0].tick_size: {TICK_LOT_RULE}, and 0.001 * 0.0001 = 0.0000001 USDC is not, got "0.001"',
    ),
    (
        "tick-lot-not-whole",
        'tick_size = "0.01"',
        'tick_size = "0.015"',
        f'markets[0].tick_size: {TICK_LOT_RULE}, and 0.015 * 0.0001 = 0.0000015 USDC is not, got "0.015"',
    ),
    (
        "lot-too-large",
        'lot_size = "0.001"',
        'lot_size = "100000"',
        'markets[1].lot_size: is too large: its integer form exceeds 2**63 - 1, got "100000"',
    ),
    # markets: minimums
    (
        "min-size-below-lot",
        'min_size = "0.0002"',
        'min_size = "0.00005"',
        'markets[0].min_size: must be >= lot_size (0.0001), got "0.00005"',
    ),
    (
        "min-size-not-multiple",
        'min_size = "0.0002"',
        'min_size = "0.00015"',
        'markets[0].min_size: must be a multiple of lot_size (0.0001), got "0.00015"',
    ),
    ("min-size-float", 'min_size = "0.0002"', "min_size = 0.0002", f"markets[0].min_size: {FLOAT_RULE}, got 0.0002"),
    (
        "min-notional-negative",
        'min_notional = "1"',
        'min_notional = "-1"',
        'markets[0].min_notional: must be >= 0, got "-1"',
    ),
    (
        "min-notional-fraction",
        'min_notional = "1"',
        'min_notional = "0.0000001"',
        'markets[0].min_notional: must be a whole number of USDC smallest units (10^-6 USDC), got "0.0000001"',
    ),
    (
        "min-notional-float",
        'min_notional = "1"',
        "min_notional = 1.5",
        f"markets[0].min_notional: {FLOAT_RULE}, got 1.5",
    ),
    # markets: other settings
    (
        "fee-model-bad",
        'fee_model = "flat"',
        'fee_model = "fl at"',
        'markets[0].fee_model: must be a fee model name (1..64 of A-Z a-z 0-9 _ . -), got "fl at"',
    ),
    ("max-orders-zero", "max_orders = 1000", "max_orders = 0", f"markets[0].max_orders: {CAP}, got 0"),
    (
        "max-orders-high",
        "max_orders = 1000",
        "max_orders = 1073741825",
        f"markets[0].max_orders: {CAP}, got 1073741825",
    ),
    (
        "max-orders-string",
        "max_orders = 1000",
        'max_orders = "1000"',
        'markets[0].max_orders: must be an integer, got "1000"',
    ),
    ("max-levels-zero", "max_levels = 100", "max_levels = 0", f"markets[0].max_levels: {CAP}, got 0"),
    (
        "status-bad",
        'status = "open"',
        'status = "closed"',
        'markets[0].status: must be one of open, cancel_only, reduce_only, halted, got "closed"',
    ),
    ("fees-not-table", 'lot_size = "0.001"', 'lot_size = "0.001"\nfees = 5', "markets[1].fees: must be a table, got 5"),
    (
        "params-not-table",
        'lot_size = "0.001"',
        'lot_size = "0.001"\nparams = [1]',
        "markets[1].params: must be a table, got [1]",
    ),
    # fees
    (
        "maker-three-places",
        'maker_bps = "-1"',
        'maker_bps = "-1.125"',
        'markets[0].fees.maker_bps: must have at most 2 decimal places (hundredths of a basis point), got "-1.125"',
    ),
    (
        "taker-three-places",
        'taker_bps = "5"',
        'taker_bps = "5.001"',
        'markets[0].fees.taker_bps: must have at most 2 decimal places (hundredths of a basis point), got "5.001"',
    ),
    (
        "taker-too-high",
        'taker_bps = "5"',
        'taker_bps = "1000.01"',
        'markets[0].fees.taker_bps: must be within -1000..1000 basis points, got "1000.01"',
    ),
    (
        "maker-too-low",
        'maker_bps = "-1"',
        'maker_bps = "-1001"',
        'markets[0].fees.maker_bps: must be within -1000..1000 basis points, got "-1001"',
    ),
    ("taker-negative", 'taker_bps = "5"', 'taker_bps = "-1"', 'markets[0].fees.taker_bps: must be >= 0, got "-1"'),
    (
        "rebate-above-taker",
        'maker_bps = "-1"',
        'maker_bps = "-5.01"',
        "markets[0].fees.maker_bps: a maker rebate must not exceed the taker fee (-maker_bps <= taker_bps = 5), "
        'got "-5.01"',
    ),
    ("maker-float", 'maker_bps = "-1"', "maker_bps = -1.0", f"markets[0].fees.maker_bps: {FLOAT_RULE}, got -1.0"),
    ("taker-float", 'taker_bps = "5"', "taker_bps = 5e0", f"markets[0].fees.taker_bps: {FLOAT_RULE}, got 5.0"),
    # arrays of tables
    (
        "plugins-not-array",
        '[[plugins]]\nname = "spot"\n\n[[plugins]]\nname = "extra"\nmodule = "exos_extra.plugin"\n',
        '[plugins]\nname = "spot"\n',
        'plugins: must be an array of tables ([[plugins]]), got { name = "spot" }',
    ),
]


class TestRules:
    @pytest.mark.parametrize(("old", "new", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
    def test_broken_variant_names_file_key_rule_and_value(self, old: str, new: str, expected: str) -> None:
        """Each broken edit of a valid manifest fails with '<file>: <table path>.<key>: <rule>, got <value>'."""
        assert _error(_edit(old, new)) == f"venue.toml: {expected}"

    def test_missing_venue_table(self) -> None:
        """A manifest without [venue] says the table is required."""
        text = VALID.replace(VALID.split("[[plugins]]", maxsplit=1)[0], "")
        assert _error(text) == "venue.toml: venue: required table [venue] is missing"

    def test_venue_must_be_a_table(self) -> None:
        """`venue = 1` is a type error naming the key and value."""
        text = 'venue = 1\n[[assets]]\nsymbol = "USDC"\ndecimals = 6\n'
        assert _error(text) == "venue.toml: venue: must be a table, got 1"

    def test_array_elements_must_be_tables(self) -> None:
        """`assets = ["USDC"]` names the element by index and shows it."""
        text = 'assets = ["USDC"]\n' + VALID.split("[[plugins]]", maxsplit=1)[0]
        assert _error(text) == 'venue.toml: assets[0]: must be a table, got "USDC"'

    def test_long_values_are_shortened(self) -> None:
        """A huge offending value is cut in the message rather than flooding it."""
        message = _error(_edit('name = "test venue"', "name = " + str(10**200)))
        assert message.startswith("venue.toml: venue.name: must be a string, got 1000")
        assert message.endswith("...")
        assert len(message) < 200

    def test_error_is_a_typed_exos_error(self) -> None:
        """ManifestError is an ExosError with code MANIFEST and carries the file and the key path."""
        with pytest.raises(ManifestError) as info:
            _parse(_edit('tick_size = "0.1"', 'tick_size = "0"'))
        assert isinstance(info.value, ExosError)
        assert info.value.code == "MANIFEST"
        assert (info.value.source, info.value.location) == ("venue.toml", "markets[1].tick_size")
        assert info.value.message == str(info.value)


class TestSyntaxAndFiles:
    def test_toml_syntax_error_names_the_file(self, tmp_path: Path) -> None:
        """A TOML syntax error becomes a ManifestError naming the file and tomllib's line and column."""
        path = tmp_path / "venue.toml"
        path.write_text(_edit('name = "test venue"', "name = "))
        with pytest.raises(ManifestError) as info:
            Manifest.from_toml(path)
        assert str(info.value).startswith(f"{path}: invalid TOML: ")
        assert "line 2" in str(info.value)

    def test_duplicate_toml_key_is_a_syntax_error(self) -> None:
        """A key given twice in one table is rejected by tomllib, with the file named."""
        message = _error(_edit('journal = "journal"', 'journal = "journal"\njournal = "other"'))
        assert message.startswith("venue.toml: invalid TOML: ")

    def test_non_utf8_bytes_are_rejected(self) -> None:
        """Bytes that are not UTF-8 are a ManifestError, not a UnicodeDecodeError."""
        with pytest.raises(ManifestError, match=r"^venue\.toml: not UTF-8 text"):
            Manifest.from_bytes(b'[venue]\nname = "\xff"\n', source="venue.toml")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A manifest path that does not exist is a ManifestError naming it."""
        path = tmp_path / "nope.toml"
        with pytest.raises(ManifestError, match=r"nope\.toml: cannot read the manifest"):
            Manifest.from_toml(path)

    def test_from_toml_errors_name_the_path_as_given(self, tmp_path: Path) -> None:
        """Rule errors from from_toml start with the path the caller passed."""
        path = tmp_path / "venue.toml"
        path.write_text(_edit('tick_size = "0.1"', 'tick_size = "0"'))
        with pytest.raises(ManifestError) as info:
            Manifest.from_toml(str(path))
        assert str(info.value) == f'{path}: markets[1].tick_size: must be > 0, got "0"'

    def test_raw_and_sha256_are_the_exact_file_bytes(self, tmp_path: Path) -> None:
        """raw is the file byte for byte (comments, CRLF and all) and sha256 is its digest."""
        data = ("# a comment\r\n" + VALID.replace("\n", "\r\n")).encode()
        path = tmp_path / "venue.toml"
        path.write_bytes(data)
        manifest = Manifest.from_toml(path)
        assert manifest.raw == data
        assert manifest.sha256 == hashlib.sha256(data).digest()
        assert manifest.directory == tmp_path
        assert manifest.venue.journal == tmp_path / "journal"

    def test_example_raw_matches_file(self) -> None:
        """The example's raw bytes and hash are those of the file on disk."""
        manifest = Manifest.from_toml(EXAMPLE)
        assert manifest.raw == EXAMPLE.read_bytes()
        assert manifest.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).digest()


class TestRecords:
    def test_records_are_frozen(self) -> None:
        """Manifest records cannot be changed after parsing."""
        manifest = _parse(VALID)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            manifest.markets[0].tick_size = Decimal(1)  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            manifest.venue.name = "x"  # type: ignore[misc]

    def test_params_are_a_deeply_read_only_mapping(self) -> None:
        """params is a MappingProxyType, with nested tables as mappings and arrays as tuples."""
        params = _parse(VALID).markets[0].params
        assert isinstance(params, types.MappingProxyType)
        assert params["style"] == "demo"
        assert params["limits"] == (1, 2)
        assert params["nested"]["deep"]["x"] == 1
        with pytest.raises(TypeError):
            params["style"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            params["nested"]["deep"]["x"] = 2

    def test_records_hash_and_compare(self) -> None:
        """Two parses of the same text are equal and hashable, params included in equality."""
        a, b = _parse(VALID), _parse(VALID)
        assert a == b
        assert hash(a.markets[0]) == hash(b.markets[0])
        assert hash(a) == hash(b)

    def test_addresses_are_20_bytes_case_insensitive(self) -> None:
        """Mixed-case hex parses to the same 20 bytes as lower case."""
        upper = _parse(_edit(A2, '"0xABCDEFabcdef0000000000000000000000000000"'))
        assert upper.venue.fee_account == bytes.fromhex("abcdefabcdef" + "00" * 14)

    def test_lookup_helpers(self) -> None:
        """Manifest.asset and Manifest.market find by name and raise KeyError otherwise."""
        manifest = _parse(VALID)
        assert manifest.asset("BTC") == AssetSpec("BTC", 8)
        assert manifest.asset("BTC").unit == 10**8
        assert manifest.market("ETH-USDC").base == "ETH"
        with pytest.raises(KeyError):
            manifest.market("DOGE-USDC")
        with pytest.raises(KeyError):
            manifest.asset("DOGE")


class TestEdgeConversions:
    def test_price_round_trip(self) -> None:
        """price_to_ticks and ticks_to_price are exact inverses on the tick grid."""
        market = _parse(VALID).markets[0]
        assert market.price_to_ticks(Decimal("65000.01")) == 6500001
        assert market.ticks_to_price(6500001) == Decimal("65000.01")
        assert str(market.ticks_to_price(100)) == "1.00"
        assert market.price_to_ticks(Decimal("-0.02")) == -2

    def test_off_tick_price_is_a_value_error(self) -> None:
        """A price between ticks, NaN or infinity is a ValueError naming tick_size, not a ManifestError."""
        market = _parse(VALID).markets[0]
        with pytest.raises(ValueError, match=r"^tick_size: price 100\.005 is not a multiple of 0\.01$"):
            market.price_to_ticks(Decimal("100.005"))
        for bad in ("NaN", "Infinity", "-Infinity"):
            with pytest.raises(ValueError, match="not finite"):
                market.price_to_ticks(Decimal(bad))
        with pytest.raises(TypeError):
            market.price_to_ticks(0.01)  # type: ignore[arg-type]

    def test_conversions_ignore_the_decimal_context(self) -> None:
        """A low-precision ambient decimal context changes neither parsing nor conversions."""
        with decimal.localcontext(decimal.Context(prec=3)):
            market = _parse(_edit('min_notional = "1"', 'min_notional = "123456789.123456"')).markets[0]
            assert market.min_notional_units == 123456789123456
            assert market.ticks_to_price(123456789) == Decimal("1234567.89")
            assert market.price_to_ticks(Decimal("1234567.89")) == 123456789
            message = _error(_edit('taker_bps = "5"', 'taker_bps = "1000.01"'))
            assert message.endswith('must be within -1000..1000 basis points, got "1000.01"')

    def test_size_round_trip(self) -> None:
        """size_to_lots and lots_to_size convert base sizes exactly; off-lot sizes are a ValueError."""
        market = _parse(VALID).markets[0]
        assert market.size_to_lots(Decimal("1.2345")) == 12345
        assert market.lots_to_size(12345) == Decimal("1.2345")
        with pytest.raises(ValueError, match=r"^lot_size: size 0\.00015 is not a multiple of 0\.0001$"):
            market.size_to_lots(Decimal("0.00015"))


def test_a_history_store_must_be_a_postgresql_dsn(tmp_path: Path) -> None:
    """`[venue] history` names PostgreSQL; SQLite beside the journal needs no key."""
    text = EXAMPLE.read_text()
    good = Manifest.from_bytes(text.replace('journal = "journal"', 'history = "postgresql://u@h/db"').encode())
    assert good.venue.history == "postgresql://u@h/db"
    with pytest.raises(ManifestError, match=r"venue\.history: must be a postgresql:// DSN"):
        Manifest.from_bytes(text.replace('journal = "journal"', 'history = "sqlite:///x"').encode())
