"""Building the C extension: a missing compiler is one clear error, not a wall of distutils output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1]


def test_missing_compiler_gives_one_clear_error(tmp_path: Path) -> None:
    """`CC=/nonexistent setup.py build_ext` fails with a single line naming the compiler and the fix."""
    env = os.environ | {"CC": "/nonexistent"}
    result = subprocess.run(
        [
            sys.executable,
            "setup.py",
            "-q",
            "build_ext",
            "--build-temp",
            str(tmp_path / "t"),
            "--build-lib",
            str(tmp_path / "l"),
        ],
        cwd=CORE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "C compiler" in errors[0] and "/nonexistent" in errors[0] and "install gcc or clang" in errors[0]
    assert "Traceback" not in output
    assert not list((tmp_path / "l").rglob("*.so"))
