"""The durable journal: append-only, checksummed records of opaque payloads, acknowledged only once fsynced.

Layout of a directory: segment files `journal-<first seq, 20 digits>.seg`, sequence numbers 1, 2, 3, ...
contiguous across segments. Other names in the directory are ignored. All integers are little-endian.

    segment = header block, record*
    header block = b"EXOSJNL1" | u32 n | JournalHeader.pack() (n bytes) | u32 crc32(magic, n, header bytes)
    record = u32 length | u64 seq | u32 crc32(length, seq, payload) | payload (length bytes)

Appends are group commits: all records of a batch are written, the segment is fsynced once, and only then
is the batch's last seq returned. A segment is rotated at a batch boundary once it has reached
`segment_bytes`; the new segment's header is fsynced and then its directory, before any record goes in.

Recovery on open (the RocksDB "tolerate corrupted tail records" mode, made strict about everything else):
every segment header must equal the running engine's header (else `JournalMismatchError`); every record of
every segment but the last must verify and be in sequence (else `JournalCorruptError`). In the last segment a
bad record (incomplete or failing its checksum) after which no valid record follows is a torn tail: it is the
unacknowledged remainder of a write cut by a crash, so it is truncated away and reported in
`Journal.recovery`. A bad record *followed* by a valid one cannot come from an interrupted append, so the
journal refuses to start. A torn write that reached the disk out of order (a later page persisted, an earlier
one not) looks the same and also refuses: the operator decides, nothing is dropped silently.

A failed write or fsync is final (fail-stop): after an fsync error the kernel may have marked the pages clean,
so a retry could report success for data that is gone. The journal raises `JournalFailedError` then and on
every later append; restarting the process recovers from what is on disk.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import attrs

from exos.errors import ExosError
from exos.files import OS_FILES, FileLayer

__all__ = [
    "HEADER_MAGIC",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalFailedError",
    "JournalHeader",
    "JournalHeaderError",
    "JournalMismatchError",
    "JournalTail",
    "Recovery",
    "segment_name",
]

HEADER_MAGIC = b"EXOSJNL1"
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_RECORD = struct.Struct("<IQI")  # length, seq, crc
_CRC_SPAN = 12  # the crc covers the length and seq fields, then the payload
_SEGMENT_RE = re.compile(r"journal-(\d{20})\.seg")
_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFF_FFFF
_MAX_U64 = 0xFFFF_FFFF_FFFF_FFFF


class JournalError(ExosError):
    """A journal operation failed."""

    code = "JOURNAL"


class JournalHeaderError(JournalError):
    """A journal header value is out of range, or header bytes do not decode."""

    code = "JOURNAL_HEADER"


class JournalCorruptError(JournalError):
    """The journal on disk is damaged somewhere other than a torn tail; the engine must not start."""

    code = "JOURNAL_CORRUPT"

    def __init__(self, segment: str, offset: int, reason: str) -> None:
        super().__init__(
            f"journal segment {segment} is corrupt at offset {offset}: {reason}; refusing to start "
            "(only an unfinished record at the very end of the last segment is repaired automatically)"
        )
        self.segment = segment
        self.offset = offset
        self.reason = reason


class JournalMismatchError(JournalError):
    """A segment was written under another header (format, engine, manifest or plugins) than the running one."""

    code = "JOURNAL_MISMATCH"

    def __init__(self, segment: str, differences: Sequence[tuple[str, str]]) -> None:
        detail = "; ".join(f"{field}: {text}" for field, text in differences)
        super().__init__(f"journal segment {segment} was written under a different header: {detail}")
        self.segment = segment
        self.fields = tuple(dict.fromkeys(field for field, _ in differences))
        self.differences = tuple(differences)


class JournalFailedError(JournalError):
    """A write or fsync failed; the journal accepts nothing more until the process restarts and recovers."""

    code = "JOURNAL_FAILED"


def _check_str(field: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise JournalHeaderError(f"{field}: expected a str, got {type(value).__name__}")
    encoded = value.encode("utf-8")
    if len(encoded) > _MAX_U16:
        raise JournalHeaderError(f"{field}: {len(encoded)} bytes in UTF-8, at most {_MAX_U16}")
    return encoded


@attrs.frozen
class JournalHeader:
    """What a journal pins: payload format version, engine version, the manifest's exact bytes, the plugins.

    `pack()` is canonical (one encoding per value), little-endian:
    u32 format_version | u16 n + engine_version (UTF-8) | 32 bytes manifest_sha256 | u32 n + manifest |
    u16 plugin count | per plugin, in load order: u16 n + name (UTF-8), u16 n + version (UTF-8).
    """

    format_version: int
    engine_version: str
    manifest_sha256: bytes
    manifest: bytes
    plugins: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        # Plugin order is kept, not sorted: load order decides hook call order, so it is part of the pin.
        if not isinstance(self.format_version, int) or not 0 <= self.format_version <= _MAX_U32:
            raise JournalHeaderError(f"format_version: {self.format_version!r} is not a u32")
        _check_str("engine_version", self.engine_version)
        if not isinstance(self.manifest, bytes) or len(self.manifest) > _MAX_U32:
            raise JournalHeaderError("manifest: expected bytes of at most 2**32 - 1")
        if self.manifest_sha256 != hashlib.sha256(self.manifest).digest():
            raise JournalHeaderError("manifest_sha256: is not the SHA-256 of the manifest bytes")
        if not isinstance(self.plugins, tuple) or len(self.plugins) > _MAX_U16:
            raise JournalHeaderError(f"plugins: expected a tuple of at most {_MAX_U16} (name, version) pairs")
        for entry in self.plugins:
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise JournalHeaderError(f"plugins: {entry!r} is not a (name, version) pair")
            _check_str("plugin name", entry[0])
            _check_str(f"plugin {entry[0]} version", entry[1])
        names = [name for name, _ in self.plugins]
        if len(set(names)) != len(names):
            raise JournalHeaderError(f"plugins: a name appears twice in {names}")

    @classmethod
    def create(
        cls, *, format_version: int, engine_version: str, manifest: bytes, plugins: Sequence[tuple[str, str]] = ()
    ) -> JournalHeader:
        """A header for these manifest bytes, computing their SHA-256."""
        return cls(format_version, engine_version, hashlib.sha256(manifest).digest(), manifest, tuple(plugins))

    def pack(self) -> bytes:
        """The canonical encoding (layout in the class docstring)."""

        def text(value: str) -> bytes:
            encoded = value.encode("utf-8")
            return _U16.pack(len(encoded)) + encoded

        parts = [_U32.pack(self.format_version), text(self.engine_version), self.manifest_sha256]
        parts += [_U32.pack(len(self.manifest)), self.manifest, _U16.pack(len(self.plugins))]
        for name, version in self.plugins:
            parts += [text(name), text(version)]
        return b"".join(parts)

    @classmethod
    def unpack(cls, data: bytes) -> JournalHeader:
        """Decode `pack()` output exactly (trailing bytes are an error); raises JournalHeaderError."""
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if pos + n > len(data):
                raise JournalHeaderError(f"journal header: truncated at byte {pos} (needs {n} more)")
            pos += n
            return bytes(data[pos - n : pos])

        def text(field: str) -> str:
            raw = take(_U16.unpack(take(2))[0])
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise JournalHeaderError(f"journal header: {field} is not UTF-8") from exc

        (format_version,) = _U32.unpack(take(4))
        engine_version = text("engine_version")
        sha = take(32)
        manifest = take(_U32.unpack(take(4))[0])
        plugins = tuple((text("plugin name"), text("plugin version")) for _ in range(_U16.unpack(take(2))[0]))
        if pos != len(data):
            raise JournalHeaderError(f"journal header: {len(data) - pos} trailing bytes")
        return cls(format_version, engine_version, sha, manifest, plugins)


def _differences(on_disk: JournalHeader, running: JournalHeader) -> list[tuple[str, str]]:
    """Each field where the journal's header differs from the running engine's, with a readable account."""
    out: list[tuple[str, str]] = []
    if on_disk.format_version != running.format_version:
        out.append(
            (
                "format_version",
                f"journal has format version {on_disk.format_version}, this engine writes {running.format_version}",
            )
        )
    if on_disk.engine_version != running.engine_version:
        out.append(
            (
                "engine_version",
                f"journal was written by engine {on_disk.engine_version!r}, this is {running.engine_version!r}",
            )
        )
    if on_disk.manifest != running.manifest:
        out.append(
            (
                "manifest",
                f"journal pins manifest sha256 {on_disk.manifest_sha256.hex()}, "
                f"this manifest is {running.manifest_sha256.hex()}",
            )
        )
    if on_disk.plugins != running.plugins:
        old, new = dict(on_disk.plugins), dict(running.plugins)
        for name, version in on_disk.plugins:
            if name not in new:
                out.append(("plugins", f"plugin {name} {version} is in the journal but not loaded"))
            elif new[name] != version:
                out.append(("plugins", f"plugin {name}: journal has version {version}, loaded is {new[name]}"))
        out += [
            ("plugins", f"plugin {name} {version} is loaded but not in the journal")
            for name, version in running.plugins
            if name not in old
        ]
        if old == new:
            out.append(("plugins", f"load order differs: journal {list(old)}, now {list(new)}"))
    return out


@attrs.frozen
class Recovery:
    """What `Journal.open` repaired: a torn tail cut from `segment` at `offset`, leaving `last_seq` as the end."""

    last_seq: int
    truncated_bytes: int
    segment: str
    offset: int
    reason: str


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first record has sequence number `first_seq`."""
    return f"journal-{first_seq:020d}.seg"


