"""Commitments held (issue 16, points 4 and 7): unused hours, filled with deferrable work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.held import recommend_commitment_use
from tests.unit.recommend_data import T0, inputs, line

L4 = Decimal("0.8048")  # g6.xlarge, us-east-1


def _commitment(unused_hours: int) -> list[dict[str, Any]]:
    """A Savings Plan billing $10 an hour for a day: used, except its first `unused_hours`."""
    out = []
    for h in range(24):
        status = "Unused" if h < unused_hours else "Used"
        out.append({**line(f"sp-{h}", "m7i.xlarge", h, Decimal(10)),
                    "CommitmentDiscountId": "arn:sp/1", "CommitmentDiscountName": "ml-sp",
                    "CommitmentDiscountStatus": status, "PricingCategory": "Committed"})  # fmt: skip
    return out


def _run(unused_hours: int, training_hours: int) -> list[Finding]:
    lines = _commitment(unused_hours)
    lines += [line("trn", "g6.xlarge", h, L4) for h in range(training_hours)]
    samples = [{"ts": T0 + dt.timedelta(hours=h), "host": "trn", "gpu_uuid": "trn-0",
                "gpu_index": 0, "gpu_model": "NVIDIA L4", "sample_seconds": 3600.0,
                "gr_engine_active": 0.9, "namespace": "ml", "pod": "job"}
               for h in range(training_hours)]  # fmt: skip
    work = [{"workload_id": "ml/job", "kind": "training_run", "namespace": "ml",
             "tags": [("team", "search")]}]  # fmt: skip
    return recommend_commitment_use(inputs(lines, samples, work))


def test_unused_hours_are_filled_with_deferrable_on_demand_work() -> None:
    found = _run(unused_hours=8, training_hours=24)
    assert len(found) == 1
    f = found[0]
    fill = L4 * 24  # the day's on-demand training, less than the $80 unused
    assert f.impact_usd == (fill * 30).quantize(Decimal("0.01"))
    e = f.evidence
    inputs_ = e["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["utilization"] == round(16 / 24, 4)
    # The six idlest hours (here all alike: the earliest six).
    assert inputs_["idle_hours_utc"] == "00:00, 01:00, 02:00, 03:00, 04:00, 05:00"
    assert e["savings_monthly_usd"] == {"p50": "579.46", "low": "289.73", "high": "2400.00"}
    assert "ingest the FOCUS Contract Commitment dataset" in f.summary
    assert f.scope == {"commitment": "ml-sp", "recommendation": "commitment_use"}


def test_a_well_used_commitment_or_nothing_to_move_is_not_a_recommendation() -> None:
    assert _run(unused_hours=1, training_hours=24) == []  # 4% unused
    assert _run(unused_hours=8, training_hours=0) == []  # no deferrable work to fill it
