"""Spend anomalies: daily cost per value of each dimension, scanned, explained, as findings.

`detect_spend` derives the window's usage lines once into a narrow table of daily sums (a
temporary table of the engine), reads from it the daily cost of every (dimension, value) series,
runs `detect.anomaly.scan_many` on them all as one block, and explains the anomalies (the root
causes of all of them in one query; annotations and metrics per anomaly):

- **root cause**: the values of the other dimensions (service, account, region, team, resource)
  ranked by how much more they cost a day in the anomaly than in the weeks before it;
- **what changed**: the annotations (deploys, launches, training starts) from a day before it
  began to its last day;
- **value or waste**: when `metrics` holds `inference_successes` whose labels match the scope,
  spend that rose with successful requests (at least 60% as much, relatively) is `value`, a rise
  without them `waste`; with no such metric, `unknown`;
- **owner**: the configured owner of the scope (with its largest team), else that team.

One finding per anomaly: its fingerprint is kind + scope + start day, so scanning again moves
`last_seen` and the impact so far, and never makes a second finding for the same anomaly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import numpy as np

from costline.attribution.rules import Rules, derive_lines
from costline.clock import Clock
from costline.detect.anomaly import Anomaly, Settings, monthly_lags, scan_many
from costline.ledger import fetch
from costline.model import Finding, FindingKind, Window

DIMENSIONS: Mapping[str, str] = {
    "service": "ServiceName",
    "team": "team",
    "account": "SubAccountName",
    "region": "RegionId",
    "model": "model",
    "usage_type": "SkuId",  # the SKU: an instance type in a region, a storage class, a token meter
    "resource": "ResourceId",
}
DEFAULT_DIMENSIONS = ("service", "team", "usage_type")
CAUSE_DIMENSIONS = ("service", "account", "region", "team", "resource")
VALUE_METRIC = "inference_successes"
VALUE_LABELS = ("service", "team", "model")
DAY = dt.timedelta(days=1)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class SpendAnomaly:
    dimension: str
    value: str
    start: dt.date
    last: dt.date  # inclusive
    anomaly: Anomaly

    @property
    def days(self) -> int:
        return len(self.anomaly.points)


def daily_series(
    lines: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str], rules: Rules
) -> dict[tuple[str, str], list[float]]:
    """(dimension, value) -> daily effective cost over [start, end), one float per day."""
    return _daily(_narrow(usage(lines), start, end, dimensions, rules), start, end, dimensions)


def _narrow(
    used: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str], rules: Rules
) -> ibis.Table:
    """Usage lines of [start, end), derived, summed per day and per value of every dimension a
    series or a root cause reads (as text): all `detect_spend` asks the engine about, small."""
    d = derive_lines(used.filter(used.ChargePeriodStart >= start, used.ChargePeriodStart < end),
                     rules)  # fmt: skip
    names = list(dict.fromkeys([*dimensions, *CAUSE_DIMENSIONS]))
    keys = [d.ChargePeriodStart.date().name("day"),
            *[d[DIMENSIONS[n]].cast("string").name(n) for n in names]]  # fmt: skip
    return d.group_by(keys).aggregate(cost=d.EffectiveCost.sum())


def _daily(
    narrow: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str]
) -> dict[tuple[str, str], list[float]]:
    d = narrow.filter(narrow.day >= start.date(), narrow.day < end.date())
    days = (end.date() - start.date()).days
    out: dict[tuple[str, str], list[float]] = {}
    parts = []
    for name in dimensions:
        kept = d.filter(d[name].notnull())
        part = kept.group_by([kept[name].name("value"), "day"])
        parts.append(part.aggregate(cost=kept.cost.sum().cast("float64"))
                     .mutate(dimension=ibis.literal(name)))  # fmt: skip
    for r in fetch.rows(_union(parts)):
        series = out.setdefault((r["dimension"], r["value"]), [0.0] * days)
        i = (r["day"] - start.date()).days
        if 0 <= i < days:
            series[i] += r["cost"] or 0.0
    # In the dimensions' order, then by value: anomalies of equal impact keep this order, which
    # must not depend on the order the engine returns rows in.
    order = {name: n for n, name in enumerate(dimensions)}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])))


def usage(lines: ibis.Table) -> ibis.Table:
    """Usage lines only: a month's tax, a credit or a commitment purchase is not an anomaly."""
    return lines.filter(lines.ChargeCategory.fill_null("Usage") == "Usage")


