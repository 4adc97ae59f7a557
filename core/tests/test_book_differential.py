"""Differential test: the C book and the pure-Python reference book agree on every random command stream."""

from __future__ import annotations

from collections import Counter

import attrs
from hypothesis import event, given
from hypothesis import strategies as st

from exos.book import Book
from exos.refbook import RefBook
from exos.types import (
    ANY_OWNER,
    Command,
    Event,
    EventFlag,
    EventType,
    Op,
    OrderBook,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

# Few prices and owners, so that crossings and self-trades are common; small caps, so limits are hit.
PRICES = [100, 101, 102, 103, 104, 105, 106, 107]
OWNERS = 3
MAX_ORDERS, MAX_LEVELS = 24, 6
CLIENT_IDS = [b"client-order-aaa", b"client-order-bbb", b"client-order-ccc"]
REQUIRED = (
    "fill",
    "partial fill",
    "stp cancel_maker",
    "stp cancel_taker",
    "stp cancel_both",
    "fok kill",
    "post-only reject",
    "amend keeps priority",
    "amend loses priority",
    "cancel by client id",
)
FLOOR = 50

# Mostly valid values, with a few invalid ones mixed in (sampled_from weights by repetition).
prices = st.sampled_from(PRICES * 4 + [0, -3, 2**62])
# One invalid field of a place command: (field, values that break exactly one rule or a combination).
INVALID = [
    ("order_id", [0, 1, 2]),
    ("side", [2, 255]),
    ("price", [0, -3, 2**62]),
    ("size", [0, -1, 2**62]),
    ("tif", [4, 9]),
    ("flags", [1, 2, 3]),
    ("stp", [2, 3]),
    ("expiry", [0, 7, -1]),
]
owners = st.integers(0, OWNERS - 1)
client_ids = st.one_of(st.none(), st.sampled_from(CLIENT_IDS))
slots = st.tuples(st.integers(0, 3), st.just(0), st.just(0), st.integers(0, 2**64 - 1))


def _target(data: st.DataObject, book: OrderBook, next_id: int) -> int:
    """Mostly an open order's id, sometimes any id (unknown orders are part of the game)."""
    open_ids = [o.order_id for o in book.orders()]
    if open_ids and data.draw(st.integers(0, 4)) > 0:
        return data.draw(st.sampled_from(open_ids))
    return data.draw(st.integers(0, next_id + 1))


def _draw_place(data: st.DataObject, next_id: int) -> Command:
    """A place command: valid nine times in ten, otherwise with one field made invalid."""
    tif = data.draw(st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK]))
    command = Command(
        Op.PLACE,
        order_id=next_id,
        owner=data.draw(owners),
        side=data.draw(st.sampled_from([Side.BUY, Side.SELL])),
        price=data.draw(st.sampled_from(PRICES)),
        size=data.draw(st.integers(1, 12)),
        tif=tif,
        flags=data.draw(st.sampled_from([0, 0, 0, 1])) if tif in (TimeInForce.GTC, TimeInForce.GTD) else 0,
        stp=data.draw(st.sampled_from([0, 1] if tif == TimeInForce.FOK else [0, 1, 2])),
        expiry=50 if tif == TimeInForce.GTD else 0,
        client_id=data.draw(client_ids),
        slots=data.draw(slots),
    )
    if data.draw(st.integers(0, 9)):
        return command
    field, values = data.draw(st.sampled_from(INVALID))
    return attrs.evolve(command, **{field: data.draw(st.sampled_from(values))})


def _draw_command(data: st.DataObject, book: OrderBook, next_id: int) -> Command:
    """One command of any kind."""
    kinds = ["place"] * 5 + ["cancel", "cancel_cid", "cancel_cid", "cancel_all", "amend", "amend"]
    kind = data.draw(st.sampled_from(kinds))
    if kind == "place":
        return _draw_place(data, next_id)
    if kind == "cancel":
        owner = data.draw(st.one_of(owners, st.just(ANY_OWNER)))
        return Command(Op.CANCEL, order_id=_target(data, book, next_id), owner=owner, expired=data.draw(st.booleans()))
    if kind == "cancel_cid":
        return Command(
            Op.CANCEL_BY_CLIENT_ID,
            owner=data.draw(owners),
            client_id=data.draw(st.sampled_from(CLIENT_IDS)),
            expired=data.draw(st.booleans()),
        )
    if kind == "cancel_all":
        slot_filter = data.draw(st.one_of(st.none(), st.tuples(st.just(0), st.integers(0, 3))))
        return Command(Op.CANCEL_ALL, owner=data.draw(owners), slot_filter=slot_filter)
    target = _target(data, book, next_id)
    state = book.order(target)
    owner = state.owner if state is not None and data.draw(st.integers(0, 5)) else data.draw(owners)
    price = data.draw(st.one_of(st.just(state.price if state else 100), prices))
    current = state.size if state else 1
    size = data.draw(st.sampled_from([current, current - 1, current + 2, 0, -1, 2**62]) | st.integers(1, 14))
    return Command(Op.AMEND, order_id=target, owner=owner, price=price, size=size)


