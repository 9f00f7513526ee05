"""`costline ingest focus` on real FOCUS files: totals, versions, quirks, idempotency, atomicity."""

from __future__ import annotations

import csv
import gzip
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from tests.helpers import FOCUS_ROW, FOCUS_SAMPLE, SPEC_EXAMPLES, csv_sums, ledger_sums, snapshot


def test_official_sample_totals_equal_the_files_own_sums(ledger: Ledger) -> None:
    summary = ingest_focus(ledger, [FOCUS_SAMPLE])
    assert summary.rows == 1000
    assert summary.files[0].focus_version == "1.0"
    assert summary.providers == ["AWS", "Microsoft", "Oracle"]
    assert summary.totals[0].billed == Decimal("20.52022672899")
    assert ledger_sums(ledger, by="ProviderName") == csv_sums([FOCUS_SAMPLE], by="ProviderName")
    counts = dict(
        ledger.con.execute("SELECT ProviderName, count(*) FROM cost_lines GROUP BY 1").fetchall()
    )
    assert counts == {"AWS": 942, "Microsoft": 51, "Oracle": 7}


def test_official_sample_quirks(ledger: Ledger) -> None:
    ingest_focus(ledger, [FOCUS_SAMPLE])
    # `NULL` strings are nulls, `YYYY-MM-DD HH:MM:SS` is UTC, the extra `Id` column is kept.
    nulls = ledger.con.execute(
        "SELECT count(*) FROM cost_lines WHERE AvailabilityZone IS NULL"
    ).fetchone()
    assert nulls is not None and nulls[0] > 0
    row = ledger.con.execute(
        "SELECT strftime(ChargePeriodStart AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'), x_extra['Id'], "
        "Tags['environment'], Tags['application'] FROM cost_lines "
        "WHERE ResourceId LIKE 'arn:ats:emastilmoalfamanling:us-test-2:586597448978:%l365455f461l4e4a'"
    ).fetchall()
    assert ("2024-09-30 22:00:00", "19384", "dev", "BrightLensMatrix") in row
    assert ledger.con.execute(
        "SELECT count(*) FROM cost_lines WHERE x_extra['Id'] IS NULL"
    ).fetchone() == (0,)


def test_spec_examples_ingest_with_exact_totals(ledger: Ledger) -> None:
    files = sorted(SPEC_EXAMPLES.rglob("*.csv"))
    summary = ingest_focus(ledger, [SPEC_EXAMPLES])
    assert len(summary.files) == len(files) == 26
    assert summary.rows == 81
    expected = csv_sums(files)
    got = ledger_sums(ledger)
    assert got == expected
    assert got[(None, "BilledCost")] == Decimal("517754.75")
    # M/D/YY dates and hour-30 end times: every charge period is well formed.
    bad = ledger.con.execute(
        "SELECT count(*) FROM cost_lines WHERE ChargePeriodEnd < ChargePeriodStart "
        "OR year(ChargePeriodStart) < 2020"
    ).fetchone()
    assert bad == (0,)


def test_us_dates_and_hour_rollover() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    from costline.sources.timestamps import parse_sql

    def parse(text: str) -> str:
        row = con.execute(
            f"SELECT strftime({parse_sql('$1::VARCHAR', strict=True)}, '%Y-%m-%dT%H:%M:%S')", [text]
        ).fetchone()
        assert row is not None
        return str(row[0])

    assert parse("5/1/25") == "2025-05-01T00:00:00"
    assert parse("12/31/2024 23:15") == "2024-12-31T23:15:00"
    assert parse("2023-02-01T30:00:00Z") == "2023-02-02T06:00:00"
    assert parse("2024-09-18 22:00:00") == "2024-09-18T22:00:00"
    assert parse("2024-09-18T22:00:00+02:00") == "2024-09-18T20:00:00"
    with pytest.raises(duckdb.Error):
        parse("2024-09-18T99:00:00Z")


def test_same_file_again_is_a_duplicate_and_changes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    ingest_focus(ledger, [FOCUS_SAMPLE])
    before = snapshot(ledger)
    copy = tmp_path / "renamed.csv"
    shutil.copy(FOCUS_SAMPLE, copy)
    summary = ingest_focus(ledger, [FOCUS_SAMPLE, copy])
    assert summary.rows == 0
    assert summary.duplicates == [str(FOCUS_SAMPLE), str(copy)]
    assert snapshot(ledger) == before


def _write_focus(path: Path, rows: list[dict[str, str]]) -> Path:
    cols = [
        "BillingAccountId",
        "BillingCurrency",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "ChargeCategory",
        "BilledCost",
        "EffectiveCost",
        "ProviderName",
        "ServiceName",
    ]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            base = {**FOCUS_ROW, **r}
            base.setdefault("EffectiveCost", base["BilledCost"])
            w.writerow(base)
    return path


