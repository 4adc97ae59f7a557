"""`exos serve` over a real loopback socket: a client from the documented schemas places and cancels orders."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_hash.auto import keccak
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tests.conftest import first_line, free_port, load_bench_module, running, serving

from exos import commands as C
from exos.engine import Engine
from exos.server import create_app

ROOT = Path(__file__).resolve().parents[1]
KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
TRADER = bytes.fromhex(Account.from_key(KEY).address[2:])
CHAIN_ID, VERIFIER = 31337, "0x" + "e0" * 20
DOMAIN = {"name": "exos spot demo", "version": "1", "chainId": CHAIN_ID, "verifyingContract": VERIFIER}


def manifest(tmp_path: Path) -> Path:
    """The spot example with a signing domain and a faucet."""
    text = (
        (ROOT / "examples" / "spot.toml")
        .read_text()
        .replace(
            'journal = "journal"',
            f'journal = "journal"\nchain_id = {CHAIN_ID}\nverifying_contract = "{VERIFIER}"\n'
            'faucet = { USDC = "10000", BTC = "1" }',
        )
    )
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The app on uvicorn in a thread, on a free loopback port; the test's clock makes timestamps (1 ms a command
    from now: signed reads must be within a minute of it)."""
    engine = Engine.from_manifest(manifest(tmp_path), journal=tmp_path / "journal")
    ticks = itertools.count(time.time_ns() // 1_000_000)
    with running(create_app(engine, clock=lambda: next(ticks))) as base:
        yield base, engine


def zeroed(command: C.Command) -> bytes:
    """The record a client signs, as the README says: the command's, its timestamp and signer zeroed."""
    record = bytearray(command.pack())
    record[10:18] = bytes(8)  # timestamp: the sequencer's
    record[46:66] = bytes(20)  # signer: what the server recovers
    return bytes(record)


def agent_signature(records: list[bytes]) -> bytes:
    """EIP-712 Agent over keccak of the zeroed records concatenated (one record, or a signed batch), by the trader."""
    types = {"Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}]}
    message = {"source": "a", "connectionId": keccak(b"".join(records))}
    return bytes(Account.sign_typed_data(KEY, DOMAIN, types, message).signature)


def signed(command: C.Command) -> dict[str, str]:
    """Sign a command as a client that read only the README: EIP-712 Agent over keccak of the zeroed record."""
    record = zeroed(command)
    return {"record": "0x" + record.hex(), "signature": "0x" + agent_signature([record]).hex()}


def read_headers(method: str, target: str, key: bytes = KEY, account: bytes = TRADER) -> dict[str, str]:
    """Sign a private read as a client that read only the README: EIP-712 Request over the method, the path with its
    query as sent, and the time."""
    timestamp = time.time_ns() // 1_000_000
    types = {"Request": [{"name": "account", "type": "address"}, {"name": "method", "type": "string"},
                         {"name": "path", "type": "string"}, {"name": "timestamp", "type": "uint64"}]}  # fmt: skip
    message = {"account": "0x" + account.hex(), "method": method, "path": target, "timestamp": timestamp}
    signature = Account.sign_typed_data(key, DOMAIN, types, message).signature
    return {"X-Exos-Address": "0x" + account.hex(), "X-Exos-Timestamp": str(timestamp),
            "X-Exos-Signature": "0x" + bytes(signature).hex()}  # fmt: skip


def login(key: bytes = KEY, account: bytes = TRADER) -> str:
    """The WebSocket login as a client that read only the README: EIP-712 Login over the account and the time."""
    timestamp = time.time_ns() // 1_000_000
    types = {"Login": [{"name": "account", "type": "address"}, {"name": "timestamp", "type": "uint64"}]}
    signature = Account.sign_typed_data(key, DOMAIN, types, {"account": "0x" + account.hex(), "timestamp": timestamp})
    return json.dumps({"op": "login", "id": "login", "address": "0x" + account.hex(), "timestamp": timestamp,
                       "signature": "0x" + bytes(signature.signature).hex()})  # fmt: skip


def order(nonce: int, side: int = 0, price: int = 6_500_000, size: int = 3) -> C.PlaceOrder:
    """An order for the trader (timestamp and signer are ignored by the server)."""
    return C.PlaceOrder(actor=C.Actor(TRADER), timestamp=0, nonce=nonce, market="BTC-USDC", side=side, price=price,
                        size=size)  # fmt: skip


def test_place_and_cancel_through_the_api(server: tuple[str, Engine]) -> None:
    """Faucet, a signed order, the book and the account show it, a signed cancel removes it; all journaled."""
    base, engine = server
    with httpx.Client(base_url=base, timeout=10) as client:
        credited = client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()}).json()
        assert credited == {"credited": {"BTC": str(10**8), "USDC": str(10_000 * 10**6)}}
        placed = client.post("/v1/actions", json=signed(order(1_700_000_000_001))).json()
        assert placed["accepted"] is True and placed["signer"] == "0x" + TRADER.hex()
        accepted = next(e for e in placed["events"] if e["type"] == "OrderAccepted")
        book = client.get("/v1/markets/BTC-USDC/book").json()
        assert book["bids"] == [["6500000", "3", "1"]]
        path = f"/v1/accounts/0x{TRADER.hex()}"
        assert client.get(path).status_code == 401  # private: unsigned, refused
        account = client.get(path, headers=read_headers("GET", path)).json()
        assert account["balances"]["USDC"]["locked"] == str(6_500_000 * 3)
        assert [o["order_id"] for o in account["open_orders"]] == [accepted["order_id"]]
        cancel = C.CancelOrder(actor=C.Actor(TRADER), timestamp=0, nonce=1_700_000_000_002, market="BTC-USDC",
                               order_id=int(accepted["order_id"]))  # fmt: skip
        assert client.post("/v1/actions", json=signed(cancel)).json()["accepted"] is True
        assert client.get("/v1/markets/BTC-USDC/book").json()["bids"] == []
        markets = client.get("/v1/markets").json()
        assert [m["name"] for m in markets] == ["BTC-USDC", "ETH-USDC"]
    assert engine.seq == 4  # two faucet deposits, the order, the cancel: each journaled before its answer


