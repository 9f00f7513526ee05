"""The demo's planted waste, scored (issue 16, "Scored"): over five seeds, `costline recommend`
finds at least 90% of the planted savings dollars, and no recommendation's true saving is
negative.

Each seed's bills (84 days) are the session's shared ones (`demo_orgs`, as `test_detect` uses
them); a copy of the ledger gets two days of telemetry and workloads (the Friday and Saturday
before the window's end: office hours and a weekend day), and `recommend` runs over those two
days, as `costline recommend --days 2` does.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from costline.cli.demo import ingest_activity
from costline.demo import recommend_scoring as scoring
from costline.demo.activity import generate_activity
from costline.demo.billing import generate_billing
from costline.demo.recommend_scoring import (
    NOT_BUILT_YET,
    RecommendationScores,
    commitment_truth,
    names,
    recommend_demo,
    score_recommendations,
)
from costline.demo.waste import KINDS
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.optimize.run import KINDS as BUILT
from tests.unit.demo_orgs import DemoOrgs

SEEDS = (1, 2, 3, 4, 5)
TELEMETRY_DAYS = 2


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def scored(
    demo_orgs: DemoOrgs, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[dict[str, Any], Path, RecommendationScores]]:
    """Per seed: the ground truth, the ledger with telemetry, and the recommendations' scores."""
    out = []
    for seed in SEEDS:
        org = demo_orgs.bills(seed)
        root = tmp_path_factory.mktemp(f"recommend-{seed}")
        path = demo_orgs.copy(seed, root / "ledger.duckdb")
        activity = generate_activity(root, org.manifest, seed=seed, telemetry_days=TELEMETRY_DAYS)
        with Ledger(f"duckdb://{path}") as ledger:
            ingest_activity(ledger, activity, Console(file=io.StringIO()))
            found = recommend_demo(ledger, org.manifest, TELEMETRY_DAYS)
        out.append((org.truth, path, score_recommendations(found, org.truth)))
    return out


def test_every_seed_plants_every_kind_and_seeds_differ(
    scored: list[tuple[dict[str, Any], Path, RecommendationScores]],
) -> None:
    plans = []
    for truth, _, _ in scored:
        planted = truth["recommendations"]
        assert [t["kind"] for t in planted] == list(KINDS)
        assert all(Decimal(t["savings_usd_month"]) > 0 for t in planted), truth["seed"]
        plans.append(tuple(t["savings_usd_month"] for t in planted))
    assert len(set(plans)) == len(SEEDS)  # five organizations, not one five times


@pytest.mark.parametrize("seed", range(6, 16))
def test_any_seed_plants_waste_that_saves_something(tmp_path: Path, seed: int) -> None:
    """Ten more seeds, small and short: every item saves something, so none is planted empty
    (a commitment that happened to cover the evaluation job would leave nothing to move)."""
    manifest = generate_billing(tmp_path, seed=seed, days=40, scale=0.25)
    truth = json.loads(manifest.ground_truth.read_text())
    assert [t["kind"] for t in truth["recommendations"]] == list(KINDS)
    assert all(Decimal(t["savings_usd_month"]) > 0 for t in truth["recommendations"]), [
        (t["kind"], t["savings_usd_month"]) for t in truth["recommendations"]]  # fmt: skip


def test_the_recommenders_find_90_percent_of_the_planted_dollars(
    scored: list[tuple[dict[str, Any], Path, RecommendationScores]],
) -> None:
    total = RecommendationScores.total([s for _, _, s in scored])
    missed = [(i.kind, i.resource, str(i.truth_usd)) for i in total.items
              if not i.found and i.kind not in NOT_BUILT_YET]  # fmt: skip
    assert total.built_dollar_recall >= 0.9, missed
    # The kinds not built yet are really not built: once one is merged, delete it from
    # NOT_BUILT_YET (costline.demo.recommend_scoring) so it counts.
    assert not NOT_BUILT_YET & set(BUILT), NOT_BUILT_YET & set(BUILT)
    assert set(KINDS) >= NOT_BUILT_YET


def test_no_recommendation_has_a_negative_true_saving(
    scored: list[tuple[dict[str, Any], Path, RecommendationScores]],
) -> None:
    total = RecommendationScores.total([s for _, _, s in scored])
    assert total.negative == [], [(c.kind, dict(c.scope), c.reason) for c in total.negative]
    # Every planted item found is checked against its truth, and commitments against the pools'.
    assert sum(c.verdict == "ok" for c in total.checks) >= sum(i.found for i in total.items)


