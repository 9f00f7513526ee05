"""FOCUS 1.4: its four datasets read into their own tables, billing period status, valid exports.

Fixtures are focus-data-toolkit's AWS data (tests/fixtures/focus/SOURCES.md); exports are checked
by that toolkit's FOCUS linter (tests/focus_lint.py), an implementation independent of costline's.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costline.demo.billing import generate_billing
from costline.errors import IngestError
from costline.export import export_focus
from costline.ledger import migrations
from costline.ledger.periods import final_periods, period_statuses
from costline.ledger.readonly import run_sql
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from tests.focus_lint import lint, structural
from tests.helpers import FIXTURES, SPEC_EXAMPLES, csv_sums, ledger_sums, snapshot
from tests.unit.test_cli import costline

FOCUS_13 = FIXTURES / "focus" / "focus-1.3"
FOCUS_14 = FIXTURES / "focus" / "focus-1.4"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _count(led: Ledger, sql: str) -> object:
    return led.con.execute(sql).fetchall()[0][0]


def test_the_four_datasets_go_into_their_own_tables(ledger: Ledger) -> None:
    summary = ingest_focus(ledger, [FOCUS_14])
    tables = {Path(f.path).name: (f.table, f.rows, f.focus_version) for f in summary.files}
    assert tables == {
        "aws_cost_and_usage.csv": ("cost_lines", 8, "1.4"),
        "aws_contract_commitment.csv": ("contract_commitments", 4, "1.4"),
        "aws_billing_period.csv": ("billing_periods", 1, "1.4"),
        "aws_invoice_detail.csv": ("invoice_details", 3, "1.4"),
    }
    cost_file = FOCUS_14 / "aws_cost_and_usage.csv"
    assert ledger_sums(ledger) == csv_sums([cost_file])
    invoiced = sum(Decimal(r["BilledCost"]) for r in _rows(FOCUS_14 / "aws_invoice_detail.csv"))
    assert _count(ledger, "SELECT sum(BilledCost) FROM invoice_details") == invoiced
    commitments = _rows(FOCUS_14 / "aws_contract_commitment.csv")
    got = ledger.con.execute(
        "SELECT ContractCommitmentId, ContractCommitmentCost, ContractCommitmentLifecycleStatus, "
        "strftime(ContractCommitmentPeriodStart, '%Y-%m-%dT%H:%M:%SZ') FROM contract_commitments"
    ).fetchall()
    assert sorted(got) == sorted(
        (
            r["ContractCommitmentId"],
            Decimal(r["ContractCommitmentCost"]),
            r["ContractCommitmentLifecycleStatus"],
            r["ContractCommitmentPeriodStart"],
        )
        for r in commitments
    )
    ledger.close()  # `costline sql` sees the new tables
    status = run_sql(ledger.url, "SELECT BillingPeriodStatus FROM billing_periods")
    assert status.column(0).to_pylist() == ["Closed"]


def test_1_4_cost_lines_keep_their_new_columns(ledger: Ledger, tmp_path: Path) -> None:
    rows = _rows(FOCUS_14 / "aws_cost_and_usage.csv")
    details = '{"Elements": [{"CommitmentProgramId": "sp-1", "x_Tier": "compute"}]}'
    rows[0]["CommitmentProgramEligibilityDetails"] = details
    ingest_focus(ledger, [_write(tmp_path / "cau-1.4.csv", rows)])
    got = ledger.con.execute(
        "SELECT InvoiceDetailId, CommitmentProgramEligibilityDetails, ProviderName, "
        "ServiceProviderName, cardinality(x_extra) FROM cost_lines"
    ).fetchall()
    assert sorted(r[0] for r in got) == sorted(r["InvoiceDetailId"] for r in rows)
    assert [r[1] for r in got if r[1] is not None] == [details]
    # 1.4 has no ProviderName: the ledger fills it from ServiceProviderName, and keeps no extras.
    assert {(r[2], r[3], r[4]) for r in got} == {("AWS", "AWS", None)}


def test_1_3_contract_commitment_dataset_is_read(ledger: Ledger) -> None:
    summary = ingest_focus(ledger, [FOCUS_13])
    assert {(f.table, f.focus_version) for f in summary.files} == {
        ("cost_lines", "1.3"),
        ("contract_commitments", "1.3"),
    }
    expected = {
        r["ContractCommitmentId"]: Decimal(r["ContractCommitmentCost"])
        for r in _rows(FOCUS_13 / "aws_contract_commitment.csv")
    }
    got = ledger.con.execute(
        "SELECT ContractCommitmentId, ContractCommitmentCost FROM contract_commitments"
    ).fetchall()
    assert dict(got) == expected and len(got) == 4


def test_same_files_again_are_duplicates_and_a_newer_commitment_replaces_the_older(
    ledger: Ledger, tmp_path: Path
) -> None:
    ingest_focus(ledger, [FOCUS_14])
    before = snapshot(ledger), _count(ledger, "SELECT count(*) FROM contract_commitments")
    again = ingest_focus(ledger, [FOCUS_14])
    assert len(again.duplicates) == 4 and again.rows == 0
    assert (snapshot(ledger), _count(ledger, "SELECT count(*) FROM contract_commitments")) == before
    rows = _rows(FOCUS_14 / "aws_contract_commitment.csv")
    rows[0]["ContractCommitmentLifecycleStatus"] = "Expired"
    ingest_focus(ledger, [_write(tmp_path / "cc-later.csv", rows)])
    got = ledger.con.execute(
        "SELECT ContractCommitmentId, ContractCommitmentLifecycleStatus FROM contract_commitments"
    ).fetchall()
    assert len(got) == 4
    assert dict(got)[rows[0]["ContractCommitmentId"]] == "Expired"


def _period_file(path: Path, status: str, updated: str) -> Path:
    rows = _rows(FOCUS_14 / "aws_billing_period.csv")
    rows[0].update(BillingPeriodStatus=status, BillingPeriodLastUpdated=updated)
    return _write(path, rows)


def test_billing_period_status_says_which_months_are_final(ledger: Ledger, tmp_path: Path) -> None:
    opened = _period_file(tmp_path / "bp-open.csv", "open", "2026-05-20T00:00:00Z")
    first = ingest_focus(ledger, [FOCUS_14 / "aws_cost_and_usage.csv", opened])
    assert [p.describe() for p in first.period_status] == ["period 2026-05 (AWS) is open"]
    assert first.as_json()["period_status"][0]["status"] == "open"
    assert final_periods(ledger) == []
    closed = ingest_focus(ledger, [FOCUS_14 / "aws_billing_period.csv"])
    assert [p.describe() for p in closed.period_status] == ["period 2026-05 (AWS) is final"]
    # An older state read later does not reopen the month: the latest update decides.
    stale = _period_file(tmp_path / "bp-stale.csv", "Open", "2026-05-25T00:00:00Z")
    ingest_focus(ledger, [stale])
    [final] = final_periods(ledger)
    assert (final.invoice_issuer, final.start.isoformat(), final.end and final.end.isoformat()) == (
        "AWS",
        "2026-05-01T00:00:00+00:00",
        "2026-06-01T00:00:00+00:00",
    )
    assert _count(ledger, "SELECT count(*) FROM billing_periods") == 3
    assert [p.status for p in period_statuses(ledger)] == ["final"]


def test_bad_billing_period_status_names_row_and_column(ledger: Ledger, tmp_path: Path) -> None:
    bad = _period_file(tmp_path / "bp-bad.csv", "Pending", "2026-05-20T00:00:00Z")
    before = snapshot(ledger)
    with pytest.raises(IngestError) as info:
        ingest_focus(ledger, [FOCUS_14 / "aws_cost_and_usage.csv", bad])
    assert (info.value.row, info.value.column) == (1, "BillingPeriodStatus")
    assert "'Pending' is not Open or Closed" in str(info.value)
    assert snapshot(ledger) == before


OCI_HEADER = (
    "lineItem/referenceNo,lineItem/tenantId,lineItem/intervalUsageStart,lineItem/intervalUsageEnd,"
    "product/service,product/resourceId,usage/billedQuantity,cost/unitPrice,cost/myCost,"
    "cost/currencyCode"
)


@pytest.mark.parametrize(
    ("header", "looks_like"),
    [
        (OCI_HEADER, "an OCI native cost report (it has lineItem/referenceNo"),
        (
            "line_item_unblended_cost,line_item_usage_start_date,bill_payer_account_id",
            "an AWS Data Exports CUR 2.0 file",
        ),
        (
            "when,what,amount",
            "no billing format costline knows: none of its columns is a FOCUS column "
            "(when, what, amount)",
        ),
    ],
)
def test_a_format_costline_does_not_read_is_refused_saying_what_it_looks_like(
    ledger: Ledger, tmp_path: Path, header: str, looks_like: str
) -> None:
    path = tmp_path / "bill.csv"
    path.write_text(header + "\n" + ",".join("1" for _ in header.split(",")) + "\n")
    with pytest.raises(IngestError) as info:
        ingest_focus(ledger, [path])
    text = str(info.value)
    assert f"it looks like {looks_like}" in text
    assert "Billing Period 1.4 and Invoice Detail 1.4" in text and "aws-cur" in text
    assert info.value.exit_code == 2
    assert snapshot(ledger)[0][0] == 0


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    """Two days of the demo organization's bills (FOCUS 1.2, four providers), ingested."""
    root = tmp_path_factory.mktemp("demo")
    manifest = generate_billing(root / "org", days=2, scale=0.05)
    with Ledger(f"duckdb:///{root / 'l.duckdb'}") as led:
        ingest_focus(led, [root / "org" / f.path for f in manifest.files])
        yield led


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.3", "1.4"])
def test_demo_export_is_valid_focus_of_every_version(
    demo_ledger: Ledger, tmp_path: Path, version: str
) -> None:
    out = tmp_path / f"focus-{version}.csv"
    result = export_focus(demo_ledger, out, focus_version=version)
    assert result.rows == _count(demo_ledger, "SELECT count(*) FROM cost_lines") > 100
    assert result.lacking == []  # the demo's bills have every mandatory value
    report = lint(out, version=version)
    assert structural(report) == {}
    rows = _rows(out)
    assert all(ISO_UTC.fullmatch(r["ChargePeriodStart"]) for r in rows)
    assert rows[0]["BillingPeriodStart"] == "2026-10-01T00:00:00Z"
    if version in ("1.3", "1.4"):  # filled from the 1.2 bills' ProviderName
        assert {r["HostProviderName"] == r["ServiceProviderName"] != "" for r in rows} == {True}