def _header_block(header: JournalHeader) -> bytes:
    packed = header.pack()
    head = HEADER_MAGIC + _U32.pack(len(packed)) + packed
    return head + _U32.pack(zlib.crc32(head))


def _parse_header(data: bytes) -> tuple[JournalHeader, int] | str:
    """The header and the offset just after it, or why the header block is bad."""
    fixed = len(HEADER_MAGIC) + 4
    if len(data) < fixed:
        return f"segment header incomplete ({len(data)} bytes)"
    if data[: len(HEADER_MAGIC)] != HEADER_MAGIC:
        return "bad segment magic"
    (n,) = _U32.unpack_from(data, len(HEADER_MAGIC))
    end = fixed + n + 4
    if end > len(data):
        return "segment header runs past the end of the file"
    (crc,) = _U32.unpack_from(data, end - 4)
    if zlib.crc32(memoryview(data)[: end - 4]) != crc:
        return "segment header checksum mismatch"
    try:
        return JournalHeader.unpack(data[fixed : end - 4]), end
    except JournalHeaderError as exc:
        return exc.message


def _parse_record(data: bytes, offset: int) -> tuple[int, int] | str:
    """(seq, end offset) of the record at `offset`, or why it is bad."""
    if len(data) - offset < _RECORD.size:
        return "incomplete record header"
    length, seq, crc = _RECORD.unpack_from(data, offset)
    end = offset + _RECORD.size + length
    if end > len(data):
        return "record runs past the end of the file"
    view = memoryview(data)
    if zlib.crc32(view[offset + _RECORD.size : end], zlib.crc32(view[offset : offset + _CRC_SPAN])) != crc:
        return "record checksum mismatch"
    return seq, end


