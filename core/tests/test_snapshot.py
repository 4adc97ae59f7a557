"""Snapshots: the file layout, atomic replacement under crashes, skipping broken files, temp files, pruning."""

from __future__ import annotations

import copy
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exos.files import OsFileLayer, SimulatedCrashError, SimulatedDisk
from exos.snapshot import (
    InvalidSnapshot,
    SnapshotCorruptError,
    SnapshotError,
    SnapshotWriteError,
    latest_snapshot,
    prune_snapshots,
    read_snapshot,
    scan_snapshots,
    snapshot_name,
    write_snapshot,
)

DIR = Path("/venue/snapshots")


def disk_with(*snapshots: tuple[int, bytes]) -> SimulatedDisk:
    """A simulated disk with these snapshots written (durably)."""
    disk = SimulatedDisk()
    for seq, payload in snapshots:
        write_snapshot(DIR, seq, payload, files=disk)
    return disk


def put(disk: SimulatedDisk, path: Path, data: bytes) -> None:
    """Replace a file's content durably (test tampering)."""
    handle = disk.write_new(path)
    disk.write(handle, data)
    disk.fsync(handle)
    disk.close(handle)
    disk.fsync_dir(path.parent)


class TestRoundTrip:
    @given(seq=st.integers(0, 2**64 - 1), payload=st.binary(max_size=300))
    def test_written_snapshot_reads_back(self, seq: int, payload: bytes) -> None:
        """Any seq and payload come back unchanged, in the documented file layout."""
        disk = disk_with((seq, payload))
        assert latest_snapshot(DIR, files=disk) == (seq, payload)
        data = disk.durable_bytes(DIR / f"snapshot-{seq:020d}.snap")
        assert data is not None
        fields = struct.pack("<QQ", seq, len(payload))
        assert data == b"EXOSSNP1" + fields + struct.pack("<I", zlib.crc32(fields + payload)) + payload

    def test_the_newest_of_several_wins(self) -> None:
        """latest_snapshot picks the highest seq, not the last written."""
        disk = disk_with((30, b"thirty"), (100, b"hundred"), (7, b"seven"))
        assert latest_snapshot(DIR, files=disk) == (100, b"hundred")
        assert scan_snapshots(DIR, files=disk).valid == (7, 30, 100)

    def test_no_snapshot_is_none(self) -> None:
        """An empty or missing directory has no snapshot."""
        disk = SimulatedDisk()
        assert latest_snapshot(DIR, files=disk) is None
        disk.makedirs(DIR)
        assert latest_snapshot(DIR, files=disk) is None

    def test_real_files(self, tmp_path: Path) -> None:
        """On the real disk: write two, read the newest, no temp file left behind."""
        directory = tmp_path / "snaps"
        write_snapshot(directory, 5, b"five")
        path = write_snapshot(directory, 9, b"nine" * 1000, files=OsFileLayer())
        assert path == directory / snapshot_name(9)
        assert latest_snapshot(directory) == (9, b"nine" * 1000)
        assert read_snapshot(directory / snapshot_name(5)) == (5, b"five")
        assert sorted(p.name for p in directory.iterdir()) == [snapshot_name(5), snapshot_name(9)]

    def test_bad_arguments(self) -> None:
        """A seq outside u64 or a non-bytes payload is refused before touching the disk."""
        disk = SimulatedDisk()
        with pytest.raises(SnapshotError):
            write_snapshot(DIR, -1, b"x", files=disk)
        with pytest.raises(TypeError):
            write_snapshot(DIR, 1, "text", files=disk)  # type: ignore[arg-type]
        assert disk.log == []


class TestCrashSafety:
    def test_crash_before_the_directory_fsync_keeps_the_old_snapshot(self) -> None:
        """A crash after the rename but before the dir fsync loses the new snapshot and keeps the old one."""
        disk = disk_with((10, b"old state"))
        ops = [op[0] for op in disk_with((10, b"old state"), (20, b"new state")).log[len(disk.log) :]]
        assert ops[-2:] == ["rename", "fsync_dir"]
        disk.crash_after(len(ops) - 1)
        with pytest.raises(SnapshotWriteError) as info:
            write_snapshot(DIR, 20, b"new state", files=disk)
        assert isinstance(info.value.__cause__, SimulatedCrashError)
        assert disk.durable_bytes(DIR / snapshot_name(20)) is None
        assert disk.durable_bytes(DIR / (snapshot_name(20) + ".tmp")) is None
        disk.crash()
        assert latest_snapshot(DIR, files=disk) == (10, b"old state")
        assert disk.listdir(DIR) == [snapshot_name(10)]

    @pytest.mark.parametrize("new_seq", [20, 10])
    def test_crash_at_every_step_leaves_old_or_new_never_broken(self, new_seq: int) -> None:
        """Whatever operation the crash hits, a new or rewritten snapshot is found whole or the old one is."""
        base = disk_with((10, b"old state"))
        steps = len(disk_with((10, b"old"), (new_seq, b"new")).log) - len(base.log)
        outcomes = set()
        for k in range(steps + 1):
            for keep_pending in (0, 5, 1 << 20):
                disk = copy.deepcopy(base)
                disk.crash_after(k)
                try:
                    write_snapshot(DIR, new_seq, b"new state", files=disk)
                except SnapshotWriteError:
                    pass
                else:
                    assert k >= steps
                disk.crash(keep_pending)
                latest = latest_snapshot(DIR, files=disk)
                assert latest in {(10, b"old state"), (new_seq, b"new state")}
                assert scan_snapshots(DIR, files=disk).invalid == ()
                outcomes.add(latest)
        assert outcomes == {(10, b"old state"), (new_seq, b"new state")}

    def test_failed_fsync_reports_a_write_error(self) -> None:
        """An fsync error surfaces as SnapshotWriteError and the previous snapshot still verifies."""
        disk = disk_with((1, b"a"))
        disk.fail_fsync_after(0)
        with pytest.raises(SnapshotWriteError):
            write_snapshot(DIR, 2, b"b", files=disk)
        disk.crash()
        assert latest_snapshot(DIR, files=disk) == (1, b"a")


