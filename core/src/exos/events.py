"""Events: what the engine reports. Raw tuples on the hot path; attrs classes as the public view.

A raw event is a tuple `(seq, index, cause, kind, *fields)`: `seq` is the global sequence number of
the command that produced it, `index` its position among that command's events, `cause` why it
happened (user, system, liquidation, settlement). The fields of each kind are listed in `FIELDS`;
`decode` turns a raw event into its attrs class. Every command's events end with `CommandDone`.
Market-data events (accepted, fills, cancels, amends, book deltas) carry the book's sequence number.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs


class Cause(enum.IntEnum):
    """Why an event happened."""

    USER = 0
    SYSTEM = 1
    LIQUIDATION = 2
    SETTLEMENT = 3


class EventKind(enum.IntEnum):
    """Event kinds (the fourth element of a raw event)."""

    ORDER_ACCEPTED = 1
    FILL = 2
    ORDER_CANCELLED = 3
    ORDER_EXPIRED = 4
    ORDER_AMENDED = 5
    BOOK_DELTA = 6
    DEPOSITED = 7
    WITHDRAWN = 8
    TRANSFERRED = 9
    ASSET_LISTED = 10
    MARKET_LISTED = 11
    MARKET_STATUS_CHANGED = 12
    REJECTED = 13
    COMMAND_DONE = 14
    MARKET_EVENT = 15
    ORDER_DELAYED = 16
    AGENT_APPROVED = 17
    AGENT_REVOKED = 18
    COMPLIANCE_UPDATED = 19
    ORACLE_UPDATED = 20


RawEvent = tuple[Any, ...]


@attrs.frozen
class Event:
    """Fields every event has."""

    seq: int
    index: int
    cause: Cause


@attrs.frozen
class OrderAccepted(Event):
    """An order entered the book's matching (it may then fill, rest or be cancelled).

    Side and price are in the terms of the order's outcome (for a NO order: the NO price)."""

    market: str
    order_id: int
    address: bytes
    sub: int
    side: int
    price: int
    size: int
    tif: int
    client_id: bytes | None
    book_seq: int
    outcome: int


@attrs.frozen
class Fill(Event):
    """One side of a trade: each trade gives two, the taker's first. Fee in `fee_asset` (negative: rebate).

    `side` and `price` are in the terms of the order's `outcome` (for a NO order: a NO buy or sell at
    the NO price); `fill_kind` is 0 normal, 1 mint (two buys created a full set), 2 merge (two sells
    burned one)."""

    market: str
    trade_id: int
    order_id: int
    address: bytes
    sub: int
    side: int
    maker: bool
    price: int
    size: int
    fee: int
    fee_asset: str
    counter_order_id: int
    book_seq: int
    outcome: int
    fill_kind: int


@attrs.frozen
class OrderCancelled(Event):
    """An order left the book unfilled: `remaining` lots were cancelled for `reason`."""

    market: str
    order_id: int
    address: bytes
    sub: int
    remaining: int
    reason: str
    book_seq: int


@attrs.frozen
class OrderExpired(OrderCancelled):
    """A GTD order reached its expiry (fired by the engine's timer queue)."""


@attrs.frozen
class OrderAmended(Event):
    """An order's price or total size changed; `priority_kept` says whether it kept its queue place."""

    market: str
    order_id: int
    address: bytes
    sub: int
    price: int
    size: int
    remaining: int
    priority_kept: bool
    book_seq: int


@attrs.frozen
class BookDelta(Event):
    """An L2 level's new total size (0: gone) and order count."""

    market: str
    side: int
    price: int
    size: int
    count: int
    book_seq: int


@attrs.frozen
class Deposited(Event):
    """An account was credited."""

    address: bytes
    sub: int
    asset: str
    amount: int


@attrs.frozen
class Withdrawn(Event):
    """An account was debited."""

    address: bytes
    sub: int
    asset: str
    amount: int


@attrs.frozen
class Transferred(Event):
    """Available balance moved between two sub-accounts of one address."""

    address: bytes
    sub: int
    to_sub: int
    asset: str
    amount: int


