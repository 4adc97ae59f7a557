"""The WebSocket market-data feed over real engine events: deltas rebuild the book, checksums agree, a slow client
is resynced with a snapshot instead of a silent gap."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exos import commands as C
from exos.engine import Engine
from exos.events import CLASSES, FIELDS, Cause, EventKind
from exos.feed import CHECKSUM_LEVELS, QUEUE_MAX, Feed, Subscriber, checksum, raw_json
from exos.sequencer import Sequencer

ROOT = Path(__file__).resolve().parents[1]
ADMIN = bytes.fromhex("11" * 20)
TRADERS = [bytes([i]) * 20 for i in range(1, 9)]


class ClientBook:
    """What a client keeps: levels from a snapshot, then deltas; it checks sequence and checksum on every message."""

    def __init__(self) -> None:
        """Nothing yet."""
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.seq: int | None = None

    def apply(self, message: dict[str, Any]) -> None:
        """One book message (snapshot or delta)."""
        if message["type"] == "snapshot":
            self.bids = {int(p): int(s) for p, s, _ in message["bids"]}
            self.asks = {int(p): int(s) for p, s, _ in message["asks"]}
        else:
            assert self.seq is not None and int(message["prev_seq"]) == self.seq, "a gap"
            for side, rows in ((self.bids, message["bids"]), (self.asks, message["asks"])):
                for p, s, _ in rows:
                    if int(s):
                        side[int(p)] = int(s)
                    else:
                        side.pop(int(p), None)
        self.seq = int(message["seq"])
        assert int(message["checksum"]) == checksum(*self.top(CHECKSUM_LEVELS))

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best n levels of each side."""
        return sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n]


def venue() -> tuple[Engine, Sequencer, Feed]:
    """The spot example, traders funded, a feed loaded from the sequencer's books."""
    engine = Engine.from_manifest(ROOT / "examples" / "spot.toml")
    for trader in TRADERS:
        for asset, amount in (("USDC", 10**13), ("BTC", 10**10)):
            engine.submit(C.Deposit(actor=C.Actor(trader, 0, ADMIN), timestamp=1, asset=asset, amount=amount))
    sequencer = Sequencer(engine, clock=lambda: 2)
    feed = Feed()
    feed.load(sequencer.q_books())
    return engine, sequencer, feed


def flow(engine: Engine, rng: random.Random, n: int) -> list[bytes]:
    """Random limit orders around 65,000 (half of them cross) and cancels of open ones."""
    records = []
    for _ in range(n):
        trader = rng.choice(TRADERS)
        open_orders = engine.open_orders(trader)
        if open_orders and rng.random() < 0.3:
            _, victim = rng.choice(open_orders)
            records.append(C.CancelOrder(actor=C.Actor(trader), timestamp=0, market="BTC-USDC",
                                         order_id=victim.order_id).pack())  # fmt: skip
        else:
            price = 6_500_000 + rng.randrange(-40, 41)
            records.append(C.PlaceOrder(actor=C.Actor(trader), timestamp=0, market="BTC-USDC", side=rng.randrange(2),
                                        price=price, size=rng.randrange(1, 6)).pack())  # fmt: skip
    return records


