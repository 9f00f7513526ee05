"""Robust, seasonality-aware anomaly detection on regular series: `scan` one, `scan_many` a block.

The method, for each point `t` from `warmup` on (in the scan's `direction`: `up` looks for rises,
`down` for drops, the same gates mirrored):

- **expected**: the median of the same phase in the last `seasons` seasons (for daily series, the
  same weekday of the last four weeks), so a quiet weekend is not a drop and Monday not a spike;
  with fewer seasons behind it, those there are (a young or sub-daily series is judged after
  `warmup` points, not after four seasons), and before a whole season, the history's median;
- **scale**: 1.4826 x the median absolute deviation of the (up to) `history` points before `t`
  (the MAD is untouched by the few spikes a history holds, unlike a standard deviation);
- `t` is a **weak** point when its excess `observed - expected` is positive, at least `min_pct`
  percent of a positive expected, and `weak_z` scales; a **strong** one when it also reaches
  `min_impact` (dollars for spend; 0 for unit-free series, whose gates are relative) and `z`
  scales, as AWS Cost Anomaly Detection gates its monitors by dollar and percent impact;
- a strong point is **new** when it beats the highest point of the last `peaks` points by
  `new_high` (by `spiky_new_high` in a series whose history already holds `spiky` or more spikes:
  for a bursty batch meter a burst a little larger than the last is its nature, not news).

`detect.episodes` turns those points into anomalies: a new strong point, `sustain` weak points in a
row whose excess together passes the gate, or a creep (`detect.trend`: a sustained trend of
`creep_pct` percent over `creep_window` points) starts one; it is then followed against the
baseline from before it began (never absorbed into its own baseline), until the series returns to
it or a rebase point (an acknowledgment, an announced launch) makes its level the new normal. An
anomaly whose impact stays under `min_total_impact` is dropped.

A daily caller passes `monthly`, each point's same day of the month before: a point that stands
no further above its level than those days did (a month-start batch) starts nothing.

`scan_many` scans many series of one length at once (10,000 daily series of a year in about a
second, see docs/benchmarks.md): the stateless gates and the trend run on blocks of series with
numpy, and only the points that pass them go through the sequential part in Python. `scan` is
`scan_many` on one row. Values are expected finite: a NaN has no defined place in a median.

    >>> flat = [100.0] * 50 + [400.0, 380.0] + [100.0] * 5
    >>> [(a.start, a.end, round(a.impact), a.pattern) for a in scan(flat, Settings(season=7))]
    [(50, 51, 580, 'spike')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from costline.detect import trend
from costline.detect.episodes import Candidate, assemble_row
from costline.detect.scan import PATTERNS, Anomaly, Settings

__all__ = [
    "MAD_TO_SIGMA", "PATTERNS", "Anomaly", "Settings", "monthly_lags", "scan", "scan_many",
]  # fmt: skip

MAD_TO_SIGMA = 1.4826
CHUNK_BYTES = 256 * 2**20  # working memory per block of series in `scan_many`
DIRECTIONS = ("up", "down")

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]


def monthly_lags(origin: dt.date, days: int) -> list[int]:
    """For each day of a daily series from `origin`, the index of the same day of the month
    before (its last day when shorter), -1 before the series.

    >>> monthly_lags(dt.date(2026, 1, 30), 34)[-3:]  # Mar 2, 3, 4: Feb 2, 3, 4
    [3, 4, 5]
    """
    out = []
    for i in range(days):
        d = origin + dt.timedelta(days=i)
        year, month = (d.year, d.month - 1) if d.month > 1 else (d.year - 1, 12)
        last = (dt.date(d.year, d.month, 1) - dt.timedelta(days=1)).day
        before = dt.date(year, month, min(d.day, last))
        out.append((before - origin).days if before >= origin else -1)
    return out


def scan(
    values: Sequence[float],
    settings: Settings | None = None,
    rebases: Sequence[int] = (),
    monthly: Sequence[int] = (),
) -> list[Anomaly]:
    """The anomalies of `values` (oldest first), per the module's method; `rebases` are the
    points at which the level then becomes the new normal, `monthly` each point's same day of
    the month before (see `detect.episodes`)."""
    m = np.asarray(values, dtype=np.float64).reshape(1, -1)
    return scan_many(m, settings, [rebases], monthly)[0]


def scan_many(
    matrix: ArrayLike,
    settings: Settings | None = None,
    rebases: Sequence[Sequence[int]] | None = None,
    monthly: Sequence[int] = (),
) -> list[list[Anomaly]]:
    """The anomalies of each row of `matrix` (series of one length, oldest first), as `scan`'s.

    The stateless gates run on blocks of rows with numpy; only the points that pass them go
    through the sequential part (`detect.episodes`) in Python.

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
    if rebases is not None and len(rebases) != rows:
        raise ValueError(f"scan_many got {len(rebases)} lists of rebases for {rows} series")
    first = max(s.warmup, 1)
    found: list[list[Anomaly]] = [[] for _ in range(rows)]
    if n <= first:
        return found
    step = _rows_per_block(n, s)
    for lo in range(0, rows, step):
        block_rebases = [list(r) for r in rebases[lo : lo + step]] if rebases else None
        found[lo : lo + step] = _scan_block(m[lo : lo + step], first, s, block_rebases, monthly)
    return found


