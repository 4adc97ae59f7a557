"""The compiled market (`exos_perps._market_c`, market.py through mypyc) is built, fresh, and does exactly what
market.py does: the unified venue's simulation (funding, liquidations, backstop, insurance fund, ADL) gives
the same state hash and the same counts with either."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from exos.engine import Engine
from exos.native import PURE_ENV
from exos.protocols import MarketInfo
from exos_perps import market
from exos_perps.market_type import PerpMarketType, implementation
from exos_perps.simulation import Run

MANIFEST = pathlib.Path(__file__).resolve().parents[3] / "examples" / "unified.toml"


def test_the_compiled_market_is_built_from_this_market_py() -> None:
    """The install compiled market.py (a missing or stale build would quietly run as Python, slower)."""
    compiled = implementation(False)
    assert compiled is not market.PerpMarket, "exos_perps._market_c is missing or stale: reinstall exos-perps"
    assert compiled.__module__ == "exos_perps._market_c"


def _choose(pure: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Markets listed from now on are the Python (`pure`) or the compiled one."""
    if pure:
        monkeypatch.setenv(PURE_ENV, "1")
    else:
        monkeypatch.delenv(PURE_ENV, raising=False)


def _simulated(pure: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """The state hash and the counters of `make unified`'s run with the compiled or the Python market."""
    _choose(pure, monkeypatch)
    engine = Engine.from_manifest(MANIFEST)
    kinds = {type(engine.market_state(name).market) for name in ("BTC-PERP", "ETH-PERP")}
    assert kinds == {implementation(pure)}
    run = Run(engine, 7, {})  # `make unified`'s run: 12 hours, a crash at hour 6
    run.run()
    engine.check_invariants()
    return engine.state_hash(), dict(run.stats)


def test_compiled_and_python_markets_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same commands, same state, same events counted, with liquidations and ADL among them."""
    compiled = _simulated(False, monkeypatch)
    python = _simulated(True, monkeypatch)
    assert compiled == python
    stats = compiled[1]
    for stage in ("exos.perps.funding", "exos.liquidation.started", "exos.liquidation.adl"):
        assert stats.get(stage), f"the run never reached {stage}: {stats}"


def test_an_edited_market_py_runs_as_python(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """A market.py that differs from the one the twin was built from is used as it is, not the stale build."""
    edited = tmp_path / "market.py"
    edited.write_bytes(pathlib.Path(market.__file__).read_bytes() + b"\n# edited\n")
    monkeypatch.setattr(market, "__file__", str(edited))
    assert implementation.__wrapped__(False) is market.PerpMarket


class _FloatFees:
    """A fee model whose rates are not integers (what neither implementation may take)."""

    taker_centibps = 5.0
    maker_centibps = 0

    def fee(self, received: int, maker: bool) -> int:
        """Unused: the listing is refused first."""
        return 0


@pytest.mark.parametrize("pure", [False, True])
def test_a_fee_model_with_non_integer_rates_is_refused(pure: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both implementations refuse it at listing with one ValueError (the compiled one would fail on its own)."""
    _choose(pure, monkeypatch)
    info = MarketInfo(market_id=0, name="X-PERP", base_asset=1, quote_asset=0, lot_units=1, quote_per_tick_lot=1,
                      min_lots=1, min_notional_units=0, params={"oracle": "X-USD", "max_leverage": 10})  # fmt: skip
    with pytest.raises(ValueError, match="integers"):
        PerpMarketType().create_market(info, _FloatFees())  # type: ignore[arg-type]