def engine_top(engine: Engine, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The engine's own best levels."""
    bids, asks = engine.depth("BTC-USDC", n)
    return [(lv.price, lv.size) for lv in bids], [(lv.price, lv.size) for lv in asks]


def test_deltas_rebuild_the_book_with_matching_checksums() -> None:
    """A subscriber that applies every message holds exactly the engine's book, group after group."""
    engine, sequencer, feed = venue()
    rng = random.Random(5)
    subscriber = Subscriber()
    client = ClientBook()
    feed.subscribe(subscriber, "book", "BTC-USDC")
    for _ in range(60):
        events, _ = sequencer.submit([(None, flow(engine, rng, rng.randrange(1, 8)))])
        feed.publish(events)
        for message in subscriber.queue:
            client.apply(message)
        subscriber.queue.clear()
        assert client.top(10_000) == engine_top(engine, 10_000)


def test_a_client_that_falls_behind_gets_a_snapshot_not_a_gap() -> None:
    """Past QUEUE_MAX unsent messages the queue is dropped; the catch-up snapshot is the book as it is now."""
    engine, sequencer, feed = venue()
    rng = random.Random(9)
    slow, trades = Subscriber(), Subscriber()
    feed.subscribe(slow, "book", "BTC-USDC")
    feed.subscribe(slow, "trades", "BTC-USDC")
    feed.subscribe(trades, "trades", "BTC-USDC")
    client = ClientBook()
    client.apply(slow.queue.popleft())  # the first snapshot
    while not slow.behind:
        events, _ = sequencer.submit([(None, flow(engine, rng, 5))])
        feed.publish(events)
    assert not slow.queue  # nothing half-delivered stays queued
    caught_up = feed.catch_up(slow)
    assert caught_up[0]["type"] == "snapshot" and caught_up[0]["resync"] is True
    assert {"channel": "trades", "type": "resync", "key": "BTC-USDC"} in caught_up
    client.apply(caught_up[0])
    assert client.top(10_000) == engine_top(engine, 10_000)
    events, _ = sequencer.submit([(None, flow(engine, rng, 20))])
    feed.publish(events)
    for message in slow.queue:
        if message["channel"] == "book":
            client.apply(message)  # continues from the snapshot without a gap
    assert client.top(10_000) == engine_top(engine, 10_000)
    assert len(trades.queue) <= QUEUE_MAX


def test_the_user_channel_carries_only_the_accounts_own_events() -> None:
    """Orders, fills and deposits of one address reach its subscribers; nobody else's do."""
    _, sequencer, feed = venue()
    mine, theirs = TRADERS[0], TRADERS[1]
    subscriber = Subscriber()
    feed.subscribe(subscriber, "user", mine)
    maker = C.PlaceOrder(actor=C.Actor(theirs), timestamp=0, market="BTC-USDC", side=1, price=6_500_000, size=3)
    taker = C.PlaceOrder(actor=C.Actor(mine), timestamp=0, market="BTC-USDC", side=0, price=6_500_000, size=2)
    events, _ = sequencer.submit([(None, [maker.pack(), taker.pack()])])
    feed.publish(events)
    kinds = [m["type"] for m in subscriber.queue]
    assert kinds == ["OrderAccepted", "Fill"]
    assert all(m["address"] == "0x" + mine.hex() for m in subscriber.queue)
    feed.unsubscribe(subscriber)
    events, _ = sequencer.submit([(None, [taker.pack()])])
    feed.publish(events)
    assert len(subscriber.queue) == 2 and not feed.user_subs


def _reference_json(raw: tuple[Any, ...]) -> dict[str, Any]:
    """The JSON of an event as documented, field by field: bytes as 0x-hex (lists of them as lists), integers as
    decimal strings, strings, booleans and None as they are, the cause by name."""

    def value(v: Any) -> Any:
        if isinstance(v, bytes):
            return "0x" + v.hex()
        if v is None or isinstance(v, bool | str):
            return v
        if isinstance(v, int):
            return str(v)
        return [value(x) for x in v]

    kind = EventKind(raw[3])
    out = {
        "type": CLASSES[kind].__name__,
        "seq": str(raw[0]),
        "index": str(raw[1]),
        "cause": Cause(raw[2]).name.lower(),
    }
    out.update({name: value(v) for name, v in zip(FIELDS[kind], raw[4:], strict=True)})
    return out


_VALUES = st.one_of(st.integers(-(2**70), 2**70), st.booleans(), st.none(), st.text(max_size=8), st.binary(max_size=24),
                    st.tuples(st.binary(max_size=4)), st.sampled_from(list(Cause)))  # fmt: skip


@given(kind=st.sampled_from(list(CLASSES)), data=st.data())
def test_event_json_is_the_documented_form_of_every_field(kind: EventKind, data: st.DataObject) -> None:
    """raw_json (unrolled per kind) agrees with the field-by-field rule for any value in any field, and a raw event
    with a field too many or too few is refused rather than misread."""
    fields = data.draw(st.lists(_VALUES, min_size=len(FIELDS[kind]), max_size=len(FIELDS[kind])))
    raw = (data.draw(st.integers(0, 2**63)), data.draw(st.integers(0, 99)), data.draw(st.sampled_from(list(Cause))),
           int(kind), *fields)  # fmt: skip
    assert raw_json(raw) == _reference_json(raw)
    for wrong in (raw[:-1], (*raw, 0)):
        with pytest.raises(ValueError, match="values to unpack"):
            raw_json(wrong)
