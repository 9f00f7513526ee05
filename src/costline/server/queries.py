"""The API's data, one function per endpoint: Ibis in, plain dicts out (money as `Decimal`).

Every function takes a `Reader` (the server's view of the ledger, see `server.reader`) and the
request's `Filters`, asks the engine one or two questions and shapes the small answer in Python.
Cost figures come from the reader's daily cube, so the overview, spend by any dimension and the
cost forecast agree to the last digit with one another and with the cost lines. Telemetry views
(GPUs, tokens) read their own tables; filters those tables have no column for are listed in the
answer's `ignored_filters` rather than silently dropped. Nothing here knows about HTTP: `api.py`
turns these dicts into JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ibis

from costline.attribution.rules import scope_column, select
from costline.budgets.evaluate import evaluate
from costline.budgets.status import current
from costline.config import Budget
from costline.ledger import findings as ledger_findings
from costline.ledger.sql import bill_days, run, run_one
from costline.model import FindingKind, FindingStatus, Selector
from costline.money import MONEY_CONTEXT, total
from costline.server.filters import (
    DAY,
    FILTER_DIMENSIONS,
    BadRequest,
    Filters,
    Span,
    annotation_matches,
    budget_matches,
    choice,
    finding_matches,
    month_start,
    next_month,
    resolve,
)
from costline.server.reader import ALL, NONE_KEY, Reader, Slice

if TYPE_CHECKING:
    from costline.server.shared import Served

SPEND_BY = (*FILTER_DIMENSIONS, "owner")
GRANULARITIES = ("day", "week", "month")
COSTS = ("effective", "billed")
MOVER_DIMENSIONS = ("team", "project", "service", "model", "cost_domain")
TOP_MOVERS = 10
HISTORY_DAYS = 91  # days of daily cost the month-end forecast learns from
OTHER_KEY = "(other)"
CENT = Decimal("0.01")
ZERO = Decimal(0)
ACTIVE_ANOMALY_KINDS = (FindingKind.ANOMALY, FindingKind.SPIKE, FindingKind.THRESHOLD_BREACH)
ACTIVE_STATUSES = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)


# -- windows ---------------------------------------------------------------------------------------


def last_bill_day(reader: Reader) -> dt.date | None:
    """The last day any cost line is charged in; None for a ledger without bills."""

    return reader.cached("last_bill_day", None, lambda: bill_days(reader.cursor())[1])


def first_bill_day(reader: Reader) -> dt.date | None:
    """The first day any cost line is charged in; None for a ledger without bills."""
    return reader.cached("first_bill_day", None, lambda: bill_days(reader.cursor())[0])


def window(reader: Reader, filters: Filters) -> Span:
    """The filters' days, else the month of the last billed day up to the day after it."""
    return resolve(filters, last_bill_day(reader), reader.clock.now().date())


def _days(first: dt.date, end: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((end - first).days)]


def _cost(name: str) -> str:
    return choice("cost", name, COSTS)


def _cube(reader: Reader, filters: Filters, first: dt.date, end: dt.date) -> ibis.Table:
    c = select(reader.cube_table(), filters.selector)
    return c.filter(c.day >= first, c.day < end)


# -- health and dimensions -------------------------------------------------------------------------


def health(reader: Reader) -> dict[str, Any]:
    """The ledger's path, schema version and last billed day, read on this thread's cursor."""
    last = last_bill_day(reader)
    return {
        "status": "ok",
        "ledger": reader.path,
        "schema_version": reader.schema_version(),
        "last_bill_day": last,
    }


