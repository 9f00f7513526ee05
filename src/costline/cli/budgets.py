"""`costline budgets`: each budget's status, period-end forecast and days to exhaustion, and each
experiment against its cap; the crossings are stored as findings."""

from __future__ import annotations

from typing import Annotated

import typer

from costline.cli.options import Cost, CostOpt, FormatOpt, parse_day
from costline.cli.output import Format, default_format
from costline.cli.progress import progress_bar


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
    from costline.budgets.evaluate import evaluate_budgets
    from costline.budgets.status import current
    from costline.cli.context import open_ledger, state
    from costline.cli.output import emit_sections, out_console
    from costline.cli.present import budget_sentences
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.ledger.sql import last_bill_day

    config = load_config(state.config_path)
    with open_ledger() as ledger:
        day = parse_day("--as-of", as_of) if as_of else last_bill_day(ledger.con)
        what = f"Budgets as of {day}: spend, forecasts, experiments' allocation"
        with progress_bar(what, total=None, fmt=default_format(fmt)):
            report = evaluate_budgets(ledger, config, day, clock=SYSTEM_CLOCK,
                                      since=parse_day("--since", since) if since else None,
                                      cost=COST_COLUMNS[cost.value],
                                      forecast=not no_forecast)  # fmt: skip
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
            out_console().print("No budgets configured: add `budgets:` to costline.yaml.")
        for line in budget_sentences(current(report.statuses)):
            out_console().print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("budgets")(budgets_cmd)
