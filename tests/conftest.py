"""Fixtures shared by the cross-package tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_bench_module(name: str) -> ModuleType:
    """Import bench/<name>.py by path (bench/ is scripts, not a package)."""
    key = f"exos_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, REPO_ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def book_bench() -> ModuleType:
    """bench/book_bench.py, whose stream drivers the tests reuse."""
    return load_bench_module("book_bench")
