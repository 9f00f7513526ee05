"""Robust, seasonality-aware anomaly detection on regular series: `scan` one, `scan_many` a block.

The method, for each point `t` with at least `history` points before it (a day, or an hour):

- **expected**: the median of the same phase in the last four seasons (for daily series, the same
  weekday of the last four weeks), so a quiet weekend is not a drop and Monday not a spike;
- **scale**: 1.4826 x the median absolute deviation of the `history` points before `t` (the MAD is
  untouched by the few spikes a history holds, unlike a standard deviation);
- `t` is anomalous when all of these hold, as AWS Cost Anomaly Detection gates its monitors by
  dollar and percent impact:
  - `observed - expected >= min_impact` (dollars, or units, a point);
  - `(observed - expected) / expected >= min_pct` percent;
  - `observed - expected >= z x scale` (a robust z-score);
  - `observed > (1 + new_high) x` the highest point of the last `peaks` points, unless the point
    continues an open anomaly: the series' normal peaks (a batch burst, a training run's return)
    have been seen before, an incident's level has not. A series whose history already holds
    `spiky` or more such spikes (points `z` scales and `min_impact` above its median) must beat its highest point
    by `1 + spiky_new_high` (twice it, by default): for a bursty batch meter, a burst a little
    larger than the last is its nature, not news.
- An anomaly whose impact stays under `min_total_impact` is dropped.
- Anomalous points at most `gap` points apart form one anomaly, with its first and last point and
  its impact so far (the sum of `observed - expected`).

Points before `warmup` (six weeks of days) are never judged: with less history, there is no
baseline to be surprised by, and a bursty meter has not yet shown its bursts.

`scan_many` scans many series of one length at once (10,000 daily series of a year in well under
a second, see docs/benchmarks.md): the stateless gates run on blocks of series with numpy, and only
the points that pass them go through the sequential part in Python. `scan` is `scan_many` on one
row. Values are expected finite: a NaN has no defined place in a median.

    >>> flat = [100.0] * 50 + [400.0, 380.0] + [100.0] * 5
    >>> [(a.start, a.end, round(a.impact)) for a in scan(flat, Settings(season=7))]
    [(50, 51, 580)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

MAD_TO_SIGMA = 1.4826
CHUNK_BYTES = 256 * 2**20  # working memory per block of series in `scan_many`

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]


@dataclass(frozen=True)
class Settings:
    min_impact: float = 100.0
    min_pct: float = 20.0
    z: float = 4.0
    new_high: float = 0.1
    spiky: int = 2
    spiky_new_high: float = 1.0
    min_total_impact: float = 250.0
    season: int = 7  # points per season: 7 for days in a week, 24 for hours in a day
    seasons: int = 4
    history: int = 28
    peaks: int = 56  # how far back a normal peak is remembered
    warmup: int = 42  # points of history before any is judged: six weeks show a burst pattern
    gap: int = 1  # anomalous points this far apart are one anomaly


@dataclass
class Anomaly:
    start: int  # index of the first anomalous point
    end: int  # index of the last (inclusive)
    impact: float = 0.0  # sum of observed - expected over its anomalous points
    observed: float = 0.0
    expected: float = 0.0
    peak_z: float = 0.0
    points: list[int] = field(default_factory=list)


def scan(values: Sequence[float], settings: Settings | None = None) -> list[Anomaly]:
    """The anomalies of `values` (oldest first), per the module's method."""
    return scan_many(np.asarray(values, dtype=np.float64).reshape(1, -1), settings)[0]


def scan_many(matrix: ArrayLike, settings: Settings | None = None) -> list[list[Anomaly]]:
    """The anomalies of each row of `matrix` (series of one length, oldest first), as `scan`'s.

    The stateless gates run on blocks of rows with numpy; only the points that pass them go
    through the sequential part (continuing an open anomaly, the new-high test) in Python.

        >>> rows = [[100.0] * 50 + [400.0, 380.0] + [100.0] * 5, [100.0] * 57]
        >>> [[(a.start, a.end) for a in found] for found in scan_many(rows)]
        [[(50, 51)], []]
    """
    s = settings or Settings()
    _check(s)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"scan_many takes a 2-D array (series x points), not a {m.ndim}-D one")
    rows, n = m.shape
    first = max(s.warmup, s.history, s.season * s.seasons)
    found: list[list[Anomaly]] = [[] for _ in range(rows)]
    if n <= first:
        return found
    step = _rows_per_block(n, s)
    for lo in range(0, rows, step):
        found[lo : lo + step] = _scan_block(m[lo : lo + step], first, s)
    return found


