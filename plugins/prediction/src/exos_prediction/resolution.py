"""Resolution sources: who decides an outcome event's result (plugins, registered like any other).

A `ResolutionSource` builds one `Resolver` per event from the event's params. The event hands it the
resolution actions (MarketAction commands: `vote`, `propose`, `dispute`) once trading has closed and
its own timers; the resolver returns the final outcome when it has one. Two sources ship here:

- **committee**: M of N named resolver addresses (`committee`, `quorum`) vote; the first outcome
  with M votes is final. A member votes once.
- **optimistic**: anyone proposes an outcome with a `bond` (collateral units); after `liveness_ms`
  without a dispute it is final and the bond returns. A dispute with an equal bond escalates to the
  committee; the committee's outcome decides who was right: the winner gets both bonds minus
  `dispute_fee_bps` of the loser's, which goes to the venue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from exos.protocols import API_VERSION, MarketContext, OrderRejection


class EventHandle(Protocol):
    """What a resolver may do to its event."""

    name: str
    collateral: int

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The final outcomes a resolution may name."""
        ...

    def escrow(self, ctx: MarketContext) -> int:
        """The event's bond escrow account."""
        ...

    def set_phase(self, ctx: MarketContext, phase: str) -> None:
        """Move the event to `proposed` or `disputed`."""
        ...

    def schedule(self, ctx: MarketContext, time: int, tag: int) -> None:
        """Call the resolver's on_timer(tag) at `time`."""
        ...

    def emit(self, ctx: MarketContext, name: str, detail: Mapping[str, Any]) -> None:
        """Report a market event on the event's first market."""
        ...


class Resolver(Protocol):
    """One event's resolution state."""

    def act(self, ctx: MarketContext, event: EventHandle, action: str, args: Mapping[str, Any]) -> str | None:
        """Handle a resolution action (validate first: raise OrderRejection); the final outcome, or None."""
        ...

    def on_timer(self, ctx: MarketContext, event: EventHandle, tag: int) -> str | None:
        """A timer this resolver scheduled fired; the final outcome, or None."""
        ...

    def bonds(self) -> int:
        """Collateral this resolver holds in the event's escrow."""
        ...

    def release(self, ctx: MarketContext, event: EventHandle) -> None:
        """The event ended another way (the admin voided it): return every bond still held to its poster."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state (ints, strings, lists, tables)."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the state with what `state` returned."""
        ...


class ResolutionSource(Protocol):
    """A kind of resolution a plugin registers through `exos_register_resolution_sources`."""

    api_version: int
    name: str

    def create(self, params: Mapping[str, Any]) -> Resolver:
        """A resolver for one event (raise ValueError for bad params)."""
        ...


