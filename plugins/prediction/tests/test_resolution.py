"""Lifecycle and resolution: votes, optimistic proposals and disputes, payouts, kickoff, rejections and snapshots.

Every payout below is computed here from the holdings: a winning share pays one unit, a 50/50 or void
standalone share half a unit, a void neg-risk share 1/k (YES) or (k - 1)/k (NO), each holder's payout
rounded down and the vault's remainder (the dust) going to the fee account. Markets charge no trading
fee unless a test says otherwise, so the fee account holds exactly the dust and the dispute fees.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import attrs
import pytest

from exos import commands as C
from exos import events as E
from exos.commands import Actor
from exos.engine import Engine

USDC = "USDC"
YES, NO = 0, 1
BUY, SELL = 0, 1
UNIT = 1_000_000  # USDC units per share at lot 1
FUNDS = 100 * UNIT
BOND = 5 * UNIT
LIVENESS = 1_000
DISPUTE_FEE_BPS = 1_500


def _committee_market(pm: ModuleType, **params: Any) -> dict[str, Any]:
    """RAIN: a standalone market resolved by 2 of the 3 committee members."""
    table: dict[str, Any] = pm.market("RAIN", **params)
    return table


def _optimistic_market(pm: ModuleType) -> dict[str, Any]:
    """RAIN, resolved optimistically: a 5 USDC bond, 1 s of liveness, 15% of the loser's bond to the venue."""
    table: dict[str, Any] = pm.market(
        "RAIN", resolution="optimistic", bond=BOND, liveness_ms=LIVENESS, dispute_fee_bps=DISPUTE_FEE_BPS
    )
    return table


def _neg_risk(pm: ModuleType, **params: Any) -> list[dict[str, Any]]:
    """WIN: one neg-risk event of three markets (the first member's params give the event its resolution)."""
    return [pm.market(name, event="WIN", event_size=3, **params) for name in ("WIN-A", "WIN-B", "WIN-C")]


def _holdings(venue: Any, actors: list[Actor], assets: list[str]) -> dict[tuple[int, str], tuple[int, int]]:
    """(available, locked) of every actor and asset."""
    return {(i, asset): venue.balance(who, asset) for i, who in enumerate(actors) for asset in assets}


def _trade_rain(pm: ModuleType, venue: Any) -> tuple[Actor, Actor]:
    """A splits 4 lots and sells 3 NO to B at 40: A holds 4 YES and 1 NO, B 3 NO; the vault holds 4 USDC."""
    a, b = pm.trader(1), pm.trader(2)
    venue.deposit(a, FUNDS)
    venue.deposit(b, FUNDS)
    assert venue.accepted(venue.action(a, "RAIN", "split", size=4))
    venue.place(a, "RAIN", SELL, 40, 3, outcome=NO)
    assert venue.of(venue.place(b, "RAIN", BUY, 40, 3, outcome=NO), E.Fill)
    assert venue.balance(a) == (FUNDS - 4 * UNIT + 1_200_000, 0)
    assert venue.balance(b) == (FUNDS - 1_200_000, 0)
    return a, b


def _settle_yes(venue: Any, a: Actor, b: Actor, fees_before: int) -> None:
    """After a YES resolution: A got 4 USDC for its 4 YES, B nothing for its NO; nothing is left anywhere."""
    assert venue.balance(a) == (FUNDS - 4 * UNIT + 1_200_000 + 4 * UNIT, 0)
    assert venue.balance(b) == (FUNDS - 1_200_000, 0)
    for asset in ("RAIN-Y", "RAIN-N"):
        assert venue.supply(asset) == 0
    assert venue.vault("RAIN") == 0
    assert venue.fees() == fees_before  # a YES outcome spends the vault exactly: no dust
    assert venue.status("RAIN") == "settled"


