"""`costline signals` (the telemetry signals, and one signal's latest buckets) and
`costline thresholds` (check the configured spike thresholds now, store their findings)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from costline.cli.options import FormatOpt
from costline.cli.output import default_format, emit_rows
from costline.cli.present import breach_row
from costline.errors import CostlineError

if TYPE_CHECKING:
    from costline.detect.thresholds import Check

AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Check as of this time (ISO 8601, UTC if no offset; default: the latest telemetry)",
    ),
]


def parse_as_of(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CostlineError(
            f"--as-of {text!r}: expected an ISO time, e.g. 2026-10-31T14:05"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def thresholds_cmd(
    as_of: AsOf = None,
    lookback: Annotated[
        str, typer.Option(help="How far back to look for breaches: 30m, 6h, 1d")
    ] = "24h",
    fmt: FormatOpt = None,
) -> None:
    """Check the spike thresholds of costline.yaml on the telemetry signals (minutes after the
    data lands), store one finding per breach with its tier and routes, and list them."""
    from costline.cli.context import open_ledger, state
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.sync import check_thresholds

    config = load_config(state.config_path)
    if not config.thresholds:
        raise CostlineError(
            "no thresholds in the configuration: add a `thresholds:` section to costline.yaml "
            "(see docs/config.md) and list the signals with `costline signals`"
        )
    span = parse_span("--lookback", lookback)
    with open_ledger() as ledger:
        found, at = check_thresholds(
            ledger, config, SYSTEM_CLOCK, as_of=parse_as_of(as_of) if as_of else None,
            lookback=span,
        )  # fmt: skip
        ledger.write([], source="thresholds", findings=found)
    title = (
        f"Threshold breaches in the {lookback} to {at:%Y-%m-%d %H:%M} UTC" if at else "No telemetry"
    )
    emit_rows([breach_row(f) for f in found], default_format(fmt), title=title)


def parse_span(option: str, text: str) -> dt.timedelta:
    """30m, 6h, 2d: a span of minutes, hours or days."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise CostlineError(f"{option} {text!r}: write a number and m, h or d, e.g. 30m, 6h, 1d")
    return dt.timedelta(**{units[unit]: int(number)})


def signals_cmd(
    name: Annotated[str | None, typer.Argument(help="A signal: show its latest buckets")] = None,
    by: Annotated[str | None, typer.Option(help="A dimension of the signal")] = None,
    last: Annotated[str, typer.Option(help="How far back: 30m, 6h, 1d")] = "2h",
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="Bucket minutes")] = 5,
    baseline_hours: Annotated[int, typer.Option(min=1, help="Hours of rolling baseline")] = 6,
    as_of: AsOf = None,
    fmt: FormatOpt = None,
) -> None:
    """The telemetry signals thresholds can watch, each with the default condition a threshold
    naming only it checks; with a NAME, its latest buckets per value of
    --by, each with its rolling baseline (the plain median of the hours before: unlike a
    threshold's, it keeps breaching buckets in) and how far above it the bucket is."""
    from costline.cli.context import open_ledger
    from costline.config import Threshold
    from costline.detect.signals import SIGNALS, signal
    from costline.detect.thresholds import series
    from costline.sync import latest_telemetry

    if name is None:
        rows = [
            {"signal": s.name, "table": s.table, "unit": s.unit, "priced": s.priced,
             "dimensions": ", ".join(s.dimensions), "what": s.describe,
             "default": s.default.describe(s.unit) if s.default else None}
            for s in SIGNALS.values()
        ]  # fmt: skip
        rows.append({"signal": "metric:NAME[:avg|sum|max|p95]", "table": "metrics", "unit": "",
                     "priced": False, "dimensions": "any label",
                     "what": "a series of the metrics table (queue depth, p95 queue wait, ...)",
                     "default": None})  # fmt: skip
        emit_rows(rows, default_format(fmt), title="Telemetry signals")
        return
    s = signal(name)
    span = parse_span("--last", last)
    th = Threshold(name="show", signal=name, by=by, bucket_minutes=minutes,
                   baseline_hours=baseline_hours, z=1.0)  # fmt: skip
    with open_ledger(read_only=True) as ledger:
        at = parse_as_of(as_of) if as_of else latest_telemetry(ledger, {s.table})
        if at is None:
            raise CostlineError(f"no rows in {s.table}: ingest telemetry first")
        check = series(th, ledger.table(s.table), at, span)
    rows = _signal_rows(check, span)
    emit_rows(
        rows,
        default_format(fmt),
        title=f"{name} ({s.unit}) per {minutes} min to {at:%Y-%m-%d %H:%M} UTC",
    )


def _signal_rows(check: Check, span: dt.timedelta) -> list[dict[str, Any]]:
    """The last `span` of buckets per key, each with its rolling baseline."""
    import math

    from costline.detect.thresholds import baseline

    th = check.threshold
    window = max(1, th.baseline_hours * 60 // th.bucket_minutes)
    shown = int(span.total_seconds() // (th.bucket_minutes * 60))
    rows = []
    for key, values in sorted(check.values.items()):
        for t in range(max(0, len(values) - shown), len(values)):
            base = baseline(values, t, window)
            v = float(values[t])
            pct = (v - base[0]) / base[0] * 100 if base and base[0] > 0 else None
            rows.append({
                "bucket": dt.datetime.fromtimestamp(check.starts[t], tz=dt.UTC).isoformat(),
                "key": key,
                "value": None if math.isnan(v) else round(v, 4),
                "baseline": round(base[0], 4) if base else None,
                "pct_over_baseline": round(pct, 1) if pct is not None else None,
            })  # fmt: skip
    return rows


def register(app: typer.Typer) -> None:
    app.command("signals")(signals_cmd)
    app.command("thresholds")(thresholds_cmd)
