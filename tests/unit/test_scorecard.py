"""The unit-economics scorecard on a handful of rows whose figures are worked out by hand: cost per
request and per 1K tokens of priced calls only, GPU utilization weighted by GPU-time, p95 latency,
mean queue depth, failed jobs by the day they ended; week over week and month over month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.economics.scorecard import month_before, scorecard


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, tzinfo=dt.UTC)


def table(rows: list[dict[str, Any]], schema: pa.Schema) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(rows, schema=schema))


TS = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(38, 18)
REQUESTS = pa.schema([("ts", TS), ("cost_usd", MONEY), ("requests", pa.int64()),
                      ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
                      ("latency_ms", pa.float64())])  # fmt: skip
SAMPLES = pa.schema([("ts", TS), ("gr_engine_active", pa.float64()), ("gpu_util", pa.float64()),
                     ("sample_seconds", pa.float64()), ("time_slice_share", pa.float64())])  # fmt: skip
METRICS = pa.schema([("ts", TS), ("metric", pa.string()), ("value", pa.float64())])
WORKLOADS = pa.schema([("end", TS), ("status", pa.string())])


def tables() -> dict[str, ibis.Table]:
    def call(
        ts: dt.datetime, cost: str | None, n: int, i: int, o: int, ms: float
    ) -> dict[str, Any]:
        return {"ts": ts, "cost_usd": None if cost is None else Decimal(cost), "requests": n,
                "input_tokens": i, "output_tokens": o, "latency_ms": ms}  # fmt: skip

    def sample(ts: dt.datetime, gr: float | None, util: float | None, s: float) -> dict[str, Any]:
        return {"ts": ts, "gr_engine_active": gr, "gpu_util": util, "sample_seconds": s,
                "time_slice_share": None}  # fmt: skip

    return {
        "llm_requests": table([
            call(at(10, 30), "0.30", 3, 1000, 200, 100),  # a rollup of three calls
            call(at(10, 20), "0.10", 1, 400, 100, 300),
            call(at(10, 29), None, 1, 999, 1, 900),  # unpriced: not a $0 call
            call(at(9, 15), "0.20", 1, 500, 500, 50),
        ], REQUESTS),
        "gpu_samples": table([
            sample(at(10, 10), 0.5, 0.9, 60), sample(at(10, 11), 0.1, None, 180),
            sample(at(10, 12), None, 0.3, 60), sample(at(11, 1), 1.0, 1.0, 600),  # after
        ], SAMPLES),
        "metrics": table([
            {"ts": at(10, 2), "metric": "queue_depth", "value": 4.0},
            {"ts": at(10, 28), "metric": "queue_depth", "value": 6.0},
            {"ts": at(10, 28), "metric": "requests", "value": 900.0},
            {"ts": at(9, 2), "metric": "queue_depth", "value": 10.0},
        ], METRICS),
        "workloads": table([
            {"end": at(10, 12), "status": "FAILED"}, {"end": at(10, 13), "status": "succeeded"},
            {"end": at(9, 3), "status": "timeout"}, {"end": None, "status": "failed"},
        ], WORKLOADS),
    }  # fmt: skip


def test_the_scorecard_figures_and_their_changes() -> None:
    rows = {r["figure"]: r for r in scorecard(tables(), at(10, 1) - dt.timedelta(hours=12),
                                              at(11, 1) - dt.timedelta(hours=12))}  # fmt: skip
    assert list(rows) == ["cost_per_request_usd", "cost_per_1k_tokens_usd",
                          "gpu_utilization_pct", "latency_p95_ms", "queue_depth", "failed_jobs"]  # fmt: skip
    cost = rows["cost_per_request_usd"]  # $0.40 over 4 priced calls; September $0.20 over 1
    assert (cost["value"], cost["month_before"]) == (Decimal("0.1"), Decimal("0.2"))
    assert cost["month_over_month_pct"] == Decimal("-50.0")
    # the last 7 days ($0.30 / 3) against the 7 before ($0.10 / 1): no change
    assert (cost["last_7_days"], cost["previous_7_days"]) == (Decimal("0.1"), Decimal("0.1"))
    assert cost["week_over_week_pct"] == Decimal("0.0")
    per_1k = rows["cost_per_1k_tokens_usd"]["value"]  # $0.40 / 1,700 priced tokens x 1,000
    assert abs(per_1k - Decimal(400) / Decimal(1700)) < Decimal("1e-17")
    # (0.5 x 60 + 0.1 x 180 + 0.3 x 60) / 300 seconds; November's sample is outside
    assert rows["gpu_utilization_pct"]["value"] == 22.0
    assert rows["latency_p95_ms"]["value"] == 840.0  # between 300 and 900, interpolated
    queue = rows["queue_depth"]
    assert (queue["value"], queue["month_before"], queue["month_over_month_pct"]) == (
        5.0, 10.0, Decimal("-50.0"))  # fmt: skip
    failed = rows["failed_jobs"]
    assert (failed["value"], failed["month_before"], failed["last_7_days"]) == (1, 1, 0)
    assert failed["month_over_month_pct"] == Decimal("0.0")
    assert failed["week_over_week_pct"] is None  # from zero: no percentage


def test_a_window_with_nothing_to_measure_has_no_value_not_zero() -> None:
    rows = scorecard(tables(), at(6, 1), at(6, 8))
    assert all(r["value"] is None for r in rows if r["figure"] != "failed_jobs")
    assert all(r["week_over_week_pct"] is None and r["month_over_month_pct"] is None for r in rows)


def test_a_month_before_is_the_same_days_of_the_previous_month() -> None:
    def d(y: int, m: int, day: int) -> dt.datetime:
        return dt.datetime(y, m, day, tzinfo=dt.UTC)

    assert month_before(d(2026, 10, 1), d(2026, 11, 1)) == (d(2026, 9, 1), d(2026, 10, 1))
    assert month_before(d(2026, 1, 1), d(2026, 1, 16)) == (d(2025, 12, 1), d(2025, 12, 16))
    assert month_before(d(2026, 3, 31), d(2026, 4, 1)) == (d(2026, 2, 28), d(2026, 3, 1))
