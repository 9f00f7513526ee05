"""Budget forecasts checked against what happened: did the spend land inside the band forecast
at mid-period?

For each budget, the last closed period (the one before the current) and the current one once
past its midpoint are checked: the period-end forecast is made again as `costline budgets --as-of
<midpoint>` made it (the spend to the midpoint, the forecast learning only from days up to it) and
set against the period's total, or, while the period runs, its spend so far. Outside P10-P90 is a
**miss** (`ForecastCheck.miss`: "2026-10: over P90 by 17.0%"), shown by `costline budgets`. A
band that misses one period in five is honest; one that misses most periods is not.

One forecast per budget and period checked, all budgets sharing a midpoint in one batch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from costline.budgets.periods import Period, period_of
from costline.budgets.status import (
    DAY,
    ZERO,
    BudgetStatus,
    ForecastCheck,
    _days,
    _with_projections,
    current,
    status_of,
)
from costline.config import Budget


def midpoint(period: Period) -> dt.date:
    """The last day a mid-period forecast knows: the 15th of a 30- or 31-day month."""
    return period.start + dt.timedelta(days=period.days // 2 - 1)


def checked_periods(budget: Budget, latest: Period, as_of: dt.date) -> list[Period]:
    """The periods whose mid-period forecast can be checked on `as_of`, oldest first: the one
    before `latest` (calendar periods) and `latest` itself, each once `as_of` is past its
    midpoint."""
    periods = [latest]
    if budget.period != "custom":
        periods.insert(0, period_of(budget.period, latest.start - DAY))
    return [p for p in periods if p.days >= 2 and midpoint(p) < as_of]


def first_day_checked(budgets: Sequence[Budget], as_of: dt.date, history_days: int) -> dt.date:
    """The first day of spend the checks on `as_of` read (the forecasts' history included)."""
    from costline.budgets.periods import budget_period

    firsts = [as_of]
    for b in budgets:
        latest = budget_period(b, as_of)
        for p in checked_periods(b, latest, as_of) if latest else ():
            firsts.append(midpoint(p) - dt.timedelta(days=history_days - 1))
    return min(firsts)


def with_checks(
    statuses: list[BudgetStatus],
    daily: dict[str, dict[dt.date, Decimal]],
    as_of: dt.date,
    data_start: dt.date | None,
) -> list[BudgetStatus]:
    """The statuses, each budget's latest with its forecast checks. A period whose midpoint is
    before the ledger's first day (`data_start`) is not checked: nothing was known then."""
    latest = {id(s) for s in current(statuses)}
    at: dict[dt.date, list[BudgetStatus]] = {}
    for s in statuses:
        if id(s) not in latest:
            continue
        for p in checked_periods(s.budget, s.period, as_of):
            mid = midpoint(p)
            if data_start is None or data_start <= mid:
                at.setdefault(mid, []).append(status_of(s.budget, p, mid, daily[s.budget.name]))
    checks: dict[str, list[ForecastCheck]] = {}
    for mid, then in sorted(at.items()):
        for m in _with_projections(then, daily, mid, data_start):
            if m.projection is None:
                continue
            last = min(as_of, m.period.end - DAY)
            spend = daily[m.budget.name]
            actual = sum((spend.get(d, ZERO) for d in _days(m.period.start, last)), ZERO)
            closed = last == m.period.end - DAY
            checks.setdefault(m.budget.name, []).append(
                ForecastCheck(m.period, mid, m.projection, actual, closed)
            )
    return [
        dataclasses.replace(s, checks=tuple(checks.get(s.budget.name, ())))
        if id(s) in latest
        else s
        for s in statuses
    ]
