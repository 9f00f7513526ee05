"""Benchmark: `costline ingest focus` against DuckDB's own read of the same file.

    uv run python bench/ingest.py                       # 1M and 10M rows, Parquet and CSV
    uv run python bench/ingest.py --rows 1000000 --formats parquet

For each size and format it generates a FOCUS 1.2 file (25 columns, JSON tags), then times, each in
a fresh process so peak memory is its own:
  - costline: SourceFile fingerprint + plan + typed Arrow stream + one-transaction ledger write
    (DECIMAL(38,18) money, TIMESTAMPTZ, Tags parsed to MAP) into a new DuckDB file;
  - baseline: DuckDB's `CREATE TABLE AS SELECT * FROM read_parquet(...)` / `read_csv(...)` into a
    new DuckDB file (auto-detected types: DOUBLE money, tags left as text).
It prints rows/s, seconds, their ratio and each process's peak RSS.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fresh import measure, report

OUT = Path(__file__).parent / "out"


def generate(rows: int, fmt: str) -> Path:
    import duckdb

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"focus_{rows}.{'parquet' if fmt == 'parquet' else 'csv'}"
    if path.exists():
        return path
    tmp = path.with_suffix(path.suffix + ".tmp")
    select = f"""
      SELECT
        'acct-' || (i % 7) AS BillingAccountId, 'Org ' || (i % 7) AS BillingAccountName,
        'USD' AS BillingCurrency,
        TIMESTAMP '2026-10-01' AS BillingPeriodStart, TIMESTAMP '2026-11-01' AS BillingPeriodEnd,
        strftime(TIMESTAMP '2026-10-01' + INTERVAL (i % 744) HOUR, '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
        strftime(TIMESTAMP '2026-10-01' + INTERVAL (i % 744 + 1) HOUR, '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
        'Usage' AS ChargeCategory, 'Usage-Based' AS ChargeFrequency,
        'p5.48xlarge usage ' || (i % 13) AS ChargeDescription,
        CAST(round(random() * 98.32, 10) AS DECIMAL(38, 10)) AS BilledCost,
        CAST(round(random() * 90.00, 10) AS DECIMAL(38, 10)) AS EffectiveCost,
        CAST(98.32 AS DECIMAL(38, 10)) AS ListCost, CAST(95.10 AS DECIMAL(38, 10)) AS ContractedCost,
        CAST(1 AS DECIMAL(38, 10)) AS PricingQuantity, 'Hours' AS PricingUnit,
        'AWS' AS ProviderName, 'Amazon Web Services, Inc.' AS PublisherName,
        'Amazon Web Services, Inc.' AS InvoiceIssuerName,
        'us-east-1' AS RegionId, 'Compute' AS ServiceCategory, 'Amazon EC2' AS ServiceName,
        'arn:aws:ec2:us-east-1:123456789012:instance/i-' || lpad(CAST(i % 50000 AS VARCHAR), 17, '0') AS ResourceId,
        'sku-' || (i % 300) AS SkuId,
        '{{"team": "team-' || (i % 9) || '", "project": "p' || (i % 40) || '", "env": "prod"}}' AS Tags
      FROM range({rows}) t(i)"""
    con = duckdb.connect()
    opts = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    con.execute(f"COPY ({select}) TO '{tmp}' ({opts})")
    tmp.rename(path)
    return path


def worker(kind: str, path: str, db: str) -> None:
    # Imports happen before the clock starts: this measures ingestion, not Python start-up.
    import duckdb

    from costline.ledger.store import Ledger
    from costline.pipeline import ingest_focus

    started = time.perf_counter()
    if kind == "costline":
        with Ledger(f"duckdb:///{db}") as ledger:
            rows = ingest_focus(ledger, [path]).rows
    else:
        reader = "read_parquet" if path.endswith(".parquet") else "read_csv"
        con = duckdb.connect(db)
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
        row = con.execute("SELECT count(*) FROM t").fetchone()
        rows = int(row[0]) if row else 0
        con.close()
    report(rows, time.perf_counter() - started)


def run(kind: str, path: Path) -> dict[str, float]:
    return measure(__file__, kind, path, OUT / f"{kind}.duckdb")


def tag_query_seconds() -> tuple[float, float]:
    """The price of parsing Tags once at ingest, paid back: one group-by-team over each ledger.

    costline reads its MAP; the DuckDB baseline table kept the JSON text and parses it per query.
    """
    import duckdb

    def best(db: Path, sql: str) -> float:
        con = duckdb.connect(str(db), read_only=True)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
        con.close()
        return min(times)

    ours = best(
        OUT / "costline.duckdb", "SELECT Tags['team'], sum(BilledCost) FROM cost_lines GROUP BY 1"
    )
    base = best(
        OUT / "duckdb.duckdb",
        "SELECT json_extract_string(Tags, '$.team'), sum(BilledCost) FROM t GROUP BY 1",
    )
    return ours, base


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"]
    )
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "PATH", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    print(
        f"{'rows':>11} {'format':8} {'duckdb s':>9} {'costline s':>10} {'ratio':>6} "
        f"{'costline rows/s':>16} {'peak MiB (duckdb/costline)':>27} "
        f"{'tag query s (map/json)':>23}"
    )
    for rows in args.rows:
        for fmt in args.formats:
            path = generate(rows, fmt)
            base = run("duckdb", path)
            ours = run("costline", path)
            assert ours["rows"] == base["rows"] == rows, (ours, base)
            ratio = ours["seconds"] / base["seconds"]
            tag_ours, tag_base = tag_query_seconds()
            print(
                f"{rows:>11,} {fmt:8} {base['seconds']:>9.2f} {ours['seconds']:>10.2f} {ratio:>6.2f} "
                f"{rows / ours['seconds']:>16,.0f} {base['peak_mib']:>12,.0f} / {ours['peak_mib']:>10,.0f} "
                f"{tag_ours:>11.3f} / {tag_base:>9.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
