"""The rates the organization actually pays for GPU instances, learned from its own bills.

`effective_rates` groups the billed hours of GPU instance lines (`attribution.instances.gpu_lines`)
by provider, region and instance type in the engine, and divides: effective cost (commitments
amortized, discounts applied) per instance-hour and per GPU-hour, beside the list cost the bill
states and the catalog's on-demand price for the same type and region. A rate with no catalog
price is compared with nothing (unpriced), never with zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import ibis

from costline.attribution.instances import gpu_lines
from costline.attribution.rules import Rules, derive_lines
from costline.catalog.gpu_prices import GpuPrice, price
from costline.ledger import fetch


@dataclass(frozen=True)
class PaidRate:
    provider: str
    region: str | None
    instance_type: str
    gpus: int
    hours: Decimal  # instance-hours billed
    effective_cost: Decimal
    list_cost: Decimal | None  # None when the bill gives no list cost
    on_demand: GpuPrice | None  # the catalog's on-demand price, or None (unpriced)

    @property
    def per_hour(self) -> Decimal:
        return self.effective_cost / self.hours

    @property
    def per_gpu_hour(self) -> Decimal:
        return self.per_hour / self.gpus

    @property
    def discount_vs_catalog(self) -> Decimal | None:
        """1 - paid / the catalog's on-demand price; None when the catalog has no price."""
        if self.on_demand is None:
            return None
        return 1 - self.per_hour / self.on_demand.price_usd_per_hour


def paid_hours(lines: ibis.Table, start: dt.datetime, end: dt.datetime, rules: Rules) -> ibis.Table:
    """Billed GPU instance-hours of [start, end) per provider, region and catalogued type."""
    window = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    g = gpu_lines(derive_lines(window, rules))
    g = g.filter(g.instance_type.notnull(), g.ConsumedQuantity > 0)
    return g.group_by(
        provider=g.type_provider, region=g.RegionId, instance_type=g.instance_type, gpus=g.gpus
    ).aggregate(
        hours=g.ConsumedQuantity.sum(),
        effective_cost=g.EffectiveCost.sum(),
        list_cost=g.ListCost.sum(),
    )


def effective_rates(
    lines: ibis.Table, start: dt.datetime, end: dt.datetime, rules: Rules | None = None
) -> list[PaidRate]:
    """What each GPU instance type cost per hour in [start, end), most hours first."""
    rows = fetch.rows(paid_hours(lines, start, end, rules or Rules()))
    out = [
        PaidRate(
            provider=r["provider"], region=r["region"], instance_type=r["instance_type"],
            gpus=int(r["gpus"]), hours=Decimal(r["hours"]),
            effective_cost=Decimal(r["effective_cost"]),
            list_cost=None if r["list_cost"] is None else Decimal(r["list_cost"]),
            on_demand=price(r["provider"], r["instance_type"], r["region"] or "")
            if r["provider"] in ("aws", "azure", "gcp") else None,
        )
        for r in rows
    ]  # fmt: skip
    return sorted(out, key=lambda p: (-p.hours, p.provider, p.instance_type, p.region or ""))
