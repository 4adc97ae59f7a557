"""The World Cup 2026 venue end to end: `exos simulate examples/worldcup-2026.toml` settles all, deterministically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exos import commands as C
from exos.cli import main
from exos.engine import Engine
from exos_prediction import wc_venue
from exos_prediction import worldcup as wc

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "examples" / "worldcup-2026.toml"
ORDERS = 3_000


def simulate(seed: int, hash_seed: str) -> subprocess.CompletedProcess[str]:
    """The README's command in a fresh interpreter with a given PYTHONHASHSEED."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    command = [
        sys.executable,
        "-m",
        "exos.cli",
        "simulate",
        str(MANIFEST),
        "--seed",
        str(seed),
        "--orders",
        str(ORDERS),
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)


def state_hash(output: str) -> str:
    """The state hash line of a run."""
    return next(line for line in output.splitlines() if line.startswith("state hash: ")).split()[-1]


@pytest.mark.slow
def test_same_seed_same_hash_under_three_hash_seeds() -> None:
    """Three processes with different string-hash seeds print the same state hash and settle everything."""
    runs = [simulate(5, hash_seed) for hash_seed in ("0", "1", "4242")]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "every market settled, zero collateral left, ledger balanced" in run.stdout
    assert len({state_hash(run.stdout) for run in runs}) == 1


class CheckedVenue(wc_venue.Venue):
    """The venue with the engine's invariants checked every 200 commands."""

    def submit(self, command: C.Command) -> list[tuple[object, ...]]:
        """Submit, then check the invariants now and then."""
        events = super().submit(command)
        if self.stats.commands % 200 == 0:
            self.engine.check_invariants()
        return events


@pytest.fixture(scope="module")
def played() -> CheckedVenue:
    """One small run of the whole tournament, in process."""
    engine = Engine.from_manifest(MANIFEST)
    assert engine.manifest.simulation is not None
    venue = CheckedVenue(engine, 11, 4 * ORDERS, engine.manifest.simulation.params)
    venue.run()
    return venue


def test_every_event_is_listed_and_settled_to_zero(played: CheckedVenue) -> None:
    """72 matches, 12 groups, the winner and 32 knockout events: 376 markets, all settled, no collateral left."""
    assert wc_venue.verify(played.engine) == []
    kinds = [listing.kind for listing in played.listings.values()]
    assert (kinds.count("match"), kinds.count("group_winner"), kinds.count("tournament_winner")) == (72, 12, 1)
    assert kinds.count("to_advance") == 32
    markets = [ms for ms in played.engine.markets if ms.market_type == "prediction"]
    assert len(markets) == 72 * 3 + 12 * 4 + 48 + 32 * 2
    assert all(ms.status == C.Status.SETTLED for ms in markets)


def test_winners_are_paid_by_the_tournament_result(played: CheckedVenue) -> None:
    """Each event settled on the outcome the seeded tournament decided."""
    market_type = played.engine.plugins.market_types["prediction"]
    for event_id, winner in wc.resolutions(played.tournament):
        key = winner.split(": ", 1)[1]
        assert market_type.events[event_id].result == played.listings[event_id].markets[key]


def test_the_flow_exercises_every_fill_kind_and_action(played: CheckedVenue) -> None:
    """Normal, mint and merge fills, and split, merge and convert all happen."""
    assert all(count > 0 for count in played.stats.fills), played.stats.fills
    assert {"split", "merge", "convert"} <= set(played.stats.actions)
    assert played.stats.delayed > 0


def test_cli_refuses_an_unknown_simulation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest naming a simulation no enabled plugin registers fails with one clear line."""
    path = tmp_path / "venue.toml"
    path.write_text(MANIFEST.read_text().replace('driver = "worldcup-2026"', 'driver = "cricket"'))
    assert main(["simulate", str(path)]) == 1
    assert "simulation.driver: no enabled plugin registers 'cricket'" in capsys.readouterr().err


def test_a_journaled_run_replays_to_the_same_hash(tmp_path: Path) -> None:
    """The venue's journal alone (runtime listings, actions, timers) rebuilds the same state."""
    from exos.recovery import replay_directory

    engine = Engine.from_manifest(MANIFEST, journal=tmp_path / "journal")
    assert engine.manifest.simulation is not None
    wc_venue.Venue(engine, 2, ORDERS, engine.manifest.simulation.params).run()
    assert wc_venue.verify(engine) == []
    replayed = replay_directory(tmp_path / "journal")
    assert replayed.state_hash() == engine.state_hash()
    replayed.check_invariants()
