"""Idle capacity (issue 16, point 3): idle GPU dollars above the target for the pool's work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.idle import recommend_idle
from tests.unit.recommend_data import T0, inputs, line

L4X4 = Decimal("4.6016")  # g6.12xlarge (4 x L4), us-east-1, the catalog's and the bill's rate


def _host(host: str, busy_gpus: int, kind: str) -> tuple[list[Any], list[Any], list[Any]]:
    """A g6.12xlarge billed a day; `busy_gpus` of its 4 GPUs held all day by `kind` work."""
    lines = [line(host, "g6.12xlarge", h, L4X4) for h in range(24)]
    samples = [
        {"ts": T0 + dt.timedelta(hours=h), "host": host, "gpu_uuid": f"{host}-{g}",
         "gpu_index": g, "gpu_model": "NVIDIA L4", "sample_seconds": 3600.0,
         "gr_engine_active": 0.9 if g < busy_gpus else 0.0,
         "namespace": "ml" if g < busy_gpus else None,
         "pod": f"{host}-w{g}" if g < busy_gpus else None}
        for h in range(24)
        for g in range(4)
    ]  # fmt: skip
    workloads = [{"workload_id": f"ml/{host}-w{g}", "kind": kind, "owner": "ana",
                  "tags": [("team", "search")], "namespace": "ml"} for g in range(busy_gpus)]  # fmt: skip
    return lines, samples, workloads


def _run(*hosts: tuple[str, int, str]) -> list[Finding]:
    lines: list[Any] = []
    samples: list[Any] = []
    workloads: list[Any] = []
    for host, busy, kind in hosts:
        a, b, c = _host(host, busy, kind)
        lines, samples, workloads = lines + a, samples + b, workloads + c
    return recommend_idle(inputs(lines, samples, workloads))


def test_an_inference_pool_half_idle_saves_the_idle_above_its_headroom() -> None:
    found = _run(("inf-a", 4, "inference_endpoint"), ("inf-b", 0, "inference_endpoint"))
    assert len(found) == 1
    f = found[0]
    cost = L4X4 * 48  # two hosts, a day
    idle = cost / 2  # inf-b's four GPUs held by nobody
    p50 = (idle - Decimal("0.3") * cost) * 30  # online inference keeps 30% as headroom
    assert f.impact_usd == p50.quantize(Decimal("0.01")) == Decimal("1325.26")
    assert f.evidence["savings_monthly_usd"] == {
        "p50": "1325.26", "low": str((p50 / 2).quantize(Decimal("0.01"))),
        "high": str((idle * 30).quantize(Decimal("0.01"))),
    }  # fmt: skip
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict)
    assert inputs["workload"] == "online_inference" and inputs["unheld_gpu_hours"] == 96.0
    assert f.scope["pool"] == "aws/us-east-1/g6.12xlarge" and f.owner == "search"
    assert f.actions[0].text.startswith("Scale the pool down")


def test_training_keeps_less_idle_and_a_busy_pool_has_nothing_to_save() -> None:
    # Three of four GPUs busy: 25% idle is within inference's 30%, above training's 10%.
    assert _run(("inf", 3, "inference_endpoint")) == []
    found = _run(("train", 3, "training_run"))
    assert len(found) == 1
    assert found[0].impact_usd == ((L4X4 * 24 / 4 - Decimal("0.1") * L4X4 * 24) * 30).quantize(
        Decimal("0.01")
    )
    assert _run(("busy", 4, "training_run")) == []
