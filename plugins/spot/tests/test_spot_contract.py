"""The spot plugin's objects against the exos.testing contracts every plugin's objects meet."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import pytest

from exos.protocols import FeeModel, MarketInfo, StatefulPlugin
from exos.testing import FeeModelContract, MarginProviderContract, MarketTypeContract, StatefulPluginContract
from exos_spot import FlatFeeFactory, FlatFees, SpotMarket, SpotMarketType
from exos_spot.market import SpotMargin

USDC, BTC = 0, 1  # asset indices in the order examples/spot.toml lists them
BTC_USDC = MarketInfo(
    market_id=0,
    name="BTC-USDC",
    base_asset=BTC,
    quote_asset=USDC,
    lot_units=10_000,  # 0.0001 BTC in satoshi
    quote_per_tick_lot=1,  # 0.01 USDC x 0.0001 BTC = 1e-6 USDC
    min_lots=1,
    min_notional_units=1_000_000,  # 1 USDC
    params=MappingProxyType({}),
)


class TestSpotMarketType(MarketTypeContract):
    """Spot BTC-USDC with a 5 bp taker fee and a 1 bp maker rebate."""

    contract_prices = (1_000_000, 10_000_000)  # 10,000 to 100,000 USDC: every order clears min_notional
    contract_sizes = (1, 10_000)

    @pytest.fixture
    def market_type(self) -> SpotMarketType:
        """The registered spot market type."""
        return SpotMarketType()

    @pytest.fixture
    def market_info(self) -> MarketInfo:
        """BTC-USDC as examples/spot.toml lists it."""
        return BTC_USDC

    @pytest.fixture
    def fee_model(self) -> FeeModel:
        """The flat model with a 1 bp maker rebate and a 5 bp taker fee."""
        return FlatFees(-100, 500)


class TestFlatFees(FeeModelContract):
    """The flat fee model, 1 bp maker rebate and 5 bp taker fee."""

    maker_centibps = -100
    taker_centibps = 500

    @pytest.fixture
    def fee_factory(self) -> FlatFeeFactory:
        """The registered factory."""
        return FlatFeeFactory()


class TestFlatFeesOddRates(FeeModelContract):
    """The flat fee model at rates that never divide evenly (a maker fee, not a rebate)."""

    maker_centibps = 33
    taker_centibps = 777

    @pytest.fixture
    def fee_factory(self) -> FlatFeeFactory:
        """The registered factory."""
        return FlatFeeFactory()


class TestSpotMargin(MarginProviderContract):
    """Spot's margin provider (exactly its locks)."""

    @pytest.fixture
    def margin_provider(self) -> SpotMargin:
        """The registered margin provider."""
        return SpotMargin()

    def test_requirement_is_the_locks(self, margin_provider: SpotMargin) -> None:
        """A spot account needs exactly its non-zero locks."""
        assert margin_provider.requirement(3, {USDC: 5, BTC: 0, 2: 9}) == {USDC: 5, 2: 9}


class TestSpotMarketState(StatefulPluginContract):
    """A spot market's plugin state (it keeps none outside the book and the ledger)."""

    @pytest.fixture
    def stateful_factory(self) -> Callable[[], StatefulPlugin]:
        """Fresh BTC-USDC spot markets."""
        return lambda: SpotMarket(BTC_USDC, FlatFees(-100, 500))
