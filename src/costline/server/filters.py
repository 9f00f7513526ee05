"""The API's common query parameters: a half-open window of days and a scope selector.

Every data endpoint takes `start` and `end` (`YYYY-MM-DD`, end excluded) and any of the filter
dimensions (`team`, `project`, `environment`, `provider`, `service`, `region`, `model`,
`cost_domain`, `cost_layer`), each repeatable or written `a|b`. The dimensions become a
`costline.model.Selector`, which the analytics apply as Ibis expressions
(`costline.attribution.rules.select`): a user's value is a literal Ibis binds, never SQL text.
A parameter an endpoint does not take is refused (400), naming the ones it does; so is a bad day:
one that is not `YYYY-MM-DD`, one outside `EARLIEST_DAY` .. `LATEST_DAY` (the window arithmetic,
a day after `end` or a month before it, must stay within what a date can hold), or an `end` not
after `start`.

The default window is the month of the last billed day, up to the day after it.

Records that are not cost lines match a selector in their own way:

- a **finding** matches when every filtered dimension is in its scope with an accepted value
  (its owner standing in for a team it does not name);
- an **annotation** is kept unless it names a filtered dimension with another value (a deploy of
  one app is still a marker on a team's trend line);
- a **budget** is in the filters when each filtered dimension is one its scope constrains, to
  accepted values only; it *is* the filters' budget when, besides, its scope constrains nothing
  else (`overview.budget_usd` sums those, so overlapping budgets are not added up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from costline.errors import CostlineError
from costline.model import Selector

FILTER_DIMENSIONS = (
    "team",
    "project",
    "environment",
    "provider",
    "service",
    "region",
    "model",
    "cost_domain",
    "cost_layer",
)
DAY = dt.timedelta(days=1)
EARLIEST_DAY = dt.date(1970, 1, 1)
LATEST_DAY = dt.date(2100, 1, 1)  # an `end`: the day after 2099-12-31


class BadRequest(CostlineError, ValueError):
    """A query parameter is malformed or unknown; the API answers 400 with this message."""


@dataclass(frozen=True)
class Filters:
    """`start` and `end` as given (None: the default), and the selector of the dimensions."""

    start: dt.date | None = None
    end: dt.date | None = None
    selector: Selector = field(default_factory=Selector)

    @property
    def key(self) -> tuple[object, ...]:
        """A hashable form, for caches."""
        terms = tuple(sorted((d, tuple(sorted(v))) for d, v in self.selector.root.items()))
        return (self.start, self.end, terms)


@dataclass(frozen=True)
class Span:
    """A resolved window of whole UTC days: `[start, end)`."""

    start: dt.date
    end: dt.date

    @property
    def last(self) -> dt.date:
        return self.end - DAY

    def at(self) -> tuple[dt.datetime, dt.datetime]:
        """The window as UTC datetimes."""
        return _midnight(self.start), _midnight(self.end)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def parse_day(name: str, text: str | None) -> dt.date | None:
    """The day a query parameter names; None when it is absent or empty.

    >>> parse_day("start", "2026-10-01")
    datetime.date(2026, 10, 1)
    >>> parse_day("start", "9999-12-31")
    Traceback (most recent call last):
    costline.server.filters.BadRequest: start '9999-12-31' is out of range: give a day from 1970-01-01 to 2100-01-01
    """
    if text is None or not text.strip():
        return None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"{name} {text!r}: expected a day as YYYY-MM-DD") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise BadRequest(
            f"{name} {text!r} is out of range: give a day from {EARLIEST_DAY} to {LATEST_DAY}"
        )
    return day


def make_filters(
    start: str | None, end: str | None, dimensions: Mapping[str, Sequence[str] | None]
) -> Filters:
    """Filters from raw query values; `team=a&team=b|c` accepts a, b and c."""
    first, after = parse_day("start", start), parse_day("end", end)
    if first is not None and after is not None and first >= after:
        raise BadRequest(
            f"start {first} must be before end {after} (the window is [start, end): end is the "
            "day after the last day shown)"
        )
    terms: dict[str, list[str]] = {}
    for dimension, raw in dimensions.items():
        if dimension not in FILTER_DIMENSIONS:
            raise unknown("filter dimension", dimension, FILTER_DIMENSIONS)
        values = [v.strip() for text in raw or () for v in text.split("|") if v.strip()]
        if values:
            terms[dimension] = list(dict.fromkeys(values))
    return Filters(first, after, Selector.model_validate(terms))


def check_known(given: Iterable[str], known: Iterable[str]) -> None:
    """Refuse query parameters the endpoint does not take (a typo must not silently widen)."""
    allowed = set(known)
    for name in given:
        if name not in allowed:
            raise unknown("query parameter", name, sorted(allowed))


def unknown(what: str, name: str, known: Iterable[str]) -> BadRequest:
    return BadRequest(f"unknown {what} {name!r}; use one of: {', '.join(known)}")


def choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise BadRequest(f"{name}={value!r}: choose one of {', '.join(allowed)}")
    return value


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def resolve(filters: Filters, last: dt.date | None, today: dt.date) -> Span:
    """The window to show: the filters' days, else the month of `last` (the last day with data,
    else `today`) up to the day after it."""
    anchor = last or today
    end = filters.end
    if end is None:
        end = anchor + DAY
        if filters.start is not None and filters.start >= end:
            end = filters.start + DAY
    start = filters.start if filters.start is not None else month_start(end - DAY)
    return Span(start, end)


# -- matching records that are not cost lines ------------------------------------------------------


def finding_matches(selector: Selector, scope: Mapping[str, str], owner: str | None) -> bool:
    values: dict[str, object] = dict(scope)
    if owner is not None:
        values.setdefault("team", owner)
    return selector.matches(values)


def annotation_matches(selector: Selector, scope: Mapping[str, str]) -> bool:
    return all(
        dimension not in scope or scope[dimension] in accepted
        for dimension, accepted in selector.root.items()
    )


def budget_matches(selector: Selector, scope: Selector, *, exact: bool = False) -> bool:
    for dimension, accepted in selector.root.items():
        values = scope.values(dimension)
        if not values or not set(values) <= set(accepted):
            return False
    return not exact or set(scope.dimensions) == set(selector.dimensions)
