"""The noise budget: budget crossings under 90% are one digest a period, findings whose period is
over resolve themselves, every finding says what to do, and the demo's first `costline findings`
lists a handful of open findings, not sixty."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from costline.budgets.digest import DIGEST_SCOPE, budget_digests
from costline.budgets.periods import period_of
from costline.budgets.status import budget_findings, status_of
from costline.cli.demo import run_demo
from costline.cli.output import Format
from costline.clock import FixedClock
from costline.config import Budget, Config
from costline.detect.ttl import expired
from costline.ledger.findings import RESOLVED_REASON
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind, FindingStatus, Window
from costline.notify import enqueue
from costline.notify.outbox import current_findings
from costline.sync import settle, source_findings

D = dt.date
UTC = dt.UTC
OCT_20 = FixedClock(dt.datetime(2026, 10, 21, tzinfo=UTC))
ACTIONABLE = {FindingKind.BUDGET_THRESHOLD, FindingKind.THRESHOLD_BREACH,
              FindingKind.TTL_EXPIRY, FindingKind.DATA_QUALITY}  # fmt: skip


def _daily(first: dt.date, last: dt.date, cost: int) -> dict[dt.date, Decimal]:
    return {first + dt.timedelta(days=i): Decimal(cost) for i in range((last - first).days + 1)}


def _statuses(as_of: dt.date = D(2026, 10, 20)) -> list:  # type: ignore[type-arg]
    """search spends $120 a day against $3,000 a month (September over, October at 80% on the
    20th); web $60 a day (September 60%, October 40%)."""
    search = Budget(name="search", scope={"team": "search"}, amount_usd=Decimal(3000))
    web = Budget(name="web", scope={"team": "web"}, amount_usd=Decimal(3000))
    spend = {"search": _daily(D(2026, 9, 1), as_of, 120), "web": _daily(D(2026, 9, 1), as_of, 60)}
    return [
        status_of(b, period_of("month", day), as_of, spend[b.name])
        for b in (search, web)
        for day in (D(2026, 9, 1), D(2026, 10, 1))
    ]


def _has_action(f: Finding) -> bool:
    return bool(f.actions) and all(a.text for a in f.actions)


def test_crossings_under_90_percent_are_one_digest_and_only_what_needs_someone_is_open() -> None:
    config = Config.model_validate({
        "routes": [{"type": "webhook", "name": "search-hook", "url": "http://127.0.0.1:9/h"}],
        "owners": [{"name": "search-team", "match": {"team": "search"}, "routes": ["search-hook"]}],
    })  # fmt: skip
    from costline.attribution.rules import Rules

    rules = Rules.from_config(config)
    found = budget_findings(_statuses(), clock=OCT_20, rules=rules)
    # September: search 50, 75, 90, 100 (its period is closed); web 50. October: search 50, 75.
    assert sorted((f.evidence["period"], f.scope["budget"], f.evidence["threshold_pct"])
                  for f in found) == [
        ("2026-09", "search", "100"), ("2026-09", "search", "50"), ("2026-09", "search", "75"),
        ("2026-09", "search", "90"), ("2026-09", "web", "50"),
        ("2026-10", "search", "50"), ("2026-10", "search", "75")]  # fmt: skip
    assert all(f.status is FindingStatus.RESOLVED for f in found)
    reasons = {f.dedup_key: f.evidence[RESOLVED_REASON] for f in found
               if f.scope["budget"] == "search"}  # fmt: skip
    assert reasons["2026-10:50%"] == "under 90%: in the budget digest of 2026-10"
    assert reasons["2026-09:100%"] == "its period 2026-09 is closed"
    assert reasons["2026-09:90%"] == "superseded by its 100% crossing"
    assert all(_has_action(f) for f in found)

    digests = budget_digests(_statuses(), clock=OCT_20, rules=rules)
    by_period = {f.scope[DIGEST_SCOPE]: f for f in digests}
    assert set(by_period) == {"2026-09", "2026-10"}
    september, october = by_period["2026-09"], by_period["2026-10"]
    assert september.status is FindingStatus.RESOLVED  # web only: search passed 90% there
    assert [b["budget"] for b in september.evidence["budgets"]] == ["web"]
    assert october.status is FindingStatus.OPEN and october.severity == "info"
    [entry] = october.evidence["budgets"]
    assert (entry["budget"], entry["owner"], entry["used_pct"]) == ("search", "search-team", "80.0")
    assert [c["threshold_pct"] for c in entry["crossed"]] == ["50", "75"]
    assert october.evidence["digest_crossings"] == 2
    assert october.evidence["routes"] == ["search-hook"]
    # $2,400 spent, $600 left for 11 days ($54.55 a day) while it spends $120: $1,963.64 a month
    [act] = october.actions
    assert act.estimated_monthly_savings_usd == Decimal("1963.64")
    assert "$54.55 a day for the 11 day(s) left of 2026-10" in act.text


def test_a_stored_crossing_under_90_or_of_a_closed_period_is_resolved_on_the_next_run(
    ledger: Ledger,
) -> None:
    """What an older costline stored open (September's 100%, October's 50%) is resolved by the
    next evaluation, with its reason; findings born resolved are not stored at all."""
    older = [
        Finding.new(kind="budget_threshold", scope={"budget": "search"}, dedup_key=key,
                    clock=FixedClock(dt.datetime(2026, 10, 5, tzinfo=UTC)), severity="info",
                    title=f"Budget search passed {key}")
        for key in ("2026-09:100%", "2026-10:50%")
    ]  # fmt: skip
    ledger.write([], source="budgets", findings=older)
    found = budget_findings(_statuses(), clock=OCT_20)
    found += budget_digests(_statuses(), clock=OCT_20)
    ledger.write([], source="budgets", findings=found)
    stored = {f.dedup_key: f for f in current_findings(ledger)}
    assert stored["2026-09:100%"].status is FindingStatus.RESOLVED
    assert stored["2026-10:50%"].status is FindingStatus.RESOLVED
    assert "digest" in str(stored["2026-10:50%"].evidence[RESOLVED_REASON])
    opened = [f for f in stored.values() if f.status is FindingStatus.OPEN]
    assert [f.scope for f in opened] == [{DIGEST_SCOPE: "2026-10"}]
    assert len(stored) == 3  # the two older ones and the open digest: nothing born resolved


def test_the_digest_is_sent_once_then_weekly_with_new_crossings_not_once_per_crossing(
    ledger: Ledger,
) -> None:
    config = Config.model_validate({
        "routes": [{"type": "webhook", "name": "search-hook", "url": "http://127.0.0.1:9/h"}],
        "owners": [{"name": "search-team", "match": {"team": "search"}, "routes": ["search-hook"]}],
    })  # fmt: skip
    from costline.attribution.rules import Rules

    rules = Rules.from_config(config)

    def run(day: dt.date) -> int:
        clock = FixedClock(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), UTC))
        statuses = _statuses(day)
        found = budget_findings(statuses, clock=clock, rules=rules)
        found += budget_digests(statuses, clock=clock, rules=rules)
        ledger.write([], source="budgets", findings=found)
        return len(enqueue(ledger, current_findings(ledger), config, clock))

    assert run(D(2026, 10, 13)) == 1  # 50% passed on the 13th: the digest, one message
    assert run(D(2026, 10, 14)) == 0  # nothing new
    assert run(D(2026, 10, 19)) == 0  # 75% passed on the 19th, but the last letter is 6 days old
    assert run(D(2026, 10, 21)) == 1  # a week on, with the new crossing: the second letter


def _finding(kind: str, scope: dict[str, str], start: dt.datetime, end: dt.datetime) -> Finding:
    return Finding.new(kind=kind, scope=scope, dedup_key=start.isoformat(), severity="warning",
                       clock=FixedClock(start), title=f"{kind} {scope}",
                       window=Window(start=start, end=end))  # fmt: skip


def test_findings_whose_period_is_over_resolve_themselves_with_the_reason(ledger: Ledger) -> None:
    at = lambda m, d, h=0: dt.datetime(2026, m, d, h, tzinfo=UTC)  # noqa: E731
    stored = {
        "old spike": _finding("anomaly", {"service": "S3"}, at(9, 20), at(10, 2)),
        "recent spike": _finding("anomaly", {"service": "EC2"}, at(10, 10), at(10, 25)),
        "september": _finding("budget_threshold", {"budget": "b"}, at(9, 1), at(10, 1)),
        "october": _finding("budget_threshold", {"budget": "b"}, at(10, 1), at(11, 1)),
        "breach over": _finding("threshold_breach", {"threshold": "t"}, at(10, 29), at(10, 29, 3)),
        "breach on": _finding("threshold_breach", {"threshold": "u"}, at(10, 31), at(10, 31, 9)),
        "ttl gone": _finding("ttl_expiry", {"workload": "nb-1"}, at(10, 28), at(10, 31)),
        "ttl still": _finding("ttl_expiry", {"workload": "nb-2"}, at(10, 28), at(10, 31)),
    }
    ledger.write([], source="x", findings=list(stored.values()))
    resolved = settle(ledger, FixedClock(at(11, 1)), bills_day=D(2026, 10, 31),
                      telemetry_as_of=at(10, 31, 10), ttl=[stored["ttl still"]])  # fmt: skip
    names = {f.fingerprint: n for n, f in stored.items()}
    assert sorted(names[f.fingerprint] for f in resolved) == [
        "breach over", "old spike", "september", "ttl gone"]  # fmt: skip
    after = {names[f.fingerprint]: f for f in current_findings(ledger)}
    assert after["old spike"].evidence[RESOLVED_REASON] == (
        "it ended 2026-10-01, 14 days or more before the latest bills"
    )
    assert after["september"].evidence[RESOLVED_REASON] == (
        "its period closed (2026-09-30 was its last day)"
    )
    assert after["ttl gone"].evidence[RESOLVED_REASON] == (
        "its workload is no longer running past its TTL"
    )
    assert {n for n, f in after.items() if f.status is FindingStatus.OPEN} == {
        "recent spike", "october", "breach on", "ttl still"}  # fmt: skip


def test_ttl_and_source_findings_say_what_to_do(ledger: Ledger) -> None:
    ledger.con.execute(
        "INSERT INTO workloads (workload_id, kind, name, start, ttl, status, gpus_requested, "
        "gpu_model, team) VALUES ('nb/alice', 'notebook', 'alice-nb', '2026-10-30T08:00:00Z', "
        "INTERVAL 8 HOUR, 'running', 2, 'A100', 'search')"
    )
    now = dt.datetime(2026, 10, 31, tzinfo=UTC)
    [ttl] = expired(ledger.table("workloads"), now, clock=FixedClock(now))
    assert _has_action(ttl) and "frees its 2 GPU(s)" in ttl.actions[0].text
    [bad] = source_findings([{"source": "aws", "status": "error", "exit_code": 2,
                              "error": "bills.csv: row 3, column BilledCost: not a number"}],
                            FixedClock(now))  # fmt: skip
    assert bad.kind is FindingKind.DATA_QUALITY and _has_action(bad)


@pytest.mark.parametrize("seed", [7])
def test_the_demo_opens_at_most_15_findings_each_with_an_action(tmp_path: Path, seed: int) -> None:
    """`costline demo` then `costline findings`: what is open is a handful, each actionable."""
    out = tmp_path / "org"
    url = f"duckdb://{out / 'ledger.duckdb'}"
    run_demo(out=out, ledger_url=url, seed=seed, days=90, scale=1.0, fmt=Format.json,
             err=Console(file=io.StringIO()))  # fmt: skip
    with Ledger(url, read_only=True) as ledger:
        found = current_findings(ledger)
    opened = [f for f in found if f.status is FindingStatus.OPEN]
    assert 0 < len(opened) <= 15, [f.title for f in opened]
    assert all(_has_action(f) for f in opened if f.kind in ACTIONABLE), [
        f.title for f in opened if f.kind in ACTIONABLE and not _has_action(f)]  # fmt: skip
    passed = [f for f in opened if f.title.startswith("Budget ") and "passed" in f.title]
    assert all(f.evidence["threshold_pct"] in ("90", "100") for f in passed)
    assert len([f for f in opened if f.scope.get(DIGEST_SCOPE)]) == 1
