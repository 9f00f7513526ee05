"""Capacity mix (issue 16, point 4): tolerant work on on-demand, priced on Spot net of interruptions."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest

from costline.model import Finding
from costline.optimize.capacity import overhead, recommend_spot, young_daly
from tests.unit.recommend_data import T0, inputs, line

A2 = Decimal("3.673385")  # a2-highgpu-1g, us-central1, on-demand (catalog 2026-07-30)
A2_SPOT = Decimal("1.92802")


def _host(host: str, instance: str, rate: Decimal, kind: str, *, provider: str = "Google Cloud",
          region: str = "us-central1", tags: dict[str, str] | None = None,
          capacity: str | None = None) -> tuple[list[Any], list[Any], list[Any]]:  # fmt: skip
    lines = [line(host, instance, h, rate, provider, region) for h in range(24)]
    samples = [{"ts": T0 + dt.timedelta(hours=h), "host": host, "gpu_uuid": f"{host}-0",
                "gpu_index": 0, "gpu_model": "NVIDIA A100", "sample_seconds": 3600.0,
                "gr_engine_active": 0.9, "namespace": "ml", "pod": f"{host}-job"}
               for h in range(24)]  # fmt: skip
    work = [{"workload_id": f"ml/{host}-job", "kind": kind, "owner": "ana",
             "tags": [("team", "vision"), *(tags or {}).items()], "namespace": "ml",
             "capacity_type": capacity}]  # fmt: skip
    return lines, samples, work


def _run(*hosts: tuple[list[Any], list[Any], list[Any]]) -> list[Finding]:
    lines = [x for h in hosts for x in h[0]]
    samples = [x for h in hosts for x in h[1]]
    work = [x for h in hosts for x in h[2]]
    return recommend_spot(inputs(lines, samples, work))


def test_young_daly_interval_and_the_overhead_it_minimizes() -> None:
    assert young_daly(24.0) == pytest.approx(2.0)  # sqrt(2 x 5 min x 24 h)
    best = overhead(2.0, 24.0)
    assert best == pytest.approx(5 / 60 / 2 + (1 + 10 / 60) / 24)
    assert overhead(0.5, 24.0) > best and overhead(8.0, 24.0) > best


def test_training_on_demand_saves_the_spot_discount_net_of_interruptions() -> None:
    found = _run(
        _host("tr", "a2-highgpu-1g", A2, "training_run"),
        _host("tr30", "a2-highgpu-1g", A2, "fine_tune", tags={"checkpoint_interval_min": "30"}),
        _host("inf", "a2-highgpu-1g", A2, "inference_endpoint"),  # users wait on it: never
        _host("spot", "a2-highgpu-1g", A2, "training_run", capacity="spot"),  # already there
    )
    assert len(found) == 1
    f = found[0]
    ratio = float(A2_SPOT / A2)
    day = float(A2) * 24
    p50 = day * (1 - ratio * (1 + overhead(2.0, 24))) + day * (1 - ratio * (1 + overhead(0.5, 24)))
    assert float(f.impact_usd or 0) == pytest.approx(p50 * 30, abs=0.01)
    savings = f.evidence["savings_monthly_usd"]
    assert isinstance(savings, dict)
    assert Decimal(str(savings["low"])) < f.impact_usd < Decimal(str(savings["high"]))
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict) and inputs["workload_kinds"] == ["fine_tune", "training_run"]
    assert "120 minutes" in f.actions[0].text and f.scope["pool"] == "gcp/us-central1/a2-highgpu-1g"
    assert not math.isnan(float(f.impact_usd or 0))


def test_no_spot_price_means_no_recommendation_not_a_zero_price() -> None:
    p4d = _host("p4", "p4d.24xlarge", Decimal("21.957642"), "training_run", provider="AWS",
                region="us-east-1")  # fmt: skip
    assert _run(p4d) == []
