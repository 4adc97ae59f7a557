"""The file layer: the only way the journal and snapshots touch the disk, so tests can swap in a simulated one.

`OsFileLayer` is the real disk. `SimulatedDisk` is an in-memory disk with an explicit durability model, for
crash tests (here rather than under tests/ so the engine's tests can use it too):

- Every file is an inode with two contents: *visible* (what reads see) and *durable* (what survives a crash).
  `fsync(handle)` and `truncate` copy visible to durable.
- Names are a *visible* namespace and a *durable* one. Creating a file, renaming and removing change the
  visible namespace only; `fsync_dir(d)` copies the visible entries of directory `d` to the durable one
  (the POSIX rule: a new or renamed name survives a crash only once its directory is fsynced). So a new file
  that was fsynced but whose directory never was is lost at a crash, and an un-dir-synced rename is undone.
- Directories themselves are durable as soon as they are made (a simplification: the callers fsync the
  parent anyway).
- `crash()` drops what is not durable: every file takes its durable content, every name its durable entry,
  every handle is closed. `crash(keep_pending=n)` first lets the first n unsynced bytes appended to each file
  reach the disk, which models a torn write (a prefix of the pending data persisted).
- Writes always append at the end of the file (every caller writes sequentially). `write_new` on an
  existing file empties it durably at once: a crash may then leave it empty, the worst real outcome.
- Faults: `fail_fsync_after(n)` and `fail_write_after(n)` make one later call raise `OSError`;
  `crash_after(n)` makes every operation after the next n raise `SimulatedCrashError` until `crash()`.
  A failed operation takes no effect (a failed fsync leaves the data not durable; nothing retries it).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Protocol, TypeAlias

import attrs

__all__ = [
    "OS_FILES",
    "FileLayer",
    "LogEntry",
    "OsFileLayer",
    "SimulatedCrashError",
    "SimulatedDisk",
]


class FileLayer(Protocol):
    """The file operations the journal and snapshots use; paths are `pathlib.Path`, handles are ints."""

    def open_append(self, path: Path) -> int:
        """Open `path` for appending, creating it if missing; return a handle."""
        ...

    def write(self, handle: int, data: bytes) -> None:
        """Write all of `data` at the end of the handle's file."""
        ...

    def fsync(self, handle: int) -> None:
        """Make everything written through the handle's file durable."""
        ...

    def close(self, handle: int) -> None:
        """Close the handle."""
        ...

    def truncate(self, path: Path, size: int) -> None:
        """Cut the file at `path` to `size` bytes and make that durable."""
        ...

    def read_bytes(self, path: Path) -> bytes:
        """Return the whole content of the file at `path`."""
        ...

    def write_new(self, path: Path) -> int:
        """Create `path` (or empty it if it exists) for writing; return a handle."""
        ...

    def rename(self, src: Path, dst: Path) -> None:
        """Atomically rename `src` to `dst`, replacing `dst`."""
        ...

    def fsync_dir(self, path: Path) -> None:
        """Make the directory's entries (new, renamed, removed names) durable."""
        ...

    def listdir(self, path: Path) -> list[str]:
        """The names in directory `path`, sorted."""
        ...

    def exists(self, path: Path) -> bool:
        """Whether a file or directory exists at `path`."""
        ...

    def makedirs(self, path: Path) -> None:
        """Create directory `path` and its missing parents; no error if it exists."""
        ...

    def remove(self, path: Path) -> None:
        """Remove the file at `path`."""
        ...


