"""The sequencer's recent memory of market activity: trades per market, fills per account, order statuses.

Built from raw events after each group commit, outside the engine (nothing here is engine state or
hashed). It answers what REST asks about the recent past: recent trades, an account's fills, and the
status of an order that has left the book (filled or cancelled). It is bounded and starts empty on
restart; open orders always come from the engine itself. Durable history is the history store's job.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from exos.events import EventKind, RawEvent

TRADES_PER_MARKET = 500
FILLS_PER_ACCOUNT = 1000
ORDERS_KEPT = 200_000

_ACCEPTED = int(EventKind.ORDER_ACCEPTED)
_DELAYED = int(EventKind.ORDER_DELAYED)
_FILL = int(EventKind.FILL)
_CANCELLED = int(EventKind.ORDER_CANCELLED)
_EXPIRED = int(EventKind.ORDER_EXPIRED)
_AMENDED = int(EventKind.ORDER_AMENDED)
_TRACKED = frozenset((_ACCEPTED, _DELAYED, _FILL, _CANCELLED, _EXPIRED, _AMENDED))


class Tape:
    """Recent trades, fills and order statuses, bounded, from raw events."""

    def __init__(self) -> None:
        """An empty tape."""
        self.trades: dict[str, deque[RawEvent]] = {}
        self.fills: dict[tuple[bytes, int], deque[RawEvent]] = {}
        # (market, order_id) -> [status, filled, size, first event]; status: delayed, open, filled, cancelled
        self.orders: OrderedDict[tuple[str, int], list[Any]] = OrderedDict()
        self.client_ids: dict[tuple[str, bytes, int, bytes], int] = {}

    def record(self, events: list[RawEvent]) -> None:
        """Take in one group's raw events."""
        tracked = _TRACKED
        orders = self.orders
        for event in events:
            kind = event[3]
            if kind not in tracked:
                continue
            if kind == _FILL:
                key = (event[4], event[6])
                if not event[10]:  # the taker's fill is the trade
                    trades = self.trades.get(event[4])
                    if trades is None:
                        trades = self.trades[event[4]] = deque(maxlen=TRADES_PER_MARKET)
                    trades.append(event)
                account = (event[7], event[8])
                fills = self.fills.get(account)
                if fills is None:
                    fills = self.fills[account] = deque(maxlen=FILLS_PER_ACCOUNT)
                fills.append(event)
                row = orders.get(key)
                if row is not None:
                    row[1] += event[12]
                    if row[1] >= row[2]:
                        row[0] = "filled"
            elif kind == _ACCEPTED or kind == _DELAYED:
                key = (event[4], event[5])
                row = orders.get(key)
                if row is None:
                    orders[key] = ["open" if kind == _ACCEPTED else "delayed", 0, event[10], event]
                    if kind == _ACCEPTED and event[12] is not None:
                        self.client_ids[(event[4], event[6], event[7], event[12])] = event[5]
                    if len(orders) > ORDERS_KEPT:
                        self._evict()
                else:  # a delayed order entering the book
                    row[0] = "open"
                    row[3] = event
            elif kind == _AMENDED:
                row = orders.get((event[4], event[5]))
                if row is not None:
                    row[2] = row[1] + event[10]
            else:
                row = orders.get((event[4], event[5]))
                if row is not None and row[0] != "filled":
                    row[0] = "expired" if kind == _EXPIRED else "cancelled"
                    row.append(event[9])

    def _evict(self) -> None:
        """Forget the oldest order (and its client id)."""
        (market, _), row = self.orders.popitem(last=False)
        first = row[3]
        if first[3] == _ACCEPTED and first[12] is not None:
            self.client_ids.pop((market, first[6], first[7], first[12]), None)

    def order(self, market: str, order_id: int) -> list[Any] | None:
        """[status, filled, size, first event, (reason)] of a recent order, or None."""
        return self.orders.get((market, order_id))

    def order_id(self, market: str, address: bytes, sub: int, client_id: bytes) -> int | None:
        """The id of a recent order by its client id, or None."""
        return self.client_ids.get((market, address, sub, client_id))
