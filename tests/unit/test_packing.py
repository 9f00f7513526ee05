"""Packing small workloads (issue 16, point 2): several small ones share a GPU, with dollars."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.packing import recommend_packing
from tests.unit.recommend_data import T0, inputs, line

G6E = Decimal("10.49264")  # g6e.12xlarge: 4 x L40S-48GB, us-east-1


def _run(fb_mib: float, busy: float) -> list[Finding]:
    """One g6e.12xlarge a day, each of its four GPUs held by its own workload."""
    lines = [line("h", "g6e.12xlarge", t, G6E) for t in range(24)]
    samples = [{"ts": T0 + dt.timedelta(hours=t), "host": "h", "gpu_uuid": f"h-{g}",
                "gpu_index": g, "gpu_model": "NVIDIA L40S", "sample_seconds": 3600.0,
                "gr_engine_active": busy, "sm_active": busy, "fb_used_mib": fb_mib,
                "namespace": "ml", "pod": f"w{g}"} for t in range(24) for g in range(4)]  # fmt: skip
    work: list[dict[str, Any]] = [
        {"workload_id": f"ml/w{g}", "kind": "batch_job", "owner": "ana", "namespace": "ml",
         "tags": [("team", "vision")], "capacity_type": None} for g in range(4)
    ]  # fmt: skip
    return recommend_packing(inputs(lines, samples, work))


def test_four_small_workloads_share_two_gpus() -> None:
    # 8 GiB peak (9.6 with headroom: five fit in 48 GB) and 20% busy (three fit in 70%): 3.
    found = _run(8 * 1024.0, 0.2)
    assert len(found) == 1
    f = found[0]
    inputs = f.evidence["inputs"]
    assert (
        isinstance(inputs, dict) and inputs["per_gpu"] == 3 and inputs["sharing"] == "time-slicing"
    )
    held = G6E * 24 * 30  # the four workloads held the whole host
    assert abs(f.impact_usd - held * 2 / 3) < Decimal("0.01")  # type: ignore[operator]
    assert "replicas: 3" in f.actions[0].text


def test_busy_or_large_workloads_keep_their_gpus() -> None:
    assert _run(8 * 1024.0, 0.5) == []  # busy: two do not fit in 70% of a GPU
    assert _run(30 * 1024.0, 0.1) == []  # large: two do not fit in 48 GB
