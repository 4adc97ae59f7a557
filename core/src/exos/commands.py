"""Commands: the only input of the engine. attrs classes are the public view; `pack()` gives the canonical record.

The canonical form is one fixed-width little-endian record (`RECORD`, 182 bytes) for every kind,
followed by a variable tail only for listing commands (their spec as canonical JSON). The journal
stores these bytes, the batch path decodes them with one `struct.unpack`, and replay applies them.
Prices are ticks, sizes lots, amounts the asset's smallest unit (i128 in the record).
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any, ClassVar

import attrs

from exos.errors import ExosError

ADDRESS_LEN = 20
ZERO_ADDRESS = bytes(ADDRESS_LEN)
NAME_LEN = 32
SYMBOL_LEN = 16
ALL_MARKETS = ""

# kind, side, tif, flags, stp, status (PlaceOrder: outcome), sub, to_sub, timestamp, nonce, address, signer,
# market, asset, price, size, amount (i128), order_id, expiry, client_id, tail length
RECORD = struct.Struct("<BBBBBBHHqQ20s20s32s16sqq16sQq16sI")
TIMESTAMP_OFFSET = struct.calcsize("<BBBBBBHH")  # the timestamp (i64) follows kind .. sub-accounts
ADDRESS_OFFSET = struct.calcsize("<BBBBBBHHqQ")  # the account address follows the timestamp and the nonce
SIGNER_OFFSET = ADDRESS_OFFSET + ADDRESS_LEN  # then the signer
_TIMESTAMP = struct.Struct("<q")
FLAG_POST_ONLY = 1
FLAG_HAS_CLIENT_ID = 2
FLAG_REDUCE_ONLY = 4  # a margined market's order that may only shrink the position


class CommandError(ExosError):
    """A command that cannot even be encoded (a field out of range, a name too long)."""

    code = "BAD_COMMAND"


class Kind(enum.IntEnum):
    """Command kinds (the first byte of the record)."""

    DEPOSIT = 1
    WITHDRAW = 2
    TRANSFER = 3
    PLACE = 4
    CANCEL = 5
    CANCEL_BY_CLIENT_ID = 6
    CANCEL_ALL = 7
    AMEND = 8
    SET_MARKET_STATUS = 9
    LIST_ASSET = 10
    LIST_MARKET = 11
    TICK = 12
    MARKET_ACTION = 13
    APPROVE_AGENT = 14
    REVOKE_AGENT = 15
    COMPLIANCE_UPDATE = 16
    ORACLE_UPDATE = 17


class Status(enum.IntEnum):
    """Market status machine: settled is terminal."""

    OPEN = 0
    CANCEL_ONLY = 1
    REDUCE_ONLY = 2
    HALTED = 3
    SETTLED = 4


STATUS_NAMES = {s.name.lower(): s for s in Status}


@attrs.frozen
class Actor:
    """Who a command acts for (account address and sub-account) and who authorised it (signer or agent)."""

    address: bytes
    sub: int = 0
    signer: bytes = b""

    def __attrs_post_init__(self) -> None:
        """An empty signer means the account itself signed."""
        if not self.signer:
            object.__setattr__(self, "signer", self.address)


def _name(value: str, width: int, field: str) -> bytes:
    """A name as fixed-width NUL-padded UTF-8."""
    raw = value.encode()
    if len(raw) > width or b"\0" in raw:
        raise CommandError(f"{field}: at most {width} bytes without NUL, got {value!r}")
    return raw


def _i128(value: int, field: str) -> bytes:
    """A signed 128-bit little-endian amount."""
    if not -(2**127) <= value < 2**127:
        raise CommandError(f"{field}: {value} does not fit in i128")
    return value.to_bytes(16, "little", signed=True)


def _check_width(value: int, lo: int, hi: int, field: str) -> int:
    """A field's value if it fits its width."""
    if not lo <= value <= hi:
        raise CommandError(f"{field}: {value} does not fit ({lo}..{hi})")
    return value


_I64 = (-(2**63), 2**63 - 1)
_U64 = (0, 2**64 - 1)