def test_no_payout_before_the_final_vote(pm: ModuleType, make_venue: Any) -> None:
    """A first committee vote changes no balance; the quorum's vote pays every holder."""
    venue = make_venue([_committee_market(pm)])
    a, b = _trade_rain(pm, venue)
    assert venue.accepted(venue.admin("RAIN", "close"))
    assets = [USDC, "RAIN-Y", "RAIN-N"]
    before = _holdings(venue, [a, b], assets)
    events = venue.vote(0, "RAIN", "yes")
    assert venue.accepted(events)
    assert [e.detail for e in venue.market_events(events, "exos.prediction.vote")] == [
        f'{{"by":"{pm.hex_address(pm.COMMITTEE[0])}","outcome":"yes","tally":1}}'
    ]
    assert _holdings(venue, [a, b], assets) == before
    assert venue.vault("RAIN") == 4 * UNIT
    assert venue.status("RAIN") == "halted"
    assert venue.accepted(venue.vote(1, "RAIN", "no"))  # a different outcome does not reach the quorum either
    assert _holdings(venue, [a, b], assets) == before
    assert venue.accepted(venue.vote(2, "RAIN", "yes"))
    _settle_yes(venue, a, b, 0)


@pytest.mark.parametrize("committee_says", ["no", "yes"], ids=["proposer-right", "disputer-right"])
def test_a_dispute_escalates_to_the_committee(pm: ModuleType, make_venue: Any, committee_says: str) -> None:
    """A disputed proposal waits for the committee; the winner gets both bonds less 15% of the loser's."""
    venue = make_venue([_optimistic_market(pm)])
    a, b = _trade_rain(pm, venue)
    proposer, disputer = pm.trader(7), pm.trader(8)
    venue.deposit(proposer, 6 * UNIT)
    venue.deposit(disputer, 6 * UNIT)
    assert venue.rejection(venue.action(proposer, "RAIN", "propose", outcome="no")) == "NOT_CLOSED"
    assert venue.accepted(venue.admin("RAIN", "close"))
    assert venue.rejection(venue.action(disputer, "RAIN", "dispute")) == "NOT_PROPOSED"
    assert venue.accepted(venue.action(proposer, "RAIN", "propose", outcome="no"))
    assert venue.balance(proposer) == (UNIT, 0)
    assert venue.escrow("RAIN") == BOND
    assert venue.rejection(venue.vote(0, "RAIN", "yes")) == "NOT_DISPUTED"
    assert venue.accepted(venue.action(disputer, "RAIN", "dispute"))
    assert venue.escrow("RAIN") == 2 * BOND
    assert venue.balance(disputer) == (UNIT, 0)
    # the liveness window passes: a disputed proposal is not final
    venue.tick(venue.now + 2 * LIVENESS)
    assert venue.escrow("RAIN") == 2 * BOND
    assert venue.status("RAIN") == "halted"
    assert venue.accepted(venue.vote(0, "RAIN", committee_says))
    assert venue.escrow("RAIN") == 2 * BOND
    events = venue.vote(2, "RAIN", committee_says)
    assert venue.accepted(events)
    venue_fee = BOND * DISPUTE_FEE_BPS // 10_000  # 750_000
    winner, loser = (proposer, disputer) if committee_says == "no" else (disputer, proposer)
    assert venue.balance(winner) == (UNIT + 2 * BOND - venue_fee, 0)
    assert venue.balance(loser) == (UNIT, 0)
    assert venue.escrow("RAIN") == 0
    assert venue.vault("RAIN") == 0
    if committee_says == "yes":
        _settle_yes(venue, a, b, venue_fee)
    else:  # NO: B's 3 NO and A's 1 NO pay one unit each
        assert venue.balance(a) == (FUNDS - 4 * UNIT + 1_200_000 + UNIT, 0)
        assert venue.balance(b) == (FUNDS - 1_200_000 + 3 * UNIT, 0)
        assert venue.fees() == venue_fee


