"""The venue's API (FastAPI on uvicorn): REST and WebSocket over a backend that sequences commands.

Every verifier process runs this app on the shared listening socket: it parses requests, recovers
signers (`exos.signing`, refusing malleable forms) and forwards verified records to the sequencer
(`exos.sequencer`), which answers once the group holding them is journaled: "accepted" means durable.
The engine decides whether the recovered signer may act for the record's address (the account
itself or an agent it approved) and whether the nonce is fresh.

REST (numbers are decimal strings; bodies at most 64 KiB; strict request models; every error is one
envelope `{"error": {"code", "message"}}`):

    GET  /v1/info                                  signing domain
    GET  /v1/markets                               markets, parameters, status
    GET  /v1/markets/{m}/book?levels&outcome       L2 book with its sequence
    GET  /v1/markets/{m}/trades?limit              recent trades
    GET  /v1/markets/{m}/orders/{id}               an order's status (open, delayed, filled, cancelled)
    GET  /v1/markets/{m}/orders?address&sub&client_id   the same by client id (private)
    GET  /v1/accounts/{a}?sub                      balances and open orders (private)
    GET  /v1/accounts/{a}/fills?sub&limit          recent fills (private)
    POST /v1/actions                               one signed command (place, cancel, amend, cancel-all, ...)
    POST /v1/actions/batch                         up to 100 separately signed commands, a result each
    POST /v1/actions/signed-batch                  up to 100 trading commands under one signature
    POST /v1/faucet                                demo funds, only if the manifest enables a faucet

Private reads (an account's own data, and the history store's per-account tables) carry a signature
in headers `X-Exos-Address`, `X-Exos-Timestamp`, `X-Exos-Signature` (`exos.auth`): 401 without a
good one, 403 for another account's data.

WebSocket `/v1/ws` (JSON text frames): `{"op": "subscribe", "channel": "book" | "trades", "market": m}`,
`{"op": "login", "address": a, "timestamp": t, "signature": s}` then `{"op": "subscribe", "channel":
"user", "address": a}` (`logout` ends it), `unsubscribe` alike; and the order channel:
`{"op": "post", "id": i, "action": {record, signature}}`, `{"op": "batch", "id": i, "actions": [...]}`,
`{"op": "signed_batch", "id": i, "records": [...], "signature": s}`, answered by `{"channel": "post",
"id": i, ...}` with the REST body. Book messages are described in `exos.feed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import marshal
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from exos.auth import WINDOW_MS, Authenticator, may_read
from exos.engine import Engine
from exos.feed import ANSWERS_MAX, Feed, Subscriber
from exos.gateway import ActionRoutes, Answer, Gateway, Submitted, model_route
from exos.history_routes import HistoryReader, add_routes
from exos.ratelimit import Buckets, Limits
from exos.sequencer import QueryError, Sequencer, address_param, bounded
from exos.signing import Domain
from exos.websocket import DIRECT, WebSocketProtocol
from exos.wire import FrameReader, frame

MAX_BODY = 64 * 1024
MAX_BATCH = 100
HISTORY_FILE = "history.sqlite3"  # beside the journal's segments
WEB = Path(__file__).parent / "web"
MAX_IN_FLIGHT = 256  # unanswered order-channel requests per WebSocket
# permessage-deflate off: compressing every answer and event cost the verifier ~10% of its CPU per order (py-spy),
# straight into latency; messages are small and mostly unique per client, so little bandwidth is saved
WS_DEFLATE = False
# the WebSocket layer closes a connection (1009) on a message past this; under it, one past MAX_BODY gets the envelope
WS_MAX_MESSAGE = 1 << 20
ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class Error(BaseModel):
    """The one error envelope's body."""

    code: str
    message: str


class ErrorEnvelope(BaseModel):
    """Every non-2xx response."""

    error: Error


class SignedAction(BaseModel):
    """A canonical command record (hex; its timestamp and signer are ignored) and its signature (hex)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    record: str = Field(pattern=r"^0x([0-9a-fA-F]{2}){182,4096}$")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class SignedBatch(BaseModel):
    """Up to MAX_BATCH signed actions, applied in order under one journal commit."""

    model_config = ConfigDict(strict=True, extra="forbid")
    actions: list[SignedAction] = Field(min_length=1, max_length=MAX_BATCH)


class OneSignatureBatch(BaseModel):
    """Up to MAX_BATCH trading records under one signature (connectionId = keccak of the unsigned records)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    records: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")


