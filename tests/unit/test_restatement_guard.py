"""A restatement that shrinks a billing period a lot is refused unless asked for.

A 20-row file for the same provider, account and billing month used to replace a 1,000-row month
silently. Now more than half of a period's rows or billed cost going stops the ingestion (exit 2,
nothing written) and says what would be replaced, unless `--replace-period` (CLI) or
`replace_period: true` (a `focus` source in costline.yaml) is given.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import yaml
from typer.testing import CliRunner

from costline.cli.main import app
from costline.clock import FixedClock
from costline.config import load_config
from costline.errors import EXIT_BAD_INPUT, IngestError
from costline.ledger.store import Ledger
from costline.sync import sync
from tests.helpers import run_costline, snapshot

COLUMNS = [
    "BillingAccountId", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "ProviderName",
]  # fmt: skip


def month(path: Path, rows: int, cost: str, account: str = "acct-1") -> Path:
    """`rows` October lines of `cost` USD each, for AWS and `account`."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for i in range(rows):
            day = f"2026-10-{1 + i % 28:02d}"
            out.writerow([account, "USD", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z",
                          f"{day}T00:00:00Z", f"{day}T01:00:00Z", cost, "AWS"])  # fmt: skip
    return path


def lines(url: str) -> tuple[int, Decimal]:
    with Ledger(url) as led:
        row = led.con.execute("SELECT count(*), sum(BilledCost) FROM cost_lines").fetchone()
    assert row is not None
    return int(row[0]), row[1]


def test_a_20_row_file_does_not_silently_replace_a_1000_row_month(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    full = month(tmp_path / "oct.csv", 1000, "5")
    other = month(tmp_path / "other.csv", 3, "1", account="acct-2")
    args = ["--ledger", url, "ingest", "focus"]
    assert CliRunner().invoke(app, [*args, str(full), str(other)]).exit_code == 0
    with Ledger(url) as led:
        before = snapshot(led)

    partial = month(tmp_path / "oct-day1.csv", 20, "5")
    result = CliRunner().invoke(app, [*args, str(partial)])
    error = result.exception
    assert isinstance(error, IngestError) and error.exit_code == EXIT_BAD_INPUT
    assert error.path == str(partial)
    assert (
        "restating provider AWS, billing account acct-1, billing period 2026-10-01 would "
        "replace 1,000 rows (USD 5,000.00) with 20 rows (USD 100.00)"
    ) in str(error)
    assert "--replace-period" in str(error)
    with Ledger(url) as led:
        assert snapshot(led) == before

    allowed = CliRunner().invoke(app, [*args, "--replace-period", str(partial), "-f", "json"])
    assert allowed.exit_code == 0, allowed.output
    assert '"replaced_rows": 1000' in allowed.output
    assert lines(url) == (23, Decimal(103))  # the other account's month is untouched


def test_losing_more_than_half_of_the_cost_is_refused_too(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    args = ["--ledger", url, "ingest", "focus"]
    CliRunner().invoke(app, [*args, str(month(tmp_path / "v1.csv", 10, "10"))])
    cheaper = CliRunner().invoke(app, [*args, str(month(tmp_path / "v2.csv", 10, "4.99"))])
    assert isinstance(cheaper.exception, IngestError)
    assert "10 rows (USD 100.00) with 10 rows (USD 49.90)" in str(cheaper.exception)
    assert lines(url) == (10, Decimal(100))
    # Half the rows and more than half the cost is an ordinary restatement.
    kept = CliRunner().invoke(app, [*args, str(month(tmp_path / "v3.csv", 5, "11"))])
    assert kept.exit_code == 0, kept.output
    assert lines(url) == (5, Decimal(55))


def test_the_cli_exits_2_naming_the_flag(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'ledger.duckdb'}"
    CliRunner().invoke(app, ["--ledger", url, "ingest", "focus", str(month(tmp_path / "a.csv", 4, "1"))])  # fmt: skip
    small = month(tmp_path / "b.csv", 1, "1")
    proc = run_costline("--ledger", url, "ingest", "focus", str(small))
    assert proc.returncode == 2
    assert "would replace 4 rows" in proc.stderr and "--replace-period" in proc.stderr


def test_sync_refuses_a_shrinking_restatement_unless_the_source_allows_it(tmp_path: Path) -> None:
    (tmp_path / "bills").mkdir()
    month(tmp_path / "bills" / "oct-v1.csv", 100, "2")
    config_path = tmp_path / "costline.yaml"
    source = {"type": "focus", "name": "aws-bills", "paths": ["bills/*.csv"]}
    config_path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    clock = FixedClock(dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    url = f"duckdb://{tmp_path / 'ledger.duckdb'}"
    with Ledger(url, clock=clock) as ledger:
        assert (
            sync(ledger, load_config(config_path), clock=clock, env={}, deliver=False).errors == []
        )
        month(tmp_path / "bills" / "oct-v2.csv", 10, "2")
        clock.advance(minutes=5)
        report = sync(ledger, load_config(config_path), clock=clock, env={}, deliver=False)
        [pulled] = report.pulled
        assert pulled["status"] == "error" and pulled["exit_code"] == 2
        assert "oct-v2.csv" in pulled["error"] and "would replace 100 rows" in pulled["error"]
        assert report.findings == {"data_quality": 1}
        assert ledger.con.execute("SELECT count(*) FROM cost_lines").fetchone() == (100,)

        config_path.write_text(
            yaml.safe_dump({"sources": [{**source, "replace_period": True}]}), encoding="utf-8"
        )
        clock.advance(minutes=5)
        allowed = sync(ledger, load_config(config_path), clock=clock, env={}, deliver=False)
        assert allowed.pulled[0]["status"] == "ingested", allowed.pulled
        assert ledger.con.execute("SELECT count(*) FROM cost_lines").fetchone() == (10,)
