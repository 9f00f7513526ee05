"""The token audit scored on the demo's LLM traffic: over five seeds, the waste planted in it
(`demo.token_waste`: a static prefix never cached, answers without max_tokens that run away,
conversations re-sending their history, repeated questions) is found, each within 10% of its
true dollars. Only the LLM logs are generated and ingested (a day at half the demo's scale)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.demo.llm_usage import APPS, write_llm_usage
from costline.demo.token_waste import KEPT_TURNS
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.tokens import recommend_tokens
from costline.optimize.tokens.context import WINDOW_TURNS
from costline.pipeline import ingest_files
from costline.sources.llm import llm_file_source

SEEDS = (1, 2, 3, 4, 5)
START = dt.datetime(2026, 10, 30, tzinfo=dt.UTC)
HOURS = 24
SCALE = 0.5
LEVERS = {"prompt_caching", "recurring_prompt", "output_limit", "context_window",
          "duplicate_calls"}  # fmt: skip

Audited = list[tuple[list[dict[str, str]], list[Finding]]]


def _audit(root: Path, seed: int) -> tuple[list[dict[str, str]], list[Finding]]:
    usage = write_llm_usage(root / "llm", START, HOURS, SCALE, seed)
    end = START + dt.timedelta(hours=HOURS)
    with Ledger(f"duckdb:///{root / 'ledger.duckdb'}") as ledger:
        ingest_files(ledger, sorted((root / "llm").glob("*.jsonl")), llm_file_source())
        inputs = Inputs(ledger.table("cost_lines"), ledger.table("gpu_samples"),
                        ledger.table("workloads"), START, end, Rules(), FixedClock(end),
                        llm=ledger.table("llm_requests"))  # fmt: skip
        return usage.waste, recommend_tokens(inputs)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    return [_audit(tmp_path_factory.mktemp(f"tokens-{seed}"), seed) for seed in SEEDS]


def _by_lever(findings: list[Finding]) -> dict[tuple[str, str, str], Finding]:
    return {(f.scope["lever"], f.scope.get("app", ""), f.scope.get("model", "")): f
            for f in findings}  # fmt: skip


def test_planted_token_waste_is_found_within_10_percent_over_five_seeds(audited: Audited) -> None:
    planted = found = Decimal(0)
    off: list[str] = []
    for waste, findings in audited:
        assert {w["lever"] for w in waste} == LEVERS
        by = _by_lever(findings)
        for w in waste:
            truth = Decimal(w["savings_usd_month"])
            assert truth > 20, w  # each lever's waste is worth a finding
            planted += truth
            hit = by.get((w["lever"], w["app"], w["model"]))
            if hit is None:
                off.append(f"missed {w}")
                continue
            found += truth
            estimate = hit.impact_usd or Decimal(0)
            if abs(estimate / truth - 1) > Decimal("0.10"):
                off.append(f"{w['lever']} {w['app']}: {estimate} for {truth}")
    assert found / planted >= Decimal("0.9"), off
    assert not off, off


def test_the_findings_say_what_to_change(audited: Audited) -> None:
    """The planted app's findings: the prefix and its cache_control, the max_tokens, the window."""
    _, findings = audited[0]
    by = _by_lever(findings)
    caching = by["prompt_caching", "contract-qa", "claude-sonnet-4-5-20250929"]
    assert "cache_control" in caching.actions[0].text
    assert 2400 <= caching.evidence["inputs"]["cacheable_prefix_tokens"] <= 2500
    limit = by["output_limit", "ticket-summary", "gpt-4o-2024-05-13"]
    cap = limit.evidence["inputs"]["recommended_max_tokens"]
    assert 800 <= cap <= 1024 and f"max_tokens={cap}" in limit.actions[0].text
    window = by["context_window", "tutor-chat", "gpt-4.1-2025-04-14"]
    assert window.owner == "search" and window.evidence["inputs"]["window_turns"] == 6
    for f in findings:
        low, p50, high = (Decimal(f.evidence["savings_monthly_usd"][k])
                          for k in ("low", "p50", "high"))  # fmt: skip
        assert 0 <= low <= p50 <= high and f.scope["recommendation"] == "tokens"


def test_apps_without_planted_waste_get_no_output_limit_window_or_duplicate_findings(
    audited: Audited,
) -> None:
    """The steady apps send no conversation ids or prompts, and their answers stay well under
    the cap they could be given: only their prompt levers can apply."""
    steady = {a.app for a in APPS if a.waste is None}
    for _, findings in audited:
        levers = {f.scope["lever"] for f in findings if f.scope.get("app") in steady}
        assert levers <= {"recurring_prompt", "prompt_caching"}, levers


def test_the_truth_uses_the_window_the_audit_recommends() -> None:
    assert KEPT_TURNS == WINDOW_TURNS


def test_same_seed_same_waste(tmp_path: Path) -> None:
    first = write_llm_usage(tmp_path / "a", START, 6, 0.2, 3)
    second = write_llm_usage(tmp_path / "b", START, 6, 0.2, 3)
    assert first == second and first.waste
    for name in ("openai_chat.jsonl", "anthropic_messages.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
