"""Where each budget stands: spend so far, thresholds crossed, burn rate, period-end forecast.

`evaluate` (`costline.budgets.evaluate`) asks the engine for one small table (daily cost per budget scope over the periods in
question and the forecast history), then works in Python over those few hundred numbers:

- **spent**: the cost (effective by default: commitments amortized) of the lines in the budget's
  scope charged from the period's start to the end of `as_of`;
- **crossed**: each threshold with the first day the running total reached it;
- **burn rate**: the last 7 days' average daily cost over the rate the budget allows (amount /
  days in the period): 2 means spending twice as fast as the budget lasts;
- **forecast**: the period-end total as month-to-date actuals plus the daily forecast of the days
  left (`costline.forecast`), with P10/P50/P90;
- **days to exhaustion**: at the last 7 days' rate, how long what is left lasts (0 once spent);
- **forecast check**: the period-end forecast made at the midpoint of the last closed period (and
  of the current one, once past it) against what was spent: a miss when the total landed outside
  its P10-P90 (`costline.budgets.checks`).

`budget_findings` turns them into findings: one per threshold crossed per period, one when the
burn rate passes the budget's `burn_rate`, one when the P50 forecast runs over the amount, each
with the action that brings the budget back within its amount. Each is keyed by budget, period
and signal, so evaluating again updates it. Only what needs someone is open: crossings under 90%
are the period's digest (`costline.budgets.digest`), a lower crossing is superseded by a higher
one, and a closed period's findings are resolved.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.rules import Rules, derive_lines, select
from costline.budgets.periods import Period
from costline.clock import Clock
from costline.config import Budget
from costline.errors import ConfigError
from costline.ledger import fetch
from costline.ledger.findings import resolved_because
from costline.model import Finding, FindingKind, FindingStatus, Window

HISTORY_DAYS = 91  # days of daily cost a forecast learns from
BURN_DAYS = 7
DAY = dt.timedelta(days=1)
CENT = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Projection:
    """A period-end total: P10, P50 and P90, and the model that made it."""

    p10: Decimal
    p50: Decimal
    p90: Decimal
    model: str


@dataclass(frozen=True)
class ForecastCheck:
    """The period-end forecast made at a period's midpoint, against what was spent."""

    period: Period
    as_of: dt.date  # the last day that forecast knew: the period's midpoint
    projection: Projection
    actual: Decimal  # the period's total; its spend so far while it runs
    closed: bool

    @property
    def miss(self) -> str | None:
        """`2026-10: over P90 by 17.0%` when the total landed outside P10-P90 (a running period
        only misses once its spend so far is past the P90); None otherwise."""
        p = self.projection
        if self.actual > p.p90:
            side, by = "over P90", self.actual - p.p90
        elif self.closed and self.actual < p.p10:
            side, by = "under P10", p.p10 - self.actual
        else:
            return None
        bound = p.p90 if side == "over P90" else p.p10
        size = f"by {by / bound * 100:.1f}%" if bound else f"by ${by:,.2f}"
        return f"{self.period}{'' if self.closed else ' so far'}: {side} {size}"

    def row(self, budget: str) -> dict[str, Any]:
        p = self.projection
        return {"budget": budget, "period": str(self.period), "forecast_as_of": self.as_of,
                "forecast_p10_usd": p.p10, "forecast_p50_usd": p.p50, "forecast_p90_usd": p.p90,
                "actual_usd": self.actual.quantize(CENT), "closed": self.closed,
                "miss": self.miss}  # fmt: skip


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period: Period
    as_of: dt.date  # the last day counted
    spent: Decimal
    crossed: tuple[tuple[Decimal, dt.date], ...]  # (threshold %, first day at or past it)
    daily_rate: Decimal  # average of the last BURN_DAYS days (fewer at a period's start)
    spent_out_on: dt.date | None  # the first day the running total reached the amount
    projection: Projection | None = None  # None when the period is over or not forecast
    checks: tuple[ForecastCheck, ...] = ()  # mid-period forecasts against what was spent

    @property
    def amount(self) -> Decimal:
        return self.budget.amount_usd

    @property
    def used_pct(self) -> Decimal:
        return (self.spent / self.amount * 100).quantize(Decimal("0.1"))

    @property
    def days_left(self) -> int:
        """Days of the period after `as_of`."""
        return max(0, (self.period.end - self.as_of).days - 1)

    @property
    def burn_rate(self) -> Decimal | None:
        allowed = self.amount / self.period.days
        return (self.daily_rate / allowed).quantize(Decimal("0.01")) if allowed else None

    @property
    def days_to_exhaustion(self) -> int | None:
        """0 once the budget is spent; None when it will not run out within the period at
        that rate, or nothing is being spent."""
        left = self.amount - self.spent
        if left <= 0:
            return 0
        if self.daily_rate <= 0 or left / self.daily_rate > self.days_left:
            return None
        return math.ceil(left / self.daily_rate)

    @property
    def exhausted_on(self) -> dt.date | None:
        """The day the running total reached the amount, or will at the recent rate."""
        if self.spent_out_on is not None:
            return self.spent_out_on
        days = self.days_to_exhaustion
        return self.as_of + dt.timedelta(days=days) if days else None

    @property
    def state(self) -> str:
        if self.spent >= self.amount:
            return "over"
        if self.projection is not None and self.projection.p50 > self.amount:
            return "forecast over"
        rate = self.budget.burn_rate
        burn = self.burn_rate
        if rate is not None and burn is not None and burn >= rate and self.days_left:
            return "burning fast"
        return "ok"

    def row(self) -> dict[str, Any]:
        p = self.projection
        # A period that is over ends where it stands; a running one unforecast is unknown.
        final = self.spent.quantize(CENT) if self.days_left == 0 else None
        return {
            "budget": self.budget.name,
            "scope": str(self.budget.scope) or "everything",
            "period": str(self.period),
            "amount_usd": self.amount,
            "spent_usd": self.spent.quantize(CENT),
            "used_pct": self.used_pct,
            "state": self.state,
            "thresholds_crossed": [f"{pct}% on {day}" for pct, day in self.crossed],
            "burn_rate": self.burn_rate,
            "forecast_p10_usd": p.p10 if p else final,
            "forecast_p50_usd": p.p50 if p else final,
            "forecast_p90_usd": p.p90 if p else final,
            "forecast_model": p.model if p else None,
            "days_left": self.days_left,
            "days_to_exhaustion": self.days_to_exhaustion,
            "exhausted_on": self.exhausted_on,
            "forecast_miss": "; ".join(c.miss for c in self.checks if c.miss) or None,
        }


