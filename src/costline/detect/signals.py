"""Telemetry signals: minute-resolution series of usage, checked minutes after the data lands.

Bills arrive a day late; telemetry does not. A signal is one number per time bucket (5 minutes by
default) per value of a dimension, computed in the engine from the ledger's telemetry tables:

| signal | table | value per bucket | dollars it carries (for impact) |
|---|---|---|---|
| `gpu_minutes` | gpu_samples | GPU-minutes used (time-sliced GPUs counted once) | GPU-minutes x the host's billed rate |
| `idle_gpu_minutes` | gpu_samples | GPU-minutes with the graphics engine under 5% busy | the same, on the idle minutes |
| `gpu_utilization` | gpu_samples | percent of GPU time the graphics engine was busy | none |
| `input_tokens_per_min`, `output_tokens_per_min`, `tokens_per_min` | llm_requests | tokens a minute | that side's token cost |
| `llm_requests_per_min` | llm_requests | requests a minute | the requests' cost |
| `llm_cost_usd` | llm_requests | dollars in the bucket | the same |
| `cache_hit_rate` | llm_requests | percent of input tokens read from the prompt cache | none |
| `avg_context_tokens` | llm_requests | input tokens per request | the input side's cost |
| `latency_p95_ms` | llm_requests | 95th percentile latency of the bucket's rows | none |
| `cost_per_1k_tokens` | llm_requests | dollars per 1,000 tokens | the requests' cost |
| `cost_per_successful_request` | llm_requests | dollars per request with status ok | the requests' cost |
| `storage_gb`, `checkpoint_gb` | storage_objects | GB in the day's inventory snapshot (daily buckets) | none |
| `metric:NAME[:avg,sum,max,p95]` | metrics | the metric's points in the bucket (average by default) | none |

Dimensions: GPU signals by host, gpu_model, namespace, pod or job_id; LLM signals by provider,
model, app, team, project, environment, endpoint, prompt_id or user; metrics by any label.
A bucket with no rows is 0 for a volume (no tokens were used) and missing for a ratio (a cache-hit
rate of no requests is not 0%).

Each signal (but `metric:`) ships a **default condition**, checked when a threshold names only
the signal (`{name: idle, signal: gpu_utilization, by: namespace}`): what is waste or trouble for
that signal, held long enough not to flap (`DEFAULTS`; `costline signals` shows them).

A signal's **impact** in dollars is the part of its dollars that the excess carries: for a bucket
whose value is `v` against a baseline `b`, `cost x (v - b) / v`. Signals with no dollars (a
latency, a utilization, a queue) have no dollar impact: unpriced, not zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from costline.errors import CostlineError
from costline.model import Selector

GPU_DIMENSIONS = ("host", "gpu_model", "namespace", "pod", "job_id")
STORAGE_DIMENSIONS = ("bucket", "provider", "storage_class", "team", "project", "environment")
LLM_DIMENSIONS = (
    "provider", "model", "app", "team", "project", "environment", "endpoint", "prompt_id", "user",
)  # fmt: skip
IDLE_BELOW = 0.05  # graphics engine activity under which a GPU-minute is idle
METRIC_PREFIX = "metric:"
METRIC_AGGREGATIONS = ("avg", "sum", "max", "p95")

Aggregate = Callable[[ir.Table, int], dict[str, ir.Value]]


class UnknownSignal(CostlineError, ValueError):
    """A signal or dimension costline does not know."""


@dataclass(frozen=True)
class Condition:
    """A signal's default condition: the threshold keys a threshold naming only the signal gets
    (any of them it sets itself wins)."""

    direction: Literal["above", "below"] = "above"
    absolute: float | None = None
    pct_over_baseline: float | None = None
    z: float | None = None
    min_buckets: int = 3
    bucket_minutes: int | None = None  # None: the threshold's (5 by default)
    baseline_hours: int | None = None

    def describe(self, unit: str) -> str:
        """`below 10% for 30 min`, `100% and 6 robust sigma over baseline for 15 min`."""
        word = "under" if self.direction == "below" else "over"
        parts = []
        if self.absolute is not None:
            sep = "" if unit == "%" else " "
            parts.append(f"{'below' if self.direction == 'below' else 'above'} "
                         f"{self.absolute:g}{sep}{unit}".rstrip())  # fmt: skip
        relative = [f"{self.pct_over_baseline:g}%" if self.pct_over_baseline else "",
                    f"{self.z:g} robust sigma" if self.z else ""]  # fmt: skip
        if any(relative):
            parts.append(" and ".join(r for r in relative if r) + f" {word} baseline")
        minutes = self.min_buckets * (self.bucket_minutes or 5)
        span = f"{minutes // 1440} day(s)" if minutes % 1440 == 0 else f"{minutes} min"
        return " and ".join(parts) + f" for {span}"


# Each a rise that lasts (15-30 minutes, so a burst does not page) and is large both against the
# series' level (pct) and its own noise (z): real traffic is bursty minute to minute.
_SURGE = Condition(pct_over_baseline=100, z=6, min_buckets=3)
_PRICE = Condition(pct_over_baseline=50, z=5, min_buckets=3)
_GROWTH = Condition(pct_over_baseline=20, min_buckets=1, bucket_minutes=1440, baseline_hours=24 * 7)
DEFAULTS: Mapping[str, Condition] = {
    # GPUs: busy under 10% for half an hour is waste; a doubling of idle GPU-minutes or +50% of
    # GPU-minutes used, for half an hour, against the hours before.
    "gpu_utilization": Condition(direction="below", absolute=10, min_buckets=6),
    "idle_gpu_minutes": Condition(pct_over_baseline=100, z=6, min_buckets=6),
    "gpu_minutes": Condition(pct_over_baseline=50, z=6, min_buckets=6),
    # LLM volumes and dollars: twice the baseline and 6 sigma, for 15 minutes.
    "input_tokens_per_min": _SURGE,
    "output_tokens_per_min": _SURGE,
    "tokens_per_min": _SURGE,
    "llm_requests_per_min": _SURGE,
    "llm_cost_usd": _SURGE,
    # A cache-hit rate halved; context 40% longer (a prompt grew); p95 latency doubled.
    "cache_hit_rate": Condition(direction="below", pct_over_baseline=50, z=5, min_buckets=3),
    "avg_context_tokens": Condition(pct_over_baseline=40, z=4, min_buckets=2),
    "latency_p95_ms": Condition(pct_over_baseline=100, z=6, min_buckets=3),
    "cost_per_1k_tokens": _PRICE,
    "cost_per_successful_request": _PRICE,
    # Storage: a day's inventory 20% over the week before.
    "storage_gb": _GROWTH,
    "checkpoint_gb": _GROWTH,
}


@dataclass(frozen=True)
class Signal:
    name: str
    table: Literal["gpu_samples", "llm_requests", "metrics", "storage_objects"]
    unit: str
    volume: bool  # True: an empty bucket is 0; False (a ratio): an empty bucket has no value
    describe: str
    aggregate: Aggregate  # (prepared rows, bucket minutes) -> {"value": ..., "cost": ...}
    priced: bool = False
    metric: str | None = None  # the metrics table's metric name, for metric: signals

    @property
    def default(self) -> Condition | None:
        """The condition a threshold naming only this signal checks; None for `metric:`."""
        return DEFAULTS.get(self.name)

    @property
    def dimensions(self) -> tuple[str, ...]:
        if self.table == "gpu_samples":
            return GPU_DIMENSIONS
        if self.table == "llm_requests":
            return LLM_DIMENSIONS
        if self.table == "storage_objects":
            return STORAGE_DIMENSIONS
        return ()  # any label


def _f(value: ir.Value) -> ir.FloatingValue:
    return value.cast("float64")


def _ratio(num: ir.Value, den: ir.Value, scale: float = 1.0) -> ir.Value:
    den_f = _f(den)
    return ibis.ifelse(den_f > 0, _f(num) * scale / den_f, ibis.null())


# -- GPU signals: rows of gpu_samples with `gpu_seconds` (time-slicing counted once), `activity`
# and `usd` (the seconds at the host's rate; null without one).


def _gpu_minutes(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": t.gpu_seconds.sum() / 60, "cost": t.usd.sum()}


def _idle_gpu_minutes(t: ir.Table, _: int) -> dict[str, ir.Value]:
    idle = t.activity < IDLE_BELOW
    return {"value": t.gpu_seconds.sum(where=idle).fill_null(0) / 60, "cost": t.usd.sum(where=idle)}


def _gpu_utilization(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": _ratio((t.activity * t.gpu_seconds).sum(), t.gpu_seconds.sum(), 100)}


# -- LLM signals: rows of llm_requests with `input_cost` (cost less its output part).


def _per_min(column: str, cost: str) -> Aggregate:
    def agg(t: ir.Table, minutes: int) -> dict[str, ir.Value]:
        return {"value": _f(t[column].sum()) / minutes, "cost": t[cost].sum()}

    return agg


def _tokens_per_min(t: ir.Table, minutes: int) -> dict[str, ir.Value]:
    tokens = t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0)
    return {"value": _f(tokens.sum()) / minutes, "cost": t.cost_usd.sum()}


def _llm_cost(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": _f(t.cost_usd.sum()), "cost": t.cost_usd.sum()}


def _cache_hit_rate(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": _ratio(t.cached_input_tokens.sum(), t.input_tokens.sum(), 100)}


def _avg_context(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": _ratio(t.input_tokens.sum(), t.requests.sum()), "cost": t.input_cost.sum()}


def _latency_p95(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": t.latency_ms.quantile(0.95)}


def _cost_per_1k(t: ir.Table, _: int) -> dict[str, ir.Value]:
    tokens = t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0)
    return {"value": _ratio(t.cost_usd.sum(), tokens.sum(), 1000), "cost": t.cost_usd.sum()}


def _cost_per_success(t: ir.Table, _: int) -> dict[str, ir.Value]:
    ok = t.requests.sum(where=t.status == "ok")
    return {"value": _ratio(t.cost_usd.sum(), ok), "cost": t.cost_usd.sum()}


# -- storage signals: inventory snapshots, one a day; a day's level (a jump over the days before
# is the growth a threshold sees).


def _storage_gb(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {"value": _f(t.size_bytes.sum()) / 1e9}


def _checkpoint_gb(t: ir.Table, _: int) -> dict[str, ir.Value]:
    return {
        "value": _f(t.size_bytes.sum(where=t.is_checkpoint.fill_null(False))).fill_null(0) / 1e9
    }


SIGNALS: Mapping[str, Signal] = {
    s.name: s
    for s in (
        Signal("gpu_minutes", "gpu_samples", "GPU-minutes", True,
               "GPU-minutes used in the bucket", _gpu_minutes, priced=True),
        Signal("idle_gpu_minutes", "gpu_samples", "GPU-minutes", True,
               "GPU-minutes with the graphics engine under 5% busy", _idle_gpu_minutes,
               priced=True),
        Signal("gpu_utilization", "gpu_samples", "%", False,
               "percent of GPU time the graphics engine was busy", _gpu_utilization),
        Signal("input_tokens_per_min", "llm_requests", "tokens/min", True,
               "input tokens a minute (cached included)",
               _per_min("input_tokens", "input_cost"), priced=True),
        Signal("output_tokens_per_min", "llm_requests", "tokens/min", True,
               "output tokens a minute", _per_min("output_tokens", "output_cost_usd"),
               priced=True),
        Signal("tokens_per_min", "llm_requests", "tokens/min", True,
               "input and output tokens a minute", _tokens_per_min, priced=True),
        Signal("llm_requests_per_min", "llm_requests", "requests/min", True,
               "LLM API requests a minute", _per_min("requests", "cost_usd"), priced=True),
        Signal("llm_cost_usd", "llm_requests", "USD", True,
               "dollars of LLM API calls in the bucket", _llm_cost, priced=True),
        Signal("cache_hit_rate", "llm_requests", "%", False,
               "percent of input tokens read from the prompt cache", _cache_hit_rate),
        Signal("avg_context_tokens", "llm_requests", "tokens", False,
               "input tokens per request", _avg_context, priced=True),
        Signal("latency_p95_ms", "llm_requests", "ms", False,
               "95th percentile latency", _latency_p95),
        Signal("cost_per_1k_tokens", "llm_requests", "USD", False,
               "dollars per 1,000 tokens", _cost_per_1k, priced=True),
        Signal("cost_per_successful_request", "llm_requests", "USD", False,
               "dollars per successful request", _cost_per_success, priced=True),
        Signal("storage_gb", "storage_objects", "GB", False,
               "GB stored, per daily inventory snapshot (use bucket_minutes: 1440)", _storage_gb),
        Signal("checkpoint_gb", "storage_objects", "GB", False,
               "GB of checkpoints, per daily inventory snapshot (use bucket_minutes: 1440)",
               _checkpoint_gb),
    )
}  # fmt: skip


def signal(name: str) -> Signal:
    """The signal called `name`: one of `SIGNALS`, or `metric:NAME[:avg|sum|max|p95]`."""
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith(METRIC_PREFIX):
        metric, _, how = name[len(METRIC_PREFIX) :].partition(":")
        how = how or "avg"
        if metric and how in METRIC_AGGREGATIONS:
            return Signal(name, "metrics", "", how == "sum", f"the metric {metric} ({how})",
                          _metric_aggregate(how), metric=metric)  # fmt: skip
    known = ", ".join(SIGNALS)
    raise UnknownSignal(
        f"no signal {name!r}: choose from {known}, or metric:NAME[:avg|sum|max|p95] for a series "
        "of the metrics table"
    )


def _metric_aggregate(how: str) -> Aggregate:
    def agg(t: ir.Table, _: int) -> dict[str, ir.Value]:
        v = t.value
        value = {"avg": v.mean(), "sum": v.sum(), "max": v.max(), "p95": v.quantile(0.95)}[how]
        return {"value": value}

    return agg


def prepared(
    s: Signal,
    table: ir.Table,
    *,
    host_rates: Mapping[str, float] | None = None,
    backend: ibis.BaseBackend | None = None,
) -> ir.Table:
    """The signal's rows with the columns its aggregate reads, and `key_<dimension>` for labels."""
    if s.table == "gpu_samples":
        share = table.time_slice_share.fill_null(1.0)
        activity = table.gr_engine_active.fill_null(table.gpu_util).fill_null(0.0)  # both 0-1
        t = table.mutate(gpu_seconds=table.sample_seconds.fill_null(60.0) * share,
                         activity=activity)  # fmt: skip
        rates = pa.table({"rate_host": list(host_rates or {}),
                          "rate": pa.array(list((host_rates or {}).values()), pa.float64())})  # fmt: skip
        r = ibis.memtable(rates)
        t = t.left_join(r, t.host == r.rate_host).drop("rate_host")
        return t.mutate(usd=t.gpu_seconds / 3600 * t.rate)
    if s.table == "llm_requests":
        return table.mutate(
            input_cost=table.cost_usd.cast("float64") - table.output_cost_usd.cast("float64").fill_null(0),
            cost_usd=table.cost_usd.cast("float64"),
            output_cost_usd=table.output_cost_usd.cast("float64"),
            requests=table.requests.fill_null(1),
        )  # fmt: skip
    if s.table == "storage_objects":
        return table
    return table.filter(table.metric == s.metric)


