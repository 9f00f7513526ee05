"""Commitments already held: their utilization, coverage and expiry, and work to fill idle hours.

Per commitment (`CommitmentDiscountId`), over the window, from the cost lines: what it covered
(lines with `CommitmentDiscountStatus` Used) and what it paid for nothing (Unused), per hour of
day; its provider's coverage (covered compute cost over covered plus on-demand compute cost);
and, from the FOCUS Contract Commitment dataset when it was ingested (`contract_commitments`),
when its contract period ends. A commitment that leaves `MIN_UNUSED` or more of its cost unused
is a recommendation: fill its idle hours with deferrable work now on on-demand (the tolerant
kinds of `capacity.TOLERANT` that held GPU-time on pools of the same provider), which costs
nothing more there. The saving per 30 days: the lesser of the unused dollars and that
deferrable work's on-demand dollars (P50); low: half of it (the work must fit the hours and the
commitment's scope); high: all the unused dollars.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import ibis

from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.capacity import held_by_tolerant
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, recommendation

KIND = "commitment_use"
MIN_UNUSED = Decimal("0.05")  # share of a commitment's cost paid for nothing
EXPIRING = dt.timedelta(days=90)


def commitment_hours(inputs: Inputs) -> ibis.Table:
    """Per commitment and charge period (`at`, an hour): its used and unused dollars, the list
    (on-demand) cost of what it covered (`used_list`, NULL where the bills give none) and its
    provider, in the engine. The idle committed hours `cheaper_window` moves work into, too."""
    t = inputs.window_lines
    t = t.filter(
        t.CommitmentDiscountId.notnull(), t.CommitmentDiscountStatus.isin(["Used", "Unused"])
    )
    return t.group_by(
        commitment=t.CommitmentDiscountId, name=t.CommitmentDiscountName,
        provider=t.ProviderName, at=t.ChargePeriodStart,
    ).aggregate(
        used=t.EffectiveCost.sum(where=t.CommitmentDiscountStatus == "Used").fill_null(0),
        unused=t.EffectiveCost.sum(where=t.CommitmentDiscountStatus == "Unused").fill_null(0),
        used_list=t.ListCost.sum(where=t.CommitmentDiscountStatus == "Used"),
    )  # fmt: skip


def _use(inputs: Inputs) -> list[dict[str, Any]]:
    """Per commitment and hour of day: used and unused dollars, and its provider."""
    h = commitment_hours(inputs)
    return fetch.rows(h.group_by("commitment", "name", "provider", hour=h.at.hour())
                      .aggregate(used=h.used.sum(), unused=h.unused.sum()))  # fmt: skip


def _on_demand_compute(inputs: Inputs) -> dict[str, Decimal]:
    """provider -> on-demand compute cost in the window (what a commitment could cover)."""
    t = inputs.window_lines
    t = t.filter(t.ServiceCategory == "Compute", t.CommitmentDiscountId.isnull(),
                 t.PricingCategory.fill_null("Standard") == "Standard")  # fmt: skip
    rows = fetch.rows(t.group_by(provider=t.ProviderName).aggregate(usd=t.EffectiveCost.sum()))
    return {r["provider"]: Decimal(r["usd"] or 0) for r in rows}


def _ends(inputs: Inputs) -> dict[str, dt.datetime]:
    """Contract commitment id -> its contract period's end, when the dataset was ingested."""
    c = inputs.contracts
    if c is None:
        return {}
    rows = fetch.rows(
        c.group_by(id=c.ContractCommitmentId).aggregate(end=c.ContractPeriodEnd.max())
    )
    return {r["id"]: r["end"] for r in rows if r["id"] and r["end"]}


