"""The oracle kinds against `exos.testing.OracleContract`: pushed, index and mark_ema (bound to a real engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exos import commands as C
from exos.engine import Engine
from exos.testing import EventReader, OracleCase, OracleContract
from exos_oracles import IndexKind, MarkEmaKind, PushedKind

P = bytes([0xA1]) * 20
KEEPER = bytes.fromhex("0000000000000000000000000000000000000a11")  # the publisher mark_ema.toml lists
VENUE = Path(__file__).parent / "mark_ema.toml"


class TestPushedContract(OracleContract):
    """pushed: one publisher, a 10% max move checked with a price 38% away."""

    @pytest.fixture
    def oracle_case(self) -> OracleCase:
        """A one-publisher feed that publishes on its first update."""
        params = {"publishers": ["0x" + P.hex()], "max_age_ms": 5_000}
        return OracleCase(
            kind=PushedKind(), params=params, publisher=P, price=6_500_000, max_age_ms=5_000,
            bad_params=({**params, "min_publishers": 2}, {**params, "min_publishers": 0},
                        {**params, "max_move_bps": -1}),
            bad_sources=("x",), max_move_bps=1_000, far_price=9_000_000,
        )  # fmt: skip


class TestIndexContract(OracleContract):
    """index: one source relayed by one publisher, a 10% max move checked with a price 33% away."""

    @pytest.fixture
    def oracle_case(self) -> OracleCase:
        """A one-source index that publishes on its first update."""
        params = {"publishers": ["0x" + P.hex()], "sources": ["a"], "max_age_ms": 5_000}
        return OracleCase(
            kind=IndexKind(), params=params, publisher=P, price=300_000, max_age_ms=5_000, source="a",
            bad_params=({**params, "sources": []}, {**params, "sources": ["a", "a"]}, {**params, "sources": "a"},
                        {**params, "band_bps": 10_001}, {**params, "min_sources": 2}),
            bad_sources=("z", ""), max_move_bps=1_000, far_price=400_000,
        )  # fmt: skip


class TestMarkEmaContract(OracleContract):
    """mark_ema over the real spot book of mark_ema.toml (bid 190.00, ask 210.00: median 200 USD), seeded at 100.

    With a 1 s time constant a poke 9 s after the first moves the EMA to (100 × 1000 + 200 × 9000) // 10000 = 190,
    90% away: the 10% guard clamps it to 110."""

    @pytest.fixture
    def engine(self) -> Engine:
        """The test venue with one bid and one ask resting on X-USD."""
        engine = Engine.from_manifest(VENUE)
        admin, a, b = engine.manifest.venue.admins[0], b"\x0a" * 20, b"\x0b" * 20
        commands: list[Any] = [
            C.Deposit(actor=C.Actor(a, 0, admin), timestamp=1, asset="USD", amount=10**6),
            C.Deposit(actor=C.Actor(b, 0, admin), timestamp=1, asset="X", amount=10),
            C.PlaceOrder(actor=C.Actor(a), timestamp=2, market="X-USD", side=0, price=19_000, size=1),
            C.PlaceOrder(actor=C.Actor(b), timestamp=2, market="X-USD", side=1, price=21_000, size=1),
        ]
        for command in commands:
            assert EventReader.accepted(engine.submit(command)), command
        return engine

    @pytest.fixture
    def oracle_case(self, engine: Engine) -> OracleCase:
        """SPOT-EMA's manifest name (its decimals come from there), bound to the engine's view."""
        params = {"market": "X-USD", "publishers": ["0x" + KEEPER.hex()], "ema_ms": 1_000, "initial_price": 100,
                  "max_age_ms": 60_000, "cap_multiple": 4}  # fmt: skip
        changes = ({"initial_price": 0}, {"initial_price": -5}, {"initial_price": "100"}, {"ema_ms": 0},
                   {"market": ""}, {"market": 5}, {"cap_multiple": -1}, {"max_move_bps": -1},
                   {"initial_price": 2**62, "cap_multiple": 4})  # fmt: skip
        missing = [{k: v for k, v in params.items() if k != key} for key in ("market", "initial_price", "ema_ms")]
        return OracleCase(
            kind=MarkEmaKind(), params=params, publisher=KEEPER, price=0, max_age_ms=60_000, name="SPOT-EMA",
            bad_params=(*({**params, **change} for change in changes), *missing),
            bad_sources=("x",), max_move_bps=1_000, far_price=0, far_after_ms=9_000,
            bind=lambda feed: feed.bind(engine.view),
        )  # fmt: skip
