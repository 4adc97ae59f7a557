"""exos prediction markets: binary outcome markets with complementary matching, neg-risk events and resolution."""

from exos_prediction.fees import ProbabilityFeeFactory, ProbabilityFees
from exos_prediction.market import BinaryMarket
from exos_prediction.market_type import PredictionMarketType
from exos_prediction.outcome_event import OutcomeEvent
from exos_prediction.resolution import CommitteeSource, OptimisticSource, ResolutionSource

__all__ = [
    "BinaryMarket",
    "CommitteeSource",
    "OptimisticSource",
    "OutcomeEvent",
    "PredictionMarketType",
    "ProbabilityFeeFactory",
    "ProbabilityFees",
    "ResolutionSource",
]