def test_an_undisputed_proposal_is_final_after_liveness(pm: ModuleType, make_venue: Any) -> None:
    """Nothing happens until the liveness window ends; a Tick then settles and returns the bond."""
    venue = make_venue([_optimistic_market(pm)])
    a, b = _trade_rain(pm, venue)
    proposer = pm.trader(7)
    venue.deposit(proposer, BOND)
    assert venue.accepted(venue.admin("RAIN", "close"))
    assert venue.accepted(venue.action(proposer, "RAIN", "propose", outcome="yes"))
    proposed_at = venue.now
    assert venue.balance(proposer) == (0, 0)
    assert venue.rejection(venue.action(pm.trader(8), "RAIN", "dispute")) == "INSUFFICIENT_BALANCE"  # no bond
    assert venue.rejection(venue.action(a, "RAIN", "propose", outcome="no")) == "ALREADY_PROPOSED"
    events = venue.tick(proposed_at + LIVENESS - 1)
    assert not venue.market_events(events, "exos.prediction.settled")
    assert venue.vault("RAIN") == 4 * UNIT
    assert venue.escrow("RAIN") == BOND
    events = venue.tick(proposed_at + LIVENESS)
    assert venue.market_events(events, "exos.prediction.settled")
    assert all(e.cause == E.Cause.SYSTEM for e in venue.of(events, E.MarketEvent))
    assert venue.balance(proposer) == (BOND, 0)
    assert venue.escrow("RAIN") == 0
    _settle_yes(venue, a, b, 0)


