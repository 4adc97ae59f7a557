"""A small driver over a real engine for perpetual venues' tests: every command is checked against the invariants.

Used by this plugin's tests and the workspace's; a builder testing a venue with perpetuals can use it too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exos.commands import (
    Actor,
    CancelOrder,
    Deposit,
    MarketAction,
    OracleUpdate,
    PlaceOrder,
    Tick,
    Transfer,
    Withdraw,
)
from exos.engine import Engine
from exos.events import CommandDone, Fill, MarketEvent, Rejected
from exos.marketctx import system_address

PUBLISHER = bytes.fromhex("0000000000000000000000000000000000000a11")
BACKSTOP = system_address("backstop/USD")
INSURANCE = system_address("insurance/USD")


def who(n: int) -> bytes:
    """A test account's address."""
    return bytes([n]) * 20


class Venue:
    """An engine over a manifest, a clock, and assertions that every command keeps the invariants."""

    def __init__(self, manifest: Path | str) -> None:
        self.engine = Engine.from_manifest(manifest)
        self.admin = self.engine.manifest.venue.admins[0]
        self.now = 1
        self.step = 1  # ms the clock advances per command (0: a refused command must leave the hash as it was)
        self.events: list[Any] = []

    def submit(self, command: Any) -> list[Any]:
        """Submit, check the invariants, keep the events."""
        events = self.engine.submit(command)
        self.engine.check_invariants()
        self.events = events
        return events

    def tick(self, ms: int | None = None) -> int:
        """Advance the clock (by `step` unless told)."""
        self.now += self.step if ms is None else ms
        return self.now

    def deposit(self, address: bytes, asset: str, amount: int, sub: int = 0) -> list[Any]:
        """Fund an account (admin-signed)."""
        return self.submit(Deposit(actor=Actor(address, sub, self.admin), timestamp=self.tick(), asset=asset,
                                   amount=amount))  # fmt: skip

    def oracle(self, price: int, feed: str = "X-USD") -> list[Any]:
        """Publish a price for a feed."""
        now = self.tick()
        return self.submit(
            OracleUpdate(actor=Actor(PUBLISHER), timestamp=now, feed=feed, price=price, published_ms=now)
        )

    def order(self, address: bytes, market: str, side: int, price: int, size: int, **kw: Any) -> list[Any]:
        """Place an order."""
        return self.submit(PlaceOrder(actor=Actor(address, kw.pop("sub", 0)), timestamp=self.tick(), market=market,
                                      side=side, price=price, size=size, **kw))  # fmt: skip

    def cancel(self, address: bytes, market: str, order_id: int) -> list[Any]:
        """Cancel an order."""
        return self.submit(CancelOrder(actor=Actor(address), timestamp=self.tick(), market=market, order_id=order_id))

    def action(self, address: bytes, market: str, action: str, **args: Any) -> list[Any]:
        """A market action (leverage, margin)."""
        return self.submit(MarketAction(actor=Actor(address), timestamp=self.tick(), market=market, action=action,
                                        args=args))  # fmt: skip

    def withdraw(self, address: bytes, asset: str, amount: int) -> list[Any]:
        """Withdraw."""
        return self.submit(Withdraw(actor=Actor(address), timestamp=self.tick(), asset=asset, amount=amount))

    def transfer(self, address: bytes, asset: str, amount: int, to_sub: int) -> list[Any]:
        """Move balance to another sub-account."""
        return self.submit(Transfer(actor=Actor(address), timestamp=self.tick(), asset=asset, amount=amount,
                                    to_sub=to_sub))  # fmt: skip

    def wait(self, until: int) -> list[Any]:
        """Advance time to `until` with a Tick (timers fire)."""
        self.now = until
        return self.submit(Tick(actor=Actor(self.admin), timestamp=until))

    def account(self, address: bytes, sub: int = 0) -> int:
        """The account index of an address."""
        index = self.engine.ledger.find_account(address, sub)
        assert index is not None
        return index

    def cash(self, address: bytes, asset: str = "USD") -> int:
        """Available + locked of an asset."""
        available, locked = self.engine.balances(address)[asset]
        return available + locked

    def position(self, address: bytes, market: str = "X-PERP") -> list[int] | None:
        """[size, basis, isolated margin] or None."""
        account = self.engine.ledger.find_account(address, 0)
        market_obj: Any = self.engine.market_state(market).market
        found = market_obj.positions.get(account) if account is not None else None
        return list(found) if found is not None else None

    def equity(self, address: bytes) -> int:
        """Cross equity in the USD group."""
        return int(self.engine.unified_margin().equity(self.account(address), 0))

    def maintenance(self, address: bytes) -> tuple[int, int]:
        """(equity, maintenance margin) in the USD group."""
        equity, mm = self.engine.unified_margin().maintenance(self.account(address), 0)
        return int(equity), int(mm)

    def free(self, address: bytes) -> int:
        """Free initial margin in the USD group."""
        return int(self.engine.unified_margin().free_initial(self.account(address), 0))

    def rejection(self) -> str | None:
        """The code of the last command's rejection, or None."""
        found = [e for e in self.events if isinstance(e, Rejected)]
        return found[0].code if found else None

    def accepted(self) -> bool:
        """Whether the last command was accepted."""
        return bool([e for e in self.events if isinstance(e, CommandDone)][-1].accepted)

    def market_events(self, prefix: str = "exos.liquidation") -> list[MarketEvent]:
        """The last command's market events whose name starts with `prefix`."""
        return [e for e in self.events if isinstance(e, MarketEvent) and e.name.startswith(prefix)]

    def fills(self) -> list[Fill]:
        """The last command's fills."""
        return [e for e in self.events if isinstance(e, Fill)]