def test_a_truth_is_what_the_bills_charged(
    scored: list[tuple[dict[str, Any], Path, RecommendationScores]],
) -> None:
    """A planted item's current monthly cost is its bill lines' cost per 30 days, and its
    saving what its formula gives from the prices it names (not copied from a recommender)."""
    for truth, path, _ in scored[:2]:
        days = truth["days"]
        with Ledger(f"duckdb://{path}", read_only=True) as ledger:
            lines = ledger.table("cost_lines")
            for t in truth["recommendations"]:
                if t["kind"] not in ("gpu_rightsizing", "spot_capacity", "commitment"):
                    continue
                mine = lines.filter(lines.ResourceName.startswith(t["aliases"][0]))
                billed = Decimal(str(fetch.value(mine.EffectiveCost.sum())))
                current = Decimal(t["current_usd_month"])
                assert abs(billed * 30 / days - current) <= Decimal("0.01"), t["kind"]
        right = next(t for t in truth["recommendations"] if t["kind"] == "gpu_rightsizing")
        i = right["inputs"]
        hours = Decimal(i["hours_a_month"])
        expected = hours * (Decimal(i["paid_usd_per_hour"]) - Decimal(i["target_usd_per_hour"]))
        assert Decimal(right["savings_usd_month"]) == expected.quantize(Decimal("0.01"))
        assert i["target_instance_type"].startswith("g2-standard-")  # an L4 holds it


TRUTH = {
    "recommendations": [
        {"kind": "gpu_rightsizing", "resource": "gcp/r/a2", "aliases": ["chat-a100"],
         "savings_usd_month": "1000.00"},
        {"kind": "storage_tiering", "resource": "ckpts", "aliases": [],
         "savings_usd_month": "300.00"},
        {"kind": "autoscaling", "resource": "docqa", "aliases": [], "savings_usd_month": "700.00"},
    ],
    "gpu_pools": [
        {"pool": "aws/r/p5", "hours": 100, "paid_usd_per_hour": "10", "workload_types": ["training"],
         "on_demand_hours_at": {"0": 40, "2": 60}},
        {"pool": "gcp/r/g2", "hours": 100, "paid_usd_per_hour": "1", "workload_types": ["inference"],
         "on_demand_hours_at": {"3": 100}},
    ],
}  # fmt: skip


def _rec(kind: str, saving: str, **scope: str) -> dict[str, Any]:
    inputs = {k: v for k, v in scope.items() if k in ("instances", "discount")}
    scope = {k: v for k, v in scope.items() if k not in inputs}
    return {"kind": kind, "scope": scope, "savings_monthly_usd": saving, "inputs": inputs}


def test_the_scorer_matches_by_kind_and_name_and_checks_signs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = [
        _rec("gpu_rightsizing", "900", pool="gcp/r/a2", team="search"),
        _rec("storage_tiering", "100", resource="gs://ckpts/run-1"),  # two runs of one bucket
        _rec("storage_tiering", "150", resource="gs://ckpts/run-2"),
        _rec("idle_capacity", "500", pool="docqa"),  # names it, but not of its kind
        # 2 instances at 30% off over 60% of the hours: 10 x 120 - 7 x 200 < 0
        _rec("commitment", "400", pool="aws/r/p5", instances="2", discount="0.3"),
        _rec("spot_capacity", "50", pool="gcp/r/g2"),  # Spot for an inference-only pool
    ]
    s = score_recommendations(found, TRUTH)
    by_kind = {i.kind: i for i in s.items}
    assert by_kind["gpu_rightsizing"].estimate_usd == 900 and by_kind["gpu_rightsizing"].error
    assert by_kind["storage_tiering"].estimate_usd == 250  # its recommendations add up
    assert not by_kind["autoscaling"].found
    assert s.dollar_recall == s.built_dollar_recall == pytest.approx(1300 / 2000)
    monkeypatch.setattr(scoring, "NOT_BUILT_YET", frozenset({"storage_tiering"}))
    assert s.built_dollar_recall == pytest.approx(1000 / 1700)  # were storage not built yet
    assert [(c.kind, c.verdict) for c in s.checks] == [
        ("gpu_rightsizing", "ok"), ("storage_tiering", "ok"), ("storage_tiering", "ok"),
        ("idle_capacity", "unchecked"), ("commitment", "negative"), ("spot_capacity", "negative"),
    ]  # fmt: skip
    pool = TRUTH["gpu_pools"][0]
    assert commitment_truth(pool, {"instances": 2, "discount": "0.3"}) == Decimal(
        (10 * 120 - 7 * 200) * 720 / 100
    )
    assert commitment_truth(pool, {}) is None  # a recommendation without its inputs


def test_a_scope_names_a_resource_whole_or_by_a_path_under_it() -> None:
    assert names("gs://ckpts/model/880153", "ckpts")
    assert names("flux-eval-20261030", "flux-eval")
    assert names("gcp/us-central1/a2-highgpu-2g", "gcp/us-central1/a2-highgpu-2g")
    assert not names("gcp/us-central1/a2-highgpu-2g", "gcp/us-central1/a2-highgpu-8g")
    assert not names("flux-evaluator", "flux-eval")
