"""The "perp" market type: lists linear perpetuals settled in their quote asset (a risk group of unified margin).

Manifest (`[[markets]]` of type "perp"): `base` names the underlying's units (sizes are base lots; no
base moves), `quote` the settlement asset; `[markets.params]` as `exos_perps.config` documents.
"""

from __future__ import annotations

from typing import Any

from exos.protocols import API_VERSION, EngineView, FeeModel, MarketInfo
from exos_perps.config import parse
from exos_perps.market import PerpMarket


class PerpMarketType:
    """Registers as market type "perp"."""

    api_version = API_VERSION
    name = "perp"

    def __init__(self) -> None:
        """No markets yet; the engine binds its view before listing anything."""
        self.view: EngineView | None = None

    def bind(self, view: EngineView) -> None:
        """Keep the engine's read-only view (books for the mark and the funding premium)."""
        self.view = view

    def create_market(self, info: MarketInfo, fees: FeeModel) -> PerpMarket:
        """A perpetual over `info`: the quote asset settles it, the base asset only names its units."""
        if info.base_asset == info.quote_asset:
            raise ValueError("quote: a perpetual settles in its quote asset, which must differ from base")
        if not callable(getattr(fees, "fee", None)):
            raise ValueError("fee_model: a perpetual needs a fee model with fee(received, maker)")
        config = parse(info.params, lot_units=info.lot_units, base_decimals=info.base_decimals,
                       quote_decimals=info.quote_decimals)  # fmt: skip
        view: Any = self.view
        return PerpMarket(info, fees, config, view)


class PerpMargin:
    """The perpetuals' `MarginProvider`: orders hold their reserved margin; positions add their initial margin.

    What positions need is summed by the engine's unified margin (`exos.margin`), which asks each
    perpetual market directly; this provider reports the orders' reservations."""

    api_version = API_VERSION
    name = "perp"

    def requirement(self, account: int, locks: Any) -> dict[int, int]:
        """Per asset, the margin the account's open perp orders reserve."""
        return {asset: amount for asset, amount in locks.items() if amount}
