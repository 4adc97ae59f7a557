"""Market data for WebSocket clients: a mirror of every book, and bounded per-client queues.

Each verifier keeps its own mirror of every L2 book, built from the sequencer's snapshot and then from
the events of every group, so a subscriber's snapshot never waits on the sequencer. After a group,
each book whose sequence moved sends one delta message: the changed levels (size 0 removes a level;
none if only the sequence moved, e.g. an IOC that found nothing), `seq` (the book's sequence after
the group, the same number REST reports) and `prev_seq` (the previous message's `seq`: a client whose
last sequence differs has missed something and resubscribes), and a checksum of the top
CHECKSUM_LEVELS levels.

The user channel of an account is open only to a connection logged in as it (`exos.auth`): with the
account's own key, or an agent's until the agent is revoked (the feed sees the AgentRevoked event and
logs such connections out) or expires (the server's timer does the same).

A client's queue holds at most QUEUE_MAX messages. When a client falls behind, its queue is dropped
and it gets a fresh snapshot of each book it follows (and a `resync` notice on its other channels), so
it never sees a silent gap.

Checksum: CRC-32 (zlib) of the ASCII text `b1p:b1s,b2p:b2s,...|a1p:a1s,...` over the best
CHECKSUM_LEVELS bids (highest first) and asks (lowest first), prices in ticks and sizes in lots.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from sortedcontainers import SortedDict  # type: ignore[import-untyped]

from exos.events import CLASSES, FIELDS, Cause, EventKind, RawEvent

CHECKSUM_LEVELS = 25
QUEUE_MAX = 1000
ANSWERS_MAX = 10_000  # unread replies beyond this: the client does not read, and is disconnected
_DELTA = int(EventKind.BOOK_DELTA)
# where each market-data event carries the book's sequence number
_BOOK_SEQ_AT = {
    int(EventKind.ORDER_ACCEPTED): 13, int(EventKind.FILL): 16, int(EventKind.ORDER_CANCELLED): 10,
    int(EventKind.ORDER_EXPIRED): 10, int(EventKind.ORDER_AMENDED): 12, _DELTA: 9,
}  # fmt: skip
_FILL = int(EventKind.FILL)
_LISTED = int(EventKind.MARKET_LISTED)
_REVOKED = int(EventKind.AGENT_REVOKED)
_MARKET_EVENT = int(EventKind.MARKET_EVENT)
# events that name an account: its address is the field after market and order id (or first)
_ADDRESS_AT = {
    int(EventKind.ORDER_ACCEPTED): 6, int(EventKind.FILL): 7, int(EventKind.ORDER_CANCELLED): 6,
    int(EventKind.ORDER_EXPIRED): 6, int(EventKind.ORDER_AMENDED): 6, int(EventKind.ORDER_DELAYED): 6,
    int(EventKind.DEPOSITED): 4, int(EventKind.WITHDRAWN): 4, int(EventKind.TRANSFERRED): 4,
    int(EventKind.AGENT_APPROVED): 4, int(EventKind.AGENT_REVOKED): 4,
}  # fmt: skip


def checksum(bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]) -> int:
    """The CRC-32 of the top levels (see the module docstring)."""
    text = ",".join(f"{p}:{s}" for p, s in bids) + "|" + ",".join(f"{p}:{s}" for p, s in asks)
    return zlib.crc32(text.encode())


class Book:
    """One market's L2 levels: price -> (size, count), bids keyed negated so both sides iterate best first."""

    __slots__ = ("asks", "bids", "seq")

    def __init__(self, seq: int = 0) -> None:
        """An empty book at sequence `seq`."""
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.seq = seq

    def set(self, side: int, price: int, size: int, count: int) -> None:
        """One level's new size (0 removes it)."""
        levels, key = (self.bids, -price) if side == 0 else (self.asks, price)
        if size:
            levels[key] = (size, count)
        else:
            levels.pop(key, None)

    def top(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """The best `n` levels of a side: (price, size, count)."""
        levels = self.bids if side == 0 else self.asks
        sign = -1 if side == 0 else 1
        return [(sign * k, *levels[k]) for k in levels.islice(0, n)]

    def checksum(self) -> int:
        """The checksum of the top levels."""
        bids = [(p, s) for p, s, _ in self.top(0, CHECKSUM_LEVELS)]
        asks = [(p, s) for p, s, _ in self.top(1, CHECKSUM_LEVELS)]
        return checksum(bids, asks)


class Subscriber:
    """One WebSocket client's subscriptions and its bounded outgoing queue."""

    def __init__(self) -> None:
        """No subscriptions, an empty queue."""
        self.queue: deque[dict[str, Any]] = deque()
        self.answers: deque[dict[str, Any]] = deque()  # replies to the client's own requests: never dropped
        self.inflight = 0  # order-channel requests not answered yet
        self.wake = asyncio.Event()
        self.behind = False
        self.subs: set[tuple[str, str | bytes]] = set()  # (channel, market name or account address)
        self.logins: dict[bytes, bytes] = {}  # account -> the signer that logged in as it (itself or an agent)
        self.timers: dict[bytes, asyncio.TimerHandle] = {}  # account -> the logout when its agent expires
        self.loop: Any = None  # the event loop serving the connection (the server sets it)
        # sends a message to the client at once if the connection takes it now (exos.websocket's direct channel);
        # the server sets it
        self.direct: Callable[[dict[str, Any]], bool] | None = None
        self.sending = False  # the sender holds messages taken from the queues and not yet written

    def _sent_now(self, message: dict[str, Any]) -> bool:
        """Write `message` at once if nothing is waiting to go before it (a catch-up included) and the connection
        takes it now."""
        return (self.direct is not None and not self.behind and not self.sending and not self.queue
                and not self.answers and self.direct(message))  # fmt: skip

    def push(self, message: dict[str, Any]) -> None:
        """Send or queue a message; a full queue marks the client behind (the sender resyncs it)."""
        if self.behind:
            return
        if len(self.queue) >= QUEUE_MAX:
            self.queue.clear()
            self.behind = True
        elif self._sent_now(message):
            return
        else:
            self.queue.append(message)
        self.wake.set()

    def answer(self, message: dict[str, Any]) -> None:
        """Send or queue a reply to one of the client's requests (bounded by what the client itself sends)."""
        if self._sent_now(message):
            return
        self.answers.append(message)
        self.wake.set()


class Feed:
    """The verifier's books and subscribers, fed with every group's raw events."""

    def __init__(self) -> None:
        """No books yet (load a snapshot first)."""
        self.books: dict[str, Book] = {}
        self.book_subs: dict[str, set[Subscriber]] = {}
        self.trade_subs: dict[str, set[Subscriber]] = {}
        self.user_subs: dict[bytes, set[Subscriber]] = {}
        self.agent_logins: dict[tuple[bytes, bytes], set[Subscriber]] = {}  # (account, agent) -> logged in so

    def load(self, books: list[Any]) -> None:
        """Start from the sequencer's snapshot: (market, seq, bids, asks) with (price, size, count) rows."""
        for market, seq, bids, asks in books:
            book = self.books[market] = Book(seq)
            for side, rows in ((0, bids), (1, asks)):
                for price, size, count in rows:
                    book.set(side, price, size, count)

    def snapshot(self, market: str, *, resync: bool = False) -> dict[str, Any]:
        """A book's full snapshot message."""
        book = self.books[market]

        def rows(side: int) -> list[list[str]]:
            return [[str(p), str(s), str(c)] for p, s, c in book.top(side, len(book.bids if side == 0 else book.asks))]

        return {"channel": "book", "type": "snapshot", "market": market, "seq": str(book.seq),
                "bids": rows(0), "asks": rows(1), "checksum": str(book.checksum()), "resync": resync}  # fmt: skip

    def publish(self, events: list[RawEvent]) -> None:
        """Apply a group's events to the books and queue what each subscriber follows."""
        # per subscribed book whose sequence moved: its sequence before the group, and the level changes
        changed: dict[str, tuple[int, list[RawEvent]]] = {}
        books = self.books
        seq_at = _BOOK_SEQ_AT
        for event in events:
            kind = event[3]
            at = seq_at.get(kind)
            if at is not None:  # the book's sequence moved (a level may or may not have changed)
                market = event[4]
                book = books[market]
                if market in self.book_subs:
                    moved = changed.get(market)
                    if moved is None:
                        moved = changed[market] = (book.seq, [])
                    if kind == _DELTA:
                        moved[1].append(event)
                book.seq = event[at]
                if kind == _DELTA:
                    book.set(event[5], event[6], event[7], event[8])
            elif kind == _LISTED:
                books.setdefault(event[4], Book())
            if kind == _FILL and not event[10] and event[4] in self.trade_subs:
                trade = {"channel": "trades", **trade_json(event)}
                for subscriber in self.trade_subs[event[4]]:
                    subscriber.push(trade)
            if self.user_subs:
                self._user(event)
            if kind == _REVOKED and self.agent_logins:
                for subscriber in list(self.agent_logins.get((event[4], event[5]), ())):
                    self.logout(subscriber, event[4], "agent revoked")
        for market, (before, deltas) in changed.items():
            book = books[market]
            bids = [[str(e[6]), str(e[7]), str(e[8])] for e in deltas if e[5] == 0]
            asks = [[str(e[6]), str(e[7]), str(e[8])] for e in deltas if e[5] != 0]
            message = {"channel": "book", "type": "delta", "market": market, "seq": str(book.seq),
                       "prev_seq": str(before), "bids": bids, "asks": asks,
                       "checksum": str(book.checksum())}  # fmt: skip
            for subscriber in self.book_subs[market]:
                subscriber.push(message)

    def _user(self, event: RawEvent) -> None:
        """Queue an account's own events (orders, fills, transfers, payouts) on its user channel."""
        at = _ADDRESS_AT.get(event[3])
        if at is not None:
            subscribers = self.user_subs.get(event[at])
        elif event[3] == _MARKET_EVENT and '"address":"0x' in event[6]:
            start = event[6].index('"address":"0x') + 13
            subscribers = self.user_subs.get(bytes.fromhex(event[6][start : start + 40]))
        else:
            return
        if subscribers:
            message = {"channel": "user", **raw_json(event)}
            for subscriber in subscribers:
                subscriber.push(message)

    def _table(self, channel: str) -> dict[Any, set[Subscriber]]:
        """The subscribers of one channel by key."""
        tables: dict[str, dict[Any, set[Subscriber]]] = {"book": self.book_subs, "trades": self.trade_subs,
                                                          "user": self.user_subs}  # fmt: skip
        return tables[channel]

    def subscribe(self, subscriber: Subscriber, channel: str, key: str | bytes) -> None:
        """Follow a channel: book or trades of a market (name), or user (address); the caller checked the key."""
        self._table(channel).setdefault(key, set()).add(subscriber)
        subscriber.subs.add((channel, key))
        if channel == "book":
            assert isinstance(key, str)
            subscriber.push(self.snapshot(key))

    def unsubscribe(self, subscriber: Subscriber, channel: str | None = None, key: str | bytes | None = None) -> None:
        """Stop following one channel, or (no channel) everything."""
        for c, k in list(subscriber.subs):
            if channel in (None, c) and key in (None, k):
                table = self._table(c)
                table[k].discard(subscriber)
                if not table[k]:
                    del table[k]
                subscriber.subs.discard((c, k))

    def login(self, subscriber: Subscriber, account: bytes, signer: bytes) -> None:
        """Let `subscriber` follow `account`'s user channel (the caller checked the signature and the agent)."""
        self.logout(subscriber, account, unsubscribe=False)  # a second login as the account replaces the first
        subscriber.logins[account] = signer
        if signer != account:
            self.agent_logins.setdefault((account, signer), set()).add(subscriber)

    def logout(self, subscriber: Subscriber, account: bytes, reason: str | None = None, *,
               unsubscribe: bool = True) -> None:  # fmt: skip
        """End a login (and the user channel it opened); with a `reason`, tell the client why."""
        signer = subscriber.logins.pop(account, None)
        timer = subscriber.timers.pop(account, None)
        if timer is not None:
            timer.cancel()
        if signer is None:
            return
        if signer != account:
            logged_in = self.agent_logins.get((account, signer), set())
            logged_in.discard(subscriber)
            if not logged_in:
                self.agent_logins.pop((account, signer), None)
        if unsubscribe and ("user", account) in subscriber.subs:
            self.unsubscribe(subscriber, "user", account)
        if reason is not None:
            subscriber.answer({"channel": "user", "type": "logged_out", "address": "0x" + account.hex(),
                               "reason": reason})  # fmt: skip

    def close(self, subscriber: Subscriber) -> None:
        """A client has gone: every subscription and login ends."""
        for account in list(subscriber.logins):
            self.logout(subscriber, account)
        self.unsubscribe(subscriber)

    def catch_up(self, subscriber: Subscriber) -> list[dict[str, Any]]:
        """For a client that fell behind: a snapshot of each book it follows and a resync notice per channel."""
        subscriber.queue.clear()
        subscriber.behind = False
        out = []
        for channel, key in sorted(subscriber.subs, key=repr):
            if channel == "book":
                assert isinstance(key, str)
                out.append(self.snapshot(key, resync=True))
            else:
                shown = "0x" + key.hex() if isinstance(key, bytes) else key
                out.append({"channel": channel, "type": "resync", "key": shown})
        return out


_CAUSE_NAMES = {int(c): c.name.lower() for c in Cause}
# a field's conversion by its declared type: a fast path for the type, `_jsonable` for any other value
_FAST = {
    "int": "str({v}) if {v}.__class__ is int else J({v})",
    "bytes": "'0x' + {v}.hex() if {v}.__class__ is bytes else J({v})",
    "bytes | None": "'0x' + {v}.hex() if {v}.__class__ is bytes else J({v})",
    "str": "{v} if {v}.__class__ is str else J({v})",
    "bool": "{v} if {v}.__class__ is bool else J({v})",
}


def _converter(kind: EventKind) -> Callable[[RawEvent], dict[str, Any]]:
    """raw_json for one event kind, its fields unrolled: a verifier runs it for every event of every answer."""
    cls = CLASSES[kind]
    types = {f.name: str(f.type) for f in attrs.fields(cls)}
    names = [f"v{i}" for i in range(len(FIELDS[kind]))]
    items = "".join(f", {field!r}: " + _FAST.get(types[field], "J({v})").format(v=v)
                    for field, v in zip(FIELDS[kind], names, strict=True))  # fmt: skip
    source = (f"def convert(raw):\n    seq, index, cause, _kind, {''.join(n + ', ' for n in names)} = raw\n"
              f"    return {{'type': {cls.__name__!r}, 'seq': str(seq), 'index': str(index), "
              f"'cause': CAUSES[cause]{items}}}\n")  # fmt: skip
    namespace: dict[str, Any] = {"J": _jsonable, "CAUSES": _CAUSE_NAMES}
    exec(source, namespace)  # the source is built from the event classes above, nothing else
    return namespace["convert"]  # type: ignore[no-any-return]


def trade_json(fill: RawEvent) -> dict[str, Any]:
    """A trade (its taker's fill event) as JSON: price and side in the taker's outcome terms."""
    return {"market": fill[4], "trade_id": str(fill[5]), "side": fill[9], "price": str(fill[11]),
            "size": str(fill[12]), "outcome": fill[17], "seq": str(fill[0])}  # fmt: skip


def raw_json(raw: RawEvent) -> dict[str, Any]:
    """One raw event as JSON: bytes as 0x-hex, integers as decimal strings, the cause by name."""
    return _CONVERTERS[raw[3]](raw)


def _jsonable(value: Any) -> Any:
    """A field as JSON."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


_CONVERTERS = {int(kind): _converter(kind) for kind in CLASSES}
