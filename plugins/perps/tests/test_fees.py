"""A flat fee model's fees are computed inside the perpetual market (`FeeModel.flat`) rather than called: the
same fees, to the unit, as calling the model, rebates included."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exos.engine import Engine
from exos.rates import CENTIBPS_PER_UNIT, venue_fee
from exos_perps import _market_c, market
from exos_perps.simulation import Run
from exos_spot.fees import FlatFees

MANIFEST = pathlib.Path(__file__).resolve().parents[3] / "examples" / "unified.toml"


@pytest.mark.parametrize("module", [market, _market_c], ids=["python", "compiled"])
@given(received=st.integers(0, 2**80), centibps=st.integers(-(10**6), 10**6))
def test_the_inline_fee_is_venue_fee(module: Any, received: int, centibps: int) -> None:
    """Up for a fee, toward zero for a rebate, at every size and rate, in both builds of the market."""
    assert module._CENTIBPS_PER_UNIT == CENTIBPS_PER_UNIT
    assert module._flat_fee(received, centibps) == venue_fee(received, centibps)


def _simulated(tmp_path: pathlib.Path, name: str) -> tuple[str, dict[str, Any], int]:
    """`make unified`'s run on the example with a 0.3 bp maker rebate: state hash, counters, fees collected."""
    manifest = tmp_path / name
    manifest.write_text(MANIFEST.read_text().replace('maker_bps = "0"', 'maker_bps = "-0.3"'))
    engine = Engine.from_manifest(manifest)
    run = Run(engine, 7, {})
    run.run()
    engine.check_invariants()
    address, sub = engine.ledger.accounts[engine.ledger.fee_account]
    fees = engine.balances(address, sub)["USDC"][0]
    return engine.state_hash(), dict(run.stats), fees


def test_inline_and_called_fees_give_the_same_venue(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unified venue's simulation ends in the same state whether its perpetuals compute the flat fees or call
    the model for each (a model that does not declare itself flat is always called)."""
    inline = _simulated(tmp_path, "inline.toml")
    monkeypatch.setattr(FlatFees, "flat", False)
    called = _simulated(tmp_path, "called.toml")
    assert inline == called
    assert inline[2] > 0, "the run charged no fees"
