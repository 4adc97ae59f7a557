"""exos spot markets: a base asset traded against a quote asset, fully collateralised."""

from exos_spot.fees import FlatFeeFactory, FlatFees
from exos_spot.market import SpotMargin, SpotMarket, SpotMarketType

__all__ = ["FlatFeeFactory", "FlatFees", "SpotMargin", "SpotMarket", "SpotMarketType"]
