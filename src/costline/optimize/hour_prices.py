"""What an hour costs, by hour of the week: the prices `cheaper_window` compares hours by.

Each source is learned per (weekday, hour) in UTC from the window's data, as a `Profile` holding
every sample of each cell (a cell no sample fell in borrows the samples of its hour on every
weekday), so a recommendation can take the median of the cheap hours and their spread:

- **Spot prices**, from the bills: per pool (catalog provider, region, instance type), the
  effective price per instance-hour of each hour-long charge period of the pool's Spot lines
  (`PricingCategory` Dynamic). Only where the organization ran Spot: nothing is invented.
- **Idle committed dollars**, from the bills: per provider, each hour's unused commitment dollars
  (`held.commitment_hours`, the hours `commitment_use` reports idle), which work moved there
  costs nothing more up to; in on-demand dollars, as a committed dollar covers more than one
  (the list cost of what the commitments covered over what it cost them).
- **Token prices by time of day**, from genai-prices (`catalog.token_prices`): a model whose
  price differs by hour of day (DeepSeek's off-peak hours, for one). A model priced the same all
  day has no cheaper hour; a model genai-prices does not know, or prices only in part, is
  unpriced: no window is offered for it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.instances import gpu_lines
from costline.catalog.token_prices import STANDARD, model_prices, resolve_model
from costline.ledger import fetch
from costline.optimize.held import catalog_provider, commitment_hours
from costline.optimize.inputs import Inputs

Cell = tuple[int, int]  # (weekday, hour), UTC
SPOT = "Dynamic"  # FOCUS PricingCategory of Spot, preemptible and low-priority usage
# The parts of an LLM request a price applies to: (token column of the sums, price column).
TOKEN_PARTS = (
    ("uncached_tokens", "input_price"),
    ("cached_input_tokens", "cache_read_price"),
    ("cache_write_tokens", "cache_write_price"),
    ("output_tokens", "output_price"),
    ("requests", "request_price"),
)


def quantile(samples: tuple[Decimal, ...], q: float) -> Decimal:
    """The nearest-rank `q`-quantile of sorted samples (a sample, never an interpolation)."""
    return samples[min(len(samples) - 1, max(0, math.ceil(q * len(samples)) - 1))]


@dataclass(frozen=True)
class Profile:
    """Samples of a price (or of idle dollars) per hour of the week, and the hours they cover."""

    cells: Mapping[Cell, tuple[Decimal, ...]]
    hours: int  # charge hours with a sample
    by_hour: Mapping[int, tuple[Decimal, ...]] = field(default_factory=dict)
    _memo: dict[tuple[int, int, float], Decimal | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def at(self, when: dt.datetime, q: float = 0.5) -> Decimal | None:
        """The `q`-quantile of the samples of `when`'s cell (else of its hour); None if none."""
        return self.at_index(hour_index(when), q)

    def at_index(self, index: int, q: float = 0.5) -> Decimal | None:
        """`at` for the hour `index` hours after the Unix epoch (what loops over hours use)."""
        key = (*cell_of(index), q)
        if key not in self._memo:
            samples = self.cells.get(key[:2]) or self.by_hour.get(key[1])
            self._memo[key] = quantile(samples, q) if samples else None
        return self._memo[key]


def cell_of(index: int) -> Cell:
    """The (weekday, hour) of the hour `index` hours after the Unix epoch (a Thursday)."""
    day, hour = divmod(index, 24)
    return (day + 3) % 7, hour


def hour_index(when: dt.datetime) -> int:
    """The hour `when` falls in, as hours after the Unix epoch (UTC)."""
    return int(when.timestamp()) // 3600


def profile(samples: Iterable[tuple[dt.datetime, Decimal]]) -> Profile:
    """A profile of (charge hour, value) samples."""
    cells: dict[Cell, list[Decimal]] = defaultdict(list)
    hours: dict[int, list[Decimal]] = defaultdict(list)
    seen = set()
    for at, value in samples:
        at = at.astimezone(dt.UTC)
        cells[(at.weekday(), at.hour)].append(value)
        hours[at.hour].append(value)
        seen.add(at)
    return Profile({c: tuple(sorted(v)) for c, v in cells.items()}, len(seen),
                   {h: tuple(sorted(v)) for h, v in hours.items()})  # fmt: skip


def hourly(t: ibis.Table) -> ibis.Table:
    """Lines whose charge period is one hour or less: the ones an hour of day means something for."""
    return t.filter(t.ChargePeriodEnd <= t.ChargePeriodStart + ibis.interval(hours=1))


