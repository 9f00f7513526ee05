"""The demo's experiment manifests: gated, estimated against the organization's history, and
checked against what the demo's own runs were billed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costline.cli.demo import estimate_comment
from costline.cli.progress import Bar
from costline.config import load_config
from costline.demo.activity import generate_activity
from costline.demo.billing import generate_billing
from costline.demo.manifests import BAD, MANIFEST_DIR, showcase
from costline.governance.assess import estimates
from costline.governance.estimate import Estimate
from costline.governance.manifests import read_manifests
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files, ingest_focus
from costline.sources.workloads import REGISTRY, SLURM
from costline.sources.workloads.hostlist import expand
from tests.unit.governance_data import cli

# The smallest demo with enough finished runs of each kind (5+) for a history of its own.
SEED, DAYS, SCALE = 7, 30, 0.3


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's bills and Slurm runs in a ledger (closed: the CLI opens it too)."""
    out = tmp_path_factory.mktemp("org")
    billing = generate_billing(out, seed=SEED, days=DAYS, scale=SCALE)
    activity = generate_activity(out, billing, seed=SEED, telemetry_hours=1)
    with Ledger(_url(out)) as ledger:
        ingest_focus(ledger, [out / f.path for f in billing.files])
        ingest_files(ledger, [activity.sacct_file], SLURM)
        ingest_files(ledger, [activity.registry_file], REGISTRY)
    return out


def _url(out: Path) -> str:
    return f"duckdb://{out / 'ledger.duckdb'}"


@pytest.fixture
def ledger(org: Path) -> Iterator[Ledger]:
    with Ledger(_url(org)) as opened:
        yield opened


def _manifests(out: Path) -> list[Path]:
    return sorted((out / MANIFEST_DIR).glob("*.yaml"))


def test_gate_fails_exactly_the_three_bad_manifests(org: Path) -> None:
    out = org
    done = cli("--ledger", _url(out), "--config", str(out / "costline.yaml"),
               "gate", *map(str, _manifests(out)), "-f", "json")  # fmt: skip
    assert done.exit_code == 1, done.output
    rows = json.loads(done.output)["manifests"]
    failed = {r["manifest"]: [x["rule"] for x in r["rules"] if x["status"] == "fail"]
              for r in rows if r["exit"] != 0}  # fmt: skip
    by_kind = {b: rules for name, rules in failed.items() for b in BAD if name.startswith(b)}
    assert len(failed) == 3 and by_kind == {
        "no-ttl": ["ttl"],
        "over-team-budget": ["team_budget"],
        "h100-in-dev": ["instance_allowed"],
    }
    assert len(rows) > 20  # every other manifest, one per Slurm run, passes


def test_runs_carry_their_plan_and_the_registry_matches_them_by_name(
    org: Path, ledger: Ledger
) -> None:
    out = org
    runs = ledger.con.sql(
        "select workload_id, tags['manifest'], tags['expected_hours'] from workloads "
        "where source = 'slurm'"
    ).fetchall()
    names = {p.stem for p in _manifests(out)}
    assert runs and all(m in names and Decimal(h) > 0 for _, m, h in runs)
    config = load_config(out / "costline.yaml")
    found = estimates(read_manifests(_manifests(out), config), config, ledger)
    # each run's manifest is matched to its registry entry (the group) by name: `vista-880103`
    # to `vista`, through the entry's `match: {name: "vista*"}`
    matched = {e.manifest.name: e.registry for e in found}
    assert all(matched[m] == m.rsplit("-", 1)[0] for _, m, _ in runs)
    assert matched[next(n for n in matched if n.startswith("h100-in-dev"))] is None


def _billed(ledger: Ledger, node: str, start: dt.datetime, end: dt.datetime) -> Decimal:
    """What the run's nodes were billed over its hours: the bills' rate per instance-hour on the
    days it ran x the hours it held them (an hour started is an hour billed)."""
    first = start.replace(minute=0, second=0)
    last = (end + dt.timedelta(minutes=59)).replace(minute=0, second=0)
    nodes = expand(node)
    rate = ledger.con.execute(
        "select sum(BilledCost) / sum(ConsumedQuantity) from cost_lines where ChargeCategory = "
        "'Usage' and ResourceName in (select unnest(?)) and ChargePeriodEnd > ? "
        "and ChargePeriodStart < ?",
        [nodes, first, last],
    ).fetchall()[0][0]
    return Decimal(rate) * Decimal((last - first).total_seconds() / 3600) * len(nodes)


def test_estimates_against_the_runs_billed_cost(org: Path, ledger: Ledger) -> None:
    out = org
    config = load_config(out / "costline.yaml")
    found = {e.manifest.name: e for e in estimates(read_manifests(_manifests(out), config),
                                                   config, ledger)}  # fmt: skip
    runs = ledger.con.sql(
        "select tags['manifest'], node, start, \"end\" from workloads "
        "where source = 'slurm' and \"end\" is not null"
    ).fetchall()
    checked: list[dict[str, Any]] = []
    for name, node, start, end in runs:
        e: Estimate = found[name]
        if e.manifest.resources.gpus is None or e.manifest.steps is None:
            continue
        assert e.factors.runs >= 5  # the organization's own history, not the assumption
        option = e.option("committed") or e.option("on_demand")  # the rate the bills show
        assert option is not None, e.unpriced
        billed = _billed(ledger, node, start, end)
        checked.append(
            {"p50": abs(option.p50_usd / billed - 1), "covered": option.p90_usd >= billed}
        )
    assert len(checked) >= 20
    within = sum(c["p50"] <= Decimal("0.15") for c in checked) / len(checked)
    covered = sum(c["covered"] for c in checked) / len(checked)
    assert within >= 0.8 and covered >= 0.9, (within, covered)


def test_the_demo_prints_one_manifests_estimate_as_a_comment(org: Path, ledger: Ledger) -> None:
    text = estimate_comment(ledger, org, org / "costline.yaml", Bar(None, None))
    biggest = showcase(org / MANIFEST_DIR)
    assert biggest is not None and text.startswith(f"### {biggest.stem}\n")
    assert "will cost $" in text and "Approve?**" in text
    assert "finished runs of" in text  # P50/P90 from the organization's history
    assert "committed | " in text  # and the rate its bills show it paid
