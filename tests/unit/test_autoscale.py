"""Autoscaling replay (issue 16, point 5): an endpoint's traffic through policies, priced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pytest

from costline.model import Finding
from costline.optimize.autoscale import Policy, recommend_autoscaling, replay, sample_step
from costline.optimize.inputs import Inputs
from costline.schema import METRICS
from tests.unit.recommend_data import T0, inputs, line

L4 = Decimal("0.8048")  # g6.xlarge (1 x L4), us-east-1


def test_a_fixed_fleet_pays_every_minute_and_never_waits() -> None:
    r = replay(np.full(60, 10.0), 20.0, Policy("fixed", 3, 3, 1.0, 10**9))
    assert (r.replica_minutes, r.p95_wait_s, r.peak_replicas) == (180, 0.0, 3)


def test_scale_to_zero_makes_the_first_request_wait_the_cold_start() -> None:
    arrivals = np.array([0.0] * 30 + [5.0] + [0.0] * 29)
    r = replay(arrivals, 20.0, Policy("zero", 0, 4, 0.7, 5, idle=15, cold_start=2))
    assert r.p95_wait_s == 120.0  # the only requests came with no replica up
    assert r.replica_minutes < 60  # nothing paid while idle


def test_an_overloaded_fleet_queues() -> None:
    r = replay(np.full(10, 30.0), 20.0, Policy("fixed", 1, 1, 1.0, 10**9))
    assert r.p95_wait_s == pytest.approx(9 * 10 / 20 * 60)  # the backlog grows 10 a minute


def _inputs(rate: Any, *, labelled: bool = False, every: int = 1) -> Inputs:
    """Four g6.xlarge replicas of endpoint `chat` held all day; `rate(minute)` requests a minute,
    recorded every `every` minutes (the sum of those minutes); `labelled`: the pods say their
    endpoint only by their `app` label, as a Kubernetes dump does (no `endpoint` column)."""
    hosts = [f"ep-{i}" for i in range(4)]
    lines = [line(h, "g6.xlarge", t, L4) for h in hosts for t in range(24)]
    samples = [{"ts": T0 + dt.timedelta(hours=t), "host": h, "gpu_uuid": f"{h}-0",
                "gpu_index": 0, "gpu_model": "NVIDIA L4", "sample_seconds": 3600.0,
                "gr_engine_active": 0.5, "namespace": "serve", "pod": f"chat-{h}"}
               for h in hosts for t in range(24)]  # fmt: skip
    tags = [("team", "search"), ("app", "chat")] if labelled else [("team", "search")]
    work = [{"workload_id": f"serve/chat-{h}", "kind": "inference_endpoint", "owner": "ana",
             "tags": tags, "namespace": "serve", "capacity_type": None,
             "endpoint": None if labelled else "chat", "gpus_requested": 1.0}
            for h in hosts]  # fmt: skip
    metrics = [{"ts": T0 + dt.timedelta(minutes=m), "metric": "inference_requests",
                "value": float(sum(rate(m + k) for k in range(every))),
                "labels": [("endpoint", "chat")]}
               for m in range(0, 1440, every)]  # fmt: skip
    return inputs(
        lines, samples, work,
        metrics=ibis.memtable(pa.Table.from_pylist(metrics, schema=METRICS.to_pyarrow())),
    )  # fmt: skip


def test_a_daytime_endpoint_scales_with_its_traffic_for_less() -> None:
    found: list[Finding] = recommend_autoscaling(
        _inputs(lambda m: 60 if 8 * 60 <= m < 20 * 60 else 0)
    )
    assert len(found) == 1
    f = found[0]
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict) and inputs["replicas_today"] == 4
    assert inputs["replica_capacity_per_min"] == 15.0  # the busiest minutes over four replicas
    today = L4 * 96 * 30  # four replicas all day, per 30 days
    assert f.evidence["current_monthly_usd"] == str(today.quantize(Decimal("0.01")))
    # The cheapest policy within the wait budget scales 1..N at 85%: five replicas in the day
    # (60 a minute over 0.85 x 15), one at night, and 15 replica-minutes warming at 8:00.
    best = Decimal(5 * 12 + 1 * 12) + Decimal("0.25")
    assert f.impact_usd == ((96 - best) * L4 * 30).quantize(Decimal("0.01"))
    assert "1..N at 85%" in f.title
    policies = inputs["policies"]
    assert isinstance(policies, dict) and policies["fixed (today)"]["replica_hours"] == 96.0
    text = f.actions[0].text
    assert "kind: ScaledObject" in text and "maxReplicaCount" in text


def test_steady_traffic_at_capacity_keeps_its_fleet() -> None:
    assert recommend_autoscaling(_inputs(lambda m: 60)) == []


def test_a_pod_named_by_its_app_label_and_hourly_counts_replay_as_per_minute_ones() -> None:
    """Kubernetes pods carry their endpoint as the `app` label (no source fills an `endpoint`
    column), and an export may count requests per hour: an hour's requests are spread over
    its minutes, not replayed as one minute's burst. Both give the per-minute answer."""
    daytime = lambda m: 60 if 8 * 60 <= m < 20 * 60 else 0  # noqa: E731
    [minutely] = recommend_autoscaling(_inputs(daytime))
    [labelled] = recommend_autoscaling(_inputs(daytime, labelled=True))
    [hourly] = recommend_autoscaling(_inputs(daytime, labelled=True, every=60))
    assert labelled.impact_usd == hourly.impact_usd == minutely.impact_usd
    assert labelled.scope["endpoint"] == hourly.scope["endpoint"] == "chat"


def test_the_step_of_a_series_is_its_most_common_gap() -> None:
    assert sample_step([0, 60, 120, 180, 200]) == 60
    assert sample_step([0, 1, 2, 3]) == 1
    assert sample_step([5]) == 1
