"""exos compliance policies: permissionless, a KYC registry (levels and jurisdictions) and a sanctions list."""

from exos_compliance.policies import KycRegistry, Permissionless, SanctionsList

__all__ = ["KycRegistry", "Permissionless", "SanctionsList"]
