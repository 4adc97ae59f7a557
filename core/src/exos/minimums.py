"""The size and notional minimums a market's `[[markets]]` entry sets, checked alike by every market type."""

from __future__ import annotations

from exos.protocols import OrderRejection


def check_minimums(price: int, size: int, per_tick_lot: int, min_lots: int, min_notional: int) -> None:
    """Refuse an order below the market's minimum size (lots) or minimum notional (quote units at its limit)."""
    if size < min_lots:
        raise OrderRejection("MIN_SIZE", f"size: {size} lots is below the minimum of {min_lots}")
    notional = price * size * per_tick_lot
    if notional < min_notional:
        raise OrderRejection("MIN_NOTIONAL", f"notional: {notional} quote units is below the minimum of {min_notional}")
