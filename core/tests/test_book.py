"""The C book through its wrapper: input errors, sparse prices, caps, snapshots, memory, the C constants."""

from __future__ import annotations

import pytest
from exos._book import lib

from exos import types
from exos.book import RESTED, Book
from exos.errors import BookError, BookInputError
from exos.types import EventType, Reason, Side, TimeInForce


class TestConstants:
    def test_c_enums_match_python_enums(self) -> None:
        """Every enum value in book_cdef.h equals its Python twin, so events decode to the right names."""
        pairs = [
            ("EXOS_EV_", types.EventType),
            ("EXOS_R_", types.Reason),
            ("EXOS_OP_", types.Op),
            ("EXOS_STP_", types.Stp),
        ]
        renamed = {"CANCEL_BY_CLIENT_ID": "CANCEL_CLIENT_ID"}  # the C name is shorter
        for prefix, enum in pairs:
            for member in enum:
                name = renamed.get(member.name, member.name) if prefix == "EXOS_OP_" else member.name
                assert getattr(lib, prefix + name) == member.value, (prefix, member)
        for member in types.TimeInForce:
            assert getattr(lib, "EXOS_" + member.name) == member.value
        assert lib.EXOS_POST_ONLY == types.OrderFlag.POST_ONLY
        assert lib.EXOS_MAX_CAP == types.MAX_CAP
        assert lib.EXOS_N_SLOTS == types.N_SLOTS


class TestInputErrors:
    @pytest.mark.parametrize(
        ("field", "value"),
        [("price", 2**63), ("size", 2**63), ("size", 10**30), ("order_id", -1), ("owner", 2**64), ("side", 256)],
    )
    def test_values_beyond_their_width_raise_and_change_nothing(self, field: str, value: int) -> None:
        """A value that does not fit its C field raises BookInputError before the book is touched."""
        book = Book()
        book.place(1, 1, Side.BUY, 100, 5)
        before = book.dump()
        args = {"order_id": 2, "owner": 1, "side": Side.SELL, "price": 101, "size": 1} | {field: value}
        with pytest.raises(BookInputError, match=field):
            book.place(args["order_id"], args["owner"], args["side"], args["price"], args["size"])
        assert book.dump() == before

    def test_client_id_must_be_16_bytes(self) -> None:
        """A 15-byte client id is an input error, on place and on cancel by client id."""
        book = Book()
        with pytest.raises(BookInputError, match="client_id"):
            book.place(1, 1, Side.BUY, 100, 5, client_id=b"x" * 15)
        with pytest.raises(BookInputError, match="client_id"):
            book.cancel_by_client_id(1, b"x" * 17)

    def test_overflowing_notional_is_rejected_not_raised(self) -> None:
        """In-range values whose product overflows i64 are an order decision: REJECTED(OVERFLOW)."""
        book = Book()
        [event] = book.place(1, 1, Side.BUY, 2**62, 2)
        assert (event.type, event.reason, event.seq) == (EventType.REJECTED, Reason.OVERFLOW, 0)
        assert book.open_orders == 0

    def test_caps_must_be_in_range(self) -> None:
        """A book needs caps of at least one order and one level."""
        with pytest.raises(BookInputError, match="max_orders"):
            Book(max_orders=0)
        with pytest.raises(BookInputError, match="max_levels"):
            Book(max_levels=2**31)


class TestSparsePrices:
    def test_far_apart_prices_allocate_nothing_between(self) -> None:
        """Orders at tick 1 and tick 2**50 cost the same memory as two neighbouring ticks."""
        near, far = Book(), Book()
        near.place(1, 1, Side.BUY, 1, 1)
        near.place(2, 2, Side.SELL, 2, 1)
        far.place(1, 1, Side.BUY, 1, 1)
        far.place(2, 2, Side.SELL, 2**50, 1)
        assert far.memory() == near.memory() < 64 * 1024
        assert far.best_ask() == (2**50, 1) and far.best_bid() == (1, 1)


class TestCaps:
    def test_order_and_level_caps_have_their_own_reasons(self) -> None:
        """ORDER_LIMIT and LEVEL_LIMIT reject resting orders; IOC orders still trade at the cap."""
        book = Book(max_orders=3, max_levels=2)
        book.place(1, 1, Side.SELL, 100, 1)
        book.place(2, 1, Side.SELL, 101, 1)
        [event] = book.place(3, 1, Side.SELL, 102, 1)
        assert event.reason == Reason.LEVEL_LIMIT
        book.place(3, 1, Side.SELL, 101, 1)
        [event] = book.place(4, 1, Side.SELL, 101, 1)
        assert event.reason == Reason.ORDER_LIMIT
        events = book.place(5, 2, Side.BUY, 101, 3, tif=TimeInForce.IOC)
        assert [e.type for e in events].count(EventType.FILL) == 3
        book.check()


