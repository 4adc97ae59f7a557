"""The reference order book: a deliberately naive, obviously-correct model of docs/book.md.

It exists to be compared against the C book on random command streams, so it favours being easy to
check by eye over being fast: plain lists per price level, linear scans, sorting when convenient.
It shares no code with the C book.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import attrs

from exos.errors import BookError, BookInputError
from exos.types import (
    ANY_OWNER,
    CLIENT_ID_LEN,
    DEFAULT_MAX_LEVELS,
    DEFAULT_MAX_ORDERS,
    I64_MAX,
    MAX_CAP,
    NO_SLOTS,
    Command,
    Event,
    EventFlag,
    EventType,
    Level,
    Op,
    OrderFlag,
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
    check_slots,
    check_u8,
    check_u64,
    require_client_id,
)

MAGIC = b"EXOSBK01"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIIIQQQ")  # magic, version, max_orders, max_levels, count, seq, trade id, entry
RECORD = struct.Struct("<QQqqqqQ4Q16sBBBB4s")  # see docs/book.md, Canonical dump
assert HEADER.size == 48 and RECORD.size == 112

DUMP_POST_ONLY = 1
DUMP_HAS_CLIENT_ID = 2
NO_CLIENT_ID = bytes(CLIENT_ID_LEN)
RESTING_TIFS = (TimeInForce.GTC, TimeInForce.GTD)


@attrs.define(eq=False)
class _Order:
    """A mutable order record; the same object is the taker during a match and the resting order after."""

    order_id: int
    owner: int
    side: int
    price: int
    size: int
    remaining: int
    tif: int
    flags: int
    stp: int
    expiry: int
    client_id: bytes | None
    slots: Slots
    entry: int


@attrs.define(eq=False)
class _Level:
    """One price level: its queue, head first. Its total is recomputed on demand so it can never go stale."""

    price: int
    orders: list[_Order] = attrs.field(factory=list)

    @property
    def total(self) -> int:
        """Sum of the remaining sizes in the queue."""
        return sum(o.remaining for o in self.orders)


def _check_cap(name: str, value: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= MAX_CAP:
        raise BookInputError(f"{name}: must be 1..{MAX_CAP}, got {value!r}", code="BOOK_INPUT")
    return value


def _bad_snapshot(why: str) -> BookError:
    return BookError(f"snapshot: {why}", code="BAD_SNAPSHOT")


def _corrupt(why: str) -> BookError:
    return BookError(f"book invariant broken: {why}", code="CORRUPT")


class RefBook:
    """The pure-Python reference implementation of the order book (docs/book.md)."""

    def __init__(self, max_orders: int = DEFAULT_MAX_ORDERS, max_levels: int = DEFAULT_MAX_LEVELS) -> None:
        """Create an empty book holding at most max_orders open orders in at most max_levels levels."""
        self.max_orders = _check_cap("max_orders", max_orders)
        self.max_levels = _check_cap("max_levels", max_levels)
        # Each side is a list of levels kept sorted best first (bids high to low, asks low to high).
        self._bids: list[_Level] = []
        self._asks: list[_Level] = []
        self._seq = 0
        self._trade_id = 0
        self._entry = 0

    # ------------------------------------------------------------------ counters

    @property
    def seq(self) -> int:
        """The book's sequence number (last non-reject event)."""
        return self._seq

    @property
    def trade_id(self) -> int:
        """The last trade id issued (0 before the first fill)."""
        return self._trade_id

    @property
    def entry(self) -> int:
        """The last entry number issued."""
        return self._entry

    @property
    def open_orders(self) -> int:
        """Number of open orders."""
        return sum(len(level.orders) for level in self._bids + self._asks)

    @property
    def levels(self) -> int:
        """Number of price levels on both sides."""
        return len(self._bids) + len(self._asks)

    # ------------------------------------------------------------------ commands

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
        slots = check_place_inputs(order_id, owner, side, price, size, tif, flags, stp, expiry, client_id, slots)
        out: list[Event] = []
        self._place(out, order_id, owner, side, price, size, tif, flags, stp, expiry, client_id, slots)
        return out

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
            order_id,
            owner,
            side,
            worst_price,
            size,
            tif=TimeInForce.IOC,
            flags=0,
            stp=stp,
            expiry=0,
            client_id=client_id,
            slots=slots,
        )

    def cancel(self, order_id: int, owner: int = ANY_OWNER, *, expired: bool = False) -> list[Event]:
        """Cancel an open order by id; expired=True reports EXPIRED."""
        check_u64("order_id", order_id)
        check_u64("owner", owner)
        out: list[Event] = []
        self._cancel(out, order_id, owner, expired)
        return out

    def cancel_by_client_id(self, owner: int, client_id: bytes, *, expired: bool = False) -> list[Event]:
        """Cancel an owner's open order by its client id."""
        check_u64("owner", owner)
        require_client_id(client_id)
        out: list[Event] = []
        self._cancel_by_client_id(out, owner, client_id, expired)
        return out

    def cancel_all(self, owner: int, slot: tuple[int, int] | None = None) -> list[Event]:
        """Cancel all of an owner's open orders (optionally those whose slot k equals v)."""
        check_u64("owner", owner)
        _check_slot_filter(slot)
        out: list[Event] = []
        self._cancel_all(out, owner, slot)
        return out

    def amend(self, order_id: int, owner: int, price: int, size: int) -> list[Event]:
        """Change an open order's price and/or total size."""
        check_u64("order_id", order_id)
        check_u64("owner", owner)
        check_i64("price", price)
        check_i64("size", size)
        out: list[Event] = []
        self._amend(out, order_id, owner, price, size)
        return out

    def batch(self, commands: Sequence[Command]) -> list[Event]:
        """Run many commands; the same events as one by one, with cmd set to each index."""
        commands = list(commands)
        # Input errors make the whole batch fail before anything runs.
        for command in commands:
            _check_command_inputs(command)
        out: list[Event] = []
        for index, command in enumerate(commands):
            events: list[Event] = []
            self._run(events, command)
            out.extend(attrs.evolve(event, cmd=index) for event in events)
        return out

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> tuple[int, int] | None:
        """(price, size) of the best bid level, or None."""
        return (self._bids[0].price, self._bids[0].total) if self._bids else None

    def best_ask(self) -> tuple[int, int] | None:
        """(price, size) of the best ask level, or None."""
        return (self._asks[0].price, self._asks[0].total) if self._asks else None

    def depth(self, side: int, n: int) -> list[Level]:
        """Up to n levels of one side, best first."""
        check_u8("side", side)
        check_u64("n", n)
        if side not in (Side.BUY, Side.SELL):
            raise BookInputError(f"side: must be 0 or 1, got {side}", code="BOOK_INPUT")
        return [Level(lv.price, lv.total, len(lv.orders)) for lv in self._levels_of(side)[:n]]

    def order(self, order_id: int) -> OrderState | None:
        """An open order by id, or None."""
        check_u64("order_id", order_id)
        found = self._find(order_id)
        return _state(found) if found is not None else None

    def order_by_client_id(self, owner: int, client_id: bytes) -> OrderState | None:
        """An owner's open order by client id, or None."""
        check_u64("owner", owner)
        require_client_id(client_id)
        found = self._find_by_client_id(owner, client_id)
        return _state(found) if found is not None else None

    def owner_orders(self, owner: int, slot: tuple[int, int] | None = None) -> list[int]:
        """Ids of an owner's open orders (optionally those whose slot k equals v), in entry order."""
        check_u64("owner", owner)
        _check_slot_filter(slot)
        return [o.order_id for o in self._owned(owner, slot)]

    def orders(self) -> list[OrderState]:
        """Every open order in canonical order: bids best first, then asks best first, queue order within a level."""
        return [_state(o) for o in self._all_orders()]

    def set_slot(self, order_id: int, index: int, value: int) -> None:
        """Write engine slot `index` of an open order."""
        check_u64("order_id", order_id)
        check_slot_index(index)
        check_u64("value", value)
        found = self._find(order_id)
        if found is None:
            raise BookError(f"set_slot: no open order has id {order_id}", code="UNKNOWN_ORDER")
        slots = list(found.slots)
        slots[index] = value
        found.slots = (slots[0], slots[1], slots[2], slots[3])

    def check(self) -> None:
        """Raise BookError if an internal invariant is broken."""
        for side, levels in ((Side.BUY, self._bids), (Side.SELL, self._asks)):
            prices = [lv.price for lv in levels]
            if prices != sorted(set(prices), reverse=side == Side.BUY):
                raise _corrupt(f"side {side}: levels not strictly sorted best first")
            for lv in levels:
                if not lv.orders:
                    raise _corrupt(f"side {side}: empty level at {lv.price}")
                if lv.total > I64_MAX:
                    raise _corrupt(f"side {side}: level {lv.price} total exceeds i64")
                for o in lv.orders:
                    if o.side != side or o.price != lv.price:
                        raise _corrupt(f"order {o.order_id}: side/price differ from its level")
        if self._bids and self._asks and self._bids[0].price >= self._asks[0].price:
            raise _corrupt("book is crossed")
        ids: set[int] = set()
        client_ids: set[tuple[int, bytes]] = set()
        entries: set[int] = set()
        for o in self._all_orders():
            if o.size <= 0 or o.price <= 0:
                raise _corrupt(f"order {o.order_id}: non-positive price or size")
            if not 1 <= o.remaining <= o.size:
                raise _corrupt(f"order {o.order_id}: remaining outside 1..size")
            if o.tif not in RESTING_TIFS:
                raise _corrupt(f"order {o.order_id}: resting order with tif {o.tif}")
            if o.order_id in ids:
                raise _corrupt(f"duplicate order id {o.order_id}")
            ids.add(o.order_id)
            if o.client_id is not None:
                if (o.owner, o.client_id) in client_ids:
                    raise _corrupt(f"duplicate client id for owner {o.owner}")
                client_ids.add((o.owner, o.client_id))
            if o.entry in entries:
                raise _corrupt(f"duplicate entry number {o.entry}")
            if not 1 <= o.entry <= self._entry:
                raise _corrupt(f"order {o.order_id}: entry {o.entry} outside 1..{self._entry}")
            entries.add(o.entry)
        if self.levels > self.max_levels:
            raise _corrupt(f"{self.levels} levels exceed max_levels {self.max_levels}")
        if len(ids) > self.max_orders:
            raise _corrupt(f"{len(ids)} orders exceed max_orders {self.max_orders}")

    # ------------------------------------------------------------------ snapshot

    def dump(self) -> bytes:
        """The canonical bytes of the book (docs/book.md, Canonical dump)."""
        orders = list(self._all_orders())
        parts = [
            HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                self.max_orders,
                self.max_levels,
                len(orders),
                self._seq,
                self._trade_id,
                self._entry,
            )
        ]
        for o in orders:
            dump_flags = (DUMP_POST_ONLY if o.flags & OrderFlag.POST_ONLY else 0) | (
                DUMP_HAS_CLIENT_ID if o.client_id is not None else 0
            )
            parts.append(
                RECORD.pack(
                    o.order_id,
                    o.owner,
                    o.price,
                    o.size,
                    o.remaining,
                    o.expiry,
                    o.entry,
                    *o.slots,
                    o.client_id if o.client_id is not None else NO_CLIENT_ID,
                    o.side,
                    o.tif,
                    dump_flags,
                    o.stp,
                    bytes(4),
                )
            )
        return b"".join(parts)

    @classmethod
    def load(cls, data: bytes) -> RefBook:
        """Rebuild a book from dump() bytes; BookError(BAD_SNAPSHOT) for anything dump could not have written."""
        data = bytes(data)
        if len(data) < HEADER.size:
            raise _bad_snapshot(f"{len(data)} bytes is shorter than the header")
        magic, version, max_orders, max_levels, count, seq, trade_id, entry = HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise _bad_snapshot(f"wrong magic {magic!r}")
        if version != FORMAT_VERSION:
            raise _bad_snapshot(f"unknown format version {version}")
        if len(data) != HEADER.size + count * RECORD.size:
            raise _bad_snapshot(f"length {len(data)} does not match {count} orders")
        if not 1 <= max_orders <= MAX_CAP or not 1 <= max_levels <= MAX_CAP:
            raise _bad_snapshot("caps out of range")
        if count > max_orders:
            raise _bad_snapshot(f"{count} orders exceed max_orders {max_orders}")

        book = cls(max_orders, max_levels)
        book._seq, book._trade_id, book._entry = seq, trade_id, entry
        ids: set[int] = set()
        client_ids: set[tuple[int, bytes]] = set()
        entries: set[int] = set()
        previous: tuple[int, int] | None = None  # (side, price) of the previous record
        previous_entry = 0
        for i in range(count):
            (
                order_id,
                owner,
                price,
                size,
                remaining,
                expiry,
                order_entry,
                s0,
                s1,
                s2,
                s3,
                raw_client_id,
                side,
                tif,
                dump_flags,
                stp,
                pad,
            ) = RECORD.unpack_from(data, HEADER.size + i * RECORD.size)
            where = f"record {i}"
            if order_id == 0:
                raise _bad_snapshot(f"{where}: order id 0")
            if price <= 0 or size <= 0 or price * size > I64_MAX:
                raise _bad_snapshot(f"{where}: price/size out of range")
            if not 1 <= remaining <= size:
                raise _bad_snapshot(f"{where}: remaining outside 1..size")
            if side not in (Side.BUY, Side.SELL):
                raise _bad_snapshot(f"{where}: side {side}")
            if tif not in RESTING_TIFS:
                raise _bad_snapshot(f"{where}: tif {tif} cannot rest")
            if dump_flags & ~(DUMP_POST_ONLY | DUMP_HAS_CLIENT_ID):
                raise _bad_snapshot(f"{where}: unknown flag bits {dump_flags:#x}")
            if stp not in (Stp.CANCEL_MAKER, Stp.CANCEL_TAKER, Stp.CANCEL_BOTH):
                raise _bad_snapshot(f"{where}: stp {stp}")
            if (tif == TimeInForce.GTD) != (expiry > 0) or (tif == TimeInForce.GTC and expiry != 0):
                raise _bad_snapshot(f"{where}: expiry {expiry} with tif {tif}")
            if not 1 <= order_entry <= entry:
                raise _bad_snapshot(f"{where}: entry {order_entry} outside 1..{entry}")
            if pad != bytes(4):
                raise _bad_snapshot(f"{where}: non-zero padding")
            has_client_id = bool(dump_flags & DUMP_HAS_CLIENT_ID)
            if not has_client_id and raw_client_id != NO_CLIENT_ID:
                raise _bad_snapshot(f"{where}: client id bytes without the has-client-id flag")
            client_id = raw_client_id if has_client_id else None
            if order_id in ids:
                raise _bad_snapshot(f"{where}: duplicate order id {order_id}")
            ids.add(order_id)
            if client_id is not None:
                if (owner, client_id) in client_ids:
                    raise _bad_snapshot(f"{where}: duplicate client id for owner {owner}")
                client_ids.add((owner, client_id))
            if order_entry in entries:
                raise _bad_snapshot(f"{where}: duplicate entry number {order_entry}")
            entries.add(order_entry)
            # Canonical order: all bids (price descending), then all asks (price ascending).
            if previous is not None:
                prev_side, prev_price = previous
                out_of_order = (
                    side < prev_side
                    or (side == prev_side == Side.BUY and price > prev_price)
                    or (side == prev_side == Side.SELL and price < prev_price)
                )
                if out_of_order:
                    raise _bad_snapshot(f"{where}: level out of order")
                if side == prev_side and price == prev_price and order_entry <= previous_entry:
                    raise _bad_snapshot(f"{where}: queue not in entry order")
            previous = (side, price)
            previous_entry = order_entry

            order = _Order(
                order_id=order_id,
                owner=owner,
                side=side,
                price=price,
                size=size,
                remaining=remaining,
                tif=tif,
                flags=dump_flags & DUMP_POST_ONLY,
                stp=stp,
                expiry=expiry,
                client_id=client_id,
                slots=(s0, s1, s2, s3),
                entry=order_entry,
            )
            levels = book._levels_of(side)
            # Records arrive best first, so a new price is always the new worst level: append keeps order.
            if not levels or levels[-1].price != price:
                levels.append(_Level(price))
            levels[-1].orders.append(order)

        if book.levels > max_levels:
            raise _bad_snapshot(f"{book.levels} levels exceed max_levels {max_levels}")
        if book._bids and book._asks and book._bids[0].price >= book._asks[0].price:
            raise _bad_snapshot("crossed book")
        for lv in book._bids + book._asks:
            if lv.total > I64_MAX:
                raise _bad_snapshot(f"level {lv.price}: total size exceeds i64")
        return book

    # ------------------------------------------------------------------ internals: lookup

    def _levels_of(self, side: int) -> list[_Level]:
        return self._bids if side == Side.BUY else self._asks

    def _all_orders(self) -> Iterator[_Order]:
        for level in self._bids + self._asks:
            yield from level.orders

    def _find(self, order_id: int) -> _Order | None:
        for o in self._all_orders():
            if o.order_id == order_id:
                return o
        return None

    def _find_by_client_id(self, owner: int, client_id: bytes | None) -> _Order | None:
        if client_id is None:
            return None
        for o in self._all_orders():
            if o.owner == owner and o.client_id == client_id:
                return o
        return None

    def _level_at(self, side: int, price: int) -> _Level | None:
        for level in self._levels_of(side):
            if level.price == price:
                return level
        return None

    def _level_stats(self, side: int, price: int) -> tuple[int, int]:
        level = self._level_at(side, price)
        return (level.total, len(level.orders)) if level is not None else (0, 0)

    def _crosses(self, side: int, price: int) -> bool:
        """Whether an order of this side and limit would trade with the opposite side's best level."""
        if side == Side.BUY:
            return bool(self._asks) and self._asks[0].price <= price
        return bool(self._bids) and self._bids[0].price >= price

    def _rest(self, order: _Order) -> None:
        levels = self._levels_of(order.side)
        level = self._level_at(order.side, order.price)
        if level is None:
            level = _Level(order.price)
            levels.append(level)
            levels.sort(key=lambda lv: -lv.price if order.side == Side.BUY else lv.price)
        level.orders.append(order)

    def _unlink(self, order: _Order) -> None:
        levels = self._levels_of(order.side)
        level = self._level_at(order.side, order.price)
        assert level is not None
        level.orders.remove(order)
        if not level.orders:
            levels.remove(level)

    # ------------------------------------------------------------------ internals: events

    def _emit(self, out: list[Event], type: EventType, **fields: object) -> None:
        self._seq += 1
        out.append(Event(type=type, seq=self._seq, **fields))  # type: ignore[arg-type]

    def _reject(self, out: list[Event], reason: Reason, **fields: object) -> None:
        out.append(Event(type=EventType.REJECTED, seq=self._seq, reason=reason, **fields))  # type: ignore[arg-type]

    def _emit_about(self, out: list[Event], type: EventType, order: _Order, **fields: object) -> None:
        """An event describing one order: its side, id, owner, limit, total size and slots."""
        self._emit(
            out,
            type,
            side=int(order.side),
            order_id=order.order_id,
            owner=order.owner,
            price=order.price,
            size=order.size,
            slots=order.slots,
            **fields,
        )

    def _emit_l2(self, out: list[Event], side: int, price: int) -> None:
        total, count = self._level_stats(side, price)
        self._emit(out, EventType.L2, side=int(side), price=price, size=total, remaining=count)

    def _cancel_resting(self, out: list[Event], order: _Order, type: EventType, reason: Reason) -> None:
        self._unlink(order)
        self._emit_about(out, type, order, reason=reason, remaining=order.remaining)
        self._emit_l2(out, order.side, order.price)

    # ------------------------------------------------------------------ internals: commands

    def _run(self, out: list[Event], c: Command) -> None:
        try:
            op = Op(c.op)
        except ValueError:
            self._reject(out, Reason.BAD_OP, order_id=c.order_id, owner=c.owner)
            return
        if op == Op.PLACE:
            self._place(
                out,
                c.order_id,
                c.owner,
                c.side,
                c.price,
                c.size,
                c.tif,
                c.flags,
                c.stp,
                c.expiry,
                c.client_id,
                check_slots(c.slots),
            )
        elif op == Op.CANCEL:
            self._cancel(out, c.order_id, c.owner, c.expired)
        elif op == Op.CANCEL_BY_CLIENT_ID:
            self._cancel_by_client_id(out, c.owner, c.client_id, c.expired)
        elif op == Op.CANCEL_ALL:
            self._cancel_all(out, c.owner, c.slot_filter)
        else:
            self._amend(out, c.order_id, c.owner, c.price, c.size)

    def _place_reject_reason(
        self,
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
    ) -> Reason | None:
        """The first failing check of docs/book.md place, in the documented order, or None."""
        if side not in (Side.BUY, Side.SELL):
            return Reason.BAD_SIDE
        if tif not in (TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK):
            return Reason.BAD_TIF
        if stp not in (Stp.CANCEL_MAKER, Stp.CANCEL_TAKER, Stp.CANCEL_BOTH):
            return Reason.BAD_STP
        if stp == Stp.CANCEL_BOTH and tif == TimeInForce.FOK:
            return Reason.BAD_STP
        if flags & ~int(OrderFlag.POST_ONLY):  # int: ~ on an IntFlag stays inside its members
            return Reason.BAD_FLAGS
        if flags & OrderFlag.POST_ONLY and tif not in RESTING_TIFS:
            return Reason.BAD_FLAGS
        if price <= 0:
            return Reason.BAD_PRICE
        if size <= 0:
            return Reason.BAD_SIZE
        if price * size > I64_MAX:
            return Reason.OVERFLOW
        if tif == TimeInForce.GTD and expiry <= 0:
            return Reason.BAD_EXPIRY
        if tif != TimeInForce.GTD and expiry != 0:
            return Reason.BAD_EXPIRY
        if order_id == 0:
            return Reason.BAD_ID
        if self._find(order_id) is not None:
            return Reason.DUPLICATE_ID
        if client_id is not None and self._find_by_client_id(owner, client_id) is not None:
            return Reason.DUPLICATE_CLIENT_ID
        if flags & OrderFlag.POST_ONLY and self._crosses(side, price):
            return Reason.POST_ONLY_WOULD_CROSS
        # 13-15 are conservative: they apply to any order that could rest, even one that fills at once.
        if tif in RESTING_TIFS:
            own_level = self._level_at(side, price)
            if self.open_orders >= self.max_orders:
                return Reason.ORDER_LIMIT
            if own_level is None and self.levels >= self.max_levels:
                return Reason.LEVEL_LIMIT
            if own_level is not None and own_level.total + size > I64_MAX:
                return Reason.OVERFLOW
        if tif == TimeInForce.FOK and not self._fok_fillable(owner, side, price, size, stp):
            return Reason.FOK_UNFILLABLE
        return None

    def _fok_fillable(self, owner: int, side: int, price: int, size: int, stp: int) -> bool:
        """Simulate the match without changing anything (docs/book.md, FOK simulation)."""
        available = 0
        for level in self._levels_of(1 - side):
            crosses = level.price <= price if side == Side.BUY else level.price >= price
            if not crosses:
                break
            for maker in level.orders:
                if maker.owner != owner:
                    available += maker.remaining
                    if available >= size:
                        return True
                elif stp == Stp.CANCEL_TAKER:
                    return False
                # CANCEL_MAKER: the same-owner maker would be cancelled, contributing nothing.
        return available >= size

    def _place(
        self,
        out: list[Event],
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
    ) -> None:
        reason = self._place_reject_reason(order_id, owner, side, price, size, tif, flags, stp, expiry, client_id)
        if reason is not None:
            self._reject(out, reason, side=int(side), order_id=order_id, owner=owner, price=price, size=size)
            return
        self._entry += 1
        taker = _Order(
            order_id=order_id,
            owner=owner,
            side=int(side),
            price=price,
            size=size,
            remaining=size,
            tif=int(tif),
            flags=int(flags),
            stp=int(stp),
            expiry=expiry,
            client_id=client_id,
            slots=slots,
            entry=self._entry,
        )
        self._emit_about(out, EventType.ACCEPTED, taker, remaining=size)
        stopped_by_stp = self._match(out, taker)
        if stopped_by_stp or taker.remaining == 0:
            return
        if tif in RESTING_TIFS:
            self._rest(taker)
            self._emit_l2(out, side, price)
        else:
            self._emit_about(out, EventType.CANCELLED, taker, reason=Reason.IOC_REMAINDER, remaining=taker.remaining)

    def _match(self, out: list[Event], taker: _Order) -> bool:
        """Match taker against the opposite side; return True if self-trade prevention cancelled the taker."""
        opposite = self._levels_of(1 - taker.side)
        while taker.remaining > 0 and self._crosses(taker.side, taker.price):
            level = opposite[0]
            before = (level.total, len(level.orders))
            stopped = False
            while level.orders and taker.remaining > 0:
                maker = level.orders[0]
                if maker.owner != taker.owner:
                    traded = min(taker.remaining, maker.remaining)
                    maker.remaining -= traded
                    taker.remaining -= traded
                    self._trade_id += 1
                    fill_flags = (EventFlag.MAKER_DONE if maker.remaining == 0 else 0) | (
                        EventFlag.TAKER_DONE if taker.remaining == 0 else 0
                    )
                    self._emit(
                        out,
                        EventType.FILL,
                        side=int(taker.side),
                        flags=int(fill_flags),
                        order_id=taker.order_id,
                        owner=taker.owner,
                        price=level.price,
                        size=traded,
                        remaining=maker.remaining,
                        maker_id=maker.order_id,
                        maker_owner=maker.owner,
                        trade_id=self._trade_id,
                        slots=maker.slots,
                    )
                    if maker.remaining == 0:
                        level.orders.pop(0)
                elif taker.stp == Stp.CANCEL_MAKER:
                    level.orders.pop(0)
                    self._emit_about(out, EventType.CANCELLED, maker, reason=Reason.STP, remaining=maker.remaining)
                elif taker.stp == Stp.CANCEL_TAKER:
                    self._emit_about(out, EventType.CANCELLED, taker, reason=Reason.STP, remaining=taker.remaining)
                    stopped = True
                    break
                else:  # CANCEL_BOTH
                    level.orders.pop(0)
                    self._emit_about(out, EventType.CANCELLED, maker, reason=Reason.STP, remaining=maker.remaining)
                    self._emit_about(out, EventType.CANCELLED, taker, reason=Reason.STP, remaining=taker.remaining)
                    stopped = True
                    break
            # The walk leaves this level here; report it only if it changed.
            if not level.orders:
                opposite.remove(level)
            if (level.total, len(level.orders)) != before:
                self._emit_l2(out, 1 - taker.side, level.price)
            if stopped:
                return True
        return False

    def _cancel(self, out: list[Event], order_id: int, owner: int, expired: bool) -> None:
        order = self._find(order_id)
        if order is None:
            self._reject(out, Reason.UNKNOWN_ORDER, order_id=order_id, owner=owner)
            return
        if owner != ANY_OWNER and owner != order.owner:
            self._reject(out, Reason.NOT_OWNER, order_id=order_id, owner=owner)
            return
        if expired:
            self._cancel_resting(out, order, EventType.EXPIRED, Reason.EXPIRY)
        else:
            self._cancel_resting(out, order, EventType.CANCELLED, Reason.USER)

    def _cancel_by_client_id(self, out: list[Event], owner: int, client_id: bytes | None, expired: bool) -> None:
        order = self._find_by_client_id(owner, client_id)
        if order is None:
            self._reject(out, Reason.UNKNOWN_ORDER, order_id=0, owner=owner)
            return
        if expired:
            self._cancel_resting(out, order, EventType.EXPIRED, Reason.EXPIRY)
        else:
            self._cancel_resting(out, order, EventType.CANCELLED, Reason.USER)

    def _owned(self, owner: int, slot: tuple[int, int] | None) -> list[_Order]:
        """An owner's open orders (those whose slot k equals v, if given), in entry order."""
        mine = [o for o in self._all_orders() if o.owner == owner and (slot is None or o.slots[slot[0]] == slot[1])]
        return sorted(mine, key=lambda o: o.entry)

    def _cancel_all(self, out: list[Event], owner: int, slot: tuple[int, int] | None) -> None:
        for order in self._owned(owner, slot):
            self._cancel_resting(out, order, EventType.CANCELLED, Reason.CANCEL_ALL)

    def _amend(self, out: list[Event], order_id: int, owner: int, price: int, size: int) -> None:
        def reject(reason: Reason) -> None:
            self._reject(out, reason, order_id=order_id, owner=owner, price=price, size=size)

        order = self._find(order_id)
        if order is None:
            return reject(Reason.UNKNOWN_ORDER)
        if owner != ANY_OWNER and owner != order.owner:
            return reject(Reason.NOT_OWNER)
        if price <= 0:
            return reject(Reason.BAD_PRICE)
        if size <= 0:
            return reject(Reason.BAD_SIZE)
        if price * size > I64_MAX:
            return reject(Reason.OVERFLOW)
        if price == order.price and size == order.size:
            return reject(Reason.NO_CHANGE)

        filled = order.size - order.remaining
        new_remaining = size - filled
        if size <= filled:
            # Nothing left to trade: the order goes, reported with its unchanged price and size.
            self._cancel_resting(out, order, EventType.CANCELLED, Reason.AMENDED_BELOW_FILLED)
            return None
        if price == order.price and size < order.size:
            order.size, order.remaining = size, new_remaining
            self._emit_about(
                out, EventType.AMENDED, order, flags=int(EventFlag.PRIORITY_KEPT), remaining=order.remaining
            )
            self._emit_l2(out, order.side, order.price)
            return None

        # Loses priority: a price change or a size increase.
        price_changes = price != order.price
        current_level = self._level_at(order.side, order.price)
        assert current_level is not None
        target_level = self._level_at(order.side, price)
        if order.flags & OrderFlag.POST_ONLY and self._crosses(order.side, price):
            return reject(Reason.POST_ONLY_WOULD_CROSS)
        if price_changes and target_level is None:
            alone = len(current_level.orders) == 1
            if self.levels - (1 if alone else 0) >= self.max_levels:
                return reject(Reason.LEVEL_LIMIT)
        if target_level is not None:
            base = target_level.total - (order.remaining if not price_changes else 0)
            if base + new_remaining > I64_MAX:
                return reject(Reason.OVERFLOW)

        old_price = order.price
        self._unlink(order)
        order.price, order.size, order.remaining = price, size, new_remaining
        self._entry += 1
        order.entry = self._entry
        self._emit_about(out, EventType.AMENDED, order, flags=0, remaining=order.remaining)
        if not price_changes:
            self._rest(order)
            self._emit_l2(out, order.side, order.price)
            return None
        self._emit_l2(out, order.side, old_price)
        stopped_by_stp = self._match(out, order)
        if stopped_by_stp or order.remaining == 0:
            return None
        self._rest(order)
        self._emit_l2(out, order.side, order.price)


