"""Reading the canonical book dump (docs/book.md, Canonical dump) into Python values."""

from __future__ import annotations

import struct

import attrs

from exos.errors import BookError
from exos.types import OrderState, Side, Stp, TimeInForce

MAGIC = b"EXOSBK01"
HEADER = struct.Struct("<8sIIIIQQQ")
RECORD = struct.Struct("<QQqqqqQ4Q16sBBBB4x")
HAS_CLIENT_ID = 2


@attrs.frozen
class BookDump:
    """The header counters and open orders of a dumped book."""

    max_orders: int
    max_levels: int
    seq: int
    trade_id: int
    entry: int
    orders: list[OrderState]


def parse_dump(data: bytes) -> BookDump:
    """Decode a dump's header and records; structure only (loading a book validates the rest)."""
    if len(data) < HEADER.size:
        raise BookError("book snapshot: shorter than its header", code="BAD_SNAPSHOT")
    magic, version, max_orders, max_levels, n, seq, trade_id, entry = HEADER.unpack_from(data)
    if magic != MAGIC or version != 1 or len(data) != HEADER.size + n * RECORD.size:
        raise BookError("book snapshot: bad magic, version or length", code="BAD_SNAPSHOT")
    orders = []
    for off in range(HEADER.size, len(data), RECORD.size):
        (oid, owner, price, size, remaining, expiry, order_entry, s0, s1, s2, s3, client_id, side, tif, flags, stp) = (
            RECORD.unpack_from(data, off)
        )
        orders.append(
            OrderState(
                order_id=oid,
                owner=owner,
                side=Side(side),
                price=price,
                size=size,
                remaining=remaining,
                tif=TimeInForce(tif),
                flags=flags & ~HAS_CLIENT_ID,
                stp=Stp(stp),
                expiry=expiry,
                client_id=client_id if flags & HAS_CLIENT_ID else None,
                slots=(s0, s1, s2, s3),
                entry=order_entry,
            )
        )
    return BookDump(max_orders, max_levels, seq, trade_id, entry, orders)
