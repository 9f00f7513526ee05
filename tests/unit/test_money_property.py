"""Property: any amounts with up to 18 decimals survive CSV and Parquet ingestion exactly."""

from __future__ import annotations

import csv
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costline.ledger.store import Ledger
from costline.money import total
from costline.pipeline import ingest_focus

# Up to 10^18 a line: 40 of them still sum inside DECIMAL(38,18)'s 20 integer digits (a bill of
# 10^20 dollars overflows DuckDB's SUM, and no bill is that large).
amounts = st.decimals(
    min_value=Decimal("-1000000000000000000"),
    max_value=Decimal("1000000000000000000"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)
HEADER = [
    "BilledCost",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingCurrency",
    "ProviderName",
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(amounts, min_size=1, max_size=40))
def test_sum_is_exact_through_csv_and_parquet(values: list[Decimal]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bill.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            for v in values:
                w.writerow(
                    [
                        format(v, "f"),
                        "2026-10-01",
                        "2026-11-01",
                        "2026-10-03T00:00:00Z",
                        "2026-10-04T00:00:00Z",
                        "USD",
                        "X",
                    ]
                )
        parquet = Path(tmp) / "bill.parquet"
        duckdb.sql(
            f"COPY (SELECT * REPLACE (CAST(BilledCost AS DECIMAL(38,18)) AS BilledCost) "
            f"FROM read_csv('{path}', all_varchar=true)) TO '{parquet}' (FORMAT parquet)"
        )
        for source in (path, parquet):
            with Ledger("duckdb://:memory:") as ledger:
                summary = ingest_focus(ledger, [source])
                assert summary.totals[0].billed == total(values)
                stored = [
                    r[0] for r in ledger.con.execute("SELECT BilledCost FROM cost_lines").fetchall()
                ]
                assert sorted(stored) == sorted(values)
