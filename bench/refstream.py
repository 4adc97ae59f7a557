#!/usr/bin/env python3
"""Reference order stream for exos order-book benchmarks (stdlib only).

This is the project's own implementation of the shared benchmark workload, so
that a fresh clone can produce it without ``../shared``.  For a given ``n`` and
``seed`` it emits the very same bytes and sidecar as the shared generator.

The stream is a flat file of ``n`` little-endian 24-byte records
(``<BBxxIqQ``): op (0 passive limit, 1 cancel, 2 aggressive limit), side
(0 buy, 1 sell), quantity, price in ticks and order id.  New orders get ids
1, 2, 3, ... in order of appearance; a cancel carries the target's id, side
and price and a quantity of zero.

Every step draws one uniform number from ``random.Random(seed)``:

* below 0.60 -> a passive order: random side, distance
  ``1 + min(U{0..31}, U{0..31})`` ticks away from the fixed mid of 100,000
  (below it for bids, above it for asks), quantity ``U{1..100}``.  Such orders
  never cross, so they always rest.
* below 0.90 -> a cancel of an order picked uniformly among those resting at
  that moment; with nothing resting, a passive order is written instead.
* otherwise -> an aggressive order: random side, quantity ``U{1..300}`` capped
  at the volume resting on the other side, priced 64 ticks through the mid so
  it sweeps every level, fills completely and never rests.  With the other
  side empty, a passive order is written instead (drawing a fresh side).

The "uniform pick among resting orders" is defined by a list of live ids:
new resting orders are appended, and an order leaving the book (cancelled or
fully filled by an aggressor, in matching order) is removed by moving the
list's last id into its slot.  A small price-time-priority book tracks the
state, and its final figures go to a JSON sidecar next to the stream
(``<stream>.json``) that any correct engine must reproduce.

CLI::

    python bench/refstream.py --n 1000000 --seed 42 --out bench/data/stream.bin
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import struct
import sys
from collections import deque

RECORD = struct.Struct("<BBxxIqQ")

PASSIVE = 0
CANCEL = 1
AGGRESSIVE = 2

BUY = 0
SELL = 1

MID = 100_000
SWEEP_OFFSET = 64

_P_PASSIVE = 0.60
_P_CANCEL_CUM = 0.90


class _ReferenceBook:
    """Price-time book that also keeps an indexable list of resting ids."""

    __slots__ = ("fills", "ids", "resting", "sides", "slot", "traded", "volume")

    def __init__(self) -> None:
        self.sides: tuple[dict[int, deque[int]], dict[int, deque[int]]] = ({}, {})
        self.volume = [0, 0]
        self.resting: dict[int, list[int]] = {}  # oid -> [side, price, remaining]
        self.ids: list[int] = []  # resting ids, order defines the uniform pick
        self.slot: dict[int, int] = {}  # oid -> index into self.ids
        self.fills = 0
        self.traded = 0

    def _forget(self, oid: int) -> None:
        """Drop ``oid`` from the id list by swapping the last id into its slot."""
        idx = self.slot.pop(oid)
        tail = self.ids.pop()
        if tail != oid:
            self.ids[idx] = tail
            self.slot[tail] = idx

    def rest(self, oid: int, side: int, price: int, qty: int) -> None:
        """Queue a new order at the back of its price level."""
        level = self.sides[side].get(price)
        if level is None:
            level = self.sides[side][price] = deque()
        level.append(oid)
        self.resting[oid] = [side, price, qty]
        self.volume[side] += qty
        self.slot[oid] = len(self.ids)
        self.ids.append(oid)

    def remove(self, oid: int) -> tuple[int, int]:
        """Cancel a resting order; return its (side, price)."""
        side, price, qty = self.resting.pop(oid)
        self.volume[side] -= qty
        self._forget(oid)
        level = self.sides[side][price]
        level.remove(oid)
        if not level:
            del self.sides[side][price]
        return side, price

    def sweep(self, side: int, qty: int) -> None:
        """Match an aggressor of ``side`` for ``qty`` (never more than resting)."""
        other = 1 - side
        book = self.sides[other]
        pick_best = min if other == SELL else max
        while qty:
            price = pick_best(book)
            level = book[price]
            while qty and level:
                maker = level[0]
                entry = self.resting[maker]
                take = entry[2] if entry[2] <= qty else qty
                entry[2] -= take
                qty -= take
                self.volume[other] -= take
                self.fills += 1
                self.traded += take
                if entry[2] == 0:
                    level.popleft()
                    del self.resting[maker]
                    self._forget(maker)
            if not level:
                del book[price]


def generate(n: int, seed: int) -> tuple[bytes, dict[str, int | str]]:
    """Build the stream for ``(n, seed)``; return its bytes and expected outcome."""
    rng = random.Random(seed)
    draw = rng.random
    below = rng.randrange
    between = rng.randint
    book = _ReferenceBook()
    pack_into = RECORD.pack_into
    size = RECORD.size
    out = bytearray(size * n)
    tally = [0, 0, 0]
    next_oid = 1
    peak = 0
    pos = 0
    for _ in range(n):
        u = draw()
        if u < _P_PASSIVE:
            op = PASSIVE
        elif u < _P_CANCEL_CUM:
            op = CANCEL if book.ids else PASSIVE
        else:
            op = AGGRESSIVE
            side = below(2)
            available = book.volume[1 - side]
            if available == 0:
                op = PASSIVE

        if op == PASSIVE:
            side = below(2)
            dist = 1 + min(below(32), below(32))
            price = MID - dist if side == BUY else MID + dist
            qty = between(1, 100)
            book.rest(next_oid, side, price, qty)
            pack_into(out, pos, PASSIVE, side, qty, price, next_oid)
            next_oid += 1
        elif op == CANCEL:
            ids = book.ids
            target = ids[below(len(ids))]
            side, price = book.remove(target)
            pack_into(out, pos, CANCEL, side, 0, price, target)
        else:
            qty = min(between(1, 300), available)
            price = MID + SWEEP_OFFSET if side == BUY else MID - SWEEP_OFFSET
            book.sweep(side, qty)
            pack_into(out, pos, AGGRESSIVE, side, qty, price, next_oid)
            next_oid += 1

        tally[op] += 1
        pos += size
        live = len(book.ids)
        peak = max(peak, live)

    bids, asks = book.sides
    expected: dict[str, int | str] = {
        "n_ops": n,
        "seed": seed,
        "record": RECORD.format,
        "mid": MID,
        "n_passive": tally[PASSIVE],
        "n_cancel": tally[CANCEL],
        "n_aggressive": tally[AGGRESSIVE],
        "max_order_id": next_oid - 1,
        "fills": book.fills,
        "traded_qty": book.traded,
        "final_bid_orders": sum(len(level) for level in bids.values()),
        "final_ask_orders": sum(len(level) for level in asks.values()),
        "final_bid_qty": book.volume[BUY],
        "final_ask_qty": book.volume[SELL],
        "final_bid_levels": len(bids),
        "final_ask_levels": len(asks),
        "peak_resting_orders": peak,
    }
    return bytes(out), expected


def sidecar_path(out: pathlib.Path) -> pathlib.Path:
    """Return the sidecar path for a stream file (its name plus ``.json``)."""
    out = pathlib.Path(out)
    return out.with_name(out.name + ".json")


def write(n: int, seed: int, out: pathlib.Path) -> dict[str, int | str]:
    """Write the stream to ``out`` and its sidecar to ``out + '.json'``."""
    out = pathlib.Path(out)
    data, expected = generate(n, seed)
    out.write_bytes(data)
    with open(sidecar_path(out), "w") as fh:
        json.dump(expected, fh, indent=1)
    return expected


def read(path: pathlib.Path | str) -> list[tuple[int, int, int, int, int]]:
    """Decode a stream file into (op, side, qty, price, oid) tuples."""
    return list(RECORD.iter_unpack(pathlib.Path(path).read_bytes()))


def read_expected(path: pathlib.Path | str) -> dict[str, int | str]:
    """Load the sidecar that belongs to the stream file ``path``."""
    with open(sidecar_path(pathlib.Path(path))) as fh:
        return json.load(fh)


def ensure(n: int, seed: int, directory: pathlib.Path) -> pathlib.Path:
    """Return ``directory/stream-{n}-{seed}.bin``, generating it if missing."""
    directory = pathlib.Path(directory)
    path = directory / f"stream-{n}-{seed}.bin"
    if not (path.is_file() and sidecar_path(path).is_file()):
        directory.mkdir(parents=True, exist_ok=True)
        write(n, seed, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: write a stream and print its sidecar."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of records")
    parser.add_argument("--seed", type=int, default=42, help="RNG seed")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("bench/data/stream.bin"),
        help="output .bin path (sidecar: same path + .json)",
    )
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    expected = write(args.n, args.seed, args.out)
    json.dump(expected, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
