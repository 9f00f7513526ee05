"""Commitment sizing (issue 16, point 4): commit where usage exceeds the level 1 - d of the time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.commitment import recommend_commitment, weighted_quantile
from tests.unit.recommend_data import T0, inputs, line

WEEK_END = T0 + dt.timedelta(days=7)
A2 = Decimal("3.673385")  # a2-highgpu-1g us-central1 on-demand; committed 1 year: 2.314207040


def _lines(running: Any, instance: str = "a2-highgpu-1g", rate: Decimal = A2,
           provider: str = "Google Cloud", region: str = "us-central1",
           category: str = "Standard") -> list[dict[str, Any]]:  # fmt: skip
    """One hour-line per instance running in each hour of a week (`running(hour)` of them)."""
    out = []
    for h in range(168):
        for i in range(running(h)):
            one = line(f"{instance}-{i}", instance, h, rate, provider, region)
            out.append({**one, "PricingCategory": category, "ListCost": rate})
    return out


def _run(lines: list[dict[str, Any]]) -> list[Finding]:
    return recommend_commitment(inputs(lines, start=T0, end=WEEK_END))


def test_the_quantile_at_the_discount() -> None:
    levels = [(2.0, 16.0), (3.0, 8.0)]
    assert weighted_quantile(levels, 0.37) == 2.0  # 3 runs only a third of the hours
    assert weighted_quantile(levels, 0.70) == 3.0


def test_two_steady_instances_and_a_daytime_third_commit_two() -> None:
    found = _run(_lines(lambda h: 3 if h % 24 < 8 else 2))
    assert len(found) == 1
    f = found[0]
    inputs = f.evidence["inputs"]
    assert isinstance(inputs, dict)
    assert inputs["instances"] == 2 and inputs["discount_basis"] == "catalog commit_1y"
    # Two instances all week at the committed price instead of on-demand, per 30 days.
    p50 = 2 * (A2 - Decimal("2.314207040")) * 168 * 30 / 7
    assert abs(f.impact_usd - p50) < Decimal("0.01")  # type: ignore[operator]
    assert "committed use discount" in f.actions[0].text


def test_the_discount_is_learned_from_the_organizations_committed_lines() -> None:
    p4d = Decimal("21.957642")
    on_demand = _lines(lambda h: 1, "p4d.24xlarge", p4d, "AWS", "us-east-1")
    assert _run(on_demand) == []  # AWS publishes no committed price in the catalog: unpriced
    committed = [{**x, "EffectiveCost": p4d * Decimal("0.7"), "ResourceId": "c-" + x["ResourceId"]}
                 for x in _lines(lambda h: 1, "p4d.24xlarge", p4d, "AWS", "us-east-1",
                                 "Committed")]  # fmt: skip
    found = _run(on_demand + committed)
    assert len(found) == 1
    inputs = found[0].evidence["inputs"]
    assert isinstance(inputs, dict)
    assert inputs["discount"] == 0.3 and inputs["instances"] == 1
    assert "Savings Plan" in found[0].actions[0].text


def test_bursty_usage_commits_nothing() -> None:
    assert _run(_lines(lambda h: 4 if h % 24 == 0 else 0)) == []


def test_a_short_window_is_judged_on_a_month_of_bills() -> None:
    """A training pool that ran all of the last two days, but 12 of the 30 before: committing on
    the two days alone would pay for 18 idle days a month. A steady pool is still committed,
    on the month it shows."""
    end = T0 + dt.timedelta(days=30)
    runs = [line("a2-run-0", "a2-highgpu-1g", h, A2, "Google Cloud", "us-central1")
            for h in range(720) if h >= 720 - 12 * 24]  # fmt: skip
    steady = [line(f"a2-steady-{i}", "a2-highgpu-1g", h, A2, "Google Cloud", "us-central1")
              for i in range(2) for h in range(720)]  # fmt: skip
    two_days = end - dt.timedelta(days=2)
    web = [line("web-0", "m7i.xlarge", 0, Decimal("0.2016"))]  # the bills begin 30 days back
    assert recommend_commitment(inputs(web + runs, start=two_days, end=end)) == []
    [found] = recommend_commitment(inputs(runs + steady, start=two_days, end=end))
    evidence = found.evidence
    assert isinstance(evidence["inputs"], dict) and evidence["inputs"]["instances"] == 2
    assert isinstance(evidence["window"], dict) and evidence["window"]["days"] == 30