@pytest.mark.parametrize("outcome", ["half", "void"])
def test_half_and_void_pay_half_a_unit_per_share(pm: ModuleType, make_venue: Any, outcome: str) -> None:
    """Lots of 5 units: odd holdings round down per holder and the dust goes to the fee account exactly."""
    # tick 0.2 on a lot of 0.000005 USDC: one tick-lot is 1 unit, n = 5, a lot is 5 units of a share
    venue = make_venue([pm.market("ODD", tick="0.2", lot="0.000005")])
    a, b = pm.trader(1), pm.trader(2)
    venue.deposit(a, 1_000)
    venue.deposit(b, 1_000)
    assert venue.accepted(venue.action(a, "ODD", "split", size=3))  # A: 15 YES, 15 NO; vault 15
    venue.place(a, "ODD", SELL, 3, 1)
    assert venue.of(venue.place(b, "ODD", BUY, 3, 1), E.Fill)  # B pays 3 units for 5 YES
    holdings = {(a, "ODD-Y"): 10, (a, "ODD-N"): 15, (b, "ODD-Y"): 5}
    for (who, asset), units in holdings.items():
        assert venue.balance(who, asset) == (units, 0)
    usdc = {a: venue.total(a), b: venue.total(b)}
    assert usdc == {a: 1_000 - 15 + 3, b: 1_000 - 3}
    assert venue.accepted(venue.admin("ODD", "close"))
    assert venue.accepted(venue.vote(0, "ODD", outcome))
    events = venue.vote(1, "ODD", outcome)
    assert venue.accepted(events)
    paid = {a: 10 // 2 + 15 // 2, b: 5 // 2}  # 5 + 7 and 2: 14 of the vault's 15
    for who in (a, b):
        assert venue.balance(who) == (usdc[who] + paid[who], 0)
    dust = 15 - sum(paid.values())
    assert dust == 1
    assert venue.fees() == dust
    assert venue.vault("ODD") == 0
    assert venue.supply("ODD-Y") == venue.supply("ODD-N") == 0
    (settled,) = venue.market_events(events, "exos.prediction.settled")
    assert settled.detail == f'{{"dust":{dust},"event":"ODD","outcome":"{outcome}","paid":14}}'
    assert venue.status("ODD") == "settled"


def _neg_risk_holdings(pm: ModuleType, venue: Any) -> tuple[Actor, Actor]:
    """A splits 2 of WIN-A and converts 1 NO of WIN-A into YES of WIN-B and WIN-C; B splits 1 of WIN-B."""
    a, b = pm.trader(1), pm.trader(2)
    venue.deposit(a, FUNDS)
    venue.deposit(b, FUNDS)
    assert venue.accepted(venue.action(a, "WIN-A", "split", size=2))
    assert venue.accepted(venue.action(a, "WIN-C", "convert", markets=["WIN-A"], size=1))
    assert venue.accepted(venue.action(b, "WIN-B", "split", size=1))
    assert venue.vault("WIN") == 3 * UNIT
    return a, b


def test_neg_risk_void_pays_a_kth_per_yes_and_the_rest_per_no(pm: ModuleType, make_venue: Any) -> None:
    """k = 3: a YES pays 1/3 and a NO 2/3 of a unit, rounded down per holder; the vault ends at zero."""
    venue = make_venue(_neg_risk(pm))
    a, b = _neg_risk_holdings(pm, venue)
    shares = {  # (holder, asset) -> units, and what one unit pays as a fraction
        (a, "WIN-A-Y"): 2 * UNIT, (a, "WIN-A-N"): UNIT, (a, "WIN-B-Y"): UNIT, (a, "WIN-C-Y"): UNIT,
        (b, "WIN-B-Y"): UNIT, (b, "WIN-B-N"): UNIT,
    }  # fmt: skip
    for (who, asset), units in shares.items():
        assert venue.balance(who, asset) == (units, 0)
    before = {a: venue.total(a), b: venue.total(b)}
    assert venue.accepted(venue.admin("WIN-B", "close"))
    assert venue.rejection(venue.vote(0, "WIN-A", "half")) == "BAD_OUTCOME"  # no 50/50 in a neg-risk event
    assert venue.accepted(venue.vote(0, "WIN-A", "void"))
    assert venue.accepted(venue.vote(1, "WIN-C", "void"))
    paid = {a: 0, b: 0}
    for (who, asset), units in shares.items():
        paid[who] += units * (1 if asset.endswith("-Y") else 2) // 3
    assert paid == {a: 666_666 + 666_666 + 333_333 + 333_333, b: 333_333 + 666_666}
    for who in (a, b):
        assert venue.balance(who) == (before[who] + paid[who], 0)
    assert venue.fees() == 3 * UNIT - sum(paid.values()) == 3
    assert venue.vault("WIN") == 0
    for name in ("WIN-A", "WIN-B", "WIN-C"):
        assert venue.supply(f"{name}-Y") == venue.supply(f"{name}-N") == 0
        assert venue.status(name) == "settled"


def test_neg_risk_winner_pays_its_yes_and_every_other_no(pm: ModuleType, make_venue: Any) -> None:
    """WIN-B wins: YES of WIN-B and NO of WIN-A and WIN-C pay a unit; the vault is spent exactly."""
    venue = make_venue(_neg_risk(pm))
    a, b = _neg_risk_holdings(pm, venue)
    before = {a: venue.total(a), b: venue.total(b)}
    assert venue.accepted(venue.admin("WIN-A", "close"))
    assert venue.accepted(venue.vote(2, "WIN-B", "WIN-B"))
    assert venue.accepted(venue.vote(1, "WIN-B", "WIN-B"))
    assert venue.balance(a) == (before[a] + UNIT + UNIT, 0)  # its NO of WIN-A and YES of WIN-B
    assert venue.balance(b) == (before[b] + UNIT, 0)  # its YES of WIN-B (its NO of WIN-B loses)
    assert venue.fees() == 0
    assert venue.vault("WIN") == 0


def test_a_second_resolution_is_refused(pm: ModuleType, make_venue: Any) -> None:
    """Once final, every action is refused with RESOLVED and changes nothing."""
    venue = make_venue([_committee_market(pm)])
    a, _ = _trade_rain(pm, venue)
    venue.admin("RAIN", "close")
    venue.vote(0, "RAIN", "yes")
    assert venue.accepted(venue.vote(1, "RAIN", "yes"))
    state = venue.hash()
    for who, action, args in (
        (Actor(pm.COMMITTEE[2]), "vote", {"outcome": "no"}),
        (Actor(pm.ADMIN), "cancel", {}),
        (a, "split", {"size": 1}),
    ):
        events = venue.action(who, "RAIN", action, same_time=True, **args)
        assert venue.rejection(events) == "RESOLVED", events
        assert venue.hash() == state
    assert venue.rejection(venue.place(a, "RAIN", BUY, 50, 1, same_time=True)) == "MARKET_STATUS"


def test_only_committee_members_vote_once_after_close(pm: ModuleType, make_venue: Any) -> None:
    """NOT_CLOSED before close; NOT_RESOLVER for a trader or the admin; ALREADY_VOTED for a second vote."""
    venue = make_venue([_committee_market(pm)])
    a, _ = _trade_rain(pm, venue)
    assert venue.rejection(venue.vote(0, "RAIN", "yes")) == "NOT_CLOSED"
    assert venue.accepted(venue.admin("RAIN", "close"))
    assert venue.rejection(venue.action(a, "RAIN", "vote", outcome="yes")) == "NOT_RESOLVER"
    assert venue.rejection(venue.admin("RAIN", "vote", outcome="yes")) == "NOT_RESOLVER"
    assert venue.accepted(venue.vote(0, "RAIN", "no"))
    assert venue.rejection(venue.vote(0, "RAIN", "no")) == "ALREADY_VOTED"
    assert venue.rejection(venue.vote(0, "RAIN", "yes")) == "ALREADY_VOTED"
    assert venue.rejection(venue.vote(1, "RAIN", "maybe")) == "BAD_OUTCOME"
    assert venue.vault("RAIN") == 4 * UNIT  # still one vote: nothing paid


def _rest_orders(pm: ModuleType, venue: Any) -> tuple[Actor, Actor, int, int]:
    """A rests a YES bid (2 at 45), B a NO sell (3 at 30, a bid at 70).

    The bid locks 2 × 450_000 and the most fee a lot can cost at 45 or below: 1% × 0.45 × 0.55 = 2_475 a lot."""
    a, b = pm.trader(1), pm.trader(2)
    venue.deposit(a, FUNDS)
    venue.deposit(b, FUNDS)
    assert venue.accepted(venue.action(b, "RAIN", "split", size=3))
    bid = venue.order_id(venue.place(a, "RAIN", BUY, 45, 2))
    no_sell = venue.order_id(venue.place(b, "RAIN", SELL, 30, 3, outcome=NO))
    assert venue.balance(a) == (FUNDS - 904_950, 904_950)
    assert venue.balance(b, "RAIN-N") == (0, 3 * UNIT)
    return a, b, bid, no_sell


def test_kickoff_closes_and_wipes_the_book(pm: ModuleType, make_venue: Any) -> None:
    """At close_at the timer halts trading, cancels every order and releases its lock."""
    kickoff = pm.START + 500
    venue = make_venue([_committee_market(pm, close_at=kickoff, taker_bps="100")])
    a, b, bid, no_sell = _rest_orders(pm, venue)
    assert not venue.of(venue.tick(kickoff - 1), E.OrderCancelled)
    assert venue.status("RAIN") == "open"
    events = venue.tick(kickoff)
    cancelled = venue.of(events, E.OrderCancelled)
    assert sorted((e.order_id, e.remaining) for e in cancelled) == [(bid, 2), (no_sell, 3)]
    assert all(e.cause == E.Cause.SYSTEM for e in cancelled)
    assert venue.status("RAIN") == "halted"
    assert venue.balance(a) == (FUNDS, 0)
    assert venue.balance(b, "RAIN-N") == (3 * UNIT, 0)
    assert venue.engine.depth("RAIN") == ([], [])
    assert venue.rejection(venue.place(a, "RAIN", BUY, 45, 1)) == "MARKET_STATUS"
    assert venue.accepted(venue.action(b, "RAIN", "merge", size=3))  # full sets still merge after kickoff
    assert venue.balance(b) == (FUNDS, 0)


def test_postpone_moves_the_kickoff(pm: ModuleType, make_venue: Any) -> None:
    """After postpone the old kickoff passes with the book open; the new one closes it."""
    kickoff, later = pm.START + 500, pm.START + 2_000
    venue = make_venue([_committee_market(pm, close_at=kickoff, taker_bps="100")])
    a, _, bid, _ = _rest_orders(pm, venue)
    assert venue.rejection(venue.action(a, "RAIN", "postpone", close_at=later)) == "NOT_ADMIN"
    assert venue.rejection(venue.admin("RAIN", "postpone", close_at=venue.now)) == "BAD_TIME"
    events = venue.admin("RAIN", "postpone", close_at=later)
    assert [e.detail for e in venue.market_events(events, "exos.prediction.postponed")] == [f'{{"close_at":{later}}}']
    venue.tick(kickoff)
    assert venue.status("RAIN") == "open"
    second = venue.order_id(venue.place(a, "RAIN", BUY, 44, 1))
    venue.tick(later - 1)
    assert venue.status("RAIN") == "open"
    assert venue.engine.order("RAIN", bid) is not None and venue.engine.order("RAIN", second) is not None
    events = venue.tick(later)
    assert venue.status("RAIN") == "halted"
    assert len(venue.of(events, E.OrderCancelled)) == 3
    assert venue.balance(a) == (FUNDS, 0)


def _busy_venue(pm: ModuleType, make_venue: Any) -> tuple[Any, Actor]:
    """RAIN (optimistic, closed, with a proposal) and the open neg-risk event WIN, with holdings and orders."""
    venue = make_venue([_optimistic_market(pm), *_neg_risk(pm, taker_bps="50")])
    a = pm.trader(1)
    venue.deposit(a, 20 * UNIT)
    assert venue.accepted(venue.action(a, "RAIN", "split", size=2))
    assert venue.accepted(venue.action(a, "WIN-A", "split", size=2))
    assert venue.order_id(venue.place(a, "WIN-B", BUY, 30, 2))
    assert venue.order_id(venue.place(a, "WIN-A", SELL, 80, 1, outcome=NO))
    assert venue.accepted(venue.admin("RAIN", "close"))
    assert venue.accepted(venue.action(a, "RAIN", "propose", outcome="yes"))
    return venue, a


REFUSALS = [
    ("split beyond the collateral", 1, "WIN-A", "split", {"size": 10**6}, "INSUFFICIENT_BALANCE"),
    ("merge without the shares", 1, "WIN-B", "merge", {"size": 1}, "INSUFFICIENT_BALANCE"),
    ("split of no size", 1, "WIN-A", "split", {"size": 0}, "BAD_SIZE"),
    ("split of a boolean", 1, "WIN-A", "split", {"size": True}, "BAD_SIZE"),
    ("convert a market twice", 1, "WIN-A", "convert", {"markets": ["WIN-A", "WIN-A"], "size": 1}, "BAD_CONVERSION"),
    ("convert a stranger", 1, "WIN-A", "convert", {"markets": ["RAIN"], "size": 1}, "BAD_CONVERSION"),
    ("convert more NO than held", 1, "WIN-A", "convert", {"markets": ["WIN-A"], "size": 3}, "INSUFFICIENT_BALANCE"),
    ("convert a standalone", 1, "RAIN", "convert", {"markets": ["RAIN"], "size": 1}, "NOT_NEG_RISK"),
    ("vote before close", "member", "WIN-A", "vote", {"outcome": "WIN-A"}, "NOT_CLOSED"),
    ("vote with no dispute", "member", "RAIN", "vote", {"outcome": "yes"}, "NOT_DISPUTED"),
    ("propose twice", 1, "RAIN", "propose", {"outcome": "no"}, "ALREADY_PROPOSED"),
    ("dispute without the bond", 9, "RAIN", "dispute", {}, "INSUFFICIENT_BALANCE"),
    ("close by a trader", 1, "WIN-A", "close", {}, "NOT_ADMIN"),
    ("resume an open event", "admin", "WIN-A", "resume", {}, "BAD_PHASE"),
    ("pause a closed event", "admin", "RAIN", "pause", {}, "BAD_PHASE"),
    ("an unknown action", 1, "WIN-A", "teleport", {}, "UNKNOWN_ACTION"),
]


@pytest.mark.parametrize(("who", "market", "action", "args", "code"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])  # fmt: skip
def test_a_refused_action_changes_nothing(
    pm: ModuleType, make_venue: Any, who: Any, market: str, action: str, args: dict[str, Any], code: str
) -> None:
    """A refused MarketAction at the current time leaves the state hash as it was."""
    venue, _ = _busy_venue(pm, make_venue)
    actor = {"admin": Actor(pm.ADMIN), "member": Actor(pm.COMMITTEE[0])}.get(who) or pm.trader(who)
    state = venue.hash()
    events = venue.action(actor, market, action, same_time=True, **args)
    assert venue.rejection(events) == code, events
    assert len(events) == 2
    assert venue.hash() == state


def test_dump_and_load_mid_lifecycle(pm: ModuleType, make_venue: Any) -> None:
    """A loaded copy has the same hash, and the same commands then give both the same events and states."""
    venue, a = _busy_venue(pm, make_venue)
    assert venue.accepted(venue.action(pm.trader(1), "RAIN", "split", size=1))
    copy = Engine.from_parsed(venue.engine.manifest)
    assert copy.state_hash() != venue.hash()
    copy.load_state(venue.engine.dump_state())
    assert copy.state_hash() == venue.hash()
    copy.check_invariants()
    b = pm.trader(2)
    deadline = venue.now + LIVENESS
    rest: list[C.Command] = [
        C.Deposit(actor=Actor(b.address, 0, pm.ADMIN), timestamp=venue.now + 1, asset=USDC, amount=10 * UNIT),
        C.PlaceOrder(actor=b, timestamp=venue.now + 2, market="WIN-B", side=BUY, price=75, size=2, outcome=NO),
        C.MarketAction(actor=Actor(pm.ADMIN), timestamp=venue.now + 3, market="WIN-C", action="close", args={}),
        C.Tick(actor=Actor(pm.ADMIN), timestamp=deadline),  # the liveness timer settles RAIN in both
        C.MarketAction(actor=Actor(pm.COMMITTEE[1]), timestamp=deadline + 1, market="WIN-A", action="vote",
                       args={"outcome": "WIN-C"}),
        C.MarketAction(actor=Actor(pm.COMMITTEE[2]), timestamp=deadline + 2, market="WIN-B", action="vote",
                       args={"outcome": "WIN-C"}),
    ]  # fmt: skip
    for command in rest:
        ours = venue.submit(command)
        theirs = copy.submit(command)
        # the command counter is not state (a fresh engine counts from 1): compare all but seq
        assert [attrs.evolve(e, seq=0) for e in ours] == [attrs.evolve(e, seq=0) for e in theirs], command
        assert venue.accepted(ours), ours
        assert copy.state_hash() == venue.hash()
        copy.check_invariants()
    assert venue.status("RAIN") == venue.status("WIN-A") == "settled"
    assert venue.balance(a) == pm.Venue(copy).balance(a)


@pytest.mark.parametrize("disputed", [False, True], ids=["proposed", "disputed"])
def test_voiding_a_proposed_event_returns_the_bonds(pm: ModuleType, make_venue: Any, disputed: bool) -> None:
    """The admin's cancel after a proposal (and a dispute): every bond goes back, nobody pays a dispute fee."""
    venue = make_venue([_optimistic_market(pm)])
    a, b = _trade_rain(pm, venue)
    proposer, disputer = pm.trader(7), pm.trader(8)
    venue.deposit(proposer, BOND)
    venue.deposit(disputer, BOND)
    venue.admin("RAIN", "close")
    assert venue.accepted(venue.action(proposer, "RAIN", "propose", outcome="yes"))
    if disputed:
        assert venue.accepted(venue.action(disputer, "RAIN", "dispute"))
    assert venue.escrow("RAIN") == (2 if disputed else 1) * BOND
    events = venue.admin("RAIN", "cancel")
    assert venue.accepted(events)
    (phase,) = venue.market_events(events, "exos.prediction.phase")
    assert phase.detail == '{"event":"RAIN","phase":"void"}'
    venue.tick(venue.now + 2 * LIVENESS)  # the old liveness timer finds nothing to do
    assert venue.escrow("RAIN") == 0
    assert venue.balance(proposer) == venue.balance(disputer) == (BOND, 0)
    # void pays half a unit per share: A's 4 YES and 1 NO, B's 3 NO
    assert venue.balance(a) == (FUNDS - 4 * UNIT + 1_200_000 + 5 * UNIT // 2, 0)
    assert venue.balance(b) == (FUNDS - 1_200_000 + 3 * UNIT // 2, 0)
    assert venue.fees() == 0
    assert venue.vault("RAIN") == 0