def daily_spend(
    lines: ibis.Table,
    budgets: Sequence[Budget],
    first: dt.date,
    last: dt.date,
    *,
    rules: Rules | None = None,
    cost: str = "EffectiveCost",
) -> dict[str, dict[dt.date, Decimal]]:
    """budget name -> day -> cost of the lines in its scope, over [first, last], one query."""
    derived = derive_lines(lines, rules)
    derived = derived.filter(derived.ChargePeriodStart >= _at(first),
                             derived.ChargePeriodStart < _at(last) + DAY)  # fmt: skip
    parts = []
    for i, b in enumerate(budgets):
        try:
            scoped = select(derived, b.scope)
        except KeyError as exc:
            raise ConfigError(
                f"budgets[{i}] ({b.name}).scope: {exc.args[0]!r} is not a dimension of cost "
                "lines; use team, project, environment, model, endpoint, cost_domain, "
                "cost_layer, provider, service, account, region, usage_type or a FOCUS column"
            ) from None
        day = scoped.ChargePeriodStart.date().name("day")
        parts.append(scoped.group_by(day).aggregate(cost=scoped[cost].sum())
                     .mutate(budget=ibis.literal(b.name)))  # fmt: skip
    out: dict[str, dict[dt.date, Decimal]] = {b.name: {} for b in budgets}
    if not parts:
        return out
    union = functools.reduce(lambda x, y: x.union(y, distinct=False), parts)
    for r in fetch.rows(union):
        out[r["budget"]][r["day"]] = r["cost"] or ZERO
    return out


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def status_of(budget: Budget, period: Period, as_of: dt.date,
              daily: dict[dt.date, Decimal]) -> BudgetStatus:  # fmt: skip
    """The budget's status in `period`, counting days up to `as_of` (within the period)."""
    last = min(as_of, period.end - DAY)
    running = ZERO
    crossed: list[tuple[Decimal, dt.date]] = []
    pending = list(budget.thresholds)
    spent_out_on = None
    for day in _days(period.start, last):
        running += daily.get(day, ZERO)
        if spent_out_on is None and running >= budget.amount_usd:
            spent_out_on = day
        while pending and running >= budget.amount_usd * pending[0] / 100:
            crossed.append((pending.pop(0), day))
    recent_first = max(period.start, last - dt.timedelta(days=BURN_DAYS - 1))
    recent = _days(recent_first, last)
    rate = sum((daily.get(d, ZERO) for d in recent), ZERO) / len(recent) if recent else ZERO
    return BudgetStatus(budget, period, last, running, tuple(crossed), rate.quantize(CENT),
                        spent_out_on)  # fmt: skip


