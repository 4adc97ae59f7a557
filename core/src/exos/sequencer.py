"""The sequencer: the one process that owns the engine and its journal, and what it answers.

Verified actions reach it already stamped with their signer; it stamps the time (milliseconds, never
earlier than the last command), checks the gateway's rate limits, applies everything that arrived
together as one group commit (one fsync acknowledges them all) and hands back each action's events.
Reads (books, accounts, orders, trades, fills) are answered from the engine and the tape between
groups, so a client reads its own writes; so is whether a signer may read an account (its agents
are engine state), and which logins were accepted already (`exos.auth`).

`Sequencer` is the logic; `run` is the process loop that serves verifier processes over Unix sockets
(`exos.wire` frames). The same `Sequencer` serves in-process (`exos.server.LocalBackend`) for tests and
for `--verifiers 0`.
"""

from __future__ import annotations

import functools
import gc
import heapq
import json
import marshal
import selectors
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import structlog

from exos import commands as C
from exos.engine import Engine
from exos.events import EventKind, RawEvent
from exos.feed import trade_json
from exos.ratelimit import Buckets, Limits
from exos.tape import Tape
from exos.wire import FrameReader, frame

log = structlog.get_logger(__name__)

_DONE = int(EventKind.COMMAND_DONE)
_CANCELS = frozenset((int(C.Kind.CANCEL), int(C.Kind.CANCEL_BY_CLIENT_ID), int(C.Kind.CANCEL_ALL)))
_ADDRESS = slice(C.ADDRESS_OFFSET, C.ADDRESS_OFFSET + C.ADDRESS_LEN)  # the account address inside a record
BOOK_LEVELS_MAX = 1000
READ_WINDOW_MS = 60_000  # a signed read or login is good within this much of the server's clock (exos.auth)
# Logins remembered against replay (each for two windows) at most: past it new logins wait (503), so memory
# stays bounded whatever the login rate; per-IP read limits keep one sender from filling it.
LOGINS_MAX = 1_000_000
READY_WITHIN_S = 120.0  # a verifier that has not said ready by then (imports, the books' mirror) is broken


class QueryError(Exception):
    """A read that cannot be answered: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """The error envelope's parts."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def address_param(text: str) -> bytes:
    """A 0x address from a request (QueryError 422 if it is not 0x and 40 hex digits)."""
    if len(text) == 42 and text.startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raw = b""
        if len(raw) == 20:  # fromhex also skips spaces: count the bytes
            return raw
    raise QueryError(422, "BAD_REQUEST", "address: 0x and 40 hex digits")


def bounded(name: str, value: int, lo: int, hi: int) -> int:
    """A request's integer within [lo, hi] (QueryError 422 naming the bounds otherwise)."""
    if not lo <= value <= hi:
        raise QueryError(422, "BAD_REQUEST", f"{name}: {lo}..{hi}")
    return value


Item = tuple[str, str] | tuple[int, int]  # an error (code, message) or a slice of the group's events


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


