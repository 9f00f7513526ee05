"""`costline forecast`: GPU-hours, tokens, jobs, requests, storage or dollars, per team (or any
dimension), with P10/P50/P90, the month's end, and spike scenarios."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from costline.cli.options import FormatOpt, parse_day, parse_where
from costline.cli.progress import progress_bar

if TYPE_CHECKING:
    from costline.attribution.rules import Rules
    from costline.forecast.models import Series

DAY = dt.timedelta(days=1)


def parse_days(option: str, text: str) -> int:
    """`90d`, `12w` or a bare number of days."""
    from costline.errors import CostlineError

    m = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if m is None or int(m.group(1)) < 1:
        raise CostlineError(f"{option} {text!r}: write days as 90d (or weeks as 12w)")
    return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


def forecast_cmd(
    metric: Annotated[
        str,
        typer.Option(
            help="cost_usd, gpu_hours, tokens, storage_gb, training_jobs, or a metric "
            "of the metrics table (inference_requests, inference_successes, ...)"
        ),
    ] = "cost_usd",
    by: Annotated[
        str | None, typer.Option(help="team, project, model, service, provider, cost_domain, ...")
    ] = None,
    horizon: Annotated[str, typer.Option(help="How far ahead: 90d, 12w")] = "90d",
    history: Annotated[str, typer.Option(help="How much history to learn from")] = "180d",
    where: Annotated[
        list[str] | None, typer.Option(help="Scope, e.g. team=search (repeatable)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD, the last day of history (default: the last day with data)"),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Largest keys shown")] = 20,
    expected_spike: Annotated[
        float | None,
        typer.Option(
            help="Multiplier of the expected-spike scenario (default: "
            "from the history's own spikes)"
        ),
    ] = None,
    severe_spike: Annotated[
        float | None, typer.Option(help="Multiplier of the severe-spike scenario")
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """Forecast a metric per day for each value of --by: the model chosen by backtest (with its
    MASE against seasonal naive), the horizon's total at P10/P50/P90, month-end (month-to-date
    actuals plus the rest of the month), and baseline, expected-spike and severe-spike
    scenarios."""
    from costline.attribution.rules import Rules
    from costline.cli.context import state
    from costline.cli.output import default_format, emit_rows
    from costline.config import load_config
    from costline.forecast.models import forecast
    from costline.forecast.signals import LEVELS
    from costline.forecast.summary import forecast_rows

    steps = parse_days("--horizon", horizon)
    span = parse_days("--history", history)
    rules = Rules.from_config(load_config(state.config_path))
    with progress_bar(f"Reading the {metric} history", total=2, fmt=default_format(fmt)) as bar:
        series, last = _history(metric, by, where, as_of, span, rules, top)
        bar.step(f"Forecasting {len(series)} series {steps} days ahead")
        fcs = forecast(series, steps)
    out = forecast_rows(series, fcs, level=metric in LEVELS,
                        expected=expected_spike, severe=severe_spike)  # fmt: skip
    emit_rows(out, default_format(fmt),
              title=f"Forecast of {metric}{f' by {by}' if by else ''}, {steps} days after {last} "
              f"(learned from {series[0].start if series else last} on)")  # fmt: skip


def _history(metric: str, by: str | None, where: list[str] | None, as_of: str | None, span: int,
             rules: Rules, top: int) -> tuple[list[Series], dt.date]:  # fmt: skip
    """The `top` largest daily series of `metric` per value of `by` over the `span` days to the
    last day with data (or --as-of), and that last day."""
    from costline.cli.context import open_ledger
    from costline.cli.output import err_console
    from costline.errors import CostlineError
    from costline.forecast.signals import UnknownDimension, daily, unknown_gpu_lines
    from costline.forecast.summary import series_of

    with open_ledger(read_only=True) as ledger:
        tables = {n: ledger.table(n) for n in ("cost_lines", "workloads", "metrics")}
        last = _last_day(as_of, ledger, metric)
        end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + DAY
        start = end - dt.timedelta(days=span)
        try:
            expr = daily(metric, tables, start, end, by=by, where=parse_where(where), rules=rules)
        except UnknownDimension as exc:
            raise CostlineError(
                f"--by/--where {exc.args[0]!r}: not a dimension of {metric}"
            ) from None
        rows = expr.to_pyarrow().to_pylist()
        unknown = (
            unknown_gpu_lines(tables["cost_lines"], start, end) if metric == "gpu_hours" else 0
        )
    if unknown:
        err_console().print(f"note: {unknown:,} GPU instance lines are of types the instance catalogue "
                  "lacks: their GPU-hours are not counted", soft_wrap=True)  # fmt: skip
    if not rows:
        raise CostlineError(f"no {metric} in the {span} days to {last}: nothing to forecast")
    first = min(r["day"] for r in rows)
    series = series_of(rows, first, last + DAY)
    return sorted(series, key=lambda s: -sum(s.values))[:top], last


def _last_day(text: str | None, ledger: Any, metric: str) -> dt.date:
    """--as-of, else the last day the metric's table has data for."""
    from costline.errors import CostlineError
    from costline.forecast.signals import LINE_METRICS
    from costline.ledger.sql import last_bill_day, run_one

    if text:
        return parse_day("--as-of", text)
    if metric in LINE_METRICS:
        return last_bill_day(ledger.con)
    if metric == "training_jobs":
        row = run_one(ledger.con, "SELECT max(start) FROM workloads")
    else:
        row = run_one(ledger.con, "SELECT max(ts) FROM metrics WHERE metric = ?", [metric])
    if not row or row[0] is None:
        raise CostlineError(f"no {metric} in the ledger: nothing to forecast")
    day: dt.date = row[0].date()
    return day


def register(app: typer.Typer) -> None:
    app.command("forecast")(forecast_cmd)
