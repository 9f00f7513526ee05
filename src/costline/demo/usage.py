"""When the demo organization's resources run, and how much metered volume they consume.

Shapes follow the workloads: training clusters run steadily in multi-day runs, inference pools follow
a diurnal traffic curve, batch jobs come in bursts. Randomness comes from a `random.Random` the caller
seeds; only `random()` and `randint()` are used and the curve is a literal table (no libm), so the
same seed gives the same series on every machine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
class Office:
    """Requests of a tool used in office hours: weekdays from `start` (UTC hour) for `hours`
    hours at full level (half in the first and last hour), `weekend` of it in the same hours of
    Saturday and Sunday, `night` of it at every other hour."""

    start: int
    hours: int
    night: float
    weekend: float

    def level(self, at: dt.datetime) -> float:
        """The share of the weekday peak at `at`."""
        hour = (at.hour - self.start) % HOURS_PER_DAY
        if hour >= self.hours:
            return self.night
        edge = 0.5 if hour in (0, self.hours - 1) else 1.0
        return edge * (self.weekend if at.weekday() >= 5 else 1.0)


def traffic_key(seed: int, endpoint: str) -> str:
    """The draw key of an endpoint's per-minute requests (`office_minutes`)."""
    return f"{seed}/office/{endpoint}"


def office_minutes(office: Office, peak_rpm: float, hour: dt.datetime, key: str) -> list[int]:
    """Requests in each minute of the hour that starts at `hour` (UTC): `peak_rpm` x the hour's
    level, +-15% a minute; drawn from `key` and the hour, so every caller gets the same."""
    rng = Random(f"{key}/{int(hour.timestamp()) // 3600}")
    base = peak_rpm * office.level(hour)
    return [round(base * _uniform(rng, 0.85, 1.15)) for _ in range(60)]


@dataclass(frozen=True)
class Traits:
    """What the telemetry and the workload records show of a planted resource (`demo.waste`);
    a field left None takes its shape's default."""

    peak: float | None = None  # engine activity in its busiest hour (0-1)
    swing: float | None = None  # share of its load that follows the diurnal curve (the rest flat)
    fb_used_mib: int | None = None  # framebuffer used on each GPU
    office: Office | None = None  # office-hours traffic instead of the diurnal curve
    peak_rpm: float | None = None  # requests a minute at the peak (written per minute)
    checkpoint_min: int | None = None  # its jobs checkpoint this often (a Slurm comment tag)
    budget_usd: int | None = None  # its registry budget
    storage: tuple[str, ...] = ()  # the storage its runs declare in the registry


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


def stretches(active: Sequence[bool]) -> list[tuple[int, int]]:
    """Contiguous running stretches as (first hour, hour after the last)."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for h, on in enumerate([*active, False]):
        if on and start is None:
            start = h
        elif not on and start is not None:
            out.append((start, h))
            start = None
    return out


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
