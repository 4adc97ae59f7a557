"""exos.client against a real `exos` server on a loopback port: sync and async HTTP, WebSocket books and channels."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from tests import test_server
from tests.conftest import serving
from tests.test_server import CHAIN_ID, KEY, TRADER, manifest

import exos.feed
from exos import commands as C
from exos.client import AsyncClient, BookSubscription, Client, ClientError, Order, RateLimited, Result
from exos.engine import Engine
from exos.signing import sign

OTHER_KEY = bytes.fromhex("11" * 32)
AGENT_KEY = bytes.fromhex("22" * 32)
MARKET = "BTC-USDC"
server = test_server.server  # the fixture: the app on uvicorn in a thread on a loopback port, default rate limits


@contextlib.contextmanager
def exos_serve(tmp_path: Path, verifiers: int = 0, limit_address: int = 0) -> Iterator[str]:
    """`exos serve` in its own process (a sequencer and `verifiers` verifier processes; no IP limit)."""
    with serving(manifest(tmp_path), "--journal", str(tmp_path / "served"), "--verifiers", str(verifiers),
                 "--limit-address", str(limit_address), "--limit-ip", "0") as base:  # fmt: skip
        yield base


def rest_book(base: str) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], int]:
    """GET /v1/markets/{m}/book at full depth as integer rows, and its sequence."""
    body = httpx.get(f"{base}/v1/markets/{MARKET}/book", params={"levels": 1000}, timeout=10).json()

    def rows(side: list[list[str]]) -> list[tuple[int, int, int]]:
        return [(int(p), int(s), int(c)) for p, s, c in side]

    return rows(body["bids"]), rows(body["asks"]), int(body["seq"])


def last_book_seq(result: Result) -> int:
    """The book sequence of an action's last BookDelta (what a subscriber waits for)."""
    return max(int(e["book_seq"]) for e in result.events if e["type"] == "BookDelta")


# ------------------------------------------------------------------ sync client


def test_sync_client_places_amends_cancels_and_reads(server: tuple[str, Engine]) -> None:
    """Every sync operation against the server: statuses by id and client id, fills, trades, cancel-all."""
    base, _ = server
    with Client(base, KEY) as maker, Client(base, OTHER_KEY) as taker:
        assert maker.domain.chain_id == CHAIN_ID and maker.address == TRADER
        maker.faucet()
        taker.faucet()
        cid = b"order-number-001"
        placed = maker.place(MARKET, "sell", "65000", "0.0003", client_id=cid)
        assert placed.accepted and placed.order_id is not None
        assert maker.order(MARKET, placed.order_id)["status"] == "open"
        assert maker.order_by_client_id(MARKET, cid)["order_id"] == str(placed.order_id)
        amended = maker.amend(MARKET, placed.order_id, "64000.009", "0.00025")  # rounds to 6400000 ticks, 2 lots
        assert amended.accepted
        assert maker.book(MARKET)["asks"] == [["6400000", "2", "1"]]
        crossed = taker.place(MARKET, "buy", "64000", "0.0001", tif="ioc")
        assert crossed.accepted and len(crossed.fills) == 2
        assert maker.order(MARKET, placed.order_id)["filled"] == "1"
        [fill] = maker.fills()
        assert (fill["order_id"], fill["maker"], fill["size"]) == (str(placed.order_id), True, "1")
        [trade] = taker.trades(MARKET)
        assert (trade["price"], trade["size"], trade["side"]) == ("6400000", "1", 0)
        other = maker.place(MARKET, "buy", "60000", "0.0001")
        assert maker.cancel_by_client_id(MARKET, cid).accepted
        assert maker.order(MARKET, placed.order_id)["status"] == "cancelled"
        assert maker.cancel_all().accepted  # every market
        assert other.order_id is not None and maker.order(MARKET, other.order_id)["status"] == "cancelled"
        assert maker.account()["open_orders"] == []
        with pytest.raises(ClientError) as unknown:
            maker.order(MARKET, 10**9)
        assert (unknown.value.code, unknown.value.status) == ("UNKNOWN_ORDER", 404)
        refused = maker.cancel(MARKET, placed.order_id)
        assert (refused.accepted, refused.code) == (False, "UNKNOWN_ORDER") and refused.message


