"""The unit-cost report, assembled once for the CLI (`report unit-costs`), the API and budgets.

`run_costs` is the one place a declared training run's or endpoint's cost in a window is computed
(GPU by telemetry where samples exist and by the workloads' schedules where they do not, with its
telemetry `coverage_pct`; orchestration; checkpoints and data; transfer): `report unit-costs`,
`costline budgets` (experiment caps) and `/api/v1/unit-costs` all read it, so the same run over
the same window costs the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.allocate import COST_COLUMNS, Allocation, CostColumn, allocate
from costline.attribution.registry import Declared, declared, links
from costline.attribution.rules import Rules, derive_requests
from costline.config import Config
from costline.economics.declared import declared_costs
from costline.economics.outcomes import outcomes
from costline.economics.scorecard import scorecard as scorecard_rows
from costline.economics.unit_costs import (
    business_units,
    gpu_units,
    llm_outcomes,
    llm_totals,
    llm_units,
    unit_costs,
)
from costline.ledger import fetch
from costline.money import format_money

TABLES = ("cost_lines", "gpu_samples", "workloads", "llm_requests", "metrics", "storage_objects")
Span = tuple[dt.datetime, dt.datetime]


def run_allocation(
    tables: Mapping[str, ibis.Table], rules: Rules, start: dt.datetime, end: dt.datetime,
    cost: CostColumn = "effective",
) -> Allocation:  # fmt: skip
    """The window's allocation as every run cost and unit cost reads it."""
    return allocate(tables["cost_lines"], tables["gpu_samples"], tables["workloads"], start, end,
                    cost=cost, rules=rules, metrics=tables["metrics"])  # fmt: skip


@dataclass(frozen=True)
class Registry:
    """The registry's entries and the observed workloads each claims: the same in every window,
    so a report of two periods (or budgets) reads them once."""

    entries: list[Declared]
    linked: dict[str, str]  # observed workload id -> the entry that claims it

    @classmethod
    def of(cls, workloads: ibis.Table) -> Registry:
        entries = declared(workloads)
        linked = {r["workload_id"]: r["entry"]
                  for r in fetch.rows(links(workloads, entries))}  # fmt: skip
        return cls(entries, linked)


