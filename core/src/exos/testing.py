"""Contract tests that every plugin's tests subclass, so a third-party plugin gets the checks the built-in ones get.

Each class below is a pytest base class without the ``Test`` prefix, so pytest never collects it on
its own. A plugin's test module subclasses it under a ``Test...`` name and provides the fixtures the
class names; the inherited test methods then check the plugin's objects against `exos.protocols` and
against what the engine relies on (conservation through the real `exos.ledger.Ledger`, canonical
dumps, determinism, venue-favourable rounding).

==========================  ============================================================================
class                       fixtures the subclass provides (``optional``: the class has a default)
==========================  ============================================================================
`MarketTypeContract`        ``market_type``, ``market_info``; optional ``fee_model``
`FeeModelContract`          ``fee_factory``; class attributes ``maker_centibps``, ``taker_centibps``
`OrderCheckContract`        ``order_check``, ``accepted_intents``, ``rejected_intents``
`MarginProviderContract`    ``margin_provider``
`StatefulPluginContract`    ``stateful_factory`` (makes a fresh object); optional ``stateful``
`OracleContract`            ``oracle_case`` (an `OracleCase`: the kind, valid params, a publisher and price)
==========================  ============================================================================

A margined market type's contract runs a real engine instead: `exos.margintesting.MarginedMarketContract`.

Example, a plugin's ``tests/test_contract.py``::

    import pytest

    from exos.protocols import MarketInfo, OrderIntent
    from exos.testing import MarketTypeContract, OrderCheckContract
    from exos_mine.plugin import MaxPriceCheck, MineMarketType


    class TestMineMarketType(MarketTypeContract):
        contract_prices = (1_000, 100_000)  # ticks at which the generated orders are valid
        contract_sizes = (1, 5_000)  # lots

        @pytest.fixture
        def market_type(self) -> MineMarketType:
            return MineMarketType()

        @pytest.fixture
        def market_info(self) -> MarketInfo:
            return MarketInfo(market_id=0, name="X-Y", base_asset=1, quote_asset=0, lot_units=100,
                              quote_per_tick_lot=1, min_lots=1, min_notional_units=0, params={})


    class TestMaxPriceCheck(OrderCheckContract):
        @pytest.fixture
        def order_check(self) -> MaxPriceCheck:
            return MaxPriceCheck()

        @pytest.fixture
        def accepted_intents(self) -> list[OrderIntent]:
            return [OrderIntent(market=0, account=1, side=0, price=10, size=1, tif=0, post_only=False)]

        @pytest.fixture
        def rejected_intents(self) -> list[OrderIntent]:
            return [OrderIntent(market=0, account=1, side=0, price=10**9, size=1, tif=0, post_only=False)]

Override a fixture or class attribute to adapt a check (``fee_model`` to settle with the plugin's own
fees, ``exact_fee`` for a fee model that is not a flat rate). The module needs pytest and hypothesis
(``pip install "exos[test]"``).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exos.ledger import Ledger, SettlementContext
from exos.protocols import (
    API_VERSION,
    FeeModel,
    FeeModelFactory,
    FillSide,
    MarginProvider,
    Market,
    MarketInfo,
    MarketType,
    OracleKind,
    OrderCheck,
    OrderIntent,
    OrderRejection,
    StatefulPlugin,
)
from exos.rates import CENTIBPS_PER_UNIT

__all__ = [
    "CENTIBPS_PER_UNIT",
    "EventReader",
    "FeeModelContract",
    "MarginProviderContract",
    "MarketTypeContract",
    "NondeterminismError",
    "OracleCase",
    "OracleContract",
    "OrderCheckContract",
    "ProportionalFees",
    "StatefulPluginContract",
    "forbid_nondeterminism",
]

BUY, SELL = 0, 1
SLOT_LIMIT = 2**64  # the book stores an order's slots as u64
I64_MAX = 2**63 - 1  # the engine refuses an order whose price x size does not fit
FUNDS = 10**24  # what each test account starts with, in every asset
FEE_ADDRESS = b"\xfe" * 20
MAKER_ADDRESS = b"\x0a" * 20
TAKER_ADDRESS = b"\x0b" * 20

# Few examples: these run in every plugin's suite. derandomize: the same examples on every run (there is
# no example database, so one inherited test run by many subclasses, "differing executors", is safe). The
# fixtures are function-scoped, but every example builds its own market and ledger from them.
_FEW = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)

# The entropy and clock sources plugin code on the order path must not touch (DESIGN §2.5).
_FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("time", ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time")),
    ("random", ("random", "randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform")),
    ("random", ("getrandbits", "randbytes", "gauss", "seed")),
    ("os", ("urandom", "getrandom")),
    ("uuid", ("uuid1", "uuid4")),
    ("secrets", ("token_bytes", "token_hex", "token_urlsafe", "randbits", "randbelow", "choice")),
)


# ---------------------------------------------------------------------------------------------- helpers


class EventReader:
    """Reading a command's events in tests: applied or not, the rejection code, events of one kind."""

    @staticmethod
    def accepted(events: Sequence[Any]) -> bool:
        """Whether the command was applied (its CommandDone says so)."""
        from exos.events import CommandDone

        done = events[-1]
        assert isinstance(done, CommandDone), events
        return bool(done.accepted)

    @staticmethod
    def rejection(events: Sequence[Any]) -> str | None:
        """The Rejected event's code, or None if the command was applied."""
        from exos.events import Rejected

        found = [e.code for e in events if isinstance(e, Rejected)]
        assert len(found) <= 1, events
        return found[0] if found else None

    @staticmethod
    def of(events: Sequence[Any], kind: type[Any]) -> list[Any]:
        """The events of exactly one kind (OrderExpired is not counted as OrderCancelled)."""
        return [e for e in events if type(e) is kind]

    @staticmethod
    def order_id(events: Sequence[Any]) -> int:
        """The id of the order a place command created."""
        from exos.events import OrderAccepted

        (accepted,) = [e for e in events if isinstance(e, OrderAccepted)]
        return int(accepted.order_id)


