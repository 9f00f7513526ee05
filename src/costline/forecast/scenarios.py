"""Spend scenarios over a forecast's horizon: the baseline and two spikes the series has shown.

A scenario scales every day of the forecast's P50 by a multiplier: "what if spend ran at spike
level", the question a budget owner asks. The multipliers are configured, or derived from the
series' own history:

1. For every season-long block of days (a week) with four seasons before it, its **ratio** is the
   block's total over what the four seasons before it would have it be (their mean day times the
   days of the block). Blocks, not days: the multiplier holds for the whole horizon, so the history
   is read at a sustained scale too (a one-day x10 spike is a week about 2.3x its normal).
   Blocks whose four seasons before spent nothing have no ratio.
2. Ratios are divided by their mean, so a growing series' normal weeks (a little above the month
   before) read as 1 (the mean, not the median: a series idle most weeks has a median of zero).
3. **expected** = the 95th percentile of those ratios (a bad week of the usual kind), at least
   `EXPECTED` = 1.2; **severe** = the largest (the worst week the series has had), at least
   `SEVERE` = 1.5 and a quarter above expected. Both are at most `MOST` = 10 (a block after a
   near-silent month can be thousands of times its past).

A spike-free history, or one too short for any ratio (fewer than five seasons from its first
non-zero day), gets the defaults: expected 1.2 and severe 1.5. A configured value wins; a derived
one stays on its side of it (expected no higher than a configured severe, severe at least a
quarter above a configured expected).

    >>> import datetime as dt
    >>> from costline.forecast.models import Forecast, Series
    >>> s = Series("team=search", dt.date(2026, 1, 1), (100.0,) * 60)
    >>> fc = Forecast("team=search", "SeasonalNaive", (dt.date(2026, 3, 2),), (100.0,), (100.0,), (100.0,), 0.0, 0.0)
    >>> [(x.name, x.values) for x in scenarios(s, fc)]
    [('baseline', (100.0,)), ('expected_spike', (120.0,)), ('severe_spike', (150.0,))]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from costline.forecast.backtest import Floats
from costline.forecast.models import Forecast, Series, history

EXPECTED = 1.2  # the expected spike's multiplier, at least
SEVERE = 1.5  # the severe spike's multiplier, at least
SEVERE_OVER_EXPECTED = 1.25  # a derived severe spike is at least this much above expected
MOST = 10.0  # neither derived multiplier exceeds this
SEASONS = 4  # seasons before a block that say what it should have been
QUANTILE = 0.95  # of the block ratios: the expected spike


@dataclass(frozen=True)
class Scenario:
    name: str  # "baseline", "expected_spike", "severe_spike"
    values: tuple[float, ...]  # per horizon day, like p50


def scenarios(
    series: Series,
    fc: Forecast,
    *,
    expected: float | None = None,
    severe: float | None = None,
    season: int = 7,
) -> list[Scenario]:
    """Baseline (the P50), expected spike and severe spike, in that order.

    `expected` and `severe` are configured multipliers (at least 1, expected no more than severe);
    a missing one is derived from `series` as the module docstring says.
    """
    for name, value in (("expected", expected), ("severe", severe)):
        if value is not None and not value >= 1.0:
            raise ValueError(
                f"{series.key}: the {name} spike multiplier must be at least 1, got {value}"
            )
    if expected is not None and severe is not None and expected > severe:
        raise ValueError(f"{series.key}: expected spike {expected} is above severe spike {severe}")
    derived_expected, derived_severe = spike_multipliers(history(series), season)
    if expected is None:
        expected = derived_expected if severe is None else min(derived_expected, severe)
    if severe is None:
        severe = max(derived_severe, expected * SEVERE_OVER_EXPECTED)
    p50 = np.asarray(fc.p50, dtype=np.float64)
    return [
        Scenario("baseline", tuple(fc.p50)),
        Scenario("expected_spike", tuple((p50 * expected).tolist())),
        Scenario("severe_spike", tuple((p50 * severe).tolist())),
    ]


def spike_multipliers(y: Floats, season: int) -> tuple[float, float]:
    """The expected and severe spike multipliers a history shows (module docstring, steps 1-3)."""
    r = block_ratios(y, season)
    ratios = r / float(r.mean()) if len(r) and r.mean() > 0 else r
    high = float(np.quantile(ratios, QUANTILE)) if len(ratios) else EXPECTED
    peak = float(ratios.max()) if len(ratios) else SEVERE
    expected = min(max(high, EXPECTED), MOST)
    severe = min(max(peak, SEVERE, expected * SEVERE_OVER_EXPECTED), MOST)
    return expected, severe


def block_ratios(y: Floats, season: int) -> Floats:
    """Each season-long block's total over the mean day of the `SEASONS` seasons before it x days."""
    before = SEASONS * season
    if len(y) < before + season:
        return np.zeros(0)
    blocks = sliding_window_view(y[before:], season).sum(axis=1)
    past = sliding_window_view(y[: len(y) - season], before).mean(axis=1) * season
    has = past > 0
    return np.asarray(blocks[has] / past[has], dtype=np.float64)
