"""Benchmark: allocating a month of a 1,000-GPU cluster by GPU-time, against a pandas version.

    uv run python bench/allocation.py                 # 1,000 GPUs x 30 days (43.2M samples), 50k workloads
    uv run python bench/allocation.py --days 3        # quick

The ledger (built once under bench/out, directly in DuckDB: this measures allocation, not ingest):
125 hosts of 8 H100s billed hourly on AWS (90k cost lines for 30 days) plus 10k tagged non-GPU
lines; one-minute samples for every GPU; 50k workloads of 20 teams, each holding one GPU for ~14
hours in turn, a tenth of the GPUs time-sliced by two workloads at once, a twentieth split into
MIG slices, engines idle a tenth of the time.

Measured, each in a fresh process (timed after imports; peak memory is VmHWM):
  - costline: `allocate` over the month (Ibis on the DuckDB ledger, exact decimal split), then
    `buckets` by team, checked to add up to the month's cost;
  - the same on a tenth of the GPUs;
  - baseline: a straightforward pandas version of the same split (read the samples, group by
    host, hour and pod, merge with the lines, cost x held / capacity in float64) on that tenth.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fresh import arguments, measure, report

OUT = Path(__file__).parent / "out"
T0 = "2026-10-01 00:00:00+00"


def build(path: Path, gpus: int, days: int, workloads: int) -> None:
    """The bench ledger: cost lines through the real FOCUS ingest, samples and workloads in SQL."""
    import duckdb

    from costline.ledger.store import Ledger
    from costline.pipeline import ingest_focus

    hours = days * 24
    hosts = gpus // 8
    per_gpu = max(workloads // gpus, 1)
    span = hours * 60 // per_gpu  # minutes each workload holds its GPU
    path.unlink(missing_ok=True)
    focus = OUT / f"alloc_focus_{gpus}x{days}.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""COPY (
          SELECT 'acct-1' AS BillingAccountId, 'USD' AS BillingCurrency,
                 TIMESTAMPTZ '{T0}' AS BillingPeriodStart, TIMESTAMPTZ '{T0}' + INTERVAL 1 MONTH AS BillingPeriodEnd,
                 TIMESTAMPTZ '{T0}' + to_hours(h) AS ChargePeriodStart,
                 TIMESTAMPTZ '{T0}' + to_hours(h + 1) AS ChargePeriodEnd,
                 'Usage' AS ChargeCategory,
                 CAST(CASE WHEN n < {hosts} THEN 55.04 + (n % 7) * 0.013 ELSE 0.37 + (n % 11) * 0.01 END
                      AS DECIMAL(38, 10)) AS BilledCost,
                 CAST(CASE WHEN n < {hosts} THEN 31.4627 + (n % 5) * 0.0001 ELSE 0.37 + (n % 11) * 0.01 END
                      AS DECIMAL(38, 10)) AS EffectiveCost,
                 'AWS' AS ProviderName, 'Amazon EC2' AS ServiceName,
                 CASE WHEN n < {hosts} THEN 'i-' || lpad(CAST(n AS VARCHAR), 17, '0') ELSE 'vol-' || n END AS ResourceId,
                 CASE WHEN n < {hosts} THEN 'gpu-node-' || lpad(CAST(n AS VARCHAR), 4, '0') END AS ResourceName,
                 CASE WHEN n < {hosts} THEN '{{"cluster": "h100-pool"}}'
                      ELSE '{{"team": "team-' || (n % 20) || '"}}' END AS Tags
          FROM range({hours}) t(h), range({hosts} + 14) r(n)
        ) TO '{focus}' (FORMAT parquet)"""
    )
    with Ledger(f"duckdb:///{path}") as ledger:
        ingest_focus(ledger, [focus])
        ledger.con.execute(
            f"""INSERT INTO workloads (workload_id, kind, name, tags, owner, source)
                SELECT 'ml/wl-' || w, 'training_run', 'wl-' || w,
                       MAP {{'team': 'team-' || (w % 20), 'project': 'p' || (w % 60)}}, NULL, 'bench'
                FROM range({gpus * per_gpu + gpus}) t(w)"""
        )
        ledger.con.execute(
            f"""INSERT INTO gpu_samples (ts, host, gpu_uuid, gpu_index, gpu_model, mig_profile,
                  gr_engine_active, sm_active, gpu_util, namespace, pod, sample_seconds,
                  time_slice_share, source)
                SELECT TIMESTAMPTZ '{T0}' + to_minutes(m), 'gpu-node-' || lpad(CAST(g // 8 AS VARCHAR), 4, '0'),
                       'GPU-' || g, CAST(g % 8 AS INTEGER), 'NVIDIA H100 80GB HBM3',
                       CASE WHEN g % 20 = 1 THEN '3g.40gb' END,
                       CASE WHEN hash(g, m) % 10 = 0 THEN 0.0 ELSE 0.9 END, 0.8, 0.95, 'ml',
                       'wl-' || CASE WHEN p = 0 THEN g * {per_gpu} + least(m // {span}, {per_gpu - 1})
                                     ELSE {gpus * per_gpu} + g END,
                       60.0, CASE WHEN g % 10 = 0 THEN 0.5 ELSE 1.0 END, 'bench'
                FROM range({hours * 60}) t(m), range({gpus}) u(g), range(2) s(p)
                WHERE p = 0 OR g % 10 = 0"""
        )


