"""The prediction plugin's hook implementations (entry point `prediction` in group `exos`)."""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos_prediction.fees import ProbabilityFeeFactory
from exos_prediction.market_type import PredictionMargin, PredictionMarketType
from exos_prediction.resolution import CommitteeSource, OptimisticSource


@hookimpl
def exos_register_market_types(register: Register) -> None:
    """Register the binary-outcome market type."""
    register(PredictionMarketType())


@hookimpl
def exos_register_fee_models(register: Register) -> None:
    """Register the p(1 - p) fee model."""
    register(ProbabilityFeeFactory())


@hookimpl
def exos_register_margin_providers(register: Register) -> None:
    """Register the fully collateralised margin of outcome markets."""
    register(PredictionMargin())


@hookimpl
def exos_register_resolution_sources(register: Register) -> None:
    """Register committee and optimistic resolution."""
    register(CommitteeSource())
    register(OptimisticSource())


@hookimpl
def exos_register_simulations(register: Register) -> None:
    """Register the World Cup 2026 venue simulation."""
    from exos_prediction.wc_venue import WorldCupSimulation  # the tournament model loads only when used

    register(WorldCupSimulation())