@attrs.frozen(kw_only=True)
class Command:
    """Base of all commands: an actor and a timestamp (ms, the caller's clock; the engine keeps it monotonic)."""

    kind: ClassVar[Kind]
    actor: Actor
    timestamp: int
    nonce: int = 0

    def _fields(self) -> dict[str, Any]:
        """Kind-specific record fields (overridden)."""
        return {}

    def _tail(self) -> bytes:
        """Variable tail (listing commands only)."""
        return b""

    def pack(self) -> bytes:
        """The canonical record."""
        f: dict[str, Any] = {
            "side": 0, "tif": 0, "flags": 0, "stp": 0, "status": 0, "to_sub": 0, "market": b"", "asset": b"",
            "price": 0, "size": 0, "amount": 0, "order_id": 0, "expiry": 0, "client_id": b"",
        }  # fmt: skip
        f.update(self._fields())
        actor = self.actor
        if len(actor.address) != ADDRESS_LEN or len(actor.signer) != ADDRESS_LEN:
            raise CommandError("actor: addresses are 20 bytes")
        tail = self._tail()
        try:
            head = RECORD.pack(
                int(self.kind), f["side"], f["tif"], f["flags"], f["stp"], f["status"],
                _check_width(actor.sub, 0, 65535, "actor.sub"), _check_width(f["to_sub"], 0, 65535, "to_sub"),
                _check_width(self.timestamp, *_I64, "timestamp"), _check_width(self.nonce, *_U64, "nonce"),
                actor.address, actor.signer, f["market"], f["asset"],
                _check_width(f["price"], *_I64, "price"), _check_width(f["size"], *_I64, "size"),
                _i128(f["amount"], "amount"), _check_width(f["order_id"], *_U64, "order_id"),
                _check_width(f["expiry"], *_I64, "expiry"), f["client_id"], len(tail),
            )  # fmt: skip
        except struct.error as exc:
            raise CommandError(f"{type(self).__name__}: {exc}") from None
        return head + tail


@attrs.frozen(kw_only=True)
class _AssetAmount(Command):
    """A command that moves an amount of one asset."""

    asset: str
    amount: int

    def _fields(self) -> dict[str, Any]:
        return {"asset": _name(self.asset, SYMBOL_LEN, "asset"), "amount": self.amount}


@attrs.frozen(kw_only=True)
class Deposit(_AssetAmount):
    """Credit an account (signed by an admin: the bridge or the venue's faucet)."""

    kind: ClassVar[Kind] = Kind.DEPOSIT


@attrs.frozen(kw_only=True)
class Withdraw(_AssetAmount):
    """Debit an account's available balance (never more than available)."""

    kind: ClassVar[Kind] = Kind.WITHDRAW


@attrs.frozen(kw_only=True)
class Transfer(_AssetAmount):
    """Move available balance between two sub-accounts of the same address."""

    kind: ClassVar[Kind] = Kind.TRANSFER
    to_sub: int

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "to_sub": self.to_sub}


@attrs.frozen(kw_only=True)
class PlaceOrder(Command):
    """Place an order: price in ticks, size in lots; tif 0 GTC, 1 GTD, 2 IOC, 3 FOK (exos.types.TimeInForce).

    `outcome` picks the token of a market with outcomes (binary: 0 YES, 1 NO); side and price are in
    that outcome's terms (a NO buy at q ticks). `reduce_only` (margined markets) may only shrink the
    account's position: it is clipped to the position, needs no margin and is always allowed."""

    kind: ClassVar[Kind] = Kind.PLACE
    market: str
    side: int
    price: int
    size: int
    tif: int = 0
    post_only: bool = False
    stp: int = 0
    expiry: int = 0
    client_id: bytes | None = None
    outcome: int = 0
    reduce_only: bool = False

    def _fields(self) -> dict[str, Any]:
        if self.client_id is not None and len(self.client_id) != 16:
            raise CommandError(f"client_id: must be 16 bytes, got {len(self.client_id)}")
        return {
            "market": _name(self.market, NAME_LEN, "market"),
            "side": _check_width(self.side, 0, 255, "side"),
            "tif": _check_width(self.tif, 0, 255, "tif"),
            "flags": (FLAG_POST_ONLY if self.post_only else 0)
            | (FLAG_HAS_CLIENT_ID if self.client_id else 0)
            | (FLAG_REDUCE_ONLY if self.reduce_only else 0),
            "stp": _check_width(self.stp, 0, 255, "stp"),
            "status": _check_width(self.outcome, 0, 255, "outcome"),
            "price": self.price,
            "size": self.size,
            "expiry": self.expiry,
            "client_id": self.client_id or b"",
        }


