"""The hooks a plugin implements. Registration and coarse lifecycle events only: nothing here runs per order.

Registration hooks receive a `register` callable; what they register implements a protocol from
`exos.protocols` and carries `api_version` and `name`. The engine calls them once, when it builds
its plugin registry, always with keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "exos"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[Any], None]


@hookspec
def exos_register_market_types(register: Register) -> None:
    """Register `MarketType` objects (spot, perps, prediction, ...). Fires once at engine start."""


@hookspec
def exos_register_fee_models(register: Register) -> None:
    """Register `FeeModelFactory` objects, chosen per market by `fee_model` in the manifest."""


@hookspec
def exos_register_order_checks(register: Register) -> None:
    """Register `OrderCheck` objects; every registered check runs on every order of every market."""


@hookspec
def exos_register_margin_providers(register: Register) -> None:
    """Register `MarginProvider` objects, one per market type name."""


@hookspec
def exos_register_oracles(register: Register) -> None:
    """Register oracle kinds (used from the perpetuals issue on)."""


@hookspec
def exos_register_compliance_policies(register: Register) -> None:
    """Register compliance policies (KYC, allow lists, sanctions; from the venue-server issue on)."""


@hookspec
def exos_register_resolution_sources(register: Register) -> None:
    """Register resolution sources for outcome markets (from the prediction-markets issue on)."""


@hookspec
def exos_register_simulations(register: Register) -> None:
    """Register `Simulation` objects: seeded workloads `exos simulate` runs for a manifest's [simulation] driver."""


@hookspec
def exos_market_listed(market_id: int, name: str, market_type: str) -> None:
    """A market was listed (at genesis or by an admin command). Fires during the listing command."""


@hookspec
def exos_market_status_changed(market_id: int, name: str, status: str) -> None:
    """A market's status changed by an admin command."""


@hookspec
def exos_snapshot_written(seq: int, path: str) -> None:
    """A snapshot of the state after command `seq` is durable at `path`."""
