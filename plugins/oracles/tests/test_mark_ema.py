"""mark_ema through a real engine (mark_ema.toml): keepers' pokes sample the book into an integer EMA, a perpetual
priced by it trades once it has a price, the cap and the move clamp hold, and a journal replays to the same state.

Every expected value is computed by hand with the documented rule ema = (ema × tau + sample × dt) // (tau + dt), kept
in 10^-9 of a unit: the value is the floor of the exact EMA (the fractions below), never of a floored one."""

from __future__ import annotations

from pathlib import Path

from exos import commands as C
from exos import events as E
from exos.engine import Engine
from exos.manifest import Manifest
from exos.testing import EventReader
from exos_perps.testing import PUBLISHER, Venue, who

MANIFEST = Path(__file__).parent / "mark_ema.toml"
A, B, STRANGER = who(0xA), who(0xB), who(0xEE)
TAU = 60_000  # both feeds' ema_ms
X_USD, X_PERP = 0, 1  # market ids in the manifest's order


def poke(venue: Venue, feed: str, at: int) -> list[E.Event]:
    """A keeper's sampling tick (price 0) at command time `at`."""
    venue.now = at - 1
    return venue.oracle(0, feed=feed)


def funded(venue: Venue) -> Venue:
    """A and B with 10,000.00 USD each, and B with 10 X to sell on the spot market."""
    venue.deposit(A, "USD", 10**6)
    venue.deposit(B, "USD", 10**6)
    venue.deposit(B, "X", 10)
    return venue


def test_a_poke_samples_the_book_in_the_feeds_units() -> None:
    """The first poke seeds at initial_price; the next folds median(bid, ask) converted from cents to whole USD."""
    venue = funded(Venue(MANIFEST))
    view = venue.engine.view
    # ticks are cents, SPOT-EMA has decimals 0: 150.50 USD rounds half up to 151, 150.49 down to 150
    assert (view.feed_units(X_USD, 15_050, "SPOT-EMA"), view.feed_units(X_USD, 15_049, "SPOT-EMA")) == (151, 150)
    assert view.feed_units(X_PERP, 105, "X-EMA") == 105  # whole-USD ticks, decimals 0: the same number
    assert venue.engine.oracle_price("SPOT-EMA") is None  # never poked: stale
    venue.order(A, "X-USD", 0, 15_000, 1)
    venue.order(B, "X-USD", 1, 15_101, 1)
    events = poke(venue, "SPOT-EMA", 100_000)
    updated = EventReader.of(events, E.OracleUpdated)
    assert [(e.feed, e.price, e.live_sources) for e in updated] == [("SPOT-EMA", 100, 1)]
    poke(venue, "SPOT-EMA", 100_000 + 3 * TAU)
    # median(15000, 15101) = 15050 ticks = 151 USD; (100 × 60000 + 151 × 180000) / 240000 = 138.25
    assert venue.engine.oracle_price("SPOT-EMA") == 138


def test_a_poke_without_a_book_price_keeps_the_ema() -> None:
    """An empty spot book (spot keeps no last trade) gives no sample: the EMA stays, the clock restarts."""
    venue = funded(Venue(MANIFEST))
    poke(venue, "SPOT-EMA", 100_000)
    poke(venue, "SPOT-EMA", 100_000 + TAU)
    assert venue.engine.oracle_price("SPOT-EMA") == 100
    venue.order(A, "X-USD", 0, 20_000, 1)  # a bid at 200.00 appears
    poke(venue, "SPOT-EMA", 100_000 + TAU + 20_000)
    # dt counts from the last poke (20 s), not from the last sample: (100 × 60000 + 200 × 20000) // 80000 = 125
    assert venue.engine.oracle_price("SPOT-EMA") == 125


