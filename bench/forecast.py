"""Benchmark: forecasting 1,000 daily cost series, scored on the days held out, against seasonal naive.

    uv run python bench/forecast.py                      # 1,000 series x 365 days, horizon 90
    uv run python bench/forecast.py --series 100 --jobs 2

Seeded synthetic daily costs, each a level between $20 and $20k a day with a weekly pattern
(weekends at 40-100% of weekdays) and multiplicative noise (3-25%), of six kinds: steady; trending
(-0.2% to +0.6% a day); a level shift (x0.4 to x2.5 on one day); bursty (a batch meter spending on
5-30% of days, nothing otherwise); spiky (one to four spikes of x3 to x10 lasting one to three
days); new (zero until 110 to 215 days before the end, then steady).

Measured, in this process:
  - wall time of `costline.forecast.models.forecast` on the whole series, as in production
    (target 60 s for 1,000 x 365 days, horizon 90; statsforecast is imported inside the timed
    call, as in the CLI), and of the forecast from the fitted days below;
The last `--horizon` days of each series are then held out: `forecast` fits on the days before
and forecasts them. Scored on the held-out days:
  - MASE on the held-out days of costline's P50 and of seasonal naive (the last fitted week
    repeated), both over the in-sample seasonal-naive MAE of the fitted days from the first
    non-zero one; mean and median;
  - coverage: the share of held-out days inside costline's P10-P90 band (80% is calibrated);
  - the share of 30-day and horizon totals inside `period_end`'s P10-P90.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import Counter

import numpy as np

from costline.forecast.models import Floats, Series, forecast, mase_scale
from costline.forecast.period import period_end
from fresh import peak_mib

KINDS = ("steady", "trend", "shift", "bursty", "spiky", "new")
SHARES = (0.35, 0.2, 0.15, 0.12, 0.1, 0.08)
START = dt.date(2025, 10, 1)
TARGET_S = 60.0


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365, help="days per series, held-out included")
    parser.add_argument("--horizon", type=int, default=90, help="days held out and forecast")
    parser.add_argument("--jobs", type=int, default=1, help="statsforecast's n_jobs")
    args = parser.parse_args()
    h, fit = args.horizon, args.days - args.horizon
    data = make_series(args.series, args.days)
    whole = [Series(f"{k}-{i}", START, tuple(y.tolist())) for i, (k, y) in enumerate(data)]
    started = time.perf_counter()
    forecast(whole, h, n_jobs=args.jobs)
    seconds = time.perf_counter() - started
    series = [Series(s.key, s.start, s.values[:fit]) for s in whole]
    started = time.perf_counter()
    forecasts = forecast(series, h, n_jobs=args.jobs)
    held_seconds = time.perf_counter() - started

    rows: dict[str, list[tuple[float, float, float]]] = {}
    totals = {30: 0, h: 0}
    for (kind, y), fc in zip(data, forecasts, strict=True):
        past, held = y[:fit], y[fit:]
        scale = mase_scale(past[np.flatnonzero(past)[0] :], 7)  # from its first day, as costline
        naive = np.resize(past[-7:], h)  # the last fitted week, repeated
        p10, p50, p90 = (np.asarray(b) for b in (fc.p10, fc.p50, fc.p90))
        mase = float(np.abs(p50 - held).mean() / scale)
        naive_mase = float(np.abs(naive - held).mean() / scale)
        inside = float(((held >= p10) & (held <= p90)).mean())
        rows.setdefault(kind, []).append((mase, naive_mase, inside))
        for days in totals:
            q = period_end(0.0, fc, fc.dates[min(days, h) - 1])
            totals[days] += q.p10 <= held[:days].sum() <= q.p90

    verdict = "PASS" if seconds < TARGET_S else "FAIL"
    print(
        f"forecast, {args.series:,} series x {args.days} days, horizon {h}, n_jobs {args.jobs}: "
        f"{seconds:.1f} s (target {TARGET_S:.0f} s for 1,000 x 365: {verdict}); "
        f"x {fit} days: {held_seconds:.1f} s; peak {peak_mib():,.0f} MiB"
    )
    print(
        f"{'kind':>8} {'series':>7} {'MASE costline':>14} {'(median)':>9} "
        f"{'MASE naive':>11} {'(median)':>9} {'80% band':>9}"
    )
    everything = [r for kind in KINDS for r in rows.get(kind, [])]
    for kind, r in [*((k, rows[k]) for k in KINDS if k in rows), ("all", everything)]:
        a = np.array(r)
        print(
            f"{kind:>8} {len(a):>7,} {a[:, 0].mean():>14.3f} {np.median(a[:, 0]):>9.3f} "
            f"{a[:, 1].mean():>11.3f} {np.median(a[:, 1]):>9.3f} {a[:, 2].mean():>8.1%}"
        )
    chosen = Counter(fc.model for fc in forecasts)
    print("models chosen: " + ", ".join(f"{m} {n}" for m, n in chosen.most_common()))
    print(
        "totals inside period_end's P10-P90: "
        + ", ".join(f"{d} days {n / len(forecasts):.1%}" for d, n in totals.items())
    )


if __name__ == "__main__":
    main()
