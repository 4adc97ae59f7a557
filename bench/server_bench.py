#!/usr/bin/env python3
"""Server benchmark: accepted (journaled) orders/s through `exos serve`, and latency to the user channel.

Starts `exos serve` on the spot example (journal on, fsync per group commit, rate limits off) with 1
and then 2 verifier processes, and drives it from one load process on the same machine with
pre-signed orders (signing is not timed): crossing limit orders around one price on BTC-USDC, so the
book stays small and about half the orders trade. The load's clients are bare (HTTP/1.1 requests and
pre-masked WebSocket frames written as bytes), so the load costs the shared CPUs as little as it can.
Four ways in:

- rest-single:  POST /v1/actions, one order per signature, C keep-alive connections, 1 in flight each;
- rest-batch:   POST /v1/actions/signed-batch, 100 orders under one signature;
- ws-single:    the WebSocket order channel, one order per signature, W in flight per connection;
- ws-batch:     the order channel with signed batches of 100.

"Accepted" counts orders whose own result says accepted (the engine took them and the group holding
them is durable); each accepted answer also carries a CommandDone event saying so, which is not counted.
Then, at half the best ws-single rate (the same funded, crossing orders, paced over the
throughput run's connections from a process of their own; probing starts once that background has run
for WARMUP_S), a probe account rests an order and a second one crosses it every few ms: latency is
from sending the crossing order to (a) its acknowledgement and (b) the maker's fill arriving on the
maker's user channel (logged in); p50/p99 of each.

Where the time goes: CPU seconds of the sequencer, of the verifiers and of the load generator per
accepted order (from /proc), next to the wall time per order.

    python bench/server_bench.py --seconds 5 --write bench/results.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import multiprocessing
import os
import pathlib
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
from eth_hash.auto import keccak

from exos import commands as C
from exos.signing import Domain, address_of, login_digest, recover_digest, sign, sign_batch, sign_digest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MARKET = "BTC-USDC"
MID = 6_500_000
WARMUP_S = 1.5  # the latency run's background runs this long before the first probe
CHAIN_ID, VERIFYING = 1337, "0x" + "e0" * 20


def key(i: int) -> tuple[bytes, bytes]:
    """(private key, address) number i."""
    private = keccak(b"exos bench key %d" % i)
    return private, address_of(private)


def manifest(directory: pathlib.Path) -> pathlib.Path:
    """The spot example with a large faucet and a signing domain."""
    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace(
            'journal = "journal"',
            f'journal = "journal"\nchain_id = {CHAIN_ID}\nverifying_contract = "{VERIFYING}"\n'
            'faucet = { USDC = "1000000000", BTC = "100000", ETH = "1000000" }',
        )
    )
    path = directory / "venue.toml"
    path.write_text(text)
    return path


class Orders:
    """Pre-signed crossing orders per key (nonces increase per key)."""

    def __init__(self, domain: Domain, seed: int) -> None:
        """Sign with `domain`."""
        self.domain = domain
        self.rng = random.Random(seed)
        self.nonce = 1_000

    def record(self, address: bytes, side: int | None = None, price: int | None = None, size: int = 0,
               market: str = MARKET) -> bytes:  # fmt: skip
        """One order's record (random side, price near MID and size 1..3 unless given)."""
        self.nonce += 1
        side = self.rng.randrange(2) if side is None else side
        price = MID + self.rng.randrange(-8, 9) if price is None else price
        return C.PlaceOrder(actor=C.Actor(address), timestamp=0, nonce=self.nonce, market=market, side=side,
                            price=price, size=size or self.rng.randrange(1, 4)).pack()  # fmt: skip

    def single(self, private: bytes, address: bytes, n: int) -> list[dict[str, str]]:
        """n separately signed orders as request bodies."""
        out = []
        for _ in range(n):
            record = self.record(address)
            out.append({"record": "0x" + record.hex(), "signature": "0x" + sign(record, private, self.domain).hex()})
        return out

    def batches(self, private: bytes, address: bytes, n: int, size: int = 100) -> list[dict[str, Any]]:
        """n signed batches of `size` orders."""
        out = []
        for _ in range(n):
            records = [self.record(address) for _ in range(size)]
            signature = sign_batch(records, private, self.domain)
            out.append({"records": ["0x" + r.hex() for r in records], "signature": "0x" + signature.hex()})
        return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Direct child processes."""
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


class Server:
    """`exos serve` in a subprocess."""

    def __init__(self, directory: pathlib.Path, verifiers: int, history: bool = True) -> None:
        """Start it and wait until it listens (with its history projector unless `history` is False)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        journal = directory / f"journal-{verifiers}-{time.monotonic_ns()}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exos.cli", "serve", str(manifest(directory)), "--port", str(self.port),
             "--journal", str(journal), "--verifiers", str(verifiers), "--limit-address", "0", "--limit-ip", "0",
             *([] if history else ["--no-history"])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError(f"exos serve did not start: {line!r}")
        children = children_of(self.process.pid)
        self.projector_pids = [
            p for p in children if b"exos.history" in pathlib.Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        self.verifier_pids = [p for p in children if p not in self.projector_pids]

    def cpu(self) -> tuple[float, float, float]:
        """(sequencer, verifiers, history projector) CPU seconds so far."""
        return (cpu_seconds(self.process.pid), sum(cpu_seconds(p) for p in self.verifier_pids),
                sum(cpu_seconds(p) for p in self.projector_pids))  # fmt: skip

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.process.stdout:
            self.process.stdout.close()


# ------------------------------------------------------------------ load


async def http_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection."""
    return await asyncio.open_connection("127.0.0.1", port)


def http_request(path: str, body: bytes) -> bytes:
    """A raw HTTP/1.1 POST."""
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


async def http_answer(reader: asyncio.StreamReader) -> bytes:
    """Read one response's body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return await reader.readexactly(length)


def count_accepted(body: bytes | str) -> int:
    """Accepted orders in an answer (single or batch): each order's own result, not its CommandDone event, which
    also says `"accepted":true` (counting the bytes would count every order twice)."""
    answer = orjson.loads(body)
    results = answer.get("results")
    if results is None:
        return 1 if answer.get("accepted") is True else 0
    return sum(1 for result in results if result.get("accepted") is True)


async def rest_load(port: int, path: str, bodies: list[list[bytes]], seconds: float) -> tuple[int, int, float]:
    """Each connection sends its bodies one at a time until time is up: (accepted, sent, elapsed)."""
    accepted = sent = 0
    deadline = time.perf_counter() + seconds

    async def one(queue: list[bytes]) -> None:
        nonlocal accepted, sent
        reader, writer = await http_connection(port)
        for body in queue:
            if time.perf_counter() > deadline:
                break
            writer.write(http_request(path, body))
            answer = await http_answer(reader)  # awaited first: `accepted += await ...` would lose updates
            accepted += count_accepted(answer)
            sent += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(q) for q in bodies))
    return accepted, sent, time.perf_counter() - start


