"""Replay protection per signer, as Hyperliquid does it: keep the highest 100 nonces a signer used.

A new nonce must be unused and greater than the smallest kept one once 100 are kept. Nonce 0 means
"no nonce" (host-app commands that are not signed). A venue may also require nonces (ms, as
Hyperliquid's) within a window around the command's timestamp (`[venue] nonce_window_ms`, checked
by the engine). The state lives here, in snapshots and in the state hash.
"""

from __future__ import annotations

import bisect
import struct

KEEP = 100


class NonceBook:
    """The kept nonces of every signer."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        """No signer has used a nonce yet."""
        self._kept: dict[bytes, list[int]] = {}

    def check(self, signer: bytes, nonce: int) -> str | None:
        """Why `nonce` is refused for `signer` (a message), or None if it is acceptable."""
        kept = self._kept.get(signer)
        if not kept:
            return None
        index = bisect.bisect_left(kept, nonce)
        if index < len(kept) and kept[index] == nonce:
            return f"nonce {nonce} was already used by this signer"
        if len(kept) >= KEEP and nonce < kept[0]:
            return f"nonce {nonce} is below the smallest of the signer's last {KEEP} nonces ({kept[0]})"
        return None

    def use(self, signer: bytes, nonce: int) -> None:
        """Record an accepted nonce (after `check` said yes)."""
        kept = self._kept.setdefault(signer, [])
        bisect.insort(kept, nonce)
        if len(kept) > KEEP:
            del kept[0]

    def dump(self) -> bytes:
        """Canonical bytes: signers in byte order, each with its sorted nonces."""
        parts = [struct.pack("<I", len(self._kept))]
        for signer in sorted(self._kept):
            kept = self._kept[signer]
            parts += [signer, struct.pack(f"<I{len(kept)}Q", len(kept), *kept)]
        return b"".join(parts)

    @classmethod
    def load(cls, data: bytes) -> tuple[NonceBook, int]:
        """Rebuild from `dump` bytes; returns the book and the bytes read."""
        book = cls()
        (count,) = struct.unpack_from("<I", data)
        offset = 4
        for _ in range(count):
            signer = bytes(data[offset : offset + 20])
            (n,) = struct.unpack_from("<I", data, offset + 20)
            book._kept[signer] = list(struct.unpack_from(f"<{n}Q", data, offset + 24))
            offset += 24 + 8 * n
        return book, offset