class Sequencer:
    """The engine behind the gateway: group commits, rate limits, reads."""

    def __init__(self, engine: Engine, *, clock: Callable[[], int] | None = None, limits: Limits | None = None,
                 logins_max: int = LOGINS_MAX) -> None:  # fmt: skip
        """Serve `engine`; `clock` gives milliseconds (default: the wall clock); `logins_max`: logins remembered."""
        self.engine = engine
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        limits = limits or Limits()
        self.limits = limits
        self.logins_max = logins_max
        self.by_address = Buckets(limits.address_rate, limits.address_burst)
        self.by_ip = Buckets(limits.ip_rate, limits.ip_burst)
        self.tape = Tape()
        self.admin = engine.manifest.venue.admins[0]
        # logins accepted while their timestamp could pass the window again: (signer, account, timestamp)
        self.logins: set[bytes] = set()
        self.login_times: list[tuple[int, bytes]] = []  # a heap by timestamp, to forget them in order

    def now(self) -> int:
        """A timestamp no earlier than the engine's last."""
        return max(self.clock(), self.engine.last_timestamp)

    # ------------------------------------------------------------ writes

    def submit(
        self, requests: list[tuple[str | None, list[bytes]]], *, limited: bool = True
    ) -> tuple[list[RawEvent], list[list[Item]]]:
        """Apply requests (sender IP, signed records) as one group commit: all events, and per request per record
        an error or the slice of the events that are its own (`limited=False`: the venue's own commands)."""
        now = self.now()
        records: list[bytes] = []
        answers: list[list[Item]] = []
        for ip, items in requests:
            answer: list[Item] = []
            only_cancels = all(r[0] in _CANCELS for r in items)
            if ip is not None and not self.by_ip.take(ip, force=only_cancels):
                answers.append([("RATE_LIMITED", f"more than {self.by_ip.rate:g} requests/s from {ip}")] * len(items))
                continue
            for record in items:
                if limited and record[0] not in _CANCELS and not self.by_address.take(record[_ADDRESS]):
                    rate = self.by_address.rate
                    answer.append(("RATE_LIMITED", f"more than {rate:g} actions/s for {_hex(record[_ADDRESS])}"))
                    continue
                answer.append((len(records), 0))  # the record's position, turned into its events below
                records.append(C.stamped(record, now))
            answers.append(answer)
        events = self.engine.submit_records(records) if records else []
        starts = [0]
        for i, event in enumerate(events):
            if event[3] == _DONE:
                starts.append(i + 1)
        for answer in answers:
            for j, item in enumerate(answer):
                if isinstance(item[0], int):
                    n = item[0]
                    answer[j] = (starts[n], starts[n + 1])
        self.tape.record(events)
        return events, answers

    def due(self) -> bool:
        """Whether an engine timer is due by the clock (then `tick` fires it)."""
        due = self.engine.timers.next_time()
        return due is not None and due <= self.clock()

    def tick(self) -> list[RawEvent]:
        """Advance the engine's time to now (a journaled Tick by the admin): timers fire."""
        command = C.Tick(actor=C.Actor(self.admin), timestamp=self.now())
        events, _ = self.submit([(None, [command.pack()])], limited=False)
        return events

    def faucet(self, address: bytes, sub: int) -> tuple[list[RawEvent], dict[str, str]]:
        """Credit the manifest's faucet amounts to an account (QueryError unless the manifest enables one)."""
        venue = self.engine.manifest.venue
        if not venue.faucet:
            raise QueryError(404, "NO_FAUCET", "this venue's manifest enables no faucet")
        records, credited = [], {}
        for symbol, amount in sorted(venue.faucet.items()):
            units = int(amount * Decimal(10) ** self.engine.manifest.asset(symbol).decimals)
            records.append(C.Deposit(actor=C.Actor(address, sub, self.admin), timestamp=0, asset=symbol,
                                     amount=units).pack())  # fmt: skip
            credited[symbol] = str(units)
        events, [answer] = self.submit([(None, records)], limited=False)  # the venue's deposits: no rate limit
        for item in answer:
            done = events[int(item[1]) - 1]
            if not done[4]:
                rejected = events[int(item[1]) - 2]
                raise QueryError(400, rejected[4], rejected[5])
        return events, credited

    # ------------------------------------------------------------ reads

    def query(self, name: str, args: dict[str, Any]) -> Any:
        """Answer a read by name (JSON-able, numbers as strings); QueryError if it cannot be answered."""
        handler = getattr(self, "q_" + name, None)
        if handler is None:
            raise QueryError(404, "NOT_FOUND", f"no query {name!r}")
        return handler(**args)

    def q_info(self) -> dict[str, str]:
        """The signing domain."""
        venue = self.engine.manifest.venue
        return {"name": venue.name, "version": "1", "chain_id": str(venue.chain_id),
                "verifying_contract": _hex(venue.verifying_contract)}  # fmt: skip

    def q_limits(self) -> dict[str, float]:
        """The gateway's rate limits (API processes enforce the read limits themselves; not a public route)."""
        return attrs.asdict(self.limits)

    def q_markets(self) -> list[dict[str, Any]]:
        """Every market with its listing and status."""
        out = []
        for ms in self.engine.markets:
            listing = json.loads(ms.spec_json)
            out.append({
                "name": ms.name, "type": ms.market_type, "base": ms.base_symbol, "quote": ms.quote_symbol,
                "tick_size": str(listing["tick_size"]), "lot_size": str(listing["lot_size"]),
                "status": C.Status(ms.status).name.lower(), "outcomes": str(ms.outcomes),
                "params": _strings({k: v for k, v in listing.items() if k not in ("name", "tick_size", "lot_size")}),
            })  # fmt: skip
            if ms.margined:  # a perpetual's live figures: mark and oracle (ticks), open interest (lots), funding
                market: Any = ms.market
                out[-1]["perp"] = _strings({"mark": market.mark, "oracle": market.oracle_ticks,
                                            "open_interest": market.long_oi,
                                            "funding_rate_ppb": market.funding_rate_ppb})  # fmt: skip
        return out

    def _market(self, market: str) -> Any:
        try:
            return self.engine.market_state(market)
        except KeyError:
            raise QueryError(404, "UNKNOWN_MARKET", f"no market named {market!r}") from None

    def q_book(self, market: str, levels: int = 10, outcome: int = 0) -> dict[str, Any]:
        """L2 depth (price, size, count as strings; best first) with the book's sequence number."""
        ms = self._market(market)
        try:
            bids, asks = self.engine.depth(market, levels, outcome)
        except ValueError as exc:
            raise QueryError(422, "BAD_REQUEST", str(exc)) from None

        def rows(side: list[Any]) -> list[list[str]]:
            return [[str(lv.price), str(lv.size), str(lv.count)] for lv in side]

        return {"market": market, "seq": str(ms.book.seq), "bids": rows(bids), "asks": rows(asks)}

    def q_books(self) -> list[tuple[str, int, list[tuple[int, int, int]], list[tuple[int, int, int]]]]:
        """Every book at full depth (market, seq, bids, asks as integer rows): the feed's starting point."""
        out = []
        for ms in self.engine.markets:
            bids, asks = ms.book.depth(0, 1 << 30), ms.book.depth(1, 1 << 30)
            out.append((ms.name, ms.book.seq, [(lv.price, lv.size, lv.count) for lv in bids],
                        [(lv.price, lv.size, lv.count) for lv in asks]))  # fmt: skip
        return out

    def q_account(self, address: bytes, sub: int = 0) -> dict[str, Any]:
        """Balances (available and locked) and open orders of one sub-account."""
        balances = {
            symbol: {"available": str(a), "locked": str(lk)}
            for symbol, (a, lk) in self.engine.balances(address, sub).items()
            if a or lk
        }
        orders = [_open_order(name, o) for name, o in self.engine.open_orders(address, sub)]
        out = {"address": _hex(address), "sub": sub, "balances": balances, "open_orders": orders}
        if self.engine.margin is not None:  # a venue with unified margin: positions and margin per risk group
            out["positions"] = [_strings(row) for row in self.engine.positions(address, sub)]
            out["margin"] = {
                group: _strings(figures) for group, figures in self.engine.account_margin(address, sub).items()
            }
        return out

    def q_order(self, market: str, order_id: int | None = None, address: bytes = b"", sub: int = 0,
                client_id: bytes = b"") -> dict[str, Any]:  # fmt: skip
        """One order's status by id, or by the account's client id: open, delayed, filled, cancelled or expired."""
        self._market(market)
        if order_id is None:
            open_order = self.engine.order_by_client_id(market, address, sub, client_id)
            order_id = open_order.order_id if open_order is not None else self.tape.order_id(market, address, sub,
                                                                                              client_id)  # fmt: skip
            if order_id is None:
                raise QueryError(404, "UNKNOWN_ORDER", f"no recent order with client id 0x{client_id.hex()}")
        row = self.tape.order(market, order_id)
        live = self.engine.order(market, order_id)
        if live is not None:
            out = _open_order(market, live)
            out["status"] = "open"
            out["filled"] = str(live.size - live.remaining)
            return out
        if row is None:
            raise QueryError(404, "UNKNOWN_ORDER", f"order {order_id} in {market} is neither open nor recent")
        first = row[3]
        return {"market": market, "order_id": str(order_id), "address": _hex(first[6]), "sub": first[7],
                "side": first[8], "price": str(first[9]), "size": str(row[2]), "filled": str(row[1]),
                "status": row[0], "reason": row[4] if len(row) > 4 else None}  # fmt: skip

    def q_authorise(self, account: bytes, signer: bytes, login: int | None = None) -> dict[str, Any]:
        """Whether `signer` may read `account` now: the account itself, or an approved, unexpired agent of it (then
        its expiry, ms). With `login` (a WebSocket login's timestamp), also that this login is not a replay."""
        expiry = None
        if signer != account:
            expiry = self.engine.agents.expiry(account, signer, self.now())
            if expiry is None:
                raise QueryError(401, "NOT_AUTHORISED", f"signer {_hex(signer)} is neither {_hex(account)} nor an "
                                 "approved, unexpired agent of it")  # fmt: skip
        if login is not None:
            self._once(signer + account + login.to_bytes(8, "big"), login)
        return {"expiry": expiry}

    def _once(self, key: bytes, timestamp: int) -> None:
        """Accept a login once (QueryError LOGIN_REPLAYED the second time); forget those the window now refuses."""
        horizon = self.clock() - 2 * READ_WINDOW_MS  # twice the window: clocks of other processes may differ a little
        while self.login_times and self.login_times[0][0] < horizon:
            self.logins.discard(heapq.heappop(self.login_times)[1])
        if key in self.logins:
            raise QueryError(401, "LOGIN_REPLAYED", f"this login (timestamp {timestamp}) was accepted before: sign "
                             "a new one")  # fmt: skip
        if len(self.logins) >= self.logins_max:
            raise QueryError(503, "TOO_MANY_LOGINS", f"{len(self.logins)} logins of the last "
                             f"{2 * READ_WINDOW_MS // 1000} s are remembered, the most this server keeps: try again "
                             "shortly")  # fmt: skip
        self.logins.add(key)
        heapq.heappush(self.login_times, (timestamp, key))

    def q_oracles(self) -> list[dict[str, Any]]:
        """Every oracle feed: its aggregate at the engine's time (null while stale) and each source's latest price."""
        engine = self.engine
        out = []
        for spec in engine.manifest.oracles:
            feed = engine.oracles[spec.name]
            value = feed.value(engine.last_timestamp)
            latest = getattr(feed, "latest", {})
            sources = {k: {"price": str(p), "published_ms": str(t)} for k, (p, t) in latest.items()}
            price = None if value is None else str(value)
            out.append({"name": spec.name, "kind": spec.kind, "price": price, "sources": sources})
        return out

    def q_trades(self, market: str, limit: int = 100) -> list[dict[str, Any]]:
        """The market's most recent trades (newest first; price and side in the taker's terms)."""
        self._market(market)
        trades = self.tape.trades.get(market, ())
        return [trade_json(e) for e in list(trades)[::-1][:limit]]

    def q_fills(self, address: bytes, sub: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """An account's most recent fills (newest first)."""
        fills = self.tape.fills.get((address, sub), ())
        return [_fill(e) for e in list(fills)[::-1][:limit]]


def _strings(value: Any) -> Any:
    """A listing's JSON with every number as a decimal string (JSON clients lose precision past 2^53)."""
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _open_order(market: str, o: Any) -> dict[str, Any]:
    """An open order as JSON."""
    return {"market": market, "order_id": str(o.order_id), "side": int(o.side), "price": str(o.price),
            "size": str(o.size), "remaining": str(o.remaining), "outcome": o.slots[3],
            "client_id": None if o.client_id is None else _hex(o.client_id)}  # fmt: skip


def _fill(e: RawEvent) -> dict[str, Any]:
    """A fill as JSON."""
    return {**trade_json(e), "order_id": str(e[6]), "maker": e[10], "fee": str(e[13]), "fee_asset": e[14]}


# ------------------------------------------------------------------ the process loop


def freeze_startup_objects() -> None:
    """Keep everything loaded so far (engine, books, plugins, the app) out of the cyclic collector's passes, and
    collect rarely: a full pass over a large heap takes milliseconds, straight into a server's latency."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def run(
    sequencer: Sequencer,
    peers: list[socket.socket],
    should_stop: Callable[[], bool],
    on_ready: Callable[[], None],
    ready_within: float = READY_WITHIN_S,
) -> None:
    """Serve verifier processes over `peers` until `should_stop()` or every peer has gone (`on_ready` per ready one).

    A venue that cannot start as configured stops at once: a verifier that goes away before saying ready, or
    one not ready within `ready_within` seconds, ends the loop (the caller exits with an error)."""
    freeze_startup_objects()
    selector = selectors.DefaultSelector()
    readers = {}
    for each in peers:  # blocking for sends; reads never wait (MSG_DONTWAIT), so the loop never blocks on one peer
        selector.register(each, selectors.EVENT_READ)
        readers[each] = FrameReader()
    live = set(peers)
    starting = set(peers)  # not ready yet
    deadline = time.monotonic() + ready_within  # the process loop's own clock: nothing the engine sees
    while live and not should_stop():
        if starting and time.monotonic() > deadline:
            log.error("exos.sequencer.verifier_not_ready", waiting=len(starting), seconds=ready_within)
            break
        ready = selector.select(timeout=0.05)
        submits: list[tuple[socket.socket, int, str | None, list[bytes]]] = []
        reads: list[tuple[socket.socket, tuple[Any, ...]]] = []
        failed = False
        for key, _ in ready:
            peer = key.fileobj
            assert isinstance(peer, socket.socket)
            try:
                data = peer.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(peer)
                live.discard(peer)
                if peer in starting:  # the venue cannot start as configured
                    log.error("exos.sequencer.verifier_failed", detail="a verifier went away before it was ready")
                    failed = True
                    break
                continue
            for message in readers[peer].feed(data):
                request = marshal.loads(message)
                if request[0] == "S":
                    submits.extend((peer, request_id, ip, records) for request_id, ip, records in request[1])
                elif request[0] == "r":
                    starting.discard(peer)
                    on_ready()
                else:
                    reads.append((peer, request))
        if failed:
            break
        events: list[RawEvent] = []
        replies: dict[socket.socket, list[tuple[int, list[Item]]]] = {peer: [] for peer in live}
        if submits:
            events, answers = sequencer.submit([(ip, records) for _, _, ip, records in submits])
            for (peer, request_id, _, _), answer in zip(submits, answers, strict=True):
                if peer in replies:
                    replies[peer].append((request_id, answer))
        elif sequencer.due():
            events = sequencer.tick()
        # before any read is answered: a feed's snapshot must not already hold these events
        if events or any(replies.values()):
            _broadcast(events, replies, live)
        for peer, request in reads:
            if request[0] == "f":

                def faucet(address: bytes = request[2], sub: int = request[3]) -> dict[str, str]:
                    faucet_events, credited = sequencer.faucet(address, sub)
                    _broadcast(faucet_events, {}, live)
                    return credited

                reply = _reply(request[1], "faucet", faucet)
            else:
                reply = _reply(request[1], request[2], functools.partial(sequencer.query, request[2], request[3]))
            _send(peer, reply, live)
    selector.close()


def _broadcast(events: list[RawEvent], replies: dict[socket.socket, list[Any]], live: set[socket.socket]) -> None:
    """Every verifier gets the group's events (its feed) with the answers to its own requests."""
    blob = marshal.dumps(events)
    for peer in list(live):
        _send(peer, ("g", blob, replies.get(peer, [])), live)


def _reply(request_id: int, name: str, answer: Callable[[], Any]) -> tuple[Any, ...]:
    """The answer frame to a read or faucet request: its payload, or its error (any failure: a 500)."""
    try:
        return ("q", request_id, 200, answer())
    except QueryError as exc:
        return ("q", request_id, exc.status, {"code": exc.code, "message": exc.message})
    except Exception as exc:  # a request must never take the sequencer down
        log.exception("exos.sequencer.request_failed", request=name)
        return ("q", request_id, 500, {"code": "INTERNAL", "message": type(exc).__name__})


def _send(peer: socket.socket, message: tuple[Any, ...], live: set[socket.socket]) -> None:
    """Send one frame; a verifier that has gone is dropped."""
    try:
        peer.sendall(frame(marshal.dumps(message)))
    except OSError:
        live.discard(peer)
