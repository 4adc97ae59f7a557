"""The probability fee model: `rate × p × (1 − p)` per share, in collateral (Polymarket/Kalshi style).

A fee is largest at p = 0.5 and vanishes towards certainty, so a trader buying a 0.99 favourite pays
almost nothing. The binary market reads the rates and `weighting` and computes fees on an order's
cumulative weighted notional (slot 1 as taker, slot 2 as maker), rounded once per order and role:
fees up, rebates down, in the venue's favour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exos.protocols import API_VERSION
from exos.rates import CENTIBPS_PER_UNIT, venue_fee

SCALE = CENTIBPS_PER_UNIT  # centi-basis-points per unit


class ProbabilityFees:
    """Rates for a binary market whose fee per share is rate × p × (1 − p) (p the price of the token traded)."""

    __slots__ = ("maker_centibps", "taker_centibps")
    weighting = "probability"

    def __init__(self, maker_centibps: int, taker_centibps: int) -> None:
        """Rates in hundredths of a basis point (negative maker rate: a rebate)."""
        self.maker_centibps = maker_centibps
        self.taker_centibps = taker_centibps

    def fee(self, received: int, maker: bool) -> int:
        """Fee on an amount already weighted by p(1 − p) (the market weights it)."""
        return venue_fee(received, self.maker_centibps if maker else self.taker_centibps)


class ProbabilityFeeFactory:
    """Registers as fee model "probability"."""

    api_version = API_VERSION
    name = "probability"

    def create(self, maker_centibps: int, taker_centibps: int, params: Mapping[str, Any]) -> ProbabilityFees:
        """The fee model of one market; rates above 100% are refused."""
        if not -SCALE <= maker_centibps <= SCALE or not 0 <= taker_centibps <= SCALE:
            raise ValueError("fees: rates must lie within 100% (taker >= 0)")
        return ProbabilityFees(maker_centibps, taker_centibps)
