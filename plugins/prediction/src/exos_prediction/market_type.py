"""The "prediction" market type: lists binary markets into their events and checks the events' invariants.

Manifest (`[[markets]]` of type "prediction"): `base` and `quote` both name the collateral; `tick_size`
divides one unit (0.01, 0.001, 0.0025, ...); `lot_size` is the shares per lot. `params`:

- `symbol`: stem of the share assets `<symbol>-Y` / `<symbol>-N` (at most 14 characters; default the name);
- `event`, `event_size`: the neg-risk event this market belongs to and how many markets it has
  (absent: a standalone market); members join in listing order;
- `open_at` (ms): when trading opens (listed earlier: scheduled until then);
- `close_at` (ms): kickoff, when the books close (`in_play = true` keeps them open, and then an order
  that would trade at once waits `taker_delay_ms` first);
- `resolution`: a registered resolution source ("committee" default, "optimistic") and its params
  (`committee`, `quorum`; `bond`, `liveness_ms`, `dispute_fee_bps`). An event takes its lifecycle and
  resolution params from its first member.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from exos.commands import canonical_json
from exos.protocols import API_VERSION, EngineView, FeeModel, MarketInfo
from exos.providers import FullyCollateralised
from exos_prediction.market import BinaryMarket
from exos_prediction.outcome_event import OutcomeEvent

MAX_STEM = 14


class PredictionMarketType:
    """Registers as market type "prediction"; holds every outcome event (plugin state, in snapshots)."""

    api_version = API_VERSION
    name = "prediction"

    def __init__(self) -> None:
        """No events yet; the engine binds its view before listing anything."""
        self.events: dict[str, OutcomeEvent] = {}
        self.view: EngineView | None = None

    def bind(self, view: EngineView) -> None:
        """Keep the engine's read-only view (resolution sources, balances for the invariants)."""
        self.view = view

    def listing_assets(self, name: str, params: Mapping[str, Any], quote_decimals: int) -> list[tuple[str, int]]:
        """The market's YES and NO shares, in the collateral's decimals."""
        stem = params.get("symbol", name)
        if not isinstance(stem, str) or not 0 < len(stem) <= MAX_STEM:
            raise ValueError(
                f"params.symbol: at most {MAX_STEM} characters (the shares are <symbol>-Y/-N), got {stem!r}"
            )
        return [(f"{stem}-Y", quote_decimals), (f"{stem}-N", quote_decimals)]

    def create_market(self, info: MarketInfo, fees: FeeModel) -> BinaryMarket:
        """Validate the listing, then create the market and add it to its (possibly new) event."""
        if info.base_asset != info.quote_asset:
            raise ValueError("base and quote must both name the collateral asset")
        if info.quote_per_tick_lot <= 0 or info.lot_units % info.quote_per_tick_lot:
            raise ValueError("tick_size must divide one unit of collateral (lot_size / (tick_size x lot_size) whole)")
        if info.lot_units // info.quote_per_tick_lot < 2:
            raise ValueError("tick_size must be below one unit")
        if len(info.outcome_assets) != 2:
            raise ValueError("a binary market needs its YES and NO assets")
        params = info.params
        event_name = params.get("event")
        if event_name is None:
            event = self._new_event(info.name, 1, False, params)
        else:
            if not isinstance(event_name, str) or not event_name:
                raise ValueError(f"params.event: a name, got {event_name!r}")
            event = self.events.get(event_name) or self._new_event(event_name, self._size(params), True, params)
            if event.complete:
                raise ValueError(f"params.event: {event_name!r} has all its {event.size} markets already")
            if self._size(params) != event.size:
                raise ValueError(f"params.event_size: {event_name!r} has {event.size} markets")
            listed = next(m for m in event.members if m is not None) if any(event.members) else None
            if listed is not None and (listed.collateral, listed.lot_units) != (info.quote_asset, info.lot_units):
                raise ValueError(f"params.event: members of {event_name!r} share one collateral and lot size")
        if not hasattr(fees, "taker_centibps"):
            raise ValueError("fee_model: a prediction market needs a rate-based model (probability or flat)")
        index = event.members.index(None)
        market = BinaryMarket(info, fees, event, index)
        self.events.setdefault(event.name, event)
        event.add(market)
        return market

    @staticmethod
    def _size(params: Mapping[str, Any]) -> int:
        """`event_size`: 2..4096 markets."""
        size = params.get("event_size")
        if not isinstance(size, int) or isinstance(size, bool) or not 2 <= size <= 4096:
            raise ValueError(f"params.event_size: a neg-risk event has 2..4096 markets, got {size!r}")
        return size

    def _new_event(self, name: str, size: int, neg_risk: bool, params: Mapping[str, Any]) -> OutcomeEvent:
        """An event (not yet recorded) with its resolver."""
        if name in self.events:
            raise ValueError(f"{name!r} is an event name already")
        assert self.view is not None, "the engine binds the market type before listing"
        source_name = params.get("resolution", "committee")
        source = self.view.resolution_sources.get(source_name)
        if source is None:
            raise ValueError(f"params.resolution: no enabled plugin registers resolution source {source_name!r}")
        for key, high in (("open_at", 2**62), ("close_at", 2**62), ("taker_delay_ms", 3_600_000)):
            value = params.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise ValueError(f"params.{key}: milliseconds in 0..{high}, got {value!r}")
        if not isinstance(params.get("in_play", False), bool):
            raise ValueError("params.in_play: true or false")
        return OutcomeEvent(name, size, neg_risk, source.create(params), params)

    # ------------------------------------------------------------ unified margin

    def collateral_value(self, account: int, asset: int, locked: bool) -> int:
        """The least the account's shares in events collateralised in `asset` can pay, whatever the outcome.

        A standalone market pays min(YES, NO) for sure (a pair is worth one unit); a neg-risk event pays
        at least min over winners w of YES_w + Σ_{i≠w} NO_i (a void pays the average, never less).
        Unified margin counts this as collateral; `locked` adds shares that back open sell orders."""
        view = self.view
        assert view is not None
        total = 0
        for event in self.events.values():
            if event.collateral != asset or event.phase in ("settled", "void"):
                continue
            yes: list[int] = []
            no: list[int] = []
            for market in event.members:
                if market is None:
                    yes.append(0)
                    no.append(0)
                    continue
                y_available, y_locked = view.balance(account, market.yes)
                n_available, n_locked = view.balance(account, market.no)
                yes.append(y_available + (y_locked if locked else 0))
                no.append(n_available + (n_locked if locked else 0))
            if not any(yes) and not any(no):
                continue
            if not event.neg_risk:
                total += min(yes[0], no[0])
            else:
                total_no = sum(no)
                total += min(yes[i] + total_no - no[i] for i in range(event.size))
        return total

    # ------------------------------------------------------------ state

    def dump(self) -> bytes:
        """Every event's state, by name."""
        return canonical_json({name: self.events[name].state() for name in sorted(self.events)})

    def load(self, data: bytes) -> None:
        """Restore the events' state (the listings recreated the events themselves)."""
        for name, state in json.loads(data).items():
            self.events[name].restore(state)

    def check_invariants(self) -> None:
        """Per event: the vault covers every outcome exactly; after settlement nothing is left."""
        view = self.view
        assert view is not None
        for event in self.events.values():
            markets = [m for m in event.members if m is not None]
            vault = view.balance(event.vault, event.collateral)
            assert vault[1] == 0, f"{event.name}: the vault has {vault[1]} locked"
            yes = [view.supply(m.yes) if m is not None else 0 for m in event.members]
            no = [view.supply(m.no) if m is not None else 0 for m in event.members]
            if event.phase in ("settled", "void"):
                assert vault[0] == 0 and not any(yes) and not any(no), (
                    f"{event.name}: settled with vault {vault[0]}, YES {yes}, NO {no}"
                )
                for m in markets:
                    assert view.open_orders(m.market_id) == 0, f"{m.name}: settled with resting orders"
            elif not event.neg_risk:
                assert yes[0] == no[0] == vault[0], f"{event.name}: YES {yes[0]}, NO {no[0]}, vault {vault[0]}"
            else:
                total_no = sum(no)
                for i in range(event.size):  # a winner i pays YES_i and every other market's NO
                    covered = yes[i] + total_no - no[i]
                    assert covered == vault[0], f"{event.name}: outcome {i} pays {covered}, the vault holds {vault[0]}"
            if event.escrow_account >= 0:
                held = view.balance(event.escrow_account, event.collateral)[0]
                assert held == event.resolver.bonds(), f"{event.name}: escrow {held}, bonds {event.resolver.bonds()}"


class PredictionMargin(FullyCollateralised):
    """Outcome orders are fully collateralised: an account needs exactly what its orders lock.

    Held shares count toward unified margin at their worst-case payout (`collateral_value`), where a
    YES and its NO net and a neg-risk event's legs net across the event."""

    name = "prediction"