def _with_projections(
    statuses: list[BudgetStatus],
    daily: dict[str, dict[dt.date, Decimal]],
    as_of: dt.date,
    data_start: dt.date | None,
) -> list[BudgetStatus]:
    """Statuses of periods still running get period-end forecasts, all in one batch."""
    from costline.forecast.models import Series, forecast
    from costline.forecast.period import period_end

    def running(s: BudgetStatus) -> bool:
        return s.days_left > 0 and s.as_of == as_of

    current = [s for s in statuses if running(s)]
    if not current:
        return statuses
    start = max(as_of - dt.timedelta(days=HISTORY_DAYS - 1), data_start or dt.date.min)
    names = sorted({s.budget.name for s in current})
    series = [
        Series(name, start, tuple(float(daily[name].get(d, ZERO)) for d in _days(start, as_of)))
        for name in names
    ]
    horizon = max(s.days_left for s in current)
    fcs = {fc.key: fc for fc in forecast(series, horizon)}
    out = []
    for s in statuses:
        fc = fcs.get(s.budget.name)
        if running(s) and fc is not None:
            q = period_end(float(s.spent), fc, s.period.end - DAY)
            projection = Projection(p10=_money(q.p10), p50=_money(q.p50), p90=_money(q.p90),
                                    model=fc.model)  # fmt: skip
            s = dataclasses.replace(s, projection=projection)
        out.append(s)
    return out


def _money(value: float) -> Decimal:
    return Decimal(repr(max(value, 0.0))).quantize(CENT)


# -- findings -------------------------------------------------------------------------------------


DIGEST_BELOW = Decimal(90)  # crossings under this percent go to the period's digest
MONTH_DAYS = 30  # monthly savings = a daily excess x 30


def _severity(pct: Decimal) -> str:
    return "critical" if pct >= 100 else "warning" if pct >= 90 else "info"


def hold_action(s: BudgetStatus) -> dict[str, Any]:
    """What brings the budget back within its amount, and the monthly savings it brings: hold the
    rest of the period to what is left, or (spent out, or the period over) bring the daily rate
    back to what the budget allows; when the rate is already there, find the earlier overspend."""
    b, rate = s.budget, s.daily_rate
    where = f"{b.name} ({b.scope or 'everything'})"
    recent = f"${rate:,} a day over the last {BURN_DAYS} days"
    running = bool(s.days_left) and s.spent < b.amount_usd
    if running:
        target = (b.amount_usd - s.spent) / s.days_left
        text = (f"Hold {where} to ${target:,.2f} a day for the {s.days_left} day(s) left of "
                f"{s.period} ({recent}) to end within ${b.amount_usd:,}, or raise amount_usd")  # fmt: skip
    else:
        target = b.amount_usd / s.period.days
        text = (f"Bring {where} back to the ${target:,.2f} a day its budget allows ({recent}): "
                "`costline report showback` names its largest costs; or raise amount_usd to what "
                "it needs")  # fmt: skip
    if rate <= target:
        text = (f"{where} is within ${target:,.2f} a day ({recent}): keep it there to end "
                f"{s.period} within ${b.amount_usd:,}" if running else
                f"Find what put {where} ${max(s.spent - b.amount_usd, ZERO):,.2f} over earlier in "
                f"{s.period} (its {recent} are within the ${target:,.2f} a day it allows): "
                "`costline report showback` names its largest costs; or raise amount_usd")  # fmt: skip
    saving = (rate - target) * MONTH_DAYS
    return {"text": text,
            "estimated_monthly_savings_usd": saving.quantize(CENT) if saving > 0 else None}  # fmt: skip


def budget_findings(
    statuses: Sequence[BudgetStatus], *, clock: Clock, rules: Rules | None = None
) -> list[Finding]:
    """One finding per threshold crossed, per burn-rate alarm, per forecast overrun.

    Open are only what needs someone now: in each budget's current period, its highest crossing
    at or over `DIGEST_BELOW` percent, the burn-rate alarm and the forecast overrun. The rest come
    resolved, with the reason in `evidence["resolved_reason"]`: crossings under 90% (they are in
    the period's digest, `costline.budgets.digest`), a crossing a higher one supersedes, and every
    finding of a period that is closed (not its budget's latest)."""
    rules = rules or Rules()
    latest = {id(s) for s in current(statuses)}
    out: list[Finding] = []
    for s in statuses:
        b = s.budget
        flat = {d: v[0] for d, v in b.scope.root.items() if v}
        owner = rules.owner_of(flat) or flat.get("team")
        common: dict[str, Any] = {"scope": {"budget": b.name}, "clock": clock, "owner": owner,
                  "window": Window(start=_at(s.period.start), end=_at(s.period.end))}  # fmt: skip
        found = _crossings(s, common)
        if s.days_left and s.spent < b.amount_usd:
            found += _early_warnings(s, common)
        if id(s) not in latest:
            found = [closed(f, f"its period {s.period} is closed") for f in found]
        out.extend(found)
    return out


