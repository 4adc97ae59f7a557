"""Complementary matching: hand-computed fills of each kind, and a differential test against a pure-Python model.

The model predicts the matches with `exos.refbook.RefBook` fed the book-mapped orders (a NO buy at q is an
ask at n - q, a NO sell a bid at n - q; slot 3 holds the token) and computes, on its own, what every fill
moves: the payment at the maker's price (the taker keeps its improvement), the fee on the order's
cumulative weight per role (probability: rate × p(1 - p) per share, flat: rate × notional), the shares,
and the vault flows of mints and merges. Locks follow from the open orders: a buy locks its payment at
its own limit plus the most fee one lot can cost at any price up to that limit, a sell its shares.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from types import ModuleType
from typing import Any, NamedTuple

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from exos import commands as C
from exos import events as E
from exos.commands import Actor
from exos.engine import Engine
from exos.manifest import Manifest
from exos.refbook import RefBook
from exos.types import EventType, OrderFlag, OrderState

USDC = "USDC"
YES, NO = 0, 1
BUY, SELL = 0, 1
GTC, IOC, FOK = 0, 2, 3
NORMAL, MINT, MERGE = 0, 1, 2
SCALE = 1_000_000
KINDS = ("normal YES", "normal NO", "mint", "merge")

# ---------------------------------------------------------------- hand-computed examples (market RAIN)
# tick 0.01, lot 1 USDC: a price of p ticks on s lots costs p × s × 10_000 units; probability fees, taker
# 1% and maker -0.1% (a rebate) of p(1 - p) per share; a buy locks at most 0.25 × 1% = 2_500 units of fee
# per lot. Every trader starts with 100 USDC.

FUNDS = 100_000_000


def _rain(pm: ModuleType) -> dict[str, Any]:
    """The hand examples' market."""
    table: dict[str, Any] = pm.market("RAIN", maker_bps="-10", taker_bps="100")
    return table


def _fill(f: E.Fill) -> tuple[Any, ...]:
    """What a Fill event says about one side of a trade."""
    return (f.order_id, f.counter_order_id, f.side, f.maker, f.price, f.size, f.fee, f.fee_asset, f.outcome,
            f.fill_kind)  # fmt: skip


def _two_traders(pm: ModuleType, venue: Any, split_a: int = 0, split_b: int = 0) -> tuple[Actor, Actor]:
    """Traders A and B, each funded with 100 USDC and optionally holding split shares of RAIN."""
    a, b = pm.trader(1), pm.trader(2)
    for who, lots in ((a, split_a), (b, split_b)):
        venue.deposit(who, FUNDS)
        if lots:
            assert venue.accepted(venue.action(who, "RAIN", "split", size=lots))
    return a, b


def test_normal_yes_fill_at_the_makers_price(pm: ModuleType, make_venue: Any) -> None:
    """A YES buy at 65 meets a YES ask at 62: 3 lots trade at 62, the rest of the buy rests at 65."""
    venue = make_venue([_rain(pm)])
    a, b = _two_traders(pm, venue, split_a=5)
    ask = venue.order_id(venue.place(a, "RAIN", SELL, 62, 3))
    assert venue.balance(a, "RAIN-Y") == (2_000_000, 3_000_000)
    events = venue.place(b, "RAIN", BUY, 65, 4)
    bid = venue.order_id(events)
    # B pays 3 × 0.62 = 1.86 USDC; fee 1% × 0.62 × 0.38 × 3 = 0.007068; A's rebate 0.1% of 0.7068 = 706.8 → 706
    assert [_fill(f) for f in venue.of(events, E.Fill)] == [
        (bid, ask, BUY, False, 62, 3, 7_068, USDC, YES, NORMAL),
        (ask, bid, SELL, True, 62, 3, -706, USDC, YES, NORMAL),
    ]
    # the last lot rests at 65: 650_000 + 2_500 of fee lock
    assert venue.balance(b) == (FUNDS - 1_860_000 - 7_068 - 652_500, 652_500)
    assert venue.balance(b, "RAIN-Y") == (3_000_000, 0)
    assert venue.balance(a) == (95_000_000 + 1_860_000 + 706, 0)
    assert venue.balance(a, "RAIN-Y") == (2_000_000, 0)
    assert venue.balance(a, "RAIN-N") == (5_000_000, 0)
    assert venue.fees() == 7_068 - 706
    assert venue.vault("RAIN") == 5_000_000 == venue.supply("RAIN-Y") == venue.supply("RAIN-N")


