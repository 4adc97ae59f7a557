"""Value types of the order book, shared by the C book's wrapper and the reference book (docs/book.md)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

from exos.errors import BookInputError

U64_MAX = 2**64 - 1
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
ANY_OWNER = U64_MAX
N_SLOTS = 4
CLIENT_ID_LEN = 16
NO_SLOTS: tuple[int, int, int, int] = (0, 0, 0, 0)
DEFAULT_MAX_ORDERS = 1 << 22
DEFAULT_MAX_LEVELS = 1 << 14
MAX_CAP = 1 << 30  # caps are u32 in the dump; pool indices stay below 2**31


class Side(enum.IntEnum):
    """Which side of the book an order is on."""

    BUY = 0
    SELL = 1


class TimeInForce(enum.IntEnum):
    """How long an order may live: GTC and GTD rest, IOC and FOK never do."""

    GTC = 0
    GTD = 1
    IOC = 2
    FOK = 3


class Stp(enum.IntEnum):
    """Self-trade prevention mode, taken from the taker."""

    CANCEL_MAKER = 0
    CANCEL_TAKER = 1
    CANCEL_BOTH = 2


class OrderFlag(enum.IntFlag):
    """Order flags passed to place."""

    NONE = 0
    POST_ONLY = 1


class EventFlag(enum.IntFlag):
    """Flags on fill and amend events."""

    NONE = 0
    MAKER_DONE = 1
    TAKER_DONE = 2
    PRIORITY_KEPT = 4


class EventType(enum.IntEnum):
    """What an event reports."""

    ACCEPTED = 1
    REJECTED = 2
    FILL = 3
    CANCELLED = 4
    EXPIRED = 5
    AMENDED = 6
    L2 = 7


class Reason(enum.IntEnum):
    """Why an order was rejected (1..31) or cancelled (32..)."""

    NONE = 0
    BAD_SIDE = 1
    BAD_TIF = 2
    BAD_STP = 3
    BAD_FLAGS = 4
    BAD_PRICE = 5
    BAD_SIZE = 6
    OVERFLOW = 7
    BAD_EXPIRY = 8
    BAD_ID = 9
    DUPLICATE_ID = 10
    DUPLICATE_CLIENT_ID = 11
    POST_ONLY_WOULD_CROSS = 12
    ORDER_LIMIT = 13
    LEVEL_LIMIT = 14
    FOK_UNFILLABLE = 15
    UNKNOWN_ORDER = 16
    NOT_OWNER = 17
    NO_CHANGE = 18
    BAD_OP = 19
    USER = 32
    EXPIRY = 33
    STP = 34
    IOC_REMAINDER = 35
    AMENDED_BELOW_FILLED = 36
    CANCEL_ALL = 37


class Op(enum.IntEnum):
    """Batch command operations."""

    PLACE = 0
    CANCEL = 1
    CANCEL_BY_CLIENT_ID = 2
    CANCEL_ALL = 3
    AMEND = 4


Slots = tuple[int, int, int, int]


@attrs.frozen(slots=True)
class Event:
    """One thing the book did; see docs/book.md for which fields each type uses."""

    type: EventType
    seq: int
    cmd: int = 0
    side: int = 0
    reason: Reason = Reason.NONE
    flags: int = 0
    order_id: int = 0
    owner: int = 0
    price: int = 0
    size: int = 0
    remaining: int = 0
    maker_id: int = 0
    maker_owner: int = 0
    trade_id: int = 0
    slots: Slots = NO_SLOTS


@attrs.frozen(slots=True)
class OrderState:
    """An open order as the book holds it."""

    order_id: int
    owner: int
    side: Side
    price: int
    size: int
    remaining: int
    tif: TimeInForce
    flags: int
    stp: Stp
    expiry: int
    client_id: bytes | None
    slots: Slots
    entry: int

    @property
    def filled(self) -> int:
        """How much of the order has traded."""
        return self.size - self.remaining


@attrs.frozen(slots=True)
class Level:
    """One L2 price level: total size and number of orders."""

    price: int
    size: int
    count: int


@attrs.frozen(slots=True)
class Command:
    """One batch command; fields an op does not use are ignored (docs/book.md, Batch)."""

    op: Op
    order_id: int = 0
    owner: int = 0
    side: int = 0
    price: int = 0
    size: int = 0
    tif: int = TimeInForce.GTC
    flags: int = 0
    stp: int = Stp.CANCEL_MAKER
    expiry: int = 0
    client_id: bytes | None = None
    slots: Slots = NO_SLOTS
    expired: bool = False
    slot_filter: tuple[int, int] | None = None


def check_u64(name: str, value: int) -> int:
    """Return value if it fits u64, else raise BookInputError naming the field."""
    if not 0 <= value <= U64_MAX:
        raise BookInputError(f"{name}: {value} does not fit in u64", code="BOOK_INPUT")
    return value


def check_i64(name: str, value: int) -> int:
    """Return value if it fits i64, else raise BookInputError naming the field."""
    if not I64_MIN <= value <= I64_MAX:
        raise BookInputError(f"{name}: {value} does not fit in i64", code="BOOK_INPUT")
    return value


def check_u8(name: str, value: int) -> int:
    """Return value if it fits u8, else raise BookInputError naming the field."""
    if not 0 <= value <= 255:
        raise BookInputError(f"{name}: {value} does not fit in u8", code="BOOK_INPUT")
    return value


def check_client_id(client_id: bytes | None) -> bytes | None:
    """Return client_id if it is None or exactly 16 bytes, else raise BookInputError."""
    if client_id is not None and (not isinstance(client_id, bytes) or len(client_id) != CLIENT_ID_LEN):
        raise BookInputError(f"client_id: must be {CLIENT_ID_LEN} bytes, got {client_id!r}", code="BOOK_INPUT")
    return client_id


def require_client_id(client_id: bytes | None) -> bytes:
    """Return client_id if it is exactly 16 bytes (None is not allowed here), else raise BookInputError."""
    if check_client_id(client_id) is None:
        raise BookInputError("client_id: required, got None", code="BOOK_INPUT")
    assert client_id is not None
    return client_id


def check_slots(slots: Slots) -> Slots:
    """Return slots if it is four u64 values, else raise BookInputError."""
    if len(slots) != N_SLOTS:
        raise BookInputError(f"slots: need {N_SLOTS} values, got {len(slots)}", code="BOOK_INPUT")
    for k, v in enumerate(slots):
        check_u64(f"slots[{k}]", v)
    return (slots[0], slots[1], slots[2], slots[3])


def check_slot_index(index: int) -> int:
    """Return index if it names one of the engine slots, else raise BookInputError."""
    if not 0 <= index < N_SLOTS:
        raise BookInputError(f"slot index: must be 0..{N_SLOTS - 1}, got {index}", code="BOOK_INPUT")
    return index


class OrderBook(Protocol):
    """The interface both books implement (exos.book.Book in C, exos.refbook.RefBook in Python)."""

    max_orders: int
    max_levels: int

    def place(
        self,
        order_id: int,
        owner: int,
        side: int,
        price: int,
        size: int,
        *,
        tif: int = TimeInForce.GTC,
        flags: int = 0,
        stp: int = Stp.CANCEL_MAKER,
        expiry: int = 0,
        client_id: bytes | None = None,
        slots: Slots = NO_SLOTS,
    ) -> list[Event]:
        """Place an order; returns its events (docs/book.md, place)."""
        ...

    def market(
        self,
        order_id: int,
        owner: int,
        side: int,
        size: int,
        worst_price: int,
        *,
        stp: int = Stp.CANCEL_MAKER,
        client_id: bytes | None = None,
        slots: Slots = NO_SLOTS,
    ) -> list[Event]:
        """Place a market order: an IOC bounded by its worst acceptable price."""
        ...

    def cancel(self, order_id: int, owner: int = ANY_OWNER, *, expired: bool = False) -> list[Event]:
        """Cancel an open order by id; expired=True reports EXPIRED."""
        ...

    def cancel_by_client_id(self, owner: int, client_id: bytes, *, expired: bool = False) -> list[Event]:
        """Cancel an owner's open order by its client id."""
        ...

    def cancel_all(self, owner: int, slot: tuple[int, int] | None = None) -> list[Event]:
        """Cancel all of an owner's open orders (optionally those whose slot k equals v)."""
        ...

    def amend(self, order_id: int, owner: int, price: int, size: int) -> list[Event]:
        """Change an open order's price and/or total size."""
        ...

    def batch(self, commands: Sequence[Command]) -> list[Event]:
        """Run many commands; the same events as one by one, with cmd set to each index."""
        ...

    def best_bid(self) -> tuple[int, int] | None:
        """(price, size) of the best bid level, or None."""
        ...

    def best_ask(self) -> tuple[int, int] | None:
        """(price, size) of the best ask level, or None."""
        ...

    def depth(self, side: int, n: int) -> list[Level]:
        """Up to n levels of one side, best first."""
        ...

    def order(self, order_id: int) -> OrderState | None:
        """An open order by id, or None."""
        ...

    def order_by_client_id(self, owner: int, client_id: bytes) -> OrderState | None:
        """An owner's open order by client id, or None."""
        ...

    def orders(self) -> list[OrderState]:
        """Every open order in canonical order: bids best first, then asks best first, queue order within a level."""
        ...

    def set_slot(self, order_id: int, index: int, value: int) -> None:
        """Write engine slot `index` of an open order."""
        ...

    def check(self) -> None:
        """Raise BookError if an internal invariant is broken."""
        ...

    def dump(self) -> bytes:
        """The canonical bytes of the book (docs/book.md, Canonical dump)."""
        ...

    @property
    def seq(self) -> int:
        """The book's sequence number (last non-reject event)."""
        ...

    @property
    def trade_id(self) -> int:
        """The last trade id issued (0 before the first fill)."""
        ...

    @property
    def entry(self) -> int:
        """The last entry number issued."""
        ...

    @property
    def open_orders(self) -> int:
        """Number of open orders."""
        ...

    @property
    def levels(self) -> int:
        """Number of price levels on both sides."""
        ...


