"""The gateway: verify signed actions, forward them to the sequencer, shape the answers; and the action routes.

REST's `POST /v1/actions*` and the WebSocket order channel share `Gateway`. `ActionRoutes` answers the three
POST routes in plain ASGI ahead of the framework and its middleware (FastAPI's routing, dependency solving and
body handling cost the verifier about as much as the signature itself): the same request models, the same
bodies. A request it cannot take as it stands is handed to the framework with its body replayed, so every
refusal stays the framework's and the OpenAPI spec still describes the routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from exos import commands as C
from exos.errors import ExosError
from exos.events import RawEvent
from exos.feed import raw_json
from exos.signing import Domain, SignatureError, batch_digest, recover, recover_digest, with_signer

Answer = tuple[str, str] | list[RawEvent]  # per record: an error (code, message) or its events
Submitted = list[Answer] | ConnectionError  # what a submission comes to: an answer per record, or no sequencer
# a route of ActionRoutes: (body, client IP) -> (status, JSON body), or None to leave the request to the framework
Route = Callable[[bytes, "str | None"], Awaitable["tuple[int, Any] | None"]]
M = TypeVar("M", bound=BaseModel)


class Submitter(Protocol):
    """What the gateway forwards to: a backend that sequences records."""

    domain: Domain

    async def submit(self, ip: str | None, records: list[bytes]) -> list[Answer]:
        """Per record, its events or an error (code, message)."""
        ...

    def submit_then(self, ip: str | None, records: list[bytes], then: Callable[[Submitted], None]) -> None:
        """As `submit`, the answers (or the ConnectionError) passed to `then` instead of returned."""
        ...


def answer_json(answer: Answer, signer: bytes) -> dict[str, Any]:
    """One record's result as JSON: accepted, the signer, the events; or an error."""
    if isinstance(answer, tuple):
        return {"accepted": False, "signer": "0x" + signer.hex(), "error": {"code": answer[0], "message": answer[1]}}
    return {"accepted": bool(answer[-1][4]), "signer": "0x" + signer.hex(),
            "events": [raw_json(e) for e in answer]}  # fmt: skip


def verify(record_hex: str, signature_hex: str, domain: Domain) -> tuple[bytes, bytes]:
    """(record with the signer filled in, signer) of one signed action; SignatureError or ExosError if bad."""
    record = bytes.fromhex(record_hex[2:])
    C.split(record)
    signer = recover(record, bytes.fromhex(signature_hex[2:]), domain)
    return with_signer(record, signer), signer


def refusal(exc: ExosError) -> dict[str, Any]:
    """The error body for a bad signature (its own code) or a bad record (BAD_RECORD)."""
    code = exc.code if isinstance(exc, SignatureError) else "BAD_RECORD"
    return {"error": {"code": code, "message": exc.message}}


def one_result(answer: Answer, signer: bytes) -> tuple[int, dict[str, Any]]:
    """(status, body) of one signed action's answer: 429 if the sequencer refused it for its rate, else 200."""
    if isinstance(answer, tuple) and answer[0] == "RATE_LIMITED":
        return 429, {"error": {"code": answer[0], "message": answer[1]}}
    return 200, answer_json(answer, signer)


def unavailable(exc: ConnectionError) -> tuple[int, dict[str, Any]]:
    """The answer to an action that met a missing sequencer (this verifier is about to stop): 503 UNAVAILABLE."""
    return 503, {"error": {"code": "UNAVAILABLE", "message": str(exc)}}


def model_route(model: type[M], apply: Callable[[M, str | None], Awaitable[tuple[int, Any]]]) -> Route:
    """An ActionRoutes route: the body parsed as `model` (strict JSON) and applied; None, leaving the request to
    the framework, if the model refuses it (the framework's route then refuses it in its own words)."""

    async def route(body: bytes, ip: str | None) -> tuple[int, Any] | None:
        try:
            parsed = model.model_validate_json(body)
        except ValidationError:
            return None
        return await apply(parsed, ip)

    return route


