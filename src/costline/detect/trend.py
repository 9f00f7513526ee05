"""Slow creep: a sustained trend, measured by a seasonal Theil-Sen slope on log values.

At a point `t`, the slope is the median of `(log v[j] - log v[i]) / (j - i)` over the pairs of
points of the trailing `creep_window` (both inside it, `j - i` a whole number of seasons, so a
quiet weekend against a busy Monday is never a slope). It is the daily growth rate, robust to the
odd spike or month-start batch inside the window (a few pairs out of many), and untouched by
weekly seasonality. A creep is flagged at `t` when all hold (in the scan's direction):

- the slope, kept up over the window, makes a rise of at least `creep_pct` percent more than the
  slope of the window before it would (when that one rose): steady organic growth is no creep,
  however fast, only growth that speeds up is;
- at least `CONSISTENT` of the pair slopes point the same way (a trend, not noise);
- the last season's mean is above the season's before the window by `min_pct` percent and by
  `min_impact` a point (a trend of a few dollars is not worth a finding).

Steady organic growth of a few percent a month is far under `creep_pct` over three weeks. A
point whose window holds a value <= 0 has no log, and no trend. Only points whose last season
already rose by half of `creep_pct` against the season before the window are measured at all:
the slope is the scan's most costly step.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from costline.detect.scan import Settings

CONSISTENT = 0.75  # share of the pair slopes that must rise (or fall) with the trend

Floats = NDArray[np.float64]
Ints = NDArray[np.intp]


def pairs(s: Settings) -> list[tuple[int, int]]:
    """(i, j) offsets inside a window of `creep_window` points, `j - i` whole seasons."""
    w, step = s.creep_window, max(s.season, 1)
    return [(i, j) for j in range(w) for i in range(j % step, j, step)]


def first_point(s: Settings) -> int:
    """The first point with a whole window and the season before it."""
    return s.creep_window + max(s.season, 1)


def creeps(block: Floats, first: int, s: Settings) -> tuple[Ints, Ints, Floats]:
    """(rows, points, growth per point) of every point of `block` where a creep is flagged."""
    n = block.shape[1]
    sgn = -1.0 if s.direction == "down" else 1.0
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))
    offsets = pairs(s)
    start = max(first, first_point(s))
    if s.creep_window < 2 or not offsets or n <= start:
        return empty
    season = max(s.season, 1)
    tt = np.arange(start, n)
    lo = tt + 1 - s.creep_window
    recent, before = _mean(block, tt + 1 - season, season), _mean(block, lo - season, season)
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = sgn * (recent - before) / before * 100
    pre = (before > 0) & (recent > 0) & (rise >= s.creep_pct / 2)
    pre &= sgn * (recent - before) >= s.min_impact
    rr, cc = np.nonzero(pre)
    if rr.size == 0:
        return empty
    t = cc + start
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(block > 0, block, np.nan))
    i = np.array([a for a, _ in offsets])
    j = np.array([b for _, b in offsets])
    base = (t - s.creep_window + 1)[:, None]
    slopes = sgn * (logs[rr[:, None], base + j] - logs[rr[:, None], base + i]) / (j - i)
    valid = ~np.isnan(slopes).any(axis=1)
    growth = np.median(np.where(np.isnan(slopes), 0.0, slopes), axis=1)
    share = (slopes > 0).mean(axis=1)
    prior = np.zeros(rr.size)
    old = (base[:, 0] - s.creep_window) >= 0
    if old.any():
        before_ = base[old] - s.creep_window
        earlier = (
            sgn * (logs[rr[old, None], before_ + j] - logs[rr[old, None], before_ + i]) / (j - i)
        )
        known = ~np.isnan(earlier).any(axis=1)
        prior[old] = np.where(known, np.median(np.where(known[:, None], earlier, 0.0), axis=1), 0)
    rise_ = (growth - np.maximum(prior, 0.0)) * s.creep_window
    hit = valid & (rise_ >= math.log1p(s.creep_pct / 100)) & (share >= CONSISTENT)
    return rr[hit], t[hit], np.expm1(growth[hit])


def _mean(block: Floats, first: Ints, count: int) -> Floats:
    """The mean of `count` points from each of `first`, added left to right as Python's `sum`
    does (so that the plain reference agrees to the last bit)."""
    total = np.zeros((block.shape[0], first.size))
    for k in range(count):
        total = total + block[:, first + k]
    return total / count


def creep_at(values: Sequence[float], t: int, s: Settings) -> float | None:
    """The growth per point when a creep is flagged at `t`, else None: `creeps` for one point,
    in plain Python (the reference the tests hold the numpy form to)."""
    season = max(s.season, 1)
    sgn = -1.0 if s.direction == "down" else 1.0
    offsets = pairs(s)
    if s.creep_window < 2 or not offsets or t < first_point(s):
        return None
    lo = t + 1 - s.creep_window
    recent = sum(values[t + 1 - season : t + 1]) / season
    before = sum(values[lo - season : lo]) / season
    if before <= 0 or recent <= 0 or sgn * (recent - before) < s.min_impact:
        return None
    if sgn * (recent - before) / before * 100 < s.creep_pct / 2:
        return None
    window = values[lo : t + 1]
    if min(window) <= 0:
        return None
    slopes = [sgn * (math.log(window[j]) - math.log(window[i])) / (j - i) for i, j in offsets]
    growth = statistics.median(slopes)
    share = sum(1 for x in slopes if x > 0) / len(slopes)
    prior = 0.0
    if lo - s.creep_window >= 0 and min(values[lo - s.creep_window : lo]) > 0:
        earlier = values[lo - s.creep_window : lo]
        prior = statistics.median(
            sgn * (math.log(earlier[j]) - math.log(earlier[i])) / (j - i) for i, j in offsets
        )
    rise = (growth - max(prior, 0.0)) * s.creep_window
    if rise < math.log1p(s.creep_pct / 100) or share < CONSISTENT:
        return None
    return math.expm1(growth)
