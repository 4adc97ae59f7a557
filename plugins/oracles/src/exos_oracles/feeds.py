"""Oracle feeds fed only by journaled `OracleUpdate` commands: a median across sources, with guards.

Two kinds, one aggregation:

- **pushed**: each named publisher address is a source (`params.publishers`); the price is the median
  of the publishers' latest live prices.
- **index**: named sources (`params.sources`, e.g. exchanges) whose prices any listed publisher relays;
  the price is the median of the live sources after dropping those farther than `band_bps` from the
  first median; below `min_sources` live sources the index is stale.

Prices are integers in the feed's own fixed point (the manifest says what a unit is). A source is
live while `now - published_ms <= max_age_ms` (command time against the publisher's timestamp). The
median of an even count is the mean of the two middle prices rounded down (floor), so it is an
exact integer everywhere. Guards, each a refusal that changes nothing: an unknown publisher or
source, a price that is not a positive integer, a timestamp more than a second ahead of the command
or already older than `max_age_ms`, one not newer than the source's last, and an update that would
move the aggregate by more than `max_move_bps` from the last one the feed took.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exos.protocols import API_VERSION

FUTURE_SLACK_MS = 1_000  # a publisher's clock may run this far ahead of the sequencer's


def median(values: Sequence[int]) -> int:
    """The median of integers; for an even count, the mean of the two middle values rounded down."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An integer param in [low, high]."""
    value = params.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{key}: an integer in {low}..{high}, got {value!r}")
    return value


def _addresses(params: Mapping[str, Any], key: str) -> frozenset[bytes]:
    """A non-empty list of 0x addresses (any case)."""
    values = params.get(key)
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f"{key}: a non-empty list of 0x addresses")
    out = set()
    for value in values:
        if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
            raise ValueError(f"{key}: {value!r} is not a 0x address of 40 hex digits")
        out.add(bytes.fromhex(value[2:]))
    return frozenset(out)


class MedianFeed:
    """One feed: the latest (price, published_ms) per source and the last aggregate it took."""

    def __init__(self, name: str, *, publishers: frozenset[bytes], sources: tuple[str, ...] | None, max_age_ms: int,
                 max_move_bps: int, band_bps: int, min_sources: int) -> None:  # fmt: skip
        """A feed with no price yet (`sources` None: every publisher is its own source)."""
        self.name = name
        self.publishers, self.sources = publishers, sources
        self.max_age_ms, self.max_move_bps, self.band_bps, self.min_sources = (
            max_age_ms, max_move_bps, band_bps, min_sources)  # fmt: skip
        self.latest: dict[str, tuple[int, int]] = {}
        self.last: int | None = None

    def _key(self, publisher: bytes, source: str) -> str:
        """The source a price is for."""
        if publisher not in self.publishers:
            raise ValueError(f"0x{publisher.hex()} is not a publisher of this feed")
        if self.sources is None:
            if source:
                raise ValueError("a pushed feed's sources are its publishers: leave source empty")
            return "0x" + publisher.hex()
        if source not in self.sources:
            raise ValueError(f"source {source!r} is not one of {', '.join(self.sources)}")
        return source

    def _live(self, latest: Mapping[str, tuple[int, int]], now: int) -> list[int]:
        """The prices young enough to count."""
        return [price for price, published in latest.values() if now - published <= self.max_age_ms]

    def _aggregate(self, latest: Mapping[str, tuple[int, int]], now: int) -> tuple[int | None, int]:
        """(the aggregate or None if stale, how many sources count)."""
        live = self._live(latest, now)
        if len(live) < self.min_sources or not live:
            return None, len(live)
        first = median(live)
        if self.band_bps:
            live = [p for p in live if abs(p - first) * 10_000 <= first * self.band_bps]
            if len(live) < self.min_sources or not live:
                return None, len(live)
        return median(live), len(live)

    def update(self, publisher: bytes, source: str, price: int, published_ms: int, now: int) -> int:
        """Take a source's price (ValueError, changing nothing, if a guard refuses it); the live source count."""
        key = self._key(publisher, source)
        if type(price) is not int or price <= 0:
            raise ValueError(f"price: a positive integer, got {price!r}")
        if published_ms > now + FUTURE_SLACK_MS:
            raise ValueError(f"published at {published_ms}, ahead of the command time {now}")
        if now - published_ms > self.max_age_ms:
            raise ValueError(f"published at {published_ms}: older than max_age_ms ({self.max_age_ms}) at {now}")
        previous = self.latest.get(key)
        if previous is not None and published_ms <= previous[1]:
            raise ValueError(f"{key}: published at {published_ms}, not after its last price ({previous[1]})")
        trial = {**self.latest, key: (price, published_ms)}
        aggregate, live = self._aggregate(trial, now)
        if aggregate is not None and self.last is not None and self.max_move_bps:
            moved = abs(aggregate - self.last) * 10_000
            if moved > self.last * self.max_move_bps:
                raise ValueError(f"moves the price from {self.last} to {aggregate}, more than max_move_bps "
                                 f"({self.max_move_bps})")  # fmt: skip
        self.latest = dict(sorted(trial.items()))
        if aggregate is not None:
            self.last = aggregate
        return live

    def value(self, now: int) -> int | None:
        """The aggregate at `now`, or None while stale (or never published)."""
        return self._aggregate(self.latest, now)[0]

    def live(self, now: int) -> int:
        """How many sources are young enough to count at `now`."""
        return len(self._live(self.latest, now))

    def expires_at(self, now: int) -> int | None:
        """The first time after `now` at which a live source grows too old, or None."""
        times = [published + self.max_age_ms + 1 for _, published in self.latest.values()]
        later = [t for t in times if t > now]
        return min(later) if later else None

    def dump(self) -> bytes:
        """Canonical JSON of the latest prices and the last aggregate."""
        return json.dumps({"latest": self.latest, "last": self.last}, sort_keys=True, separators=(",", ":")).encode()

    def load(self, data: bytes) -> None:
        """Replace the state with a dump."""
        state = json.loads(data)
        self.latest = {k: (int(v[0]), int(v[1])) for k, v in sorted(state["latest"].items())}
        self.last = state["last"]

    def check_invariants(self) -> None:
        """Every kept price is positive; so is the last aggregate."""
        assert all(price > 0 for price, _ in self.latest.values()), f"{self.name}: a non-positive price is kept"
        assert self.last is None or self.last > 0, f"{self.name}: the last aggregate is not positive"


