"""Seeded order flows: the `exos simulate` flow over a manifest's markets, and the standard benchmark workload.

The generators use `random.Random(seed)`; they sit outside the state machine and only produce
commands (the engine never sees the generator's randomness, only its output, which is journaled).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal

from exos.commands import (
    Actor,
    CancelByClientId,
    CancelOrder,
    Command,
    Deposit,
    MarketOrder,
    PlaceOrder,
)
from exos.manifest import Manifest, MarketSpec

DEFAULT_MID_TICKS = 100_000


def account_address(index: int) -> bytes:
    """A deterministic 20-byte address for simulated account `index`."""
    return b"\xac" + index.to_bytes(19, "big")


def _mid_ticks(spec: MarketSpec) -> int:
    """The simulated mid price: `[markets.params] reference_price` if set, else 100,000 ticks."""
    reference = spec.params.get("reference_price")
    if reference is None:
        return DEFAULT_MID_TICKS
    return max(100, spec.price_to_ticks(Decimal(str(reference))))


def funding(manifest: Manifest, accounts: int, timestamp: int = 0) -> list[Command]:
    """Deposits that fund every simulated account generously in every asset (signed by the first admin)."""
    admin = manifest.venue.admins[0]
    out: list[Command] = []
    for index in range(accounts):
        address = account_address(index)
        for asset in manifest.assets:
            amount = 10 ** (asset.decimals + 12)
            out.append(Deposit(actor=Actor(address, 0, admin), timestamp=timestamp, asset=asset.symbol, amount=amount))
    return out


def random_flow(manifest: Manifest, orders: int, seed: int, accounts: int = 1000, start: int = 1) -> Iterator[Command]:
    """A seeded mix over every market: 60% resting limits near the mid, 25% cancels, 15% market orders.

    Timestamps start at `start` (pass the engine's last timestamp to continue a journaled venue)."""
    rng = random.Random(seed)
    markets = list(manifest.markets)
    mids = [_mid_ticks(spec) for spec in markets]
    live: list[list[tuple[int, bytes]]] = [[] for _ in markets]  # per market: (account, client id)
    timestamp = start
    for n in range(orders):
        timestamp += rng.randrange(0, 3)
        m = rng.randrange(len(markets))
        spec, mid = markets[m], mids[m]
        roll = rng.random()
        if roll < 0.25 and live[m]:
            index = rng.randrange(len(live[m]))
            account, client_id = live[m][index]
            live[m][index] = live[m][-1]
            live[m].pop()
            yield CancelByClientId(
                actor=Actor(account_address(account)), timestamp=timestamp, market=spec.name, client_id=client_id
            )
            continue
        account = rng.randrange(accounts)
        side = rng.randrange(2)
        size = spec.min_lots * rng.randint(1, 20)
        client_id = n.to_bytes(16, "big")
        actor = Actor(account_address(account))
        if roll < 0.40:
            worst = mid + 64 if side == 0 else max(1, mid - 64)
            yield MarketOrder(actor=actor, timestamp=timestamp, market=spec.name, side=side, price=worst, size=size)
            continue
        distance = 1 + min(rng.randrange(32), rng.randrange(32))
        price = mid - distance if side == 0 else mid + distance
        live[m].append((account, client_id))
        yield PlaceOrder(
            actor=actor, timestamp=timestamp, market=spec.name, side=side, price=price, size=size, client_id=client_id
        )


STANDARD_ACCOUNTS_PER_SIDE = 5000


def standard_owner(order_id: int, side: int) -> int:
    """The standard workload's account for an order: buyers and sellers never share one."""
    return 1 + (order_id % STANDARD_ACCOUNTS_PER_SIDE) + STANDARD_ACCOUNTS_PER_SIDE * side


def standard_workload(records: list[tuple[int, int, int, int, int]], market: str, timestamp: int = 1) -> list[Command]:
    """The reference stream (op, side, qty, price, oid) as full spot transactions (shared/bench/README.md)."""
    out: list[Command] = []
    for op, side, qty, price, oid in records:
        actor = Actor(account_address(standard_owner(oid, side)))
        if op == 1:
            out.append(CancelOrder(actor=actor, timestamp=timestamp, market=market, order_id=oid))
        else:
            out.append(PlaceOrder(actor=actor, timestamp=timestamp, market=market, side=side, price=price, size=qty))
    return out


def standard_funding(manifest: Manifest, timestamp: int = 0) -> list[Command]:
    """Deposits that fund the standard workload's 10,000 accounts so that no order is rejected for balance."""
    admin = manifest.venue.admins[0]
    out: list[Command] = []
    for account in range(1, 2 * STANDARD_ACCOUNTS_PER_SIDE + 1):
        address = account_address(account)
        for asset in manifest.assets:
            out.append(Deposit(actor=Actor(address, 0, admin), timestamp=timestamp, asset=asset.symbol, amount=10**15))
    return out
