"""Python clients for `exos serve`: build commands, sign them, send them; follow books, trades and accounts.

    from exos.client import AsyncClient, Client, Order

    with Client("http://127.0.0.1:8000", private_key) as client:        # the signing domain from GET /v1/info
        client.faucet()
        placed = client.place("BTC-USDC", "buy", "65000.00", "0.0003")  # human decimals, rounded to tick and lot
        client.amend("BTC-USDC", placed.order_id, "64000", "0.0002")
        client.cancel_all("BTC-USDC")

    client = await AsyncClient.connect("http://127.0.0.1:8000", private_key)   # the same surface, awaited
    results = await client.place_many([Order("BTC-USDC", "buy", "60000", "0.0001")] * 100)  # one signature
    async with client.subscribe_book("BTC-USDC") as book:        # a local L2 book, checksummed, self-healing
        await book.wait_for(lambda b: b.best_bid() is not None)
    async with client.subscribe_user() as fills:                  # trades and user channels: async iterators
        async for message in fills: ...
    await client.ws.place("BTC-USDC", "sell", "70000", "0.0001")  # the order channel on a WebSocket

`Client`, `AsyncClient` and the WebSocket `OrderChannel` share one definition of every operation: a
`_Venue` method builds the request (signing it with a fresh nonce) and the parser of its answer, and
each client only runs it over its own transport, so the three surfaces cannot drift apart.

Nonces are the clock in milliseconds, strictly increasing per signer across every client, thread and
task of the process (one lock-protected counter per signer). The engine keeps each signer's last 100
nonces and refuses one below them, so a request must not be overtaken by 100 later ones of its
signer: a nonce is taken only once its request holds a connected HTTP connection (or the order
channel), and the async client keeps at most `connections` (32) requests in flight.

Private reads (the account, its fills, an order by client id, history) are signed automatically
(`Request` typed data in the `X-Exos-*` headers, `exos.auth`), and a user-channel subscription logs
in first (`Login`), again after every reconnection; an agent's key with `account=master` reads the
master's account as long as the agent is approved.

A request the server refuses raises `ClientError(message, code=...)` (`RateLimited` for HTTP 429); a
command the engine refuses comes back as a `Result` with `accepted` False and its code (in a batch, an
item the gateway rate-limited comes back as a `Result` with code RATE_LIMITED). Network failures raise
httpx's and websockets' own exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import inspect
import itertools
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypedDict, TypeVar, Unpack

import attrs
import httpx
from coincurve import PrivateKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from exos import commands as C
from exos.errors import ExosError
from exos.feed import CHECKSUM_LEVELS, checksum
from exos.signing import (
    Domain,
    SignatureError,
    address_of,
    batch_digest,
    digest,
    login_digest,
    request_digest,
    sign_digest,
)

SIDES = {"buy": 0, "sell": 1}
TIFS = {"gtc": 0, "gtd": 1, "ioc": 2, "fok": 3}
MAX_BATCH = 100  # the server's limit for both batch forms
HISTORY_TABLES = ("orders", "fills", "transfers", "settlements")
MAX_MESSAGE = 64 << 20  # a full book's snapshot is one WebSocket message: websockets' 1 MiB default is too small

T = TypeVar("T")
P = ParamSpec("P")


class ClientError(ExosError):
    """A request was refused: by the server (its error envelope's code) or, before sending, by the client."""

    code = "CLIENT"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        """The refusal's message, code and HTTP status (None when the client refused it itself)."""
        super().__init__(message, code=code)
        self.status = status


class RateLimited(ClientError):
    """The gateway's rate limit refused the request (HTTP 429): retry later."""

    code = "RATE_LIMITED"


@attrs.frozen
class Result:
    """What the engine did with a command: accepted or not, the refusal code and message, the events (JSON)."""

    accepted: bool
    code: str | None
    events: list[dict[str, Any]]
    message: str | None = None

    @property
    def order_id(self) -> int | None:
        """The id of the order a place command created, if it did."""
        for event in self.events:
            if event["type"] in ("OrderAccepted", "OrderDelayed"):
                return int(event["order_id"])
        return None

    @property
    def fills(self) -> list[dict[str, Any]]:
        """The command's fills (each trade gives two, the taker's first)."""
        return [e for e in self.events if e["type"] == "Fill"]


class OrderOptions(TypedDict, total=False):
    """The optional parts of an order."""

    tif: int | str  # 0..3 or "gtc", "gtd", "ioc", "fok"
    post_only: bool
    reduce_only: bool  # a perpetual's order that may only shrink the position (clipped to it)
    outcome: int
    client_id: bytes | None
    expiry: int
    stp: int
    sub: int


class StreamOptions(TypedDict, total=False):
    """How a subscription reconnects: the first backoff and its cap (seconds), and the time to open one."""

    backoff: float
    max_backoff: float
    open_timeout: float


@attrs.frozen
class Order:
    """One order in human decimals (side "buy" or "sell"; for outcome markets, in that outcome's terms)."""

    market: str
    side: str
    price: str | Decimal
    size: str | Decimal
    tif: int | str = 0
    post_only: bool = False
    outcome: int = 0
    client_id: bytes | None = None
    expiry: int = 0
    stp: int = 0
    sub: int = 0
    reduce_only: bool = False


class Nonces:
    """Strictly increasing nonces of one signer: the clock in ms, or one above the last if the clock lags."""

    _by_signer: ClassVar[dict[bytes, Nonces]] = {}
    _registry = threading.Lock()

    def __init__(self) -> None:
        """No nonce used yet."""
        # a threading lock, not an asyncio one: no await inside, and threads and event loops share it
        self._lock = threading.Lock()
        self._last = 0

    @classmethod
    def of(cls, signer: bytes) -> Nonces:
        """The one counter of `signer` in this process (every client of a key shares it, so none collide)."""
        with cls._registry:
            return cls._by_signer.setdefault(signer, cls())

    def take(self, n: int = 1) -> int:
        """The first of `n` fresh consecutive nonces."""
        with self._lock:
            first = max(time.time_ns() // 1_000_000, self._last + 1)
            self._last = first + n - 1
            return first


# ------------------------------------------------------------------ requests and answers


@attrs.frozen
class _Call(Generic[T]):
    """One request, transport-free: the clients only run it (HTTP, or the WebSocket order channel)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    # a private read: the signature headers for (method, the target as sent), made just before sending
    auth: Callable[[str, str], dict[str, str]] | None = None

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The HTTP request on `http` (signed if private: over the exact target httpx will send)."""
        request = http.build_request(self.method, self.path, params=self.params, json=self.body)
        if self.auth is not None:
            request.headers.update(self.auth(self.method, request.url.raw_path.decode("ascii")))
        return request


def _refusal(status: int, body: Any) -> ClientError:
    """The typed error of a refused request (the server's envelope, or whatever came back)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = str(error.get("code", f"HTTP_{status}")), str(error.get("message", ""))
    else:
        code, message = f"HTTP_{status}", str(body)[:200]
    kind = RateLimited if status == 429 or code == "RATE_LIMITED" else ClientError
    return kind(message, code=code, status=status)


def _answer(status: int, body: Any, call: _Call[T]) -> T:
    """A response's parsed body, or the refusal raised."""
    if status >= 400:
        raise _refusal(status, body)
    return call.parse(body)


def _body(response: httpx.Response) -> Any:
    """A response's JSON (its text, when a proxy answered with something else)."""
    try:
        return response.json()
    except ValueError:
        return response.text


def _result(body: dict[str, Any]) -> Result:
    """One command's outcome: its events, or the error that kept it from the engine."""
    if "error" in body:
        return Result(False, body["error"]["code"], [], body["error"]["message"])
    events = body["events"]
    rejected = next((e for e in events if e["type"] == "Rejected"), None)
    if rejected is None:
        return Result(bool(body["accepted"]), None, events)
    return Result(bool(body["accepted"]), rejected["code"], events, rejected["message"])


def _results(body: dict[str, Any]) -> list[Result]:
    """A batch's outcome, one result per item in order."""
    return [_result(item) for item in body["results"]]


def _json(body: Any) -> Any:
    """A read's answer as the server gave it."""
    return body


def _hex(raw: bytes) -> str:
    """Bytes as the API writes them."""
    return "0x" + raw.hex()


def _by_name(markets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """GET /v1/markets by market name."""
    return {m["name"]: m for m in markets}


class _Venue:
    """What every client shares: the key, the venue's domain and markets, nonces, units, building requests."""

    def __init__(self, private_key: bytes, domain: Domain, markets: dict[str, dict[str, Any]],
                 account: bytes | None = None) -> None:  # fmt: skip
        """Sign with `private_key` (32 bytes) for `account` (default: the key's own address; else an agent's master)."""
        self.key = private_key
        self._private = PrivateKey(private_key)  # deriving it costs as much as a signature: once, not per action
        self.signer: bytes = address_of(self._private)
        self.address: bytes = account if account is not None else self.signer
        self.domain = domain
        self.markets = markets  # by name; shared with an order channel, so refreshed in place
        self.nonces = Nonces.of(self.signer)
        # login timestamps must differ (the server accepts each login once) but must not spend command nonces:
        # a burst of orders runs the nonce counter ahead of the clock, past the login window
        self.login_times = Nonces.of(b"login " + self.signer)

    def nonce(self) -> int:
        """The next nonce: the clock in ms, but always above the last one this signer used."""
        return self.nonces.take()

    # ------------------------------------------------------------ units

    def _market(self, market: str) -> dict[str, Any]:
        """A market's listing (ClientError UNKNOWN_MARKET if this client has not seen it)."""
        try:
            return self.markets[market]
        except KeyError:
            raise ClientError(f"no market named {market!r} (refresh_markets() after a listing)",
                              code="UNKNOWN_MARKET") from None  # fmt: skip

    def ticks(self, market: str, price: str | Decimal) -> int:
        """A price in ticks, rounded down to the market's tick."""
        return int((Decimal(price) / Decimal(self._market(market)["tick_size"])).to_integral_value(ROUND_DOWN))

    def lots(self, market: str, size: str | Decimal) -> int:
        """A size in lots, rounded down to the market's lot."""
        return int((Decimal(size) / Decimal(self._market(market)["lot_size"])).to_integral_value(ROUND_DOWN))

    def price(self, market: str, ticks: int | str) -> Decimal:
        """A price in ticks (as the API gives it) in human decimals."""
        return int(ticks) * Decimal(self._market(market)["tick_size"])

    def size(self, market: str, lots: int | str) -> Decimal:
        """A size in lots (as the API gives it) in human decimals."""
        return int(lots) * Decimal(self._market(market)["lot_size"])

    # ------------------------------------------------------------ commands

    def _actor(self, sub: int) -> C.Actor:
        """This client's account in sub-account `sub` (the server fills in the signer it recovers)."""
        return C.Actor(self.address, sub)

    def _command(self, order: Order, nonce: int) -> C.PlaceOrder:
        """An order in ticks and lots."""
        if order.side not in SIDES:
            raise ClientError(f"side: 'buy' or 'sell', got {order.side!r}", code="BAD_ARGUMENT")
        tif = TIFS.get(order.tif, -1) if isinstance(order.tif, str) else order.tif
        if tif not in TIFS.values():
            raise ClientError(f"tif: one of {', '.join(TIFS)} (or 0..3), got {order.tif!r}", code="BAD_ARGUMENT")
        return C.PlaceOrder(
            actor=self._actor(order.sub), timestamp=0, nonce=nonce, market=order.market, side=SIDES[order.side],
            price=self.ticks(order.market, order.price), size=self.lots(order.market, order.size), tif=tif,
            post_only=order.post_only, outcome=order.outcome, client_id=order.client_id, expiry=order.expiry,
            stp=order.stp, reduce_only=order.reduce_only,
        )  # fmt: skip

    def _signed(self, command: C.Command) -> dict[str, str]:
        """A command as the API takes it, with a fresh nonce unless it carries one (its timestamp is the server's)."""
        if not command.nonce:
            command = attrs.evolve(command, nonce=self.nonce())
        record = command.pack()
        return {"record": _hex(record), "signature": _hex(sign_digest(digest(record, self.domain), self._private))}

    def _read_headers(self, method: str, target: str) -> dict[str, str]:
        """The headers that sign one private read: `Request(account, method, path, timestamp)` (`exos.auth`)."""
        timestamp = time.time_ns() // 1_000_000
        signed = request_digest(self.address, method, target, timestamp, self.domain)
        return {"X-Exos-Address": _hex(self.address), "X-Exos-Timestamp": str(timestamp),
                "X-Exos-Signature": _hex(sign_digest(signed, self._private))}  # fmt: skip

    def login(self) -> dict[str, Any]:
        """A fresh WebSocket login for this client's account: `{"op": "login", "address", "timestamp", "signature"}`."""
        timestamp = self.login_times.take()
        signature = sign_digest(login_digest(self.address, timestamp, self.domain), self._private)
        return {"op": "login", "address": _hex(self.address), "timestamp": timestamp, "signature": _hex(signature)}

    # ------------------------------------------------------------ requests (the clients' methods run these)

    def _send(self, command: C.Command) -> _Call[Result]:
        """Sign and apply any command (account actions as typed data, the rest as an Agent signature)."""
        return _Call("POST", "/v1/actions", _result, body=self._signed(command))

    def _send_many(self, commands: Sequence[C.Command]) -> _Call[list[Result]]:
        """Up to 100 separately signed commands under one journal commit; a result each, in order."""
        _check_batch(len(commands))
        return _Call("POST", "/v1/actions/batch", _results, body={"actions": [self._signed(c) for c in commands]})

    def _signed_batch(self, commands: Sequence[C.Command]) -> _Call[list[Result]]:
        """Up to 100 trading commands under one signature, applied in order under one commit; a result each."""
        _check_batch(len(commands))
        missing = sum(1 for c in commands if not c.nonce)
        fresh = itertools.count(self.nonces.take(missing) if missing else 0)
        records = [(c if c.nonce else attrs.evolve(c, nonce=next(fresh))).pack() for c in commands]
        try:
            signature = sign_digest(batch_digest(records, self.domain), self._private)
        except SignatureError as exc:  # an account action: the server refuses it the same way
            raise ClientError(exc.message, code=exc.code) from None
        return _Call("POST", "/v1/actions/signed-batch", _results,
                     body={"records": [_hex(r) for r in records], "signature": _hex(signature)})  # fmt: skip

    def _place(self, market: str, side: str, price: str | Decimal, size: str | Decimal,
               **options: Unpack[OrderOptions]) -> _Call[Result]:  # fmt: skip
        """Place an order in human decimals (side "buy" or "sell"; for outcome markets, in that outcome's terms)."""
        return self._send(self._command(Order(market, side, price, size, **options), self.nonce()))

    def _place_many(self, orders: Sequence[Order]) -> _Call[list[Result]]:
        """Place up to 100 orders under one signature (one request, one commit); a result each, in order."""
        _check_batch(len(orders))
        first = self.nonces.take(len(orders))
        return self._signed_batch([self._command(o, first + i) for i, o in enumerate(orders)])

    def _cancel(self, market: str, order_id: int, *, sub: int = 0) -> _Call[Result]:
        """Cancel one of the account's orders by id."""
        return self._send(C.CancelOrder(actor=self._actor(sub), timestamp=0, market=market, order_id=order_id))

    def _cancel_by_client_id(self, market: str, client_id: bytes, *, sub: int = 0) -> _Call[Result]:
        """Cancel one of the account's orders by its 16-byte client id."""
        return self._send(C.CancelByClientId(actor=self._actor(sub), timestamp=0, market=market, client_id=client_id))

    def _cancel_all(self, market: str | None = None, *, sub: int = 0) -> _Call[Result]:
        """Cancel every open order of the sub-account in one market, or (no market) in all of them."""
        return self._send(C.CancelAll(actor=self._actor(sub), timestamp=0, market=market or C.ALL_MARKETS))

    def _amend(self, market: str, order_id: int, price: str | Decimal, size: str | Decimal, *,
               sub: int = 0) -> _Call[Result]:  # fmt: skip
        """Change an open order's price and total size (human decimals, rounded to tick and lot)."""
        return self._send(C.AmendOrder(actor=self._actor(sub), timestamp=0, market=market, order_id=order_id,
                                       price=self.ticks(market, price), size=self.lots(market, size)))  # fmt: skip

    def _withdraw(self, asset: str, amount: int, *, sub: int = 0) -> _Call[Result]:
        """Withdraw `amount` of an asset (its smallest unit) from the sub-account's available balance."""
        return self._send(C.Withdraw(actor=self._actor(sub), timestamp=0, asset=asset, amount=amount))

    def _transfer(self, asset: str, amount: int, to_sub: int, *, sub: int = 0) -> _Call[Result]:
        """Move `amount` of an asset (its smallest unit) from sub-account `sub` to `to_sub` of the same address."""
        return self._send(C.Transfer(actor=self._actor(sub), timestamp=0, asset=asset, amount=amount, to_sub=to_sub))

    def _approve_agent(self, agent: bytes, name: str, expiry: int) -> _Call[Result]:
        """Let `agent` (a 20-byte address) sign trading commands for this account until `expiry` (ms)."""
        return self._send(C.ApproveAgent(actor=self._actor(0), timestamp=0, agent=agent, name=name, expiry=expiry))

    def _market_action(self, market: str, action: str, args: dict[str, Any], *, sub: int = 0) -> _Call[Result]:
        """A market type's own command: split, merge or convert shares; a perpetual's leverage or margin."""
        return self._send(C.MarketAction(actor=self._actor(sub), timestamp=0, market=market, action=action,
                                         args=args))  # fmt: skip

    def _set_leverage(self, market: str, leverage: int, *, isolated: bool | None = None, sub: int = 0) -> _Call[Result]:
        """A perpetual's leverage for this account (and cross or isolated margin, while it holds no position)."""
        args: dict[str, Any] = {"leverage": leverage}
        if isolated is not None:
            args["isolated"] = isolated
        return self._market_action(market, "leverage", args, sub=sub)

    def _isolated_margin(self, market: str, amount: int, *, sub: int = 0) -> _Call[Result]:
        """Add (amount > 0) or take back (amount < 0) an isolated position's margin, in settlement units."""
        return self._market_action(market, "margin", {"amount": amount}, sub=sub)

    def _revoke_agent(self, agent: bytes) -> _Call[Result]:
        """Withdraw an agent's approval."""
        return self._send(C.RevokeAgent(actor=self._actor(0), timestamp=0, agent=agent))

    def _faucet(self, *, sub: int = 0) -> _Call[dict[str, str]]:
        """Ask the venue's faucet (if its manifest enables one) for its amounts (smallest units by asset)."""
        return _Call("POST", "/v1/faucet", lambda body: dict(body["credited"]),
                     body={"address": _hex(self.address), "sub": sub})  # fmt: skip

    def _refresh_markets(self) -> _Call[dict[str, dict[str, Any]]]:
        """Fetch the markets again (after a listing or a status change); by name."""

        def keep(body: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            self.markets.clear()  # in place: an order channel shares this dict
            self.markets.update(_by_name(body))
            return self.markets

        return _Call("GET", "/v1/markets", keep)

    def _book(self, market: str, levels: int = 10, outcome: int = 0) -> _Call[dict[str, Any]]:
        """L2 depth (price, size, count as strings in ticks and lots, best first) with the book's sequence."""
        return _Call("GET", f"/v1/markets/{market}/book", _json, params={"levels": levels, "outcome": outcome})

    def _trades(self, market: str, limit: int = 100) -> _Call[list[dict[str, Any]]]:
        """The market's recent trades, newest first."""
        return _Call("GET", f"/v1/markets/{market}/trades", _json, params={"limit": limit})

    def _order(self, market: str, order_id: int) -> _Call[dict[str, Any]]:
        """An order's status: open (with what is filled), delayed, filled, cancelled or expired."""
        return _Call("GET", f"/v1/markets/{market}/orders/{order_id}", _json)

    def _order_by_client_id(self, market: str, client_id: bytes, *, sub: int = 0) -> _Call[dict[str, Any]]:
        """An order's status by the account's 16-byte client id."""
        params = {"address": _hex(self.address), "sub": sub, "client_id": _hex(client_id)}
        return _Call("GET", f"/v1/markets/{market}/orders", _json, params=params, auth=self._read_headers)

    def _account(self, *, sub: int = 0) -> _Call[dict[str, Any]]:
        """The sub-account's balances (available and locked, smallest units) and open orders."""
        return _Call("GET", f"/v1/accounts/{_hex(self.address)}", _json, params={"sub": sub}, auth=self._read_headers)

    def _fills(self, *, sub: int = 0, limit: int = 100) -> _Call[list[dict[str, Any]]]:
        """The sub-account's recent fills, newest first."""
        return _Call("GET", f"/v1/accounts/{_hex(self.address)}/fills", _json, params={"sub": sub, "limit": limit},
                     auth=self._read_headers)  # fmt: skip

    def _history(self, table: str, *, sub: int | None = None, market: str | None = None, before: str | None = None,
                 since: int | None = None, until: int | None = None,
                 limit: int = 100) -> _Call[dict[str, Any]]:  # fmt: skip
        """A page of the account's history (`table`: orders, fills, transfers or settlements), newest first: `items`,
        `next_before` (pass it as `before` for the next page) and `as_of_seq`."""
        if table not in HISTORY_TABLES:
            raise ClientError(f"table: one of {', '.join(HISTORY_TABLES)}, got {table!r}", code="BAD_ARGUMENT")
        filters = {"sub": sub, "market": market, "before": before, "since": since, "until": until}
        params = {"address": _hex(self.address), **{k: v for k, v in filters.items() if v is not None}, "limit": limit}
        return _Call("GET", f"/v1/history/{table}", _json, params=params, auth=self._read_headers)


H = TypeVar("H", httpx.Client, httpx.AsyncClient)
IDLE_RECONNECT = 4.0  # seconds: below the 5 s after which httpx and uvicorn drop an idle keep-alive connection


@attrs.define
class _Lane(Generic[H]):
    """One HTTP connection and when it last answered."""

    http: H
    used: float = -math.inf  # never: not connected yet

    def stale(self) -> bool:
        """Whether the next request would open a new connection (never used, or idle past the keep-alive).

        The client then connects first, with a cheap read, and takes the nonce after: connecting under
        load can take long enough for 100 later nonces of the signer to pass, and the engine refuses
        a nonce below its last 100."""
        return time.monotonic() - self.used > IDLE_RECONNECT


def _check_batch(n: int) -> None:
    """A batch the server would take (1..MAX_BATCH items): never split silently, as one batch is one commit."""
    if not 1 <= n <= MAX_BATCH:
        raise ClientError(f"batch: 1 to {MAX_BATCH} commands, got {n}", code="BAD_ARGUMENT")


def _named(method: Any, build: Callable[..., Any]) -> Any:
    """The generated method as its builder documents it, under the public name (`_place` -> `place`)."""
    method.__name__ = method.__qualname__ = build.__name__.lstrip("_")
    method.__doc__ = build.__doc__
    # help() and inspect show the builder's parameters; its return annotation (a _Call) is not what callers get
    method.__signature__ = inspect.signature(build).replace(return_annotation=inspect.Signature.empty)
    return method


def _blocking(build: Callable[Concatenate[_Venue, P], _Call[T]]) -> Callable[Concatenate[Client, P], T]:
    """A sync client method that runs one of `_Venue`'s requests."""

    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(functools.partial(build, self, *args, **kwargs))

    return _named(method, build)  # type: ignore[no-any-return]


def _awaiting(
    build: Callable[Concatenate[_Venue, P], _Call[T]],
) -> Callable[Concatenate[_AsyncRunner, P], Coroutine[Any, Any, T]]:
    """An async client method that runs one of `_Venue`'s requests."""

    async def method(self: _AsyncRunner, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(functools.partial(build, self, *args, **kwargs))

    return _named(method, build)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the sync client


class Client(_Venue):
    """One signer talking to one venue over HTTP, blocking (safe to share between threads).

    Each thread gets its own connection: threads sharing one httpx pool can wait behind each other
    for a long time (httpcore hands one idle connection to several waiters, and all but one retry), and
    a request overtaken by 100 later nonces of its signer is refused (the engine keeps the last 100)."""

    def __init__(self, base_url: str, private_key: bytes, *, account: bytes | None = None, timeout: float = 10,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        """Fetch the venue's signing domain and markets once; sign with `private_key` for `account` (default: own)."""
        self.base_url, self.timeout, self.transport = base_url, timeout, transport
        self._ssl = httpx.create_ssl_context()  # one for every thread: loading the CA bundle takes ~20 ms
        self._local = threading.local()
        self._opened: list[httpx.Client] = []
        self._opened_lock = threading.Lock()
        try:
            domain = Domain.from_info(self._run(functools.partial(_Call, "GET", "/v1/info", _json)))
            markets = _by_name(self._run(functools.partial(_Call, "GET", "/v1/markets", _json)))
        except BaseException:
            self.close()
            raise
        super().__init__(private_key, domain, markets, account)

    def _lane(self) -> _Lane[httpx.Client]:
        """This thread's connection (opened on first use)."""
        lane: _Lane[httpx.Client] | None = getattr(self._local, "lane", None)
        if lane is None:
            lane = self._local.lane = _Lane(httpx.Client(base_url=self.base_url, timeout=self.timeout,
                                                         verify=self._ssl, transport=self.transport))  # fmt: skip
            with self._opened_lock:
                self._opened.append(lane.http)
        return lane

    @property
    def http(self) -> httpx.Client:
        """This thread's HTTP client (for requests the client has no method for)."""
        return self._lane().http

    def close(self) -> None:
        """Close every thread's HTTP connection."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for http in opened:
            http.close()

    def __enter__(self) -> Self:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()

    def _run(self, make: Callable[[], _Call[T]]) -> T:
        """Connect if need be, then build the request (taking its nonce) and send it (see `_Lane.stale`)."""
        lane = self._lane()
        if lane.stale():
            lane.http.get("/v1/info")
        call = make()
        response = lane.http.send(call.request(lane.http))
        lane.used = time.monotonic()
        return _answer(response.status_code, _body(response), call)

    send = _blocking(_Venue._send)
    send_many = _blocking(_Venue._send_many)
    signed_batch = _blocking(_Venue._signed_batch)
    place = _blocking(_Venue._place)
    place_many = _blocking(_Venue._place_many)
    cancel = _blocking(_Venue._cancel)
    cancel_by_client_id = _blocking(_Venue._cancel_by_client_id)
    cancel_all = _blocking(_Venue._cancel_all)
    amend = _blocking(_Venue._amend)
    withdraw = _blocking(_Venue._withdraw)
    transfer = _blocking(_Venue._transfer)
    approve_agent = _blocking(_Venue._approve_agent)
    revoke_agent = _blocking(_Venue._revoke_agent)
    market_action = _blocking(_Venue._market_action)
    set_leverage = _blocking(_Venue._set_leverage)
    isolated_margin = _blocking(_Venue._isolated_margin)
    faucet = _blocking(_Venue._faucet)
    refresh_markets = _blocking(_Venue._refresh_markets)
    book = _blocking(_Venue._book)
    trades = _blocking(_Venue._trades)
    order = _blocking(_Venue._order)
    order_by_client_id = _blocking(_Venue._order_by_client_id)
    account = _blocking(_Venue._account)
    fills = _blocking(_Venue._fills)
    history = _blocking(_Venue._history)


# ------------------------------------------------------------------ async: HTTP and the order channel


class _AsyncRunner(_Venue):
    """The trading actions, awaited: shared by the async HTTP client and the WebSocket order channel."""

    async def _run(self, make: Callable[[], _Call[T]]) -> T:
        """Build the request (taking its nonce) only once it can be sent at once, then send it.

        A request that waits after taking its nonce can be overtaken by later ones of the same signer,
        and one overtaken by 100 is refused (the engine keeps each signer's last 100 nonces)."""
        raise NotImplementedError

    send = _awaiting(_Venue._send)
    send_many = _awaiting(_Venue._send_many)
    signed_batch = _awaiting(_Venue._signed_batch)
    place = _awaiting(_Venue._place)
    place_many = _awaiting(_Venue._place_many)
    cancel = _awaiting(_Venue._cancel)
    cancel_by_client_id = _awaiting(_Venue._cancel_by_client_id)
    cancel_all = _awaiting(_Venue._cancel_all)
    amend = _awaiting(_Venue._amend)
    withdraw = _awaiting(_Venue._withdraw)
    transfer = _awaiting(_Venue._transfer)
    approve_agent = _awaiting(_Venue._approve_agent)
    revoke_agent = _awaiting(_Venue._revoke_agent)
    market_action = _awaiting(_Venue._market_action)
    set_leverage = _awaiting(_Venue._set_leverage)
    isolated_margin = _awaiting(_Venue._isolated_margin)


class AsyncClient(_AsyncRunner):
    """One signer talking to one venue over HTTP and WebSockets, on asyncio (safe to share between tasks)."""

    def __init__(self, lanes: Lanes, private_key: bytes, domain: Domain, markets: dict[str, dict[str, Any]], *,
                 account: bytes | None = None) -> None:  # fmt: skip
        """Use `AsyncClient.connect`, which fetches the signing domain and the markets first."""
        super().__init__(private_key, domain, markets, account)
        self.lanes = lanes
        base = lanes.base_url.rstrip("/")
        self.ws_url = ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + "/v1/ws"
        self.ws = OrderChannel(self)

    @classmethod
    async def connect(cls, base_url: str, private_key: bytes, *, account: bytes | None = None,
                      connections: int = 32, timeout: float = 10,
                      transport: httpx.AsyncBaseTransport | None = None) -> AsyncClient:  # fmt: skip
        """A client for the venue at `base_url` (up to `connections` requests at once); domain and markets fetched."""
        # Well under the 100 nonces the engine remembers per signer: the server's order among requests
        # in flight is only roughly fair, and each request in flight is one a late one can be overtaken by.
        lanes = Lanes(base_url, connections, timeout, transport)
        try:
            domain = Domain.from_info(await lanes.run(functools.partial(_Call, "GET", "/v1/info", _json)))
            markets = _by_name(await lanes.run(functools.partial(_Call, "GET", "/v1/markets", _json)))
        except BaseException:
            await lanes.aclose()
            raise
        return cls(lanes, private_key, domain, markets, account=account)

    async def aclose(self) -> None:
        """Close the order channel and the HTTP connections."""
        await self.ws.close()
        await self.lanes.aclose()

    async def __aenter__(self) -> Self:
        """Use as an async context manager: closed on exit."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.aclose()

    async def _run(self, make: Callable[[], _Call[T]]) -> T:
        """Run a request on one of the lanes."""
        return await self.lanes.run(make)

    faucet = _awaiting(_Venue._faucet)
    refresh_markets = _awaiting(_Venue._refresh_markets)
    book = _awaiting(_Venue._book)
    trades = _awaiting(_Venue._trades)
    order = _awaiting(_Venue._order)
    order_by_client_id = _awaiting(_Venue._order_by_client_id)
    account = _awaiting(_Venue._account)
    fills = _awaiting(_Venue._fills)
    history = _awaiting(_Venue._history)

    def subscribe_book(self, market: str, **options: Unpack[StreamOptions]) -> BookSubscription:
        """A local L2 book of `market`, kept from the book channel (`async with`; see `BookSubscription`)."""
        return BookSubscription(self.ws_url, market, **options)

    def subscribe_trades(self, market: str, **options: Unpack[StreamOptions]) -> Subscription:
        """The market's trades as they happen (`async with ... as s: async for trade in s`)."""
        return Subscription(self.ws_url, {"channel": "trades", "market": market}, **options)

    def subscribe_user(self, **options: Unpack[StreamOptions]) -> Subscription:
        """This client's account's own events (orders, fills, transfers), logged in with its key (again after each
        reconnection). A `{"type": "logged_out"}` message says the server ended the login (an agent revoked or
        expired); the stream then ends."""
        return Subscription(self.ws_url, {"channel": "user", "address": _hex(self.address)}, login=self.login,
                            **options)  # fmt: skip


class Lanes:
    """Up to `n` HTTP connections, each carrying one request at a time, handed to waiting tasks first come first served.

    Not one shared httpx pool: under load httpcore offers one idle connection to several waiting
    requests and all but one go back to waiting, so a request can wait for a second while hundreds
    of later ones pass it; here a request is built (its nonce taken) only once it holds a connection."""

    def __init__(self, base_url: str, n: int, timeout: float = 10,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:  # fmt: skip
        """No connection yet: each of the `n` lanes opens on first use."""
        if n < 1:
            raise ClientError(f"connections: at least 1, got {n}", code="BAD_ARGUMENT")
        self.base_url, self.n, self.timeout, self.transport = base_url, n, timeout, transport
        self._ssl = httpx.create_ssl_context()  # one for every lane: loading the CA bundle takes ~20 ms
        self._idle: list[_Lane[httpx.AsyncClient]] = []
        self._opened: list[_Lane[httpx.AsyncClient]] = []
        self._waiters: deque[asyncio.Future[_Lane[httpx.AsyncClient]]] = deque()

    async def _acquire(self) -> _Lane[httpx.AsyncClient]:
        """An idle lane, a new one, or (all busy) the next one released, in order of asking."""
        if self._idle and not self._waiters:
            return self._idle.pop()
        if len(self._opened) < self.n:
            http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, verify=self._ssl,
                                     transport=self.transport, limits=httpx.Limits(max_connections=1))  # fmt: skip
            lane = _Lane(http)
            self._opened.append(lane)
            return lane
        waiter: asyncio.Future[_Lane[httpx.AsyncClient]] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a lane just as it was cancelled
                self._release(waiter.result())
            raise

    def _release(self, lane: _Lane[httpx.AsyncClient]) -> None:
        """Hand a lane to the longest waiter, or make it idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(lane)  # straight to the longest waiter: nobody arriving later can take it
                return
        self._idle.append(lane)

    async def run(self, make: Callable[[], _Call[T]]) -> T:
        """Take a lane (connected), then build the request and send it on that lane."""
        lane = await self._acquire()
        try:
            if lane.stale():
                await lane.http.get("/v1/info")
            call = make()
            response = await lane.http.send(call.request(lane.http))
            lane.used = time.monotonic()
        finally:
            self._release(lane)
        return _answer(response.status_code, _body(response), call)

    async def aclose(self) -> None:
        """Close every connection."""
        opened, self._opened, self._idle = self._opened, [], []
        for lane in opened:
            await lane.http.aclose()


# the order channel's op for each action endpoint, and its payload from the REST body
_WS_OPS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "/v1/actions": ("post", lambda body: {"action": body}),
    "/v1/actions/batch": ("batch", lambda body: body),
    "/v1/actions/signed-batch": ("signed_batch", lambda body: body),
}


class OrderChannel(_AsyncRunner):
    """The WebSocket order channel: the trading actions posted over one connection, answered by id.

    Opened on first use and again after a drop; an action in flight when the connection drops raises
    ClientError DISCONNECTED, and one unanswered for `timeout` seconds TIMEOUT (either may or may not
    have been applied: ask `order` or `account`). Each action is signed only once the connection is
    open and written at once, so the server receives them in the order of their nonces."""

    def __init__(self, client: AsyncClient, *, timeout: float = 10) -> None:
        """Post for `client`'s signer and account (its markets and nonces are shared)."""
        super().__init__(client.key, client.domain, client.markets, client.address)
        self.url = client.ws_url
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()

    async def _connection(self) -> ClientConnection:
        """The open connection, opened first if need be."""
        async with self._opening:
            if self._ws is None:
                self._ws = await connect(self.url, proxy=None, open_timeout=self.timeout, max_size=MAX_MESSAGE)
                self._reader = asyncio.ensure_future(self._read(self._ws))
            return self._ws

    async def _read(self, ws: ClientConnection) -> None:
        """Hand each answer to the request with its id; on a drop, fail what is still waiting."""
        try:
            async for text in ws:
                message = json.loads(text)
                future = self._waiting.pop(message.get("id"), None) if isinstance(message.get("id"), int) else None
                if future is None or future.done():
                    continue
                if message.get("channel") == "post":
                    future.set_result((int(message.pop("status", 200)), message))
                else:  # the server refused the message itself
                    future.set_exception(_refusal(400, message))
        except ConnectionClosed:
            pass
        finally:
            if self._ws is ws:
                self._ws = None
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ClientError("the order channel closed with this action in flight",
                                                     code="DISCONNECTED"))  # fmt: skip
            self._waiting.clear()

    async def _run(self, make: Callable[[], _Call[T]]) -> T:
        """Open the connection if need be, then sign the action and post it; its answer by id."""
        ws = await self._connection()
        call = make()
        if call.path not in _WS_OPS or call.body is None:
            raise ClientError(f"{call.method} {call.path} has no order-channel form", code="BAD_ARGUMENT")
        op, payload = _WS_OPS[call.path]
        request_id = next(self._ids)
        future: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await ws.send(json.dumps({"op": op, "id": request_id, **payload(call.body)}, separators=(",", ":")))
            status, body = await asyncio.wait_for(future, self.timeout)
        except ConnectionClosed:
            raise ClientError("the order channel closed before the action was sent", code="DISCONNECTED") from None
        except TimeoutError:
            raise ClientError(f"no answer within {self.timeout} s: the action may or may not have been applied",
                              code="TIMEOUT") from None  # fmt: skip
        finally:
            self._waiting.pop(request_id, None)
        return _answer(status, body, call)

    async def close(self) -> None:
        """Close the connection (the next action opens a new one)."""
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            await ws.close()
        if reader is not None:
            await reader


# ------------------------------------------------------------------ subscriptions


class _Stream:
    """One subscription on its own WebSocket connection: resubscribes after a drop, with backoff."""

    def __init__(self, url: str, request: dict[str, Any], *, backoff: float = 0.05, max_backoff: float = 2.0,
                 open_timeout: float = 10, login: Callable[[], dict[str, Any]] | None = None) -> None:  # fmt: skip
        """Subscribe with `request` (channel and market or address) at `url` once opened, after a fresh `login()`
        message on each connection if given (the user channel)."""
        self.url = url
        self.request = request
        self.login = login
        self.backoff, self.max_backoff, self.open_timeout = backoff, max_backoff, open_timeout
        self.resyncs: list[str] = []  # why the stream started over: gap, checksum, resync, disconnected
        self._ws: ClientConnection | None = None
        self._pending: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)
        self._failures = 0
        self._closed = False

    async def __aenter__(self) -> Self:
        """Connect and subscribe."""
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Unsubscribe by closing the connection."""
        await self.close()

    async def open(self) -> None:
        """Connect and subscribe: ClientError if the server refuses the subscription or cannot be reached."""
        await self._subscribe(retry=False)

    async def close(self) -> None:
        """Close the connection; iteration ends."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    async def _subscribe(self, *, retry: bool = True) -> None:
        """(Re)connect until subscribed, backing off more with each consecutive failure (or, first, try once)."""
        while not self._closed:
            if self._failures:
                delay = min(self.max_backoff, self.backoff * 2 ** (self._failures - 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: clients dropped together spread out
            ws = None
            try:
                ws = await connect(self.url, proxy=None, open_timeout=self.open_timeout, max_size=MAX_MESSAGE)
                if self._closed:  # closed while connecting
                    await ws.close()
                    return
                self._ws = ws
                await self._handshake(ws)
                return
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                if ws is not None:
                    await ws.close()
                self._ws = None
                self._failures += 1
                if not retry:
                    raise ClientError(f"cannot subscribe at {self.url}: {exc!r}", code="UNREACHABLE") from exc

    async def _handshake(self, ws: ClientConnection) -> None:
        """Log in if need be, send the subscription, keep what arrives before its acknowledgement (a book's snapshot).

        The server handles a connection's messages in order, so the subscription can follow the login at once."""
        self._pending.clear()
        if self.login is not None:
            await ws.send(json.dumps({**self.login(), "id": next(self._ids)}))
        request_id = next(self._ids)
        await ws.send(json.dumps({"op": "subscribe", "id": request_id, **self.request}))
        async with asyncio.timeout(self.open_timeout):
            while True:
                message = json.loads(await ws.recv())
                if message.get("id") == request_id and message.get("channel") == "subscription":
                    return
                if message.get("channel") == "error":
                    self._closed = True
                    await ws.close()
                    raise _refusal(400, message)
                if message.get("channel") != "login":
                    self._pending.append(message)

    async def _reconnect(self, reason: str) -> None:
        """Drop the connection and subscribe again (a book rebuilds from the new snapshot)."""
        self.resyncs.append(reason)
        self._failures += 1
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        await self._subscribe()

    def _healthy(self) -> None:
        """A message was good: the next failure starts the backoff afresh."""
        self._failures = 0

    async def _next(self) -> dict[str, Any]:
        """The next message of the channel, reconnecting across drops (StopAsyncIteration once closed)."""
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._closed or self._ws is None:
                raise StopAsyncIteration
            try:
                message: dict[str, Any] = json.loads(await self._ws.recv())
            except ConnectionClosed:
                if self._closed:
                    raise StopAsyncIteration from None
                await self._reconnect("disconnected")
                self._on_reconnected()
                continue
            if message.get("channel") == "error":
                raise _refusal(400, message)
            if message.get("type") == "logged_out":  # the server ended the login: nothing more will come
                self._closed = True
                await self._ws.close()
                return message
            if message.get("channel") not in ("subscription", "login"):
                return message

    def _on_reconnected(self) -> None:
        """Hook: what a stream tells its reader after resubscribing."""


class Subscription(_Stream):
    """The trades or user channel as an async iterator of messages, resubscribing after drops.

    After a reconnection it yields `{"channel": c, "type": "resync", "reason": "reconnected"}` (as the
    server does when a slow reader lost messages): what happened in between is for REST to tell."""

    def __aiter__(self) -> Self:
        """Iterate over the channel's messages."""
        return self

    async def __anext__(self) -> dict[str, Any]:
        """The next message (trades: one trade; user: one of the account's events)."""
        message = await self._next()
        self._healthy()
        return message

    def _on_reconnected(self) -> None:
        """Tell the reader that messages may have been missed."""
        self._pending.appendleft({"channel": self.request["channel"], "type": "resync", "reason": "reconnected"})


class BookSubscription(_Stream):
    """A local L2 book kept from the book channel: price (ticks) -> (size in lots, order count) per side.

    Each delta must continue from the last sequence (`prev_seq`), and after every message the top
    CHECKSUM_LEVELS levels must match the server's checksum; a gap, a mismatch or a dropped connection
    makes it reconnect and rebuild from a fresh snapshot (a server `resync` snapshot rebuilds in place).
    A reader task keeps it current from `open()` until `close()`."""

    def __init__(self, url: str, market: str, **options: Unpack[StreamOptions]) -> None:
        """The book of `market` at `url`."""
        super().__init__(url, {"channel": "book", "market": market}, **options)
        self.market = market
        self.bids: dict[int, tuple[int, int]] = {}
        self.asks: dict[int, tuple[int, int]] = {}
        self.seq: int | None = None  # the last message's sequence (None until the first snapshot)
        self.messages = 0  # messages applied
        self.verified = 0  # messages whose checksum matched
        self.version = 0  # bumped on every change, for `wait_for`
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def open(self) -> None:
        """Subscribe, apply the first snapshot, and keep the book current in the background."""
        await super().open()
        while self._pending:
            await self._apply(self._pending.popleft())
        self._task = asyncio.ensure_future(self._follow())

    async def close(self) -> None:
        """Stop following the book."""
        await super().close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        """Apply every message until closed (the reader task)."""
        try:
            while True:
                await self._apply(await self._next())
        except StopAsyncIteration:
            pass
        except Exception as exc:  # a refused resubscription: waiters raise it instead of waiting forever
            self._error = exc
            async with self._changed:
                self._changed.notify_all()

    async def _apply(self, message: dict[str, Any]) -> None:
        """Apply a snapshot or a delta, or resubscribe if it does not continue the book or its checksum fails."""
        if message.get("channel") != "book":
            return
        if message["type"] == "snapshot":
            if message.get("resync"):
                self.resyncs.append("resync")
            self.bids = {int(p): (int(s), int(c)) for p, s, c in message["bids"]}
            self.asks = {int(p): (int(s), int(c)) for p, s, c in message["asks"]}
        elif self.seq is None or int(message["prev_seq"]) != self.seq:
            await self._reconnect("gap")
            return
        else:
            for levels, rows in ((self.bids, message["bids"]), (self.asks, message["asks"])):
                for p, s, c in rows:
                    if int(s):
                        levels[int(p)] = (int(s), int(c))
                    else:
                        levels.pop(int(p), None)
        self.seq = int(message["seq"])
        self.messages += 1
        if self.checksum() != int(message["checksum"]):
            await self._reconnect("checksum")
            return
        self.verified += 1
        self._healthy()
        self.version += 1
        async with self._changed:
            self._changed.notify_all()

    async def _reconnect(self, reason: str) -> None:
        """Forget the sequence, then resubscribe."""
        self.seq = None  # nothing continues the old book: only a snapshot does
        await super()._reconnect(reason)

    def depth(self, levels: int | None = None) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(bids, asks) as (price, size, count) rows, best first; every level unless `levels`."""
        n_bids = len(self.bids) if levels is None else levels
        n_asks = len(self.asks) if levels is None else levels
        bids = [(p, *self.bids[p]) for p in heapq.nlargest(n_bids, self.bids)]
        asks = [(p, *self.asks[p]) for p in heapq.nsmallest(n_asks, self.asks)]
        return bids, asks

    def checksum(self) -> int:
        """The CRC-32 of the top CHECKSUM_LEVELS levels, as `exos.feed` defines it."""
        bids, asks = self.depth(CHECKSUM_LEVELS)
        return checksum([(p, s) for p, s, _ in bids], [(p, s) for p, s, _ in asks])

    def best_bid(self) -> int | None:
        """The highest bid price (ticks), if any."""
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        """The lowest ask price (ticks), if any."""
        return min(self.asks) if self.asks else None

    async def wait_for(self, predicate: Callable[[BookSubscription], bool], timeout: float | None = 10) -> None:
        """Wait until `predicate(book)` holds (TimeoutError after `timeout` seconds; None waits for ever)."""
        async with asyncio.timeout(timeout), self._changed:
            while not predicate(self):
                if self._error is not None:
                    raise self._error
                await self._changed.wait()

    async def wait_seq(self, seq: int, timeout: float = 10) -> None:
        """Wait until the book has applied sequence `seq` (a `book_seq` from an action's BookDelta event)."""
        await self.wait_for(lambda book: book.seq is not None and book.seq >= seq, timeout)

    async def updates(self) -> AsyncIterator[BookSubscription]:
        """The book after each change (changes that come faster than the reader are coalesced)."""
        seen = self.version
        while True:
            await self.wait_for(_changed_since(seen), timeout=None)
            seen = self.version
            yield self


def _changed_since(version: int) -> Callable[[BookSubscription], bool]:
    """Whether a book has changed since `version`."""
    return lambda book: book.version > version
