"""The C order book (core/csrc/book.c) behind a typed Python interface; the only module that touches `lib`.

Semantics: docs/book.md. `Book` returns attrs events for convenience; the engine's hot path uses the
same C calls through `Book.raw` and reads events straight out of the sink.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final

from exos.bookdump import parse_dump
from exos.errors import BookError, BookInputError, BuildError
from exos.types import (
    ANY_OWNER,
    DEFAULT_MAX_LEVELS,
    DEFAULT_MAX_ORDERS,
    MAX_CAP,
    NO_SLOTS,
    Command,
    Event,
    EventType,
    Level,
    Op,
    OrderState,
    Reason,
    Side,
    Slots,
    Stp,
    TimeInForce,
    check_client_id,
    check_i64,
    check_place_inputs,
    check_slot_index,
    check_u8,
    check_u64,
    require_client_id,
)

try:
    from exos._book import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise BuildError(f"the C order book is not built ({exc}); install exos with pip so setup.py compiles it") from exc

_EVENT_TYPES: dict[int, EventType] = {int(t): t for t in EventType}
_REASONS: dict[int, Reason] = {int(r): r for r in Reason}
_MESSAGE_LEN = 160
# Final literals: the compiled engine folds them in rather than looking them up per order
RESTED: Final = 0
REFUSED: Final = 1
EVENTS: Final = 2
_L2: Final = 7  # EventType.L2 (core/tests/test_native.py checks these literals)
_REJECTED: Final = 2  # EventType.REJECTED
_ANY_OWNER: Final = 2**64 - 1  # exos.types.ANY_OWNER


# exos_event as laid out in book_cdef.h: seq, cmd, type, side, reason, flags, then eight 8-byte fields
# and four slots. One unpack per event is several times cheaper than reading cdata fields one by one.
_EVENT: Final = struct.Struct("<QIBBBBQQqqqQQQ4Q")
_EVENT_SIZE: Final = _EVENT.size
# the summaries of the engine's two commonest calls, read in one unpack each (see place_engine, cancel_engine):
# an event's (seq, type, size, remaining), and a cancel's two events' (seq, side, price, remaining, slot 3; seq,
# size, remaining); the offsets are those of _EVENT's fields
_LEVEL: Final = struct.Struct("<Q4xB27xqq")
_CANCELLED: Final = struct.Struct("<Q5xB18xq8xq48xQQ32xqq")
RAW_EVENT_FIELDS = (
    "seq", "cmd", "type", "side", "reason", "flags", "order_id", "owner", "price", "size", "remaining",
    "maker_id", "maker_owner", "trade_id", "slot0", "slot1", "slot2", "slot3",
)  # fmt: skip
# exos_order_info: id, owner, price, size, remaining, expiry, entry, slots, client id, side, tif, flags,
# stp, has client id
_ORDER = struct.Struct("<QQqqqqQ4Q16sBBBBB3x")
RAW_ORDER_FIELDS = (
    "order_id", "owner", "price", "size", "remaining", "expiry", "entry", "slot0", "slot1", "slot2", "slot3",
    "client_id", "side", "tif", "flags", "stp", "has_client_id",
)  # fmt: skip
if ffi.sizeof("exos_order_info") != _ORDER.size:  # pragma: no cover - guards the layout above
    raise BuildError("exos_order_info's size differs from exos/book.py's layout: rebuild the extension")
if ffi.sizeof("exos_event") != _EVENT.size:  # pragma: no cover - guards the layout above
    raise BuildError("exos_event's size differs from exos/book.py's layout: rebuild the extension")


def _decode(raw: tuple[int, ...]) -> Event:
    """One unpacked C event as an attrs Event."""
    (seq, cmd, etype, side, reason, flags, order_id, owner, price, size, remaining, maker_id, maker_owner,
     trade_id, s0, s1, s2, s3) = raw  # fmt: skip
    return Event(
        _EVENT_TYPES[etype], seq, cmd, side, _REASONS[reason], flags, order_id, owner, price, size, remaining,
        maker_id, maker_owner, trade_id, (s0, s1, s2, s3),
    )  # fmt: skip


def _order_state(info: Any) -> OrderState:
    """A C exos_order_info as an OrderState."""
    s = info.slots
    return OrderState(
        order_id=info.id,
        owner=info.owner,
        side=Side(info.side),
        price=info.price,
        size=info.size,
        remaining=info.remaining,
        tif=TimeInForce(info.tif),
        flags=info.flags,
        stp=Stp(info.stp),
        expiry=info.expiry,
        client_id=bytes(ffi.buffer(info.client_id)) if info.has_client_id else None,
        slots=(s[0], s[1], s[2], s[3]),
        entry=info.entry,
    )


def _check_cap(name: str, value: int) -> int:
    """Caps are 1..MAX_CAP."""
    if not 1 <= value <= MAX_CAP:
        raise BookInputError(f"{name}: must be 1..{MAX_CAP}, got {value}")
    return value


class Book:
    """One market's order book in C: price-time priority over sparse integer prices."""

    __slots__ = (
        "_book", "_c_cancel", "_c_get_slot", "_c_null", "_c_place4", "_ev", "_info", "_message", "_sink", "_slot_out",
        "_view", "_view_cap", "max_levels", "max_orders",
    )  # fmt: skip

    def __init__(self, max_orders: int = DEFAULT_MAX_ORDERS, max_levels: int = DEFAULT_MAX_LEVELS) -> None:
        """Create an empty book with caps on open orders and price levels."""
        _check_cap("max_orders", max_orders)
        _check_cap("max_levels", max_levels)
        self._adopt(lib.exos_book_new(max_orders, max_levels))

    def _adopt(self, book: Any) -> None:
        """Take ownership of a C book (freed with this object)."""
        if book == ffi.NULL:
            raise MemoryError("exos: could not allocate an order book")
        self._book = ffi.gc(book, lib.exos_book_free)
        sink = lib.exos_sink_new(256)
        if sink == ffi.NULL:
            raise MemoryError("exos: could not allocate an event sink")
        self._sink = ffi.gc(sink, lib.exos_sink_free)
        lib.exos_book_set_sink(self._book, self._sink)
        self._remap()
        self._info = ffi.new("exos_order_info *")
        self._slot_out = ffi.new("uint64_t *")
        self._message = ffi.new("char[]", _MESSAGE_LEN)
        # the hot path's C functions, bound once: a call then skips the module lookup and cffi's getattr
        self._c_place4 = lib.exos_book_place4
        self._c_cancel = lib.exos_book_cancel
        self._c_get_slot = lib.exos_book_get_slot
        self._c_null = ffi.NULL
        self.max_orders: int = lib.exos_book_max_orders(self._book)
        self.max_levels: int = lib.exos_book_max_levels(self._book)

    @classmethod
    def load(cls, data: bytes) -> Book:
        """A book from its canonical dump; BookError(BAD_SNAPSHOT) if the bytes are not one."""
        self = cls(1, 1)  # a one-order book that _adopt replaces (no __new__: mypyc compiles this class)
        message = ffi.new("char[]", _MESSAGE_LEN)
        book = lib.exos_book_load(data, len(data), message, _MESSAGE_LEN)
        if book == ffi.NULL:
            raise BookError(f"book snapshot: {ffi.string(message).decode()}", code="BAD_SNAPSHOT")
        self._adopt(book)
        return self

    # ------------------------------------------------------------ the engine's path: raw tuples, no checks
    # Callers validate every field first (the engine does); events come back as tuples laid out as
    # RAW_EVENT_FIELDS, orders as RAW_ORDER_FIELDS.

    def _remap(self) -> None:
        """Map the sink's event array (again, after it grew and moved)."""
        sink = self._sink
        self._ev = sink.ev
        self._view = ffi.buffer(sink.ev, sink.cap * _EVENT.size)
        self._view_cap = sink.cap

    def _raw(self, n: int) -> list[tuple[Any, ...]]:
        """The sink's first n events as tuples."""
        if n < 0:
            raise MemoryError("exos: the order book ran out of memory; nothing changed")
        if n > self._view_cap:  # the sink only grows when a call needs more room than it had
            self._remap()
        unpack = _EVENT.unpack_from
        view = self._view
        return [unpack(view, offset) for offset in range(0, n * _EVENT.size, _EVENT.size)]

    def place_engine(
        self, order_id: int, owner: int, side: int, price: int, size: int, tif: int, flags: int, stp: int,
        expiry: int, client_id: bytes | None, s0: int, s1: int, s2: int, s3: int,
    ) -> tuple[Any, ...]:  # fmt: skip
        """place() for the engine's hot path, summarised so the common cases need no full event decode.

        Returns (RESTED, accepted seq, level size, level count, level seq) when the order rested without
        trading, (REFUSED, reason) when the book rejected it, else (EVENTS, raw event tuples)."""
        n: int = self._c_place4(
            self._book, order_id, owner, side, price, size, tif, flags, stp, expiry,
            self._c_null if client_id is None else client_id, s0, s1, s2, s3,
        )  # fmt: skip
        if n > self._view_cap:
            self._remap()
        if n == 2:
            level = _LEVEL.unpack_from(self._view, _EVENT_SIZE)
            kind: int = level[1]
            if kind == _L2:
                seq: int = level[0]
                return (RESTED, seq - 1, level[2], level[3], seq)
        elif n == 1 and self._ev[0].type == _REJECTED:
            return (REFUSED, self._ev[0].reason)
        return (EVENTS, self._raw(n))

    def cancel_engine(self, order_id: int) -> tuple[int, int, int, int, int, int, int, int]:
        """cancel() of an open order for the engine's hot path.

        Returns (side, price, cancelled size, seq, level size, level count, level seq, the order's slot 3); the
        caller knows the order is open."""
        self._c_cancel(self._book, order_id, _ANY_OWNER, False)
        seq, side, price, cancelled, slot3, level_seq, size, count = _CANCELLED.unpack_from(self._view)  # 2 events fit
        return (side, price, cancelled, seq, size, count, level_seq, slot3)

    def order_slot(self, order_id: int, index: int) -> int | None:
        """Slot `index` of an open order, or None if no order with that id is open."""
        out = self._slot_out
        return int(out[0]) if self._c_get_slot(self._book, order_id, index, out) else None

    def cancel_raw(self, order_id: int, owner: int, expired: bool) -> list[tuple[Any, ...]]:
        """cancel() without range checks or attrs."""
        return self._raw(lib.exos_book_cancel(self._book, order_id, owner, expired))

    def cancel_all_raw(self, owner: int, slot_index: int, slot_value: int) -> list[tuple[Any, ...]]:
        """cancel_all() without range checks or attrs (slot_index -1: no filter)."""
        return self._raw(lib.exos_book_cancel_all(self._book, owner, slot_index, slot_value))

    def amend_raw(self, order_id: int, owner: int, price: int, size: int) -> list[tuple[Any, ...]]:
        """amend() without range checks or attrs."""
        return self._raw(lib.exos_book_amend(self._book, order_id, owner, price, size))

    def order_raw(self, order_id: int) -> tuple[Any, ...] | None:
        """An open order as a RAW_ORDER_FIELDS tuple, or None."""
        if not lib.exos_book_get(self._book, order_id, self._info):
            return None
        return _ORDER.unpack(ffi.buffer(self._info))

    def order_by_client_id_raw(self, owner: int, client_id: bytes) -> tuple[Any, ...] | None:
        """An owner's open order by client id as a RAW_ORDER_FIELDS tuple, or None."""
        if not lib.exos_book_get_client_id(self._book, owner, client_id, self._info):
            return None
        return _ORDER.unpack(ffi.buffer(self._info))

    def owner_orders(self, owner: int, slot_index: int = -1, slot_value: int = 0) -> list[int]:
        """Ids of an owner's open orders (whose slot `slot_index` is `slot_value`; -1: all), in entry order."""
        count = lib.exos_book_owner_orders(self._book, owner, slot_index, slot_value, ffi.NULL, 0)
        if not count:
            return []
        ids = ffi.new("uint64_t[]", count)
        lib.exos_book_owner_orders(self._book, owner, slot_index, slot_value, ids, count)
        return [int(ids[i]) for i in range(count)]

    def set_slot_raw(self, order_id: int, index: int, value: int) -> None:
        """set_slot() without range checks (the order must be open)."""
        lib.exos_book_set_slot(self._book, order_id, index, value)

    @property
    def raw(self) -> tuple[Any, Any]:
        """The (C book, its bound C sink) pair for callers that drive `exos._book.lib` directly."""
        return self._book, self._sink

    def _events(self, n: int) -> list[Event]:
        """The first n events of the sink, decoded."""
        if n < 0:
            raise MemoryError("exos: the order book ran out of memory; nothing changed")
        if n > self._view_cap:  # keep the cached mapping valid for the raw paths too
            self._remap()
        return [_decode(raw) for raw in _EVENT.iter_unpack(self._view[: n * _EVENT.size])]

    # ------------------------------------------------------------ commands

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
        check_place_inputs(order_id, owner, side, price, size, tif, flags, stp, expiry, client_id, slots)
        n = lib.exos_book_place(
            self._book,
            order_id,
            owner,
            side,
            price,
            size,
            tif,
            flags,
            stp,
            expiry,
            ffi.NULL if client_id is None else client_id,
            list(slots),
        )
        return self._events(n)

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
        return self.place(
            order_id, owner, side, worst_price, size, tif=TimeInForce.IOC, stp=stp, client_id=client_id, slots=slots
        )

    def cancel(self, order_id: int, owner: int = ANY_OWNER, *, expired: bool = False) -> list[Event]:
        """Cancel an open order by id; expired=True reports EXPIRED."""
        check_u64("order_id", order_id)
        check_u64("owner", owner)
        return self._events(lib.exos_book_cancel(self._book, order_id, owner, bool(expired)))

    def cancel_by_client_id(self, owner: int, client_id: bytes, *, expired: bool = False) -> list[Event]:
        """Cancel an owner's open order by its client id."""
        check_u64("owner", owner)
        require_client_id(client_id)
        return self._events(lib.exos_book_cancel_client_id(self._book, owner, client_id, bool(expired)))

    def cancel_all(self, owner: int, slot: tuple[int, int] | None = None) -> list[Event]:
        """Cancel all of an owner's open orders (optionally those whose slot k equals v)."""
        check_u64("owner", owner)
        index, value = _slot_filter(slot)
        return self._events(lib.exos_book_cancel_all(self._book, owner, index, value))

    def amend(self, order_id: int, owner: int, price: int, size: int) -> list[Event]:
        """Change an open order's price and/or total size."""
        check_u64("order_id", order_id)
        check_u64("owner", owner)
        check_i64("price", price)
        check_i64("size", size)
        return self._events(lib.exos_book_amend(self._book, order_id, owner, price, size))

    def batch(self, commands: Sequence[Command]) -> list[Event]:
        """Run many commands in one C call; the same events as one by one, with cmd set to each index."""
        n = len(commands)
        cmds = ffi.new("exos_cmd[]", max(n, 1))
        for i, command in enumerate(commands):
            _fill_command(cmds[i], command)
        return self._events(lib.exos_book_batch(self._book, cmds, n))

    # ------------------------------------------------------------ queries

    def best_bid(self) -> tuple[int, int] | None:
        """(price, size) of the best bid level, or None."""
        return self._best(Side.BUY)

    def best_ask(self) -> tuple[int, int] | None:
        """(price, size) of the best ask level, or None."""
        return self._best(Side.SELL)

    def _best(self, side: int) -> tuple[int, int] | None:
        """The best level of one side."""
        price: int = lib.exos_book_best_price(self._book, side)
        return (price, lib.exos_book_best_size(self._book, side)) if price else None

    def depth(self, side: int, n: int) -> list[Level]:
        """Up to n levels of one side, best first."""
        if side not in (Side.BUY, Side.SELL):
            raise BookInputError(f"side: must be 0 or 1, got {side}")
        check_u64("n", n)
        n = min(n, self.levels)
        out = ffi.new("exos_level[]", max(n, 1))
        got = lib.exos_book_depth(self._book, side, n, out)
        return [Level(out[k].price, out[k].size, out[k].count) for k in range(got)]

    def order(self, order_id: int) -> OrderState | None:
        """An open order by id, or None."""
        check_u64("order_id", order_id)
        return _order_state(self._info) if lib.exos_book_get(self._book, order_id, self._info) else None

    def order_by_client_id(self, owner: int, client_id: bytes) -> OrderState | None:
        """An owner's open order by client id, or None."""
        check_u64("owner", owner)
        require_client_id(client_id)
        found = lib.exos_book_get_client_id(self._book, owner, client_id, self._info)
        return _order_state(self._info) if found else None

    def orders(self) -> list[OrderState]:
        """Every open order in canonical order (bids best first, then asks, queue order within a level)."""
        return parse_dump(self.dump()).orders

    def set_slot(self, order_id: int, index: int, value: int) -> None:
        """Write engine slot `index` of an open order."""
        check_u64("order_id", order_id)
        check_slot_index(index)
        check_u64("value", value)
        if lib.exos_book_set_slot(self._book, order_id, index, value) != 0:
            raise BookError(f"set_slot: no open order {order_id}", code="UNKNOWN_ORDER")

    def check(self) -> None:
        """Raise BookError if an internal invariant is broken."""
        if lib.exos_book_check(self._book, self._message, _MESSAGE_LEN) != lib.EXOS_OK:
            raise BookError(f"book invariant broken: {ffi.string(self._message).decode()}", code="CORRUPT")

    def dump(self) -> bytes:
        """The canonical bytes of the book (docs/book.md, Canonical dump)."""
        size = lib.exos_book_dump_size(self._book)
        out = ffi.new("uint8_t[]", size)
        lib.exos_book_dump(self._book, out, size)
        return bytes(ffi.buffer(out, size))

    def memory(self) -> int:
        """Bytes the C book has allocated (pools, indexes, tables)."""
        return int(lib.exos_book_memory(self._book))

    @property
    def seq(self) -> int:
        """The book's sequence number (last non-reject event)."""
        return int(lib.exos_book_seq(self._book))

    @property
    def trade_id(self) -> int:
        """The last trade id issued (0 before the first fill)."""
        return int(lib.exos_book_trade_id(self._book))

    @property
    def entry(self) -> int:
        """The last entry number issued."""
        return int(lib.exos_book_entry(self._book))

    @property
    def open_orders(self) -> int:
        """Number of open orders."""
        return int(lib.exos_book_open_orders(self._book))

    @property
    def levels(self) -> int:
        """Number of price levels on both sides."""
        return int(lib.exos_book_levels(self._book))