def dimensions(reader: Reader, filters: Filters) -> dict[str, list[str]]:
    """The values of each filter dimension present in the window (for the filter dropdowns)."""
    span = window(reader, filters)
    c = reader.cube_table()
    c = c.filter(c.day >= span.start, c.day < span.end)
    parts = [
        c.select(dimension=ibis.literal(d), value=scope_column(c, d)).distinct()
        for d in FILTER_DIMENSIONS
    ]
    union = parts[0].union(*parts[1:])
    out: dict[str, list[str]] = {d: [] for d in FILTER_DIMENSIONS}
    for r in union.to_pyarrow().to_pylist():
        if r["value"] is not None:
            out[r["dimension"]].append(r["value"])
    return {d: sorted(values) for d, values in out.items()}


# -- overview --------------------------------------------------------------------------------------


def overview(reader: Reader, filters: Filters, cost: str = "effective") -> dict[str, Any]:
    """Today and month to date against the budget, the month-end forecast, findings, top movers
    and the daily line; `as_of` is the last billed day in the window."""
    column = _cost(cost)
    span = window(reader, filters)
    last = last_bill_day(reader)
    as_of = min(last, span.last) if last is not None else span.last
    if as_of < span.start:
        as_of = span.last
    month0, month_end = month_start(as_of), next_month(as_of)
    daily = reader.slice(filters.selector, None, column)
    mtd = daily.total(ALL, month0, as_of + DAY)
    statuses = _finding_states(reader)
    matching = [s for s in statuses if finding_matches(filters.selector, s[2], s[3])]
    forecast_key = (filters.key[2], as_of, column)
    return {
        "as_of": as_of,
        "start": span.start,
        "end": span.end,
        "cost": cost,
        "today_usd": daily.total(ALL, as_of, as_of + DAY),
        "month_to_date_usd": mtd,
        "budget_usd": _budget_amount(reader.config.budgets, filters.selector, month0, month_end),
        "month_end_forecast": reader.cached_data(
            "month_end", forecast_key, lambda: _month_end(daily, as_of, month_end, mtd)
        ),
        "active_anomalies": sum(
            1 for k, st, _, _ in matching if k in ACTIVE_ANOMALY_KINDS and st in ACTIVE_STATUSES
        ),
        "open_findings": sum(1 for _, st, _, _ in matching if st == FindingStatus.OPEN),
        "top_movers": reader.cached_data(
            "movers", forecast_key, lambda: _movers(reader, filters.selector, column, as_of)
        ),
        # From the first billed day: a day before any bill is unknown, not $0.
        "daily": [
            {"day": d, "cost_usd": daily.total(ALL, d, d + DAY)}
            for d in _days(max(span.start, first_bill_day(reader) or span.start), as_of + DAY)
        ],
    }


def _previous(month0: dt.date) -> dt.date:
    return month_start(month0 - DAY)


def _budget_amount(
    budgets: Sequence[Budget], selector: Selector, first: dt.date, end: dt.date
) -> Decimal | None:
    """The month's part of every budget that is exactly the filters' scope; None when none is."""
    from costline.budgets.periods import periods_between

    amounts = []
    for b in budgets:
        if not budget_matches(selector, b.scope, exact=True):
            continue
        for period in periods_between(b, first, end - DAY):
            overlap = (min(period.end, end) - max(period.start, first)).days
            if overlap > 0:
                amounts.append(b.amount_usd * overlap / period.days)
    return total(amounts).quantize(CENT) if amounts else None


def _month_end(
    daily: Slice, as_of: dt.date, month_end: dt.date, mtd: Decimal
) -> dict[str, Any] | None:
    """Month to date plus the forecast of the days left, P10/P50/P90 (the actuals once it ends)."""
    from costline.forecast.models import Series, forecast
    from costline.forecast.period import period_end

    left = (month_end - as_of).days - 1
    if not daily.days or as_of < daily.first:
        return None
    if left <= 0:
        return {"p10": mtd, "p50": mtd, "p90": mtd, "model": "actual"}
    first = max(daily.first, as_of - dt.timedelta(days=HISTORY_DAYS - 1))
    values = tuple(float(daily.total(ALL, d, d + DAY)) for d in _days(first, as_of + DAY))
    [fc] = forecast([Series("total", first, values)], left)
    q = period_end(float(mtd), fc, month_end - DAY)
    return {"p10": _money(q.p10), "p50": _money(q.p50), "p90": _money(q.p90), "model": fc.model}


