"""A verifier process (`python -m exos.verifier LISTEN_FD SEQUENCER_FD`), started by `exos serve`.

It serves the API on its own listening socket, one of a SO_REUSEPORT group on the venue's port (the
kernel hashes each connection to one verifier), checks signatures, and forwards verified records to
the sequencer over its Unix socket. It leaves Ctrl-C to the sequencer, which stops it with SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import sys


def main(argv: list[str]) -> int:
    """Serve until SIGTERM or until the sequencer goes away."""
    import uvicorn

    from exos.cli import _configure_logging
    from exos.sequencer import freeze_startup_objects
    from exos.server import RemoteBackend, create_app, run_until_stopped, uvicorn_config

    _configure_logging(False)  # a process of the CLI's: its logs go where the CLI's go (stderr)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(fileno=int(argv[1]))
    backend = RemoteBackend.connect(socket.socket(fileno=int(argv[2])))
    app = create_app(backend, history=argv[3] if len(argv) > 3 else None)
    freeze_startup_objects()
    server = uvicorn.Server(uvicorn_config(app))
    run_until_stopped(server, (signal.SIGTERM,), [listener])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
