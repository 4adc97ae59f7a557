"""exos: an embeddable exchange engine: one deterministic state machine, a C order book, pluggy plugins."""

from __future__ import annotations

from exos import native as native  # first: it picks the build of the modules below (exos/native.py)
from exos.book import Book
from exos.engine import Engine, EngineError
from exos.errors import BookError, BookInputError, BuildError, ExosError
from exos.manifest import Manifest, ManifestError
from exos.refbook import RefBook
from exos.types import (
    ANY_OWNER,
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
    "Engine",
    "EngineError",
    "Event",
    "EventFlag",
    "EventType",
    "ExosError",
    "Level",
    "Manifest",
    "ManifestError",
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
