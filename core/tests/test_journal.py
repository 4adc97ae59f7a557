"""The journal: framing, group commit, fail-stop, crash recovery, torn tails, corruption and header pins."""

from __future__ import annotations

import copy
import hashlib
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exos.errors import ExosError
from exos.files import OsFileLayer, SimulatedCrashError, SimulatedDisk
from exos.journal import (
    Journal,
    JournalCorruptError,
    JournalError,
    JournalFailedError,
    JournalHeader,
    JournalHeaderError,
    JournalMismatchError,
    segment_name,
)

DIR = Path("/venue/journal")
MANIFEST = b'[venue]\nname = "test"\n\n[plugins]\nspot = {}\nflat_fees = {}\n'
HEADER = JournalHeader.create(
    format_version=1, engine_version="0.1.0", manifest=MANIFEST, plugins=(("spot", "0.1.0"), ("flat_fees", "1.2"))
)
FIRST = segment_name(1)


# ---- helpers that read the format independently of exos.journal --------------------------------------------


def header_end(data: bytes) -> int:
    """Where the records of a segment start, from the documented header block layout."""
    assert data[:8] == b"EXOSJNL1"
    n: int = struct.unpack_from("<I", data, 8)[0]
    (crc,) = struct.unpack_from("<I", data, 12 + n)
    assert zlib.crc32(data[: 12 + n]) == crc
    return 12 + n + 4


def parse_records(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(offset, end, seq, payload) of each record of a valid segment, from the documented framing."""
    out = []
    offset = header_end(data)
    while offset < len(data):
        length, seq, crc = struct.unpack_from("<IQI", data, offset)
        end = offset + 16 + length
        assert end <= len(data)
        assert zlib.crc32(data[offset : offset + 12] + data[offset + 16 : end]) == crc
        out.append((offset, end, seq, data[offset + 16 : end]))
        offset = end
    return out


def encode_record(seq: int, payload: bytes) -> bytes:
    """One record framed by hand."""
    prefix = struct.pack("<IQ", len(payload), seq)
    return prefix + struct.pack("<I", zlib.crc32(prefix + payload)) + payload


def make_payloads(count: int, start: int = 0) -> list[bytes]:
    """Distinct payloads of varying length (empty ones included)."""
    return [f"cmd-{i}|".encode() * (i % 4) for i in range(start, start + count)]


def split(payloads: Sequence[bytes], sizes: Sequence[int]) -> list[list[bytes]]:
    """Cut `payloads` into consecutive batches of the given sizes."""
    out, pos = [], 0
    for size in sizes:
        out.append(list(payloads[pos : pos + size]))
        pos += size
    assert pos == len(payloads)
    return out


def put(disk: SimulatedDisk, path: Path, data: bytes) -> None:
    """Replace a file's content durably (test tampering, outside the journal)."""
    handle = disk.write_new(path)
    disk.write(handle, data)
    disk.fsync(handle)
    disk.close(handle)
    disk.fsync_dir(path.parent)


def build(batches: Sequence[Sequence[bytes]], segment_bytes: int = 64 << 20) -> SimulatedDisk:
    """A simulated disk holding a closed journal with these batches."""
    disk = SimulatedDisk()
    with Journal.open(DIR, HEADER, files=disk, segment_bytes=segment_bytes) as journal:
        for batch in batches:
            journal.append_batch(batch)
    return disk


def reopen(disk: SimulatedDisk, header: JournalHeader = HEADER, segment_bytes: int = 64 << 20) -> Journal:
    """Open the journal on `disk`."""
    return Journal.open(DIR, header, files=disk, segment_bytes=segment_bytes)


def payloads_of(journal: Journal, start: int = 1) -> list[bytes]:
    """The replayed payloads, checking their seqs count up from `start`."""
    records = list(journal.records(start))
    assert [seq for seq, _ in records] == list(range(start, start + len(records)))
    return [payload for _, payload in records]


def run_until_failure(disk: SimulatedDisk, batches: Sequence[Sequence[bytes]], segment_bytes: int) -> int:
    """Append the batches until the disk fails; return the last acknowledged seq."""
    acked = 0
    try:
        journal = Journal.open(DIR, HEADER, files=disk, segment_bytes=segment_bytes)
        for batch in batches:
            acked = journal.append_batch(batch)
    except (JournalFailedError, SimulatedCrashError):
        pass
    return acked


# ---- the header --------------------------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8"), max_size=12)


class TestHeader:
    @given(
        format_version=st.integers(0, 2**32 - 1),
        engine_version=names,
        manifest=st.binary(max_size=200),
        plugins=st.lists(st.tuples(names, names), max_size=5, unique_by=lambda p: p[0]),
    )
    def test_pack_unpack_round_trip(
        self, format_version: int, engine_version: str, manifest: bytes, plugins: list[tuple[str, str]]
    ) -> None:
        """Any valid header decodes to itself, and packing is a function of the value."""
        header = JournalHeader.create(
            format_version=format_version, engine_version=engine_version, manifest=manifest, plugins=plugins
        )
        assert JournalHeader.unpack(header.pack()) == header
        assert JournalHeader.unpack(header.pack()).pack() == header.pack()

    def test_pack_is_the_documented_layout(self) -> None:
        """The encoding is the one in the class docstring, byte for byte."""
        header = JournalHeader.create(format_version=7, engine_version="e1", manifest=b"m", plugins=[("p", "v2")])
        expected = (
            bytes.fromhex("07000000" + "0200") + b"e1" + hashlib.sha256(b"m").digest()
            + bytes.fromhex("01000000") + b"m" + bytes.fromhex("0100")
            + bytes.fromhex("0100") + b"p" + bytes.fromhex("0200") + b"v2"
        )  # fmt: skip
        assert header.pack() == expected

    def test_every_truncation_and_extension_is_rejected(self) -> None:
        """unpack accepts exactly the packed bytes: no prefix, no trailing byte."""
        packed = HEADER.pack()
        for cut in range(len(packed)):
            with pytest.raises(JournalHeaderError):
                JournalHeader.unpack(packed[:cut])
        with pytest.raises(JournalHeaderError, match="trailing"):
            JournalHeader.unpack(packed + b"\0")

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"manifest_sha256": bytes(32)}, "manifest_sha256"),
            ({"format_version": -1}, "format_version"),
            ({"plugins": (("spot", "1"), ("spot", "2"))}, "twice"),
            ({"plugins": (("spot",),)}, "pair"),
            ({"engine_version": "x" * 70_000}, "engine_version"),
        ],
    )
    def test_invalid_values_are_refused(self, kwargs: dict[str, object], match: str) -> None:
        """A header that could not be packed, or whose hash is not its manifest's, is refused at construction."""
        fields: dict[str, object] = {
            "format_version": 1,
            "engine_version": "0.1.0",
            "manifest_sha256": HEADER.manifest_sha256,
            "manifest": MANIFEST,
            "plugins": (),
        }
        with pytest.raises(JournalHeaderError, match=match):
            JournalHeader(**(fields | kwargs))  # type: ignore[arg-type]