def test_normal_no_fill_gives_a_no_taker_its_improvement(pm: ModuleType, make_venue: Any) -> None:
    """A NO buy at 35 meets a NO sell at 30 (a bid at 70 in the book): it pays 30, not 35."""
    venue = make_venue([_rain(pm)])
    a, b = _two_traders(pm, venue, split_a=5)
    ask = venue.order_id(venue.place(a, "RAIN", SELL, 30, 4, outcome=NO))
    assert venue.engine.depth("RAIN")[0][0].price == 70  # a NO sell at 30 is a YES bid at 70
    assert venue.balance(a, "RAIN-N") == (1_000_000, 4_000_000)
    events = venue.place(b, "RAIN", BUY, 35, 4, outcome=NO)
    bid = venue.order_id(events)
    # 4 × 0.30 = 1.2 USDC; fee 1% × 0.3 × 0.7 × 4 = 0.0084; rebate 0.1% of 0.84 = 840
    assert [_fill(f) for f in venue.of(events, E.Fill)] == [
        (bid, ask, BUY, False, 30, 4, 8_400, USDC, NO, NORMAL),
        (ask, bid, SELL, True, 30, 4, -840, USDC, NO, NORMAL),
    ]
    # B locked 4 × (350_000 + 2_500) and got back everything but 1.2 USDC and the fee: 200_000 of improvement
    assert venue.balance(b) == (FUNDS - 1_200_000 - 8_400, 0)
    assert venue.balance(b, "RAIN-N") == (4_000_000, 0)
    assert venue.balance(a) == (95_000_000 + 1_200_000 + 840, 0)
    assert venue.balance(a, "RAIN-N") == (1_000_000, 0)
    assert venue.balance(a, "RAIN-Y") == (5_000_000, 0)
    assert venue.fees() == 8_400 - 840
    assert venue.engine.depth("RAIN") == ([], [])


def test_mint_two_buys_create_a_full_set(pm: ModuleType, make_venue: Any) -> None:
    """A YES buy at 58 and a NO buy at 45 (an ask at 55): both pay into the vault, one share of each is issued."""
    venue = make_venue([_rain(pm)])
    a, b = _two_traders(pm, venue)
    yes_bid = venue.order_id(venue.place(a, "RAIN", BUY, 58, 2))
    assert venue.balance(a) == (FUNDS - 2 * (580_000 + 2_500), 2 * (580_000 + 2_500))
    events = venue.place(b, "RAIN", BUY, 45, 2, outcome=NO)
    no_bid = venue.order_id(events)
    # at the maker's 58 the NO side pays 42 (3 better than its 45): 2 × 0.58 + 2 × 0.42 = 2 USDC into the vault;
    # fees: B 1% × 0.58 × 0.42 × 2 = 0.004872, A's rebate 0.1% of 0.4872 = 487.2 → 487
    assert [_fill(f) for f in venue.of(events, E.Fill)] == [
        (no_bid, yes_bid, BUY, False, 42, 2, 4_872, USDC, NO, MINT),
        (yes_bid, no_bid, BUY, True, 58, 2, -487, USDC, YES, MINT),
    ]
    assert venue.balance(a) == (FUNDS - 1_160_000 + 487, 0)
    assert venue.balance(b) == (FUNDS - 840_000 - 4_872, 0)
    assert venue.balance(a, "RAIN-Y") == (2_000_000, 0)
    assert venue.balance(b, "RAIN-N") == (2_000_000, 0)
    assert venue.balance(a, "RAIN-N") == venue.balance(b, "RAIN-Y") == (0, 0)
    assert venue.vault("RAIN") == 2_000_000 == venue.supply("RAIN-Y") == venue.supply("RAIN-N")
    assert venue.fees() == 4_872 - 487


