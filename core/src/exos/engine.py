"""The engine: one deterministic state machine over the ledger, the books and the plugins' market objects.

Commands are the only input (`exos.commands`); each is applied whole or not at all (validate, then
mutate) and produces events (`exos.events`), ending with CommandDone. Time advances only with command
timestamps; timers due at a command's timestamp fire before the command applies. No wall clock,
randomness, float or set/dict-order dependence lives here: the same commands give byte-identical
state (`state_hash`). With a journal, a command is acknowledged (its events returned) only after its
record is durable.
"""

from __future__ import annotations

import gc
import hashlib
import struct
import tomllib
from collections.abc import Container, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from exos import commands as C
from exos import native
from exos.agents import AgentBook
from exos.book import REFUSED, RESTED, Book
from exos.commands import Command, Kind, Status
from exos.errors import ExosError
from exos.events import Event as PublicEvent
from exos.events import EventKind, RawEvent, decode_all
from exos.ledger import Ledger, SettlementContext
from exos.manifest import ASSET_SYMBOL, AssetSpec, Manifest, MarketSpec, parse_market_table
from exos.marketctx import Context, View
from exos.nonces import NonceBook
from exos.plugins import Plugins, load_plugins
from exos.protocols import (
    ComplianceRequest,
    FillSide,
    Market,
    MarketInfo,
    OrderCheck,
    OrderIntent,
    OrderRejection,
    StatefulPlugin,
)
from exos.timers import TimerKind, TimerQueue
from exos.types import ANY_OWNER, Level, Reason

if TYPE_CHECKING:
    from exos.margin import UnifiedMargin

ENGINE_VERSION = "0.1.0"
STATE_MAGIC = b"EXOSSTATE1"
_I64_MAX: Final = 2**63 - 1
_I128_MAX = 2**127 - 1  # every balance is bounded by its asset's total deposits
# Literals, Final: the compiled engine folds them into its code, where a plain module global costs a dict lookup
# at every use. Each equals the enum member its name says (core/tests/test_native.py checks them all).
_FLAG_POST_ONLY: Final = 1  # commands.FLAG_*
_FLAG_HAS_CLIENT_ID: Final = 2
_FLAG_REDUCE_ONLY: Final = 4
_REDUCE_ONLY_STATUS: Final = 2  # Status.REDUCE_ONLY
_HALTED_STATUS: Final = 3  # Status.HALTED
_USER: Final = 0  # Cause.*
_SYSTEM: Final = 1
_SETTLEMENT: Final = 3
_ACCEPTED: Final = 1  # EventKind.*
_FILL: Final = 2
_CANCELLED: Final = 3
_EXPIRED: Final = 4
_AMENDED: Final = 5
_DELTA: Final = 6
_REJECTED: Final = 13
_DONE: Final = 14
_DELAYED: Final = 16
_MARKET_TIMER: Final = 2  # TimerKind.*
_DELAYED_TIMER: Final = 3
# book event types (docs/book.md)
_B_ACCEPTED: Final = 1
_B_REJECTED: Final = 2
_B_FILL: Final = 3
_B_CANCELLED: Final = 4
_B_EXPIRED: Final = 5
_B_AMENDED: Final = 6
_B_L2: Final = 7
_MAKER_DONE: Final = 1
_TAKER_DONE: Final = 2
_PLACE: Final = 4  # Kind.*
_CANCEL: Final = 5
_REASON_NAMES = {int(r): r.name for r in Reason}
_STATUS_NAMES = {int(s): s.name.lower() for s in Status}
_ALL_MARKETS_KEY = b""
_NO_SLOTS: Final = (0, 0)
# commands whose signer must be the account's address, or (trading only) an agent it approved
_SIGNED_BY_OWNER: Final = frozenset(int(k) for k in (
    Kind.WITHDRAW, Kind.TRANSFER, Kind.PLACE, Kind.CANCEL, Kind.CANCEL_BY_CLIENT_ID, Kind.CANCEL_ALL, Kind.AMEND,
    Kind.MARKET_ACTION, Kind.APPROVE_AGENT, Kind.REVOKE_AGENT,
))  # fmt: skip
_AGENT_MAY_SIGN = frozenset(int(k) for k in (
    Kind.PLACE, Kind.CANCEL, Kind.CANCEL_BY_CLIENT_ID, Kind.CANCEL_ALL, Kind.AMEND, Kind.MARKET_ACTION,
))  # fmt: skip


class EngineError(ExosError):
    """The engine cannot start or continue (a bad manifest/plugin combination, a failed journal)."""

    code = "ENGINE"


class Rejection(Exception):
    """Internal: a command's validation failed; nothing has been mutated."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _key(name: str, width: int) -> bytes:
    """The NUL-padded fixed-width form in which records carry names."""
    return name.encode().ljust(width, b"\0")


class MarketState:
    """A listed market: its book, its plugin object and the facts the order path needs.

    A plain class, not attrs: mypyc compiles it to a native struct, so the order path reads its fields
    directly rather than through Python attribute lookups."""

    def __init__(
        self, *, index: int, name: str, market_type: str, spec_json: bytes, info: MarketInfo, market: Market,
        book: Book, status: int, checks: list[OrderCheck], base_symbol: str, quote_symbol: str, outcomes: int = 1,
        manages_status: bool = False, delays: bool = False, policies: tuple[Any, ...] = (), margined: bool = False,
    ) -> None:  # fmt: skip
        """A market's state as listing builds it."""
        self.index = index
        self.name = name
        self.market_type = market_type
        self.spec_json = spec_json
        self.info = info
        self.market = market
        self.book = book
        self.status = status
        self.checks = checks
        self.base_symbol = base_symbol
        self.quote_symbol = quote_symbol
        self.outcomes = outcomes  # a market with outcomes (binary: 2) serves them from its one book
        self.manages_status = manages_status  # the market type drives the status (SetMarketStatus is refused)
        self.delays = delays  # the market has a `taker_delay_ms` (ms a marketable order waits now; 0: none)
        self.policies = policies  # compliance policies its orders pass: the venue's, then its own
        self.margined = margined  # its orders reserve margin (a `MarginedMarket`: perpetuals)
        # its orders' slot 3 matters to their locks (an outcome, or a margined order's class)
        self.classed = margined or outcomes > 1
        # a margined market's settlement asset: its orders lock size × class of it (MarginedMarket fixes that), so
        # the order path computes their locks rather than asks the market
        self.margin_asset = -1

    def lock(self, side: int, price: int, size: int, slot3: int) -> tuple[int, int]:
        """(asset, amount) an order of `size` lots holds: size × class of the settlement asset in a margined market
        (MarginedMarket fixes it, so it is computed here), else what the market's `lock_requirement` says."""
        if self.margined:
            return self.margin_asset, size * slot3
        asset, amount = self.market.lock_requirement(side, price, size, slot3)
        return asset, amount

    def __repr__(self) -> str:
        """The market's index and name (its book and plugin object are too large to print)."""
        return f"MarketState({self.index}, {self.name!r}, {self.market_type!r})"


@attrs.frozen
class DelayedOrder:
    """A marketable order held back by a market's taker delay (in-play); its funds are locked already."""

    market: int
    account: int
    side: int
    price: int
    size: int
    tif: int
    flags: int
    stp: int
    expiry: int
    client_id: bytes | None
    outcome: int
    slots: tuple[int, int]
    asset: int
    amount: int
    release_at: int


