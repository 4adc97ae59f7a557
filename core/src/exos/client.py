"""A synchronous Python client for `exos serve`: builds commands, signs them, sends them (first slice of #6).

    from exos.client import Client
    client = Client("http://127.0.0.1:8000", private_key)      # the signing domain comes from GET /v1/info
    client.faucet()
    placed = client.place("BTC-USDC", "buy", "65000.00", "0.0003")   # human decimals, rounded to tick and lot
    client.cancel("BTC-USDC", placed.order_id)

Nonces are the client's clock in milliseconds, strictly increasing across threads (one lock), so
concurrent senders never collide. Errors the server refuses with raise `ClientError(code, message)`;
a command the engine refuses comes back as a `Placed`/`Result` with `accepted` False and its code.
"""

from __future__ import annotations

import threading
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs
import httpx
from coincurve import PrivateKey
from eth_hash.auto import keccak

from exos import commands as C
from exos.errors import ExosError
from exos.signing import Domain, sign

SIDES = {"buy": 0, "sell": 1}


class ClientError(ExosError):
    """The server refused a request (its error envelope's code and message)."""

    code = "CLIENT"


@attrs.frozen
class Result:
    """What the engine did with a command: accepted or not, the refusal code, the events (JSON)."""

    accepted: bool
    code: str | None
    events: list[dict[str, Any]]

    @property
    def order_id(self) -> int | None:
        """The id of the order a place command created, if it did."""
        for event in self.events:
            if event["type"] in ("OrderAccepted", "OrderDelayed"):
                return int(event["order_id"])
        return None


class Client:
    """One signer talking to one venue over HTTP."""

    def __init__(self, base_url: str, private_key: bytes, *, http: httpx.Client | None = None) -> None:
        """Fetch the venue's signing domain and markets once; sign with `private_key` (32 bytes)."""
        self.http = http or httpx.Client(base_url=base_url, timeout=10)
        self.key = private_key
        public = PrivateKey(private_key).public_key.format(compressed=False)[1:]
        self.address = keccak(public)[-20:]
        info = self._get("/v1/info")
        self.domain = Domain(info["name"], info["version"], int(info["chain_id"]),
                             bytes.fromhex(info["verifying_contract"][2:]))  # fmt: skip
        self.markets = {m["name"]: m for m in self._get("/v1/markets")}
        self._lock = threading.Lock()
        self._last_nonce = 0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()

    # ------------------------------------------------------------ plumbing

    def _get(self, path: str, **params: Any) -> Any:
        return self._answer(self.http.get(path, params=params))

    def _answer(self, response: httpx.Response) -> Any:
        body = response.json()
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ClientError(error.get("message", response.text), code=error.get("code", str(response.status_code)))
        return body

    def nonce(self) -> int:
        """The next nonce: the clock in ms, but always above the last one this client used."""
        with self._lock:
            self._last_nonce = max(time.time_ns() // 1_000_000, self._last_nonce + 1)
            return self._last_nonce

    def send(self, command: C.Command) -> Result:
        """Sign a command (its timestamp and signer are the server's to fill) and apply it."""
        record = command.pack()
        body = {"record": "0x" + record.hex(), "signature": "0x" + sign(record, self.key, self.domain).hex()}
        answer = self._answer(self.http.post("/v1/actions", json=body))
        events = answer["events"]
        code = next((e["code"] for e in events if e["type"] == "Rejected"), None)
        return Result(bool(answer["accepted"]), code, events)

    # ------------------------------------------------------------ units

    def ticks(self, market: str, price: str | Decimal) -> int:
        """A price in ticks, rounded down to the market's tick."""
        return int((Decimal(price) / Decimal(self.markets[market]["tick_size"])).to_integral_value(ROUND_DOWN))

    def lots(self, market: str, size: str | Decimal) -> int:
        """A size in lots, rounded down to the market's lot."""
        return int((Decimal(size) / Decimal(self.markets[market]["lot_size"])).to_integral_value(ROUND_DOWN))

    # ------------------------------------------------------------ actions

    def place(
        self, market: str, side: str, price: str | Decimal, size: str | Decimal, *, tif: int = 0,
        post_only: bool = False, outcome: int = 0, client_id: bytes | None = None, sub: int = 0,
    ) -> Result:  # fmt: skip
        """Place an order in human decimals (side "buy" or "sell"; for outcome markets, in that outcome's terms)."""
        command = C.PlaceOrder(
            actor=C.Actor(self.address, sub), timestamp=0, nonce=self.nonce(), market=market, side=SIDES[side],
            price=self.ticks(market, price), size=self.lots(market, size), tif=tif, post_only=post_only,
            outcome=outcome, client_id=client_id,
        )  # fmt: skip
        return self.send(command)

    def cancel(self, market: str, order_id: int, *, sub: int = 0) -> Result:
        """Cancel one of this signer's orders by id."""
        command = C.CancelOrder(actor=C.Actor(self.address, sub), timestamp=0, nonce=self.nonce(), market=market,
                                order_id=order_id)  # fmt: skip
        return self.send(command)

    def faucet(self, *, sub: int = 0) -> dict[str, str]:
        """Ask the venue's faucet (if its manifest enables one) for its amounts."""
        body = {"address": "0x" + self.address.hex(), "sub": sub}
        return dict(self._answer(self.http.post("/v1/faucet", json=body))["credited"])

    def book(self, market: str, levels: int = 10, outcome: int = 0) -> dict[str, Any]:
        """L2 depth (strings) with the book's sequence."""
        return dict(self._get(f"/v1/markets/{market}/book", levels=levels, outcome=outcome))

    def account(self, *, sub: int = 0) -> dict[str, Any]:
        """This signer's balances and open orders."""
        return dict(self._get(f"/v1/accounts/0x{self.address.hex()}", sub=sub))
