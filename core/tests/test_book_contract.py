"""Hand-computed examples of docs/book.md's trickiest rules, run against both books (C and reference)."""

from __future__ import annotations

import pytest

from exos.book import Book
from exos.errors import BookError, BookInputError
from exos.refbook import RefBook
from exos.types import (
    Command,
    Event,
    EventFlag,
    EventType,
    Op,
    OrderBook,
    OrderFlag,
    Reason,
    Side,
    Stp,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
MAKER_DONE, TAKER_DONE, PRIORITY_KEPT = EventFlag.MAKER_DONE, EventFlag.TAKER_DONE, EventFlag.PRIORITY_KEPT
CID_A = b"A" * 16


def l2(seq: int, side: int, price: int, size: int, count: int, cmd: int = 0) -> Event:
    return Event(type=EventType.L2, seq=seq, cmd=cmd, side=side, price=price, size=size, remaining=count)


def accepted(seq: int, oid: int, owner: int, side: int, price: int, size: int, slots=(0, 0, 0, 0)) -> Event:
    return Event(
        type=EventType.ACCEPTED,
        seq=seq,
        side=side,
        order_id=oid,
        owner=owner,
        price=price,
        size=size,
        remaining=size,
        slots=slots,
    )


def ids(book: OrderBook) -> list[int]:
    return [o.order_id for o in book.orders()]


@pytest.fixture(params=[Book, RefBook], ids=["c", "ref"])
def book_cls(request: pytest.FixtureRequest) -> type[OrderBook]:
    """Every test here runs against the C book and the reference book."""
    return request.param  # type: ignore[no-any-return]


class TestMatching:
    def test_price_time_priority_at_one_level(self, book_cls: type[OrderBook]) -> None:
        """The older maker at a level fills first; the walk's L2 comes once, when it leaves the level."""
        book = book_cls()
        assert book.place(1, 10, SELL, 100, 5) == [accepted(1, 1, 10, SELL, 100, 5), l2(2, SELL, 100, 5, 1)]
        assert book.place(2, 11, SELL, 100, 5) == [accepted(3, 2, 11, SELL, 100, 5), l2(4, SELL, 100, 10, 2)]
        assert book.place(3, 12, BUY, 100, 7) == [
            accepted(5, 3, 12, BUY, 100, 7),
            Event(
                type=EventType.FILL,
                seq=6,
                side=BUY,
                flags=MAKER_DONE,
                order_id=3,
                owner=12,
                price=100,
                size=5,
                remaining=0,
                maker_id=1,
                maker_owner=10,
                trade_id=1,
            ),
            Event(
                type=EventType.FILL,
                seq=7,
                side=BUY,
                flags=TAKER_DONE,
                order_id=3,
                owner=12,
                price=100,
                size=2,
                remaining=3,
                maker_id=2,
                maker_owner=11,
                trade_id=2,
            ),
            l2(8, SELL, 100, 3, 1),
        ]
        assert (book.seq, book.trade_id, book.entry, book.open_orders, book.levels) == (8, 2, 3, 1, 1)
        book.check()

    def test_partial_fill_then_rest_at_own_limit(self, book_cls: type[OrderBook]) -> None:
        """A taker trades at the maker's price, the emptied level reports 0, and the remainder rests."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 3, slots=(1, 2, 3, 4))
        assert book.place(2, 11, BUY, 101, 5) == [
            accepted(3, 2, 11, BUY, 101, 5),
            Event(
                type=EventType.FILL,
                seq=4,
                side=BUY,
                flags=MAKER_DONE,
                order_id=2,
                owner=11,
                price=100,
                size=3,
                remaining=0,
                maker_id=1,
                maker_owner=10,
                trade_id=1,
                slots=(1, 2, 3, 4),
            ),
            l2(5, SELL, 100, 0, 0),
            l2(6, BUY, 101, 2, 1),
        ]
        assert book.best_bid() == (101, 2) and book.best_ask() is None
        assert book.order(2).remaining == 2 and book.order(2).filled == 3

    def test_ioc_remainder_is_cancelled_without_l2(self, book_cls: type[OrderBook]) -> None:
        """An IOC's unfilled part is cancelled; it never rested, so no L2 for its own side."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 2)
        assert book.market(2, 11, BUY, 5, 100) == [
            accepted(3, 2, 11, BUY, 100, 5),
            Event(
                type=EventType.FILL,
                seq=4,
                side=BUY,
                flags=MAKER_DONE,
                order_id=2,
                owner=11,
                price=100,
                size=2,
                remaining=0,
                maker_id=1,
                maker_owner=10,
                trade_id=1,
            ),
            l2(5, SELL, 100, 0, 0),
            Event(
                type=EventType.CANCELLED,
                seq=6,
                side=BUY,
                reason=Reason.IOC_REMAINDER,
                order_id=2,
                owner=11,
                price=100,
                size=5,
                remaining=3,
            ),
        ]


class TestSelfTradePrevention:
    def test_cancel_maker_cancels_and_walks_on(self, book_cls: type[OrderBook]) -> None:
        """CANCEL_MAKER removes the same-owner maker and the taker keeps matching behind it."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 2)
        book.place(2, 11, SELL, 100, 2)
        assert book.place(3, 10, BUY, 100, 3, stp=Stp.CANCEL_MAKER) == [
            accepted(5, 3, 10, BUY, 100, 3),
            Event(
                type=EventType.CANCELLED,
                seq=6,
                side=SELL,
                reason=Reason.STP,
                order_id=1,
                owner=10,
                price=100,
                size=2,
                remaining=2,
            ),
            Event(
                type=EventType.FILL,
                seq=7,
                side=BUY,
                flags=MAKER_DONE,
                order_id=3,
                owner=10,
                price=100,
                size=2,
                remaining=0,
                maker_id=2,
                maker_owner=11,
                trade_id=1,
            ),
            l2(8, SELL, 100, 0, 0),
            l2(9, BUY, 100, 1, 1),
        ]

    def test_cancel_taker_after_partial_fill(self, book_cls: type[OrderBook]) -> None:
        """CANCEL_TAKER cancels the taker's remaining at the same-owner maker; the level's L2 follows."""
        book = book_cls()
        book.place(1, 11, SELL, 100, 2)
        book.place(2, 10, SELL, 100, 2)
        assert book.place(3, 10, BUY, 101, 5, stp=Stp.CANCEL_TAKER, slots=(9, 0, 0, 0)) == [
            accepted(5, 3, 10, BUY, 101, 5, slots=(9, 0, 0, 0)),
            Event(
                type=EventType.FILL,
                seq=6,
                side=BUY,
                flags=MAKER_DONE,
                order_id=3,
                owner=10,
                price=100,
                size=2,
                remaining=0,
                maker_id=1,
                maker_owner=11,
                trade_id=1,
            ),
            Event(
                type=EventType.CANCELLED,
                seq=7,
                side=BUY,
                reason=Reason.STP,
                order_id=3,
                owner=10,
                price=101,
                size=5,
                remaining=3,
                slots=(9, 0, 0, 0),
            ),
            l2(8, SELL, 100, 2, 1),
        ]
        assert ids(book) == [2] and book.best_bid() is None

    def test_cancel_both(self, book_cls: type[OrderBook]) -> None:
        """CANCEL_BOTH cancels the maker, then the taker, then reports the level."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 2)
        assert book.place(2, 10, BUY, 100, 5, stp=Stp.CANCEL_BOTH) == [
            accepted(3, 2, 10, BUY, 100, 5),
            Event(
                type=EventType.CANCELLED,
                seq=4,
                side=SELL,
                reason=Reason.STP,
                order_id=1,
                owner=10,
                price=100,
                size=2,
                remaining=2,
            ),
            Event(
                type=EventType.CANCELLED,
                seq=5,
                side=BUY,
                reason=Reason.STP,
                order_id=2,
                owner=10,
                price=100,
                size=5,
                remaining=5,
            ),
            l2(6, SELL, 100, 0, 0),
        ]
        assert book.orders() == [] and book.levels == 0

    def test_fok_blocked_by_same_owner_maker_under_cancel_taker(self, book_cls: type[OrderBook]) -> None:
        """The FOK simulation stops at a same-owner maker under CANCEL_TAKER: rejected, nothing changes."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 2)
        book.place(2, 11, SELL, 100, 5)
        before = book.dump()
        assert book.place(3, 10, BUY, 100, 3, tif=TimeInForce.FOK, stp=Stp.CANCEL_TAKER) == [
            Event(
                type=EventType.REJECTED,
                seq=4,
                side=BUY,
                reason=Reason.FOK_UNFILLABLE,
                order_id=3,
                owner=10,
                price=100,
                size=3,
            ),
        ]
        assert book.dump() == before and book.seq == 4 and book.entry == 2
        # Under CANCEL_MAKER the same-owner maker only contributes nothing, so the FOK fills.
        assert book.place(3, 10, BUY, 100, 3, tif=TimeInForce.FOK, stp=Stp.CANCEL_MAKER) == [
            accepted(5, 3, 10, BUY, 100, 3),
            Event(
                type=EventType.CANCELLED,
                seq=6,
                side=SELL,
                reason=Reason.STP,
                order_id=1,
                owner=10,
                price=100,
                size=2,
                remaining=2,
            ),
            Event(
                type=EventType.FILL,
                seq=7,
                side=BUY,
                flags=TAKER_DONE,
                order_id=3,
                owner=10,
                price=100,
                size=3,
                remaining=2,
                maker_id=2,
                maker_owner=11,
                trade_id=1,
            ),
            l2(8, SELL, 100, 2, 1),
        ]


class TestRejects:
    def test_post_only_would_cross(self, book_cls: type[OrderBook]) -> None:
        """A post-only order that crosses is rejected with its own fields and the current seq."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 1)
        assert book.place(2, 11, BUY, 100, 4, flags=OrderFlag.POST_ONLY) == [
            Event(
                type=EventType.REJECTED,
                seq=2,
                side=BUY,
                reason=Reason.POST_ONLY_WOULD_CROSS,
                order_id=2,
                owner=11,
                price=100,
                size=4,
            ),
        ]
        assert book.seq == 2 and book.entry == 1

    def test_rejected_keeps_seq_and_checks_in_order(self, book_cls: type[OrderBook]) -> None:
        """REJECTED carries the unchanged seq; the first failing check in the documented order wins."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 1)
        assert book.place(0, 10, 7, 0, 0) == [
            Event(type=EventType.REJECTED, seq=2, side=7, reason=Reason.BAD_SIDE, order_id=0, owner=10),
        ]
        assert book.place(1, 10, BUY, 50, 1)[0].reason == Reason.DUPLICATE_ID
        assert book.cancel(99) == [
            Event(type=EventType.REJECTED, seq=2, reason=Reason.UNKNOWN_ORDER, order_id=99, owner=2**64 - 1),
        ]
        assert book.cancel(1, 11) == [
            Event(type=EventType.REJECTED, seq=2, reason=Reason.NOT_OWNER, order_id=1, owner=11),
        ]
        assert book.cancel_by_client_id(10, CID_A) == [
            Event(type=EventType.REJECTED, seq=2, reason=Reason.UNKNOWN_ORDER, order_id=0, owner=10),
        ]
        assert book.seq == 2


class TestAmend:
    def _two_bids(self, book_cls: type[OrderBook]) -> OrderBook:
        book = book_cls()
        book.place(1, 10, BUY, 100, 5)
        book.place(2, 11, BUY, 100, 5)
        return book

    def test_smaller_size_keeps_priority(self, book_cls: type[OrderBook]) -> None:
        """Same price, smaller size: PRIORITY_KEPT, entry unchanged, still first in the queue."""
        book = self._two_bids(book_cls)
        assert book.amend(1, 10, 100, 3) == [
            Event(
                type=EventType.AMENDED,
                seq=5,
                side=BUY,
                flags=PRIORITY_KEPT,
                order_id=1,
                owner=10,
                price=100,
                size=3,
                remaining=3,
            ),
            l2(6, BUY, 100, 8, 2),
        ]
        assert ids(book) == [1, 2] and book.order(1).entry == 1 and book.entry == 2

    def test_larger_size_loses_priority(self, book_cls: type[OrderBook]) -> None:
        """Same price, larger size: flags 0, a new entry number, moved to the tail."""
        book = self._two_bids(book_cls)
        assert book.amend(1, 10, 100, 7) == [
            Event(type=EventType.AMENDED, seq=5, side=BUY, order_id=1, owner=10, price=100, size=7, remaining=7),
            l2(6, BUY, 100, 12, 2),
        ]
        assert ids(book) == [2, 1] and book.order(1).entry == 3 and book.entry == 3

    def test_amend_that_crosses_fills_then_rests(self, book_cls: type[OrderBook]) -> None:
        """A new crossing price: AMENDED, old level's L2, the match, then the remainder rests."""
        book = book_cls()
        book.place(1, 10, SELL, 101, 2)
        book.place(2, 11, BUY, 100, 5)
        assert book.amend(2, 11, 102, 5) == [
            Event(type=EventType.AMENDED, seq=5, side=BUY, order_id=2, owner=11, price=102, size=5, remaining=5),
            l2(6, BUY, 100, 0, 0),
            Event(
                type=EventType.FILL,
                seq=7,
                side=BUY,
                flags=MAKER_DONE,
                order_id=2,
                owner=11,
                price=101,
                size=2,
                remaining=0,
                maker_id=1,
                maker_owner=10,
                trade_id=1,
            ),
            l2(8, SELL, 101, 0, 0),
            l2(9, BUY, 102, 3, 1),
        ]
        assert book.order(2).entry == 3 and book.order(2).filled == 2

    def test_amend_to_size_at_or_below_filled_cancels(self, book_cls: type[OrderBook]) -> None:
        """New total size <= filled: CANCELLED(AMENDED_BELOW_FILLED) with the order's own price and size."""
        book = book_cls()
        book.place(1, 10, SELL, 100, 5)
        book.place(2, 11, BUY, 100, 3)  # fills 3 of order 1
        assert book.amend(1, 10, 100, 4) == [
            Event(
                type=EventType.AMENDED,
                seq=6,
                side=SELL,
                flags=PRIORITY_KEPT,
                order_id=1,
                owner=10,
                price=100,
                size=4,
                remaining=1,
            ),
            l2(7, SELL, 100, 1, 1),
        ]
        assert book.amend(1, 10, 99, 3) == [
            Event(
                type=EventType.CANCELLED,
                seq=8,
                side=SELL,
                reason=Reason.AMENDED_BELOW_FILLED,
                order_id=1,
                owner=10,
                price=100,
                size=4,
                remaining=1,
            ),
            l2(9, SELL, 100, 0, 0),
        ]
        assert book.amend(2, 11, 100, 3)[0].reason == Reason.UNKNOWN_ORDER


class TestCancelAll:
    def test_cancel_all_in_entry_order(self, book_cls: type[OrderBook]) -> None:
        """cancel_all goes by ascending entry number (not book order), each CANCELLED followed by its L2."""
        book = book_cls()
        book.place(1, 10, BUY, 100, 1)  # entry 1, becomes 4 after the amend
        book.place(2, 10, SELL, 200, 1)  # entry 2
        book.place(3, 10, BUY, 101, 1)  # entry 3
        book.place(4, 11, BUY, 100, 1)  # entry 4 -> other owner, untouched
        book.amend(1, 10, 100, 2)  # entry 5
        seq = book.seq
        events = book.cancel_all(10)
        assert [(e.type, e.order_id, e.price, e.size, e.remaining) for e in events] == [
            (EventType.CANCELLED, 2, 200, 1, 1),
            (EventType.L2, 0, 200, 0, 0),
            (EventType.CANCELLED, 3, 101, 1, 1),
            (EventType.L2, 0, 101, 0, 0),
            (EventType.CANCELLED, 1, 100, 2, 2),
            (EventType.L2, 0, 100, 1, 1),
        ]
        assert all(e.reason == Reason.CANCEL_ALL for e in events[::2])
        assert [e.seq for e in events] == list(range(seq + 1, seq + 7))
        assert ids(book) == [4]

    def test_cancel_all_with_slot_filter(self, book_cls: type[OrderBook]) -> None:
        """A slot filter (k, v) cancels only the owner's orders whose slot k equals v; k=4 is an input error."""
        book = book_cls()
        book.place(1, 10, BUY, 100, 1, slots=(0, 7, 0, 0))
        book.place(2, 10, BUY, 99, 1, slots=(0, 8, 0, 0))
        book.set_slot(2, 1, 7)
        book.place(3, 10, BUY, 98, 1, slots=(0, 8, 0, 0))
        assert [e.order_id for e in book.cancel_all(10, (1, 7)) if e.type == EventType.CANCELLED] == [1, 2]
        assert ids(book) == [3]
        assert book.cancel_all(10, (1, 99)) == []
        with pytest.raises(BookInputError):
            book.cancel_all(10, (4, 7))
        with pytest.raises(BookError) as err:
            book.set_slot(1, 0, 1)
        assert err.value.code == "UNKNOWN_ORDER"


class TestBatch:
    def test_batch_sets_cmd_and_rejects_bad_op(self, book_cls: type[OrderBook]) -> None:
        """Batch events equal one-by-one events with cmd set; an unknown op is REJECTED(BAD_OP)."""
        book = book_cls()
        events = book.batch(
            [
                Command(op=Op.PLACE, order_id=1, owner=10, side=SELL, price=100, size=2),
                Command(op=9, order_id=5, owner=6),  # type: ignore[arg-type]
                Command(op=Op.CANCEL, order_id=1, owner=10, expired=True),
            ]
        )
        assert events == [
            accepted(1, 1, 10, SELL, 100, 2),
            l2(2, SELL, 100, 2, 1),
            Event(type=EventType.REJECTED, seq=2, cmd=1, reason=Reason.BAD_OP, order_id=5, owner=6),
            Event(
                type=EventType.EXPIRED,
                seq=3,
                cmd=2,
                side=SELL,
                reason=Reason.EXPIRY,
                order_id=1,
                owner=10,
                price=100,
                size=2,
                remaining=2,
            ),
            l2(4, SELL, 100, 0, 0, cmd=2),
        ]

    def test_batch_input_error_runs_nothing(self, book_cls: type[OrderBook]) -> None:
        """A range error anywhere in a batch raises before any command runs."""
        book = book_cls()
        with pytest.raises(BookInputError):
            book.batch(
                [
                    Command(op=Op.PLACE, order_id=1, owner=10, side=SELL, price=100, size=2),
                    Command(op=Op.AMEND, order_id=1, owner=10, price=2**63, size=1),
                ]
            )
        assert book.seq == 0 and book.orders() == []


class TestInputErrors:
    def test_out_of_range_values_raise(self, book_cls: type[OrderBook]) -> None:
        """A price of 2**63 and a 15-byte client id raise BookInputError and leave the book alone."""
        book = book_cls()
        with pytest.raises(BookInputError):
            book.place(1, 10, BUY, 2**63, 1)
        with pytest.raises(BookInputError):
            book.place(1, 10, BUY, 100, 1, client_id=b"x" * 15)
        with pytest.raises(BookInputError):
            book.cancel(-1)
        with pytest.raises(BookInputError):
            book_cls(max_orders=0)
        assert book.seq == 0 and book.entry == 0


class TestSnapshot:
    def _busy_book(self, book_cls: type[OrderBook]) -> OrderBook:
        book = book_cls(max_orders=50, max_levels=20)
        book.place(1, 10, BUY, 100, 5, client_id=CID_A, slots=(1, 2, 3, 4))
        book.place(2, 11, BUY, 100, 3, tif=TimeInForce.GTD, expiry=1_000, flags=OrderFlag.POST_ONLY)
        book.place(3, 12, BUY, 98, 4, stp=Stp.CANCEL_BOTH)
        book.place(4, 13, SELL, 103, 6)
        book.place(5, 14, SELL, 101, 2, client_id=b"\0" * 16)
        book.place(6, 15, SELL, 100, 2)  # trades 2 against order 1
        book.amend(1, 10, 100, 7)  # loses priority: behind order 2
        return book

    def test_round_trip(self, book_cls: type[OrderBook]) -> None:
        """load(dump()) gives identical bytes and identical events for the same subsequent commands."""
        book = self._busy_book(book_cls)
        data = book.dump()
        assert len(data) == 48 + 112 * book.open_orders and data[:8] == b"EXOSBK01"
        copy = book_cls.load(data)
        assert copy.dump() == data and copy.orders() == book.orders()
        copy.check()
        follow = [
            lambda b: b.place(7, 16, SELL, 99, 20, stp=Stp.CANCEL_TAKER),
            lambda b: b.amend(4, 13, 103, 1),
            lambda b: b.cancel_all(14),
            lambda b: b.place(8, 10, BUY, 104, 1, tif=TimeInForce.IOC),
        ]
        for step in follow:
            assert step(copy) == step(book)
            assert copy.dump() == book.dump()

    def test_load_rejects_what_dump_cannot_write(self, book_cls: type[OrderBook]) -> None:
        """Truncated, wrong-magic, IOC-order and duplicate-id snapshots raise BAD_SNAPSHOT."""
        data = self._busy_book(book_cls).dump()
        record = 48  # first record: order 2 at the head of the 100 bid level
        ioc = bytearray(data)
        ioc[record + 105] = TimeInForce.IOC
        duplicate = bytearray(data)
        duplicate[record + 112 : record + 120] = data[record : record + 8]
        bad_magic = b"EXOSBK02" + data[8:]
        for bad in (data[:-1], bad_magic, bytes(ioc), bytes(duplicate)):
            with pytest.raises(BookError) as err:
                book_cls.load(bad)
            assert err.value.code == "BAD_SNAPSHOT"
