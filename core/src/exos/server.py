"""`exos serve`: the venue over HTTP (a first slice of issue #6: one process, REST, signed actions, a faucet).

One engine in one process is the sequencer: requests reach it one at a time (an asyncio lock), it
stamps each command with its clock (milliseconds, never earlier than the last), applies it and, with
a journal, answers only after the record is durable. Signed actions arrive as the canonical record
(hex, timestamp and signer zeroed) with a 65-byte signature; `exos.signing` recovers the signer,
refusing malleable forms, and the engine decides whether that signer may act for the address.

Numbers travel as decimal strings (JSON clients lose precision past 2^53); request models are strict
(no `1.5` or `false` for an integer; unknown fields refused); every error is one envelope
`{"error": {"code", "message"}}`. Not yet here (issue #6): verifier processes, WebSockets, rate
limits, the Python client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from exos import commands as C
from exos.engine import Engine
from exos.errors import ExosError
from exos.events import decode_all
from exos.signing import Domain, SignatureError, recover, with_signer

MAX_BODY = 64 * 1024


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
    actions: list[SignedAction] = Field(min_length=1, max_length=100)


class FaucetRequest(BaseModel):
    """Ask the faucet for the manifest's amounts."""

    model_config = ConfigDict(strict=True, extra="forbid")
    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    sub: int = Field(default=0, ge=0, le=65535)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope},
    404: {"model": ErrorEnvelope},
    413: {"model": ErrorEnvelope},
    422: {"model": ErrorEnvelope},
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    """The error envelope."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _jsonable(value: Any) -> Any:
    """Event fields as JSON: bytes as 0x-hex, integers as decimal strings."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


def _event(event: Any) -> dict[str, Any]:
    """One event as JSON."""
    out: dict[str, Any] = {"type": type(event).__name__}
    for name in event.__attrs_attrs__:
        value = getattr(event, name.name)
        out[name.name] = value.name.lower() if name.name == "cause" else _jsonable(value)
    return out


class Sequencer:
    """The engine behind one lock, with a clock that never goes back."""

    def __init__(self, engine: Engine, clock: Callable[[], int] | None = None) -> None:
        """Serve `engine`; `clock` gives milliseconds (default: the wall clock)."""
        self.engine = engine
        self.lock = asyncio.Lock()
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)

    def now(self) -> int:
        """A timestamp no earlier than the engine's last."""
        return max(self.clock(), self.engine.last_timestamp)

    async def apply(self, record: bytes) -> list[Any]:
        """Apply one record (durable before this returns, with a journal); its decoded events."""
        async with self.lock:
            return decode_all(self.engine.submit_records([record]))

    async def apply_many(self, signed: list[tuple[bytes, bytes]]) -> list[list[Any]]:
        """Stamp and apply (record, signer) pairs as one group commit; each command's decoded events."""
        async with self.lock:
            now = self.now()
            events = decode_all(self.engine.submit_records([with_signer(r, s, now) for r, s in signed]))
        grouped: dict[int, list[Any]] = {}
        for event in events:
            grouped.setdefault(event.seq, []).append(event)
        return list(grouped.values())