class TestCorruption:
    def test_every_flipped_byte_of_the_newest_falls_back_to_the_previous(self) -> None:
        """A damaged newest snapshot (any byte) is skipped for the previous valid one, and scan names it."""
        base = disk_with((5, b"five"), (8, b"eight, the newest"))
        path = DIR / snapshot_name(8)
        data = base.read_bytes(path)
        for index in range(len(data)):
            disk = copy.deepcopy(base)
            damaged = bytearray(data)
            damaged[index] ^= 0x20
            put(disk, path, bytes(damaged))
            assert latest_snapshot(DIR, files=disk) == (5, b"five"), f"flip at {index} not detected"
            scan = scan_snapshots(DIR, files=disk)
            assert scan.valid == (5,)
            assert [bad.name for bad in scan.invalid] == [snapshot_name(8)]
            with pytest.raises(SnapshotCorruptError):
                read_snapshot(path, files=disk)

    def test_truncated_or_extended_snapshots_are_skipped(self) -> None:
        """A snapshot cut short at any length, or with bytes appended, does not verify."""
        base = disk_with((5, b"five"), (8, b"eight"))
        path = DIR / snapshot_name(8)
        data = base.read_bytes(path)
        for damaged in [data[:cut] for cut in range(len(data))] + [data + b"\0"]:
            disk = copy.deepcopy(base)
            put(disk, path, damaged)
            assert latest_snapshot(DIR, files=disk) == (5, b"five")

    def test_a_snapshot_under_another_seqs_name_is_skipped(self) -> None:
        """A valid file copied to another seq's name is refused: the seq inside must match the name."""
        disk = disk_with((5, b"five"))
        put(disk, DIR / snapshot_name(9), disk.read_bytes(DIR / snapshot_name(5)))
        assert latest_snapshot(DIR, files=disk) == (5, b"five")
        assert scan_snapshots(DIR, files=disk).invalid == (
            InvalidSnapshot(snapshot_name(9), f"snapshot {snapshot_name(9)}: holds seq 5, not the seq of its name"),
        )

    def test_all_broken_is_none(self) -> None:
        """With no valid snapshot left, recovery starts from the beginning of the journal."""
        disk = disk_with((5, b"five"))
        put(disk, DIR / snapshot_name(5), b"EXOSSNP1")
        assert latest_snapshot(DIR, files=disk) is None


class TestTempFiles:
    def test_temp_and_foreign_files_are_ignored(self) -> None:
        """A leftover temp file (even a complete, newer one) and unrelated names are not snapshots."""
        disk = disk_with((5, b"five"))
        newer = disk_with((50, b"fifty")).read_bytes(DIR / snapshot_name(50))
        put(disk, DIR / (snapshot_name(50) + ".tmp"), newer)
        put(disk, DIR / "snapshot-50.snap", newer)
        put(disk, DIR / "journal-00000000000000000001.seg", b"")
        assert latest_snapshot(DIR, files=disk) == (5, b"five")
        assert scan_snapshots(DIR, files=disk).valid == (5,)
        assert scan_snapshots(DIR, files=disk).invalid == ()

    def test_a_rewrite_of_the_same_seq_replaces_it(self) -> None:
        """Writing a seq again replaces that snapshot through its temp file."""
        disk = disk_with((5, b"first"), (5, b"second"))
        assert latest_snapshot(DIR, files=disk) == (5, b"second")
        assert disk.listdir(DIR) == [snapshot_name(5)]


class TestPrune:
    def test_prune_keeps_the_newest_valid_ones(self) -> None:
        """prune removes snapshots and temp files older than the kept ones, never a newer broken one's predecessor."""
        disk = disk_with((1, b"a"), (2, b"b"), (3, b"c"), (4, b"d"))
        put(disk, DIR / (snapshot_name(1) + ".tmp"), b"junk")
        put(disk, DIR / snapshot_name(4), b"broken")
        removed = prune_snapshots(DIR, 2, files=disk)
        assert removed == [snapshot_name(1), snapshot_name(1) + ".tmp"]
        assert disk.listdir(DIR) == [snapshot_name(2), snapshot_name(3), snapshot_name(4)]
        assert latest_snapshot(DIR, files=disk) == (3, b"c")
        disk.crash()
        assert disk.listdir(DIR) == [snapshot_name(2), snapshot_name(3), snapshot_name(4)]

    def test_prune_refuses_to_keep_nothing(self) -> None:
        """keep must be at least 1."""
        with pytest.raises(SnapshotError):
            prune_snapshots(DIR, 0, files=disk_with((1, b"a")))
