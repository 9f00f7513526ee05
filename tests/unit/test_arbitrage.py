"""GPU arbitrage (issue 16, point 8): the same GPU cheaper elsewhere, less moving the data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.model import Finding
from costline.optimize.arbitrage import recommend_arbitrage
from costline.schema import STORAGE_OBJECTS
from tests.unit.recommend_data import T0, inputs, line

ND96 = Decimal("98.32")  # Standard_ND96isr_H100_v5, eastus: 8 x H100-80GB, $12.29 a GPU-hour
P5_GPU_HOUR = Decimal("6.88")  # p5.48xlarge, us-east-1: the cheapest H100-80GB in the catalog


def _run(kind: str, stored_gb: int | None = 0) -> list[Finding]:
    lines = [line("nd", "Standard_ND96isr_H100_v5", h, ND96, "Microsoft", "eastus")
             for h in range(24)]  # fmt: skip
    samples = [{"ts": T0 + dt.timedelta(hours=h), "host": "nd", "gpu_uuid": f"nd-{g}",
                "gpu_index": g, "gpu_model": "NVIDIA H100", "sample_seconds": 3600.0,
                "gr_engine_active": 0.9, "namespace": "ml", "pod": "job"}
               for h in range(24) for g in range(8)]  # fmt: skip
    work = [{"workload_id": "ml/job", "kind": kind, "owner": "ana", "tags": [("team", "search")],
             "namespace": "ml", "capacity_type": None}]  # fmt: skip
    store: list[dict[str, Any]] = [
        {"snapshot_date": T0.date(), "bucket": "data", "size_bytes": stored_gb * 10**9,
         "team": "search", "region": "eastus"}
    ] if stored_gb is not None else [
        {"snapshot_date": T0.date(), "bucket": "other", "size_bytes": 5 * 10**12,
         "team": "ads", "region": "eastus"}  # another team's data: says nothing of search's
    ]  # fmt: skip
    return recommend_arbitrage(inputs(
        lines, samples, work,
        storage=ibis.memtable(pa.Table.from_pylist(store, schema=STORAGE_OBJECTS.to_pyarrow())),
    ))  # fmt: skip


def test_training_moves_to_the_cheapest_same_gpu_less_its_data_transfer() -> None:
    found = _run("training_run", stored_gb=1000)
    assert len(found) == 1
    f = found[0]
    gap = (ND96 / 8 - P5_GPU_HOUR) * 192 * 30  # 8 GPUs a day, per 30 days
    transfer = 1000 * Decimal("0.09")
    assert f.impact_usd == (gap - transfer / 3).quantize(Decimal("0.01"))
    savings = f.evidence["savings_monthly_usd"]
    assert isinstance(savings, dict)
    assert savings["low"] == str((gap - transfer).quantize(Decimal("0.01")))
    assert savings["high"] == str(gap.quantize(Decimal("0.01")))
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict) and inputs["target"] == "aws us-east-1 (p5.48xlarge)"


def test_an_endpoint_stays_where_its_users_are() -> None:
    assert _run("inference_endpoint") == []


def test_unknown_data_size_leaves_the_transfer_unpriced_not_free() -> None:
    """No inventory of the team's data in the region: the saving is the GPU price gap before
    transfer, the low end is zero (the copy may eat the gain), the finding says the transfer is
    unpriced, and the confidence drops a step (a day's window alone gives medium)."""
    found = _run("training_run", stored_gb=None)
    assert len(found) == 1
    f = found[0]
    gap = ((ND96 / 8 - P5_GPU_HOUR) * 192 * 30).quantize(Decimal("0.01"))
    assert f.impact_usd == gap
    assert f.evidence["savings_monthly_usd"] == {"p50": str(gap), "low": "0.00", "high": str(gap)}
    assert f.evidence["unpriced"] == ["data transfer"]
    assert f.evidence["confidence"] == "low"
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict)
    assert inputs["transfer_usd"] == "unpriced" and inputs["data_gb"] == "unknown"
    assert "transfer unpriced" in str(f.evidence["risk"])
    assert "unknown" in f.summary


def test_known_data_size_keeps_its_confidence() -> None:
    f = _run("training_run", stored_gb=1000)[0]
    assert "unpriced" not in f.evidence and f.evidence["confidence"] == "medium"