class TestSnapshot:
    def test_load_refuses_garbage_with_a_typed_error(self) -> None:
        """Random bytes, a truncated dump and a flipped field raise BookError(BAD_SNAPSHOT)."""
        book = Book()
        book.place(1, 1, Side.BUY, 100, 5)
        book.place(2, 2, Side.SELL, 105, 5, client_id=b"c" * 16)
        data = book.dump()
        flipped = bytearray(data)
        flipped[48 + 104] = 7  # side of the first record
        for bad in (b"not a book", data[:-3], bytes(flipped)):
            with pytest.raises(BookError) as info:
                Book.load(bad)
            assert info.value.code == "BAD_SNAPSHOT"
        assert Book.load(data).dump() == data

    def test_dump_is_canonical(self) -> None:
        """Two books reaching the same orders and counters by different paths dump the same bytes."""
        c = Book()
        c.place(1, 1, Side.BUY, 100, 5)
        c.place(3, 3, Side.SELL, 200, 1)
        c.cancel(3)
        c.place(2, 1, Side.BUY, 99, 5)
        d = Book()
        d.place(1, 1, Side.BUY, 100, 5)
        d.place(3, 3, Side.SELL, 300, 9)
        d.place(2, 1, Side.BUY, 99, 5)
        d.cancel(3)
        assert (c.seq, c.entry) == (d.seq, d.entry) == (8, 3)
        assert c.dump() == d.dump()


class TestMemory:
    def test_books_are_freed_when_dropped(self) -> None:
        """Creating and dropping many busy books does not grow the process (ffi.gc frees the C side)."""
        import gc

        def rss() -> int:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1])

        def churn() -> None:
            for _ in range(200):
                book = Book()
                for oid in range(1, 501):
                    book.place(oid, oid % 7, oid & 1, 1000 + (oid % 50) * (1 if oid & 1 else -1), 3)
                del book
            gc.collect()

        churn()
        before = rss()
        churn()
        assert rss() - before < 256  # pages; a leak of 200 books x 500 orders would be thousands


class TestSinkGrowth:
    def test_engine_paths_follow_the_sink_when_a_public_call_grew_it(self) -> None:
        """A sweep that grows the sink through the attrs API leaves the raw paths reading the moved buffer."""
        book = Book()
        for oid in range(1, 401):
            book.place(oid, 1, Side.SELL, 1000 + oid, 1)
        events = book.place(1000, 2, Side.BUY, 2000, 400, tif=TimeInForce.IOC)  # 1 + 400 fills + 400 L2
        assert len(events) == 801
        book.place(2000, 3, Side.BUY, 50, 5)
        assert book.cancel_engine(2000)[:3] == (Side.BUY, 50, 5)
        result = book.place_engine(2001, 3, Side.BUY, 51, 2, 0, 0, 0, 0, None, 9, 0, 0, 0)
        assert result[1:3] == (book.seq - 1, 2)


class TestEngineSummaries:
    def test_they_match_the_full_events_of_a_twin_book(self) -> None:
        """place_engine's resting summary and cancel_engine's tuple (read in one unpack each) equal the fields of
        the events the public API decodes for the same orders on a twin book, slot 3 included."""
        fast, full = Book(), Book()
        for oid, (side, price, size, slot3) in enumerate(
            [(Side.BUY, 100, 3, 7), (Side.BUY, 100, 4, 2**63 + 5), (Side.SELL, 105, 6, 0), (Side.SELL, 104, 1, 1)],
            start=1,
        ):
            summary = fast.place_engine(oid, 9, side, price, size, 0, 0, 0, 0, None, 9, 0, 0, slot3)
            accepted, level = full.place(oid, 9, side, price, size, slots=(9, 0, 0, slot3))
            assert level.type == EventType.L2
            assert summary == (RESTED, accepted.seq, level.size, level.remaining, level.seq)
        for oid in (2, 3, 1):
            summary = fast.cancel_engine(oid)
            cancelled, level = full.cancel(oid)
            assert summary == (cancelled.side, cancelled.price, cancelled.remaining, cancelled.seq, level.size,
                               level.remaining, level.seq, cancelled.slots[3])  # fmt: skip
