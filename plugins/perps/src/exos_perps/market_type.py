"""The "perp" market type: lists linear perpetuals settled in their quote asset (a risk group of unified margin).

Manifest (`[[markets]]` of type "perp"): `base` names the underlying's units (sizes are base lots; no
base moves), `quote` the settlement asset; `[markets.params]` as `exos_perps.config` documents.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.machinery
import os
import pathlib
from typing import Any

import structlog

from exos.native import PURE_ENV
from exos.protocols import API_VERSION, EngineView, FeeModel, MarketInfo
from exos_perps import market
from exos_perps.config import parse
from exos_perps.market import PerpMarket

log = structlog.get_logger(__name__)


@functools.cache
def implementation(pure: bool) -> type[PerpMarket]:
    """The market class: `_market_c` (market.py compiled by mypyc at install, plugins/perps/setup.py) while it was
    built from this very market.py, else the Python one (`pure`, a stale or a missing build)."""
    if pure:
        return PerpMarket
    try:
        _market_c = importlib.import_module("exos_perps._market_c")
    except ImportError:
        _market_c = None
    # the twin's generated source alone (a build that wrote it but did not compile it) is no faster
    if _market_c is None or not str(_market_c.__file__).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        log.warning("exos.perps.pure_python", reason="exos_perps._market_c is not built (pip install the plugin)")
        return PerpMarket
    digest = hashlib.sha256(pathlib.Path(market.__file__).read_bytes()).hexdigest()
    if getattr(_market_c, "SOURCE_SHA256", None) != digest:
        log.warning("exos.perps.pure_python", reason="market.py changed since exos_perps._market_c was built "
                    "(reinstall the plugin: make rebuilds it)")  # fmt: skip
        return PerpMarket
    compiled: type[PerpMarket] = _market_c.PerpMarket
    return compiled


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
        rates = [getattr(fees, name, 0) for name in ("taker_centibps", "maker_centibps")]
        if any(type(rate) is not int for rate in rates):  # the worst fee an order reserves is computed from them
            raise ValueError(f"fee_model: its taker_centibps and maker_centibps are integers, got {rates!r}")
        config = parse(info.params, lot_units=info.lot_units, base_decimals=info.base_decimals,
                       quote_decimals=info.quote_decimals)  # fmt: skip
        view: Any = self.view
        return implementation(bool(os.environ.get(PURE_ENV)))(info, fees, config, view)


class PerpMargin:
    """The perpetuals' `MarginProvider`: orders hold their reserved margin; positions add their initial margin.

    What positions need is summed by the engine's unified margin (`exos.margin`), which asks each
    perpetual market directly; this provider reports the orders' reservations."""

    api_version = API_VERSION
    name = "perp"

    def requirement(self, account: int, locks: Any) -> dict[int, int]:
        """Per asset, the margin the account's open perp orders reserve."""
        return {asset: amount for asset, amount in locks.items() if amount}