def _check(s: Settings) -> None:
    for name, least in (("season", 0), ("history", 1), ("peaks", 1), ("sustain", 1)):
        if getattr(s, name) < least:
            raise ValueError(
                f"anomaly Settings.{name} is {getattr(s, name)}: it must be at least {least}"
            )
    if s.direction not in DIRECTIONS:
        raise ValueError(f"anomaly Settings.direction is {s.direction!r}: one of up, down")


def _rows_per_block(points: int, s: Settings) -> int:
    """Rows per block so that the block's windows (copied a few times over) fit `CHUNK_BYTES`."""
    per_row = 8 * points * (3 * (max(s.seasons, 1) + s.history + s.peaks) + 16)
    return max(1, CHUNK_BYTES // per_row)


def _scan_block(
    block: Floats,
    first: int,
    s: Settings,
    rebases: list[list[int]] | None,
    monthly: Sequence[int] = (),
) -> list[list[Anomaly]]:
    """`scan` of each row of `block`: the gates on every point at once, then the few left."""
    sgn = -1.0 if s.direction == "down" else 1.0
    x = sgn * block  # in the scan's direction: what it looks for is a rise of x
    expected = _expected(x, first, s)
    excess = x[:, first:] - expected
    plain = sgn * expected
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = excess / plain * 100
    keep = (excess > 0) & ~((plain <= 0) & (block[:, first:] <= 0))
    keep &= ~((plain > 0) & (pct < s.min_pct))
    rr, cc = np.nonzero(keep)
    tt = cc + first
    center, mad = _history_stats(x, rr, tt, s.history)
    e = excess[rr, cc]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(mad > 0, e / mad, np.inf)
    weak = ~(z < s.weak_z)
    rr, tt, e, z, center, mad = rr[weak], tt[weak], e[weak], z[weak], center[weak], mad[weak]
    strong = ~(e < s.min_impact) & ~(z < s.z)
    beats, margin = _new_high(x, rr, tt, center, mad, s)
    cr, ct, growth = trend.creeps(block, first, s)
    points = (rr, tt, e, z, strong, beats, margin)
    return _assemble(block, points, (cr, ct, growth), rebases, s, monthly)


def _expected(x: Floats, first: int, s: Settings) -> Floats:
    """The median of the same phase over the last `seasons` seasons, for each point from `first`
    (over those there are, for points with fewer behind them; the history's, with none)."""
    rows, n = x.shape
    phased = s.seasons >= 1 and s.season >= 1
    full = max(first, s.season * s.seasons if phased else s.history)
    out = np.empty((rows, n - first))
    for t in range(first, min(full, n)):  # young points: a column at a time
        lags = [
            t - k * s.season for k in range(1, s.seasons + 1) if phased and t - k * s.season >= 0
        ]
        same = x[:, lags] if lags else x[:, max(0, t - s.history) : t]
        out[:, t - first] = np.median(same, axis=1)
    if n <= full:
        return out
    if not phased:  # no same phase to look at: the median of the history
        windows = sliding_window_view(x, s.history, axis=1)
        out[:, full - first :] = np.median(windows[:, full - s.history : n - s.history], axis=2)
        return out
    lags_ = range(1, s.seasons + 1)
    phases = np.stack([x[:, full - k * s.season : n - k * s.season] for k in lags_], axis=2)
    out[:, full - first :] = np.median(phases, axis=2)
    return out


def _history_stats(x: Floats, rr: Ints, tt: Ints, history: int) -> tuple[Floats, Floats]:
    """The median of the (up to) `history` points before each (row, t), and 1.4826 x their MAD."""
    center, mad = np.empty(rr.size), np.empty(rr.size)
    whole = tt >= history
    if whole.any():
        windows = sliding_window_view(x, history, axis=1)[rr[whole], tt[whole] - history]
        center[whole], mad[whole] = _center_mad(windows)
    for t in np.unique(tt[~whole]).tolist():  # young points: each point's own shorter history
        at = tt == t
        center[at], mad[at] = _center_mad(x[rr[at], :t])
    return center, mad


def _center_mad(windows: Floats) -> tuple[Floats, Floats]:
    center = np.median(windows, axis=1)
    return center, np.median(np.abs(windows - center[:, None]), axis=1) * MAD_TO_SIGMA


def _new_high(
    x: Floats, rr: Ints, tt: Ints, center: Floats, mad: Floats, s: Settings
) -> tuple[NDArray[np.bool_], Floats]:
    """Whether each (row, t) beats the highest of its last `peaks` points by its margin, and the
    margin (`new_high`, or `spiky_new_high` where the past holds `spiky` spikes)."""
    pad = np.full((x.shape[0], s.peaks), -np.inf)  # before the series: never a peak
    past = sliding_window_view(np.concatenate([pad, x], axis=1), s.peaks, axis=1)[rr, tt]
    limit = np.maximum(s.z * mad, s.min_impact)
    spikes = np.count_nonzero(past - center[:, None] > limit[:, None], axis=1)
    margin = np.where(spikes >= s.spiky, s.spiky_new_high, s.new_high)
    high = past.max(axis=1)
    return x[rr, tt] > high + margin * np.abs(high), margin


def _assemble(
    block: Floats,
    points: tuple[NDArray[np.generic], ...],
    creeps: tuple[Ints, Ints, Floats],
    rebases: list[list[int]] | None,
    s: Settings,
    monthly: Sequence[int] = (),
) -> list[list[Anomaly]]:
    """Each row's candidates and creep triggers, through `episodes.assemble_row`."""
    rows = block.shape[0]
    found: list[list[Anomaly]] = [[] for _ in range(rows)]
    rr, tt = np.asarray(points[0], np.intp), np.asarray(points[1], np.intp)
    strong = np.asarray(points[4], bool)
    # Only rows that can start an anomaly: a strong point, or `sustain` weak ones in a row.
    k = s.sustain - 1
    run = (rr[k:] == rr[: rr.size - k]) & (tt[k:] - tt[: tt.size - k] == k)
    wanted = np.zeros(rows, dtype=bool)
    wanted[rr[strong]] = True
    wanted[rr[: rr.size - k][run]] = True
    wanted[creeps[0]] = True
    chosen = wanted[rr]
    points = tuple(p[chosen] for p in points)
    rr = rr[chosen]
    by_row: dict[int, list[Candidate]] = {}
    if rr.size:
        bounds = np.flatnonzero(np.diff(rr)) + 1
        columns = [p.tolist() for p in points[1:]]
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), rr.size], strict=True):
            by_row[int(rr[lo])] = list(zip(*(c[lo:hi] for c in columns), strict=True))
    creeping: dict[int, dict[int, float]] = {}
    for r, t, g in zip(*(c.tolist() for c in creeps), strict=True):
        creeping.setdefault(r, {})[t] = g
    for r in sorted({*by_row, *creeping}):
        found[r] = assemble_row(block[r].tolist(), by_row.get(r, []), creeping.get(r, {}),
                                rebases[r] if rebases else (), s, monthly)  # fmt: skip
    return found