# ---- round trip, rotation ----------------------------------------------------------------------------------


class TestRoundTrip:
    def test_batches_survive_reopen(self) -> None:
        """Appended batches come back from records() after close and reopen, with seqs 1..n."""
        payloads = make_payloads(20)
        disk = SimulatedDisk()
        with Journal.open(DIR, HEADER, files=disk) as journal:
            assert journal.last_seq == 0
            returned = [journal.append_batch(batch) for batch in split(payloads, [1, 5, 3, 11])]
            assert returned == [1, 6, 9, 20]
            assert payloads_of(journal) == payloads
        journal = reopen(disk)
        assert journal.recovery is None
        assert journal.last_seq == 20
        assert payloads_of(journal) == payloads
        assert [(seq, payload) for _, _, seq, payload in parse_records(disk.durable_bytes(DIR / FIRST) or b"")] == list(
            enumerate(payloads, 1)
        )

    def test_records_from_any_start(self) -> None:
        """records(start) yields exactly the records from start on, across segment boundaries."""
        payloads = make_payloads(30)
        journal = reopen(build(split(payloads, [3] * 10), segment_bytes=120), segment_bytes=120)
        assert len(journal.segments) > 3
        for start in range(1, 33):
            assert payloads_of(journal, start) == payloads[start - 1 :]

    def test_rotation_keeps_seqs_contiguous_and_batches_whole(self) -> None:
        """With small segments every segment is named after its first seq, seqs are contiguous, no batch is split."""
        payloads = make_payloads(60)
        sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 5]
        disk = build(split(payloads, sizes), segment_bytes=150)
        journal = reopen(disk, segment_bytes=150)
        names = [n for n in disk.listdir(DIR) if n.endswith(".seg")]
        assert names == journal.segments
        assert len(names) >= 4
        seqs: list[int] = []
        segment_of: dict[int, str] = {}
        for name in names:
            records = parse_records(disk.read_bytes(DIR / name))
            assert records, f"{name} holds no record"
            assert name == segment_name(records[0][2])
            for _, _, seq, _ in records:
                seqs.append(seq)
                segment_of[seq] = name
        assert seqs == list(range(1, 61))
        last = 0
        for size in sizes:
            assert len({segment_of[seq] for seq in range(last + 1, last + size + 1)}) == 1
            last += size
        assert payloads_of(journal) == payloads

    def test_appends_continue_after_reopen_and_rotate(self) -> None:
        """A reopened journal appends after its last seq, and later reopens see both runs."""
        disk = build([make_payloads(4)], segment_bytes=100)
        with reopen(disk, segment_bytes=100) as journal:
            assert journal.append_batch(make_payloads(3, 4)) == 7
            assert len(journal.segments) == 2
        assert payloads_of(reopen(disk)) == make_payloads(7)

    def test_empty_batch_writes_nothing(self) -> None:
        """An empty batch returns the last seq and performs no I/O."""
        disk = build([make_payloads(2)])
        journal = reopen(disk)
        before = len(disk.log)
        assert journal.append_batch([]) == 2
        assert disk.log[before:] == []

    def test_bad_payload_raises_before_any_write(self) -> None:
        """A non-bytes payload is a TypeError that writes nothing and leaves the journal usable."""
        disk = SimulatedDisk()
        journal = Journal.open(DIR, HEADER, files=disk)
        before = len(disk.log)
        with pytest.raises(TypeError):
            journal.append_batch([b"ok", "not bytes"])  # type: ignore[list-item]
        assert disk.log[before:] == []
        assert journal.append_batch([b"ok"]) == 1

    def test_closed_journal_refuses_appends(self) -> None:
        """After close() an append raises a JournalError, but replay still works."""
        journal = Journal.open(DIR, HEADER, files=SimulatedDisk())
        journal.append_batch([b"a"])
        journal.close()
        with pytest.raises(JournalError) as info:
            journal.append_batch([b"b"])
        assert info.value.code == "JOURNAL_CLOSED"
        assert payloads_of(journal) == [b"a"]

    def test_other_files_in_the_directory_are_ignored(self) -> None:
        """Names that are not segment names (snapshots, temp files) do not disturb recovery."""
        disk = build([make_payloads(3)])
        put(disk, DIR / "snapshot-00000000000000000002.snap", b"x")
        put(disk, DIR / "journal-1.seg.tmp", b"junk")
        assert payloads_of(reopen(disk)) == make_payloads(3)

    def test_real_files_round_trip(self, tmp_path: Path) -> None:
        """On the real disk: creation of nested directories, rotation, reopen, replay."""
        directory = tmp_path / "a" / "b"
        payloads = make_payloads(40)
        with Journal.open(directory, HEADER, files=OsFileLayer(), segment_bytes=200) as journal:
            for batch in split(payloads, [10, 1, 9, 20]):
                journal.append_batch(batch)
        with Journal.open(directory, HEADER, segment_bytes=200) as journal:
            assert journal.recovery is None
            assert payloads_of(journal) == payloads
            assert sorted(os.listdir(directory)) == journal.segments
            assert len(journal.segments) == 3  # the 1-record batch shares a segment with the next


