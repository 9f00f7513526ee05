"""Spend incidents as findings: title, summary, owner, severity, evidence and actions.

One finding per incident (`detect.incidents`): titled by names a person knows (the resource, the
SKU's description, the service, the team), its root cause the values ranked by their share of the
excess, with the anomalies it was seen on, what changed (annotations), whether it bought
successful requests (value) or not (waste), and its suggested actions (`detect.actions`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.detect.actions import anomaly_actions
from costline.detect.incidents import (
    SPECIFIC,
    Cause,
    Incident,
    Key,
    Scanned,
    as_dicts,
    label,
)
from costline.ledger import fetch
from costline.model import Finding, FindingKind, Window

VALUE_METRIC = "inference_successes"
VALUE_LABELS = ("service", "team", "model")
DAY = dt.timedelta(days=1)
CENT = Decimal("0.01")


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def changes(
    annotations: ibis.Table | None, frames: Sequence[Scanned]
) -> list[list[dict[str, Any]]]:
    """Per anomaly, what changed around it: the annotations from the day before its first day to
    the day after its last, oldest first; one query for all of them."""
    if annotations is None or not frames:
        return [[] for _ in frames]
    lo, hi = min(_at(a.start) for a in frames) - DAY, max(_at(a.last) for a in frames) + DAY
    n = annotations.filter(annotations.ts >= lo, annotations.ts < hi)
    rows = fetch.rows(n.select("ts", "kind", "text").order_by("ts"))
    return [
        [{"ts": r["ts"].isoformat(), "kind": r["kind"], "text": r["text"]} for r in rows
         if _at(a.start) - DAY <= r["ts"] < _at(a.last) + DAY]
        for a in frames
    ]  # fmt: skip


def _wanted(a: Scanned, causes: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The labels a success series must carry to speak for an anomaly: its own value where
    metrics carry its dimension, and its largest cause on each other dimension they carry."""
    wanted = {a.dimension: a.value} if a.dimension in VALUE_LABELS else {}
    for c in causes:
        if c["dimension"] in VALUE_LABELS and c["dimension"] not in wanted and c["value"]:
            wanted[c["dimension"]] = c["value"]
    return wanted


Series = tuple[Mapping[str, str], list[tuple[dt.datetime, float | None]]]  # labels, samples


def verdicts(
    metrics: ibis.Table | None,
    judged: Sequence[tuple[Scanned, Sequence[Mapping[str, Any]]]],
    history_days: int,
) -> list[tuple[str, dict[str, Any]]]:
    """value, waste or unknown for each (anomaly, its causes): did successful requests rise with
    the spend? (`verdict`). The success samples of all of them are read in one query."""
    wanted = [_wanted(a, causes) for a, causes in judged]
    asked = [(a, w) for (a, _), w in zip(judged, wanted, strict=True) if w]
    if metrics is None or not asked:
        return [("unknown", {}) for _ in judged]
    lo = min(_at(a.start) for a, _ in asked) - dt.timedelta(days=history_days)
    hi = max(_at(a.last) for a, _ in asked) + DAY
    m = metrics.filter(metrics.metric == VALUE_METRIC, metrics.ts >= lo, metrics.ts < hi)
    table = fetch.arrow(m.select("ts", "value", "labels"))
    series: dict[str, Series] = {}  # per label set, in the order the engine returned them
    for ts, value, labels in zip(*(fetch.pylist(table[n]) for n in ("ts", "value", "labels")),
                                 strict=True):  # fmt: skip
        found = dict(labels or [])
        key = repr(sorted(found.items()))
        if key not in series:
            series[key] = (found, [])
        series[key][1].append((ts, value))
    return [verdict(a, w, series, history_days) if w else ("unknown", {})
            for (a, _), w in zip(judged, wanted, strict=True)]  # fmt: skip