def test_merge_two_sells_burn_a_full_set(pm: ModuleType, make_venue: Any) -> None:
    """A YES sell at 47 and a NO sell at 50 (a bid at 50): both shares burn, the vault pays 47 and 53."""
    venue = make_venue([_rain(pm)])
    a, b = _two_traders(pm, venue, split_a=5, split_b=5)
    assert venue.vault("RAIN") == 10_000_000
    yes_ask = venue.order_id(venue.place(a, "RAIN", SELL, 47, 5))
    events = venue.place(b, "RAIN", SELL, 50, 5, outcome=NO)
    no_ask = venue.order_id(events)
    # B sells NO at 100 - 47 = 53, 3 better than its 50; fees: B 1% × 0.53 × 0.47 × 5 = 0.012455,
    # A's rebate 0.1% of 1.2455 = 1245.5 → 1245
    assert [_fill(f) for f in venue.of(events, E.Fill)] == [
        (no_ask, yes_ask, SELL, False, 53, 5, 12_455, USDC, NO, MERGE),
        (yes_ask, no_ask, SELL, True, 47, 5, -1_245, USDC, YES, MERGE),
    ]
    assert venue.balance(a) == (95_000_000 + 2_350_000 + 1_245, 0)
    assert venue.balance(b) == (95_000_000 + 2_650_000 - 12_455, 0)
    assert venue.balance(a, "RAIN-Y") == venue.balance(b, "RAIN-N") == (0, 0)
    assert venue.balance(a, "RAIN-N") == venue.balance(b, "RAIN-Y") == (5_000_000, 0)
    assert venue.vault("RAIN") == 5_000_000 == venue.supply("RAIN-Y") == venue.supply("RAIN-N")
    assert venue.fees() == 12_455 - 1_245


def test_flat_fees_charge_the_notional_of_a_no_taker(pm: ModuleType, make_venue: Any) -> None:
    """Flat model (exos_spot): taker 7.77 bps and maker -1 bp of the notional each side pays or receives."""
    venue = make_venue([pm.market("RAIN", fee_model="flat", maker_bps="-1", taker_bps="7.77")], spot=True)
    a, b = _two_traders(pm, venue, split_a=10)
    ask = venue.order_id(venue.place(a, "RAIN", SELL, 21, 3, outcome=NO))
    events = venue.place(b, "RAIN", BUY, 24, 5, outcome=NO)
    bid = venue.order_id(events)
    # notional 3 × 0.21 = 630_000: taker 0.0777% = 489.51 → 490 (up), maker 0.01% = 63
    assert [_fill(f) for f in venue.of(events, E.Fill)] == [
        (bid, ask, BUY, False, 21, 3, 490, USDC, NO, NORMAL),
        (ask, bid, SELL, True, 21, 3, -63, USDC, NO, NORMAL),
    ]
    # 2 lots rest at NO 24: 240_000 each plus a fee lock of 0.0777% of 240_000 = 186.48 → 187 per lot
    assert venue.balance(b) == (FUNDS - 630_000 - 490 - 2 * 240_187, 2 * 240_187)
    assert venue.balance(a) == (90_000_000 + 630_000 + 63, 0)
    assert venue.fees() == 490 - 63


def test_no_prices_outside_the_unit_are_refused(pm: ModuleType, make_venue: Any) -> None:
    """A NO order at 0 or at n ticks (or above) is refused, as a YES one is."""
    venue = make_venue([_rain(pm)])
    a, _ = _two_traders(pm, venue)
    for outcome in (YES, NO):
        for price in (100, 101):
            assert venue.rejection(venue.place(a, "RAIN", BUY, price, 1, outcome=outcome)) == "BAD_PRICE"
    assert venue.rejection(venue.place(a, "RAIN", BUY, 5, 1, outcome=2)) == "BAD_OUTCOME"


@pytest.mark.parametrize(("outcome", "price"), [(YES, 150), (YES, 100), (NO, 100)])
def test_amend_below_filled_to_a_price_off_the_unit(pm: ModuleType, make_venue: Any, outcome: int, price: int) -> None:
    """A partly filled buy amended to a size at or below its fill: the order goes with its lock, or a clear refusal.

    (This once stopped the engine: the lock of the removed order was looked up at the off-unit price.)"""
    venue = make_venue([_rain(pm)])
    a, b = _two_traders(pm, venue, split_b=10)
    bid = venue.order_id(venue.place(a, "RAIN", BUY, 50, 10, outcome=outcome))
    assert len(venue.of(venue.place(b, "RAIN", SELL, 50, 4, outcome=outcome), E.Fill)) == 2
    events = venue.do(C.AmendOrder, a, market="RAIN", order_id=bid, price=price, size=3)
    if (outcome, price) == (NO, 100):  # a NO price of one unit is a book price of 0: the book refuses it
        assert venue.rejection(events) == "BAD_PRICE"
        assert venue.engine.order("RAIN", bid) is not None
    else:  # nothing is left to trade: the order goes and its lock with it
        assert venue.accepted(events)
        assert venue.engine.order("RAIN", bid) is None
        assert venue.balance(a)[1] == 0
    venue.deposit(a, 1)  # the engine carries on


# ---------------------------------------------------------------- the differential model


class Spec(NamedTuple):
    """A market of the differential venue: its manifest numbers as the model uses them."""

    name: str
    n: int  # ticks per unit
    per: int  # collateral units per tick per lot
    lot: int  # share units per lot
    maker: int  # centi-bps
    taker: int
    probability: bool
    mid: int  # YES prices centre here