def test_a_client_from_the_readme_logs_in_and_reads_its_account(server: tuple[str, Engine]) -> None:
    """Plain eth-account, httpx and websockets: a login opens the user channel, which then carries the account's own
    order; signed REST reads (a query string included) answer; a read of someone else's account is refused."""
    import websockets.sync.client

    base, _ = server
    httpx.post(f"{base}/v1/faucet", json={"address": "0x" + TRADER.hex()}, timeout=10)
    with websockets.sync.client.connect(base.replace("http", "ws") + "/v1/ws") as ws:
        ws.send(json.dumps({"op": "subscribe", "id": 1, "channel": "user", "address": "0x" + TRADER.hex()}))
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "NOT_AUTHENTICATED"
        ws.send(login())
        ws.send(json.dumps({"op": "subscribe", "id": 2, "channel": "user", "address": "0x" + TRADER.hex()}))
        logged_in, subscribed = json.loads(ws.recv(timeout=10)), json.loads(ws.recv(timeout=10))
        assert (logged_in["channel"], logged_in["signer"], logged_in["expiry"]) == ("login", "0x" + TRADER.hex(), None)
        assert (subscribed["channel"], subscribed["id"]) == ("subscription", 2)
        placed = httpx.post(f"{base}/v1/actions", json=signed(order(time.time_ns() // 1_000_000)), timeout=10).json()
        accepted = json.loads(ws.recv(timeout=10))
        assert accepted["type"] == "OrderAccepted" and accepted["order_id"] == placed["events"][0]["order_id"]
    with httpx.Client(base_url=base, timeout=10) as client:
        target = f"/v1/accounts/0x{TRADER.hex()}/fills?sub=0&limit=5"
        assert client.get(target, headers=read_headers("GET", target)).json() == []
        target = f"/v1/accounts/0x{TRADER.hex()}?sub=0"
        answer = client.get(target, headers=read_headers("GET", target)).json()
        assert [o["order_id"] for o in answer["open_orders"]] == [accepted["order_id"]]
        other = "/v1/accounts/0x" + "ab" * 20
        refused = client.get(other, headers=read_headers("GET", other))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"


def test_replays_bad_signatures_and_bad_requests_are_refused(server: tuple[str, Engine]) -> None:
    """A replayed action hits the nonce; malleable or foreign signatures and loose JSON get the error envelope."""
    base, engine = server
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()})
        body = signed(order(1_700_000_000_005))
        assert client.post("/v1/actions", json=body).json()["accepted"] is True
        replay = client.post("/v1/actions", json=body).json()
        assert replay["accepted"] is False and replay["events"][0]["code"] == "NONCE"
        signature = bytes.fromhex(body["signature"][2:])
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1's order
        s = int.from_bytes(signature[32:64], "big")
        high_s = signature[:32] + (n - s).to_bytes(32, "big") + bytes([55 - signature[64]])
        twin = client.post("/v1/actions", json={"record": body["record"], "signature": "0x" + high_s.hex()})
        assert twin.status_code == 400 and twin.json()["error"]["code"] == "BAD_SIGNATURE"
        loose = client.post("/v1/actions", json={"record": body["record"], "signature": body["signature"], "x": 1})
        assert loose.status_code == 422 and loose.json()["error"]["code"] == "BAD_REQUEST"
        numeric = client.post("/v1/faucet", json={"address": "0x" + TRADER.hex(), "sub": 1.5})
        assert numeric.status_code == 422
        assert client.get("/v1/markets/NOPE/book").status_code == 404
        big = client.post(
            "/v1/actions", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert engine.seq == 4  # two faucet deposits, the order and its replay: refusals never reached the engine


def test_exos_serve_prints_where_it_listens_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The CLI binds 127.0.0.1, says `listening on http://...`, answers, and exits 0 on SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "exos.cli", "serve", str(manifest(tmp_path)), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = first_line(process)
        assert line.strip() == f"listening on http://127.0.0.1:{port}", line + (
            process.stderr.read() if process.stderr else ""
        )
        reply: Any = httpx.get(f"http://127.0.0.1:{port}/v1/markets", timeout=10).json()
        assert reply[0]["name"] == "BTC-USDC"
    finally:
        process.terminate()
        code = process.wait(timeout=20)
        process.stdout.close() if process.stdout else None
        process.stderr.close() if process.stderr else None
    assert code == 0


def test_the_python_client_signs_safe_nonces_across_threads(server: tuple[str, Engine]) -> None:
    """exos.client: 8 threads x 25 orders from one signer, no nonce refused; human decimals round to tick and lot."""
    from exos.client import Client

    base, _ = server
    with Client(base, KEY) as client:
        _client_session(client)


def _client_session(client: Any) -> None:
    """The client test's body (the client is closed by the caller)."""
    assert client.address == TRADER and client.domain.chain_id == CHAIN_ID
    client.faucet()
    assert client.ticks("BTC-USDC", "65000.019") == 6_500_001 and client.lots("BTC-USDC", "0.00029") == 2

    def burst(n: int) -> list[bool]:
        return [client.place("BTC-USDC", "buy", "60000", "0.0001").accepted for _ in range(n)]

    with ThreadPoolExecutor(8) as pool:
        results = [ok for batch in pool.map(burst, [25] * 8) for ok in batch]
    assert results.count(True) == 200
    placed = client.place("BTC-USDC", "sell", "70000", "0.0002")
    assert placed.accepted and placed.order_id is not None
    assert client.cancel("BTC-USDC", placed.order_id).accepted
    assert len(client.account()["open_orders"]) == 200
    refused = client.cancel("BTC-USDC", placed.order_id)
    assert (refused.accepted, refused.code) == (False, "UNKNOWN_ORDER")


def _start(path: Path, port: int, journal: Path) -> subprocess.Popen[str]:
    """`exos serve` with a journal, once it says where it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "exos.cli", "serve", str(path), "--port", str(port), "--journal", str(journal)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = first_line(process)
    if not line.startswith("listening on http://127.0.0.1:"):
        process.terminate()  # a server that did not start must not linger
        process.wait(timeout=20)
        raise AssertionError(f"exos serve did not start: {line!r}")
    return process


def test_acknowledged_orders_survive_a_sigkill(tmp_path: Path) -> None:
    """Orders the API acknowledged are in the journal: after SIGKILL and a restart they are still open; the killed
    sequencer's verifier and history projector do not outlive it."""
    from exos.client import Client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path, journal = manifest(tmp_path), tmp_path / "api-journal"
    process = _start(path, port, journal)
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == process.pid]
    assert len(children) == 2  # a verifier and the history projector
    try:
        with Client(f"http://127.0.0.1:{port}", KEY) as client:
            client.faucet()
            ids = [client.place("BTC-USDC", "buy", str(60_000 + i), "0.0001").order_id for i in range(20)]
    finally:
        process.kill()  # SIGKILL: no shutdown, no flush beyond what each answer already waited for
        process.wait(timeout=20)
        process.stdout.close() if process.stdout else None
    deadline = time.monotonic() + 10
    while any(child.exists() and _state(child) != "Z" for child in children):
        assert time.monotonic() < deadline, "an orphan outlived its sequencer"
        time.sleep(0.05)
    process = _start(path, port, journal)
    try:
        with Client(f"http://127.0.0.1:{port}", KEY) as client:
            open_ids = sorted(int(o["order_id"]) for o in client.account()["open_orders"])
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stdout.close() if process.stdout else None
    assert open_ids == sorted(i for i in ids if i is not None) and len(open_ids) == 20


def test_a_signed_batch_gives_a_result_per_item(server: tuple[str, Engine]) -> None:
    """Valid items apply in order under one commit; a bad signature fails only its own item."""
    base, engine = server
    before = engine.seq
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()})
        good = [signed(order(1_700_000_000_100 + i, price=6_000_000 + i)) for i in range(3)]
        bad = dict(good[1], signature=good[0]["signature"])  # another action's signature: someone else signed it
        replayed = good[2]
        body = {"actions": [good[0], bad, good[1], good[2], replayed]}
        results = client.post("/v1/actions/batch", json=body).json()["results"]
        assert [r.get("accepted") for r in results] == [True, False, True, True, False]
        assert results[1]["signer"] != "0x" + TRADER.hex()  # recovered someone without an account
        assert results[1]["events"][0]["code"] == "NOT_AUTHORISED"
        assert results[4]["events"][0]["code"] == "NONCE"
        bids = client.get("/v1/markets/BTC-USDC/book").json()["bids"]
        assert [b[0] for b in bids] == ["6000002", "6000001", "6000000"]
        too_many = client.post("/v1/actions/batch", json={"actions": [good[0]] * 101})
        assert too_many.status_code == 422
    assert engine.seq == before + 2 + 5  # the faucet's two deposits, then every item reached the engine


