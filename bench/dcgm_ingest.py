"""Benchmark: `costline ingest dcgm` of a fleet's GPU telemetry, against DuckDB reading Parquet.

    uv run python bench/dcgm_ingest.py                       # the issue's month: 1,000 GPUs x 30 days
    uv run python bench/dcgm_ingest.py --days 1              # quick
    uv run python bench/dcgm_ingest.py --layout long --days 3
    uv run python bench/dcgm_ingest.py --layout text --minutes 180

The fleet: 1,000 H100s sampled every minute, Kubernetes labels as dcgm-exporter writes them, 8 DCGM
metrics. 90% of GPUs run training pods that change every day; 10% are time-sliced by two notebook
pods at once (their rows share the GPU). Layouts (see `costline.sources.dcgm_parquet`):

  - wide: Parquet, one row per series instant with a column per metric (the bulk path);
  - long: Parquet, one row per sample of one series (`__name__`, `value`, labels), 8x the rows;
  - text: timestamped exposition text, as saved scrapes (8 lines per GPU sample, ~250 bytes each).

Each side runs in a fresh process, timed after imports, so its peak RSS is its own:
  - costline: `ingest_files(ledger, [file], DCGM)` into a new ledger (fingerprint, identify each
    label set, time-slice shares, typed insert, one transaction); GPU samples per second, where a
    sample is one GPU (or slice) at one instant, whoever holds it;
  - baseline: DuckDB's `CREATE TABLE AS SELECT * FROM read_parquet(...)` of the same input file
    (for text, of the same samples in the wide layout).
"""

from __future__ import annotations

import time
from pathlib import Path

from fresh import arguments, measure, report

OUT = Path(__file__).parent / "out"
T0 = 1_761_955_200  # 2025-11-01T00:00:00Z
METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "random() * 100"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "random()"),
    ("DCGM_FI_PROF_SM_ACTIVE", "random()"),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "random()"),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "random()"),
    ("DCGM_FI_DEV_FB_USED", "round(random() * 80000)"),
    ("DCGM_FI_DEV_FB_FREE", "round(random() * 1000)"),
    ("DCGM_FI_DEV_POWER_USAGE", "random() * 700"),
)


def _fleet_sql(gpus: int, minutes: int) -> str:
    """One row per GPU, pod and minute: the labels and the 8 metrics (DuckDB, generated in place)."""
    values = ", ".join(f"{expr} AS {name}" for name, expr in METRICS)
    return f"""
      SELECT to_timestamp({T0} + m * 60) AS timestamp,
             'node-' || lpad(CAST(g // 8 AS VARCHAR), 4, '0') AS Hostname,
             CAST(g % 8 AS VARCHAR) AS gpu,
             'GPU-' || lpad(CAST(g AS VARCHAR), 8, '0') || '-0000-0000-0000-000000000000' AS UUID,
             'nvidia' || CAST(g % 8 AS VARCHAR) AS device,
             'NVIDIA H100 80GB HBM3' AS modelName,
             CASE WHEN g % 10 = 0 THEN 'lab' ELSE 'ml' END AS namespace,
             CASE WHEN g % 10 = 0 THEN 'nb-' || g || '-' || p
                  ELSE 'train-' || (g // 8) || '-day' || (m // 1440) END AS pod,
             'main' AS container,
             {values}
      FROM range({minutes}) r(m), range({gpus}) gg(g), range(2) pp(p)
      WHERE p = 0 OR g % 10 = 0
      ORDER BY m, g"""


def generate(layout: str, gpus: int, minutes: int) -> tuple[Path, Path, int]:
    """The input file, the wide Parquet of the same samples, and the GPU samples they hold."""
    import duckdb

    OUT.mkdir(parents=True, exist_ok=True)
    wide = OUT / f"dcgm_wide_{gpus}x{minutes}.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if not wide.exists():
        con.execute(f"COPY ({_fleet_sql(gpus, minutes)}) TO '{wide}' (FORMAT parquet)")
    samples = gpus * minutes
    if layout == "wide":
        return wide, wide, samples
    if layout == "long":
        path = OUT / f"dcgm_long_{gpus}x{minutes}.parquet"
        if not path.exists():
            metrics = ", ".join(name for name, _ in METRICS)
            con.execute(
                f"COPY (UNPIVOT (SELECT * FROM read_parquet('{wide}')) ON {metrics} "
                f"INTO NAME __name__ VALUE value) TO '{path}' (FORMAT parquet)"
            )
        return path, wide, samples
    path = OUT / f"dcgm_{gpus}x{minutes}.txt"
    if not path.exists():
        labels = (
            "'{gpu=\"' || gpu || '\",UUID=\"' || UUID || '\",device=\"' || device || "
            "'\",modelName=\"' || modelName || '\",Hostname=\"' || Hostname || "
            '\'",namespace="\' || namespace || \'",pod="\' || pod || \'",container="main"}\''
        )
        lines = " UNION ALL ".join(
            f"SELECT timestamp, '{name}' || {labels} || ' ' || round({name}, 3) || ' ' || "
            f"CAST(epoch_ms(timestamp) AS VARCHAR) AS line FROM read_parquet('{wide}')"
            for name, _ in METRICS
        )
        con.execute(
            f"COPY (SELECT line FROM ({lines}) ORDER BY timestamp) TO '{path}' "
            "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\\x01')"
        )
    return path, wide, samples


def worker(kind: str, path: str, db: str) -> None:
    # Imports happen before the clock starts: this measures ingestion, not Python start-up.
    import duckdb

    from costline.ledger.store import Ledger
    from costline.pipeline import ingest_files
    from costline.sources.dcgm_source import DCGM

    started = time.perf_counter()
    if kind == "costline":
        with Ledger(f"duckdb:///{db}") as ledger:
            rows = ingest_files(ledger, [Path(path)], DCGM).rows
    else:
        con = duckdb.connect(db)
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{path}')")
        row = con.execute("SELECT count(*) FROM t").fetchall()
        rows = int(row[0][0]) if row else 0
        con.close()
    report(rows, time.perf_counter() - started)


def run(kind: str, path: Path) -> dict[str, float]:
    db = OUT / f"dcgm_{kind}.duckdb"
    try:
        return measure(__file__, kind, path, db)
    finally:
        db.unlink(missing_ok=True)


def main() -> None:
    parser = arguments(__doc__, worker)
    if parser is None:
        return
    parser.add_argument("--layout", choices=["wide", "long", "text"], default="wide")
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--minutes", type=int, help="instead of --days")
    args = parser.parse_args()
    minutes = args.minutes or round(args.days * 1440)

    path, wide, samples = generate(args.layout, args.gpus, minutes)
    ours = run("costline", path)
    base = run("duckdb", path if path.suffix == ".parquet" else wide)
    size_mib = path.stat().st_size / 2**20
    print(
        f"{'input':>36} {'GPU samples':>12} {'rows':>11} {'costline s':>10} {'samples/s':>11} "
        f"{'peak MiB':>8} {'DuckDB CTAS s':>13} {'peak MiB':>8} {'ratio':>6}"
    )
    print(
        f"{path.name + f' ({size_mib:,.0f} MiB)':>36} {samples:>12,} {int(ours['rows']):>11,} "
        f"{ours['seconds']:>10.2f} {samples / ours['seconds']:>11,.0f} {ours['peak_mib']:>8,.0f} "
        f"{base['seconds']:>13.2f} {base['peak_mib']:>8,.0f} {ours['seconds'] / base['seconds']:>6.2f}"
    )


if __name__ == "__main__":
    main()