def ws_frame(text: bytes, mask: bytes) -> bytes:
    """One client text frame (RFC 6455: final, masked with `mask`), built before the clock starts."""
    n = len(text)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0xFF]) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    return head + mask + (int.from_bytes(text, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


async def ws_open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket connection to /v1/ws, past the upgrade (a bare client: the load is not the server's cost)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    status = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        raise RuntimeError(f"the WebSocket upgrade failed: {status!r}")
    return reader, writer


async def ws_message(reader: asyncio.StreamReader, buffer: bytearray) -> bytes:
    """The next data message from the server (unmasked, unfragmented frames; control frames skipped)."""
    while True:
        if len(buffer) >= 2:
            length, head = buffer[1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) >= head + length and len(buffer) >= head:
                opcode = buffer[0] & 0x0F
                payload = bytes(buffer[head : head + length])
                del buffer[: head + length]
                if opcode in (1, 2):
                    return payload
                continue
        data = await reader.read(1 << 16)
        if not data:
            raise ConnectionError("the server closed the WebSocket")
        buffer += data


async def ws_load(port: int, frames: list[list[bytes]], seconds: float, window: int) -> tuple[int, int, float]:
    """Each connection keeps `window` order-channel frames in flight: (accepted, sent, elapsed)."""
    accepted = sent = 0
    deadline = time.perf_counter() + seconds

    async def one(queue: list[bytes]) -> None:
        nonlocal accepted, sent
        reader, writer = await ws_open(port)
        buffer = bytearray()
        inflight = 0
        it = iter(queue)
        done = False
        while True:
            while not done and inflight < window:
                frame_ = next(it, None)
                if frame_ is None or time.perf_counter() > deadline:
                    done = True
                    break
                writer.write(frame_)
                inflight += 1
                sent += 1
            if inflight == 0:
                break
            answer = await ws_message(reader, buffer)
            if answer.startswith(b'{"channel":"post"'):
                inflight -= 1
                accepted += count_accepted(answer)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(q) for q in frames))
    return accepted, sent, time.perf_counter() - start


async def fund(port: int, addresses: list[bytes]) -> None:
    """Faucet every address."""
    reader, writer = await http_connection(port)
    for address in addresses:
        body = json.dumps({"address": "0x" + address.hex()}).encode()
        writer.write(http_request("/v1/faucet", body))
        await http_answer(reader)
    writer.close()


async def latency(port: int, domain: Domain, rate: float, seconds: float, background: list[list[bytes]],
                  senders: list[bytes], trace: list[tuple[float, float, float]] | None = None,
                  ) -> dict[str, float]:  # fmt: skip
    """At `rate` background orders/s, probe send -> ack and send -> maker's fill on the user channel (ms); each
    probe's (seconds since the first, ack ms, fill ms) appended to `trace` if given (the tail's episodes)."""
    import websockets

    (maker_key, maker), (taker_key, taker) = key(900_001), key(900_002)
    # the background's keys too: this is a fresh server, and unfunded background orders would all be refused (cheap)
    await fund(port, [maker, taker, *senders])
    orders = Orders(domain, 99)
    gc.collect()
    gc.freeze()
    acks: list[float] = []
    fills: list[float] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws") as user, \
            websockets.connect(f"ws://127.0.0.1:{port}/v1/ws") as trade:  # fmt: skip
        stamp = time.time_ns() // 1_000_000  # the user channel opens to a login signed by the account
        login = sign_digest(login_digest(maker, stamp, domain), maker_key)
        await user.send(json.dumps({"op": "login", "address": "0x" + maker.hex(), "timestamp": stamp,
                                    "signature": "0x" + login.hex()}))  # fmt: skip
        await user.send(json.dumps({"op": "subscribe", "channel": "user", "address": "0x" + maker.hex()}))
        for _ in range(2):
            answer = json.loads(await user.recv())
            assert answer["channel"] in ("login", "subscription"), answer

        # Pre-signed, as the background is: a probe's signing would load the shared CPUs during the run. At most
        # one probe per 5 ms; on ETH-USDC (the background trades BTC-USDC, so only the probes meet there), one lot
        # each: every probe is exactly one fill, nothing is left over for the next.
        price = 300_000
        probes = []
        for n in range(1, int(seconds * 200) + 2):
            pair = []
            for private, address, side in ((maker_key, maker, 0), (taker_key, taker, 1)):
                record = orders.record(address, side=side, price=price - n % 50, size=1, market="ETH-USDC")
                action = {"record": "0x" + record.hex(), "signature": "0x" + sign(record, private, domain).hex()}
                pair.append(json.dumps({"op": "post", "id": n, "action": action}))
            probes.append(pair)

        async def probe() -> None:
            first = 0.0
            stop = time.perf_counter() + seconds
            for pair in probes:
                if time.perf_counter() >= stop:
                    break
                for text in pair:
                    sent = time.perf_counter()
                    await trade.send(text)
                    while True:
                        answer = json.loads(await asyncio.wait_for(trade.recv(), 10))
                        if answer.get("channel") == "post":
                            break
                    acked = time.perf_counter()
                if answer.get("accepted"):
                    acks.append((acked - sent) * 1000)
                    while True:  # the maker's fill on its user channel
                        message = json.loads(await asyncio.wait_for(user.recv(), 10))
                        if message.get("type") == "Fill":
                            fills.append((time.perf_counter() - sent) * 1000)
                            if trace is not None:
                                first = first or sent
                                trace.append((round(sent - first, 4), round(acks[-1], 3), round(fills[-1], 3)))
                            break
                await asyncio.sleep(0.005)

        # the background load runs in its own process, so the probe's timings are not the load generator's delays
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        background_process = multiprocessing.get_context("fork").Process(
            target=_paced_background, args=(port, rate, WARMUP_S + seconds, background), daemon=True
        )
        background_process.start()
        try:
            await asyncio.sleep(WARMUP_S)  # probe the steady state: not the background's process start and handshakes
            await probe()
        finally:
            background_process.join(WARMUP_S + seconds + 30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the background's CPU: the one child waited for since
        load_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime

    def pct(values: list[float], q: float) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1], 2) if len(values) > 2 else float("nan")

    return {"probes": len(fills), "ack_p50_ms": pct(acks, 50), "ack_p99_ms": pct(acks, 99),
            "fill_p50_ms": pct(fills, 50), "fill_p99_ms": pct(fills, 99), "background_rate": round(rate),
            "load_cpu_s": load_cpu}  # fmt: skip