def _union(parts: Sequence[ibis.Table]) -> ibis.Table:
    return functools.reduce(lambda x, y: x.union(y, distinct=False), parts)


def find_anomalies(
    series: Mapping[tuple[str, str], Sequence[float]],
    origin: dt.date,
    settings: Settings,
    renewed: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
) -> list[SpendAnomaly]:
    """Every series' anomalies, largest impact first. Series of one length (all of them, from
    `daily_series`) are scanned as one block by `scan_many`; `renewed` gives, per series, the
    days from which its level is the new normal (see `renewals`)."""
    keys_by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, values in series.items():
        keys_by_length[len(values)].append(key)
    scanned: dict[tuple[str, str], list[Anomaly]] = {}
    renewed = renewed or {}
    for n, keys in keys_by_length.items():
        matrix = np.array([series[k] for k in keys], dtype=np.float64).reshape(len(keys), n)
        rebases = [[(d - origin).days for d in renewed.get(k, ()) if 0 <= (d - origin).days < n]
                   for k in keys]  # fmt: skip
        each = scan_many(matrix, settings, rebases, monthly_lags(origin, n))
        scanned.update(zip(keys, each, strict=True))
    found = []
    for dim, value in series:  # in the series' order, as one scan at a time gave: ties keep it
        for a in scanned[(dim, value)]:
            found.append(SpendAnomaly(dim, value, origin + dt.timedelta(days=a.start),
                                      origin + dt.timedelta(days=a.end), a))  # fmt: skip
    return sorted(found, key=lambda x: -x.anomaly.impact)


def detect_spend(
    lines: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    rules: Rules | None = None,
    clock: Clock,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    settings: Settings | None = None,
    annotations: ibis.Table | None = None,
    metrics: ibis.Table | None = None,
    renewed: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
) -> list[Finding]:
    """Findings for the spend anomalies of [start, end) (whole UTC days).

    The series begin `lookback(settings)` days before `start` (or on the first day the ledger
    has spend, if later), so each day of the window is judged with the same history in every
    run, and an anomaly keeps its start day (and its fingerprint) from one daily run to the next.
    Anomalies that ended before `start` are left out. `renewed`: per (dimension, value), days
    from which the level is the new normal (an owner acknowledged it); announced launches in
    `annotations` are added (`renewals`).
    """
    rules = rules or Rules()
    settings = settings or Settings()
    origin = start - dt.timedelta(days=lookback(settings))
    history = origin - dt.timedelta(days=settings.history)
    with contextlib.ExitStack() as stack:
        # Derived once into the engine's memory, read by the series and every root cause.
        narrow = fetch.kept(stack, _narrow(usage(lines), history, end, dimensions, rules))
        series, first = _trimmed(_daily(narrow, origin, end, dimensions), origin.date())
        launches = new_normal(annotations)
        found = find_anomalies(series, first, settings, renewals(launches, series, renewed))
        anomalies = [a for a in found if a.last >= start.date()]
        causes = root_causes(narrow, anomalies, settings.history)
    return [_finding(a, c, rules, clock, annotations, metrics, settings)
            for a, c in zip(anomalies, causes, strict=True)
            if not announced(launches, a, c)]  # fmt: skip


def lookback(settings: Settings) -> int:
    """Days read before a window so that its first day is judged like its last."""
    return max(
        settings.warmup, settings.peaks, settings.history, settings.season * settings.seasons
    )