def spot_lines(inputs: Inputs) -> ibis.Table:
    """The window's hour-long Spot lines of catalogued GPU instance types, with `instance_type`."""
    t = hourly(inputs.window_lines)
    g = gpu_lines(t.filter(t.PricingCategory == SPOT))
    return g.filter(g.instance_type.notnull(), g.ConsumedQuantity > 0)


def spot_prices(inputs: Inputs) -> dict[tuple[str, str, str], Profile]:
    """pool (provider, region, instance type) -> its Spot price per instance-hour, learned."""
    g = spot_lines(inputs)
    rows = fetch.rows(g.group_by(provider=g.type_provider, region=g.RegionId,
                                 instance_type=g.instance_type, at=g.ChargePeriodStart)
                      .aggregate(cost=g.EffectiveCost.sum(), quantity=g.ConsumedQuantity.sum()))  # fmt: skip
    pools: dict[tuple[str, str, str], list[tuple[dt.datetime, Decimal]]] = defaultdict(list)
    for r in rows:
        pools[(r["provider"], r["region"], r["instance_type"])].append(
            (r["at"], Decimal(r["cost"]) / Decimal(r["quantity"]))
        )
    return {k: profile(v) for k, v in sorted(pools.items())}


@dataclass(frozen=True)
class Idle:
    """A provider's idle committed capacity per hour, in the on-demand dollars it would cover,
    the commitments it is unused in, and what one committed dollar covers (`buys`)."""

    dollars: Profile
    commitments: tuple[str, ...]
    buys: Decimal


def _buys(used: Decimal, used_list: Decimal | None) -> Decimal:
    """On-demand dollars one committed dollar covers: the list cost of what the commitments
    covered over what it cost them (their discount); 1 where the bills give no list cost."""
    return used_list / used if used > 0 and used_list else Decimal(1)


def idle_commitments(inputs: Inputs) -> dict[str, Idle]:
    """catalog provider (aws, azure, gcp) -> its commitments' idle capacity per hour: their
    unused dollars times what a committed dollar covers at on-demand rates (`_buys`)."""
    h = commitment_hours(inputs)
    idle = h.filter(h.unused > 0)
    named = fetch.rows(idle.select("provider", label=ibis.coalesce(idle.name, idle.commitment))
                       .distinct())  # fmt: skip
    rows = fetch.rows(h.group_by("provider", "at").aggregate(
        unused=h.unused.sum(), used=h.used.sum(), used_list=h.used_list.sum()))  # fmt: skip
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        provider = catalog_provider(r["provider"] or "")
        if provider is not None:
            by[provider].append(r)
    names: dict[str, set[str]] = defaultdict(set)
    for r in named:
        names[catalog_provider(r["provider"] or "") or ""].add(r["label"])
    out = {}
    for provider, hours in sorted(by.items()):
        used = sum((Decimal(r["used"]) for r in hours), Decimal(0))
        listed = [Decimal(r["used_list"]) for r in hours if r["used_list"] is not None]
        buys = _buys(used, sum(listed, Decimal(0)) if listed else None)
        if any(r["unused"] > 0 for r in hours):
            dollars = profile((r["at"], Decimal(r["unused"]) * buys) for r in hours)
            out[provider] = Idle(dollars, tuple(sorted(names[provider])), buys)
    return out


def token_prices_by_hour(
    provider: str, model: str, at: dt.datetime
) -> list[dict[str, Decimal]] | None:
    """A model's token prices in each hour of the day (UTC) at `at`, each hour at the dearest
    price any part of it has; None when genai-prices prices the model the same all day, does not
    know it, lacks one of its prices, or prices it by the input's length (left alone)."""
    found = resolve_model(provider, model)
    if found is None:
        return None
    rows = [r for r in model_prices(found[0], found[1]).to_pylist()
            if r["context"] == STANDARD and r["valid_from"] <= at < r["valid_to"]]  # fmt: skip
    if not rows or any(r["band_above"] >= 0 or any(r[p] is None for _, p in TOKEN_PARTS)
                       for r in rows):  # fmt: skip
        return None
    hours = []
    for h in range(24):
        inside = [r for r in rows if r["tod_from"] < (h + 1) * 3600 and r["tod_to"] > h * 3600]
        hours.append({p: max(Decimal(r[p]) for r in inside) for _, p in TOKEN_PARTS})
    return hours if any(h != hours[0] for h in hours) else None
