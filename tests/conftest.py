"""Fixtures shared by the cross-package tests."""

from __future__ import annotations

import contextlib
import importlib.util
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """An ASGI app on uvicorn in a thread on a free loopback port: its base URL until the block ends."""
    import uvicorn

    from exos.server import uvicorn_config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # configured as `exos serve` is (its WebSocket protocol, no deflate), so served tests exercise what it runs
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def load_bench_module(name: str) -> ModuleType:
    """Import bench/<name>.py by path (bench/ is scripts, not a package)."""
    key = f"exos_bench_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, REPO_ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def book_bench() -> ModuleType:
    """bench/book_bench.py, whose stream drivers the tests reuse."""
    return load_bench_module("book_bench")


_databases = iter(range(1, 10**6))


@pytest.fixture(params=["sqlite", "postgres"])
def history_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a history store goes: a SQLite file, or a fresh PostgreSQL database (`.ci/postgres` starts one and
    sets EXOS_TEST_POSTGRES; without it the PostgreSQL cases are skipped)."""
    if request.param == "sqlite":
        yield str(tmp_path / "history.sqlite3")
        return
    import os

    server = os.environ.get("EXOS_TEST_POSTGRES")
    if not server and os.environ.get("EXOS_REQUIRE_BROWSER"):  # under .ci/run every service must be there
        pytest.fail("EXOS_TEST_POSTGRES is not set: .ci/run starts PostgreSQL with .ci/postgres")
    if not server:
        pytest.skip('no PostgreSQL: run `eval "$(.ci/postgres start)"` first (.ci/run does)')
    import psycopg

    name = f"exos_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def first_line(process: subprocess.Popen[str], seconds: float = 60) -> str:
    """The first line `process` prints, or "" if none comes within `seconds`: a server that never gets ready fails
    its test instead of hanging the suite."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    return process.stdout.readline() if ready else ""


@contextlib.contextmanager
def serving(manifest: Path, *options: str, port: int | None = None) -> Iterator[str]:
    """`exos serve MANIFEST --port P OPTIONS...` in its own process, once it says where it listens: its base URL.

    On leaving, SIGTERM; the server must exit 0."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "exos.cli", "serve", str(manifest), "--port", str(port),
                                *options], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert process.stdout is not None
    try:
        line = first_line(process)
        assert line.startswith(f"listening on http://127.0.0.1:{port}"), f"exos serve did not start: {line!r}"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        code = process.wait(timeout=20)
        process.stdout.close()
    assert code == 0, f"exos serve exited {code}"
