"""Budgets evaluated on a ledger: every budget's periods and forecasts, experiment caps, and the
findings of both. `costline budgets`, `costline sync` and the server all call `evaluate_budgets`.

`evaluate` (statuses, projections and forecast checks of the budgets of a cost table) lives here,
above `status` and `checks`, which it combines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from costline.budgets.checks import first_day_checked, with_checks
from costline.budgets.periods import periods_between
from costline.budgets.status import (
    HISTORY_DAYS,
    BudgetStatus,
    _with_projections,
    daily_spend,
    status_of,
)

if TYPE_CHECKING:
    import ibis

    from costline.attribution.rules import Rules
    from costline.clock import Clock
    from costline.config import Budget, Config
    from costline.ledger.store import Ledger
    from costline.model import Finding

EXPERIMENT_DAYS = 90  # how far back an experiment's cost is counted


@dataclass(frozen=True)
class BudgetReport:
    statuses: list[BudgetStatus]
    experiments: list[dict[str, Any]]
    findings: list[Finding]


def evaluate_budgets(
    ledger: Ledger,
    config: Config,
    as_of: dt.date,
    *,
    clock: Clock,
    since: dt.date | None = None,
    cost: str = "EffectiveCost",
    forecast: bool = True,
) -> BudgetReport:
    """Budgets from `since` to `as_of` (periods and forecasts), experiment caps, findings."""
    from costline.allocation.allocate import CostColumn
    from costline.attribution.rules import Rules
    from costline.budgets.digest import budget_digests
    from costline.budgets.experiments import cap_findings, experiment_rows
    from costline.budgets.status import budget_findings
    from costline.economics.unit_report import TABLES, Registry, run_allocation, run_costs
    from costline.ledger.sql import bill_days
    from costline.model import Window

    rules = Rules.from_config(config)
    lines = ledger.table("cost_lines")
    statuses = evaluate(lines, config.budgets, as_of, rules=rules, cost=cost, since=since,
                        data_start=bill_days(ledger.con)[0], forecast=forecast)  # fmt: skip
    findings = budget_findings(statuses, clock=clock, rules=rules)
    findings += budget_digests(statuses, clock=clock, rules=rules)
    end = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    window = Window(start=end - dt.timedelta(days=EXPERIMENT_DAYS), end=end)
    tables = {name: ledger.table(name) for name in TABLES}
    column: CostColumn = "billed" if cost == "BilledCost" else "effective"
    allocation = run_allocation(tables, rules, window.start, window.end, column)
    registry = Registry.of(tables["workloads"])
    runs, workloads, _ = run_costs(tables, allocation, registry, column)
    experiments = experiment_rows(runs, workloads, registry.linked, config.experiments)
    findings += cap_findings(experiments, config.experiments, window, clock=clock, rules=rules)
    return BudgetReport(statuses, experiments, findings)


def evaluate(
    lines: ibis.Table,
    budgets: Sequence[Budget],
    as_of: dt.date,
    *,
    rules: Rules | None = None,
    cost: str = "EffectiveCost",
    since: dt.date | None = None,
    data_start: dt.date | None = None,
    forecast: bool = True,
) -> list[BudgetStatus]:
    """Every budget's status in each of its periods from `since` (default: only the period
    holding `as_of`) to `as_of`, oldest first; the current periods with period-end forecasts.

    `data_start` is the first day the ledger has cost for: forecasts learn from that day on.
    """
    since = since or as_of
    spans = {b.name: list(periods_between(b, since, as_of)) for b in budgets}
    first = min([as_of - dt.timedelta(days=HISTORY_DAYS - 1),
                 *[p[0].start for p in spans.values() if p]])  # fmt: skip
    if forecast:
        first = min(first, first_day_checked(budgets, as_of, HISTORY_DAYS))
    daily = daily_spend(lines, budgets, first, as_of, rules=rules, cost=cost)
    statuses = [
        status_of(b, period, as_of, daily[b.name]) for b in budgets for period in spans[b.name]
    ]
    if forecast:
        statuses = _with_projections(statuses, daily, as_of, data_start)
        statuses = with_checks(statuses, daily, as_of, data_start)
    return statuses
