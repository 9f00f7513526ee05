"""Cost lines of the demo organization: usage, commitment, credit and tax rows in FOCUS 1.2 terms.

Amounts are `Decimal` end to end, rounded to 10 decimals per line (as a provider rounds a line), so
the files and the ground truth add up to the same figures exactly. Conventions follow the FOCUS 1.2
commitment-discount examples: a purchase line bills the commitment (EffectiveCost 0), covered usage
bills 0 and carries the amortized EffectiveCost, unused commitment is a usage line of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from costline.demo.commitment import (
    CENT,
    COST_QUANTUM,
    CommitmentPlan,
    Reservation,
    plan_commitment,
    plan_reservation,
)
from costline.demo.focus_files import FOCUS_COLUMNS, MONEY_COLUMNS, FocusTable, Row
from costline.demo.org import InstanceMeter, RateMeter, Resource, sku_id
from costline.demo.rates import (
    AWS_MONTHLY_PROMO_CREDIT,
    AZURE_EA_COMPUTE_DISCOUNT,
    LAMBDA_SALES_TAX_RATE,
)
from costline.demo.schedule import Timeline, UsageSeries
from costline.demo.totals import TotalsAccumulator
from costline.demo.usage import HOURS_PER_DAY
from costline.money import MONEY_CONTEXT

if TYPE_CHECKING:
    from costline.demo.incidents import Incidents

ZERO = Decimal(0)
ONE_HOUR = Decimal(1)
PROVIDER_EXTRAS: dict[str, tuple[str, ...]] = {
    "aws": ("x_UsageType",),
    "azure": ("x_ResourceGroupName",),
}
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "eastus": "East US",
    "westeurope": "West Europe",
    "us-central1": "Iowa",
    "us-south-1": "Texas, USA",
}

MutableRow = dict[str, str | Decimal | None]


def money(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM)


class BillSink:
    """Routes rows to one `FocusTable` per (provider, month) and totals them per resource."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.tables: dict[tuple[str, str], FocusTable] = {}
        self.per_resource: dict[str, TotalsAccumulator] = {}
        # (resource key, charge day "YYYY-MM-DD") -> effective cost: what budgets are planned on
        self.per_day: dict[tuple[str, str], Decimal] = {}

    def emit(self, resource: Resource, month: int, row: Row) -> None:
        key = (resource.account.provider, self.timeline.months[month].key)
        table = self.tables.get(key)
        if table is None:
            extras = PROVIDER_EXTRAS.get(resource.account.provider, ())
            table = self.tables[key] = FocusTable(FOCUS_COLUMNS + extras)
        table.append(row)
        self.per_resource.setdefault(resource.key, TotalsAccumulator()).add_row(row)
        day = (resource.key, str(row["ChargePeriodStart"])[:10])
        cost = row["EffectiveCost"]
        assert isinstance(cost, Decimal)
        self.per_day[day] = MONEY_CONTEXT.add(self.per_day.get(day, ZERO), cost)

    def billed(self, provider: str, month: int) -> Decimal:
        table = self.tables.get((provider, self.timeline.months[month].key))
        return table.total("BilledCost") if table else ZERO


def invoice_id(provider: str, month: str) -> str:
    return hashlib.sha256(f"invoice/{provider}/{month}".encode()).hexdigest()[:12].upper()


def _static(resource: Resource) -> MutableRow:
    a = resource.account
    tags = json.dumps(dict(resource.tags), separators=(",", ":"), ensure_ascii=False)
    region = resource.region
    blank: MutableRow = dict.fromkeys(FOCUS_COLUMNS + PROVIDER_EXTRAS.get(a.provider, ()))
    return blank | {
        "BillingAccountId": a.billing_account_id,
        "BillingAccountName": a.billing_account_name,
        "BillingCurrency": "USD",
        "ChargeClass": None,
        "InvoiceIssuerName": a.provider_name,
        "ProviderName": a.provider_name,
        "PublisherName": a.provider_name,
        "RegionId": region,
        "RegionName": REGION_NAMES.get(region) if region else None,
        "ResourceId": resource.resource_id,
        "ResourceName": resource.name,
        "ResourceType": resource.resource_type,
        "ServiceCategory": resource.service.category,
        "ServiceSubcategory": resource.service.subcategory,
        "ServiceName": resource.service.name,
        "SubAccountId": resource.sub_account.id,
        "SubAccountName": resource.sub_account.name,
        "Tags": tags if resource.tags or a.provider in ("azure", "gcp") else None,
        **dict(resource.extra),
    }