def _check(s: Settings) -> None:
    for name, least in (("season", 0), ("history", 1), ("peaks", 1)):
        if getattr(s, name) < least:
            raise ValueError(
                f"anomaly Settings.{name} is {getattr(s, name)}: it must be at least {least}"
            )


def _rows_per_block(points: int, s: Settings) -> int:
    """Rows per block so that the block's windows (copied a few times over) fit `CHUNK_BYTES`."""
    per_row = 8 * points * (3 * (max(s.seasons, 1) + s.history + s.peaks) + 8)
    return max(1, CHUNK_BYTES // per_row)


def _scan_block(block: Floats, first: int, s: Settings) -> list[list[Anomaly]]:
    """`scan` of each row of `block`: the gates on every point at once, then the few left."""
    observed = block[:, first:]
    expected = _expected(block, first, s)
    excess = observed - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = excess / expected * 100
    keep = ~(excess < s.min_impact) & ~((expected <= 0) & (observed <= 0))
    keep &= ~((expected > 0) & (pct < s.min_pct))
    rr, cc = np.nonzero(keep)
    center, mad = _history_stats(block, rr, cc + first, s.history)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(mad > 0, excess[rr, cc] / mad, np.inf)
    passed = ~(z < s.z)
    rr, cc, center, mad, z = rr[passed], cc[passed], center[passed], mad[passed], z[passed]
    beats = _new_high(block, rr, cc + first, center, mad, s)
    points = (rr, cc + first, excess[rr, cc], observed[rr, cc], expected[rr, cc], z, beats)
    return _assemble(block.shape[0], points, s)


def _expected(block: Floats, first: int, s: Settings) -> Floats:
    """The median of the same phase over the last `seasons` seasons, for each point from `first`."""
    n = block.shape[1]
    if s.seasons < 1:  # no same phase to look at: the median of the history
        windows = sliding_window_view(block, s.history, axis=1)
        return np.median(windows[:, first - s.history : n - s.history], axis=2)
    lags = range(1, s.seasons + 1)
    phases = np.stack([block[:, first - k * s.season : n - k * s.season] for k in lags], axis=2)
    return np.median(phases, axis=2)


def _history_stats(block: Floats, rr: Ints, tt: Ints, history: int) -> tuple[Floats, Floats]:
    """The median of the `history` points before each (row, t), and 1.4826 x their MAD."""
    windows = sliding_window_view(block, history, axis=1)[rr, tt - history]
    center = np.median(windows, axis=1)
    mad = np.median(np.abs(windows - center[:, None]), axis=1) * MAD_TO_SIGMA
    return center, mad


def _new_high(
    block: Floats, rr: Ints, tt: Ints, center: Floats, mad: Floats, s: Settings
) -> NDArray[np.bool_]:
    """Whether each (row, t) beats the highest of its last `peaks` points by its margin."""
    pad = np.full((block.shape[0], s.peaks), -np.inf)  # before the series: never a peak
    past = sliding_window_view(np.concatenate([pad, block], axis=1), s.peaks, axis=1)[rr, tt]
    limit = np.maximum(s.z * mad, s.min_impact)
    spikes = np.count_nonzero(past - center[:, None] > limit[:, None], axis=1)
    margin = np.where(spikes >= s.spiky, s.spiky_new_high, s.new_high)
    return ~(block[rr, tt] <= (1 + margin) * past.max(axis=1))


def _assemble(
    rows: int, points: tuple[NDArray[np.generic], ...], s: Settings
) -> list[list[Anomaly]]:
    """The sequential part: the candidate points, in order, continue an open anomaly, start a
    new one when they beat their past's high, or are left out; then the small ones dropped."""
    found: list[list[Anomaly]] = [[] for _ in range(rows)]
    open_: Anomaly | None = None
    row = -1
    for r, t, excess, observed, expected, z, beats in zip(
        *(p.tolist() for p in points), strict=True
    ):
        if r != row:
            open_, row = None, r
        if open_ is not None and t - open_.end <= s.gap + 1:
            a = open_
        elif beats:
            a = open_ = Anomaly(start=t, end=t)
            found[r].append(a)
        else:
            continue
        a.end = t
        a.impact += excess
        a.observed += observed
        a.expected += expected
        a.peak_z = max(a.peak_z, z)
        a.points.append(t)
    return [[a for a in f if a.impact >= s.min_total_impact] for f in found]