def _addresses(params: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The committee's addresses, checked."""
    members = params.get("committee")
    if not isinstance(members, list | tuple) or not members:
        raise ValueError("params.committee: a non-empty array of addresses")
    out = []
    for member in members:
        if not isinstance(member, str) or len(member) != 42 or not member.startswith("0x"):
            raise ValueError(f"params.committee: {member!r} is not a 0x address")
        out.append(bytes.fromhex(member[2:]))
    if len(set(out)) != len(out):
        raise ValueError("params.committee: duplicate member")
    return tuple(out)


def _int(params: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    """An integer param in [low, high]."""
    value = params.get(key, default)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"params.{key}: an integer in {low}..{high}, got {value!r}")
    return value


class Committee:
    """M-of-N votes by named addresses."""

    def __init__(self, members: tuple[bytes, ...], quorum: int) -> None:
        """A committee with no votes yet."""
        self.members = members
        self.quorum = quorum
        self.votes: dict[bytes, str] = {}

    def vote(self, ctx: MarketContext, event: EventHandle, args: Mapping[str, Any]) -> str | None:
        """Record a member's vote; the outcome once `quorum` members agree."""
        if ctx.signer not in self.members:
            raise OrderRejection("NOT_RESOLVER", f"{event.name}: signer 0x{ctx.signer.hex()} is not on the committee")
        if ctx.signer in self.votes:
            raise OrderRejection("ALREADY_VOTED", f"{event.name}: 0x{ctx.signer.hex()} voted already")
        outcome = args.get("outcome")
        if outcome not in event.outcomes:
            raise OrderRejection("BAD_OUTCOME", f"{event.name}: outcome must be one of {list(event.outcomes)}")
        self.votes[ctx.signer] = outcome
        tally = sum(1 for v in self.votes.values() if v == outcome)
        event.emit(ctx, "exos.prediction.vote", {"by": "0x" + ctx.signer.hex(), "outcome": outcome, "tally": tally})
        return outcome if tally >= self.quorum else None

    def state(self) -> dict[str, Any]:
        """Votes in member order."""
        return {"votes": [["0x" + m.hex(), self.votes[m]] for m in self.members if m in self.votes]}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Votes from `state`."""
        self.votes = {bytes.fromhex(m[2:]): v for m, v in state["votes"]}


def _committee(params: Mapping[str, Any]) -> Committee:
    """The committee `committee` and `quorum` name (default quorum: a simple majority)."""
    members = _addresses(params)
    return Committee(members, _int(params, "quorum", 1, len(members), len(members) // 2 + 1))


class CommitteeResolver:
    """Resolution by committee vote alone."""

    def __init__(self, committee: Committee) -> None:
        """A resolver over `committee`."""
        self.committee = committee

    def act(self, ctx: MarketContext, event: EventHandle, action: str, args: Mapping[str, Any]) -> str | None:
        """`vote` is the only action."""
        if action != "vote":
            raise OrderRejection("UNKNOWN_ACTION", f"{event.name}: committee resolution takes `vote`, not {action!r}")
        return self.committee.vote(ctx, event, args)

    def on_timer(self, ctx: MarketContext, event: EventHandle, tag: int) -> str | None:
        """A committee schedules nothing."""
        return None

    def bonds(self) -> int:
        """A committee holds no bonds."""
        return 0

    def release(self, ctx: MarketContext, event: EventHandle) -> None:
        """Nothing is held."""

    def state(self) -> dict[str, Any]:
        """The votes."""
        return self.committee.state()

    def restore(self, state: Mapping[str, Any]) -> None:
        """The votes."""
        self.committee.restore(state)


class CommitteeSource:
    """Registers as resolution source "committee"."""

    api_version = API_VERSION
    name = "committee"

    def create(self, params: Mapping[str, Any]) -> CommitteeResolver:
        """A committee from `committee` and `quorum` (default: a simple majority)."""
        return CommitteeResolver(_committee(params))


class OptimisticResolver:
    """Propose with a bond, wait out the liveness window, escalate disputes to the committee."""

    def __init__(self, committee: Committee, bond: int, liveness: int, dispute_fee_bps: int) -> None:
        """A resolver with no proposal yet."""
        self.committee = committee
        self.bond = bond
        self.liveness = liveness
        self.dispute_fee_bps = dispute_fee_bps
        self.stage = "none"  # none -> proposed -> disputed
        self.proposal = ""
        self.proposer = -1
        self.disputer = -1
        self.deadline = 0
        self.generation = 0

    def act(self, ctx: MarketContext, event: EventHandle, action: str, args: Mapping[str, Any]) -> str | None:
        """`propose`, `dispute` (both post a bond), or a committee `vote` on a dispute."""
        if action == "propose":
            self._propose(ctx, event, args)
            return None
        if action == "dispute":
            self._dispute(ctx, event)
            return None
        if action == "vote":
            if self.stage != "disputed":
                raise OrderRejection("NOT_DISPUTED", f"{event.name}: the committee votes only on a dispute")
            outcome = self.committee.vote(ctx, event, args)
            if outcome is not None:
                self._settle_bonds(ctx, event, outcome)
            return outcome
        raise OrderRejection("UNKNOWN_ACTION", f"{event.name}: optimistic resolution has no action {action!r}")

    def _bonded_account(self, ctx: MarketContext, event: EventHandle) -> int:
        """The actor's account, if it can post the bond."""
        account = ctx.account(*ctx.actor)
        if account is None or ctx.balance(account, event.collateral)[0] < self.bond:
            raise OrderRejection("INSUFFICIENT_BALANCE", f"{event.name}: the bond is {self.bond} collateral units")
        return account

    def _propose(self, ctx: MarketContext, event: EventHandle, args: Mapping[str, Any]) -> None:
        if self.stage != "none":
            raise OrderRejection("ALREADY_PROPOSED", f"{event.name}: an outcome is proposed already")
        outcome = args.get("outcome")
        if outcome not in event.outcomes:
            raise OrderRejection("BAD_OUTCOME", f"{event.name}: outcome must be one of {list(event.outcomes)}")
        account = self._bonded_account(ctx, event)
        ctx.move(account, event.collateral, self.bond, event.escrow(ctx))
        self.stage, self.proposal, self.proposer = "proposed", str(outcome), account
        self.deadline = ctx.now + self.liveness
        self.generation += 1
        event.schedule(ctx, self.deadline, self.generation)
        event.set_phase(ctx, "proposed")
        event.emit(ctx, "exos.prediction.proposed", {"outcome": outcome, "deadline": self.deadline})

    def _dispute(self, ctx: MarketContext, event: EventHandle) -> None:
        if self.stage != "proposed":
            raise OrderRejection("NOT_PROPOSED", f"{event.name}: there is no proposal to dispute")
        if ctx.now >= self.deadline:
            raise OrderRejection("LIVENESS_OVER", f"{event.name}: the liveness window ended at {self.deadline}")
        account = self._bonded_account(ctx, event)
        ctx.move(account, event.collateral, self.bond, event.escrow(ctx))
        self.stage, self.disputer = "disputed", account
        event.set_phase(ctx, "disputed")
        event.emit(ctx, "exos.prediction.disputed", {"proposal": self.proposal})

    def _settle_bonds(self, ctx: MarketContext, event: EventHandle, outcome: str) -> None:
        """Both bonds to whoever was right, less the venue's cut of the loser's."""
        winner, loser = (self.proposer, self.disputer) if outcome == self.proposal else (self.disputer, self.proposer)
        fee = self.bond * self.dispute_fee_bps // 10_000
        escrow = event.escrow(ctx)
        ctx.charge_fee(escrow, event.collateral, fee)
        ctx.move(escrow, event.collateral, 2 * self.bond - fee, winner)
        won, lost = ctx.address(winner), ctx.address(loser)
        event.emit(ctx, "exos.prediction.bonds", {"winner": "0x" + won[0].hex(), "loser": "0x" + lost[0].hex(),
                                                  "paid": 2 * self.bond - fee, "venue_fee": fee})  # fmt: skip
        self.stage = "done"

    def on_timer(self, ctx: MarketContext, event: EventHandle, tag: int) -> str | None:
        """The liveness window ended: an undisputed proposal is final and its bond returns."""
        if self.stage != "proposed" or tag != self.generation:
            return None
        ctx.move(event.escrow(ctx), event.collateral, self.bond, self.proposer)
        self.stage = "done"
        return self.proposal

    def release(self, ctx: MarketContext, event: EventHandle) -> None:
        """Return the proposer's (and a disputer's) bond: nobody was proven wrong."""
        if self.stage in ("proposed", "disputed"):
            escrow = event.escrow(ctx)
            ctx.move(escrow, event.collateral, self.bond, self.proposer)
            if self.stage == "disputed":
                ctx.move(escrow, event.collateral, self.bond, self.disputer)
            self.stage = "done"

    def bonds(self) -> int:
        """Bonds in escrow: one while proposed, two while disputed."""
        return {"proposed": self.bond, "disputed": 2 * self.bond}.get(self.stage, 0)

    def state(self) -> dict[str, Any]:
        """Stage, proposal, parties, deadline and committee votes."""
        return {
            "stage": self.stage, "proposal": self.proposal, "proposer": self.proposer, "disputer": self.disputer,
            "deadline": self.deadline, "generation": self.generation, "committee": self.committee.state(),
        }  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """The fields `state` wrote."""
        self.stage, self.proposal = state["stage"], state["proposal"]
        self.proposer, self.disputer = state["proposer"], state["disputer"]
        self.deadline, self.generation = state["deadline"], state["generation"]
        self.committee.restore(state["committee"])


class OptimisticSource:
    """Registers as resolution source "optimistic"."""

    api_version = API_VERSION
    name = "optimistic"

    def create(self, params: Mapping[str, Any]) -> OptimisticResolver:
        """From `bond` (collateral units), `liveness_ms`, `dispute_fee_bps` and the escalation committee."""
        committee = _committee(params)
        bond = _int(params, "bond", 1, 10**30)
        liveness = _int(params, "liveness_ms", 1, 10**12)
        dispute_fee = _int(params, "dispute_fee_bps", 0, 10_000, 0)
        return OptimisticResolver(committee, bond, liveness, dispute_fee)