# ---- group commit ------------------------------------------------------------------------------------------


class TestGroupCommit:
    def test_no_acknowledgement_precedes_the_fsync_of_its_records(self) -> None:
        """Each append returns right after one fsync following all its writes (and a new segment's dir fsync)."""
        disk = SimulatedDisk()
        journal = Journal.open(DIR, HEADER, files=disk, segment_bytes=150)
        rotations = 0
        for batch in split(make_payloads(45), [1, 2, 3, 4, 5, 6, 7, 8, 9]):
            before = len(disk.log)
            journal.append_batch(batch)
            ops = disk.log[before:]
            assert ops[-1][0] == "fsync", ops
            for index, op in enumerate(ops):
                if op[0] == "write":
                    assert ("fsync", op[1]) in ops[index + 1 :], f"write to {op[1]} acknowledged unsynced: {ops}"
                if op[0] == "open_append":
                    rotations += 1
                    later = ops[index + 1 :]
                    assert ("fsync_dir", DIR) in later
                    record_write = max(i for i, o in enumerate(later) if o[0] == "write")
                    assert later.index(("fsync_dir", DIR)) < record_write, "records written before the dir fsync"
            record_fsyncs = [op for op in ops if op[0] == "fsync"]
            assert len(record_fsyncs) == (2 if any(op[0] == "open_append" for op in ops) else 1)
        assert rotations >= 3

    def test_every_acknowledged_batch_survives_an_immediate_crash(self) -> None:
        """Right after each append returns, a crash (on a copy of the disk) keeps every acknowledged record."""
        disk = SimulatedDisk()
        journal = Journal.open(DIR, HEADER, files=disk, segment_bytes=120)
        appended: list[bytes] = []
        for batch in split(make_payloads(36), [4, 1, 7, 2, 9, 13]):
            journal.append_batch(batch)
            appended += batch
            crashed = copy.deepcopy(disk)
            crashed.crash()
            assert payloads_of(reopen(crashed)) == appended