def test_account_actions_and_agents(server: tuple[str, Engine]) -> None:
    """Withdraw, transfer, approve and revoke an agent (typed-data signatures); the agent trades for its master."""
    base, _ = server
    with Client(base, KEY) as master:
        master.faucet()
        assert master.withdraw("USDC", 1_000_000).accepted
        assert master.transfer("USDC", 2_000_000, 1).accepted
        assert master.account(sub=1)["balances"]["USDC"]["available"] == "2000000"
        assert master.account()["balances"]["USDC"]["available"] == str(10_000 * 10**6 - 3_000_000)
        too_much = master.withdraw("BTC", 10**9)
        assert not too_much.accepted and too_much.code is not None
        with Client(base, AGENT_KEY, account=TRADER) as agent:
            assert agent.address == TRADER and agent.signer != TRADER
            assert agent.place(MARKET, "buy", "60000", "0.0001").code == "NOT_AUTHORISED"
            with pytest.raises(ClientError) as stranger:
                agent.account()  # not yet an agent: it may not read the account either
            assert (stranger.value.code, stranger.value.status) == ("NOT_AUTHORISED", 401)
            assert master.approve_agent(agent.signer, "bot", expiry=2**62).accepted
            placed = agent.place(MARKET, "buy", "60000", "0.0001")
            assert placed.accepted and placed.order_id in [int(o["order_id"]) for o in master.account()["open_orders"]]
            assert agent.account() == master.account() and agent.fills() == master.fills() == []
            assert master.revoke_agent(agent.signer).accepted
            assert agent.place(MARKET, "buy", "60000", "0.0001").code == "NOT_AUTHORISED"
            with pytest.raises(ClientError) as revoked:
                agent.account()
            assert (revoked.value.code, revoked.value.status) == ("NOT_AUTHORISED", 401)


def test_refusals_are_typed(tmp_path: Path) -> None:
    """HTTP 429 raises RateLimited (a ClientError), other refusals ClientError; bad arguments never leave the client."""
    with exos_serve(tmp_path, limit_address=2) as base, Client(base, KEY) as client:
        client.faucet()
        limited = place_until_refused(client)
        assert (limited.code, limited.status) == ("RATE_LIMITED", 429) and isinstance(limited, ClientError)
        assert client.cancel_all(MARKET).accepted  # cancels are never rate limited
        with pytest.raises(ClientError) as unknown:
            client.book("NOPE-USDC")
        assert (unknown.value.code, unknown.value.status) == ("UNKNOWN_MARKET", 404)
        assert not isinstance(unknown.value, RateLimited)
        with pytest.raises(ClientError) as bad:
            client.send_many([C.CancelAll(actor=C.Actor(TRADER), timestamp=0)] * 101)
        assert bad.value.code == "BAD_ARGUMENT" and bad.value.status is None
        with pytest.raises(ClientError) as side:
            client.place(MARKET, "long", "1", "1")
        assert side.value.code == "BAD_ARGUMENT"
        with pytest.raises(ClientError) as market:
            client.place("DOGE-USDC", "buy", "1", "1")
        assert market.value.code == "UNKNOWN_MARKET"


def place_until_refused(client: Client) -> RateLimited:
    """Place orders until the gateway's limit refuses one."""
    for _ in range(10):
        try:
            client.place(MARKET, "buy", "60000", "0.0001")
        except RateLimited as exc:
            return exc
    raise AssertionError("never rate limited")