def test_a_hyperp_trades_once_pokes_give_it_a_price() -> None:
    """The perp refuses risk until its feed is poked, then trades; the EMA follows its book and last trade, and the
    mark (mark_band 0) follows the EMA; a poke with a price or from a stranger is refused and changes nothing."""
    venue = funded(Venue(MANIFEST))
    venue.order(A, "X-PERP", 0, 100, 1)
    assert venue.rejection() == "NO_ORACLE"
    poke(venue, "X-EMA", 100_000)
    market = venue.engine.market_state("X-PERP").market
    assert venue.engine.oracle_price("X-EMA") == market.mark == 100  # the seed
    venue.order(B, "X-PERP", 1, 105, 2)
    venue.order(A, "X-PERP", 0, 105, 1)
    assert [(f.price, f.size) for f in venue.fills()] == [(105, 1), (105, 1)]
    bid = EventReader.order_id(venue.order(A, "X-PERP", 0, 103, 1))
    assert venue.engine.view.best_prices(X_PERP) == (103, 105)
    assert venue.engine.view.last_trade(X_PERP) == 105
    for who_, price in ((PUBLISHER, 101), (STRANGER, 0)):  # a poke carries no price; a stranger may not poke
        before = venue.engine.state_hash()  # refused at the current time: not even the clock moves
        venue.submit(C.OracleUpdate(actor=C.Actor(who_), timestamp=venue.now, feed="X-EMA", price=price,
                                    published_ms=venue.now))  # fmt: skip
        assert venue.rejection() == "ORACLE"
        assert venue.engine.state_hash() == before
    poke(venue, "X-EMA", 130_000)
    # median(103, 105, 105) = 105; (100 × 60000 + 105 × 30000) / 90000 = 101 2/3
    assert venue.engine.oracle_price("X-EMA") == market.mark == 101
    poke(venue, "X-EMA", 190_000)
    assert venue.engine.oracle_price("X-EMA") == market.mark == 103  # (101 2/3 + 105) / 2 = 103 1/3
    venue.cancel(A, "X-PERP", bid)
    venue.submit(C.CancelAll(actor=C.Actor(B), timestamp=venue.tick(), market="X-PERP"))
    assert venue.engine.view.best_prices(X_PERP) == (None, None)
    poke(venue, "X-EMA", 250_000)
    assert venue.engine.oracle_price("X-EMA") == 104  # the last trade alone: (103 1/3 + 105) / 2 = 104 1/6
    venue.engine.check_invariants()


def test_stale_past_max_age_then_live_again() -> None:
    """60 s after the last poke a system event reports the feed stale; the perp then takes only reduce-only orders
    until the next poke."""
    venue = funded(Venue(MANIFEST))
    poke(venue, "X-EMA", 100_000)
    venue.order(B, "X-PERP", 1, 100, 1)
    venue.order(A, "X-PERP", 0, 100, 1)
    assert venue.position(A) == [1, 100 * 100, 0]  # 1 lot at 100 ticks, 100 cents a tick
    events = venue.wait(160_000)
    assert not EventReader.of(events, E.OracleUpdated)  # 60 s old: still counts
    events = venue.wait(160_001)
    stale = EventReader.of(events, E.OracleUpdated)
    assert [(e.cause, e.feed, e.price, e.live_sources) for e in stale] == [(E.Cause.SYSTEM, "X-EMA", 0, 0)]
    assert venue.engine.oracle_price("X-EMA") is None
    venue.order(A, "X-PERP", 0, 100, 1)
    assert venue.rejection() == "ORACLE_STALE"
    venue.order(A, "X-PERP", 1, 100, 1, reduce_only=True)
    assert venue.accepted()
    poke(venue, "X-EMA", 200_000)
    assert venue.engine.oracle_price("X-EMA") == 100
    venue.order(B, "X-PERP", 1, 100, 1)
    assert venue.accepted()


def test_small_steps_add_up() -> None:
    """Sixty pokes a second apart toward a book at 105 take the EMA from 100 to 105 − 5 × (60/61)^60 = 103.14: in
    whole units each step, 5 × 1000 // 61000, would floor to 0 and leave it at 100 (while a fall would move)."""
    venue = funded(Venue(MANIFEST))
    venue.order(A, "X-USD", 0, 10_500, 1)
    for k in range(61):  # the first poke only starts the clock
        poke(venue, "SPOT-EMA", 100_000 + 1_000 * k)
    assert venue.engine.oracle_price("SPOT-EMA") == 103


