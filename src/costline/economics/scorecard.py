"""Unit economics side by side: the figures a product lead reads together, and how they moved.

Cost per LLM request, cost per 1K tokens, GPU utilization, p95 latency, queue depth and failed
jobs over a window, each beside the same figure over the window's last 7 days and the 7 before
(week over week) and over the same days a month earlier (month over month). Read from the
ledger's telemetry (`llm_requests`, `gpu_samples`, `metrics`, `workloads`), so the figures are
there minutes after the work, before any bill. A figure with nothing to measure is `None` (no
value), never 0: a window without requests has no cost per request.

- **cost per request**: priced requests' cost / priced requests (unpriced calls are counted in
  `llm.unpriced_requests` of the unit-cost report, never as $0);
- **cost per 1K tokens**: the same cost / their input and output tokens x 1,000;
- **GPU utilization**: the graphics engine's active share (else DCGM's GPU utilization) weighted
  by GPU-time, as on the GPU page;
- **p95 latency**: the 95th percentile of `latency_ms` of the requests (a rollup row counts once);
- **queue depth**: the mean of the `queue_depth` metric's points (any labels), when one is ingested;
- **failed jobs**: workloads that ended in the window with a failed status (Slurm `FAILED`,
  `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`, ..., a Kubernetes pod `Failed`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import ibis

from costline.economics.unit_costs import THOUSAND, per
from costline.ledger import fetch

QUEUE_METRIC = "queue_depth"
FAILED = ("failed", "timeout", "out_of_memory", "node_fail", "boot_fail", "deadline")
WEEK = dt.timedelta(days=7)
# (key, label, unit) in the order they are shown.
FIGURES = (
    ("cost_per_request_usd", "cost per LLM request", "USD"),
    ("cost_per_1k_tokens_usd", "cost per 1K tokens", "USD"),
    ("gpu_utilization_pct", "GPU utilization", "%"),
    ("latency_p95_ms", "p95 latency", "ms"),
    ("queue_depth", "queue depth (mean)", "requests"),
    ("failed_jobs", "failed jobs", "jobs"),
)
Window = tuple[dt.datetime, dt.datetime]
Value = Decimal | float | int | None


def month_before(start: dt.datetime, end: dt.datetime) -> Window:
    """The same days a month earlier: October -> September, Oct 1-15 -> Sep 1-15 (a day past
    the end of the shorter month is its last day, so the window never runs into the next)."""
    return _shift(start), _shift(end)


def _shift(t: dt.datetime) -> dt.datetime:
    year, month = (t.year - 1, 12) if t.month == 1 else (t.year, t.month - 1)
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def figures(
    tables: Mapping[str, ibis.Table], start: dt.datetime, end: dt.datetime
) -> dict[str, Value]:
    """The scorecard's figures over [start, end) (see the module); `tables` by ledger name, with
    `llm_requests` already attributed (`attribution.rules.derive_requests`)."""
    r = tables["llm_requests"]
    r = r.filter(r.ts >= start, r.ts < end)
    priced = r.cost_usd.notnull()
    tokens = r.input_tokens.fill_null(0) + r.output_tokens.fill_null(0)
    llm = fetch.rows(
        r.aggregate(
            cost=r.cost_usd.sum(),
            requests=r.requests.fill_null(1).sum(where=priced),
            tokens=tokens.sum(where=priced),
            p95=r.latency_ms.quantile(0.95),
        )
    )[0]
    s = tables["gpu_samples"]
    s = s.filter(s.ts >= start, s.ts < end)
    activity = ibis.coalesce(s.gr_engine_active, s.gpu_util)
    weight = s.sample_seconds * s.time_slice_share.fill_null(1.0)
    gpu = fetch.rows(
        s.aggregate(active=(activity * weight).sum(), measured=weight.sum(where=activity.notnull()))
    )[0]
    m = tables["metrics"]
    m = m.filter(m.metric == QUEUE_METRIC, m.ts >= start, m.ts < end)
    queue = fetch.value(m.value.mean())
    w = tables["workloads"]
    w = w.filter(w["end"] >= start, w["end"] < end, w.status.lower().isin(list(FAILED)))
    return {
        "cost_per_request_usd": per(llm["cost"], llm["requests"]),
        "cost_per_1k_tokens_usd": per(llm["cost"], llm["tokens"], THOUSAND),
        "gpu_utilization_pct": round(100 * gpu["active"] / gpu["measured"], 1)
        if gpu["measured"]
        else None,
        "latency_p95_ms": None if llm["p95"] is None else round(llm["p95"], 1),
        "queue_depth": None if queue is None else round(queue, 2),
        "failed_jobs": int(fetch.value(w.count())),
    }


def change_pct(now: Value, before: Value) -> Decimal | None:
    """(now - before) / before in percent, one decimal; None without both, or from zero."""
    if now is None or before is None or not before:
        return None
    a, b = _decimal(now), _decimal(before)
    return ((a - b) / abs(b) * 100).quantize(Decimal("0.1"))


def _decimal(value: Decimal | float | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def scorecard(
    tables: Mapping[str, ibis.Table], start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """One row per figure: the window's value, the last 7 days' against the 7 before (week over
    week) and the window's against the same days a month earlier (month over month)."""
    week = figures(tables, end - WEEK, end)
    week_before = figures(tables, end - 2 * WEEK, end - WEEK)
    now = figures(tables, start, end)
    month = figures(tables, *month_before(start, end))
    return [
        {
            "figure": key,
            "label": label,
            "unit": unit,
            "value": now[key],
            "last_7_days": week[key],
            "previous_7_days": week_before[key],
            "week_over_week_pct": change_pct(week[key], week_before[key]),
            "month_before": month[key],
            "month_over_month_pct": change_pct(now[key], month[key]),
        }
        for key, label, unit in FIGURES
    ]
