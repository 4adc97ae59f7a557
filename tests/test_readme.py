"""The README's Python examples run as written (from the repository root, as a new user would)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks() -> list[str]:
    """The README's python code blocks that build their engine from an example manifest."""
    text = (ROOT / "README.md").read_text()
    return [code for code in BLOCK.findall(text) if "examples/prediction.toml" in code]


@pytest.mark.parametrize("code", blocks())
def test_readme_example_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example executes without an error and leaves the engine's invariants intact."""
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert os.getcwd() == str(ROOT)
    engine = namespace["engine"]
    engine.check_invariants()  # type: ignore[attr-defined]
    fills = [e for e in namespace["events"] if type(e).__name__ == "Fill"]  # type: ignore[attr-defined]
    assert [f.fill_kind for f in fills] == [1, 1]


@pytest.mark.parametrize("code", [c for c in BLOCK.findall((ROOT / "README.md").read_text())
                                  if "examples/unified.toml" in c])  # fmt: skip
def test_readme_perpetuals_example_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The perpetuals example trades, clips its reduce-only order to the position, and keeps every invariant."""
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    engine = namespace["engine"]
    engine.check_invariants()  # type: ignore[attr-defined]
    assert [type(e).__name__ for e in namespace["events"]].count("Fill") == 2  # type: ignore[attr-defined]
    alice = namespace["alice"]
    (position,) = engine.positions(alice.address)  # type: ignore[attr-defined]
    assert (position["market"], position["size"], position["basis"]) == ("BTC-PERP", 100, 6_500_000_000)
    (resting,) = engine.open_orders(alice.address)  # type: ignore[attr-defined]
    assert resting[1].remaining == 100
