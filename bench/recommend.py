"""Benchmark: `costline recommend` (every kind) on a month of a 1,000-GPU cluster and 50k workloads.

    uv run python bench/recommend.py                 # 1,000 GPUs x 30 days (43.2M samples)
    uv run python bench/recommend.py --days 3        # quick

The ledger is bench/allocation.py's (built once under bench/out): 125 hosts of 8 H100s billed
hourly on AWS, one-minute samples for every GPU, 50k training workloads. Issue 16's target: all
recommendations within 60 s.

Measured, each in a fresh process (timed after imports; peak memory is VmHWM):
  - costline: `optimize.run.recommend` over the window, every kind (one allocation shared);
  - the allocation alone (`allocate`), the largest part of it;
  - baseline: DuckDB running hand-written SQL of the telemetry rightsizing reads (the p95 and
    maximum of framebuffer and activity per host, and billed hours per host).
"""

from __future__ import annotations

import sys
import time

from allocation import OUT, build
from fresh import arguments, measure, report


def worker(kind: str, path: str, arg: str) -> None:
    import datetime as dt

    import duckdb

    from costline.allocation.allocate import allocate
    from costline.attribution.rules import Rules
    from costline.clock import FixedClock
    from costline.ledger.store import Ledger
    from costline.optimize.run import recommend

    days = int(arg)
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=days)
    started = time.perf_counter()
    if kind == "recommend":
        with Ledger(f"duckdb:///{path}", read_only=True) as ledger:
            run = recommend(ledger, Rules(), end=end, days=days, clock=FixedClock(end))
            rows = len(run.found)
    elif kind == "allocate":
        with Ledger(f"duckdb:///{path}", read_only=True) as ledger:
            a = allocate(ledger.table("cost_lines"), ledger.table("gpu_samples"),
                         ledger.table("workloads"), start, end)  # fmt: skip
            rows = a.rows.num_rows
    else:  # hand-written SQL of the telemetry reads
        con = duckdb.connect(path, read_only=True)
        rows = len(con.execute(
            f"""SELECT host, quantile_cont(fb_used_mib, 0.95), max(fb_used_mib),
                       quantile_cont(coalesce(sm_active, gr_engine_active), 0.95),
                       sum(sample_seconds)
                FROM gpu_samples WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}'
                  AND mig_profile IS NULL GROUP BY host"""
        ).fetchall())  # fmt: skip
        con.execute(
            f"""SELECT ResourceName, sum(ConsumedQuantity), sum(EffectiveCost) FROM cost_lines
                WHERE ChargePeriodStart >= TIMESTAMPTZ '{start}'
                  AND ChargePeriodStart < TIMESTAMPTZ '{end}' GROUP BY 1"""
        ).fetchall()  # fmt: skip
    report(rows, time.perf_counter() - started)


def main() -> None:
    parser = arguments(__doc__, worker)
    if parser is None:
        return
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workloads", type=int, default=50_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"alloc_{args.gpus}x{args.days}.duckdb"
    if not path.exists():
        started = time.perf_counter()
        build(path, args.gpus, args.days, args.workloads)
        print(f"built {path.name} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    results = {
        label: measure(__file__, kind, path, str(args.days))
        for label, kind in (("recommend, every kind", "recommend"),
                            ("allocate alone", "allocate"), ("hand-written SQL", "sql"))
    }  # fmt: skip
    print(f"{args.gpus:,} GPUs x {args.days} days ({args.gpus * args.days * 1440:,} samples)")
    print(f"{'run':>22} {'rows out':>9} {'seconds':>8} {'peak MiB':>9}")
    for label, r in results.items():
        print(f"{label:>22} {int(r['rows']):>9,} {r['seconds']:>8.2f} {r['peak_mib']:>9,.0f}")
    ratio = results["recommend, every kind"]["seconds"] / results["hand-written SQL"]["seconds"]
    print(f"recommend / hand-written SQL of its telemetry reads: {ratio:.1f}x (target: 60 s)")


if __name__ == "__main__":
    main()
