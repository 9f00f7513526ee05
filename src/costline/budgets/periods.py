"""The budget period a day falls in: calendar month, quarter or year, or a custom span.

>>> import datetime as dt
>>> period_of("quarter", dt.date(2026, 11, 22))
Period(start=datetime.date(2026, 10, 1), end=datetime.date(2027, 1, 1))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from costline.config import Budget


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        last = self.end - dt.timedelta(days=1)
        if self.start.day == 1 and self.end.day == 1:
            months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
            if months == 1:
                return f"{self.start:%Y-%m}"
            if months == 3:
                return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
            if months == 12 and self.start.month == 1:
                return str(self.start.year)
        return f"{self.start}..{last}"


def _month_start(year: int, month: int) -> dt.date:
    """The first day of `month` (which may run past 12 or below 1) of `year`."""
    year += (month - 1) // 12
    return dt.date(year, (month - 1) % 12 + 1, 1)


def period_of(kind: str, day: dt.date) -> Period:
    """The calendar month, quarter or year holding `day`."""
    if kind == "month":
        first = dt.date(day.year, day.month, 1)
        return Period(first, _month_start(day.year, day.month + 1))
    if kind == "quarter":
        month = (day.month - 1) // 3 * 3 + 1
        return Period(dt.date(day.year, month, 1), _month_start(day.year, month + 3))
    if kind == "year":
        return Period(dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1))
    raise ValueError(f"unknown period {kind!r}: month, quarter, year or custom")


def budget_period(budget: Budget, day: dt.date) -> Period | None:
    """The budget's period holding `day`; None when a custom period does not hold it."""
    if budget.period == "custom":
        assert budget.start is not None and budget.end is not None
        return Period(budget.start, budget.end) if budget.start <= day < budget.end else None
    return period_of(budget.period, day)


def periods_between(budget: Budget, first: dt.date, last: dt.date) -> Iterator[Period]:
    """The budget's periods that hold any day of [first, last], oldest first."""
    if budget.period == "custom":
        assert budget.start is not None and budget.end is not None
        if budget.start <= last and budget.end > first:
            yield Period(budget.start, budget.end)
        return
    day = first
    while day <= last:
        period = period_of(budget.period, day)
        yield period
        day = period.end