def closed(finding: Finding, reason: str) -> Finding:
    """The finding resolved at birth, with why (stored ones it meets are resolved too)."""
    if finding.status is FindingStatus.RESOLVED:
        return finding
    return resolved_because(finding, reason, finding.last_seen)


def _base(s: BudgetStatus) -> dict[str, Any]:
    b = s.budget
    return {
        "budget": b.name,
        "scope": dict(b.scope.root),
        "period": str(s.period),
        "amount_usd": str(b.amount_usd),
        "spent_usd": str(s.spent.quantize(CENT)),
        "used_pct": str(s.used_pct),
        "as_of": s.as_of.isoformat(),
        "burn_rate": str(s.burn_rate) if s.burn_rate is not None else None,
        "forecast_p50_usd": str(s.projection.p50) if s.projection else None,
    }


def _crossings(s: BudgetStatus, common: dict[str, Any]) -> list[Finding]:
    """One finding per threshold crossed; only the highest at or over 90% open."""
    b = s.budget
    top = s.crossed[-1][0] if s.crossed else None
    out = []
    for pct, day in s.crossed:
        over = max(s.spent - b.amount_usd, ZERO).quantize(CENT)
        f = Finding.new(
            kind=FindingKind.BUDGET_THRESHOLD, dedup_key=f"{s.period}:{pct}%",
            title=f"Budget {b.name} passed {pct}% in {s.period}",
            severity=_severity(pct),
            summary=f"{b.name} ({b.scope or 'everything'}) has spent ${s.spent:,.2f} of "
            f"${b.amount_usd:,} in {s.period} ({s.used_pct}%); it reached {pct}% on {day}"
            + (f", ${over:,} over" if over else "") + ".",
            impact_usd=over if pct >= 100 else None,
            evidence={**_base(s), "signal": "threshold", "threshold_pct": str(pct),
                      "crossed_on": day.isoformat()},
            actions=[hold_action(s)],
            **common,
        )  # fmt: skip
        if pct < DIGEST_BELOW:
            f = closed(f, f"under {DIGEST_BELOW}%: in the budget digest of {s.period}")
        elif pct != top:
            f = closed(f, f"superseded by its {top}% crossing")
        out.append(f)
    return out


def _early_warnings(s: BudgetStatus, common: dict[str, Any]) -> list[Finding]:
    """The burn-rate alarm and the forecast overrun of a running period not yet spent out."""
    b, out = s.budget, []
    burn = s.burn_rate
    if b.burn_rate is not None and burn is not None and burn >= b.burn_rate:
        at_rate = (s.spent + s.daily_rate * s.days_left - b.amount_usd).quantize(CENT)
        out.append(Finding.new(
            kind=FindingKind.BUDGET_THRESHOLD, dedup_key=f"{s.period}:burn",
            title=f"Budget {b.name} is burning {burn}x as fast as it allows",
            severity="warning",
            summary=f"{b.name} spent ${s.daily_rate:,} a day over the last {BURN_DAYS} "
            f"days, {burn}x the ${b.amount_usd / s.period.days:,.2f} a day it allows"
            + (f"; at that rate it runs out in {s.days_to_exhaustion} day(s), on "
               f"{s.exhausted_on}." if s.days_to_exhaustion else "."),
            impact_usd=max(at_rate, ZERO),
            evidence={**_base(s), "signal": "burn_rate", "daily_rate_usd": str(s.daily_rate),
                      "days_to_exhaustion": s.days_to_exhaustion},
            actions=[hold_action(s)],
            **common,
        ))  # fmt: skip
    p = s.projection
    if b.forecast_alert and p is not None and p.p50 > b.amount_usd:
        out.append(Finding.new(
            kind=FindingKind.BUDGET_THRESHOLD, dedup_key=f"{s.period}:forecast",
            title=f"Budget {b.name} is forecast to end {s.period} over",
            severity="warning",
            summary=f"{b.name} is forecast to end {s.period} at ${p.p50:,} (P10 ${p.p10:,}"
            f", P90 ${p.p90:,}) against ${b.amount_usd:,}: ${p.p50 - b.amount_usd:,} over.",
            impact_usd=p.p50 - b.amount_usd,
            evidence={**_base(s), "signal": "forecast", "forecast_p10_usd": str(p.p10),
                      "forecast_p90_usd": str(p.p90), "model": p.model},
            actions=[hold_action(s)],
            **common,
        ))  # fmt: skip
    return out


def current(statuses: Sequence[BudgetStatus]) -> list[BudgetStatus]:
    """Each budget's latest period only."""
    latest: dict[str, BudgetStatus] = {}
    for s in statuses:
        if s.budget.name not in latest or s.period.start > latest[s.budget.name].period.start:
            latest[s.budget.name] = s
    return list(latest.values())
