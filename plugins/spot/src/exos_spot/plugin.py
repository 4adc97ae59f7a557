"""The spot plugin's hook implementations (entry point `spot` in group `exos`)."""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos_spot.fees import FlatFeeFactory
from exos_spot.market import SpotMargin, SpotMarketType


@hookimpl
def exos_register_market_types(register: Register) -> None:
    """Register the spot market type."""
    register(SpotMarketType())


@hookimpl
def exos_register_fee_models(register: Register) -> None:
    """Register the flat maker/taker fee model."""
    register(FlatFeeFactory())


@hookimpl
def exos_register_margin_providers(register: Register) -> None:
    """Register spot's margin provider (its locks)."""
    register(SpotMargin())