class PushedKind:
    """Registers as oracle kind "pushed": the median of named publishers' prices."""

    api_version = API_VERSION
    name = "pushed"

    def create(self, feed: str, params: Mapping[str, Any]) -> MedianFeed:
        """A feed from `publishers`, `max_age_ms` (60 s), `max_move_bps` (0: off), `min_publishers` (1)."""
        unknown = set(params) - {"publishers", "max_age_ms", "max_move_bps", "min_publishers"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        publishers = _addresses(params, "publishers")
        return MedianFeed(feed, publishers=publishers, sources=None,
                          max_age_ms=_int(params, "max_age_ms", 60_000, 1, 10**10),
                          max_move_bps=_int(params, "max_move_bps", 0, 0, 10**6), band_bps=0,
                          min_sources=_int(params, "min_publishers", 1, 1, len(publishers)))  # fmt: skip


class IndexKind:
    """Registers as oracle kind "index": the median of named sources, relayed by listed publishers."""

    api_version = API_VERSION
    name = "index"

    def create(self, feed: str, params: Mapping[str, Any]) -> MedianFeed:
        """A feed from `sources`, `publishers`, `max_age_ms` (10 s), `band_bps` (500), `min_sources` (a majority),
        `max_move_bps` (0: off)."""
        unknown = set(params) - {"publishers", "sources", "max_age_ms", "band_bps", "min_sources", "max_move_bps"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        sources = params.get("sources")
        if not isinstance(sources, list | tuple) or not sources or not all(isinstance(s, str) and s for s in sources):
            raise ValueError("sources: a non-empty list of source names")
        if len(set(sources)) != len(sources):
            raise ValueError("sources: a name appears twice")
        return MedianFeed(feed, publishers=_addresses(params, "publishers"), sources=tuple(sources),
                          max_age_ms=_int(params, "max_age_ms", 10_000, 1, 10**10),
                          max_move_bps=_int(params, "max_move_bps", 0, 0, 10**6),
                          band_bps=_int(params, "band_bps", 500, 0, 10_000),
                          min_sources=_int(params, "min_sources", len(sources) // 2 + 1, 1, len(sources)))  # fmt: skip