def time_of(s: Signal, table: ir.Table) -> ir.TimestampValue:
    """The time a row counts at: `ts`, or an inventory's snapshot day (its midnight, UTC)."""
    if s.table == "storage_objects":
        return table.snapshot_date.cast("timestamp('UTC')")
    return table.ts


def key_of(s: Signal, t: ir.Table, by: str | None) -> ir.StringValue:
    """The column of dimension `by` (a label for metrics), as a string; a constant for none."""
    if by is None:
        return ibis.literal("(all)")
    if s.table == "metrics":
        return t.labels.get(by).fill_null("(none)")
    if by not in s.dimensions:
        raise UnknownSignal(
            f"signal {s.name} has no dimension {by!r}: choose from {', '.join(s.dimensions)}"
        )
    return t[by].cast("string").fill_null("(none)")


def scoped(s: Signal, t: ir.Table, scope: Selector) -> ir.Table:
    """Only the rows whose dimensions (labels, for metrics) match every term of `scope`."""
    for dim, accepted in scope.root.items():
        if s.table == "metrics":
            t = t.filter(t.labels.get(dim).isin(list(accepted)))
        elif dim in s.dimensions:
            t = t.filter(t[dim].cast("string").isin(list(accepted)))
        else:
            raise UnknownSignal(
                f"signal {s.name} cannot be scoped by {dim!r}: choose from "
                f"{', '.join(s.dimensions)}"
            )
    return t


