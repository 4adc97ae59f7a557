"""Crash safety with real processes: SIGKILL a journaling engine at random points, then recover.

The issue's criterion: a crash test kills a journaling subprocess with SIGKILL at >= 20 random points per
run (including during a snapshot write); the recovered journal is a prefix of what was submitted, contains
every acknowledged command, and its state hash equals an uninterrupted run over exactly that prefix.

The worker (tests/crash_worker.py) submits a deterministic command list in random batches, logs each
acknowledged batch to an fsynced acks file and snapshots every few batches. Kills land at random times,
measured either from the spawn (most land before anything is journaled) or from the moment the engine has
recovered (they land in appends, between batches or in snapshot writes; the worker pauses halfway through
each snapshot's temp file so that the window is wide enough to be hit). A directory is killed several
times in a row: each restart resumes from whatever the killed process left on disk (torn tails and
leftover temp files included), while the checks run on a copy of it.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from exos.engine import Engine
from exos.journal import Journal
from exos.recovery import journal_header, replay_directory
from exos.snapshot import scan_snapshots

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("crash_worker.py")
SEED = int(os.environ.get("EXOS_CRASH_SEED", "20240611"))
KILLS = 30  # the issue asks for at least 20 per run
KILLS_PER_DIRECTORY = 3
ORDERS = 3000
ACCOUNTS = 20
SNAPSHOT_EVERY = 2
SNAPSHOT_PAUSE = 0.002
BUDGET_SECONDS = 100.0

STARTUP, BATCHES, SNAPSHOT, COMPLETED = "before the first ack", "between/in batches", "during a snapshot", "completed"


def _load_worker() -> ModuleType:
    """tests/crash_worker.py as a module (it builds the command list the worker submits)."""
    spec = importlib.util.spec_from_file_location("exos_crash_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker_module = _load_worker()


class Venue:
    """A manifest copy with the worker's command list and reference state hashes of its prefixes."""

    def __init__(self, manifest: Path) -> None:
        """Use `manifest`; command lists and hashes are computed on demand and cached."""
        self.manifest = manifest
        self._records: dict[int, list[bytes]] = {}
        self._hashes: dict[tuple[int, int], str] = {}

    def records(self, seed: int) -> list[bytes]:
        """The records the worker with this seed submits, in order."""
        if seed not in self._records:
            self._records[seed] = worker_module.build_records(self.manifest, seed, ORDERS, ACCOUNTS)
        return self._records[seed]

    def reference_hash(self, seed: int, count: int) -> str:
        """The state hash of a fresh engine without a journal after exactly the first `count` records."""
        key = (seed, count)
        if key not in self._hashes:
            engine = Engine.from_manifest(self.manifest)
            engine.submit_records(self.records(seed)[:count])
            assert engine.seq == count
            self._hashes[key] = engine.state_hash()
        return self._hashes[key]


@pytest.fixture
def venue(tmp_path: Path) -> Venue:
    """examples/spot.toml copied into tmp_path (the journal path always comes from the worker's argument)."""
    manifest = tmp_path / "spot.toml"
    shutil.copyfile(REPO_ROOT / "examples" / "spot.toml", manifest)
    return Venue(manifest)


def read_acks(path: Path) -> list[int]:
    """The acknowledged counts the worker logged, one per complete line."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # a line without its newline was never completed
    return [int(line) for line in lines]


def temp_files(directory: Path) -> set[str]:
    """Snapshot temp files in a journal directory."""
    return {p.name for p in directory.glob("*.tmp")} if directory.exists() else set()


def has_journal(directory: Path) -> bool:
    """Whether a segment with at least a complete header exists (else nothing was ever journaled)."""
    segments = sorted(directory.glob("journal-*.seg")) if directory.exists() else []
    return bool(segments) and segments[0].stat().st_size > 12


def close_journal(engine: Engine) -> None:
    """Close a recovered engine's journal handle (the engine has no public close)."""
    journal = getattr(engine, "_journal", None)
    if journal is not None:
        journal.close()