class FaucetRequest(BaseModel):
    """Ask the faucet for the manifest's amounts."""

    model_config = ConfigDict(strict=True, extra="forbid")
    address: str = Field(pattern=ADDRESS)
    sub: int = Field(default=0, ge=0, le=65535)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope},
    404: {"model": ErrorEnvelope},
    413: {"model": ErrorEnvelope},
    422: {"model": ErrorEnvelope},
    429: {"model": ErrorEnvelope, "description": "More requests from this IP than its limit allows: RATE_LIMITED"},
}
GONE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorEnvelope, "description": "The sequencer went away (the venue is stopping): UNAVAILABLE"}
}
PRIVATE: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorEnvelope, "description": "Not signed, or not signed by the account or an agent of it: "
          "NOT_AUTHENTICATED, BAD_TIMESTAMP, BAD_SIGNATURE, NOT_AUTHORISED"},
    403: {"model": ErrorEnvelope, "description": "Signed for another account: FORBIDDEN"},
}  # fmt: skip
HEADER_DOCS = (
    "Private reads: the account the request is signed for (0x and 40 hex digits)",
    f"Private reads: the signer's clock in ms since the epoch, within {WINDOW_MS // 1000} s of the server's",
    "Private reads: 0x and 65 bytes (r, s, v) of the EIP-712 Request signature",
)
DESCRIPTION = f"""Private reads (marked so) are signed: EIP-712 typed data under the domain of `GET /v1/info`,
`Request(address account,string method,string path,uint64 timestamp)` with the method in capitals and the path
as sent (percent-encoded path, then `?` and the query string if there is one), signed by the account's key
or an approved agent's, in headers `X-Exos-Address` (the account), `X-Exos-Timestamp` (ms; within
{WINDOW_MS // 1000} s of the server's clock) and `X-Exos-Signature` (0x, r, s, v). The WebSocket's user
channel needs `{{"op": "login", "address", "timestamp", "signature"}}` over `Login(address account,uint64
timestamp)` first."""


