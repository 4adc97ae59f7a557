"""Frames between the sequencer and its verifiers: a 4-byte little-endian length, then a marshal payload.

Both ends are exos processes started together from one interpreter (marshal's format is private to a
Python version, which is why the sequencer spawns verifiers with its own `sys.executable`).
"""

from __future__ import annotations

MAX_FRAME = 1 << 28


class FrameError(Exception):
    """A frame longer than MAX_FRAME: the peer is broken."""


def frame(payload: bytes) -> bytes:
    """One frame: length, then payload."""
    return len(payload).to_bytes(4, "little") + payload


class FrameReader:
    """Splits a byte stream into frames."""

    def __init__(self) -> None:
        """Nothing buffered yet."""
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Take in bytes; every frame now complete."""
        buffer = self.buffer
        buffer += data
        out = []
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            length = int.from_bytes(buffer[offset : offset + 4], "little")
            if length > MAX_FRAME:
                raise FrameError(f"frame of {length} bytes")
            if end - offset - 4 < length:
                break
            out.append(bytes(buffer[offset + 4 : offset + 4 + length]))
            offset += 4 + length
        del buffer[:offset]
        return out