class Attempt:
    """One worker run on a journal directory, killed (or not) and its phase at the kill."""

    def __init__(self, directory: Path, acks: Path, seed: int, run: int) -> None:
        """Prepare a run; `run` numbers the runs of this directory."""
        self.directory = directory
        self.acks = acks
        self.seed = seed
        self.ready = directory.parent / f"ready-{run}"
        self.stderr_path = directory.parent / f"stderr-{run}"
        self.acks_before = len(read_acks(acks))
        self.temps_before = temp_files(directory)

    def start(self, manifest: Path) -> subprocess.Popen[bytes]:
        """Spawn the worker."""
        command = [
            sys.executable, str(WORKER), str(manifest), str(self.directory), str(self.acks),
            "--seed", str(self.seed), "--orders", str(ORDERS), "--accounts", str(ACCOUNTS),
            "--snapshot-every", str(SNAPSHOT_EVERY), "--snapshot-pause", str(SNAPSHOT_PAUSE),
            "--ready", str(self.ready),
        ]  # fmt: skip
        with self.stderr_path.open("wb") as stderr:
            return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
        """Wait until the worker has recovered its engine; False if it exited first."""
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if process.poll() is not None:
                return self.ready.exists()
            assert time.monotonic() < deadline, "the worker never became ready"
            time.sleep(0.0005)
        return True

    def wait_for_snapshot_write(self, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        """Wait until a new snapshot temp file exists (or the worker exits)."""
        deadline = time.monotonic() + timeout
        while not temp_files(self.directory) - self.temps_before and process.poll() is None:
            assert time.monotonic() < deadline, "no snapshot was ever written"
            time.sleep(0.0002)

    def finish(self, process: subprocess.Popen[bytes]) -> str:
        """SIGKILL the worker unless it already exited; return the phase the kill landed in."""
        exited = process.poll() is not None
        if not exited:
            process.send_signal(signal.SIGKILL)
        returncode = process.wait()
        stdout = process.stdout.read() if process.stdout else b""
        if process.stdout:
            process.stdout.close()
        stderr = self.stderr_path.read_text()
        assert stdout == b"", f"the worker printed {stdout!r}"
        if exited or returncode != -signal.SIGKILL:
            assert returncode == 0, f"the worker failed (exit {returncode}):\n{stderr}"
            return COMPLETED
        assert "Traceback" not in stderr, stderr
        if len(read_acks(self.acks)) == self.acks_before:
            return STARTUP
        if temp_files(self.directory) - self.temps_before:
            return SNAPSHOT
        return BATCHES


class Outcome:
    """What one recovery found."""

    def __init__(self, recovered: int, acked: int, torn_tail: bool, snapshot: int) -> None:
        """Record the recovered prefix length, the last ack, whether a torn tail was cut, the snapshot used."""
        self.recovered = recovered
        self.acked = acked
        self.torn_tail = torn_tail
        self.snapshot = snapshot


def check_recovery(venue: Venue, directory: Path, acks: Path, seed: int, scratch: Path) -> Outcome:
    """Recover a copy of the killed worker's directory and check the issue's three properties on it."""
    records = venue.records(seed)
    acked = max(read_acks(acks), default=0)
    if scratch.exists():
        shutil.rmtree(scratch)
    if directory.exists():
        shutil.copytree(directory, scratch)
    if has_journal(scratch):
        engine = replay_directory(scratch)  # the journal directory alone: the manifest comes from its header
    else:
        # killed before the first segment's header was written: nothing can have been acknowledged
        assert acked == 0
        engine = Engine.from_manifest(venue.manifest, journal=scratch)
    try:
        count = engine.seq
        torn_tail = engine.recovery is not None
        state_hash = engine.state_hash()
        journal = Journal.open(scratch, journal_header(engine))
        try:
            payloads = [payload for _, payload in journal.records()]
        finally:
            journal.close()
    finally:
        close_journal(engine)
    assert len(payloads) == count, f"the engine recovered {count} commands, the journal holds {len(payloads)}"
    assert payloads == records[:count], f"the recovered journal ({count} records) is not a prefix of the submitted"
    assert count >= acked, f"acknowledged {acked} commands, only {count} recovered"
    assert count - acked <= worker_module.MAX_BATCH, f"{count} recovered, {acked} acked: more than one batch in flight"
    assert state_hash == venue.reference_hash(seed, count), f"state hash after recovering {count} commands differs"
    scan = scan_snapshots(scratch)
    assert scan.invalid == (), f"a renamed snapshot does not verify: {scan.invalid}"
    snapshot = max((seq for seq in scan.valid if seq <= count), default=0)
    return Outcome(count, acked, torn_tail, snapshot)


class TestSigkill:
    """SIGKILL a journaling worker process, recover, compare with an uninterrupted run."""

    def test_uninterrupted_worker_recovers_to_the_reference_state(self, venue: Venue, tmp_path: Path) -> None:
        """A worker that runs to the end leaves a journal whose replay equals the reference over all commands."""
        directory, acks = tmp_path / "whole" / "journal", tmp_path / "whole" / "acks"
        directory.parent.mkdir()
        attempt = Attempt(directory, acks, seed=SEED, run=0)
        process = attempt.start(venue.manifest)
        process.wait(timeout=60)
        assert attempt.finish(process) == COMPLETED
        total = len(venue.records(SEED))
        assert read_acks(acks)[-1] == total
        assert read_acks(acks) == sorted(read_acks(acks))
        outcome = check_recovery(venue, directory, acks, SEED, tmp_path / "whole" / "scratch")
        assert outcome.recovered == total
        assert outcome.snapshot > 0
        assert sorted(directory.glob("snapshot-*.snap")), "the worker wrote no snapshot"

    def test_sigkill_at_random_points(self, venue: Venue, tmp_path: Path) -> None:
        """>= 20 SIGKILLs (before any ack, in batches, in snapshot writes) each recover an acknowledged prefix."""
        rng = random.Random(SEED)
        phases: collections.Counter[str] = collections.Counter()
        torn_tails = from_snapshot = unjournaled = in_flight = 0
        deadline = time.monotonic() + BUDGET_SECONDS
        directories = runs = 0
        directory = acks = scratch = Path()
        seed = 0
        kills_here = KILLS_PER_DIRECTORY

        def kills() -> int:
            return sum(n for phase, n in phases.items() if phase != COMPLETED)

        def missing() -> list[str]:
            return [phase for phase in (STARTUP, BATCHES, SNAPSHOT) if not phases[phase]]

        while kills() < KILLS or missing():
            assert time.monotonic() < deadline, f"time budget spent after {kills()} kills: {dict(phases)}"
            if kills_here >= KILLS_PER_DIRECTORY:
                directories += 1
                base = tmp_path / f"d{directories}"
                base.mkdir()
                directory, acks, scratch = base / "journal", base / "acks", base / "scratch"
                seed = rng.randrange(1 << 30)
                kills_here = 0
            runs += 1
            attempt = Attempt(directory, acks, seed, runs)
            target = missing()[0] if kills() >= KILLS else None
            process = attempt.start(venue.manifest)
            if target == SNAPSHOT:  # coverage top-up: wait for a snapshot write to begin
                attempt.wait_ready(process)
                attempt.wait_for_snapshot_write(process)
            elif target == STARTUP:
                pass  # kill at once
            elif rng.random() < 0.2:  # from the spawn: mostly before anything is journaled
                time.sleep(rng.uniform(0.0, 0.4))
            elif attempt.wait_ready(process):  # from recovery: in appends, between batches, in snapshots
                time.sleep(rng.uniform(0.0, 0.25))
            phase = attempt.finish(process)
            phases[phase] += 1
            unjournaled += not has_journal(directory)
            outcome = check_recovery(venue, directory, acks, seed, scratch)
            torn_tails += outcome.torn_tail
            from_snapshot += outcome.snapshot > 0
            in_flight += outcome.recovered > outcome.acked
            if phase == COMPLETED:
                kills_here = KILLS_PER_DIRECTORY  # this journal is complete: start another directory
            else:
                kills_here += 1

        report = (
            f"{kills()} SIGKILLs over {directories} directories ({runs} runs): "
            + ", ".join(f"{phase}: {phases[phase]}" for phase in (STARTUP, BATCHES, SNAPSHOT, COMPLETED))
            + f"; killed before the journal existed: {unjournaled}"
            + f"; journaled but unacknowledged batch recovered: {in_flight}"
            + f"; torn tails cut: {torn_tails}; recoveries from a snapshot: {from_snapshot}"
        )
        print(report)
        assert kills() >= 20, report
        assert phases[SNAPSHOT] >= 1, report
        assert phases[STARTUP] >= 1, report
        assert phases[BATCHES] >= 1, report