@attrs.frozen(kw_only=True)
class MarketOrder(PlaceOrder):
    """A market order: an IOC whose price is the worst acceptable price (ticks)."""

    tif: int = 2


@attrs.frozen(kw_only=True)
class CancelOrder(Command):
    """Cancel one of the actor's open orders by id."""

    kind: ClassVar[Kind] = Kind.CANCEL
    market: str
    order_id: int

    def _fields(self) -> dict[str, Any]:
        return {"market": _name(self.market, NAME_LEN, "market"), "order_id": self.order_id}


@attrs.frozen(kw_only=True)
class CancelByClientId(Command):
    """Cancel one of the actor's open orders by its 16-byte client order id."""

    kind: ClassVar[Kind] = Kind.CANCEL_BY_CLIENT_ID
    market: str
    client_id: bytes

    def _fields(self) -> dict[str, Any]:
        if len(self.client_id) != 16:
            raise CommandError(f"client_id: must be 16 bytes, got {len(self.client_id)}")
        return {"market": _name(self.market, NAME_LEN, "market"), "client_id": self.client_id,
                "flags": FLAG_HAS_CLIENT_ID}  # fmt: skip


@attrs.frozen(kw_only=True)
class CancelAll(Command):
    """Cancel all of the actor's (sub-account's) open orders in one market, or in every market."""

    kind: ClassVar[Kind] = Kind.CANCEL_ALL
    market: str = ALL_MARKETS

    def _fields(self) -> dict[str, Any]:
        return {"market": _name(self.market, NAME_LEN, "market")}


@attrs.frozen(kw_only=True)
class AmendOrder(Command):
    """Change an open order's price and/or total size (docs/book.md, amend)."""

    kind: ClassVar[Kind] = Kind.AMEND
    market: str
    order_id: int
    price: int
    size: int

    def _fields(self) -> dict[str, Any]:
        return {"market": _name(self.market, NAME_LEN, "market"), "order_id": self.order_id,
                "price": self.price, "size": self.size}  # fmt: skip


@attrs.frozen(kw_only=True)
class SetMarketStatus(Command):
    """Admin: move a market through open / cancel_only / reduce_only / halted / settled."""

    kind: ClassVar[Kind] = Kind.SET_MARKET_STATUS
    market: str
    status: str

    def _fields(self) -> dict[str, Any]:
        if self.status not in STATUS_NAMES:
            raise CommandError(f"status: one of {sorted(STATUS_NAMES)}, got {self.status!r}")
        return {"market": _name(self.market, NAME_LEN, "market"), "status": int(STATUS_NAMES[self.status])}


@attrs.frozen(kw_only=True)
class ListAsset(Command):
    """Admin: list an asset at runtime."""

    kind: ClassVar[Kind] = Kind.LIST_ASSET
    symbol: str
    decimals: int

    def _fields(self) -> dict[str, Any]:
        return {"asset": _name(self.symbol, SYMBOL_LEN, "symbol")}

    def _tail(self) -> bytes:
        return canonical_json({"symbol": self.symbol, "decimals": self.decimals})


@attrs.frozen(kw_only=True)
class ListMarket(Command):
    """Admin: list a market at runtime; `spec` is the manifest's `[[markets]]` table (decimals as strings)."""

    kind: ClassVar[Kind] = Kind.LIST_MARKET
    spec: dict[str, Any] = attrs.field(hash=False)

    def _fields(self) -> dict[str, Any]:
        return {"market": _name(str(self.spec.get("name", "")), NAME_LEN, "market")}

    def _tail(self) -> bytes:
        return canonical_json(self.spec)


@attrs.frozen(kw_only=True)
class Tick(Command):
    """Advance time only (fires due timers, such as GTD expiries)."""

    kind: ClassVar[Kind] = Kind.TICK


