"""Which build of the engine's hot modules runs: their mypyc extensions, or their Python sources.

core/setup.py compiles COMPILED with mypyc into one group of C extensions placed beside their sources
(about 11% fewer instructions per perp command, 10% per spot command: README, Benchmarks) and writes
BUILD_FILE, the SHA-256 of each source it compiled. `select`, which `exos/__init__` runs before anything
imports those modules, keeps the extensions only if every one is present and every source is unchanged
since the build; otherwise, or with EXOS_PURE_PYTHON set, it puts a finder first on `sys.meta_path` that
loads all of them from their sources. All or none: the group's modules call one another natively.

Either build gives the same events and state hash (core/tests/test_native.py); only the speed differs. A
compiled class cannot be subclassed by a Python class nor given attributes it does not declare.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

COMPILED = ("book", "engine", "fill", "ledger", "liquidation", "margin")
BUILD_FILE = "_compiled.json"
PURE_ENV = "EXOS_PURE_PYTHON"
HERE = Path(__file__).resolve().parent


class _Sources(importlib.abc.MetaPathFinder):
    """Finds exos's compiled modules as their .py sources (ahead of the extensions beside them)."""

    def __init__(self, reason: str) -> None:
        """A finder installed for `reason` (why the sources run), not yet reported in the log."""
        self.reason = reason
        self.reported = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The source's spec for `exos.<one of COMPILED>`, None for any other module."""
        package, _, name = fullname.partition(".")
        if package != "exos" or name not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, HERE / f"{name}.py")


def digest(name: str) -> str:
    """The SHA-256 of a compiled module's source, as the build records it."""
    return hashlib.sha256((HERE / f"{name}.py").read_bytes()).hexdigest()


def why_sources() -> str | None:
    """Why the sources must run (not built, part missing, a source edited since), or None if the build is whole."""
    try:
        built = json.loads((HERE / BUILD_FILE).read_text())
    except (OSError, ValueError):
        return "exos's mypyc build is missing (install exos with pip: core/setup.py compiles it)"
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    for name in COMPILED:
        if not any((HERE / f"{name}{suffix}").is_file() for suffix in suffixes):
            return f"exos.{name} has no compiled extension (reinstall exos)"
        if built.get(name) != digest(name):
            return f"exos/{name}.py changed since exos was compiled (reinstall exos: make rebuilds it)"
    return None


def _finder() -> _Sources | None:
    """The finder `select` installed, if it did."""
    return next((finder for finder in sys.meta_path if isinstance(finder, _Sources)), None)


def select() -> None:
    """Run the extensions if the build is whole and wanted, else the sources (before the modules first import)."""
    if _finder() is not None:
        return
    reason = f"{PURE_ENV} is set" if os.environ.get(PURE_ENV) else why_sources()
    if reason is not None:
        sys.meta_path.insert(0, _Sources(reason))


def reason() -> str | None:
    """Why the sources run in this process, or None if the extensions do."""
    finder = _finder()
    return None if finder is None else finder.reason


def compiled() -> bool:
    """Whether the engine's hot modules run as mypyc extensions in this process."""
    import exos.engine

    return not str(exos.engine.__file__).endswith(".py")


def report() -> None:
    """Log once per process that the sources run because the build is missing or stale (not when asked for)."""
    finder = _finder()
    if finder is None or finder.reported or os.environ.get(PURE_ENV):
        return
    finder.reported = True
    import structlog

    structlog.get_logger(__name__).warning("exos.pure_python", reason=finder.reason)


select()  # at import: exos/__init__ imports this module before any of COMPILED