def _money(value: float) -> Decimal:
    return Decimal(repr(max(value, 0.0))).quantize(CENT)


def _movers(
    reader: Reader, selector: Selector, column: str, as_of: dt.date
) -> dict[str, list[dict[str, Any]]]:
    """The values whose cost moved most: the last 7 days against the 7 before, and the month to
    date against the same days of the month before (from each dimension's slice)."""
    month0 = month_start(as_of)
    before0 = _previous(month0)
    comparisons = {
        "week_over_week": ((as_of - dt.timedelta(days=6), as_of + DAY),
                           (as_of - dt.timedelta(days=13), as_of - dt.timedelta(days=6))),
        "month_over_month": ((month0, as_of + DAY),
                             (before0, min(before0 + (as_of - month0) + DAY, month0))),
    }  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in comparisons}
    for dimension in MOVER_DIMENSIONS:
        part = reader.slice(selector, dimension, column)
        for name, (now, before) in comparisons.items():
            a_all, b_all = part.totals(*now), part.totals(*before)
            for key, a in a_all.items():
                b = b_all[key]
                if a or b:
                    change = MONEY_CONTEXT.subtract(a, b)
                    pct = (change / b * 100).quantize(Decimal("0.1")) if b else None
                    out[name].append({"dimension": dimension, "value": key, "current_usd": a,
                                      "previous_usd": b, "change_usd": change,
                                      "change_pct": pct})  # fmt: skip
    for rows in out.values():
        rows.sort(key=lambda m: (-abs(m["change_usd"]), m["dimension"], m["value"]))
        del rows[TOP_MOVERS:]
    return out


# -- spend -----------------------------------------------------------------------------------------


def spend(
    reader: Reader,
    filters: Filters,
    *,
    by: str = "team",
    granularity: str = "day",
    cost: str = "effective",
    top: int = 20,
) -> dict[str, Any]:
    """Cost per period and value of `by`; past the `top` values by cost, the rest as `(other)`.
    Weeks start on Mondays and months on the 1st (the first period may begin before `start`);
    only the window's days are counted in each."""
    choice("by", by, SPEND_BY)
    choice("granularity", granularity, GRANULARITIES)
    part = reader.slice(filters.selector, by, _cost(cost))
    span = window(reader, filters)
    totals = part.totals(span.start, span.end)
    present = {k: v for k, v in totals.items() if v}
    kept = set(sorted(present, key=lambda k: (-present[k], k))[:top])
    rows = []
    for label, first, end in _periods(span, granularity):
        period: dict[str, Decimal] = {}
        for key, value in part.totals(first, end).items():
            if key in present and value:
                name = key if key in kept else OTHER_KEY
                period[name] = MONEY_CONTEXT.add(period.get(name, ZERO), value)
        ordered = sorted(period.items(), key=lambda kv: (-kv[1], kv[0]))
        rows += [{"period": label, "key": k, "cost_usd": v} for k, v in ordered]
    return {
        "by": by,
        "granularity": granularity,
        "cost": cost,
        "start": span.start,
        "end": span.end,
        "rows": rows,
        "total_usd": total(totals.values()),
    }


def _periods(span: Span, granularity: str) -> list[tuple[dt.date, dt.date, dt.date]]:
    """(label, first day, day after) of each day, week or month meeting the window, clipped."""
    out = []
    day = span.start
    while day < span.end:
        if granularity == "day":
            label, after = day, day + DAY
        elif granularity == "week":
            label = day - dt.timedelta(days=day.weekday())
            after = label + dt.timedelta(days=7)
        else:
            label, after = month_start(day), next_month(day)
        out.append((label, day, min(after, span.end)))
        day = min(after, span.end)
    return out


