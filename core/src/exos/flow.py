"""JSON-lines command flows (`exos run --flow FILE`): human decimals at the edge, integers inside.

One JSON object per line. Every command has `type`, `address` ("0x" + 40 hex), optional `sub`
(default 0), optional `signer` (default: the address), `timestamp` (integer) and optional `nonce`.
Prices, sizes and amounts are decimal strings in human units ("100.25", "0.5"), converted with the
market's tick and lot and the asset's decimals; an off-tick price or an off-lot size is an error
naming the rule.

    {"type": "deposit", "address": "0x..", "signer": "0x<admin>", "timestamp": 1, "asset": "USDC", "amount": "1000"}
    {"type": "withdraw" | "transfer" (+ "to_sub"), ...}
    {"type": "place", "address": "0x..", "timestamp": 2, "market": "BTC-USDC", "side": "buy", "price": "65000.00",
     "size": "0.01", "tif": "gtc" | "gtd" | "ioc" | "fok", "post_only": false, "stp": "cancel_maker", "expiry": 0,
     "client_id": "<32 hex chars>", "outcome": "yes" | "no"}   (outcome: binary markets; price in its terms)
    {"type": "market", ..., "side": "sell", "size": "0.01", "worst_price": "64000"}
    {"type": "cancel", "market": "..", "order_id": 7} / {"type": "cancel_client_id", "market": "..", "client_id": ".."}
    {"type": "cancel_all", "market": ".." (optional)}
    {"type": "amend", "market": "..", "order_id": 7, "price": "..", "size": ".."}
    {"type": "set_status", "market": "..", "status": "halted"} / {"type": "tick"}
    {"type": "action", "market": "..", "action": "split", "args": {"size": 10}}   (a market type's own command;
     args as that type takes them: the prediction plugin counts sizes in lots)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from exos import commands as C
from exos.errors import ExosError
from exos.manifest import MarketSpec

TIFS = {"gtc": 0, "gtd": 1, "ioc": 2, "fok": 3}
SIDES = {"buy": 0, "sell": 1}
STPS = {"cancel_maker": 0, "cancel_taker": 1, "cancel_both": 2}
OUTCOMES = {"yes": 0, "no": 1}


class FlowError(ExosError):
    """A flow line that cannot become a command."""

    code = "BAD_FLOW"


def _address(value: Any, where: str) -> bytes:
    """A "0x" + 40 hex address."""
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise FlowError(f"{where}: expected an address like 0x + 40 hex digits, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise FlowError(f"{where}: expected an address like 0x + 40 hex digits, got {value!r}") from None


def _decimal(value: Any, where: str) -> Decimal:
    """A decimal string (or integer), never a float."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FlowError(f'{where}: expected a decimal string such as "1.5", got {value!r}')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FlowError(f"{where}: not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise FlowError(f"{where}: must be finite, got {value!r}")
    return number


def _choice(table: dict[str, int], value: Any, where: str) -> int:
    """One of a table's names."""
    if value not in table:
        raise FlowError(f"{where}: one of {sorted(table)}, got {value!r}")
    return table[value]


