"""Workspace-wide pytest setup: hypothesis profiles (HYPOTHESIS_PROFILE=ci|long|dev), and structlog left as found."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

# CI: a moderate, derandomized run, so the category floors of the differential test are stable.
settings.register_profile(
    "ci", max_examples=500, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Long runs for hunting: many examples, fresh randomness each time.
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _structlog_as_found() -> Iterator[None]:
    """A test that runs the CLI in this process configures structlog to print to pytest's captured stderr, which is
    closed after that test: restore the configuration, or a later test's warning fails writing to a closed file."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