def _period(timeline: Timeline, provider: str, day: int, start: str, end: str) -> MutableRow:
    month = timeline.months[timeline.month_of_day[day]]
    return {
        "BillingPeriodStart": month.period_start,
        "BillingPeriodEnd": month.period_end,
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "InvoiceId": invoice_id(provider, month.key),
    }


def _hour_span(timeline: Timeline, provider: str, hour: int) -> MutableRow:
    marks = timeline.hour_marks
    return _period(timeline, provider, hour // HOURS_PER_DAY, marks[hour], marks[hour + 1])


def _day_span(timeline: Timeline, provider: str, day: int) -> MutableRow:
    marks = timeline.day_marks
    return _period(timeline, provider, day, marks[day], marks[day + 1])


def charged_rate(resource: Resource) -> Decimal:
    """What one on-demand hour of an instance is billed: its list price, less Azure's EA discount."""
    price = resource.instance
    if price is None:
        raise ValueError(f"{resource.key}: not an instance")
    if resource.account.provider == "azure":
        return price.price_usd_per_hour * (1 - AZURE_EA_COMPUTE_DISCOUNT)
    return price.price_usd_per_hour


def _instance_base(resource: Resource, meter: InstanceMeter) -> tuple[MutableRow, Decimal]:
    """Columns shared by every line of an instance, and its contracted unit price."""
    price = meter.price
    provider = resource.account.provider
    contracted = charged_rate(resource)
    descriptions = {
        "aws": f"${price.price_usd_per_hour} per On Demand Linux {price.instance_type} Instance Hour",
        "azure": f"{price.instance_type} - Linux virtual machine hours",
        "gcp": f"{price.instance_type} running in {price.region}",
        "lambda": f"On-demand {price.instance_type} instance hours",
    }
    base = _static(resource) | {
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": descriptions[provider],
        "ListUnitPrice": price.price_usd_per_hour,
        "ContractedUnitPrice": contracted,
        "PricingCategory": "Standard",
        "PricingUnit": "Hours",
        "ConsumedUnit": "Hours",
        "SkuId": sku_id(provider, price.instance_type, price.region),
    }
    if provider == "aws":
        base["x_UsageType"] = f"BoxUsage:{price.instance_type}"
    return base, contracted


def _costs(list_price: Decimal, contracted_price: Decimal, quantity: Decimal) -> MutableRow:
    contracted = money(contracted_price * quantity)
    return {
        "PricingQuantity": quantity,
        "ConsumedQuantity": quantity,
        "ListCost": money(list_price * quantity),
        "ContractedCost": contracted,
        "BilledCost": contracted,
        "EffectiveCost": contracted,
    }


def emit_instance(
    resource: Resource, active: list[bool], plan: CommitmentPlan | None, sink: BillSink
) -> None:
    """Instance hours: one line per running hour, or per day with the day's hours (Azure)."""
    meter = resource.meters[0]
    assert isinstance(meter, InstanceMeter)
    base, contracted = _instance_base(resource, meter)
    listed = meter.price.price_usd_per_hour
    timeline = sink.timeline
    provider = resource.account.provider
    if not resource.account.hourly:
        for day in range(timeline.days):
            hours = sum(active[day * HOURS_PER_DAY : (day + 1) * HOURS_PER_DAY])
            if hours:
                span = _day_span(timeline, provider, day)
                row = base | span | _costs(listed, contracted, Decimal(hours))
                sink.emit(resource, timeline.month_of_day[day], row)
        return
    on_demand = _costs(listed, contracted, ONE_HOUR)
    covered_hours = plan.covered.get(resource.key) if plan else None
    committed = _covered(resource, plan, on_demand) if plan and covered_hours else on_demand
    for hour, running in enumerate(active):
        if not running:
            continue
        day = hour // HOURS_PER_DAY
        span = _hour_span(timeline, provider, hour)
        costs = committed if covered_hours and covered_hours[hour] else on_demand
        sink.emit(resource, timeline.month_of_day[day], base | span | costs)


def _covered(resource: Resource, plan: CommitmentPlan, on_demand: MutableRow) -> MutableRow:
    amortized = plan.rates[resource.key]
    return on_demand | {
        "BilledCost": ZERO,
        "EffectiveCost": amortized,
        "PricingCategory": "Committed",
        "CommitmentDiscountCategory": plan.category,
        "CommitmentDiscountId": plan.commitment_id,
        "CommitmentDiscountName": plan.name,
        "CommitmentDiscountQuantity": plan.quantity(amortized, resource.key),
        "CommitmentDiscountStatus": "Used",
        "CommitmentDiscountType": plan.type,
        "CommitmentDiscountUnit": plan.unit,
    }


def _rate_base(resource: Resource, meter: RateMeter) -> MutableRow:
    rate = meter.rate
    provider = resource.account.provider
    base = _static(resource) | {
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": f"${rate.unit_price} per {rate.pricing_unit} - {rate.sku}",
        "ListUnitPrice": rate.unit_price,
        "ContractedUnitPrice": rate.unit_price,
        "PricingCategory": "Standard",
        "PricingUnit": rate.pricing_unit,
        "ConsumedUnit": rate.consumed_unit,
        "SkuId": sku_id(provider, rate.sku),
    }
    if provider == "aws":
        base["x_UsageType"] = rate.sku
    return base


def emit_volume(resource: Resource, levels: list[float], sink: BillSink) -> None:
    """Metered services: one line per meter per day, quantity = nominal volume x the day's level."""
    timeline = sink.timeline
    provider = resource.account.provider
    for meter in resource.meters:
        assert isinstance(meter, RateMeter)
        rate = meter.rate
        base = _rate_base(resource, meter)
        for day, level in enumerate(levels):
            quantity = meter.per_day * Decimal(f"{level:.6f}")
            if rate.monthly:
                quantity /= timeline.months[timeline.month_of_day[day]].days
            quantity = quantity.quantize(rate.quantum)
            if quantity <= 0:
                continue
            span = _day_span(timeline, provider, day)
            costs = _costs(rate.unit_price, rate.unit_price, quantity)
            costs["ConsumedQuantity"] = (quantity * rate.consumed_per_unit).normalize()
            sink.emit(resource, timeline.month_of_day[day], base | span | costs)


def emit_commitment(resource: Resource, plan: CommitmentPlan, sink: BillSink) -> None:
    """The plan's hourly fee (Purchase) and, where the hour left some, its unused commitment."""
    timeline = sink.timeline
    provider = resource.account.provider
    static = _static(resource)
    if provider == "aws":
        static["x_UsageType"] = "ComputeSP:1yrNoUpfront"
    commitment = {
        "CommitmentDiscountCategory": plan.category,
        "CommitmentDiscountId": plan.commitment_id,
        "CommitmentDiscountName": resource.name,
        "CommitmentDiscountType": plan.type,
        "CommitmentDiscountUnit": plan.unit,
    }
    fee = plan.hourly
    purchase = (
        static
        | commitment
        | {
            "ChargeCategory": "Purchase",
            "ChargeFrequency": "Recurring",
            "ChargeDescription": plan.description,
            "PricingCategory": "Standard",
            "PricingQuantity": ONE_HOUR,
            "PricingUnit": "Hours",
            "ListUnitPrice": fee,
            "ContractedUnitPrice": fee,
            "CommitmentDiscountQuantity": plan.quantity(fee),
            "BilledCost": money(fee),
            "EffectiveCost": money(ZERO),
            "ListCost": money(fee),
            "ContractedCost": money(fee),
        }
    )
    for hour, unused in enumerate(plan.unused):
        day = hour // HOURS_PER_DAY
        month = timeline.month_of_day[day]
        span = _hour_span(timeline, provider, hour)
        sink.emit(resource, month, purchase | span)
        if unused > 0:
            amount = money(unused)
            row = _unused(amount, plan.quantity(amount), f"Unused {plan.type} commitment")
            sink.emit(resource, month, static | commitment | span | row)


def _unused(amount: Decimal, quantity: Decimal, description: str) -> MutableRow:
    return {
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": description,
        "PricingCategory": "Committed",
        "CommitmentDiscountStatus": "Unused",
        "CommitmentDiscountQuantity": quantity,
        "BilledCost": money(ZERO),
        "EffectiveCost": amount,
        "ListCost": money(ZERO),
        "ContractedCost": money(ZERO),
    }


def emit_month_adjustments(resource: Resource, sink: BillSink) -> None:
    """One credit (AWS promotional credit) or tax (Lambda sales tax) line per billing month."""
    timeline = sink.timeline
    for index, month in enumerate(timeline.months):
        start, end = timeline.month_span(index)
        first_day = timeline.month_of_day.index(index)
        if resource.kind == "credit":  # prorated to the days of the month inside the window
            share = Decimal(timeline.month_of_day.count(index)) / month.days
            amount = money(-(AWS_MONTHLY_PROMO_CREDIT * share).quantize(CENT))
            what = ("Credit", "One-Time", "AWS Promotional Credit - Generative AI Accelerator")
        else:
            amount = money(sink.billed(resource.account.provider, index) * LAMBDA_SALES_TAX_RATE)
            what = ("Tax", "Recurring", f"Sales tax ({LAMBDA_SALES_TAX_RATE * 100:.2f}%)")
        span = _period(timeline, resource.account.provider, first_day, start, end)
        row = _static(resource) | span | dict.fromkeys(MONEY_COLUMNS, amount)
        row |= {"ChargeCategory": what[0], "ChargeFrequency": what[1], "ChargeDescription": what[2]}
        sink.emit(resource, index, row)


def plan_commitments(
    resources: list[Resource], active: dict[str, list[bool]], hours: int,
    reservations: Sequence[Reservation] = (),
) -> list[CommitmentPlan]:  # fmt: skip
    """One plan per commitment the resources name: the Savings Plan first (spend-based, see
    `plan_commitment`), then the `reservations` (resource-based) in order."""
    held = {r.commitment_id: r for r in reservations}
    by_id: dict[str, list[Resource]] = {}
    for r in resources:
        if r.commitment:
            by_id.setdefault(r.commitment, []).append(r)
    plans = [plan_commitment(cid, members, active, hours)
             for cid, members in by_id.items() if cid not in held]  # fmt: skip
    if len(plans) > 1:
        raise ValueError("the demo supports one spend-based commitment discount")
    return plans + [plan_reservation(r, by_id.get(r.commitment_id, []), active, hours)
                    for r in reservations]  # fmt: skip


def charge(
    resources: Iterable[Resource], sink: BillSink, seed: int, incidents: Incidents | None = None,
    reservations: Sequence[Reservation] = (),
) -> list[CommitmentPlan]:  # fmt: skip
    """Emit every line of every resource: usage first, then commitments, credits and taxes;
    `incidents` change the volume levels they strike (see `costline.demo.incidents`). Returns
    the commitments' plans (`plan_commitments`)."""
    ordered = list(resources)
    series = UsageSeries(sink.timeline, seed)
    active = {r.key: series.active(r) for r in ordered if r.kind == "usage" and r.instance}
    plans = plan_commitments(ordered, active, sink.timeline.hours, reservations)
    by_id = {p.commitment_id: p for p in plans}
    for r in ordered:
        if r.kind == "usage" and r.instance:
            emit_instance(r, active[r.key], by_id.get(r.commitment or ""), sink)
        elif r.kind == "usage":
            levels = series.levels(r)
            emit_volume(r, incidents.levels(r, levels) if incidents else levels, sink)
    for r in ordered:
        if r.kind == "commitment" and r.resource_id in by_id:
            emit_commitment(r, by_id[r.resource_id or ""], sink)
        elif r.kind in ("credit", "tax"):
            emit_month_adjustments(r, sink)
    return plans