def test_two_verifier_processes_serve_one_sequencer(tmp_path: Path) -> None:
    """With --verifiers 2 two API processes share the port; trades placed through either reach a subscriber of
    either, and the book they report is the same."""
    import websockets.sync.client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "exos.cli", "serve", str(manifest(tmp_path)), "--port", str(port), "--verifiers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert first_line(process).startswith("listening on")
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == process.pid]
        assert len(children) == 2
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:  # the kernel hashes connections over the verifiers' sockets: both hold some (all 16 on one: 2^-15)
            deadline = time.monotonic() + 10
            while (counts := [_established(child, port) for child in children]) and sum(counts) < 16:
                assert time.monotonic() < deadline, counts
                time.sleep(0.05)
            assert min(counts) > 0, counts
        finally:
            for each in held:
                each.close()
        base = f"http://127.0.0.1:{port}"
        with websockets.sync.client.connect(f"ws://127.0.0.1:{port}/v1/ws") as ws:
            ws.send('{"op": "subscribe", "channel": "trades", "market": "BTC-USDC"}')
            assert '"subscription"' in ws.recv(timeout=10)
            from exos.signing import Domain, sign

            other_key = keccak(b"another trader")
            other = bytes.fromhex(Account.from_key(other_key).address[2:])
            domain = Domain("exos spot demo", "1", CHAIN_ID, bytes.fromhex(VERIFIER[2:]))
            for who in (TRADER, other):
                httpx.post(f"{base}/v1/faucet", json={"address": "0x" + who.hex()}, timeout=10)
            for i in range(12):  # a fresh connection each time: the kernel spreads them over both verifiers
                if i % 2 == 0:
                    body = signed(order(1_700_000_000_000 + i))
                else:
                    record = C.PlaceOrder(actor=C.Actor(other), timestamp=0, nonce=1_700_000_000_000 + i,
                                          market="BTC-USDC", side=1, price=6_500_000, size=3).pack()  # fmt: skip
                    body = {"record": "0x" + record.hex(), "signature": "0x" + sign(record, other_key, domain).hex()}
                response = httpx.post(f"{base}/v1/actions", json=body, timeout=10)
                assert response.json()["accepted"], response.text
            trades = [ws.recv(timeout=10) for _ in range(6)]
        assert all('"channel":"trades"' in t for t in trades)
        books = {httpx.get(f"{base}/v1/markets/BTC-USDC/book", timeout=10).text for _ in range(6)}
        assert len(books) == 1  # every verifier forwards reads to the one sequencer
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        process.stdout.close() if process.stdout else None