def worker(kind: str, path: str, arg: str) -> None:
    import datetime as dt

    import duckdb

    from costline.allocation.allocate import allocate
    from costline.allocation.reports import buckets
    from costline.ledger.store import Ledger

    days, gpus = (int(x) for x in arg.split(","))
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=days)
    hosts = [f"gpu-node-{n:04d}" for n in range(gpus // 8)]
    started = time.perf_counter()
    if kind == "costline":
        with Ledger(f"duckdb:///{path}", read_only=True) as ledger:
            lines = ledger.table("cost_lines")
            samples = ledger.table("gpu_samples")
            if gpus < 1000:
                lines = lines.filter(lines.ResourceName.isin(hosts) | lines.ResourceName.isnull())
                samples = samples.filter(samples.host.isin(hosts))
            a = allocate(lines, samples, ledger.table("workloads"), start, end)
            result = buckets(a, "team")
            rows = a.rows.num_rows
            assert sum(b.amount for b in result) == a.total
    else:  # pandas, the straightforward way
        con = duckdb.connect(path, read_only=True)
        names = ", ".join(f"'{h}'" for h in hosts)
        s = con.execute(
            f"SELECT host, ts, namespace, pod, sample_seconds, time_slice_share, mig_profile, "
            f"gr_engine_active FROM gpu_samples WHERE host IN ({names})"
        ).df()
        lines = con.execute(
            f"SELECT ResourceName AS host, ChargePeriodStart, EffectiveCost FROM cost_lines "
            f"WHERE ResourceName IN ({names})"
        ).df()
        s["hour"] = s["ts"].dt.floor("h")
        weight = s["mig_profile"].str.extract(r"^(\d+)g")[0].astype(float).div(7).fillna(1.0)
        s["held"] = s["sample_seconds"] * s["time_slice_share"] * weight
        s["holder"] = s["namespace"] + "/" + s["pod"]
        held = s.groupby(["host", "hour", "holder"], as_index=False)["held"].sum()
        merged = held.merge(lines, left_on=["host", "hour"], right_on=["host", "ChargePeriodStart"])
        merged["amount"] = merged["EffectiveCost"].astype(float) * merged["held"] / (8 * 3600)
        rows = len(merged)
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
    tenth = args.gpus // 10
    results = {}
    for label, kind, gpus in (
        ("costline, all GPUs", "costline", args.gpus),
        ("costline, a tenth", "costline", tenth),
        ("pandas, a tenth", "pandas", tenth),
    ):
        # `measure` runs `--worker KIND PATH ARG`; the ledger is read-only, so ARG carries days,gpus.
        results[label] = measure(__file__, kind, path, f"{args.days},{gpus}")
    samples = args.gpus * args.days * 1440
    print(f"{'run':>20} {'GPU samples':>12} {'rows out':>10} {'seconds':>8} {'peak MiB':>9}")
    for label, r in results.items():
        n = samples if "all" in label else samples // 10
        print(
            f"{label:>20} {n:>12,} {int(r['rows']):>10,} {r['seconds']:>8.2f} {r['peak_mib']:>9,.0f}"
        )
    ratio = results["costline, a tenth"]["seconds"] / results["pandas, a tenth"]["seconds"]
    print(f"costline / pandas on a tenth: {ratio:.2f}x (pandas splits in float64 and stops there)")


if __name__ == "__main__":
    main()
