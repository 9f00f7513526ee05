"""The weekly review (issue 16, point 10): movers, incidents, recommendations, budgets, quick wins."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.model import Finding
from costline.optimize.weekly import Review, html, markdown, movers
from tests.helpers import run_costline
from tests.unit.recommend_data import LINES, T0, line

END = (T0 + dt.timedelta(days=14)).date()


def _day(team: str, service: str, day: int, usd: str) -> dict[str, Any]:
    one = line(f"r-{team}", "m7i.xlarge", day * 24, Decimal(usd))
    return {**one, "ServiceName": service, "Tags": [("team", team)]}


def test_movers_rank_the_week_over_week_change_per_team_and_service() -> None:
    rows = [_day("search", "EC2", d, "100") for d in range(7)]  # last week
    rows += [_day("search", "EC2", d, "300") for d in range(7, 14)]  # this week: +1,400
    rows += [_day("vision", "S3", d, "50") for d in range(14)]  # flat
    rows += [_day("ads", "Bedrock", d, "80") for d in range(7)]  # stopped: -560
    found = movers(ibis.memtable(pa.Table.from_pylist(rows, schema=LINES)), END, Rules())
    assert [(m["team"], m["change_usd"]) for m in found] == [
        ("search", Decimal("1400.00")), ("ads", Decimal("-560.00")), ("vision", Decimal("0.00")),
    ]  # fmt: skip
    assert found[0]["change_pct"] == 200.0 and found[1]["this_week_usd"] == Decimal("0.00")


def test_markdown_and_html_carry_every_section() -> None:
    clock = FixedClock(dt.datetime(2026, 10, 14, tzinfo=dt.UTC))
    incident = Finding.new(kind="anomaly", scope={"team": "search"}, dedup_key="x", clock=clock,
                           title="search <sweep> left on", severity="critical", owner="search",
                           impact_usd=Decimal("1234.5"))  # fmt: skip
    review = Review(END - dt.timedelta(days=7), END, None,
                    movers=[{"team": "ads", "service": "S3", "this_week_usd": Decimal(0),
                             "last_week_usd": Decimal(10), "change_usd": Decimal(-10),
                             "change_pct": -100.0}],
                    incidents=[incident],
                    checks=[{"check": "GPU utilization above 60%", "value": "41%",
                             "status": "fail", "follow_up": "gpu_rightsizing"}])  # fmt: skip
    text = markdown(review)
    for section in ("Top movers", "Open incidents", "Recommendations", "Budgets at risk",
                    "Quick wins"):  # fmt: skip
        assert f"## {section}" in text
    assert "-$10.00 (-100%)" in text and "$1,234.50" in text and "| fail |" in text
    page = html(review)
    assert "<h2>Quick wins</h2>" in page and "&lt;sweep&gt;" in page and "<table>" in page
    assert "<script" not in page


def test_report_weekly_command_on_a_ledger(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    sample = Path(__file__).parents[1] / "fixtures/focus/focus_sample.csv"
    assert run_costline("--ledger", url, "ingest", "focus", str(sample)).returncode == 0
    done = run_costline("--ledger", url, "report", "weekly")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Weekly review: ") and "## Quick wins" in done.stdout
    bad = run_costline("--ledger", url, "report", "weekly", "--format", "pdf")
    assert bad.returncode == 2 and "markdown, html, json" in bad.stderr
