"""The perps plugin's hook implementations (entry point `perps` in group `exos`)."""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos_perps.market_type import PerpMargin, PerpMarketType


@hookimpl
def exos_register_market_types(register: Register) -> None:
    """Register the linear perpetual market type."""
    register(PerpMarketType())


@hookimpl
def exos_register_margin_providers(register: Register) -> None:
    """Register the perpetuals' margin provider."""
    register(PerpMargin())


@hookimpl
def exos_register_simulations(register: Register) -> None:
    """Register the unified venue's simulation (spot, perpetuals and a prediction market on one collateral)."""
    from exos_perps.simulation import UnifiedSimulation

    register(UnifiedSimulation())