# ---------------------------------------------------------------------- input range checks


def _check_slot_filter(slot: tuple[int, int] | None) -> None:
    if slot is None:
        return
    if len(slot) != 2:
        raise BookInputError(f"slot filter: need (index, value), got {slot!r}", code="BOOK_INPUT")
    check_slot_index(slot[0])
    check_u64("slot value", slot[1])


def _check_command_inputs(c: Command) -> None:
    """Range-check the fields the command's op uses (docs/book.md: fields an op does not use are ignored)."""
    check_u8("op", c.op)
    if c.op == Op.PLACE:
        check_place_inputs(
            c.order_id, c.owner, c.side, c.price, c.size, c.tif, c.flags, c.stp, c.expiry, c.client_id, c.slots
        )
    elif c.op == Op.CANCEL:
        check_u64("order_id", c.order_id)
        check_u64("owner", c.owner)
    elif c.op == Op.CANCEL_BY_CLIENT_ID:
        check_u64("owner", c.owner)
        check_client_id(c.client_id)
    elif c.op == Op.CANCEL_ALL:
        check_u64("owner", c.owner)
        _check_slot_filter(c.slot_filter)
    elif c.op == Op.AMEND:
        check_u64("order_id", c.order_id)
        check_u64("owner", c.owner)
        check_i64("price", c.price)
        check_i64("size", c.size)
    else:
        # An unknown op is rejected, echoing its id and owner, so those must still fit.
        check_u64("order_id", c.order_id)
        check_u64("owner", c.owner)


def _state(o: _Order) -> OrderState:
    return OrderState(
        order_id=o.order_id,
        owner=o.owner,
        side=Side(o.side),
        price=o.price,
        size=o.size,
        remaining=o.remaining,
        tif=TimeInForce(o.tif),
        flags=int(o.flags),
        stp=Stp(o.stp),
        expiry=o.expiry,
        client_id=o.client_id,
        slots=o.slots,
        entry=o.entry,
    )