@attrs.frozen(kw_only=True)
class MarketAction(Command):
    """A market type's own command (split, merge, convert, propose, vote, ...): `action` and its JSON arguments."""

    kind: ClassVar[Kind] = Kind.MARKET_ACTION
    market: str
    action: str
    args: dict[str, Any] = attrs.field(factory=dict, hash=False)

    def _fields(self) -> dict[str, Any]:
        return {"market": _name(self.market, NAME_LEN, "market")}

    def _tail(self) -> bytes:
        return canonical_json({"action": self.action, "args": self.args})


def _agent_address(agent: bytes) -> str:
    """An agent address as the tail carries it."""
    if len(agent) != ADDRESS_LEN:
        raise CommandError(f"agent: addresses are 20 bytes, got {len(agent)}")
    return agent.hex()


@attrs.frozen(kw_only=True)
class ApproveAgent(Command):
    """The master (signing itself) lets `agent` sign trading commands for it until `expiry` (ms)."""

    kind: ClassVar[Kind] = Kind.APPROVE_AGENT
    agent: bytes
    name: str
    expiry: int

    def _tail(self) -> bytes:
        return canonical_json({"agent": _agent_address(self.agent), "name": self.name, "expiry": self.expiry})


@attrs.frozen(kw_only=True)
class RevokeAgent(Command):
    """The master (signing itself) withdraws an agent's approval."""

    kind: ClassVar[Kind] = Kind.REVOKE_AGENT
    agent: bytes

    def _tail(self) -> bytes:
        return canonical_json({"agent": _agent_address(self.agent)})


@attrs.frozen(kw_only=True)
class ComplianceUpdate(Command):
    """Admin: update a compliance policy's lists (a KYC registry, a sanctions list), as that policy reads them."""

    kind: ClassVar[Kind] = Kind.COMPLIANCE_UPDATE
    policy: str
    payload: dict[str, Any] = attrs.field(hash=False)

    def _tail(self) -> bytes:
        return canonical_json({"policy": self.policy, "payload": self.payload})


@attrs.frozen(kw_only=True)
class OracleUpdate(Command):
    """A publisher's price for one feed's source (an integer in the feed's fixed point), as of `published_ms`."""

    kind: ClassVar[Kind] = Kind.ORACLE_UPDATE
    feed: str
    source: str = ""
    price: int
    published_ms: int

    def _tail(self) -> bytes:
        return canonical_json({"feed": self.feed, "source": self.source, "price": self.price,
                               "published": self.published_ms})  # fmt: skip


def stamped(record: bytes, timestamp: int) -> bytes:
    """A canonical record with its timestamp replaced (the sequencer's clock)."""
    return record[:TIMESTAMP_OFFSET] + _TIMESTAMP.pack(timestamp) + record[TIMESTAMP_OFFSET + 8 :]


def timestamp_of(record: bytes) -> int:
    """A canonical record's timestamp."""
    return int(_TIMESTAMP.unpack_from(record, TIMESTAMP_OFFSET)[0])


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, ASCII; floats refused (they are inexact)."""

    def reject_floats(obj: Any) -> Any:
        if isinstance(obj, float):
            raise CommandError(f"binary floats are not allowed in commands, got {obj!r}")
        if isinstance(obj, dict):
            return {str(k): reject_floats(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [reject_floats(v) for v in obj]
        return obj

    return json.dumps(reject_floats(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def split(record: bytes) -> tuple[tuple[Any, ...], bytes]:
    """Decode a canonical record into its fixed fields and its tail."""
    if len(record) < RECORD.size:
        raise CommandError(f"record: {len(record)} bytes is shorter than {RECORD.size}")
    fields = RECORD.unpack_from(record)
    tail = record[RECORD.size :]
    if len(tail) != fields[-1]:
        raise CommandError(f"record: tail of {len(tail)} bytes, header says {fields[-1]}")
    return fields, tail


def iter_records(buffer: bytes) -> list[bytes]:
    """Split a concatenation of canonical records (the batch wire format) into records."""
    out = []
    offset, end = 0, len(buffer)
    while offset < end:
        if end - offset < RECORD.size:
            raise CommandError("batch: truncated record")
        tail_len = int.from_bytes(buffer[offset + RECORD.size - 4 : offset + RECORD.size], "little")
        stop = offset + RECORD.size + tail_len
        out.append(buffer[offset:stop])
        offset = stop
    return out
