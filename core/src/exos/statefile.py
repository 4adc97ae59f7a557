"""Reading `Engine.dump_state()` back into an engine built from the same manifest and plugins."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

from exos.agents import AgentBook
from exos.book import Book
from exos.errors import ExosError
from exos.ledger import Ledger, SettlementContext
from exos.manifest import AssetSpec, parse_market_table
from exos.nonces import NonceBook
from exos.timers import TimerQueue

if TYPE_CHECKING:
    from exos.engine import Engine


class StateFileError(ExosError):
    """A state dump that this engine cannot load (another manifest, a corrupt file)."""

    code = "BAD_STATE"


class _Reader:
    """Sequential reads over a dump."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, n: int) -> bytes:
        chunk = bytes(self.data[self.offset : self.offset + n])
        if len(chunk) != n:
            raise StateFileError("state dump is truncated")
        self.offset += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def section(self) -> bytes:
        (n,) = self.unpack("<Q")
        return self.take(n)


def load_into(engine: Engine, data: bytes) -> None:
    """Replace `engine`'s state with the dump `data` (validated as it is read)."""
    from exos.engine import STATE_MAGIC, _key

    reader = _Reader(data)
    if reader.take(len(STATE_MAGIC)) != STATE_MAGIC:
        raise StateFileError("not an exos state dump (bad magic)")
    last_timestamp, next_order_id = reader.unpack("<qQ")
    ledger, used = Ledger.load(reader.section(), engine.manifest.venue.fee_account)
    engine.ledger = ledger
    engine._settlement = SettlementContext(ledger)
    engine.asset_keys = {_key(a.symbol, 16): i for i, a in enumerate(ledger.assets)}
    engine._symbols = [a.symbol for a in ledger.assets]
    (count,) = reader.unpack("<I")
    if count < len(engine.markets):
        raise StateFileError(f"state has {count} markets, the manifest lists {len(engine.markets)}")
    assets = {a.symbol: AssetSpec(a.symbol, a.decimals) for a in ledger.assets}
    for index in range(count):
        spec_json = reader.section()
        (status,) = reader.unpack("<B")
        book_dump, market_dump = reader.section(), reader.section()
        if index < len(engine.markets):
            ms = engine.markets[index]
            if ms.spec_json != spec_json:
                raise StateFileError(f"market {index}: the state's listing differs from the manifest's")
            # the market's base/quote indices come from the ledger, identical by construction
        else:
            spec = parse_market_table(json.loads(spec_json), assets, source="state")
            ms = engine._add_market(spec, spec_json, restoring=True)
        ms.book = Book.load(book_dump)
        ms.status = status
        ms.market.load(market_dump)
    engine.timers, _ = TimerQueue.load(reader.section())
    engine.nonces, _ = NonceBook.load(reader.section())
    engine.agents = AgentBook.load(reader.section())
    from exos.engine import DelayedOrder

    engine.delayed = {}
    for order_id, *values in json.loads(reader.section()):
        values[9] = None if values[9] is None else bytes.fromhex(values[9])
        values[11] = tuple(values[11])
        engine.delayed[order_id] = DelayedOrder(*values)
    plugins = engine.plugins
    registries = (
        ("order check", plugins.order_checks),
        ("market type", plugins.market_types),
        ("compliance policy", plugins.compliance_policies),
    )
    for what, registry in registries:
        (stateful,) = reader.unpack("<I")
        for _ in range(stateful):
            name = reader.section().decode()
            plugin = registry.get(name)
            if plugin is None or not hasattr(plugin, "load"):
                raise StateFileError(f"state holds plugin state for {what} {name!r}, which is not loaded")
            plugin.load(reader.section())
    for feed in engine.oracles.values():
        feed.load(reader.section())
    if engine.margin is not None:
        engine.ledger.borrowable = engine.margin.borrowable
        engine.margin.load(reader.section())
    if reader.offset != len(data):
        raise StateFileError(f"state dump has {len(data) - reader.offset} bytes after its end")
    engine.last_timestamp = last_timestamp
    engine.next_order_id = next_order_id
    del used
