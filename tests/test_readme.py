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