def test_signed_batches(server: tuple[str, Engine]) -> None:
    """place_many: 100 orders under one signature, all accepted in order; account actions are refused in a batch."""
    base, engine = server
    with Client(base, KEY) as client:
        client.faucet()
        before = engine.seq
        orders = [Order(MARKET, "buy", f"{20000 + i}.00", "0.0001") for i in range(100)]
        results = client.place_many(orders)
        assert [r.accepted for r in results] == [True] * 100
        assert engine.seq == before + 100
        ids = [int(r.events[0]["order_id"]) for r in results]
        assert ids == sorted(ids) == [r.order_id for r in results]  # applied in order
        assert len(client.account()["open_orders"]) == 100
        assert [b[0] for b in client.book(MARKET, levels=3)["bids"]] == ["2009900", "2009800", "2009700"]
        cancels = [
            C.CancelOrder(actor=C.Actor(TRADER), timestamp=0, market=MARKET, order_id=i) for i in (ids[0], 10**9)
        ]
        mixed = client.signed_batch(cancels)
        assert [(r.accepted, r.code) for r in mixed] == [(True, None), (False, "UNKNOWN_ORDER")]
        withdraw = C.Withdraw(actor=C.Actor(TRADER), timestamp=0, asset="USDC", amount=1)
        with pytest.raises(ClientError) as refused:
            client.signed_batch([withdraw])
        assert refused.value.code == "BAD_SIGNATURE" and "account action" in refused.value.message
        # the server refuses it too: a hand-made batch with the withdrawal's own signature
        record = attrs.evolve(withdraw, nonce=client.nonce()).pack()
        body = {"records": ["0x" + record.hex()], "signature": "0x" + sign(record, KEY, client.domain).hex()}
        answer = client.http.post("/v1/actions/signed-batch", json=body)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "BAD_SIGNATURE"
        assert client.account()["balances"]["USDC"]["available"] == str(10_000 * 10**6 - sum(
            (2_000_000 + 100 * i) for i in range(1, 100)))  # fmt: skip


# ------------------------------------------------------------------ async client


