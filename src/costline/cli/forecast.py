"""`costline forecast`: GPU-hours, tokens, jobs, requests, storage or dollars, per team (or any
dimension), with P10/P50/P90, the month's end, and spike scenarios."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from costline.cli.output import Format

if TYPE_CHECKING:
    from costline.forecast.models import Forecast, Series

FormatOpt = Annotated[
    Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
]
DAY = dt.timedelta(days=1)


def parse_days(option: str, text: str) -> int:
    """`90d`, `12w` or a bare number of days."""
    from costline.errors import CostlineError

    m = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if m is None or int(m.group(1)) < 1:
        raise CostlineError(f"{option} {text!r}: write days as 90d (or weeks as 12w)")
    return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


def series_of(rows: Sequence[dict[str, Any]], start: dt.date, end: dt.date) -> list[Series]:
    """One contiguous daily series per key over [start, end), days without rows as zero."""
    from costline.forecast.models import Series

    days = (end - start).days
    values: dict[str, list[float]] = defaultdict(lambda: [0.0] * days)
    for r in rows:
        i = (r["day"] - start).days
        if 0 <= i < days:
            values[r["key"]][i] += r["value"] or 0.0
    return [Series(key, start, tuple(v)) for key, v in sorted(values.items())]


def forecast_rows(
    series: Sequence[Series], forecasts: Sequence[Forecast], *, level: bool,
    expected: float | None = None, severe: float | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per key: the model, its backtest MASE against seasonal naive, the horizon's total (a
    level's last day) at P10/P50/P90, the month's end, and the spike scenarios."""
    from costline.forecast.period import period_end
    from costline.forecast.scenarios import scenarios

    out = []
    for s, fc in zip(series, forecasts, strict=True):
        if level:
            total = (fc.p10[-1], fc.p50[-1], fc.p90[-1])
        else:
            total = (sum(fc.p10), sum(fc.p50), sum(fc.p90))
        row: dict[str, Any] = {
            "key": s.key,
            "model": fc.model,
            "mase": _round(fc.mase, 3),
            "seasonal_naive_mase": _round(fc.naive_mase, 3),
            "history_days": len(s.values),
            "last_day": _round(s.values[-1] if s.values else None),
            "horizon_days": len(fc.dates),
            "horizon_p10": _round(total[0]),
            "horizon_p50": _round(total[1]),
            "horizon_p90": _round(total[2]),
        }
        if not level:
            last = s.start + dt.timedelta(days=len(s.values) - 1)
            month_end = dt.date(last.year + last.month // 12, last.month % 12 + 1, 1) - DAY
            to_date = (
                sum(s.values[len(s.values) - last.day :]) if last.day <= len(s.values) else None
            )
            if to_date is not None and month_end in fc.dates:
                q = period_end(to_date, fc, month_end)
                row |= {"month": f"{last:%Y-%m}", "month_to_date": _round(to_date),
                        "month_end_p10": _round(q.p10), "month_end_p50": _round(q.p50),
                        "month_end_p90": _round(q.p90)}  # fmt: skip
            elif to_date is not None and month_end == last:
                row |= {"month": f"{last:%Y-%m}", "month_to_date": _round(to_date)}
            for sc in scenarios(s, fc, expected=expected, severe=severe):
                row[f"scenario_{sc.name}"] = _round(sum(sc.values))
        out.append(row)
    return out


def _round(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


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
    from costline.cli.main import err, open_ledger, state
    from costline.cli.output import default_format, emit_rows
    from costline.cli.reports import parse_where
    from costline.config import load_config
    from costline.errors import CostlineError
    from costline.forecast.models import forecast
    from costline.forecast.signals import LEVELS, UnknownDimension, daily, unknown_gpu_lines

    steps = parse_days("--horizon", horizon)
    span = parse_days("--history", history)
    rules = Rules.from_config(load_config(state.config_path))
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
        err.print(f"note: {unknown:,} GPU instance lines are of types the instance catalogue "
                  "lacks: their GPU-hours are not counted", soft_wrap=True)  # fmt: skip
    if not rows:
        raise CostlineError(f"no {metric} in the {span} days to {last}: nothing to forecast")
    first = min(r["day"] for r in rows)
    series = series_of(rows, first, last + DAY)
    series = sorted(series, key=lambda s: -sum(s.values))[:top]
    fcs = forecast(series, steps)
    out = forecast_rows(series, fcs, level=metric in LEVELS,
                        expected=expected_spike, severe=severe_spike)  # fmt: skip
    emit_rows(out, default_format(fmt),
              title=f"Forecast of {metric}{f' by {by}' if by else ''}, {steps} days after {last} "
              f"(learned from {first} on)")  # fmt: skip


def _last_day(text: str | None, ledger: Any, metric: str) -> dt.date:
    """--as-of, else the last day the metric's table has data for."""
    from costline.cli.budgets import _day, last_bill_day
    from costline.errors import CostlineError
    from costline.forecast.signals import LINE_METRICS
    from costline.ledger.sql import run_one

    if text:
        return _day("--as-of", text)
    if metric in LINE_METRICS:
        return last_bill_day(ledger)
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