class OsFileLayer:
    """The real disk, through os.open / os.write / os.fsync."""

    def open_append(self, path: Path) -> int:
        """Open `path` for appending, creating it if missing; return the file descriptor."""
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, handle: int, data: bytes) -> None:
        """Write all of `data`, looping because os.write may write less than asked."""
        view = memoryview(data)
        while view:
            written = os.write(handle, view)
            view = view[written:]

    def fsync(self, handle: int) -> None:
        """os.fsync the descriptor."""
        os.fsync(handle)

    def close(self, handle: int) -> None:
        """os.close the descriptor."""
        os.close(handle)

    def truncate(self, path: Path, size: int) -> None:
        """ftruncate and fsync, so the cut survives a crash."""
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_bytes(self, path: Path) -> bytes:
        """The whole file."""
        return path.read_bytes()

    def write_new(self, path: Path) -> int:
        """Create or empty `path` for writing; return the file descriptor."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def rename(self, src: Path, dst: Path) -> None:
        """os.replace (atomic on POSIX)."""
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        """fsync a descriptor opened on the directory itself."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def listdir(self, path: Path) -> list[str]:
        """Sorted os.listdir."""
        return sorted(os.listdir(path))

    def exists(self, path: Path) -> bool:
        """os.path.exists."""
        return path.exists()

    def makedirs(self, path: Path) -> None:
        """os.makedirs(exist_ok=True)."""
        os.makedirs(path, exist_ok=True)

    def remove(self, path: Path) -> None:
        """os.remove."""
        os.remove(path)


OS_FILES: FileLayer = OsFileLayer()
"""The shared real file layer (it holds no state), the default of every `files=` argument."""


class SimulatedCrashError(OSError):
    """Raised by every `SimulatedDisk` operation once a crash injected with `crash_after` has happened."""


LogEntry: TypeAlias = tuple[str, Path] | tuple[str, Path, int] | tuple[str, Path, Path]
"""One operation in `SimulatedDisk.log`: ("write", path, n), ("fsync", path), ("rename", src, dst), ..."""


@attrs.define(eq=False)
class _Inode:
    visible: bytearray = attrs.Factory(bytearray)
    durable: bytes = b""