def _established(proc: Path, port: int) -> int:
    """How many established TCP connections to local `port` the process holds (accepted, in its fd table)."""
    inodes = set()
    for fd in (proc / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


def _state(proc: Path) -> str:
    """A /proc entry's process state letter (Z: a zombie, gone but not reaped)."""
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _parent(proc: Path) -> int:
    """The parent pid of a /proc entry (0 if it has gone)."""
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def test_the_world_cup_venue_opens_live_and_trades(tmp_path: Path) -> None:
    """`exos serve examples/worldcup-2026.toml` (the README's main job) lists the opening events on the schedule
    moved to now, once: a restart recovers them from the journal instead of listing again; a faucet-funded key
    buys YES through the client."""
    from exos.client import Client

    path, journal, port = ROOT / "examples" / "worldcup-2026.toml", tmp_path / "wc-journal", free_port()
    for attempt in range(2):
        with serving(path, "--journal", str(journal), port=port) as base, Client(base, KEY) as client:
            names = sorted(client.markets)
            assert len(names) == 312  # 72 matches x 3 outcomes, 12 groups x 4 teams, 48 teams to win it all
            opener = next(n for n in names if n.startswith("WC26-A-MEX-RSA-"))
            close_at = int(httpx.get(f"{base}/v1/markets", timeout=10).json()[0]["params"]["params"]["close_at"])
            assert close_at > time.time() * 1000  # the opening match kicks off in the future
            if attempt == 0:
                client.faucet()
                placed = client.place(opener, "buy", "0.40", "10")
                assert placed.accepted, placed
            assert len(client.account()["open_orders"]) == 1


def test_bodies_are_bounded_even_when_chunked(server: tuple[str, Engine]) -> None:
    """A body over 64 KiB is 413 BODY_TOO_LARGE whether its length is declared or it arrives chunked."""
    base, engine = server
    before = engine.seq
    big = b'{"record": "0x' + b"00" * 40_000 + b'", "signature": "0x00"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    declared = httpx.post(f"{base}/v1/actions", content=big, headers={"content-type": "application/json"})
    chunked = httpx.post(f"{base}/v1/actions", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, chunked):
        assert response.status_code == 413 and response.json()["error"]["code"] == "BODY_TOO_LARGE"
    assert engine.seq == before


def test_the_action_routes_answer_as_the_framework_does(tmp_path: Path) -> None:
    """The plain-ASGI action routes (a JSON body of declared length) and FastAPI's routes (the same body chunked,
    which the fast path leaves to the framework) give byte-identical answers, refusals included, on twin venues."""
    start = time.time_ns() // 1_000_000
    nonce = itertools.count(start)
    good = [signed(order(next(nonce), side=i % 2, size=2)) for i in range(4)]  # the second meets the first: STP
    other = dict(signed(order(next(nonce))), signature=good[0]["signature"])  # someone else signed it
    batch = [signed(order(next(nonce), price=6_000_000 + i)) for i in range(2)]
    unsigned = [zeroed(order(next(nonce), price=5_900_000 + i)) for i in range(2)]
    batch_signature = agent_signature(unsigned)
    requests: list[tuple[str, bytes]] = [
        ("/v1/actions", json.dumps(good[0]).encode()),
        ("/v1/actions", json.dumps(good[1]).encode()),
        ("/v1/actions", json.dumps(good[1]).encode()),  # replayed: NONCE
        ("/v1/actions", json.dumps(other).encode()),  # NOT_AUTHORISED
        ("/v1/actions", json.dumps(dict(good[2], signature="0x" + "00" * 65)).encode()),  # 400: bad signature
        ("/v1/actions", json.dumps(dict(good[2], extra=1)).encode()),  # 422: the strict model
        ("/v1/actions", b'{"record": 1.5}'),
        ("/v1/actions", b"not json"),
        ("/v1/actions/batch", json.dumps({"actions": [good[2], other, good[3]]}).encode()),
        ("/v1/actions/batch", json.dumps({"actions": []}).encode()),
        ("/v1/actions/signed-batch", json.dumps({"records": ["0x" + r.hex() for r in unsigned],
                                                 "signature": "0x" + batch_signature.hex()}).encode()),
        ("/v1/actions/signed-batch", json.dumps({"records": ["0x00"], "signature": "0x" + "00" * 65}).encode()),
        *(("/v1/actions", json.dumps(b).encode()) for b in batch),
    ]  # fmt: skip

    def answers(directory: Path, chunked: bool) -> list[tuple[int, str, bytes]]:
        directory.mkdir()
        engine = Engine.from_manifest(manifest(directory), journal=directory / "journal")
        ticks = itertools.count(start)
        out = []
        with running(create_app(engine, clock=lambda: next(ticks))) as base, httpx.Client(base_url=base) as client:
            client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()})
            for path, body in requests:
                content: Any = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
                response = client.post(path, content=content, headers={"content-type": "application/json"})
                out.append((response.status_code, response.headers["content-type"], response.content))
        engine.close()
        return out

    fast, framework = answers(tmp_path / "fast", False), answers(tmp_path / "framework", True)
    assert [status for status, _, _ in fast] == [200, 200, 200, 200, 400, 422, 422, 422, 200, 422, 200, 400, 200, 200]
    assert b'"type":"OrderCancelled"' in fast[1][2] and b'"code":"NONCE"' in fast[2][2]
    assert fast == framework


