"""Agent keys and who may sign what: the authorisation half of Hyperliquid's scheme, as engine state.

A master address approves an agent address (with a name and an expiry, ms); until the expiry or a
revocation the agent signs trading commands for the master and its sub-accounts: orders, cancels,
amends and market actions. It never withdraws, transfers, or approves or revokes agents. An agent
address serves one approval ever: once approved it can never be approved again, by anyone, so a
leaked key revoked once stays dead. Signature recovery happens before the engine (the gateway);
the engine checks that the recovered signer may act for the command's address.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from exos.commands import canonical_json


class AgentBook:
    """Approved agents per master, and every agent address ever approved."""

    __slots__ = ("_agents", "_used")

    def __init__(self) -> None:
        """No agents."""
        self._agents: dict[tuple[bytes, bytes], tuple[str, int]] = {}  # (master, agent) -> (name, expiry)
        self._used: set[bytes] = set()

    def expiry(self, master: bytes, agent: bytes, now: int) -> int | None:
        """When `agent`'s approval to sign trading commands for `master` expires (ms); None if it may not at `now`."""
        entry = self._agents.get((master, agent))
        return entry[1] if entry is not None and now < entry[1] else None

    def refusal(self, master: bytes, agent: bytes) -> tuple[str, str] | None:
        """(code, message) if an approval of `agent` by `master` is refused, else None."""
        if agent == master:
            return "BAD_AGENT", "agent: an address cannot be its own agent"
        if agent in self._used:
            return "AGENT_REUSED", f"agent: 0x{agent.hex()} was approved before; an agent address is never reused"
        return None

    def approve(self, master: bytes, agent: bytes, name: str, expiry: int) -> None:
        """Record an approval (the caller checked `refusal`)."""
        self._agents[(master, agent)] = (name, expiry)
        self._used.add(agent)

    def revoke(self, master: bytes, agent: bytes) -> bool:
        """Withdraw an approval; False if there was none."""
        return self._agents.pop((master, agent), None) is not None

    def of(self, master: bytes) -> list[tuple[bytes, str, int]]:
        """A master's agents: (address, name, expiry), by address."""
        return sorted((agent, name, expiry) for (m, agent), (name, expiry) in self._agents.items() if m == master)

    def dump(self) -> bytes:
        """Canonical bytes: approvals and used addresses, sorted."""
        approvals = sorted([m.hex(), a.hex(), name, expiry] for (m, a), (name, expiry) in self._agents.items())
        return canonical_json({"agents": approvals, "used": sorted(a.hex() for a in self._used)})

    @classmethod
    def load(cls, data: bytes) -> AgentBook:
        """Rebuild from `dump` bytes."""
        book = cls()
        state = json.loads(data)
        for master, agent, name, expiry in state["agents"]:
            book._agents[(bytes.fromhex(master), bytes.fromhex(agent))] = (name, expiry)
        book._used = set(_addresses(state["used"]))
        return book


def _addresses(values: Iterable[str]) -> Iterable[bytes]:
    """Hex strings as 20-byte addresses."""
    return (bytes.fromhex(v) for v in values)