def _run(book: OrderBook, command: Command) -> list[Event]:
    """Apply one command through the single-call API."""
    c = command
    if c.op == Op.PLACE:
        return book.place(
            c.order_id,
            c.owner,
            c.side,
            c.price,
            c.size,
            tif=c.tif,
            flags=c.flags,
            stp=c.stp,
            expiry=c.expiry,
            client_id=c.client_id,
            slots=c.slots,
        )
    if c.op == Op.CANCEL:
        return book.cancel(c.order_id, c.owner, expired=c.expired)
    if c.op == Op.CANCEL_BY_CLIENT_ID:
        assert c.client_id is not None
        return book.cancel_by_client_id(c.owner, c.client_id, expired=c.expired)
    if c.op == Op.CANCEL_ALL:
        return book.cancel_all(c.owner, c.slot_filter)
    return book.amend(c.order_id, c.owner, c.price, c.size)


def _categories(command: Command, events: list[Event], stp_of: dict[int, int]) -> set[str]:
    """The behaviours a step exercised (for hypothesis.event and the per-run floors)."""
    seen: set[str] = set()
    for e in events:
        if e.type == EventType.FILL:
            seen.add("fill")
            if e.remaining > 0 or not e.flags & EventFlag.TAKER_DONE:
                seen.add("partial fill")
        elif e.type == EventType.CANCELLED and e.reason == Reason.STP:
            mode = command.stp if command.op == Op.PLACE else stp_of.get(command.order_id, -1)
            if mode in (0, 1, 2):
                seen.add(f"stp {Stp(mode).name.lower()}")
        elif e.type == EventType.REJECTED and e.reason == Reason.FOK_UNFILLABLE:
            seen.add("fok kill")
        elif e.type == EventType.REJECTED and e.reason == Reason.POST_ONLY_WOULD_CROSS:
            seen.add("post-only reject")
        elif e.type == EventType.AMENDED:
            seen.add("amend keeps priority" if e.flags & EventFlag.PRIORITY_KEPT else "amend loses priority")
        elif e.type in (EventType.CANCELLED, EventType.EXPIRED) and command.op == Op.CANCEL_BY_CLIENT_ID:
            seen.add("cancel by client id")
        elif e.type == EventType.REJECTED:
            seen.add(f"reject {e.reason.name}")
    return seen


def _assert_same_state(c_book: Book, ref: RefBook) -> None:
    """Everything observable about the two books is equal, and the C book passes its own check."""
    c_book.check()
    ref.check()
    assert c_book.orders() == ref.orders()
    for side in (Side.BUY, Side.SELL):
        assert c_book.depth(side, 10) == ref.depth(side, 10)
    assert (c_book.best_bid(), c_book.best_ask()) == (ref.best_bid(), ref.best_ask())
    assert (c_book.seq, c_book.trade_id, c_book.entry) == (ref.seq, ref.trade_id, ref.entry)
    assert (c_book.open_orders, c_book.levels) == (ref.open_orders, ref.levels)
    assert c_book.dump() == ref.dump()


def test_c_book_matches_reference_book() -> None:
    """Random streams give identical events and states in both books, and every behaviour occurs often."""
    counts: Counter[str] = Counter()

    @given(st.data())
    def scenario(data: st.DataObject) -> None:
        c_book, ref = Book(MAX_ORDERS, MAX_LEVELS), RefBook(MAX_ORDERS, MAX_LEVELS)
        next_id = 1
        for _ in range(data.draw(st.integers(10, 60), label="steps")):
            stp_of = {o.order_id: int(o.stp) for o in ref.orders()}
            roll = data.draw(st.integers(0, 29))
            if roll == 0:  # snapshot both and carry on from the loaded copies
                data_bytes = c_book.dump()
                c_book, ref = Book.load(data_bytes), RefBook.load(data_bytes)
                continue
            if roll == 1:
                batch: list[Command] = []
                for _ in range(data.draw(st.integers(1, 5))):
                    batch.append(_draw_command(data, ref, next_id))
                    next_id += 1
                if data.draw(st.integers(0, 3)) == 0:  # an op that does not exist: REJECTED(BAD_OP)
                    batch.append(Command(9, order_id=next_id, owner=1))  # type: ignore[arg-type]
                assert c_book.batch(batch) == ref.batch(batch)
            elif roll == 2 and ref.open_orders:
                target = data.draw(st.sampled_from([o.order_id for o in ref.orders()]))
                value = data.draw(st.integers(0, 3))
                c_book.set_slot(target, 0, value)
                ref.set_slot(target, 0, value)
            else:
                command = _draw_command(data, ref, next_id)
                next_id += 1
                c_events, ref_events = _run(c_book, command), _run(ref, command)
                assert c_events == ref_events, command
                for name in _categories(command, c_events, stp_of):
                    event(name)
                    counts[name] += 1
            _assert_same_state(c_book, ref)

    scenario()
    missing = {name: counts[name] for name in REQUIRED if counts[name] < FLOOR}
    assert not missing, f"behaviours below {FLOOR} occurrences this run: {missing}"
