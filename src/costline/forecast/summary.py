"""A forecast summarized per key: the rows `costline forecast` prints and the API serves.

`series_of` turns the engine's daily rows (`forecast.signals.daily`) into one contiguous series
per key; `forecast_rows` gives each key's model, its backtest MASE against seasonal naive, the
backtest coverage of its P10-P90 band (`coverage`: the share of backtest days inside the band
calibrated on the other window; 0.8 is calibrated), the horizon's total at P10/P50/P90, the month's end (month-to-date actuals plus the rest of the month,
`forecast.period.period_end`) and the spike scenarios (`forecast.scenarios`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costline.forecast.models import Forecast, Series

DAY = dt.timedelta(days=1)


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
    """Per key: the model, its backtest MASE against seasonal naive and band coverage, the
    horizon's total (a level's last day) at P10/P50/P90, the month's end, and the spike
    scenarios."""
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
            "coverage": _round(fc.coverage, 3),
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
