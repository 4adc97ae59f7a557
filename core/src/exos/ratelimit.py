"""Rate limits of the gateway: token buckets per address and per IP (never engine state, never journaled).

A bucket holds up to `burst` tokens and refills at `rate` per second of the gateway's monotonic clock.
Orders and other actions spend one token per command from their account address's bucket and one per
request from the sender's IP bucket; cancels are always let through (they only reduce risk), though
they still count against the IP so a flood of them is visible. Reads (every GET) and the WebSocket's
login, logout and subscription messages spend one token of the sender's *read* bucket, checked by the
API process before it recovers any signature or asks the sequencer anything, so a flood of reads or
logins can neither take the verifier's CPU nor the sequencer's time from orders. A rate of 0 switches a
limit off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs


@attrs.frozen
class Limits:
    """Actions per second (and bursts) allowed per account address and per IP, and reads per IP; 0 means unlimited."""

    address_rate: float = 1000.0
    address_burst: float = 2000.0
    ip_rate: float = 5000.0
    ip_burst: float = 10000.0
    read_rate: float = 500.0  # per API process: each verifier keeps its own read buckets
    read_burst: float = 1000.0


class Buckets:
    """Token buckets keyed by address or IP, dropped when full again (memory stays bounded by the active set)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Buckets of `burst` tokens refilling at `rate` per second."""
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens: dict[object, tuple[float, float]] = {}

    def take(self, key: object, cost: float = 1.0, *, force: bool = False) -> bool:
        """Spend `cost` tokens of `key`'s bucket; False (nothing spent) if it lacks them, unless `force`."""
        if not self.rate:
            return True
        now = self.clock()
        tokens, since = self.tokens.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) * self.rate)
        if tokens < cost and not force:
            self.tokens[key] = (tokens, now)
            return False
        self.tokens[key] = (tokens - cost, now)
        if len(self.tokens) > 100_000:
            self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they are equal to a fresh one)."""
        full = [k for k, (t, since) in self.tokens.items() if t + (now - since) * self.rate >= self.burst]
        for key in full:
            del self.tokens[key]
