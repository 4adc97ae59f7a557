#!/usr/bin/env python3
"""WebSocket protocol benchmark: CPU per order-channel message through uvicorn's sans-I/O protocol and through
exos's (`exos.websocket`), alternating, in one process with no network.

Each message is a masked client frame the size of a signed `post` (about 560 bytes), read by the protocol,
taken by an app that answers it with a 280-byte text message, written back as a frame. Both runs share the
asyncio loop, the app and its two task switches per message, so the difference is the framing alone.

    python bench/websocket_bench.py --n 20000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import pathlib
import sys
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from exos.websocket import WebSocketProtocol

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from server_bench import ws_frame  # the client frame the server bench's load writes

UPGRADE = (b"GET /v1/ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: ZXhvcy13ZWJzb2NrZXQtaw==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
POST = json.dumps({"op": "post", "id": 1, "action": {"record": "0x" + "ab" * 200, "signature": "0x" + "cd" * 65}})
ANSWER = json.dumps({"channel": "post", "id": 1, "status": 200, "accepted": True, "events": ["x" * 200]})


class Sink:
    """A transport that keeps nothing: the protocol's writes cost only the call."""

    def __init__(self) -> None:
        """Open, reading."""
        self.writes = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        """Count a write."""
        self.writes += 1

    def pause_reading(self) -> None:
        """Nothing to pause: the driver feeds one message at a time."""

    def resume_reading(self) -> None:
        """See pause_reading."""

    def close(self) -> None:
        """Hang up."""
        self.closing = True

    def is_closing(self) -> bool:
        """Whether hung up."""
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """A loopback peer."""
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)


def cpu_per_message(protocol_class: type[WebSocketsSansIOProtocol], n: int) -> float:
    """CPU µs per message read, answered and written."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": ANSWER})

    loop = asyncio.new_event_loop()
    config = Config(app, ws_max_size=1 << 20, ws_ping_interval=None, ws_per_message_deflate=False)
    config.load()
    protocol = protocol_class(config, ServerState(), {}, _loop=loop)
    sink = Sink()
    protocol.connection_made(sink)  # type: ignore[arg-type]
    protocol.data_received(UPGRADE)
    for _ in range(20):
        loop.run_until_complete(asyncio.sleep(0))
    frame = ws_frame(POST.encode(), b"\x12\x34\x56\x78")

    async def drive() -> None:
        for _ in range(n):
            protocol.data_received(frame)
            await asyncio.sleep(0)  # the app takes the message
            await asyncio.sleep(0)  # and answers it

    before = sink.writes
    start = time.process_time()
    loop.run_until_complete(drive())
    elapsed = time.process_time() - start
    if sink.writes - before != n:
        raise SystemExit(f"{protocol_class.__name__}: {sink.writes - before} answers for {n} messages")
    protocol.connection_lost(None)
    for _ in range(20):  # the app takes the disconnect and returns
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    return elapsed / n * 1e6


def main() -> int:
    """Alternate the two protocols; print CPU µs per message for each run and the best of each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # uvicorn logs each accepted connection
    uvicorn_us, exos_us = [], []
    for _ in range(args.runs):
        uvicorn_us.append(cpu_per_message(WebSocketsSansIOProtocol, args.n))
        exos_us.append(cpu_per_message(WebSocketProtocol, args.n))
        print(f"uvicorn websockets-sansio {uvicorn_us[-1]:5.1f} µs/message   exos.websocket {exos_us[-1]:5.1f} "
              "µs/message", flush=True)  # fmt: skip
    print(f"best: uvicorn {min(uvicorn_us):.1f}, exos {min(exos_us):.1f} µs per message read, answered and written "
          f"(saved {min(uvicorn_us) - min(exos_us):.1f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
