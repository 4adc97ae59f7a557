"""exos.websocket.WebSocketProtocol against uvicorn's own sans-I/O protocol: the same frames in, split anywhere,
must give the app the same messages and put the same bytes on the wire (replies, pongs, close frames).

uvicorn's protocol is fed one whole frame per read: fed more, it drops the messages that share a read with a
protocol error, which depends on how TCP split the stream; exos's protocol judges each frame on its own."""

from __future__ import annotations

import asyncio
import base64
import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from exos.websocket import DIRECT, WebSocketProtocol

EXAMPLES = max(settings().max_examples // 5, 20)  # 100 in the ci profile, 4,000 in the long one
MAX_SIZE = 100_000  # smaller than some frames below: the size limit is part of what must agree
KEY = base64.b64encode(b"exos-websocket-k").decode()
UPGRADE = (f"GET /v1/ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()  # fmt: skip


class Transport:
    """What uvicorn's protocols write and whether they paused reading (a paused transport delivers nothing)."""

    def __init__(self) -> None:
        """Nothing written, reading on."""
        self.written: list[bytes] = []
        self.paused = False
        self.closed = False

    def write(self, data: bytes) -> None:
        """Keep what goes on the wire."""
        self.written.append(bytes(data))

    def pause_reading(self) -> None:
        """The protocol waits for the app."""
        self.paused = True

    def resume_reading(self) -> None:
        """The app took what was queued."""
        self.paused = False

    def close(self) -> None:
        """The protocol hung up."""
        self.closed = True

    def is_closing(self) -> bool:
        """Whether the protocol hung up."""
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """A loopback peer; no TLS."""
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """One client frame as a client writes it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((first, mask_bit | size))
    elif size < 65536:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = bytes((size * 7 + i * 77 + 1) & 0xFF for i in range(4))  # fixed per size: hypothesis replays exactly
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def serve(
    protocol_class: type[WebSocketsSansIOProtocol], chunks: list[bytes], *, echo: bool = True, divert: str = ""
) -> tuple[list[Any], bytes, bool, int]:
    """Feed `chunks` (after the upgrade) to a protocol over an app that echoes (or only listens): (the app's
    messages, the bytes written after the handshake, whether the protocol hung up, messages left queued).

    With `divert`, the app takes the text messages that start with it from the direct channel and echoes them
    there (what the channel cannot write now, it declines: the app echoes it the ASGI way)."""
    received: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if divert:
            direct = scope["extensions"][DIRECT]
            direct.divert(lambda text: text.startswith(divert) and direct.send_now(b"echo " + text.encode()))
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return
            if not echo:
                continue
            if "text" in message and message["text"] == "close please":
                await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            elif "text" in message:
                await send({"type": "websocket.send", "text": "echo " + message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": b"echo " + message["bytes"]})

    loop = asyncio.new_event_loop()
    try:
        config = Config(app, ws_max_size=MAX_SIZE, ws_ping_interval=None, ws_per_message_deflate=False)
        config.load()
        protocol = protocol_class(config, ServerState(), {}, _loop=loop)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]

        def settle() -> None:
            for _ in range(20):
                loop.run_until_complete(asyncio.sleep(0))

        protocol.data_received(UPGRADE)
        settle()
        handshake = len(transport.written)
        for chunk in chunks:
            if transport.closed:
                break
            assert not transport.paused, "the app did not take what was queued"
            protocol.data_received(chunk)
            settle()
        settle()
        queued = protocol.queue.qsize()  # nothing piles up unread (after a close, messages are dropped)
        if not transport.closed:
            protocol.connection_lost(None)
        settle()
        for task in asyncio.all_tasks(loop):
            task.cancel()
        settle()
        return received, b"".join(transport.written[handshake:]), transport.closed, queued
    finally:
        loop.close()


# lengths at each header form's bounds, in and out (with "echo " the answers cross them too)
texts = st.text(max_size=300) | st.sampled_from(
    ["x" * 120, "x" * 125, "y" * 126, "u" * 1_000, "t" * 65_530, "z" * 65_535, "w" * 65_536, "v" * 100_001]
)
frames = st.one_of(
    texts.map(lambda text: frame(1, text.encode())),
    st.binary(max_size=200).map(lambda data: frame(2, data)),
    st.sampled_from([b"\xff\xfe", b"abc\xc3", b"\xed\xa0\x80"]).map(lambda bad: frame(1, bad)),  # not UTF-8
    st.binary(max_size=125).map(lambda data: frame(9, data)),  # ping: a pong goes back
    st.binary(max_size=125).map(lambda data: frame(10, data)),  # unsolicited pong
    st.just(frame(8, struct.pack("!H", 1000) + b"bye")),
    st.just(frame(1, b"close please")),  # the app closes
    texts.map(lambda text: frame(1, text.encode(), fin=False) + frame(0, b"-more", fin=False) + frame(0, b"-end")),
    st.just(frame(0, b"stray continuation")),
    st.just(frame(1, b"unfinished", fin=False)),  # a fragmented message left open: a text frame next is an error
    st.just(frame(1, b"unmasked", masked=False)),
    st.just(frame(1, b"reserved bit", rsv=2)),
    st.just(frame(3, b"unknown opcode")),
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(frames, min_size=1, max_size=8))
def test_the_fast_protocol_answers_as_uvicorns(sent: list[bytes]) -> None:
    """Frame by frame, to an app that answers each message (and closes when asked): the same messages, the
    same bytes back (its answers, pongs, close frames), the same hang-ups."""
    frames = [piece for each in sent for piece in _split_frames(each)]
    assert serve(WebSocketProtocol, frames) == serve(WebSocketsSansIOProtocol, frames)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(frames, min_size=1, max_size=8), st.lists(st.integers(0, 2_000), max_size=6))
def test_the_fast_protocol_reads_a_stream_cut_anywhere(sent: list[bytes], cuts: list[int]) -> None:
    """The same frames cut at any points (an app that only listens, so nothing depends on when it runs): what
    uvicorn's protocol makes of them one frame per read."""
    frames = [piece for each in sent for piece in _split_frames(each)]
    stream = b"".join(frames)
    points = sorted({min(cut * 37, len(stream)) for cut in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points) if b > a]
    assert serve(WebSocketProtocol, chunks, echo=False) == serve(WebSocketsSansIOProtocol, frames, echo=False)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(frames | st.builds(lambda text: frame(1, ("t" + text).encode()), texts), min_size=1, max_size=8))
def test_the_direct_channel_takes_what_the_app_takes_and_writes_as_send_does(sent: list[bytes]) -> None:
    """An app that takes some texts from the direct channel (those starting with "t") and answers them with
    `send_now`: the same bytes on the wire as uvicorn's protocol answering everything, and the app's queue gets
    the rest in order (a fragmented message is never offered: the queue has it)."""
    frames = [piece for each in sent for piece in _split_frames(each)]
    ours = serve(WebSocketProtocol, frames, divert="t")
    theirs = serve(WebSocketsSansIOProtocol, frames)
    assert ours[1:] == theirs[1:]
    queued = iter(ours[0])
    pending = next(queued, None)
    for message in theirs[0]:
        if message == pending:
            pending = next(queued, None)
        else:
            assert message.get("text", "").startswith("t"), message  # only a "t" message may have been taken
    assert pending is None  # and the queue got nothing else


@pytest.mark.parametrize("size", [0, 120, 121, 122, 1_000, 65_530, 65_531])
def test_answers_at_each_length_form(size: int) -> None:
    """Answers of 5 to 65,536 bytes ("echo " + the message): each length form and its bounds, as uvicorn writes."""
    frames = [frame(1, b"s" * size)]
    assert serve(WebSocketProtocol, frames) == serve(WebSocketsSansIOProtocol, frames)


def _split_frames(data: bytes) -> list[bytes]:
    """The frames `frame` concatenated (a fragmented message is several)."""
    out = []
    while data:
        size, head = data[1] & 0x7F, 2
        if size == 126:
            size, head = struct.unpack("!H", data[2:4])[0], 4
        elif size == 127:
            size, head = struct.unpack("!Q", data[2:10])[0], 10
        head += 4 if data[1] & 0x80 else 0
        out.append(data[: head + size])
        data = data[head + size :]
    return out


def test_whole_text_frames_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common frames never reach the inherited parser (else this module would save nothing)."""
    parsed: list[bytes] = []

    original = WebSocketsSansIOProtocol.data_received

    def counting(self: WebSocketsSansIOProtocol, data: bytes) -> None:
        parsed.append(data)
        original(self, data)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "data_received", counting)
    long = frame(1, ("\u00e9" * 300).encode())  # cut in two reads: the fast path waits for the rest
    chunks = [frame(1, b"one") + frame(1, b"two") + long[:100], long[100:]]
    received, wire, _, _ = serve(WebSocketProtocol, chunks)
    assert parsed == [UPGRADE]
    assert [m.get("text") for m in received[:3]] == ["one", "two", "\u00e9" * 300]
    assert wire.startswith(b"\x81\x08echo one\x81\x08echo two")


def test_the_direct_channel_answers_what_it_takes_without_the_app() -> None:
    """Taken messages never reach the app's queue; their answers go out at once, in order with the app's."""
    received, wire, _, queued = serve(WebSocketProtocol, [frame(1, b"take me") + frame(1, b"queue me")], divert="t")
    assert [m.get("text") for m in received] == ["queue me", None]  # then the disconnect
    assert wire == b"\x81\x0cecho take me\x81\x0decho queue me" and queued == 0
