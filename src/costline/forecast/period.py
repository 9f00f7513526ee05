"""Period-end totals: actuals so far plus the forecast of the days left, with P10, P50 and P90.

The P10 of a sum is not the sum of the P10s: that holds only if every day's error goes the same
way (perfect correlation), and otherwise the band of the sum is narrower. Nor are the days'
errors independent: when a forecast's level is off, it is off every day, and the band of a sum
of independent days would shrink as 1/sqrt(days) and be far too narrow for a month.

So each day's band is read as a normal one, with its own spread above and below the P50 (the band
is asymmetric once clipped at zero):

    sigma_up(i) = (p90(i) - p50(i)) / z        sigma_down(i) = (p50(i) - p10(i)) / z

where z = 1.2816 (P10 to P90 is 80% of a normal), and the days' errors are taken as equally
correlated, with correlation `rho` between any two days. The sum of the days then has

    sigma^2 = (1 - rho) x sum(sigma(i)^2) + rho x (sum sigma(i))^2

(rho = 1 gives the sum of the P10s, rho = 0 independent days), and

    P50 = actual + sum p50(i),  P90 = P50 + z x sigma_up,  P10 = P50 - z x sigma_down.

`CORRELATION` = 0.25 is an assumption, calibrated on held-out data (bench/forecast.py, the days'
bands calibrated on the backtest): on its 1,000 synthetic series, totals of 7, 30 and 90 days
fall inside P10-P90 87%, 91% and 87% of the time with 0.25, 83-86% with 0.15, 44-70% with 0 and
94-97% with 1 (the sum of the P10s). We take 0.25, a little wide there, because that noise is
independent from day to day and real spend's deviations last longer (a busy week, a slow month):
with day-to-day correlated noise (AR(1), 0.6) on 300 of them instead, 0.25 covers 68%, 77% and
84% of 7-, 30- and 90-day totals (0.2: 67%, 75%, 79%).

P10 never falls below the actuals: sigma_down is at most the sum of the days' spreads, so P10 is
at least actual + sum p10(i), and the p10s are clipped at zero.

    >>> import datetime as dt
    >>> from costline.forecast.models import Forecast
    >>> days = tuple(dt.date(2026, 11, d) for d in (29, 30))
    >>> fc = Forecast("team=search", "SeasonalNaive", days, (80.0, 80.0), (100.0, 100.0), (120.0, 120.0), 0.8, 1.0)
    >>> q = period_end(2800.0, fc, dt.date(2026, 11, 30))
    >>> q.p50, round(q.p90 - q.p50, 2)
    (3000.0, 31.62)
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from costline.forecast.models import Z90, Forecast

CORRELATION = 0.25  # between the forecast errors of any two days


@dataclass(frozen=True)
class Quantiles:
    p10: float
    p50: float
    p90: float


def period_end(
    actual_to_date: float, fc: Forecast, through: dt.date, *, correlation: float = CORRELATION
) -> Quantiles:
    """The total through `through` (inclusive): `actual_to_date` plus the forecast days up to it.

    `through` before the first forecast day leaves the actuals; past the last one is an error.
    """
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be within [0, 1], got {correlation}")
    if fc.dates and through > fc.dates[-1]:
        raise ValueError(
            f"{fc.key}: the forecast ends {fc.dates[-1]}, before {through}; "
            "forecast with a longer horizon"
        )
    days = [i for i, d in enumerate(fc.dates) if d <= through]
    mid = actual_to_date + math.fsum(fc.p50[i] for i in days)
    up = combine([(fc.p90[i] - fc.p50[i]) / Z90 for i in days], correlation)
    down = combine([(fc.p50[i] - fc.p10[i]) / Z90 for i in days], correlation)
    return Quantiles(p10=mid - Z90 * down, p50=mid, p90=mid + Z90 * up)


def combine(sigmas: list[float], correlation: float) -> float:
    """The standard deviation of a sum of normals with these deviations, equally correlated."""
    squares = math.fsum(s * s for s in sigmas)
    total = math.fsum(sigmas)
    return math.sqrt(max((1.0 - correlation) * squares + correlation * total * total, 0.0))
