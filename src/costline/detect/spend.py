"""Spend anomalies: daily cost per value of each dimension, scanned, explained, as findings.

`detect_spend` asks the engine for one small table, the daily cost of every (dimension, value)
series, runs `detect.anomaly.scan_many` on them all as one block, and for each anomaly asks the
engine again for its context:

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
from costline.detect.anomaly import Anomaly, Settings, scan_many
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
    used = usage(lines)
    d = derive_lines(
        used.filter(used.ChargePeriodStart >= start, used.ChargePeriodStart < end), rules
    )
    d = d.mutate(day=d.ChargePeriodStart.date())
    days = (end.date() - start.date()).days
    out: dict[tuple[str, str], list[float]] = {}
    parts = []
    for name in dimensions:
        kept = d.filter(d[DIMENSIONS[name]].notnull())
        part = kept.group_by([kept[DIMENSIONS[name]].cast("string").name("value"), "day"])
        parts.append(part.aggregate(cost=kept.EffectiveCost.sum().cast("float64"))
                     .mutate(dimension=ibis.literal(name)))  # fmt: skip
    union = _union(parts)
    for r in union.to_pyarrow().to_pylist():
        series = out.setdefault((r["dimension"], r["value"]), [0.0] * days)
        i = (r["day"] - start.date()).days
        if 0 <= i < days:
            series[i] += r["cost"] or 0.0
    return out


def usage(lines: ibis.Table) -> ibis.Table:
    """Usage lines only: a month's tax, a credit or a commitment purchase is not an anomaly."""
    return lines.filter(lines.ChargeCategory.fill_null("Usage") == "Usage")


def _union(parts: Sequence[ibis.Table]) -> ibis.Table:
    return functools.reduce(lambda x, y: x.union(y, distinct=False), parts)


def find_anomalies(
    series: Mapping[tuple[str, str], Sequence[float]], origin: dt.date, settings: Settings
) -> list[SpendAnomaly]:
    """Every series' anomalies, largest impact first. Series of one length (all of them, from
    `daily_series`) are scanned as one block by `scan_many`."""
    keys_by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, values in series.items():
        keys_by_length[len(values)].append(key)
    scanned: dict[tuple[str, str], list[Anomaly]] = {}
    for n, keys in keys_by_length.items():
        matrix = np.array([series[k] for k in keys], dtype=np.float64).reshape(len(keys), n)
        scanned.update(zip(keys, scan_many(matrix, settings), strict=True))
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
) -> list[Finding]:
    """Findings for the spend anomalies of [start, end) (whole UTC days; the first four weeks are
    history only)."""
    rules = rules or Rules()
    settings = settings or Settings()
    series = daily_series(lines, start, end, dimensions, rules)
    anomalies = find_anomalies(series, start.date(), settings)
    derived = derive_lines(usage(lines), rules)
    return [_finding(a, derived, rules, clock, annotations, metrics, settings) for a in anomalies]


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def root_cause(
    derived: ibis.Table, a: SpendAnomaly, history_days: int, top: int = 3
) -> list[dict[str, Any]]:
    """The other dimensions' values ranked by the extra daily cost they carry in the anomaly."""
    col = derived[DIMENSIONS[a.dimension]].cast("string")
    before = _at(a.start) - dt.timedelta(days=history_days)
    d = derived.filter(col == a.value, derived.ChargePeriodStart >= before,
                       derived.ChargePeriodStart < _at(a.last) + DAY)  # fmt: skip
    inside = d.ChargePeriodStart >= _at(a.start)
    span = (a.last - a.start).days + 1
    parts = [
        d.group_by(d[DIMENSIONS[name]].cast("string").name("value"))
        .aggregate(during=d.EffectiveCost.sum(where=inside).cast("float64"),
                   before=d.EffectiveCost.sum(where=~inside).cast("float64"))
        .mutate(dimension=ibis.literal(name))
        for name in CAUSE_DIMENSIONS
        if name != a.dimension
    ]  # fmt: skip
    out = []
    for r in _union(parts).to_pyarrow().to_pylist():  # every dimension in one query
        delta = (r["during"] or 0.0) / span - (r["before"] or 0.0) / history_days
        out.append({"dimension": r["dimension"], "value": r["value"],
                    "extra_per_day_usd": round(delta, 2)})  # fmt: skip
    out.sort(key=lambda r: -r["extra_per_day_usd"])
    return [r for r in out if r["extra_per_day_usd"] > 0][: top * 2]


def _changes(annotations: ibis.Table | None, a: SpendAnomaly) -> list[dict[str, Any]]:
    if annotations is None:
        return []
    n = annotations.filter(annotations.ts >= _at(a.start) - DAY, annotations.ts < _at(a.last) + DAY)
    return [
        {"ts": r["ts"].isoformat(), "kind": r["kind"], "text": r["text"]}
        for r in n.select("ts", "kind", "text").order_by("ts").to_pyarrow().to_pylist()
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
    for r in m.select("ts", "value", "labels").to_pyarrow().to_pylist():
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


def _finding(
    a: SpendAnomaly,
    derived: ibis.Table,
    rules: Rules,
    clock: Clock,
    annotations: ibis.Table | None,
    metrics: ibis.Table | None,
    settings: Settings,
) -> Finding:
    impact = Decimal(repr(a.anomaly.impact)).quantize(CENT)
    causes = root_cause(derived, a, settings.history)
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
            **value_evidence,
            "root_cause": causes,
            "changes": _changes(annotations, a),
        },
    )
