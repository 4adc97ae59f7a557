"""The security matrix (reliability tests 32-37) through the API: every attack is refused with a typed error and
leaves the state hash exactly as it was.

A real server on a loopback port over a venue with a nonce window, sanctions venue-wide and a KYC-only market.
The sequencer's clock is frozen, so a refused command cannot even move the engine's time (and signed reads and
logins are judged against that clock). Private reads: the WebSocket login and the signed REST headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_hash.auto import keccak
from tests.conftest import running

from exos import commands as C
from exos.engine import Engine
from exos.ratelimit import Limits
from exos.server import create_app
from exos.signing import (
    SECP256K1_N,
    Domain,
    address_of,
    login_digest,
    request_digest,
    sign,
    sign_batch,
    sign_digest,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_700_000_000_000
ADMIN = bytes.fromhex("11" * 20)
CHAIN_ID, VERIFYING = 31337, bytes.fromhex("e0" * 20)
DOMAIN = Domain("exos spot demo", "1", CHAIN_ID, VERIFYING)


def keypair(name: bytes) -> tuple[bytes, bytes]:
    """(private key, address) derived from a name."""
    private = keccak(name)
    return private, address_of(private)


TRADER, AGENT, SANCTIONED, NEWCOMER = (keypair(n) for n in (b"trader", b"agent", b"sanctioned", b"newcomer"))


def manifest(tmp_path: Path) -> Path:
    """Spot with a signing domain, a faucet, a one-minute nonce window, sanctions and a KYC-only ETH-USDC."""
    text = (ROOT / "examples" / "spot.toml").read_text()
    text = text.replace('[[plugins]]\nname = "spot"', '[[plugins]]\nname = "spot"\n\n[[plugins]]\nname = "compliance"')
    text = text.replace(
        'journal = "journal"',
        f'journal = "journal"\nchain_id = {CHAIN_ID}\nverifying_contract = "0x{VERIFYING.hex()}"\n'
        'faucet = { USDC = "100000", BTC = "10", ETH = "100" }\nnonce_window_ms = [60000, 60000]\n'
        'compliance = ["sanctions"]',
    )
    text = text.replace('name = "ETH-USDC"\ntype = "spot"', 'name = "ETH-USDC"\ntype = "spot"\ncompliance = ["kyc"]')
    text += "\nmin_kyc_level = 1\n"
    path = tmp_path / "venue.toml"
    path.write_text(text)
    return path


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    """The API on a loopback port, on a frozen clock, with the trader funded and the agent approved."""
    engine = Engine.from_manifest(manifest(tmp_path))
    app = create_app(engine, clock=lambda: NOW, limits=Limits(0, 0, 0, 0))
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for _, address in (TRADER, SANCTIONED, NEWCOMER):
            assert client.post("/v1/faucet", json={"address": "0x" + address.hex()}).status_code == 200
        approve = C.ApproveAgent(actor=C.Actor(TRADER[1]), timestamp=0, nonce=NOW - 10, agent=AGENT[1], name="bot",
                                 expiry=NOW + 3_600_000)  # fmt: skip
        assert post(client, approve, TRADER[0]).json()["accepted"]
        yield client, engine


def body(command: C.Command, private: bytes, domain: Domain = DOMAIN) -> dict[str, str]:
    """A signed action's request body."""
    record = command.pack()
    return {"record": "0x" + record.hex(), "signature": "0x" + sign(record, private, domain).hex()}


def post(client: httpx.Client, command: C.Command, private: bytes, domain: Domain = DOMAIN) -> httpx.Response:
    """Sign and send one action."""
    return client.post("/v1/actions", json=body(command, private, domain))


def order(nonce: int, who: bytes = TRADER[1], market: str = "BTC-USDC", price: int = 6_000_000) -> C.PlaceOrder:
    """A resting buy of one lot."""
    return C.PlaceOrder(actor=C.Actor(who), timestamp=0, nonce=nonce, market=market, side=0, price=price, size=1)


def refused(client: httpx.Client, engine: Engine, send: Any, status: int, code: str) -> None:
    """`send()` is answered with `status` and the typed `code`, and the state hash does not move."""
    before = engine.state_hash()
    response = send()
    answer = response.json()
    assert response.status_code == status, answer
    if status == 200:
        assert answer["accepted"] is False
        rejected = [e for e in answer["events"] if e["type"] == "Rejected"]
        assert rejected and rejected[0]["code"] == code, answer
    else:
        assert answer["error"]["code"] == code, answer
    assert engine.state_hash() == before


