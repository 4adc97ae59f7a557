"""A third-party plugin distribution, installed from tests/fixtures/ by pip and enabled by name in a manifest.

exos-acme-plugin (an order check capping orders at 1,000 lots and the taker-only fee model
"acme-flat") is installed for real into a temporary --target directory, put on sys.path, and named
in a copy of examples/spot.toml; the engine built from that manifest must apply both. The acme
objects then pass the same exos.testing contracts as the built-in plugins' objects.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import attrs
import pytest

from exos import commands as C
from exos.engine import Engine
from exos.events import CommandDone, Event, Fill, OrderAccepted, Rejected
from exos.plugins import Plugins, installed_plugins, load_plugins
from exos.protocols import FeeModel, FeeModelFactory, MarketInfo, MarketType, OrderCheck, OrderIntent
from exos.testing import FeeModelContract, MarketTypeContract, OrderCheckContract, install_distribution

REPO_ROOT = Path(__file__).resolve().parents[1]
ACME_SOURCE = REPO_ROOT / "tests" / "fixtures" / "exos-acme-plugin"
ACME_MARKET = "BTC-ACME"
ACME_TAKER_CENTIBPS = 700  # taker_bps = "7"
ADMIN = bytes.fromhex("11" * 20)  # an admin of examples/spot.toml
FEE_ACCOUNT = bytes.fromhex("fee0000000000000000000000000000000000fee")
ALICE, BOB = b"\xaa" * 20, b"\xbb" * 20
LOT = 10_000  # satoshi per lot of BTC-USDC and BTC-ACME
NOW = 1  # every command's timestamp
MANIFEST_TAIL = f"""
# Added by tests/test_third_party_plugin.py: the third-party plugin and a market that uses its fees.
[[plugins]]
name = "acme"

[[markets]]
name = "{ACME_MARKET}"
type = "spot"
base = "BTC"
quote = "USDC"
tick_size = "0.01"
lot_size = "0.0001"
min_notional = "1"
fee_model = "acme-flat"

[markets.fees]
maker_bps = "0"
taker_bps = "7"
"""


@attrs.frozen
class _Spec:
    """A manifest `[[plugins]]` entry."""

    name: str
    module: str | None = None


@pytest.fixture(scope="session")
def acme_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/exos-acme-plugin installed by pip into a temporary --target directory."""
    return install_distribution(ACME_SOURCE, tmp_path_factory.mktemp("acme"))


@contextlib.contextmanager
def _installed(target: Path) -> Iterator[Path]:
    """`target` on sys.path for the block; afterwards no trace of it in sys.path, sys.modules or import caches."""
    entry = str(target)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        while entry in sys.path:
            sys.path.remove(entry)
        sys.path_importer_cache.pop(entry, None)
        for name in [n for n in sys.modules if n == "exos_acme" or n.startswith("exos_acme.")]:
            del sys.modules[name]
        importlib.invalidate_caches()  # also drops importlib.metadata's cached view of the directory


@pytest.fixture
def acme(acme_target: Path) -> Iterator[Path]:
    """The installed acme distribution on sys.path for one test."""
    with _installed(acme_target) as target:
        yield target


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """examples/spot.toml plus `[[plugins]] name = "acme"` and a spot market using fee_model "acme-flat"."""
    path = tmp_path / "venue.toml"
    path.write_text((REPO_ROOT / "examples" / "spot.toml").read_text() + MANIFEST_TAIL)
    return path


@pytest.fixture
def engine(acme: Path, manifest: Path) -> Engine:
    """The engine of that manifest, with 1,000,000 USDC for alice and 10 BTC for bob."""
    engine = Engine.from_manifest(manifest)
    for address, asset, amount in ((ALICE, "USDC", 10**12), (BOB, "BTC", 10**9)):
        deposit = C.Deposit(actor=C.Actor(address, signer=ADMIN), timestamp=NOW, asset=asset, amount=amount)
        done = engine.submit(deposit)[-1]
        assert isinstance(done, CommandDone) and done.accepted
    return engine


def _place(engine: Engine, who: bytes, market: str, side: int, price: int, size: int) -> list[Event]:
    """Submit a GTC limit order (at the deposits' timestamp: a rejection then leaves the state hash alone)."""
    order = C.PlaceOrder(actor=C.Actor(who), timestamp=NOW, market=market, side=side, price=price, size=size)
    return engine.submit(order)