def test_an_action_met_by_a_missing_sequencer_is_a_503_envelope() -> None:
    """A verifier whose sequencer went away answers the signed-action routes with 503 UNAVAILABLE, not a bare 500."""
    import asyncio

    from exos.gateway import ActionRoutes, Answer, Gateway, Submitted, model_route
    from exos.server import SignedAction
    from exos.signing import Domain

    class Gone:
        """A backend whose sequencer has gone (RemoteBackend's ConnectionError)."""

        domain = Domain("exos spot demo", "1", CHAIN_ID, bytes.fromhex(VERIFIER[2:]))

        async def submit(self, ip: str | None, records: list[bytes]) -> list[Answer]:
            raise ConnectionError("the sequencer went away")

        def submit_then(self, ip: str | None, records: list[bytes], then: Callable[[Submitted], None]) -> None:
            then(ConnectionError("the sequencer went away"))

    gateway = Gateway(Gone())

    async def one(action: SignedAction, ip: str | None) -> tuple[int, Any]:
        return await gateway.one(ip, action.record, action.signature)

    gone = model_route(SignedAction, one)

    async def framework(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the fast path should have answered")

    sent: list[dict[str, Any]] = []
    body = json.dumps(signed(order(1))).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/actions",
        "client": ("127.0.0.1", 1),
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ActionRoutes(framework, {"/v1/actions": gone}, 1 << 16)(scope, receive, send))
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"]) == {"error": {"code": "UNAVAILABLE", "message": "the sequencer went away"}}
    answered: list[tuple[int, Any]] = []  # the order channel's taskless path answers alike
    action = signed(order(2))
    gateway.one_then(None, action["record"], action["signature"], lambda status, body: answered.append((status, body)))
    assert answered == [(503, {"error": {"code": "UNAVAILABLE", "message": "the sequencer went away"}})]