def _trimmed(
    series: dict[tuple[str, str], list[float]], origin: dt.date
) -> tuple[dict[tuple[str, str], list[float]], dt.date]:
    """The series from the first day any of them has spend: before it the ledger holds nothing,
    which is no history of zeros (every series would look new on the ledger's first day)."""
    days = len(next(iter(series.values()), []))
    first = next((d for d in range(days) if any(v[d] for v in series.values())), 0)
    return {k: v[first:] for k, v in series.items()}, origin + dt.timedelta(days=first)


NEW_NORMAL_KINDS = ("launch", "planned")  # and any kind ending in "_launch" (model_launch)


def _renews(kind: str) -> bool:
    return kind in NEW_NORMAL_KINDS or kind.endswith("_launch")


Launch = tuple[dt.date, dict[str, str]]


def new_normal(annotations: ibis.Table | None) -> list[Launch]:
    """(day, scope) of each announced launch or planned change: its level is no waste."""
    if annotations is None:
        return []
    rows = fetch.rows(annotations.select("ts", "kind", "scope"))
    return [(r["ts"].date(), dict(r["scope"] or [])) for r in rows if _renews(r["kind"] or "")]


def renewals(
    launches: Sequence[Launch],
    series: Mapping[tuple[str, str], Sequence[float]],
    acknowledged: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
) -> dict[tuple[str, str], list[dt.date]]:
    """Per series, the days its level becomes the new normal: the day of a launch or planned
    annotation whose scope names it (or has no scope: the whole organization), and the
    `acknowledged` days."""
    out: dict[tuple[str, str], list[dt.date]] = defaultdict(list)
    for key, days in (acknowledged or {}).items():
        out[key].extend(days)
    for day, scope in launches:
        for dim, value in series:
            if not scope or scope.get(dim) == value:
                out[(dim, value)].append(day)
    return dict(out)


def announced(
    launches: Sequence[Launch], a: SpendAnomaly, causes: Sequence[Mapping[str, Any]]
) -> bool:
    """An anomaly that began within a day of an announced launch whose scope names one of its
    causes (a launch by team X raises service and SKU series too): it is the launch, no waste."""
    for day, scope in launches:
        if abs((a.start - day).days) > 1:
            continue
        named = {(c["dimension"], c["value"]) for c in causes} | {(a.dimension, a.value)}
        if not scope or any(item in named for item in scope.items()):
            return True
    return False


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def root_causes(
    narrow: ibis.Table, anomalies: Sequence[SpendAnomaly], history_days: int, top: int = 3
) -> list[list[dict[str, Any]]]:
    """The root cause of every anomaly (see the module), from one query over `_narrow`'s daily
    sums: the cost per day of each other dimension's values, on the anomalies' values and days."""
    parts = []
    for dim in dict.fromkeys(a.dimension for a in anomalies):
        mine = [a for a in anomalies if a.dimension == dim]
        first = min(a.start for a in mine) - dt.timedelta(days=history_days)
        d = narrow.filter(narrow[dim].isin(sorted({a.value for a in mine})),
                          narrow.day >= first, narrow.day <= max(a.last for a in mine))  # fmt: skip
        parts += [
            d.group_by(anomaly_value=d[dim], day=d.day, value=d[name])
            .aggregate(cost=d.cost.sum())
            .mutate(anomaly_dimension=ibis.literal(dim), dimension=ibis.literal(name))
            for name in CAUSE_DIMENSIONS
            if name != dim
        ]  # fmt: skip
    by_scope: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in fetch.rows(_union(parts)) if parts else ():
        by_scope[(r["anomaly_dimension"], r["anomaly_value"])].append(r)
    return [_ranked(a, by_scope[(a.dimension, a.value)], history_days, top) for a in anomalies]