def test_export_lists_exactly_the_mandatory_values_the_sources_lacked(
    ledger: Ledger, tmp_path: Path
) -> None:
    ingest_focus(ledger, [SPEC_EXAMPLES])  # the spec's examples lack most mandatory columns
    out = tmp_path / "spec.csv"
    result = export_focus(ledger, out, focus_version="1.2")
    nulls = {col for (rule, col), _ in structural(lint(out, version="1.2")).items()
             if rule in ("null_not_allowed", "missing_mandatory_column")}  # fmt: skip
    assert set(result.lacking) == nulls
    assert {"BillingAccountId", "ServiceName", "InvoiceIssuerName"} <= nulls


@pytest.mark.parametrize(
    ("dataset", "name", "table"),
    [
        ("cost-and-usage", "Cost and Usage", "cost_lines"),
        ("contract-commitment", "Contract Commitment", "contract_commitments"),
        ("billing-period", "Billing Period", "billing_periods"),
        ("invoice-detail", "Invoice Detail", "invoice_details"),
    ],
)
def test_1_4_datasets_export_valid_and_read_back_the_same(
    ledger: Ledger, tmp_path: Path, dataset: str, name: str, table: str
) -> None:
    ingest_focus(ledger, [FOCUS_14])
    out = tmp_path / f"{dataset}.csv"
    result = export_focus(ledger, out, focus_version="1.4", dataset=dataset)
    assert result.lacking == [] and result.rows == _count(ledger, f"SELECT count(*) FROM {table}")
    assert lint(out, dataset=name).violations == ()  # structural and semantic
    with Ledger(f"duckdb:///{tmp_path / 'again.duckdb'}") as again:
        [report] = ingest_focus(again, [out]).files
        assert (report.table, report.rows, report.focus_version) == (table, result.rows, "1.4")
        if table == "cost_lines":
            assert ledger_sums(again) == ledger_sums(ledger)