def bucketed(
    s: Signal,
    table: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    minutes: int,
    by: str | None = None,
    scope: Selector | None = None,
    host_rates: Mapping[str, float] | None = None,
) -> ir.Table:
    """One row per (bucket, key) with rows in [start, end): `bucket` (epoch seconds of the
    bucket's start), `key`, `value` and `cost` (float dollars, null when the signal has none)."""
    if s.table == "storage_objects" and minutes != 1440:
        raise UnknownSignal(f"signal {s.name} is one value a day: use bucket_minutes: 1440")
    t = table.mutate(ts=time_of(s, table)) if s.table == "storage_objects" else table
    t = t.filter(t.ts >= start, t.ts < end)
    t = scoped(s, t, scope or Selector())
    t = prepared(s, t, host_rates=host_rates)
    width = minutes * 60
    bucket = (t.ts.epoch_seconds() // width) * width
    t = t.mutate(bucket=bucket.cast("int64"), key=key_of(s, t, by))
    aggs = s.aggregate(t, minutes)
    out = t.group_by(["bucket", "key"]).aggregate(
        value=_f(aggs["value"]), **({"cost": _f(aggs["cost"])} if "cost" in aggs else {})
    )
    return out if "cost" in aggs else out.mutate(cost=ibis.null().cast("float64"))
