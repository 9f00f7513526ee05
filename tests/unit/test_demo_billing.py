"""The demo organization's bills: real formats, exact totals, known truth, same bytes per seed."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costline.catalog.instances import instance_price, instance_prices
from costline.demo.billing import BillingManifest, generate_billing
from costline.demo.org import CENTRAL_TEAM, TEAM_TAG_KEYS
from costline.schema import COST_DOMAINS, focus_columns

MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
ALSO_REQUIRED = (
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "RegionId",
    "RegionName",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "ChargeFrequency",
    "PricingCategory",
    "ServiceSubcategory",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "Tags",
)
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
CSV_MONEY = re.compile(r"^-?\d+(\.\d{1,10})?$")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[BillingManifest, float]:
    """90 days at scale 1 with the default seed, generated once for the module."""
    out = tmp_path_factory.mktemp("demo-full")
    started = time.perf_counter()
    manifest = generate_billing(out)
    return manifest, time.perf_counter() - started


@pytest.fixture(scope="module")
def truth(full: tuple[BillingManifest, float]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(full[0].ground_truth.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def lines(full: tuple[BillingManifest, float]) -> duckdb.DuckDBPyConnection:
    """Every line of every file, read back once into table `lines` of an in-memory DuckDB."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE lines AS SELECT * FROM {_all_rows(full[0])}")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


def _source(path: Path) -> str:
    if path.suffix == ".parquet":
        return f"read_parquet('{path}')"
    return f"read_csv('{path}', header = true, all_varchar = true)"


def _all_rows(manifest: BillingManifest) -> str:
    """One SQL relation over every file, with the columns the tests need."""
    parts = [
        f"SELECT '{f.provider}' AS provider, ResourceId, CAST(Tags AS VARCHAR) AS Tags, "
        "ChargeCategory, PricingCategory, PricingUnit, CommitmentDiscountStatus, "
        "CommitmentDiscountId, "
        "CAST(ListUnitPrice AS DECIMAL(38,18)) AS ListUnitPrice, "
        "CAST(PricingQuantity AS DECIMAL(38,18)) AS PricingQuantity, "
        + ", ".join(f"CAST({m} AS DECIMAL(38,18)) AS {m}" for m in MONEY)
        + f", CAST(ChargePeriodStart AS TIMESTAMPTZ) AS ChargePeriodStart FROM {_source(manifest.root / f.path)}"
        for f in manifest.files
    ]
    return "(" + " UNION ALL ".join(parts) + ")"


def _files_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_ninety_days_at_scale_one_is_quick_and_sized(full: tuple[BillingManifest, float]) -> None:
    manifest, seconds = full
    assert seconds < 15
    assert 50_000 <= manifest.rows <= 300_000
    assert manifest.window_end - manifest.window_start == dt.timedelta(days=90)
    assert manifest.window_end == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    formats = {f.provider: f.file_format for f in manifest.files}
    assert formats == {"aws": "parquet", "azure": "csv", "gcp": "csv.gz", "lambda": "csv"}
    assert [f.path for f in manifest.files if f.provider == "aws"] == [
        "aws/focus-2026-08.parquet",
        "aws/focus-2026-09.parquet",
        "aws/focus-2026-10.parquet",
    ]


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    args: dict[str, Any] = {"days": 6, "scale": 0.5, "end": dt.date(2026, 9, 3)}
    generate_billing(tmp_path / "a", seed=11, **args)
    generate_billing(tmp_path / "b", seed=11, **args)
    generate_billing(tmp_path / "c", seed=12, **args)
    first, again, other = (_files_bytes(tmp_path / d) for d in "abc")
    assert len(first) == 11  # 4 providers x 2 months, ground truth, daily successes, budgets
    assert first == again
    assert first.keys() == other.keys()
    assert first["ground_truth.json"] != other["ground_truth.json"]
    assert first["aws/focus-2026-08.parquet"] != other["aws/focus-2026-08.parquet"]


def test_file_totals_read_back_with_duckdb_equal_the_ground_truth(
    full: tuple[BillingManifest, float], truth: dict[str, Any]
) -> None:
    manifest = full[0]
    con = duckdb.connect()
    sums = ", ".join(f"sum(CAST({m} AS DECIMAL(38,18)))" for m in MONEY)
    grand = dict.fromkeys(MONEY, Decimal(0))
    for entry in truth["files"]:
        source = _source(manifest.root / entry["path"])
        count, *amounts = _one(con, f"SELECT count(*), {sums} FROM {source}")
        assert count == entry["rows"]
        for name, amount in zip(MONEY, amounts, strict=True):
            assert amount == Decimal(entry[name]), (entry["path"], name)
            grand[name] += amount
    for name in MONEY:
        assert grand[name] == Decimal(truth["totals"][name])
        assert sum(Decimal(t[name]) for t in truth["per_provider"].values()) == grand[name]
        assert sum(Decimal(t[name]) for t in truth["per_team"].values()) == grand[name]
        assert sum(Decimal(t[name]) for t in truth["per_cost_domain"].values()) == grand[name]
        assert sum(Decimal(r["totals"][name]) for r in truth["resources"]) == grand[name]
    assert manifest.total.billed == grand["BilledCost"]