def test_1_4_bills_export_as_1_2_with_provider_and_publisher(
    ledger: Ledger, tmp_path: Path
) -> None:
    ingest_focus(ledger, [FOCUS_14])
    out = tmp_path / "as-1.2.csv"
    result = export_focus(ledger, out, focus_version="1.2")
    assert result.lacking == []
    rows = _rows(out)
    assert {(r["ProviderName"], r["PublisherName"]) for r in rows} == {("AWS", "AWS")}
    assert "HostProviderName" not in rows[0] and "InvoiceDetailId" not in rows[0]
    assert structural(lint(out, version="1.2")) == {}


def test_export_refuses_a_dataset_in_a_version_without_it(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"FOCUS Billing Period exists in 1\.4"):
        export_focus(ledger, tmp_path / "bp.csv", focus_version="1.2", dataset="billing-period")
    with pytest.raises(Exception, match="--dataset invoices"):
        export_focus(ledger, tmp_path / "x.csv", focus_version="1.4", dataset="invoices")


def test_a_ledger_before_focus_1_4_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrations.migrate(con, migrations.MIGRATIONS[:4])
    for table in ("contract_commitments", "billing_periods", "invoice_details"):
        con.execute(f"DROP TABLE {table}")
    # The view as version 4 built it: without the 1.4 columns.
    con.execute("CREATE OR REPLACE VIEW cost_lines AS SELECT 1 AS BilledCost WHERE false")
    con.close()
    with Ledger(f"duckdb:///{path}") as led:
        assert led.schema_version() == migrations.LATEST
        ingest_focus(led, [FOCUS_14])
        assert _count(led, "SELECT count(InvoiceDetailId) FROM cost_lines") == 8
        assert _count(led, "SELECT count(*) FROM billing_periods") == 1


def test_cli_says_final_periods_refuses_foreign_files_and_lists_what_exports_lack(
    tmp_path: Path,
) -> None:
    env = {"COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'l.duckdb'}"}
    ingested = costline("ingest", "focus", str(FOCUS_14), "-f", "table", cwd=tmp_path, env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert "period 2026-05 (AWS) is final" in ingested.stderr
    oci = tmp_path / "oci.csv"
    oci.write_text(OCI_HEADER + "\n" + ",".join("1" for _ in OCI_HEADER.split(",")) + "\n")
    refused = costline("ingest", "focus", str(oci), cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "it looks like an OCI native cost report" in refused.stderr
    costline("ingest", "focus", str(SPEC_EXAMPLES), "-f", "json", cwd=tmp_path, env=env)
    out = tmp_path / "focus.csv"
    exported = costline(
        "export", "focus", str(out), "--focus-version", "1.4", "-f", "json", cwd=tmp_path, env=env
    )
    assert exported.returncode == 0, exported.stderr
    [result] = json.loads(exported.stdout)
    assert "ServiceName" in result["lacking"] and result["focus_version"] == "1.4"
    assert f"did not give for some rows: {', '.join(result['lacking'])}" in " ".join(
        exported.stderr.split()
    )
