"""`costline budgets`: each budget's status, period-end forecast and days to exhaustion, and each
experiment against its cap; the crossings are stored as findings."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from costline.budgets.evaluate import (
    EXPERIMENT_DAYS,
    BudgetReport,
    evaluate_budgets,
    last_bill_day,
)
from costline.cli.output import Format
from costline.cli.reports import Cost, CostOpt

if TYPE_CHECKING:
    from costline.budgets.status import BudgetStatus

__all__ = ["EXPERIMENT_DAYS", "BudgetReport", "evaluate_budgets", "last_bill_day"]

FormatOpt = Annotated[
    Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
]


def budgets_cmd(
    as_of: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD, the last day counted (default: the last day billed)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: also check the periods since this day for crossings"),
    ] = None,
    cost: CostOpt = Cost.effective,
    no_forecast: Annotated[
        bool, typer.Option("--no-forecast", help="Skip the period-end forecasts (faster)")
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Each budget's spend in its current period, thresholds crossed, burn rate, forecast at
    period end (P10/P50/P90) and days to exhaustion; the forecast made at the midpoint of the
    last closed period (and of the current one, once past it) against what was spent, a miss when
    outside its P10-P90; each experiment against its cap. Crossings, fast burns and forecast
    overruns are stored as findings (`costline findings`)."""
    from costline.allocation.allocate import COST_COLUMNS
    from costline.budgets.status import current
    from costline.cli.main import open_ledger, out, state
    from costline.cli.reports import emit_sections
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config

    config = load_config(state.config_path)
    with open_ledger() as ledger:
        day = _day("--as-of", as_of) if as_of else last_bill_day(ledger)
        report = evaluate_budgets(ledger, config, day, clock=SYSTEM_CLOCK,
                                  since=_day("--since", since) if since else None,
                                  cost=COST_COLUMNS[cost.value], forecast=not no_forecast)  # fmt: skip
        ledger.write([], source="budgets", findings=report.findings)
    latest = current(report.statuses)
    sections = {
        "budgets": [s.row() for s in latest],
        "forecast_checks": [c.row(s.budget.name) for s in latest for c in s.checks],
        "experiments": report.experiments,
    }
    chosen = emit_sections(sections, fmt, lambda name: f"{name.capitalize().replace('_', ' ')} "
                           f"as of {day}")  # fmt: skip
    if chosen is Format.table:
        if not config.budgets:
            out.print("No budgets configured: add `budgets:` to costline.yaml.")
        for line in budget_sentences(current(report.statuses)):
            out.print(line, soft_wrap=True)


def budget_sentences(statuses: list[BudgetStatus]) -> list[str]:
    said = []
    for s in statuses:
        r = s.row()
        text = (f"{r['budget']}: ${r['spent_usd']:,} of ${r['amount_usd']:,} in {r['period']} "
                f"({r['used_pct']}%, {r['state']})")  # fmt: skip
        if s.projection:
            text += (f"; forecast at period end ${r['forecast_p50_usd']:,} "
                     f"(P10 ${r['forecast_p10_usd']:,}, P90 ${r['forecast_p90_usd']:,})")  # fmt: skip
        if r["forecast_miss"]:
            text += f"; the mid-period forecast missed: {r['forecast_miss']}"
        if r["days_to_exhaustion"] == 0:
            text += f"; exhausted on {r['exhausted_on']}"
        elif r["days_to_exhaustion"] is not None:
            text += f"; at the last 7 days' rate it runs out in {r['days_to_exhaustion']} days"
        said.append(text + ".")
    return said


def _day(option: str, text: str) -> dt.date:
    from costline.errors import CostlineError

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CostlineError(f"{option} {text!r}: expected YYYY-MM-DD") from None


def register(app: typer.Typer) -> None:
    app.command("budgets")(budgets_cmd)
