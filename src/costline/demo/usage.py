"""When the demo organization's resources run, and how much metered volume they consume.

Shapes follow the workloads: training clusters run steadily in multi-day runs, inference pools follow
a diurnal traffic curve, batch jobs come in bursts. Randomness comes from a `random.Random` the caller
seeds; only `random()` and `randint()` are used and the curve is a literal table (no libm), so the
same seed gives the same series on every machine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from random import Random
from typing import Literal

HOURS_PER_DAY = 24

# Relative traffic by hour of day (UTC) of a US-centred product: trough ~07 UTC, peak ~17 UTC.
DIURNAL: tuple[float, ...] = (
    0.55, 0.46, 0.38, 0.32, 0.27, 0.24, 0.22, 0.21, 0.24, 0.31, 0.42, 0.55,
    0.67, 0.79, 0.89, 0.96, 1.00, 1.00, 0.98, 0.94, 0.88, 0.80, 0.71, 0.63,
)  # fmt: skip
WEEKEND_TRAFFIC = 0.72  # Saturday and Sunday traffic relative to a weekday


@dataclass(frozen=True)
class Always:
    """Runs every hour from `start_day` (inclusive) to `end_day` (exclusive, None = to the end)."""

    start_day: int = 0
    end_day: int | None = None


@dataclass(frozen=True)
class Runs:
    """Multi-day runs separated by gaps (training, fine-tuning); resources of one `group` run together."""

    group: str
    duty: float  # long-run share of hours running
    min_days: float
    max_days: float


@dataclass(frozen=True)
class Pool:
    """An autoscaled group (inference endpoint): its instance count follows the diurnal curve."""

    name: str
    min_count: int
    max_count: int
    growth_per_day: float = 0.002


@dataclass(frozen=True)
class Slot:
    """The `index`-th instance of a pool: it runs in the hours the pool has more than `index` instances."""

    pool: Pool
    index: int


@dataclass(frozen=True)
class Bursts:
    """Batch jobs: on a share `per_day` of days a burst of `min_hours`..`max_hours` starts.

    `start_hour` fixes the start (a nightly job); None picks one at random. One `group` bursts together.
    """

    group: str
    per_day: float
    min_hours: int
    max_hours: int
    start_hour: int | None = None
    weekdays_only: bool = False


Activity = Always | Runs | Slot | Bursts


@dataclass(frozen=True)
class Volume:
    """Daily metered volume relative to the meter's `per_day` quantity.

    `flat`: exactly 1 (a fixed fee); `steady`: slow growth with small noise (storage, logs);
    `traffic`: weekday/weekend swing with noise (tokens, egress); `bursty`: a low floor with multi-day
    bursts (batch embeddings, reindexing).
    """

    pattern: Literal["flat", "steady", "traffic", "bursty"]
    growth_per_day: float = 0.0


def _uniform(rng: Random, low: float, high: float) -> float:
    return low + (high - low) * rng.random()


def _is_weekend(start: dt.date, day: int) -> bool:
    return (start + dt.timedelta(days=day)).weekday() >= 5


def always_hours(activity: Always, days: int) -> list[bool]:
    end = days if activity.end_day is None else min(days, activity.end_day)
    start = max(0, activity.start_day)
    return [start * HOURS_PER_DAY <= h < end * HOURS_PER_DAY for h in range(days * HOURS_PER_DAY)]


def run_hours(runs: Runs, days: int, rng: Random) -> list[bool]:
    """Alternate runs and gaps; the mean gap is set so the long-run duty cycle is `runs.duty`."""
    hours = days * HOURS_PER_DAY
    out = [False] * hours
    mean_run = (runs.min_days + runs.max_days) / 2
    mean_gap = mean_run * (1 - runs.duty) / runs.duty
    t = int(_uniform(rng, 0, mean_gap) * HOURS_PER_DAY)
    while t < hours:
        length = int(_uniform(rng, runs.min_days, runs.max_days) * HOURS_PER_DAY)
        for h in range(t, min(hours, t + length)):
            out[h] = True
        gap = _uniform(rng, 0.5 * mean_gap, 1.5 * mean_gap)
        t += length + max(1, int(gap * HOURS_PER_DAY))
    return out


def pool_counts(pool: Pool, days: int, start: dt.date, rng: Random) -> list[int]:
    """The pool's instance count in every hour: min + (max - min) x traffic, with noise."""
    counts: list[int] = []
    span = pool.max_count - pool.min_count
    for day in range(days):
        week = WEEKEND_TRAFFIC if _is_weekend(start, day) else 1.0
        growth = 1.0 + pool.growth_per_day * day
        for hour in range(HOURS_PER_DAY):
            level = DIURNAL[hour] * week * growth * _uniform(rng, 0.9, 1.1)
            count = pool.min_count + int(span * level + 0.5)
            counts.append(max(pool.min_count, min(pool.max_count, count)))
    return counts


def burst_hours(bursts: Bursts, days: int, start: dt.date, rng: Random) -> list[bool]:
    hours = days * HOURS_PER_DAY
    out = [False] * hours
    for day in range(days):
        fires = rng.random() < bursts.per_day
        length = rng.randint(bursts.min_hours, bursts.max_hours)
        first = bursts.start_hour if bursts.start_hour is not None else rng.randint(0, 23)
        if not fires or (bursts.weekdays_only and _is_weekend(start, day)):
            continue
        begin = day * HOURS_PER_DAY + first
        for h in range(begin, min(hours, begin + length)):
            out[h] = True
    return out


def daily_levels(volume: Volume, days: int, start: dt.date, rng: Random) -> list[float]:
    """One level per day (1.0 = the meter's nominal `per_day`)."""
    levels: list[float] = []
    burst_left = 0
    burst_size = 1.0
    for day in range(days):
        growth = 1.0 + volume.growth_per_day * day
        if volume.pattern == "flat":
            levels.append(1.0)
        elif volume.pattern == "steady":
            levels.append(growth * _uniform(rng, 0.98, 1.02))
        elif volume.pattern == "traffic":
            week = WEEKEND_TRAFFIC if _is_weekend(start, day) else 1.0
            levels.append(growth * week * _uniform(rng, 0.88, 1.12))
        else:
            if burst_left == 0 and rng.random() < 0.12:
                burst_left = rng.randint(1, 3)
                burst_size = _uniform(rng, 3.0, 6.0)
            level = burst_size if burst_left else _uniform(rng, 0.15, 0.35)
            burst_left = max(0, burst_left - 1)
            levels.append(growth * level)
    return levels
