"""Liquidation: the at-risk index and the waterfall, derived inside the command that moved a price.

**When.** After an oracle update moves a mark (or a collateral's price), and at the end of any command
that flagged an account (a fill far from mark, a funding payment), the engine runs one pass. A pass
evaluates only the accounts a move can reach: per margined market, accounts are indexed by the mark
at which their maintenance buffer would be gone (their *trigger*), longs and shorts apart; per
collateral asset, by the oracle price at which it would be. A buffer is shared evenly among an
account's exposures, so a move that reaches no trigger cannot put the account under water, whatever
the other prices do. Accounts whose equity may have shrunk without a price move (a fill, a fee, a
funding payment, a withdrawal) are *dirty* and evaluated at the next pass. So a pass costs the
accounts at risk, not all accounts.

**Order.** Candidates are evaluated in account-index order, in phases: accounts a liquidation touches
(counterparties, the backstop, the insurance fund) are evaluated in the next phase, and one touched
before its turn in a phase waits for the next. Evaluating a safe, untouched account changes nothing,
so the outcome does not depend on how conservative the index was: a restored engine, which
evaluates every exposed account in the first phase, liquidates exactly the same accounts in the same
order. A counterparty touched by a thousand ADLs is evaluated once per phase, not a thousand times.

**Waterfall** for an account whose equity is below its maintenance margin (cross: per risk group;
isolated: per position), stopping as soon as it is healthy again:

1. cancel all its orders (their margin and locks come back);
2. close positions into the book (IOC, reduce-only, no fee) at a limit of its bankruptcy price, so the
   book never makes the account negative; a position larger than the market's `partial_notional`,
   while equity is at least 2/3 of maintenance, closes only `partial_bps` of itself, then a cooldown
   (`cooldown_ms`) during which it closes whole (below 2/3, as Hyperliquid's backstop does, it is whole);
3. sell collateral through its spot market (cross only, while it owes the settlement asset), at no
   less than the haircut value it counted for;
4. the group's **backstop** account takes what is left at the bankruptcy price, while its notional stays
   within the group's `backstop_cap` and its own equity covers its maintenance margin;
5. the group's **insurance fund** account takes what is left at the bankruptcy price, while its equity
   covers its maintenance margin;
6. **ADL**: the rest closes against opposite positions ranked by PnL% × effective leverage (highest
   first, ties by account index) at the bankruptcy price.

An account left with no position but negative equity (collateral that fell through its haircut with
no buyer) is made whole by the insurance fund as far as it can (else a `bad_debt` event). Nothing here
reads a clock: every step is a function of the state and the command.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import structlog
from sortedcontainers import SortedList  # type: ignore[import-untyped]

from exos.events import Cause, EventKind

if TYPE_CHECKING:
    from exos.engine import MarketState
    from exos.events import RawEvent
    from exos.margin import RiskGroup, UnifiedMargin

log = structlog.get_logger(__name__)

_LIQUIDATION = int(Cause.LIQUIDATION)
_MARKET_EVENT = int(EventKind.MARKET_EVENT)
_PPM: Final = 1_000_000
_BPS: Final = 10_000


class Liquidator:
    """The at-risk index and the liquidation waterfall of one engine's unified margin."""

    def __init__(self, margin: UnifiedMargin) -> None:
        """An empty index over `margin`'s markets and collateral."""
        self.margin = margin
        self.engine = margin.engine
        self.dirty: dict[int, None] = {}  # accounts to evaluate at the next pass (insertion order is irrelevant)
        self.urgent: dict[int, None] = {}  # accounts to evaluate before this command ends
        self.longs: dict[int, SortedList] = {}  # market index -> (trigger mark, account): hit when mark <= trigger
        self.shorts: dict[int, SortedList] = {}  # market index -> (trigger mark, account): hit when mark >= trigger
        self.by_collateral: dict[int, SortedList] = {}  # collateral asset -> (trigger price, account)
        self.entries: dict[int, list[tuple[SortedList, tuple[int, int]]]] = {}
        self.evaluated = 0  # accounts evaluated by the last pass (the scaling test reads it)
        self.passes = 0
        self._rankings: dict[tuple[int, bool], _Ranking] = {}  # ADL order per (market, side), for one pass

    def add_market(self, ms: MarketState) -> None:
        """Index a newly listed margined market."""
        self.longs[ms.index] = SortedList()
        self.shorts[ms.index] = SortedList()

    def reset(self) -> None:
        """Forget the index (after a state load: every exposed account is dirty again)."""
        for index in self.longs:
            self.longs[index] = SortedList()
            self.shorts[index] = SortedList()
        self.by_collateral = {}
        self.entries = {}
        self.dirty = {}
        self.urgent = {}

    # ------------------------------------------------------------ the pass

    def run(self, seq: int, base: int, out: list[RawEvent], markets: list[Any], collateral: list[Any]) -> None:
        """One pass: evaluate the accounts the moved prices reach, the dirty ones, and whoever a liquidation touches."""
        candidates: set[int] = set(self.dirty)
        candidates.update(self.urgent)
        self.dirty.clear()
        self.urgent.clear()
        for ms in markets:
            mark = ms.market.mark
            if mark is None:
                continue
            candidates.update(account for _, account in self.longs[ms.index].irange((mark, -1), None))
            candidates.update(account for _, account in self.shorts[ms.index].irange(None, (mark, 2**63)))
        for c in collateral:
            index = self.by_collateral.get(c.asset)
            if index is not None and c.oracle is not None:
                candidates.update(account for _, account in index.irange((c.oracle, -1), None))
        self._rankings = {}
        phase = sorted(candidates)
        evaluated = 0
        while phase:
            for account in phase:
                if account in self.dirty or account in self.urgent:
                    continue  # touched earlier in this phase: the next phase evaluates it, as a restored engine does
                evaluated += 1
                self._evaluate(account, seq, base, out)
            phase = sorted(self.dirty.keys() | self.urgent.keys())
            self.dirty.clear()
            self.urgent.clear()
        self.evaluated = evaluated
        self.passes += 1
        self._rankings = {}

    def _evaluate(self, account: int, seq: int, base: int, out: list[RawEvent]) -> None:
        """Liquidate what of the account is below maintenance, then re-index it on what is left."""
        self._unindex(account)
        margin = self.margin
        if account in margin.venue_accounts:
            self.dirty.pop(account, None)
            self.urgent.pop(account, None)
            return
        buffers: list[tuple[RiskGroup, int]] = []
        for group in list(margin.groups_of(account)):
            equity, mm = margin.maintenance(account, group.asset)
            if equity < mm:
                self._liquidate_cross(account, group, equity, mm, seq, base, out)
                equity, mm = margin.maintenance(account, group.asset)
            buffers.append((group, equity - mm))
        for market in list(margin.positions.get(account, ())):
            terms = market.isolated_terms(account)
            if terms is not None and terms[0] < terms[2]:
                ms = self.engine.markets[market.market_id]
                self._liquidate_isolated(account, ms, terms, seq, base, out)
        self.dirty.pop(account, None)
        self.urgent.pop(account, None)
        self._index(account, buffers)

    # ------------------------------------------------------------ the index

    def _unindex(self, account: int) -> None:
        """Remove an account's triggers."""
        for index, key in self.entries.pop(account, ()):
            index.remove(key)

    def _index(self, account: int, buffers: list[tuple[RiskGroup, int]]) -> None:
        """Insert the account's triggers: each group's buffer over maintenance, shared evenly among its exposures."""
        margin = self.margin
        entries: list[tuple[SortedList, tuple[int, int]]] = []
        ledger = self.engine.ledger
        held = margin.positions.get(account, ())
        for group, buffer in buffers:
            # an account still under maintenance (a partial liquidation, a cooldown) is hit by any adverse move
            buffer = max(buffer, 0)
            exposures: list[tuple[Any, int]] = []
            for market in held:
                if market.settlement == group.asset and market.maintenance_terms(account) is not None:
                    exposures.append((market, market.size_of(account)))
            for c in group.collateral:
                units = ledger.available[c.asset][account] + ledger.locked[c.asset][account]
                if c.num and units > 0 and c.oracle is not None:
                    exposures.append((c, units))
            if not exposures:
                continue
            share = buffer // len(exposures)
            for exposure, amount in exposures:
                entries.append(self._trigger(exposure, amount, share, account))
        for market in held:
            terms = market.isolated_terms(account)
            if terms is not None:
                entries.append(self._trigger(market, market.size_of(account), max(terms[0] - terms[2], 0), account))
        for index, key in entries:
            index.add(key)
        if entries:
            self.entries[account] = entries

    def _trigger(self, exposure: Any, amount: int, share: int, account: int) -> tuple[SortedList, tuple[int, int]]:
        """(index, key) for one exposure whose adverse move may cost at most `share` before it is re-checked."""
        from exos.margin import Collateral

        if isinstance(exposure, Collateral):
            # value = units × price × scale × (1 − haircut): per unit of feed price it moves by at most `slope`
            slope = -(-amount * exposure.scale_num * (_BPS - exposure.haircut_bps) // (exposure.scale_den * _BPS))
            distance = share // max(slope, 1)
            oracle = exposure.oracle
            assert oracle is not None  # only priced collateral is indexed
            return self.by_collateral.setdefault(exposure.asset, SortedList()), (oracle - distance, account)
        market = exposure
        # equity moves by |size| × q per tick, maintenance by at most mmr of that: the buffer's slope per tick
        slope = -(-abs(amount) * market.q * (_PPM + market.mm_ppm_max) // _PPM)
        distance = share // max(slope, 1)
        mark: int = market.mark
        if amount > 0:
            return self.longs[market.market_id], (mark - distance, account)
        return self.shorts[market.market_id], (mark + distance, account)

    # ------------------------------------------------------------ the waterfall

    def _event(self, out: list[RawEvent], seq: int, base: int, market: str, name: str, account: int,
               **fields: str | int | bool | _Raw) -> None:  # fmt: skip
        """A liquidation event (cause liquidation) about `account`; its detail is canonical JSON (sorted keys).

        Built by hand: the values are ints, bools and strings that need no escaping (hex addresses,
        decimal amounts, asset symbols), and a thousand liquidations make several thousand events."""
        address, sub = self.engine.ledger.accounts[account]
        fields["address"] = "0x" + address.hex()
        fields["sub"] = sub
        parts = []
        for key in sorted(fields):
            value = fields[key]
            if type(value) is str:
                parts.append(f'"{key}":"{value}"')
            elif type(value) is bool:
                parts.append(f'"{key}":{"true" if value else "false"}')
            else:  # an int, or a _Raw (JSON already)
                parts.append(f'"{key}":{value}')
        out.append((seq, len(out) - base, _LIQUIDATION, _MARKET_EVENT, market, name, "{" + ",".join(parts) + "}"))

    def _who(self, account: int) -> _Raw:
        """An account as JSON: its address and sub-account (the ADL counterparty in an event's detail)."""
        address, sub = self.engine.ledger.accounts[account]
        return _Raw(f'{{"address":"0x{address.hex()}","sub":{sub}}}')

    def _liquidate_cross(
        self, account: int, group: RiskGroup, equity: int, mm: int, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        """The waterfall over an account's cross holdings in one risk group."""
        engine = self.engine
        margin = self.margin
        self._event(out, seq, base, "", "exos.liquidation.started", account, group=group.symbol, equity=str(equity),
                    maintenance=str(mm))  # fmt: skip
        if engine.cancel_account_orders(account, seq, base, out, _LIQUIDATION):
            equity, mm = margin.maintenance(account, group.asset)
            if equity >= mm:
                return
        targets: list[tuple[MarketState, int]] = []  # (market, lots still to close: signed like the position)
        for market in list(margin.positions.get(account, ())):
            if market.settlement != group.asset or market.maintenance_terms(account) is None:
                continue
            ms = engine.markets[market.market_id]
            lots = self._lots_to_close(market, account, equity, mm)
            filled = self._into_book(account, ms, lots, equity, seq, base, out)
            targets.append((ms, lots - filled))
            if filled:
                equity, mm = margin.maintenance(account, group.asset)
                if equity >= mm:
                    return
        if engine.ledger.available[group.asset][account] < 0:
            self._sell_collateral(account, group, seq, base, out)
            equity, mm = margin.maintenance(account, group.asset)
            if equity >= mm:
                return
        for ms, lots in targets:
            size = margin_market(ms).size_of(account)
            lots = lots if abs(lots) <= abs(size) and (lots > 0) == (size > 0) else size
            if lots:
                self._transfer_remainder(account, ms, lots, equity, group, seq, base, out)
                equity, mm = margin.maintenance(account, group.asset)
            if equity >= mm:
                return
        if equity < 0 and not any(m.settlement == group.asset for m in margin.positions.get(account, ())):
            self._cover_deficit(account, group, -equity, seq, base, out)

    def _liquidate_isolated(
        self, account: int, ms: MarketState, terms: tuple[int, int, int, int], seq: int, base: int,
        out: list[RawEvent],
    ) -> None:  # fmt: skip
        """The waterfall over one isolated position (its own margin only; never the account's other funds)."""
        engine = self.engine
        market: Any = ms.market
        equity = terms[0]
        group = self.margin.groups[market.settlement]
        self._event(out, seq, base, ms.name, "exos.liquidation.started", account, group=group.symbol, isolated=True,
                    equity=str(equity), maintenance=str(terms[2]))  # fmt: skip
        engine.cancel_market_account_orders(ms, account, seq, base, out, _LIQUIDATION, "liquidation")
        lots = self._lots_to_close(market, account, equity, terms[2])
        filled = self._into_book(account, ms, lots, equity, seq, base, out)
        terms_now = market.isolated_terms(account)
        if terms_now is None or terms_now[0] >= terms_now[2]:
            return
        remainder = lots - filled
        size = market.size_of(account)
        if remainder and (remainder > 0) == (size > 0):
            remainder = remainder if abs(remainder) <= abs(size) else size
            self._transfer_remainder(account, ms, remainder, terms_now[0], group, seq, base, out)

    def _lots_to_close(self, market: Any, account: int, equity: int, mm: int) -> int:
        """Lots (signed like the position) to close into the book: a `partial_bps` slice where allowed, else all.

        A slice is allowed at equity of at least 2/3 of maintenance when the market's partial rule
        (size, cooldown) applies, and it starts the position's cooldown."""
        size: int = market.size_of(account)
        lots = abs(size)
        now = self.engine.last_timestamp
        if 3 * equity >= 2 * mm and market.partial_applies(account, size, now):
            lots = max(1, -(-lots * market.partial_bps // _BPS))
            market.start_cooldown(account, now)
        return lots if size > 0 else -lots

    def _bankruptcy(self, market: Any, account: int, equity: int) -> int:
        """The account's whole position's bankruptcy price at `equity`, at least one tick."""
        return max(self.bankruptcy_price(market.mark, equity, market.size_of(account), market.q), 1)

    @staticmethod
    def bankruptcy_price(mark: int, equity: int, lots: int, q: int) -> int:
        """The price at which closing a position of `lots` (signed) leaves equity at zero, rounded for the account.

        Closing x lots of a long at p changes equity by x·(p − mark)·q, so p = mark − equity / (x·q),
        rounded up for a long (it sells) and down for a short (it buys). Closing only a fraction f of
        the position there leaves (1 − f) of the equity."""
        if lots > 0:
            return mark - (equity // (lots * q))  # ceil(mark − e/(x q)) = mark − floor(e/(x q))
        return mark + (equity // (-lots * q))

    def _into_book(
        self, account: int, ms: MarketState, lots: int, equity: int, seq: int, base: int, out: list[RawEvent]
    ) -> int:
        """Close `lots` (signed like the position) into the book, no worse than the bankruptcy price; lots filled."""
        market: Any = ms.market
        # the whole position's bankruptcy price: closing a fraction f there leaves (1 − f) of the equity
        limit = self._bankruptcy(market, account, equity)
        side = 1 if lots > 0 else 0  # a long sells, a short buys
        filled = self.engine.system_order(ms, account, side, limit, abs(lots), seq, base, out, _LIQUIDATION)
        self._event(out, seq, base, ms.name, "exos.liquidation.book", account, size=str(abs(lots)), filled=str(filled),
                    limit=str(limit))  # fmt: skip
        return filled if lots > 0 else -filled

    def _sell_collateral(self, account: int, group: RiskGroup, seq: int, base: int, out: list[RawEvent]) -> None:
        """Sell collateral through its spot market, at no less than what it counted for, while the account owes."""
        engine = self.engine
        ledger = engine.ledger
        for c in group.collateral:
            debt = -ledger.available[group.asset][account]
            if debt <= 0:
                return
            units = ledger.available[c.asset][account]
            if c.spot is None or not c.num or units <= 0:
                continue
            ms = engine.markets[c.spot]
            lot_units, q = ms.info.lot_units, ms.info.quote_per_tick_lot
            rate = max(getattr(getattr(ms.market, "fees", None), "taker_centibps", 0), 0)
            # a lot counts for lot_units × num / den; after the taker fee the sale must bring at least that
            per_lot = -(-lot_units * c.num // c.den)
            limit = -(-per_lot * _PPM // ((_PPM - rate) * q)) + 1
            lots = min(units // lot_units, -(-debt // max(limit * q, 1)) + 1)
            if lots <= 0:
                continue
            sold = engine.system_order(ms, account, 1, limit, lots, seq, base, out, _LIQUIDATION)
            symbol = ledger.assets[c.asset].symbol
            self._event(out, seq, base, ms.name, "exos.liquidation.collateral", account, asset=symbol, size=str(lots),
                        sold=str(sold), limit=str(limit))  # fmt: skip

    def _transfer_remainder(
        self, account: int, ms: MarketState, lots: int, equity: int, group: RiskGroup, seq: int, base: int,
        out: list[RawEvent],
    ) -> None:  # fmt: skip
        """Backstop, then insurance fund, then ADL take `lots` (signed like the position) at the bankruptcy price."""
        market: Any = ms.market
        price = self._bankruptcy(market, account, equity)
        remaining = lots
        for taker, name, cap in ((group.backstop, "exos.liquidation.backstop", group.backstop_cap),
                                 (group.insurance, "exos.liquidation.insurance", None)):  # fmt: skip
            if not remaining or (cap is not None and cap <= 0):
                continue
            take = self._capacity(taker, ms, remaining, price, group, cap)
            if take:
                market.transfer(self.engine.ledger_ops, account, taker, take, price)
                self.margin.touched(taker)
                self._event(out, seq, base, ms.name, name, account, size=str(abs(take)), price=str(price))
                remaining -= take
        if remaining:
            self._adl(account, ms, remaining, price, seq, base, out)
        self.engine.reclip(ms, seq, base, out, _LIQUIDATION)

    def _capacity(self, taker: int, ms: MarketState, lots: int, price: int, group: RiskGroup, cap: int | None) -> int:
        """How many of `lots` (signed) the backstop or insurance account can take at `price` within its limits."""
        market: Any = ms.market
        margin = self.margin
        q, mark = market.q, market.mark
        equity, mm = margin.maintenance(taker, group.asset)
        room = equity - mm
        if room < 0:
            return 0
        per_lot_gain = (mark - price) * q if lots > 0 else (price - mark) * q  # the taker buys a long at price
        per_lot_mm = -(-mark * q * market.mm_ppm_max // _PPM)
        most = abs(lots)
        if per_lot_gain < per_lot_mm:
            most = min(most, room // (per_lot_mm - per_lot_gain))
        if cap is not None:
            notional = sum(m.notional_of(taker) for m in margin.positions.get(taker, ()) if m.settlement == group.asset)
            most = min(most, max(cap - notional, 0) // max(mark * q, 1))
        return most if lots > 0 else -most

    def _adl(
        self, account: int, ms: MarketState, lots: int, price: int, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        """Close `lots` (signed like the account's position) against opposite positions, best ranked first.

        The ranking is computed once per pass and side (as Hyperliquid ranks once per event) and walked
        with the positions as they are now; if it runs dry, it is computed again."""
        market: Any = ms.market
        margin = self.margin
        remaining = lots
        for attempt in range(2):
            for counter in self._ranking(market, lots > 0, fresh=attempt > 0):
                if not remaining:
                    return
                size = market.size_of(counter)
                if counter == account or size == 0 or (size > 0) == (lots > 0):
                    continue
                take = min(abs(remaining), abs(size))
                take = take if lots > 0 else -take
                # the account hands `take` over; the counterparty's opposite position shrinks by as much
                market.transfer(self.engine.ledger_ops, account, counter, take, price)
                margin.touched(counter)
                self._event(out, seq, base, ms.name, "exos.liquidation.adl", account, counterparty=self._who(counter),
                            size=str(abs(take)), price=str(price))  # fmt: skip
                remaining -= take
            if not remaining:
                return

    def _ranking(self, market: Any, against_longs: bool, *, fresh: bool) -> _Ranking:
        """Holders opposite a liquidated long (shorts) or short (longs), in ADL order, computed once per pass."""
        key = (market.market_id, against_longs)
        ranked = None if fresh else self._rankings.get(key)
        if ranked is None:
            ranked = self._rankings[key] = _Ranking(self.adl_scores(market, not against_longs))
        return ranked

    def adl_scores(self, market: Any, longs: bool) -> list[tuple[int, int]]:
        """(−score, account) of every long (or short) in `market`, in no order, where score = PnL% × effective
        leverage as a fixed-point integer: uPnL/|entry notional| × notional/equity (the ADL ranking's key)."""
        margin = self.margin
        asset = market.settlement
        group = margin.groups[asset]
        held = margin.positions
        ledger = self.engine.ledger
        available, locked = ledger.available[asset], ledger.locked[asset]
        # `values` of a group holding nothing but its settlement asset is the balance: read it directly, per holder
        settlement_only = not group.collateral and not margin.share_sources
        values = margin.values
        scores = []
        for account, upnl, notional, basis, isolated in market.adl_inputs(longs):
            if isolated is not None:
                equity = isolated
            elif len(held[account]) == 1:  # its only position is this cross one: equity needs no other market
                balance = available[account] + locked[account] if settlement_only else values(account, group, True)
                equity = balance + upnl
            else:
                equity = margin.equity(account, asset)
            # upnl × notional × 2^64 // (max(basis, 1) × max(equity, 1)), without two calls per holder
            scores.append((-((upnl * notional << 64) // ((basis or 1) * (equity if equity > 0 else 1))), account))
        return scores

    def _cover_deficit(
        self, account: int, group: RiskGroup, deficit: int, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        """An account with no position left and equity below zero: the insurance fund pays, as far as it is free.

        What it cannot pay is the venue's loss: the group's bad-debt account takes over the account's
        collateral and what it still owes, so no trader is left below zero (collateral that fell through
        its haircut with no buyer)."""
        margin = self.margin
        ledger = self.engine.ledger
        asset = group.asset
        equity, mm = margin.maintenance(group.insurance, asset)
        paid = max(0, min(deficit, equity - mm, ledger.available[asset][group.insurance]))
        if paid:
            ledger.move_available(group.insurance, asset, paid, account)
            margin.touched(group.insurance)
            self._event(out, seq, base, "", "exos.liquidation.insurance_cover", account, group=group.symbol,
                        amount=str(paid))  # fmt: skip
        if paid >= deficit:
            return
        for c in group.collateral:
            units = ledger.available[c.asset][account]
            if units > 0:
                ledger.move_available(account, c.asset, units, group.bad_debt)
        owed = -ledger.available[asset][account]
        if owed > 0:
            ledger.move_available(group.bad_debt, asset, owed, account)
        log.warning("exos.liquidation.bad_debt", account=account, group=group.symbol, amount=deficit - paid)
        self._event(out, seq, base, "", "exos.liquidation.bad_debt", account, group=group.symbol,
                    amount=str(deficit - paid))  # fmt: skip


class _Ranking:
    """ADL order over (−score, account) keys: a heap popped only as far as the walks go (an ADL event takes the
    first few of many holders, so sorting them all would be wasted), the popped prefix kept for the next walk."""

    __slots__ = ("_heap", "_order")

    def __init__(self, scored: list[tuple[int, int]]) -> None:
        """Order `scored` (consumed: it becomes the heap)."""
        heapq.heapify(scored)
        self._heap = scored
        self._order: list[int] = []

    def __iter__(self) -> Iterator[int]:
        """Accounts best first, from the start."""
        order, heap = self._order, self._heap
        index = 0
        while True:
            if index == len(order):
                if not heap:
                    return
                order.append(heapq.heappop(heap)[1])
            yield order[index]
            index += 1


class _Raw:
    """A JSON fragment an event's detail embeds as it is (an account object)."""

    __slots__ = ("json",)

    def __init__(self, json: str) -> None:
        self.json = json

    def __str__(self) -> str:
        return self.json


def margin_market(ms: MarketState) -> Any:
    """A margined market's object (the `MarginedMarket` the state holds)."""
    return ms.market
