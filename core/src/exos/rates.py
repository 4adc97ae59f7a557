"""Fee-rate arithmetic the fee models share: rates in hundredths of a basis point, rounded in the venue's favour."""

from __future__ import annotations

CENTIBPS_PER_UNIT = 1_000_000  # a rate of one centibp (a hundredth of a basis point) is 1e-6


def venue_fee(weight: int, centibps: int, denominator: int = 1) -> int:
    """centibps × weight / (CENTIBPS_PER_UNIT × denominator): a fee rounds up, a rebate (negative rate) toward zero."""
    if centibps >= 0:
        return -(-weight * centibps // (CENTIBPS_PER_UNIT * denominator))
    return -(weight * -centibps // (CENTIBPS_PER_UNIT * denominator))
