"""Commitment sizing: how much steady on-demand GPU usage a 1-year commitment should cover.

Eligible spend is on-demand usage of GPU instances (hour-metered lines of catalogued types,
`attribution.instances.gpu_lines`, whose PricingCategory is not Committed and not Dynamic, i.e.
Spot), per pool (provider, region, instance type). From its bill lines the engine builds the
pool's usage level per charge period (instances running = quantity / period hours), each period
weighing its hours.

A commitment of `L` instances costs `L x c` every hour, used or not, and leaves the usage above
`L` at the on-demand rate `p`. One more committed instance saves `p` in the hours usage exceeds
`L` and costs `c` in all of them, so cost is least at the `L` exceeded a share `c / p = 1 - d`
of the time: the `d`-quantile of the hourly level (`d` the discount), rounded down to whole
instances. The discount is the catalog's 1-year committed price against its on-demand price
(Google Cloud), else what the organization's own committed lines of the provider paid against
their list cost. With neither, the pool is not recommended on: unpriced.

Saving per month: the window's cost on-demand less its cost with the commitment, per 30 days
(P50); low and high: the same on the window's worst and best week, per 30 days. A window shorter
than `LOOKBACK` (30 days) is widened to it, as far as the bills go back: a commitment lasts a
year, and a training pool whose runs filled a few days may sit idle the weeks between them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.instances import gpu_lines
from costline.attribution.rules import derive_lines
from costline.catalog.gpu_prices import price
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs, pool_name, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "commitment"
MICRO = Decimal("0.000001")
VEHICLES = {
    "aws": "an EC2 Instance Savings Plan or a reserved instance",
    "azure": "an Azure reservation or savings plan",
    "gcp": "a Google Cloud committed use discount",
}
WEEK = dt.timedelta(days=7)
LOOKBACK = dt.timedelta(days=30)  # the shortest history a commitment is sized on


def _levels(inputs: Inputs) -> ibis.Table:
    """Per pool and charge period: instances running on-demand, the period's hours, its cost."""
    g = gpu_lines(derive_lines(inputs.window_lines, inputs.rules))
    category = g.PricingCategory.fill_null("Standard")
    g = g.filter(g.instance_type.notnull(), g.ConsumedQuantity > 0,
                 ~category.isin(["Committed", "Dynamic"]))  # fmt: skip
    hours = g.ChargePeriodEnd.delta(g.ChargePeriodStart, unit="second").cast("float64") / 3600
    g = g.mutate(period_hours=hours)
    return g.group_by(
        provider=g.type_provider, region=g.RegionId, instance_type=g.instance_type,
        start=g.ChargePeriodStart, period_hours=g.period_hours, team=g.team,
    ).aggregate(quantity=g.ConsumedQuantity.sum(), cost=g.EffectiveCost.sum())  # fmt: skip


def _org_discounts(inputs: Inputs) -> dict[str, Decimal]:
    """provider -> 1 - effective / list cost of its committed GPU instance lines."""
    g = gpu_lines(derive_lines(inputs.window_lines, inputs.rules))
    g = g.filter(g.PricingCategory == "Committed", g.type_provider.notnull(), g.ListCost > 0)
    rows = fetch.rows(g.group_by(provider=g.type_provider).aggregate(
        effective=g.EffectiveCost.sum(), listed=g.ListCost.sum()))  # fmt: skip
    return {r["provider"]: 1 - Decimal(r["effective"]) / Decimal(r["listed"]) for r in rows}


def weighted_quantile(levels: list[tuple[float, float]], q: float) -> float:
    """The level exceeded during a share `1 - q` of the hours ((level, hours) pairs)."""
    ordered = sorted(levels)
    total = sum(h for _, h in ordered)
    run = 0.0
    for level, hours in ordered:
        run += hours
        if run >= q * total - 1e-9:
            return level
    return ordered[-1][0] if ordered else 0.0


def _cost(levels: list[tuple[float, float]], p: Decimal, c: Decimal, commit: int) -> Decimal:
    """On-demand cost at `p` above `commit` instances, plus the commitment at `c`, for the hours."""
    return sum(
        ((commit * c + Decimal(repr(max(u - commit, 0.0))) * p) * Decimal(repr(h))
         for u, h in levels),
        Decimal(0),
    )  # fmt: skip


def lookback(inputs: Inputs) -> Inputs:
    """The run's inputs over `LOOKBACK` of bills before its end when its window is shorter (from
    the first bill in that month when the ledger starts later): a year's commitment sized on a
    few days of a training pool that ran through them would pay for the idle weeks between its
    runs."""
    since = inputs.end - LOOKBACK
    if inputs.start <= since:
        return inputs
    t = inputs.lines
    first = fetch.value(t.filter(t.ChargePeriodStart >= since,
                                 t.ChargePeriodStart < inputs.start).ChargePeriodStart.min())  # fmt: skip
    if first is None:
        return inputs
    return dataclasses.replace(inputs, start=max(since, first))