@attrs.frozen
class AssetListed(Event):
    """A new asset exists."""

    symbol: str
    decimals: int


@attrs.frozen
class MarketListed(Event):
    """A new market exists (with an empty book)."""

    market: str
    market_type: str


@attrs.frozen
class MarketStatusChanged(Event):
    """A market moved to a new status."""

    market: str
    status: str


@attrs.frozen
class OrderDelayed(Event):
    """A marketable order waits out the market's taker delay (in-play); it enters the book at `release_at` (ms)."""

    market: str
    order_id: int
    address: bytes
    sub: int
    side: int
    price: int
    size: int
    outcome: int
    release_at: int


@attrs.frozen
class MarketEvent(Event):
    """Something a market type reports (a split, a vote, a settlement): a dotted name and canonical JSON detail."""

    market: str
    name: str
    detail: str


@attrs.frozen
class AgentApproved(Event):
    """`agent` may sign trading commands for `address` (and its sub-accounts) until `expiry` (ms)."""

    address: bytes
    agent: bytes
    name: str
    expiry: int


@attrs.frozen
class AgentRevoked(Event):
    """`agent` no longer signs for `address`."""

    address: bytes
    agent: bytes


@attrs.frozen
class ComplianceUpdated(Event):
    """A compliance policy's lists changed; `barred` addresses had their resting orders cancelled."""

    policy: str
    barred: tuple[bytes, ...]


@attrs.frozen
class OracleUpdated(Event):
    """A feed took a publisher's price: its aggregate now (0 while it is not live) and how many sources count."""

    feed: str
    source: str
    price: int
    live_sources: int


@attrs.frozen
class Rejected(Event):
    """The command was refused and changed nothing: `code` names the rule, `message` the values."""

    code: str
    message: str


@attrs.frozen
class CommandDone(Event):
    """The explicit end of a command's events."""

    accepted: bool


CLASSES: dict[EventKind, type[Event]] = {
    EventKind.ORDER_ACCEPTED: OrderAccepted,
    EventKind.FILL: Fill,
    EventKind.ORDER_CANCELLED: OrderCancelled,
    EventKind.ORDER_EXPIRED: OrderExpired,
    EventKind.ORDER_AMENDED: OrderAmended,
    EventKind.BOOK_DELTA: BookDelta,
    EventKind.DEPOSITED: Deposited,
    EventKind.WITHDRAWN: Withdrawn,
    EventKind.TRANSFERRED: Transferred,
    EventKind.ASSET_LISTED: AssetListed,
    EventKind.MARKET_LISTED: MarketListed,
    EventKind.MARKET_STATUS_CHANGED: MarketStatusChanged,
    EventKind.REJECTED: Rejected,
    EventKind.COMMAND_DONE: CommandDone,
    EventKind.MARKET_EVENT: MarketEvent,
    EventKind.ORDER_DELAYED: OrderDelayed,
    EventKind.AGENT_APPROVED: AgentApproved,
    EventKind.AGENT_REVOKED: AgentRevoked,
    EventKind.COMPLIANCE_UPDATED: ComplianceUpdated,
    EventKind.ORACLE_UPDATED: OracleUpdated,
}
_BASE = {f.name for f in attrs.fields(Event)}
FIELDS: dict[EventKind, tuple[str, ...]] = {
    kind: tuple(f.name for f in attrs.fields(cls) if f.name not in _BASE) for kind, cls in CLASSES.items()
}
_CAUSES = {int(c): c for c in Cause}


_POSITIONAL = {int(kind): cls for kind, cls in CLASSES.items()}


def decode(raw: RawEvent) -> Event:
    """The attrs view of a raw event (fields in the order of FIELDS, after seq, index and cause)."""
    return _POSITIONAL[raw[3]](raw[0], raw[1], _CAUSES[raw[2]], *raw[4:])


def decode_all(raws: list[RawEvent]) -> list[Event]:
    """The attrs views of many raw events."""
    return [decode(raw) for raw in raws]
