"""The engine's hot modules run as their mypyc build when it is whole and fresh, as their sources otherwise, and
both builds do exactly the same: the example venues' simulations print the same state hash and counts."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exos import native

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = "import exos, exos.engine, exos.native as n; print(n.compiled(), n.reason(), exos.engine.__file__, sep='|')"


def _run(code: str, *, pure: bool = False, path: Path | None = None) -> str:
    """`code`'s stdout in a fresh interpreter (the build is chosen once per process), sources first on `path`."""
    env = {key: value for key, value in os.environ.items() if key not in (native.PURE_ENV, "PYTHONPATH")}
    if pure:
        env[native.PURE_ENV] = "1"
    if path is not None:
        env["PYTHONPATH"] = str(path)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                            timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_this_run_uses_the_build_it_asked_for() -> None:
    """The test run's install compiled every hot module from its current source (a missing or stale build would
    quietly run as Python, slower); under EXOS_PURE_PYTHON the sources run."""
    if os.environ.get(native.PURE_ENV):
        assert not native.compiled() and native.reason() == "EXOS_PURE_PYTHON is set"
        return
    assert native.why_sources() is None, "reinstall exos (make rebuilds it)"
    assert native.compiled() and native.reason() is None
    for name in native.COMPILED:
        module = importlib.import_module(f"exos.{name}")
        assert str(module.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), name


@pytest.fixture
def installed_copy(tmp_path: Path) -> Path:
    """A copy of the installed package with its compiled group, to edit: the directory to put first on the path."""
    if (why := native.why_sources()) is not None:
        pytest.skip(f"no whole mypyc build to copy: {why}")
    shutil.copytree(native.HERE, tmp_path / "exos", ignore=shutil.ignore_patterns("__pycache__"))
    for group in native.HERE.parent.glob("exos__mypyc*"):
        shutil.copy2(group, tmp_path)
    return tmp_path


def test_a_copy_of_the_build_runs_compiled(installed_copy: Path) -> None:
    """The unedited copy runs its extensions (so the tests below change one thing only)."""
    compiled, reason, where = _run(PROBE, path=installed_copy).strip().split("|")
    assert (compiled, reason) == ("True", "None") and where.startswith(str(installed_copy))


def test_an_edited_source_runs_every_hot_module_as_python(installed_copy: Path) -> None:
    """One source edited since the build: all of them run as sources (one group), and the first engine says why,
    once, in the log."""
    margin = installed_copy / "exos" / "margin.py"
    margin.write_bytes(margin.read_bytes() + b"\n# edited\n")
    code = PROBE + "; from exos.engine import Engine; [Engine.from_manifest('examples/spot.toml') for _ in '12']"
    out = _run(code, path=installed_copy)
    assert out.count("exos.pure_python") == 1 and "exos/margin.py changed since exos was compiled" in out
    compiled, reason, where = out.splitlines()[0].split("|")
    assert (compiled, where) == ("False", str(installed_copy / "exos" / "engine.py")) and "margin.py" in reason
    modules = (
        "import importlib, exos.native as n; "
        "print(*[importlib.import_module(f'exos.{m}').__file__ for m in n.COMPILED])"
    )
    assert all(name.endswith(".py") for name in _run(modules, path=installed_copy).split())


def test_a_missing_build_record_or_extension_runs_the_sources(installed_copy: Path) -> None:
    """Without the build's record of its sources, or with an extension gone, the sources run."""
    (installed_copy / "exos" / native.BUILD_FILE).unlink()
    assert _run(PROBE, path=installed_copy).startswith("False|exos's mypyc build is missing")
    shutil.copy2(native.HERE / native.BUILD_FILE, installed_copy / "exos" / native.BUILD_FILE)
    for extension in (installed_copy / "exos").glob("ledger.*"):
        if extension.suffix != ".py":
            extension.unlink()
    assert _run(PROBE, path=installed_copy).startswith("False|exos.ledger has no compiled extension")


def test_asking_for_python_is_not_logged() -> None:
    """EXOS_PURE_PYTHON runs the sources without a warning."""
    out = _run(PROBE + "; from exos.engine import Engine; Engine.from_manifest('examples/spot.toml')", pure=True)
    assert out.startswith("False|EXOS_PURE_PYTHON is set|") and "exos.pure_python" not in out