def test_concurrent_tasks_never_collide_on_nonces(tmp_path: Path) -> None:
    """100 asyncio tasks x 100 orders from one key: every order accepted, the account agrees, no nonce refused.

    Against `exos serve --verifiers 2` in its own process, so client and server do not share a GIL."""
    tasks, per_task = 100, 100

    async def main(base: str) -> tuple[list[Result], dict[str, Any], float]:
        async with await AsyncClient.connect(base, KEY) as client:
            await client.faucet()

            async def burst(t: int) -> list[Result]:
                side = "buy" if t % 2 == 0 else "sell"  # 5000 buys near 10000 USDC, 5000 sells near 100000
                start = 10_000 if side == "buy" else 100_000
                return [await client.place(MARKET, side, f"{start}.{t:02d}", "0.0001") for _ in range(per_task)]

            began = time.monotonic()
            results = [r for batch in await asyncio.gather(*(burst(t) for t in range(tasks))) for r in batch]
            elapsed = time.monotonic() - began
            return results, await client.account(), elapsed

    with exos_serve(tmp_path, verifiers=2) as base:
        results, account, elapsed = asyncio.run(main(base))
    codes = [r.code for r in results if not r.accepted]
    assert codes == [], f"{len(codes)} refused: {sorted(set(map(str, codes)))}"
    assert len({r.order_id for r in results}) == tasks * per_task
    opened = account["open_orders"]
    assert sorted(int(o["order_id"]) for o in opened) == sorted(r.order_id for r in results if r.order_id)
    buy_notional = sum(int(o["price"]) * int(o["size"]) for o in opened if o["side"] == 0)
    assert buy_notional == sum((1_000_000 + t) * per_task for t in range(0, tasks, 2))
    balances = account["balances"]
    assert balances["USDC"] == {"available": str(10_000 * 10**6 - buy_notional), "locked": str(buy_notional)}
    assert balances["BTC"] == {"available": str(10**8 // 2), "locked": str(10**8 // 2)}
    print(f"\n{tasks * per_task} orders from {tasks} tasks in {elapsed:.1f} s ({tasks * per_task / elapsed:.0f}/s)")


def test_async_client_has_the_sync_surface(server: tuple[str, Engine]) -> None:
    """The async client places, amends, reads and cancels like the sync one; a batch of 100 under one signature."""
    base, _ = server

    async def main() -> None:
        async with await AsyncClient.connect(base, KEY, connections=4) as client:
            assert client.ticks(MARKET, "65000.019") == 6_500_001 and client.lots(MARKET, "0.00029") == 2
            assert client.price(MARKET, "6500001") == Decimal("65000.01")
            assert client.size(MARKET, 2) == Decimal("0.0002")
            await client.faucet()
            placed = await client.place(MARKET, "buy", "60000", "0.0002", client_id=b"async-order-0001")
            assert placed.accepted and placed.order_id is not None
            assert (await client.amend(MARKET, placed.order_id, "60001", "0.0003")).accepted
            status = await client.order_by_client_id(MARKET, b"async-order-0001")
            assert (status["price"], status["size"], status["status"]) == ("6000100", "3", "open")
            results = await client.place_many([Order(MARKET, "sell", f"{70000 + i}", "0.0001") for i in range(100)])
            assert all(r.accepted for r in results)
            assert len((await client.account())["open_orders"]) == 101
            assert (await client.cancel_all(MARKET)).accepted
            assert (await client.account())["open_orders"] == []
            assert await client.fills() == [] and await client.trades(MARKET) == []
            with pytest.raises(ClientError) as unknown:
                await client.order(MARKET, 10**9)
            assert unknown.value.code == "UNKNOWN_ORDER"

    asyncio.run(main())


# ------------------------------------------------------------------ WebSockets


async def churn(maker: AsyncClient, taker: AsyncClient, rounds: int) -> Result:
    """A burst of orders, amends, cancels and trades (the taker crosses) on one book; the last (resting) order."""
    placed: list[int] = []
    for i in range(rounds):
        bids = [Order(MARKET, "buy", f"{60000 + (i * 7 + j) % 40}", "0.0001") for j in range(5)]
        asks = [Order(MARKET, "sell", f"{61000 + (i * 3 + j) % 30}", "0.0002") for j in range(5)]
        placed += [r.order_id for r in await maker.place_many(bids + asks) if r.order_id is not None]
        if i % 3 == 0:
            crossed = await taker.place(MARKET, "buy", "61010", "0.0003", tif="ioc")
            assert crossed.fills
        if i % 4 == 1:
            await maker.amend(MARKET, placed[-1], "61100", "0.0001")
        for order_id in placed[-7:-3]:
            await maker.cancel(MARKET, order_id)
    return await maker.place(MARKET, "buy", "59999.99", "0.0001")


@contextlib.asynccontextmanager
async def two_traders(base: str) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    """A maker (KEY) and a taker (OTHER_KEY), both funded by the faucet."""
    async with await AsyncClient.connect(base, KEY) as maker, await AsyncClient.connect(base, OTHER_KEY) as taker:
        await maker.faucet()
        await taker.faucet()
        yield maker, taker


def assert_same_book(book: BookSubscription, base: str) -> None:
    """The subscription's local book is the REST book at full depth."""
    bids, asks, _ = rest_book(base)
    assert book.depth() == (bids, asks)
    assert bids and asks


@pytest.mark.parametrize("verifiers", [None, 2], ids=["in-process", "verifier-processes"])
def test_book_subscription_matches_rest(request: pytest.FixtureRequest, tmp_path: Path, verifiers: int | None) -> None:
    """After a burst of orders, amends, cancels and trades the local book equals GET .../book; every checksum held."""

    async def main(base: str) -> None:
        async with two_traders(base) as (maker, taker), maker.subscribe_book(MARKET) as book:
            last = await churn(maker, taker, 30)
            await book.wait_seq(last_book_seq(last))
            assert_same_book(book, base)
            assert book.messages > 30 and book.verified == book.messages and book.resyncs == []
            assert len(await taker.fills()) >= 10

    if verifiers is None:
        asyncio.run(main(request.getfixturevalue("server")[0]))
    else:
        with exos_serve(tmp_path, verifiers) as base:
            asyncio.run(main(base))


def test_book_subscription_recovers_from_gaps_drops_bad_checksums_and_resyncs(
    server: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forced gap, a dropped socket, a corrupted level and server resync snapshots: each time the book heals."""
    base, _ = server

    async def step(traders: tuple[AsyncClient, AsyncClient], book: BookSubscription, reason: str) -> None:
        last = await churn(*traders, 3)
        await book.wait_for(lambda b: reason in b.resyncs and b.seq is not None
                            and b.seq >= last_book_seq(last))  # fmt: skip
        assert_same_book(book, base)

    async def main() -> None:
        async with two_traders(base) as traders, traders[0].subscribe_book(MARKET, backoff=0.01) as book:
            book.seq = (book.seq or 0) - 1  # as if a delta had been missed: the next one does not continue
            await step(traders, book, "gap")
            assert book._ws is not None
            await book._ws.close()  # the connection drops
            await step(traders, book, "disconnected")
            book.bids[6_050_000] = (1, 1)  # the local copy goes wrong: a best bid nobody placed
            await step(traders, book, "checksum")
            assert book.resyncs == ["gap", "disconnected", "checksum"]
            monkeypatch.setattr(exos.feed, "QUEUE_MAX", 0)  # every message finds this subscriber behind
            await step(traders, book, "resync")
            monkeypatch.undo()
            last = await churn(*traders, 3)
            await book.wait_seq(last_book_seq(last))
            assert_same_book(book, base)
            assert book.verified == book.messages - 1  # every message was checked; only the corrupted one failed

    asyncio.run(main())


def test_user_and_trades_channels(server: tuple[str, Engine]) -> None:
    """The maker's user channel gets the fill another key crossed; the trades channel gets the trade; both resume."""
    base, _ = server

    async def next_of(stream: Any, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(10):
            async for message in stream:
                if message.get("type") == kind or message.get("channel") == kind:
                    return dict(message)
        raise AssertionError(f"the stream ended before a {kind}")

    async def main() -> None:
        async with (
            await AsyncClient.connect(base, KEY) as maker,
            await AsyncClient.connect(base, OTHER_KEY) as taker,
            maker.subscribe_user() as mine,
            taker.subscribe_trades(MARKET) as trades,
        ):
            await maker.faucet()
            await taker.faucet()
            placed = await maker.place(MARKET, "sell", "65000", "0.0002")
            accepted = await next_of(mine, "OrderAccepted")
            assert accepted["order_id"] == str(placed.order_id)
            crossed = await taker.place(MARKET, "buy", "65000", "0.0001")
            assert crossed.accepted and crossed.fills
            fill = await next_of(mine, "Fill")
            assert (fill["order_id"], fill["maker"], fill["size"], fill["price"]) == (
                str(placed.order_id), True, "1", "6500000")  # fmt: skip
            trade = await next_of(trades, "trades")
            assert (trade["trade_id"], trade["price"], trade["size"], trade["side"]) == (
                fill["trade_id"], "6500000", "1", 0)  # fmt: skip
            assert mine._ws is not None and trades._ws is not None
            await mine._ws.close()
            await trades._ws.close()
            assert (await next_of(mine, "resync"))["reason"] == "reconnected"
            assert (await next_of(trades, "resync"))["reason"] == "reconnected"
            await taker.place(MARKET, "buy", "65000", "0.0001")
            assert (await next_of(mine, "Fill"))["order_id"] == str(placed.order_id)
            assert (await next_of(trades, "trades"))["size"] == "1"
            assert mine.resyncs == trades.resyncs == ["disconnected"]

    asyncio.run(main())


def test_an_agents_user_channel_ends_with_its_approval(server: tuple[str, Engine]) -> None:
    """An agent key with `account=master` logs in to the master's user channel and follows its orders; revoking the
    agent logs it out: the stream yields `logged_out` and ends."""
    base, _ = server

    async def main() -> None:
        async with await AsyncClient.connect(base, KEY) as master, \
                await AsyncClient.connect(base, AGENT_KEY, account=TRADER) as agent:  # fmt: skip
            await master.faucet()
            assert (await master.approve_agent(agent.signer, "watcher", expiry=2**62)).accepted
            async with agent.subscribe_user() as stream:
                placed = await master.place(MARKET, "buy", "60000", "0.0001")
                seen = [m async for m in _until(stream, "logged_out", after=lambda: master.revoke_agent(agent.signer),
                                                 trigger="OrderAccepted")]  # fmt: skip
            assert seen[0]["type"] == "OrderAccepted" and seen[0]["order_id"] == str(placed.order_id)
            assert (seen[-1]["type"], seen[-1]["reason"]) == ("logged_out", "agent revoked")
            with pytest.raises(ClientError) as refused:
                async with agent.subscribe_user():
                    pass
            assert refused.value.code == "NOT_AUTHORISED"

    asyncio.run(main())


async def _until(stream: Any, last: str, after: Any, trigger: str) -> AsyncIterator[dict[str, Any]]:
    """The stream's messages up to the end of the stream (which follows `last`), calling `after()` on `trigger`."""
    async with asyncio.timeout(10):
        async for message in stream:
            yield message
            if message.get("type") == trigger:
                await after()
    assert message.get("type") == last


def test_order_channel_over_the_websocket(server: tuple[str, Engine]) -> None:
    """Actions posted on the WebSocket are answered by id: places from many tasks, a signed batch, refusals."""
    base, _ = server

    async def main() -> None:
        async with await AsyncClient.connect(base, KEY) as client:
            await client.faucet()
            placed = await client.ws.place(MARKET, "buy", "60000", "0.0001")
            assert placed.accepted and placed.order_id is not None
            burst = await asyncio.gather(*(client.ws.place(MARKET, "sell", f"{70000 + i}", "0.0001")
                                           for i in range(200)))  # fmt: skip
            assert all(r.accepted for r in burst) and len({r.order_id for r in burst}) == 200
            batch = await client.ws.place_many([Order(MARKET, "buy", f"{50000 + i}", "0.0001") for i in range(100)])
            assert all(r.accepted for r in batch)
            assert len((await client.account())["open_orders"]) == 301
            refused = await client.ws.cancel(MARKET, 10**9)
            assert (refused.accepted, refused.code) == (False, "UNKNOWN_ORDER")
            many = await client.ws.send_many([C.CancelOrder(actor=C.Actor(TRADER), timestamp=0, market=MARKET,
                                                            order_id=placed.order_id)] * 2)  # fmt: skip
            assert [(r.accepted, r.code) for r in many] == [(True, None), (False, "UNKNOWN_ORDER")]
            with pytest.raises(ClientError) as withdraw:
                await client.ws.signed_batch([C.Withdraw(actor=C.Actor(TRADER), timestamp=0, asset="USDC", amount=1)])
            assert withdraw.value.code == "BAD_SIGNATURE"
            assert (await client.ws.cancel_all()).accepted
            assert (await client.account())["open_orders"] == []
            await client.ws.close()
            assert (await client.ws.place(MARKET, "buy", "60000", "0.0001")).accepted  # reopened on use

    asyncio.run(main())


def test_a_served_venues_api_process_limits_reads_per_ip(tmp_path: Path) -> None:
    """`exos serve --limit-read 1`: the verifier learns the read limit from the sequencer at its handshake; a burst
    of reads from one IP past twice that is answered 429 RATE_LIMITED, and writes still go through."""
    with serving(manifest(tmp_path), "--verifiers", "1", "--limit-read", "1") as base:
        statuses = [httpx.get(f"{base}/v1/markets", timeout=10).status_code for _ in range(10)]
        assert statuses[:2] == [200, 200] and 429 in statuses, statuses
        refused = httpx.get(f"{base}/v1/oracles", timeout=10)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "RATE_LIMITED"
        faucet = httpx.post(f"{base}/v1/faucet", json={"address": "0x" + TRADER.hex()}, timeout=10)
        assert faucet.status_code == 200, faucet.text
