"""Model tiering scored on the demo (issue 17, point 6): over five seeds, the planted classification
app on a frontier model, whose canary on a small model is accepted as often, is found as a
routing recommendation with its dollars within 10% of the ground truth, and no other app is
routed (none has a quality signal)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costline.attribution.rules import Rules
from costline.cli.demo import _activity_parts
from costline.clock import FixedClock
from costline.demo.activity import generate_activity
from costline.demo.billing import generate_billing
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.tiering import recommend_tiering
from costline.pipeline import ingest_files

SEEDS = (1, 2, 3, 4, 5)


def _scored(root: Path, seed: int) -> tuple[dict[str, Any], list[Finding]]:
    """The demo of `seed` (two days of bills, its last day of activity), its LLM usage and
    metrics ingested as `costline demo` ingests them, and the recommendations over that day."""
    out = root / f"org-{seed}"
    billing = generate_billing(out, seed=seed, days=2, scale=1.0)
    activity = generate_activity(out, billing, seed=seed, telemetry_days=1)
    with Ledger(f"duckdb://{out / 'ledger.duckdb'}") as led:
        for name, paths, source in _activity_parts(activity):
            if name in ("llm", "metrics"):
                ingest_files(led, paths, source)
        start, end = activity.window_start, activity.window_end
        found = recommend_tiering(Inputs(
            led.table("cost_lines"), led.table("gpu_samples"), led.table("workloads"), start, end,
            Rules(), FixedClock(end), metrics=led.table("metrics"),
            llm=led.table("llm_requests"),
        ))  # fmt: skip
    return json.loads(billing.ground_truth.read_text()), found


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], list[Finding]]]:
    root = tmp_path_factory.mktemp("tiering")
    return [_scored(root, seed) for seed in SEEDS]


def _advice(f: Finding) -> str:
    return str(f.evidence["inputs"]["advice"])  # type: ignore[index,call-overload]


def test_the_planted_tiering_waste_is_found_within_ten_percent_over_five_seeds(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    planted = found = Decimal(0)
    for truth, findings in scored:
        [item] = [i for i in truth["token_waste"] if i["lever"] == "model_tiering"]
        true = Decimal(item["savings_usd_month"])
        assert true > 0
        planted += true
        hits = [f for f in findings if f.scope["app"] == item["app"]
                and f.scope["model"] == item["model"] and _advice(f) == "route"]  # fmt: skip
        assert len(hits) == 1, (truth["seed"], [f.title for f in findings])
        [hit] = hits
        assert hit.evidence["inputs"]["target"] == item["target"]  # type: ignore[index,call-overload]
        estimate = hit.impact_usd or Decimal(0)
        assert abs(estimate - true) <= true / 10, (truth["seed"], estimate, true)
        found += min(estimate, true)
    assert found >= planted * Decimal("0.9")


def test_no_app_without_a_quality_signal_is_routed(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    for truth, findings in scored:
        planted = {i["app"] for i in truth["token_waste"] if i["lever"] == "model_tiering"}
        others = [f for f in findings if f.scope["app"] not in planted]
        assert others and all(_advice(f) == "benchmark" for f in others), truth["seed"]
        assert all(f.evidence["confidence"] == "low" for f in others)