# -- budgets and forecasts -------------------------------------------------------------------------


def budgets(reader: Reader, filters: Filters) -> dict[str, Any]:
    """Each budget in the filters, in its period holding the window's last billed day."""
    last = last_bill_day(reader)
    matching = [b for b in reader.config.budgets if budget_matches(filters.selector, b.scope)]
    if last is None or not matching:
        return {"as_of": last, "rows": []}
    as_of = min(last, window(reader, filters).last)
    statuses = evaluate(reader.table("cost_lines"), matching, as_of, rules=reader.rules,
                        data_start=first_bill_day(reader), forecast=True)  # fmt: skip
    return {"as_of": as_of, "rows": [s.row() for s in current(statuses)]}


FORECAST_MONEY = ("last_day", "horizon_p10", "horizon_p50", "horizon_p90", "month_to_date",
                  "month_end_p10", "month_end_p50", "month_end_p90")  # fmt: skip


def forecast(
    reader: Reader,
    filters: Filters,
    *,
    metric: str = "cost_usd",
    by: str | None = None,
    horizon: int = 30,
    history: int = 180,
    top: int = 20,
) -> dict[str, Any]:
    """`costline forecast`'s rows: per value of `by`, the model, P10/P50/P90 over the horizon,
    the month's end and spike scenarios; dollars (metric cost_usd) as exact cents."""
    from costline.forecast.models import forecast as run_forecast
    from costline.forecast.signals import LEVELS, UnknownDimension, daily
    from costline.forecast.summary import forecast_rows, series_of

    last = _metric_last_day(reader, metric)
    if last is None:
        return {"metric": metric, "by": by, "horizon": horizon, "as_of": None, "rows": []}
    end = filters.end or last + DAY
    start = filters.start or end - dt.timedelta(days=history)
    if metric == "cost_usd":
        if by is not None:
            choice("by", by, SPEND_BY)
        c = _cube(reader, filters, start, end)
        key = scope_column(c, by).fill_null(NONE_KEY) if by else ibis.literal("all")
        expr = c.group_by(key=key, day=c.day).aggregate(value=c.effective.cast("float64").sum())
    else:
        tables = {n: reader.table(n) for n in ("cost_lines", "workloads", "metrics")}
        at = Span(start, end).at()
        try:
            expr = daily(metric, tables, *at, by=by, where=filters.selector, rules=reader.rules)
        except UnknownDimension as exc:
            raise BadRequest(f"by/filter {exc.args[0]!r}: not a dimension of {metric}") from None
    rows = expr.to_pyarrow().to_pylist()
    if not rows:
        return {"metric": metric, "by": by, "horizon": horizon, "as_of": end - DAY, "rows": []}
    series = series_of(rows, min(r["day"] for r in rows), end)
    series = sorted(series, key=lambda s: (-sum(s.values), s.key))[:top]
    out = forecast_rows(series, run_forecast(series, horizon), level=metric in LEVELS)
    if metric == "cost_usd":
        for r in out:
            r.update({k: _cents(r[k]) for k in FORECAST_MONEY if k in r})
            r.update({k: _cents(v) for k, v in r.items() if k.startswith("scenario_")})
    return {"metric": metric, "by": by, "horizon": horizon, "as_of": end - DAY, "rows": out}


def _cents(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value)).quantize(CENT)


def _metric_last_day(reader: Reader, metric: str) -> dt.date | None:
    from costline.forecast.signals import LINE_METRICS

    if metric in LINE_METRICS:
        return last_bill_day(reader)
    if metric == "training_jobs":
        row = run_one(reader.cursor(), "SELECT max(start) FROM workloads")
    else:
        row = run_one(reader.cursor(), "SELECT max(ts) FROM metrics WHERE metric = ?", [metric])
    return row[0].date() if row and row[0] is not None else None


# -- findings and annotations ----------------------------------------------------------------------