def _ranked(
    a: SpendAnomaly, rows: Sequence[Mapping[str, Any]], history_days: int, top: int
) -> list[dict[str, Any]]:
    """One anomaly's causes: each other dimension's values ranked by the extra cost a day they
    carry in the anomaly against the weeks before it, from its scope's daily sums."""
    first = a.start - dt.timedelta(days=history_days)
    sums: dict[tuple[str, str | None], list[Decimal]] = {}
    for r in rows:
        if first <= r["day"] <= a.last and r["cost"] is not None:
            pair = sums.setdefault((r["dimension"], r["value"]), [Decimal(0), Decimal(0)])
            pair[0 if r["day"] >= a.start else 1] += r["cost"]
    span = (a.last - a.start).days + 1
    ranked = sorted(
        (-round(float(during) / span - float(before) / history_days, 2),
         CAUSE_DIMENSIONS.index(dim), value is None, value or "", dim, value)
        for (dim, value), (during, before) in sums.items()
    )  # fmt: skip
    return [{"dimension": dim, "value": value, "extra_per_day_usd": -minus}
            for minus, _, _, _, dim, value in ranked if minus < 0][: top * 2]  # fmt: skip


def _changes(annotations: ibis.Table | None, a: SpendAnomaly) -> list[dict[str, Any]]:
    if annotations is None:
        return []
    n = annotations.filter(annotations.ts >= _at(a.start) - DAY, annotations.ts < _at(a.last) + DAY)
    return [
        {"ts": r["ts"].isoformat(), "kind": r["kind"], "text": r["text"]}
        for r in fetch.rows(n.select("ts", "kind", "text").order_by("ts"))
    ]


def verdict(
    metrics: ibis.Table | None,
    a: SpendAnomaly,
    causes: Sequence[Mapping[str, Any]],
    history_days: int,
) -> tuple[str, dict[str, Any]]:
    """value, waste or unknown: did successful requests rise with the spend?

    The success series are those of `VALUE_METRIC` whose labels match the scope and, for the
    dimensions metrics carry (service, team, model), the anomaly's largest causes. Spend is
    `value` when one of them rose at least 60% as much as the spend did against its expected
    level, `waste` when none did, `unknown` without such series.
    """
    if metrics is None:
        return "unknown", {}
    wanted = {a.dimension: a.value} if a.dimension in VALUE_LABELS else {}
    for c in causes:
        if c["dimension"] in VALUE_LABELS and c["dimension"] not in wanted and c["value"]:
            wanted[c["dimension"]] = c["value"]
    if not wanted:
        return "unknown", {}
    before = _at(a.start) - dt.timedelta(days=history_days)
    m = metrics.filter(metrics.metric == VALUE_METRIC, metrics.ts >= before,
                       metrics.ts < _at(a.last) + DAY,
                       *[metrics.labels.get(k) == v for k, v in wanted.items()])  # fmt: skip
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in fetch.rows(m.select("ts", "value", "labels")):
        key = repr(sorted(dict(r["labels"] or []).items()))
        sums[key][0 if r["ts"] >= _at(a.start) else 1] += r["value"] or 0.0
    span = (a.last - a.start).days + 1
    ratios = [
        during / span / (before_ / history_days) for during, before_ in sums.values() if before_
    ]
    if not ratios:
        return "unknown", {}
    cost_ratio = a.anomaly.observed / a.anomaly.expected if a.anomaly.expected > 0 else float("inf")
    best = max(ratios)
    call = "value" if best - 1 >= 0.6 * (cost_ratio - 1) else "waste"
    return call, {"successes_vs_before": round(best, 3), "cost_vs_expected": round(cost_ratio, 3),
                  "success_scope": dict(wanted)}  # fmt: skip


MONTH_DAYS = 30


