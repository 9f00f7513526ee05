"""Benchmark: forecasting 1,000 daily cost series and 100 hourly metrics, scored on held-out steps.

    uv run python bench/forecast.py                      # 1,000 x 365 days, h 90; 100 hourly
    uv run python bench/forecast.py --series 100 --hourly 20 --jobs 2

Daily: seeded synthetic costs, each a level between $20 and $20k a day with a weekly pattern
(weekends at 40-100% of weekdays) and multiplicative noise (3-25%), of six kinds: steady;
trending (-0.2% to +0.6% a day); a level shift (x0.4 to x2.5 on one day); bursty (a batch meter
spending on 5-30% of days, nothing otherwise); spiky (one to four spikes of x3 to x10 lasting one
to three days); new (zero until 110 to 215 days before the end, then steady).

Hourly: seeded metrics (requests, GPU-hours) over 8 weeks and the week after: a level between 1
and 1,000 an hour, a daily profile (a peak of x1.2 to x2.5 in working hours), weekends at 30-90%,
AR(1) noise (5-30%, carried 0-0.9 from hour to hour), a drift of -0.1% to +0.2% an hour, and a
level shift (x0.5 to x2) in one series in five.

Measured, in this process:
  - wall and CPU time of `costline.forecast.models.forecast` on the whole daily series, as in
    production (target 60 s for 1,000 x 365 days, horizon 90; statsforecast's import inside the
    timed call, as in the CLI), and of the forecast from the fitted days below.
The last `--horizon` days (a week of hours) of each series are then held out: `forecast` fits on
the steps before and forecasts them. Scored on the held-out steps:
  - MASE of costline's P50 and of seasonal naive (the last fitted week repeated; for hours, the
    last day and the last week), over the in-sample seasonal-naive MAE (a week of days, a day of
    hours) of the fitted steps from the first non-zero one; mean and median; and the share of
    series where costline's MASE is at most naive's;
  - coverage: the share of held-out steps inside costline's P10-P90 (80% is calibrated), and the
    mean of the coverage `forecast` reports from its backtest;
  - the share of 30-day and horizon totals inside `period_end`'s P10-P90, with its correlation
    and with others (0 to 1) for 7-, 30- and 90-day totals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from costline.forecast.backtest import Floats, mase_scale
from costline.forecast.models import Forecast, Series, forecast
from costline.forecast.period import CORRELATION, period_end
from fresh import peak_mib

KINDS = ("steady", "trend", "shift", "bursty", "spiky", "new")
SHARES = (0.35, 0.2, 0.15, 0.12, 0.1, 0.08)
START = dt.date(2025, 10, 1)
TARGET_S = 60.0
CORRELATIONS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0)
HOUR = dt.timedelta(hours=1)
WEEK_HOURS = 168


def make_series(n: int, days: int, seed: int = 7) -> list[tuple[str, Floats]]:
    """`n` seeded daily cost series of `days` days, each with its kind (module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    out = []
    for _ in range(n):
        kind = str(rng.choice(KINDS, p=SHARES))
        level = float(np.exp(rng.uniform(np.log(20), np.log(20_000))))
        week = np.where((t + int(rng.integers(7))) % 7 >= 5, rng.uniform(0.4, 1.0), 1.0)
        y = level * week / week.mean() * np.exp(rng.normal(0, rng.uniform(0.03, 0.25), days))
        if kind == "trend":
            y *= np.exp(rng.uniform(-0.002, 0.006) * t)
        elif kind == "shift":
            y[int(rng.integers(days // 4, days - 30)) :] *= rng.uniform(0.4, 2.5)
        elif kind == "bursty":
            on = rng.random(days) < rng.uniform(0.05, 0.3)
            y = np.where(on, level * np.exp(rng.normal(0, 0.5, days)), 0.0)
        elif kind == "spiky":
            for _ in range(int(rng.integers(1, 5))):
                d = int(rng.integers(days))
                y[d : d + int(rng.integers(1, 4))] *= rng.uniform(3, 10)
        elif kind == "new":
            y[: days - int(rng.integers(110, 216))] = 0.0
        out.append((kind, np.round(y, 2)))
    return out


def make_hourly(n: int, hours: int, seed: int = 11) -> list[Floats]:
    """`n` seeded hourly metrics of `hours` hours (module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.arange(hours)
    out = []
    for _ in range(n):
        level = float(np.exp(rng.uniform(np.log(1), np.log(1000))))
        hour, weekday = t % 24, (t // 24 + int(rng.integers(7))) % 7
        peak = rng.uniform(0.2, 1.5) * np.exp(
            -((hour - rng.uniform(11, 16)) ** 2) / (2 * rng.uniform(2, 5) ** 2)
        )
        week = np.where(weekday >= 5, rng.uniform(0.3, 0.9), 1.0)
        noise = rng.normal(0, rng.uniform(0.05, 0.3), hours)
        carry = rng.uniform(0, 0.9)
        for k in range(1, hours):
            noise[k] += carry * noise[k - 1]
        y = level * (1 + peak) * week * np.exp(noise + rng.uniform(-0.001, 0.002) * t)
        if rng.random() < 0.2:
            y[int(rng.integers(hours // 2, hours - 200)) :] *= rng.uniform(0.5, 2)
        out.append(np.round(y, 3))
    return out


def timed(
    series: Sequence[Series], horizon: int, **kw: object
) -> tuple[list[Forecast], float, float]:
    """The forecasts, wall seconds and CPU seconds (this process's) of one `forecast` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = forecast(series, horizon, **kw)  # type: ignore[arg-type]
    return out, time.perf_counter() - wall, time.process_time() - cpu


def score(
    y: Floats, fit: int, fc: Forecast, season: int, naives: Sequence[int]
) -> tuple[float, ...]:
    """MASE of the forecast and of each naive (last season repeated), held-out coverage and the
    forecast's reported coverage (NaN when it has none)."""
    past, held = y[:fit], y[fit:]
    scale = mase_scale(past[np.flatnonzero(past)[0] :], season)  # from its first step, as costline
    p10, p50, p90 = (np.asarray(b) for b in (fc.p10, fc.p50, fc.p90))
    mases = [float(np.abs(p50 - held).mean() / scale)]
    mases += [float(np.abs(np.resize(past[-s:], len(held)) - held).mean() / scale) for s in naives]
    inside = float(((held >= p10) & (held <= p90)).mean())
    return (*mases, inside, np.nan if fc.coverage is None else fc.coverage)


def daily(args: argparse.Namespace) -> None:
    h, fit = args.horizon, args.days - args.horizon
    data = make_series(args.series, args.days)
    whole = [Series(f"{k}-{i}", START, tuple(y.tolist())) for i, (k, y) in enumerate(data)]
    _, seconds, cpu = timed(whole, h, n_jobs=args.jobs)
    series = [Series(s.key, s.start, s.values[:fit]) for s in whole]
    forecasts, held_seconds, _ = timed(series, h, n_jobs=args.jobs)
    verdict = "PASS" if seconds < TARGET_S else "FAIL"
    print(
        f"forecast, {args.series:,} series x {args.days} days, horizon {h}, n_jobs {args.jobs}: "
        f"{seconds:.1f} s, CPU {cpu:.1f} s (target {TARGET_S:.0f} s for 1,000 x 365: {verdict}); "
        f"x {fit} days: {held_seconds:.1f} s; peak {peak_mib():,.0f} MiB"
    )
    rows: dict[str, list[tuple[float, ...]]] = {}
    spans = sorted({d for d in (7, 30, h) if d <= h})
    shown = [d for d in spans if d in (30, h)]
    totals = {(rho, d): 0 for rho in CORRELATIONS for d in spans}
    for (kind, y), fc in zip(data, forecasts, strict=True):
        inside = []
        for rho in CORRELATIONS:
            for d in spans:
                q = period_end(0.0, fc, fc.dates[d - 1], correlation=rho)
                hit = q.p10 <= y[fit : fit + d].sum() <= q.p90
                totals[rho, d] += hit
                if rho == CORRELATION and d in shown:
                    inside.append(float(hit))
        rows.setdefault(kind, []).append((*score(y, fit, fc, 7, [7]), *inside))
    table(rows, KINDS, ["naive"], [f"{d}-day total" for d in shown])
    print("models chosen: " + ", ".join(f"{m} {n}" for m, n in Counter(
        fc.model for fc in forecasts).most_common()))  # fmt: skip
    print("totals inside period_end's P10-P90, by correlation (the one used marked *):")
    for rho in CORRELATIONS:
        mark = "*" if rho == CORRELATION else " "
        print(f"  {rho:>4}{mark} " + ", ".join(
            f"{d} days {totals[rho, d] / len(forecasts):.1%}" for d in spans))  # fmt: skip


def hourly(args: argparse.Namespace) -> None:
    fit = 8 * WEEK_HOURS
    data = make_hourly(args.hourly, fit + WEEK_HOURS)
    start = dt.datetime(2026, 1, 5)
    series = [Series(f"metric-{i}", start, tuple(y[:fit].tolist()), HOUR)
              for i, y in enumerate(data)]  # fmt: skip
    forecasts, seconds, cpu = timed(series, WEEK_HOURS, season=(24, WEEK_HOURS), n_jobs=args.jobs)
    print(
        f"\nhourly, {args.hourly:,} series x 8 weeks, horizon {WEEK_HOURS} hours, n_jobs "
        f"{args.jobs}: {seconds:.1f} s, CPU {cpu:.1f} s"
    )
    rows = {"hourly": [score(y, fit, fc, 24, [24, WEEK_HOURS]) for y, fc in zip(data, forecasts,
                                                                            strict=True)]}  # fmt: skip
    table(rows, ("hourly",), ["naive 24 h", "naive 168 h"], [])
    print("models chosen: " + ", ".join(f"{m} {n}" for m, n in Counter(
        fc.model for fc in forecasts).most_common()))  # fmt: skip


def table(
    rows: dict[str, list[tuple[float, ...]]], kinds: Sequence[str], naives: list[str],
    totals: list[str],
) -> None:  # fmt: skip
    """Per kind and over all: mean and median MASE of costline and of each naive, the share of
    series at least as good as the first naive, held-out and reported coverage, and totals."""
    head = ["kind", "series", "MASE costline", "(median)"]
    for name in naives:
        head += [f"MASE {name}", "(median)"]
    head += ["<= naive", "80% band", "(reported)", *totals]
    print(" | ".join(head))
    everything = [r for kind in kinds for r in rows.get(kind, [])]
    named = [(k, rows[k]) for k in kinds if k in rows]
    for kind, r in [*named, *([("all", everything)] if len(named) > 1 else [])]:
        a = np.array(r)
        cells = [kind, f"{len(a):,}"]
        for m in range(1 + len(naives)):
            cells += [f"{a[:, m].mean():.3f}", f"{np.median(a[:, m]):.3f}"]
        k = 1 + len(naives)
        cells += [f"{(a[:, 0] <= a[:, 1]).mean():.0%}", f"{a[:, k].mean():.1%}",
                  f"{np.nanmean(a[:, k + 1]):.1%}"]  # fmt: skip
        cells += [f"{a[:, k + 2 + j].mean():.1%}" for j in range(len(totals))]
        print(" | ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=1000, help="daily series (0: none)")
    parser.add_argument("--days", type=int, default=365, help="days per series, held-out included")
    parser.add_argument("--horizon", type=int, default=90, help="days held out and forecast")
    parser.add_argument("--hourly", type=int, default=100, help="hourly series (0: none)")
    parser.add_argument("--jobs", type=int, default=1, help="statsforecast's n_jobs")
    args = parser.parse_args()
    if args.series:
        daily(args)
    if args.hourly:
        hourly(args)


if __name__ == "__main__":
    main()