def _paced_background(port: int, rate: float, seconds: float, queues: list[list[bytes]]) -> None:
    """Send order-channel frames at `rate` per second in all, spread over the throughput run's connections (each
    paced at rate / connections, connection i offset by i / rate), for `seconds` (a process of its own):
    concurrent clients, as the load was. One timer sends whatever is due on any connection (the event loop's
    timers tick in milliseconds, so each connection's own sleeps would send the same frames at the same times)
    and the answers are read and dropped by a protocol: the load costs the shared CPUs as little as it can (its
    CPU per order is reported beside the server's)."""

    class Sink(asyncio.Protocol):
        """A connection's answers, read and dropped."""

        def data_received(self, data: bytes) -> None:
            """Nothing to do: the probe measures, the background only loads."""

    async def run() -> None:
        writers = [(await ws_open(port))[1] for _ in queues]
        for writer in writers:  # past the upgrade, answers are read and dropped without waking a task
            writer.transport.set_protocol(Sink())
        share = rate / len(queues)
        schedule = sorted((i / rate + n / share, i, frame_) for i, frames in enumerate(queues)
                          for n, frame_ in enumerate(frames) if i / rate + n / share <= seconds)  # fmt: skip
        begin = time.perf_counter() + 0.05
        at = 0
        while at < len(schedule):
            now = time.perf_counter() - begin
            while at < len(schedule) and schedule[at][0] <= now:
                writers[schedule[at][1]].write(schedule[at][2])
                at += 1
            if at < len(schedule):  # at least a tick: a shorter sleep returns at once, and the loop would spin
                await asyncio.sleep(max(0.001, schedule[at][0] - (time.perf_counter() - begin)))
        for writer in writers:
            writer.close()

    gc.freeze()  # the bodies, as in the throughput runs
    asyncio.run(run())