def test_restated_period_replaces_only_that_period(ledger: Ledger, tmp_path: Path) -> None:
    first = _write_focus(tmp_path / "oct-v1.csv", [{"BilledCost": "10.5"}, {"BilledCost": "4.5"}])
    other = _write_focus(
        tmp_path / "other-account.csv", [{"BilledCost": "100", "BillingAccountId": "acct-2"}]
    )
    ingest_focus(ledger, [first, other])
    restated = _write_focus(tmp_path / "oct-v2.csv", [{"BilledCost": "16.25"}])
    summary = ingest_focus(ledger, [restated])
    assert [(r.provider, r.billing_account_id, r.replaced_rows) for r in summary.restated] == [
        ("AWS", "acct-1", 2)
    ]
    totals = dict(
        ledger.con.execute(
            "SELECT BillingAccountId, sum(BilledCost) FROM cost_lines GROUP BY 1"
        ).fetchall()
    )
    assert totals == {"acct-1": Decimal("16.25"), "acct-2": Decimal("100")}
    # The first file's part lost all its rows and is gone; the other account's part stays.
    parts = ledger.con.execute("SELECT count(*) FROM cost_line_parts").fetchall()
    assert parts == [(2,)]


def test_two_files_of_one_period_loaded_together_are_both_kept(
    ledger: Ledger, tmp_path: Path
) -> None:
    part1 = _write_focus(tmp_path / "part1.csv", [{"BilledCost": "1"}])
    part2 = _write_focus(tmp_path / "part2.csv", [{"BilledCost": "2"}])
    summary = ingest_focus(ledger, [tmp_path / "part*.csv"])
    assert summary.rows == 2 and summary.restated == []
    assert ledger.con.execute("SELECT sum(BilledCost) FROM cost_lines").fetchone() == (Decimal(3),)
    assert part1.exists() and part2.exists()


@pytest.mark.parametrize(
    ("column", "row_index", "value", "message"),
    [
        ("BilledCost", 4, "12.3.4", "'12.3.4' is not a decimal number"),
        ("BilledCost", 2, "1,5", "'1,5' is not a decimal number"),
        ("ChargePeriodStart", 6, "2024-13-45 00:00:00", "is not a date-time"),
        ("ChargePeriodStart", 6, "yesterday", "is not a date-time"),
        ("Tags", 8, '{"team": ', "is not a JSON object"),
        ("Tags", 8, '["a", "b"]', "is not a JSON object"),
        ("BilledCost", 3, "", "is empty"),
    ],
)
def test_bad_value_names_file_row_and_column_and_writes_nothing(
    ledger: Ledger, tmp_path: Path, column: str, row_index: int, value: str, message: str
) -> None:
    good = _write_focus(tmp_path / "good.csv", [{"BilledCost": "1"}])
    ingest_focus(ledger, [good])
    before = snapshot(ledger)
    with FOCUS_SAMPLE.open(newline="") as fh:
        rows = list(csv.reader(fh))
    rows[row_index + 1][rows[0].index(column)] = value
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(IngestError) as info:
        ingest_focus(
            ledger, [FOCUS_SAMPLE, bad]
        )  # the good file in the same run is not kept either
    err = info.value
    assert (err.path, err.row, err.column) == (str(bad), row_index + 1, column)
    assert message in str(err)
    assert f"line {row_index + 2}" in str(err)
    assert snapshot(ledger) == before


def test_missing_mandatory_column_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    with FOCUS_SAMPLE.open(newline="") as fh:
        rows = list(csv.reader(fh))
    drop = rows[0].index("ChargePeriodStart")
    bad = tmp_path / "no-charge-period.csv"
    with bad.open("w", newline="") as fh:
        csv.writer(fh).writerows([r[:drop] + r[drop + 1 :] for r in rows])
    with pytest.raises(IngestError, match="mandatory FOCUS column missing: ChargePeriodStart"):
        ingest_focus(ledger, [bad])
    assert snapshot(ledger)[0][0] == 0