def _valid_record_after(data: bytes, start: int, last_seq: int) -> int | None:
    """The offset of a verifying record with a later seq anywhere at or after `start`, if there is one.

    Every offset is tried, not just the declared end of the bad record, because a damaged length field
    points nowhere useful. Only seqs that could follow in this file are checksummed, which keeps the
    scan of a torn tail cheap.
    """
    highest = last_seq + 1 + (len(data) - start) // _RECORD.size
    for offset in range(start, len(data) - _RECORD.size + 1):
        length, seq, _ = _RECORD.unpack_from(data, offset)
        if last_seq < seq <= highest and offset + _RECORD.size + length <= len(data):
            parsed = _parse_record(data, offset)
            if not isinstance(parsed, str):
                return offset
    return None


def _scan_records(name: str, data: bytes, offset: int, last_seq: int, is_last: bool) -> tuple[int, int, str | None]:
    """Verify the records of a segment from `offset` on.

    Returns the last seq, the end of the last good record, and, when the segment ends in a torn tail, why
    the bytes after that end are bad (None when the segment is whole). Raises JournalCorruptError for damage
    that is not a torn tail.
    """
    while offset < len(data):
        record = _parse_record(data, offset)
        if isinstance(record, str):
            if not is_last:
                raise JournalCorruptError(name, offset, record)
            following = _valid_record_after(data, offset + 1, last_seq)
            if following is not None:
                raise JournalCorruptError(name, offset, f"{record}, yet a valid record follows at {following}")
            return last_seq, offset, record
        seq, end = record
        if seq != last_seq + 1:
            raise JournalCorruptError(name, offset, f"record has seq {seq}, expected {last_seq + 1}")
        last_seq, offset = seq, end
    return last_seq, offset, None


