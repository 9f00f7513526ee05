"""The CLI as a user runs it: exit codes, formats, the demo end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tests.helpers import FOCUS_SAMPLE


def costline(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costline", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ingest_sql_and_exit_codes(tmp_path: Path) -> None:
    env = {"COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'l.duckdb'}"}
    first = costline("ingest", "focus", str(FOCUS_SAMPLE), "-f", "json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["rows"] == 1000 and data["totals"][0]["billed"] == "20.520226728990000000"
    again = costline("ingest", "focus", str(FOCUS_SAMPLE), "-f", "json", cwd=tmp_path, env=env)
    assert json.loads(again.stdout)["duplicates"] == [str(FOCUS_SAMPLE)]
    out = costline(
        "sql", "SELECT count(*) AS n FROM cost_lines", "-f", "csv", cwd=tmp_path, env=env
    )
    assert out.stdout.splitlines() == ["n", "1000"]
    refused = costline("sql", "DELETE FROM cost_lines", cwd=tmp_path, env=env)
    assert refused.returncode == 2 and "refused" in refused.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(FOCUS_SAMPLE.read_text().replace("0.00000080000", "zero", 1))
    failed = costline("ingest", "focus", str(bad), cwd=tmp_path, env=env)
    assert failed.returncode == 2
    assert "bad.csv, row 1, column BilledCost: 'zero' is not a decimal number" in failed.stderr
    usage = costline("ingest", "nosuchsource", cwd=tmp_path, env=env)
    assert usage.returncode == 2


def test_schema_commands_print_json(tmp_path: Path) -> None:
    for what in ("config", "finding"):
        proc = costline("schema", what, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["type"] == "object"


def test_demo_end_to_end_is_reproducible_and_idempotent(tmp_path: Path) -> None:
    args = ("demo", "--days", "20", "--scale", "0.3", "--out", str(tmp_path / "org"), "-f", "json")
    first = costline(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ledger_matches_ground_truth"] is True
    assert {r["provider"] for r in report["spend_by_provider"]} == {
        "AWS",
        "Microsoft",
        "Google Cloud",
        "Lambda",
    }
    assert len([r for r in report["spend_by_team"] if r["team"] != "(untagged)"]) >= 5
    truth = json.loads((tmp_path / "org" / "ground_truth.json").read_text())
    assert truth["seed"] == 7
    second = costline(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "12 already in the ledger" in second.stderr or "already in the ledger" in second.stderr
    assert json.loads(second.stdout)["billed_total"] == report["billed_total"]

    # Reports on the demo's last day: buckets add up to the day's cost, in every format.
    env = {"COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'org' / 'ledger.duckdb'}"}
    day = costline("sql", "SELECT max(ChargePeriodStart)::DATE AS d FROM cost_lines", "-f", "csv",
                   cwd=tmp_path, env=env).stdout.splitlines()[1]  # fmt: skip
    cost = costline("sql", f"SELECT sum(EffectiveCost) AS c FROM cost_lines WHERE "
                    f"ChargePeriodStart >= '{day}' AND ChargePeriodStart < DATE '{day}' + 1",
                    "-f", "csv", cwd=tmp_path, env=env).stdout.splitlines()[1]  # fmt: skip
    for command in ("showback", "chargeback"):
        proc = costline("report", command, "--period", day, "--by", "team", "-f", "json",
                        cwd=tmp_path, env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert sum(Decimal(r["amount_usd"]) for r in rows) == Decimal(cost)
        assert any(r["team"] == "foundation-models" and r["gpu_hours"] > 0 for r in rows)
        assert command == "showback" or "__shared__" not in {r["team"] for r in rows}
    for fmt, marker in (("markdown", "| team |"), ("html", "<table>"), ("csv", "team,amount_usd")):
        proc = costline("report", "showback", "--period", day, "-f", fmt, cwd=tmp_path, env=env)
        assert proc.returncode == 0 and marker in proc.stdout, proc.stderr
    proc = costline("report", "compliance", "--period", day, "-f", "json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    sections = json.loads(proc.stdout)
    assert [r["tag"] for r in sections["coverage"]] == ["team", "project", "environment"]
    assert sections["untagged_by_service"] and sections["ownership"][0]["with_owner_pct"]
    assert Decimal(sections["storage_lifecycle"][0]["under_rules_pct"]) > 0
    proc = costline("report", "unit-costs", "--period", day, "-f", "json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    units = json.loads(proc.stdout)
    assert {r["app"] for r in units["llm"]} and units["workloads"] and units["pools"]
    assert all(Decimal(r["per_1k_requests_usd"]) > 0 for r in units["llm"] if r["cost_usd"])
    served = [r for r in units["declared"] if r["kind"] == "inference_endpoint"]
    assert served and all(Decimal(r["per_success_usd"]) > 0 for r in served)
    proc = costline("report", "unit-costs", "--period", day, "-f", "table", cwd=tmp_path,
                    env={**env, "COLUMNS": "200"})  # fmt: skip
    assert proc.returncode == 0 and " per prediction." in proc.stdout, proc.stderr
    proc = costline("report", "reconcile", "--period", day, "-f", "json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    reconciled = [r for r in json.loads(proc.stdout) if r["billed_usd"] is not None]
    assert reconciled and all(abs(Decimal(r["error_pct"])) < 15 for r in reconciled)
    bad = costline("report", "showback", "--period", "October", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "--period 'October'" in bad.stderr


def test_cli_reference_is_current() -> None:
    from costline.cli.reference import render

    doc = Path(__file__).parents[2] / "docs" / "cli.md"
    assert doc.read_text() == render(), "docs/cli.md is stale: run `make docs`"


def test_config_names_the_ledger_and_bad_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "costline.yaml").write_text(
        f"version: 1\nledger: duckdb:///{tmp_path / 'cfg.duckdb'}\n"
    )
    ok = costline(
        "ingest",
        "focus",
        str(FOCUS_SAMPLE),
        "-f",
        "json",
        cwd=tmp_path,
        env={"COSTLINE_LEDGER": ""},
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "cfg.duckdb").exists()
    (tmp_path / "costline.yaml").write_text(
        "version: 1\nledger: 12\nbudgets:\n  - name: x\n    amount_usd: lots\n"
    )
    bad = costline("sql", "SELECT 1", cwd=tmp_path, env={"COSTLINE_LEDGER": ""})
    assert bad.returncode == 2
    assert "costline.yaml:5: budgets[0].amount_usd" in bad.stderr


def test_demo_uses_its_own_ledger_unless_told(tmp_path: Path) -> None:
    proc = costline(
        "demo",
        "--days",
        "3",
        "--scale",
        "0.2",
        "--out",
        "org",
        "-f",
        "json",
        cwd=tmp_path,
        env={"COSTLINE_LEDGER": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "org" / "ledger.duckdb").exists()
    assert not (tmp_path / ".costline").exists()