def create_app(engine: Engine, *, clock: Callable[[], int] | None = None) -> FastAPI:
    """The venue's HTTP API over `engine` (its domain and faucet come from the manifest)."""
    venue = engine.manifest.venue
    domain = Domain(venue.name, "1", venue.chain_id, venue.verifying_contract)
    sequencer = Sequencer(engine, clock)
    app = FastAPI(title=f"exos: {venue.name}", version="1")
    app.state.sequencer = sequencer

    @app.middleware("http")
    async def bounded_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _error(413, "BODY_TOO_LARGE", f"request bodies are at most {MAX_BODY} bytes")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        response = _error(exc.status_code, code, str(exc.detail))
        for name, value in (exc.headers or {}).items():  # e.g. the Allow header of a 405
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "BAD_REQUEST", f"{where}: {first.get('msg', 'invalid')}")

    @app.get("/v1/info", responses=ERRORS)
    async def info() -> dict[str, str]:
        """The venue's EIP-712 signing domain (what clients sign under)."""
        return {"name": domain.name, "version": domain.version, "chain_id": str(domain.chain_id),
                "verifying_contract": "0x" + domain.verifying_contract.hex()}  # fmt: skip

    @app.get("/v1/markets", responses=ERRORS)
    async def markets() -> list[dict[str, Any]]:
        """Every market with its listing (tick and lot as decimal strings) and status."""
        out = []
        for ms in engine.markets:
            listing = json.loads(ms.spec_json)
            out.append({
                "name": ms.name, "type": ms.market_type, "base": ms.base_symbol, "quote": ms.quote_symbol,
                "tick_size": str(listing["tick_size"]), "lot_size": str(listing["lot_size"]),
                "status": C.Status(ms.status).name.lower(), "outcomes": str(ms.outcomes),
            })  # fmt: skip
        return out

    @app.get("/v1/markets/{market}/book", responses=ERRORS)
    async def book(market: str, levels: int = 10, outcome: int = 0) -> Any:
        """L2 depth (ticks and lots as strings, best first) with the book's sequence number."""
        if not 1 <= levels <= 1000 or not 0 <= outcome <= 255:
            return _error(422, "BAD_REQUEST", "levels: 1..1000; outcome: 0..255")
        try:
            ms = engine.market_state(market)
            bids, asks = engine.depth(market, levels, outcome)
        except KeyError:
            return _error(404, "UNKNOWN_MARKET", f"no market named {market!r}")
        except ValueError as exc:
            return _error(422, "BAD_REQUEST", str(exc))

        def rows(side: list[Any]) -> list[list[str]]:
            return [[str(lv.price), str(lv.size), str(lv.count)] for lv in side]

        return {"market": market, "seq": str(ms.book.seq), "bids": rows(bids), "asks": rows(asks)}

    @app.get("/v1/accounts/{address}", responses=ERRORS)
    async def account(address: str, sub: int = 0) -> Any:
        """Balances (available and locked, smallest units as strings) and open orders of one sub-account."""
        if len(address) != 42 or not address.startswith("0x") or not 0 <= sub <= 65535:
            return _error(422, "BAD_REQUEST", "address: 0x and 40 hex digits; sub: 0..65535")
        try:
            raw = bytes.fromhex(address[2:])
        except ValueError:
            return _error(422, "BAD_REQUEST", "address: 0x and 40 hex digits")
        balances = {
            symbol: {"available": str(a), "locked": str(lk)}
            for symbol, (a, lk) in engine.balances(raw, sub).items()
            if a or lk
        }
        orders = [
            {"market": name, "order_id": str(o.order_id), "side": o.side, "price": str(o.price), "size": str(o.size),
             "remaining": str(o.remaining), "outcome": o.slots[3]}
            for name, o in engine.open_orders(raw, sub)
        ]  # fmt: skip
        return {"address": address.lower(), "sub": sub, "balances": balances, "open_orders": orders}

    @app.post("/v1/actions", responses=ERRORS)
    async def action(body: SignedAction) -> Any:
        """Verify a signed command, stamp it, apply it; the events (accepted means journaled)."""
        record = bytes.fromhex(body.record[2:])
        try:
            C.split(record)
            signer = recover(record, bytes.fromhex(body.signature[2:]), domain)
        except SignatureError as exc:
            return _error(400, exc.code, exc.message)
        except ExosError as exc:
            return _error(400, "BAD_RECORD", exc.message)
        events = await sequencer.apply(with_signer(record, signer, sequencer.now()))
        done = events[-1]
        return {"accepted": done.accepted, "signer": "0x" + signer.hex(), "events": [_event(e) for e in events]}

    @app.post("/v1/actions/batch", responses=ERRORS)
    async def batch(body: SignedBatch) -> Any:
        """Verify each action, apply the valid ones in order under one journal commit; a result per item."""
        results: list[dict[str, Any] | None] = []
        valid: list[tuple[bytes, bytes]] = []
        for item in body.actions:
            record = bytes.fromhex(item.record[2:])
            try:
                C.split(record)
                signer = recover(record, bytes.fromhex(item.signature[2:]), domain)
            except SignatureError as exc:
                results.append({"error": {"code": exc.code, "message": exc.message}})
                continue
            except ExosError as exc:
                results.append({"error": {"code": "BAD_RECORD", "message": exc.message}})
                continue
            results.append(None)
            valid.append((record, signer))
        applied = iter(await sequencer.apply_many(valid)) if valid else iter(())
        signers = iter(signer for _, signer in valid)
        out = []
        for result in results:
            if result is not None:
                out.append(result)
                continue
            events = next(applied)
            out.append({"accepted": events[-1].accepted, "signer": "0x" + next(signers).hex(),
                        "events": [_event(e) for e in events]})  # fmt: skip
        return {"results": out}

    @app.post("/v1/faucet", responses=ERRORS)
    async def faucet(body: FaucetRequest) -> Any:
        """Credit the manifest's faucet amounts (404 unless the manifest enables a faucet)."""
        if not venue.faucet:
            return _error(404, "NO_FAUCET", "this venue's manifest enables no faucet")
        address = bytes.fromhex(body.address[2:])
        credited = {}
        for symbol, amount in sorted(venue.faucet.items()):
            decimals = engine.manifest.asset(symbol).decimals
            units = int(amount * Decimal(10) ** decimals)
            command = C.Deposit(actor=C.Actor(address, body.sub, venue.admins[0]), timestamp=sequencer.now(),
                                asset=symbol, amount=units)  # fmt: skip
            events = await sequencer.apply(command.pack())
            if not events[-1].accepted:
                return _error(400, events[0].code, events[0].message)
            credited[symbol] = str(units)
        return {"credited": credited}

    return app


def serve(manifest: str, host: str, port: int, journal: str | None) -> int:
    """Run the venue until SIGTERM or Ctrl-C (uvicorn handles both and stops cleanly)."""
    import uvicorn

    engine = Engine.from_manifest(manifest, journal=journal)
    app = create_app(engine)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        for server_socket in server.servers[0].sockets if server.servers else []:
            bound_host, bound_port = server_socket.getsockname()[:2]
            print(f"listening on http://{bound_host}:{bound_port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]

    def stop(signum: int, frame: Any) -> None:
        server.should_exit = True  # finish the request in hand, close the journal, exit 0

    # uvicorn's own handlers re-raise the signal after shutdown (exit status -15); a clean stop is exit 0
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()
    return 0
