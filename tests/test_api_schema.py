"""schemathesis over the server's OpenAPI spec, in process: no 5xx, no undocumented status or shape."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from exos.engine import Engine
from exos.manifest import Manifest
from exos.server import create_app

ROOT = Path(__file__).resolve().parents[1]


def _app() -> object:
    """The server over the spot example with a faucet, on a fixed clock."""
    text = (ROOT / "examples" / "spot.toml").read_text().replace('journal = "journal"', 'faucet = { USDC = "100" }')
    engine = Engine.from_parsed(Manifest.from_bytes(text.encode()))
    ticks = iter(range(1_000, 10**12))
    return create_app(engine, clock=lambda: next(ticks))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    """Every operation answers as documented (a random signature is rightly refused, so that check is off)."""
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