def run_costs(
    tables: Mapping[str, ibis.Table],
    allocation: Allocation,
    registry: Registry,
    cost: CostColumn = "effective",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(declared runs and endpoints, GPU workloads, GPU pools) over the allocation's window."""
    workloads, pools = gpu_units(allocation, tables["workloads"], tables["gpu_samples"])
    runs = declared_costs(registry.entries, registry.linked, workloads, tables["cost_lines"],
                          tables["storage_objects"], tables["metrics"], allocation.start,
                          allocation.end, cost=COST_COLUMNS[cost])  # fmt: skip
    window = f"{allocation.start:%Y-%m-%d}..{allocation.end:%Y-%m-%d}"
    for r in (*runs, *workloads):
        r["window"] = window
    return runs, workloads, pools


def is_month(start: dt.datetime, end: dt.datetime) -> bool:
    """Whether `[start, end)` is one calendar month."""
    midnight = start.time() == dt.time(0)
    return midnight and start.day == 1 and end == (start + dt.timedelta(days=32)).replace(day=1)


def previous_window(start: dt.datetime, end: dt.datetime) -> Span:
    """The period a report compares with: the calendar month before for a calendar month, else as
    many days just before."""
    if is_month(start, end):
        return (start - dt.timedelta(days=1)).replace(day=1), start
    return start - (end - start), start


def unit_cost_report(
    tables: Mapping[str, ibis.Table],
    config: Config,
    window: Span,
    previous: Span | None,
    *,
    cost: CostColumn = "effective",
    scorecard: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Sections declared, llm, llm_outcomes (cost per valuable output of each app), workloads,
    pools (and business_units when configured), each row
    with `change_pct` against `previous` when given. Empty sections are left out. LLM models are
    named as the bills name them (`models.aliases`). With `scorecard`, also the scorecard
    (`economics.scorecard`: the headline figures side by side, week and month over month)."""
    rules = Rules.from_config(config)
    tables = {**tables, "llm_requests": derive_requests(tables["llm_requests"], rules)}
    registry = Registry.of(tables["workloads"])

    def run(start: dt.datetime, end: dt.datetime) -> dict[str, list[dict[str, Any]]]:
        a = run_allocation(tables, rules, start, end, cost)
        runs, workloads, pools = run_costs(tables, a, registry, cost)
        totals = llm_totals(tables["llm_requests"], start, end)
        out = {
            "declared": runs,
            "llm": llm_units(tables["llm_requests"], start, end, totals),
            "llm_outcomes": llm_outcomes(totals, outcomes(tables["metrics"], start, end)),
            "workloads": workloads,
            "pools": pools,
        }
        if config.units:
            out["business_units"] = business_units(a, tables["metrics"], config.units)
        return out

    sections = run(*window) if previous is None else unit_costs(run, window, previous)
    if scorecard:
        sections["scorecard"] = scorecard_rows(tables, *window)
    return {name: rows for name, rows in sections.items() if rows}


LOW_COVERAGE_PCT = 50.0


def per_month(cost: Any, window: Span) -> Any:
    """A window's cost as a monthly rate: the cost itself for a calendar month, else scaled to a
    30-day month (a week's $70 is $300/month)."""
    start, end = window
    if is_month(start, end):
        return cost
    seconds = Decimal((end - start).total_seconds())
    return (Decimal(cost) * Decimal(30 * 86400) / seconds).quantize(Decimal("0.01"))


def unit_sentences(
    sections: Mapping[str, list[dict[str, Any]]], period: str, window: Span
) -> list[str]:
    """The unit-cost tables' headline figures, in business terms, with coverage warnings:
    an endpoint "costs $X/month to serve, $Y per prediction" (`per_month` of the window)."""
    said = []
    for r in sections.get("declared", []):
        if r["kind"] == "inference_endpoint" and r["per_success_usd"] is not None:
            monthly = per_month(r["cost_usd"], window)
            rate = ("" if is_month(*window)
                    else f" at its {period} rate ({format_money(r['cost_usd'])} in the window)")  # fmt: skip
            said.append(
                f"{r['team']}'s {r['name']} endpoint costs {format_money(monthly)}/month to "
                f"serve{rate} ({r['inferences']:,.0f} inferences in {period}, "
                f"{format_money(r['per_1k_inferences_usd'], places=4)} per 1K), "
                f"{format_money(r['per_success_usd'], places=6)} per prediction."
            )
        elif r["kind"] != "inference_endpoint" and r["storage_usd"] is not None:
            budget = (f"; {r['budget_used_pct']}% of its budget" if r["budget_used_pct"] is not None
                      else "")  # fmt: skip
            said.append(
                f"{r['name']} ({r['kind'].replace('_', ' ')}, {r['team']}) cost "
                f"{format_money(r['cost_usd'])} in {period}: GPU "
                f"{format_money(r['gpu_cost_usd'])}, orchestration "
                f"{format_money(r['orchestration_usd'])}, checkpoints and data "
                f"{format_money(r['storage_usd'])}, transfer "
                f"{format_money(r['transfer_usd'])}{budget}."
            )
        coverage = r.get("coverage_pct")
        if coverage is not None and coverage < LOW_COVERAGE_PCT:
            said.append(
                f"warning: only {coverage}% of {r['name']}'s GPU-hours in {period} are backed by "
                "telemetry; the rest is split by its jobs' schedules (start, end, GPUs requested)."
            )
    for r in sections.get("llm", [])[:3]:
        per = (format_money(r["per_1k_requests_usd"], places=4) if r["per_1k_requests_usd"]
               else "unpriced")  # fmt: skip
        success = (format_money(r["per_success_usd"], places=4) if r["per_success_usd"]
                   else "unpriced")  # fmt: skip
        said.append(
            f"{r['app']} on {r['model']} cost {format_money(r['cost_usd'])} in {period} at its "
            f"traffic ({r['requests']:,} requests): {per} per 1K requests, {success} per "
            "successful request."
        )
    said += _outcome_sentences(sections.get("llm_outcomes", []), period)
    return said


def _singular(metric: str) -> str:
    """An outcome metric's name as one outcome: `accepted_answers` -> `accepted answer`."""
    words = metric.replace("_", " ")
    return words[:-1] if words.endswith("s") and not words.endswith("ss") else words


def _outcome_sentences(rows: list[dict[str, Any]], period: str) -> list[str]:
    """Cost per valuable output, for the outcome metrics (not the status-based successes, which
    the LLM sentences above already say), with its trend against the previous period."""
    said = []
    for r in [r for r in rows if r["source"] != "status" and r["per_outcome_usd"]][:3]:
        trend = (f", {r['change_pct']:+}% on the previous period" if r.get("change_pct") is not None
                 else "")  # fmt: skip
        on = f" on {r['model']}" if r["model"] else ""
        said.append(
            f"{r['app']}{on} cost "
            f"{format_money(r['per_outcome_usd'], places=4)} per {_singular(r['outcome'])} in "
            f"{period} "
            f"({r['outcomes']:,.0f} of {r['requests']:,} requests){trend}."
        )
    return said
