"""Provider-native dialects (AWS legacy CUR, Azure EA/MCA) mapped to FOCUS, run in DuckDB over real
samples and small hand-written files: detection, exact totals, timestamps, allowed values, tags."""

from __future__ import annotations

import csv
import functools
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costline.schema import focus_columns_of
from costline.sources.base import NativeDialect, quote_ident
from costline.sources.native import AWS_CUR, AZURE_USAGE, DIALECTS, detect_native
from costline.sources.native.aws_cur import tag_key
from costline.sources.native.azure_usage import resource_type, tags
from costline.sources.native.expressions import SourceColumns, mul

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NATIVE = FIXTURES / "native"
AWS_SAMPLE = NATIVE / "aws_cur_legacy_sample-anonymous-aws-export-dataset.csv"
AWS_SYNTHETIC = NATIVE / "aws_cur_synthetic_commitments_tags.csv"
AZURE_EA = NATIVE / "azure_ea_sample-anonymous-ea-export-dataset.csv"
AZURE_MCA = NATIVE / "azure_mca_synthetic.csv"
FOCUS_SAMPLE = FIXTURES / "focus" / "focus_sample.csv"

# (file, dialect, source cost column, its exact total)
CASES = [
    (AWS_SAMPLE, AWS_CUR, "lineItem/UnblendedCost", Decimal("1.6823086974")),
    (AWS_SYNTHETIC, AWS_CUR, "lineItem/UnblendedCost", Decimal("857.8300416667")),
    (AZURE_EA, AZURE_USAGE, "CostInBillingCurrency", Decimal("1.26136926505726")),
    (AZURE_MCA, AZURE_USAGE, "costInBillingCurrency", Decimal("1533.44519")),
]
IDS = ["aws-sample", "aws-synthetic", "azure-ea-sample", "azure-mca-synthetic"]
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
SERVICE_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
}  # fmt: skip


def _raw(path: Path) -> str:
    return f"read_csv('{path}', all_varchar=true, nullstr=['NULL', 'null', ''])"


def _columns(path: Path) -> list[str]:
    con = duckdb.connect()
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {_raw(path)}").fetchall()]


