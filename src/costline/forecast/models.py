"""Daily forecasts of spend: a few cheap models, the best per series by backtest, an 80% band.

`forecast` takes daily series (dollars, GPU-hours, tokens: quantities that are never negative)
and, for each, picks among a small set of candidate models the one with the lowest MASE on a
rolling-origin backtest, refits it on the whole history and forecasts `horizon` days with P10,
P50 and P90 (the model's own 80% prediction interval), all clipped at zero. The method is written
down in docs/methodology/forecasts.md.

- **Candidates**, simplest first, so that a tie goes to the simpler: `SeasonalNaive` (the same
  day last season), `HistoricAverage` (the mean of the history: right for bursty and intermittent
  series, whose next burst has no date) and `DynamicOptimizedTheta` (on the seasonally adjusted
  series, exponential smoothing with a fitted share of the linear trend, updated as it goes:
  follows a level and a trend). Each runs over all series in one statsforecast call; MSTL and the
  standard Theta were tried as well and added nothing over these three (see the methodology).
- **Backtest**: `WINDOWS` windows of `min(horizon, 28)` days at the end of the history, each
  forecast from the days before it. MASE is the mean absolute error over those days, the forecasts
  clipped at zero as the output is, over the in-sample seasonal-naive MAE of the history before
  the first window.
- **History** starts at the first day with a value: leading zeros are days before the series
  existed (a new team, a new model), not days of zero spend to average in.
- **Short** histories (fewer than two seasons plus the backtest's days, 70 for a week's season and
  a horizon of 28 days or more) are not backtested: they get `HistoricAverage` (the mean, with a
  normal band from the days' standard deviation; a single day gets a band from zero to twice it)
  and `mase` None. An all-zero series is forecast as zeros (model `Zero`).

statsforecast is imported inside the functions that need it: importing it takes seconds.

    >>> import datetime as dt
    >>> week = (100.0, 100.0, 100.0, 100.0, 100.0, 20.0, 20.0)
    >>> [fc] = forecast([Series("team=search", dt.date(2026, 1, 5), week * 12)], 7)
    >>> fc.model, [round(v) for v in fc.p50]
    ('SeasonalNaive', [100, 100, 100, 100, 100, 20, 20])
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

Floats = NDArray[np.float64]

LEVEL = 80  # the band: P10 to P90
Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile
WINDOWS = 2  # backtest windows
MAX_WINDOW = 28  # days per backtest window, at most
SHORT_MODEL = "HistoricAverage"
ZERO_MODEL = "Zero"


@dataclass(frozen=True)
class Series:
    key: str  # e.g. "team=search"
    start: dt.date  # date of values[0]
    values: tuple[float, ...]  # one per day, contiguous, oldest first (gaps already zero-filled)


@dataclass(frozen=True)
class Forecast:
    key: str
    model: str  # chosen by backtest: "SeasonalNaive", "HistoricAverage", "DynamicOptimizedTheta"
    dates: tuple[dt.date, ...]  # the horizon days
    p10: tuple[float, ...]  # P10 to P90 is the model's 80% prediction interval
    p50: tuple[float, ...]
    p90: tuple[float, ...]
    mase: float | None  # backtest MASE of the chosen model (None when too short to backtest)
    naive_mase: float | None  # backtest MASE of seasonal naive on the same windows


def forecast(
    series: Sequence[Series], horizon: int, *, season: int = 7, n_jobs: int = 1
) -> list[Forecast]:
    """Forecast each series `horizon` days past its last day, in input order.

    `season` is the days per season (7: a week); `n_jobs` the processes statsforecast may use.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least one day, got {horizon}")
    if season < 2:
        raise ValueError(f"season must be at least 2 days (7 for a week), got {season}")
    window = min(horizon, MAX_WINDOW)
    histories = [history(s) for s in series]
    out: list[Forecast | None] = [None] * len(series)
    backtested: list[int] = []
    for i, (s, y) in enumerate(zip(series, histories, strict=True)):
        if not y.any():
            zeros = np.zeros(horizon)
            out[i] = _result(s, horizon, ZERO_MODEL, (zeros, zeros, zeros), None, None)
        elif len(y) < 2 * season + WINDOWS * window:
            out[i] = _result(s, horizon, SHORT_MODEL, historic_average(y, horizon), None, None)
        else:
            backtested.append(i)
    if backtested:
        ys = [histories[i] for i in backtested]
        models = candidates(season)
        scores = backtest(ys, models, season, window, n_jobs)
        chosen = np.argmin(scores, axis=0)  # the first of equals: the simpler model
        mean_row = [model.alias for model in models].index(SHORT_MODEL)
        for m, model in enumerate(models):
            members = np.flatnonzero(chosen == m)
            if not len(members):
                continue
            bands = refit([ys[k] for k in members], model, horizon, n_jobs)
            for k, band in zip(members, bands, strict=True):
                i, name, mase = backtested[k], model.alias, float(scores[m, k])
                if not np.isfinite(band).all():  # no model has done it yet: the mean then
                    band, name = historic_average(ys[k], horizon), SHORT_MODEL
                    mase = float(scores[mean_row, k])
                out[i] = _result(series[i], horizon, name, band, mase, float(scores[0, k]))
    return [fc for fc in out if fc is not None]


