"""Fixtures for the perpetuals' tests: a fresh venue over the hand-computable unit manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from exos_perps.testing import Venue

UNIT = Path(__file__).parent / "unit.toml"


@pytest.fixture
def venue() -> Venue:
    """A fresh unit venue (whole units, mark = oracle)."""
    return Venue(UNIT)