def _encode_records(first_seq: int, payloads: Sequence[bytes]) -> bytes:
    parts: list[bytes] = []
    for seq, payload in enumerate(payloads, first_seq):
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"journal payload {seq - first_seq}: expected bytes, got {type(payload).__name__}")
        body = bytes(payload)
        if len(body) > _MAX_U32:
            raise JournalError(f"journal payload {seq - first_seq}: {len(body)} bytes, at most {_MAX_U32}")
        prefix = _U32.pack(len(body)) + seq.to_bytes(8, "little")
        parts += [prefix, _U32.pack(zlib.crc32(body, zlib.crc32(prefix))), body]
    return b"".join(parts)


class Journal:
    """An open journal directory: recovered on open, appended to in fsynced batches, replayed with `records()`."""

    def __init__(
        self,
        directory: Path,
        header: JournalHeader,
        files: FileLayer,
        segment_bytes: int,
        segments: list[int],
        last_seq: int,
        size: int,
        handle: int,
        recovery: Recovery | None,
    ) -> None:
        """Use `Journal.open`; this only stores the recovered state."""
        self.directory = directory
        self.header = header
        self.recovery = recovery
        self._files = files
        self._segment_bytes = segment_bytes
        self._segments = segments  # first seq of each segment, ascending
        self._last_seq = last_seq
        self._size = size  # bytes in the last segment
        self._handle: int | None = handle
        self._failure: str | None = None

    # ---- opening and recovery --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | str,
        header: JournalHeader,
        *,
        files: FileLayer = OS_FILES,
        segment_bytes: int = 64 << 20,
    ) -> Journal:
        """Open the journal in `directory`, creating it if empty, else recovering it (see the module docstring)."""
        directory = Path(directory)
        if segment_bytes <= 0:
            raise ValueError(f"segment_bytes: {segment_bytes} must be positive")
        if not files.exists(directory):
            missing = [d for d in [directory, *directory.parents] if not files.exists(d)]
            files.makedirs(directory)
            for created in reversed(missing):
                files.fsync_dir(created.parent)
        names = [n for n in files.listdir(directory) if _SEGMENT_RE.fullmatch(n)]
        block = _header_block(header)
        if not names:
            handle = cls._create_segment(files, directory, 1, block)
            return cls(directory, header, files, segment_bytes, [1], 0, len(block), handle, None)

        segments: list[int] = []
        last_seq = 0
        recovery: Recovery | None = None
        size = 0
        for index, name in enumerate(names):
            is_last = index == len(names) - 1
            first = int(name[len("journal-") : -len(".seg")])
            if first != last_seq + 1:
                raise JournalCorruptError(
                    name, 0, f"segment starts at seq {first}, expected {last_seq + 1} (a segment is missing)"
                )
            segments.append(first)
            path = directory / name
            data = files.read_bytes(path)
            parsed = _parse_header(data)
            if isinstance(parsed, str):
                # A crash while creating the segment can leave its header unfinished; it held no record yet.
                if is_last and len(data) <= len(block):
                    files.truncate(path, 0)
                    handle = files.open_append(path)
                    files.write(handle, block)
                    files.fsync(handle)
                    recovery = Recovery(last_seq, len(data), name, 0, parsed)
                    return cls(
                        directory, header, files, segment_bytes, segments, last_seq, len(block), handle, recovery
                    )
                raise JournalCorruptError(name, 0, parsed)
            on_disk, offset = parsed
            differences = _differences(on_disk, header)
            if differences:
                raise JournalMismatchError(name, differences)
            last_seq, size, torn = _scan_records(name, data, offset, last_seq, is_last)
            if torn is not None:
                files.truncate(path, size)
                recovery = Recovery(last_seq, len(data) - size, name, size, torn)
        handle = files.open_append(directory / names[-1])
        return cls(directory, header, files, segment_bytes, segments, last_seq, size, handle, recovery)

    @staticmethod
    def _create_segment(files: FileLayer, directory: Path, first_seq: int, block: bytes) -> int:
        """Create a segment with its header durable, name included, before any record goes in."""
        handle = files.open_append(directory / segment_name(first_seq))
        files.write(handle, block)
        files.fsync(handle)
        files.fsync_dir(directory)
        return handle

    # ---- appending -------------------------------------------------------------------------------------

    def append_batch(self, payloads: Sequence[bytes]) -> int:
        """Write one record per payload, fsync once, then return the last seq (group commit)."""
        self._check_writable()
        if not payloads:
            return self._last_seq
        data = _encode_records(self._last_seq + 1, payloads)  # bad arguments raise before any I/O
        handle = self._handle
        assert handle is not None
        try:
            if self._size >= self._segment_bytes and self._last_seq >= self._segments[-1]:
                handle = self._rotate(handle)
            self._files.write(handle, data)
            self._files.fsync(handle)
        except BaseException as exc:
            # Whatever reached the disk is unknown now, and a retried fsync can lie: stop for good.
            self._failure = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, Exception):
                raise JournalFailedError(
                    f"journal append of seqs {self._last_seq + 1}..{self._last_seq + len(payloads)} failed "
                    f"({self._failure}); the journal is stopped, restart to recover"
                ) from exc
            raise
        self._size += len(data)
        self._last_seq += len(payloads)
        return self._last_seq

    def _rotate(self, handle: int) -> int:
        first = self._last_seq + 1
        self._handle = None
        self._files.close(handle)
        handle = self._create_segment(self._files, self.directory, first, _header_block(self.header))
        self._handle = handle
        self._segments.append(first)
        self._size = len(_header_block(self.header))
        return handle

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise JournalFailedError(
                f"journal stopped after a failed write or fsync ({self._failure}); nothing more is written, "
                "restart to recover"
            )
        if self._handle is None:
            raise JournalError("journal is closed", code="JOURNAL_CLOSED")

    # ---- reading ---------------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The seq of the last durable (acknowledged) record; 0 for an empty journal."""
        return self._last_seq

    @property
    def failed(self) -> bool:
        """Whether a write or fsync failed (every append now raises JournalFailedError)."""
        return self._failure is not None

    @property
    def segments(self) -> list[str]:
        """The segment file names, oldest first."""
        return [segment_name(first) for first in self._segments]

    def records(self, start: int = 1) -> Iterator[tuple[int, bytes]]:
        """Yield (seq, payload) for every acknowledged record from `start` on, verifying each checksum again."""
        if start < 1:
            raise ValueError(f"start: {start} must be at least 1")
        end = self._last_seq
        segments = list(self._segments)
        for index, first in enumerate(segments):
            stop = segments[index + 1] - 1 if index + 1 < len(segments) else end
            if stop < start:
                continue
            name = segment_name(first)
            data = self._files.read_bytes(self.directory / name)
            parsed = _parse_header(data)
            if isinstance(parsed, str):
                raise JournalCorruptError(name, 0, parsed)
            offset = parsed[1]
            for expected in range(first, stop + 1):
                record = _parse_record(data, offset)
                if isinstance(record, str) or record[0] != expected:
                    reason = record if isinstance(record, str) else f"seq {record[0]}, expected {expected}"
                    raise JournalCorruptError(name, offset, reason)
                if expected >= start:
                    yield expected, data[offset + _RECORD.size : record[1]]
                offset = record[1]

    # ---- closing ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the segment file; appends raise afterwards (everything acknowledged is already durable)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._files.close(handle)

    def __enter__(self) -> Journal:
        """Use the journal in a with-block that closes it."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Close the journal."""
        self.close()


