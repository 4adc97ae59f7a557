"""Margin providers the built-in market types share (kept out of `exos.margin`, which mypyc compiles: a compiled
class cannot be subclassed by a plugin's Python class)."""

from __future__ import annotations

from collections.abc import Mapping

from exos.protocols import API_VERSION


class FullyCollateralised:
    """The `MarginProvider` of a fully collateralised market type: an account needs exactly what its orders lock.

    A market type's plugin subclasses it with its own `name` (spot, prediction)."""

    api_version = API_VERSION
    name = ""

    def requirement(self, account: int, locks: Mapping[int, int]) -> dict[int, int]:
        """Per asset, the account's locked balance."""
        return {asset: amount for asset, amount in locks.items() if amount}