def verdict(
    a: Scanned,
    wanted: Mapping[str, str],
    series: Mapping[str, Series],
    history_days: int,
) -> tuple[str, dict[str, Any]]:
    """value, waste or unknown: did successful requests rise with the spend?

    The success series are those of `VALUE_METRIC` whose labels match `wanted` (`_wanted`: the
    scope and, for the dimensions metrics carry (service, team, model), the anomaly's largest
    causes), from `series` (label set -> its labels and (ts, value) samples). Spend is `value`
    when one of them rose at least 60% as much as the spend did against its expected level,
    `waste` when none did, `unknown` without such series.
    """
    start, stop = _at(a.start), _at(a.last) + DAY
    before = start - dt.timedelta(days=history_days)
    sums: dict[str, list[float]] = {}
    for key, (labels, samples) in series.items():
        if not all(labels.get(k) == v for k, v in wanted.items()):
            continue
        for ts, value in samples:
            if before <= ts < stop:
                sums.setdefault(key, [0.0, 0.0])[0 if ts >= start else 1] += value or 0.0
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


def _cause_rows(n: Incident, known: Mapping[Key, str]) -> list[dict[str, Any]]:
    """The root cause as evidence: each value with its extra a day, its share of the excess,
    its name and its extra over the incident's days."""
    span = (n.last - n.start).days + 1
    return [{**d, "name": label(d["dimension"], d["value"] or "", known),
             "extra_usd": round(d["extra_per_day_usd"] * span, 2)}
            for d in as_dicts(n.causes)]  # fmt: skip


def _top(causes: Sequence[Cause], dim: str) -> Cause | None:
    return next((c for c in causes if c.dimension == dim and c.share >= 0.5), None)


def title_of(n: Incident, known: Mapping[Key, str]) -> str:
    """What a person calls the incident: its resource or SKU by name, the SKU's description on
    its service, how many resources share it, and the team."""
    dim, value = n.lead
    named = dim in ("resource", "usage_type", "service")
    main = label(dim, value, known) if named else f"{dim.replace('_', ' ')} {value}"
    what = []
    sku = _top(n.causes, "usage_type")
    if dim != "usage_type" and sku is not None and sku.value:
        what.append(label("usage_type", sku.value, known))
    service = _top(n.causes, "service")
    if dim != "service" and service is not None and service.value:
        what.append(f"on {service.value}")
    details = [" ".join(what)] if what else []
    if dim != "resource" and n.resources >= 2 and _top(n.causes, "resource") is None:
        details.append(f"across {n.resources} resources")
    team = _top(n.causes, "team")
    head = main + (f" ({', '.join(details)})" if details else "")
    return head + (f", team {team.value}" if team is not None and team.value and dim != "team"
                   else "")  # fmt: skip


def _seen(m: Scanned) -> dict[str, Any]:
    """One anomaly an incident was seen on: its dimension, value, days and impact."""
    return {"dimension": m.dimension, "value": m.value, "start": m.start.isoformat(),
            "last_seen": m.last.isoformat(), "impact_usd": round(m.anomaly.impact, 2)}  # fmt: skip


def scope_of(n: Incident) -> dict[str, str]:
    """An incident's scope: its lead (a resource or a usage type) and the team carrying at least
    half of it; with its first day, what keeps its fingerprint from one daily run to the next."""
    scope = {n.lead[0]: n.lead[1]}
    team = _top(n.causes, "team")
    if team is not None and team.value and n.lead[0] != "team":
        scope["team"] = team.value
    return scope


def _summary(n: Incident, name: str, known: Mapping[Key, str], impact: Decimal, call: str) -> str:
    """What it spent against expected, the most specific value carrying at least half of it (a
    resource, a SKU; else the first cause), and the anomalies it was seen on."""
    a = n.frame
    lead = next((c for c in n.causes if c.dimension in SPECIFIC and c.share >= 0.5),
                n.causes[0] if n.causes else None)  # fmt: skip
    carried = (f"; {label(lead.dimension, lead.value or '', known)} carries {lead.share:.0%} of "
               f"it (${lead.extra_per_day:,.0f}/day)" if lead else "")  # fmt: skip
    seen = ", ".join(f"{m.dimension.replace('_', ' ')} {label(m.dimension, m.value, known)}"
                     for m in n.members)  # fmt: skip
    return (
        f"{name} spent ${a.anomaly.observed:,.0f} over {len(a.anomaly.points)} day(s) from "
        f"{n.start}, against ${a.anomaly.expected:,.0f} expected: ${impact:,} more{carried}. "
        f"Seen on {seen}"
        + (". Successful requests rose with it: value, not waste." if call == "value" else ".")
    )


