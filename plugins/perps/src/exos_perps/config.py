"""A perpetual market's parameters (`[markets.params]` of a `type = "perp"` market), parsed into integers.

Decimal amounts are TOML strings (never floats), read exactly: notionals in the settlement asset
(the market's quote), sizes in the base asset, rates as fractions ("0.0005" is 5 bp). Rates become
parts per million (margin) or per billion (funding); amounts become smallest units or lots.

    oracle               the feed the market is priced against (required)
    external_mark        a feed of external perp mids that joins the mark's median (optional)
    max_leverage         20; default_leverage: max_leverage
    margin_tiers         [[lower notional, max leverage], ...]: first bound "0", leverage falling
    maintenance_ratio    "0.5": maintenance = this share of the initial margin at a tier's max leverage
    oi_cap               open interest (base, one side) beyond which no order may add; IM reaches 100% there
    oi_ramp_start        where IM starts rising toward 100% (default: half of oi_cap)
    price_band           "0.05": limit prices within mark × (1 ± band)
    mark_band            "0.1": mark clamped to oracle × (1 ± band)
    basis_ema_ms         150000: time constant of the EMA of (book mid − oracle) in the mark
    funding_interval_ms  3600000; funding_sample_ms 5000
    funding_interest     "0.0000125" per interval; funding_clamp "0.0005"; funding_cap "0.04"
    impact_notional      "0": premium from best bid/ask; else the average fill price for this notional
    partial_notional     "0": never partial; else positions above it liquidate `partial_fraction` at a time
    partial_fraction     "0.2"; cooldown_ms 30000
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Final

import attrs

PPM: Final = 1_000_000
PPB: Final = 1_000_000_000

_KEYS = frozenset({
    "oracle", "external_mark", "max_leverage", "default_leverage", "margin_tiers", "maintenance_ratio", "oi_cap",
    "oi_ramp_start", "price_band", "mark_band", "basis_ema_ms", "funding_interval_ms", "funding_sample_ms",
    "funding_interest", "funding_clamp", "funding_cap", "impact_notional", "partial_notional", "partial_fraction",
    "cooldown_ms", "reference_price",
})  # fmt: skip


@attrs.frozen
class Tier:
    """One margin tier: from `lower` notional (smallest units) on, rates in ppm and the continuity deductions."""

    lower: int
    max_leverage: int
    im_ppm: int
    mm_ppm: int
    im_deduction: int  # in smallest units × ppm, so IM = ceil((notional × im_ppm − im_deduction) / 1e6)
    mm_deduction: int


@attrs.frozen
class PerpConfig:
    """Everything a perpetual market needs from its manifest entry, as integers."""

    oracle: str
    external_mark: str | None
    max_leverage: int
    default_leverage: int
    tiers: tuple[Tier, ...]
    oi_cap: int  # lots; 0: no cap
    oi_ramp_start: int  # lots
    price_band_bps: int
    mark_band_bps: int
    basis_ema_ms: int
    funding_interval_ms: int
    funding_sample_ms: int
    interest_ppb: int
    clamp_ppb: int
    cap_ppb: int
    impact_notional: int  # smallest units of the settlement asset
    partial_notional: int
    partial_bps: int
    cooldown_ms: int

    @property
    def mm_ppm_max(self) -> int:
        """The highest maintenance rate of any tier."""
        return max(tier.mm_ppm for tier in self.tiers)


def _decimal(params: Mapping[str, Any], key: str, default: str) -> Fraction:
    """A decimal parameter (string or integer, never a float) as an exact fraction."""
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"params.{key}: a decimal string such as {default!r}, got {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"params.{key}: not a decimal: {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"params.{key}: a finite decimal >= 0, got {value!r}")
    return Fraction(number)


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """An integer parameter in [low, high]."""
    value = params.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"params.{key}: an integer in {low}..{high}, got {value!r}")
    return value


def _rate(params: Mapping[str, Any], key: str, default: str, scale: int, high: Fraction = Fraction(1)) -> int:
    """A rate (a fraction of one) in units of 1/scale, exactly."""
    value = _decimal(params, key, default)
    if value > high:
        raise ValueError(f"params.{key}: at most {high}, got {params.get(key)!r}")
    scaled = value * scale
    if scaled.denominator != 1:
        raise ValueError(f"params.{key}: {params.get(key)!r} is finer than 1/{scale}")
    return scaled.numerator


def parse(params: Mapping[str, Any], *, lot_units: int, base_decimals: int, quote_decimals: int) -> PerpConfig:
    """Parse and validate a perp market's params (ValueError names the first bad one)."""
    unknown = set(params) - _KEYS
    if unknown:
        raise ValueError(f"params: unknown key(s) {', '.join(sorted(unknown))}")
    oracle = params.get("oracle")
    if not isinstance(oracle, str) or not oracle:
        raise ValueError("params.oracle: the name of the [[oracles]] feed that prices the market")
    external = params.get("external_mark")
    if external is not None and (not isinstance(external, str) or not external):
        raise ValueError(f"params.external_mark: a feed name, got {external!r}")
    max_leverage = _int(params, "max_leverage", 20, 1, 1000)
    default_leverage = _int(params, "default_leverage", max_leverage, 1, max_leverage)
    quote_unit = 10**quote_decimals

    def notional(key: str) -> int:
        amount = _decimal(params, key, "0") * quote_unit
        if amount.denominator != 1:
            raise ValueError(f"params.{key}: finer than the settlement asset's smallest unit")
        return int(amount.numerator)

    def lots(key: str, default: str) -> int:
        size = _decimal(params, key, default) * 10**base_decimals / lot_units
        if size.denominator != 1:
            raise ValueError(f"params.{key}: not a whole number of lots")
        return int(size.numerator)

    maintenance = _rate(params, "maintenance_ratio", "0.5", PPM)
    if not 0 < maintenance <= PPM:
        raise ValueError("params.maintenance_ratio: in (0, 1]")
    raw_tiers = params.get("margin_tiers", [["0", max_leverage]])
    if not isinstance(raw_tiers, list | tuple) or not raw_tiers:
        raise ValueError("params.margin_tiers: a list of [lower notional, max leverage] pairs")
    tiers: list[Tier] = []
    for i, pair in enumerate(raw_tiers):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"params.margin_tiers[{i}]: a pair [lower notional, max leverage], got {pair!r}")
        lower = _decimal({"x": pair[0]}, "x", "0") * quote_unit
        leverage = pair[1]
        if lower.denominator != 1 or type(leverage) is not int or not 1 <= leverage <= max_leverage:
            raise ValueError(f"params.margin_tiers[{i}]: [a notional in whole smallest units, leverage 1.."
                             f"{max_leverage}], got {pair!r}")  # fmt: skip
        if i == 0 and lower != 0:
            raise ValueError("params.margin_tiers[0]: the first tier starts at notional 0")
        if tiers and (lower.numerator <= tiers[-1].lower or leverage > tiers[-1].max_leverage):
            raise ValueError(f"params.margin_tiers[{i}]: bounds must rise and leverage must not")
        im = -(-PPM // leverage)
        mm = -(-im * maintenance // PPM)
        if tiers:
            prev = tiers[-1]
            im_ded = prev.im_deduction + lower.numerator * (im - prev.im_ppm)
            mm_ded = prev.mm_deduction + lower.numerator * (mm - prev.mm_ppm)
        else:
            im_ded = mm_ded = 0
        tiers.append(Tier(lower.numerator, leverage, im, mm, im_ded, mm_ded))
    if tiers[0].max_leverage != max_leverage:
        raise ValueError("params.margin_tiers[0]: its leverage is the market's max_leverage")
    oi_cap = lots("oi_cap", "0")
    ramp = lots("oi_ramp_start", "0") if "oi_ramp_start" in params else oi_cap // 2
    if oi_cap and not 0 <= ramp < oi_cap:
        raise ValueError("params.oi_ramp_start: below oi_cap")
    interval = _int(params, "funding_interval_ms", 3_600_000, 1_000, 30 * 86_400_000)
    sample = _int(params, "funding_sample_ms", 5_000, 100, interval)
    return PerpConfig(
        oracle=oracle,
        external_mark=external,
        max_leverage=max_leverage,
        default_leverage=default_leverage,
        tiers=tuple(tiers),
        oi_cap=oi_cap,
        oi_ramp_start=ramp,
        price_band_bps=_rate(params, "price_band", "0.05", 10_000),
        mark_band_bps=_rate(params, "mark_band", "0.1", 10_000),
        basis_ema_ms=_int(params, "basis_ema_ms", 150_000, 1, 10**10),
        funding_interval_ms=interval,
        funding_sample_ms=sample,
        interest_ppb=_rate(params, "funding_interest", "0.0000125", PPB),
        clamp_ppb=_rate(params, "funding_clamp", "0.0005", PPB),
        cap_ppb=_rate(params, "funding_cap", "0.04", PPB),
        impact_notional=notional("impact_notional"),
        partial_notional=notional("partial_notional"),
        partial_bps=_rate(params, "partial_fraction", "0.2", 10_000),
        cooldown_ms=_int(params, "cooldown_ms", 30_000, 0, 10**10),
    )