def recommend_commitment_use(inputs: Inputs) -> list[Finding]:
    """One recommendation per commitment paying for idle hours (see the module)."""
    cells: dict[tuple[str, str | None, str], list[dict[str, Any]]] = defaultdict(list)
    for r in _use(inputs):
        cells[(r["commitment"], r["name"], r["provider"])].append(r)
    if not cells:
        return []
    on_demand = _on_demand_compute(inputs)
    deferrable: dict[str, Decimal] = defaultdict(Decimal)
    for key, members in inputs.pooled(held_by_tolerant(inputs.allocation.table(),
                                                       inputs.workloads)).items():  # fmt: skip
        deferrable[key[0]] += sum((Decimal(m["usd"]) for m in members), Decimal(0))
    ends = _ends(inputs)
    return inputs.kept(_finding(k, rows, on_demand, deferrable, ends, inputs)
                       for k, rows in sorted(cells.items()))  # fmt: skip


PROVIDERS = {"aws": ("aws", "amazon"), "azure": ("azure", "microsoft"), "gcp": ("google", "gcp")}


def catalog_provider(name: str) -> str | None:
    low = name.lower()
    return next((p for p, words in PROVIDERS.items() if any(w in low for w in words)), None)


def _finding(
    key: tuple[str, str | None, str], rows: list[dict[str, Any]], on_demand: dict[str, Decimal],
    deferrable: dict[str, Decimal], ends: dict[str, dt.datetime], inputs: Inputs,
) -> Finding | None:  # fmt: skip
    commitment, name, provider = key
    used = sum((Decimal(r["used"]) for r in rows), Decimal(0))
    unused = sum((Decimal(r["unused"]) for r in rows), Decimal(0))
    if used + unused <= 0 or unused / (used + unused) < MIN_UNUSED:
        return None
    per_month = inputs.per_month
    fill = deferrable.get(catalog_provider(provider) or "", Decimal(0))
    p50 = min(unused, fill) * per_month
    if p50 <= 0:
        return None
    idle_hours = sorted((r for r in rows if Decimal(r["unused"]) > 0),
                        key=lambda r: (-Decimal(r["unused"]), r["hour"]))[:6]  # fmt: skip
    hours = ", ".join(
        f"{int(r['hour']):02d}:00" for r in sorted(idle_hours, key=lambda r: r["hour"])
    )
    covered = used / (used + on_demand.get(provider, Decimal(0))) if used else Decimal(0)
    end = ends.get(commitment)
    soon = end is not None and end - inputs.end <= EXPIRING
    label = name or commitment
    return recommendation(
        kind=KIND,
        scope={"commitment": label},
        title=f"commitment {label}: {unused / (used + unused):.0%} of it unused, mostly at {hours} UTC",
        summary=(
            f"{label} ({provider}) covered ${used * per_month:,.0f} a month and paid "
            f"${unused * per_month:,.0f} for nothing; it covers {covered:.0%} of the provider's "
            f"on-demand and committed compute. Deferrable work (training, batch, evaluations) "
            f"that ran on on-demand {provider} capacity cost ${fill * per_month:,.0f} a month: "
            "moved into the idle hours, it costs nothing more."
            + (
                f" The commitment ends {end:%Y-%m-%d}: size its renewal on the `commitment` "
                "recommendation."
                if soon and end
                else ""
            )
            + (
                ""
                if end
                else " Its end date is not in the bills (ingest the FOCUS Contract "
                "Commitment dataset)."
            )
        ),
        owner=None,
        current_monthly=(used + unused) * per_month,
        savings=Savings(p50, p50 / 2, max(unused * per_month, p50)),
        method="unused commitment dollars filled with deferrable on-demand work of the provider",
        inputs={
            "utilization": round(float(used / (used + unused)), 4),
            "coverage": round(float(covered), 4),
            "idle_hours_utc": hours,
            "unused_usd": unused,
            "deferrable_on_demand_usd": fill,
            "contract_end": end.isoformat() if end else None,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="low: the hours are paid for already; the work must match the commitment's scope "
        "(a Savings Plan's instance families or a reservation's type)",
        action=f"Schedule deferrable jobs (training, batch inference, evaluations, embedding "
        f"refresh) in {label}'s idle hours ({hours} UTC), e.g. a CronJob or a queue's time "
        "window, instead of on on-demand capacity.",
        clock=inputs.clock,
    )