class Gateway:
    """What REST and the WebSocket order channel share: verify, forward, shape the answers."""

    def __init__(self, backend: Submitter) -> None:
        """Forward to `backend`."""
        self.backend = backend
        self.domain = backend.domain

    async def one(self, ip: str | None, record_hex: str, signature_hex: str) -> tuple[int, dict[str, Any]]:
        """(status, body) for one signed action."""
        try:
            record, signer = verify(record_hex, signature_hex, self.domain)
        except ExosError as exc:
            return 400, refusal(exc)
        try:
            [answer] = await self.backend.submit(ip, [record])
        except ConnectionError as exc:
            return unavailable(exc)
        return one_result(answer, signer)

    def one_then(self, ip: str | None, record_hex: str, signature_hex: str,
                 done: Callable[[int, dict[str, Any]], None]) -> None:  # fmt: skip
        """As `one`, with (status, body) passed to `done`: at once for a refusal, else when the sequencer answers
        (no task: the WebSocket order channel's path for a lone action)."""
        try:
            record, signer = verify(record_hex, signature_hex, self.domain)
        except ExosError as exc:
            done(400, refusal(exc))
            return

        def answered(answers: Submitted) -> None:
            done(*(unavailable(answers) if isinstance(answers, ConnectionError) else one_result(answers[0], signer)))

        self.backend.submit_then(ip, [record], answered)

    async def many(self, ip: str | None, actions: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        """Separately signed actions, the valid ones in order under one commit; (200, a result per item)."""
        results: list[dict[str, Any] | None] = []
        valid: list[tuple[bytes, bytes]] = []
        for record_hex, signature_hex in actions:
            try:
                valid.append(verify(record_hex, signature_hex, self.domain))
                results.append(None)
            except ExosError as exc:
                results.append({"accepted": False, **refusal(exc)})
        try:
            answers = iter(await self.backend.submit(ip, [r for r, _ in valid])) if valid else iter(())
        except ConnectionError as exc:
            return unavailable(exc)
        signers = iter(s for _, s in valid)
        return 200, {"results": [r if r is not None else answer_json(next(answers), next(signers)) for r in results]}

    async def signed_batch(self, ip: str | None, records_hex: list[str], signature_hex: str) -> tuple[int, Any]:
        """Trading records under one signature, applied in order under one commit; a result per record."""
        try:
            records = []
            for text in records_hex:
                if not (len(text) % 2 == 0 and text.startswith("0x") and 2 * 182 + 2 <= len(text) <= 2 * 4096 + 2):
                    raise SignatureError("records: each is 0x and 182..4096 bytes of hex")
                records.append(bytes.fromhex(text[2:]))
                C.split(records[-1])
            signer = recover_digest(batch_digest(records, self.domain), bytes.fromhex(signature_hex[2:]))
        except SignatureError as exc:
            return 400, refusal(exc)
        except (ExosError, ValueError) as exc:
            return 400, {"error": {"code": "BAD_RECORD", "message": str(exc)}}
        try:
            answers = await self.backend.submit(ip, [with_signer(r, signer) for r in records])
        except ConnectionError as exc:
            return unavailable(exc)
        return 200, {"results": [answer_json(a, signer) for a in answers]}


class ActionRoutes:
    """Plain-ASGI POST routes (path -> Route) in front of `app`; everything else, and what a route declines, goes on."""

    def __init__(self, app: Any, routes: dict[str, Route], max_body: int) -> None:
        """Answer `routes` ahead of `app`; a body declared longer than `max_body` is left to `app` (its 413)."""
        self.app = app
        self.routes = routes
        self.max_body = max_body

    def takes(self, scope: Any) -> bool:
        """Whether this request is one of ours to try: a POST to a route with a JSON body of declared length."""
        return (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.routes
                and _json_within(scope["headers"], self.max_body))  # fmt: skip

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Take a request `takes`; replay what the route declines to the app."""
        if not self.takes(scope):
            await self.app(scope, receive, send)
            return
        route = self.routes[scope["path"]]
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        client = scope.get("client")
        result = await route(body, client[0] if client else None)
        if result is None:
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        status, payload = result
        content = orjson.dumps(payload)  # the bytes JSONResponse would send, at a fraction of json.dumps's cost
        headers = [(b"content-length", b"%d" % len(content)), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _json_within(headers: list[tuple[bytes, bytes]], max_body: int) -> bool:
    """Whether a request declares a JSON body of at most `max_body` bytes (chunked and other bodies: the app's)."""
    length = json = False
    for name, value in headers:
        if name == b"content-length":
            length = value.isdigit() and int(value) <= max_body
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
    return length and json
