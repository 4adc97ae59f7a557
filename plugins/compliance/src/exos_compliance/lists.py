"""Compliance lists from files, as the journaled admin command that is the only way a list enters the engine.

    sanctions file: one address per line             -> {"version": v, "add": [...]}
    kyc file:       address,level,jurisdiction lines -> {"version": v, "set": [{address, level, jurisdiction}]}

Blank lines and `#` comments are skipped. The command still has to be signed by a venue admin and
sent (`exos.client.Client(url, admin_key).send(command)`), so it is journaled like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exos import commands as C


class ListFileError(ValueError):
    """A list file line that is not what its policy reads."""


def payload_from_file(policy: str, version: int, path: str | Path) -> dict[str, Any]:
    """The update payload a list file stands for (sanctions: addresses to add; kyc: registry entries to set)."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            rows.append((number, text))
    if policy == "sanctions":
        return {"version": version, "add": [text for _, text in rows]}
    if policy == "kyc":
        entries = []
        for number, text in rows:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) != 3 or not parts[1].isdigit():
                raise ListFileError(f"{path}:{number}: expected address,level,jurisdiction, got {text!r}")
            entries.append({"address": parts[0], "level": int(parts[1]), "jurisdiction": parts[2]})
        return {"version": version, "set": entries}
    raise ListFileError(f"policy: no list file format for {policy!r} (sanctions or kyc)")


def update_command(admin: bytes, policy: str, version: int, path: str | Path, nonce: int = 0) -> C.ComplianceUpdate:
    """The admin command that loads a list file (sign and send it like any other command)."""
    payload = payload_from_file(policy, version, path)
    return C.ComplianceUpdate(actor=C.Actor(admin), timestamp=0, nonce=nonce, policy=policy, payload=payload)
