"""P10-P90 bands calibrated on the backtest, with a guard against explosive ones.

A model's own 80% interval assumes the model is right; it is too narrow where the model misses
(a trend it extrapolates too flat) and too wide where it is cautious. So the band is
**calibrated on the backtest**: each side of the chosen model's own band is stretched or shrunk
by the factor that puts a tenth of the backtest's steps above the P90 and a tenth below the P10
(split conformal prediction, each step's model half-width as its scale):

    up   = the conformal 0.9 quantile of (y - p50) / (p90_model - p50 + slack)
    down = the conformal 0.9 quantile of (p50 - y) / (p50 - p10_model + slack)

over the backtest's n steps (the ceil((n + 1) x 0.9)-th smallest ratio), p50 the model's
forecast clipped at zero and `slack` a hundredth of the series' MASE scale (a model certain of
itself has a band of zero width). Neither factor is below `FLOOR` (a quarter: a model whose
backtest erred all one way still has a band on the other side). The horizon's band is then
`p50 + up x (p90_model - p50 + slack)` and `p50 - down x (p50 - p10_model + slack)`, clipped at
zero: its shape (how it widens with the horizon) is the model's, its width what the backtest
showed. A series at zero on a tenth of the backtest's steps or more (a bursty meter, a job that
runs some days) has a P10 of zero: nothing spent is a tenth of its days; its band then holds
its zero days too, and about 90% of its steps.

**Coverage** is reported honestly: the band calibrated on one backtest window is scored on the
other, both ways round, and the share of steps inside is the series' `coverage` (about 0.8 where
the calibration carries over; less where the series changed between the windows).

**Guard.** A model refitted on the whole history can forecast a band far wider than the series
has lately moved (seasonal naive's band after a level drop still holds the old level's
differences; a multiplicative model near zero; an ETS trend compounding). No side of a band is
wider than `STRETCH` (3) times the series' reach (the conformal 0.9 quantile of its last
window's differences from a season before), growing as the square root of the steps past the
backtest window's length.

    >>> import numpy as np
    >>> actual = np.array([10.0, 12.0, 9.0, 11.0])
    >>> mean, lo, hi = np.full(4, 10.0), np.full(4, 5.0), np.full(4, 15.0)
    >>> c = calibrate(actual, mean, lo, hi, windows=2, slack=0.0)
    >>> round(c.up, 2), round(c.down, 2), c.coverage
    (0.4, 0.25, 0.75)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costline.forecast.backtest import Floats

QUANTILE = 0.9  # each side: 10% of the steps beyond it
STRETCH = 3.0  # a band side is at most this many times the backtest's reach
SLACK = 0.01  # of the MASE scale, added to every half-width
FLOOR = 0.25  # no side is narrower than a quarter of the model's own


@dataclass(frozen=True)
class Calibration:
    up: float  # multiplier of the model's upper half-width (p90 - p50 + slack)
    down: float  # of its lower half-width
    coverage: float  # share of backtest steps inside the band calibrated on the other window


def calibrate(
    actual: Floats, mean: Floats, lo: Floats, hi: Floats, *, windows: int, slack: float
) -> Calibration:
    """The calibration of one series' band from its backtest (`actual` and the model's `mean`,
    `lo` and `hi` over the same steps, `windows` windows of equal length, oldest first)."""
    up, down = _factors(actual, mean, lo, hi, slack)
    parts = np.arange(len(actual)) // (len(actual) // windows)
    inside = 0
    for w in range(windows):
        fit, test = parts != w, parts == w
        u, d = _factors(actual[fit], mean[fit], lo[fit], hi[fit], slack)
        p10, _, p90 = _stretched(mean[test], lo[test], hi[test], u, d, slack)
        inside += int(((actual[test] >= p10) & (actual[test] <= p90)).sum())
    return Calibration(up, down, inside / len(actual))


def reach(y: Floats, season: int, window: int, slack: float) -> float:
    """How far the series has moved in its last `window` steps: the conformal 0.9 quantile of
    their absolute differences from a season before, plus `slack`."""
    recent = y[-(window + season) :]
    return _conformal(np.abs(recent[season:] - recent[:-season])) + slack


def band(
    mean: Floats, lo: Floats, hi: Floats, c: Calibration, *, slack: float, window: int,
    reach: float,
) -> tuple[Floats, Floats, Floats]:  # fmt: skip
    """P10, P50 and P90 of a horizon's forecast (the model's `mean`, `lo`, `hi`), calibrated by
    `c` and guarded: no side wider than STRETCH x `reach` x sqrt(steps / window), at least 1."""
    p10, p50, p90 = _stretched(mean, lo, hi, c.up, c.down, slack)
    steps = np.arange(1, len(mean) + 1)
    limit = STRETCH * reach * np.sqrt(np.maximum(steps / max(window, 1), 1.0))
    p90 = np.minimum(p90, p50 + limit)
    if math.isfinite(c.down):  # not a series that was often zero: its P10 stays zero
        p10 = np.maximum(p10, p50 - limit)
    return np.clip(p10, 0.0, None), p50, p90


def _stretched(
    mean: Floats, lo: Floats, hi: Floats, up: float, down: float, slack: float
) -> tuple[Floats, Floats, Floats]:
    p50 = np.clip(mean, 0.0, None)
    p90 = p50 + up * (np.maximum(hi - mean, 0.0) + slack)
    if not math.isfinite(down):
        return np.zeros_like(p50), p50, p90
    p10 = np.clip(p50 - down * (np.maximum(mean - lo, 0.0) + slack), 0.0, None)
    return p10, p50, p90


def _factors(
    actual: Floats, mean: Floats, lo: Floats, hi: Floats, slack: float
) -> tuple[float, float]:
    """The up and down multipliers (module docstring), a hair over, so that a step exactly on
    the boundary stays inside after rounding. Down is infinite (P10 zero) where a tenth of the
    steps or more were zero: an intermittent meter's P10 is nothing spent."""
    p50 = np.clip(mean, 0.0, None)
    if np.mean(actual <= 0.0) >= 1 - QUANTILE:
        return max(_conformal((actual - p50) / (np.maximum(hi - mean, 0.0) + slack)), FLOOR) * (
            1 + 1e-9
        ), math.inf
    above = (actual - p50) / (np.maximum(hi - mean, 0.0) + slack)
    below = (p50 - actual) / (np.maximum(mean - lo, 0.0) + slack)
    return (max(_conformal(above), FLOOR) * (1 + 1e-9),
            max(_conformal(below), FLOOR) * (1 + 1e-9))  # fmt: skip


def _conformal(scores: Floats) -> float:
    """The ceil((n + 1) x QUANTILE)-th smallest of n scores (the largest when n is small)."""
    ordered = np.sort(scores)
    k = min(len(ordered), math.ceil((len(ordered) + 1) * QUANTILE))
    return float(ordered[k - 1])
