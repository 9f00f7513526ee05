"""The demo organization's telemetry and usage: deterministic, and readable by the real sources."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from costline.cli.demo import ingest_activity
from costline.demo.activity import ActivityManifest, generate_activity
from costline.demo.billing import BillingManifest, generate_billing
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus


def _generate(out: Path) -> tuple[BillingManifest, ActivityManifest]:
    billing = generate_billing(out, seed=11, days=10, scale=0.3)
    activity = generate_activity(out, billing, seed=11, telemetry_hours=3)
    return billing, activity


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, ActivityManifest, Ledger]]:
    out = tmp_path_factory.mktemp("org")
    billing, activity = _generate(out)
    with Ledger(f"duckdb://{out / 'ledger.duckdb'}") as ledger:
        ingest_focus(ledger, [out / f.path for f in billing.files])
        rows = ingest_activity(ledger, activity, Console(quiet=True))
        assert all(r["rows"] > 0 for r in rows), rows
        yield out, activity, ledger


def _sql(ledger: Ledger, query: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = ledger.backend.con.sql(query).fetchall()
    return rows


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    _, first = _generate(tmp_path / "a")
    _, second = _generate(tmp_path / "b")
    names = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert names == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    for name in names:
        if name.suffix != ".json" or name.name in ("activity_truth.json",):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.dcgm_samples == second.dcgm_samples > 0


def test_dcgm_samples_and_pods_match(demo: tuple[Path, ActivityManifest, Ledger]) -> None:
    out, activity, ledger = demo
    truth = json.loads((out / "activity_truth.json").read_text())
    [(samples,)] = _sql(ledger, "SELECT count(*) FROM gpu_samples")
    assert samples == truth["dcgm"]["expected_samples"] == activity.dcgm_samples
    # Every GPU of every host running in the window, scrapes for some and Parquet for the rest.
    hosts = truth["dcgm"]["hosts"]
    assert {h["format"] for h in hosts} == {"text", "parquet"}
    [(gpus,)] = _sql(ledger, "SELECT count(DISTINCT gpu_uuid) FROM gpu_samples")
    assert gpus == sum(h["gpu_count"] for h in hosts)
    # Each whole GPU counted once per running minute, however many pods time-slice it.
    mig = {
        r[0]
        for r in _sql(ledger, "SELECT DISTINCT host FROM gpu_samples WHERE mig_profile IS NOT NULL")
    }
    [(minutes,)] = _sql(
        ledger,
        "SELECT sum(sample_seconds * time_slice_share) / 60 FROM gpu_samples WHERE mig_profile IS NULL",
    )
    expected = sum(h["gpu_count"] * h["active_hours"] * 60 for h in hosts if h["host"] not in mig)
    assert mig and round(minutes) == expected
    pods = {
        r[0] for r in _sql(ledger, "SELECT DISTINCT pod FROM gpu_samples WHERE pod IS NOT NULL")
    }
    workloads = {
        str(r[0]).split("/", 1)[1]
        for r in _sql(ledger, "SELECT workload_id FROM workloads WHERE source = 'kubernetes'")
    }
    assert pods and pods == workloads
    [(jobs,)] = _sql(
        ledger, "SELECT count(DISTINCT job_id) FROM gpu_samples WHERE job_id IS NOT NULL"
    )
    slurm = {r[0] for r in _sql(ledger, "SELECT workload_id FROM workloads WHERE source = 'slurm'")}
    assert jobs >= 1 and slurm
    kinds = {
        r[0] for r in _sql(ledger, "SELECT DISTINCT kind FROM workloads WHERE source = 'slurm'")
    }
    assert kinds <= {"training_run", "fine_tune"}


def test_mig_and_time_sliced_rows(demo: tuple[Path, ActivityManifest, Ledger]) -> None:
    _, _, ledger = demo
    [(mig,)] = _sql(ledger, "SELECT count(*) FROM gpu_samples WHERE mig_profile = '3g.20gb'")
    assert mig > 0
    [(sliced,)] = _sql(ledger, "SELECT count(*) FROM gpu_samples WHERE time_slice_share = 0.5")
    assert sliced > 0
    [(requested,)] = _sql(
        ledger, "SELECT sum(gpus_requested) FROM workloads WHERE gpus_requested < 1"
    )
    assert requested is not None and float(str(requested)) > 0  # MIG slices as fractions


def test_idle_notebooks_and_busy_training(demo: tuple[Path, ActivityManifest, Ledger]) -> None:
    _, _, ledger = demo
    rows: dict[str, Any] = dict(
        _sql(
            ledger,
            "SELECT w.kind, avg(g.gr_engine_active) FROM gpu_samples g JOIN workloads w "
            "ON w.workload_id = g.namespace || '/' || g.pod GROUP BY 1",
        )
    )
    assert float(str(rows["notebook"])) < 0.1
    [(busy, used)] = _sql(
        ledger,
        "SELECT avg(gr_engine_active), min(fb_used_mib) FROM gpu_samples WHERE job_id IS NOT NULL",
    )
    assert float(str(busy)) > 0.8 and float(str(used)) > 0


def test_llm_priced_storage_flagged_annotations(
    demo: tuple[Path, ActivityManifest, Ledger],
) -> None:
    out, activity, ledger = demo
    truth = json.loads((out / "activity_truth.json").read_text())
    by_app: dict[str, int] = dict(_sql(ledger, "SELECT app, count(*) FROM llm_requests GROUP BY 1"))
    assert by_app == truth["llm_requests_per_app"] and len(by_app) >= 3
    [(unpriced,)] = _sql(ledger, "SELECT count(*) FROM llm_requests WHERE cost_usd IS NULL")
    assert unpriced == 0
    [(cached,)] = _sql(ledger, "SELECT sum(cached_input_tokens) FROM llm_requests")
    assert int(str(cached)) > 0
    [(ckpt, ckpt_bytes)] = _sql(
        ledger, "SELECT count(*), sum(size_bytes) FROM storage_objects WHERE is_checkpoint"
    )
    assert ckpt == sum(b["checkpoint_objects"] for b in truth["storage"]) > 0
    assert ckpt_bytes == sum(b["checkpoint_bytes"] for b in truth["storage"])
    [(spaced,)] = _sql(ledger, "SELECT count(*) FROM storage_objects WHERE key LIKE '% %'")
    assert spaced > 0  # URL-encoded keys came back decoded
    [(notes,)] = _sql(ledger, "SELECT count(*) FROM annotations")
    assert notes == activity.annotations > 0


def test_allocation_recovers_true_owners_and_shares(
    demo: tuple[Path, ActivityManifest, Ledger],
) -> None:
    """GPU-time allocation finds who truly held each GPU, and how much (activity_truth.json)."""
    from costline.allocation.allocate import allocate

    out, activity, ledger = demo
    truth = json.loads((out / "activity_truth.json").read_text())["allocation"]
    day = activity.window_start.replace(hour=0)  # whole days: Azure and GCP bill daily lines
    a = allocate(
        ledger.table("cost_lines"),
        ledger.table("gpu_samples"),
        ledger.table("workloads"),
        day,
        day + dt.timedelta(days=1),
    )
    rows = [
        r
        for r in a.rows.to_pylist()
        # Telemetry's split (hours with samples); hours without follow schedules (test_allocation).
        if r["kind"].startswith("gpu_") and r["kind"] not in ("gpu_unobserved", "gpu_scheduled")
    ]
    held: dict[str, float] = {}
    capacity: dict[str, float] = {}
    for r in rows:
        capacity[r["host"]] = capacity.get(r["host"], 0.0) + r["gpu_seconds"]
        if r["holder"]:
            held[r["holder"]] = held.get(r["holder"], 0.0) + r["gpu_seconds"]
            assert r["team"] == truth["workloads"][r["holder"]]["team"], r
    expected = truth["workloads"]
    assert set(held) == set(expected)
    for wid, seconds in held.items():
        true = expected[wid]
        assert seconds == pytest.approx(true["gpu_seconds"], rel=1e-9), wid
        share = seconds / capacity[true["host"]]
        true_share = true["gpu_seconds"] / truth["host_capacity_gpu_seconds"][true["host"]]
        assert share == pytest.approx(true_share, rel=1e-9), wid


def test_declared_runs_and_endpoints_cost_whole(
    demo: tuple[Path, ActivityManifest, Ledger],
) -> None:
    """Endpoints get a cost per prediction from their served counts; the training runs that
    declare storage get their buckets' share; lifecycle coverage is reported."""
    from costline.allocation.allocate import allocate
    from costline.attribution.compliance import lifecycle_coverage
    from costline.attribution.registry import declared, links
    from costline.economics.declared import declared_costs
    from costline.economics.unit_costs import gpu_units

    _, activity, ledger = demo
    day = activity.window_start.replace(hour=0)
    end = day + dt.timedelta(days=1)
    t = {n: ledger.table(n) for n in ("cost_lines", "gpu_samples", "workloads", "metrics",
                                      "storage_objects", "storage_lifecycle")}  # fmt: skip
    a = allocate(t["cost_lines"], t["gpu_samples"], t["workloads"], day, end)
    per_workload, _ = gpu_units(a, t["workloads"], t["gpu_samples"])
    entries = declared(t["workloads"])
    linked = {
        r["workload_id"]: r["entry"]
        for r in links(t["workloads"], entries).to_pyarrow().to_pylist()
    }
    rows = {r["name"]: r for r in declared_costs(entries, linked, per_workload, t["cost_lines"],
                                                  t["storage_objects"], t["metrics"], day, end)}  # fmt: skip
    served = {}
    for line in activity.metrics_file.read_text().splitlines()[1:]:
        _, metric, value, endpoint = line.split(",")
        if metric == "inference_requests":
            served[endpoint] = served.get(endpoint, 0) + int(value)
    endpoints = [r for r in rows.values() if r["kind"] == "inference_endpoint"]
    assert endpoints and {r["name"] for r in endpoints} == set(served)
    for r in endpoints:
        assert r["jobs"] > 0 and r["gpu_cost_usd"] > 0, r
        assert r["inferences"] == served[r["name"]]
        assert r["per_success_usd"] > r["cost_usd"] / int(r["inferences"]) > 0  # successes < all
    pretrain = rows["atlas-70b-pretrain"]
    assert pretrain["storage_usd"] > 0 and pretrain["transfer_usd"] > 0
    assert pretrain["cost_usd"] == (pretrain["gpu_cost_usd"] + pretrain["orchestration_usd"]
                                    + pretrain["storage_usd"] + pretrain["transfer_usd"])  # fmt: skip
    coverage = lifecycle_coverage(t["cost_lines"], t["storage_objects"], t["storage_lifecycle"],
                                  day, end)  # fmt: skip
    [summary] = coverage["storage_lifecycle"]
    assert 0 < summary["under_rules_pct"] < 100
    assert "ml-model-artifacts" in {b["bucket"] for b in coverage["storage_outside_lifecycle"]}


def test_ground_truth_lists_the_token_waste_planted_in_the_llm_traffic(
    demo: tuple[Path, ActivityManifest, Ledger],
) -> None:
    """The activity adds `token_waste` to the bills' ground truth: each lever's true saving."""
    out, _, _ = demo
    truth = json.loads((out / "ground_truth.json").read_text())
    waste = {(w["lever"], w["app"]): float(w["savings_usd_month"]) for w in truth["token_waste"]}
    assert set(waste) == {
        ("prompt_caching", "contract-qa"), ("recurring_prompt", "contract-qa"),
        ("output_limit", "ticket-summary"), ("context_window", "tutor-chat"),
        ("duplicate_calls", "faq-bot"), ("model_tiering", "intent-classifier"),
    }  # fmt: skip
    assert all(v > 0 for v in waste.values()) and "per_team" in truth  # the bills' truth kept