def candidates(season: int) -> list[Any]:
    """The candidate models, simplest first; seasonal naive first (its MASE is `naive_mase`)."""
    from statsforecast.models import DynamicOptimizedTheta, HistoricAverage, SeasonalNaive

    return [
        SeasonalNaive(season, alias="SeasonalNaive"),
        HistoricAverage(alias="HistoricAverage"),
        DynamicOptimizedTheta(season, alias="DynamicOptimizedTheta"),
    ]


def backtest(
    histories: Sequence[Floats], models: Sequence[Any], season: int, window: int, n_jobs: int
) -> Floats:
    """MASE of each model (rows) on each history (columns) over the last `WINDOWS` windows.

    Models that can be carried forward (statsforecast's `forward`: new data, same parameters) are
    fitted at the first origin only, which halves the cost of the slow ones; the others are
    refitted at each origin. A model that raises on a series is replaced there by seasonal naive
    (statsforecast's `fallback_model`), so it ties with it and seasonal naive, listed first, wins;
    one that returns NaN scores infinity.
    """
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    held = WINDOWS * window
    frame = _frame(histories)
    predicted: dict[str, Floats] = {}
    actual = np.zeros((len(histories), held))
    for each in (False, True):
        group = [m for m in models if hasattr(m, "forward") != each]
        if not group:
            continue
        sf = StatsForecast(
            models=group, freq=1, n_jobs=n_jobs, fallback_model=SeasonalNaive(season)
        )
        with _quiet():
            cv = sf.cross_validation(
                df=frame, h=window, n_windows=WINDOWS, step_size=window, refit=each
            )
        cv = cv.sort_values(["unique_id", "cutoff", "ds"])
        actual = cv["y"].to_numpy(np.float64).reshape(len(histories), held)
        for model in group:
            predicted[model.alias] = cv[model.alias].to_numpy(np.float64).reshape(actual.shape)
    scale = np.array([mase_scale(y[:-held], season) for y in histories])
    scores = np.empty((len(models), len(histories)))
    for m, model in enumerate(models):
        error = np.abs(np.clip(predicted[model.alias], 0.0, None) - actual).mean(axis=1)
        scores[m] = np.where(np.isfinite(error), error / scale, np.inf)
    return scores


