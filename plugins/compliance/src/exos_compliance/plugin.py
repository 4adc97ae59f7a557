"""The compliance plugin's hook implementation (entry point `compliance` in group `exos`)."""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos_compliance.policies import KycRegistry, Permissionless, SanctionsList


@hookimpl
def exos_register_compliance_policies(register: Register) -> None:
    """Register the three policies; a manifest picks them per venue and per market."""
    register(Permissionless())
    register(KycRegistry())
    register(SanctionsList())