# ---- fail-stop ---------------------------------------------------------------------------------------------


class TestFailStop:
    @pytest.mark.parametrize("fault", ["fsync", "write", "rotation fsync"])
    def test_an_io_error_stops_the_journal_for_good(self, fault: str) -> None:
        """The failing append raises JournalFailedError, and every later one raises too without touching the disk."""
        disk = SimulatedDisk()
        journal = Journal.open(DIR, HEADER, files=disk, segment_bytes=60 if fault == "rotation fsync" else 1 << 20)
        journal.append_batch(make_payloads(5))
        if fault == "write":
            disk.fail_write_after(0)
        else:
            disk.fail_fsync_after(0)
        with pytest.raises(JournalFailedError) as info:
            journal.append_batch(make_payloads(3, 5))
        assert isinstance(info.value.__cause__, OSError)
        assert isinstance(info.value, ExosError)
        assert info.value.code == "JOURNAL_FAILED"
        assert journal.failed
        assert journal.last_seq == 5
        before = len(disk.log)
        for _ in range(3):
            with pytest.raises(JournalFailedError):
                journal.append_batch([b"later"])
        assert disk.log[before:] == []
        assert journal.last_seq == 5
        disk.crash()
        assert payloads_of(reopen(disk)) == make_payloads(5)

    def test_a_failed_fsync_is_never_retried(self) -> None:
        """After a failed fsync the journal issues no further fsync, even though the disk would now succeed."""
        disk = SimulatedDisk()
        journal = Journal.open(DIR, HEADER, files=disk)
        disk.fail_fsync_after(0)
        with pytest.raises(JournalFailedError):
            journal.append_batch([b"x"])
        before = len(disk.log)
        with pytest.raises(JournalFailedError):
            journal.append_batch([b"y"])
        assert not [op for op in disk.log[before:] if op[0] == "fsync"]


# ---- crashes at every point --------------------------------------------------------------------------------

CRASH_BATCHES = split(make_payloads(40), [1, 3, 2, 6, 1, 5, 4, 8, 2, 8])


def check_recovers_a_prefix(
    disk: SimulatedDisk, submitted: Sequence[bytes], acked: int, segment_bytes: int
) -> tuple[Journal, list[bytes]]:
    """Reopen after a crash: the records are a prefix of the submitted ones containing every acknowledged one."""
    journal = reopen(disk, segment_bytes=segment_bytes)
    recovered = payloads_of(journal)
    assert recovered == list(submitted[: len(recovered)])
    assert len(recovered) >= acked
    assert journal.last_seq == len(recovered)
    return journal, recovered


