"""Benchmark: 20 concurrent clients on `costline serve`'s overview and spend APIs, 10M cost lines.

    uv run python bench/serve_load.py                      # 10.1M lines, 20 clients, 30 s
    uv run python bench/serve_load.py --copies 8 --seconds 10   # quick (about 1M lines)

The organization (built once under bench/out/serve_org, reused after): the demo organization
(`costline demo --days 90`, every source through its real adapter), its bills exported as FOCUS
1.2 (`costline export focus`) and ingested again `--copies - 1` times as other business units
(accounts, resources and tags' `project` suffixed; costs scaled by 0.5 to 1.5 per copy), through
the same FOCUS ingest: the ledger is the demo organization `--copies` times over.

Measured: `costline serve --no-scheduler` in its own process on 127.0.0.1; `--clients` threads,
each with its own HTTP connection, request for `--seconds` a mix of the overview, spend by team
per day, spend by service per month and spend by team filtered to one team (the team and the
month vary per request, so no response is served twice from a cache). Printed: requests, errors,
throughput, and the p50 / p95 / p99 latency per endpoint and overall, against the target (p95 at
most 300 ms); and, as the baseline, the same spend-by-team-per-day aggregate asked of DuckDB
directly (one client, `SELECT ... GROUP BY` on the ledger file), so the API's cost over the
engine's is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out" / "serve_org"
LINES_PER_COPY_HINT = 135_000


def run(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def build(copies: int) -> Path:
    """The ledger of the demo organization `copies` times over (see the module)."""
    import duckdb

    ledger = OUT / f"ledger-{copies}.duckdb"
    if ledger.exists():
        return ledger
    costline = [sys.executable, "-m", "costline"]
    started = time.perf_counter()
    if not (OUT / "org.duckdb").exists():
        shutil.rmtree(OUT / "org", ignore_errors=True)
        run(*costline, "--ledger", f"duckdb://{OUT / 'org.duckdb'}", "demo", "--out",
            str(OUT / "org"), "--days", "90", "--format", "json")  # fmt: skip
    exported = OUT / "focus-1.2.parquet"
    run(*costline, "--ledger", f"duckdb://{OUT / 'org.duckdb'}", "export", "focus", str(exported),
        "--focus-version", "1.2")  # fmt: skip
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    n = con.execute(f"SELECT count(*) FROM read_parquet('{exported}')").fetchone()[0]  # type: ignore[index]
    parts = []
    per_file = max(1, 1_500_000 // max(n, 1))
    for first in range(1, copies, per_file):
        ks = list(range(first, min(first + per_file, copies)))
        part = OUT / f"copies-{first}.parquet"
        cost_cols = [c for (c,) in con.execute(
            f"SELECT name FROM parquet_schema('{exported}') WHERE name LIKE '%Cost'").fetchall()]  # fmt: skip
        scaled = ", ".join(f"round({c}::DOUBLE * (0.5 + (k * 37 % 100) / 100.0), 10)::DECIMAL(38, 18) AS {c}"
                           for c in cost_cols)  # fmt: skip
        con.execute(f"""COPY (
            SELECT * REPLACE (
                SubAccountId || '-bu' || k AS SubAccountId,
                SubAccountName || ' BU' || k AS SubAccountName,
                ResourceId || '-bu' || k AS ResourceId,
                json_merge_patch(coalesce(Tags::VARCHAR, '{{}}'),
                                 json_object('business_unit', 'bu' || k)) AS Tags,
                {scaled})
            FROM read_parquet('{exported}'), unnest({ks}) AS u(k)
        ) TO '{part}' (FORMAT parquet)""")  # fmt: skip
        parts.append(part)
    shutil.copy(OUT / "org.duckdb", ledger)
    run(*costline, "--ledger", f"duckdb://{ledger}", "ingest", "focus", *map(str, parts),
        "--format", "json")  # fmt: skip
    lines = duckdb.connect(str(ledger), read_only=True).execute(
        "SELECT count(*) FROM cost_lines").fetchone()[0]  # type: ignore[index]  # fmt: skip
    print(f"built {ledger.name}: {lines:,} cost lines in {time.perf_counter() - started:.0f} s")
    return ledger


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(ledger: Path, port: int) -> subprocess.Popen[bytes]:
    import httpx

    env = {**os.environ, "COSTLINE_CONFIG": str(OUT / "org" / "costline.yaml")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "costline", "--ledger", f"duckdb://{ledger}", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--no-scheduler"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise SystemExit(f"costline serve exited:\n{proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
    proc.kill()
    raise SystemExit("costline serve did not answer /healthz in 120 s")


def requests_mix(
    teams: list[str], months: list[tuple[str, str]] | None, rng: random.Random
) -> tuple[str, str]:
    """One request: with `months`, a shared view (one of a few month ranges: what a team's
    dashboards ask, mostly answered from the response cache); without, a range of 7 to 30 days
    starting on any day of the window (thousands of distinct requests: nearly every one computed)."""
    import datetime as dt

    if months is not None:
        start, end = rng.choice(months)
    else:
        first = dt.date(2026, 8, 3) + dt.timedelta(days=rng.randrange(0, 84))
        start, end = str(first), str(first + dt.timedelta(days=rng.randint(7, 30)))
    team = rng.choice(teams)
    kind = rng.choice(("overview", "spend_team_day", "spend_service_month", "spend_filtered"))
    path = {
        "overview": f"/api/v1/overview?start={start}&end={end}",
        "spend_team_day": f"/api/v1/spend?by=team&granularity=day&start={start}&end={end}",
        "spend_service_month": f"/api/v1/spend?by=service&granularity=month&start={start}&end={end}",
        "spend_filtered": f"/api/v1/spend?by=service&granularity=day&team={team}&start={start}&end={end}",
    }[kind]
    return kind, path


def load(
    port: int, clients: int, seconds: float, teams: list[str], months: list[tuple[str, str]]
) -> dict[str, Any]:
    import httpx

    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while time.perf_counter() < stop_at:
                kind, path = requests_mix(teams, months, rng)
                t0 = time.perf_counter()
                try:
                    r = http.get(path)
                    ok = r.status_code == 200
                    detail = f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                took = time.perf_counter() - t0
                with lock:
                    latencies.setdefault(kind, []).append(took)
                    if not ok:
                        errors.append(f"{path}: {detail}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    everything = [x for v in latencies.values() for x in v]
    return {"wall": wall, "latencies": latencies, "all": everything, "errors": errors}


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000
        if len(values) > 1
        else values[0] * 1000
    )


def baseline(ledger: Path, months: list[tuple[str, str]], repeats: int = 10) -> float:
    """p95 ms of DuckDB's own spend-by-team-per-day aggregate on the same ledger, one client."""
    import duckdb

    con = duckdb.connect(str(ledger), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    times = []
    for i in range(repeats):
        start, end = months[i % len(months)]
        t0 = time.perf_counter()
        con.execute(
            "SELECT Tags['team'] AS team, date_trunc('day', ChargePeriodStart) AS day, "
            "sum(EffectiveCost) FROM cost_lines WHERE ChargePeriodStart >= ?::TIMESTAMPTZ "
            "AND ChargePeriodStart < ?::TIMESTAMPTZ GROUP BY ALL",
            [start, end],
        ).fetchall()
        times.append(time.perf_counter() - t0)
    return pct(times, 95)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--copies", type=int, default=85, help="the demo organization this many times")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    import duckdb

    ledger = build(args.copies)
    con = duckdb.connect(str(ledger), read_only=True)
    lines = con.execute("SELECT count(*) FROM cost_lines").fetchone()[0]  # type: ignore[index]
    teams = [t for (t,) in con.execute(
        "SELECT DISTINCT Tags['team'] FROM cost_lines WHERE Tags['team'] IS NOT NULL").fetchall()]  # fmt: skip
    con.close()
    months = [("2026-08-03", "2026-09-01"), ("2026-09-01", "2026-10-01"), ("2026-10-01", "2026-11-01"),
              ("2026-10-15", "2026-11-01")]  # fmt: skip
    base = baseline(ledger, months)
    port = free_port()
    proc = serve(ledger, port)
    try:
        load(port, 2, 3, teams, months)  # warm-up: first queries, imports
        distinct = load(port, args.clients, args.seconds, teams, None)
        shared = load(port, args.clients, args.seconds, teams, months)
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"ledger: {lines:,} cost lines ({args.copies} x the demo organization); "
          f"{args.clients} clients for {args.seconds:.0f} s per phase")  # fmt: skip
    summary: dict[str, Any] = {"lines": lines, "clients": args.clients}
    for name, result in (("distinct ranges (computed)", distinct), ("shared views", shared)):
        n = len(result["all"])
        print(f"\n{name}: {n:,} requests ({n / result['wall']:.1f}/s), "
              f"errors: {len(result['errors'])}")  # fmt: skip
        for e in result["errors"][:5]:
            print("  error:", e)
        print(f"{'endpoint':<22}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
        for kind, values in sorted(result["latencies"].items()):
            print(f"{kind:<22}{len(values):>7}{pct(values, 50):>9.0f}{pct(values, 95):>9.0f}"
                  f"{pct(values, 99):>9.0f}")  # fmt: skip
        p95 = pct(result["all"], 95)
        print(f"{'all':<22}{n:>7}{pct(result['all'], 50):>9.0f}{p95:>9.0f}"
              f"{pct(result['all'], 99):>9.0f}")  # fmt: skip
        print(f"target p95 <= 300 ms: {'met' if p95 <= 300 else 'NOT met'}")
        summary[name.split(" ")[0] + "_p95_ms"] = round(p95, 1)
    print(f"\nbaseline: DuckDB's own spend-by-team-per-day on the ledger, one client, no server: "
          f"p95 {base:.0f} ms")  # fmt: skip
    summary["baseline_p95_ms"] = round(base, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