class NondeterminismError(AssertionError):
    """Plugin code read the clock or an entropy source inside `forbid_nondeterminism`."""


@contextlib.contextmanager
def forbid_nondeterminism() -> Iterator[None]:
    """Within the block, the clock, `random`, `os.urandom`, `uuid` and `secrets` raise NondeterminismError.

    Calls are also recorded, so a plugin that swallows the error still fails when the block ends. Only
    module attributes are patched: a name imported before the block (``from time import time``) escapes.
    """
    calls: list[str] = []
    saved: list[tuple[object, str, object]] = []

    def forbidden(qualname: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            calls.append(qualname)
            raise NondeterminismError(f"{qualname}() called on a deterministic path")

        return call

    try:
        for module_name, names in _FORBIDDEN:
            module = importlib.import_module(module_name)
            for name in names:
                if hasattr(module, name):
                    saved.append((module, name, getattr(module, name)))
                    setattr(module, name, forbidden(f"{module_name}.{name}"))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)
    if calls:
        raise NondeterminismError(f"nondeterministic calls (swallowed by the plugin?): {', '.join(calls)}")


class ProportionalFees:
    """A fee model charging `rate` centibps of what is received, rounded up (fees and rebates alike).

    The default fee model of `MarketTypeContract`: a taker fee and a maker rebate, so that settlement
    is exercised with both signs."""

    __slots__ = ("maker_centibps", "taker_centibps")

    def __init__(self, maker_centibps: int, taker_centibps: int) -> None:
        """Rates in hundredths of a basis point (negative: a rebate)."""
        self.maker_centibps = maker_centibps
        self.taker_centibps = taker_centibps

    def fee(self, received: int, maker: bool) -> int:
        """ceil(rate x received / 1e6): a fee rounds up, a rebate rounds towards zero."""
        rate = self.maker_centibps if maker else self.taker_centibps
        return -(-rate * received // CENTIBPS_PER_UNIT)


@attrs.frozen
class _Taker:
    """One taker order of a scenario: its limit, its size and how many lots it takes from the maker."""

    limit: int
    size: int
    fill: int


@attrs.frozen
class _Scenario:
    """A resting maker order and the takers that fill it, one after another, at the maker's price."""

    maker_side: int
    maker_price: int
    maker_size: int
    takers: tuple[_Taker, ...]

    def orders(self) -> list[tuple[int, int, int]]:
        """(side, limit price, size) of every order in the scenario, the maker first."""
        taker_side = 1 - self.maker_side
        return [(self.maker_side, self.maker_price, self.maker_size)] + [
            (taker_side, t.limit, t.size) for t in self.takers
        ]


@attrs.frozen
class _Outcome:
    """Everything a scenario produced: equal outcomes are what determinism means here."""

    results: tuple[tuple[int, int, int, int, int], ...]
    maker_slots: tuple[int, ...]
    taker_slots: tuple[tuple[int, ...], ...]
    ledger: bytes
    market: bytes


def _rejection(function: Callable[..., object], *args: object) -> OrderRejection | None:
    """The OrderRejection a call raises, or None if it returns None (any other exception propagates)."""
    try:
        result = function(*args)
    except OrderRejection as rejection:
        return rejection
    assert result is None, f"returned {result!r}, not None"
    return None


def _accepts(market: Market, side: int, price: int, size: int) -> bool:
    """Whether the market's validate() takes a GTC order (and the engine's i64 bound holds)."""
    if price <= 0 or size <= 0 or price * size > I64_MAX:
        return False
    try:
        market.validate(side, price, size, 0)
    except OrderRejection:
        return False
    return True


def _lock(market: Market, side: int, price: int, remaining: int) -> tuple[int, int]:
    """The lock an order holds: its lock_requirement, or nothing once it is fully filled."""
    asset, amount = market.lock_requirement(side, price, remaining)
    return asset, amount if remaining else 0


def _check_slots(slots: Sequence[int], account: int, who: str) -> None:
    """An order's four slots: slot 0 is still the core's account, slots 1-3 fit the book's u64."""
    assert len(slots) == 4, f"{who}: settle_fill left {len(slots)} slots, an order has 4"
    assert slots[0] == account, f"{who}: slot 0 is the core's (the account {account}), it became {slots[0]}"
    for index, value in enumerate(slots[1:], 1):
        assert type(value) is int, f"{who}: slot {index} is {value!r}, not an int"
        assert 0 <= value < SLOT_LIMIT, f"{who}: slot {index} = {value} does not fit the book's u64"


def _settle(market: Market, info: MarketInfo, scenario: _Scenario) -> _Outcome:
    """Play a scenario through the real Ledger, checking conservation and locks after every fill."""
    taker_side = 1 - scenario.maker_side
    maker_asset, _ = market.lock_requirement(scenario.maker_side, scenario.maker_price, 1)
    taker_asset, _ = market.lock_requirement(taker_side, scenario.maker_price, 1)
    n_assets = 1 + max(info.base_asset, info.quote_asset, maker_asset, taker_asset)
    ledger = Ledger(FEE_ADDRESS)
    for index in range(n_assets):
        ledger.add_asset(f"A{index}", 0)
    fee_account = ledger.fee_account
    maker = ledger.open_account(MAKER_ADDRESS, 0)
    taker = ledger.open_account(TAKER_ADDRESS, 0)
    for account in (maker, taker):
        for asset in range(n_assets):
            ledger.deposit(account, asset, FUNDS)
    context = SettlementContext(ledger)

    def expect_locks(expected: dict[tuple[int, int], int], when: str) -> None:
        for asset in range(n_assets):
            for account in (fee_account, maker, taker):
                want = expected.get((account, asset), 0)
                got = ledger.locked[asset][account]
                assert got == want, f"{when}: account {account} holds {got} of asset {asset} locked, expected {want}"

    def lock(account: int, side: int, price: int, size: int) -> None:
        asset, amount = market.lock_requirement(side, price, size)
        assert 0 <= asset < n_assets, f"lock_requirement names asset {asset}, the market's assets are < {n_assets}"
        assert ledger.lock(account, asset, amount), f"cannot lock {amount} of asset {asset} (FUNDS is {FUNDS})"

    lock(maker, scenario.maker_side, scenario.maker_price, scenario.maker_size)
    m_slots = [maker, *market.initial_slots(scenario.maker_side, scenario.maker_price, scenario.maker_size), 0]
    results: list[tuple[int, int, int, int, int]] = []
    taker_slots: list[tuple[int, ...]] = []
    fees = [0] * n_assets
    filled = 0
    for number, order in enumerate(scenario.takers):
        when = f"after fill {number + 1} of {len(scenario.takers)}"
        lock(taker, taker_side, order.limit, order.size)
        t_slots = [taker, *market.initial_slots(taker_side, order.limit, order.size), 0]
        t_side = FillSide(taker, taker_side, order.limit, t_slots)
        m_side = FillSide(maker, scenario.maker_side, scenario.maker_price, list(m_slots))
        result = market.settle_fill(t_side, m_side, scenario.maker_price, order.fill, context)
        assert isinstance(result, tuple) and len(result) == 5, f"settle_fill returned {result!r}, not 5 ints"
        assert all(type(v) is int for v in result), f"settle_fill returned {result!r}, not 5 ints"
        taker_fee, t_fee_asset, maker_fee, m_fee_asset, _ = result
        assert 0 <= t_fee_asset < n_assets and 0 <= m_fee_asset < n_assets, f"fee assets of {result!r}"
        fees[t_fee_asset] += taker_fee
        fees[m_fee_asset] += maker_fee
        results.append(result)
        _check_slots(t_side.slots, taker, f"{when}: the taker")
        _check_slots(m_side.slots, maker, f"{when}: the maker")
        m_slots = list(m_side.slots)
        taker_slots.append(tuple(t_side.slots))
        filled += order.fill

        ledger.check_invariants()
        for asset in range(n_assets):
            total = sum(ledger.available[asset]) + sum(ledger.locked[asset])
            assert total == 2 * FUNDS, f"{when}: asset {asset} sums to {total}, {2 * FUNDS} were deposited"
            got = ledger.available[asset][fee_account]
            reported = fees[asset]
            assert got == reported, f"{when}: the fee account got {got} of asset {asset}, the fills report {reported}"
        expected: dict[tuple[int, int], int] = {}
        for account, side, price, remaining in (
            (maker, scenario.maker_side, scenario.maker_price, scenario.maker_size - filled),
            (taker, taker_side, order.limit, order.size - order.fill),
        ):
            asset, amount = _lock(market, side, price, remaining)
            expected[(account, asset)] = expected.get((account, asset), 0) + amount
        expect_locks(expected, when)
        # The taker's remainder is cancelled (an IOC), releasing its lock as the engine does.
        ledger.unlock(taker, *_lock(market, taker_side, order.limit, order.size - order.fill))
    ledger.unlock(maker, *_lock(market, scenario.maker_side, scenario.maker_price, scenario.maker_size - filled))
    expect_locks({}, "after every order is gone")
    ledger.check_invariants()
    market.check_invariants()
    return _Outcome(
        results=tuple(results),
        maker_slots=tuple(m_slots),
        taker_slots=tuple(taker_slots),
        ledger=ledger.dump(),
        market=market.dump(),
    )


# ---------------------------------------------------------------------------------------------- contracts


class MarketTypeContract:
    """A registered `MarketType` and the markets it creates.

    Provide fixtures ``market_type`` (the object the plugin registers) and ``market_info`` (a
    `MarketInfo` the market type can serve); override ``fee_model`` to settle with your own fees.
    Generated orders take prices in ``contract_prices`` and sizes in ``contract_sizes`` (inclusive);
    choose ranges in which the market's `validate` accepts most orders."""

    contract_prices: ClassVar[tuple[int, int]] = (1, 1_000_000)
    contract_sizes: ClassVar[tuple[int, int]] = (1, 1_000)

    @pytest.fixture
    def fee_model(self) -> FeeModel:
        """A 5 bp taker fee and a 1 bp maker rebate."""
        return ProportionalFees(-100, 500)

    def _sample_orders(self) -> list[tuple[int, int, int]]:
        """(side, price, size) over the corners and middles of the contract ranges."""
        lo, hi = self.contract_prices
        s_lo, s_hi = self.contract_sizes
        prices = sorted({lo, lo + 1, (lo + hi) // 2, hi - 1, hi} & set(range(lo, hi + 1)))
        sizes = sorted({*range(s_lo, min(s_hi, s_lo + 64) + 1), (s_lo + s_hi) // 2, s_hi})
        return [(side, price, size) for side in (BUY, SELL) for price in prices for size in sizes]

    def _example(self, market: Market, maker_side: int) -> _Scenario:
        """A valid scenario with two partial fills and, where the range allows, price improvement."""
        lo, hi = self.contract_prices
        s_lo, s_hi = self.contract_sizes
        taker_side = 1 - maker_side
        for price in ((lo + hi) // 2, hi, lo):
            for size in (s_hi, (s_lo + s_hi) // 2, s_lo):
                if not _accepts(market, maker_side, price, size):
                    continue
                limit = min(hi, price + max(1, (hi - price) // 2)) if taker_side == BUY else max(lo, price - 1)
                if not _accepts(market, taker_side, limit, size):
                    limit = price
                    if not _accepts(market, taker_side, limit, size):
                        continue
                first = max(1, size // 3)
                takers = [_Taker(limit, size, first)]
                if size - first:
                    takers.append(_Taker(limit, size, size - first))
                return _Scenario(maker_side, price, size, tuple(takers))
        raise AssertionError(
            f"validate() accepts no order of side {maker_side} at the contract ranges "
            f"(prices {self.contract_prices}, sizes {self.contract_sizes}): set contract_prices/contract_sizes"
        )

    def test_identity(self, market_type: MarketType) -> None:
        """The market type speaks the core's api_version and has a non-empty str name."""
        assert type(market_type.api_version) is int
        assert market_type.api_version == API_VERSION
        assert isinstance(market_type.name, str)
        assert market_type.name

    def test_creates_a_market(self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel) -> None:
        """create_market returns an object with every method of the Market protocol."""
        market = market_type.create_market(market_info, fee_model)
        methods = ("validate", "lock_requirement", "initial_slots", "settle_fill", "dump", "load", "check_invariants")
        missing = [m for m in methods if not callable(getattr(market, m, None))]
        assert not missing, f"the market lacks {', '.join(missing)}"
        assert isinstance(market, StatefulPlugin)
        market.check_invariants()

    def test_validate_raises_only_order_rejection(
        self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel
    ) -> None:
        """validate returns None or raises OrderRejection with a code (anything else escapes the engine)."""
        market = market_type.create_market(market_info, fee_model)
        validate: Callable[[int, int, int, int], object] = market.validate
        accepted = 0
        for side, price, size in self._sample_orders():
            for tif in range(4):
                rejection = _rejection(validate, side, price, size, tif)
                if rejection is None:
                    accepted += 1
                else:
                    assert isinstance(rejection.code, str) and rejection.code, rejection
                    assert isinstance(rejection.message, str) and rejection.message, rejection
        ranges = f"{self.contract_prices}, {self.contract_sizes}"
        assert accepted, f"validate() accepts nothing in the contract ranges {ranges}"

    def test_initial_slots(self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel) -> None:
        """initial_slots gives two ints (slots 1-2) that fit the book's u64 slots."""
        market = market_type.create_market(market_info, fee_model)
        for side, price, size in self._sample_orders():
            slots = market.initial_slots(side, price, size)
            assert len(slots) == 2, f"initial_slots({side}, {price}, {size}) = {slots!r}"
            _check_slots([0, *slots, 0], 0, f"initial_slots({side}, {price}, {size})")

    def test_lock_requirement_is_monotonic_in_size(
        self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel
    ) -> None:
        """lock_requirement is (asset, amount >= 0), one asset per side, non-decreasing in size, 0 for 0 lots."""
        market = market_type.create_market(market_info, fee_model)
        by_side: dict[int, set[int]] = {BUY: set(), SELL: set()}
        previous: dict[tuple[int, int], int] = {}
        for side, price, size in self._sample_orders():
            lock = market.lock_requirement(side, price, size)
            assert isinstance(lock, tuple) and len(lock) == 2, f"lock_requirement returned {lock!r}"
            asset, amount = lock
            assert type(asset) is int and asset >= 0, f"lock_requirement({side}, {price}, {size}) names asset {asset!r}"
            assert type(amount) is int and amount >= 0, f"lock_requirement({side}, {price}, {size}) = {amount!r}"
            by_side[side].add(asset)
            before = previous.get((side, price), 0)
            assert amount >= before, f"lock_requirement(side {side}, price {price}) falls to {amount} at {size} lots"
            previous[(side, price)] = amount
            # An amend down to the filled size locks lock_requirement(side, price, 0): it must release everything.
            assert market.lock_requirement(side, price, 0)[1] == 0, f"{size}: zero lots must lock nothing"
        for side, assets in by_side.items():
            # The engine's amend keeps the old lock's asset when the price changes.
            assert len(assets) == 1, f"side {side} locks different assets at different prices/sizes: {sorted(assets)}"

    @_FEW
    @given(data=st.data())
    def test_settle_fill_conserves_every_asset(
        self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel, data: st.DataObject
    ) -> None:
        """Fills through the real Ledger conserve every asset, pay out the reported fees and keep exact locks."""
        lo, hi = self.contract_prices
        s_lo, s_hi = self.contract_sizes
        market = market_type.create_market(market_info, fee_model)
        maker_side = data.draw(st.sampled_from((BUY, SELL)), label="maker_side")
        maker_price = data.draw(st.integers(lo, hi), label="maker_price")
        maker_size = data.draw(st.integers(s_lo, s_hi), label="maker_size")
        takers: list[_Taker] = []
        left = maker_size
        for _ in range(data.draw(st.integers(1, 3), label="takers")):
            if left == 0:
                break
            limits = st.integers(maker_price, hi) if maker_side == SELL else st.integers(lo, maker_price)
            limit = data.draw(limits, label="taker_limit")
            size = data.draw(st.integers(s_lo, s_hi), label="taker_size")
            fill = data.draw(st.integers(1, min(size, left)), label="fill")
            takers.append(_Taker(limit, size, fill))
            left -= fill
        scenario = _Scenario(maker_side, maker_price, maker_size, tuple(takers))
        assume(all(_accepts(market, side, price, size) for side, price, size in scenario.orders()))
        _settle(market, market_info, scenario)

    def test_dump_load_round_trip(self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel) -> None:
        """dump() is canonical bytes; loading it into a fresh market gives equal bytes and sound invariants."""
        fresh = market_type.create_market(market_info, fee_model).dump()
        assert isinstance(fresh, bytes)
        assert market_type.create_market(market_info, fee_model).dump() == fresh
        for maker_side in (BUY, SELL):
            market = market_type.create_market(market_info, fee_model)
            _settle(market, market_info, self._example(market, maker_side))
            data = market.dump()
            assert isinstance(data, bytes)
            assert market.dump() == data, "dump() changed the state"
            copy = market_type.create_market(market_info, fee_model)
            copy.load(data)
            copy.check_invariants()
            assert copy.dump() == data
            market.load(fresh)
            assert market.dump() == fresh, "load() must replace the state, not merge into it"

    def test_settle_fill_is_deterministic(
        self, market_type: MarketType, market_info: MarketInfo, fee_model: FeeModel
    ) -> None:
        """settle_fill reads no clock or entropy, and the same fills give the same bytes, fees and slots."""
        for maker_side in (BUY, SELL):
            scenario = self._example(market_type.create_market(market_info, fee_model), maker_side)
            outcomes = []
            for _ in range(2):
                market = market_type.create_market(market_info, fee_model)
                with forbid_nondeterminism():
                    outcomes.append(_settle(market, market_info, scenario))
            assert outcomes[0] == outcomes[1]


class FeeModelContract:
    """A registered `FeeModelFactory` and the fee models it creates.

    Provide the fixture ``fee_factory``; set ``maker_centibps``/``taker_centibps`` (and ``fee_params``)
    to the rates to test, and override ``exact_fee`` if the model is not the flat rate it is given."""

    maker_centibps: ClassVar[int] = -100
    taker_centibps: ClassVar[int] = 500
    fee_params: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    amounts: ClassVar[tuple[int, ...]] = (
        *range(2_001),
        *(10**k + d for k in range(4, 19) for d in (-1, 0, 1, 7)),
    )

    def exact_fee(self, received: int, maker: bool) -> Fraction:
        """The unrounded fee on `received` units: the role's rate x received / 1e6."""
        rate = self.maker_centibps if maker else self.taker_centibps
        return Fraction(rate * received, CENTIBPS_PER_UNIT)

    @pytest.fixture
    def fee_model(self, fee_factory: FeeModelFactory) -> FeeModel:
        """The model the factory creates for the class's rates."""
        return fee_factory.create(self.maker_centibps, self.taker_centibps, self.fee_params)

    def test_identity(self, fee_factory: FeeModelFactory) -> None:
        """The factory speaks the core's api_version and has a non-empty str name."""
        assert type(fee_factory.api_version) is int
        assert fee_factory.api_version == API_VERSION
        assert isinstance(fee_factory.name, str)
        assert fee_factory.name

    def test_fee_of_nothing_is_zero(self, fee_model: FeeModel) -> None:
        """fee(0) is 0 for a maker and for a taker."""
        assert fee_model.fee(0, True) == 0
        assert fee_model.fee(0, False) == 0

    def test_fee_is_monotonic(self, fee_model: FeeModel) -> None:
        """Fees are ints that never fall as the amount grows (rebates never rise)."""
        for maker in (False, True):
            rising = self.exact_fee(10**12, maker) >= 0
            previous = 0
            for amount in sorted(self.amounts):
                fee = fee_model.fee(amount, maker)
                assert type(fee) is int, f"fee({amount}, maker={maker}) = {fee!r}, not an int"
                moved = fee >= previous if rising else fee <= previous
                assert moved, f"fee(maker={maker}) goes from {previous} to {fee} at {amount}"
                previous = fee

    def test_rounds_once_in_the_venues_favour(self, fee_model: FeeModel) -> None:
        """exact <= fee < exact + 1: a fee rounds up, a rebate towards zero, by less than one unit."""
        for maker in (False, True):
            for amount in self.amounts:
                fee, exact = fee_model.fee(amount, maker), self.exact_fee(amount, maker)
                assert exact <= fee < exact + 1, f"fee({amount}, maker={maker}) = {fee}, exact {exact}"

    @_FEW
    @given(fills=st.lists(st.integers(1, 10**12), min_size=1, max_size=20), noise=st.integers(0, 10**12))
    def test_partial_fills_cost_one_fill(
        self, fee_factory: FeeModelFactory, fee_model: FeeModel, fills: list[int], noise: int
    ) -> None:
        """Per-fill deltas of the cumulative fee add up to the fee of one fill of the total (no hidden state)."""
        for maker in (False, True):
            charged, cumulative = 0, 0
            for amount in fills:
                fee_model.fee(noise, not maker)  # other orders' fees in between must not matter
                charged += fee_model.fee(cumulative + amount, maker) - fee_model.fee(cumulative, maker)
                cumulative += amount
            fresh = fee_factory.create(self.maker_centibps, self.taker_centibps, self.fee_params)
            assert charged == fresh.fee(cumulative, maker) == fee_model.fee(cumulative, maker)


class OrderCheckContract:
    """A registered `OrderCheck`.

    Provide fixtures ``order_check``, ``accepted_intents`` and ``rejected_intents`` (non-empty lists
    of `OrderIntent` the check must let through and refuse)."""

    def test_identity(self, order_check: OrderCheck) -> None:
        """The check speaks the core's api_version, has a non-empty str name and a callable check."""
        assert type(order_check.api_version) is int
        assert order_check.api_version == API_VERSION
        assert isinstance(order_check.name, str)
        assert order_check.name
        assert callable(getattr(order_check, "check", None))

    def test_fixtures_are_not_empty(
        self, accepted_intents: Sequence[OrderIntent], rejected_intents: Sequence[OrderIntent]
    ) -> None:
        """The subclass gives at least one intent to accept and one to reject."""
        assert accepted_intents
        assert rejected_intents

    def test_accepts(self, order_check: OrderCheck, accepted_intents: Sequence[OrderIntent]) -> None:
        """check() returns None for each accepted intent."""
        for intent in accepted_intents:
            assert _rejection(order_check.check, intent) is None, intent

    def test_rejects_with_a_code(self, order_check: OrderCheck, rejected_intents: Sequence[OrderIntent]) -> None:
        """check() raises OrderRejection with a non-empty str code and message for each rejected intent."""
        for intent in rejected_intents:
            with pytest.raises(OrderRejection) as excinfo:
                order_check.check(intent)
            assert isinstance(excinfo.value.code, str) and excinfo.value.code, intent
            assert isinstance(excinfo.value.message, str) and excinfo.value.message, intent

    def test_is_deterministic(
        self,
        order_check: OrderCheck,
        accepted_intents: Sequence[OrderIntent],
        rejected_intents: Sequence[OrderIntent],
    ) -> None:
        """Decisions read no clock or entropy and do not depend on the order of earlier calls."""
        intents = [*accepted_intents, *rejected_intents]

        def decide(intent: OrderIntent) -> tuple[str, str] | None:
            rejection = _rejection(order_check.check, intent)
            return None if rejection is None else (rejection.code, rejection.message)

        with forbid_nondeterminism():
            forward = [decide(i) for i in intents]
            backward = [decide(i) for i in reversed(intents)][::-1]
            again = [decide(i) for i in intents]
        assert forward == backward == again
        assert all(d is None for d in forward[: len(accepted_intents)])
        assert all(d is not None for d in forward[len(accepted_intents) :])


class MarginProviderContract:
    """A registered `MarginProvider`. Provide the fixture ``margin_provider``."""

    def test_identity(self, margin_provider: MarginProvider) -> None:
        """The provider speaks the core's api_version and has a non-empty str name."""
        assert type(margin_provider.api_version) is int
        assert margin_provider.api_version == API_VERSION
        assert isinstance(margin_provider.name, str)
        assert margin_provider.name

    def test_no_locks_need_nothing(self, margin_provider: MarginProvider) -> None:
        """An account without locks needs nothing; zero locks need no positive amount."""
        assert margin_provider.requirement(7, {}) == {}
        needs = margin_provider.requirement(7, {0: 0, 1: 0})
        assert all(amount == 0 for amount in needs.values()), needs

    @_FEW
    @given(locks=st.dictionaries(st.integers(0, 15), st.integers(0, 10**24), max_size=6))
    def test_requirement_is_non_negative(self, margin_provider: MarginProvider, locks: dict[int, int]) -> None:
        """With locks the requirement maps asset indices to ints >= 0, deterministically, leaving the locks alone."""
        before = dict(locks)
        with forbid_nondeterminism():
            needs = margin_provider.requirement(3, MappingProxyType(locks))
            again = margin_provider.requirement(3, MappingProxyType(locks))
        assert locks == before
        assert needs == again
        assert isinstance(needs, dict)
        for asset, amount in needs.items():
            assert type(asset) is int and asset >= 0, needs
            assert type(amount) is int and amount >= 0, needs


class StatefulPluginContract:
    """Plugin state that lives in snapshots and the state hash (`StatefulPlugin`).

    Provide the fixture ``stateful_factory`` (a callable making a fresh object); override ``stateful``
    to check an object in a state other than fresh."""

    @pytest.fixture
    def stateful(self, stateful_factory: Callable[[], StatefulPlugin]) -> StatefulPlugin:
        """The object under test: by default a fresh one."""
        return stateful_factory()

    def test_protocol(self, stateful: StatefulPlugin) -> None:
        """The object has dump, load and check_invariants, and its invariants hold."""
        assert isinstance(stateful, StatefulPlugin)
        stateful.check_invariants()

    def test_fresh_is_canonical(self, stateful_factory: Callable[[], StatefulPlugin]) -> None:
        """Two fresh objects pass check_invariants and dump equal bytes."""
        first, second = stateful_factory(), stateful_factory()
        first.check_invariants()
        assert isinstance(first.dump(), bytes)
        assert first.dump() == second.dump()

    def test_dump_is_stable(self, stateful: StatefulPlugin) -> None:
        """dump() returns bytes and does not change the state."""
        data = stateful.dump()
        assert isinstance(data, bytes)
        assert stateful.dump() == data

    def test_round_trip(self, stateful: StatefulPlugin, stateful_factory: Callable[[], StatefulPlugin]) -> None:
        """load(dump()) into a fresh object gives equal bytes and sound invariants."""
        data = stateful.dump()
        copy = stateful_factory()
        copy.load(data)
        copy.check_invariants()
        assert copy.dump() == data

    def test_load_replaces_state(
        self, stateful: StatefulPlugin, stateful_factory: Callable[[], StatefulPlugin]
    ) -> None:
        """Loading a fresh object's dump resets the state (load replaces, never merges)."""
        fresh = stateful_factory().dump()
        stateful.load(fresh)
        stateful.check_invariants()
        assert stateful.dump() == fresh


@attrs.frozen(kw_only=True)
class OracleCase:
    """One oracle kind as `OracleContract` exercises it (what the fixture ``oracle_case`` returns).

    `params` must be valid manifest params that list `publisher`, set the max age to `max_age_ms` and
    leave any max-move guard off; one update from `publisher` (naming `source`, at `price`) must make a
    fresh feed publish. The contract passes params as the engine does (read-only mappings, tuples)."""

    kind: OracleKind  # the object the plugin registers
    params: Mapping[str, Any]
    publisher: bytes
    price: int  # a price the feed takes from `publisher` (0 for a kind whose updates are sampling ticks)
    max_age_ms: int
    source: str = ""
    stranger: bytes = b"\xee" * 20  # an address `params` do not list
    bad_params: tuple[Mapping[str, Any], ...] = ()  # more params `create` must refuse (the contract adds its own)
    bad_sources: tuple[str, ...] = ()  # sources an update from `publisher` must not name
    max_move_bps: int = 0  # the kind's `max_move_bps` guard to check (0: the kind has none)
    far_price: int = 0  # after an update at `price`: one at this price, `far_after_ms` later, breaches that guard
    far_after_ms: int = 1
    bind: Callable[[Any], None] | None = None  # applied to every feed the contract creates (e.g. bind a view)
    name: str = "CONTRACT"  # the feed name `create` gets (a bound feed may look itself up in its venue's manifest)


def _frozen(value: Any) -> Any:
    """Params as the engine hands them to `create`: tables read-only mappings, arrays tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


class OracleContract:
    """A registered `OracleKind` and the feeds it creates, as the engine uses them.

    Provide the fixture ``oracle_case`` (an `OracleCase`). Feeds are driven directly with explicit
    command times from ``start_ms``; a refused update must raise ValueError and leave the feed's dump
    bytes (and value) exactly as they were: the engine turns the ValueError into an ``ORACLE`` rejection
    and relies on the feed having validated before it mutated."""

    start_ms: ClassVar[int] = 1_700_000_000_000
    future_ms: ClassVar[int] = 60_000  # a published time this far ahead of the command must be refused

    def _feed(self, case: OracleCase, params: Mapping[str, Any] | None = None) -> Any:
        """A fresh feed from `params` (default the case's), bound as the case says."""
        feed = case.kind.create(case.name, _frozen(case.params if params is None else params))
        if case.bind is not None:
            case.bind(feed)
        return feed

    def _publish(self, case: OracleCase, feed: Any, now: int, price: int | None = None) -> int:
        """An update from the case's publisher at command time `now`, stamped `now`; the live count."""
        live: int = feed.update(case.publisher, case.source, case.price if price is None else price, now, now)
        return live

    @staticmethod
    def _refuses(feed: Any, what: str, *update: Any) -> None:
        """update(*update) raises ValueError and changes neither the dump bytes nor the value."""
        before, now = feed.dump(), update[-1]
        value = feed.value(now)
        try:
            feed.update(*update)
        except ValueError:
            pass
        except Exception as exc:  # the engine turns only ValueError into a rejection: anything else stops it
            raise AssertionError(f"{what}: update{update!r} raised {exc!r}, not ValueError") from exc
        else:
            raise AssertionError(f"{what}: the feed took update{update!r}")
        assert feed.dump() == before, f"{what}: a refused update changed the feed's state"
        assert feed.value(now) == value, f"{what}: a refused update changed the feed's value"

    def test_identity(self, oracle_case: OracleCase) -> None:
        """The kind speaks the core's api_version, has a non-empty str name and a callable create."""
        kind = oracle_case.kind
        assert type(kind.api_version) is int
        assert kind.api_version == API_VERSION
        assert isinstance(kind.name, str)
        assert kind.name
        assert callable(getattr(kind, "create", None))

    def test_create_refuses_bad_params(self, oracle_case: OracleCase) -> None:
        """create raises ValueError (the engine names it as the bad param) for unknown keys, no params, a bad max
        age, bad publishers and the case's own bad params."""
        case = oracle_case
        params = dict(case.params)
        bad: list[Mapping[str, Any]] = [{}, {**params, "no_such_param": 1}, *case.bad_params]
        if "max_age_ms" in params:
            bad += [{**params, "max_age_ms": age} for age in (0, -1, True, 1.5, "1000", None)]
        if "publishers" in params:
            bad += [{**params, "publishers": p} for p in ([], ["0x12"], "0x" + case.publisher.hex(), [7])]
        for candidate in bad:
            try:
                case.kind.create(case.name, _frozen(candidate))
            except ValueError:
                continue
            except Exception as exc:  # anything else escapes the engine's start-up as a crash, not a config error
                raise AssertionError(f"create({candidate!r}) raised {exc!r}, not ValueError") from exc
            raise AssertionError(f"create accepted bad params {candidate!r}")

    def test_creates_a_stale_feed(self, oracle_case: OracleCase) -> None:
        """A fresh feed has the OracleFeed methods and its name, sound invariants, canonical bytes, and no price:
        value None, nothing live, no expiry (a market it prices takes no risk-increasing order)."""
        feed, twin = self._feed(oracle_case), self._feed(oracle_case)
        methods = ("update", "value", "live", "expires_at", "dump", "load", "check_invariants")
        missing = [m for m in methods if not callable(getattr(feed, m, None))]
        assert not missing, f"the feed lacks {', '.join(missing)}"
        assert feed.name == oracle_case.name
        feed.check_invariants()
        assert isinstance(feed.dump(), bytes)
        assert feed.dump() == twin.dump()
        for now in (self.start_ms, self.start_ms + oracle_case.max_age_ms, 0, 2**62):
            assert feed.value(now) is None, f"a feed that never published has a value at {now}"
            assert feed.live(now) == 0
            assert feed.expires_at(now) is None

    def test_an_update_publishes(self, oracle_case: OracleCase) -> None:
        """One update from the publisher makes the feed live: a positive int value, live count as update said."""
        feed, now = self._feed(oracle_case), self.start_ms
        live = self._publish(oracle_case, feed, now)
        assert type(live) is int and live >= 1, f"update returned {live!r}, not a live count >= 1"
        assert feed.live(now) == live
        value = feed.value(now)
        assert type(value) is int and value > 0, f"value {value!r} after an update, not a positive int"
        feed.check_invariants()

    def test_guards_refuse_and_change_nothing(self, oracle_case: OracleCase) -> None:
        """A publisher not listed, a bad source, a non-int, negative or (for a priced kind) zero price, and a
        timestamp ahead of the command, older than max age or not after the last are refused; nothing changes."""
        case, t0 = oracle_case, self.start_ms
        assert case.stranger != case.publisher
        feed = self._feed(case)
        self._publish(case, feed, t0)
        now = t0 + 10
        pub, src, price = case.publisher, case.source, case.price
        self._refuses(feed, "a publisher not listed", case.stranger, src, price, now, now)
        for source in case.bad_sources:
            self._refuses(feed, f"source {source!r}", pub, source, price, now, now)
        bad_prices: list[Any] = [True, False, float(price), 1.5, math.nan, math.inf, -math.inf, str(price), None]
        bad_prices += [-1, -(10**18)]
        bad_prices += [1, 10**6] if price == 0 else [0, -price]  # a sampling tick carries no price: 0 only
        for bad in bad_prices:
            self._refuses(feed, f"price {bad!r}", pub, src, bad, now, now)
        self._refuses(feed, "a timestamp ahead of the command", pub, src, price, now + self.future_ms, now)
        self._refuses(feed, "a timestamp older than max age", pub, src, price, now - case.max_age_ms - 1, now)
        self._refuses(feed, "a timestamp not after the last", pub, src, price, t0, now)
        self._refuses(feed, "a timestamp before the last", pub, src, price, t0 - 1, now)
        self._publish(case, feed, now)  # and a good update still goes through
        feed.check_invariants()

    def test_dump_load_round_trip(self, oracle_case: OracleCase) -> None:
        """load(dump()) into a fresh feed gives equal bytes, values and expiry; loading a fresh dump resets."""
        case, t0 = oracle_case, self.start_ms
        feed = self._feed(case)
        fresh = feed.dump()
        self._publish(case, feed, t0)
        self._publish(case, feed, t0 + case.max_age_ms // 2 + 1)
        data = feed.dump()
        assert data != fresh, "an update left the dump as it was"
        copy = self._feed(case)
        copy.load(data)
        copy.check_invariants()
        assert copy.dump() == data
        for now in (t0 + case.max_age_ms // 2 + 1, t0 + case.max_age_ms + 1, t0 + 3 * case.max_age_ms):
            assert (copy.value(now), copy.live(now), copy.expires_at(now)) == (
                feed.value(now), feed.live(now), feed.expires_at(now))  # fmt: skip
        feed.load(fresh)
        feed.check_invariants()
        assert feed.dump() == fresh, "load() must replace the state, not merge into it"
        assert feed.value(t0 + case.max_age_ms // 2 + 1) is None

    def test_is_deterministic(self, oracle_case: OracleCase) -> None:
        """The same updates give the same bytes and values on two feeds, reading no clock or entropy; reads
        (value, live, expires_at) change nothing."""
        case, t0, age = oracle_case, self.start_ms, oracle_case.max_age_ms
        times = [t0, t0 + age // 3 + 1, t0 + age // 2 + 2, t0 + 3 * age, t0 + 3 * age + 1]
        runs = []
        for _ in range(2):
            feed = self._feed(case)
            trace: list[tuple[Any, ...]] = []
            with forbid_nondeterminism():
                for now in times:
                    for publisher in (case.publisher, case.stranger):  # the stranger's update is refused
                        with contextlib.suppress(ValueError):
                            feed.update(publisher, case.source, case.price, now, now)
                    data = feed.dump()
                    reads = (feed.value(now), feed.live(now), feed.expires_at(now), feed.value(now + 2 * age))
                    assert feed.dump() == data, "reading the feed changed its state"
                    trace.append((data, *reads))
            runs.append(trace)
        assert runs[0] == runs[1]

    def test_expiry_matches_the_value(self, oracle_case: OracleCase) -> None:
        """expires_at is when the value goes None: live the ms before, stale from then (the engine's timer)."""
        case, t0 = oracle_case, self.start_ms
        feed = self._feed(case)
        self._publish(case, feed, t0)
        expiry = feed.expires_at(t0)
        assert type(expiry) is int and t0 < expiry <= t0 + case.max_age_ms + 1, f"expires_at({t0}) = {expiry!r}"
        for now in (t0, (t0 + expiry) // 2, expiry - 1):
            assert feed.value(now) is not None, f"stale at {now}, before its expiry {expiry}"
            assert feed.expires_at(now) == expiry
        assert feed.value(expiry) is None, f"still live at its expiry {expiry}"
        assert feed.live(expiry) < feed.live(expiry - 1)
        assert feed.expires_at(expiry) is None
        self._publish(case, feed, expiry + 5)  # it publishes again and expires later
        assert feed.value(expiry + 5) is not None
        assert (feed.expires_at(expiry + 5) or 0) > expiry + 5

    def test_max_move_is_guarded(self, oracle_case: OracleCase) -> None:
        """With max_move_bps an update that would move the value farther is refused (nothing changes) or clamped to
        the bound in the direction of the move; the same update without the guard does move that far."""
        case, t0 = oracle_case, self.start_ms
        bps = case.max_move_bps
        if not bps:
            pytest.skip("the kind has no max-move guard (OracleCase.max_move_bps = 0)")
        assert 0 < case.far_after_ms <= case.max_age_ms, "far_after_ms: the first update must still count"
        at = t0 + case.far_after_ms
        free = self._feed(case)
        self._publish(case, free, t0)
        before = free.value(t0)
        self._publish(case, free, at, case.far_price)
        after = free.value(at)
        assert before is not None and after is not None
        assert abs(after - before) * 10_000 > before * bps, (
            f"OracleCase: without the guard the far update moves {before} to {after}, within {bps} bp"
        )
        guarded = self._feed(case, {**case.params, "max_move_bps": bps})
        self._publish(case, guarded, t0)
        start = guarded.value(t0)
        assert start == before
        data = guarded.dump()
        try:
            self._publish(case, guarded, at, case.far_price)
        except ValueError:
            assert guarded.dump() == data, "a refused move changed the feed's state"
            assert guarded.value(at) == start
            return
        moved = guarded.value(at)
        assert moved is not None
        assert abs(moved - start) * 10_000 <= start * bps, f"moved {start} to {moved}, beyond {bps} bp"
        assert (moved > start) == (after > before) and moved != start, f"clamped {start} to {moved}, not toward {after}"
        guarded.check_invariants()


def install_distribution(source: Path, base: Path) -> Path:
    """Install a plugin distribution for real (pip, no deps, no network) into `base/target`; returns the target.

    Builds from a copy of `source`, so an in-tree build leaves no build/ or egg-info behind. Put the
    target on sys.path to make its entry points visible to `importlib.metadata`."""
    copy = base / "src"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = base / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target), str(copy)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target
