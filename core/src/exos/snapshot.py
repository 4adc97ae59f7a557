"""Snapshot files: an opaque state payload taken after journal record `seq`, written atomically, checksummed.

A snapshot is the file `snapshot-<seq, 20 digits>.snap`, little-endian:

    b"EXOSSNP1" | u64 seq | u64 length | u32 crc32(seq, length, payload) | payload (length bytes)

It is written to `<name>.tmp`, fsynced, renamed over the final name, and the directory is fsynced, so a crash
leaves either the complete new snapshot or none (the older ones stay). Readers skip snapshots that do not
verify (recovery then starts from an older one and replays more journal) and ignore every other name,
temp files included.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import attrs

from exos.errors import ExosError
from exos.files import OS_FILES, FileLayer

__all__ = [
    "SNAPSHOT_MAGIC",
    "InvalidSnapshot",
    "SnapshotCorruptError",
    "SnapshotError",
    "SnapshotScan",
    "SnapshotWriteError",
    "latest_snapshot",
    "prune_snapshots",
    "read_snapshot",
    "scan_snapshots",
    "snapshot_name",
    "write_snapshot",
]

SNAPSHOT_MAGIC = b"EXOSSNP1"
_HEAD = struct.Struct("<8sQQI")  # magic, seq, length, crc
_CRC_START = 8  # the crc covers seq and length, then the payload
_CRC_END = 24
_NAME_RE = re.compile(r"snapshot-(\d{20})\.snap")
_TMP_SUFFIX = ".tmp"
_MAX_U64 = 0xFFFF_FFFF_FFFF_FFFF


class SnapshotError(ExosError):
    """A snapshot operation failed."""

    code = "SNAPSHOT"


class SnapshotCorruptError(SnapshotError):
    """A snapshot file does not verify (truncated, bad magic or checksum, seq not its name's)."""

    code = "SNAPSHOT_CORRUPT"


class SnapshotWriteError(SnapshotError):
    """Writing a snapshot failed; the previous snapshots are intact and the journal still holds everything."""

    code = "SNAPSHOT_WRITE"


@attrs.frozen
class InvalidSnapshot:
    """A snapshot file that was skipped, and why."""

    name: str
    reason: str


@attrs.frozen
class SnapshotScan:
    """The snapshots of a directory: the seqs that verify (ascending) and the files that do not."""

    valid: tuple[int, ...]
    invalid: tuple[InvalidSnapshot, ...]


def snapshot_name(seq: int) -> str:
    """The file name of the snapshot taken after journal record `seq`."""
    return f"snapshot-{seq:020d}.snap"


def _encode(seq: int, payload: bytes) -> bytes:
    fields = struct.pack("<QQ", seq, len(payload))
    return SNAPSHOT_MAGIC + fields + struct.pack("<I", zlib.crc32(payload, zlib.crc32(fields))) + payload


def _decode(name: str, data: bytes) -> tuple[int, bytes]:
    """(seq, payload) of a snapshot file's bytes, or SnapshotCorruptError saying what is wrong."""
    if len(data) < _HEAD.size:
        raise SnapshotCorruptError(f"snapshot {name}: {len(data)} bytes, shorter than its header")
    magic, seq, length, crc = _HEAD.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotCorruptError(f"snapshot {name}: bad magic {magic!r}")
    if len(data) != _HEAD.size + length:
        raise SnapshotCorruptError(
            f"snapshot {name}: header says {length} payload bytes, file has {len(data) - _HEAD.size}"
        )
    view = memoryview(data)
    if zlib.crc32(view[_HEAD.size :], zlib.crc32(view[_CRC_START:_CRC_END])) != crc:
        raise SnapshotCorruptError(f"snapshot {name}: checksum mismatch")
    match = _NAME_RE.fullmatch(name)
    if match is not None and int(match.group(1)) != seq:
        raise SnapshotCorruptError(f"snapshot {name}: holds seq {seq}, not the seq of its name")
    return seq, bytes(view[_HEAD.size :])


def write_snapshot(directory: Path | str, seq: int, payload: bytes, *, files: FileLayer = OS_FILES) -> Path:
    """Write the snapshot atomically (temp, fsync, rename, directory fsync) and return its path."""
    directory = Path(directory)
    if not isinstance(seq, int) or not 0 <= seq <= _MAX_U64:
        raise SnapshotError(f"seq: {seq!r} is not a u64")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload: expected bytes, got {type(payload).__name__}")
    data = _encode(seq, bytes(payload))
    final = directory / snapshot_name(seq)
    temp = directory / (final.name + _TMP_SUFFIX)
    try:
        if not files.exists(directory):
            files.makedirs(directory)
            files.fsync_dir(directory.parent)
        handle = files.write_new(temp)
        try:
            files.write(handle, data)
            files.fsync(handle)
        finally:
            files.close(handle)
        files.rename(temp, final)
        files.fsync_dir(directory)
    except OSError as exc:
        raise SnapshotWriteError(f"snapshot {final.name}: write failed ({exc})") from exc
    return final


def read_snapshot(path: Path | str, *, files: FileLayer = OS_FILES) -> tuple[int, bytes]:
    """(seq, payload) of one snapshot file; SnapshotCorruptError if it does not verify."""
    path = Path(path)
    return _decode(path.name, files.read_bytes(path))


def _snapshot_seqs(directory: Path, files: FileLayer) -> list[tuple[int, str]]:
    """(seq, name) of every snapshot-named file, ascending; temp files and other names are not snapshots."""
    if not files.exists(directory):
        return []
    out = []
    for name in files.listdir(directory):
        match = _NAME_RE.fullmatch(name)
        if match is not None:
            out.append((int(match.group(1)), name))
    return sorted(out)


def scan_snapshots(directory: Path | str, *, files: FileLayer = OS_FILES) -> SnapshotScan:
    """Verify every snapshot in `directory` (reads them all)."""
    directory = Path(directory)
    valid: list[int] = []
    invalid: list[InvalidSnapshot] = []
    for seq, name in _snapshot_seqs(directory, files):
        try:
            read_snapshot(directory / name, files=files)
        except SnapshotCorruptError as exc:
            invalid.append(InvalidSnapshot(name, exc.message))
        else:
            valid.append(seq)
    return SnapshotScan(tuple(valid), tuple(invalid))


def latest_snapshot(directory: Path | str, *, files: FileLayer = OS_FILES) -> tuple[int, bytes] | None:
    """(seq, payload) of the newest snapshot that verifies, or None; newer broken ones are skipped.

    `scan_snapshots` lists the skipped files and why.
    """
    directory = Path(directory)
    for _, name in reversed(_snapshot_seqs(directory, files)):
        try:
            return read_snapshot(directory / name, files=files)
        except SnapshotCorruptError:
            continue
    return None


def prune_snapshots(directory: Path | str, keep: int, *, files: FileLayer = OS_FILES) -> list[str]:
    """Keep the `keep` newest valid snapshots; remove every older snapshot or temp file; return the names removed.

    Files newer than the oldest kept snapshot stay, broken ones included (they are evidence, and cheap).
    """
    directory = Path(directory)
    if keep < 1:
        raise SnapshotError(f"keep: {keep} must be at least 1 (pruning must never remove the last snapshot)")
    valid = scan_snapshots(directory, files=files).valid
    if len(valid) <= keep:
        return []
    oldest_kept = valid[-keep]
    removed: list[str] = []
    for name in files.listdir(directory):
        stem = name.removesuffix(_TMP_SUFFIX)
        match = _NAME_RE.fullmatch(stem)
        if match is not None and int(match.group(1)) < oldest_kept:
            files.remove(directory / name)
            removed.append(name)
    if removed:
        files.fsync_dir(directory)
    return removed
