"""The same analytics on DuckDB and on PySpark local[2] give decimal-equal results."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pytest

from costline.economics.spend import spend_by, spend_by_service_by_day
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from tests.helpers import FOCUS_SAMPLE, SPEC_EXAMPLES

pytestmark = pytest.mark.integration

COLUMNS = [
    "ChargePeriodStart",
    "ServiceName",
    "BillingCurrency",
    "ProviderName",
    "RegionId",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.skip("PySpark needs Java 17 (make setup-system installs it)")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("costline-conformance")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def _rows(expr: ibis.Table, order: list[str]) -> list[dict[str, Any]]:
    return expr.order_by(order).to_pyarrow().to_pylist()


def test_spend_by_service_by_day_is_decimal_equal(spark: Any, tmp_path: Path) -> None:
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:
        ingest_focus(ledger, [FOCUS_SAMPLE, SPEC_EXAMPLES])
        duck_lines = ledger.table("cost_lines")
        arrow = duck_lines.select(COLUMNS).to_pyarrow()
        # Spark 4 takes Arrow directly; ibis 12's own upload goes through pandas and fails on null
        # decimals ("conversion from NoneType to Decimal"), which real bills have (ListCost).
        spark.createDataFrame(arrow).createOrReplaceTempView("cost_lines")
        spark_lines = ibis.pyspark.connect(spark).table("cost_lines")
        assert str(spark_lines.schema()["BilledCost"]) == "decimal(38, 18)"

        order = ["day", "service", "currency"]
        on_duck = _rows(spend_by_service_by_day(duck_lines), order)
        on_spark = _rows(spend_by_service_by_day(spark_lines), order)
        assert len(on_duck) > 50
        assert on_duck == on_spark

        dims = ["ProviderName", "RegionId"]
        assert _rows(spend_by(duck_lines, dims), dims) == _rows(spend_by(spark_lines, dims), dims)
