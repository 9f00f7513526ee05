"""The rolling-origin backtest that chooses a forecast model, and the refit of the one chosen.

`backtest` has every candidate model forecast the last `WINDOWS` windows of each history, each
from the steps before it, with its own 80% band; `refit` fits one model on whole histories and
forecasts the horizon. Both run over many series in one statsforecast call per kind of model:

- **cheap** models (seasonal naive, the mean) see the whole history;
- **costly** ones (Theta, ETS, MSTL) see only its last `fit_points` steps, so that a forecast's
  cost does not grow with the length of the history (a year of days costs what half a year does).

Models statsforecast can carry forward (`forward`: new data, same parameters) are fitted at the
first origin only and carried over the second window; the others are refitted at each origin.
A model that raises on a series is replaced there by seasonal naive (statsforecast's
`fallback_model`): it then ties with seasonal naive, which is listed first and wins.

statsforecast is imported inside the functions: importing it takes seconds.
"""

from __future__ import annotations

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
WINDOWS = 2  # backtest windows
CHEAP = ("SeasonalNaive", "HistoricAverage")  # statsforecast classes that see the whole history


@dataclass(frozen=True)
class Bands:
    """Forecasts of several series over the same number of steps: rows are series."""

    mean: Floats
    lo: Floats  # the model's own P10 (its 80% interval's lower end)
    hi: Floats  # its P90


@dataclass(frozen=True)
class Backtest:
    """What each model forecast for the held-out steps at the end of each history."""

    actual: Floats  # (series, held steps)
    bands: dict[str, Bands]  # model alias -> (series, held steps)
    scale: Floats  # (series,) the MASE denominator of each history before the first window
    fitted: dict[str, list[Any]]  # alias -> per series, the model fitted at the first origin

    def scores(self, aliases: Sequence[str]) -> Floats:
        """MASE of each model (rows) on each series (columns), forecasts clipped at zero.

        A model whose forecast is NaN or infinite somewhere scores infinity there."""
        out = np.empty((len(aliases), len(self.actual)))
        for m, alias in enumerate(aliases):
            mean = np.clip(self.bands[alias].mean, 0.0, None)
            error = np.abs(mean - self.actual).mean(axis=1)
            out[m] = np.where(np.isfinite(error), error / self.scale, np.inf)
        return out


