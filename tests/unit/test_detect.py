"""Spend anomalies: the method on made series, and scored on the demo's injected incidents."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

import pytest

from costline.clock import FixedClock
from costline.detect.anomaly import Settings, scan
from costline.detect.spend import detect_spend
from costline.ledger.store import Ledger
from costline.model import Finding
from tests.unit.demo_orgs import DemoOrgs, billed_org

SEEDS = (1, 2, 3, 4, 5)
SPEND_KINDS = {"token_spike", "runaway_sweep", "checkpoint_jump", "replication_left_on",
               "traffic_surge"}  # fmt: skip


def _weekly(days: int, rng: Random, level: float = 1000.0) -> list[float]:
    return [level * (0.72 if d % 7 in (5, 6) else 1.0) * rng.uniform(0.9, 1.1) for d in range(days)]


def test_weekends_and_noise_are_not_anomalies_and_a_spike_is_one() -> None:
    rng = Random(1)
    values = _weekly(90, rng)
    assert scan(values) == []
    values[60] += 900
    values[61] += 700
    [a] = scan(values)
    assert (a.start, a.end) == (60, 61) and a.impact == pytest.approx(1600, rel=0.15)


def test_a_level_shift_is_one_anomaly_from_its_first_day() -> None:
    values = _weekly(90, Random(2))
    for d in range(60, 90):
        values[d] *= 1.8
    found = scan(values)
    assert found[0].start == 60 and len(found[0].points) >= 7
    assert all(a.start >= 60 for a in found)


def test_a_bursty_meter_bursting_as_usual_is_not_news_but_a_tripling_is() -> None:
    rng = Random(3)
    values = [rng.uniform(15, 35) for _ in range(100)]
    for start in range(3, 100, 9):  # a batch job: bursts of about 5x, every nine days
        values[start] = rng.uniform(120, 180)
    assert scan(values) == []
    values[95] = 600.0
    assert [a.start for a in scan(values)] == [95]


def test_gates_dollars_percent_and_history() -> None:
    values = [100.0] * 60
    values[50] = 190.0  # +90 a day: under the $100 gate
    assert scan(values) == []
    values[50] = 10_000.0
    assert scan(values, Settings(min_impact=100, min_total_impact=20_000)) == []
    early = [100.0] * 60
    early[20] = 10_000.0  # before six weeks of history: not judged
    assert scan(early) == []
    big = [100_000.0] * 60
    big[50] = 110_000.0  # +$10k, but +10%: under the 20% gate
    assert scan(big) == []


def _org(root: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    org = billed_org(root / f"org-{seed}", seed)
    return org.out, org.truth


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def matches(finding: Finding, incident: dict[str, Any]) -> bool:
    """Same time (overlapping, a day's slack) and same scope: every dimension shared by the
    incident and what the finding says it is (its scope, and the values of its root cause that
    carry at least half of the excess) agrees, and at least one is shared; an incident's
    usage_type is the list of its meters' SKUs."""
    assert finding.window is not None
    start, end = _at(incident["start"]), _at(incident["end"])
    day = dt.timedelta(days=1)
    if not (finding.window.start < end + day and finding.window.end > start - day):
        return False
    said: dict[str, set[str]] = {k: {v} for k, v in finding.scope.items()}
    for c in finding.evidence.get("root_cause") or []:
        if isinstance(c, dict) and c.get("value") and float(c.get("share") or 0) >= 0.5:
            said.setdefault(str(c["dimension"]), set()).add(str(c["value"]))
    shared = [k for k in said if k in incident["scope"]]

    def accepted(k: str) -> list[str]:
        v = incident["scope"][k]
        return v if isinstance(v, list) else [v]

    return bool(shared) and all(said[k] & set(accepted(k)) for k in shared)


@pytest.fixture(scope="module")
def orgs(demo_orgs: DemoOrgs) -> list[tuple[Path, dict[str, Any]]]:
    """The demo organization of each seed, its bills ingested, with its ground truth (made once
    a session: `test_recommend_demo` adds telemetry to copies of the same ledgers)."""
    return [(demo_orgs.bills(seed).out, demo_orgs.bills(seed).truth) for seed in SEEDS]


def spend_incidents(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in truth["incidents"] if i["kind"] in SPEND_KINDS]


@pytest.fixture(scope="module")
def scored(orgs: list[tuple[Path, dict[str, Any]]]) -> list[tuple[dict[str, Any], list[Finding]]]:
    out = []
    for org, truth in orgs:
        window = truth["window"]
        end = _at(window["end"])
        with Ledger(f"duckdb://{org / 'ledger.duckdb'}", read_only=True) as ledger:
            found = detect_spend(ledger.table("cost_lines"), _at(window["start"]), end,
                                 clock=FixedClock(end), metrics=ledger.table("metrics"),
                                 annotations=ledger.table("annotations"))  # fmt: skip
        out.append((truth, found))
    return out


def test_detection_recall_and_precision_on_injected_incidents_over_five_seeds(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    incidents = found = true_findings = 0
    missed: list[str] = []
    false: list[str] = []
    for truth, findings in scored:
        assert {i["kind"] for i in spend_incidents(truth)} == SPEND_KINDS
        for incident in spend_incidents(truth):
            incidents += 1
            if any(matches(f, incident) for f in findings):
                found += 1
            else:
                missed.append(f"seed {truth['seed']}: {incident['kind']} {incident['start']}")
        for f in findings:
            if any(matches(f, i) for i in spend_incidents(truth)):
                true_findings += 1
            else:
                false.append(f"seed {truth['seed']}: {f.title}")
    recall = found / incidents
    precision = true_findings / sum(len(f) for _, f in scored)
    assert recall >= 0.95, missed
    assert precision >= 0.90, false


def test_a_traffic_surge_is_value_and_a_tripled_prompt_is_waste(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    for truth, findings in scored:
        for incident in truth["incidents"]:
            verdicts = {f.evidence["verdict"] for f in findings if matches(f, incident)}
            if incident["kind"] == "traffic_surge":
                assert "value" in verdicts and "waste" not in verdicts, (truth["seed"], verdicts)
            elif incident["kind"] == "token_spike":
                assert "waste" in verdicts and "value" not in verdicts, (truth["seed"], verdicts)


def test_a_finding_says_who_what_and_how_much(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    truth, findings = scored[0]
    sweep = next(i for i in truth["incidents"] if i["kind"] == "runaway_sweep")
    hits = [f for f in findings if matches(f, sweep)]
    assert hits
    best = max(hits, key=lambda f: f.impact_usd or 0)
    assert best.owner == sweep["scope"]["team"]
    assert best.evidence["root_cause"] and not math.isnan(float(best.evidence["observed_usd"]))
    # The impact found is the injected extra cost, within the baseline's own noise.
    assert float(best.impact_usd or 0) == pytest.approx(float(sweep["impact_usd"]), rel=0.35)


def test_each_injected_incident_is_one_finding_seen_on_its_dimensions(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    """A sweep rises on its service, its usage type and its team at once: one finding, which
    names the dimensions it was seen on; an incident's scope is a resource or usage type with
    its team."""
    for truth, findings in scored:
        for incident in spend_incidents(truth):
            hits = [f for f in findings if matches(f, incident)]
            assert len(hits) == 1, (truth["seed"], incident["kind"], [f.title for f in hits])
            [f] = hits
            assert set(f.scope) - {"team"} <= {"resource", "usage_type"}, f.scope
            assert f.scope.get("team") == incident["scope"].get("team", f.scope.get("team"))
            assert f.evidence["seen_on"] and all(
                {"dimension", "value", "start", "impact_usd"} <= set(s)
                for s in f.evidence["seen_on"]
                if isinstance(s, dict)
            )


def test_root_cause_ranks_by_share_and_leaves_out_what_explains_nothing(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    """Replication left on and a checkpoint jump are one resource each: it is listed first with
    (about) all of the excess; another team's transfer in the same service is not listed."""
    for truth, findings in scored:
        for incident in spend_incidents(truth):
            if incident["kind"] not in ("replication_left_on", "checkpoint_jump"):
                continue
            [f] = [f for f in findings if matches(f, incident)]
            causes = f.evidence["root_cause"]
            assert isinstance(causes, list) and isinstance(causes[0], dict)
            assert causes[0]["dimension"] == "resource", (truth["seed"], causes[0])
            assert float(causes[0]["share"]) == pytest.approx(1.0, abs=0.08)
            assert f.scope["resource"] == causes[0]["value"]
            assert all(isinstance(c, dict) and float(c["share"]) >= 0.05 for c in causes)
            teams = [c["value"] for c in causes if isinstance(c, dict) and c["dimension"] == "team"]
            team = incident["scope"].get("team")  # a bucket with no team tag has none listed
            assert teams == ([team] if team else []), (truth["seed"], teams)
            # each value shows its own dollars: the shares are not all the same
            assert len({c["extra_per_day_usd"] for c in causes if isinstance(c, dict)}) >= 1


def test_contributions_rank_the_value_that_explains_everything_first() -> None:
    """On made daily sums: resource r1 doubles, r2 stays flat; r1 carries the whole excess and
    ranks first (before its account, of equal share), r2 is not listed."""
    from costline.detect.incidents import contributions, ranked

    start = dt.date(2026, 10, 1)
    rows = []
    for k in range(-28, 5):
        day = start + dt.timedelta(days=k)
        for dim, value, cost in (("resource", "r1", 100 if k < 0 else 300),
                                 ("resource", "r2", 50), ("account", "a", 100 if k < 0 else 300),
                                 ("account", "b", 50), ("service", "s", 150 if k < 0 else 350)):  # fmt: skip
            rows.append((day, dim, value, Decimal(cost)))
    causes = ranked(contributions(rows, ("team", "t"), start, start + dt.timedelta(days=4), 28))
    assert [(c.dimension, c.value) for c in causes] == [
        ("resource", "r1"), ("team", "t"), ("account", "a"), ("service", "s")]  # fmt: skip
    assert causes[0].share == pytest.approx(1.0) and causes[0].extra_per_day == 200.0


def test_grouping_joins_one_cause_and_keeps_two_incidents_of_one_day_apart() -> None:
    """Two SKUs rise on the same days on two resources of two teams, and their service with
    them (70% of it from the first): the service's rise is the first incident's, the second
    stays its own; a team's rise a quarter explained by the first joins it; the same SKU a
    month later is another incident."""
    from costline.detect.anomaly import Anomaly
    from costline.detect.incidents import Cause, group
    from costline.detect.spend import SpendAnomaly

    day = dt.date(2026, 10, 5)

    def anomaly(dim: str, value: str, impact: float, late: int = 0) -> SpendAnomaly:
        start = day + dt.timedelta(days=late)
        return SpendAnomaly(dim, value, start, start + dt.timedelta(days=3),
                            Anomaly(0, 3, impact=impact, points=[0, 1, 2, 3]))  # fmt: skip

    def causes(own: tuple[str, str], *shares: tuple[str, str, float]) -> list[Cause]:
        return [Cause(*own, 100.0, 1.0)] + [Cause(d, v, 100 * x, x) for d, v, x in shares]

    service = anomaly("service", "S", 9000)
    first, second = anomaly("usage_type", "U1", 6000), anomaly("usage_type", "U2", 2500)
    team, later = anomaly("team", "t3", 1000), anomaly("usage_type", "U1", 800, late=30)
    found = group(
        [service, first, second, team, later],
        [causes(("service", "S"), ("resource", "R1", 0.7), ("resource", "R2", 0.3),
                ("usage_type", "U1", 0.7), ("usage_type", "U2", 0.3)),
         causes(("usage_type", "U1"), ("resource", "R1", 1.0), ("team", "t1", 1.0)),
         causes(("usage_type", "U2"), ("resource", "R2", 1.0), ("team", "t2", 1.0)),
         causes(("team", "t3"), ("resource", "R1", 0.3), ("resource", "R9", 0.2)),
         causes(("usage_type", "U1"), ("resource", "R1", 1.0))],
    )  # fmt: skip
    assert [(n.lead, n.members) for n in found] == [
        (("resource", "R1"), [service, first, team]),
        (("resource", "R2"), [second]),
        (("resource", "R1"), [later]),
    ]


def test_titles_name_resources_and_skus_not_their_ids(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    """A title says `atlas-training-data-replica (USE1-USW2-AWS-Out-Bytes on AWS Data
    Transfer)`, never `usage_type 55X5YPGCZ35LJ4AJ`: every SKU and resource of the demo has a
    name in its lines."""
    for truth, findings in scored:
        for f in findings:
            for c in f.evidence["root_cause"]:
                assert isinstance(c, dict)
                if c["dimension"] in ("usage_type", "resource"):
                    assert c["name"] and (c["name"] != c["value"] or c["value"] in c["name"])
                    if c["value"] not in str(c["name"]):
                        assert str(c["value"]) not in f.title, (truth["seed"], f.title)
            assert "usage_type " not in f.title and "resource " not in f.title, f.title


def test_every_anomaly_finding_suggests_an_action_that_fits_its_evidence(
    scored: list[tuple[dict[str, Any], list[Finding]]],
) -> None:
    ongoing = 0
    for truth, findings in scored:
        assert all(f.actions for f in findings)
        for incident in spend_incidents(truth):
            [f] = [f for f in findings if matches(f, incident)]
            first = f.actions[0]
            kind = incident["kind"]
            if kind == "runaway_sweep":
                assert first.text.startswith("Sweep:") and "TTL" in first.text, first.text
            elif kind == "replication_left_on":
                assert first.text.startswith("Transfer:"), first.text
                # while it is still on at the end of the data, it saves a month of its excess
                extra = float(f.evidence["extra_per_day_usd"])
                if f.evidence["ongoing"]:
                    ongoing += 1
                    saves = float(first.estimated_monthly_savings_usd or 0)
                    assert saves == pytest.approx(extra * 30, abs=0.01)
                else:
                    assert first.estimated_monthly_savings_usd is None
            elif kind == "token_spike":
                assert first.text.startswith("Tokens:") and "max_tokens" in first.text
            elif kind == "traffic_surge":
                assert first.text.startswith("Forecast: raise the baseline"), first.text
    assert ongoing >= 1


def test_actions_follow_the_evidence_a_level_shift_a_sweep_and_a_drop() -> None:
    """A resource still on at the end saves a month of its excess; a sweep's resources are named
    and a TTL asked for; a drop asks whether what it runs still works, and saves nothing."""
    from costline.detect.actions import anomaly_actions

    endpoint = {"dimension": "resource", "value": "ep-1", "name": "chat-endpoint", "share": 0.97}
    shift = {"days": 10, "observed_usd": 12000, "expected_usd": 2000, "extra_per_day_usd": 1000,
             "ongoing": True, "root_cause": [endpoint], "changes": []}  # fmt: skip
    first, *rest = anomaly_actions(shift, {"resource": "ep-1", "team": "search"})
    assert first.text.startswith("Resource: stop `chat-endpoint`")
    assert first.estimated_monthly_savings_usd == Decimal("30000.00")
    assert any(a.text.startswith("Threshold:") and "$300/day" in a.text for a in rest)
    sweep = {**shift, "ongoing": False, "resources": 6, "root_cause": [
        {"dimension": "resource", "value": f"job-{k}", "share": 1 / 6} for k in range(6)]}  # fmt: skip
    first = anomaly_actions(sweep, {"usage_type": "p5.48xlarge"})[0]
    assert first.text.startswith("Sweep: stop the 6 extra instances (`job-0`")
    assert "TTL" in first.text and first.estimated_monthly_savings_usd is None
    creep = {**shift, "ongoing": False, "open": True, "pattern": "creep",
             "growth_pct_per_day": 3.0, "projected_month_excess": 41000.0}  # fmt: skip
    # What to do about the cause comes first (open: still costing), then the creep's projection.
    first, second, *_ = anomaly_actions(creep, {"resource": "ep-1"})
    assert second.text.startswith("Creep: resource chat-endpoint grows 3.0% a day")
    assert second.estimated_monthly_savings_usd == Decimal("41000.00")
    assert first.estimated_monthly_savings_usd == Decimal("30000.00")
    drop = {**shift, "observed_usd": 500, "extra_per_day_usd": -150}
    [only] = anomaly_actions(drop, {"resource": "ep-1"})
    assert only.text.startswith("Check: resource chat-endpoint spends $150/day less")
    assert only.estimated_monthly_savings_usd is None


def test_a_daily_run_keeps_one_finding_per_incident_from_day_to_day(
    orgs: list[tuple[Path, dict[str, Any]]],
) -> None:
    """Detection runs once a day on the data so far: the sweep seen on day N and again on day
    N+1 (on more dimensions, with more impact) is the same finding, not a second one."""
    org, truth = orgs[0]
    with Ledger(f"duckdb://{org / 'ledger.duckdb'}", read_only=True) as ledger:
        for incident in spend_incidents(truth):
            if incident["kind"] not in ("runaway_sweep", "replication_left_on"):
                continue
            seen = []
            for late in (3, 4):
                end = _at(incident["start"]) + dt.timedelta(days=late)
                found = detect_spend(ledger.table("cost_lines"), end - dt.timedelta(days=84),
                                     end, clock=FixedClock(end))  # fmt: skip
                hits = [f for f in found if matches(f, incident)]
                assert len(hits) == 1, (incident["kind"], late, [f.title for f in hits])
                seen.append(hits[0])
            assert seen[0].fingerprint == seen[1].fingerprint, incident["kind"]
            assert seen[0].merge(seen[1]).impact_usd == seen[1].impact_usd


def reference_root_cause(derived: Any, scope: tuple[str, str], start: dt.date, last: dt.date,
                         history_days: int) -> list[dict[str, Any]]:  # fmt: skip
    """Each cause value's extra cost a day in a scope's window, as costline computed it before
    (one query per anomaly over the derived lines, sums cast to float in the engine): the
    one-query form must agree to the cent."""

    from costline.detect.incidents import CAUSE_DIMENSIONS
    from costline.detect.spend import DIMENSIONS

    def at(day: dt.date) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    dim, value = scope
    col = derived[DIMENSIONS[dim]].cast("string")
    d = derived.filter(col == value, derived.ChargePeriodStart >= at(start) - dt.timedelta(days=history_days),
                       derived.ChargePeriodStart < at(last) + dt.timedelta(days=1))  # fmt: skip
    inside = d.ChargePeriodStart >= at(start)
    span = (last - start).days + 1
    out = []
    for name in CAUSE_DIMENSIONS:
        if name == dim:
            continue
        g = d.group_by(d[DIMENSIONS[name]].cast("string").name("value")).aggregate(
            during=d.EffectiveCost.sum(where=inside).cast("float64"),
            before=d.EffectiveCost.sum(where=~inside).cast("float64"),
        )
        for r in g.to_pyarrow().to_pylist():
            delta = (r["during"] or 0.0) / span - (r["before"] or 0.0) / history_days
            out.append(
                {"dimension": name, "value": r["value"], "extra_per_day_usd": round(delta, 2)}
            )
    return out


def test_root_causes_of_all_incidents_in_one_query_equal_the_per_anomaly_query_to_the_cent(
    orgs: list[tuple[Path, dict[str, Any]]],
) -> None:
    """detect_spend asks the engine one root-cause query for all incidents (it compiled one per
    anomaly once) and one for the names: the same cents, and the queries do not grow with the
    incidents. Each listed value carries its share of the scope's excess."""
    from costline.attribution.rules import derive_lines
    from costline.detect.usage_sums import usage
    from costline.ledger import fetch

    history = Settings().history
    compiled: list[Any] = []  # the queries whose rows the engine is asked for
    original = fetch.arrow

    def counting(expr: Any) -> Any:
        compiled.append(expr)
        return original(expr)

    checked = 0
    for org, truth in orgs[:3]:
        window = truth["window"]
        end = _at(window["end"])
        with Ledger(f"duckdb://{org / 'ledger.duckdb'}", read_only=True) as ledger:
            lines = ledger.table("cost_lines")
            compiled.clear()
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(fetch, "arrow", counting)
                found = detect_spend(lines, _at(window["start"]), end, clock=FixedClock(end))
            assert found
            # the daily series, the root causes and the names: three queries, whatever the
            # anomalies and incidents
            assert len(compiled) == 3, len(compiled)
            derived = derive_lines(usage(lines))
            for f in found:
                frame = f.evidence["seen_on"][0]  # the largest anomaly: the excess divided
                start = dt.date.fromisoformat(f.evidence["start"])
                last = dt.date.fromisoformat(f.evidence["last_seen"])
                every = reference_root_cause(derived, (frame["dimension"], frame["value"]),
                                             start, last, history)  # fmt: skip
                total = sum(r["extra_per_day_usd"] for r in every if r["dimension"] == "region"
                            or (frame["dimension"] == "region" and r["dimension"] == "service"))  # fmt: skip
                expected = {(r["dimension"], r["value"]): r["extra_per_day_usd"] for r in every}
                expected[(frame["dimension"], frame["value"])] = total
                for c in f.evidence["root_cause"]:
                    assert c["extra_per_day_usd"] == pytest.approx(
                        expected[(c["dimension"], c["value"])], abs=0.011
                    ), (f.title, c)
                    assert c["share"] == pytest.approx(c["extra_per_day_usd"] / total, abs=2e-3)
                    assert c["share"] >= 0.05, (f.title, c)  # what explains nothing is left out
                listed = {(c["dimension"], c["value"]) for c in f.evidence["root_cause"]}
                missing = [k for k, v in expected.items()
                           if k[1] is not None and v / total >= 0.06 and k not in listed]  # fmt: skip
                assert not missing or len(listed) == 8, (f.title, missing)
                checked += 1
    assert checked >= 5


def test_detect_command_stores_findings_once_and_lists_them(tmp_path: Path) -> None:
    org, _ = _org(tmp_path, 3)
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb:///{org / 'ledger.duckdb'}"}

    def costline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "costline", *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    first = costline("detect", "-f", "json")
    assert first.returncode == 0, first.stderr
    again = costline("detect", "-f", "json")
    assert json.loads(again.stdout) == json.loads(first.stdout)
    listed = costline("findings", "--format", "json")
    rows = json.loads(listed.stdout)
    assert len(rows) == len(json.loads(first.stdout)) > 0
    assert {"kind", "scope", "start", "impact_usd", "owner", "verdict"} <= set(rows[0])
    assert all(r["kind"] == "anomaly" for r in rows)
    # `findings` lists the open ones: a resolved one is gone from it, not from `--status all`.
    assert costline("resolve", rows[0]["fingerprint"]).returncode == 0
    still = json.loads(costline("findings", "--format", "json").stdout)
    every = json.loads(costline("findings", "--status", "all", "--format", "json").stdout)
    assert rows[0]["fingerprint"] not in {r["fingerprint"] for r in still}
    assert len(every) == len(rows) == len(still) + 1
    bad = costline("detect", "--by", "colour")
    assert bad.returncode == 2 and "--by 'colour'" in bad.stderr


def test_budget_overruns_are_found_on_the_day_with_the_overrun_to_the_cent(
    orgs: list[tuple[Path, dict[str, Any]]],
) -> None:
    from costline.budgets.evaluate import evaluate
    from costline.budgets.status import budget_findings
    from costline.config import load_config

    for org, truth in orgs:
        overruns = [i for i in truth["incidents"] if i["kind"] == "budget_overrun"]
        assert overruns, f"seed {truth['seed']}: no budget overrun injected"
        config = load_config(org / "costline.yaml")
        window = truth["window"]
        end = _at(window["end"])
        with Ledger(f"duckdb://{org / 'ledger.duckdb'}", read_only=True) as ledger:
            statuses = evaluate(ledger.table("cost_lines"), config.budgets,
                                (end - dt.timedelta(days=1)).date(),
                                since=_at(window["start"]).date(), forecast=False)  # fmt: skip
        found = budget_findings(statuses, clock=FixedClock(end))
        full = {(f.scope["budget"], f.evidence["crossed_on"], str(f.impact_usd))
                for f in found if f.evidence.get("threshold_pct") == "100"}  # fmt: skip
        expected = {(i["scope"]["budget"], i["start"][:10], i["impact_usd"]) for i in overruns}
        assert full == expected, truth["seed"]
        assert all(f.owner for f in found if f.scope["budget"] == overruns[0]["scope"]["budget"])


def test_budgets_forecast_and_spike_review_commands(
    orgs: list[tuple[Path, dict[str, Any]]],
) -> None:
    org, truth = orgs[0]
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb:///{org / 'ledger.duckdb'}",
           "COSTLINE_CONFIG": str(org / "costline.yaml")}  # fmt: skip

    def costline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "costline", *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    since = truth["window"]["start"][:10]
    first = costline("budgets", "--since", since, "-f", "json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    overrun = next(i for i in truth["incidents"] if i["kind"] == "budget_overrun")
    rows = {r["budget"]: r for r in report["budgets"]}
    assert set(rows) == {b["name"] for b in _budgets(org)}
    target = rows[overrun["scope"]["budget"]]
    assert {"spent_usd", "used_pct", "state", "forecast_p50_usd", "days_to_exhaustion",
            "burn_rate", "thresholds_crossed", "forecast_miss"} <= set(target)  # fmt: skip
    assert all(c["budget"] in rows and {"forecast_p90_usd", "actual_usd", "miss"} <= set(c)
               for c in report["forecast_checks"])  # fmt: skip
    assert report["experiments"] == []  # bills only here: no workloads, so no experiments
    every = ("findings", "--status", "all", "--kind", "budget_threshold", "-f", "json")
    listed = json.loads(costline(*every).stdout)
    again = costline("budgets", "--since", since, "-f", "json")
    assert again.returncode == 0
    relisted = json.loads(costline(*every).stdout)
    assert len(relisted) == len(listed) > 0  # evaluated twice, stored once

    for metric in ("cost_usd", "gpu_hours", "tokens", "inference_successes"):
        made = costline("forecast", "--metric", metric, "--by", "team", "--horizon", "30d",
                        "-f", "json")  # fmt: skip
        assert made.returncode == 0, (metric, made.stderr)
        out = json.loads(made.stdout)
        assert out and all(r["horizon_p10"] <= r["horizon_p50"] <= r["horizon_p90"] for r in out)
        assert all(r["model"] and r["horizon_days"] == 30 for r in out)
        assert all(r["coverage"] is None or 0 <= r["coverage"] <= 1 for r in out)
    bad = costline("forecast", "--by", "colour")
    assert bad.returncode == 2 and "colour" in bad.stderr

    detected = costline("detect", "-f", "json")
    assert detected.returncode == 0, detected.stderr
    top = max(json.loads(detected.stdout), key=lambda r: float(r["impact_usd"]))
    review = costline("report", "spike-review", top["fingerprint"][:12])
    assert review.returncode == 0, review.stderr
    for heading in ("# Spike review", "## Root cause", "## Value or waste",
                    "## Signals and controls that fired", "## Suggested updates"):  # fmt: skip
        assert heading in review.stdout
    assert costline("report", "spike-review", "deadbeef00").returncode == 2


def _budgets(org: Path) -> list[dict[str, Any]]:
    import yaml

    budgets: list[dict[str, Any]] = yaml.safe_load((org / "costline.yaml").read_text())["budgets"]
    return budgets
