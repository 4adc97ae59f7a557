"""A deterministic timer queue: timers fire in (time, sequence) order when command time passes them.

Timers are state (they are in snapshots and in the state hash). Each carries a kind and two integer
arguments; the engine decides what firing means (GTD expiry now; kickoffs, funding, oracle staleness
and cooldowns later).
"""

from __future__ import annotations

import enum
import heapq
import struct

_TIMER = struct.Struct("<qQBQQ")


class TimerKind(enum.IntEnum):
    """What a timer does when it fires."""

    EXPIRE_ORDER = 1  # args: market index, order id
    MARKET = 2  # args: market index, the market's tag (its on_timer decides what it means)
    DELAYED_ORDER = 3  # args: market index, order id (a taker delay is over)
    ORACLE = 4  # args: feed index, 0 (a source's price may have grown too old)


Timer = tuple[int, int, int, int, int]  # time, sequence, kind, arg0, arg1


class TimerQueue:
    """A heap of timers ordered by (time, sequence); the sequence breaks ties in creation order."""

    __slots__ = ("_heap", "_next_seq")

    def __init__(self) -> None:
        """An empty queue."""
        self._heap: list[Timer] = []
        self._next_seq = 1

    def __len__(self) -> int:
        """Number of pending timers."""
        return len(self._heap)

    def add(self, time: int, kind: TimerKind, arg0: int, arg1: int) -> None:
        """Schedule a timer."""
        heapq.heappush(self._heap, (time, self._next_seq, int(kind), arg0, arg1))
        self._next_seq += 1

    def next_time(self) -> int | None:
        """When the earliest timer fires, or None."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int) -> Timer | None:
        """The earliest timer due at `now` (time <= now), removed from the queue; None if none is due."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)
        return None

    def dump(self) -> bytes:
        """Canonical bytes: the next sequence, then timers sorted by (time, sequence)."""
        parts = [struct.pack("<QI", self._next_seq, len(self._heap))]
        parts += [_TIMER.pack(*timer) for timer in sorted(self._heap)]
        return b"".join(parts)

    @classmethod
    def load(cls, data: bytes) -> tuple[TimerQueue, int]:
        """Rebuild from `dump` bytes; returns the queue and the bytes read."""
        queue = cls()
        queue._next_seq, count = struct.unpack_from("<QI", data)
        offset = 12
        for _ in range(count):
            queue._heap.append(_TIMER.unpack_from(data, offset))
            offset += _TIMER.size
        heapq.heapify(queue._heap)
        return queue, offset
