"""Quantization candidates (issue 16, point 9): busy serving that costs more than training."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.quantize import recommend_quantization
from tests.unit.recommend_data import T0, inputs, line

L4 = Decimal("0.8048")  # g6.xlarge, a GPU-hour


def _host(host: str, kind: str, model: str, busy: float, hours: int) -> tuple[Any, Any, Any]:
    lines = [line(host, "g6.xlarge", h, L4) for h in range(hours)]
    samples = [{"ts": T0 + dt.timedelta(hours=h), "host": host, "gpu_uuid": f"{host}-0",
                "gpu_index": 0, "gpu_model": "NVIDIA L4", "sample_seconds": 3600.0,
                "gr_engine_active": busy, "namespace": "ml", "pod": host}
               for h in range(hours)]  # fmt: skip
    work = [{"workload_id": f"ml/{host}", "kind": kind, "owner": "ana", "namespace": "ml",
             "tags": [("team", "search"), ("model", model)], "capacity_type": None}]  # fmt: skip
    return lines, samples, work


def _run(*hosts: tuple[Any, Any, Any]) -> list[Finding]:
    return recommend_quantization(inputs(*([x for h in hosts for x in h[i]] for i in range(3))))


def test_busy_serving_that_costs_more_than_training_is_a_candidate() -> None:
    found = _run(_host("srv", "inference_endpoint", "atlas", 0.9, 24),
                 _host("trn", "training_run", "atlas", 0.9, 6))  # fmt: skip
    assert len(found) == 1
    f = found[0]
    monthly = L4 * 24 * 30
    assert f.scope["model"] == "atlas" and "4.0x its training" in f.title
    assert f.impact_usd == (monthly * 2 / 3).quantize(Decimal("0.01"))  # 3x throughput
    assert f.evidence["savings_monthly_usd"] == {
        "p50": str((monthly * 2 / 3).quantize(Decimal("0.01"))),
        "low": str((monthly / 2).quantize(Decimal("0.01"))),
        "high": str((monthly * 3 / 4).quantize(Decimal("0.01"))),
    }
    assert "high" in str(f.evidence["risk"]) and "Benchmark" in f.actions[0].text


def test_idle_serving_or_costlier_training_is_not() -> None:
    idle = _host("srv", "inference_endpoint", "atlas", 0.01, 24)  # not throughput-bound
    assert _run(idle) == []
    trained = (_host("srv", "inference_endpoint", "atlas", 0.9, 6),
               _host("trn", "training_run", "atlas", 0.9, 24))  # fmt: skip
    assert _run(*trained) == []
