"""A replay source for simulations: a CSV of `time_ms,price` rows becomes journaled `OracleUpdate` commands."""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path

from exos import commands as C


def commands_from_csv(path: str | Path, feed: str, publisher: bytes, decimals: int) -> list[C.OracleUpdate]:
    """One update per row (price in human decimals, scaled by 10^decimals exactly; a row with more digits is an
    error), stamped with its own time, as `publisher` would send them."""
    out = []
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].startswith("#") or row[0] == "time_ms":
                continue
            try:
                time_ms, price = int(row[0]), Decimal(row[1]) * 10**decimals
            except (ValueError, IndexError, InvalidOperation):
                raise ValueError(f"{path}:{number}: expected time_ms,price, got {row!r}") from None
            if price != price.to_integral_value():
                raise ValueError(f"{path}:{number}: {row[1]} has more than {decimals} decimals")
            out.append(C.OracleUpdate(actor=C.Actor(publisher), timestamp=time_ms, feed=feed, price=int(price),
                                      published_ms=time_ms))  # fmt: skip
    return out
