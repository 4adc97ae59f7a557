"""Outcome events: a standalone binary market, or a neg-risk set of binary markets of which one wins.

Every binary market belongs to an event, which holds the collateral (its vault account), the
lifecycle and the resolution. A standalone market is an event of one market: its vault holds
exactly its YES supply, which equals its NO supply. A neg-risk event of k markets has one vault, and
for every possible winner w the vault equals YES_w + Σ_{i≠w} NO_i: what a resolution for w pays.
Split, merge, mint, merge-by-matching and conversion all move every one of those k sums and the vault
by the same amount, so the equality holds after each of them (checked after every command in tests).

Conversion (neg-risk): s NO shares in each of m markets become s YES shares in each of the other
k - m markets plus (m - 1)·s collateral from the vault.

Lifecycle: scheduled → open ⇄ paused → closed → (proposed → disputed) → resolved → settled, or void.
At `close_at` (kickoff) the books are wiped and trading stops, unless `in_play` keeps them open
until the admin closes; in play, an order that would trade at once waits `taker_delay_ms` first (the
engine holds it, funds locked, then matches it against the book as it is then), so a trader watching
the match cannot pick off quotes before the makers can react. `postpone` moves the kickoff; `cancel`
voids. Resolution actions come once trading has closed; the final outcome pays every holder
automatically: YES, NO, half (50/50) or void. A void standalone market pays half a unit per share;
a void neg-risk event of k markets pays 1/k per YES share and (k-1)/k per NO share, which spends the
vault exactly. Payouts round down per holder; the few units of rounding go to the venue's fee
account, so the vault always ends at zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from exos.commands import canonical_json
from exos.protocols import MarketContext, OrderRejection

if TYPE_CHECKING:
    from exos_prediction.market import BinaryMarket
    from exos_prediction.resolution import Resolver

PHASES = ("scheduled", "open", "paused", "closed", "proposed", "disputed", "resolved", "settled", "void")
ENGINE_STATUS = {
    "scheduled": "halted", "open": "open", "paused": "cancel_only", "closed": "halted", "proposed": "halted",
    "disputed": "halted", "resolved": "halted", "settled": "settled", "void": "settled",
}  # fmt: skip
TRADING_DONE = ("closed", "proposed", "disputed")
FINAL = ("resolved", "settled", "void")
CLOSE_TIMER, RESOLVER_TIMER, OPEN_TIMER = 1, 2, 3
ADMIN_ACTIONS = ("open", "pause", "resume", "close", "postpone", "cancel")
RESOLUTION_ACTIONS = ("vote", "propose", "dispute")
BINARY_OUTCOMES = ("yes", "no", "half", "void")


def _lots(args: Mapping[str, Any], event: str) -> int:
    """The `size` argument: a positive number of lots."""
    size = args.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size < 2**62:
        raise OrderRejection("BAD_SIZE", f"{event}: size must be a positive number of lots, got {size!r}")
    return size


def _who(ctx: MarketContext, account: int) -> dict[str, Any]:
    """An account as events name it: its address and sub-account."""
    address, sub = ctx.address(account)
    return {"address": "0x" + address.hex(), "sub": sub}


class OutcomeEvent:
    """One event's members, vault, lifecycle and resolver."""

    def __init__(self, name: str, size: int, neg_risk: bool, resolver: Resolver, params: Mapping[str, Any]) -> None:
        """An event with no member listed yet."""
        self.name = name
        self.size = size
        self.neg_risk = neg_risk
        self.resolver = resolver
        self.members: list[BinaryMarket | None] = [None] * size
        self.collateral = -1
        self.lot_units = 0
        self.vault = -1
        self.escrow_account = -1
        self.phase = "open"
        self.close_at = int(params.get("close_at", 0))
        self.open_at = int(params.get("open_at", 0))
        self.close_generation = 0
        self.in_play = bool(params.get("in_play", False))
        self.taker_delay_ms = int(params.get("taker_delay_ms", 0))
        self.live = False  # kickoff has passed and the books stayed open (in play)
        self.result = ""

    # ------------------------------------------------------------ what the resolver sees

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The final outcomes a resolution may name."""
        if not self.neg_risk:
            return BINARY_OUTCOMES
        return (*(m.name for m in self.members if m is not None), "void")

    def escrow(self, ctx: MarketContext) -> int:
        """The bond escrow account (created on first use)."""
        if self.escrow_account < 0:
            self.escrow_account = ctx.system_account(f"prediction/escrow/{self.name}")
        return self.escrow_account

    def set_phase(self, ctx: MarketContext, phase: str) -> None:
        """Move every member to `phase` (engine status follows) and report it once."""
        if phase == self.phase:
            return
        self.phase = phase
        for market in self.members:
            if market is not None:
                ctx.set_status(market.market_id, ENGINE_STATUS[phase])
        self.emit(ctx, "exos.prediction.phase", {"event": self.name, "phase": phase})

    def schedule(self, ctx: MarketContext, time: int, tag: int) -> None:
        """A resolver timer, fired on the first member."""
        ctx.schedule(time, self._anchor().market_id, (tag << 8) | RESOLVER_TIMER)

    def emit(self, ctx: MarketContext, name: str, detail: Mapping[str, Any]) -> None:
        """A market event on the first member."""
        ctx.emit(self._anchor().market_id, name, detail)

    def _anchor(self) -> BinaryMarket:
        """The first listed member (timers and event-level reports live there)."""
        return next(m for m in self.members if m is not None)

    @property
    def complete(self) -> bool:
        """Every member is listed."""
        return all(m is not None for m in self.members)

    # ------------------------------------------------------------ listing and timers

    def add(self, market: BinaryMarket) -> None:
        """Record a member (the market type validated the slot is free)."""
        self.members[market.index] = market
        market.taker_delay_ms = self.taker_delay_ms if self.live else 0
        self.collateral = market.collateral
        self.lot_units = market.lot_units

    def member_listed(self, ctx: MarketContext, market: BinaryMarket) -> None:
        """The first member opens the vault and schedules the kickoff; later ones take the event's phase."""
        if self.vault < 0:
            self.vault = ctx.system_account(f"prediction/vault/{self.name}")
            if self.open_at and self.open_at > ctx.now:  # listed ahead of its trading window
                self.phase = "scheduled"
                ctx.schedule(self.open_at, market.market_id, OPEN_TIMER)
            if self.close_at:
                self.close_generation += 1
                ctx.schedule(self.close_at, market.market_id, (self.close_generation << 8) | CLOSE_TIMER)
        ctx.set_status(market.market_id, ENGINE_STATUS[self.phase])

    def on_timer(self, ctx: MarketContext, tag: int) -> None:
        """Kickoff (unless postponed since) or a resolver timer."""
        kind, generation = tag & 0xFF, tag >> 8
        if kind == OPEN_TIMER:
            if self.phase == "scheduled":
                self.set_phase(ctx, "open")
        elif kind == CLOSE_TIMER:
            if generation == self.close_generation and self.phase in ("open", "paused", "scheduled"):
                if self.in_play:
                    self.live = True
                    self._set_delay()
                    self.emit(
                        ctx, "exos.prediction.in_play", {"event": self.name, "taker_delay_ms": self.taker_delay_ms}
                    )
                else:
                    self.set_phase(ctx, "closed")
        elif kind == RESOLVER_TIMER and self.phase not in FINAL:
            outcome = self.resolver.on_timer(ctx, self, generation)
            if outcome is not None:
                self.finalise(ctx, outcome)

    # ------------------------------------------------------------ actions

    def act(self, ctx: MarketContext, market: BinaryMarket, action: str, args: Mapping[str, Any]) -> None:
        """Dispatch one MarketAction (validation first; the first mutation comes after every check)."""
        if self.phase in FINAL:
            raise OrderRejection("RESOLVED", f"{self.name} is {self.phase}: nothing more can happen")
        if action == "split":
            self._split(ctx, market, _lots(args, self.name))
        elif action == "merge":
            self._merge(ctx, market, _lots(args, self.name))
        elif action == "convert":
            self._convert(ctx, args)
        elif action in RESOLUTION_ACTIONS:
            if self.phase not in TRADING_DONE:
                raise OrderRejection("NOT_CLOSED", f"{self.name} is {self.phase}: resolution starts after close")
            if not self.complete:
                raise OrderRejection("EVENT_INCOMPLETE", f"{self.name}: not every outcome market is listed")
            outcome = self.resolver.act(ctx, self, action, args)
            if outcome is not None:
                self.finalise(ctx, outcome)
        elif action in ADMIN_ACTIONS:
            if not ctx.is_admin:
                raise OrderRejection("NOT_ADMIN", f"{self.name}: {action} is an admin action")
            self._admin(ctx, action, args)
        else:
            raise OrderRejection("UNKNOWN_ACTION", f"{self.name}: no action {action!r}")

    def _holder(self, ctx: MarketContext) -> int:
        """The actor's account (an unknown account holds nothing)."""
        account = ctx.account(*ctx.actor)
        if account is None:
            raise OrderRejection("INSUFFICIENT_BALANCE", f"{self.name}: the account holds nothing")
        return account

    def _need(self, ctx: MarketContext, account: int, asset: int, amount: int, what: str) -> None:
        """Refuse unless the account has `amount` available."""
        available = ctx.balance(account, asset)[0]
        if available < amount:
            raise OrderRejection("INSUFFICIENT_BALANCE", f"{self.name}: {what} needs {amount}, available {available}")

    def _split(self, ctx: MarketContext, market: BinaryMarket, size: int) -> None:
        """Collateral → one YES + one NO per unit."""
        account = self._holder(ctx)
        amount = size * self.lot_units
        self._need(ctx, account, self.collateral, amount, "split")
        ctx.move(account, self.collateral, amount, self.vault)
        ctx.issue(account, market.yes, amount)
        ctx.issue(account, market.no, amount)
        ctx.emit(market.market_id, "exos.prediction.split", {**_who(ctx, account), "lots": size})

    def _merge(self, ctx: MarketContext, market: BinaryMarket, size: int) -> None:
        """One YES + one NO → collateral per unit."""
        account = self._holder(ctx)
        amount = size * self.lot_units
        self._need(ctx, account, market.yes, amount, "merge (YES)")
        self._need(ctx, account, market.no, amount, "merge (NO)")
        ctx.burn(account, market.yes, amount)
        ctx.burn(account, market.no, amount)
        ctx.move(self.vault, self.collateral, amount, account)
        ctx.emit(market.market_id, "exos.prediction.merge", {**_who(ctx, account), "lots": size})

    def _convert(self, ctx: MarketContext, args: Mapping[str, Any]) -> None:
        """NO in each of m markets → YES in each of the others plus (m - 1) units of collateral per share."""
        if not self.neg_risk:
            raise OrderRejection("NOT_NEG_RISK", f"{self.name}: conversion needs a neg-risk event")
        if not self.complete:
            raise OrderRejection("EVENT_INCOMPLETE", f"{self.name}: not every outcome market is listed")
        size = _lots(args, self.name)
        names = args.get("markets")
        by_name = {m.name: m for m in self.members if m is not None}
        if (
            not isinstance(names, list)
            or not names
            or len(set(map(str, names))) != len(names)
            or any(name not in by_name for name in names)
        ):
            raise OrderRejection("BAD_CONVERSION", f"{self.name}: markets must be distinct members, got {names!r}")
        account = self._holder(ctx)
        amount = size * self.lot_units
        chosen = [by_name[name] for name in names]
        for market in chosen:
            self._need(ctx, account, market.no, amount, f"conversion (NO of {market.name})")
        for market in chosen:
            ctx.burn(account, market.no, amount)
        for member in self.members:
            if member is not None and member not in chosen:
                ctx.issue(account, member.yes, amount)
        if len(chosen) > 1:
            ctx.move(self.vault, self.collateral, (len(chosen) - 1) * amount, account)
        self.emit(ctx, "exos.prediction.convert", {**_who(ctx, account), "lots": size, "markets": sorted(names)})

    def _admin(self, ctx: MarketContext, action: str, args: Mapping[str, Any]) -> None:
        """open / pause / resume / close / postpone(close_at) / cancel (void)."""
        phase = self.phase
        if action == "open" and phase == "scheduled":
            self.set_phase(ctx, "open")
        elif action == "pause" and phase == "open":
            self.set_phase(ctx, "paused")
        elif action == "resume" and phase == "paused":
            self.set_phase(ctx, "open")
        elif action == "close" and phase in ("scheduled", "open", "paused"):
            self.set_phase(ctx, "closed")
        elif action == "postpone" and phase in ("scheduled", "open", "paused"):
            close_at = args.get("close_at")
            if not isinstance(close_at, int) or isinstance(close_at, bool) or close_at <= ctx.now:
                raise OrderRejection("BAD_TIME", f"{self.name}: close_at must be a later time (ms), got {close_at!r}")
            self.close_at = close_at
            self.close_generation += 1
            ctx.schedule(close_at, self._anchor().market_id, (self.close_generation << 8) | CLOSE_TIMER)
            self.emit(ctx, "exos.prediction.postponed", {"close_at": close_at})
        elif action == "cancel":
            self.finalise(ctx, "void")
        else:
            raise OrderRejection("BAD_PHASE", f"{self.name} is {phase}: {action} does not apply")

    # ------------------------------------------------------------ resolution and settlement

    def payout_per_unit(self, market: BinaryMarket, outcome: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """(numerator, denominator) paid per YES unit and per NO unit of a member for a final outcome."""
        if not self.neg_risk:
            return {"yes": ((1, 1), (0, 1)), "no": ((0, 1), (1, 1))}.get(outcome, ((1, 2), (1, 2)))
        if outcome == "void":
            return (1, self.size), (self.size - 1, self.size)
        return ((1, 1), (0, 1)) if market.name == outcome else ((0, 1), (1, 1))

    def finalise(self, ctx: MarketContext, outcome: str) -> None:
        """The outcome is final: stop trading, pay every holder from the vault, end at zero collateral."""
        void = outcome == "void"
        self.result = outcome
        self.resolver.release(ctx, self)  # bonds of a resolution the outcome did not come from go back
        if not void:
            self.set_phase(ctx, "resolved")
        for market in self.members:
            if market is not None:
                ctx.cancel_orders(market.market_id)
        paid = 0
        for market in self.members:
            if market is None:
                continue
            tokens = zip(("yes", "no"), (market.yes, market.no), self.payout_per_unit(market, outcome), strict=True)
            for token, asset, (num, den) in tokens:
                for account, available, locked in ctx.holders(asset):
                    assert locked == 0, "orders were cancelled: no share is locked"
                    ctx.burn(account, asset, available)
                    amount = available * num // den
                    if amount:
                        ctx.move(self.vault, self.collateral, amount, account)
                        paid += amount
                    ctx.emit(market.market_id, "exos.prediction.payout",
                             {**_who(ctx, account), "token": token, "shares": available, "paid": amount})  # fmt: skip
        dust = ctx.balance(self.vault, self.collateral)[0]
        if dust:  # payouts round down per holder; the remainder is the venue's
            ctx.charge_fee(self.vault, self.collateral, dust)
        self.set_phase(ctx, "void" if void else "settled")
        self.emit(ctx, "exos.prediction.settled", {"event": self.name, "outcome": outcome, "paid": paid,
                                                   "dust": dust})  # fmt: skip

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """JSON-able state (members and config come from the listings)."""
        return {
            "phase": self.phase, "vault": self.vault, "escrow": self.escrow_account, "close_at": self.close_at,
            "close_generation": self.close_generation, "result": self.result, "resolver": self.resolver.state(),
            "live": self.live,
        }  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """The fields `state` wrote."""
        self.phase, self.vault, self.escrow_account = state["phase"], state["vault"], state["escrow"]
        self.close_at, self.close_generation = state["close_at"], state["close_generation"]
        self.result, self.live = state["result"], state["live"]
        self._set_delay()
        self.resolver.restore(state["resolver"])

    def _set_delay(self) -> None:
        """Members apply the taker delay while the event is in play."""
        for market in self.members:
            if market is not None:
                market.taker_delay_ms = self.taker_delay_ms if self.live else 0

    def dump(self) -> bytes:
        """Canonical bytes of the state."""
        return canonical_json(self.state())

    def load(self, data: bytes) -> None:
        """Restore from `dump` bytes."""
        self.restore(json.loads(data))