class TestCrashes:
    @pytest.mark.parametrize("keep_pending", [0, 7, 1 << 20])
    def test_crash_before_every_operation_loses_nothing_acknowledged(self, keep_pending: int) -> None:
        """For every k, a crash after k disk operations (keeping none, some or all unsynced bytes) recovers a prefix."""
        submitted = [p for batch in CRASH_BATCHES for p in batch]
        total_ops = len(build(CRASH_BATCHES, segment_bytes=100).log)
        saw_torn_tail = saw_partial = False
        for k in range(total_ops + 1):
            disk = SimulatedDisk()
            disk.crash_after(k)
            acked = run_until_failure(disk, CRASH_BATCHES, segment_bytes=100)
            disk.crash(keep_pending)
            journal, recovered = check_recovers_a_prefix(disk, submitted, acked, 100)
            saw_torn_tail |= journal.recovery is not None
            saw_partial |= 0 < len(recovered) < len(submitted)
            assert journal.append_batch([b"after"]) == len(recovered) + 1
            journal.close()
            assert payloads_of(reopen(disk)) == [*recovered, b"after"]
        assert saw_partial
        assert saw_torn_tail == (keep_pending == 7)

    @settings(max_examples=150)
    @given(
        batches=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=10),
        crash_at=st.integers(0, 80),
        keep_pending=st.integers(0, 120),
        second_crash_at=st.integers(0, 12),
        segment_bytes=st.sampled_from([1, 80, 300, 1 << 20]),
    )
    def test_random_crashes_during_work_and_recovery(
        self,
        batches: list[list[bytes]],
        crash_at: int,
        keep_pending: int,
        second_crash_at: int,
        segment_bytes: int,
    ) -> None:
        """A crash during appends, then another during recovery and more appends, never loses an acknowledged record."""
        submitted = [p for batch in batches for p in batch]
        disk = SimulatedDisk()
        disk.crash_after(crash_at)
        acked = run_until_failure(disk, batches, segment_bytes)
        disk.crash(keep_pending)
        _, recovered = check_recovers_a_prefix(copy.deepcopy(disk), submitted, acked, segment_bytes)
        # Second round: resubmit the rest, crash again somewhere in recovery or the new appends.
        rest = submitted[len(recovered) :]
        disk.crash_after(second_crash_at)
        acked = run_until_failure(disk, [rest[i : i + 3] for i in range(0, len(rest), 3)], segment_bytes)
        disk.crash(keep_pending // 2)
        check_recovers_a_prefix(disk, submitted, max(acked, len(recovered)), segment_bytes)


# ---- torn tails --------------------------------------------------------------------------------------------


def last_segment(disk: SimulatedDisk) -> tuple[Path, bytes]:
    """Path and durable content of the newest segment."""
    name = [n for n in disk.listdir(DIR) if n.endswith(".seg")][-1]
    data = disk.durable_bytes(DIR / name)
    assert data is not None
    return DIR / name, data


class TestTornTail:
    @pytest.mark.parametrize("segment_bytes", [64 << 20, 200])
    def test_last_record_cut_at_every_offset(self, segment_bytes: int) -> None:
        """Cut anywhere inside the last record, recovery stops at the record before, reports the cut, appends again."""
        payloads = [*make_payloads(15), b"the last record, 34 bytes of it..."]
        base = build(split(payloads, [5, 5, 5, 1]), segment_bytes=segment_bytes)
        path, data = last_segment(base)
        start, end, seq, _ = parse_records(data)[-1]
        assert (seq, end) == (16, len(data))
        for cut in range(1, end - start):
            disk = copy.deepcopy(base)
            disk.truncate(path, start + cut)
            journal = reopen(disk, segment_bytes=segment_bytes)
            assert journal.recovery is not None
            assert (journal.recovery.last_seq, journal.recovery.truncated_bytes) == (15, cut)
            assert (journal.recovery.segment, journal.recovery.offset) == (path.name, start)
            assert journal.last_seq == 15
            assert payloads_of(journal) == payloads[:15]
            assert disk.durable_bytes(path) == data[:start]
            assert journal.append_batch([b"new"]) == 16
            journal.close()
            again = reopen(disk, segment_bytes=segment_bytes)
            assert again.recovery is None
            assert payloads_of(again) == [*payloads[:15], b"new"]

    def test_cut_at_a_record_boundary_needs_no_repair(self) -> None:
        """A file ending exactly after a record is whole: no recovery is reported."""
        base = build([make_payloads(6)])
        path, data = last_segment(base)
        for offset, _, seq, _ in parse_records(data):
            disk = copy.deepcopy(base)
            disk.truncate(path, offset)
            journal = reopen(disk)
            assert journal.recovery is None
            assert journal.last_seq == seq - 1

    def test_unfinished_header_of_a_new_segment_is_rewritten(self) -> None:
        """A last segment whose header block is incomplete held no record: it gets a fresh header and takes appends."""
        base = build(split(make_payloads(8), [4, 4]), segment_bytes=1)
        assert len(base.listdir(DIR)) == 2
        block = base.read_bytes(DIR / FIRST)[: header_end(base.read_bytes(DIR / FIRST))]
        name = segment_name(9)
        for cut in range(len(block)):
            disk = copy.deepcopy(base)
            put(disk, DIR / name, block[:cut])
            journal = reopen(disk, segment_bytes=1)
            assert journal.recovery is not None
            assert (journal.recovery.segment, journal.recovery.last_seq) == (name, 8)
            assert journal.recovery.truncated_bytes == cut
            assert journal.append_batch([b"x"]) == 9
            assert journal.segments[-1] == name  # the repaired segment is used, not skipped
            journal.close()
            assert payloads_of(reopen(disk)) == [*make_payloads(8), b"x"]

    def test_real_file_cut_inside_its_last_record(self, tmp_path: Path) -> None:
        """On the real disk, a segment cut mid-record is truncated back to the last whole record."""
        payloads = make_payloads(10)
        with Journal.open(tmp_path, HEADER) as journal:
            journal.append_batch(payloads)
        path = tmp_path / FIRST
        data = path.read_bytes()
        start, _, _, _ = parse_records(data)[-1]
        os.truncate(path, start + 9)
        with Journal.open(tmp_path, HEADER) as journal:
            assert journal.recovery is not None
            assert (journal.recovery.last_seq, journal.recovery.truncated_bytes) == (9, 9)
            assert path.stat().st_size == start
            assert journal.append_batch([b"again"]) == 10
        with Journal.open(tmp_path, HEADER) as journal:
            assert payloads_of(journal) == [*payloads[:9], b"again"]


class TestBitFlips:
    @pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
    def test_each_byte_of_the_last_record_flipped(self, mask: int) -> None:
        """A flipped byte anywhere in the last record (length, seq, crc or payload) is caught; recovery drops it."""
        payloads = [*make_payloads(9), b"payload of the final record"]
        base = build([payloads])
        path, data = last_segment(base)
        start, end, _, _ = parse_records(data)[-1]
        for index in range(start, end):
            disk = copy.deepcopy(base)
            damaged = bytearray(data)
            damaged[index] ^= mask
            put(disk, path, bytes(damaged))
            journal = reopen(disk)
            assert journal.recovery is not None, f"flip at {index} not detected"
            assert (journal.recovery.last_seq, journal.recovery.truncated_bytes) == (9, end - start)
            assert payloads_of(journal) == payloads[:9]

    @given(data=st.data())
    @settings(max_examples=100)
    def test_random_bit_flip_in_a_torn_tail(self, data: st.DataObject) -> None:
        """A cut last record with a random flipped bit in what is left is still a torn tail."""
        payloads = [*make_payloads(5), bytes(range(50))]
        base = build([payloads[:3], payloads[3:]])
        path, content = last_segment(base)
        start, end, _, _ = parse_records(content)[-1]
        cut = data.draw(st.integers(start + 1, end - 1))
        bit = data.draw(st.integers(start * 8, cut * 8 - 1))
        damaged = bytearray(content[:cut])
        damaged[bit // 8] ^= 1 << (bit % 8)
        put(base, path, bytes(damaged))
        journal = reopen(base)
        assert journal.recovery is not None
        assert journal.recovery.truncated_bytes == cut - start
        assert payloads_of(journal) == payloads[:5]


# ---- corruption that is not a torn tail --------------------------------------------------------------------


class TestCorruption:
    def test_flip_in_an_earlier_record_of_the_last_segment_refuses(self) -> None:
        """Any flipped byte of a record followed by valid ones raises JournalCorruptError naming segment and offset."""
        base = build([make_payloads(4), make_payloads(4, 4)])
        path, data = last_segment(base)
        start, end, _, _ = parse_records(data)[5]
        for index in range(start, end):
            disk = copy.deepcopy(base)
            damaged = bytearray(data)
            damaged[index] ^= 0x10
            put(disk, path, bytes(damaged))
            with pytest.raises(JournalCorruptError) as info:
                reopen(disk)
            assert (info.value.segment, info.value.offset) == (FIRST, start)
            assert info.value.code == "JOURNAL_CORRUPT"
            assert disk.durable_bytes(path) == bytes(damaged), "a refused journal must not be repaired"

    def test_any_damage_in_an_earlier_segment_refuses(self) -> None:
        """Any flipped byte of an earlier segment, its header and its last record included, refuses to start."""
        base = build(split(make_payloads(12), [3, 3, 3, 3]), segment_bytes=1)
        names = base.listdir(DIR)
        assert len(names) == 4
        data = base.read_bytes(DIR / names[1])
        for index in range(len(data)):
            disk = copy.deepcopy(base)
            damaged = bytearray(data)
            damaged[index] ^= 0x04
            put(disk, DIR / names[1], bytes(damaged))
            with pytest.raises(JournalCorruptError) as info:
                reopen(disk, segment_bytes=1)
            assert info.value.segment == names[1]

    def test_an_earlier_segment_cut_short_refuses(self) -> None:
        """A torn end is only repaired in the last segment."""
        base = build(split(make_payloads(6), [3, 3]), segment_bytes=1)
        name = base.listdir(DIR)[0]
        data = base.read_bytes(DIR / name)
        put(base, DIR / name, data[:-1])
        with pytest.raises(JournalCorruptError, match="past the end"):
            reopen(base, segment_bytes=1)

    def test_a_missing_segment_refuses(self) -> None:
        """A gap in the segment names (a deleted segment, or the first one) is reported as missing records."""
        base = build(split(make_payloads(9), [3, 3, 3]), segment_bytes=1)
        for name in base.listdir(DIR):
            disk = copy.deepcopy(base)
            disk.remove(DIR / name)
            disk.fsync_dir(DIR)
            if name == base.listdir(DIR)[-1]:
                assert reopen(disk, segment_bytes=1).last_seq == 6  # dropping the newest leaves a valid journal
                continue
            with pytest.raises(JournalCorruptError, match="missing"):
                reopen(disk, segment_bytes=1)

    @pytest.mark.parametrize("seq", [3, 5, 9])
    def test_a_valid_record_out_of_sequence_refuses(self, seq: int) -> None:
        """A record whose checksum verifies but whose seq is not the next one is corruption, even at the tail."""
        base = build([make_payloads(3)])
        path, data = last_segment(base)
        put(base, path, data + encode_record(seq, b"stray"))
        with pytest.raises(JournalCorruptError, match=f"seq {seq}, expected 4"):
            reopen(base)

    def test_damaged_record_with_garbage_length_still_finds_later_records(self) -> None:
        """A record whose length field points past the end is not a torn tail when valid records follow it."""
        base = build([make_payloads(6)])
        path, data = last_segment(base)
        start = parse_records(data)[2][0]
        damaged = bytearray(data)
        damaged[start : start + 4] = struct.pack("<I", 10_000)
        put(base, path, bytes(damaged))
        with pytest.raises(JournalCorruptError, match="valid record follows"):
            reopen(base)


# ---- header pins -------------------------------------------------------------------------------------------


def changed(**kwargs: object) -> JournalHeader:
    """HEADER with some fields replaced (the manifest hash follows the manifest)."""
    fields: dict[str, object] = {
        "format_version": HEADER.format_version,
        "engine_version": HEADER.engine_version,
        "manifest": HEADER.manifest,
        "plugins": HEADER.plugins,
    } | kwargs
    return JournalHeader.create(**fields)  # type: ignore[arg-type]


class TestHeaderMismatch:
    @pytest.mark.parametrize(
        ("header", "field", "words"),
        [
            (changed(manifest=MANIFEST + b"# edited\n"), "manifest", [HEADER.manifest_sha256.hex()]),
            (changed(engine_version="0.2.0"), "engine_version", ["0.1.0", "0.2.0"]),
            (changed(format_version=2), "format_version", ["1", "2"]),
            (changed(plugins=(("spot", "0.1.1"), ("flat_fees", "1.2"))), "plugins", ["spot", "0.1.0", "0.1.1"]),
            (changed(plugins=(("spot", "0.1.0"),)), "plugins", ["flat_fees 1.2", "not loaded"]),
            (changed(plugins=(*HEADER.plugins, ("kyc", "3"))), "plugins", ["kyc 3", "not in the journal"]),
            (changed(plugins=HEADER.plugins[::-1]), "plugins", ["load order"]),
        ],
    )
    def test_a_different_header_refuses_naming_the_field(
        self, header: JournalHeader, field: str, words: list[str]
    ) -> None:
        """Opening a journal under another manifest, engine, format or plugin set raises JournalMismatchError."""
        disk = build([make_payloads(3)])
        before = len(disk.log)
        with pytest.raises(JournalMismatchError) as info:
            reopen(disk, header=header)
        assert info.value.fields == (field,)
        assert info.value.segment == FIRST
        assert info.value.code == "JOURNAL_MISMATCH"
        for word in words:
            assert word in info.value.message
        assert not [op for op in disk.log[before:] if op[0] in {"write", "truncate", "write_new"}]

    def test_every_segment_header_is_checked(self) -> None:
        """A later segment carrying another header (with a valid checksum) is a mismatch, not accepted."""
        base = build(split(make_payloads(6), [3, 3]), segment_bytes=1)
        name = base.listdir(DIR)[-1]
        data = base.read_bytes(DIR / name)
        other = changed(engine_version="9.9")
        packed = other.pack()
        block = b"EXOSJNL1" + struct.pack("<I", len(packed)) + packed
        put(base, DIR / name, block + struct.pack("<I", zlib.crc32(block)) + data[header_end(data) :])
        with pytest.raises(JournalMismatchError) as info:
            reopen(base, segment_bytes=1)
        assert (info.value.segment, info.value.fields) == (name, ("engine_version",))

    def test_several_differences_are_all_named(self) -> None:
        """When more than one field differs, the error lists each."""
        disk = build([[b"x"]])
        with pytest.raises(JournalMismatchError) as info:
            reopen(disk, header=changed(engine_version="2", manifest=b"other"))
        assert info.value.fields == ("engine_version", "manifest")


# ---- the simulated disk itself -----------------------------------------------------------------------------


class TestSimulatedDisk:
    def test_crash_keeps_exactly_what_was_synced(self) -> None:
        """Fsynced bytes of a dir-synced file survive a crash; unsynced bytes do not (or only keep_pending of them)."""
        disk = SimulatedDisk()
        disk.makedirs(DIR)
        handle = disk.open_append(DIR / "f")
        disk.write(handle, b"durable")
        disk.fsync(handle)
        disk.fsync_dir(DIR)
        disk.write(handle, b"-pending")
        assert disk.read_bytes(DIR / "f") == b"durable-pending"
        torn = copy.deepcopy(disk)
        disk.crash()
        assert disk.read_bytes(DIR / "f") == b"durable"
        torn.crash(keep_pending=3)
        assert torn.read_bytes(DIR / "f") == b"durable-pe"
        with pytest.raises(OSError, match="bad handle"):
            disk.write(handle, b"x")

    def test_new_names_need_a_directory_fsync(self) -> None:
        """A created, renamed or removed name is undone by a crash unless its directory was fsynced after."""
        disk = SimulatedDisk()
        disk.makedirs(DIR)
        handle = disk.write_new(DIR / "a")
        disk.write(handle, b"1")
        disk.fsync(handle)
        disk.crash()
        assert not disk.exists(DIR / "a")
        handle = disk.write_new(DIR / "a")
        disk.write(handle, b"1")
        disk.fsync(handle)
        disk.fsync_dir(DIR)
        disk.rename(DIR / "a", DIR / "b")
        disk.crash()
        assert disk.listdir(DIR) == ["a"]
        disk.rename(DIR / "a", DIR / "b")
        disk.fsync_dir(DIR)
        disk.remove(DIR / "b")
        disk.crash()
        assert disk.listdir(DIR) == ["b"]
        assert disk.read_bytes(DIR / "b") == b"1"

    def test_faults_fire_once_at_the_chosen_call(self) -> None:
        """fail_fsync_after(n) lets n fsyncs through and fails the next one only; crash_after(n) logs n operations."""
        disk = SimulatedDisk()
        disk.makedirs(DIR)
        handle = disk.open_append(DIR / "f")
        disk.fail_fsync_after(1)
        disk.fsync(handle)
        with pytest.raises(OSError, match="fsync"):
            disk.fsync(handle)
        disk.fsync(handle)
        disk.crash_after(2)
        disk.write(handle, b"a")
        disk.write(handle, b"b")
        with pytest.raises(SimulatedCrashError):
            disk.write(handle, b"c")
        with pytest.raises(SimulatedCrashError):
            disk.read_bytes(DIR / "f")
        assert disk.log[-2:] == [("write", DIR / "f", 1), ("write", DIR / "f", 1)]