def _finding_states(reader: Reader) -> list[tuple[str, str, dict[str, str], str | None]]:
    """(kind, status, scope, owner) of every finding: what the overview counts."""
    rows = run(reader.cursor(), "SELECT kind, status, scope, owner FROM findings")
    return [(kind, status, dict(scope or {}), owner) for kind, status, scope, owner in rows]


def finding_row(body: Mapping[str, Any]) -> dict[str, Any]:
    """A stored finding (its JSON body) as the API shows it."""
    window_ = body.get("window") or {}
    return {
        "fingerprint": body["fingerprint"],
        "kind": body["kind"],
        "severity": body["severity"],
        "status": body["status"],
        "title": body["title"],
        "summary": body.get("summary", ""),
        "scope": body.get("scope", {}),
        "owner": body.get("owner"),
        "impact_usd": body.get("impact_usd"),
        "start": window_.get("start"),
        "end": window_.get("end"),
        "first_seen": body["first_seen"],
        "last_seen": body["last_seen"],
        "snoozed_until": body.get("snoozed_until"),
        "actions": body.get("actions", []),
        "evidence": body.get("evidence", {}),
    }


def _body(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(str(value))


def findings(
    reader: Reader,
    filters: Filters,
    *,
    status: Sequence[str] = (),
    kind: Sequence[str] = (),
    severity: Sequence[str] = (),
    owner: Sequence[str] = (),
    limit: int = 500,
) -> dict[str, Any]:
    """Findings by status, kind, severity and owner, in the filters' scope (and window, when one
    is given), largest impact first."""
    t = reader.table("findings")
    for column, accepted in (("status", status), ("kind", kind), ("severity", severity),
                             ("owner", owner)):  # fmt: skip
        if accepted:
            t = t.filter(t[column].isin(list(accepted)))
    rows = [finding_row(_body(r["body"])) for r in t.select("body").to_pyarrow().to_pylist()]
    rows = [r for r in rows if finding_matches(filters.selector, r["scope"], r["owner"])]
    if filters.start is not None or filters.end is not None:
        span = window(reader, filters)
        first, end = (_iso_day(d) for d in (span.start, span.end))
        rows = [r for r in rows if (r["start"] or "") < end and (r["end"] or "~") > first]
    rows.sort(key=lambda r: r["last_seen"], reverse=True)
    rows.sort(key=lambda r: -Decimal(r["impact_usd"] or 0))
    return {"rows": rows[:limit], "total": len(rows)}


def _iso_day(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def finding(reader: Reader, fingerprint: str) -> dict[str, Any]:
    t = reader.table("findings")
    found = t.filter(t.fingerprint == fingerprint).select("body").to_pyarrow().to_pylist()
    if not found:
        raise ledger_findings.UnknownFinding(
            f"no finding {fingerprint!r} in the ledger (list them at /api/v1/findings)"
        )
    return finding_row(_body(found[0]["body"]))


def transition(
    served: Served, fingerprint: str, action: ledger_findings.Action, until: dt.datetime | None
) -> dict[str, Any]:
    """Move a finding (acknowledge, resolve, snooze, reopen) in the ledger (`Served.write`: the
    ledger itself, and the copy the server reads) and return it as stored."""
    moved = served.write(
        lambda con: ledger_findings.transition(con, fingerprint, action, until, clock=served.clock)
    )
    return finding_row(json.loads(moved.model_dump_json()))


def annotation_rows(reader: Reader, filters: Filters) -> dict[str, Any]:
    """Deploys, launches and other events in the window, for markers on trend lines."""
    start, end = window(reader, filters).at()
    t = reader.table("annotations")
    t = t.filter(t.ts >= start, t.ts < end).order_by("ts")
    rows = []
    for r in t.select("ts", "end", "kind", "scope", "text").to_pyarrow().to_pylist():
        scope = dict(r["scope"] or ())
        if annotation_matches(filters.selector, scope):
            rows.append({**r, "scope": scope})
    return {"rows": rows}