class Engine:
    """A venue's state machine. Build it with `Engine.from_manifest`."""

    def __init__(self, manifest: Manifest, plugins: Plugins) -> None:
        """An engine at genesis: the manifest's assets and markets are listed, nothing else has happened."""
        native.report()  # a missing or stale mypyc build runs the sources, slower: say so once
        self.manifest = manifest
        self.plugins = plugins
        self.admins = frozenset(manifest.venue.admins)
        self.ledger = Ledger(manifest.venue.fee_account)
        self.markets: list[MarketState] = []
        self.market_keys: dict[bytes, MarketState] = {}
        self.asset_keys: dict[bytes, int] = {}
        self._symbols: list[str] = []  # asset index -> symbol, for events
        self.timers = TimerQueue()
        self.nonces = NonceBook()
        self.agents = AgentBook()
        self._nonce_window = manifest.venue.nonce_window
        try:
            self.venue_policies = tuple(self._policy(name, "venue.compliance") for name in manifest.venue.compliance)
        except Rejection as rejection:
            raise EngineError(f"{manifest.source}: {rejection.message}", code=rejection.code) from None
        self.oracles: dict[str, Any] = {}  # feed name -> OracleFeed, in manifest order
        self._oracle_reported: tuple[int, int] | None = None  # (command seq, feed index) of the last staleness report
        for index, spec in enumerate(manifest.oracles):
            kind = plugins.oracles.get(spec.kind)
            if kind is None:
                raise EngineError(f"{manifest.source}: oracles[{index}].kind: no enabled plugin registers oracle kind "
                                  f"{spec.kind!r}", code="UNKNOWN_ORACLE_KIND")  # fmt: skip
            try:
                self.oracles[spec.name] = kind.create(spec.name, spec.params)
            except ValueError as exc:
                raise EngineError(f"{manifest.source}: oracles[{index}].params: {exc}", code="BAD_ORACLE") from None
        self.last_timestamp = -(2**63)
        self.next_order_id = 1
        self.seq = 0
        self.delayed: dict[int, DelayedOrder] = {}  # order id -> order waiting out a taker delay
        self.market_assets: set[int] = set()  # assets market types issue (outcome shares): no deposit/withdraw
        self._settlement = SettlementContext(self.ledger)
        self._checks: list[OrderCheck] = list(plugins.order_checks.values())
        self.view = View(self)
        for market_type in plugins.market_types.values():
            bind = getattr(market_type, "bind", None)
            if bind is not None:
                bind(self.view)
        for feed in self.oracles.values():  # a feed that reads the venue's own books (mark_ema) binds the same way
            if hasattr(feed, "bind"):
                feed.bind(self.view)
        self._listing_out: tuple[list[RawEvent], int, int] | None = None
        self._journal: Any = None
        self._files: Any = None
        self._journal_dir: Path | None = None
        self._failed: BaseException | None = None
        self.recovery: Any = None
        self.margin: UnifiedMargin | None = None  # for venues with margined markets or a [margin] table
        self._tick_scales: dict[tuple[int, str], tuple[int, int]] = {}  # feed_scale's, per (market, feed)
        self._handlers = {
            int(Kind.DEPOSIT): self._deposit,
            int(Kind.WITHDRAW): self._withdraw,
            int(Kind.TRANSFER): self._transfer,
            int(Kind.PLACE): self._place,
            int(Kind.CANCEL): self._cancel,
            int(Kind.CANCEL_BY_CLIENT_ID): self._cancel_by_client_id,
            int(Kind.CANCEL_ALL): self._cancel_all,
            int(Kind.AMEND): self._amend,
            int(Kind.SET_MARKET_STATUS): self._set_status,
            int(Kind.LIST_ASSET): self._list_asset_command,
            int(Kind.LIST_MARKET): self._list_market_command,
            int(Kind.TICK): self._tick,
            int(Kind.MARKET_ACTION): self._market_action,
            int(Kind.APPROVE_AGENT): self._approve_agent,
            int(Kind.REVOKE_AGENT): self._revoke_agent,
            int(Kind.COMPLIANCE_UPDATE): self._compliance_update,
            int(Kind.ORACLE_UPDATE): self._oracle_update,
        }
        self._genesis()

    @classmethod
    def from_manifest(cls, path: str | Path, *, journal: str | Path | None = None, files: Any = None) -> Engine:
        """Load the manifest, its plugins and, with a journal directory, recover the state it holds."""
        manifest = Manifest.from_toml(path)
        return cls.from_parsed(manifest, journal=journal, files=files)

    @classmethod
    def from_parsed(cls, manifest: Manifest, *, journal: str | Path | None = None, files: Any = None) -> Engine:
        """Like from_manifest, for a manifest already parsed (replay reads it out of the journal header)."""
        engine = cls(manifest, load_plugins(manifest.plugins))
        if journal is not None:
            from exos.recovery import attach_journal  # only journaled engines need the file layer

            attach_journal(engine, Path(journal), files)
        return engine

    # ------------------------------------------------------------ genesis and listing

    def _genesis(self) -> None:
        """List the manifest's assets and markets, exactly as the admin commands would."""
        tables = tomllib.loads(self.manifest.raw.decode()).get("markets", [])
        for asset in self.manifest.assets:
            self._add_asset(asset.symbol, asset.decimals)
        for spec, table in zip(self.manifest.markets, tables, strict=True):
            try:
                self._add_market(spec, C.canonical_json(table))
            except Rejection as rejection:
                raise EngineError(f"{self.manifest.source}: {rejection.message}", code=rejection.code) from None
        margin_spec = self.manifest.margin
        if self.margin is None and (margin_spec.groups or margin_spec.collateral):  # no margined market started it
            self._start_margin()

    def _start_margin(self) -> None:
        """Unified margin, once a venue has a margined market or a [margin] table (it opens the groups' accounts)."""
        from exos.margin import UnifiedMargin

        self.margin = UnifiedMargin(self)
        for ms in self.markets:
            if ms.margined:
                self.margin.add_market(ms)
        self.ledger.borrowable = self.margin.borrowable

    def _add_asset(self, symbol: str, decimals: int) -> int:
        """List an asset in the ledger and the name index."""
        index = self.ledger.add_asset(symbol, decimals)
        self.asset_keys[_key(symbol, C.SYMBOL_LEN)] = index
        self._symbols.append(symbol)
        return index

    def _assets(self) -> dict[str, AssetSpec]:
        """The listed assets as the manifest parser knows them."""
        return {a.symbol: AssetSpec(a.symbol, a.decimals) for a in self.ledger.assets}

    def _add_market(self, spec: MarketSpec, spec_json: bytes, *, restoring: bool = False) -> MarketState:
        """Create a market's book and plugin object (the plugins are asked here, once)."""
        market_type = self.plugins.market_types.get(spec.type)
        if market_type is None:
            raise Rejection(
                "UNKNOWN_MARKET_TYPE", f"markets.{spec.name}.type: no enabled plugin registers {spec.type!r}"
            )
        fee_factory = self.plugins.fee_models.get(spec.fee_model)
        if fee_factory is None:
            raise Rejection(
                "UNKNOWN_FEE_MODEL", f"markets.{spec.name}.fee_model: no enabled plugin registers {spec.fee_model!r}"
            )
        index = len(self.markets)
        new_assets = self._listing_assets(market_type, spec, restoring)
        first_new = len(self.ledger.assets)
        if restoring and new_assets:  # a loaded ledger holds them already, listed right before the market
            first_new = self.ledger.asset_ids[new_assets[0][0]]
        info = MarketInfo(
            market_id=index,
            name=spec.name,
            base_asset=self.ledger.asset_ids[spec.base],
            quote_asset=self.ledger.asset_ids[spec.quote],
            lot_units=spec.lot_units,
            quote_per_tick_lot=spec.quote_per_tick_lot,
            min_lots=spec.min_lots,
            min_notional_units=spec.min_notional_units,
            params=spec.params,
            outcome_assets=tuple(range(first_new, first_new + len(new_assets))),
            base_decimals=self.ledger.assets[self.ledger.asset_ids[spec.base]].decimals,
            quote_decimals=self.ledger.assets[self.ledger.asset_ids[spec.quote]].decimals,
        )
        try:
            fees = fee_factory.create(spec.fees.maker_centibps, spec.fees.taker_centibps, spec.params)
            market = market_type.create_market(info, fees)
        except (ValueError, TypeError, KeyError, OrderRejection) as exc:
            raise Rejection("BAD_LISTING", f"markets.{spec.name}: {exc}") from None
        policies = self.venue_policies + tuple(
            self._policy(name, f"markets.{spec.name}.compliance")
            for name in spec.compliance
            if name not in self.manifest.venue.compliance
        )
        book = Book(spec.max_orders, spec.max_levels)
        self.market_assets.update(info.outcome_assets)
        for symbol, decimals in [] if restoring else new_assets:
            self._add_asset(symbol, decimals)
            if self._listing_out is not None:
                out, seq, base = self._listing_out
                out.append((seq, len(out) - base, _USER, int(EventKind.ASSET_LISTED), symbol, decimals))
        state = MarketState(
            index=index,
            name=spec.name,
            market_type=spec.type,
            spec_json=spec_json,
            info=info,
            market=market,
            book=book,
            status=int(C.STATUS_NAMES[spec.status]),
            checks=self._checks,
            base_symbol=spec.base,
            quote_symbol=spec.quote,
            outcomes=int(getattr(market, "outcomes", 1)),
            manages_status=bool(getattr(market, "manages_status", False)),
            delays=hasattr(market, "taker_delay_ms"),
            policies=policies,
            margined=bool(getattr(market, "margined", False)),
        )
        if state.margined:
            state.margin_asset = int(market.settlement)  # type: ignore[attr-defined]
        self.markets.append(state)
        self.market_keys[_key(spec.name, C.NAME_LEN)] = state
        on_listed = getattr(market, "on_listed", None)
        if on_listed is not None and not restoring:
            out, seq, base = self._listing_out if self._listing_out is not None else ([], 0, 0)
            on_listed(Context(self, index, (b"", 0), b"", seq, base, out, _USER))
        if self.margin is not None:
            if state.margined:
                self.margin.add_market(state)
                self.ledger.borrowable = self.margin.borrowable
            else:
                self.margin.spot_listed(state)
        elif state.margined:  # the venue's first margined market
            self._start_margin()
        return state

    def _policy(self, name: str, where: str) -> Any:
        """An enabled compliance policy by name."""
        policy = self.plugins.compliance_policies.get(name)
        if policy is None:
            raise Rejection("UNKNOWN_POLICY", f"{where}: no enabled plugin registers compliance policy {name!r}")
        return policy

    def _comply(self, policies: Sequence[Any], action: str, address: bytes, ms: MarketState | None = None) -> None:
        """Refuse unless every policy allows the action (a refusal names its policy and list version)."""
        request = ComplianceRequest(action, address, ms.name if ms else "", ms.info.params if ms else {})
        for policy in policies:
            why = policy.decide(request)
            if why is not None:
                raise Rejection("COMPLIANCE", f"{policy.name}: {why}")

    def _listing_assets(self, market_type: Any, spec: MarketSpec, restoring: bool) -> list[tuple[str, int]]:
        """The assets a market type creates with a market (outcome shares), checked before anything changes."""
        listing_assets = getattr(market_type, "listing_assets", None)
        if listing_assets is None:
            return []
        quote_decimals = self.ledger.assets[self.ledger.asset_ids[spec.quote]].decimals
        try:
            assets = list(listing_assets(spec.name, spec.params, quote_decimals))
        except (ValueError, TypeError, KeyError) as exc:
            raise Rejection("BAD_LISTING", f"markets.{spec.name}: {exc}") from None
        seen: set[str] = set()
        for symbol, decimals in assets:
            if (
                not isinstance(symbol, str)
                or not ASSET_SYMBOL.fullmatch(symbol)
                or (_key(symbol, C.SYMBOL_LEN) in self.asset_keys) != restoring
                or symbol in seen
            ):
                raise Rejection("BAD_LISTING", f"markets.{spec.name}: asset {symbol!r} is invalid or listed already")
            seen.add(symbol)
            if restoring:
                continue
            if not isinstance(decimals, int) or not 0 <= decimals <= 30:
                raise Rejection("BAD_LISTING", f"markets.{spec.name}: asset {symbol!r} has decimals {decimals!r}")
        return assets

    # ------------------------------------------------------------ submitting

    def submit(self, command: Command) -> list[PublicEvent]:
        """Apply one command; returns its events (acknowledged: durable first when journaled)."""
        return decode_all(self.submit_records([command.pack()]))

    def submit_batch(self, commands: Sequence[Command] | bytes) -> list[RawEvent]:
        """Apply many commands (attrs commands or concatenated canonical records): raw events, one group commit.

        The events and the resulting state are exactly those of submitting the commands one by one."""
        if isinstance(commands, bytes | bytearray | memoryview):
            return self._submit_blob(bytes(commands))
        return self._submit_blob(b"".join(command.pack() for command in commands))

    def submit_records(self, records: Sequence[bytes]) -> list[RawEvent]:
        """Apply canonical records, journal them as one group commit, then return their raw events."""
        return self._submit_blob(b"".join(records))

    def _submit_blob(self, blob: bytes) -> list[RawEvent]:
        """Apply concatenated records in order; with a journal, acknowledge only after one fsync covers them all."""
        if self._failed is not None:
            raise EngineError(f"the engine stopped after a journal failure: {self._failed}", code="FAIL_STOP")
        out: list[RawEvent] = []
        # The hot path makes no reference cycles, so the cyclic collector has nothing to find here; its
        # passes over the growing event list cost about 10% of the batch.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._apply_blob(blob, out)
        finally:
            if collecting:
                gc.enable()
        return out

    def _apply_blob(self, blob: bytes, out: list[RawEvent]) -> None:
        """The loop of _submit_blob."""
        apply = self._apply
        unpack_from = C.RECORD.unpack_from
        size: int = C.RECORD.size
        offset, end = 0, len(blob)
        journal = self._journal
        payloads: list[bytes] = []
        while offset < end:
            if end - offset < size:
                apply(None, b"", out, "record: truncated at the end of the batch")
                break
            fields = unpack_from(blob, offset)
            tail_length: int = fields[-1]
            stop = offset + size + tail_length
            if stop > end:
                apply(None, b"", out, "record: its tail runs past the end of the batch")
                break
            apply(fields, blob[offset + size : stop] if tail_length else b"", out, None)
            if journal is not None:
                payloads.append(blob[offset:stop])
            offset = stop
        if journal is not None and payloads:
            try:
                journal.append_batch(payloads)
            except Exception as exc:
                self._failed = exc
                raise

    def replay(self, records: Iterable[bytes]) -> int:
        """Apply journaled records without journaling them again; returns how many were applied."""
        out: list[RawEvent] = []
        count = 0
        for record in records:
            try:
                fields, tail = C.split(record)
            except ExosError as exc:
                self._apply(None, b"", out, exc.message)
            else:
                self._apply(fields, tail, out, None)
            out.clear()
            count += 1
        return count

    # ------------------------------------------------------------ the state machine

    def _apply(self, fields: tuple[Any, ...] | None, tail: bytes, out: list[RawEvent], malformed: str | None) -> None:
        """Apply one decoded record (or reject a malformed one), appending its events to `out`."""
        self.seq += 1
        seq = self.seq
        base = len(out)
        if fields is None:
            out.append((seq, 0, _USER, _REJECTED, "BAD_RECORD", malformed))
            out.append((seq, 1, _USER, _DONE, False))
            return
        timestamp: int = fields[8]  # typed: compiled, it compares as a machine integer
        if timestamp < self.last_timestamp:
            out.append(
                (seq, 0, _USER, _REJECTED, "TIMESTAMP_REGRESSION",
                 f"timestamp: {timestamp} is earlier than the last command's {self.last_timestamp}")
            )  # fmt: skip
            out.append((seq, 1, _USER, _DONE, False))
            return
        self.last_timestamp = timestamp
        heap = self.timers._heap
        if heap and heap[0][0] <= timestamp:
            self._fire_timers(timestamp, seq, base, out)
            if self.margin is not None and self.margin.liquidator.urgent:  # funding may leave accounts under water
                self._settle_urgent(seq, base, out)
        action = len(out)
        try:
            kind: int = fields[0]
            signer: bytes = fields[11]
            if signer != fields[10] and kind in _SIGNED_BY_OWNER:
                self._authorise(fields, signer, timestamp)
            nonce: int = fields[9]
            if nonce:
                window = self._nonce_window
                if window is not None:
                    if nonce <= timestamp - window[0]:  # signed too long ago: the action has expired
                        raise Rejection("EXPIRED_ACTION", f"nonce {nonce} is at or before {timestamp - window[0]}, "
                                        f"the start of the venue's window at {timestamp}")  # fmt: skip
                    if nonce >= timestamp + window[1]:
                        raise Rejection("NONCE", f"nonce {nonce} is at or after {timestamp + window[1]}, the end of "
                                        "the venue's window")  # fmt: skip
                why = self.nonces.check(fields[11], nonce)
                if why is not None:
                    raise Rejection("NONCE", why)
            # the two commands that carry most of the traffic are called directly (a native call, where the
            # handler table's bound methods go through Python's calling convention)
            if kind == _PLACE:
                self._place(fields, tail, seq, base, out)
            elif kind == _CANCEL:
                self._cancel(fields, tail, seq, base, out)
            else:
                handler = self._handlers.get(kind)
                if handler is None:
                    raise Rejection("UNKNOWN_COMMAND", f"kind: {kind} is not a command kind")
                handler(fields, tail, seq, base, out)
            if nonce:
                self.nonces.use(fields[11], nonce)
        except Rejection as rejection:
            del out[action:]
            out.append((seq, len(out) - base, _USER, _REJECTED, rejection.code, rejection.message))
            out.append((seq, len(out) - base, _USER, _DONE, False))
            return
        except Exception as exc:
            # Plugin code failed after the command began to mutate state, which cannot be undone:
            # stop (nothing of this batch was journaled or acknowledged; restart from the journal).
            self._failed = exc
            raise EngineError(
                f"command {seq} failed part-way ({type(exc).__name__}: {exc}); the engine stopped, restart it "
                "from its journal",
                code="FAIL_STOP",
            ) from exc
        if self.margin is not None and self.margin.liquidator.urgent:  # a fill far from mark: check it now
            self._settle_urgent(seq, base, out)
        out.append((seq, len(out) - base, _USER, _DONE, True))

    def unified_margin(self) -> UnifiedMargin:
        """The venue's unified margin; EngineError(NO_MARGIN) on a venue with no margined market nor [margin] table."""
        margin = self.margin
        if margin is None:
            raise EngineError("this venue has no unified margin (no margined market, no [margin] table)",
                              code="NO_MARGIN")  # fmt: skip
        return margin

    def _settle_urgent(self, seq: int, base: int, out: list[RawEvent]) -> None:
        """A liquidation pass over the accounts this command flagged (derived inside it, cause liquidation)."""
        try:
            self.unified_margin().liquidator.run(seq, base, out, [], [])
        except Exception as exc:
            self._failed = exc
            raise EngineError(f"command {seq}: liquidation failed ({type(exc).__name__}: {exc}); the engine stopped",
                              code="FAIL_STOP") from exc  # fmt: skip

    def _fire_timers(self, now: int, seq: int, base: int, out: list[RawEvent]) -> None:
        """Fire every timer due at `now`, in (time, sequence) order."""
        timers = self.timers
        while (timer := timers.pop_due(now)) is not None:
            _, _, kind, arg0, arg1 = timer
            if kind == TimerKind.EXPIRE_ORDER:
                ms = self.markets[arg0]
                raw = ms.book.cancel_raw(arg1, ANY_OWNER, True)
                if raw[0][2] != _B_REJECTED:  # the order may have filled or been cancelled since
                    self._book_events(ms, raw, None, seq, base, out, _SYSTEM)
            elif kind == _DELAYED_TIMER:
                self._release(arg1, now, seq, base, out)
            elif kind == TimerKind.ORACLE:
                self._oracle_expired(arg0, timer[0], now, seq, base, out)
            elif kind == _MARKET_TIMER:
                ms = self.markets[arg0]
                context = Context(self, arg0, (b"", 0), b"", seq, base, out, _SYSTEM)
                try:
                    ms.market.on_timer(context, arg1)  # type: ignore[attr-defined]
                except Exception as exc:  # a timer cannot be refused: its effects may have begun
                    self._failed = exc
                    raise EngineError(
                        f"timer of {ms.name} failed at {now} ({type(exc).__name__}: {exc}); the engine stopped",
                        code="FAIL_STOP",
                    ) from exc

    def _account(self, fields: tuple[Any, ...]) -> int:
        """The actor's existing account (an unknown account holds nothing: INSUFFICIENT_BALANCE)."""
        account = self.ledger.account_ids.get((fields[10], fields[6]))
        if account is None:
            raise Rejection("INSUFFICIENT_BALANCE", f"account 0x{fields[10].hex()}/{fields[6]} holds nothing")
        return account

    def _market(self, fields: tuple[Any, ...]) -> MarketState:
        """The command's market."""
        ms = self.market_keys.get(fields[12])
        if ms is None:
            raise Rejection("UNKNOWN_MARKET", f"market: no market named {_text(fields[12])!r}")
        return ms

    def _asset(self, fields: tuple[Any, ...]) -> int:
        """The command's asset."""
        asset = self.asset_keys.get(fields[13])
        if asset is None:
            raise Rejection("UNKNOWN_ASSET", f"asset: no asset named {_text(fields[13])!r}")
        return asset

    def _amount(self, fields: tuple[Any, ...]) -> int:
        """The command's amount, which must be positive."""
        amount = int.from_bytes(fields[16], "little", signed=True)
        if amount <= 0:
            raise Rejection("BAD_AMOUNT", f"amount: must be > 0, got {amount}")
        return amount

    def _funds(self, fields: tuple[Any, ...]) -> tuple[int, int, int]:
        """(account, asset, amount) of a command that spends an account's balance."""
        asset, amount = self._asset(fields), self._amount(fields)
        return self._account(fields), asset, amount

    def _cover(self, account: int, asset: int, amount: int, what: str) -> None:
        """Refuse a spend the account's available balance does not cover."""
        available = self.ledger.available[asset][account]
        if amount > available:
            raise Rejection("INSUFFICIENT_BALANCE", f"{what}: {amount} exceeds the available {available}")

    def _require_margin(self, account: int, asset: int, amount: int, what: str) -> None:
        """Refuse to commit `amount` more of a risk group's margin than the account has free."""
        free = self.unified_margin().free_initial(account, asset)
        if free < amount:
            raise Rejection("INSUFFICIENT_MARGIN", f"{self.ledger.assets[asset].symbol}: {what} needs {amount} of "
                            f"initial margin, the account has {free} free")  # fmt: skip

    def _spends_margin(self, account: int, asset: int, amount: int, what: str) -> None:
        """A spot or outcome order that locks a risk group's settlement asset spends what backs the account's
        positions (or its debt): it must leave the initial requirement covered (INSUFFICIENT_MARGIN otherwise)."""
        margin = self.unified_margin()
        exposed = amount > 0 and asset in margin.groups and margin.exposed(account)
        if exposed and not margin.covers_initial(account, asset, amount):
            self._require_margin(account, asset, amount, what)

    def _withdrawable(self, account: int, asset: int, amount: int, what: str) -> None:
        """Refuse a withdrawal or transfer that would leave less than max(initial margin, floor × notional) covered."""
        margin = self.unified_margin()
        column = self.ledger.available[asset]
        column[account] -= amount  # measured as if done, then undone: nothing changes before the verdict
        try:
            short = [(group, free) for group in margin.groups_of(account)
                     if (free := margin.free_withdraw(account, group.asset)) < 0]  # fmt: skip
        finally:
            column[account] += amount
        if short:
            group, free = short[0]
            raise Rejection("INSUFFICIENT_MARGIN", f"{what}: {amount} {self.ledger.assets[asset].symbol} would leave "
                            f"{group.symbol} margin {free} short of max(initial margin, "
                            f"{margin.withdraw_floor_bps} bp of notional); unrealised gains stay until "
                            "realised")  # fmt: skip

    def _admin(self, fields: tuple[Any, ...]) -> None:
        """Admin commands must be signed by an address the manifest names."""
        if fields[11] not in self.admins:
            raise Rejection("NOT_ADMIN", f"signer 0x{fields[11].hex()} is not an admin of this venue")

    # ------------------------------------------------------------ balances

    def _movable(self, asset: int, what: str) -> None:
        """Assets a market type issues (outcome shares) enter and leave only through that market."""
        if asset in self.market_assets:
            raise Rejection(
                "MARKET_ASSET", f"{self.ledger.assets[asset].symbol} is issued by its market: it cannot {what}"
            )

    def _deposit(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        self._admin(fields)
        asset, amount = self._asset(fields), self._amount(fields)
        self._movable(asset, "be deposited")
        if self.venue_policies:
            self._comply(self.venue_policies, "deposit", fields[10])
        if self.ledger.deposits[asset] + amount > _I128_MAX:
            raise Rejection(
                "OVERFLOW", f"deposit: total deposits of {self.ledger.assets[asset].symbol} would exceed i128"
            )
        account = self.ledger.open_account(fields[10], fields[6])
        self.ledger.deposit(account, asset, amount)
        out.append((seq, len(out) - base, _USER, int(EventKind.DEPOSITED), fields[10], fields[6],
                    self.ledger.assets[asset].symbol, amount))  # fmt: skip

    def _withdraw(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        account, asset, amount = self._funds(fields)
        self._movable(asset, "be withdrawn")
        if self.venue_policies:
            self._comply(self.venue_policies, "withdraw", fields[10])
        self._cover(account, asset, amount, "withdraw")
        if self.margin is not None and self.margin.exposed(account):
            self._withdrawable(account, asset, amount, "withdraw")
            self.margin.touched(account)  # a smaller buffer: its at-risk triggers are recomputed at the next pass
        self.ledger.withdraw(account, asset, amount)
        out.append((seq, len(out) - base, _USER, int(EventKind.WITHDRAWN), fields[10], fields[6],
                    self.ledger.assets[asset].symbol, amount))  # fmt: skip

    def _transfer(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        account, asset, amount = self._funds(fields)
        if fields[7] == fields[6]:
            raise Rejection("BAD_TRANSFER", f"to_sub: {fields[7]} is the sending sub-account")
        self._cover(account, asset, amount, "transfer")
        if self.margin is not None and self.margin.exposed(account):
            self._withdrawable(account, asset, amount, "transfer")
            self.margin.touched(account)
        target = self.ledger.open_account(fields[10], fields[7])
        self.ledger.move_available(account, asset, amount, target)
        out.append((seq, len(out) - base, _USER, int(EventKind.TRANSFERRED), fields[10], fields[6], fields[7],
                    self.ledger.assets[asset].symbol, amount))  # fmt: skip

    # ------------------------------------------------------------ orders

    def _place(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        # _market and _account are inlined here and in _cancel: these two carry most of the traffic
        ms = self.market_keys.get(fields[12])
        if ms is None:
            raise Rejection("UNKNOWN_MARKET", f"market: no market named {_text(fields[12])!r}")
        # typed locals: the compiled engine then compares and masks them as machine integers
        side: int = fields[1]
        tif: int = fields[2]
        flags: int = fields[3]
        stp: int = fields[4]
        outcome: int = fields[5]
        timestamp: int = fields[8]
        price: int = fields[14]
        size: int = fields[15]
        expiry: int = fields[18]
        if ms.status and not (ms.status == _REDUCE_ONLY_STATUS and ms.margined and flags & _FLAG_REDUCE_ONLY):
            raise Rejection(
                "MARKET_STATUS",
                f"{ms.name} is {_STATUS_NAMES[ms.status]}: no new orders"
                + (" but reduce-only ones" if ms.status == _REDUCE_ONLY_STATUS and ms.margined else ""),
            )
        account = self.ledger.account_ids.get((fields[10], fields[6]))
        if account is None:
            raise Rejection("INSUFFICIENT_BALANCE", f"account 0x{fields[10].hex()}/{fields[6]} holds nothing")
        if side > 1:
            raise Rejection("BAD_SIDE", f"side: must be 0 (buy) or 1 (sell), got {side}")
        if tif > 3:
            raise Rejection("BAD_TIF", f"tif: must be 0 GTC, 1 GTD, 2 IOC or 3 FOK, got {tif}")
        if stp > 2 or (stp == 2 and tif == 3):
            raise Rejection("BAD_STP", f"stp: must be 0..2 (and not cancel-both with FOK), got {stp}")
        post_only = bool(flags & _FLAG_POST_ONLY)
        if post_only and tif > 1:
            raise Rejection("BAD_FLAGS", "post_only: only with GTC or GTD")
        if flags & _FLAG_REDUCE_ONLY and not ms.margined:
            raise Rejection("BAD_FLAGS", f"reduce_only: {ms.name} is not a margined market")
        if price <= 0:
            raise Rejection("BAD_PRICE", f"price: must be > 0 ticks, got {price}")
        if size <= 0:
            raise Rejection("BAD_SIZE", f"size: must be > 0 lots, got {size}")
        if price * size > _I64_MAX:
            raise Rejection("OVERFLOW", f"price x size: {price} x {size} does not fit in i64")
        if tif == 1:
            if expiry <= timestamp:
                raise Rejection(
                    "BAD_EXPIRY", f"expiry: GTD needs an expiry after the timestamp {timestamp}, got {expiry}"
                )
        elif expiry:
            raise Rejection("BAD_EXPIRY", f"expiry: only GTD orders carry one, got {expiry}")
        market = ms.market
        slot3 = outcome  # an outcome market's token; a margined market's order class (its margin per lot)
        initial: tuple[int, int]
        # a plugin's (a, b) result is unpacked from a declared tuple: unpacked directly, the names it assigns
        # would be Any to the compiler from there on (generic arithmetic on boxed integers)
        try:
            if outcome:
                if outcome >= ms.outcomes:
                    raise OrderRejection("BAD_OUTCOME", f"outcome: {ms.name} has outcomes 0..{ms.outcomes - 1}")
                booked: tuple[int, int] = market.book_order(side, price, outcome)  # type: ignore[attr-defined]
                side, price = booked
            market.validate(side, price, size, tif)
            if ms.checks:
                intent = OrderIntent(ms.index, account, side, price, size, tif, post_only, outcome)
                for check in ms.checks:
                    check.check(intent)
            if ms.margined:  # the protocol fixes a margined order's first slots (0, 0); its class is the lock's
                admitted: tuple[int, int] = market.admit(account, side, price, size, bool(flags & _FLAG_REDUCE_ONLY))  # type: ignore[attr-defined]
                slot3, size = admitted
            asset, amount = ms.lock(side, price, size, slot3)
            initial = _NO_SLOTS if ms.margined else market.initial_slots(side, price, size, slot3)
        except OrderRejection as rejection:
            raise Rejection(rejection.code, rejection.message) from None
        except Exception as exc:  # nothing has changed yet: a plugin failure refuses the order
            raise Rejection("PLUGIN_ERROR", f"{ms.name}: {type(exc).__name__} in plugin code: {exc}") from None
        if ms.policies:
            self._comply(ms.policies, "place", fields[10], ms)
        ledger = self.ledger
        available = ledger.available[asset]
        if ms.margined:  # the margin may come from anything the account holds: unified margin decides
            if amount and not self.unified_margin().covers_initial(account, asset, amount):
                self._require_margin(account, asset, amount, "order")  # raises, naming what is free
        elif available[account] < amount:
            raise Rejection(
                "INSUFFICIENT_BALANCE",
                f"{ledger.assets[asset].symbol}: order needs {amount}, available {available[account]}",
            )
        elif self.margin is not None:
            self._spends_margin(account, asset, amount, "order")
        client_id = fields[19] if flags & _FLAG_HAS_CLIENT_ID else None
        delay = 0
        if ms.delays and not post_only:
            delay = market.taker_delay_ms  # type: ignore[attr-defined]
            if delay > 0 and not self._marketable(ms, side, price):
                delay = 0  # an order that would rest enters the book at once
            if delay > 0 and client_id is not None:  # unique per STP group among resting and waiting orders
                master = ledger.masters[account]
                if ms.book.order_by_client_id_raw(master, client_id) or self._held_by_client_id(ms, master, client_id):
                    raise Rejection("DUPLICATE_CLIENT_ID", f"{ms.name}: the client id is in use")
        available[account] -= amount
        ledger.locked[asset][account] += amount
        order_id = self.next_order_id
        if delay > 0:
            self.next_order_id = order_id + 1
            order = DelayedOrder(ms.index, account, side, price, size, tif, flags, stp, expiry, client_id, outcome,
                                 (initial[0], initial[1]), asset, amount, timestamp + delay)  # fmt: skip
            self._hold(ms, order_id, order, fields[1], fields[14], seq, base, out)
            return
        result = ms.book.place_engine(
            order_id,
            ledger.masters[account],
            side,
            price,
            size,
            tif,
            flags & _FLAG_POST_ONLY,
            stp,
            expiry,
            client_id,
            account,
            initial[0],
            initial[1],
            slot3,
        )
        tag: int = result[0]
        if tag == REFUSED:
            available[account] += amount
            ledger.locked[asset][account] -= amount
            reason = _REASON_NAMES[result[1]]
            raise Rejection(reason, f"{ms.name}: the book refused the order ({reason})")
        self.next_order_id = order_id + 1
        if tag == RESTED and tif != 1:  # the common case, inlined (the hot path): it rested without trading
            address, sub = ledger.accounts[account]
            name = ms.name
            out.append((seq, len(out) - base, _USER, _ACCEPTED, name, order_id, address, sub, fields[1], fields[14],
                        size, tif, client_id, result[1], outcome))  # fmt: skip
            out.append((seq, len(out) - base, _USER, _DELTA, name, side, price, result[2], result[3], result[4]))
            return
        self._entered(ms, order_id, account, side, price, size, tif, expiry, client_id, slot3, initial, result,
                      fields[1], fields[14], seq, base, out, _USER)  # fmt: skip

    def _entered(
        self, ms: MarketState, order_id: int, account: int, side: int, price: int, size: int, tif: int, expiry: int,
        client_id: bytes | None, slot3: int, initial: tuple[int, int], result: tuple[Any, ...], own_side: int,
        own_price: int, seq: int, base: int, out: list[RawEvent], cause: int,
    ) -> None:  # fmt: skip
        """Report an order the book took (rested at once, or traded), keep its slots and schedule its GTD expiry.

        `own_side` and `own_price` are the order's in its outcome's terms (the book's for outcome 0); `slot3`
        is its outcome (an outcome market) or its class (a margined market)."""
        if result[0] == RESTED:  # the common case: it rested without trading
            address, sub = self.ledger.accounts[account]
            name = ms.name
            out.append((seq, len(out) - base, cause, _ACCEPTED, name, order_id, address, sub, own_side, own_price, size,
                        tif, client_id, result[1], slot3 if ms.outcomes > 1 else 0))  # fmt: skip
            out.append((seq, len(out) - base, cause, _DELTA, name, side, price, result[2], result[3], result[4]))
            resting = True
        else:
            slots = [account, initial[0], initial[1], slot3]
            taker = FillSide(account, side, price, slots)
            resting = self._book_events(ms, result[1], taker, seq, base, out, cause, tif, client_id)
            if resting:
                for index in (1, 2):
                    if slots[index] != initial[index - 1]:
                        ms.book.set_slot_raw(order_id, index, slots[index])
        if resting and tif == 1:
            self.timers.add(expiry, TimerKind.EXPIRE_ORDER, ms.index, order_id)

    def _marketable(self, ms: MarketState, side: int, price: int) -> bool:
        """Whether an order at `price` on `side` would trade against the book now."""
        best = ms.book.best_ask() if side == 0 else ms.book.best_bid()
        return best is not None and (price >= best[0] if side == 0 else price <= best[0])

    def _hold(
        self, ms: MarketState, order_id: int, order: DelayedOrder, own_side: int, own_price: int, seq: int, base: int,
        out: list[RawEvent],
    ) -> None:  # fmt: skip
        """Keep a marketable order out of the book until its release time (its funds stay locked)."""
        self.delayed[order_id] = order
        self.timers.add(order.release_at, TimerKind.DELAYED_ORDER, ms.index, order_id)
        address, sub = self.ledger.accounts[order.account]
        out.append((seq, len(out) - base, _USER, _DELAYED, ms.name, order_id, address, sub, own_side, own_price,
                    order.size, order.outcome, order.release_at))  # fmt: skip

    def _release(self, order_id: int, now: int, seq: int, base: int, out: list[RawEvent]) -> None:
        """A delayed order's wait is over: it enters the book as of now, or is cancelled if it no longer can."""
        order = self.delayed.pop(order_id, None)
        if order is None:  # cancelled while it waited
            return
        ms = self.markets[order.market]
        reason = ""
        if ms.status != Status.OPEN:
            reason = "market_status"
        elif order.tif == 1 and order.expiry <= now:
            reason = "expired"
        else:
            ledger = self.ledger
            result = ms.book.place_engine(
                order_id, ledger.masters[order.account], order.side, order.price, order.size, order.tif,
                order.flags & C.FLAG_POST_ONLY, order.stp, order.expiry, order.client_id, order.account,
                order.slots[0], order.slots[1], order.outcome,
            )  # fmt: skip
            if result[0] == REFUSED:
                reason = _REASON_NAMES[result[1]].lower()
            else:
                own_side, own_price = order.side, order.price
                if order.outcome:
                    mapping = ms.market.book_order  # type: ignore[attr-defined]
                    own_side, own_price = mapping(own_side, own_price, order.outcome)
                self._entered(ms, order_id, order.account, order.side, order.price, order.size, order.tif,
                              order.expiry, order.client_id, order.outcome, order.slots, result, own_side, own_price,
                              seq, base, out, _SYSTEM)  # fmt: skip
                return
        self._drop_delayed(order_id, order, reason, seq, base, out, _SYSTEM)

    def _drop_delayed(
        self, order_id: int, order: DelayedOrder, reason: str, seq: int, base: int, out: list[RawEvent], cause: int
    ) -> None:
        """Cancel a delayed order: release its lock, report it."""
        self.ledger.unlock(order.account, order.asset, order.amount)
        address, sub = self.ledger.accounts[order.account]
        out.append((seq, len(out) - base, cause, _CANCELLED, self.markets[order.market].name, order_id, address, sub,
                    order.size, reason, 0))  # fmt: skip

    def cancel_delayed(
        self, reason: str, seq: int, base: int, out: list[RawEvent], cause: int, *, market: int | None = None,
        accounts: Container[int] | None = None,
    ) -> None:  # fmt: skip
        """Cancel delayed orders (of one market and/or some accounts; None: any), in arrival order."""
        for order_id, order in list(self.delayed.items()):
            if (market is None or order.market == market) and (accounts is None or order.account in accounts):
                del self.delayed[order_id]
                self._drop_delayed(order_id, order, reason, seq, base, out, cause)

    def cancel_market_orders(self, ms: MarketState, seq: int, base: int, out: list[RawEvent], cause: int) -> None:
        """Cancel every resting order of a market (owners in index order) and its delayed ones, releasing locks."""
        for owner in sorted({o.owner for o in ms.book.orders()}):
            self._book_events(ms, ms.book.cancel_all_raw(owner, -1, 0), None, seq, base, out, cause)
        if self.delayed:
            self.cancel_delayed("market_status", seq, base, out, cause, market=ms.index)

    # ------------------------------------------------------------ what liquidation and margined markets use

    @property
    def ledger_ops(self) -> SettlementContext:
        """The ledger moves market types settle through (move, unlock, pay_locked, ...)."""
        return self._settlement

    def cancel_account_orders(self, account: int, seq: int, base: int, out: list[RawEvent], cause: int) -> bool:
        """Cancel every open and delayed order of one account (sub-account) in every market; True if there were any."""
        before = len(out)
        for ms in self.markets:
            self.cancel_market_account_orders(ms, account, seq, base, out, cause, "liquidation")
        return len(out) > before

    def cancel_market_account_orders(
        self, ms: MarketState, account: int, seq: int, base: int, out: list[RawEvent], cause: int, reason: str
    ) -> None:
        """Cancel one account's open and delayed orders in one market (unless halted or settled), releasing locks."""
        if ms.status >= Status.HALTED:
            return
        master = self.ledger.masters[account]
        if ms.book.owner_orders(master, 0, account):
            self._book_events(ms, ms.book.cancel_all_raw(master, 0, account), None, seq, base, out, cause)
        if self.delayed:
            self.cancel_delayed(reason, seq, base, out, cause, market=ms.index, accounts=(account,))

    def system_order(
        self, ms: MarketState, account: int, side: int, price: int, size: int, seq: int, base: int,
        out: list[RawEvent], cause: int,
    ) -> int:  # fmt: skip
        """An IOC the engine sends for an account (a liquidation): reduce-only and fee-free on a margined market.

        It locks what a fully collateralised market needs first (the caller sized it to what is there);
        returns the lots it filled."""
        if ms.status >= Status.HALTED or size <= 0 or price <= 0 or price * size > _I64_MAX:
            return 0
        market = ms.market
        asset, amount = market.lock_requirement(side, price, size, 0)
        ledger = self.ledger
        if amount and not ledger.lock(account, asset, amount):
            return 0
        order_id = self.next_order_id
        result = ms.book.place_engine(order_id, ledger.masters[account], side, price, size, 2, 0, 0, 0, None,
                                      account, 0, 0, 0)  # fmt: skip
        if result[0] == REFUSED:
            if amount:
                ledger.unlock(account, asset, amount)
            return 0
        self.next_order_id = order_id + 1
        raw = result[1]
        taker = FillSide(account, side, price, [account, 0, 0, 0])
        if ms.margined:
            market.waive_taker = True  # type: ignore[attr-defined]
        try:
            self._book_events(ms, raw, taker, seq, base, out, cause, 2, None)
        finally:
            if ms.margined:
                market.waive_taker = False  # type: ignore[attr-defined]
        return sum(e[9] for e in raw if e[2] == _B_FILL)

    def reclip(self, ms: MarketState, seq: int, base: int, out: list[RawEvent], cause: int) -> None:
        """Shrink or cancel reduce-only orders (class 0) that a position change left larger than the position."""
        market = ms.market
        pending = market.reclip_pending  # type: ignore[attr-defined]
        if not pending:
            return
        accounts = sorted(pending)
        pending.clear()
        book = ms.book
        for account in accounts:
            orders = []
            for order_id in book.owner_orders(self.ledger.masters[account], 3, 0):
                order = book.order_raw(order_id)
                if order is not None and order[7] == account:
                    orders.append((order_id, order[12], order[4]))
            if not orders:
                continue
            for order_id, keep in market.reclip_plan(account, orders):  # type: ignore[attr-defined]
                order = book.order_raw(order_id)
                if order is None:
                    continue
                if keep <= 0:
                    raw = book.cancel_raw(order_id, ANY_OWNER, False)
                else:
                    raw = book.amend_raw(order_id, ANY_OWNER, order[2], order[3] - (order[4] - keep))
                if raw and raw[0][2] != _B_REJECTED:
                    self._book_events(ms, raw, None, seq, base, out, cause)

    def _book_events(
        self,
        ms: MarketState,
        raw: list[tuple[Any, ...]],
        taker: FillSide | None,
        seq: int,
        base: int,
        out: list[RawEvent],
        cause: int,
        tif: int = 0,
        client_id: bytes | None = None,
    ) -> bool:
        """Turn book events into engine events, settling fills and releasing locks; True if the taker rests."""
        name = ms.name
        accounts = self.ledger.accounts
        market = ms.market
        outcomes = ms.outcomes > 1
        # a spot or outcome trade moves balances unified margin counts: recheck those it constrains in this command
        unified = self.margin if self.margin is not None and not ms.margined else None
        resting = taker is not None
        taker_id = raw[0][6] if taker is not None else 0
        t_addr: bytes | None = None
        t_sub = 0
        symbols: list[str] = []
        for e in raw:
            kind: int = e[2]
            if kind == _B_L2:
                out.append((seq, len(out) - base, cause, _DELTA, name, e[3], e[8], e[9], e[10], e[0]))
            elif kind == _B_FILL:
                assert taker is not None
                maker_slots = [e[14], e[15], e[16], e[17]]
                t_side: int = e[3]  # typed: compiled, the fill's fields are then machine integers
                m_side = 1 - t_side
                price: int = e[8]
                size: int = e[9]
                maker = FillSide(e[14], m_side, price, maker_slots)
                taker_fee, taker_asset, maker_fee, maker_asset, fill_kind = market.settle_fill(
                    taker, maker, price, size, self._settlement
                )
                if unified is not None:
                    unified.balance_moved(taker.account)
                    unified.balance_moved(maker.account)
                if t_addr is None:
                    t_addr, t_sub = accounts[taker.account]
                    symbols = self._symbols
                m_addr, m_sub = accounts[e[14]]
                t_price = m_price = price
                if outcomes:  # report each side in its own outcome's terms
                    t_outcome, m_outcome = taker.slots[3], e[17]
                    if t_outcome:
                        t_side, t_price = market.book_order(t_side, price, t_outcome)  # type: ignore[attr-defined]
                    if m_outcome:
                        m_side, m_price = market.book_order(m_side, price, m_outcome)  # type: ignore[attr-defined]
                else:
                    t_outcome = m_outcome = 0
                out.append((seq, len(out) - base, cause, _FILL, name, e[13], e[6], t_addr, t_sub, t_side, False,
                            t_price, size, taker_fee, symbols[taker_asset], e[11], e[0], t_outcome,
                            fill_kind))  # fmt: skip
                out.append((seq, len(out) - base, cause, _FILL, name, e[13], e[11], m_addr, m_sub, m_side, True,
                            m_price, size, maker_fee, symbols[maker_asset], e[6], e[0], m_outcome,
                            fill_kind))  # fmt: skip
                maker_left: int = e[10]
                if maker_left:  # the maker stays: keep its slots in the book
                    if maker_slots[1] != e[15]:
                        ms.book.set_slot_raw(e[11], 1, maker_slots[1])
                    if maker_slots[2] != e[16]:
                        ms.book.set_slot_raw(e[11], 2, maker_slots[2])
                fill_flags: int = e[5]
                if fill_flags & _TAKER_DONE:
                    resting = False
            elif kind == _B_ACCEPTED:
                address, sub = accounts[e[14]]
                a_side, a_price, a_outcome = e[3], e[8], e[17] if outcomes else 0
                if a_outcome:
                    a_side, a_price = market.book_order(a_side, a_price, a_outcome)  # type: ignore[attr-defined]
                out.append((seq, len(out) - base, cause, _ACCEPTED, name, e[6], address, sub, a_side, a_price, e[9],
                            tif, client_id, e[0], a_outcome))  # fmt: skip
            elif kind == _B_CANCELLED or kind == _B_EXPIRED:
                order_id = e[6]
                account = e[14]
                asset, amount = ms.lock(e[3], e[8], e[10], e[17])
                self.ledger.unlock(account, asset, amount)
                address, sub = accounts[account]
                out.append((seq, len(out) - base, cause, _EXPIRED if kind == _B_EXPIRED else _CANCELLED, name, order_id,
                            address, sub, e[10], _REASON_NAMES[e[4]].lower(), e[0]))  # fmt: skip
                if order_id == taker_id:
                    resting = False
            elif kind == _B_AMENDED:
                address, sub = accounts[e[14]]
                a_price = e[8]
                if outcomes and e[17]:
                    a_price = market.book_order(e[3], a_price, e[17])[1]  # type: ignore[attr-defined]
                out.append((seq, len(out) - base, cause, _AMENDED, name, e[6], address, sub, a_price, e[9], e[10],
                            bool(e[5] & 4), e[0]))  # fmt: skip
        if ms.margined and market.reclip_pending:  # type: ignore[attr-defined]
            self.reclip(ms, seq, base, out, _SYSTEM)
        return resting

    def _own_order(self, ms: MarketState, fields: tuple[Any, ...], account: int) -> tuple[Any, ...]:
        """The actor's open order named by the command (by id), or a rejection."""
        order = ms.book.order_raw(fields[17])
        if order is None or order[7] != account:
            raise Rejection("UNKNOWN_ORDER", f"{ms.name}: the account has no open order {fields[17]}")
        return order

    def _cancellable(self, ms: MarketState) -> None:
        """Cancels are allowed unless the market is halted or settled."""
        if ms.status >= _HALTED_STATUS:
            raise Rejection("MARKET_STATUS", f"{ms.name} is {_STATUS_NAMES[ms.status]}: nothing can change")

    def _cancel(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        ms = self.market_keys.get(fields[12])
        if ms is None:
            raise Rejection("UNKNOWN_MARKET", f"market: no market named {_text(fields[12])!r}")
        if ms.status >= _HALTED_STATUS:
            raise Rejection("MARKET_STATUS", f"{ms.name} is {_STATUS_NAMES[ms.status]}: nothing can change")
        ledger = self.ledger
        account = ledger.account_ids.get((fields[10], fields[6]))
        order_id: int = fields[17]
        if account is None or ms.book.order_slot(order_id, 0) != account:
            delayed = self.delayed.get(order_id)
            if account is not None and delayed is not None and (delayed.market, delayed.account) == (ms.index, account):
                del self.delayed[order_id]
                self._drop_delayed(order_id, delayed, "user", seq, base, out, _USER)
                return
            raise Rejection("UNKNOWN_ORDER", f"{ms.name}: the account has no open order {order_id}")
        book = ms.book
        side, price, cancelled, cancel_seq, level_size, level_count, level_seq, slot3 = book.cancel_engine(order_id)
        asset, amount = ms.lock(side, price, cancelled, slot3 if ms.classed else 0)
        ledger.locked[asset][account] -= amount
        ledger.available[asset][account] += amount
        address, sub = ledger.accounts[account]
        name = ms.name
        out.append(
            (seq, len(out) - base, _USER, _CANCELLED, name, order_id, address, sub, cancelled, "user", cancel_seq)
        )
        out.append((seq, len(out) - base, _USER, _DELTA, name, side, price, level_size, level_count, level_seq))

    def _cancel_by_client_id(
        self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        ms = self._market(fields)
        self._cancellable(ms)
        account = self._account(fields)
        master = self.ledger.masters[account]
        order = ms.book.order_by_client_id_raw(master, fields[19])
        if order is None or order[7] != account:
            held = self._held_by_client_id(ms, master, fields[19])
            if held is None or held[1].account != account:
                raise Rejection("UNKNOWN_ORDER", f"{ms.name}: the account has no open order with that client id")
            del self.delayed[held[0]]
            self._drop_delayed(held[0], held[1], "user", seq, base, out, _USER)
            return
        self._book_events(ms, ms.book.cancel_raw(order[0], ANY_OWNER, False), None, seq, base, out, _USER)

    def _held_by_client_id(self, ms: MarketState, master: int, client_id: bytes) -> tuple[int, DelayedOrder] | None:
        """A delayed order in `ms` of this STP group (the book's client-id scope) with this client id."""
        masters = self.ledger.masters
        for order_id, order in self.delayed.items():
            if order.market == ms.index and order.client_id == client_id and masters[order.account] == master:
                return order_id, order
        return None

    def _cancel_all(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        account = self._account(fields)
        if fields[12].rstrip(b"\0") == _ALL_MARKETS_KEY:
            targets = [ms for ms in self.markets if ms.status < Status.HALTED]
        else:
            ms = self._market(fields)
            self._cancellable(ms)
            targets = [ms]
        for ms in targets:
            self.cancel_market_account_orders(ms, account, seq, base, out, _USER, "user")

    def _amend(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        ms = self._market(fields)
        if ms.status != Status.OPEN:
            raise Rejection("MARKET_STATUS", f"{ms.name} is {_STATUS_NAMES[ms.status]}: orders cannot be amended")
        account = self._account(fields)
        order = self._own_order(ms, fields, account)
        order_id, _, old_price, old_size, old_remaining = order[:5]
        side = order[12]
        outcome = order[10]
        price, size = fields[14], fields[15]
        if price <= 0:
            raise Rejection("BAD_PRICE", f"price: must be > 0 ticks, got {price}")
        if size <= 0:
            raise Rejection("BAD_SIZE", f"size: must be > 0 lots, got {size}")
        if price * size > _I64_MAX:
            raise Rejection("OVERFLOW", f"price x size: {price} x {size} does not fit in i64")
        market = ms.market
        filled = old_size - old_remaining
        new_remaining = max(size - filled, 0)
        try:
            if outcome and ms.outcomes > 1:  # the new price is in the order's outcome terms
                price = market.book_order(1 - side, price, outcome)[1]  # type: ignore[attr-defined]
        except OrderRejection as rejection:
            raise Rejection(rejection.code, rejection.message) from None
        if new_remaining:
            try:
                market.validate(side, price, new_remaining, order[13])
                if ms.checks:
                    intent = OrderIntent(
                        ms.index, account, side, price, new_remaining, order[13], bool(order[14] & 1), outcome
                    )
                    for check in ms.checks:
                        check.check(intent)
            except OrderRejection as rejection:
                raise Rejection(rejection.code, rejection.message) from None
            except Exception as exc:  # nothing has changed yet
                raise Rejection("PLUGIN_ERROR", f"{ms.name}: {type(exc).__name__} in plugin code: {exc}") from None
        new_class = outcome  # a margined order's class is decided again at its new price and size
        if ms.margined and new_remaining:
            try:
                new_class, clipped = market.admit(account, side, price, new_remaining, outcome == 0)  # type: ignore[attr-defined]
            except OrderRejection as rejection:
                raise Rejection(rejection.code, rejection.message) from None
            size -= new_remaining - clipped
            new_remaining = clipped
        asset, old_lock = market.lock_requirement(side, old_price, old_remaining, outcome)
        # an amend to the filled size (or below) removes the order: it holds nothing at any price
        new_lock = market.lock_requirement(side, price, new_remaining, new_class)[1] if new_remaining else 0
        ledger = self.ledger
        extra = new_lock - old_lock
        if ms.margined:
            if extra > 0:
                self._require_margin(account, asset, extra, "amend")
                ledger.available[asset][account] -= extra
                ledger.locked[asset][account] += extra
            if new_class != outcome:
                ms.book.set_slot_raw(order_id, 3, new_class)
        elif extra > 0:
            if self.margin is not None:
                self._spends_margin(account, asset, extra, "amend")
            if not ledger.lock(account, asset, extra):
                raise Rejection(
                    "INSUFFICIENT_BALANCE",
                    f"{ledger.assets[asset].symbol}: amend needs {extra} more, "
                    f"available {ledger.available[asset][account]}",
                )
        raw = ms.book.amend_raw(order_id, ANY_OWNER, price, size)
        if raw[0][2] == _B_REJECTED:
            if extra > 0:
                ledger.unlock(account, asset, extra)
            if new_class != outcome:
                ms.book.set_slot_raw(order_id, 3, outcome)
            reason = _REASON_NAMES[raw[0][4]]
            raise Rejection(reason, f"{ms.name}: the book refused the amend ({reason})")
        if raw[0][2] == _B_AMENDED and extra < 0:
            ledger.unlock(account, asset, -extra)
        slots = [account, order[8], order[9], new_class]
        taker = FillSide(account, side, price, slots)
        resting = self._book_events(ms, raw, taker, seq, base, out, _USER)
        if resting:
            for index in (1, 2):
                if taker.slots[index] != order[7 + index]:
                    ms.book.set_slot_raw(order_id, index, taker.slots[index])

    def _tick(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        """Time has advanced (timers fired already); nothing else to do."""

    def _authorise(self, fields: tuple[Any, ...], signer: bytes, now: int) -> None:
        """A signer other than the address itself must be its agent, and the command a trading one."""
        address = fields[10]
        if fields[0] not in _AGENT_MAY_SIGN:
            raise Rejection(
                "NOT_AUTHORISED", f"signer 0x{signer.hex()}: only 0x{address.hex()} itself signs this command"
            )
        if self.agents.expiry(address, signer, now) is None:
            raise Rejection(
                "NOT_AUTHORISED",
                f"signer 0x{signer.hex()} is not an approved, unexpired agent of 0x{address.hex()}",
            )

    def _agent_tail(self, tail: bytes) -> dict[str, Any]:
        """An agent command's JSON tail, with the agent as 20 bytes."""
        try:
            spec = _json(tail)
            agent = bytes.fromhex(spec["agent"])
            if len(agent) != C.ADDRESS_LEN:
                raise ValueError("an agent address is 20 bytes")
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejection("BAD_AGENT", f"agent: {exc}") from None
        return {**spec, "agent": agent}

    def _approve_agent(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        spec = self._agent_tail(tail)
        master, agent, name, expiry = fields[10], spec["agent"], spec.get("name"), spec.get("expiry")
        if not isinstance(name, str) or not 0 < len(name) <= 32:
            raise Rejection("BAD_AGENT", f"name: 1..32 characters, got {name!r}")
        if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry <= fields[8]:
            raise Rejection("BAD_AGENT", f"expiry: a time (ms) after the command's {fields[8]}, got {expiry!r}")
        if self.venue_policies:
            self._comply(self.venue_policies, "approve_agent", master)
            self._comply(self.venue_policies, "approve_agent", agent)
        refused = self.agents.refusal(master, agent)
        if refused is not None:
            raise Rejection(*refused)
        self.agents.approve(master, agent, name, expiry)
        out.append((seq, len(out) - base, _USER, int(EventKind.AGENT_APPROVED), master, agent, name, expiry))

    def _revoke_agent(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        master, agent = fields[10], self._agent_tail(tail)["agent"]
        if not self.agents.revoke(master, agent):
            raise Rejection("UNKNOWN_AGENT", f"agent: 0x{agent.hex()} is not an agent of 0x{master.hex()}")
        out.append((seq, len(out) - base, _USER, int(EventKind.AGENT_REVOKED), master, agent))

    def _oracle_update(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        """A publisher's price for a feed; the feed decides whether to take it (publisher, guards)."""
        try:
            request = _json(tail)
            name, source = request["feed"], request["source"]
            price, published = request["price"], request["published"]
            if not (
                isinstance(name, str) and isinstance(source, str) and type(price) is int and type(published) is int
            ):
                raise TypeError("feed and source are names, price and published integers")
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejection("BAD_ORACLE_UPDATE", f"oracle update: {exc}") from None
        feed = self.oracles.get(name)
        if feed is None:
            raise Rejection("UNKNOWN_FEED", f"oracle update: the manifest names no feed {name!r}")
        try:
            live = feed.update(fields[11], source, price, published, fields[8])
        except ValueError as exc:
            raise Rejection("ORACLE", f"{name}: {exc}") from None
        value = feed.value(fields[8])
        out.append((seq, len(out) - base, _USER, int(EventKind.ORACLE_UPDATED), name, source, value or 0, live))
        self._oracle_timer(list(self.oracles).index(name), feed, fields[8])
        if self.margin is not None:
            self._feed_moved(name, fields[8], seq, base, out)

    def _feed_moved(self, name: str, now: int, seq: int, base: int, out: list[RawEvent]) -> None:
        """A feed published or went stale: marks and collateral prices follow it, then one liquidation pass."""
        margin = self.unified_margin()
        markets, collateral = margin.on_feed(name, self.oracles[name].value(now), now)
        moved = []
        for ms in markets:
            market = ms.market
            oracle = self._feed_ticks(ms, market.oracle_feed, now)
            external = self._feed_ticks(ms, market.external_feed, now) if market.external_feed else None
            if market.on_oracle(oracle, external, now):
                moved.append(ms)
        if moved:
            margin.epoch += 1  # every position's cached initial terms are stale now
        if moved or collateral or margin.liquidator.urgent:
            margin.liquidator.run(seq, base, out, moved, collateral)

    def _feed_ticks(self, ms: MarketState, feed: str, now: int) -> int | None:
        """A feed's price at `now` in a market's ticks (rounded half up), or None while it is stale."""
        value = self.oracles[feed].value(now)
        if value is None:
            return None
        num, den = self.feed_scale(ms.index, feed)
        return int((2 * value * num + den) // (2 * den))

    def feed_scale(self, market_id: int, feed: str) -> tuple[int, int]:
        """(num, den) with ticks = feed price × num / den for a market (KeyError: the manifest names no such feed).

        A feed price P is P / 10^decimals quote per whole base; one tick on one lot (lot_units base units)
        is quote_per_tick_lot quote units."""
        scale = self._tick_scales.get((market_id, feed))
        if scale is None:
            spec = next((o for o in self.manifest.oracles if o.name == feed), None)
            if spec is None:
                raise KeyError(f"the manifest names no [[oracles]] feed {feed!r}")
            info = self.markets[market_id].info
            scale = (info.lot_units * 10**info.quote_decimals,
                     10**spec.decimals * info.quote_per_tick_lot * 10**info.base_decimals)  # fmt: skip
            self._tick_scales[(market_id, feed)] = scale
        return scale

    def _oracle_timer(self, index: int, feed: Any, now: int) -> None:
        """Wake when the feed's next source grows too old (max age as a timer, in command time)."""
        when = feed.expires_at(now)
        if when is not None:
            self.timers.add(when, TimerKind.ORACLE, index, 0)

    def _oracle_expired(self, index: int, due: int, now: int, seq: int, base: int, out: list[RawEvent]) -> None:
        """A source may have grown too old at `due`: report the feed's state at `now` (cause system) if it did.

        The timer may fire late (the first command after a quiet spell): what counts is whether fewer
        sources are live now than just before it was due."""
        name = list(self.oracles)[index]
        feed = self.oracles[name]
        fired = (seq, index)  # several sources may expire at once: one report per feed per command
        if fired == self._oracle_reported:
            return
        live = feed.live(now)
        if live < feed.live(due - 1):
            self._oracle_reported = fired
            value = feed.value(now)
            out.append((seq, len(out) - base, _SYSTEM, int(EventKind.ORACLE_UPDATED), name, "", value or 0, live))
            self._oracle_timer(index, feed, now)
            if self.margin is not None:
                self._feed_moved(name, now, seq, base, out)

    def oracle_price(self, feed: str) -> int | None:
        """A feed's aggregate price at the engine's time, or None while it is stale or never published (KeyError)."""
        value: int | None = self.oracles[feed].value(self.last_timestamp)
        return value

    def _compliance_update(
        self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        """Admin: a policy's new lists; addresses it now bars lose their resting orders (withdrawals stay barred)."""
        self._admin(fields)
        try:
            request = _json(tail)
            name, payload = request["policy"], request["payload"]
            if not isinstance(name, str) or not isinstance(payload, dict):
                raise TypeError("policy must be a name and payload a table")
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejection("BAD_UPDATE", f"compliance update: {exc}") from None
        enabled = {p.name for p in self.venue_policies} | {p.name for ms in self.markets for p in ms.policies}
        if name not in enabled:
            raise Rejection("UNKNOWN_POLICY", f"compliance update: no market or the venue uses policy {name!r}")
        try:
            barred = sorted(set(self.plugins.compliance_policies[name].update(payload)))
        except ValueError as exc:
            raise Rejection("BAD_UPDATE", f"{name}: {exc}") from None
        out.append((seq, len(out) - base, _USER, int(EventKind.COMPLIANCE_UPDATED), name, tuple(barred)))
        for address in barred:
            master = self.ledger.master_ids.get(address)
            if master is None:
                continue
            for ms in self.markets:
                if ms.status < Status.HALTED:
                    self._book_events(ms, ms.book.cancel_all_raw(master, -1, 0), None, seq, base, out, _SYSTEM)
            if self.delayed:
                owned = {i for i, (owner, _) in enumerate(self.ledger.accounts) if owner == address}
                self.cancel_delayed("compliance", seq, base, out, _SYSTEM, accounts=owned)

    def _market_action(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        """A market type's own command: the market validates, then acts through a Context."""
        ms = self._market(fields)
        handler = getattr(ms.market, "action", None)
        if handler is None:
            raise Rejection("UNKNOWN_ACTION", f"{ms.name}: a {ms.market_type} market takes no actions")
        try:
            request = _json(tail)
            action, args = request["action"], request["args"]
            if not isinstance(action, str) or not isinstance(args, dict):
                raise TypeError("action must be a string and args a table")
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejection("BAD_ACTION", f"{ms.name}: action: {exc}") from None
        context = Context(self, ms.index, (fields[10], fields[6]), fields[11], seq, base, out, _USER)
        try:
            handler(context, action, args)
        except OrderRejection as rejection:
            raise Rejection(rejection.code, rejection.message) from None
        if self.margin is not None and not ms.margined:  # a split, merge or conversion moved its balances
            account = self.ledger.find_account(fields[10], fields[6])
            if account is not None:
                self.margin.balance_moved(account)

    # ------------------------------------------------------------ admin

    def _set_status(self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]) -> None:
        self._admin(fields)
        ms = self._market(fields)
        if ms.manages_status:
            raise Rejection("MARKET_STATUS", f"{ms.name}: its market type drives its status; use its actions")
        status = fields[5]
        if status not in _STATUS_NAMES:
            raise Rejection("BAD_STATUS", f"status: {status} is not a market status")
        if ms.status == Status.SETTLED:
            raise Rejection("MARKET_STATUS", f"{ms.name} is settled: its status cannot change")
        if status == ms.status:
            raise Rejection("NO_CHANGE", f"{ms.name} is already {_STATUS_NAMES[status]}")
        ms.status = status
        out.append((seq, len(out) - base, _USER, int(EventKind.MARKET_STATUS_CHANGED), ms.name, _STATUS_NAMES[status]))
        if status == Status.SETTLED:  # a settled market holds nothing: every order is cancelled, locks released
            self.cancel_market_orders(ms, seq, base, out, _SETTLEMENT)
        self.plugins.notify_market_status_changed(market_id=ms.index, name=ms.name, status=_STATUS_NAMES[status])

    def _list_asset_command(
        self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        self._admin(fields)
        try:
            spec = _json(tail)
            symbol, decimals = spec["symbol"], spec["decimals"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejection("BAD_LISTING", f"asset listing: {exc}") from None
        if (
            not isinstance(symbol, str)
            or not ASSET_SYMBOL.fullmatch(symbol)
            or not isinstance(decimals, int)
            or isinstance(decimals, bool)
            or not 0 <= decimals <= 30
        ):
            raise Rejection(
                "BAD_LISTING", f"asset listing: a symbol of 1..16 of A-Z 0-9 - _ and decimals 0..30, got {spec!r}"
            )
        if _key(symbol, C.SYMBOL_LEN) in self.asset_keys or len(symbol.encode()) > C.SYMBOL_LEN:
            raise Rejection("BAD_LISTING", f"asset listing: {symbol!r} is listed already or too long")
        self._add_asset(symbol, decimals)
        out.append((seq, len(out) - base, _USER, int(EventKind.ASSET_LISTED), symbol, decimals))

    def _list_market_command(
        self, fields: tuple[Any, ...], tail: bytes, seq: int, base: int, out: list[RawEvent]
    ) -> None:
        self._admin(fields)
        try:
            table = _json(tail)
            spec = parse_market_table(table, self._assets(), source="list-market")
        except (ValueError, TypeError) as exc:
            raise Rejection("BAD_LISTING", f"market listing: {exc}") from None
        except ExosError as exc:
            raise Rejection("BAD_LISTING", exc.message) from None
        if _key(spec.name, C.NAME_LEN) in self.market_keys:
            raise Rejection("BAD_LISTING", f"market listing: {spec.name!r} is listed already")
        self._listing_out = (out, seq, base)
        try:
            ms = self._add_market(spec, C.canonical_json(table))
        finally:
            self._listing_out = None
        out.append((seq, len(out) - base, _USER, int(EventKind.MARKET_LISTED), ms.name, ms.market_type))
        self.plugins.notify_market_listed(market_id=ms.index, name=ms.name, market_type=ms.market_type)

    # ------------------------------------------------------------ state: hash, snapshot, checks

    def dump_state(self) -> bytes:
        """The canonical serialisation of all state.

        The command counter is left out: a rejected command changes nothing but the clock (its
        timestamp still passes, and timers due by then still fire), so a rejection at the current
        time leaves the hash unchanged."""
        parts = [STATE_MAGIC, struct.pack("<qQ", self.last_timestamp, self.next_order_id)]

        def section(data: bytes) -> None:
            parts.append(struct.pack("<Q", len(data)))
            parts.append(data)

        section(self.ledger.dump())
        parts.append(struct.pack("<I", len(self.markets)))
        for ms in self.markets:
            section(ms.spec_json)
            parts.append(struct.pack("<B", ms.status))
            section(ms.book.dump())
            section(ms.market.dump())
        section(self.timers.dump())
        section(self.nonces.dump())
        section(self.agents.dump())
        section(C.canonical_json([_delayed_row(order_id, order) for order_id, order in sorted(self.delayed.items())]))
        for registry in (self.plugins.order_checks, self.plugins.market_types, self.plugins.compliance_policies):
            stateful = [(name, c) for name, c in sorted(registry.items()) if isinstance(c, StatefulPlugin)]
            parts.append(struct.pack("<I", len(stateful)))
            for name, plugin in stateful:
                section(name.encode())
                section(plugin.dump())
        for feed in self.oracles.values():  # only venues with oracles have this part (older states stay as they were)
            section(feed.dump())
        if self.margin is not None:  # and only venues with unified margin this one
            section(self.margin.dump())
        return b"".join(parts)

    def state_hash(self) -> str:
        """SHA-256 of `dump_state()`, hex."""
        return hashlib.sha256(self.dump_state()).hexdigest()

    def load_state(self, data: bytes) -> None:
        """Replace this engine's state (built from the same manifest and plugins) with a `dump_state`."""
        from exos.statefile import load_into  # the parser lives beside the file format

        load_into(self, data)

    def check_invariants(self) -> None:
        """Raise unless the ledger balances, every book is consistent, and every lock matches its orders."""
        self.ledger.check_invariants()
        plugins = self.plugins
        for plugin in (*plugins.order_checks.values(), *plugins.market_types.values(),
                       *plugins.compliance_policies.values()):  # fmt: skip
            if isinstance(plugin, StatefulPlugin):
                plugin.check_invariants()
        expected: dict[tuple[int, int], int] = {}
        for ms in self.markets:
            ms.book.check()
            ms.market.check_invariants()
            for order in ms.book.orders():
                asset, amount = ms.market.lock_requirement(order.side, order.price, order.remaining, order.slots[3])
                key = (order.slots[0], asset)
                expected[key] = expected.get(key, 0) + amount
        if self.margin is not None:
            self.margin.check_invariants()
        for held in self.delayed.values():
            key = (held.account, held.asset)
            expected[key] = expected.get(key, 0) + held.amount
        for asset_index in range(len(self.ledger.assets)):
            locked = self.ledger.locked[asset_index]
            for account, amount in enumerate(locked):
                want = expected.get((account, asset_index), 0)
                if amount != want:
                    raise EngineError(
                        f"locks: account {account} holds {amount} of {self.ledger.assets[asset_index].symbol} "
                        f"locked, its open orders need {want}",
                        code="LOCK_INVARIANT",
                    )

    def close(self) -> None:
        """Close the journal (if any); every acknowledged command is already durable."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ------------------------------------------------------------ read API

    def market_state(self, name: str) -> MarketState:
        """A listed market by name (KeyError if none)."""
        ms = self.market_keys.get(_key(name, C.NAME_LEN))
        if ms is None:
            raise KeyError(name)
        return ms

    def balances(self, address: bytes, sub: int = 0) -> dict[str, tuple[int, int]]:
        """(available, locked) per asset symbol for an account (zeros if it does not exist)."""
        account = self.ledger.find_account(address, sub)
        out = {}
        for index, asset in enumerate(self.ledger.assets):
            if account is None:
                out[asset.symbol] = (0, 0)
            else:
                out[asset.symbol] = (self.ledger.available[index][account], self.ledger.locked[index][account])
        return out

    def open_orders(self, address: bytes, sub: int = 0, market: str | None = None) -> list[tuple[str, Any]]:
        """(market name, OrderState) of an account's open orders, in market then book order."""
        account = self.ledger.find_account(address, sub)
        if account is None:
            return []
        markets = [self.market_state(market)] if market is not None else self.markets
        return [(ms.name, o) for ms in markets for o in ms.book.orders() if o.slots[0] == account]

    def order(self, market: str, order_id: int) -> Any:
        """An open order by id (OrderState), or None."""
        return self.market_state(market).book.order(order_id)

    def order_by_client_id(self, market: str, address: bytes, sub: int, client_id: bytes) -> Any:
        """An account's open order by client id (OrderState), or None."""
        account = self.ledger.find_account(address, sub)
        if account is None:
            return None
        state = self.market_state(market).book.order_by_client_id(self.ledger.masters[account], client_id)
        return state if state is not None and state.slots[0] == account else None

    def agents_of(self, address: bytes) -> list[tuple[bytes, str, int]]:
        """An address's approved agents: (agent address, name, expiry ms); expired ones until revoked."""
        return self.agents.of(address)

    def positions(self, address: bytes, sub: int = 0) -> list[dict[str, Any]]:
        """An account's perpetual positions: size (lots), basis, uPnL at mark, leverage, mode, isolated margin."""
        account = self.ledger.find_account(address, sub)
        if account is None or self.margin is None:
            return []
        rows = []
        for ms in self.markets:
            market: Any = ms.market
            if not ms.margined or account not in market.positions:
                continue
            size, basis, isolated_margin = market.positions[account]
            leverage, isolated = market.settings.get(account, (market.config.default_leverage, False))
            rows.append({"market": ms.name, "size": size, "basis": basis, "mark": market.mark,
                         "upnl": size * market.mark * market.q - basis, "leverage": leverage, "isolated": isolated,
                         "isolated_margin": isolated_margin})  # fmt: skip
        return rows

    def account_margin(self, address: bytes, sub: int = 0) -> dict[str, dict[str, int]]:
        """Per risk group: the account's equity, maintenance margin, free initial margin and withdrawable headroom."""
        account = self.ledger.find_account(address, sub)
        if account is None or self.margin is None:
            return {}
        margin = self.margin
        out = {}
        for asset, group in sorted(margin.groups.items()):
            equity, maintenance = margin.maintenance(account, asset)
            out[group.symbol] = {"equity": equity, "maintenance": maintenance,
                                 "free": margin.free_initial(account, asset),
                                 "withdrawable": margin.free_withdraw(account, asset)}  # fmt: skip
        return out

    def margin_requirement(self, address: bytes, sub: int = 0) -> dict[str, int]:
        """Per asset, what the account must hold for its positions and orders (over every market type)."""
        from exos.margin import requirement

        return requirement(self, address, sub)

    def depth(self, market: str, levels: int = 10, outcome: int = 0) -> tuple[list[Any], list[Any]]:
        """L2 depth of a market: (bids, asks), best first; `outcome` 1 of a binary market is its NO view.

        The NO view comes from the same book: NO bids are the YES asks at n - p, NO asks the YES bids."""
        ms = self.market_state(market)
        book = ms.book
        if not outcome:
            return book.depth(0, levels), book.depth(1, levels)
        if not 0 < outcome < ms.outcomes:
            raise ValueError(f"outcome: {market} has outcomes 0..{ms.outcomes - 1}")
        view = ms.market.book_order  # type: ignore[attr-defined]
        bids = [Level(view(1, lv.price, outcome)[1], lv.size, lv.count) for lv in book.depth(1, levels)]
        asks = [Level(view(0, lv.price, outcome)[1], lv.size, lv.count) for lv in book.depth(0, levels)]
        return bids, asks


def _delayed_row(order_id: int, order: DelayedOrder) -> list[Any]:
    """A delayed order as a JSON row (the client id as hex)."""
    row: list[Any] = [order_id, *attrs.astuple(order)]
    row[10] = None if order.client_id is None else order.client_id.hex()
    row[12] = list(order.slots)
    return row


def _text(raw: bytes) -> str:
    """A NUL-padded name as text."""
    return raw.rstrip(b"\0").decode(errors="replace")


def _json(tail: bytes) -> Any:
    """A listing command's JSON tail."""
    import json

    return json.loads(tail.decode())
