"""The engine on spot markets: ledger commands, locks, fills and fees, self-trade prevention, amend and cancel,
order types, the market status machine, runtime listing and GTD expiry through the timer queue.

Numbers (examples/spot.toml, BTC-USDC): 1 lot = 0.0001 BTC = 10_000 sat; 1 tick on 1 lot = 1 USDC unit
(10^-6 USDC); minimum notional 1 USDC = 1_000_000 units; maker -1 bp (a rebate), taker 5 bps, charged in
the asset received. Expected balances below are computed by hand from these.
"""

from __future__ import annotations

from exos import commands as C
from exos import events as E

BUY, SELL = 0, 1
GTC, GTD, IOC, FOK = 0, 1, 2, 3
P = 3_000_000  # 30,000 USDC per BTC, in ticks
LOT = 10_000  # sat per lot
BTC = "BTC-USDC"
ETH = "ETH-USDC"
CID = b"client-order-001"
CID2 = b"client-order-002"


def ceil_div(a: int, b: int) -> int:
    """Exact ceiling of a / b for a >= 0, b > 0."""
    return -(-a // b)


def taker_fee(received: int) -> int:
    """BTC-USDC taker fee, 5 bps rounded up."""
    return ceil_div(received * 5, 10_000)


def maker_rebate(received: int) -> int:
    """BTC-USDC maker rebate magnitude, 1 bp rounded down."""
    return received // 10_000


class TestLedger:
    def test_deposit_credits_available(self, venue):
        """An admin-signed deposit credits the account's available balance and reports it."""
        a = venue.actor(1)
        events = venue.fund(a, "USDC", 5_000_000)
        (deposited,) = venue.of(events, E.Deposited)
        assert (deposited.address, deposited.sub) == (a.address, 0)
        assert (deposited.asset, deposited.amount) == ("USDC", 5_000_000)
        assert venue.balance(a, "USDC") == (5_000_000, 0)
        assert venue.balance(a, "BTC") == (0, 0)

    def test_deposit_signed_by_the_account_itself_is_refused(self, venue):
        """A deposit not signed by an admin is rejected with NOT_ADMIN and credits nothing."""
        a = venue.actor(1)
        venue.tick()  # the clock starts: a later command at the same time changes no timestamp
        before = venue.hash()
        events = venue.do(C.Deposit, a, asset="USDC", amount=5_000_000)
        assert venue.rejection(events) == "NOT_ADMIN"
        assert venue.balance(a, "USDC") == (0, 0)
        assert venue.hash() == before

    def test_withdraw_up_to_available(self, venue):
        """Withdrawals debit available; the whole available balance can be withdrawn, not one unit more."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 1_000_000)
        events = venue.do(C.Withdraw, a, asset="USDC", amount=400_000)
        (withdrawn,) = venue.of(events, E.Withdrawn)
        assert (withdrawn.asset, withdrawn.amount) == ("USDC", 400_000)
        assert venue.balance(a, "USDC") == (600_000, 0)
        assert venue.rejection(venue.do(C.Withdraw, a, asset="USDC", amount=600_001)) == "INSUFFICIENT_BALANCE"
        assert venue.accepted(venue.do(C.Withdraw, a, asset="USDC", amount=600_000))
        assert venue.balance(a, "USDC") == (0, 0)

    def test_withdraw_never_touches_locked_funds(self, venue):
        """A resting buy's locked quote cannot be withdrawn: only available counts."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 5_000_000)
        venue.place(a, BUY, P, 1)  # locks 3_000_000
        assert venue.rejection(venue.do(C.Withdraw, a, asset="USDC", amount=2_000_001)) == "INSUFFICIENT_BALANCE"
        assert venue.accepted(venue.do(C.Withdraw, a, asset="USDC", amount=2_000_000))
        assert venue.balance(a, "USDC") == (0, 3_000_000)

    def test_transfer_between_own_subaccounts(self, venue):
        """A transfer moves available balance to another sub-account of the same address, which can trade with it."""
        a0, a3 = venue.actor(1, 0), venue.actor(1, 3)
        venue.fund(a0, "USDC", 4_000_000)
        events = venue.do(C.Transfer, a0, asset="USDC", amount=3_000_000, to_sub=3)
        (moved,) = venue.of(events, E.Transferred)
        assert (moved.address, moved.sub, moved.to_sub) == (a0.address, 0, 3)
        assert (moved.asset, moved.amount) == ("USDC", 3_000_000)
        assert venue.balance(a0, "USDC") == (1_000_000, 0)
        assert venue.balance(a3, "USDC") == (3_000_000, 0)
        assert venue.accepted(venue.place(a3, BUY, P, 1))
        assert venue.balance(a3, "USDC") == (0, 3_000_000)

    def test_transfer_limits(self, venue):
        """A transfer beyond available, to the same sub-account, or of a non-positive amount is refused."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 1_000)
        before = venue.hash()
        assert venue.rejection(venue.do(C.Transfer, a, asset="USDC", amount=1_001, to_sub=1)) == "INSUFFICIENT_BALANCE"
        assert venue.rejection(venue.do(C.Transfer, a, asset="USDC", amount=10, to_sub=0)) == "BAD_TRANSFER"
        assert venue.rejection(venue.do(C.Transfer, a, asset="USDC", amount=0, to_sub=1)) == "BAD_AMOUNT"
        assert venue.rejection(venue.do(C.Transfer, a, asset="USDC", amount=-5, to_sub=1)) == "BAD_AMOUNT"
        assert venue.hash() == before
        assert venue.engine.ledger.find_account(a.address, 1) is None


class TestLocks:
    def test_buy_locks_quote_at_its_limit_and_no_fee(self, venue):
        """A buy locks price x size quote units exactly (fees are paid in base, so none is locked)."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 10_000_000)
        venue.place(a, BUY, P, 3)
        assert venue.balance(a, "USDC") == (1_000_000, 9_000_000)
        assert venue.balance(a, "BTC") == (0, 0)

    def test_buy_without_the_full_notional_is_refused(self, venue):
        """One quote unit short of price x size: INSUFFICIENT_BALANCE, nothing changes."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 8_999_999)
        before = venue.hash()
        assert venue.rejection(venue.place(a, BUY, P, 3)) == "INSUFFICIENT_BALANCE"
        assert venue.hash() == before
        assert venue.balance(a, "USDC") == (8_999_999, 0)

    def test_sell_locks_base(self, venue):
        """A sell locks size lots of base and no quote."""
        b = venue.actor(2)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 4)
        assert venue.balance(b, "BTC") == (6 * LOT, 4 * LOT)
        assert venue.balance(b, "USDC") == (0, 0)
        assert venue.rejection(venue.place(b, SELL, P, 7)) == "INSUFFICIENT_BALANCE"

    def test_cancel_releases_exactly_the_lock(self, venue):
        """Cancelling resting orders returns every locked unit to available."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        buy = venue.order_id(venue.place(a, BUY, P - 7, 3))
        sell = venue.order_id(venue.place(b, SELL, P + 7, 5))
        (cancelled,) = venue.of(venue.cancel(a, buy), E.OrderCancelled)
        assert (cancelled.order_id, cancelled.remaining, cancelled.reason) == (buy, 3, "user")
        venue.cancel(b, sell)
        assert venue.balance(a, "USDC") == (10_000_000, 0)
        assert venue.balance(b, "BTC") == (10 * LOT, 0)

    def test_price_improvement_is_released_to_the_taker(self, venue):
        """A buy limited at P+500_000 that trades at the maker's P gets the difference back, fees in received asset."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 2)
        events = venue.place(a, BUY, P + 500_000, 2)
        taker, maker = venue.of(events, E.Fill)
        assert (taker.price, taker.size, maker.price, maker.size) == (P, 2, P, 2)
        # a paid 2 x P, locked 2 x (P + 500_000), got the rest back; received 2 lots less 5 bps
        assert venue.balance(a, "USDC") == (10_000_000 - 2 * P, 0)
        assert venue.balance(a, "BTC") == (2 * LOT - taker_fee(2 * LOT), 0)
        assert venue.balance(b, "USDC") == (2 * P + maker_rebate(2 * P), 0)
        assert venue.balance(b, "BTC") == (8 * LOT, 0)
        assert venue.fees("BTC") == 10
        assert venue.fees("USDC") == -600

    def test_partial_fill_then_cancel_releases_the_remainder(self, venue):
        """After a partial fill, the locked amount is exactly the remainder's, and a cancel frees it."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        buy = venue.order_id(venue.place(a, BUY, P, 5))
        venue.place(b, SELL, P - 100_000, 2)  # trades at the maker's price P
        assert venue.balance(a, "USDC") == (20_000_000 - 5 * P, 3 * P)
        assert venue.balance(a, "BTC") == (2 * LOT + maker_rebate(2 * LOT), 0)
        assert venue.balance(b, "USDC") == (2 * P - taker_fee(2 * P), 0)
        (cancelled,) = venue.of(venue.cancel(a, buy), E.OrderCancelled)
        assert cancelled.remaining == 3
        assert venue.balance(a, "USDC") == (20_000_000 - 2 * P, 0)

    def test_ioc_remainder_releases_its_lock(self, venue):
        """An IOC buy fills what it can; the cancelled remainder and the price improvement both come back."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 1)
        events = venue.place(a, BUY, P + 100_000, 3, tif=IOC)
        assert len(venue.of(events, E.Fill)) == 2
        (rest,) = venue.of(events, E.OrderCancelled)
        assert (rest.remaining, rest.reason) == (2, "ioc_remainder")
        assert venue.balance(a, "USDC") == (20_000_000 - P, 0)
        assert venue.engine.open_orders(a.address) == []


class TestFills:
    def test_fill_events_carry_trade_role_fee_and_book_sequence(self, venue):
        """A sweep of two makers: taker fill then maker fill per trade, trade ids, roles, fees, counter ids."""
        a, b, c = venue.actor(1), venue.actor(2), venue.actor(3)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.fund(c, "BTC", 10 * LOT)
        first = venue.order_id(venue.place(b, SELL, P, 2))
        second = venue.order_id(venue.place(c, SELL, P + 1_000, 3))
        events = venue.place(a, BUY, P + 1_000, 5)
        taker_id = venue.order_id(events)
        fills = venue.of(events, E.Fill)
        assert [(f.trade_id, f.order_id, f.maker, f.counter_order_id) for f in fills] == [
            (1, taker_id, False, first),
            (1, first, True, taker_id),
            (2, taker_id, False, second),
            (2, second, True, taker_id),
        ]
        assert [(f.address, f.side, f.price, f.size) for f in fills] == [
            (a.address, BUY, P, 2),
            (b.address, SELL, P, 2),
            (a.address, BUY, P + 1_000, 3),
            (c.address, SELL, P + 1_000, 3),
        ]
        # the taker's fee accrues on its cumulative base: 10 on 2 lots, then 25 - 10 on 5 lots
        assert [(f.fee, f.fee_asset) for f in fills] == [(10, "BTC"), (-600, "USDC"), (15, "BTC"), (-900, "USDC")]
        # both sides of one trade share the book's FILL sequence number; later book events count up
        assert fills[0].book_seq == fills[1].book_seq < fills[2].book_seq == fills[3].book_seq
        assert isinstance(events[-1], E.CommandDone) and events[-1].accepted
        assert [e.index for e in events] == list(range(len(events)))
        # a paid 2 x P + 3 x (P + 1_000); its lock at P + 1_000 on 5 lots minus that came back
        assert venue.balance(a, "USDC") == (20_000_000 - 2 * P - 3 * (P + 1_000), 0)
        assert venue.balance(a, "BTC") == (5 * LOT - 25, 0)
        assert venue.balance(b, "USDC") == (2 * P + 600, 0)
        assert venue.balance(c, "USDC") == (3 * (P + 1_000) + 900, 0)
        assert (venue.fees("BTC"), venue.fees("USDC")) == (25, -1_500)

    def test_trade_happens_at_the_makers_price_for_a_taker_sell(self, venue):
        """A sell limited below the best bid trades at the bid; the seller receives quote less the taker fee."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(a, BUY, P, 3)
        events = venue.place(b, SELL, P - 200_000, 3)
        assert {f.price for f in venue.of(events, E.Fill)} == {P}
        assert venue.balance(b, "USDC") == (3 * P - taker_fee(3 * P), 0)
        assert venue.balance(b, "BTC") == (7 * LOT, 0)
        assert venue.balance(a, "BTC") == (3 * LOT + maker_rebate(3 * LOT), 0)
        assert venue.balance(a, "USDC") == (10_000_000 - 3 * P, 0)


def total_fee(events: list[E.Event], order_id: int) -> int:
    """The sum of the fees an order's fills were charged."""
    return sum(e.fee for e in events if isinstance(e, E.Fill) and e.order_id == order_id)


class TestFeeAccrual:
    """UNIT_VENUE: 1 lot = 1 BAS, 1 tick-lot = 1 QUO. ROUND: maker 3 bps, taker 7.77 bps; REBATE: -1 / 5 bps."""

    def test_maker_filled_by_many_takers_pays_what_one_fill_costs(self, make_venue):
        """One maker sell of 10 lots at 1001 filled by 10 one-lot takers vs one 10-lot taker: fee 4 both times."""
        totals = []
        for takers in (10, 1):
            v = make_venue()
            maker, taker = v.actor(1), v.actor(2)
            v.fund(maker, "BAS", 10)
            v.fund(taker, "QUO", 100_000)
            maker_id = v.order_id(v.place(maker, SELL, 1001, 10, market="ROUND"))
            events = []
            for _ in range(takers):
                events += v.place(taker, BUY, 1001, 10 // takers, market="ROUND")
            assert v.order(maker_id, "ROUND") is None
            totals.append(total_fee(events, maker_id))
            # received 10_010 QUO; 3 bps of that is 3.003, rounded up once: 4 (per fill it would be 10 x 1)
            assert v.balance(maker, "QUO") == (10_010 - 4, 0)
        assert totals == [4, 4]

    def test_taker_sweeping_many_makers_pays_what_one_fill_costs(self, make_venue):
        """A 10-lot sell at 1001 into 10 one-lot bids vs one 10-lot bid: taker fee 8 both times."""
        totals = []
        for makers in (10, 1):
            v = make_venue()
            taker = v.actor(1)
            v.fund(taker, "BAS", 10)
            for n in range(makers):
                v.fund(v.actor(10 + n), "QUO", 100_000)
                v.place(v.actor(10 + n), BUY, 1001, 10 // makers, market="ROUND")
            events = v.place(taker, SELL, 1001, 10, market="ROUND")
            assert len(v.of(events, E.Fill)) == 2 * makers
            totals.append(total_fee(events, v.order_id(events)))
            # received 10_010 QUO; 7.77 bps of it is 7.78, rounded up once: 8 (per fill: 10 x 1)
            assert v.balance(taker, "QUO") == (10_010 - 8, 0)
        assert totals == [8, 8]

    def test_taker_sweeping_several_levels_is_charged_on_the_total(self, unit_venue):
        """A buy taking 1 lot at each of 1000..1009 pays ceil(10 x 7.77 bps) = 1 BAS, not 10."""
        v = unit_venue
        taker = v.actor(1)
        v.fund(taker, "QUO", 100_000)
        for n in range(10):
            v.fund(v.actor(10 + n), "BAS", 1_000)
            v.place(v.actor(10 + n), SELL, 1000 + n, 1, market="ROUND")
        events = v.place(taker, BUY, 1009, 10, market="ROUND")
        assert total_fee(events, v.order_id(events)) == 1
        assert v.balance(taker, "BAS") == (10 - 1, 0)
        assert v.balance(taker, "QUO") == (100_000 - sum(range(1000, 1010)), 0)
        assert v.fees("BAS") == 1

    def test_rebate_accrues_per_order_and_rounds_down(self, make_venue):
        """A maker receiving 150_000 QUO over 10 fills gets floor(1 bp) = 15 back, as with one fill (not 10 x 1)."""
        for takers in (10, 1):
            v = make_venue()
            maker, taker = v.actor(1), v.actor(2)
            v.fund(maker, "BAS", 10)
            v.fund(taker, "QUO", 1_000_000)
            maker_id = v.order_id(v.place(maker, SELL, 15_000, 10, market="REBATE"))
            events = []
            for _ in range(takers):
                events += v.place(taker, BUY, 15_000, 10 // takers, market="REBATE")
            assert total_fee(events, maker_id) == -15
            assert v.balance(maker, "QUO") == (150_000 + 15, 0)
            # the taker orders receive BAS: 5 bps of 10 lots is 0.005, rounded up once per order
            assert v.fees("BAS") == takers
            assert v.fees("QUO") == -15

    def test_maker_fee_accrues_across_commands_on_one_resting_order(self, unit_venue):
        """Fills of one resting order in different commands still accrue: 3 bps on 3 x 1001 rounds to 1 in total."""
        v = unit_venue
        maker, taker = v.actor(1), v.actor(2)
        v.fund(maker, "QUO", 100_000)
        v.fund(taker, "BAS", 100)
        maker_id = v.order_id(v.place(maker, BUY, 1001, 3, market="ROUND"))
        fees = [total_fee(v.place(taker, SELL, 1001, 1, market="ROUND"), maker_id) for _ in range(3)]
        # the maker receives BAS: 3 bps of 1, 2, 3 BAS rounds up to 1 each time, so 1, 0, 0
        assert fees == [1, 0, 0]
        assert v.balance(maker, "BAS") == (3 - 1, 0)

    def test_one_order_accrues_per_role_across_resting_and_amend(self, unit_venue):
        """An order's taker fee accrues through resting and an amend that takes again; its maker fee separately."""
        v = unit_venue
        order_owner, seller = v.actor(1), v.actor(2)
        v.fund(order_owner, "QUO", 100_000)
        v.fund(seller, "BAS", 100)
        v.place(seller, SELL, 1001, 1, market="ROUND")
        placed = v.place(order_owner, BUY, 1001, 10, market="ROUND")
        order = v.order_id(placed)
        v.place(seller, SELL, 1002, 1, market="ROUND")
        amended = v.amend(order_owner, order, 1002, 10, market="ROUND")
        made = v.place(seller, SELL, 1002, 1, market="ROUND")
        # taker: ceil(1 x 7.77 bps) = 1, then ceil(2 x 7.77 bps) - 1 = 0; maker: ceil(1 x 3 bps) = 1
        assert [total_fee(events, order) for events in (placed, amended, made)] == [1, 0, 1]
        assert [f.maker for f in v.of(made, E.Fill) if f.order_id == order] == [True]
        assert v.balance(order_owner, "BAS") == (3 - 2, 0)
        assert v.balance(order_owner, "QUO") == (100_000 - 1001 - 2 * 1002 - 7 * 1002, 7 * 1002)


class TestSelfTradePrevention:
    def test_subaccounts_of_one_address_cancel_the_maker(self, venue):
        """Two sub-accounts of one address never trade: the resting maker is cancelled (stp), the taker rests."""
        s0, s1 = venue.actor(1, 0), venue.actor(1, 1)
        venue.fund(s0, "BTC", 2 * LOT)
        venue.fund(s1, "USDC", 10_000_000)
        maker = venue.order_id(venue.place(s0, SELL, P, 2))
        events = venue.place(s1, BUY, P, 2)
        assert venue.of(events, E.Fill) == []
        (cancelled,) = venue.of(events, E.OrderCancelled)
        assert (cancelled.order_id, cancelled.reason, cancelled.sub, cancelled.remaining) == (maker, "stp", 0, 2)
        assert venue.balance(s0, "BTC") == (2 * LOT, 0)
        assert venue.balance(s1, "USDC") == (10_000_000 - 2 * P, 2 * P)
        assert venue.order(venue.order_id(events)) is not None

    def test_cancel_taker_mode_keeps_the_maker(self, venue):
        """With stp=1 the taker is cancelled and its lock released; the same-address maker stays."""
        s0, s1 = venue.actor(1, 0), venue.actor(1, 1)
        venue.fund(s0, "BTC", 2 * LOT)
        venue.fund(s1, "USDC", 10_000_000)
        maker = venue.order_id(venue.place(s0, SELL, P, 2))
        events = venue.place(s1, BUY, P, 2, stp=1)
        (cancelled,) = venue.of(events, E.OrderCancelled)
        assert (cancelled.order_id, cancelled.reason) == (venue.order_id(events), "stp")
        assert venue.order(maker) is not None
        assert venue.balance(s1, "USDC") == (10_000_000, 0)

    def test_cancel_both_mode(self, venue):
        """With stp=2 both the maker and the taker are cancelled and both locks released."""
        s0, s1 = venue.actor(1, 0), venue.actor(1, 1)
        venue.fund(s0, "BTC", 2 * LOT)
        venue.fund(s1, "USDC", 10_000_000)
        maker = venue.order_id(venue.place(s0, SELL, P, 2))
        events = venue.place(s1, BUY, P, 2, stp=2)
        cancelled = venue.of(events, E.OrderCancelled)
        assert [(c.order_id, c.reason) for c in cancelled] == [(maker, "stp"), (venue.order_id(events), "stp")]
        assert venue.balance(s0, "BTC") == (2 * LOT, 0)
        assert venue.balance(s1, "USDC") == (10_000_000, 0)

    def test_own_maker_is_skipped_and_others_fill(self, venue):
        """The walk cancels the own-address maker and goes on to fill another account's order behind it."""
        s0, s1, other = venue.actor(1, 0), venue.actor(1, 1), venue.actor(2)
        venue.fund(s0, "BTC", LOT)
        venue.fund(other, "BTC", LOT)
        venue.fund(s1, "USDC", 10_000_000)
        own = venue.order_id(venue.place(s0, SELL, P, 1))
        theirs = venue.order_id(venue.place(other, SELL, P, 1))
        events = venue.place(s1, BUY, P, 2)
        assert [c.order_id for c in venue.of(events, E.OrderCancelled)] == [own]
        taker = venue.order_id(events)
        assert [(f.order_id, f.maker) for f in venue.of(events, E.Fill)] == [(taker, False), (theirs, True)]
        assert venue.order(venue.order_id(events)).remaining == 1
        assert venue.balance(s1, "USDC") == (10_000_000 - 2 * P, P)


class TestAmend:
    def test_size_down_keeps_priority_and_unlocks(self, venue):
        """Shrinking an order at the same price keeps its queue place and releases the lock of the cut lots."""
        a, c, seller = venue.actor(1), venue.actor(3), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(c, "USDC", 20_000_000)
        venue.fund(seller, "BTC", 10 * LOT)
        first = venue.order_id(venue.place(a, BUY, P, 5))
        second = venue.order_id(venue.place(c, BUY, P, 5))
        (amended,) = venue.of(venue.amend(a, first, P, 2), E.OrderAmended)
        assert (amended.size, amended.remaining, amended.priority_kept) == (2, 2, True)
        assert venue.balance(a, "USDC") == (20_000_000 - 2 * P, 2 * P)
        assert venue.queue(BTC, BUY, P) == [first, second]
        fills = venue.of(venue.place(seller, SELL, P, 1), E.Fill)
        assert fills[1].order_id == first

    def test_price_change_relocks_and_loses_priority(self, venue):
        """A new price re-locks at that price (up or down) and sends the order to the back of the new level."""
        a, c = venue.actor(1), venue.actor(3)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(c, "USDC", 20_000_000)
        order = venue.order_id(venue.place(a, BUY, P, 5))
        venue.place(c, BUY, P - 100_000, 1)
        (amended,) = venue.of(venue.amend(a, order, P - 100_000, 5), E.OrderAmended)
        assert (amended.price, amended.priority_kept) == (P - 100_000, False)
        assert venue.balance(a, "USDC") == (20_000_000 - 5 * (P - 100_000), 5 * (P - 100_000))
        assert venue.queue(BTC, BUY, P - 100_000)[-1] == order
        venue.amend(a, order, P + 100_000, 6)
        assert venue.balance(a, "USDC") == (20_000_000 - 6 * (P + 100_000), 6 * (P + 100_000))

    def test_sell_price_change_keeps_the_base_lock(self, venue):
        """A sell locks base whatever its price: a price change moves no balance."""
        b = venue.actor(2)
        venue.fund(b, "BTC", 10 * LOT)
        order = venue.order_id(venue.place(b, SELL, P, 4))
        venue.amend(b, order, P + 50_000, 4)
        assert venue.balance(b, "BTC") == (6 * LOT, 4 * LOT)
        venue.amend(b, order, P + 50_000, 7)
        assert venue.balance(b, "BTC") == (3 * LOT, 7 * LOT)

    def test_amend_up_without_balance_is_refused_and_changes_nothing(self, venue):
        """A size or price increase the account cannot lock: INSUFFICIENT_BALANCE, order and hash unchanged."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 5 * P)
        order = venue.order_id(venue.place(a, BUY, P, 5))
        before = venue.hash()
        assert venue.rejection(venue.amend(a, order, P, 6)) == "INSUFFICIENT_BALANCE"
        assert venue.rejection(venue.amend(a, order, P + 1, 5)) == "INSUFFICIENT_BALANCE"
        assert venue.hash() == before
        state = venue.order(order)
        assert (state.price, state.size, state.remaining) == (P, 5, 5)
        assert venue.balance(a, "USDC") == (0, 5 * P)

    def test_amend_to_a_crossing_price_trades_at_the_makers_price(self, venue):
        """An amended buy that crosses takes like a new order: fills at the ask, improvement and fees settled."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(b, "BTC", 2 * LOT)
        order = venue.order_id(venue.place(a, BUY, P - 1_000, 2))
        maker = venue.order_id(venue.place(b, SELL, P, 2))
        events = venue.amend(a, order, P + 5_000, 2)
        assert [(f.order_id, f.price, f.size) for f in venue.of(events, E.Fill)] == [(order, P, 2), (maker, P, 2)]
        assert venue.order(order) is None
        assert venue.balance(a, "USDC") == (10_000_000 - 2 * P, 0)
        assert venue.balance(a, "BTC") == (2 * LOT - taker_fee(2 * LOT), 0)

    def test_amend_below_filled_cancels_the_remainder(self, venue):
        """A new total size at or below the filled part cancels the remainder and frees its lock."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 40_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        order = venue.order_id(venue.place(a, BUY, P, 10))
        venue.place(b, SELL, P, 4)
        events = venue.amend(a, order, P - 1_000_000, 3)
        (cancelled,) = venue.of(events, E.OrderCancelled)
        assert (cancelled.remaining, cancelled.reason) == (6, "amended_below_filled")
        assert venue.balance(a, "USDC") == (40_000_000 - 4 * P, 0)

    def test_amend_of_an_unknown_or_foreign_order_is_refused(self, venue):
        """Amending an id that is not the actor's open order: UNKNOWN_ORDER, nothing changes."""
        a, c = venue.actor(1), venue.actor(3)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(c, "USDC", 10_000_000)
        order = venue.order_id(venue.place(a, BUY, P, 1))
        before = venue.hash()
        assert venue.rejection(venue.amend(c, order, P, 2)) == "UNKNOWN_ORDER"
        assert venue.rejection(venue.amend(a, order + 100, P, 2)) == "UNKNOWN_ORDER"
        assert venue.hash() == before


class TestCancel:
    def test_cancel_by_client_id(self, venue):
        """An order placed with a client id is cancelled by it; a second cancel finds nothing."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 10_000_000)
        order = venue.order_id(venue.place(a, BUY, P, 2, client_id=CID))
        assert venue.engine.order_by_client_id(BTC, a.address, 0, CID).order_id == order
        (cancelled,) = venue.of(venue.do(C.CancelByClientId, a, market=BTC, client_id=CID), E.OrderCancelled)
        assert cancelled.order_id == order
        assert venue.balance(a, "USDC") == (10_000_000, 0)
        assert venue.rejection(venue.do(C.CancelByClientId, a, market=BTC, client_id=CID)) == "UNKNOWN_ORDER"

    def test_cancel_by_client_id_only_finds_the_actors_own_order(self, venue):
        """Another sub-account of the same address, or an order without that client id, is not cancelled."""
        a0, a1 = venue.actor(1, 0), venue.actor(1, 1)
        venue.fund(a0, "USDC", 10_000_000)
        venue.fund(a1, "USDC", 10_000_000)
        order = venue.order_id(venue.place(a0, BUY, P, 2, client_id=CID))
        venue.place(a0, BUY, P, 1)
        before = venue.hash()
        assert venue.rejection(venue.do(C.CancelByClientId, a1, market=BTC, client_id=CID)) == "UNKNOWN_ORDER"
        assert venue.rejection(venue.do(C.CancelByClientId, a0, market=BTC, client_id=CID2)) == "UNKNOWN_ORDER"
        assert venue.rejection(venue.do(C.CancelByClientId, a0, market=BTC, client_id=bytes(16))) == "UNKNOWN_ORDER"
        assert venue.hash() == before
        assert venue.order(order) is not None

    def test_cancel_of_another_accounts_order_is_refused(self, venue):
        """Cancel by id works only on the actor's own orders."""
        a, c = venue.actor(1), venue.actor(3)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(c, "USDC", 10_000_000)
        order = venue.order_id(venue.place(a, BUY, P, 2))
        before = venue.hash()
        assert venue.rejection(venue.cancel(c, order)) == "UNKNOWN_ORDER"
        assert venue.rejection(venue.cancel(a, order + 1)) == "UNKNOWN_ORDER"
        assert venue.hash() == before

    def test_cancel_all_is_per_subaccount_and_per_market(self, venue):
        """CancelAll in one market cancels that sub-account's orders there only; without a market, everywhere."""
        a0, a1 = venue.actor(1, 0), venue.actor(1, 1)
        for who in (a0, a1):
            venue.fund(who, "USDC", 50_000_000)
        btc = [venue.order_id(venue.place(a0, BUY, P - n, 2)) for n in range(2)]
        eth = venue.order_id(venue.place(a0, BUY, 300_000, 3, market=ETH))
        other_sub = venue.order_id(venue.place(a1, BUY, P - 5, 1))
        events = venue.do(C.CancelAll, a0, market=BTC)
        cancelled = venue.of(events, E.OrderCancelled)
        assert [(c.order_id, c.reason) for c in cancelled] == [(btc[0], "cancel_all"), (btc[1], "cancel_all")]
        assert venue.order(eth, ETH) is not None
        assert venue.order(other_sub) is not None
        events = venue.do(C.CancelAll, a0)
        assert [c.order_id for c in venue.of(events, E.OrderCancelled)] == [eth]
        assert venue.balance(a0, "USDC") == (50_000_000, 0)
        assert venue.order(other_sub) is not None
        assert venue.balance(a1, "USDC") == (50_000_000 - (P - 5), P - 5)


class TestOrderTypes:
    def test_market_order_stops_at_its_worst_price(self, venue):
        """A market buy (IOC at a worst price) takes the levels up to that price; the rest is cancelled."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        for price in (P, P + 10_000, P + 50_000):
            venue.place(b, SELL, price, 1)
        events = venue.do(C.MarketOrder, a, market=BTC, side=BUY, price=P + 20_000, size=3)
        takers = [f for f in venue.of(events, E.Fill) if not f.maker]
        assert [(f.price, f.size) for f in takers] == [(P, 1), (P + 10_000, 1)]
        (rest,) = venue.of(events, E.OrderCancelled)
        assert (rest.remaining, rest.reason) == (1, "ioc_remainder")
        assert venue.engine.open_orders(a.address) == []
        assert venue.balance(a, "USDC") == (20_000_000 - P - (P + 10_000), 0)
        assert venue.balance(a, "BTC") == (2 * LOT - taker_fee(2 * LOT), 0)

    def test_unfillable_fok_is_refused_and_changes_nothing(self, venue):
        """A FOK the book cannot fill whole: FOK_UNFILLABLE, no fill, no lock, same hash."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 2)
        before = venue.hash()
        assert venue.rejection(venue.place(a, BUY, P, 3, tif=FOK)) == "FOK_UNFILLABLE"
        assert venue.hash() == before
        assert venue.balance(a, "USDC") == (20_000_000, 0)

    def test_fillable_fok_fills_whole(self, venue):
        """A FOK that the book covers fills completely and leaves nothing resting."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 2)
        venue.place(b, SELL, P + 1, 2)
        events = venue.place(a, BUY, P + 1, 3, tif=FOK)
        assert sum(f.size for f in venue.of(events, E.Fill) if not f.maker) == 3
        assert venue.balance(a, "USDC") == (20_000_000 - 2 * P - (P + 1), 0)
        assert venue.engine.open_orders(a.address) == []

    def test_post_only_that_would_cross_is_refused(self, venue):
        """A post-only order that would take liquidity is rejected and locks nothing."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        venue.place(b, SELL, P, 2)
        before = venue.hash()
        assert venue.rejection(venue.place(a, BUY, P, 1, post_only=True)) == "POST_ONLY_WOULD_CROSS"
        assert venue.hash() == before
        assert venue.accepted(venue.place(a, BUY, P - 1, 1, post_only=True))

    def test_minimum_size_and_notional(self, venue):
        """Orders under the market's minimum notional are rejected with MIN_NOTIONAL."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 20_000_000)
        assert venue.rejection(venue.place(a, BUY, 999_999, 1)) == "MIN_NOTIONAL"
        assert venue.accepted(venue.place(a, BUY, 1_000_000, 1))


class TestMarketStatus:
    def test_only_an_admin_changes_the_status(self, venue):
        """SetMarketStatus signed by a non-admin: NOT_ADMIN; by an admin: MarketStatusChanged."""
        venue.tick()
        before = venue.hash()
        assert venue.rejection(venue.set_status("halted", who=venue.actor(1))) == "NOT_ADMIN"
        assert venue.hash() == before
        (changed,) = venue.of(venue.set_status("halted"), E.MarketStatusChanged)
        assert (changed.market, changed.status) == (BTC, "halted")
        assert venue.rejection(venue.set_status("halted")) == "NO_CHANGE"

    def test_cancel_only_and_reduce_only_refuse_new_orders(self, venue):
        """cancel_only and reduce_only refuse places and amends (MARKET_STATUS) but allow cancels."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 20_000_000)
        orders = [venue.order_id(venue.place(a, BUY, P - n, 1)) for n in range(2)]
        for status, order in zip(("cancel_only", "reduce_only"), orders, strict=True):
            venue.set_status(status)
            before = venue.hash()
            assert venue.rejection(venue.place(a, BUY, P, 1)) == "MARKET_STATUS"
            assert venue.rejection(venue.amend(a, order, P - 10, 1)) == "MARKET_STATUS"
            assert venue.hash() == before
            assert venue.accepted(venue.cancel(a, order))
        assert venue.balance(a, "USDC") == (20_000_000, 0)
        assert venue.accepted(venue.place(a, BUY, 300_000, 1, market=ETH))

    def test_halted_refuses_everything_until_reopened(self, venue):
        """A halted market refuses places, cancels, cancel-alls and amends; reopened, it trades again."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 20_000_000)
        order = venue.order_id(venue.place(a, BUY, P, 1))
        venue.set_status("halted")
        before = venue.hash()
        assert venue.rejection(venue.place(a, BUY, P, 1)) == "MARKET_STATUS"
        assert venue.rejection(venue.cancel(a, order)) == "MARKET_STATUS"
        assert venue.rejection(venue.do(C.CancelAll, a, market=BTC)) == "MARKET_STATUS"
        assert venue.rejection(venue.amend(a, order, P, 2)) == "MARKET_STATUS"
        assert venue.of(venue.do(C.CancelAll, a), E.OrderCancelled) == []  # every market: skips halted ones
        assert venue.hash() == before
        assert venue.order(order) is not None
        venue.set_status("open")
        assert venue.accepted(venue.cancel(a, order))

    def test_settled_cancels_every_order_and_is_terminal(self, venue):
        """Settling cancels all orders (cause SETTLEMENT), releases every lock, and no status change follows."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        buys = [venue.order_id(venue.place(a, BUY, P - n, 2)) for n in range(2)]
        sell = venue.order_id(venue.place(b, SELL, P + 5, 3))
        eth = venue.order_id(venue.place(a, BUY, 300_000, 1, market=ETH))
        events = venue.set_status("settled")
        cancelled = venue.of(events, E.OrderCancelled)
        assert sorted(c.order_id for c in cancelled) == sorted([*buys, sell])
        assert {c.cause for c in cancelled} == {E.Cause.SETTLEMENT}
        assert venue.balance(a, "USDC") == (20_000_000 - 3_000_000, 3_000_000)  # only the ETH-USDC order is left
        assert venue.balance(b, "BTC") == (10 * LOT, 0)
        assert venue.engine.market_state(BTC).book.open_orders == 0
        before = venue.hash()
        for status in ("open", "halted", "cancel_only"):
            assert venue.rejection(venue.set_status(status)) == "MARKET_STATUS"
        assert venue.rejection(venue.place(a, BUY, P, 1)) == "MARKET_STATUS"
        assert venue.hash() == before
        assert venue.order(eth, ETH) is not None


class TestListing:
    SOL_MARKET = {  # noqa: RUF012
        "name": "SOL-USDC",
        "type": "spot",
        "base": "SOL",
        "quote": "USDC",
        "tick_size": "0.01",
        "lot_size": "0.1",
        "fees": {"maker_bps": "0", "taker_bps": "10"},
    }

    def test_listed_asset_and_market_trade(self, venue):
        """ListAsset and ListMarket create SOL and SOL-USDC at runtime; deposits and trades work there."""
        admin = venue.admin_actor()
        (asset,) = venue.of(venue.do(C.ListAsset, admin, symbol="SOL", decimals=9), E.AssetListed)
        assert (asset.symbol, asset.decimals) == ("SOL", 9)
        (market,) = venue.of(venue.do(C.ListMarket, admin, spec=self.SOL_MARKET), E.MarketListed)
        assert (market.market, market.market_type) == ("SOL-USDC", "spot")
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 100_000_000)
        venue.fund(b, "SOL", 10**9)  # 1 SOL = 10 lots of 0.1
        # 0.01 USDC x 0.1 SOL = 1000 USDC units per tick-lot; 150.00 USDC = 15_000 ticks
        venue.place(b, SELL, 15_000, 3, market="SOL-USDC")
        assert venue.balance(b, "SOL") == (7 * 10**8, 3 * 10**8)
        events = venue.place(a, BUY, 15_000, 3, market="SOL-USDC")
        assert len(venue.of(events, E.Fill)) == 2
        assert venue.balance(a, "USDC") == (100_000_000 - 45_000_000, 0)
        assert venue.balance(a, "SOL") == (3 * 10**8 - 3 * 10**8 * 10 // 10_000, 0)  # 10 bps taker fee
        assert venue.balance(b, "USDC") == (45_000_000, 0)
        assert venue.balance(b, "SOL") == (7 * 10**8, 0)

    def test_listing_needs_an_admin_and_a_new_name(self, venue):
        """Listing by a non-admin is NOT_ADMIN; re-listing an asset or market, or a bad spec, is BAD_LISTING."""
        user, admin = venue.actor(1), venue.admin_actor()
        venue.tick()
        before = venue.hash()
        assert venue.rejection(venue.do(C.ListAsset, user, symbol="SOL", decimals=9)) == "NOT_ADMIN"
        assert venue.rejection(venue.do(C.ListMarket, user, spec=self.SOL_MARKET)) == "NOT_ADMIN"
        assert venue.rejection(venue.do(C.ListAsset, admin, symbol="BTC", decimals=8)) == "BAD_LISTING"
        assert venue.rejection(venue.do(C.ListMarket, admin, spec=self.SOL_MARKET)) == "BAD_LISTING"  # no SOL yet
        spec = dict(self.SOL_MARKET, name=BTC, base="BTC")
        assert venue.rejection(venue.do(C.ListMarket, admin, spec=spec)) == "BAD_LISTING"
        assert venue.rejection(venue.do(C.ListAsset, admin, symbol="SOL", decimals=31)) == "BAD_LISTING"
        assert venue.hash() == before

    def test_listing_refuses_symbols_the_manifest_refuses(self, venue):
        """A runtime asset symbol must follow the manifest's rule (1..16 of A-Z 0-9 - _): '', 'sol', 'S O L' fail."""
        admin = venue.admin_actor()
        venue.tick()
        before = venue.hash()
        codes = [venue.rejection(venue.do(C.ListAsset, admin, symbol=s, decimals=9)) for s in ("", "sol", "S O L")]
        assert codes == ["BAD_LISTING"] * 3
        assert venue.hash() == before


class TestGtdExpiry:
    def test_gtd_expires_at_the_first_command_at_or_after_its_expiry(self, venue):
        """A GTD order survives a command at expiry - 1 and expires (cause SYSTEM) before the one at expiry."""
        b = venue.actor(2)
        venue.fund(b, "BTC", 10 * LOT)
        expiry = venue.now + 100
        order = venue.order_id(venue.place(b, SELL, P, 4, tif=GTD, expiry=expiry))
        venue.at(expiry - 1)
        assert venue.of(venue.tick(), E.OrderExpired) == []
        assert venue.balance(b, "BTC") == (6 * LOT, 4 * LOT)
        venue.at(expiry)
        events = venue.fund(venue.actor(9), "USDC", 1)
        assert [type(e) for e in events] == [E.OrderExpired, E.BookDelta, E.Deposited, E.CommandDone]
        expired = events[0]
        assert (expired.order_id, expired.remaining, expired.reason) == (order, 4, "expiry")
        assert expired.cause == E.Cause.SYSTEM
        assert events[1].cause == E.Cause.SYSTEM and events[2].cause == E.Cause.USER
        assert venue.balance(b, "BTC") == (10 * LOT, 0)
        assert venue.order(order) is None

    def test_timers_fire_in_time_then_creation_order(self, venue):
        """Expiries due at one command fire earliest first, ties in the order the timers were set."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 50_000_000)
        t = venue.now
        ids = {
            expiry: venue.order_id(venue.place(a, BUY, P - n, 1, tif=GTD, expiry=t + expiry))
            for n, expiry in enumerate((30, 10, 31, 20))
        }
        tie = venue.order_id(venue.place(a, BUY, P - 9, 1, tif=GTD, expiry=t + 30))
        venue.at(t + 50)
        expired = [e.order_id for e in venue.of(venue.tick(), E.OrderExpired)]
        assert expired == [ids[10], ids[20], ids[30], tie, ids[31]]
        assert venue.balance(a, "USDC") == (50_000_000, 0)

    def test_expiry_applies_before_the_command_at_that_time(self, venue):
        """A taker arriving exactly at a maker's expiry finds it gone and rests instead of trading."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 10_000_000)
        venue.fund(b, "BTC", LOT)
        venue.place(b, SELL, P, 1, tif=GTD, expiry=venue.now + 10)
        venue.advance(10)
        events = venue.place(a, BUY, P, 1)
        assert venue.of(events, E.Fill) == []
        assert isinstance(events[0], E.OrderExpired)
        assert venue.order(venue.order_id(events)) is not None

    def test_partially_filled_gtd_releases_its_remainder(self, venue):
        """An expiring GTD buy that has partly traded frees exactly the quote of its remaining lots."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        order = venue.order_id(venue.place(a, BUY, P, 5, tif=GTD, expiry=venue.now + 5))
        venue.place(b, SELL, P, 2)
        assert venue.balance(a, "USDC") == (20_000_000 - 5 * P, 3 * P)
        venue.advance(5)
        (expired,) = venue.of(venue.tick(), E.OrderExpired)
        assert (expired.order_id, expired.remaining) == (order, 3)
        assert venue.balance(a, "USDC") == (20_000_000 - 2 * P, 0)

    def test_a_rejected_command_still_fires_due_timers(self, venue):
        """Timers belong to time, not to the command: an expiry fires even if the command itself is refused."""
        b = venue.actor(2)
        venue.fund(b, "BTC", LOT)
        order = venue.order_id(venue.place(b, SELL, P, 1, tif=GTD, expiry=venue.now + 5))
        venue.advance(5)
        events = venue.do(C.Withdraw, b, asset="BTC", amount=LOT + 1)
        assert [type(e) for e in events] == [E.OrderExpired, E.BookDelta, E.Rejected, E.CommandDone]
        assert [e.index for e in events] == [0, 1, 2, 3]
        assert venue.order(order) is None
        assert venue.balance(b, "BTC") == (LOT, 0)

    def test_cancelled_or_filled_gtd_does_not_fire(self, venue):
        """A GTD order that left the book before its expiry produces no event when its timer comes due."""
        a, b = venue.actor(1), venue.actor(2)
        venue.fund(a, "USDC", 20_000_000)
        venue.fund(b, "BTC", 10 * LOT)
        gone = venue.order_id(venue.place(b, SELL, P, 1, tif=GTD, expiry=venue.now + 5))
        venue.cancel(b, gone)
        venue.place(b, SELL, P, 1, tif=GTD, expiry=venue.now + 5)
        venue.place(a, BUY, P, 1)
        venue.advance(10)
        assert [type(e) for e in venue.tick()] == [E.CommandDone]

    def test_bad_expiries_are_refused(self, venue):
        """GTD needs an expiry after the command's timestamp; other orders must not carry one."""
        a = venue.actor(1)
        venue.fund(a, "USDC", 20_000_000)
        before = venue.hash()
        assert venue.rejection(venue.place(a, BUY, P, 1, tif=GTD, expiry=venue.now)) == "BAD_EXPIRY"
        assert venue.rejection(venue.place(a, BUY, P, 1, expiry=venue.now + 10)) == "BAD_EXPIRY"
        assert venue.hash() == before