# P: tick 0.01, lot 1 (n 100); Q: tick 0.0025, lot 0.01 (n 400, 25 units a tick-lot); F: flat, tick 0.01, lot 0.1.
SPECS = (
    Spec("P", 100, 10_000, 1_000_000, -250, 10_000, True, 50),
    Spec("Q", 400, 25, 10_000, 300, 777, True, 100),
    Spec("F", 100, 1_000, 100_000, -100, 3_000, False, 35),
)
TABLES = (
    ("P", "0.01", "1", "probability", "-2.5", "100"),
    ("Q", "0.0025", "0.01", "probability", "3", "7.77"),
    ("F", "0.01", "0.1", "flat", "-1", "30"),
)
# Two sub-accounts of one address (self-trade prevention applies between them), two other addresses.
ACTORS = (Actor(b"\xa0" + bytes(18) + b"\x01", 0), Actor(b"\xa0" + bytes(18) + b"\x01", 1),
          Actor(b"\xa0" + bytes(18) + b"\x02", 0), Actor(b"\xa0" + bytes(18) + b"\x03", 0))  # fmt: skip
OWNER = (0, 0, 1, 2)  # the STP group (address) of each actor
DEPOSITS = (200_000_000, 30_000_000, 200_000_000, 400_000)
SPLITS = (20, 8, 20, 0)  # lots each actor splits in every market at the start
ADMIN = bytes.fromhex("11" * 20)
FEE_ADDRESS = bytes.fromhex("fee0000000000000000000000000000000000fee")


def vault_address(event: str) -> bytes:
    """An event vault's address (sha256 of the system label, as the core derives venue-owned accounts)."""
    return hashlib.sha256(b"exos/system/prediction/vault/" + event.encode()).digest()[:20]


@functools.cache
def lock_fee(spec: Spec, limit: int) -> int:
    """The most fee one lot of a buy at own price `limit` can cost: the worst price at or below it, either role."""
    rate = max(spec.maker, spec.taker, 0)
    return max(fee_total(weight(spec, e) * spec.per, rate, denominator(spec)) for e in range(1, limit + 1))


def weight(spec: Spec, own_price: int) -> int:
    """One lot's fee weight at own price e: e(n - e) (probability) or e (flat), in ticks."""
    return own_price * (spec.n - own_price) if spec.probability else own_price


def denominator(spec: Spec) -> int:
    """p(1 - p) = e(n - e)/n²: one n is in the weight per lot (n × per = lot), the other divides here."""
    return spec.n if spec.probability else 1