SIMULATIONS = {
    "spot": ["examples/spot.toml", "--orders", "30000", "--seed", "42"],
    "unified": ["examples/unified.toml", "--seed", "7"],  # funding, liquidations, backstop, insurance fund, ADL
    "worldcup": ["examples/worldcup-2026.toml", "--seed", "7"],  # neg-risk events, in-play delays, settlement
}


@pytest.mark.parametrize("name", sorted(SIMULATIONS))
def test_the_compiled_and_the_python_build_agree(name: str) -> None:
    """The same simulation prints the same state hash and counts with either build (its timings aside)."""
    code = f"import sys; from exos.cli import main; sys.exit(main(['simulate', *{SIMULATIONS[name]!r}]))"
    outputs = []
    for pure in (False, True):
        out = _run(PROBE + "\n" + code, pure=pure)
        assert out.startswith(f"{not pure}|"), out[:200]  # each ran the build it asked for
        timed = re.sub(r" in [0-9.]+ s(: [0-9,]+ commands/s)?", "", out.split("\n", 1)[1])
        outputs.append(timed)
    assert "state hash: " in outputs[0]
    assert outputs[0] == outputs[1]


def test_the_compiled_modules_literals_equal_what_they_stand_for() -> None:
    """The engine and the book write some enum values and flags as Final literals (mypyc folds those into its
    code); each must equal the member it stands for, in either build."""
    from exos import book, commands, engine
    from exos.commands import Kind, Status
    from exos.events import Cause, EventKind
    from exos.timers import TimerKind
    from exos.types import ANY_OWNER, EventFlag, EventType

    expected = {
        (engine, "_FLAG_POST_ONLY"): commands.FLAG_POST_ONLY,
        (engine, "_FLAG_HAS_CLIENT_ID"): commands.FLAG_HAS_CLIENT_ID,
        (engine, "_FLAG_REDUCE_ONLY"): commands.FLAG_REDUCE_ONLY,
        (engine, "_REDUCE_ONLY_STATUS"): Status.REDUCE_ONLY,
        (engine, "_HALTED_STATUS"): Status.HALTED,
        (engine, "_USER"): Cause.USER,
        (engine, "_SYSTEM"): Cause.SYSTEM,
        (engine, "_SETTLEMENT"): Cause.SETTLEMENT,
        (engine, "_ACCEPTED"): EventKind.ORDER_ACCEPTED,
        (engine, "_FILL"): EventKind.FILL,
        (engine, "_CANCELLED"): EventKind.ORDER_CANCELLED,
        (engine, "_EXPIRED"): EventKind.ORDER_EXPIRED,
        (engine, "_AMENDED"): EventKind.ORDER_AMENDED,
        (engine, "_DELTA"): EventKind.BOOK_DELTA,
        (engine, "_REJECTED"): EventKind.REJECTED,
        (engine, "_DONE"): EventKind.COMMAND_DONE,
        (engine, "_DELAYED"): EventKind.ORDER_DELAYED,
        (engine, "_MARKET_TIMER"): TimerKind.MARKET,
        (engine, "_DELAYED_TIMER"): TimerKind.DELAYED_ORDER,
        (engine, "_PLACE"): Kind.PLACE,
        (engine, "_CANCEL"): Kind.CANCEL,
        (engine, "_B_ACCEPTED"): EventType.ACCEPTED,
        (engine, "_B_REJECTED"): EventType.REJECTED,
        (engine, "_B_FILL"): EventType.FILL,
        (engine, "_B_CANCELLED"): EventType.CANCELLED,
        (engine, "_B_EXPIRED"): EventType.EXPIRED,
        (engine, "_B_AMENDED"): EventType.AMENDED,
        (engine, "_B_L2"): EventType.L2,
        (engine, "_MAKER_DONE"): EventFlag.MAKER_DONE,
        (engine, "_TAKER_DONE"): EventFlag.TAKER_DONE,
        (book, "_L2"): EventType.L2,
        (book, "_REJECTED"): EventType.REJECTED,
        (book, "_ANY_OWNER"): ANY_OWNER,
    }
    for (module, name), member in expected.items():
        value = getattr(module, name)
        assert type(value) is int and value == int(member), f"{module.__name__}.{name} = {value!r}, not {member!r}"
