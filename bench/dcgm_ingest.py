"""Benchmark: `costline ingest dcgm` of saved dcgm-exporter scrapes, against DuckDB reading Parquet.

    uv run python bench/dcgm_ingest.py                  # 1,000 GPUs x 60 one-minute scrapes
    uv run python bench/dcgm_ingest.py --gpus 200 --minutes 30

Generates timestamped exposition text (8 DCGM metrics per GPU per scrape, the labels a Kubernetes
dcgm-exporter writes; a tenth of the GPUs time-sliced by two pods), then times, in this process:
  - costline: `ingest_files(ledger, [file], DCGM)` into a fresh ledger (fingerprint, parse, pivot,
    time-slice shares, one transaction), printing GPU samples per second and text lines per second;
  - baseline: DuckDB's `CREATE TABLE AS SELECT * FROM read_parquet(...)` of the same samples,
    already pivoted, as Parquet.
The issue's 43M-sample month (1,000 GPUs x 30 days x 1 minute) is 344M lines, about 75 GB of text:
this box can't hold it, so the figure is per second and the size is a flag.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", 100.0),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1.0),
    ("DCGM_FI_PROF_SM_ACTIVE", 1.0),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", 1.0),
    ("DCGM_FI_PROF_DRAM_ACTIVE", 1.0),
    ("DCGM_FI_DEV_FB_USED", 80000.0),
    ("DCGM_FI_DEV_FB_FREE", 1000.0),
    ("DCGM_FI_DEV_POWER_USAGE", 700.0),
)


def generate(gpus: int, minutes: int) -> tuple[Path, int]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"dcgm_{gpus}x{minutes}.txt"
    rng = random.Random(7)
    labels = []
    for g in range(gpus):
        host, idx = f"node-{g // 8:04d}", g % 8
        pods = [f"train-{g // 8}"] if g % 10 else [f"nb-{g}-a", f"nb-{g}-b"]
        for pod in pods:
            labels.append(
                f'gpu="{idx}",UUID="GPU-{g:08x}-0000-0000-0000-000000000000",device="nvidia{idx}",'
                f'modelName="NVIDIA H100 80GB HBM3",Hostname="{host}",DCGM_FI_DRIVER_VERSION="550.54.15",'
                f'namespace="ml",pod="{pod}",container="main"'
            )
    lines = 0
    if not path.exists():
        t0 = 1_761_955_200_000
        with path.open("w") as fh:
            for m in range(minutes):
                ts = t0 + m * 60_000
                for metric, scale in METRICS:
                    fh.write(f"# HELP {metric} .\n# TYPE {metric} gauge\n")
                    fh.writelines(
                        f"{metric}{{{lab}}} {rng.random() * scale:.3f} {ts}\n" for lab in labels
                    )
    lines = minutes * len(METRICS) * len(labels)
    return path, lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()

    import duckdb

    from costline.ledger.store import Ledger
    from costline.pipeline import ingest_files
    from costline.sources.dcgm import DCGM

    path, lines = generate(args.gpus, args.minutes)
    db = OUT / "dcgm.duckdb"
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    with Ledger(f"duckdb:///{db}") as ledger:
        samples = ingest_files(ledger, [path], DCGM).rows
        parquet = OUT / "dcgm_samples.parquet"
        ledger.con.execute(f"COPY gpu_samples TO '{parquet}' (FORMAT parquet)").fetchall()
    ours = time.perf_counter() - started
    base_db = OUT / "dcgm_baseline.duckdb"
    base_db.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(base_db))
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{parquet}')")
    con.close()
    base = time.perf_counter() - started
    for p in (db, base_db):
        p.unlink(missing_ok=True)
    size_mib = path.stat().st_size / 2**20
    print(
        f"{'file':>28} {'lines':>11} {'samples':>10} {'costline s':>10} {'samples/s':>10} "
        f"{'lines/s':>11} {'duckdb parquet s':>17}"
    )
    print(
        f"{path.name + f' ({size_mib:,.0f} MiB)':>28} {lines:>11,} {samples:>10,} {ours:>10.2f} "
        f"{samples / ours:>10,.0f} {lines / ours:>11,.0f} {base:>17.3f}"
    )


if __name__ == "__main__":
    main()