def incident_findings(
    explained: Sequence[Incident],
    known: Mapping[Key, str],
    *,
    end: dt.date,
    rules: Rules,
    clock: Clock,
    annotations: ibis.Table | None,
    metrics: ibis.Table | None,
    history: int,
    shape: Callable[[Incident], tuple[Mapping[str, Any], str]] | None = None,
) -> list[Finding]:
    """The finding of each incident (`incident_finding`); what changed around them and whether
    successful requests rose with them are read in one query each for all of them. `shape`
    gives an incident's shape evidence and sentence (see `incident_finding`)."""
    causes = [_cause_rows(n, known) for n in explained]
    calls = verdicts(metrics, [(n.frame, c) for n, c in zip(explained, causes, strict=True)],
                     history)  # fmt: skip
    changed = changes(annotations, [n.frame for n in explained])
    out = []
    for n, c, judged, ch in zip(explained, causes, calls, changed, strict=True):
        evidence, said = shape(n) if shape is not None else ({}, "")
        out.append(incident_finding(n, known, end=end, rules=rules, clock=clock, causes=c,
                                    judged=judged, changed=ch, shape=evidence, said=said))  # fmt: skip
    return out


def incident_finding(
    n: Incident,
    known: Mapping[Key, str],
    *,
    end: dt.date,
    rules: Rules,
    clock: Clock,
    causes: list[dict[str, Any]],
    judged: tuple[str, dict[str, Any]],
    changed: list[dict[str, Any]],
    shape: Mapping[str, Any] | None = None,
    said: str = "",
) -> Finding:
    """The finding of one incident (`end`: the first day not scanned), with its root cause as
    evidence (`_cause_rows`), its verdict (`verdict`) and what changed (`changes`). `shape`:
    evidence of the kind of anomaly its largest one is (pattern, still open, baseline, a creep's
    projection), merged into the evidence, and `said` appended to the summary, from the scan."""
    a = n.frame
    impact = Decimal(repr(a.anomaly.impact)).quantize(CENT)
    call, value_evidence = judged
    ratio = a.anomaly.observed / a.anomaly.expected if a.anomaly.expected > 0 else None
    severity = ("info" if call == "value" else "critical" if impact >= 5000
                else "warning" if impact >= 1000 else "info")  # fmt: skip
    scope = scope_of(n)
    name = title_of(n, known)
    evidence: dict[str, Any] = {
        "signal": "daily_spend",
        "start": n.start.isoformat(),
        "last_seen": n.last.isoformat(),
        "days": len(a.anomaly.points),
        "ongoing": n.last >= end - DAY,
        "observed_usd": round(a.anomaly.observed, 2),
        "expected_usd": round(a.anomaly.expected, 2),
        "extra_per_day_usd": round(n.excess_per_day, 2),
        "resources": n.resources,
        "peak_z": round(a.anomaly.peak_z, 1) if a.anomaly.peak_z != float("inf") else None,
        "verdict": call,
        **(shape or {}),
        **value_evidence,
        "root_cause": causes,
        "seen_on": [_seen(m) for m in n.members],
        "changes": changed,
    }
    times = f"{ratio:.1f}x its expected" if ratio else "new"
    return Finding.new(
        kind=FindingKind.ANOMALY,
        scope=scope,
        dedup_key=f"spend:{n.start.isoformat()}",
        clock=clock,
        title=f"{name}: daily spend {times} since {n.start}",
        severity=severity,
        summary=_summary(n, name, known, impact, call) + said,
        owner=rules.owner_of(scope) or scope.get("team"),
        impact_usd=impact,
        window=Window(start=_at(n.start), end=_at(n.last) + DAY),
        evidence=evidence,
        actions=anomaly_actions(evidence, scope),
    )
