"""Robust, seasonality-aware anomaly detection on one regular series: `scan`.

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

    >>> flat = [100.0] * 50 + [400.0, 380.0] + [100.0] * 5
    >>> [(a.start, a.end, round(a.impact)) for a in scan(flat, Settings(season=7))]
    [(50, 51, 580)]
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

MAD_TO_SIGMA = 1.4826


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


def expected_at(values: Sequence[float], t: int, s: Settings) -> float:
    same_phase = [
        values[t - k * s.season] for k in range(1, s.seasons + 1) if t - k * s.season >= 0
    ]
    return (
        statistics.median(same_phase)
        if same_phase
        else statistics.median(values[max(0, t - s.history) : t])
    )


def scan(values: Sequence[float], settings: Settings | None = None) -> list[Anomaly]:
    """The anomalies of `values` (oldest first), per the module's method."""
    s = settings or Settings()
    found: list[Anomaly] = []
    first = max(s.warmup, s.history, s.season * s.seasons)
    open_: Anomaly | None = None
    for t in range(first, len(values)):
        history = values[t - s.history : t]
        observed = values[t]
        expected = expected_at(values, t, s)
        excess = observed - expected
        if excess < s.min_impact or (expected <= 0 and observed <= 0):
            continue
        if expected > 0 and excess / expected * 100 < s.min_pct:
            continue
        center = statistics.median(history)
        mad = statistics.median(abs(v - center) for v in history) * MAD_TO_SIGMA
        z = excess / mad if mad > 0 else float("inf")
        if z < s.z:
            continue
        continuing = open_ is not None and t - open_.end <= s.gap + 1
        if not continuing:
            past = values[max(0, t - s.peaks) : t]
            spikes = sum(1 for v in past if v - center > max(s.z * mad, s.min_impact))
            margin = s.spiky_new_high if spikes >= s.spiky else s.new_high
            if observed <= (1 + margin) * max(past):
                continue
        if continuing and open_ is not None:
            a = open_
        else:
            a = Anomaly(start=t, end=t)
            found.append(a)
            open_ = a
        a.end = t
        a.impact += excess
        a.observed += observed
        a.expected += expected
        a.peak_z = max(a.peak_z, z)
        a.points.append(t)
    return [a for a in found if a.impact >= s.min_total_impact]