def _slot_filter(slot: tuple[int, int] | None) -> tuple[int, int]:
    """(index, value) for C, index -1 meaning no filter."""
    if slot is None:
        return -1, 0
    index, value = slot
    return check_slot_index(index), check_u64("slot value", value)


def _fill_command(c: Any, command: Command) -> None:
    """Copy a Command into a C exos_cmd, checking every field's range first."""
    op = check_u8("op", int(command.op))
    if op == Op.PLACE:
        check_place_inputs(
            command.order_id,
            command.owner,
            command.side,
            command.price,
            command.size,
            command.tif,
            command.flags,
            command.stp,
            command.expiry,
            command.client_id,
            command.slots,
        )
    else:
        check_u64("order_id", command.order_id)
        check_u64("owner", command.owner)
        check_i64("price", command.price)
        check_i64("size", command.size)
        check_client_id(command.client_id)
        if op == Op.CANCEL_BY_CLIENT_ID:
            require_client_id(command.client_id)
    index, value = _slot_filter(command.slot_filter)
    c.op = op
    c.side = command.side if op == Op.PLACE else 0
    c.tif = command.tif if op == Op.PLACE else 0
    c.flags = command.flags if op == Op.PLACE else 0
    c.stp = command.stp if op == Op.PLACE else 0
    c.expired = bool(command.expired)
    c.has_client_id = command.client_id is not None
    c.slot_filter = index
    c.id = command.order_id
    c.owner = command.owner
    c.price = command.price
    c.size = command.size
    c.expiry = command.expiry if op == Op.PLACE else 0
    c.slots = list(command.slots) if op == Op.PLACE else [value, 0, 0, 0]
    if command.client_id is not None:
        ffi.memmove(c.client_id, command.client_id, len(command.client_id))