def shape_evidence(a: Anomaly) -> dict[str, Any]:
    """What kind of anomaly it is: its pattern, whether it still goes on, the daily baseline from
    before it began, and for a creep its growth and what the next month costs if it continues."""
    out: dict[str, Any] = {"pattern": a.pattern, "open": a.open,
                           "baseline_per_day": round(a.baseline, 2)}  # fmt: skip
    if a.pattern == "creep":
        ahead = a.projected(MONTH_DAYS)
        out |= {"growth_pct_per_day": round(a.growth * 100, 2),
                "projected_month": round(ahead, 2),
                "projected_month_excess": round(ahead - a.baseline * MONTH_DAYS, 2)}  # fmt: skip
    return out


def shape_sentence(a: Anomaly) -> str:
    """The summary's words for a creep or a level shift still going on."""
    if a.pattern == "creep":
        ahead = a.projected(MONTH_DAYS)
        return (f" Growing {a.growth * 100:.1f}% a day: if it continues, the next {MONTH_DAYS} "
                f"days cost ${ahead:,.0f}, ${ahead - a.baseline * MONTH_DAYS:,.0f} over its "
                "baseline.")  # fmt: skip
    if a.open and a.pattern == "level_shift":
        return (f" Still going: ${a.level - a.baseline:,.0f} a day over the baseline of "
                f"${a.baseline:,.0f} from before it began, about "
                f"${(a.level - a.baseline) * MONTH_DAYS:,.0f} a month.")  # fmt: skip
    return ""


def _finding(
    a: SpendAnomaly,
    causes: list[dict[str, Any]],
    rules: Rules,
    clock: Clock,
    annotations: ibis.Table | None,
    metrics: ibis.Table | None,
    settings: Settings,
) -> Finding:
    impact = Decimal(repr(a.anomaly.impact)).quantize(CENT)
    call, value_evidence = verdict(metrics, a, causes, settings.history)
    ratio = a.anomaly.observed / a.anomaly.expected if a.anomaly.expected > 0 else None
    severity = (
        "info"
        if call == "value"
        else "critical"
        if impact >= 5000
        else "warning"
        if impact >= 1000
        else "info"
    )
    times = f"{ratio:.1f}x its expected" if ratio else "new"
    scope = {a.dimension: a.value}
    teams = [c["value"] for c in causes if c["dimension"] == "team"]
    team = a.value if a.dimension == "team" else teams[0] if teams else None
    owner = rules.owner_of({**scope, **({"team": team} if team else {})}) or team
    services = [c["value"] for c in causes if c["dimension"] == "service"]
    label = f"{a.dimension} {a.value}" + (
        f" ({services[0]})" if a.dimension not in ("service", "team") and services else ""
    )
    summary = (
        f"{label} spent ${a.anomaly.observed:,.0f} over {a.days} day(s) from "
        f"{a.start}, against ${a.anomaly.expected:,.0f} expected: ${impact:,} more"
        + (f"; mostly {causes[0]['dimension']} {causes[0]['value']}" if causes else "")
        + (". Successful requests rose with it: value, not waste." if call == "value" else ".")
        + shape_sentence(a.anomaly)
    )
    return Finding.new(
        kind=FindingKind.ANOMALY,
        scope=scope,
        dedup_key=f"spend:{a.start.isoformat()}",
        clock=clock,
        title=f"{label}: daily spend {times} since {a.start}",
        severity=severity,
        summary=summary,
        owner=owner,
        impact_usd=impact,
        window=Window(start=_at(a.start), end=_at(a.last) + DAY),
        evidence={
            "signal": "daily_spend",
            "start": a.start.isoformat(),
            "last_seen": a.last.isoformat(),
            "days": a.days,
            "observed_usd": round(a.anomaly.observed, 2),
            "expected_usd": round(a.anomaly.expected, 2),
            "peak_z": round(a.anomaly.peak_z, 1) if a.anomaly.peak_z != float("inf") else None,
            "verdict": call,
            **shape_evidence(a.anomaly),
            **value_evidence,
            "root_cause": causes,
            "changes": _changes(annotations, a),
        },
    )