def check_place_inputs(
    order_id: int,
    owner: int,
    side: int,
    price: int,
    size: int,
    tif: int,
    flags: int,
    stp: int,
    expiry: int,
    client_id: bytes | None,
    slots: Slots,
) -> Slots:
    """Raise BookInputError for values of a place that do not fit their fields; returns the slots as a tuple."""
    if (
        0 <= order_id <= U64_MAX
        and 0 <= owner <= U64_MAX
        and 0 <= side <= 255
        and I64_MIN <= price <= I64_MAX
        and I64_MIN <= size <= I64_MAX
        and 0 <= tif <= 255
        and 0 <= flags <= 255
        and 0 <= stp <= 255
        and I64_MIN <= expiry <= I64_MAX
        and (client_id is None or (type(client_id) is bytes and len(client_id) == CLIENT_ID_LEN))
        and len(slots) == N_SLOTS
        and all(0 <= v <= U64_MAX for v in slots)
    ):
        return (slots[0], slots[1], slots[2], slots[3])  # the common case: one expression, not eleven calls
    check_u64("order_id", order_id)
    check_u64("owner", owner)
    check_u8("side", side)
    check_i64("price", price)
    check_i64("size", size)
    check_u8("tif", tif)
    check_u8("flags", flags)
    check_u8("stp", stp)
    check_i64("expiry", expiry)
    check_client_id(client_id)
    return check_slots(slots)
