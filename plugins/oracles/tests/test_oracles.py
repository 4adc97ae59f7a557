"""Oracle feeds through the engine: journaled updates only, median rules, guards that change nothing, state in the
hash and in snapshots, a CSV replay source."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exos import commands as C
from exos import events as E
from exos.engine import Engine, EngineError
from exos.manifest import Manifest
from exos_oracles import median
from exos_oracles.replay import commands_from_csv

ROOT = Path(__file__).resolve().parents[3]
P1, P2, P3, STRANGER = (bytes([i]) * 20 for i in (0xA1, 0xA2, 0xA3, 0xEE))
T = 1_700_000_000_000


def venue(extra: str = "") -> Engine:
    """The spot example with a pushed BTC feed (three publishers, two needed, 10% max move) and an index feed."""
    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace('[[plugins]]\nname = "spot"', '[[plugins]]\nname = "spot"\n\n[[plugins]]\nname = "oracles"')
    )
    text += f"""
[[oracles]]
name = "BTC-USD"
kind = "pushed"
[oracles.params]
publishers = ["0x{P1.hex()}", "0x{P2.hex()}", "0x{P3.hex().upper()}"]
max_age_ms = 5000
min_publishers = 2
max_move_bps = 1000

[[oracles]]
name = "ETH-INDEX"
kind = "index"
params = {{ publishers = ["0x{P1.hex()}"], sources = ["a", "b", "c", "d"], max_age_ms = 5000, band_bps = 100 }}
{extra}"""
    return Engine.from_parsed(Manifest.from_bytes(text.encode()))


def push(engine: Engine, who: bytes, price: int, at: int, feed: str = "BTC-USD", source: str = "",
         published: int | None = None) -> list[E.Event]:  # fmt: skip
    """A publisher's update at command time `at`."""
    return engine.submit(C.OracleUpdate(actor=C.Actor(who), timestamp=at, feed=feed, source=source, price=price,
                                        published_ms=at if published is None else published))  # fmt: skip


def refused(engine: Engine, events: list[E.Event]) -> str:
    """The rejection code (and the hash did not move: checked by the caller)."""
    rejected = [e for e in events if isinstance(e, E.Rejected)]
    assert rejected, events
    return rejected[0].code


@given(st.lists(st.integers(1, 10**12), min_size=1, max_size=9))
@settings(max_examples=200)
def test_the_median_rule(values: list[int]) -> None:
    """Odd counts take the middle value; even counts the floor of the two middle values' mean."""
    ordered = sorted(values)
    n = len(ordered)
    expected = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    assert median(values) == expected == median(list(reversed(values)))


def test_a_pushed_feed_is_the_median_of_live_publishers() -> None:
    """Below min_publishers it is stale; then the median; a publisher older than max_age stops counting."""
    engine = venue()
    push(engine, P1, 6_500_000, T)
    assert engine.oracle_price("BTC-USD") is None  # one of the two it needs
    push(engine, P2, 6_510_000, T + 1)
    assert engine.oracle_price("BTC-USD") == 6_505_000  # even count: floor of the mean of the middle two
    events = push(engine, P3, 6_600_000, T + 2)
    updated = next(e for e in events if isinstance(e, E.OracleUpdated))
    assert (updated.price, updated.live_sources) == (6_510_000, 3)
    push(engine, P1, 6_520_000, T + 5_500)  # P2 and P3 published more than 5 s before this command
    assert engine.oracle_price("BTC-USD") is None