def test_signatures_for_another_venue_or_in_malleable_form_are_refused(venue: tuple[httpx.Client, Engine]) -> None:
    """Wrong domain, chain id off by one, the high-s twin and v = 0/1: none can act for the trader."""
    client, engine = venue
    key = TRADER[0]
    wrong_name = Domain("another venue", "1", CHAIN_ID, VERIFYING)
    next_chain = Domain(DOMAIN.name, "1", CHAIN_ID + 1, VERIFYING)
    refused(client, engine, lambda: post(client, order(NOW + 1), key, wrong_name), 200, "NOT_AUTHORISED")
    refused(client, engine, lambda: post(client, order(NOW + 2), key, next_chain), 200, "NOT_AUTHORISED")
    good = body(order(NOW + 3), key)
    raw = bytes.fromhex(good["signature"][2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([raw[64] ^ 1])
    refused(client, engine, lambda: client.post("/v1/actions", json={**good, "signature": "0x" + twin.hex()}), 400,
            "BAD_SIGNATURE")  # fmt: skip
    for v in (0, 1):
        low_v = {**good, "signature": "0x" + (raw[:64] + bytes([v])).hex()}
        refused(client, engine, lambda low_v=low_v: client.post("/v1/actions", json=low_v), 400, "BAD_SIGNATURE")
    assert client.post("/v1/actions", json=good).json()["accepted"]  # the genuine one still works


def test_replayed_reused_old_and_expired_nonces_are_refused(venue: tuple[httpx.Client, Engine]) -> None:
    """A replay, a reused nonce, a nonce below the 100 kept, and an action signed before the window."""
    client, engine = venue
    first = body(order(NOW + 1), TRADER[0])
    assert client.post("/v1/actions", json=first).json()["accepted"]
    refused(client, engine, lambda: client.post("/v1/actions", json=first), 200, "NONCE")
    refused(client, engine, lambda: post(client, order(NOW + 1, price=6_000_001), TRADER[0]), 200, "NONCE")
    records = [order(NOW + 100 + i, price=5_000_000 + i).pack() for i in range(100)]  # 100 more nonces in one batch
    batch = {"records": ["0x" + r.hex() for r in records], "signature": "0x" + sign_batch(records, TRADER[0],
                                                                                          DOMAIN).hex()}  # fmt: skip
    assert all(r["accepted"] for r in client.post("/v1/actions/signed-batch", json=batch).json()["results"])
    refused(client, engine, lambda: post(client, order(NOW + 50), TRADER[0]), 200, "NONCE")  # below the kept 100
    refused(client, engine, lambda: post(client, order(NOW - 60_000), TRADER[0]), 200, "EXPIRED_ACTION")
    refused(client, engine, lambda: post(client, order(NOW + 60_000 + 5), TRADER[0]), 200, "NONCE")  # too far ahead


def test_agents_trade_only_and_stay_revoked(venue: tuple[httpx.Client, Engine]) -> None:
    """An agent cannot withdraw; once revoked it cannot trade; its address can never be approved again."""
    client, engine = venue
    trader, agent = TRADER[1], AGENT[0]
    assert post(client, C.PlaceOrder(actor=C.Actor(trader), timestamp=0, nonce=NOW + 1, market="BTC-USDC", side=0,
                                     price=6_000_000, size=1), agent).json()["accepted"]  # fmt: skip
    withdraw = C.Withdraw(actor=C.Actor(trader), timestamp=0, nonce=NOW + 2, asset="USDC", amount=1)
    refused(client, engine, lambda: post(client, withdraw, agent), 200, "NOT_AUTHORISED")
    revoke = C.RevokeAgent(actor=C.Actor(trader), timestamp=0, nonce=NOW + 3, agent=AGENT[1])
    assert post(client, revoke, TRADER[0]).json()["accepted"]
    refused(client, engine, lambda: post(client, order(NOW + 4), agent), 200, "NOT_AUTHORISED")
    again = C.ApproveAgent(actor=C.Actor(trader), timestamp=0, nonce=NOW + 5, agent=AGENT[1], name="bot2",
                           expiry=NOW + 3_600_000)  # fmt: skip
    refused(client, engine, lambda: post(client, again, TRADER[0]), 200, "AGENT_REUSED")


def test_sanctioned_and_unlisted_addresses_are_refused(venue: tuple[httpx.Client, Engine]) -> None:
    """Sanctions (a journaled admin list) bar every action; the KYC market refuses an address not on its registry."""
    client, engine = venue
    bad = SANCTIONED[1]
    assert post(client, order(NOW + 1, who=bad), SANCTIONED[0]).json()["accepted"]
    listed = engine.submit(C.ComplianceUpdate(actor=C.Actor(ADMIN), timestamp=NOW, policy="sanctions",
                                              payload={"version": 1, "add": ["0x" + bad.hex().upper()]}))  # fmt: skip
    assert listed[-1].accepted and engine.open_orders(bad) == []  # its resting order went with the listing
    refused(client, engine, lambda: post(client, order(NOW + 2, who=bad), SANCTIONED[0]), 200, "COMPLIANCE")
    withdraw = C.Withdraw(actor=C.Actor(bad), timestamp=0, nonce=NOW + 3, asset="USDC", amount=1)
    refused(client, engine, lambda: post(client, withdraw, SANCTIONED[0]), 200, "COMPLIANCE")
    newcomer = NEWCOMER
    refused(client, engine, lambda: post(client, order(NOW + 4, who=newcomer[1], market="ETH-USDC", price=300_000),
                                         newcomer[0]), 200, "COMPLIANCE")  # fmt: skip
    assert post(client, order(NOW + 5, who=newcomer[1]), newcomer[0]).json()["accepted"]  # BTC-USDC is open


def test_a_list_file_enters_as_a_signed_admin_command(tmp_path: Path) -> None:
    """A sanctions file becomes one ComplianceUpdate, signed by a venue admin and sent over the API; the
    listed address is barred at once (case-insensitive), and nobody but an admin can send such a command."""
    from exos_compliance.lists import update_command

    admin_key, admin = keypair(b"venue admin")
    path = manifest(tmp_path)
    path.write_text(path.read_text().replace("admins = [\n", f'admins = [\n    "0x{admin.hex()}",\n', 1))
    engine = Engine.from_manifest(path)
    listed = tmp_path / "sanctions.txt"
    listed.write_text(f"# OFAC, as of today\n0x{SANCTIONED[1].hex().upper()}\n\n")
    with running(create_app(engine, clock=lambda: NOW, limits=Limits(0, 0, 0, 0))) as base, \
            httpx.Client(base_url=base, timeout=10) as client:  # fmt: skip
        client.post("/v1/faucet", json={"address": "0x" + SANCTIONED[1].hex()})
        by_stranger = update_command(TRADER[1], "sanctions", 1, listed, nonce=NOW + 1)
        refused(client, engine, lambda: post(client, by_stranger, TRADER[0]), 200, "NOT_ADMIN")
        answer = post(client, update_command(admin, "sanctions", 1, listed, nonce=NOW + 2), admin_key).json()
        assert answer["accepted"], answer
        refused(client, engine, lambda: post(client, order(NOW + 3, who=SANCTIONED[1]), SANCTIONED[0]), 200,
                "COMPLIANCE")  # fmt: skip


# ------------------------------------------------------------------ private reads: the WebSocket login, REST headers


def login(private: bytes, account: bytes = TRADER[1], timestamp: int = NOW, domain: Domain = DOMAIN,
          request_id: str = "login") -> dict[str, Any]:  # fmt: skip
    """A WebSocket login for `account` signed with `private`."""
    signature = sign_digest(login_digest(account, timestamp, domain), private)
    return {"op": "login", "id": request_id, "address": "0x" + account.hex(), "timestamp": timestamp,
            "signature": "0x" + signature.hex()}  # fmt: skip


def ask(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Send a message and return the reply with its id (account events arriving meanwhile are skipped)."""
    ws.send(json.dumps(message))
    while True:
        reply: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if reply.get("id") == message["id"]:
            return reply


def user(account: bytes, request_id: str = "sub") -> dict[str, Any]:
    """Subscribe to `account`'s user channel."""
    return {"op": "subscribe", "id": request_id, "channel": "user", "address": "0x" + account.hex()}


def next_event(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of `kind` on the connection."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if message.get("type") == kind:
            return message


def high_s(signature: str) -> str:
    """The malleable twin of a signature (s -> n - s, v flipped): the same signer to a lax verifier."""
    raw = bytes.fromhex(signature[2:])
    s = int.from_bytes(raw[32:64], "big")
    return "0x" + (raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([raw[64] ^ 1])).hex()


def websocket(client: httpx.Client) -> Any:
    """A WebSocket connection to the venue."""
    import websockets.sync.client

    return websockets.sync.client.connect(str(client.base_url).rstrip("/").replace("http", "ws", 1) + "/v1/ws")


def test_the_user_channel_needs_a_login_by_the_account_or_its_agent(venue: tuple[httpx.Client, Engine]) -> None:
    """No login, another domain, a stale or future timestamp, the high-s twin, another key, a replayed login and a
    revoked agent are refused with typed codes (the state hash stays); the account's own key and its agent log in,
    one connection holds two accounts, and revoking the agent logs its connection out."""
    client, engine = venue
    trader, agent, newcomer = TRADER, AGENT, NEWCOMER
    before = engine.state_hash()
    with websocket(client) as ws:
        assert ask(ws, user(trader[1]))["error"]["code"] == "NOT_AUTHENTICATED"
        wrong_domain = Domain("another venue", "1", CHAIN_ID, VERIFYING)
        for bad, code in [
            (login(trader[0], domain=wrong_domain), "NOT_AUTHORISED"),  # recovers someone else
            (login(trader[0], timestamp=NOW - 60_001), "BAD_TIMESTAMP"),
            (login(trader[0], timestamp=NOW + 60_001), "BAD_TIMESTAMP"),
            ({**(good := login(trader[0])), "signature": high_s(good["signature"])}, "BAD_SIGNATURE"),
            (login(newcomer[0]), "NOT_AUTHORISED"),  # someone else's key, for the trader's account
            ({**login(trader[0]), "timestamp": -1}, "BAD_REQUEST"),
        ]:
            assert ask(ws, bad)["error"]["code"] == code, bad
        assert ask(ws, user(trader[1]))["error"]["code"] == "NOT_AUTHENTICATED"  # nothing above logged in
        assert engine.state_hash() == before
        assert ask(ws, login(trader[0], timestamp=NOW - 60_000))["channel"] == "login"  # the window's edge
        assert ask(ws, user(trader[1]))["channel"] == "subscription"
        assert post(client, order(NOW + 1), trader[0]).json()["accepted"]
        assert next_event(ws, "OrderAccepted")["address"] == "0x" + trader[1].hex()
    with websocket(client) as ws:
        assert ask(ws, login(trader[0], timestamp=NOW - 60_000))["error"]["code"] == "LOGIN_REPLAYED"
        by_agent = ask(ws, login(agent[0]))
        assert (by_agent["signer"], by_agent["expiry"]) == ("0x" + agent[1].hex(), str(NOW + 3_600_000))
        assert ask(ws, login(newcomer[0], newcomer[1], request_id="second"))["channel"] == "login"
        assert ask(ws, user(trader[1]))["channel"] == "subscription"
        assert ask(ws, user(newcomer[1], "sub2"))["channel"] == "subscription"
        assert ask(ws, user(SANCTIONED[1], "sub3"))["error"]["code"] == "NOT_AUTHENTICATED"
        revoke = C.RevokeAgent(actor=C.Actor(trader[1]), timestamp=0, nonce=NOW + 2, agent=agent[1])
        assert post(client, revoke, trader[0]).json()["accepted"]
        ended = next_event(ws, "logged_out")
        assert (ended["address"], ended["reason"]) == ("0x" + trader[1].hex(), "agent revoked")
        assert ask(ws, login(agent[0], timestamp=NOW + 1))["error"]["code"] == "NOT_AUTHORISED"
        assert post(client, order(NOW + 3, who=newcomer[1]), newcomer[0]).json()["accepted"]
        assert next_event(ws, "OrderAccepted")["address"] == "0x" + newcomer[1].hex()  # its own login stands
        assert ask(ws, user(trader[1], "sub4"))["error"]["code"] == "NOT_AUTHENTICATED"


def test_an_agents_login_ends_when_the_agent_expires(venue: tuple[httpx.Client, Engine]) -> None:
    """An agent approved until a moment from now logs in; at its expiry the server logs the connection out."""
    client, _ = venue
    brief_key, brief = keypair(b"brief agent")
    approve = C.ApproveAgent(actor=C.Actor(TRADER[1]), timestamp=0, nonce=NOW + 1, agent=brief, name="brief",
                             expiry=NOW + 50)  # fmt: skip
    assert post(client, approve, TRADER[0]).json()["accepted"]
    with websocket(client) as ws:
        assert ask(ws, login(brief_key))["expiry"] == str(NOW + 50)
        assert ask(ws, user(TRADER[1]))["channel"] == "subscription"
        assert next_event(ws, "logged_out")["reason"] == "agent expired"
        assert ask(ws, user(TRADER[1], "again"))["error"]["code"] == "NOT_AUTHENTICATED"


def read(client: httpx.Client, target: str, private: bytes | None, account: bytes = TRADER[1], timestamp: int = NOW,
         sent: str | None = None) -> httpx.Response:  # fmt: skip
    """GET `sent` (default `target`) with a Request signature over `target` by `private` for `account` (unsigned if
    `private` is None)."""
    headers = {}
    if private is not None:
        signature = sign_digest(request_digest(account, "GET", target, timestamp, DOMAIN), private)
        headers = {"X-Exos-Address": "0x" + account.hex(), "X-Exos-Timestamp": str(timestamp),
                   "X-Exos-Signature": "0x" + signature.hex()}  # fmt: skip
    return client.get(sent or target, headers=headers)


def test_private_reads_are_signed_by_the_account_or_its_agent(venue: tuple[httpx.Client, Engine]) -> None:
    """Unsigned 401, another account's signature 403, a changed path or query 401, a stale timestamp 401, the high-s
    twin 401, a revoked agent 401; the account's own signature and its agent's read; public reads stay public."""
    client, engine = venue
    trader, agent, newcomer = TRADER, AGENT, NEWCOMER
    account = f"/v1/accounts/0x{trader[1].hex()}"
    tagged = C.PlaceOrder(actor=C.Actor(trader[1]), timestamp=0, nonce=NOW + 1, market="BTC-USDC", side=0,
                          price=6_000_000, size=1, client_id=b"c" * 16)  # fmt: skip
    placed = post(client, tagged, trader[0]).json()
    order_id = placed["events"][0]["order_id"]
    private = [f"{account}?sub=0", f"{account}/fills?limit=5", f"/v1/markets/BTC-USDC/orders?address=0x"
               f"{trader[1].hex()}&client_id=0x{(b'c' * 16).hex()}"]  # fmt: skip

    def refused(response: httpx.Response, status: int, code: str) -> None:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text

    before = engine.state_hash()
    for target in [*private, "/v1/history/fills?address=0x" + trader[1].hex()]:
        refused(read(client, target, None), 401, "NOT_AUTHENTICATED")
        refused(read(client, target, newcomer[0], newcomer[1]), 403, "FORBIDDEN")  # good signature, wrong account
        refused(read(client, target, newcomer[0]), 401, "NOT_AUTHORISED")  # another key claiming the account
        refused(read(client, target, trader[0], timestamp=NOW - 60_001), 401, "BAD_TIMESTAMP")
        refused(read(client, target, trader[0], timestamp=NOW + 60_001), 401, "BAD_TIMESTAMP")
        tampered = target.replace("0x", "0X", 1) if "?" not in target else target + "&sub=1"
        refused(read(client, target, trader[0], sent=tampered), 401, "NOT_AUTHORISED")
    signature = read(client, private[0], trader[0]).request.headers["X-Exos-Signature"]
    twin = client.get(private[0], headers={"X-Exos-Address": "0x" + trader[1].hex(), "X-Exos-Timestamp": str(NOW),
                                           "X-Exos-Signature": high_s(signature)})  # fmt: skip
    refused(twin, 401, "BAD_SIGNATURE")
    refused(client.get(private[0], headers={"X-Exos-Address": "0x" + trader[1].hex(), "X-Exos-Timestamp": "soon",
                                            "X-Exos-Signature": signature}), 401, "BAD_TIMESTAMP")  # fmt: skip
    # the history store is not running here: a good signature gets past the check to its 404
    refused(read(client, "/v1/history/orders?address=0x" + trader[1].hex(), trader[0]), 404, "NO_HISTORY")
    refused(client.get("/v1/history/settlements"), 404, "NO_HISTORY")  # markets' resolutions: public
    refused(client.get("/v1/history/settlements?address=0x" + trader[1].hex()), 401, "NOT_AUTHENTICATED")
    assert engine.state_hash() == before
    mine = read(client, private[0], trader[0]).json()
    assert [o["order_id"] for o in mine["open_orders"]] == [order_id]
    assert read(client, private[0], trader[0]).status_code == 200  # a read signature is good for its window
    assert read(client, private[0], agent[0]).json() == mine  # the agent reads its master's account
    assert read(client, private[2], agent[0]).json()["order_id"] == order_id
    for public in ("/v1/info", "/v1/markets", "/v1/markets/BTC-USDC/book", "/v1/markets/BTC-USDC/trades",
                   f"/v1/markets/BTC-USDC/orders/{order_id}", "/v1/oracles"):  # fmt: skip
        assert client.get(public).status_code == 200, public
    revoke = C.RevokeAgent(actor=C.Actor(trader[1]), timestamp=0, nonce=NOW + 2, agent=agent[1])
    assert post(client, revoke, trader[0]).json()["accepted"]
    refused(read(client, private[0], agent[0]), 401, "NOT_AUTHORISED")


# ------------------------------------------------------------------ read limits and the login memory


def test_reads_and_logins_past_the_ip_read_limit_are_refused_before_any_signature_is_checked(tmp_path: Path) -> None:
    """Every GET, login and subscription spends a read token of the IP: past its burst they get 429 / RATE_LIMITED
    (the sequencer is not asked: no login is remembered, the state hash stays) while signed actions still pass."""
    engine = Engine.from_manifest(manifest(tmp_path))
    app = create_app(engine, clock=lambda: NOW, limits=Limits(0, 0, 0, 0, read_rate=0.001, read_burst=3))
    sequencer = app.state.backend.sequencer
    with running(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.post("/v1/faucet", json={"address": "0x" + TRADER[1].hex()}).status_code == 200  # not a read
        assert [client.get("/v1/markets").status_code for _ in range(2)] == [200, 200]
        with websocket(client) as ws:
            assert ask(ws, login(TRADER[0]))["channel"] == "login"  # the third read token
            before, remembered = engine.state_hash(), len(sequencer.logins)
            refused_login = ask(ws, login(TRADER[0], timestamp=NOW - 1, request_id="again"))
            assert refused_login["error"]["code"] == "RATE_LIMITED", refused_login
            assert ask(ws, user(TRADER[1]))["error"]["code"] == "RATE_LIMITED"
            assert len(sequencer.logins) == remembered and engine.state_hash() == before
            response = client.get("/v1/markets/BTC-USDC/book")
            assert (response.status_code, response.json()["error"]["code"]) == (429, "RATE_LIMITED")
            assert post(client, order(NOW + 1), TRADER[0]).json()["accepted"]  # actions have their own limits


def test_the_login_memory_is_bounded(tmp_path: Path) -> None:
    """Past `logins_max` remembered logins a new one is refused (503 TOO_MANY_LOGINS) until old ones leave the
    replay window; a replayed login is still told apart from a new one."""
    from exos.sequencer import READ_WINDOW_MS, QueryError, Sequencer

    clock = [NOW]
    sequencer = Sequencer(Engine.from_manifest(manifest(tmp_path)), clock=lambda: clock[0], logins_max=2)
    account = TRADER[1]
    for stamp in (NOW, NOW + 1):
        assert sequencer.q_authorise(account, account, login=stamp) == {"expiry": None}
    for stamp, status, code in ((NOW + 1, 401, "LOGIN_REPLAYED"), (NOW + 2, 503, "TOO_MANY_LOGINS")):
        with pytest.raises(QueryError) as refused_login:
            sequencer.q_authorise(account, account, login=stamp)
        assert (refused_login.value.status, refused_login.value.code) == (status, code)
    assert len(sequencer.logins) == 2
    clock[0] = NOW + 2 * READ_WINDOW_MS + 2  # both remembered logins are now older than any window accepts
    assert sequencer.q_authorise(account, account, login=clock[0]) == {"expiry": None}
    assert len(sequencer.logins) == 1