def test_unknown_file_and_missing_path_are_errors(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        ingest_focus(ledger, [tmp_path / "nope.csv"])
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(IngestError, match="not a FOCUS file"):
        ingest_focus(ledger, [tmp_path / "notes.txt"])
    with pytest.raises(IngestError, match="matches no file"):
        ingest_focus(ledger, [str(tmp_path / "*.parquet")])


def test_parquet_and_gzip_give_the_same_totals(tmp_path: Path) -> None:
    con = duckdb.connect()
    src = str(FOCUS_SAMPLE)
    # Costs as DOUBLE in Parquet, as some exporters write them: read back through the shortest text.
    con.execute(
        f"COPY (SELECT * REPLACE (CAST(BilledCost AS DOUBLE) AS BilledCost) FROM "
        f"read_csv('{src}', nullstr='NULL')) TO '{tmp_path / 'sample.parquet'}' (FORMAT parquet)"
    )
    with FOCUS_SAMPLE.open("rb") as fin, gzip.open(tmp_path / "sample.csv.gz", "wb") as fout:
        shutil.copyfileobj(fin, fout)
    expected = csv_sums([FOCUS_SAMPLE], by="ProviderName")
    for name in ("sample.parquet", "sample.csv.gz"):
        with Ledger(f"duckdb:///{tmp_path / (name + '.duckdb')}") as led:
            ingest_focus(led, [tmp_path / name])
            got = ledger_sums(led, by="ProviderName")
            assert {k: v for k, v in got.items() if k[1] == "BilledCost"} == {
                k: v for k, v in expected.items() if k[1] == "BilledCost"
            }, name


def test_file_notes_are_data_quality_findings_stored_once(ledger: Ledger) -> None:
    first = ingest_focus(
        ledger, [SPEC_EXAMPLES / "saas_examples" / "virtual_currency_pricing_model_a1.csv"]
    )
    notes = first.files[0].notes
    assert notes and all(n.kind == "data_quality" for n in notes)
    assert any("mandatory columns missing" in n.summary for n in notes)
    stored = ledger.con.execute("SELECT kind, scope['file'] FROM findings").fetchall()
    assert len(stored) == len(notes) and stored[0][0] == "data_quality"
    ingest_focus(ledger, [SPEC_EXAMPLES / "saas_examples"])  # the same file again is a duplicate
    assert ledger.con.execute("SELECT count(DISTINCT fingerprint) FROM findings").fetchall()[0][
        0
    ] >= len(notes)


def _write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


BASE_HEADER = [
    "BilledCost",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
]
BASE_ROW = ["1.25", "2026-10-01", "2026-11-01", "2026-10-02T00:00:00Z", "2026-10-03T00:00:00Z"]


@pytest.mark.parametrize(
    ("extra_header", "extra_row", "version"),
    [
        (["ProviderName", "ChargeClass"], ["AWS", ""], "1.0"),
        (["ProviderName", "CapacityReservationId", "SkuMeter"], ["AWS", "cr-1", "Hours"], "1.1"),
        (["ProviderName", "InvoiceId", "PricingCurrency"], ["AWS", "inv-1", "USD"], "1.2"),
        (
            ["ServiceProviderName", "HostProviderName", "AllocatedMethodId"],
            ["CoreWeave", "CoreWeave", "gpu-time"],
            "1.3",
        ),
    ],
)
def test_version_detected_from_columns(
    ledger: Ledger, tmp_path: Path, extra_header: list[str], extra_row: list[str], version: str
) -> None:
    path = _write_rows(
        tmp_path / f"v{version}.csv", BASE_HEADER + extra_header, [BASE_ROW + extra_row]
    )
    summary = ingest_focus(ledger, [path])
    assert summary.files[0].focus_version == version
    # ProviderName and ServiceProviderName are both filled, whichever the file had.
    row = ledger.con.execute("SELECT ProviderName, ServiceProviderName FROM cost_lines").fetchall()[
        0
    ]
    assert row[0] == row[1] == extra_row[0]


def test_pre_1_0_and_azure_x_names_are_renamed_and_other_x_columns_kept(
    ledger: Ledger, tmp_path: Path
) -> None:
    header = [
        "BilledCost",
        "AmortizedCost",
        "ChargeType",
        "UsageQuantity",
        "UsageUnit",
        "Region",
        "Provider",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "x_InvoiceId",
        "x_PricingCurrency",
        "x_SkuMeterName",
        "x_ResourceGroupName",
        "skupriceid",
    ]
    row = [
        "10",
        "8.5",
        "Usage",
        "3",
        "Hours",
        "eastus",
        "Microsoft",
        "2026-10-01",
        "2026-11-01",
        "10/2/2026",
        "10/3/2026",
        "INV-9",
        "EUR",
        "D4s v5",
        "rg-ml",
        "sku-price-1",
    ]
    path = _write_rows(tmp_path / "preview.csv", header, [row])
    summary = ingest_focus(ledger, [path])
    assert summary.files[0].focus_version == "1.0-preview"
    assert any("renamed" in n.summary for n in summary.files[0].notes)
    got = ledger.con.execute(
        "SELECT EffectiveCost, ChargeCategory, ConsumedQuantity, ConsumedUnit, RegionId, ProviderName, "
        "InvoiceId, PricingCurrency, SkuMeter, SkuPriceId, x_extra['x_ResourceGroupName'], "
        "strftime(ChargePeriodStart, '%Y-%m-%d') FROM cost_lines"
    ).fetchall()
    assert got == [
        (
            Decimal("8.5"),
            "Usage",
            Decimal(3),
            "Hours",
            "eastus",
            "Microsoft",
            "INV-9",
            "EUR",
            "D4s v5",
            "sku-price-1",
            "rg-ml",
            "2026-10-02",
        )
    ]