def _error(status: int, code: str, message: str) -> JSONResponse:
    """The error envelope."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class VenueApp(FastAPI):
    """The venue's FastAPI app, its signed-action routes answered ahead of the whole middleware stack.

    `actions` takes only JSON POSTs of declared length within MAX_BODY (the stack's own bounds) and hands what
    its models refuse back to the stack, so the framework still answers every refusal and the OpenAPI spec still
    describes the routes; reads, the WebSocket and everything else go through the stack as usual. A host app's
    own middleware (`add_middleware`) therefore does not see the signed actions: wrap the app in it instead, or
    set `actions` to None to send them through the stack too."""

    actions: ActionRoutes | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Every request to `actions`, which takes the signed actions and passes the rest to FastAPI; without
        `actions`, FastAPI."""
        if self.actions is not None:
            await self.actions(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class BoundedBody:
    """Refuse a request whose declared body exceeds MAX_BODY before reading it (plain ASGI: no per-request task)."""

    def __init__(self, app: Any) -> None:
        """Wrap `app`."""
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer 413 for an oversized body, declared or (chunked) as it arrives; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > MAX_BODY):
                response = _error(413, "BODY_TOO_LARGE", f"request bodies are at most {MAX_BODY} bytes")
                await response(scope, receive, send)
                return
        seen = 0

        async def bounded() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:  # FastAPI passes an HTTPException through its body parsing: the envelope's 413
                raise StarletteHTTPException(413, f"request bodies are at most {MAX_BODY} bytes")
            return message

        await self.app(scope, bounded, send)


class ReadLimit:
    """Spend a read token of the sender's IP per GET before any signature is recovered (plain ASGI); 429 if none."""

    def __init__(self, app: Any, reads: Buckets) -> None:
        """Wrap `app`; `reads` are this process's read buckets."""
        self.app = app
        self.reads = reads

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer 429 RATE_LIMITED to a read over the sender's limit; pass everything else through."""
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            client = scope.get("client")
            if not self.reads.take(client[0] if client else None):
                response = _error(429, "RATE_LIMITED", _read_limited(self.reads))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _read_limited(reads: Buckets) -> str:
    """The message of a refused read."""
    return f"more than {reads.rate:g} reads/s from this IP (reads, logins and subscriptions count)"


# ------------------------------------------------------------------ backends


_PENDING: set[asyncio.Future[Any]] = set()  # tasks the server starts and nothing awaits (the loop holds weak refs)


class LocalBackend:
    """The sequencer in this process (tests, `--verifiers 0`): one request at a time under a lock."""

    def __init__(self, sequencer: Sequencer) -> None:
        """Serve `sequencer`; the feed starts from its books."""
        self.sequencer = sequencer
        self.lock = asyncio.Lock()
        self.feed = Feed()
        self.feed.load(sequencer.q_books())
        self.domain = Domain.from_info(sequencer.q_info())
        self.limits = sequencer.limits

    async def submit(self, ip: str | None, records: list[bytes]) -> list[Answer]:
        """Apply one request's records (one group commit); per record its events or an error."""
        async with self.lock:
            events, [answer] = self.sequencer.submit([(ip, records)])
            self.feed.publish(events)
        return [events[int(a) : int(b)] if isinstance(a, int) else (str(a), str(b)) for a, b in answer]

    def submit_then(self, ip: str | None, records: list[bytes], then: Callable[[Submitted], None]) -> None:
        """As `submit`, the answers passed to `then` (from a task: the lock may be held)."""
        task = asyncio.ensure_future(self.submit(ip, records))
        _PENDING.add(task)
        task.add_done_callback(functools.partial(_then, then))

    async def query(self, name: str, **args: Any) -> Any:
        """A read (QueryError if it cannot be answered)."""
        async with self.lock:
            return self.sequencer.query(name, args)

    def clock(self) -> int:
        """The server's time (ms): the sequencer's clock."""
        return self.sequencer.clock()

    async def faucet(self, address: bytes, sub: int) -> dict[str, str]:
        """Credit the faucet's amounts."""
        async with self.lock:
            events, credited = self.sequencer.faucet(address, sub)
            self.feed.publish(events)
        return credited

    async def timers(self) -> None:
        """Fire engine timers as the clock reaches them (kickoffs, expiries), forever."""
        while True:
            await asyncio.sleep(0.1)
            async with self.lock:
                if self.sequencer.due():
                    self.feed.publish(self.sequencer.tick())


def _then(then: Callable[[Submitted], None], task: asyncio.Future[list[Answer]]) -> None:
    """Pass a finished submission's answers on (its exception, if any, goes to the loop's handler)."""
    _PENDING.discard(task)
    then(task.result())


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    """Resolve a waiting request's future with its answer, or fail it with the ConnectionError that ended it."""
    if future.done():
        return
    if isinstance(value, ConnectionError):
        future.set_exception(value)
    else:
        future.set_result(value)


class RemoteBackend:
    """The sequencer in its own process, over a Unix socket (`exos.wire` frames)."""

    def __init__(self, sock: socket.socket, domain: Domain, feed: Feed, limits: Limits, pending: bytes = b"") -> None:
        """Talk over `sock` (already past the handshake; `pending`: bytes it read past the handshake's answers)."""
        self.sock = sock
        self.pending = pending
        self.domain = domain
        self.limits = limits
        self.feed = feed
        self.ids = itertools.count(1)
        self.waiting: dict[int, Callable[[Any], None]] = {}  # request id -> what takes its answer
        self.transport: asyncio.Transport | None = None  # the socket, once the loop serves it
        self.outbox: list[tuple[int, str | None, list[bytes]]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def connect(cls, sock: socket.socket) -> RemoteBackend:
        """Fetch the signing domain, every book and the rate limits (blocking, before serving anything)."""
        sock.setblocking(True)
        handshake = ("info", "books", "limits")
        sock.sendall(b"".join(frame(marshal.dumps(("q", i, name, {}))) for i, name in enumerate(handshake)))
        reader, answers = FrameReader(), dict[int, Any]()
        while len(answers) < len(handshake):
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the sequencer went away during the handshake")
            for message in reader.feed(data):
                decoded = marshal.loads(message)
                if decoded[0] == "q":
                    answers[decoded[1]] = decoded[3]
                # groups before the books answer are already in it
        feed = Feed()
        feed.load(answers[1])
        return cls(sock, Domain.from_info(answers[0]), feed, Limits(**answers[2]), bytes(reader.buffer))

    async def run(self) -> None:
        """Take the sequencer's frames (group events for the feed and the answers, read answers) until it goes."""
        loop = self._loop()
        closed: asyncio.Future[None] = loop.create_future()
        await loop.create_unix_connection(lambda: _SequencerLink(self, closed), sock=self.sock)
        await closed
        waiting, self.waiting = self.waiting, {}
        for then in waiting.values():
            then(ConnectionError("the sequencer went away"))
        os.kill(os.getpid(), signal.SIGTERM)  # without a sequencer this verifier has nothing to serve

    def _dispatch(self, message: bytes) -> None:
        """One frame from the sequencer."""
        decoded = marshal.loads(message)
        if decoded[0] == "g":
            events = marshal.loads(decoded[1])
            self.feed.publish(events)
            for request_id, answer in decoded[2]:
                then = self.waiting.pop(request_id, None)
                if then is not None:
                    then([events[a:b] if isinstance(a, int) else (a, b) for a, b in answer])
        else:
            then = self.waiting.pop(decoded[1], None)
            if then is not None:
                then((decoded[2], decoded[3]))

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The event loop serving this process, asked once: each `asyncio.get_running_loop()` is a getpid system
        call in CPython 3.11, which a VM makes dear on a path every order takes."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        return self.loop

    def _write(self, message: tuple[Any, ...]) -> None:
        """Send one frame to the sequencer."""
        assert self.transport is not None
        self.transport.write(frame(marshal.dumps(message)))

    def _expect(self, request_id: int) -> asyncio.Future[Any]:
        """The future the answer to `request_id` resolves."""
        if self.transport is None:
            raise ConnectionError("not connected to the sequencer")
        future: asyncio.Future[Any] = self._loop().create_future()
        self.waiting[request_id] = functools.partial(_resolve, future)
        return future

    async def _ask(self, kind: str, *args: Any) -> Any:
        """Send a read or a faucet request and wait for its payload (QueryError if refused)."""
        request_id = next(self.ids)
        future = self._expect(request_id)
        self._write((kind, request_id, *args))
        status, payload = await future
        if status != 200:
            raise QueryError(status, payload["code"], payload["message"])
        return payload

    async def submit(self, ip: str | None, records: list[bytes]) -> list[Answer]:
        """Have the sequencer apply one request's records; per record its events or an error."""
        future: asyncio.Future[list[Answer]] = self._loop().create_future()
        self.submit_then(ip, records, functools.partial(_resolve, future))
        return list(await future)

    def submit_then(self, ip: str | None, records: list[bytes], then: Callable[[Submitted], None]) -> None:
        """As `submit`, the answers (or the ConnectionError) passed to `then`, called from the loop.

        Requests that arrive in the same turn of the event loop travel in one frame (fewer system calls
        on both sides, and larger group commits)."""
        if self.transport is None:
            then(ConnectionError("not connected to the sequencer"))
            return
        request_id = next(self.ids)
        self.waiting[request_id] = then
        if not self.outbox:
            self._loop().call_soon(self._flush)
        self.outbox.append((request_id, ip, records))

    def _flush(self) -> None:
        """Send the submits gathered in this turn of the event loop as one frame."""
        outbox, self.outbox = self.outbox, []
        if outbox and self.transport is not None:
            self._write(("S", outbox))

    async def query(self, name: str, **args: Any) -> Any:
        """A read answered by the sequencer (QueryError if it cannot be answered)."""
        return await self._ask("q", name, args)

    def clock(self) -> int:
        """The server's time (ms): the wall clock, as the sequencer process keeps it."""
        return time.time_ns() // 1_000_000

    async def faucet(self, address: bytes, sub: int) -> dict[str, str]:
        """Credit the faucet's amounts."""
        return dict(await self._ask("f", address, sub))

    async def timers(self) -> None:
        """The sequencer process fires timers itself."""


class _SequencerLink(asyncio.Protocol):
    """A verifier's end of the sequencer's socket: each frame dispatched as it completes (no stream, no task)."""

    def __init__(self, backend: RemoteBackend, closed: asyncio.Future[None]) -> None:
        """Feed `backend`; resolve `closed` when the sequencer goes."""
        self.backend = backend
        self.frames = FrameReader()
        self.closed = closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Say ready (the listening socket queues connections already), then take what the handshake read past."""
        self.backend.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass asyncio's
        self.backend._write(("r",))
        self.data_received(self.backend.pending)

    def data_received(self, data: bytes) -> None:
        """Dispatch every frame now complete."""
        dispatch = self.backend._dispatch
        for message in self.frames.feed(data):
            dispatch(message)

    def connection_lost(self, exc: Exception | None) -> None:
        """The sequencer has gone."""
        if not self.closed.done():
            self.closed.set_result(None)


Backend = LocalBackend | RemoteBackend


# ------------------------------------------------------------------ the app


def create_app(
    target: Engine | Backend,
    *,
    clock: Callable[[], int] | None = None,
    limits: Limits | None = None,
    history: str | Path | None = None,
) -> VenueApp:
    """The venue's API over an engine in this process, or over a backend (a sequencer elsewhere); `history`: the
    history store's file (its projector runs elsewhere)."""
    backend = LocalBackend(Sequencer(target, clock=clock, limits=limits)) if isinstance(target, Engine) else target
    gateway = Gateway(backend)
    feed = backend.feed
    auth = Authenticator(backend, backend.clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        tasks = [asyncio.ensure_future(backend.timers())]
        if isinstance(backend, RemoteBackend):
            tasks.append(asyncio.ensure_future(backend.run()))
        yield
        for task in tasks:
            task.cancel()

    # FastAPI's OpenTelemetry hooks cost tens of µs per request even with nothing configured; exos has its own logs
    quiet: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = VenueApp(title="exos venue", version="1", description=DESCRIPTION, lifespan=lifespan, telemetry=quiet)
    app.state.backend = backend

    # the three signed-action routes, applied alike by their FastAPI endpoints and by the plain-ASGI fast path
    async def apply_action(body: SignedAction, ip: str | None) -> tuple[int, Any]:
        return await gateway.one(ip, body.record, body.signature)

    async def apply_batch(body: SignedBatch, ip: str | None) -> tuple[int, Any]:
        return await gateway.many(ip, [(a.record, a.signature) for a in body.actions])

    async def apply_signed_batch(body: OneSignatureBatch, ip: str | None) -> tuple[int, Any]:
        return await gateway.signed_batch(ip, body.records, body.signature)

    app.actions = ActionRoutes(functools.partial(FastAPI.__call__, app),
                               {"/v1/actions": model_route(SignedAction, apply_action),
                                "/v1/actions/batch": model_route(SignedBatch, apply_batch),
                                "/v1/actions/signed-batch": model_route(OneSignatureBatch, apply_signed_batch)},
                               MAX_BODY)  # fmt: skip
    app.add_middleware(BoundedBody)
    reads = Buckets(backend.limits.read_rate, backend.limits.read_burst)
    app.add_middleware(ReadLimit, reads=reads)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE"}.get(
            exc.status_code, "HTTP_ERROR"
        )
        response = _error(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():  # e.g. the Allow header of a 405
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "BAD_REQUEST", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    def ip_of(request: Request | WebSocket) -> str | None:
        return request.client.host if request.client else None

    async def reader(
        request: Request,
        x_exos_address: Annotated[str | None, Header(description=HEADER_DOCS[0])] = None,
        x_exos_timestamp: Annotated[str | None, Header(description=HEADER_DOCS[1])] = None,
        x_exos_signature: Annotated[str | None, Header(description=HEADER_DOCS[2])] = None,
    ) -> bytes:
        """The account a private read is signed for (QueryError 401 if it is not signed by it or its agent)."""
        return await auth.request(request.method, _target(request), x_exos_address, x_exos_timestamp,
                                  x_exos_signature)  # fmt: skip

    async def reader_if_named(
        request: Request,
        x_exos_address: Annotated[str | None, Header(description=HEADER_DOCS[0])] = None,
        x_exos_timestamp: Annotated[str | None, Header(description=HEADER_DOCS[1])] = None,
        x_exos_signature: Annotated[str | None, Header(description=HEADER_DOCS[2])] = None,
    ) -> bytes | None:
        """As `reader` when the query names an account (`address`); None (nothing private asked) otherwise."""
        if "address" not in request.query_params:
            return None
        return await auth.request(request.method, _target(request), x_exos_address, x_exos_timestamp,
                                  x_exos_signature)  # fmt: skip

    @app.get("/v1/info", responses=ERRORS)
    async def info() -> Any:
        """The venue's EIP-712 signing domain (what clients sign under)."""
        return await backend.query("info")

    @app.get("/v1/markets", responses=ERRORS)
    async def markets() -> Any:
        """Every market with its listing (tick, lot and parameters as strings) and status."""
        return await backend.query("markets")

    @app.get("/v1/markets/{market}/book", responses=ERRORS)
    async def book(market: str, levels: int = 10, outcome: int = 0) -> Any:
        """L2 depth (ticks and lots as strings, best first) with the book's sequence number."""
        bounded("levels", levels, 1, 1000)
        bounded("outcome", outcome, 0, 255)
        return await backend.query("book", market=market, levels=levels, outcome=outcome)

    @app.get("/v1/oracles", responses=ERRORS)
    async def oracles() -> Any:
        """Every oracle feed with its aggregate price (null while stale or never published) and its sources."""
        return await backend.query("oracles")

    @app.get("/v1/markets/{market}/trades", responses=ERRORS)
    async def trades(market: str, limit: int = 100) -> Any:
        """The market's recent trades, newest first (price and side in the taker's outcome terms)."""
        return await backend.query("trades", market=market, limit=bounded("limit", limit, 1, 500))

    @app.get("/v1/markets/{market}/orders/{order_id}", responses=ERRORS)
    async def order(market: str, order_id: int) -> Any:
        """One order's status: open (with what is filled), delayed, filled, cancelled or expired."""
        return await backend.query("order", market=market, order_id=bounded("order_id", order_id, 0, 2**64 - 1))

    @app.get("/v1/markets/{market}/orders", responses=PRIVATE)
    async def order_by_client_id(market: str, address: str, client_id: str, sub: int = 0,
                                 signed: bytes = Depends(reader)) -> Any:  # fmt: skip
        """Private: one order's status by the account's client id (0x and 16 bytes of hex)."""
        if len(client_id) != 34 or not client_id.startswith("0x"):
            raise QueryError(422, "BAD_REQUEST", "client_id: 0x and 16 bytes of hex")
        try:
            raw = bytes.fromhex(client_id[2:])
        except ValueError:
            raise QueryError(422, "BAD_REQUEST", "client_id: 0x and 16 bytes of hex") from None
        may_read(signed, owner := address_param(address))
        return await backend.query("order", market=market, address=owner, sub=bounded("sub", sub, 0, 65535),
                                   client_id=raw)  # fmt: skip

    @app.get("/v1/accounts/{address}", responses=PRIVATE)
    async def account(address: str, sub: int = 0, signed: bytes = Depends(reader)) -> Any:
        """Private: balances (available and locked, smallest units as strings) and open orders of one sub-account."""
        may_read(signed, owner := address_param(address))
        return await backend.query("account", address=owner, sub=bounded("sub", sub, 0, 65535))

    @app.get("/v1/accounts/{address}/fills", responses=PRIVATE)
    async def fills(address: str, sub: int = 0, limit: int = 100, signed: bytes = Depends(reader)) -> Any:
        """Private: the account's recent fills, newest first."""
        may_read(signed, owner := address_param(address))
        return await backend.query("fills", address=owner, sub=bounded("sub", sub, 0, 65535),
                                   limit=bounded("limit", limit, 1, 1000))  # fmt: skip

    @app.post("/v1/actions", responses={**ERRORS, 429: {"model": ErrorEnvelope}, **GONE})
    async def action(body: SignedAction, request: Request) -> Any:
        """Verify a signed command and apply it; its events once journaled (accepted means durable)."""
        status, answer = await apply_action(body, ip_of(request))
        return JSONResponse(answer, status_code=status)  # a Response skips FastAPI's re-encoding of the body

    @app.post("/v1/actions/batch", responses={**ERRORS, **GONE})
    async def batch(body: SignedBatch, request: Request) -> Any:
        """Verify each action, apply the valid ones in order under one journal commit; a result per item."""
        status, answer = await apply_batch(body, ip_of(request))
        return JSONResponse(answer, status_code=status)

    @app.post("/v1/actions/signed-batch", responses={**ERRORS, **GONE})
    async def signed_batch(body: OneSignatureBatch, request: Request) -> Any:
        """Trading commands under one signature, applied in order under one commit; a result per record."""
        status, answer = await apply_signed_batch(body, ip_of(request))
        return JSONResponse(answer, status_code=status)

    @app.post("/v1/faucet", responses=ERRORS)
    async def faucet(body: FaucetRequest) -> Any:
        """Credit the manifest's faucet amounts (404 unless the manifest enables a faucet)."""
        return {"credited": await backend.faucet(bytes.fromhex(body.address[2:]), body.sub)}

    add_routes(app, HistoryReader(history), {**ERRORS, 503: {"model": ErrorEnvelope}}, reader, reader_if_named,
               {**PRIVATE, 503: {"model": ErrorEnvelope}})  # fmt: skip
    app.mount("/web", StaticFiles(directory=WEB), name="web")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The trader's page (static files, no build step: `exos/web`)."""
        return FileResponse(WEB / "index.html")

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        """Market data (book, trades), the user channel, and the order channel on one connection."""
        await ws.accept()
        subscriber = Subscriber()
        subscriber.loop = asyncio.get_running_loop()
        sender = asyncio.ensure_future(_send_loop(ws, subscriber, feed))
        direct: WebSocketProtocol | None = ws.scope.get("extensions", {}).get(DIRECT)
        connection = _Connection(subscriber, gateway, ip_of(ws))
        if direct is not None:  # served by exos's protocol: lone orders and every message out skip the tasks
            subscriber.direct = functools.partial(_send_json, direct)
            direct.divert(connection.take)
        try:
            while True:
                connection.idle = True
                text = await ws.receive_text()
                connection.idle = False
                if len(subscriber.answers) > ANSWERS_MAX:
                    await ws.close(code=1008, reason=f"more than {ANSWERS_MAX} replies unread")
                    break
                if len(text) > MAX_BODY:
                    subscriber.answer(_ws_error(None, "BODY_TOO_LARGE", f"messages are at most {MAX_BODY} bytes"))
                    continue
                await _ws_message(text, subscriber, feed, gateway, auth, ip_of(ws), reads)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            connection.idle = False
            if direct is not None:
                direct.divert(None)
            subscriber.direct = None
            feed.close(subscriber)
            sender.cancel()

    return app


def _target(request: Request) -> str:
    """The request target as the client sent it: the raw (percent-encoded) path, then `?` and the query if any."""
    # ASGI's raw_path excludes the query, but some servers (httpx's test transport) leave it in: split it off
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string", b"")
    target: bytes = raw.split(b"?", 1)[0] + (b"?" + query if query else b"")
    return target.decode("latin-1")


def _ws_error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    """An error on the WebSocket."""
    return {"channel": "error", "id": request_id, "error": {"code": code, "message": message}}


class _Subscribe(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    op: str = Field(pattern="^(subscribe|unsubscribe)$")
    channel: str = Field(pattern="^(book|trades|user)$")
    market: str | None = None
    address: str | None = Field(default=None, pattern=ADDRESS)
    id: str | int | None = None


class _Login(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    op: str = Field(pattern="^login$")
    address: str = Field(pattern=ADDRESS)
    timestamp: int = Field(ge=0, lt=2**64)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")
    id: str | int | None = None


class _Logout(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    op: str = Field(pattern="^logout$")
    address: str = Field(pattern=ADDRESS)
    id: str | int | None = None


class _Post(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    op: str = Field(pattern="^post$")
    id: str | int
    action: SignedAction


class _Batch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    op: str = Field(pattern="^batch$")
    id: str | int
    actions: list[SignedAction] = Field(min_length=1, max_length=MAX_BATCH)


class _SignedBatch(OneSignatureBatch):
    op: str = Field(pattern="^signed_batch$")
    id: str | int


_WS_MODELS: dict[str, type[BaseModel]] = {
    "subscribe": _Subscribe, "unsubscribe": _Subscribe, "login": _Login, "logout": _Logout, "post": _Post,
    "batch": _Batch, "signed_batch": _SignedBatch,
}  # fmt: skip


async def _ws_message(text: str, subscriber: Subscriber, feed: Feed, gateway: Gateway, auth: Authenticator,
                      ip: str | None, reads: Buckets) -> None:  # fmt: skip
    """Handle one client message: a login, a subscription change, or a signed action on the order channel.

    Logins and subscription changes spend a read token of the sender's IP (before a login's signature is
    recovered); signed actions count against the gateway's action limits instead."""
    request_id = None
    try:
        raw = orjson.loads(text)
        if isinstance(raw, dict):
            request_id = raw.get("id") if isinstance(raw.get("id"), str | int) else None
        model = _WS_MODELS.get(str(raw.get("op"))) if isinstance(raw, dict) else None
        if model is None:
            subscriber.answer(_ws_error(request_id, "BAD_REQUEST", f"op: one of {', '.join(_WS_MODELS)}"))
            return
        message = model.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        subscriber.answer(_ws_error(request_id, "BAD_REQUEST", str(exc).splitlines()[0][:200]))
        return
    if isinstance(message, _Login | _Logout | _Subscribe) and not reads.take(ip):
        subscriber.answer(_ws_error(request_id, "RATE_LIMITED", _read_limited(reads)))
        return
    if isinstance(message, _Login | _Logout):
        # awaited here, not in a task: a subscribe sent right after the login is handled after it
        await _ws_login(message, subscriber, feed, auth)
        return
    if isinstance(message, _Subscribe):
        key: str | bytes
        if message.channel == "user":
            if message.address is None:
                subscriber.answer(_ws_error(message.id, "BAD_REQUEST", "address: the user channel needs one"))
                return
            key = bytes.fromhex(message.address[2:])
            if message.op == "subscribe" and key not in subscriber.logins:
                subscriber.answer(_ws_error(message.id, "NOT_AUTHENTICATED", f"log in as {message.address} first "
                                            '({"op": "login", "address", "timestamp", "signature"})'))  # fmt: skip
                return
        else:
            if message.market is None or message.market not in feed.books:
                subscriber.answer(_ws_error(message.id, "UNKNOWN_MARKET", f"no market named {message.market!r}"))
                return
            key = message.market
        if message.op == "subscribe":
            feed.subscribe(subscriber, message.channel, key)
        else:
            feed.unsubscribe(subscriber, message.channel, key)
        subscriber.answer({"channel": "subscription", "id": message.id, "op": message.op, "topic": message.channel,
                           "key": message.market or message.address})  # fmt: skip
        return
    # the order channel: answered in order of completion, each tagged with its id
    if subscriber.inflight >= MAX_IN_FLIGHT:
        subscriber.answer(_ws_error(request_id, "TOO_MANY_IN_FLIGHT", f"at most {MAX_IN_FLIGHT} unanswered requests"))
        return
    subscriber.inflight += 1
    task = subscriber.loop.create_task(_ws_post(message, subscriber, gateway, ip))
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


def _send_json(direct: WebSocketProtocol, message: dict[str, Any]) -> bool:
    """Send `message` as JSON on the direct channel if the connection takes it now."""
    return direct.send_now(orjson.dumps(message))


class _Connection:
    """One WebSocket's order channel, taking lone well-formed `post` messages straight from the protocol."""

    def __init__(self, subscriber: Subscriber, gateway: Gateway, ip: str | None) -> None:
        """Answer on `subscriber`'s connection; forward through `gateway` for the client at `ip`."""
        self.subscriber = subscriber
        self.gateway = gateway
        self.ip = ip
        self.idle = False  # the endpoint waits for a message, everything before it handled

    def take(self, text: str) -> bool:
        """Handle `text` now if it is a post that `_Post` accepts and the endpoint is idle (nothing before it is
        still being handled, so order is kept); whether it did. Everything else goes the endpoint's way, which
        answers every refusal (bounds, in-flight limit, the model's errors) in its own words."""
        subscriber = self.subscriber
        if (not self.idle or len(text) > MAX_BODY or subscriber.inflight >= MAX_IN_FLIGHT
                or len(subscriber.answers) > ANSWERS_MAX):  # fmt: skip
            return False
        try:
            post = _lone_post(orjson.loads(text))
        except orjson.JSONDecodeError:
            return False
        if post is None:
            return False
        request_id, record, signature = post
        subscriber.inflight += 1
        self.gateway.one_then(self.ip, record, signature, functools.partial(self._answered, request_id))
        return True

    def _answered(self, request_id: str | int, status: int, body: dict[str, Any]) -> None:
        """Send (or queue) the answer to a post taken here."""
        self.subscriber.inflight -= 1
        self.subscriber.answer({"channel": "post", "id": request_id, "status": status, **body})


def _lone_post(raw: Any) -> tuple[str | int, str, str] | None:
    """(id, record, signature) of a message exactly as `_Post` (strict, no extra fields) accepts it; else None."""
    if type(raw) is not dict or len(raw) != 3 or raw.get("op") != "post":
        return None
    request_id, action = raw.get("id"), raw.get("action")
    if not (type(request_id) is str or type(request_id) is int) or type(action) is not dict or len(action) != 2:
        return None
    record, signature = action.get("record"), action.get("signature")
    if type(record) is not str or type(signature) is not str or not (_hex_bytes(record) and _hex_bytes(signature)):
        return None
    if not (182 <= (len(record) - 2) // 2 <= 4096 and len(signature) == 132):
        return None
    return request_id, record, signature


def _hex_bytes(text: str) -> bool:
    """Whether `text` is 0x and whole bytes of hex digits, nothing else (bytes.fromhex alone skips whitespace)."""
    if not text.startswith("0x"):
        return False
    try:
        return 2 * len(bytes.fromhex(text[2:])) == len(text) - 2
    except ValueError:
        return False


async def _ws_login(message: _Login | _Logout, subscriber: Subscriber, feed: Feed, auth: Authenticator) -> None:
    """Log a connection in as an account (its own key or an agent's), or out; answered on the connection."""
    account = bytes.fromhex(message.address[2:])
    if isinstance(message, _Logout):
        feed.logout(subscriber, account)
        subscriber.answer({"channel": "logout", "id": message.id, "address": message.address})
        return
    try:
        signer, expiry = await auth.login(account, message.timestamp, message.signature)
    except QueryError as exc:
        subscriber.answer(_ws_error(message.id, exc.code, exc.message))
        return
    except ConnectionError as exc:
        subscriber.answer(_ws_error(message.id, "UNAVAILABLE", str(exc)))
        return
    feed.login(subscriber, account, signer)
    if expiry is not None:  # an agent's login ends with its approval (a revocation ends it in the feed)
        delay = max(0.0, (expiry - auth.clock()) / 1000)
        subscriber.timers[account] = asyncio.get_running_loop().call_later(
            delay, feed.logout, subscriber, account, "agent expired"
        )
    subscriber.answer({"channel": "login", "id": message.id, "address": message.address, "signer": "0x" + signer.hex(),
                       "expiry": None if expiry is None else str(expiry)})  # fmt: skip


async def _ws_post(message: BaseModel, subscriber: Subscriber, gateway: Gateway, ip: str | None) -> None:
    """Run one order-channel request and queue its answer (an error answer if the sequencer is gone)."""
    try:
        if isinstance(message, _Post):
            status, body = await gateway.one(ip, message.action.record, message.action.signature)
        elif isinstance(message, _Batch):
            status, body = await gateway.many(ip, [(a.record, a.signature) for a in message.actions])
        else:
            assert isinstance(message, _SignedBatch)
            status, body = await gateway.signed_batch(ip, message.records, message.signature)
    finally:
        subscriber.inflight -= 1
    subscriber.answer({"channel": "post", "id": getattr(message, "id", None), "status": status, **body})


async def _send_loop(ws: WebSocket, subscriber: Subscriber, feed: Feed) -> None:
    """Drain a client's queue onto its socket; a client that fell behind is caught up with snapshots."""
    try:
        while True:
            await subscriber.wake.wait()
            subscriber.wake.clear()
            # market data first: a subscription's snapshot precedes its acknowledgement
            if subscriber.behind:
                messages = feed.catch_up(subscriber)
            else:
                messages = list(subscriber.queue)
                subscriber.queue.clear()
            messages += subscriber.answers
            subscriber.answers.clear()
            subscriber.sending = True  # nothing is written directly past these
            for message in messages:
                await ws.send_text(orjson.dumps(message).decode())
            subscriber.sending = False
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


# ------------------------------------------------------------------ processes


def serve(manifest: str, host: str, port: int, journal: str | None, verifiers: int = 1,
          limits: Limits | None = None, history: bool = True) -> int:  # fmt: skip
    """Run the venue until SIGTERM or Ctrl-C: this process sequences; `verifiers` processes serve the API."""
    engine = Engine.from_manifest(manifest, journal=journal)
    sequencer = Sequencer(engine, limits=limits)
    _open(engine, sequencer.now())
    store = (engine.manifest.venue.history or str(Path(journal) / HISTORY_FILE)) if journal and history else None
    projector = None
    if store:  # the history store follows the journal in a process of its own
        projector = subprocess.Popen([sys.executable, "-m", "exos.history", str(journal), store])
    if verifiers == 0:
        try:
            return _serve_in_process(create_app(LocalBackend(sequencer), history=store), host, port)
        finally:
            _stop([projector] if projector else [])
    listeners = _listen(host, port, verifiers)
    bound_host, bound_port = listeners[0].getsockname()[:2]
    ours, children = [], []
    for n in range(verifiers):
        listener = listeners[n % len(listeners)]
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (mine, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        ours.append(mine)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "exos.verifier", str(listener.fileno()), str(theirs.fileno()),
             *([store] if store else [])],
            pass_fds=(listener.fileno(), theirs.fileno()),
        ))  # fmt: skip
        theirs.close()
    for listener in listeners:
        listener.close()
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from exos.sequencer import run

    ready = [0]

    def on_ready() -> None:
        ready[0] += 1
        if ready[0] == verifiers:
            print(f"listening on http://{bound_host}:{bound_port}", flush=True)

    try:
        run(sequencer, ours, lambda: stop, on_ready)
    finally:
        _stop(children + ([projector] if projector else []))
        engine.close()
    return 0 if stop else 1


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child process, then wait (SIGKILL after 10 s)."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def _open(engine: Engine, now: int) -> None:
    """A fresh venue whose manifest names a simulation that can open a live venue (list its markets) does so."""
    simulation = engine.manifest.simulation
    if engine.markets or simulation is None:
        return
    driver = engine.plugins.simulations.get(simulation.driver)
    opener = getattr(driver, "open", None)
    if opener is not None:
        opener(engine, now=now, params=simulation.params)


def _listen(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """Listening sockets on one address, one per verifier, in a SO_REUSEPORT group: the kernel hashes each new
    connection to one of them. (One shared socket let the verifiers race for every accept, and one of two took
    all four connections of a batch load while the other idled.) Where SO_REUSEPORT is missing: one socket for all.

    A verifier of a killed predecessor may hold the port for a moment: wait until a plain bind succeeds, so no
    socket of another server joins the group."""
    deadline = time.monotonic() + 5
    while True:
        try:
            probe = socket.create_server((host, port), backlog=4096)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if count == 1 or not hasattr(socket, "SO_REUSEPORT"):
            return [probe]
        address = probe.getsockname()  # the port the kernel chose when asked for 0
        probe.close()
        return [socket.create_server(address, backlog=4096, reuse_port=True) for _ in range(count)]


def uvicorn_config(app: Any, **settings: Any) -> Any:
    """uvicorn's Config as the venue serves `app`: exos's WebSocket protocol, no permessage-deflate, messages up to
    WS_MAX_MESSAGE, warnings only; `settings` adds to them (host and port)."""
    import uvicorn

    return uvicorn.Config(app, log_level="warning", ws=WebSocketProtocol, ws_per_message_deflate=WS_DEFLATE,
                          ws_max_size=WS_MAX_MESSAGE, **settings)  # fmt: skip


def _serve_in_process(app: FastAPI, host: str, port: int) -> int:
    """Run the app in this process until SIGTERM or Ctrl-C (uvicorn stops cleanly)."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host=host, port=port))
    _announce(server)
    run_until_stopped(server, (signal.SIGTERM, signal.SIGINT))
    return 0


def run_until_stopped(server: Any, signals: tuple[int, ...], sockets: list[socket.socket] | None = None) -> None:
    """Run a uvicorn server until one of `signals`: it finishes the requests in hand and returns (exit 0 follows).

    uvicorn's own handlers re-raise the signal after shutdown (death by signal, exit status -15)."""

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True

    server.capture_signals = contextlib.nullcontext
    for number in signals:
        signal.signal(number, stop)
    server.run(sockets=sockets)


def _announce(server: Any) -> None:
    """Print where the server listens once it has started."""
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        for server_socket in server.servers[0].sockets if server.servers else []:
            bound_host, bound_port = server_socket.getsockname()[:2]
            print(f"listening on http://{bound_host}:{bound_port}", flush=True)

    server.startup = startup
