"""The flat maker/taker fee model: rates in hundredths of a basis point, rounded once per order and role."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exos.protocols import API_VERSION
from exos.rates import CENTIBPS_PER_UNIT

SCALE = CENTIBPS_PER_UNIT  # centi-basis-points per unit


class FlatFees:
    """Fee = rate × received, computed on an order's cumulative amount so that partial fills cost what one fill would.

    Fees round up and rebates round down (in the venue's favour), once per order and role: the
    engine charges each fill the difference between the totals after and before it."""

    __slots__ = ("maker_centibps", "taker_centibps")
    flat = True  # fee() is exos.rates.venue_fee of the role's rate: a market type may compute it inline (FeeModel)

    def __init__(self, maker_centibps: int, taker_centibps: int) -> None:
        """Rates in hundredths of a basis point (negative maker rate: a rebate)."""
        self.maker_centibps = maker_centibps
        self.taker_centibps = taker_centibps

    def fee(self, received: int, maker: bool) -> int:
        """Total fee on `received` units (negative: a rebate)."""
        # exos.rates.venue_fee computes the same; inlined because fills call this four times each and the
        # extra call costs about 2% of a spot command (bench/engine_instructions.py)
        rate = self.maker_centibps if maker else self.taker_centibps
        if rate >= 0:
            return -(-received * rate // SCALE)
        return -(received * -rate // SCALE)


class FlatFeeFactory:
    """Registers as fee model "flat"."""

    api_version = API_VERSION
    name = "flat"

    def create(self, maker_centibps: int, taker_centibps: int, params: Mapping[str, Any]) -> FlatFees:
        """The fee model of one market."""
        return FlatFees(maker_centibps, taker_centibps)