def refit(
    histories: Sequence[Floats], model: Any, horizon: int, n_jobs: int
) -> list[tuple[Floats, Floats, Floats]]:
    """P10, P50 and P90 of `model` fitted on each whole history.

    Where the model raises, statsforecast's `fallback_model`, seasonal naive, forecasts instead
    (under the model's name: it has not happened on any series we tried).
    """
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    sf = StatsForecast(
        models=[model], freq=1, n_jobs=n_jobs, fallback_model=SeasonalNaive(model_season(model))
    )
    with _quiet():
        fc = sf.forecast(df=_frame(histories), h=horizon, level=[LEVEL])
    fc = fc.sort_values(["unique_id", "ds"])
    shape = (len(histories), horizon)
    name = model.alias
    p50 = fc[name].to_numpy(np.float64).reshape(shape)
    p10 = fc[f"{name}-lo-{LEVEL}"].to_numpy(np.float64).reshape(shape)
    p90 = fc[f"{name}-hi-{LEVEL}"].to_numpy(np.float64).reshape(shape)
    return list(zip(p10, p50, p90, strict=True))


def model_season(model: Any) -> int:
    """The season length of a statsforecast model (1 for a model without one)."""
    season = getattr(model, "season_length", 1)
    return int(season[0] if isinstance(season, list) else season)


def mase_scale(y: Floats, season: int) -> float:
    """In-sample MAE of seasonal naive on `y`: the MASE denominator.

    A history that repeats exactly has none; its mean absolute value stands in (MASE is then a
    relative error), and 1.0 for an all-zero one.
    """
    mae = float(np.abs(y[season:] - y[:-season]).mean()) if len(y) > season else 0.0
    if mae > 0:
        return mae
    level = float(np.abs(y).mean()) if len(y) else 0.0
    return level if level > 0 else 1.0


def historic_average(y: Floats, horizon: int) -> tuple[Floats, Floats, Floats]:
    """P10, P50, P90 of the mean of `y`, as statsforecast's HistoricAverage makes them.

    The band is the normal one: `mean -/+ Z90 x sd x sqrt(1 + 1/n)`, the sample standard deviation
    of the days. One day has no deviation: its band is zero to twice its value.
    """
    mean = float(y.mean())
    sd = float(y.std(ddof=1)) if len(y) > 1 else abs(mean) / Z90
    half = Z90 * sd * np.sqrt(1 + 1 / len(y)) if len(y) > 1 else Z90 * sd
    p50 = np.full(horizon, mean)
    return p50 - half, p50, p50 + half


def history(s: Series) -> Floats:
    """The values of `s` from its first non-zero day on."""
    y = np.asarray(s.values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError(f"series {s.key!r} has a NaN or infinite value; zero-fill gaps first")
    nonzero = np.flatnonzero(y)
    return y[nonzero[0] :] if len(nonzero) else y[:0]


@contextmanager
def _quiet() -> Iterator[None]:
    """Without numpy's RuntimeWarnings (statsmodels divides by a zero variance on flat series)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _frame(histories: Sequence[Floats]) -> pd.DataFrame:
    """statsforecast's long frame: `unique_id` the position, `ds` the day number, `y`."""
    import pandas as pd

    lengths = [len(y) for y in histories]
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(histories)), lengths),
            "ds": np.concatenate([np.arange(n) for n in lengths]),
            "y": np.concatenate(histories),
        }
    )


def _result(
    s: Series,
    horizon: int,
    model: str,
    band: tuple[Floats, Floats, Floats],
    mase: float | None,
    naive_mase: float | None,
) -> Forecast:
    """The Forecast of `s`: the band clipped at zero and ordered P10 <= P50 <= P90."""
    p10, p50, p90 = (np.clip(b, 0.0, None) for b in band)
    p10, p90 = np.minimum(p10, p50), np.maximum(p90, p50)
    first = s.start + dt.timedelta(days=len(s.values))
    return Forecast(
        key=s.key,
        model=model,
        dates=tuple(first + dt.timedelta(days=d) for d in range(horizon)),
        p10=tuple(p10.tolist()),
        p50=tuple(p50.tolist()),
        p90=tuple(p90.tolist()),
        mase=mase,
        naive_mase=naive_mase,
    )