def read_header(directory: Path | str, *, files: FileLayer = OS_FILES) -> JournalHeader:
    """The header of the journal in `directory` (its first segment's), without opening it for writing."""
    directory = Path(directory)
    names = sorted(n for n in files.listdir(directory) if _SEGMENT_RE.fullmatch(n)) if files.exists(directory) else []
    if not names:
        raise JournalError(f"{directory}: no journal segments here")
    parsed = _parse_header(files.read_bytes(directory / names[0]))
    if isinstance(parsed, str):
        # a crash while the first segment was being created leaves it without a complete header;
        # the journal then holds no command, and only an engine that knows its manifest can repair it
        raise JournalError(
            f"{directory}: the journal's first segment has no complete header ({parsed}), so it holds no "
            "command and names no manifest; open it with the venue's manifest to repair it",
            code="JOURNAL_EMPTY",
        )
    return parsed[0]


class JournalTail:
    """Follows a journal that another process writes, read-only: each complete record once, in order.

    It never repairs anything (a record still being written is simply not complete yet), so it can run
    beside the sequencer; readers such as the history store replay what it yields."""

    def __init__(self, directory: Path | str) -> None:
        """Follow `directory` from its first record."""
        self.directory = Path(directory)
        self.next_seq = 1
        self._first: int | None = None  # the open segment's first seq
        self._handle: IO[bytes] | None = None
        self._buffer = bytearray()
        self._header_done = False

    def close(self) -> None:
        """Close the open segment file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _segments(self) -> list[int]:
        """The first seq of every segment, ascending."""
        found = (_SEGMENT_RE.fullmatch(p.name) for p in self.directory.iterdir()) if self.directory.exists() else ()
        return sorted(int(m.group(1)) for m in found if m)

    def poll(self, limit: int = 100_000) -> list[tuple[int, bytes]]:
        """The records completed since the last poll (at most `limit`): (seq, payload)."""
        out: list[tuple[int, bytes]] = []
        while len(out) < limit:
            if self._handle is None:
                candidates = [f for f in self._segments() if f <= self.next_seq]
                if not candidates:
                    return out
                self._first = candidates[-1]
                self._handle = open(self.directory / segment_name(self._first), "rb")  # noqa: SIM115
                self._buffer.clear()
                self._header_done = False
            self._buffer += self._handle.read()
            offset = 0
            if not self._header_done:
                parsed = _parse_header(bytes(self._buffer))
                if isinstance(parsed, str):
                    return out  # the header is still being written
                offset, self._header_done = parsed[1], True
            data = bytes(self._buffer)
            while len(out) < limit:
                record = _parse_record(data, offset)
                if isinstance(record, str):
                    break
                seq, end = record
                if seq >= self.next_seq:
                    out.append((seq, data[offset + _RECORD.size : end]))
                    self.next_seq = seq + 1
                offset = end
            del self._buffer[:offset]
            if len(out) >= limit:
                return out
            later = [f for f in self._segments() if f > (self._first or 0)]
            if not later or later[0] != self.next_seq or self._buffer:
                return out  # the writer is still in this segment (or mid-record)
            self.close()  # the writer rolled over: the next segment starts at next_seq
        return out