@functools.cache
def _mapped(dialect: NativeDialect, path: Path, keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every row of `path` through `dialect.select`, money as DECIMAL(38, 18), plus raw `keep`s
    (as `raw:<name>`). Cached: callers only read the rows."""
    pairs = dialect.select(_columns(path))
    exprs = [
        f"CAST({e} AS DECIMAL(38, 18)) AS {quote_ident(c)}"
        if c in MONEY
        else f"{e} AS {quote_ident(c)}"
        for c, e in pairs
    ]
    exprs += [f"{quote_ident(k)} AS {quote_ident('raw:' + k)}" for k in keep]
    con = duckdb.connect()
    cur = con.execute(f"SELECT {', '.join(exprs)} FROM {_raw(path)}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _source_total(path: Path, column: str) -> Decimal:
    with path.open(encoding="utf-8", newline="") as fh:
        return sum((Decimal(row[column]) for row in csv.DictReader(fh)), Decimal(0))


def _one(rows: list[dict[str, Any]], **raw: str) -> dict[str, Any]:
    found = [r for r in rows if all(r[f"raw:{k}"] == v for k, v in raw.items())]
    assert len(found) == 1, (raw, len(found))
    return found[0]


# --- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_each_file_is_detected_as_its_dialect(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    assert detect_native(_columns(path)) is dialect
    assert [d for d in DIALECTS if d.detect(_columns(path))] == [dialect]


def test_focus_files_are_not_native() -> None:
    assert detect_native(_columns(FOCUS_SAMPLE)) is None
    # A Microsoft FOCUS export keeps native names only as x_ columns; AWS FOCUS has no slashes.
    ms_focus = ["BilledCost", "ChargePeriodStart", "x_SkuMeterCategory", "SubAccountId", "x_Cost"]
    assert detect_native(ms_focus) is None
    assert detect_native([]) is None


def test_aws_detection_is_exact_and_azure_ignores_case_and_spaces() -> None:
    aws = _columns(AWS_SAMPLE)
    assert not AWS_CUR.detect([c.lower() for c in aws])
    assert not AWS_CUR.detect([*aws, "BilledCost"])
    ea_v1 = ["SubscriptionGuid", "Date", "Meter Category", "ExtendedCost", "Currency"]
    assert AZURE_USAGE.detect(ea_v1)
    assert not AZURE_USAGE.detect(["Date", "MeterCategory", "SubscriptionId"])  # no cost


def test_expressions_quote_each_files_own_spelling() -> None:
    ea = dict(AZURE_USAGE.select(_columns(AZURE_EA)))
    mca = dict(AZURE_USAGE.select(_columns(AZURE_MCA)))
    assert ea["EffectiveCost"] == 'CAST("CostInBillingCurrency" AS VARCHAR)'
    assert mca["EffectiveCost"] == 'CAST("costInBillingCurrency" AS VARCHAR)'
    assert ea["BillingCurrency"] == 'CAST("BillingCurrencyCode" AS VARCHAR)'
    assert mca["BillingCurrency"] == 'CAST("billingCurrency" AS VARCHAR)'


# --- properties over every fixture ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_billed_cost_total_equals_the_source_to_the_last_decimal(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    rows = _mapped(dialect, path)
    assert _source_total(path, cost) == total
    assert sum(r["BilledCost"] for r in rows) == total
    assert len(rows) == sum(1 for _ in path.open(encoding="utf-8")) - 1


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_columns_are_focus_1_2_and_the_mandatory_ones_are_all_there(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    names = [c for c, _ in dialect.select(_columns(path))]
    focus = {c.name: c for c in focus_columns_of("1.2")}
    assert len(names) == len(set(names))
    assert set(names) <= set(focus)
    mandatory = {n for n, c in focus.items() if c.mandatory_in("1.2")}
    assert mandatory <= set(names)


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_timestamps_are_iso_and_periods_are_half_open(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    rows = _mapped(dialect, path)
    iso = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
    assert all(iso.match(r[col]) for r in rows for col in TIMES)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    values = [[r[col] for col in TIMES] for r in rows]
    con.execute(f"CREATE TABLE t ({', '.join(f'{c} VARCHAR' for c in TIMES)})")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(TIMES))})", values)
    casts = ", ".join(f"CAST({c} AS TIMESTAMPTZ) AS {c}" for c in TIMES)
    bad = con.execute(
        f"SELECT count(*) FROM (SELECT {casts} FROM t) WHERE NOT (ChargePeriodStart < "
        "ChargePeriodEnd AND BillingPeriodStart < BillingPeriodEnd)"
    ).fetchall()
    assert bad == [(0,)]


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_values_are_within_focus_allowed_sets(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    allowed: dict[str, set[str | None]] = {
        "ChargeCategory": {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
        "ChargeClass": {None, "Correction"},
        "ChargeFrequency": {"One-Time", "Recurring", "Usage-Based"},
        "PricingCategory": {None, "Standard", "Dynamic", "Committed", "Other"},
        "CommitmentDiscountCategory": {None, "Spend", "Usage"},
        "CommitmentDiscountStatus": {None, "Used", "Unused"},
        "ServiceCategory": set(SERVICE_CATEGORIES),
    }
    rows = _mapped(dialect, path)
    for col, values in allowed.items():
        seen = {r[col] for r in rows if col in r}
        assert seen <= values, (col, seen - values)
    assert {r["ProviderName"] for r in rows} == {"AWS" if dialect is AWS_CUR else "Microsoft"}
    for r in rows:
        assert r["ServiceName"] and r["BillingAccountId"] and r["BillingCurrency"]
        if r["ChargeCategory"] != "Usage":
            assert r["ConsumedQuantity"] is None and r["CommitmentDiscountStatus"] is None


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_tags_are_flat_json_objects(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal
) -> None:
    for row in _mapped(dialect, path):
        parsed = json.loads(row["Tags"])
        assert isinstance(parsed, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items())


@pytest.mark.parametrize(("path", "dialect", "cost", "total"), CASES, ids=IDS)
def test_typed_parquet_columns_map_to_the_same_totals(
    path: Path, dialect: NativeDialect, cost: str, total: Decimal, tmp_path: Path
) -> None:
    """Parquet exports carry DOUBLE, BIGINT, DATE and TIMESTAMPTZ columns, not text."""
    parquet = tmp_path / "typed.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{path}')) TO '{parquet}' (FORMAT parquet)")
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{parquet}'").fetchall()]
    assert detect_native(cols) is dialect
    pairs = dialect.select(cols)
    named = ", ".join(f"{e} AS {quote_ident(c)}" for c, e in pairs)
    got = con.execute(
        f"SELECT sum(CAST(BilledCost AS DECIMAL(38, 18))), count(*) FROM (SELECT {named} "
        f"FROM '{parquet}')"
    ).fetchall()
    assert got[0][0] == total


# --- known rows ----------------------------------------------------------------------------------


def test_aws_sample_known_rows() -> None:
    rows = _mapped(AWS_CUR, AWS_SAMPLE, keep=("lineItem/LineItemType", "lineItem/ProductCode"))
    tax = _one(rows, **{"lineItem/LineItemType": "Tax", "lineItem/ProductCode": "awskms"})
    assert tax["BilledCost"] == Decimal("0.01")
    assert tax["ListCost"] == tax["ContractedCost"] == tax["EffectiveCost"] == Decimal("0.01")
    assert (tax["ChargeCategory"], tax["ChargeFrequency"]) == ("Tax", "One-Time")
    assert tax["PricingQuantity"] is None and tax["ConsumedQuantity"] is None
    assert (tax["ServiceName"], tax["ServiceCategory"]) == (
        "AWS Key Management Service",
        "Security",
    )
    assert tax["BillingAccountId"] == tax["SubAccountId"] == "123412340534"
    assert tax["BillingPeriodStart"] == "2023-11-01T00:00:00.000Z"
    assert tax["BillingPeriodEnd"] == "2023-12-01T00:00:00.000Z"
    assert tax["InvoiceIssuerName"] == "Amazon Web Services Canada, Inc."
    assert (tax["PublisherName"], tax["Tags"]) == ("AWS", "{}")

    s3 = [r for r in rows if r["raw:lineItem/ProductCode"] == "AmazonS3"]
    assert sum(r["BilledCost"] for r in s3) == Decimal("1.4405653565")
    assert {r["ServiceCategory"] for r in s3} == {"Storage"}
    by_category = {r["ChargeCategory"] for r in rows}
    assert by_category == {"Usage", "Tax"}


def test_aws_sample_free_tier_row_keeps_its_list_cost() -> None:
    rows = _mapped(AWS_CUR, AWS_SAMPLE, keep=("identity/LineItemId", "lineItem/UsageStartDate"))
    row = _one(
        rows,
        **{
            "identity/LineItemId": "kr4x6keki4abcdabcdabcdabcdabcdabcdabcdabcg5hod56hgq",
            "lineItem/UsageStartDate": "2023-11-01T17:00:00.000Z",
        },
    )
    assert row["BilledCost"] == row["EffectiveCost"] == row["ContractedCost"] == 0
    assert row["ListCost"] == Decimal("0.000012")  # 4 requests at the public 3.0E-6
    assert (row["ListUnitPrice"], row["ContractedUnitPrice"]) == ("3.0E-6", "0.0")
    assert (row["PricingQuantity"], row["PricingUnit"]) == ("4.0", "Requests")
    assert row["ConsumedQuantity"] == "4.0" and row["PricingCategory"] == "Standard"
    assert (row["RegionId"], row["RegionName"]) == ("ca-central-1", "Canada (Central)")
    assert row["ChargePeriodEnd"] == "2023-11-01T18:00:00.000Z"
    assert row["SkuId"] == "5Y7QSxxxxxxZBNBG"


def test_aws_commitments_resources_and_tags() -> None:
    rows = _mapped(AWS_CUR, AWS_SYNTHETIC, keep=("identity/LineItemId",))
    by_id = {r["raw:identity/LineItemId"]: r for r in rows}
    sp = "arn:aws:savingsplans::111122223333:savingsplan/5f0a3c1e-sp-compute"
    covered, negation, sp_fee = by_id["l01"], by_id["l02"], by_id["l03"]
    assert (covered["BilledCost"], covered["EffectiveCost"]) == (Decimal("98.32"), Decimal(60))
    assert covered["CommitmentDiscountId"] == sp
    assert covered["CommitmentDiscountType"] == "Savings Plan"
    assert (covered["CommitmentDiscountCategory"], covered["CommitmentDiscountStatus"]) == (
        "Spend",
        "Used",
    )
    assert covered["PricingCategory"] == "Committed"
    assert json.loads(covered["Tags"]) == {
        "team": "ml-platform",
        "Project": "llm-pretrain",
        "aws:createdBy": "AssumedRole:AROAEXAMPLE:karpenter",
    }
    assert (covered["ResourceId"], covered["ResourceName"]) == ("i-0a1b2c3d4e5f60001",) * 2
    assert covered["RegionId"] == "us-east-1" and covered["AvailabilityZone"] == "us-east-1a"
    assert negation["BilledCost"] == Decimal("-98.32")
    assert negation["EffectiveCost"] == negation["ListCost"] == negation["ContractedCost"] == 0
    assert (sp_fee["ChargeCategory"], sp_fee["ChargeFrequency"]) == ("Purchase", "Recurring")
    assert sp_fee["EffectiveCost"] == Decimal(50)  # unused commitment: 650 - 600

    ri_usage, ri_fee = by_id["l04"], by_id["l05"]
    assert (ri_usage["ResourceType"], ri_usage["ResourceName"]) == ("db", "prod-db")
    assert ri_usage["EffectiveCost"] == Decimal("6.72")
    assert (ri_usage["CommitmentDiscountType"], ri_usage["CommitmentDiscountCategory"]) == (
        "Reserved Instance",
        "Usage",
    )
    assert ri_fee["EffectiveCost"] == Decimal("40.32") and ri_fee["PricingQuantity"] == "720.0"

    lam = by_id["l06"]
    assert (lam["ResourceType"], lam["ResourceName"]) == ("function", "embed-worker")
    assert json.loads(lam["Tags"]) == {"team": "search"}  # the empty Project tag is dropped
    assert by_id["l07"]["PricingCategory"] == "Dynamic"  # spot
    assert (by_id["l08"]["ResourceName"], by_id["l08"]["ResourceType"]) == (
        "ml-checkpoints-prod",
        None,
    )
    kinds = {k: by_id[k]["ChargeCategory"] for k in ("l09", "l10", "l11", "l12")}
    assert kinds == {"l09": "Tax", "l10": "Credit", "l11": "Usage", "l12": "Usage"}
    assert [k for k, r in by_id.items() if r["ChargeClass"] == "Correction"] == ["l12"]
    assert sum(r["EffectiveCost"] for r in rows) == Decimal("163.2700416667")


def test_azure_ea_known_row() -> None:
    rows = _mapped(AZURE_USAGE, AZURE_EA, keep=("PartNumber",))
    spot = _one(rows, PartNumber="ABC-1236")
    assert spot["BilledCost"] == spot["EffectiveCost"] == Decimal("0.035351812")
    assert spot["ListCost"] == Decimal("0.1733368")  # PayGPrice 0.4 x Quantity 0.433342
    assert spot["ContractedCost"] == Decimal("0.0433342")  # UnitPrice 0.1 x Quantity
    assert (spot["BillingCurrency"], spot["BillingAccountId"]) == ("CAD", "12345678")
    assert spot["SubAccountId"] == "f908573f-1142-4b3c-999999999999"
    assert spot["ChargePeriodStart"] == "2023-09-02T00:00:00Z"
    assert spot["ChargePeriodEnd"] == "2023-09-03T00:00:00Z"
    assert spot["BillingPeriodStart"] == "2023-09-01T00:00:00Z"
    assert spot["BillingPeriodEnd"] == "2023-10-01T00:00:00Z"  # the export says 9/30/2023
    assert (spot["ChargeCategory"], spot["ChargeFrequency"]) == ("Usage", "Usage-Based")
    assert spot["PricingCategory"] == "Dynamic"
    assert (spot["PricingQuantity"], spot["PricingUnit"]) == ("0.433342", "1 Hour")
    assert (spot["ServiceName"], spot["ServiceCategory"]) == ("Virtual Machines", "Compute")
    assert (spot["RegionId"], spot["SkuMeter"]) == ("centralus", "DS4 v2 Spot")
    assert spot["PublisherName"] == spot["InvoiceIssuerName"] == "Microsoft"
    assert json.loads(spot["Tags"]) == {"tagA": "valueA", "tagB": "valueB", "tagC": "valueC"}
    storage = _one(rows, PartNumber="ABC-1235")
    assert storage["BilledCost"] == Decimal("0.0000564902")  # written 5.64902E-05
    assert (storage["ServiceName"], storage["ServiceCategory"]) == ("Storage Accounts", "Storage")


def test_azure_mca_known_rows() -> None:
    rows = _mapped(AZURE_USAGE, AZURE_MCA, keep=("chargeType", "date"))
    gpu = _one(rows, chargeType="Usage", date="09/02/2023")
    assert gpu["BillingAccountId"] == "PROF-1234-ABCD"  # MCA invoices per billing profile
    assert gpu["BillingAccountName"] == "Contoso AI EUR profile"
    assert gpu["BillingCurrency"] == "EUR"
    assert gpu["BilledCost"] == gpu["ListCost"] == gpu["ContractedCost"] == Decimal("81.09984")
    assert gpu["ListUnitPrice"] == Decimal("3.37916")  # 3.673 USD x 0.92
    assert gpu["ResourceType"] == "microsoft.compute/virtualmachines"
    assert (gpu["ResourceName"], gpu["ServiceName"]) == ("gpu-train-01", "Virtual Machines")
    assert gpu["ServiceSubcategory"] == "Virtual Machines"
    assert json.loads(gpu["Tags"]) == {"team": "ml-platform", "env": "prod"}

    covered = _one(rows, chargeType="Usage", date="09/03/2023")
    assert covered["BilledCost"] == 0 and covered["ContractedCost"] == Decimal("81.09984")
    assert (covered["CommitmentDiscountType"], covered["CommitmentDiscountCategory"]) == (
        "Reservation",
        "Usage",
    )
    assert (covered["CommitmentDiscountStatus"], covered["PricingCategory"]) == (
        "Used",
        "Committed",
    )
    purchase = _one(rows, chargeType="Purchase")
    assert (purchase["ChargeCategory"], purchase["ChargeFrequency"]) == ("Purchase", "Recurring")
    assert purchase["CommitmentDiscountStatus"] is None
    refund = _one(rows, chargeType="Refund")
    assert (refund["ChargeCategory"], refund["ChargeClass"]) == ("Purchase", "Correction")
    assert refund["BilledCost"] == Decimal("-110.86")

    tokens = _one(rows, date="2023-09-04")
    assert tokens["ChargePeriodStart"] == "2023-09-04T00:00:00Z"
    assert (tokens["ServiceName"], tokens["ServiceCategory"]) == (
        "Azure AI Services",
        "AI and Machine Learning",
    )
    assert (tokens["RegionId"], tokens["Tags"]) == ("global", "{}")
    assert _one(rows, chargeType="Usage", date="09/05/2023")["PublisherName"] == "Databricks"
    assert _one(rows, chargeType="RoundingAdjustment")["ChargeCategory"] == "Adjustment"


# --- building blocks -----------------------------------------------------------------------------


def test_aws_tag_keys_follow_focus_convention() -> None:
    assert tag_key("resourceTags/user:team") == "team"
    assert tag_key("resourceTags/aws:createdBy") == "aws:createdBy"
    assert tag_key("resourceTags/user:user:odd") == "user:odd"


def test_azure_tags_are_normalised_to_json_objects() -> None:
    expr = tags(SourceColumns(["Tags"], exact=False))
    values = [
        '"team": "ml","env": "prod"',
        '{"team": "ml"}',
        "",
        None,
        '"broken: "x"',
        '{"a": "1", "a": "2"}',
    ]
    con = duckdb.connect()
    out = [
        con.execute(f'SELECT {expr} FROM (SELECT ?::VARCHAR AS "Tags")', [v]).fetchall()[0][0]
        for v in values
    ]
    assert [json.loads(o) if o else o for o in out] == [
        {"team": "ml", "env": "prod"},
        {"team": "ml"},
        {},
        {},
        None,  # not JSON even with braces: dropped, not guessed
        None,  # a repeated key
    ]


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/d1",
         "microsoft.sql/servers/databases"),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/"
         "providers/Microsoft.Insights/diagnosticSettings/d",
         "microsoft.insights/diagnosticsettings"),
        ("/providers/Microsoft.Capacity/reservationOrders/o/reservations/r",
         "microsoft.capacity/reservationorders/reservations"),
        ("/subscriptions/s/resourceGroups/rg", None),
        (None, None),
    ],
)  # fmt: skip
def test_azure_resource_type_from_resource_id(
    resource_id: str | None, expected: str | None
) -> None:
    expr = resource_type("rid")
    con = duckdb.connect()
    got = con.execute(f"SELECT {expr} FROM (SELECT ?::VARCHAR AS rid)", [resource_id]).fetchall()
    assert got[0][0] == expected


def test_decimal_products_do_not_overflow_or_lose_cents() -> None:
    con = duckdb.connect()
    products = [
        mul("'525.5'", "'3.5'"),  # DECIMAL(38, 18) x DECIMAL(38, 18) would overflow here
        mul("'1.5e9'", "'3.5'"),
        mul("'2000000.25'", "'1'", "'0.92'"),
        mul("'6.71E-8'", "'4.4E-7'"),
        mul("'6.71E-8'", "'4.4E-7'", "'0.92'"),
    ]
    assert con.execute(f"SELECT {', '.join(products)}").fetchall()[0] == (
        Decimal("1839.25"),
        Decimal("5250000000"),
        Decimal("1840000.23"),
        Decimal("2.9524E-14"),
        Decimal("2.7162E-14"),  # 2.716208E-14 rounded to 18 decimals
    )


# --- through `costline ingest focus`, the way a user loads them -----------------------------------

INGEST_CASES = [
    ("aws_cur_legacy_sample-anonymous-aws-export-dataset.csv", "aws-cur", "lineItem/UnblendedCost"),
    ("azure_ea_sample-anonymous-ea-export-dataset.csv", "azure-usage", "CostInBillingCurrency"),
    ("aws_cur_synthetic_commitments_tags.csv", "aws-cur", "lineItem/UnblendedCost"),
    ("azure_mca_synthetic.csv", "azure-usage", "costInBillingCurrency"),
]


@pytest.mark.parametrize(("name", "dialect", "cost_column"), INGEST_CASES)
def test_native_files_ingest_with_exact_totals(
    tmp_path: Path, name: str, dialect: str, cost_column: str
) -> None:
    from costline.ledger.store import Ledger
    from costline.money import total
    from costline.pipeline import ingest_focus

    path = Path(__file__).parents[1] / "fixtures" / "native" / name
    with path.open(encoding="utf-8-sig", newline="") as fh:
        expected = total(Decimal(r[cost_column]) for r in csv.DictReader(fh) if r[cost_column])
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:
        summary = ingest_focus(ledger, [path])
        assert summary.files[0].dialect == dialect
        assert total(t.billed for t in summary.totals) == expected
        again = ingest_focus(ledger, [path])
        assert again.duplicates == [str(path)]
