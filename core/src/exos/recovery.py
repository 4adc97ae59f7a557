"""Durability for an engine: its journal, its snapshots, and recovery = newest valid snapshot + journal tail.

A journal directory holds the segments (`journal-*.seg`) and the snapshots (`snapshot-*.snap`). The
journal header pins the manifest's exact bytes, the engine and journal-format versions and every
plugin's version; an engine whose manifest or plugins differ refuses to replay it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from exos.files import OS_FILES, FileLayer
from exos.journal import Journal, JournalHeader, read_header
from exos.manifest import Manifest
from exos.snapshot import latest_snapshot, write_snapshot

if TYPE_CHECKING:
    from exos.engine import Engine

JOURNAL_FORMAT = 1
log = structlog.get_logger(__name__)


def journal_header(engine: Engine) -> JournalHeader:
    """The header this engine writes and expects: manifest bytes, versions, plugins."""
    from exos.engine import ENGINE_VERSION

    return JournalHeader.create(
        format_version=JOURNAL_FORMAT,
        engine_version=ENGINE_VERSION,
        manifest=engine.manifest.raw,
        plugins=engine.plugins.versions,
    )


def attach_journal(engine: Engine, directory: Path, files: FileLayer | None = None) -> None:
    """Recover the engine from `directory` (snapshot + journal tail), then journal every later command."""
    files = files or OS_FILES
    journal = Journal.open(directory, journal_header(engine), files=files)
    start = 0
    snapshot = latest_snapshot(directory, files=files)
    if snapshot is not None and snapshot[0] <= journal.last_seq:
        start, payload = snapshot
        engine.load_state(payload)
        engine.seq = start
    replayed = engine.replay(payload for _, payload in journal.records(start + 1))
    engine._journal = journal
    engine._files = files
    engine._journal_dir = directory
    engine.recovery = journal.recovery
    log.info("exos.journal.recovered", directory=str(directory), snapshot=start, replayed=replayed,
             torn_tail=journal.recovery is not None)  # fmt: skip


def snapshot(engine: Engine) -> Path:
    """Write a snapshot of the engine's state (temp, fsync, rename, fsync dir); returns its path."""
    directory: Path | None = getattr(engine, "_journal_dir", None)
    if directory is None:
        raise ValueError("snapshots need an engine with a journal directory")
    path = write_snapshot(directory, engine.seq, engine.dump_state(), files=engine._files)
    engine.plugins.notify_snapshot_written(seq=engine.seq, path=str(path))
    log.info("exos.snapshot.written", seq=engine.seq, path=str(path))
    return path


def manifest_of(directory: Path | str, files: FileLayer | None = None) -> Manifest:
    """The manifest a journal was written with (pinned in its header)."""
    header = read_header(directory, files=files or OS_FILES)
    return Manifest.from_bytes(
        header.manifest, source=f"{directory} (the journal's manifest)", directory=Path(directory)
    )


def replay_directory(directory: Path | str, files: Any = None) -> Engine:
    """An engine recovered from a journal directory alone (its manifest comes from the journal header)."""
    from exos.engine import Engine

    return Engine.from_parsed(manifest_of(directory, files), journal=directory, files=files)
