"""Compliance policies decided inside the engine, from lists that enter only as journaled admin commands.

Each list carries a version that every update must raise, and every refusal names the version it
came from, so a replay decides exactly as the original run did. Addresses are compared as bytes, so
hex case never matters ("0xABC…" and "0xabc…" are one address).

- **permissionless**: allows everything (a venue may name it to say so explicitly).
- **kyc**: a registry address → (level, jurisdiction). An address must be registered to act; a market
  may require `params.min_kyc_level` (default 1) and close itself to `params.closed_jurisdictions`.
  Update: `{"version": v, "set": [{"address", "level", "jurisdiction"}], "remove": [addresses]}`;
  removed addresses lose their resting orders.
- **sanctions**: a list of barred addresses: they cannot deposit, withdraw (frozen), trade or approve
  agents; an address added has its resting orders cancelled. Update: `{"version": v, "add": [...],
  "remove": [...]}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exos.commands import canonical_json
from exos.protocols import API_VERSION, ComplianceRequest

MAX_LEVEL = 9


def _address(value: Any, where: str) -> bytes:
    """A "0x" + 40 hex address, any case."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith(("0x", "0X")):
        raise ValueError(f"{where}: an address is 0x and 40 hex digits, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ValueError(f"{where}: an address is 0x and 40 hex digits, got {value!r}") from None


def _addresses(value: Any, where: str) -> list[bytes]:
    """An array of addresses."""
    if not isinstance(value, list):
        raise ValueError(f"{where}: an array of addresses, got {value!r}")
    return [_address(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _next_version(payload: Mapping[str, Any], current: int, name: str) -> int:
    """The update's version, which must exceed the current one."""
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version <= current:
        raise ValueError(f"version: {name} is at version {current}; an update must name a higher one, got {version!r}")
    return version


def _check_keys(payload: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Unknown keys are errors, so a typo never silently does nothing."""
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; expected {sorted(allowed)}")


class Permissionless:
    """Registers as compliance policy "permissionless": every action is allowed."""

    api_version = API_VERSION
    name = "permissionless"

    def decide(self, request: ComplianceRequest) -> str | None:
        """Allow."""
        return None

    def update(self, payload: Mapping[str, Any]) -> list[bytes]:
        """There is no list to update."""
        raise ValueError("the permissionless policy has no lists")

    def dump(self) -> bytes:
        """No state."""
        return b""

    def load(self, data: bytes) -> None:
        """No state."""

    def check_invariants(self) -> None:
        """Nothing to check."""


class KycRegistry:
    """Registers as compliance policy "kyc": registered addresses only, with per-market levels and jurisdictions."""

    api_version = API_VERSION
    name = "kyc"

    def __init__(self) -> None:
        """An empty registry at version 0."""
        self.version = 0
        self.entries: dict[bytes, tuple[int, str]] = {}

    def decide(self, request: ComplianceRequest) -> str | None:
        """Registered, at the market's level, outside its closed jurisdictions."""
        entry = self.entries.get(request.address)
        if entry is None:
            return f"0x{request.address.hex()} is not on the KYC registry (version {self.version})"
        level, jurisdiction = entry
        params = request.market_params
        needed = params.get("min_kyc_level", 1)
        if isinstance(needed, int) and level < needed:
            who = f"0x{request.address.hex()}"
            return f"{request.market} needs KYC level {needed}; {who} has {level} (registry version {self.version})"
        closed = params.get("closed_jurisdictions", ())
        if jurisdiction in closed:
            return f"{request.market} is closed to {jurisdiction} (registry version {self.version})"
        return None

    def update(self, payload: Mapping[str, Any]) -> list[bytes]:
        """Set or remove registrations; removed addresses are returned (their orders go)."""
        _check_keys(payload, ("version", "set", "remove"))
        version = _next_version(payload, self.version, self.name)
        entries = payload.get("set", [])
        if not isinstance(entries, list):
            raise ValueError(f"set: an array of tables, got {entries!r}")
        parsed = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or set(entry) != {"address", "level", "jurisdiction"}:
                raise ValueError(f"set[{i}]: a table of address, level and jurisdiction, got {entry!r}")
            level, jurisdiction = entry["level"], entry["jurisdiction"]
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL:
                raise ValueError(f"set[{i}].level: 1..{MAX_LEVEL}, got {level!r}")
            if not isinstance(jurisdiction, str) or not 2 <= len(jurisdiction) <= 8 or not jurisdiction.isalnum():
                raise ValueError(f"set[{i}].jurisdiction: a code such as US or GB, got {jurisdiction!r}")
            parsed.append((_address(entry["address"], f"set[{i}].address"), level, jurisdiction.upper()))
        removed = _addresses(payload.get("remove", []), "remove")
        self.version = version
        for address, level, jurisdiction in parsed:
            self.entries[address] = (level, jurisdiction)
        for address in removed:
            self.entries.pop(address, None)
        return removed

    def dump(self) -> bytes:
        """Canonical bytes: the version and the sorted registry."""
        rows = sorted([a.hex(), level, j] for a, (level, j) in self.entries.items())
        return canonical_json({"version": self.version, "entries": rows})

    def load(self, data: bytes) -> None:
        """Restore from `dump` bytes."""
        state = json.loads(data)
        self.version = state["version"]
        self.entries = {bytes.fromhex(a): (level, j) for a, level, j in state["entries"]}

    def check_invariants(self) -> None:
        """Levels in range, jurisdictions upper-case."""
        for address, (level, jurisdiction) in self.entries.items():
            assert 1 <= level <= MAX_LEVEL and jurisdiction == jurisdiction.upper(), (address.hex(), level)


class SanctionsList:
    """Registers as compliance policy "sanctions": listed addresses can do nothing, and their orders go."""

    api_version = API_VERSION
    name = "sanctions"

    def __init__(self) -> None:
        """An empty list at version 0."""
        self.version = 0
        self.listed: set[bytes] = set()

    def decide(self, request: ComplianceRequest) -> str | None:
        """Refuse a listed address whatever it asks."""
        if request.address in self.listed:
            return f"0x{request.address.hex()} is on the sanctions list (version {self.version}): no {request.action}"
        return None

    def update(self, payload: Mapping[str, Any]) -> list[bytes]:
        """Add and remove addresses; the newly added are returned (their resting orders are cancelled)."""
        _check_keys(payload, ("version", "add", "remove"))
        version = _next_version(payload, self.version, self.name)
        added = _addresses(payload.get("add", []), "add")
        removed = _addresses(payload.get("remove", []), "remove")
        newly = [a for a in dict.fromkeys(added) if a not in self.listed]
        self.version = version
        self.listed.update(added)
        self.listed.difference_update(removed)
        return [a for a in newly if a in self.listed]

    def dump(self) -> bytes:
        """Canonical bytes: the version and the sorted list."""
        return canonical_json({"version": self.version, "listed": sorted(a.hex() for a in self.listed)})

    def load(self, data: bytes) -> None:
        """Restore from `dump` bytes."""
        state = json.loads(data)
        self.version = state["version"]
        self.listed = {bytes.fromhex(a) for a in state["listed"]}

    def check_invariants(self) -> None:
        """Every entry is a 20-byte address."""
        assert all(len(a) == 20 for a in self.listed)
