"""exos: an embeddable exchange engine. Today: the C order book and its reference model."""

from __future__ import annotations

from exos.book import Book
from exos.errors import BookError, BookInputError, BuildError, ExosError
from exos.refbook import RefBook
from exos.types import (
    ANY_OWNER,
    Command,
    Event,
    EventFlag,
    EventType,
    Level,
    Op,
    OrderBook,
    OrderFlag,
    OrderState,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

__version__ = "0.1.0"

__all__ = [
    "ANY_OWNER",
    "Book",
    "BookError",
    "BookInputError",
    "BuildError",
    "Command",
    "Event",
    "EventFlag",
    "EventType",
    "ExosError",
    "Level",
    "Op",
    "OrderBook",
    "OrderFlag",
    "OrderState",
    "Reason",
    "RefBook",
    "Side",
    "Stp",
    "TimeInForce",
    "__version__",
]
