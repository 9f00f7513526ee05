"""Pre-launch estimates, checked by hand against the catalog's prices."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from costline.governance.estimate import estimate, headline, markdown
from costline.governance.history import ASSUMED, Factors, duration_factors, predictive
from costline.manifest import ExperimentManifest
from costline.optimize.rates import PaidRate
from tests.unit.governance_data import cli, manifest

CENT = Decimal("0.01")
# gcp us-central1 a3-highgpu-8g (8 x H100-80GB), the catalog's prices per instance-hour
ON_DEMAND, SPOT = Decimal("88.4899999025753"), Decimal("50.6095408219178")
COMMIT_1Y, COMMIT_3Y = Decimal("61.383672143"), Decimal("38.864381115")
A3 = {
    "name": "pretrain-7b",
    "team": "fm",
    "resources": {"provider": "gcp", "region": "us-central1", "instance_type": "a3-highgpu-8g",
                  "nodes": 2},
    "duration_hours": 100,
    "checkpoint": {"interval_minutes": 30, "size_gb": 100, "keep_last": 3},
}  # fmt: skip
# Checkpoints: 3 kept x 100 GB, held for the P90 run (130 h) and 30 days after, at gcp
# us-central1 STANDARD's $0.02/GB-month: 300 x 0.02 x (130 + 720) / 730 = $6.99.
STORAGE = (300 * Decimal("0.02") * Decimal(850) / Decimal(730)).quantize(CENT)


def test_an_estimate_by_hand_from_catalog_prices() -> None:
    e = estimate(ExperimentManifest.model_validate(A3), "a3.yaml", ASSUMED)
    assert e.storage_usd == STORAGE == Decimal("6.99")
    assert (e.gpus, e.gpu_hours) == (16, Decimal("1600.00"))  # 2 nodes x 8 GPUs x 100 h
    by = {o.capacity: o for o in e.options}
    assert list(by) == ["on_demand", "spot", "commit_1y", "commit_3y"]
    # 2 instances x 100 h at the list price, P90 at 1.3x the hours (no history)
    assert (
        by["on_demand"].p50_usd == (ON_DEMAND * 200 + STORAGE).quantize(CENT) == Decimal("17704.99")
    )
    assert by["on_demand"].p90_usd == (ON_DEMAND * 260 + STORAGE).quantize(CENT)
    assert by["commit_1y"].p50_usd == (COMMIT_1Y * 200 + STORAGE).quantize(CENT)
    assert by["commit_3y"].p90_usd == (COMMIT_3Y * 260 + STORAGE).quantize(CENT)
    # Spot: a checkpoint every 0.5 h taking 5 min, a 10 min restart, an interruption every 24 h:
    # overhead = (5/60) / 0.5 + (0.5 / 2 + 10/60) / 24 = 0.18402777...
    extra = Decimal(5) / 60 / Decimal("0.5") + (Decimal("0.25") + Decimal(10) / 60) / 24
    spot = SPOT * 200 * (1 + extra) + STORAGE
    assert abs(by["spot"].p50_usd - spot) <= CENT and by["spot"].p50_usd == Decimal("11991.61")
    assert headline(e) == (
        "This training will cost $17,705 (P90 $23,014) on-demand, $11,992 on spot. Approve?"
    )
    assert e.p90_usd == by["on_demand"].p90_usd  # the capacity it asks for
    # the same H100-80GB elsewhere: AWS p5.48xlarge lists $55.04/h for 8 GPUs, $6.88/GPU-hour
    first = e.alternatives[0]
    assert (first["provider"], first["region"], first["instance_type"]) == (
        "aws", "us-east-1", "p5.48xlarge")  # fmt: skip
    assert first["on_demand_p50_usd"] == Decimal("55.04") / 8 * 1600 == Decimal("11008")
    assert len(e.alternatives) == 5
    assert "Elsewhere in the catalog (on-demand, P50): aws us-east-1 p5.48xlarge $11,008;" in (
        markdown([e])
    )


def test_the_rate_the_organization_paid_and_history_scale_the_estimate() -> None:
    paid = PaidRate("gcp", "us-central1", "a3-highgpu-8g", 8, Decimal(100), Decimal(5000), None,
                    None)  # fmt: skip
    factors = Factors(Decimal("1.25"), Decimal("1.7"), 6, "6 finished runs")
    e = estimate(ExperimentManifest.model_validate(A3), "a3.yaml", factors, [paid])
    committed = e.option("committed")
    assert committed is not None and committed.usd_per_gpu_hour == Decimal("6.25")  # 5000/100/8
    storage = (300 * Decimal("0.02") * (170 + Decimal(720)) / 730).quantize(CENT)  # 1.7 x 100 h
    assert committed.p50_usd == (Decimal("6.25") * 1600 * Decimal("1.25") + storage).quantize(CENT)
    assert committed.p90_usd == (Decimal("6.25") * 1600 * Decimal("1.7") + storage).quantize(CENT)
    assert "$12,507 at your committed rate" in headline(e)  # 12500 + $6.99 of checkpoints


def test_a_gpu_type_is_placed_on_the_cheapest_gpu_hour_and_a_sweep_counts_its_trials() -> None:
    m = ExperimentManifest.model_validate({
        "name": "sweep", "kind": "sweep", "trials": 10, "duration_hours": 2,
        "resources": {"gpu_type": "H100", "gpus": 8, "provider": "aws", "region": "us-east-1"}})  # fmt: skip
    e = estimate(m, "s.yaml", ASSUMED)
    assert e.placement is not None and e.placement.per_gpu_hour == Decimal("6.88")
    assert e.gpu_hours == Decimal("160.00")  # 10 trials x 8 GPUs x 2 h
    assert e.option("on_demand") is not None
    assert e.options[0].p50_usd == Decimal("1100.80")  # 6.88 x 160, no checkpoints
    assert e.option("spot") is None  # the catalog has no AWS Spot price: unpriced, not zero


def test_unpriced_is_said_never_zero() -> None:
    no_time = ExperimentManifest.model_validate({"name": "x", "resources": {"gpu_type": "H100"}})
    unknown = ExperimentManifest.model_validate(
        {"name": "y", "resources": {"gpu_type": "Z9000", "gpus": 1}, "duration_hours": 5}
    )
    a, b = estimate(no_time, "f", ASSUMED), estimate(unknown, "f", ASSUMED)
    assert a.options == () and a.p90_usd is None
    assert headline(a) == (
        "This training cannot be priced: the manifest gives no duration_hours nor steps with "
        "steps_per_hour."
    )
    assert b.unpriced == "the price catalog has no on-demand price for Z9000 in any provider"


def _runs(rows: list[tuple[str, str, float, float]]) -> ibis.Table:
    t0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    return ibis.memtable(pa.Table.from_pylist([
        {"kind": kind, "team": team, "start": t0, "end": t0 + dt.timedelta(hours=took),
         "tags": [("expected_hours", str(expected))]}
        for team, kind, expected, took in rows
    ], schema=pa.schema([("kind", pa.string()), ("team", pa.string()),
                         ("start", pa.timestamp("us", tz="UTC")),
                         ("end", pa.timestamp("us", tz="UTC")),
                         ("tags", pa.map_(pa.string(), pa.string()))])))  # fmt: skip


def test_history_gives_p50_and_p90_of_actual_over_expected_hours() -> None:
    search = [("search", "training_run", 10.0, h) for h in (10, 11, 12, 13, 14, 20)]
    others = [("fm", "training_run", 4.0, 4.0 * r) for r in (1, 1, 1, 1, 3)]
    sweeps = [("fm", "sweep_trial", 1.0, 1.0) for _ in range(4)]
    runs = _runs(search + others + sweeps)
    mine = duration_factors(runs, "search", "training_run")
    # ratios 1.0 1.1 1.2 1.3 1.4 2.0: median 1.25; the P90 at rank (6 + 1) x 0.9 = 6.3 of 6 is
    # the largest, 2.0 (the plain sample quantile, 1.7, is one a next run exceeds 2 times in 7)
    assert (mine.p50, mine.p90, mine.runs) == (Decimal("1.25"), Decimal("2.0"), 6)
    assert (
        mine.basis == "6 finished runs of team search, kind training_run: actual / expected hours"
    )
    # fm has five training runs: its own history
    fm = duration_factors(runs, "fm", "training_run")
    assert (fm.p50, fm.runs) == (Decimal("1.0"), 5)
    # a new team: the kind's history across teams (11 runs)
    new = duration_factors(runs, "new", "training_run")
    # 1 1 1 1 1 1.1 1.2 1.3 1.4 2 3: rank 12 x 0.9 = 10.8, between 2.0 and 3.0: 2.8
    assert (new.runs, new.p50, new.p90) == (11, Decimal("1.1"), Decimal("2.8"))
    # a sweep: four trials are too few; the assumption is stated
    assert duration_factors(runs, "fm", "sweep") == ASSUMED
    assert ASSUMED.p90 == Decimal("1.3") and "1.3x" in ASSUMED.basis


def test_the_cli_prints_the_comment_and_json(tmp_path: Path) -> None:
    path = manifest(tmp_path, "a3", json.dumps(A3))
    none = f"duckdb:///{tmp_path / 'none.duckdb'}"
    text = cli("--ledger", none, "estimate", str(path))
    assert text.exit_code == 0, text.output
    assert "**This training will cost $17,705 (P90 $23,014) on-demand" in text.output
    assert "| spot | 7.49 | $11,992 | $15,587 |" in text.output
    out = json.loads(cli("--ledger", none, "estimate", str(path), "-f", "json").output)
    assert out["version"] == 1
    data = out["estimates"]
    assert data[0]["options"][0] == {
        "capacity": "on_demand", "usd_per_gpu_hour": "11.06", "p50_usd": "17704.99",
        "p90_usd": "23014.39", "note": "catalog list"}  # fmt: skip
    assert data[0]["history"] == ASSUMED.basis and data[0]["checkpoint_storage_usd"] == "6.99"
    assert markdown([]) == "\n"


def test_formats_other_than_markdown_and_json_are_refused(tmp_path: Path) -> None:
    from costline.errors import CostlineError

    path = manifest(tmp_path, "a3", json.dumps(A3))
    result = cli(
        "--ledger", f"duckdb:///{tmp_path / 'n.duckdb'}", "estimate", str(path), "-f", "csv"
    )
    assert isinstance(result.exception, CostlineError) and result.exception.exit_code == 2
    assert "markdown (default, for a pull-request comment) or json" in str(result.exception)


def test_predictive_level_puts_the_quantile_at_rank_n_plus_1_p() -> None:
    assert predictive(0.5, 7) == 0.5  # the median is the plain one
    assert predictive(0.9, 10) == pytest.approx(8.9 / 9)  # rank 9.9 of 10, not 9.1
    assert predictive(0.9, 5) == 1.0  # rank 5.4 of 5: the largest


def test_a_cloud_the_catalog_lacks_is_priced_at_what_the_bills_show_was_paid() -> None:
    lam = ExperimentManifest.model_validate({
        "name": "ft", "resources": {"provider": "lambda", "region": "us-south-1",
                                    "instance_type": "gpu_8x_h100_sxm5", "gpu_type": "H100-80GB"},
        "duration_hours": 10})  # fmt: skip
    assert estimate(lam, "ft.yaml", ASSUMED).unpriced is not None  # no catalog price, no bills
    paid = PaidRate("lambda", "us-south-1", "gpu_8x_h100_sxm5", 8, Decimal(100), Decimal(2392),
                    None, None)  # fmt: skip
    e = estimate(lam, "ft.yaml", ASSUMED, [paid])
    od = e.option("on_demand")
    assert od is not None and od.usd_per_gpu_hour == Decimal("2.99")  # 2392 / 100 h / 8 GPUs
    assert od.p50_usd == Decimal("239.20") and od.p90_usd == Decimal("310.96")  # x 1.3
    assert "bills" in od.note and [o.capacity for o in e.options] == ["on_demand"]
    assert all(a["provider"] != "lambda" for a in e.alternatives)  # H100s elsewhere in the catalog
