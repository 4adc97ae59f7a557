"""The contract of a margined market type (`exos.protocols.MarginedMarket`), checked through a real engine.

`exos.testing.MarketTypeContract` drives a bare market; a margined one lives inside unified margin (its
orders reserve margin in a settlement asset, its positions count in the account's equity, liquidation
moves them), so this contract runs a venue from the builder's manifest and checks what the engine and
`exos.margin` rely on: orders lock exactly size × class and give it all back, fills open opposite
positions and report them to unified margin, the terms agree with one another, reduce-only orders only
reduce, a market whose oracle never published takes no order that adds risk, every refusal leaves the
state hash as it was, and the same commands give the same state, through a snapshot too. Every command
is followed by the engine's invariant check (money conserved, locks recomputed, cached margin sums exact).

A plugin's test module::

    from exos.margintesting import MarginedCase, MarginedMarketContract

    class TestMyPerpContract(MarginedMarketContract):
        @pytest.fixture
        def margined_case(self) -> MarginedCase:
            return MarginedCase(manifest=HERE / "venue.toml", market="X-PERP", feed="X-USD", publisher=PUBLISHER,
                                oracle_price=100, settlement="USD", deposit=1_000_000, price=100, size=5)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from exos.commands import Actor, CancelOrder, Command, Deposit, OracleUpdate, PlaceOrder
from exos.engine import Engine
from exos.events import CommandDone, OrderAccepted, Rejected

__all__ = ["MarginedCase", "MarginedMarketContract"]

BUY, SELL = 0, 1


@attrs.frozen
class MarginedCase:
    """A venue with the margined market under test, and an order it takes once its oracle has published.

    `manifest` lists the market (`market`), priced by a `pushed` feed (`feed`) that `publisher` may update,
    settled in asset `settlement`. The contract deposits `deposit` units of it into each of two accounts
    (through the manifest's first admin), publishes `oracle_price` (feed units), and trades `size` lots at
    `price` ticks: both must pass the market's bands and margin at the default leverage."""

    manifest: Path | str
    market: str
    feed: str
    publisher: bytes
    oracle_price: int
    settlement: str
    deposit: int
    price: int
    size: int
    moved_price: int = 0  # a second oracle price the positions are revalued at (0: 1% above `oracle_price`)

    def moved(self) -> int:
        """The second oracle price (`moved_price`, or 1% above `oracle_price`)."""
        return self.moved_price or self.oracle_price * 101 // 100


_LONG, _SHORT = b"\x0c" * 20, b"\x0d" * 20


class _Driver:
    """The engine with a clock; every command is checked against the invariants."""

    def __init__(self, case: MarginedCase) -> None:
        self.case = case
        self.engine = Engine.from_manifest(case.manifest)
        self.admin = self.engine.manifest.venue.admins[0]
        self.now = 1_000
        self.commands: list[Command] = []

    def submit(self, make: Any, step: int = 1, **fields: Any) -> list[Any]:
        """Build a command `step` ms after the last, apply it, check the invariants; its events."""
        self.now += step
        command = make(timestamp=self.now, **fields)
        self.commands.append(command)
        events = self.engine.submit(command)
        self.engine.check_invariants()
        return events

    def refused(self, make: Any, **fields: Any) -> str:
        """A command that must be rejected: its code; the state hash must not move (nor does the clock)."""
        before = self.engine.state_hash()
        events = self.submit(make, step=0, **fields)
        done = [e for e in events if isinstance(e, CommandDone)]
        assert done and not done[-1].accepted, f"{make.__name__}{fields!r} was accepted"
        assert self.engine.state_hash() == before, f"the refused {make.__name__} changed the state"
        codes = [e.code for e in events if isinstance(e, Rejected)]
        return codes[0] if codes else ""

    def publish(self, price: int) -> None:
        """The feed publishes `price`."""
        events = self.submit(OracleUpdate, actor=Actor(self.case.publisher), feed=self.case.feed, price=price,
                             published_ms=self.now + 1)  # fmt: skip
        assert [e for e in events if isinstance(e, CommandDone)][-1].accepted, (
            f"the oracle update was refused: {events}"
        )

    def fund(self) -> None:
        """Deposit into both accounts."""
        for address in (_LONG, _SHORT):
            self.submit(Deposit, actor=Actor(address, 0, self.admin), asset=self.case.settlement,
                        amount=self.case.deposit)  # fmt: skip

    def place(self, address: bytes, side: int, size: int | None = None, reduce_only: bool = False) -> list[Any]:
        """A GTC limit order at the case's price."""
        case = self.case
        return self.submit(PlaceOrder, actor=Actor(address), market=case.market, side=side, price=case.price,
                           size=case.size if size is None else size, reduce_only=reduce_only)  # fmt: skip

    @property
    def market(self) -> Any:
        """The margined market object under test."""
        return self.engine.market_state(self.case.market).market

    def account(self, address: bytes) -> int:
        """The ledger index of an address's main account."""
        index = self.engine.ledger.find_account(address, 0)
        assert index is not None
        return index

    def locked(self, address: bytes) -> int:
        """The account's locked settlement balance."""
        return self.engine.balances(address)[self.case.settlement][1]

    def open_positions(self) -> Iterator[tuple[bytes, int]]:
        """(address, account) of both trading accounts."""
        for address in (_LONG, _SHORT):
            yield address, self.account(address)


class MarginedMarketContract:
    """A registered margined market type, as unified margin and the order path use it (see the module docstring).

    Provide the fixture ``margined_case`` (a `MarginedCase`)."""

    @pytest.fixture
    def venue(self, margined_case: MarginedCase) -> _Driver:
        """A funded venue whose oracle has not published yet."""
        driver = _Driver(margined_case)
        driver.fund()
        return driver

    def _traded(self, venue: _Driver) -> _Driver:
        """The oracle published and the two accounts crossed: long and short `size` lots."""
        venue.publish(venue.case.oracle_price)
        self._cross(venue)
        return venue

    @staticmethod
    def _cross(venue: _Driver) -> None:
        """The short rests `size` lots at the case's price and the long takes them (neither refused)."""
        accepted = venue.place(_SHORT, SELL)
        assert not [e for e in accepted if isinstance(e, Rejected)], f"the resting sell was refused: {accepted}"
        crossed = venue.place(_LONG, BUY)
        assert not [e for e in crossed if isinstance(e, Rejected)], f"the crossing buy was refused: {crossed}"

    def test_protocol(self, venue: _Driver) -> None:
        """The market is margined, settles in the case's asset and has every MarginedMarket method."""
        market = venue.market
        assert market.margined is True
        assert market.settlement == venue.engine.ledger.asset_ids[venue.case.settlement]
        methods = ("bind_margin", "admit", "terms", "initial_terms", "maintenance_terms", "isolated_terms",
                   "on_oracle", "transfer", "holders", "size_of", "partial_applies", "reclip_plan",
                   "adl_inputs")  # fmt: skip
        missing = [m for m in methods if not callable(getattr(market, m, None))]
        assert not missing, f"the market lacks {', '.join(missing)}"

    def test_no_order_adds_risk_before_the_oracle_publishes(self, venue: _Driver) -> None:
        """A market whose oracle never published refuses orders (and reduce-only ones: there is no position)."""
        case = venue.case
        for side in (BUY, SELL):
            code = venue.refused(PlaceOrder, actor=Actor(_LONG), market=case.market, side=side, price=case.price,
                                 size=case.size)  # fmt: skip
            assert code, "refused without a code"

    def test_an_order_locks_size_times_its_class_and_a_cancel_returns_it(self, venue: _Driver) -> None:
        """A resting order holds size × class (its slot 3) of the settlement asset; its cancel releases all of it."""
        venue.publish(venue.case.oracle_price)
        events = venue.place(_LONG, BUY)
        accepted = [e for e in events if isinstance(e, OrderAccepted)]
        assert accepted, f"the order was refused: {events}"
        order = venue.engine.order(venue.case.market, accepted[0].order_id)
        assert order.slots[3] > 0, "an order that adds risk reserves a class > 0"
        assert venue.locked(_LONG) == venue.case.size * order.slots[3]
        venue.submit(CancelOrder, actor=Actor(_LONG), market=venue.case.market, order_id=accepted[0].order_id)
        assert venue.locked(_LONG) == 0

    def test_a_fill_opens_opposite_positions_that_unified_margin_knows(self, venue: _Driver) -> None:
        """Crossing orders leave +size and −size, nothing locked, both accounts in unified margin's index."""
        self._traded(venue)
        market, size = venue.market, venue.case.size
        long_account, short_account = (account for _, account in venue.open_positions())
        assert (market.size_of(long_account), market.size_of(short_account)) == (size, -size)
        assert market.holders() == sorted([(long_account, size), (short_account, -size)])
        for address, account in venue.open_positions():
            assert venue.locked(address) == 0
            held = venue.engine.unified_margin().positions.get(account, ())
            assert market in held, "position_opened was not reported"

    def test_the_terms_agree(self, venue: _Driver, margined_case: MarginedCase) -> None:
        """For a cross position: initial_terms = uPnL − IM and maintenance_terms = (uPnL, MM) of `terms`, MM <= IM
        <= notional, isolated_terms None, `adl_inputs` the same uPnL and notional; and so again after the oracle
        moves."""
        self._traded(venue)
        market = venue.market
        for price in (None, margined_case.moved()):
            if price is not None:
                venue.publish(price)
            for _, account in venue.open_positions():
                terms = market.terms(account)
                assert terms is not None, "a cross position has terms"
                upnl, im, mm, notional = terms
                assert market.initial_terms(account) == upnl - im
                assert market.maintenance_terms(account) == (upnl, mm)
                assert 0 <= mm <= im <= notional, terms
                assert market.isolated_terms(account) is None
            for longs in (True, False):  # what ADL ranks by: the same uPnL and notional, and a cross position's None
                inputs = {row[0]: row[1:] for row in market.adl_inputs(longs)}
                sizes = {account: market.size_of(account) for _, account in venue.open_positions()}
                assert set(inputs) == {account for account, size in sizes.items() if (size > 0) == longs}
                for account, (upnl, notional, entry, isolated) in inputs.items():
                    terms = market.terms(account)
                    assert (upnl, notional, isolated) == (terms[0], terms[3], None)
                    assert entry == abs((notional if longs else -notional) - upnl)

    def test_reduce_only_orders_only_reduce(self, venue: _Driver) -> None:
        """Without a position a reduce-only order is refused (state unchanged); one larger than the position is
        clipped to it and reserves nothing."""
        case = venue.case
        venue.publish(case.oracle_price)
        code = venue.refused(PlaceOrder, actor=Actor(_LONG), market=case.market, side=SELL, price=case.price,
                             size=case.size, reduce_only=True)  # fmt: skip
        assert code, "refused without a code"
        self._cross(venue)
        events = venue.place(_LONG, SELL, size=case.size * 2, reduce_only=True)
        accepted = [e for e in events if isinstance(e, OrderAccepted)]
        assert accepted, f"the reduce-only order was refused: {events}"
        assert accepted[0].size == case.size, "a reduce-only order is clipped to the position"
        assert venue.locked(_LONG) == 0, "a reduce-only order reserves nothing"

    def test_closing_both_positions_leaves_none(self, venue: _Driver) -> None:
        """Trading back closes both positions: no holders, unified margin's index forgets them."""
        self._traded(venue)
        venue.place(_LONG, SELL)
        venue.place(_SHORT, BUY)
        market = venue.market
        assert market.holders() == []
        for _, account in venue.open_positions():
            assert market.size_of(account) == 0
            assert market not in venue.engine.unified_margin().positions.get(account, ())

    def test_the_same_commands_give_the_same_state_through_a_snapshot(
        self, venue: _Driver, margined_case: MarginedCase
    ) -> None:
        """Replaying the commands into a fresh engine gives the same hash; so does loading a snapshot."""
        self._traded(venue)
        venue.publish(margined_case.moved())
        again = Engine.from_manifest(margined_case.manifest)
        for command in venue.commands:
            again.submit(command)
        assert again.state_hash() == venue.engine.state_hash()
        restored = Engine.from_manifest(margined_case.manifest)
        restored.load_state(venue.engine.dump_state())
        restored.check_invariants()
        assert restored.state_hash() == venue.engine.state_hash()