def backtest(
    histories: Sequence[Floats],
    models: Sequence[Any],
    season: int,
    window: int,
    fit_points: int,
    n_jobs: int,
) -> Backtest:
    """Each model's forecasts, with bands, of the last `WINDOWS` windows of `window` steps.

    `season` is the seasonal naive's (the MASE scale's) season; costly models see the last
    `fit_points` steps before each origin at most."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    held = WINDOWS * window
    bands: dict[str, Bands] = {}
    fitted: dict[str, list[Any]] = {}
    for (carried, cheap), group in _groups(models).items():
        keep = None if cheap else fit_points
        sf = StatsForecast(
            models=group, freq=1, n_jobs=n_jobs, fallback_model=SeasonalNaive(season)
        )
        if carried:
            bands |= _carried(sf, histories, window, keep)
            fitted |= {m.alias: [sf.fitted_[i, j] for i in range(len(histories))]
                       for j, m in enumerate(group)}  # fmt: skip
            continue
        with quiet():
            cv = sf.cross_validation(
                df=frame(histories, None if keep is None else keep + held), h=window,
                n_windows=WINDOWS, step_size=window, level=[LEVEL],
            )  # fmt: skip
        cv = cv.sort_values(["unique_id", "cutoff", "ds"])
        for model in group:
            bands[model.alias] = _bands(cv, model.alias, (len(histories), held))
    actual = np.array([y[-held:] for y in histories], dtype=np.float64)
    scale = np.array([mase_scale(y[:-held], season) for y in histories])
    return Backtest(actual=actual, bands=bands, scale=scale, fitted=fitted)


def _carried(
    sf: Any, histories: Sequence[Floats], window: int, keep: int | None
) -> dict[str, Bands]:
    """Models fitted at the first origin (on the steps before it, the last `keep` of them) and
    carried forward over the later windows: new data, the same parameters. A model that raises
    when carried forward forecasts NaN there (and scores infinity)."""
    held = WINDOWS * window
    n = len(histories)
    with quiet():
        sf.fit(df=frame([y[:-held] for y in histories], keep))
        first = sf.predict(h=window, level=[LEVEL]).sort_values(["unique_id", "ds"])
    out = {}
    for j, model in enumerate(sf.models):
        parts = [_bands(first, model.alias, (n, window))]
        for w in range(1, WINDOWS):
            later = Bands(*(np.full((n, window), np.nan) for _ in range(3)))
            for i, y in enumerate(histories):
                seen = y[: len(y) - held + w * window]
                seen = seen if keep is None else seen[-(keep + w * window) :]
                try:
                    with quiet():
                        r = sf.fitted_[i, j].forward(y=seen, h=window, level=[LEVEL])
                except Exception:  # NaN: the model scores infinity there
                    continue
                later.mean[i], later.lo[i] = r["mean"], r[f"lo-{LEVEL}"]
                later.hi[i] = r[f"hi-{LEVEL}"]
            parts.append(later)
        out[model.alias] = Bands(
            *(np.hstack([getattr(p, f) for p in parts]) for f in ("mean", "lo", "hi"))
        )
    return out


def refit(
    histories: Sequence[Floats],
    model: Any,
    horizon: int,
    fit_points: int,
    n_jobs: int,
    fitted: Sequence[Any] | None = None,
) -> Bands:
    """`model` fitted on each history (its last `fit_points` steps for a costly model) and
    forecast `horizon` steps, with its own 80% band.

    An AutoETS is refitted in the form (error, trend, season, damping) it chose at the
    backtest's first origin (`fitted`, one per history), not searched for again: a third of the
    cost. Where the model raises, statsforecast's `fallback_model`, seasonal naive, forecasts
    instead (under the model's name: it has not happened on any series we tried)."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    keep = None if type(model).__name__ in CHEAP else fit_points
    out = Bands(*(np.empty((len(histories), horizon)) for _ in range(3)))
    for form, rows in _forms(model, fitted, len(histories)):
        sf = StatsForecast(
            models=[form], freq=1, n_jobs=n_jobs, fallback_model=SeasonalNaive(model_season(model))
        )
        with quiet():
            fc = sf.forecast(df=frame([histories[k] for k in rows], keep), h=horizon,
                             level=[LEVEL])  # fmt: skip
        part = _bands(fc.sort_values(["unique_id", "ds"]), model.alias, (len(rows), horizon))
        out.mean[rows], out.lo[rows], out.hi[rows] = part.mean, part.lo, part.hi
    return out


def _forms(model: Any, fitted: Sequence[Any] | None, n: int) -> list[tuple[Any, list[int]]]:
    """The model to refit each history with, and the histories: an AutoETS restricted to the
    form it chose on that history at the first origin, any other model as it is."""
    from statsforecast.models import AutoETS

    if not isinstance(model, AutoETS) or fitted is None:
        return [(model, list(range(n)))]
    by_form: dict[str, list[int]] = {}
    for k, f in enumerate(fitted):
        form = f.model_["components"] if isinstance(f, AutoETS) else ""
        by_form.setdefault(form, []).append(k)
    return [
        (AutoETS(season_length=model.season_length, model=form[:3], damped=form[3] == "D",
                 alias=model.alias) if len(form) == 4 else model, rows)
        for form, rows in by_form.items()
    ]  # fmt: skip


def _groups(models: Sequence[Any]) -> dict[tuple[bool, bool], list[Any]]:
    """Models by (carried forward, cheap): one statsforecast call each."""
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for m in models:
        key = (hasattr(m, "forward"), type(m).__name__ in CHEAP)
        groups.setdefault(key, []).append(m)
    return groups


def _bands(fc: pd.DataFrame, alias: str, shape: tuple[int, int]) -> Bands:
    def column(name: str) -> Floats:
        return np.asarray(fc[name].to_numpy(np.float64).reshape(shape), dtype=np.float64)

    return Bands(column(alias), column(f"{alias}-lo-{LEVEL}"), column(f"{alias}-hi-{LEVEL}"))


def model_season(model: Any) -> int:
    """The (shortest) season length of a statsforecast model (1 for a model without one)."""
    season = getattr(model, "season_length", 1)
    return int(min(season) if isinstance(season, list) else season)


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


@contextmanager
def quiet() -> Iterator[None]:
    """Without numpy's RuntimeWarnings (statsmodels divides by a zero variance on flat series)
    nor statsforecast's UserWarnings about models it falls back from."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def frame(histories: Sequence[Floats], keep: int | None = None) -> pd.DataFrame:
    """statsforecast's long frame: `unique_id` the position, `ds` the step number, `y`; only the
    last `keep` steps of each history when `keep` is given."""
    import pandas as pd

    tails = [y if keep is None else y[-keep:] for y in histories]
    lengths = [len(y) for y in tails]
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(tails)), lengths),
            "ds": np.concatenate([np.arange(n) for n in lengths]),
            "y": np.concatenate(tails),
        }
    )