def test_the_cap_bounds_samples_at_a_multiple_of_the_seed() -> None:
    """With cap_multiple 4 a book at 1,000 USD samples as 400: the EMA goes to 250, not 550, and never passes 400."""
    venue = funded(Venue(MANIFEST))
    venue.order(A, "X-USD", 0, 90_000, 1)
    venue.order(B, "X-USD", 1, 110_000, 1)
    poke(venue, "SPOT-EMA", 100_000)
    poke(venue, "SPOT-EMA", 100_000 + TAU)
    assert venue.engine.oracle_price("SPOT-EMA") == 250  # (100 × 60000 + 400 × 60000) // 120000
    poke(venue, "SPOT-EMA", 100_000 + TAU + 1_000 * TAU)
    assert venue.engine.oracle_price("SPOT-EMA") == 399  # (250 × 60000 + 400 × 60000000) / 60060000 = 399.85
    venue.engine.check_invariants()


def test_max_move_clamps_each_poke() -> None:
    """With max_move_bps 1000 a poke that would take the EMA from 100 to 190 moves it to 110, the next to 121."""
    text = MANIFEST.read_text().replace("cap_multiple = 4\n\n[[markets]]", "cap_multiple = 4\nmax_move_bps = 1000\n\n"
                                        "[[markets]]")  # fmt: skip
    manifest = Manifest.from_bytes(text.encode(), source="clamped.toml")
    assert dict(manifest.oracles[1].params)["max_move_bps"] == 1000
    engine = Engine.from_parsed(manifest)
    venue = Venue(MANIFEST)
    venue.engine = engine
    funded(venue)
    venue.order(A, "X-USD", 0, 20_000, 1)  # book at 200 USD
    poke(venue, "SPOT-EMA", 100_000)
    poke(venue, "SPOT-EMA", 100_000 + 9 * TAU)
    assert engine.oracle_price("SPOT-EMA") == 110  # unclamped: (100 × 60000 + 200 × 540000) // 600000 = 190
    poke(venue, "SPOT-EMA", 100_000 + 18 * TAU)
    assert engine.oracle_price("SPOT-EMA") == 121  # unclamped (110 × 60000 + 200 × 540000) / 600000 = 191


def test_a_journal_replays_to_the_same_state(tmp_path: Path) -> None:
    """The hyperp scenario journaled, then recovered from its journal and restored from a snapshot: same hash."""
    journal = tmp_path / "journal"
    venue = Venue(MANIFEST)
    venue.engine = Engine.from_manifest(MANIFEST, journal=journal)
    funded(venue)
    poke(venue, "X-EMA", 100_000)
    venue.order(B, "X-PERP", 1, 105, 2)
    venue.order(A, "X-PERP", 0, 105, 1)
    venue.order(A, "X-USD", 0, 15_000, 1)
    poke(venue, "X-EMA", 130_000)
    poke(venue, "SPOT-EMA", 130_001)
    poke(venue, "SPOT-EMA", 190_000)
    venue.wait(400_000)  # both feeds stale by now
    expected = venue.engine.state_hash()
    ema = venue.engine.oracles["X-EMA"].ema
    assert ema == 101
    venue.engine.close()
    replayed = Engine.from_manifest(MANIFEST, journal=journal)
    assert replayed.state_hash() == expected
    assert replayed.oracles["X-EMA"].ema == ema
    replayed.close()
    restored = Engine.from_manifest(MANIFEST)
    restored.load_state(venue.engine.dump_state())
    assert restored.state_hash() == expected
    restored.check_invariants()


def test_the_keeper_is_the_drivers_publisher() -> None:
    """The perps test driver pokes as the keeper mark_ema.toml lists (the tests above rely on it)."""
    feed = Engine.from_manifest(MANIFEST).oracles["X-EMA"]
    assert feed.publishers == frozenset({PUBLISHER})
