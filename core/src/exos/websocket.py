"""The WebSocket connection uvicorn runs for the venue: its own framing for the common frames.

uvicorn's `websockets-sansio` protocol parses every frame with `websockets`' generator-based parser and
serialises every reply through `websockets`' Frame objects: 19–21 µs of CPU per message read, answered and
written, against 13–15 here (`bench/websocket_bench.py`), a few per cent of a lone order's cost to a
verifier. Most frames are whole, unfragmented, masked text frames of at most 64 KiB, so this protocol
handles exactly those itself: it reads the header, unmasks with `websockets`' C `apply_mask`, and queues
the text as the ASGI message uvicorn would have queued (with the same pause of reading until the app
takes it); it writes each outgoing message as one unmasked FIN frame.

Every other frame (control frames, binary or fragmented messages, longer frames, text that is not UTF-8,
anything while a fragmented message is open, before the handshake or after a close) is handed, byte for
byte and one frame per call, to the inherited `websockets` parser, so its rules hold: protocol errors,
size limits, close codes. One difference, on purpose: uvicorn drops the messages that share a read with a
protocol error; here each frame is judged on its own. `tests/test_websocket_protocol.py` runs both
protocols over the same frames, cut anywhere, and compares what the app gets and what goes on the wire.

The protocol also offers the app a direct channel, as the ASGI extension `scope["extensions"][DIRECT]` (absent
under any other server): `divert(take)` has each whole text frame offered to `take(text)` as it is read, while
the app's queue is empty, before it is queued (`take` returns whether it handled the message; what it declines
is queued as usual), and `send_now(data)` writes UTF-8 `data` as one text frame at once if the connection is
open and writable (else False: the caller sends it the ASGI way). A lone message then costs no task switch
either way, which is most of what an order on the order channel costs a verifier beyond its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension (as websockets.frames falls back)
    from websockets.utils import apply_mask

_TEXT_FIN = 0x81  # FIN, no RSV bits, opcode 1 (text)
_FAST_MAX = 0xFFFF  # frames whose length fits the 16-bit form
_UNDECIDED, _FAST, _SLOW = 0, 1, 2
DIRECT = "exos.websocket"  # the scope extension naming the protocol's direct channel (see the module docstring)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with whole text frames read and written directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's, plus the framing state: nothing buffered, the mode decided at the first frame."""
        super().__init__(*args, **kwargs)
        self._mode = _UNDECIDED
        self._inbox = b""  # the start of a frame not yet complete (bounded by _limit + 8 bytes)
        self._handing = 0  # bytes of the current frame still owed to the inherited parser
        self._limit = min(_FAST_MAX, self.config.ws_max_size or _FAST_MAX)
        self._take: Callable[[str], bool] | None = None  # the app's taker of text messages (divert)

    def handle_connect(self, event: Any) -> None:
        """As uvicorn's; an accepted upgrade's scope also offers the direct channel (the app starts later)."""
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][DIRECT] = self  # type: ignore[assignment]

    def divert(self, take: Callable[[str], bool] | None) -> None:
        """Offer each whole text frame to `take` while the app's queue is empty (None: stop offering)."""
        self._take = take

    def send_now(self, data: bytes) -> bool:
        """Write `data` (UTF-8) as one text frame if the connection is open and writable; whether it was."""
        if not self._direct_open() or not self.writable.is_set() or self.transport.is_closing():
            return False
        self._write(0x81, data)
        return True

    def _direct_open(self) -> bool:
        """Whether frames may be written here rather than through the inherited serialiser."""
        return (self.handshake_complete and not self.close_sent and self.initial_response is None
                and self.conn.state is State.OPEN and not self.conn.extensions)  # fmt: skip

    def _write(self, opcode: int, data: bytes) -> None:
        """One unmasked FIN frame."""
        size = len(data)
        if size < 126:
            header = bytes((opcode, size))
        elif size < 65536:
            header = bytes((opcode, 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((opcode, 127)) + size.to_bytes(8, "big")
        self.transport.write(header + data)

    def data_received(self, data: bytes) -> None:
        """Frames read here while the connection is open and the inherited parser sits at a frame boundary."""
        if self._mode == _FAST:
            self._frames(data)
            return
        if self._mode == _UNDECIDED:
            if self.handshake_complete and not self.close_sent and self._at_boundary():
                self._mode = _FAST
                self._frames(data)
                return
            if self.handshake_initiated:  # frames sent before the app accepted: the inherited parser has them
                self._mode = _SLOW
        super().data_received(data)
        if self._mode == _UNDECIDED and self.handshake_initiated and not data.endswith(b"\r\n\r\n"):
            self._mode = _SLOW  # bytes after the upgrade request in the same read

    def _at_boundary(self) -> bool:
        """Whether the inherited parser holds nothing: no partial frame, no fragmented message, no extension."""
        conn = self.conn
        return (conn.state is State.OPEN and not conn.reader.buffer and conn.current_size is None
                and not conn.extensions)  # fmt: skip

    def _frames(self, data: bytes) -> None:
        """Take every complete whole text frame; hand any other frame to the inherited parser, streamed."""
        buffer = self._inbox + data if self._inbox else data
        end = len(buffer)
        at = 0
        while at < end:
            if self._handing:
                take = min(self._handing, end - at)
                self._handing -= take
                super().data_received(buffer[at : at + take])
                at += take
                if not self._handing and (self.close_sent or self.conn.state is not State.OPEN):
                    self._mode = _SLOW  # closing or failed: the inherited parser keeps the rest
                    # what follows goes to the parser unless the connection is hanging up (no more reads then)
                    if at < end and self.conn.parser_exc is None and not self.transport.is_closing():
                        super().data_received(buffer[at:])
                    self._inbox = b""
                    return
                continue
            if end - at < 2:
                break
            first, second = buffer[at], buffer[at + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                head = 4
                if end - at < head:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 4], "big")
            elif length == 127:
                head = 10
                if end - at < head:
                    break
                length = int.from_bytes(buffer[at + 2 : at + 10], "big")
            masked = second & 0x80
            if masked:
                head += 4
            if first == _TEXT_FIN and masked and length <= self._limit and self.conn.current_size is None:
                if end - at < head + length:
                    break  # the rest of this frame is still on its way
                payload = apply_mask(buffer[at + head : at + head + length], buffer[at + head - 4 : at + head])
                try:
                    text = payload.decode()
                except UnicodeDecodeError:  # the inherited path answers it (close 1007)
                    self._handing = head + length
                    continue
                at += head + length
                if self.close_sent:  # past the app's close: discarded, as uvicorn does
                    continue
                if self._take is not None and self.queue.empty() and self._take(text):
                    continue
                self.queue.put_nowait({"type": "websocket.receive", "text": text})
                if not self.read_paused:
                    self.read_paused = True
                    self.transport.pause_reading()
                continue
            self._handing = head + length  # from its first byte: the inherited parser reads the header itself
        self._inbox = buffer[at:]

    async def send(self, message: Any) -> None:
        """An app's text or bytes message on an open connection is one FIN frame; anything else as uvicorn."""
        if message["type"] != "websocket.send" or not self._direct_open():
            await super().send(message)
            return
        text, data = message.get("text"), message.get("bytes")
        if data is not None:
            opcode = 0x82
        elif text is not None:
            opcode, data = 0x81, text.encode()
        else:
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        self._write(opcode, data)
