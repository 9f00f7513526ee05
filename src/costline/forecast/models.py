"""Forecasts of spend: candidate models chosen per series by backtest, bands calibrated on it.

`forecast` takes series of quantities that are never negative (dollars, GPU-hours, tokens), a
value a day or an hour, and for each picks among candidate models the one with the lowest MASE
on a rolling-origin backtest (`forecast.backtest`), refits it and forecasts `horizon` steps with
P10, P50 and P90, the band calibrated on the backtest (`forecast.bands`), all clipped at zero.
The method is written down in docs/methodology/forecasts.md.

- **Candidates**, simplest first, so that a tie goes to the simpler; seasonal naive, the
  baseline, first. With one season (7: days of a week): `SeasonalNaive`, `HistoricAverage` (the
  mean: bursty and intermittent meters), `DynamicOptimizedTheta` (a level and a share of the
  trend on the seasonally adjusted series) and `AutoETS` (additive errors and season, no trend
  or a linear one, by AICc). With two (24 and 168: hours of a day and of a week):
  seasonal naive for each (the shorter one the baseline), the mean, the Theta model on the
  longer season, and `MSTL` (both seasons removed by STL, what is left forecast by an ARIMA of
  orders up to 2: the hour-to-hour persistence of a busy spell).
- **Never worse than seasonal naive**: a model is kept only when its backtest MASE is at most
  seasonal naive's; a model whose forecast of the whole history fails is replaced by seasonal
  naive, not by anything scored worse.
- **Backtest**: `WINDOWS` windows of `min(horizon, 4 seasons)` steps at the end of the history,
  fewer for a history too short for them but at least a season each.
- **History** starts at the first step with a value: leading zeros are before the series
  existed (a new team, a new model), not zero spend to average in.
- **Short** histories (under two seasons plus two windows of a season: 28 days) are not
  backtested: they get `HistoricAverage` (the mean, with a normal band from the steps' standard
  deviation; a single step gets a band from zero to twice it), `mase` and `coverage` None. An
  all-zero series is forecast as zeros (model `Zero`).

    >>> import datetime as dt
    >>> week = (100.0, 100.0, 100.0, 100.0, 100.0, 20.0, 20.0)
    >>> [fc] = forecast([Series("team=search", dt.date(2026, 1, 5), week * 12)], 7)
    >>> fc.model, [round(v) for v in fc.p50]
    ('SeasonalNaive', [100, 100, 100, 100, 100, 20, 20])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from costline.forecast.backtest import WINDOWS, Backtest, Bands, Floats, backtest, refit
from costline.forecast.bands import SLACK, band, calibrate, reach

Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile
WINDOW_SEASONS = 4  # a backtest window is at most this many (shortest) seasons: 28 days
FIT_SEASONS = 20  # costly models see the last 20 (shortest) seasons, and 4 of the longest
SHORT_MODEL = "HistoricAverage"
NAIVE_MODEL = "SeasonalNaive"
ZERO_MODEL = "Zero"
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Series:
    key: str  # e.g. "team=search"
    start: dt.date  # date (a datetime for hourly series) of values[0]
    values: tuple[float, ...]  # one per step, contiguous, oldest first (gaps already zero-filled)
    step: dt.timedelta = DAY  # a day, or an hour


@dataclass(frozen=True)
class Forecast:
    key: str
    model: str  # chosen by backtest: "SeasonalNaive", "AutoETS", "DynamicOptimizedTheta", ...
    dates: tuple[dt.date, ...]  # the horizon's steps (datetimes for hourly series)
    p10: tuple[float, ...]  # P10 to P90: the 80% band, calibrated on the backtest
    p50: tuple[float, ...]
    p90: tuple[float, ...]
    mase: float | None  # backtest MASE of the chosen model (None when too short to backtest)
    naive_mase: float | None  # backtest MASE of seasonal naive on the same windows
    coverage: float | None = None  # backtest steps inside the band calibrated on the other window


def forecast(
    series: Sequence[Series], horizon: int, *, season: int | Sequence[int] = 7, n_jobs: int = 1
) -> list[Forecast]:
    """Forecast each series `horizon` steps past its last one, in input order.

    `season` is the steps per season (7: a week of days), or several (24 and 168: a day and a
    week of hours); `n_jobs` the processes statsforecast may use.
    """
    seasons = sorted({season} if isinstance(season, int) else set(season))
    if horizon < 1:
        raise ValueError(f"horizon must be at least one step, got {horizon}")
    if not seasons or seasons[0] < 2:
        raise ValueError(f"a season must be at least 2 steps (7 for a week of days), got {season}")
    histories = [history(s) for s in series]
    out: list[Forecast | None] = [None] * len(series)
    plans: dict[tuple[int, tuple[int, ...]], list[int]] = {}
    for i, (s, y) in enumerate(zip(series, histories, strict=True)):
        plan = backtest_plan(len(y), horizon, seasons)
        if not y.any():
            zeros = np.zeros(horizon)
            out[i] = _result(s, horizon, ZERO_MODEL, (zeros, zeros, zeros))
        elif plan is None:
            out[i] = _result(s, horizon, SHORT_MODEL, historic_average(y, horizon))
        else:
            plans.setdefault(plan, []).append(i)
    for (window, fitted), members in plans.items():
        chosen = _choose([series[i] for i in members], [histories[i] for i in members],
                         horizon, window, fitted, n_jobs)  # fmt: skip
        for i, fc in zip(members, chosen, strict=True):
            out[i] = fc
    return [fc for fc in out if fc is not None]


def backtest_plan(
    n: int, horizon: int, seasons: Sequence[int]
) -> tuple[int, tuple[int, ...]] | None:
    """The backtest window and the seasons a history of `n` steps can be backtested with: the
    seasons that fit twice before two windows of at least the shortest season; None if none."""
    short = seasons[0]
    fitting = tuple(s for s in seasons if n >= 2 * s + WINDOWS * short)
    if not fitting:
        return None
    window = min(horizon, WINDOW_SEASONS * short, (n - 2 * fitting[-1]) // WINDOWS)
    return window, fitting


def candidates(seasons: Sequence[int]) -> list[Any]:
    """The candidate models, simplest first; seasonal naive first (its MASE is `naive_mase`)."""
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoETS,
        DynamicOptimizedTheta,
        HistoricAverage,
        SeasonalNaive,
    )

    short, long = seasons[0], seasons[-1]
    models: list[Any] = [SeasonalNaive(short, alias=NAIVE_MODEL)]
    if long != short:
        models.append(SeasonalNaive(long, alias=f"SeasonalNaive{long}"))
    models += [HistoricAverage(alias="HistoricAverage"),
               DynamicOptimizedTheta(long, alias="DynamicOptimizedTheta")]  # fmt: skip
    if long == short:
        models.append(AutoETS(season_length=short, model="AZA", damped=False, alias="AutoETS"))
    else:
        rest = AutoARIMA(season_length=1, max_p=2, max_q=2, approximation=True)
        models.append(MSTL(list(seasons), trend_forecaster=rest, alias="MSTL"))
    return models


def _choose(
    series: Sequence[Series],
    ys: Sequence[Floats],
    horizon: int,
    window: int,
    seasons: tuple[int, ...],
    n_jobs: int,
) -> list[Forecast]:
    """Backtest the candidates on `ys`, keep each series' best (seasonal naive unless another
    scores lower), refit it and calibrate its band."""
    models = candidates(seasons)
    aliases = [m.alias for m in models]
    fit_points = max(FIT_SEASONS * seasons[0], 4 * seasons[-1])
    bt = backtest(ys, models, seasons[0], window, fit_points, n_jobs)
    scores = bt.scores(aliases)
    # The first of equals: the simpler model; seasonal naive, first, unless another scores lower.
    chosen = [int(m) for m in np.argmin(scores, axis=0)]
    finals = _refits(ys, models, chosen, bt, horizon, fit_points, n_jobs)
    out = []
    for k, s in enumerate(series):
        m = chosen[k]
        p = _calibrated(bt, aliases[m], k, finals[k], (ys[k], seasons[0], window))
        out.append(_result(s, horizon, aliases[m], p[:3], float(scores[m, k]),
                           float(scores[0, k]), p[3]))  # fmt: skip
    return out


def _refits(
    ys: Sequence[Floats],
    models: Sequence[Any],
    chosen: list[int],
    bt: Backtest,
    horizon: int,
    fit_points: int,
    n_jobs: int,
) -> list[Bands]:
    """Each history's chosen model refitted on it and forecast over the horizon. Where that
    fails (NaN or infinite) though its backtest did not, seasonal naive forecasts instead, and
    `chosen` says so."""
    finals: list[Bands | None] = [None] * len(ys)
    for m, model in enumerate(models):
        members = [k for k, c in enumerate(chosen) if c == m]
        at_origin = bt.fitted.get(model.alias)
        if members:
            fitted = refit(
                [ys[k] for k in members],
                model,
                horizon,
                fit_points,
                n_jobs,
                None if at_origin is None else [at_origin[k] for k in members],
            )
            for row, k in enumerate(members):
                finals[k] = Bands(fitted.mean[row], fitted.lo[row], fitted.hi[row])
    broken = [k for k, b in enumerate(finals)
              if b is None or not np.isfinite([b.mean, b.lo, b.hi]).all()]  # fmt: skip
    if broken:
        fitted = refit([ys[k] for k in broken], models[0], horizon, fit_points, n_jobs)
        for row, k in enumerate(broken):
            finals[k] = Bands(fitted.mean[row], fitted.lo[row], fitted.hi[row])
            chosen[k] = 0
    return [b for b in finals if b is not None]


def _calibrated(
    bt: Backtest, alias: str, k: int, final: Bands, recent: tuple[Floats, int, int]
) -> tuple[Floats, Floats, Floats, float]:
    """P10, P50, P90 of series `k`'s final forecast, its band calibrated on its backtest and
    guarded by how far its history (`recent`: the history, its season, the window) moved lately,
    and the backtest coverage."""
    b = bt.bands[alias]
    y, season, window = recent
    slack = SLACK * float(bt.scale[k])
    c = calibrate(bt.actual[k], b.mean[k], b.lo[k], b.hi[k], windows=WINDOWS, slack=slack)
    p10, p50, p90 = band(final.mean, final.lo, final.hi, c, slack=slack, window=window,
                         reach=reach(y, season, window, slack))  # fmt: skip
    return p10, p50, p90, c.coverage


def historic_average(y: Floats, horizon: int) -> tuple[Floats, Floats, Floats]:
    """P10, P50, P90 of the mean of `y`, as statsforecast's HistoricAverage makes them.

    The band is the normal one: `mean -/+ Z90 x sd x sqrt(1 + 1/n)`, the sample standard deviation
    of the steps. One step has no deviation: its band is zero to twice its value.
    """
    mean = float(y.mean())
    sd = float(y.std(ddof=1)) if len(y) > 1 else abs(mean) / Z90
    half = Z90 * sd * np.sqrt(1 + 1 / len(y)) if len(y) > 1 else Z90 * sd
    p50 = np.full(horizon, mean)
    return p50 - half, p50, p50 + half


def history(s: Series) -> Floats:
    """The values of `s` from its first non-zero step on."""
    y = np.asarray(s.values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"series {s.key!r} has a NaN or infinite value; zero-fill gaps first")
    nonzero = np.flatnonzero(y)
    return y[nonzero[0] :] if len(nonzero) else y[:0]


def _result(
    s: Series,
    horizon: int,
    model: str,
    band: tuple[Floats, Floats, Floats],
    mase: float | None = None,
    naive_mase: float | None = None,
    coverage: float | None = None,
) -> Forecast:
    """The Forecast of `s`: the band clipped at zero and ordered P10 <= P50 <= P90."""
    p10, p50, p90 = (np.clip(b, 0.0, None) for b in band)
    p10, p90 = np.minimum(p10, p50), np.maximum(p90, p50)
    first = s.start + s.step * len(s.values)
    return Forecast(
        key=s.key,
        model=model,
        dates=tuple(first + s.step * d for d in range(horizon)),
        p10=tuple(p10.tolist()),
        p50=tuple(p50.tolist()),
        p90=tuple(p90.tolist()),
        mase=mase,
        naive_mase=naive_mase,
        coverage=coverage,
    )
