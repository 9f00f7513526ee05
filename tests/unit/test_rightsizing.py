"""GPU rightsizing (issue 16, point 2): a pool whose work fits a cheaper GPU, with its dollars."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.optimize.rightsizing import recommend_rightsizing
from costline.optimize.run import recommend
from tests.helpers import run_costline
from tests.unit.recommend_data import END, T0, inputs, line

CLOCK = FixedClock(END)
P4D_LIST = Decimal("21.957642")  # the catalog's p4d.24xlarge, us-east-1


def _samples(host: str, gpus: int, fb_mib: float, busy: float) -> list[dict[str, Any]]:
    return [
        {"ts": T0 + dt.timedelta(hours=h), "host": host, "gpu_uuid": f"{host}-{g}",
         "gpu_index": g, "gpu_model": "NVIDIA A100-SXM4-40GB", "fb_used_mib": fb_mib,
         "sm_active": busy, "sample_seconds": 3600.0}
        for h in range(24)
        for g in range(gpus)
    ]  # fmt: skip


def _run(pools: list[tuple[str, str, Decimal, int, float, float]]) -> list[Finding]:
    lines, samples = [], []
    for host, instance, paid, gpus, fb, busy in pools:
        lines += [line(host, instance, h, paid) for h in range(24)]
        samples += _samples(host, gpus, fb, busy)
    return recommend_rightsizing(inputs(lines, samples))


def test_an_a100_pool_at_ten_percent_with_small_memory_moves_to_a_cheaper_gpu() -> None:
    paid = P4D_LIST * Decimal("0.8")  # the organization pays 20% under list
    found = _run([(f"gpu-{i}", "p4d.24xlarge", paid, 8, 10_000.0, 0.10) for i in range(2)])
    assert len(found) == 1
    f = found[0]
    e = f.evidence
    inputs = e["inputs"]
    assert isinstance(inputs, dict)
    # 9.8 GiB peak + 20% fits 16 GB; 10% of an A100 (31 TFLOPS) is under 70% of a T4's 65:
    # the cheapest 8-GPU type in us-east-1 that holds both is g4dn.metal (8 x T4) at $7.824/h.
    assert inputs["recommended_instance_type"] == "g4dn.metal"
    hours_a_month = Decimal(48) * 30  # two hosts, a day billed: 48 hours a day
    p50 = (paid - Decimal("7.824") * Decimal("0.8")) * hours_a_month
    low = (paid - Decimal("7.824")) * hours_a_month  # the discount does not carry over
    assert f.impact_usd == p50.quantize(Decimal("0.01"))
    assert e["savings_monthly_usd"] == {"p50": str(p50.quantize(Decimal("0.01"))),
                                        "low": str(low.quantize(Decimal("0.01"))),
                                        "high": str(p50.quantize(Decimal("0.01")))}  # fmt: skip
    assert e["current_monthly_usd"] == str((paid * hours_a_month).quantize(Decimal("0.01")))
    assert e["coverage"] == 1.0 and e["confidence"] == "medium"  # one day: not a week
    assert "no benchmark" in str(e["risk"])
    assert f.scope == {"pool": "aws/us-east-1/p4d.24xlarge", "team": "search",
                       "recommendation": "gpu_rightsizing"}  # fmt: skip
    assert f.owner == "search"  # no owner configured: the team, as every recommendation says
    assert f.actions and "g4dn.metal" in f.actions[0].text
    assert f.actions[0].estimated_monthly_savings_usd == f.impact_usd


def test_busy_large_idle_and_unpriced_pools_are_not_resized() -> None:
    busy = ("busy", "p4d.24xlarge", P4D_LIST, 8, 38_000.0, 0.85)  # needs an A100's compute
    large = ("large", "p4d.24xlarge", P4D_LIST, 8, 39_000.0, 0.10)  # no cheaper 47 GB GPU
    idle = ("idle", "p4d.24xlarge", P4D_LIST, 8, 1_000.0, 0.01)  # idle capacity, not a resize
    assert _run([busy]) == [] and _run([large]) == [] and _run([idle]) == []
    unpriced = ("lam", "gpu_8x_a100_80gb_sxm4", Decimal("14.32"), 8, 1_000.0, 0.1)
    assert _run([unpriced]) == []


def test_a_recommendation_no_longer_found_is_returned_stale(ledger: Ledger) -> None:
    old = _run([(f"gpu-{i}", "p4d.24xlarge", P4D_LIST, 8, 10_000.0, 0.10) for i in range(2)])
    ledger.write([], source="recommend", findings=old)
    run = recommend(ledger, Rules(), end=END, days=1, clock=CLOCK)  # its ledger has no bills
    assert run.found == [] and [f.fingerprint for f in run.stale] == [old[0].fingerprint]
    # The pool is gone from the bills: its whole cost is the realized saving, beside the estimate.
    e = run.stale[0].evidence
    assert e["realized_monthly_usd"] == old[0].evidence["current_monthly_usd"]
    assert e["pool_monthly_usd_after"] == "0.00"
    assert "No longer applies" in run.stale[0].summary


def test_recommend_command_rejects_an_unknown_kind() -> None:
    done = run_costline("recommend", "--kind", "crystal_ball")
    assert done.returncode == 2 and "gpu_rightsizing" in done.stderr


def test_recommend_command_resolves_what_no_longer_applies_with_its_realized_saving(
    tmp_path: Path,
) -> None:
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    old = _run([(f"gpu-{i}", "p4d.24xlarge", P4D_LIST, 8, 10_000.0, 0.10) for i in range(2)])
    with Ledger(url) as led:
        led.write([], source="recommend", findings=old)
    sample = Path(__file__).parents[1] / "fixtures/focus/focus_sample.csv"
    assert run_costline("--ledger", url, "ingest", "focus", str(sample)).returncode == 0
    done = run_costline("--ledger", url, "recommend", "--format", "json")
    assert done.returncode == 0, done.stderr
    with Ledger(url, read_only=True) as led:
        stored = led.con.execute("SELECT status, body FROM findings").fetchall()
    assert [s for s, _ in stored] == ["resolved"]
    assert '"realized_monthly_usd"' in stored[0][1]