class FlowReader:
    """Turns flow lines into commands, using the manifest's markets and assets for units."""

    def __init__(self, markets: dict[str, MarketSpec], asset_decimals: dict[str, int]) -> None:
        """Units come from these markets and assets (the engine's listed ones)."""
        self.markets = markets
        self.asset_decimals = asset_decimals

    def _market(self, line: dict[str, Any], where: str) -> MarketSpec:
        name = line.get("market")
        if name not in self.markets:
            raise FlowError(f"{where}.market: unknown market {name!r}", code="UNKNOWN_MARKET")
        return self.markets[name]

    def _ticks(self, spec: MarketSpec, value: Any, where: str) -> int:
        try:
            return spec.price_to_ticks(_decimal(value, where))
        except ValueError as exc:
            raise FlowError(f"{where}: {exc}", code="OFF_TICK") from None

    def _lots(self, spec: MarketSpec, value: Any, where: str) -> int:
        try:
            return spec.size_to_lots(_decimal(value, where))
        except ValueError as exc:
            raise FlowError(f"{where}: {exc}", code="OFF_LOT") from None

    def _amount(self, line: dict[str, Any], where: str) -> int:
        asset = line.get("asset")
        if asset not in self.asset_decimals:
            raise FlowError(f"{where}.asset: unknown asset {asset!r}", code="UNKNOWN_ASSET")
        value = _decimal(line.get("amount"), f"{where}.amount") * (Decimal(10) ** self.asset_decimals[asset])
        if value != value.to_integral_value():
            raise FlowError(f"{where}.amount: more decimals than {asset} has ({self.asset_decimals[asset]})")
        return int(value)

    def command(self, line: dict[str, Any], where: str = "line") -> C.Command:
        """One flow object as a command."""
        if not isinstance(line, dict):
            raise FlowError(f"{where}: expected a JSON object")
        address = _address(line.get("address"), f"{where}.address")
        signer = _address(line["signer"], f"{where}.signer") if "signer" in line else b""
        sub = line.get("sub", 0)
        timestamp = line.get("timestamp")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise FlowError(f"{where}.timestamp: expected an integer, got {timestamp!r}")
        base: dict[str, Any] = {"actor": C.Actor(address, sub, signer), "timestamp": timestamp,
                                "nonce": line.get("nonce", 0)}  # fmt: skip
        kind = line.get("type")
        if kind in ("deposit", "withdraw"):
            cls = C.Deposit if kind == "deposit" else C.Withdraw
            return cls(**base, asset=line.get("asset", ""), amount=self._amount(line, where))
        if kind == "transfer":
            return C.Transfer(**base, asset=line.get("asset", ""), amount=self._amount(line, where),
                              to_sub=line.get("to_sub", 0))  # fmt: skip
        if kind in ("place", "market"):
            spec = self._market(line, where)
            side = _choice(SIDES, line.get("side"), f"{where}.side")
            size = self._lots(spec, line.get("size"), f"{where}.size")
            client_id = line.get("client_id")
            cid = bytes.fromhex(client_id) if isinstance(client_id, str) else None
            stp = _choice(STPS, line.get("stp", "cancel_maker"), f"{where}.stp")
            outcome = _choice(OUTCOMES, line.get("outcome", "yes"), f"{where}.outcome")
            if kind == "market":
                price = self._ticks(spec, line.get("worst_price"), f"{where}.worst_price")
                return C.MarketOrder(**base, market=spec.name, side=side, price=price, size=size, stp=stp,
                                     client_id=cid, outcome=outcome)  # fmt: skip
            return C.PlaceOrder(
                **base, market=spec.name, side=side, price=self._ticks(spec, line.get("price"), f"{where}.price"),
                size=size, tif=_choice(TIFS, line.get("tif", "gtc"), f"{where}.tif"),
                post_only=bool(line.get("post_only", False)), stp=stp, expiry=line.get("expiry", 0), client_id=cid,
                outcome=outcome,
            )  # fmt: skip
        if kind == "cancel":
            return C.CancelOrder(**base, market=self._market(line, where).name, order_id=line.get("order_id", 0))
        if kind == "cancel_client_id":
            return C.CancelByClientId(**base, market=self._market(line, where).name,
                                      client_id=bytes.fromhex(line.get("client_id", "")))  # fmt: skip
        if kind == "cancel_all":
            market = self._market(line, where).name if "market" in line else C.ALL_MARKETS
            return C.CancelAll(**base, market=market)
        if kind == "amend":
            spec = self._market(line, where)
            return C.AmendOrder(**base, market=spec.name, order_id=line.get("order_id", 0),
                                price=self._ticks(spec, line.get("price"), f"{where}.price"),
                                size=self._lots(spec, line.get("size"), f"{where}.size"))  # fmt: skip
        if kind == "set_status":
            return C.SetMarketStatus(**base, market=self._market(line, where).name, status=line.get("status", ""))
        if kind == "tick":
            return C.Tick(**base)
        if kind == "action":
            args = line.get("args", {})
            if not isinstance(line.get("action"), str) or not isinstance(args, dict):
                raise FlowError(f"{where}: an action needs a string `action` and an object `args`")
            return C.MarketAction(**base, market=self._market(line, where).name, action=line["action"], args=args)
        raise FlowError(f"{where}.type: unknown command type {kind!r}")

    def read(self, path: Path) -> Iterator[C.Command]:
        """The commands of a JSON-lines file, in order."""
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                where = f"{path.name}:{number}"
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise FlowError(f"{where}: not JSON: {exc.msg}") from None
                yield self.command(line, where)