def test_every_file_has_the_focus_columns(full: tuple[BillingManifest, float]) -> None:
    manifest = full[0]
    focus_12 = {c.name for c in focus_columns() if "1.2" in c.versions}
    mandatory = {c.name for c in focus_columns() if c.mandatory_in("1.2")}
    assert len(mandatory) == 21
    con = duckdb.connect()
    for f in manifest.files:
        source = _source(manifest.root / f.path)
        columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        assert mandatory <= columns, f.path
        assert set(ALSO_REQUIRED) <= columns, f.path
        assert {c for c in columns if not c.startswith("x_")} <= focus_12, f.path
        nulls = " + ".join(f"count(*) - count({m})" for m in (*MONEY, "ChargeCategory"))
        assert _one(con, f"SELECT {nulls} FROM {source}") == (0,), f.path


def test_csv_timestamps_and_money_are_in_the_promised_shapes(
    full: tuple[BillingManifest, float],
) -> None:
    manifest = full[0]
    for f in manifest.files:
        if f.file_format == "parquet":
            continue
        raw = (manifest.root / f.path).read_bytes()
        text = (gzip.decompress(raw) if f.file_format == "csv.gz" else raw).decode("utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            assert ISO_Z.match(row["ChargePeriodStart"]), row["ChargePeriodStart"]
            assert ISO_Z.match(row["BillingPeriodEnd"]), row["BillingPeriodEnd"]
            for name in MONEY:
                assert CSV_MONEY.match(row[name]), (f.path, name, row[name])
            if row["Tags"]:
                assert isinstance(json.loads(row["Tags"]), dict)


def test_domains_teams_and_models(lines: duckdb.DuckDBPyConnection, truth: dict[str, Any]) -> None:
    assert set(truth["per_cost_domain"]) == set(COST_DOMAINS)
    assert all(Decimal(t["EffectiveCost"]) > 0 for t in truth["per_cost_domain"].values())
    teams = set(truth["teams"]) - {CENTRAL_TEAM}
    assert len(teams) >= 5
    assert len(truth["models"]) >= 12
    layers = {r["cost_layer"] for r in truth["resources"]}
    assert {"gpu_compute", "tokens", "storage", "vector_db", "network_egress"} <= layers
    assert {"observability", "control_plane", "cpu_compute"} <= layers
    models = lines.execute(
        "SELECT DISTINCT coalesce(json_extract_string(Tags, '$.model'), "
        "json_extract_string(Tags, '$.Model')) AS m FROM lines WHERE m IS NOT NULL"
    ).fetchall()
    assert len(models) >= 12
    assert _one(lines, "SELECT count(*) FROM lines WHERE PricingUnit = '1K Tokens'")[0] > 0


def test_untagged_share_read_from_the_files(
    lines: duckdb.DuckDBPyConnection, truth: dict[str, Any]
) -> None:
    no_team = " AND ".join(f"json_extract_string(Tags, '$.{k}') IS NULL" for k in TEAM_TAG_KEYS)
    untagged, total = _one(
        lines,
        f"SELECT sum(EffectiveCost) FILTER (WHERE Tags IS NULL OR ({no_team})), "
        "sum(EffectiveCost) FROM lines",
    )
    share = untagged / total
    assert Decimal("0.03") <= share <= Decimal("0.15")
    assert share.quantize(Decimal("0.000001")) == Decimal(
        truth["untagged"]["share_of_effective_cost"]
    )
    assert untagged == Decimal(truth["untagged"]["totals"]["EffectiveCost"])
    hidden = set(truth["untagged"]["per_true_team"]) - {CENTRAL_TEAM}
    assert len(hidden) >= 3  # the ground truth knows whose untagged spend it is


def test_instance_list_prices_come_from_the_catalogue(
    lines: duckdb.DuckDBPyConnection, truth: dict[str, Any]
) -> None:
    instances = {
        r["resource_id"]: r for r in truth["resources"] if r["instance_type"] and r["resource_id"]
    }
    seen = lines.execute(
        "SELECT DISTINCT provider, ResourceId, ListUnitPrice, "
        "bool_and(ListCost = round(CAST(ListUnitPrice AS DECIMAL(30,16)) "
        "* CAST(PricingQuantity AS DECIMAL(18,6)), 10)) "
        "FROM lines WHERE PricingUnit = 'Hours' AND ChargeCategory = 'Usage' GROUP BY ALL"
    ).fetchall()
    checked = 0
    for provider, rid, unit_price, list_cost_ok in seen:
        if rid not in instances:
            continue
        r = instances[rid]
        price = instance_price(provider, r["instance_type"], r["region"])
        assert price is not None
        assert unit_price == price.price_usd_per_hour, r["key"]
        assert list_cost_ok, r["key"]
        checked += 1
    assert checked == len(instances)
    gpus = {r["instance_type"] for r in instances.values() if r["accelerator"]}
    assert {"p5.48xlarge", "a3-highgpu-8g", "Standard_ND96isr_H100_v5"} <= gpus


def test_savings_plan_conserves_money_and_discounts_the_covered_hours(
    lines: duckdb.DuckDBPyConnection, truth: dict[str, Any]
) -> None:
    # The Savings Plan, and the committed use discount the planted waste brings (demo.waste).
    assert [c["type"] for c in truth["commitments"]] == [
        "Compute Savings Plan", "Committed Use Discount"]  # fmt: skip
    for plan in truth["commitments"]:
        fee, used, unused = _one(
            lines,
            "SELECT sum(BilledCost) FILTER (WHERE ChargeCategory = 'Purchase'), "
            "sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Used'), "
            "sum(EffectiveCost) FILTER (WHERE CommitmentDiscountStatus = 'Unused') FROM lines "
            f"WHERE CommitmentDiscountId = '{plan['id']}'",
        )
        assert fee == used + unused == Decimal(plan["committed"]), plan["name"]
        assert unused == Decimal(plan["unused"]) > 0, plan["name"]
    billed, cheaper = _one(
        lines,
        "SELECT sum(BilledCost), bool_and(EffectiveCost < ListCost) "
        "FROM lines WHERE CommitmentDiscountStatus = 'Used'",
    )
    assert billed == 0 and cheaper
    never_above_list = _one(
        lines,
        "SELECT bool_and(ListCost >= EffectiveCost) FROM lines WHERE ChargeCategory = 'Usage' "
        "AND (CommitmentDiscountStatus IS NULL OR CommitmentDiscountStatus = 'Used')",
    )
    assert never_above_list == (True,)
    categories = {
        r[0] for r in lines.execute("SELECT DISTINCT ChargeCategory FROM lines").fetchall()
    }
    assert categories == {"Usage", "Purchase", "Credit", "Tax"}


def test_inference_follows_the_day_and_tag_keys_vary_by_provider(
    lines: duckdb.DuckDBPyConnection,
) -> None:
    by_hour = dict(
        lines.execute(
            "SELECT hour(ChargePeriodStart AT TIME ZONE 'UTC'), count(*) FROM lines "
            "WHERE json_extract_string(Tags, '$.Name') LIKE 'assistant-lite-l40s-%' GROUP BY ALL"
        ).fetchall()
    )
    assert by_hour[17] > 1.5 * by_hour[7]
    keys = lines.execute(
        "SELECT provider, list(DISTINCT k) FROM (SELECT provider, unnest(json_keys(Tags)) AS k "
        "FROM lines WHERE Tags IS NOT NULL) GROUP BY ALL"
    ).fetchall()
    by_provider = {p: set(k) for p, k in keys}
    assert {"team", "Team", "project", "model", "env", "workload-type"} <= by_provider["aws"]
    assert {"Team", "CostCenter"} <= by_provider["azure"]
    assert {"team", "cost-center"} <= by_provider["gcp"]


def test_catalogue_prices() -> None:
    prices = instance_prices()
    keys = [(p.provider, p.instance_type, p.region) for p in prices]
    assert len(keys) == len(set(keys))
    assert all(p.price_usd_per_hour > 0 for p in prices)
    p5 = instance_price("aws", "p5.48xlarge", "us-east-1")
    assert p5 is not None and p5.price_usd_per_hour == Decimal("55.04") and p5.gpu_count == 8
    assert p5.price_per_gpu_hour == Decimal("6.88") and not p5.approximate
    a3 = instance_price("gcp", "a3-highgpu-8g", "us-central1")
    assert a3 is not None and a3.price_usd_per_hour == Decimal("88.4899999025753")
    nd = instance_price("azure", "Standard_ND96isr_H100_v5", "eastus")
    assert nd is not None and nd.price_usd_per_hour == Decimal("98.32")
    lam = instance_price("lambda", "gpu_8x_h100_sxm5", "us-east-1")  # one price, every region
    assert lam is not None and lam.approximate and lam.region == "*"
    assert instance_price("aws", "p5.48xlarge", "eu-west-1") is None  # unpriced, not zero
    assert instance_price("aws", "no-such.type", "us-east-1") is None


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_billing(tmp_path, days=0)
    with pytest.raises(ValueError):
        generate_billing(tmp_path, scale=0)


def test_cost_totals_add_exactly_beyond_28_digits() -> None:
    from decimal import Decimal

    from costline.demo.totals import CostTotals

    big = CostTotals(1, billed=Decimal("12345678901234567890.123456789012345678"))
    tiny = CostTotals(1, billed=Decimal("0.000000000000000001"))
    assert (big + tiny).billed == Decimal("12345678901234567890.123456789012345679")