def test_guards_refuse_and_change_nothing() -> None:
    """Unknown publisher, non-positive price, too old, ahead of time, not newer, too big a move, unknown feed."""
    engine = venue()
    push(engine, P1, 6_500_000, T)
    push(engine, P2, 6_500_000, T)
    push(engine, P1, 300_000, T + 10, feed="ETH-INDEX", source="a")  # time is now T + 10: refusals leave it there
    cases = [
        (lambda: push(engine, STRANGER, 6_500_000, T + 10), "ORACLE"),
        (lambda: push(engine, P3, 0, T + 10), "ORACLE"),
        (lambda: push(engine, P3, -5, T + 10), "ORACLE"),
        (lambda: push(engine, P3, 6_500_000, T + 10, published=T - 6_000), "ORACLE"),
        (lambda: push(engine, P3, 6_500_000, T + 10, published=T + 2_000), "ORACLE"),
        (lambda: push(engine, P1, 6_500_000, T + 10, published=T), "ORACLE"),  # not after P1's last price
        (lambda: push(engine, P1, 9_000_000, T + 10), "ORACLE"),  # the median would be 7.75M: +19% > 10%
        (lambda: push(engine, P1, 6_500_000, T + 10, feed="NOPE"), "UNKNOWN_FEED"),
        (lambda: push(engine, P1, 6_500_000, T + 10, source="x"), "ORACLE"),  # pushed feeds name no source
    ]
    for send, code in cases:
        before = engine.state_hash()
        assert refused(engine, send()) == code
        assert engine.state_hash() == before
    assert engine.oracle_price("BTC-USD") == 6_500_000


def test_an_index_drops_outliers_and_needs_a_majority() -> None:
    """Sources farther than band_bps from the first median do not count; fewer than a majority live is stale."""
    engine = venue()
    push(engine, P1, 300_000, T, feed="ETH-INDEX", source="a")
    push(engine, P1, 300_100, T, feed="ETH-INDEX", source="b")
    assert engine.oracle_price("ETH-INDEX") is None  # 2 of 4: a majority is 3
    push(engine, P1, 300_200, T, feed="ETH-INDEX", source="c")
    assert engine.oracle_price("ETH-INDEX") == 300_100
    push(engine, P1, 400_000, T, feed="ETH-INDEX", source="d")  # 33% away: excluded
    assert engine.oracle_price("ETH-INDEX") == 300_100
    assert refused(engine, push(engine, STRANGER, 300_000, T + 1, feed="ETH-INDEX", source="a")) == "ORACLE"
    assert refused(engine, push(engine, P1, 300_000, T + 1, feed="ETH-INDEX", source="z")) == "ORACLE"


def test_feeds_are_state_in_the_hash_and_in_snapshots() -> None:
    """The same updates give the same hash; a snapshot restores the feeds exactly; a bad manifest stops the start."""
    rng = random.Random(4)
    engines = [venue(), venue()]
    for i in range(200):
        who = rng.choice([P1, P2, P3])
        price = 6_500_000 + rng.randrange(-30_000, 30_000)
        for engine in engines:
            push(engine, who, price, T + 10 * i)
    assert engines[0].state_hash() == engines[1].state_hash()
    restored = venue()
    restored.load_state(engines[0].dump_state())
    assert restored.state_hash() == engines[0].state_hash()
    assert restored.oracle_price("BTC-USD") == engines[0].oracle_price("BTC-USD") is not None
    restored.check_invariants()
    with pytest.raises(EngineError, match="no enabled plugin registers oracle kind 'pyth'"):
        venue('\n[[oracles]]\nname = "X"\nkind = "pyth"\n')
    with pytest.raises(EngineError, match="max_age_ms: an integer"):
        venue(f'\n[[oracles]]\nname = "X"\nkind = "pushed"\nparams = {{ publishers = ["0x{P1.hex()}"], '
              'max_age_ms = 0 }\n')  # fmt: skip


