"""Anomalies of the metrics table: a daily (or hourly) series per metric and label set, scanned
with unit-free gates in the direction that matters for what the metric measures.

- **series**: the metric's values per day (or hour) and label set; counts (requests, successes,
  tokens, purchases, errors) are summed over the bucket, levels (utilization, rates, ratios,
  latency) averaged (`aggregation`).
- **direction** (`direction_of`): a drop is what matters for what should keep flowing
  (`success`, `request`, `purchase`, `cache_hit`, `throughput`, ...), both ways for
  utilization (idle is waste, saturated a risk), a rise for the rest (latency, errors, tokens);
  `directions` overrides by metric name (`up`, `down` or `both`).
- **gates**: relative and robust only (`UNIT_FREE`): no dollar gate applies to a percent or a
  count, so `min_impact` and `min_total_impact` are 0 and a point must move `min_pct` percent and
  `z` robust scales (see `detect.anomaly`).

One finding per anomaly (kind anomaly; fingerprint: metric, labels, direction and start day),
its evidence signal `metric:<name>`; unpriced (`impact_usd` null): what it costs is a spend
finding's business.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import ibis
import numpy as np

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.detect.anomaly import Anomaly, Settings, monthly_lags, scan_many
from costline.ledger import fetch
from costline.model import Finding, FindingKind, Window

UNIT_FREE = Settings(min_impact=0.0, min_total_impact=0.0, min_pct=20.0, z=4.0)
HOURLY = replace(UNIT_FREE, season=24, seasons=7, history=48, peaks=168, warmup=24,
                 creep_window=72)  # fmt: skip
DROPS_MATTER = ("success", "request", "purchase", "cache_hit", "hit_rate", "throughput",
                "conversion", "order", "signup", "availability", "uptime")  # fmt: skip
RISES_MATTER = ("error", "fail", "latency", "reject", "timeout", "throttl")
BOTH_MATTER = ("util", "occupancy", "saturation")  # idle is waste, saturated is a risk
LEVELS = ("rate", "ratio", "pct", "percent", "util", "latency", "_ms", "seconds", "p50", "p95",
          "p99", "temp", "power", "mean", "avg")  # fmt: skip
Key = tuple[str, tuple[tuple[str, str], ...]]  # metric, sorted labels


def direction_of(metric: str, directions: Mapping[str, str] | None = None) -> str:
    """`up`, `down` or `both`: which way an anomaly of `metric` matters.

    >>> direction_of("inference_successes"), direction_of("latency_p95_ms")
    ('down', 'up')
    """
    if directions and metric in directions:
        return directions[metric]
    name = metric.lower()
    if any(word in name for word in BOTH_MATTER):
        return "both"
    if any(word in name for word in RISES_MATTER):
        return "up"
    return "down" if any(word in name for word in DROPS_MATTER) else "up"


def aggregation(metric: str) -> str:
    """`mean` for a level (a percent, a rate, a latency), `sum` for a count.

    >>> aggregation("gpu_utilization_pct"), aggregation("purchases")
    ('mean', 'sum')
    """
    return "mean" if any(word in metric.lower() for word in LEVELS) else "sum"


def metric_series(
    metrics: ibis.Table, start: dt.datetime, end: dt.datetime, *, hourly: bool = False
) -> dict[Key, list[float]]:
    """(metric, labels) -> its value per bucket from its first sample in [start, end) to `end`,
    oldest first (so series end together but may begin apart: before its first sample a series
    has no history, not one of zeros); a bucket with no sample holds the previous value."""
    width = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
    m = metrics.filter(metrics.ts >= start, metrics.ts < end, metrics.value.notnull())
    bucket = m.ts.truncate("h" if hourly else "D").name("bucket")
    table = fetch.arrow(
        m.group_by([m.metric, m.labels.cast("json").cast("string").name("labels"), bucket])
        .aggregate(total=m.value.sum(), mean=m.value.mean())
        .order_by(["metric", "labels", "bucket"])
    )
    points = int((end - start) / width)
    out: dict[Key, list[float | None]] = {}
    labels: dict[str | None, tuple[tuple[str, str], ...]] = {}  # each label set parsed once
    means: dict[str, bool] = {}
    index: dict[dt.datetime, int] = {}  # each bucket's position, worked out once
    columns = (fetch.pylist(table[n]) for n in ("metric", "labels", "bucket", "total", "mean"))
    for metric, text, at, total, mean in zip(*columns, strict=True):
        if text not in labels:
            labels[text] = _labels(text)
        if metric not in means:
            means[metric] = aggregation(metric) == "mean"
        series = out.setdefault((metric, labels[text]), [None] * points)
        i = index.get(at)
        if i is None:
            i = index[at] = int((_utc(at) - start) / width)
        if 0 <= i < points:
            series[i] = mean if means[metric] else total
    return {k: _filled(v) for k, v in out.items()}


def _labels(text: str | None) -> tuple[tuple[str, str], ...]:
    value = json.loads(text) if text else {}
    if isinstance(value, list):  # a MAP as a list of {key, value}
        value = {e["key"]: e["value"] for e in value}
    return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items()))


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


def _filled(values: Sequence[float | None]) -> list[float]:
    out: list[float] = []
    for v in values:
        if v is not None or out:
            out.append(v if v is not None else out[-1])
    return out


def detect_metrics(
    metrics: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    clock: Clock,
    rules: Rules | None = None,
    directions: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    hourly: bool = False,
) -> list[Finding]:
    """Findings for the metric anomalies of [start, end): series read from `lookback` before it
    (so every bucket of the window is judged with the same history), anomalies ending in it."""
    s = settings or (HOURLY if hourly else UNIT_FREE)
    width = dt.timedelta(hours=1) if hourly else dt.timedelta(days=1)
    origin = start - width * max(s.warmup, s.peaks, s.season * s.seasons)
    series = metric_series(metrics, origin, end, hourly=hourly)
    found: list[Finding] = []
    for direction in ("up", "down"):
        by_length: dict[int, list[Key]] = {}
        for k, v in series.items():
            if direction_of(k[0], directions) in (direction, "both"):
                by_length.setdefault(len(v), []).append(k)
        for n, keys in by_length.items():
            first = end - width * n
            matrix = np.array([series[k] for k in keys], dtype=np.float64).reshape(len(keys), n)
            monthly = monthly_lags(first.date(), n) if not hourly else []
            scanned = scan_many(matrix, replace(s, direction=direction), None, monthly)
            for key, anomalies in zip(keys, scanned, strict=True):
                for a in anomalies:
                    span = (first + width * a.start, first + width * (a.end + 1))
                    if span[1] > start:
                        found.append(_finding(key, a, direction, span, clock, rules, width))
    return sorted(found, key=lambda f: (f.window.start if f.window else start, f.title))


def _finding(
    key: Key,
    a: Anomaly,
    direction: str,
    span: tuple[dt.datetime, dt.datetime],
    clock: Clock,
    rules: Rules | None,
    width: dt.timedelta,
) -> Finding:
    metric, labels = key
    scope = {"metric": metric, **dict(labels)}
    observed = a.observed / len(a.points)
    expected = a.expected / len(a.points)
    change = (observed - expected) / abs(expected) * 100 if expected else None
    moved = "dropped" if direction == "down" else "rose"
    what = ", ".join(f"{k}={v}" for k, v in labels) or "all"
    when = span[0].date().isoformat() if width >= dt.timedelta(days=1) else span[0].isoformat()
    severity = "critical" if change is not None and abs(change) >= 50 else "warning"
    owner = rules.owner_of(dict(labels)) if rules else None
    size = f" ({change:+.0f}%)" if change is not None else ""
    summary = (
        f"{metric} ({what}) {moved} to {observed:,.4g} a {'day' if width.days else 'hour'} on "
        f"average over {len(a.points)} point(s) from {when}, against {expected:,.4g} before"
        f"{size}" + ("; still going." if a.open else ".")
    )
    return Finding.new(
        kind=FindingKind.ANOMALY,
        scope=scope,
        dedup_key=f"metric:{direction}:{span[0].isoformat()}",
        clock=clock,
        title=f"{metric} {moved}{size} for {what} since {when}",
        severity=severity,
        summary=summary,
        owner=owner or dict(labels).get("team"),
        impact_usd=None,
        window=Window(start=span[0], end=span[1]),
        evidence=_evidence(
            metric, a, direction, (span[0], span[1] - width), observed, expected, change
        ),
    )


def _evidence(
    metric: str,
    a: Anomaly,
    direction: str,
    first_last: tuple[dt.datetime, dt.datetime],
    observed: float,
    expected: float,
    change: float | None,
) -> dict[str, Any]:
    """The numbers behind a metric finding (`first_last`: its first and last bucket)."""
    return {
        "signal": f"metric:{metric}",
        "direction": direction,
        "pattern": a.pattern,
        "open": a.open,
        "start": first_last[0].isoformat(),
        "last_seen": first_last[1].isoformat(),
        "points": len(a.points),
        "observed_mean": round(observed, 6),
        "baseline_mean": round(expected, 6),
        "change_pct": round(change, 1) if change is not None else None,
        "peak_z": round(a.peak_z, 1) if a.peak_z != float("inf") else None,
    }
