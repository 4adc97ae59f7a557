"""The unified venue through `exos serve`: perp orders, leverage, reduce-only, positions, margin and a liquidation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from eth_hash.auto import keccak

from exos import commands as C
from exos.client import AsyncClient, Client
from exos.signing import address_of

ROOT = Path(__file__).resolve().parents[3]
PUBLISHER_KEY = keccak(b"unified publisher")
LONG_KEY, SHORT_KEY = keccak(b"unified long"), keccak(b"unified short")


def _manifest(tmp_path: Path) -> Path:
    """examples/unified.toml with a publisher whose key the test holds (and no simulation)."""
    text = (ROOT / "examples" / "unified.toml").read_text()
    text = text.replace("0x0b0000000000000000000000000000000000000b", "0x" + address_of(PUBLISHER_KEY).hex())
    text = text[: text.index("[simulation]")]
    manifest = tmp_path / "unified.toml"
    manifest.write_text(text)
    return manifest


def _publish(base: str, btc_cents: int) -> None:
    """The publisher signs BTC-USD and ETH-USD updates (the trading scheme) and sends them."""
    with Client(base, PUBLISHER_KEY) as publisher:
        for feed, price in (("BTC-USD", btc_cents), ("ETH-USD", 320_000)):
            now = publisher.nonce()
            result = publisher.send(C.OracleUpdate(actor=C.Actor(address_of(PUBLISHER_KEY)), timestamp=0, nonce=now,
                                                   feed=feed, price=price, published_ms=now))  # fmt: skip
            assert result.accepted, result


def test_perpetuals_through_the_api(tmp_path: Path) -> None:
    """Two faucet-funded keys trade 5 BTC-PERP at 40x; the account read shows positions and margin; a 5% drop
    liquidates the long (ADL against the short) and its user channel hears of it; refusals carry typed codes."""
    from tests.conftest import serving

    with serving(_manifest(tmp_path)) as base:
        _publish(base, 6_500_000)
        with Client(base, LONG_KEY) as long, Client(base, SHORT_KEY) as short:
            long.faucet()  # 10,000 USDC each
            short.faucet()
            assert long.set_leverage("BTC-PERP", 40).accepted
            assert short.set_leverage("BTC-PERP", 40).accepted
            refused = long.place("BTC-PERP", "buy", "65000", "10")  # 650,000 USDC of notional on 10,000
            assert not refused.accepted and refused.code == "INSUFFICIENT_MARGIN"
            refused = long.place("BTC-PERP", "buy", "80000", "0.1")
            assert not refused.accepted and refused.code == "PRICE_BAND"
            assert long.place("BTC-PERP", "buy", "65000", "5").accepted  # 325,000 notional: 8,125 at 40x
            assert short.place("BTC-PERP", "sell", "65000", "5").accepted
            account = long.account()
            assert account["positions"][0]["market"] == "BTC-PERP" and account["positions"][0]["size"] == "5000"
            margin = account["margin"]["USDC"]
            assert int(margin["equity"]) > int(margin["maintenance"]) > 0
            clipped = short.place("BTC-PERP", "buy", "66000", "10", reduce_only=True)  # clipped to the 5 BTC short
            assert clipped.accepted
            assert next(e for e in clipped.events if e["type"] == "OrderAccepted")["size"] == "5000"
            assert short.cancel_all("BTC-PERP").accepted
            markets = {m["name"]: m for m in httpx.get(f"{base}/v1/markets", timeout=10).json()}
            assert markets["BTC-PERP"]["perp"]["mark"] == "650000"

            async def crash_and_listen() -> list[dict[str, object]]:
                """Follow the long's user channel while the publisher moves BTC down 5%."""
                client = await AsyncClient.connect(base, LONG_KEY)
                heard: list[dict[str, object]] = []
                try:
                    async with client.subscribe_user() as mine:
                        await asyncio.to_thread(_publish, base, 6_175_000)
                        async for message in mine:
                            heard.append(message)
                            if message.get("name") == "exos.liquidation.started":
                                break
                finally:
                    await client.aclose()
                return heard

            heard = asyncio.run(asyncio.wait_for(crash_and_listen(), 30))
            started = json.loads(str(heard[-1]["detail"]))
            assert started["address"] == "0x" + address_of(LONG_KEY).hex()
            assert long.account()["positions"] == []