async def scenario(port: int, domain: Domain, kind: str, seconds: float, connections: int, window: int,
                   seed: int) -> tuple[int, int, float, float, list[list[bytes]], list[bytes]]:  # fmt: skip
    """Fund, pre-sign, run one way in; (accepted orders, requests, elapsed s, load CPU s, the bodies, the senders)."""
    keys = [key(seed * 1000 + i) for i in range(connections)]
    await fund(port, [a for _, a in keys])
    orders = Orders(domain, seed)
    single = kind.endswith("single")
    per_conn = int(20_000 * seconds / connections) + 10 if single else int(800 * seconds / connections) + 2
    bodies: list[list[bytes]] = []
    for private, address in keys:
        items = orders.single(private, address, per_conn) if single else orders.batches(private, address, per_conn)
        if kind.startswith("ws"):  # whole client frames, masked (a client's masks need not be secret from itself)
            op = "post" if single else "signed_batch"
            bodies.append([ws_frame(json.dumps({"op": op, "id": j, **({"action": it} if single else it)}).encode(),
                                    orders.rng.randbytes(4)) for j, it in enumerate(items)])  # fmt: skip
        else:
            bodies.append([json.dumps(it).encode() for it in items])
    # the pre-signed bodies are hundreds of thousands of objects: keep them out of the collector's passes, which
    # would otherwise stall the load generator (not the server) for tens of ms at a time
    gc.collect()
    gc.freeze()
    cpu = time.process_time()
    if kind == "rest-single":
        result = await rest_load(port, "/v1/actions", bodies, seconds)
    elif kind == "rest-batch":
        result = await rest_load(port, "/v1/actions/signed-batch", bodies, seconds)
    else:
        result = await ws_load(port, bodies, seconds, window)
    load_cpu = time.process_time() - cpu
    gc.unfreeze()
    return (*result, load_cpu, bodies, [a for _, a in keys])