def test_a_host_can_send_the_signed_actions_through_its_own_middleware(tmp_path: Path) -> None:
    """With `app.actions = None` an action goes through the middleware stack (a host's middleware sees it) and is
    answered as on the fast path."""
    seen: list[str] = []

    class Spy:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope.get("path", ""))
            await self.app(scope, receive, send)

    engine = Engine.from_manifest(manifest(tmp_path), journal=tmp_path / "journal")
    ticks = itertools.count(time.time_ns() // 1_000_000)
    app = create_app(engine, clock=lambda: next(ticks))
    app.add_middleware(Spy)
    body = signed(order(time.time_ns() // 1_000_000))
    with running(app) as base, httpx.Client(base_url=base) as client:
        client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()})
        assert client.post("/v1/actions", json=body).json()["accepted"] is True
        assert "/v1/actions" not in seen  # the fast path went around the host's middleware
        app.actions = None
        again = client.post("/v1/actions", json=body).json()  # the same action: refused as a replay, by the stack
        assert again["accepted"] is False and again["events"][0]["code"] == "NONCE"
        assert "/v1/actions" in seen
    engine.close()


def test_the_server_bench_counts_each_accepted_order_once(server: tuple[str, Engine]) -> None:
    """bench/server_bench.py's counter over real answers: an accepted order is one (its CommandDone event also says
    accepted), a refused one none, a batch its accepted items (it once counted every order twice)."""
    count_accepted = load_bench_module("server_bench").count_accepted
    base, _ = server
    nonce = itertools.count(time.time_ns() // 1_000_000)
    with httpx.Client(base_url=base, timeout=10) as client:
        client.post("/v1/faucet", json={"address": "0x" + TRADER.hex()})
        first = signed(order(next(nonce), price=6_000_000))
        accepted = client.post("/v1/actions", json=first).content
        assert accepted.count(b'"accepted":true') == 2 and count_accepted(accepted) == 1
        assert count_accepted(client.post("/v1/actions", json=first).content) == 0  # replayed: NONCE
        items = [signed(order(next(nonce), price=6_000_001 + i)) for i in range(3)] + [first]
        assert count_accepted(client.post("/v1/actions/batch", json={"actions": items}).content) == 3


def test_websocket_messages_are_bounded_on_every_serve_path(server: tuple[str, Engine]) -> None:
    """A WebSocket message over 64 KiB gets the BODY_TOO_LARGE envelope and the connection stays; one over
    WS_MAX_MESSAGE (the limit both `exos serve` paths configure) closes it with 1009; neither reaches the engine."""
    import websockets.exceptions
    import websockets.sync.client

    from exos.server import MAX_BODY, WS_MAX_MESSAGE

    base, engine = server
    before = engine.seq
    url = base.replace("http", "ws") + "/v1/ws"
    with websockets.sync.client.connect(url, max_size=None) as ws:
        ws.send(json.dumps({"op": "order", "id": 1, "pad": "x" * (MAX_BODY + 1)}))
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "BODY_TOO_LARGE"
        ws.send(json.dumps({"op": "subscribe", "id": 2, "channel": "trades", "market": "BTC-USDC"}))
        assert json.loads(ws.recv(timeout=10))["channel"] == "subscription"  # the connection is still served
        ws.send("x" * (WS_MAX_MESSAGE + 1))
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert engine.seq == before


@pytest.mark.parametrize("verifiers", [0, 1], ids=["in-process", "one-verifier"])
def test_a_post_sent_with_a_login_and_subscriptions_in_one_write_is_handled_after_them(
    tmp_path: Path, verifiers: int
) -> None:
    """A login, the user channel, a book and an order in one TCP write: the order channel's taskless path takes a
    post only when nothing before it is pending, so the order comes after all three: the book's snapshot lacks it
    and a delta continuing the snapshot adds it, the user channel carries its acceptance, its answer follows."""
    bench = load_bench_module("server_bench")
    price = 6_400_000
    user = {"op": "subscribe", "id": "u", "channel": "user", "address": "0x" + TRADER.hex()}
    book = {"op": "subscribe", "id": "b", "channel": "book", "market": "BTC-USDC"}

    async def exchange(port: int) -> list[dict[str, Any]]:
        reader, writer = await bench.ws_open(port)
        post = {"op": "post", "id": 7, "action": signed(order(time.time_ns(), price=price))}
        texts = [login().encode(), *(json.dumps(m).encode() for m in (user, book, post))]
        writer.write(b"".join(bench.ws_frame(text, b"abcd") for text in texts))
        buffer, messages = bytearray(), list[dict[str, Any]]()
        while not any(m.get("channel") == "post" for m in messages):
            messages.append(json.loads(await asyncio.wait_for(bench.ws_message(reader, buffer), 10)))
        writer.close()
        return messages

    context: contextlib.AbstractContextManager[str]
    if verifiers:
        context = serving(manifest(tmp_path), "--verifiers", str(verifiers), "--journal", str(tmp_path / "journal"))
    else:
        context = running(create_app(Engine.from_manifest(manifest(tmp_path), journal=tmp_path / "journal")))
    with context as base:
        assert httpx.post(f"{base}/v1/faucet", json={"address": "0x" + TRADER.hex()}, timeout=10).status_code == 200
        messages = asyncio.run(exchange(int(base.rsplit(":", 1)[1])))
    assert [(m["channel"], m.get("type")) for m in messages[:4]] == [
        ("login", None), ("subscription", None), ("book", "snapshot"), ("subscription", None)]  # fmt: skip
    snapshot = messages[2]
    assert [str(price), "3", "1"] not in snapshot["bids"]
    delta = next(m for m in messages if m.get("type") == "delta")
    assert delta["prev_seq"] == snapshot["seq"] and delta["bids"] == [[str(price), "3", "1"]]
    accepted = next(m for m in messages if m["channel"] == "user" and m["type"] == "OrderAccepted")
    answer = messages[-1]
    assert (answer["id"], answer["status"], answer["accepted"]) == (7, 200, True)
    assert accepted["order_id"] == next(e["order_id"] for e in answer["events"] if e["type"] == "OrderAccepted")


def _hex_texts(sizes: list[int]) -> st.SearchStrategy[Any]:
    """0x-hex strings of bytes around the model's bounds, upper or lower case, and near misses the model refuses."""
    good = st.builds(lambda n, upper: "0x" + ("AB" if upper else "ab") * n, st.sampled_from(sizes), st.booleans())
    bad = st.sampled_from([" ", "a", "\n"]).map(lambda tail: "0x" + "ab" * sizes[1] + tail) | st.sampled_from(
        ["0x" + "ab" * 90 + " " + "ab" * 92, "ab" * 183, "0x" + "zz" * 182, "0X" + "ab" * 182, "0x" + "\u0661" * 364]
    )
    return st.one_of(good, good, good, bad, st.integers(), st.none())  # mostly well formed: the model must accept some


records, signatures = _hex_texts([181, 182, 183, 4096, 4097]), _hex_texts([64, 65, 65, 65, 66])
post_shapes = st.dictionaries(
    st.sampled_from(["op", "id", "action", "extra"]),
    st.one_of(
        st.sampled_from(["post", "Post", "post\n", "batch"]),
        st.integers(-(2**63), 2**64 - 1),
        st.text(max_size=4),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
        st.dictionaries(st.sampled_from(["record", "signature", "extra"]), records),
        st.builds(lambda record, signature: {"record": record, "signature": signature}, records, signatures),
    ),
)


@settings(deadline=None)
@given(
    post_shapes
    | st.builds(
        lambda i, action: {"op": "post", "id": i, "action": action},
        st.integers(-1, 1) | st.text(max_size=2),
        st.builds(lambda r, s: {"record": r, "signature": s}, records, signatures),
    )
)
@example({"op": "post", "id": 1, "action": {"record": "0x" + "ab" * 182, "signature": "0x" + "CD" * 65}})
@example({"op": "post", "id": "x", "action": {"record": "0x" + "AB" * 4096, "signature": "0x" + "cd" * 65}})
@example({"op": "post", "id": True, "action": {"record": "0x" + "ab" * 182, "signature": "0x" + "cd" * 65}})
@example({"op": "post", "id": 1, "action": {"record": "0x" + "ab" * 182 + "\n", "signature": "0x" + "cd" * 65}})
def test_the_taskless_order_path_takes_exactly_the_posts_the_model_accepts(raw: dict[str, Any]) -> None:
    """What `_lone_post` takes (the order channel's path without tasks), `_Post` accepts with the same fields, and
    the other way round, over JSON's values (orjson reads integers as 64-bit): the model keeps every refusal."""
    from pydantic import ValidationError

    from exos.server import _lone_post, _Post

    taken = _lone_post(raw)
    try:
        model = _Post.model_validate(raw)
    except ValidationError:
        assert taken is None
        return
    assert taken == (model.id, model.action.record, model.action.signature)


def test_the_sequencer_stops_a_venue_whose_verifier_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`exos serve`'s loop ends (and the command exits 1) when a verifier goes away before it says ready, or is not
    ready in time; once the venue is up, one verifier of two going away leaves the other served."""
    import marshal
    import threading

    import exos.sequencer
    from exos.sequencer import Sequencer, run
    from exos.wire import frame

    monkeypatch.setattr(exos.sequencer, "freeze_startup_objects", lambda: None)  # not this test process's GC
    sequencer = Sequencer(Engine.from_manifest(manifest(tmp_path)))
    ready = frame(marshal.dumps(("r",)))

    def serve(peers: list[socket.socket], ready_within: float = 60) -> tuple[threading.Thread, list[int]]:
        said = [0]

        def on_ready() -> None:
            said[0] += 1

        thread = threading.Thread(
            target=run, args=(sequencer, peers, lambda: False, on_ready, ready_within), daemon=True
        )
        thread.start()
        return thread, said

    pairs = [socket.socketpair() for _ in range(2)]
    thread, said = serve([ours for ours, _ in pairs])
    pairs[0][1].sendall(ready)
    pairs[1][1].close()  # the second verifier dies at start
    thread.join(10)
    assert not thread.is_alive()
    for pair in pairs:
        pair[0].close()
        pair[1].close()

    ours, theirs = socket.socketpair()
    thread, said = serve([ours], ready_within=0.3)  # a verifier that never says ready
    thread.join(10)
    assert not thread.is_alive() and said == [0]
    ours.close()
    theirs.close()

    pairs = [socket.socketpair() for _ in range(2)]
    thread, said = serve([ours for ours, _ in pairs], ready_within=0.3)
    for _, theirs in pairs:
        theirs.sendall(ready)
    time.sleep(0.5)
    pairs[0][1].close()  # after the venue is up: the other verifier is still served
    thread.join(0.5)
    assert thread.is_alive() and said == [2]
    pairs[1][1].close()
    thread.join(10)
    assert not thread.is_alive()
    for ours, _ in pairs:
        ours.close()
