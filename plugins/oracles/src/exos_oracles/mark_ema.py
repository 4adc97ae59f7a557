"""The "mark_ema" oracle kind: a pre-launch market's price, an EMA of the venue's own book (Hyperliquid's hyperps).

A market with no external price (a pre-launch perpetual) is priced against an exponential moving average of
its own trading. The feed follows one market (`params.market`, by name) and is fed, like every feed, only
by journaled `OracleUpdate` commands from its listed `publishers` (keepers). Such an update is a sampling
tick, a **poke**: its `price` must be 0 (it carries no price, so a keeper cannot steer the oracle), its
`source` empty. At a poke the feed reads the followed market's book median, median(best bid, best ask,
last trade) of those that exist (the last trade only for market types that keep one, such as perpetuals),
converts it from the market's ticks into the feed's fixed point (`View.feed_units`: the manifest
`decimals` of the `[[oracles]]` entry; rounded half up) and folds it into the EMA with the time-weighted
rule the perpetuals use::

    ema = (ema × ema_ms + sample × dt) // (ema_ms + dt)      dt = command time since the last poke

in integers only (no floats, no exp), so every machine computes the same bits. The EMA is kept in
10^-9 of the feed's unit and the value is its floor: in whole units the floor would swallow every
rising step under one unit (an 8 h EMA poked each minute, ema_ms / dt = 480, would not rise until the
sample were 480 units above it, yet would fall at every poke). The EMA starts at
`initial_price` (the seed before the market trades); the first poke only starts the clock (dt = 0); a
poke that finds no book price keeps the EMA and restarts the clock (time without a price carries no
weight). With `cap_multiple` a sample above cap_multiple × initial_price counts as that bound, so the
EMA never passes it (Hyperliquid caps a hyperp's oracle at 4× its initial mark). With `max_move_bps` one
poke moves the value at most that far from where it was: the step is clamped, not refused, because the
publisher cannot cure a refusal (the book, not the poke, decides the move, and the next poke only has a
longer dt). Guards, each a refusal that changes nothing: a publisher not listed, a non-empty source, a
price other than 0, a timestamp more than a second ahead of the command, older than `max_age_ms` or not
after the last poke's. The value is the EMA while the last poke is at most `max_age_ms` old (its
`published_ms` against command time), None before the first poke and once it is older.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from exos.protocols import API_VERSION
from exos_oracles.feeds import FUTURE_SLACK_MS, _addresses, _int, median

if TYPE_CHECKING:
    from exos.marketctx import View

_BPS = 10_000
_MAX_PRICE = 2**63 - 1  # the seed (times the cap) must fit an i64 like every price the engine reports
FINE = 10**9  # the EMA's own units per unit of the feed's fixed point (see the module docstring)


class MarkEmaFeed:
    """One mark_ema feed: the EMA (in FINE units of the feed's fixed point), the command time of the last poke and
    its stamp."""

    def __init__(self, name: str, *, market: str, publishers: frozenset[bytes], ema_ms: int, initial_price: int,
                 max_age_ms: int, max_move_bps: int, cap_multiple: int) -> None:  # fmt: skip
        """A feed seeded at `initial_price` that has not been poked (stale) and is not bound to an engine yet."""
        self.name = name
        self.market, self.publishers = market, publishers
        self.ema_ms, self.initial_price, self.max_age_ms = ema_ms, initial_price, max_age_ms
        self.max_move_bps = max_move_bps
        self.cap = initial_price * cap_multiple if cap_multiple else None
        self.view: View | None = None
        self.fine = initial_price * FINE  # the EMA
        self.sampled_ms: int | None = None  # command time of the last poke: where the next dt starts
        self.published_ms: int | None = None  # the last poke's own timestamp: liveness and ordering

    @property
    def ema(self) -> int:
        """The EMA in the feed's fixed point (floored), live or not."""
        return self.fine // FINE

    def bind(self, view: View) -> None:
        """Keep the engine's read-only view (the followed market's book); unbound, a feed sees no book."""
        self.view = view

    def sample(self) -> int | None:
        """The followed market's book median in the feed's fixed point (capped), or None if it has no price."""
        view = self.view
        if view is None:
            return None
        market_id = view.market_index(self.market)
        if market_id is None:  # named in the manifest but listed later by an admin command
            return None
        bid, ask = view.best_prices(market_id)
        prices = [p for p in (bid, ask, view.last_trade(market_id)) if p is not None]
        if not prices:
            return None
        # a book too fine for the feed's decimals can round to 0; a price is at least one unit
        price = max(view.feed_units(market_id, median(prices), self.name), 1)
        return price if self.cap is None else min(price, self.cap)

    def _next(self, now: int) -> int:
        """The EMA (FINE units) a poke at `now` would leave (nothing changes)."""
        ema, sample = self.fine, self.sample()
        if sample is None or self.sampled_ms is None:
            return ema
        dt = now - self.sampled_ms
        tau = self.ema_ms
        folded = (ema * tau + sample * FINE * dt) // (tau + dt)
        if self.max_move_bps:
            # the bounds are whole units around the value, so the value moves at most max_move_bps; never behind
            # the EMA itself, so a clamp never pushes it back against the move
            value = ema // FINE
            low = min(ema, -(-value * (_BPS - self.max_move_bps) // _BPS) * FINE)
            high = max(ema, value * (_BPS + self.max_move_bps) // _BPS * FINE)
            folded = max(low, min(folded, high))
        return folded  # a weighted mean of values >= one unit, floored: >= one unit

    def update(self, publisher: bytes, source: str, price: int, published_ms: int, now: int) -> int:
        """A keeper's poke: sample the book into the EMA (ValueError, changing nothing, if a guard refuses it); 1."""
        if publisher not in self.publishers:
            raise ValueError(f"0x{publisher.hex()} is not a publisher of this feed")
        if source:
            raise ValueError("a mark_ema feed samples one market: leave source empty")
        if type(price) is not int or price != 0:
            raise ValueError(f"price: a mark_ema poke carries no price (0; the feed samples the book), got {price!r}")
        if published_ms > now + FUTURE_SLACK_MS:
            raise ValueError(f"published at {published_ms}, ahead of the command time {now}")
        if now - published_ms > self.max_age_ms:
            raise ValueError(f"published at {published_ms}: older than max_age_ms ({self.max_age_ms}) at {now}")
        if self.published_ms is not None and published_ms <= self.published_ms:
            raise ValueError(f"published at {published_ms}, not after the last poke ({self.published_ms})")
        if self.sampled_ms is not None and now < self.sampled_ms:
            raise ValueError(f"command time {now} is before the last poke's ({self.sampled_ms})")
        self.fine = self._next(now)
        self.sampled_ms, self.published_ms = now, published_ms
        return 1

    def value(self, now: int) -> int | None:
        """The EMA at `now`, or None before the first poke and once the last one is older than max_age_ms."""
        return self.ema if self.live(now) else None

    def live(self, now: int) -> int:
        """1 while the last poke counts at `now`, else 0."""
        return int(self.published_ms is not None and now - self.published_ms <= self.max_age_ms)

    def expires_at(self, now: int) -> int | None:
        """The first time after `now` at which the last poke is too old, or None."""
        if self.published_ms is None:
            return None
        when = self.published_ms + self.max_age_ms + 1
        return when if when > now else None

    def dump(self) -> bytes:
        """Canonical JSON of the EMA (FINE units) and the last poke's times."""
        state = {"ema_fine": self.fine, "sampled_ms": self.sampled_ms, "published_ms": self.published_ms}
        return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()

    def load(self, data: bytes) -> None:
        """Replace the state with a dump."""
        state = json.loads(data)
        fine, sampled, published = state["ema_fine"], state["sampled_ms"], state["published_ms"]
        if type(fine) is not int or (sampled is None) != (published is None):
            raise ValueError(f"{self.name}: not a mark_ema dump: {data!r}")
        self.fine, self.sampled_ms, self.published_ms = fine, sampled, published

    def check_invariants(self) -> None:
        """The EMA is positive and within the cap; a poked feed has both times."""
        assert self.fine >= FINE, f"{self.name}: the EMA {self.fine}e-9 is below one unit"
        assert self.cap is None or self.fine <= self.cap * FINE, f"{self.name}: the EMA {self.fine}e-9 passes the cap"
        assert (self.sampled_ms is None) == (self.published_ms is None), f"{self.name}: one poke time without the other"


class MarkEmaKind:
    """Registers as oracle kind "mark_ema": an EMA of a market's own book median, sampled at keepers' pokes."""

    api_version = API_VERSION
    name = "mark_ema"

    def create(self, feed: str, params: Mapping[str, Any]) -> MarkEmaFeed:
        """A feed from `market`, `publishers`, `ema_ms`, `initial_price`, `max_age_ms` (all required), `max_move_bps`
        (0: off) and `cap_multiple` (0: off)."""
        required = {"market", "publishers", "ema_ms", "initial_price", "max_age_ms"}
        unknown = set(params) - required - {"max_move_bps", "cap_multiple"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        missing = required - set(params)
        if missing:
            raise ValueError(f"missing key(s) {', '.join(sorted(missing))}")
        market = params["market"]
        if not isinstance(market, str) or not market:
            raise ValueError(f"market: the name of the market the feed follows, got {market!r}")
        initial_price = _int(params, "initial_price", 0, 1, _MAX_PRICE)
        cap_multiple = _int(params, "cap_multiple", 0, 0, 10**6)
        if initial_price * cap_multiple > _MAX_PRICE:
            raise ValueError(f"cap_multiple: {cap_multiple} × initial_price {initial_price} passes 2**63 - 1")
        return MarkEmaFeed(feed, market=market, publishers=_addresses(params, "publishers"),
                           ema_ms=_int(params, "ema_ms", 0, 1, 10**12), initial_price=initial_price,
                           max_age_ms=_int(params, "max_age_ms", 0, 1, 10**10),
                           max_move_bps=_int(params, "max_move_bps", 0, 0, 10**6),
                           cap_multiple=cap_multiple)  # fmt: skip
