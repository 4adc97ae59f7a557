"""The example venue with spot, perps and a prediction market on one collateral, driven by its simulation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exos.engine import Engine, EngineError
from exos.recovery import replay_directory
from exos_perps.simulation import Run, report

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "unified.toml"
SHORT = {"hours": 4, "crash_hour": 3, "traders": 200}


def _run(seed: int, journal: Path | None = None) -> Run:
    """A short run of the example on a fresh engine (journaled if asked)."""
    engine = Engine.from_manifest(EXAMPLE, journal=journal)
    run = Run(engine, seed, SHORT)
    run.run()
    return run


class TestUnifiedVenue:
    """The simulation exercises every stage, keeps every invariant and replays to the same state."""

    def test_every_stage_happens_and_the_invariants_hold(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Funding, liquidation into the book, collateral sales, backstop, insurance and ADL all occur."""
        run = _run(7)
        problems = report(run, 1.0)
        assert problems == []
        out = capsys.readouterr().out
        for line in ("funding:", "liquidations:", "backstop:", "insurance fund:", "ADL:", "state hash:"):
            assert line in out
        stats = run.stats
        for name in ("exos.liquidation.book", "exos.liquidation.backstop", "exos.liquidation.insurance",
                     "exos.liquidation.adl", "exos.perps.funding", "exos.prediction.settled"):  # fmt: skip
            assert stats[name] > 0, name

    def test_a_journaled_run_replays_to_the_same_hash(self, tmp_path: Path) -> None:
        """Everything the run did (funding, liquidations, ADL included) is derived again from the journal alone."""
        run = _run(3, journal=tmp_path / "journal")
        expected = run.engine.state_hash()
        run.engine.close()
        assert replay_directory(tmp_path / "journal").state_hash() == expected
        assert _run(3).engine.state_hash() == expected

    @pytest.mark.slow
    def test_the_cli_prints_the_summary(self) -> None:
        """`exos simulate examples/unified.toml --seed 7` (the README's command) exits 0 with every stage reported."""
        done = subprocess.run([sys.executable, "-m", "exos.cli", "simulate", str(EXAMPLE), "--seed", "7"],
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "invariants hold" in done.stdout
        assert "ADL:" in done.stdout and "state hash:" in done.stdout


def test_unified_margin_is_reachable_only_where_it_runs() -> None:
    """A margined venue hands its unified margin to a host app; a spot-only venue says it has none (NO_MARGIN)."""
    margined = Engine.from_manifest(EXAMPLE)
    assert margined.unified_margin() is margined.margin and margined.margin is not None
    spot = Engine.from_manifest(EXAMPLE.parent / "spot.toml")
    with pytest.raises(EngineError) as refused:
        spot.unified_margin()
    assert refused.value.code == "NO_MARGIN" and spot.margin is None
