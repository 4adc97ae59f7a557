"""The perps plugin's market type against the margined-market contract (`exos.margintesting`), over a real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from exos.margintesting import MarginedCase, MarginedMarketContract
from exos_perps.testing import PUBLISHER

HERE = Path(__file__).resolve().parent


class TestPerpContract(MarginedMarketContract):
    """X-PERP of unit.toml: 10x, price band 10%, mark = oracle."""

    @pytest.fixture
    def margined_case(self) -> MarginedCase:
        """Five lots at 100 USD against a 100 USD oracle, 10,000 USD in each account."""
        return MarginedCase(manifest=HERE / "unit.toml", market="X-PERP", feed="X-USD", publisher=PUBLISHER,
                            oracle_price=100, settlement="USD", deposit=10_000, price=100, size=5)  # fmt: skip
