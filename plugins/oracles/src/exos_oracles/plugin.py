"""The oracles plugin's hook implementation (entry point `oracles` in group `exos`)."""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos_oracles.feeds import IndexKind, PushedKind
from exos_oracles.mark_ema import MarkEmaKind


@hookimpl
def exos_register_oracles(register: Register) -> None:
    """Register the pushed, index and mark_ema oracle kinds; a manifest's [[oracles]] names a kind per feed."""
    register(PushedKind())
    register(IndexKind())
    register(MarkEmaKind())
