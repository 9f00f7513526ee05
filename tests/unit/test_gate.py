"""`costline gate`: each rule on the one gate input, and the exit codes through the CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from costline.config import parse_config
from costline.governance.estimate import estimate
from costline.governance.gate import (
    EXIT_APPROVAL,
    EXIT_FAIL,
    EXIT_PASS,
    check,
    exit_code,
    gate_input,
)
from costline.governance.history import ASSUMED
from costline.manifest import ExperimentManifest
from tests.unit.governance_data import GOOD, cli, manifest, search_ledger


def _none(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'none.duckdb'}"  # no ledger: no history, no budgets


def _gate(
    tmp_path: Path, *paths: Path, url: str | None = None, config: Path | None = None
) -> tuple[int, dict[str, Any]]:
    args = ["--ledger", url or _none(tmp_path)]
    if config is not None:
        args += ["--config", str(config)]
    result = cli(*args, "gate", *map(str, paths), "-f", "json")
    data = json.loads(result.output)
    assert data["version"] == 1 and data["exit"] == result.exit_code
    return result.exit_code, {r["manifest"]: r for r in data["manifests"]}


def _failed(row: dict[str, object]) -> dict[str, tuple[str, str]]:
    rules = row["rules"]
    assert isinstance(rules, list)
    return {r["rule"]: (r["value"], r["fix"]) for r in rules if r["status"] == "fail"}


def test_a_good_manifest_passes(tmp_path: Path) -> None:
    code, rows = _gate(tmp_path, manifest(tmp_path, "good", GOOD))
    assert code == EXIT_PASS and rows["ranker-sft"]["exit"] == 0
    statuses = {r["rule"]: r["status"] for r in rows["ranker-sft"]["rules"]}
    assert set(statuses.values()) == {"pass", "warn"}  # a fine-tune on on-demand: Spot advised
    assert statuses["spot_for_tolerant"] == "warn"
    text = cli("--ledger", _none(tmp_path), "gate", str(tmp_path / "good.yaml"))
    assert "### ranker-sft: passes" in text.output and text.exit_code == 0


def test_a_manifest_without_ttl_fails(tmp_path: Path) -> None:
    prod = manifest(tmp_path, "prod", GOOD, name="prod-train", environment="production")
    prod.write_text(prod.read_text().replace("ttl_hours: 24\n", ""))
    null = manifest(tmp_path, "null", GOOD, name="null-ttl", ttl_hours=None)
    long = manifest(tmp_path, "long", GOOD, name="long-ttl", ttl_hours=100)
    code, rows = _gate(tmp_path, prod, null, long)
    assert code == EXIT_FAIL
    fix = "add ttl_hours (production gets no default; elsewhere it is 24)"
    assert _failed(rows["prod-train"]) == {"ttl": ("no TTL", fix)}
    assert _failed(rows["null-ttl"]) == {"ttl": ("no TTL", fix)}
    assert _failed(rows["long-ttl"]) == {
        "ttl": ("100 h, over dev's 72 h", "set ttl_hours to 72 or less")
    }


def test_h100s_in_dev_fail(tmp_path: Path) -> None:
    big = manifest(tmp_path, "big", GOOD, name="h100-dev", budget_usd=100000,
                   resources={"gpu_type": "H100", "gpus": 8}, approvals=[{"by": "lead"}])  # fmt: skip
    code, rows = _gate(tmp_path, big)
    assert code == EXIT_FAIL
    failed = _failed(rows["h100-dev"])
    assert failed["instance_allowed"][0] == "H100 in dev"
    assert failed["instance_allowed"][1].startswith("dev allows T4, L4, A10G, A10, L40S, V100")
    assert set(failed) == {"instance_allowed"}  # 8 GPUs is within dev's ceiling of 8
    staging = manifest(tmp_path, "big", GOOD, name="h100-staging", budget_usd=100000,
                       environment="staging", resources={"gpu_type": "H100", "gpus": 8,
                                                         "nodes": 9}, approvals=[{"by": "lead"}])  # fmt: skip
    code, rows = _gate(tmp_path, staging)
    assert _failed(rows["h100-staging"]) == {
        "gpu_ceiling": ("72 GPUs, over 64", "ask for 64 GPUs or fewer per trial (gpus x nodes)")
    }


def test_a_manifest_over_its_teams_remaining_budget_fails(tmp_path: Path) -> None:
    url, config = search_ledger(tmp_path)  # search has $20 a month, spent $14.98 in 2024-09
    over = manifest(tmp_path, "over", GOOD, name="over", budget_usd=8)
    within = manifest(tmp_path, "within", GOOD, name="within", budget_usd=5, steps=1500)
    code, rows = _gate(tmp_path, over, within, url=url, config=config)
    assert code == EXIT_FAIL
    value, fix = _failed(rows["over"])["team_budget"]
    assert value == "budget $8 over the $5 left in search (2024-09)"
    assert fix.startswith("lower budget_usd")
    assert rows["within"]["exit"] == EXIT_PASS


def test_team_remaining_comes_from_the_budget_computation(tmp_path: Path) -> None:
    from costline.governance.assess import team_budgets
    from costline.ledger.store import Ledger

    url, config_file = search_ledger(tmp_path)
    from costline.config import load_config

    with Ledger(url, read_only=True) as ledger:
        teams = team_budgets(load_config(config_file), ledger)
    assert teams["search"]["remaining_usd"] == str(Decimal(20) - Decimal("14.976514185860000000"))


def test_approval_and_the_worst_exit_code(tmp_path: Path) -> None:
    # 200 trials of 6 h on g6.xlarge at $0.8048/h: P50 $965.76, P90 (1.3x) $1,255.49, over the
    # $1,000 cap above which a person approves
    costly = manifest(tmp_path, "costly", GOOD, name="costly", budget_usd=5000, trials=200)
    code, rows = _gate(tmp_path, costly)
    assert code == EXIT_APPROVAL
    approval = next(r for r in rows["costly"]["rules"] if r["rule"] == "approval")
    assert (approval["status"], approval["value"]) == ("approval", "P90 $1,255 over $1,000")
    approved = manifest(tmp_path, "approved", GOOD, name="approved", budget_usd=5000,
                        trials=200, approvals=[{"by": "lead@example.com"}])  # fmt: skip
    assert _gate(tmp_path, approved)[0] == EXIT_PASS
    tight = manifest(tmp_path, "tight", GOOD, name="tight", budget_usd=1100, trials=200,
                     approvals=[{"by": "lead@example.com"}])  # fmt: skip
    code, rows = _gate(tmp_path, tight)  # P90 over its own budget, P50 within: approved
    assert code == EXIT_PASS
    within = next(r for r in rows["tight"]["rules"] if r["rule"] == "estimate_within_budget")
    assert within["value"] == (
        "P50 $966, P90 $1,255 against a $1,100 budget; approved by lead@example.com"
    )
    unapproved = manifest(tmp_path, "tight2", GOOD, name="tight2", budget_usd=1100, trials=200)
    config = tmp_path / "high.yaml"
    config.write_text("experiments: {approve_above_usd: 5000}\n")
    code, rows = _gate(tmp_path, unapproved, config=config)
    assert code == EXIT_APPROVAL  # P90 over its own budget, though under the approval threshold
    assert {r["rule"]: r["status"] for r in rows["tight2"]["rules"]}["approval"] == "pass"
    unpriced = manifest(
        tmp_path,
        "unpriced",
        GOOD,
        name="unpriced",
        environment="staging",
        resources={"gpu_type": "Z9"},
    )
    code, rows = _gate(tmp_path, unpriced)
    assert code == EXIT_APPROVAL
    assert next(r for r in rows["unpriced"]["rules"] if r["rule"] == "estimate_within_budget")[
        "value"] == "unpriced: the price catalog has no on-demand price for Z9 in any provider"  # fmt: skip
    no_ttl = manifest(tmp_path, "nottl", GOOD, name="nottl", ttl_hours=None)
    assert _gate(tmp_path, costly, no_ttl)[0] == EXIT_FAIL  # a failure outranks an approval


def test_endpoints_need_max_tokens_and_required_tags() -> None:
    config = parse_config("experiments: {required_tags: [cost_center]}")
    m = ExperimentManifest.model_validate({
        "name": "chat", "kind": "inference_endpoint", "owner": "o", "team": "t", "project": "p",
        "purpose": "serve", "environment": "production",
        "resources": {"gpu_type": "L4", "gpus": 1}, "duration_hours": 10})  # fmt: skip
    d = gate_input(estimate(m, "chat.yaml", ASSUMED), config, None)
    json.dumps(d)  # the one input shape is plain JSON data
    verdicts = {v.rule: v for v in check(d)}
    assert verdicts["max_tokens"].status == "fail"
    assert verdicts["required_fields"].value == "missing: tags.cost_center"
    assert verdicts["ttl"].status == "pass"  # endpoints run until scaled down
    assert exit_code(list(verdicts.values())) == EXIT_FAIL
    fixed = m.model_copy(update={"max_tokens": 1024, "tags": {"cost_center": "cc1"}})
    ok = check(gate_input(estimate(fixed, "chat.yaml", ASSUMED), config, None))
    assert exit_code(ok) == EXIT_PASS


def test_a_run_its_own_ttl_would_stop_fails(tmp_path: Path) -> None:
    # 3,000 steps at 500 an hour: 6 h at P50, 7.8 h at P90 (1.3x, no history)
    short = manifest(tmp_path, "short", GOOD, name="short", ttl_hours=5)
    edge = manifest(tmp_path, "edge", GOOD, name="edge", ttl_hours=7)
    code, rows = _gate(tmp_path, short, edge)
    assert code == EXIT_FAIL
    assert _failed(rows["short"]) == {"run_within_ttl": (
        "P50 6.0 h, P90 7.8 h against a 5 h TTL",
        "the TTL would stop the run: set ttl_hours to 8, or shorten it")}  # fmt: skip
    assert rows["edge"]["exit"] == EXIT_PASS
    warned = next(r for r in rows["edge"]["rules"] if r["rule"] == "run_within_ttl")
    assert warned["status"] == "warn"


def test_a_ledger_without_bills_gates_on_the_catalog(tmp_path: Path) -> None:
    from costline.ledger.store import Ledger

    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    Ledger(url).close()  # migrated, no cost lines, no workloads
    config = tmp_path / "costline.yaml"
    config.write_text("budgets:\n  - {name: search, scope: {team: search}, amount_usd: 20}\n")
    code, rows = _gate(tmp_path, manifest(tmp_path, "good", GOOD), url=url, config=config)
    assert code == EXIT_PASS
    team = next(r for r in rows["ranker-sft"]["rules"] if r["rule"] == "team_budget")
    assert team["value"] == "no team budget to check against"
