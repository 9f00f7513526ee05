"""Budgets evaluated on a ledger: every budget's periods and forecasts, experiment caps, and the
findings of both. `costline budgets`, `costline sync` and the server all call `evaluate_budgets`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costline.budgets.status import BudgetStatus
    from costline.clock import Clock
    from costline.config import Config
    from costline.ledger.store import Ledger
    from costline.model import Finding

EXPERIMENT_DAYS = 90  # how far back an experiment's cost is counted


@dataclass(frozen=True)
class BudgetReport:
    statuses: list[BudgetStatus]
    experiments: list[dict[str, Any]]
    findings: list[Finding]


def last_bill_day(ledger: Ledger) -> dt.date:
    """The last day any cost line is charged in; a ledger without bills is an error."""
    from costline.errors import CostlineError
    from costline.ledger.sql import bill_days

    day = bill_days(ledger.con)[1]
    if day is None:
        raise CostlineError("no cost lines in the ledger: ingest bills first")
    return day


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
    from costline.budgets.experiments import cap_findings, experiment_rows
    from costline.budgets.status import budget_findings, evaluate
    from costline.economics.unit_report import TABLES, Registry, run_allocation, run_costs
    from costline.ledger.sql import bill_days
    from costline.model import Window

    rules = Rules.from_config(config)
    lines = ledger.table("cost_lines")
    statuses = evaluate(lines, config.budgets, as_of, rules=rules, cost=cost, since=since,
                        data_start=bill_days(ledger.con)[0], forecast=forecast)  # fmt: skip
    findings = budget_findings(statuses, clock=clock, rules=rules)
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
