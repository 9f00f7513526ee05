"""The billing window's calendar, and each resource's usage series over it.

Every random draw comes from a `random.Random` seeded with the run's seed and a name (the resource
key, or the shared group or pool name), so series do not depend on the order resources are visited.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from random import Random

from costline.demo.org import Resource
from costline.demo.usage import (
    HOURS_PER_DAY,
    Always,
    Bursts,
    Runs,
    Slot,
    Volume,
    always_hours,
    burst_hours,
    daily_levels,
    pool_counts,
    run_hours,
)


def iso(at: dt.datetime) -> str:
    """ISO 8601 UTC with a `Z`, to the second: `2026-08-03T00:00:00Z`."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Month:
    key: str  # "2026-08"
    period_start: str  # BillingPeriodStart
    period_end: str  # BillingPeriodEnd
    days: int  # days in the calendar month


@dataclass(frozen=True)
class Timeline:
    """Hours and days of the window `[start, start + days)`, as ISO strings computed once."""

    start: dt.date
    days: int
    hour_marks: tuple[str, ...]  # days * 24 + 1 boundaries
    day_marks: tuple[str, ...]  # days + 1 boundaries
    months: tuple[Month, ...]  # calendar months the window touches, in order
    month_of_day: tuple[int, ...]  # index into `months` for every day

    @classmethod
    def of(cls, start: dt.date, days: int) -> Timeline:
        origin = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
        hours = days * HOURS_PER_DAY
        hour_marks = tuple(iso(origin + dt.timedelta(hours=h)) for h in range(hours + 1))
        day_marks = hour_marks[::HOURS_PER_DAY]
        months: list[Month] = []
        month_of_day: list[int] = []
        for d in range(days):
            date = start + dt.timedelta(days=d)
            key = f"{date.year:04d}-{date.month:02d}"
            if not months or months[-1].key != key:
                months.append(_month(date.year, date.month))
            month_of_day.append(len(months) - 1)
        return cls(start, days, hour_marks, day_marks, tuple(months), tuple(month_of_day))

    @property
    def hours(self) -> int:
        return self.days * HOURS_PER_DAY

    def month_span(self, index: int) -> tuple[str, str]:
        """The part of month `index` inside the window, as (ChargePeriodStart, ChargePeriodEnd)."""
        days = [d for d, m in enumerate(self.month_of_day) if m == index]
        return self.day_marks[days[0]], self.day_marks[days[-1] + 1]


def _month(year: int, month: int) -> Month:
    first = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    length = calendar.monthrange(year, month)[1]
    return Month(
        f"{year:04d}-{month:02d}", iso(first), iso(first + dt.timedelta(days=length)), length
    )


class UsageSeries:
    """Hourly activity and daily volume levels of resources, computed once per resource or group."""

    def __init__(self, timeline: Timeline, seed: int) -> None:
        self._timeline = timeline
        self._seed = seed
        self._groups: dict[str, list[bool]] = {}
        self._pools: dict[str, list[int]] = {}

    def _rng(self, name: str) -> Random:
        return Random(f"{self._seed}/{name}")

    def active(self, resource: Resource) -> list[bool]:
        """Whether the resource runs in each hour of the window."""
        usage = resource.usage
        days, start = self._timeline.days, self._timeline.start
        if isinstance(usage, Always):
            return always_hours(usage, days)
        if isinstance(usage, Slot):
            pool = usage.pool
            if pool.name not in self._pools:
                self._pools[pool.name] = pool_counts(
                    pool, days, start, self._rng(f"pool/{pool.name}")
                )
            return [count > usage.index for count in self._pools[pool.name]]
        if isinstance(usage, Runs | Bursts):
            if usage.group not in self._groups:
                rng = self._rng(f"group/{usage.group}")
                series = (
                    run_hours(usage, days, rng)
                    if isinstance(usage, Runs)
                    else burst_hours(usage, days, start, rng)
                )
                self._groups[usage.group] = series
            return self._groups[usage.group]
        raise TypeError(f"{resource.key}: a volume, not an activity")

    def levels(self, resource: Resource) -> list[float]:
        """The resource's daily volume level (1.0 = nominal) for each day of the window."""
        if not isinstance(resource.usage, Volume):
            raise TypeError(f"{resource.key}: an activity, not a volume")
        rng = self._rng(f"volume/{resource.key}")
        return daily_levels(resource.usage, self._timeline.days, self._timeline.start, rng)