def recovery_us(n: int = 2_000) -> float:
    """µs per warm signature recovery right now: how fast this (shared) machine is, to read the figures by."""
    private, _ = key(0)
    digest = keccak(b"exos bench calibration")
    signature = sign_digest(digest, private)
    recover_digest(digest, signature)
    start = time.perf_counter()
    for _ in range(n):
        recover_digest(digest, signature)
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    """Run every scenario for 1 and 2 verifiers; print and optionally write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--verifiers", default="1,2")
    parser.add_argument("--kinds", default="rest-single,rest-batch,ws-single,ws-batch")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--window", type=int, default=8, help="order-channel messages in flight per connection")
    parser.add_argument(
        "--load",
        type=float,
        default=0.5,
        help="the latency run's background, as a share of the best ws-single rate (the issue's target is at half load)",
    )
    parser.add_argument("--rate", type=float, help="the latency run's background in orders/s, instead of --load "
                        "(to compare two builds at the same load)")  # fmt: skip
    parser.add_argument("--write", help="merge the figures into this JSON file under 'server'")
    parser.add_argument("--trace", help="write each latency probe's (s since the first, ack ms, fill ms) to "
                        "TRACE-verifiers=N.json")  # fmt: skip
    parser.add_argument("--no-history", action="store_true", help="serve without the history projector "
                        "(figures go under 'server_no_history')")  # fmt: skip
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    domain = Domain("exos spot demo", "1", CHAIN_ID, bytes.fromhex(VERIFYING[2:]))
    before = recovery_us()
    print(f"machine now: a warm signature recovery takes {before:.1f} µs (47 on a quiet stretch of the reference VM)",
          flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    directory = pathlib.Path(tempfile.mkdtemp(prefix="exos-server-bench-"))
    try:
        for verifiers in [int(v) for v in args.verifiers.split(",")]:
            best_ws_single = 0.0
            ws_bodies: list[list[bytes]] = []
            ws_senders: list[bytes] = []
            for n, kind in enumerate(args.kinds.split(",")):
                server = Server(directory, verifiers, not args.no_history)
                try:
                    connections = args.connections if kind.endswith("single") else max(2, args.connections // 4)
                    seq0, ver0, his0 = server.cpu()
                    accepted, requests, elapsed, load_cpu, bodies, senders = asyncio.run(
                        scenario(server.port, domain, kind, args.seconds, connections, args.window, 10 * n + verifiers)
                    )
                    seq1, ver1, his1 = server.cpu()
                finally:
                    server.stop()
                rate = accepted / elapsed
                per = 1e6 / max(accepted, 1)
                row = {"accepted_orders_per_s": round(rate), "requests": requests, "accepted": accepted,
                       "seconds": round(elapsed, 2),
                       "cpu_us_per_order": {"sequencer": round((seq1 - seq0) * per, 1),
                                            "verifiers": round((ver1 - ver0) * per, 1),
                                            "history": round((his1 - his0) * per, 1),
                                            "load_generator": round(load_cpu * per, 1)},
                       "wall_us_per_order": round(elapsed * per, 1)}  # fmt: skip
                results[f"{kind}/verifiers={verifiers}"] = row
                cpu = row["cpu_us_per_order"]
                print(f"{kind:12s} verifiers={verifiers}: {rate:9,.0f} accepted orders/s  ({accepted:,} in "
                      f"{elapsed:.1f} s; CPU µs/order: sequencer {cpu['sequencer']}, verifiers {cpu['verifiers']}, "
                      f"history {cpu['history']}, load {cpu['load_generator']})", flush=True)  # fmt: skip
                if kind == "ws-single":
                    best_ws_single, ws_bodies, ws_senders = rate, bodies, senders
            if best_ws_single:
                server = Server(directory, verifiers, not args.no_history)
                try:
                    background = args.rate or best_ws_single * args.load
                    seq0, ver0, _ = server.cpu()
                    trace: list[tuple[float, float, float]] | None = [] if args.trace else None
                    half = asyncio.run(latency(server.port, domain, background, args.seconds, ws_bodies, ws_senders,
                                               trace))  # fmt: skip
                    seq1, ver1, _ = server.cpu()
                    if trace is not None:
                        pathlib.Path(f"{args.trace}-verifiers={verifiers}.json").write_text(json.dumps(trace))
                finally:
                    server.stop()
                # per background order over the whole run (warm-up included): lone orders cost more than pipelined
                per = 1e6 / (background * (WARMUP_S + args.seconds))
                half["cpu_us_per_order"] = {"sequencer": round((seq1 - seq0) * per, 1),
                                            "verifiers": round((ver1 - ver0) * per, 1),
                                            "load_generator": round(half.pop("load_cpu_s") * per, 1)}  # fmt: skip
                results[f"latency-at-half-load/verifiers={verifiers}"] = half
                cpu = half["cpu_us_per_order"]
                print(f"latency at half load (~{half['background_rate']:,}/s) verifiers={verifiers}: "
                      f"ack p50 {half['ack_p50_ms']} ms p99 {half['ack_p99_ms']} ms; "
                      f"fill on the user channel p50 {half['fill_p50_ms']} ms p99 {half['fill_p99_ms']} ms "
                      f"({half['probes']} probes; CPU µs/order: sequencer {cpu['sequencer']}, "
                      f"verifiers {cpu['verifiers']}, load {cpu['load_generator']})", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    after = recovery_us()
    print(f"machine at the end: a warm signature recovery takes {after:.1f} µs", flush=True)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "warm_recovery_us": [round(before, 1), round(after, 1)]}  # fmt: skip
    results["date"] = time.strftime("%Y-%m-%d")
    if args.write:
        path = pathlib.Path(args.write)
        data = json.loads(path.read_text()) if path.exists() else {}
        data["server_no_history" if args.no_history else "server"] = results
        path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