def test_a_csv_replays_as_journaled_updates(tmp_path: Path) -> None:
    """A replay source turns time,price rows into OracleUpdate commands; a journal of them replays to the same
    hash; a row with too many decimals is an error."""
    path = tmp_path / "btc.csv"
    path.write_text("time_ms,price\n" + "".join(f"{T + 1000 * i},{65000 + i}.25\n" for i in range(50)))
    commands = commands_from_csv(path, "ETH-INDEX", P1, decimals=2)
    commands = [C.OracleUpdate(actor=c.actor, timestamp=c.timestamp, feed=c.feed, source="a", price=c.price,
                               published_ms=c.published_ms) for c in commands]  # fmt: skip
    text = (ROOT / "examples" / "spot.toml").read_text()
    engine = venue()
    for command in commands:
        assert not isinstance(engine.submit(command)[0], E.Rejected)
    assert commands[-1].price == 6_504_925
    journal = tmp_path / "journal"
    journaled = Engine.from_parsed(venue().manifest, journal=journal)
    journaled.submit_batch(commands)
    journaled.close()
    replayed = Engine.from_parsed(venue().manifest, journal=journal)
    assert replayed.state_hash() == engine.state_hash() == journaled.state_hash()
    replayed.close()
    (tmp_path / "bad.csv").write_text("1,1.234\n")
    with pytest.raises(ValueError, match="more than 2 decimals"):
        commands_from_csv(tmp_path / "bad.csv", "ETH-INDEX", P1, decimals=2)
    assert text  # the example manifest itself is untouched


def test_publishers_sign_updates_through_the_api(tmp_path: Path) -> None:
    """A publisher key signs OracleUpdate with the trading scheme and sends it to `exos serve`; GET /v1/oracles
    shows the aggregate; a key that is not a publisher is refused."""
    import httpx
    from eth_hash.auto import keccak
    from tests.conftest import serving

    from exos.client import Client
    from exos.signing import address_of

    keys = [keccak(b"publisher %d" % i) for i in range(3)]
    addresses = [address_of(k) for k in keys]
    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace('[[plugins]]\nname = "spot"', '[[plugins]]\nname = "spot"\n\n[[plugins]]\nname = "oracles"')
    )
    text += ("\n[[oracles]]\nname = \"BTC-USD\"\nkind = \"pushed\"\n[oracles.params]\npublishers = ["
             + ", ".join(f'"0x{a.hex()}"' for a in addresses[:2]) + "]\n")  # fmt: skip
    manifest = tmp_path / "venue.toml"
    manifest.write_text(text)
    with serving(manifest) as base:
        for key, address, price in ((keys[0], addresses[0], 6_500_000), (keys[1], addresses[1], 6_510_000),
                                    (keys[2], addresses[2], 1)):  # fmt: skip
            with Client(base, key) as publisher:
                now = publisher.nonce()
                result = publisher.send(C.OracleUpdate(actor=C.Actor(address), timestamp=0, nonce=now, feed="BTC-USD",
                                                       price=price, published_ms=now))  # fmt: skip
                assert result.accepted == (key != keys[2]), result
        feeds = httpx.get(f"{base}/v1/oracles", timeout=10).json()
        assert feeds[0]["name"] == "BTC-USD" and feeds[0]["price"] == "6505000"
        assert set(feeds[0]["sources"]) == {"0x" + a.hex() for a in addresses[:2]}


def test_max_age_is_a_timer_that_reports_staleness() -> None:
    """When a source grows too old a system event says so at that time, in command time; a refreshed source does
    not raise a false alarm."""
    engine = venue()
    push(engine, P1, 6_500_000, T)
    push(engine, P2, 6_500_000, T)
    push(engine, P3, 6_500_000, T + 3_000)
    quiet = engine.submit(C.Tick(actor=C.Actor(b"\x11" * 20), timestamp=T + 4_000))
    assert not [e for e in quiet if isinstance(e, E.OracleUpdated)]
    events = engine.submit(C.Tick(actor=C.Actor(b"\x11" * 20), timestamp=T + 5_001))
    stale = [e for e in events if isinstance(e, E.OracleUpdated)]
    assert [(e.cause, e.price, e.live_sources) for e in stale] == [(E.Cause.SYSTEM, 0, 1)]  # P1 and P2 aged out
    assert engine.oracle_price("BTC-USD") is None
    push(engine, P1, 6_500_000, T + 6_000)  # back to two live sources
    assert engine.oracle_price("BTC-USD") == 6_500_000
    events = engine.submit(C.Tick(actor=C.Actor(b"\x11" * 20), timestamp=T + 8_001))  # P3 (T + 3000) ages out
    assert [(e.price, e.live_sources) for e in events if isinstance(e, E.OracleUpdated)] == [(0, 1)]
