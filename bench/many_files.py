"""Benchmark: a ledger built from many small files against the same rows ingested as one file.

    uv run python bench/many_files.py            # 10, 100, 1,000 and 5,000 files (~20 min)
    uv run python bench/many_files.py --quick    # 10, 100 and 1,000 files
    uv run python bench/many_files.py --files 10 50

Generates N FOCUS 1.2 CSV files of 1,000 lines (25 columns, JSON tags): file i is one billing
account's month of one provider (3 providers, 100 accounts, a new month every 300 files), so every
file has its own restatement key and all of them stay in the ledger. They are ingested one by one
into a fresh ledger through `costline.pipeline.ingest_focus` (what `costline ingest focus` runs),
in one process: one by one and timed for the first 50 files and for the last tenth (at most 50)
before each checkpoint, 100 per ingestion in between (each file is still its own part; this only
keeps the run short). At each checkpoint (10, 100, ... files) it prints:
  - per-file ingest ms: the median of the first and of the last 10% (at most 50) of the files;
  - the DuckDB tables and views in the ledger (they must not grow with the files);
  - three reports on the ledger, best of 2 after a warm-up: `count(*)` of `cost_lines` (SQL), an
    Ibis sum of BilledCost by ServiceName over the FX-converted view (`Ledger.table`), and the
    showback `costline report showback --period 2025-01` computes (allocate + report by team;
    January holds the first 300 files);
  - the same reports on a baseline ledger holding the same rows ingested as one file, and the
    ratio many/one (the target: 1.5 at most).
At the end it re-ingests the first file (a duplicate: nothing changes) and a restated version of
the second (same key, new costs: its 1,000 rows are replaced), timing both.

    uv run python bench/many_files.py --null-cost 1000000

measures why files are not simply appended to one wide table: the same typed rows of a
25-column file written (a) into a table of their own columns, (b) into an 85-column table by name,
(c) into it with one full-width SELECT (typed NULLs), in CPU seconds (best of 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus

OUT = Path(__file__).parent / "out" / "many_files"
LINES = 1_000
SAMPLE = 50  # files timed one by one at the start and before each checkpoint
BATCH = 100  # files per ingestion between the samples, to keep the run short

SELECT = """
  SELECT
    ['AWS', 'Microsoft', 'Google Cloud'][f % 3 + 1] AS ProviderName,
    ['AWS', 'Microsoft', 'Google Cloud'][f % 3 + 1] AS PublisherName,
    ['AWS', 'Microsoft', 'Google Cloud'][f % 3 + 1] AS InvoiceIssuerName,
    'acct-' || (f // 3 % 100) AS BillingAccountId, 'Org ' || (f // 3 % 100) AS BillingAccountName,
    'USD' AS BillingCurrency,
    strftime(TIMESTAMP '2025-01-01' + to_months(f // 300), '%Y-%m-%dT%H:%M:%SZ')
      AS BillingPeriodStart,
    strftime(TIMESTAMP '2025-01-01' + to_months(f // 300 + 1), '%Y-%m-%dT%H:%M:%SZ')
      AS BillingPeriodEnd,
    strftime(TIMESTAMP '2025-01-01' + to_months(f // 300) + to_hours(r % 672),
             '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
    strftime(TIMESTAMP '2025-01-01' + to_months(f // 300) + to_hours(r % 672 + 1),
             '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
    'Usage' AS ChargeCategory, 'Usage-Based' AS ChargeFrequency,
    'usage ' || (r % 13) AS ChargeDescription,
    CAST(round(((r * 7919 + f * 104729) % 10000) / 100.0 + {bump}, 10) AS DECIMAL(38, 10))
      AS BilledCost,
    CAST(round(((r * 7919 + f * 104729) % 9000) / 100.0, 10) AS DECIMAL(38, 10)) AS EffectiveCost,
    CAST(98.32 AS DECIMAL(38, 10)) AS ListCost, CAST(95.10 AS DECIMAL(38, 10)) AS ContractedCost,
    CAST(1 AS DECIMAL(38, 10)) AS PricingQuantity, 'Hours' AS PricingUnit,
    'region-' || (r % 4) AS RegionId, 'Compute' AS ServiceCategory,
    ['Compute Engine', 'Object Storage', 'GPU Instances', 'Database', 'Network'][r % 5 + 1]
      AS ServiceName,
    'res-' || f || '-' || (r % 50) AS ResourceId, 'sku-' || (r % 300) AS SkuId,
    '{{"team": "team-' || ((r + f) % 9) || '", "env": "prod"}}' AS Tags{extra}
  FROM (SELECT i // {lines} + {first} AS f, i % {lines} AS r FROM range({rows}) t(i))"""


def generate(files: int) -> list[Path]:
    """Files 0..files-1 (kept between runs), one CSV each, written by DuckDB in one statement."""
    folder = OUT / "files"
    paths = [folder / f"focus_{i:05d}.csv" for i in range(files)]
    if all(p.exists() for p in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    staged = OUT / "staged"  # f=N/ folders would be read as a hive partition column `f`
    shutil.rmtree(staged, ignore_errors=True)
    select = SELECT.format(lines=LINES, first=0, rows=files * LINES, bump=0, extra=", f")
    con = duckdb.connect()
    con.execute(
        f"COPY ({select}) TO '{staged}' (FORMAT csv, HEADER true, PARTITION_BY (f), "
        "WRITE_PARTITION_COLUMNS false)"
    )
    con.close()
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        (staged / f"f={i}" / "data_0.csv").rename(path)
    shutil.rmtree(staged)
    return paths


def one_file(files: int, name: str, *, first: int = 0, bump: int = 0) -> Path:
    """The rows of files first..first+files-1 in one CSV (with `bump`: their costs restated)."""
    path = OUT / name
    select = SELECT.format(lines=LINES, first=first, rows=files * LINES, bump=bump, extra="")
    con = duckdb.connect()
    con.execute(f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER true)")
    con.close()
    return path


def fresh_ledger(name: str) -> Ledger:
    db = OUT / f"{name}.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    return Ledger(f"duckdb:///{db}")


def reports(ledger: Ledger) -> dict[str, Callable[[], object]]:
    from costline.allocation.allocate import allocate
    from costline.allocation.reports import report

    def count() -> object:
        return ledger.con.execute("SELECT count(*) FROM cost_lines").fetchall()

    def by_service() -> object:
        t = ledger.table("cost_lines")
        return t.group_by("ServiceName").aggregate(cost=t.BilledCost.sum()).to_pyarrow()

    def showback() -> object:  # `costline report showback --period 2025-01`
        allocation = allocate(
            ledger.table("cost_lines"),
            ledger.table("gpu_samples"),
            ledger.table("workloads"),
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2025, 2, 1, tzinfo=dt.UTC),
            metrics=ledger.table("metrics"),
        )
        return report(allocation, "team", "showback")

    return {"count": count, "sum by service": by_service, "showback 2025-01": showback}


def best_of(fn: Callable[[], object], times: int = 2) -> float:
    fn()  # warm-up: compiles, the FX view's currency check
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def objects(ledger: Ledger) -> int:
    [(n,)] = ledger.con.execute(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE NOT temporary)"
        " + (SELECT count(*) FROM duckdb_views() WHERE NOT internal AND NOT temporary)"
    ).fetchall()
    return int(n)


def checkpoint(ledger: Ledger, files: int, ingest_ms: dict[int, float]) -> None:
    sample = min(max(1, files // 10), SAMPLE)
    first = statistics.median(ingest_ms[i] for i in range(sample))
    last = statistics.median(ingest_ms[i] for i in range(files - sample, files))
    with fresh_ledger("one") as base:
        path = one_file(files, "one.csv")
        started = time.perf_counter()
        ingest_focus(base, [path])
        one_s = time.perf_counter() - started
        ours = {k: best_of(fn) for k, fn in reports(ledger).items()}
        theirs = {k: best_of(fn) for k, fn in reports(base).items()}
        assert reports(ledger)["count"]() == reports(base)["count"]() == [(files * LINES,)]
    print(
        f"{files:>6,} files | ingest ms/file, median of {sample}: first {first:5.0f}, "
        f"last {last:5.0f} (one file of {files * LINES:,} lines: {one_s:.2f} s) | "
        f"tables+views {objects(ledger)}",
        flush=True,
    )
    for k in ours:
        print(
            f"{'':>13}{k:<16} {files} files {ours[k]:7.3f} s  one file {theirs[k]:7.3f} s"
            f"  ratio {ours[k] / theirs[k]:5.2f}",
            flush=True,
        )


def fill(ledger: Ledger, paths: list[Path], done: int, upto: int, ms: dict[int, float]) -> None:
    """Ingest files done..upto-1: the first SAMPLE of the ledger and the last tenth (at most
    SAMPLE) before `upto` one by one and timed, the others BATCH per ingestion (same parts)."""
    single = upto - min(max(1, upto // 10), SAMPLE)
    batch: list[Path] = []
    for i in range(done, upto):
        if SAMPLE <= i < single:
            batch.append(paths[i])
            if len(batch) < BATCH and i + 1 < single:
                continue
            ingest_focus(ledger, batch)
            batch = []
            continue
        started = time.perf_counter()
        ingest_focus(ledger, [paths[i]])
        ms[i] = (time.perf_counter() - started) * 1000


def restatements(ledger: Ledger, paths: list[Path]) -> None:
    started = time.perf_counter()
    again = ingest_focus(ledger, [paths[0]])
    dup_ms = (time.perf_counter() - started) * 1000
    assert again.rows == 0 and again.duplicates == [str(paths[0])]
    restated = one_file(1, "restated.csv", first=1, bump=1)
    started = time.perf_counter()
    summary = ingest_focus(ledger, [restated])
    ms = (time.perf_counter() - started) * 1000
    assert [r.replaced_rows for r in summary.restated] == [LINES], summary.restated
    print(
        f"re-ingest of file 0: duplicate, {dup_ms:.0f} ms; restated file 1: "
        f"{summary.restated[0].replaced_rows:,} rows replaced, {ms:.0f} ms"
    )


def null_cost(rows: int) -> None:
    """CPU seconds to write `rows` typed lines narrow vs into the full 85-column table."""
    from costline import schema
    from costline.ledger import parts

    path = one_file(rows // LINES, "wide.csv")
    with fresh_ledger("wide") as ledger:
        ingest_focus(ledger, [path])  # typed rows in their shape's table: the source of each copy
        [(shape, present)] = parts.shapes(ledger.con)
        types = dict(parts.column_types(schema.cost_lines_schema()))
        have = [c for c in types if c in present]
        cols = ", ".join(f'"{c}"' for c in have)
        narrow = ", ".join(f'"{c}" {types[c]}' for c in have)
        wide = ", ".join(f'"{c}" {t}' for c, t in types.items())
        full = ", ".join(f'"{c}"' if c in have else f"CAST(NULL AS {t})" for c, t in types.items())
        ways = {
            "narrow (its own columns)": (
                narrow,
                f"INSERT INTO t ({cols}) SELECT {cols} FROM {shape}",
            ),
            "wide, INSERT BY NAME": (wide, f"INSERT INTO t BY NAME SELECT {cols} FROM {shape}"),
            "wide, full-width SELECT": (wide, f"INSERT INTO t SELECT {full} FROM {shape}"),
        }
        for name, (ddl, insert) in ways.items():
            cpu = []
            for _ in range(3):
                ledger.con.execute(f"CREATE OR REPLACE TABLE t ({ddl})").fetchall()
                ledger.con.execute("CHECKPOINT").fetchall()
                started = time.process_time()
                ledger.con.execute(insert).fetchall()
                ledger.con.execute("CHECKPOINT").fetchall()
                cpu.append(time.process_time() - started)
            print(f"{name:<26} {min(cpu):6.2f} CPU s for {rows:,} rows", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10, 100 and 1,000 files")
    parser.add_argument("--files", type=int, nargs="+", help="other checkpoints (e.g. 10 50)")
    parser.add_argument("--null-cost", type=int, metavar="ROWS", help="narrow vs wide writes")
    args = parser.parse_args()
    if args.null_cost:
        OUT.mkdir(parents=True, exist_ok=True)
        null_cost(args.null_cost)
        return
    points = sorted(args.files or ([10, 100, 1_000] if args.quick else [10, 100, 1_000, 5_000]))
    OUT.mkdir(parents=True, exist_ok=True)
    paths = generate(points[-1])
    ingest_ms: dict[int, float] = {}
    with fresh_ledger("many") as ledger:
        done = 0
        for point in points:
            fill(ledger, paths, done, point, ingest_ms)
            checkpoint(ledger, point, ingest_ms)
            done = point
        restatements(ledger, paths)


if __name__ == "__main__":
    main()