def fee_total(amount: int, rate: int, denominator: int) -> int:
    """rate × amount / denominator in centi-bps: fees round up, rebates toward zero."""
    if rate >= 0:
        return -(-amount * rate // (SCALE * denominator))
    return -(amount * -rate // (SCALE * denominator))


@attrs.define
class Model:
    """What every account must hold, predicted from the commands alone."""

    books: dict[str, RefBook]
    holdings: dict[tuple[int, str], int]  # (actor, asset) -> available + locked
    vault: dict[str, int]
    weights: dict[tuple[int, bool], int]  # (order id, maker) -> cumulative weight × per
    fees: int = 0
    next_id: int = 1

    def held(self, actor: int, asset: str) -> int:
        """Available plus locked."""
        return self.holdings.get((actor, asset), 0)

    def add(self, actor: int, asset: str, amount: int) -> None:
        """Move an actor's holdings."""
        self.holdings[actor, asset] = self.held(actor, asset) + amount

    def locks(self) -> dict[tuple[int, str], int]:
        """What the open orders lock, by (actor, asset)."""
        out: dict[tuple[int, str], int] = {}
        for spec in SPECS:
            for order in self.books[spec.name].orders():
                asset, amount = order_lock(spec, order)
                key = (order.slots[0], asset)
                out[key] = out.get(key, 0) + amount
        return out

    def available(self, actor: int, asset: str) -> int:
        """Holdings not locked by orders."""
        return self.held(actor, asset) - self.locks().get((actor, asset), 0)


def own_terms(spec: Spec, book_side: int, book_price: int, outcome: int) -> tuple[int, int]:
    """(side, price) in the order's own token's terms."""
    return (book_side, book_price) if outcome == YES else (1 - book_side, spec.n - book_price)


def token(spec: Spec, outcome: int) -> str:
    """The share asset of an outcome."""
    return f"{spec.name}-{'Y' if outcome == YES else 'N'}"


def order_lock(spec: Spec, order: OrderState) -> tuple[str, int]:
    """(asset, amount) an open order locks."""
    outcome = order.slots[3]
    side, price = own_terms(spec, order.side, order.price, outcome)
    if side == BUY:
        return USDC, order.remaining * (price * spec.per + lock_fee(spec, price))
    return token(spec, outcome), order.remaining * spec.lot


class Order(NamedTuple):
    """One order of a run, in its own token's terms."""

    actor: int
    spec: Spec
    side: int
    price: int
    size: int
    outcome: int
    tif: int
    post_only: bool
    stp: int


class Fill(NamedTuple):
    """One side of a predicted trade, as the engine's Fill event should report it."""

    order_id: int
    counter_order_id: int
    side: int
    maker: bool
    price: int
    size: int
    fee: int
    outcome: int
    fill_kind: int


def settle(model: Model, spec: Spec, taker: tuple[int, int, int, int], e: Any) -> tuple[list[Fill], str]:
    """Apply one book fill to the model; the two Fill events it must produce and its kind's label."""
    maker_actor, _, _, maker_outcome = e.slots
    price, size = e.price, e.size
    sides = []  # (actor, order id, counter id, own side, own price, outcome, maker)
    for actor, order_id, counter, book_side, outcome, maker in (
        (taker[0], e.order_id, e.maker_id, e.side, taker[3], False),
        (maker_actor, e.maker_id, e.order_id, 1 - e.side, maker_outcome, True),
    ):
        own_side, own_price = own_terms(spec, book_side, price, outcome)
        sides.append((actor, order_id, counter, own_side, own_price, outcome, maker))
    buys = sum(1 for s in sides if s[3] == BUY)
    kind = MINT if buys == 2 else MERGE if buys == 0 else NORMAL
    fills = []
    for actor, order_id, counter, own_side, own_price, outcome, maker in sides:
        notional = own_price * size * spec.per
        shares = size * spec.lot
        if own_side == BUY:
            model.add(actor, USDC, -notional)
            model.add(actor, token(spec, outcome), shares)
            if kind == MINT:
                model.vault[spec.name] += notional
        else:
            model.add(actor, USDC, notional)
            model.add(actor, token(spec, outcome), -shares)
            if kind == MERGE:
                model.vault[spec.name] -= notional
        rate = spec.maker if maker else spec.taker
        before = model.weights.get((order_id, maker), 0)
        after = before + weight(spec, own_price) * size * spec.per
        model.weights[order_id, maker] = after
        fee = fee_total(after, rate, denominator(spec)) - fee_total(before, rate, denominator(spec))
        model.add(actor, USDC, -fee)
        model.fees += fee
        fills.append(Fill(order_id, counter, own_side, maker, own_price, size, fee, outcome, kind))
    label = ("mint", "merge")[kind - 1] if kind else f"normal {'YES' if taker[3] == YES else 'NO'}"
    return fills, label


def predict_place(model: Model, o: Order) -> tuple[str | None, list[Fill], set[str]]:
    """The rejection code (or None), the Fill events and the behaviours an order should produce."""
    spec = o.spec
    if not 0 < o.price < spec.n:
        return "BAD_PRICE", [], set()
    book_side, book_price = (o.side, o.price) if o.outcome == YES else (1 - o.side, spec.n - o.price)
    if o.side == BUY:
        asset, need = USDC, o.size * (o.price * spec.per + lock_fee(spec, o.price))
    else:
        asset, need = token(spec, o.outcome), o.size * spec.lot
    if model.available(o.actor, asset) < need:
        return "INSUFFICIENT_BALANCE", [], {"insufficient balance"}
    events = model.books[spec.name].place(
        model.next_id, OWNER[o.actor], book_side, book_price, o.size, tif=o.tif,
        flags=int(OrderFlag.POST_ONLY) if o.post_only else 0, stp=o.stp, slots=(o.actor, 0, 0, o.outcome),
    )  # fmt: skip
    if events[0].type == EventType.REJECTED:
        return events[0].reason.name, [], {f"book refused: {events[0].reason.name}"}
    model.next_id += 1
    fills: list[Fill] = []
    seen: set[str] = set()
    for e in events:
        if e.type == EventType.FILL:
            more, label = settle(model, spec, (o.actor, book_side, book_price, o.outcome), e)
            fills += more
            seen.add(label)
            if more[0].price != o.price:
                seen.add(f"{'NO' if o.outcome else 'YES'} taker improvement")
            if more[1].fee < 0:
                seen.add("maker rebate")
        elif e.type == EventType.CANCELLED:
            seen.add(f"cancelled: {e.reason.name}")
    seen.add("placed")
    if fills:
        seen.add("filled")
    if model.books[spec.name].order(model.next_id - 1) is not None:
        seen.add("rested")
    return None, fills, seen


def predict_amend(
    model: Model, spec: Spec, actor: int, order_id: int, price: int, size: int
) -> tuple[str | None, list[Fill], set[str]]:
    """An amend to own price `price` and total size `size`: the rejection code (or None), Fill events, behaviours."""
    book = model.books[spec.name]
    order = book.order(order_id)
    if order is None or order.slots[0] != actor:
        return "UNKNOWN_ORDER", [], set()
    outcome = order.slots[3]
    book_price = price if outcome == YES else spec.n - price
    remaining = max(size - (order.size - order.remaining), 0)
    if remaining and not 0 < book_price < spec.n:
        return "BAD_PRICE", [], set()
    old_asset, old_lock = order_lock(spec, order)
    _, new_lock = order_lock(spec, attrs.evolve(order, price=book_price, remaining=remaining))
    if new_lock - old_lock > model.available(actor, old_asset):
        return "INSUFFICIENT_BALANCE", [], {"amend: insufficient balance"}
    events = book.amend(order_id, OWNER[actor], book_price, size)
    if events[0].type == EventType.REJECTED:
        return events[0].reason.name, [], {f"amend refused: {events[0].reason.name}"}
    fills: list[Fill] = []
    seen = {"amend: below filled" if events[0].type == EventType.CANCELLED else "amend"}
    for e in events:
        if e.type == EventType.FILL:
            more, label = settle(model, spec, (actor, order.side, book_price, outcome), e)
            fills += more
            seen.add(f"amend fill: {label}")
    return None, fills, seen


# ---------------------------------------------------------------- the run


class Run:
    """One engine and its model, driven command by command."""

    def __init__(self, manifest: Manifest) -> None:
        """A fresh engine, funded and split as DEPOSITS and SPLITS say, with the same in the model."""
        self.engine = Engine.from_parsed(manifest)
        self.now = 1_000
        self.model = Model({s.name: RefBook() for s in SPECS}, {}, {s.name: 0 for s in SPECS}, {})
        for actor, amount in enumerate(DEPOSITS):
            who = ACTORS[actor]
            self.expect(C.Deposit(actor=Actor(who.address, who.sub, ADMIN), timestamp=self.now, asset=USDC,
                                  amount=amount), None)  # fmt: skip
            self.model.add(actor, USDC, amount)
            for spec in SPECS:
                if SPLITS[actor]:
                    self.split(actor, spec, SPLITS[actor])

    def seed(self, no_first: bool) -> None:
        """Rest both tokens on both sides of every book, a tick either side of the mid (NO or YES queued first)."""
        for spec in SPECS:
            low, high = spec.mid - 1, spec.mid + 1
            yes = ((0, BUY, low, YES), (2, SELL, high, YES))
            no = ((2, BUY, spec.n - high, NO), (0, SELL, spec.n - low, NO))
            for actor, side, price, outcome in (*no, *yes) if no_first else (*yes, *no):
                assert self.place(Order(actor, spec, side, price, 6, outcome, GTC, False, 0)) == {"placed", "rested"}

    def expect(self, command: C.Command, code: str | None, fills: list[Fill] | None = None) -> list[E.Event]:
        """Submit; assert the rejection code (or acceptance) and the Fill events."""
        events = self.engine.submit(command)
        done = events[-1]
        assert isinstance(done, E.CommandDone)
        got = [e.code for e in events if isinstance(e, E.Rejected)]
        assert got == ([code] if code else []), (command, events)
        actual = [
            Fill(f.order_id, f.counter_order_id, f.side, f.maker, f.price, f.size, f.fee, f.outcome, f.fill_kind)
            for f in events
            if isinstance(f, E.Fill)
        ]
        assert actual == (fills or []), (command, actual, fills)
        assert all(f.fee_asset == USDC for f in events if isinstance(f, E.Fill))
        return events

    def split(self, actor: int, spec: Spec, lots: int) -> None:
        """Split `lots` (refused unless the actor has the collateral available)."""
        amount = lots * spec.lot
        ok = self.model.available(actor, USDC) >= amount
        command = C.MarketAction(actor=ACTORS[actor], timestamp=self.now, market=spec.name, action="split",
                                 args={"size": lots})  # fmt: skip
        self.expect(command, None if ok else "INSUFFICIENT_BALANCE")
        if ok:
            self.model.add(actor, USDC, -amount)
            self.model.add(actor, token(spec, YES), amount)
            self.model.add(actor, token(spec, NO), amount)
            self.model.vault[spec.name] += amount

    def merge(self, actor: int, spec: Spec, lots: int) -> None:
        """Merge `lots` full sets back into collateral (refused unless both shares are available)."""
        amount = lots * spec.lot
        ok = all(self.model.available(actor, token(spec, o)) >= amount for o in (YES, NO))
        command = C.MarketAction(actor=ACTORS[actor], timestamp=self.now, market=spec.name, action="merge",
                                 args={"size": lots})  # fmt: skip
        self.expect(command, None if ok else "INSUFFICIENT_BALANCE")
        if ok:
            self.model.add(actor, USDC, amount)
            self.model.add(actor, token(spec, YES), -amount)
            self.model.add(actor, token(spec, NO), -amount)
            self.model.vault[spec.name] -= amount

    def place(self, o: Order) -> set[str]:
        """Place an order; the behaviours it exercised."""
        code, fills, seen = predict_place(self.model, o)
        command = C.PlaceOrder(actor=ACTORS[o.actor], timestamp=self.now, market=o.spec.name, side=o.side,
                               price=o.price, size=o.size, tif=o.tif, post_only=o.post_only, stp=o.stp,
                               outcome=o.outcome)  # fmt: skip
        self.expect(command, code, fills)
        return seen

    def cancel(self, actor: int, spec: Spec, order_id: int) -> None:
        """Cancel by id: accepted only for the actor's own open order."""
        book = self.model.books[spec.name]
        order = book.order(order_id)
        ok = order is not None and order.slots[0] == actor
        command = C.CancelOrder(actor=ACTORS[actor], timestamp=self.now, market=spec.name, order_id=order_id)
        self.expect(command, None if ok else "UNKNOWN_ORDER")
        if ok:
            book.cancel(order_id)

    def amend(self, actor: int, spec: Spec, order_id: int, price: int, size: int) -> set[str]:
        """Amend an order's price (its own token's terms) and total size; the behaviours it exercised."""
        code, fills, seen = predict_amend(self.model, spec, actor, order_id, price, size)
        command = C.AmendOrder(actor=ACTORS[actor], timestamp=self.now, market=spec.name, order_id=order_id,
                               price=price, size=size)  # fmt: skip
        self.expect(command, code, fills)
        return seen

    def check(self) -> None:
        """The engine's invariants; every balance, the books, the vaults and the fee account equal the model."""
        engine, model = self.engine, self.model
        engine.check_invariants()
        assets = [USDC, *(token(s, o) for s in SPECS for o in (YES, NO))]
        locks = model.locks()
        for actor, who in enumerate(ACTORS):
            balances = engine.balances(who.address, who.sub)
            for asset in assets:
                locked = locks.get((actor, asset), 0)
                want = (model.held(actor, asset) - locked, locked)
                assert balances[asset] == want, (actor, asset, balances[asset], want)
        for spec in SPECS:
            ours = [(o.order_id, o.side, o.price, o.remaining, o.slots[3]) for o in model.books[spec.name].orders()]
            theirs = [(o.order_id, o.side, o.price, o.remaining, o.slots[3])
                      for o in engine.market_state(spec.name).book.orders()]  # fmt: skip
            assert theirs == ours, spec.name
            vault = sum(engine.balances(vault_address(spec.name), 0)[USDC])
            assert vault == model.vault[spec.name], (spec.name, vault, model.vault)
            supplies = [sum(model.held(a, token(spec, o)) for a in range(len(ACTORS))) for o in (YES, NO)]
            assert supplies == [vault, vault], (spec.name, supplies, vault)
        assert engine.balances(FEE_ADDRESS, 0)[USDC] == (model.fees, 0)
        usdc = engine.ledger.asset_ids[USDC]
        assert sum(engine.ledger.available[usdc]) + sum(engine.ledger.locked[usdc]) == sum(DEPOSITS)


@st.composite
def orders(draw: st.DrawFn, books: dict[str, RefBook]) -> Order:
    """An order on either token near the market's mid or crossing the book's best price, sometimes off the unit."""
    spec = draw(st.sampled_from((SPECS[0], SPECS[0], SPECS[1], SPECS[2])))
    outcome = draw(st.sampled_from((YES, NO)))
    side = draw(st.sampled_from((BUY, SELL)))
    book_side = side if outcome == YES else 1 - side
    book = books[spec.name]
    best = book.best_ask() if book_side == BUY else book.best_bid()
    style = draw(st.integers(0, 19))
    if style == 0:
        price = draw(st.sampled_from((1, spec.n - 1, 0, spec.n)))
    elif style < 12 and best is not None:  # marketable: at or through the best opposite price
        through = draw(st.integers(0, 2))
        book_price = min(max(best[0] + (through if book_side == BUY else -through), 1), spec.n - 1)
        price = book_price if outcome == YES else spec.n - book_price
    else:
        mid = spec.mid if outcome == YES else spec.n - spec.mid
        spread = max(spec.n // 50, 2)
        price = draw(st.integers(mid - spread, mid + spread))
    size = draw(st.sampled_from((15, 5_000)) if draw(st.integers(0, 9)) == 0 else st.integers(1, 4))
    kind = draw(st.sampled_from(("gtc", "gtc", "gtc", "ioc", "fok", "post")))
    tif = {"gtc": GTC, "post": GTC, "ioc": IOC, "fok": FOK}[kind]
    stp = draw(st.sampled_from((0, 1))) if tif == FOK else draw(st.sampled_from((0, 0, 1, 2)))
    actor = draw(st.sampled_from((0, 1, 2, 2, 0, 3)))
    return Order(actor, spec, side, price, size, outcome, tif, kind == "post", stp)


@st.composite
def amends(draw: st.DrawFn, model: Model) -> tuple[int, Spec, int, int, int]:
    """(actor, market, order id, own price, total size): mostly its owner's, a new price near it, any size."""
    spec = draw(st.sampled_from(SPECS))
    open_orders = model.books[spec.name].orders()
    if not open_orders:
        return draw(st.integers(0, len(ACTORS) - 1)), spec, model.next_id, spec.mid, 1
    order = draw(st.sampled_from(open_orders))
    actor = order.slots[0] if draw(st.integers(0, 5)) else draw(st.integers(0, len(ACTORS) - 1))
    own = order.price if order.slots[3] == YES else spec.n - order.price
    # in range only: an amend below the filled size to a price off the unit stops the engine (see the xfail test)
    price = min(max(own + draw(st.integers(-3, 3)), 1), spec.n - 1)
    size = draw(st.integers(1, order.size + 3))
    return actor, spec, order.order_id, price, size


def test_matching_agrees_with_the_reference_model(pm: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random orders on both tokens of three markets: fills, balances, books, vaults and fees equal the model."""
    tables = [pm.market(name, tick=tick, lot=lot, fee_model=model, maker_bps=maker, taker_bps=taker)
              for name, tick, lot, model, maker, taker in TABLES]  # fmt: skip
    manifest = pm.parsed_manifest(tmp_path_factory.mktemp("matching"), tables, spot=True)
    counts: Counter[str] = Counter()

    @given(st.data())
    def scenario(data: st.DataObject) -> None:
        run = Run(manifest)
        run.seed(data.draw(st.booleans(), label="NO orders first"))
        run.check()
        for _ in range(data.draw(st.integers(5, 40), label="steps")):
            run.now += data.draw(st.integers(0, 1))
            roll = data.draw(st.integers(0, 21))
            if roll < 15:
                seen = run.place(data.draw(orders(run.model.books)))
            elif roll >= 20:
                seen = run.amend(*data.draw(amends(run.model)))
            elif roll < 18:
                spec = data.draw(st.sampled_from(SPECS))
                open_ids = [o.order_id for o in run.model.books[spec.name].orders()]
                target = data.draw(st.sampled_from(open_ids)) if open_ids else run.model.next_id
                run.cancel(data.draw(st.integers(0, len(ACTORS) - 1)), spec, target)
                seen = {"cancel"}
            else:
                actor, spec = data.draw(st.integers(0, len(ACTORS) - 1)), data.draw(st.sampled_from(SPECS))
                lots = data.draw(st.integers(1, 12))
                (run.split if roll == 18 else run.merge)(actor, spec, lots)
                seen = {"split" if roll == 18 else "merge action"}
            run.check()
            for name in seen:
                event(name)
                counts[name] += 1

    scenario()
    floor = settings().max_examples * 2 // 5  # 200 in the ci profile, whose run gives each kind 500 or more
    missing = {name: counts[name] for name in KINDS if counts[name] < floor}
    assert not missing, f"fill kinds below {floor} occurrences this run: {missing} (all: {dict(counts)})"
    print(f"\nfill kinds: {', '.join(f'{k} {counts[k]}' for k in KINDS)}; other: {dict(counts)}")