class TestThroughTheEngine:
    """The engine built from the manifest loads acme from the installed distribution and applies it."""

    def test_loads_the_installed_distribution(self, engine: Engine, acme: Path) -> None:
        """acme loads by entry point, pinned at its version, from the pip --target directory."""
        assert engine.plugins.names == ("spot", "acme")
        assert dict(engine.plugins.versions)["acme"] == "0.3.0"
        assert engine.plugins.registered_by[("order_checks", "acme-max-size")] == "acme"
        assert engine.plugins.registered_by[("fee_models", "acme-flat")] == "acme"
        assert Path(sys.modules["exos_acme.plugin"].__file__ or "").is_relative_to(acme)
        assert engine.market_state(ACME_MARKET).market_type == "spot"

    @pytest.mark.parametrize("market", ["BTC-USDC", ACME_MARKET])
    def test_order_above_the_cap_is_rejected(self, engine: Engine, market: str) -> None:
        """1,001 lots is Rejected with ACME_MAX_SIZE and changes nothing; 1,000 lots is accepted."""
        before = engine.state_hash()
        events = _place(engine, ALICE, market, 0, 6_500_000, 1_001)
        assert [type(e) for e in events] == [Rejected, CommandDone]
        rejected = events[0]
        assert isinstance(rejected, Rejected)
        assert rejected.code == "ACME_MAX_SIZE"
        assert "1001" in rejected.message
        assert engine.state_hash() == before
        events = _place(engine, ALICE, market, 0, 6_500_000, 1_000)
        assert isinstance(events[0], OrderAccepted)
        engine.check_invariants()

    def test_taker_buyer_pays_the_acme_fee_in_base(self, engine: Engine) -> None:
        """A taker buying 40 lots (400,000 sat) pays ceil(400,000 x 7 bp) = 280 sat; the maker pays nothing."""
        _place(engine, BOB, ACME_MARKET, 1, 6_500_000, 40)
        fills = [e for e in _place(engine, ALICE, ACME_MARKET, 0, 6_600_000, 40) if isinstance(e, Fill)]
        assert [(f.maker, f.fee, f.fee_asset) for f in fills] == [(False, 280, "BTC"), (True, 0, "USDC")]
        assert engine.balances(ALICE)["BTC"] == (40 * LOT - 280, 0)
        assert engine.balances(FEE_ACCOUNT)["BTC"] == (280, 0)
        assert engine.balances(FEE_ACCOUNT)["USDC"] == (0, 0)
        engine.check_invariants()

    def test_taker_seller_pays_the_acme_fee_in_quote(self, engine: Engine) -> None:
        """A taker selling 40 lots at 65,000 (260 USDC) pays 7 bp = 0.182 USDC."""
        _place(engine, ALICE, ACME_MARKET, 0, 6_500_000, 40)
        fills = [e for e in _place(engine, BOB, ACME_MARKET, 1, 6_400_000, 40) if isinstance(e, Fill)]
        assert [(f.maker, f.fee, f.fee_asset) for f in fills] == [(False, 182_000, "USDC"), (True, 0, "BTC")]
        assert engine.balances(BOB)["USDC"] == (260_000_000 - 182_000, 0)
        assert engine.balances(FEE_ACCOUNT)["USDC"] == (182_000, 0)
        engine.check_invariants()

    def test_the_flat_market_keeps_its_own_fees(self, engine: Engine) -> None:
        """BTC-USDC still charges spot's flat 5 bp taker fee and pays the 1 bp maker rebate."""
        _place(engine, BOB, "BTC-USDC", 1, 6_500_000, 40)
        fills = [e for e in _place(engine, ALICE, "BTC-USDC", 0, 6_600_000, 40) if isinstance(e, Fill)]
        assert [(f.maker, f.fee, f.fee_asset) for f in fills] == [(False, 200, "BTC"), (True, -26_000, "USDC")]

    def test_cleanup_leaves_no_trace(self, acme_target: Path) -> None:
        """Off sys.path again, neither the module nor the entry point of acme is visible."""
        with _installed(acme_target):
            load_plugins([_Spec("acme")])
            assert "exos_acme.plugin" in sys.modules
        assert str(acme_target) not in sys.path
        assert not [n for n in sys.modules if n.startswith("exos_acme")]
        assert "acme" not in {p.name for p in installed_plugins()}


@pytest.fixture
def acme_plugins(acme: Path) -> Plugins:
    """spot and acme loaded by entry point, as the manifest enables them."""
    return load_plugins([_Spec("spot"), _Spec("acme")])


class TestAcmeMaxSize(OrderCheckContract):
    """acme-max-size against the order-check contract."""

    @pytest.fixture
    def order_check(self, acme_plugins: Plugins) -> OrderCheck:
        """The registered check."""
        return acme_plugins.order_checks["acme-max-size"]

    @pytest.fixture
    def accepted_intents(self) -> list[OrderIntent]:
        """Up to 1,000 lots, either side."""
        return [OrderIntent(0, 1, side, 100, size, 0, False) for side in (0, 1) for size in (1, 999, 1_000)]

    @pytest.fixture
    def rejected_intents(self) -> list[OrderIntent]:
        """More than 1,000 lots."""
        return [OrderIntent(0, 1, side, 100, size, 0, False) for side in (0, 1) for size in (1_001, 10**9)]


class TestAcmeFlat(FeeModelContract):
    """acme-flat against the fee-model contract: the taker pays 7 bp, the maker rate is ignored."""

    maker_centibps = -100
    taker_centibps = ACME_TAKER_CENTIBPS

    def exact_fee(self, received: int, maker: bool) -> Fraction:
        """acme-flat ignores the maker rate: makers pay nothing."""
        return Fraction(0) if maker else super().exact_fee(received, maker)

    @pytest.fixture
    def fee_factory(self, acme_plugins: Plugins) -> FeeModelFactory:
        """The registered factory."""
        return acme_plugins.fee_models["acme-flat"]


class TestSpotWithAcmeFees(MarketTypeContract):
    """The spot market type settling with the third-party fee model conserves every asset."""

    contract_prices = (1_000_000, 10_000_000)
    contract_sizes = (1, 10_000)

    @pytest.fixture
    def market_type(self, acme_plugins: Plugins) -> MarketType:
        """spot, from the registry."""
        return acme_plugins.market_types["spot"]

    @pytest.fixture
    def market_info(self) -> MarketInfo:
        """BTC-ACME's units (USDC is asset 0, BTC asset 1)."""
        return MarketInfo(
            market_id=2,
            name=ACME_MARKET,
            base_asset=1,
            quote_asset=0,
            lot_units=LOT,
            quote_per_tick_lot=1,
            min_lots=1,
            min_notional_units=1_000_000,
            params={},
        )

    @pytest.fixture
    def fee_model(self, acme_plugins: Plugins) -> FeeModel:
        """acme-flat at BTC-ACME's rates."""
        return acme_plugins.fee_models["acme-flat"].create(0, ACME_TAKER_CENTIBPS, {})