@attrs.define
class SimulatedDisk:
    """An in-memory disk that loses what was not made durable at `crash()` (model: see the module docstring)."""

    log: list[LogEntry] = attrs.Factory(list)
    _names: dict[Path, _Inode] = attrs.Factory(dict)
    _durable_names: dict[Path, _Inode] = attrs.Factory(dict)
    _dirs: set[Path] = attrs.Factory(set)
    _handles: dict[int, tuple[Path, _Inode]] = attrs.Factory(dict)
    _next_handle: int = 3
    _fsyncs_before_failure: int | None = None
    _writes_before_failure: int | None = None
    _ops_before_crash: int | None = None
    _crashed: bool = False

    # ---- fault injection -------------------------------------------------------------------------------

    def fail_fsync_after(self, n: int) -> None:
        """Let the next `n` fsyncs succeed and make the one after raise OSError(EIO), once."""
        self._fsyncs_before_failure = n

    def fail_write_after(self, n: int) -> None:
        """Let the next `n` writes succeed and make the one after raise OSError(ENOSPC), once."""
        self._writes_before_failure = n

    def crash_after(self, n: int) -> None:
        """Let the next `n` logged operations happen; every operation after them raises SimulatedCrashError."""
        self._ops_before_crash = n

    def crash(self, keep_pending: int = 0) -> None:
        """Power loss: keep only durable content and names (plus `keep_pending` unsynced appended bytes per file)."""
        for inode in dict.fromkeys(self._durable_names.values()):
            content = inode.durable
            if keep_pending and inode.visible.startswith(content):
                content += bytes(inode.visible[len(content) : len(content) + keep_pending])
            inode.durable = content
            inode.visible = bytearray(content)
        self._names = dict(self._durable_names)
        self._handles.clear()
        self._fsyncs_before_failure = self._writes_before_failure = self._ops_before_crash = None
        self._crashed = False

    # ---- inspection helpers for tests ------------------------------------------------------------------

    def durable_bytes(self, path: Path) -> bytes | None:
        """What `path` would hold after a crash now, or None if it would not exist."""
        inode = self._durable_names.get(Path(path))
        return None if inode is None else inode.durable

    # ---- the FileLayer operations ----------------------------------------------------------------------

    def _op(self, entry: LogEntry | None) -> None:
        """Spend the crash budget and apply injected faults before an operation; log it (mutations only)."""
        if self._crashed:
            raise SimulatedCrashError(errno.EIO, "simulated crash: the disk is gone")
        if entry is None:
            return
        if self._ops_before_crash is not None:
            if self._ops_before_crash == 0:
                self._crashed = True
                raise SimulatedCrashError(errno.EIO, f"simulated crash before {entry[0]} {entry[1]}")
            self._ops_before_crash -= 1
        if entry[0] == "write" and self._writes_before_failure is not None:
            self._writes_before_failure -= 1
            if self._writes_before_failure < 0:
                self._writes_before_failure = None
                raise OSError(errno.ENOSPC, "simulated write failure")
        if entry[0] == "fsync" and self._fsyncs_before_failure is not None:
            self._fsyncs_before_failure -= 1
            if self._fsyncs_before_failure < 0:
                self._fsyncs_before_failure = None
                raise OSError(errno.EIO, "simulated fsync failure")
        self.log.append(entry)

    def _inode(self, path: Path) -> _Inode:
        inode = self._names.get(path)
        if inode is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
        return inode

    def _handle(self, handle: int) -> tuple[Path, _Inode]:
        found = self._handles.get(handle)
        if found is None:
            raise OSError(errno.EBADF, f"bad handle {handle}")
        return found

    def _create(self, path: Path) -> _Inode:
        if path.parent not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(path.parent))
        if path in self._dirs:
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        return self._names.setdefault(path, _Inode())

    def _new_handle(self, path: Path, inode: _Inode) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._handles[handle] = (path, inode)
        return handle

    def open_append(self, path: Path) -> int:
        """Open (creating) `path` for appending."""
        path = Path(path)
        self._op(("open_append", path))
        return self._new_handle(path, self._create(path))

    def write(self, handle: int, data: bytes) -> None:
        """Append `data` to the handle's file (not durable until fsync)."""
        path, inode = self._handle(handle)
        self._op(("write", path, len(data)))
        inode.visible += data

    def fsync(self, handle: int) -> None:
        """Make the handle's file content durable (its name needs fsync_dir)."""
        path, inode = self._handle(handle)
        self._op(("fsync", path))
        inode.durable = bytes(inode.visible)

    def close(self, handle: int) -> None:
        """Forget the handle."""
        path, _ = self._handle(handle)
        self._op(("close", path))
        del self._handles[handle]

    def truncate(self, path: Path, size: int) -> None:
        """Cut (or zero-extend) the file to `size` bytes, durably."""
        path = Path(path)
        inode = self._inode(path)
        self._op(("truncate", path, size))
        del inode.visible[size:]
        inode.visible += bytes(size - len(inode.visible))
        inode.durable = bytes(inode.visible)

    def read_bytes(self, path: Path) -> bytes:
        """The visible content of `path`."""
        self._op(None)
        return bytes(self._inode(Path(path)).visible)

    def write_new(self, path: Path) -> int:
        """Create or empty `path` and open it; emptying an existing file is durable at once (the worst case)."""
        path = Path(path)
        self._op(("write_new", path))
        inode = self._create(path)
        inode.visible.clear()
        inode.durable = b""
        return self._new_handle(path, inode)

    def rename(self, src: Path, dst: Path) -> None:
        """Move the name (durable at the next fsync_dir of the directories)."""
        src, dst = Path(src), Path(dst)
        inode = self._inode(src)
        if dst.parent not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(dst.parent))
        self._op(("rename", src, dst))
        del self._names[src]
        self._names[dst] = inode

    def fsync_dir(self, path: Path) -> None:
        """Make the directory's current entries durable."""
        path = Path(path)
        if path not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(path))
        self._op(("fsync_dir", path))
        for name in [n for n in self._durable_names if n.parent == path]:
            del self._durable_names[name]
        self._durable_names.update({n: i for n, i in self._names.items() if n.parent == path})

    def listdir(self, path: Path) -> list[str]:
        """Sorted names of the files and directories in `path`."""
        path = Path(path)
        self._op(None)
        if path not in self._dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(path))
        return sorted(p.name for p in [*self._names, *self._dirs] if p.parent == path and p != path)

    def exists(self, path: Path) -> bool:
        """Whether `path` is a visible file or a directory."""
        self._op(None)
        return Path(path) in self._names or Path(path) in self._dirs

    def makedirs(self, path: Path) -> None:
        """Create the directory and its parents (durable at once)."""
        path = Path(path)
        self._op(("makedirs", path))
        self._dirs.update([path, *path.parents])

    def remove(self, path: Path) -> None:
        """Remove the name (durable at the next fsync_dir)."""
        path = Path(path)
        self._inode(path)
        self._op(("remove", path))
        del self._names[path]