def recommend_commitment(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool with steady on-demand usage worth committing (see the module),
    judged on a month of bills at least (`lookback`)."""
    inputs = lookback(inputs)
    pools: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in fetch.rows(_levels(inputs)):
        pools[(r["provider"], r["region"], r["instance_type"])].append(r)
    discounts = _org_discounts(inputs)
    return inputs.kept(_finding(k, rows, discounts, inputs) for k, rows in sorted(pools.items()))


def _discount(
    key: tuple[str, str, str], discounts: dict[str, Decimal]
) -> tuple[Decimal, str] | None:
    od, committed = price(*key_price(key)), price(*key_price(key), "commit_1y")
    if od is not None and committed is not None:
        return 1 - committed.price_usd_per_hour / od.price_usd_per_hour, "catalog commit_1y"
    if key[0] in discounts and discounts[key[0]] > 0:
        return discounts[key[0]], "the organization's committed lines"
    return None


def key_price(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """(provider, instance type, region): `catalog.gpu_prices.price`'s order."""
    return key[0], key[2], key[1]


def _finding(
    key: tuple[str, str, str], rows: list[dict[str, Any]], discounts: dict[str, Decimal],
    inputs: Inputs,
) -> Finding | None:  # fmt: skip
    found = _discount(key, discounts)
    hours = sum(float(r["quantity"]) for r in rows)
    if found is None or hours <= 0:
        return None
    d, basis = found
    p = sum((Decimal(r["cost"]) for r in rows), Decimal(0)) / Decimal(repr(hours))  # paid/hour
    c = p * (1 - d)
    by_start: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        cell = by_start[r["start"]]
        cell[0] += float(r["quantity"]) / float(r["period_hours"])
        cell[1] = float(r["period_hours"])
    span = (inputs.end - inputs.start).total_seconds() / 3600
    levels = [(u, h) for u, h in by_start.values()]
    levels.append((0.0, max(span - sum(h for _, h in levels), 0.0)))  # hours with none running
    commit = math.floor(weighted_quantile(levels, float(d)) + 1e-9)
    if commit < 1:
        return None
    now, then = _cost(levels, p, p, 0), _cost(levels, p, c, commit)
    per_month = inputs.per_month
    weeks = _weekly(by_start, inputs, p, c, commit)
    p50 = (now - then) * per_month
    low = min(weeks, default=p50)
    high = max(weeks, default=p50)
    name = pool_name(key)
    team = team_of(rows)
    share = sum(h for u, h in levels if u >= commit) / span
    return recommendation(
        kind=KIND,
        scope={"pool": name, **({"team": team} if team else {})},
        title=f"{name}: commit to {commit} instance(s) for a year ({d:.0%} off), running "
        f"{share:.0%} of the hours",
        summary=(
            f"{hours:,.0f} on-demand instance-hours of {key[2]} in {key[1]} cost "
            f"${now * per_month:,.0f} a month. At least {commit} ran {share:.0%} of the time; a "
            f"1-year commitment for {commit} at {d:.0%} off ({basis}) costs ${c:,.2f}/h each, "
            f"used or not, and saves ${float(p50):,.0f} a month."
        ),
        owner=inputs.owner(team),
        current_monthly=now * per_month,
        savings=Savings(p50, min(low, p50), max(high, p50)),
        method="hourly usage quantile at the discount (commit where usage exceeds it 1-d of the time)",
        inputs={
            "instances": commit,
            "discount": round(float(d), 4),
            "discount_basis": basis,
            "paid_usd_per_hour": p.quantize(MICRO),
            "committed_usd_per_hour": c.quantize(MICRO),
            "on_demand_hours": round(hours, 1),
            "share_of_hours_at_or_above": round(share, 3),
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="medium: a year's commitment is paid whether used or not; usage must stay at "
        f"{commit} instance(s) or more {1 - d:.0%} of the time to break even",
        action=f"Buy a 1-year commitment covering {commit} x {key[2]} in {key[1]} "
        f"({VEHICLES.get(key[0], 'a committed-use discount')}).",
        clock=inputs.clock,
    )


def _weekly(
    by_start: dict[dt.datetime, list[float]], inputs: Inputs, p: Decimal, c: Decimal, commit: int
) -> list[Decimal]:
    """The saving of each whole week of the window, per 30 days."""
    out = []
    week = inputs.start
    while week + WEEK <= inputs.end:
        levels = [(u, h) for s, (u, h) in by_start.items() if week <= s < week + WEEK]
        levels.append((0.0, max(168 - sum(h for _, h in levels), 0.0)))
        out.append((_cost(levels, p, p, 0) - _cost(levels, p, c, commit)) * 30 / 7)
        week += WEEK
    return out
