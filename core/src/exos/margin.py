"""Margin: what an account must hold for its positions and orders, summed over market types' providers.

Each market type registers a `MarginProvider`. The core gives it the locks the account's open orders
hold in that type's markets; spot's requirement is exactly those locks (fully collateralised).
Perpetuals and outcome markets add theirs when they land; this is where unified margin nets them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from exos.protocols import API_VERSION

if TYPE_CHECKING:
    from exos.engine import Engine


class FullyCollateralised:
    """The `MarginProvider` of a fully collateralised market type: an account needs exactly what its orders lock.

    A market type's plugin subclasses it with its own `name` (spot, prediction)."""

    api_version = API_VERSION
    name = ""

    def requirement(self, account: int, locks: Mapping[int, int]) -> dict[int, int]:
        """Per asset, the account's locked balance."""
        return {asset: amount for asset, amount in locks.items() if amount}


def order_locks(engine: Engine, account: int, market_type: str) -> dict[int, int]:
    """Per asset index, what the account's open orders in markets of one type hold locked."""
    locks: dict[int, int] = {}
    for ms in engine.markets:
        if ms.market_type != market_type:
            continue
        for order in ms.book.orders():
            if order.slots[0] == account:
                asset, amount = ms.market.lock_requirement(order.side, order.price, order.remaining, order.slots[3])
                locks[asset] = locks.get(asset, 0) + amount
        for held in engine.delayed.values():  # orders waiting out a taker delay hold their locks too
            if held.market == ms.index and held.account == account:
                locks[held.asset] = locks.get(held.asset, 0) + held.amount
    return locks


def requirement(engine: Engine, address: bytes, sub: int = 0) -> dict[str, int]:
    """Per asset symbol, what the account must keep for its positions and open orders (zeros omitted)."""
    ledger = engine.ledger
    account = ledger.find_account(address, sub)
    if account is None:
        return {}
    total: dict[int, int] = {}
    for market_type in sorted({ms.market_type for ms in engine.markets}):
        provider = engine.plugins.margin_providers.get(market_type)
        if provider is None:
            continue
        for asset, amount in provider.requirement(account, order_locks(engine, account, market_type)).items():
            total[asset] = total.get(asset, 0) + amount
    return {ledger.assets[asset].symbol: amount for asset, amount in sorted(total.items()) if amount}
