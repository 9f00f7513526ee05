"""Pre-launch estimates: what a manifest's experiment will cost, before its first GPU-hour.

GPU-hours are the manifest's hours (`duration_hours`, or `steps / steps_per_hour`) x GPUs per
node x nodes x trials. They are priced at the catalog's placement (the manifest's provider,
region and instance type; else the cheapest on-demand GPU-hour of its GPU type in the catalog)
on each capacity: on-demand; Spot net of checkpoint writes and work lost to interruptions
(`optimize.capacity`'s Young/Daly overhead at its mean time between interruptions, at the
manifest's checkpoint interval or the optimal one); committed at the rate the organization's
bills show it paid for that instance type (`optimize.rates.effective_rates`, when a ledger is
there) and the catalog's 1- and 3-year commitment prices. Checkpoint storage (the kept set, held
for the run and `retention_days` after) is added at the catalog's hot-tier list price, or stated
unpriced. P50 and P90 scale the hours by how long similar runs took against what they expected
(`history.duration_factors`); a price the catalog lacks is unpriced, never zero.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costline.catalog.gpu_prices import GpuInstance, GpuPrice, gpu_prices, matching, price
from costline.catalog.storage_prices import list_price
from costline.governance.history import Factors
from costline.manifest import ExperimentManifest
from costline.optimize.capacity import MTBI_HOURS, overhead, young_daly

if TYPE_CHECKING:
    from costline.optimize.rates import PaidRate

CENT = Decimal("0.01")
PAID_SOURCE = "your bills"  # a placement at the organization's paid rate (no catalog price)
HOURS_PER_MONTH = Decimal(730)
HOT_TIER = {"gcp": "STANDARD", "aws": "STANDARD", "azure": "Hot"}
ALTERNATIVES = 5
KIND_WORDS = {"training_run": "training", "fine_tune": "fine-tune", "batch_job": "batch job",
              "embedding": "embedding job", "inference_endpoint": "endpoint"}  # fmt: skip


@dataclass(frozen=True)
class Option:
    """One capacity choice: its price per GPU-hour (Spot's net of its overhead) and P50/P90 cost."""

    capacity: str  # on_demand, spot, committed, commit_1y, commit_3y
    usd_per_gpu_hour: Decimal
    p50_usd: Decimal
    p90_usd: Decimal
    note: str


@dataclass(frozen=True)
class Estimate:
    """A manifest priced: its placement, GPU-hours, options, storage and the assumptions used."""

    manifest: ExperimentManifest
    source: str
    factors: Factors
    placement: GpuPrice | None = None
    gpus: int | None = None
    gpu_hours: Decimal | None = None
    options: tuple[Option, ...] = ()
    storage_usd: Decimal | None = None
    alternatives: tuple[dict[str, Any], ...] = ()
    unpriced: str | None = None  # why no price could be given
    assumptions: tuple[str, ...] = field(default=())
    registry: str | None = None  # the registry entry whose `match.name` glob names the manifest

    def option(self, capacity: str) -> Option | None:
        return next((o for o in self.options if o.capacity == capacity), None)

    @property
    def p90_usd(self) -> Decimal | None:
        """The P90 of the capacity the manifest asks for (on-demand when it has no price)."""
        asked = self.option(self.manifest.resources.capacity_type) or self.option("on_demand")
        return asked.p90_usd if asked else None

    def row(self) -> dict[str, Any]:
        """The estimate as plain data (`--format json`)."""
        p = self.placement
        return {
            "manifest": self.manifest.name,
            "source": self.source,
            "kind": self.manifest.kind,
            "team": self.manifest.team,
            "placement": None
            if p is None
            else {
                "provider": p.gpu.provider,
                "region": p.region,
                "instance_type": p.gpu.instance_type,
                "gpu_model": p.gpu.gpu_model,
            },
            "gpus": self.gpus,
            "gpu_hours_p50": self.gpu_hours,
            "duration_factor_p50": self.factors.p50,
            "duration_factor_p90": self.factors.p90,
            "history": self.factors.basis,
            "options": [vars(o) for o in self.options],
            "checkpoint_storage_usd": self.storage_usd,
            "alternatives": list(self.alternatives),
            "unpriced": self.unpriced,
            "assumptions": list(self.assumptions),
            "registry": self.registry,
            "comment": headline(self),
        }


def estimate(
    manifest: ExperimentManifest,
    source: str,
    factors: Factors,
    paid: Sequence[PaidRate] = (),
) -> Estimate:
    """Price one manifest (see the module's docstring); `paid` are the organization's rates."""
    hours = manifest.hours
    if hours is None:
        return Estimate(manifest, source, factors, unpriced="the manifest gives no duration_hours "
                        "nor steps with steps_per_hour")  # fmt: skip
    places = placements(manifest) or paid_placement(manifest, paid)
    if not places:
        return Estimate(manifest, source, factors, unpriced=_no_place(manifest))
    place = places[0]
    r = manifest.resources
    gpus = (r.gpus or place.gpu.gpu_count) * r.nodes
    gpu_hours = hours * gpus * manifest.trials
    storage, storage_note = checkpoint_storage(manifest, place, hours * factors.p90)
    options = capacity_options(manifest, place, gpu_hours, factors, storage, paid)
    spot = any(o.capacity == "spot" for o in options)
    notes = (
        f"P50 = {factors.p50}x and P90 = {factors.p90}x the stated hours ({factors.basis})",
        f"Spot: one interruption every {MTBI_HOURS:.0f} h on average, resumed from the last "
        "checkpoint"
        if spot
        else "Spot: the catalog has no Spot price here (unpriced)",
        storage_note,
        "egress not estimated",
    )
    alternatives = tuple(_alternative(p, gpu_hours, factors) for p in elsewhere(place))
    return Estimate(manifest, source, factors, place, gpus, _q(gpu_hours), tuple(options),
                    storage, alternatives, None, notes)  # fmt: skip


def placements(manifest: ExperimentManifest) -> list[GpuPrice]:
    """Catalog on-demand prices that fit the manifest's resources, cheapest GPU-hour first."""
    r = manifest.resources
    if r.instance_type is not None:
        found = [p for p in gpu_prices() if p.gpu.instance_type == r.instance_type
                 and p.capacity == "on_demand"
                 and r.provider in (None, p.gpu.provider) and r.region in (None, p.region)]  # fmt: skip
        return sorted(found, key=lambda p: (p.per_gpu_hour, p.gpu.provider, p.region))
    if r.gpu_type is None:
        return []
    return matching(r.gpu_type, provider=r.provider, region=r.region, capacity="on_demand")


def paid_placement(manifest: ExperimentManifest, paid: Sequence[PaidRate]) -> list[GpuPrice]:
    """Where the catalog has no price for the manifest's provider and instance type (a GPU cloud
    it does not carry, e.g. Lambda) but the organization's bills show what it paid for that
    instance type: a placement at that rate, so the estimate is the organization's own."""
    r = manifest.resources
    own = next((p for p in paid if (p.provider, p.instance_type) == (r.provider, r.instance_type)
                and r.region in (None, p.region)), None)  # fmt: skip
    if own is None or r.instance_type is None:
        return []
    gpu = GpuInstance(own.provider, own.instance_type, r.gpu_type or "unknown", own.gpus, 0)
    return [GpuPrice(gpu, own.region or "*", "on_demand", own.per_hour, "", PAID_SOURCE)]


def elsewhere(place: GpuPrice) -> list[GpuPrice]:
    """The cheapest on-demand GPU-hours of the same GPU model in other providers, regions or
    instance types of the catalog (`ALTERNATIVES` of them)."""
    same = (place.gpu.provider, place.region, place.gpu.instance_type)
    found = matching(place.gpu.gpu_model, capacity="on_demand")
    return [p for p in found if (p.gpu.provider, p.region, p.gpu.instance_type) != same][
        :ALTERNATIVES
    ]


def _no_place(manifest: ExperimentManifest) -> str:
    r = manifest.resources
    if r.instance_type is None and r.gpu_type is None:
        return "resources name neither an instance_type nor a gpu_type"
    what = r.instance_type or r.gpu_type
    where = " ".join(x for x in (r.provider, r.region) if x) or "any provider"
    return f"the price catalog has no on-demand price for {what} in {where}"


def capacity_options(
    manifest: ExperimentManifest,
    place: GpuPrice,
    gpu_hours: Decimal,
    factors: Factors,
    storage: Decimal | None,
    paid: Sequence[PaidRate],
) -> list[Option]:
    """On-demand, Spot net of interruptions, committed at the paid rate, and list commitments."""
    g = place.gpu
    basis = "catalog list"
    if place.source == PAID_SOURCE:
        basis = "what your bills show you paid; the catalog has no price"
    rates: list[tuple[str, Decimal, str]] = [("on_demand", place.per_gpu_hour, basis)]
    spot = price(g.provider, g.instance_type, place.region, "spot")
    if spot is not None:
        interval = manifest.checkpoint.interval_minutes
        tau = float(interval) / 60 if interval is not None else young_daly(MTBI_HOURS)
        extra = Decimal(repr(overhead(tau, MTBI_HOURS)))
        rates.append(("spot", spot.per_gpu_hour * (1 + extra),
                      f"catalog spot + {extra:.1%} checkpoint and interruption overhead "
                      f"(checkpoint every {tau * 60:.0f} min)"))  # fmt: skip
    own = next((p for p in paid if (p.provider, p.region, p.instance_type)
                == (g.provider, place.region, g.instance_type)), None)  # fmt: skip
    if own is not None and place.source != PAID_SOURCE:
        rates.append(("committed", own.per_gpu_hour, f"what your bills show you paid over "
                      f"{own.hours:,.0f} instance-hours"))  # fmt: skip
    for term in ("commit_1y", "commit_3y"):
        listed = price(g.provider, g.instance_type, place.region, term)
        if listed is not None:
            rates.append((term, listed.per_gpu_hour, "catalog commitment price"))
    extra_storage = storage or Decimal(0)
    return [
        Option(capacity, _q(rate), _q(rate * gpu_hours * factors.p50 + extra_storage),
               _q(rate * gpu_hours * factors.p90 + extra_storage), note)
        for capacity, rate, note in rates
    ]  # fmt: skip


def checkpoint_storage(
    manifest: ExperimentManifest, place: GpuPrice, hours: Decimal
) -> tuple[Decimal | None, str]:
    """The kept checkpoints' GB, held for the run (`hours`) and `retention_days` after, at the
    hot-tier list price of the placement's region; None (unpriced) when the catalog lacks it."""
    c = manifest.checkpoint
    if c.size_gb == 0 or c.interval_minutes is None:
        return Decimal(0), "no checkpoint size and interval given: no checkpoint storage"
    written = math.floor(hours * 60 / c.interval_minutes)
    kept = min(written, c.keep_last) if c.keep_last is not None else written
    gb = c.size_gb * kept * manifest.trials
    listed = list_price(place.gpu.provider, place.region, HOT_TIER.get(place.gpu.provider, ""))
    if listed is None:
        return None, (f"checkpoint storage ({gb:,.0f} GB) unpriced: the catalog has no "
                      f"{place.gpu.provider} {place.region} list price")  # fmt: skip
    months = (hours + c.retention_days * 24) / HOURS_PER_MONTH
    usd = _q(gb * listed.per_gb_month * months)
    return usd, (f"checkpoint storage: {gb:,.0f} GB at ${listed.per_gb_month}/GB-month for "
                 f"{months:.2f} months")  # fmt: skip


def _alternative(p: GpuPrice, gpu_hours: Decimal, factors: Factors) -> dict[str, Any]:
    spot = price(p.gpu.provider, p.gpu.instance_type, p.region, "spot")
    return {
        "provider": p.gpu.provider,
        "region": p.region,
        "instance_type": p.gpu.instance_type,
        "on_demand_p50_usd": _q(p.per_gpu_hour * gpu_hours * factors.p50),
        "spot_list_p50_usd": None
        if spot is None
        else _q(spot.per_gpu_hour * gpu_hours * factors.p50),
    }


def headline(e: Estimate) -> str:
    """ "This training will cost $48,300 (P90 $61,200) on-demand, $21,900 on spot. Approve?\""""
    what = KIND_WORDS.get(e.manifest.kind, e.manifest.kind.replace("_", " "))
    od = e.option("on_demand")
    if od is None:
        return f"This {what} cannot be priced: {e.unpriced}."
    parts = [f"${od.p50_usd:,.0f} (P90 ${od.p90_usd:,.0f}) on-demand"]
    words = {"spot": "on spot", "committed": "at your committed rate"}
    parts += [f"${o.p50_usd:,.0f} {words[o.capacity]}" for o in e.options if o.capacity in words]
    return f"This {what} will cost {', '.join(parts)}. Approve?"


def markdown(estimates: Sequence[Estimate]) -> str:
    """A pull-request comment: each manifest's headline, its options and its assumptions."""
    out: list[str] = []
    for e in estimates:
        out += [f"### {e.manifest.name}", "", f"**{headline(e)}**", ""]
        if e.placement is not None:
            p = e.placement
            out.append(f"{e.gpus} x {p.gpu.gpu_model} ({p.gpu.provider} {p.gpu.instance_type}, "
                       f"{p.region}), {e.gpu_hours:,.0f} GPU-hours at P50.")  # fmt: skip
            out += ["", "| capacity | $/GPU-hour | P50 | P90 | basis |", "|---|---:|---:|---:|---|"]
            out += [f"| {o.capacity} | {o.usd_per_gpu_hour:,.2f} | ${o.p50_usd:,.0f} | "
                    f"${o.p90_usd:,.0f} | {o.note} |" for o in e.options]  # fmt: skip
            out.append("")
        if e.alternatives:
            out.append("Elsewhere in the catalog (on-demand, P50): " + "; ".join(
                f"{a['provider']} {a['region']} {a['instance_type']} ${a['on_demand_p50_usd']:,.0f}"
                for a in e.alternatives) + ".")  # fmt: skip
            out.append("")
        out += [f"- {a}" for a in e.assumptions] + [""]
    return "\n".join(out).rstrip() + "\n"


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def paid_window(last_day: dt.date, days: int = 30) -> tuple[dt.datetime, dt.datetime]:
    """The last `days` days of bills up to `last_day`, for the organization's paid rates."""
    end = dt.datetime(last_day.year, last_day.month, last_day.day, tzinfo=dt.UTC)
    end += dt.timedelta(days=1)
    return end - dt.timedelta(days=days), end
