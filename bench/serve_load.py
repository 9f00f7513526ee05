"""Benchmark: `costline serve` under 20 concurrent clients, every GET endpoint of /api/v1.

    uv run python bench/serve_load.py --ledger /path/demo/ledger.duckdb --config /path/demo/costline.yaml
    uv run python bench/serve_load.py                      # 10.1M lines, 20 clients, 30 s
    uv run python bench/serve_load.py --copies 8 --seconds 10   # quick (about 1M lines)

The ledger: with `--ledger`, a copy of that ledger (the 90-day demo: `costline demo --days 90`);
else the organization built once under bench/out/serve_org: the demo organization
(`costline demo --days 90`, every source through its real adapter), its bills exported as FOCUS
1.2 (`costline export focus`) and ingested again `--copies - 1` times as other business units
(accounts, resources and tags' `project` suffixed; costs scaled by 0.5 to 1.5 per copy), through
the same FOCUS ingest: the ledger is the demo organization `--copies` times over.

Measured: `costline serve --no-scheduler` in its own process on 127.0.0.1.
- **Start-up**: from the process's start to the dashboard's first page (`/`) answering 200, and
  to the overview API answering 200.
- **Every GET endpoint**, first asked once each (cold: what the first visitor of each view
  waits), then `--clients` threads, each with its own HTTP connection and no think time, for
  `--seconds` ask a mix of every endpoint with the dashboard's parameters over the default window
  and each month of the data (the shared views a team's dashboards ask). Printed: p50 / p95 / p99
  and errors per endpoint and overall, against the target (p95 at most 300 ms each).
- **Distinct ranges**: the cost endpoints (overview, spend) over windows of 7 to 30 days starting
  on any day (nearly every request computed, not cached).
Baseline: the same spend-by-team-per-day aggregate asked of DuckDB directly (one client, `SELECT
... GROUP BY` on the ledger file), so the API's cost over the engine's is visible.
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


def serve(
    ledger: Path, port: int, config: Path
) -> tuple[subprocess.Popen[bytes], dict[str, float]]:
    """`costline serve` on the ledger, and the seconds from its start to its first page's 200 and
    to the overview API's 200."""
    env = {**os.environ, "COSTLINE_CONFIG": str(config)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "costline", "--ledger", f"duckdb://{ledger}", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--no-scheduler", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    times = {}
    for name, path in (("first_page_s", "/"), ("overview_s", "/api/v1/overview")):
        answered = first_answer(proc, port, path)
        times[name] = round(answered - started, 2)
    return proc, times


def first_answer(proc: subprocess.Popen[bytes], port: int, path: str) -> float:
    """When `path` first answered 200 (perf_counter), asking again as soon as refused."""
    import httpx

    deadline = time.perf_counter() + 600
    # One client for all the tries: making one per try (an SSL context each) would take the CPU
    # the starting server needs.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
        while time.perf_counter() < deadline:
            try:
                if http.get(path).status_code == 200:
                    return time.perf_counter()
            except httpx.HTTPError:
                time.sleep(0.01)
            if proc.poll() is not None:
                raise SystemExit(f"costline serve exited:\n{proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
    proc.kill()
    raise SystemExit(f"costline serve did not answer {path} in 600 s")


def every_endpoint(
    windows: list[tuple[str, str] | None], team: str, fingerprint: str | None
) -> list[tuple[str, str]]:
    """(endpoint, path) of every GET endpoint of /api/v1, with the dashboard's parameters, over
    each window (None: the default one, the month of the last bill)."""
    once = [("health", "/api/v1/health"), ("whoami", "/api/v1/whoami"),
            ("config", "/api/v1/config"), ("openapi.json", "/api/v1/openapi.json"),
            ("docs", "/api/v1/docs"), ("findings", "/api/v1/findings?status=open")]  # fmt: skip
    if fingerprint is not None:
        once.append(("findings/{fingerprint}", f"/api/v1/findings/{fingerprint}"))
    per_window = [
        ("meta/dimensions", ""), ("overview", ""), ("spend", "by=team&top=11"),
        ("spend", "by=model&top=11"), ("spend", "by=service&granularity=month"),
        ("spend", f"by=service&team={team}"), ("showback", ""), ("chargeback", ""),
        ("unit-costs", ""), ("budgets", ""), ("forecast", ""), ("gpu/utilization", "by=pool"),
        ("gpu/idle", ""), ("tokens", "by=model"), ("annotations", ""),
    ]  # fmt: skip
    paths = list(once)
    for window in windows:
        dates = f"start={window[0]}&end={window[1]}" if window else ""
        for endpoint, params in per_window:
            query = "&".join(q for q in (params, dates) if q)
            paths.append((endpoint, f"/api/v1/{endpoint}{'?' + query if query else ''}"))
    return paths


def distinct_ranges(
    teams: list[str], first_day: str, days: int, rng: random.Random
) -> tuple[str, str]:
    """One cost request over a range of 7 to 30 days starting on any day of the data (thousands
    of distinct requests: nearly every one computed)."""
    import datetime as dt

    first = dt.date.fromisoformat(first_day) + dt.timedelta(days=rng.randrange(0, max(days - 7, 1)))
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


def cold(port: int, paths: list[tuple[str, str]]) -> dict[str, float]:
    """Each path asked once, one after another: the slowest first answer per endpoint (ms)."""
    import httpx

    slowest: dict[str, float] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
        for endpoint, path in paths:
            t0 = time.perf_counter()
            r = http.get(path)
            took = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                print(f"  cold error: {path}: {r.status_code} {r.text[:200]}")
            slowest[endpoint] = max(slowest.get(endpoint, 0.0), took)
    return slowest


def load(port: int, clients: int, seconds: float, pick: Any) -> dict[str, Any]:
    """`clients` threads asking `pick(rng)`'s (endpoint, path) for `seconds`, no think time."""
    import httpx

    latencies: dict[str, list[float]] = {}
    errors: dict[str, list[str]] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            while time.perf_counter() < stop_at:
                kind, path = pick(rng)
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
                        errors.setdefault(kind, []).append(f"{path}: {detail}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    everything = [x for v in latencies.values() for x in v]
    return {"wall": wall, "latencies": latencies, "all": everything, "errors": errors}


def pct(values: list[float], q: int) -> float:
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
    p.add_argument("--ledger", type=Path, help="a ledger to copy and serve (else built)")
    p.add_argument("--config", type=Path, help="its costline.yaml (with --ledger)")
    p.add_argument("--copies", type=int, default=85, help="the demo organization this many times")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="serve-load-") as scratch:
        if args.ledger is not None:
            ledger = Path(scratch) / "ledger.duckdb"
            shutil.copyfile(args.ledger, ledger)
            config = args.config or args.ledger.parent / "costline.yaml"
        else:
            ledger, config = build(args.copies), OUT / "org" / "costline.yaml"
        con = duckdb.connect(str(ledger), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        lines, first, last = con.execute(
            "SELECT count(*), min(ChargePeriodStart)::DATE, max(ChargePeriodStart)::DATE "
            "FROM cost_lines").fetchone()  # type: ignore[misc]  # fmt: skip
        teams = [t for (t,) in con.execute(
            "SELECT DISTINCT Tags['team'] FROM cost_lines WHERE Tags['team'] IS NOT NULL").fetchall()]  # fmt: skip
        months = [(str(a), str(b)) for a, b in con.execute(
            "SELECT DISTINCT date_trunc('month', ChargePeriodStart)::DATE AS m, "
            "(date_trunc('month', ChargePeriodStart) + INTERVAL 1 MONTH)::DATE FROM cost_lines "
            "ORDER BY m").fetchall()]  # fmt: skip
        found = con.execute("SELECT min(fingerprint) FROM findings").fetchone()
        con.close()
        base = baseline(ledger, months)
        port = free_port()
        proc, startup = serve(ledger, port, config)
        paths = every_endpoint([None, *months], sorted(teams)[0], found[0] if found else None)
        try:
            first_answers = cold(port, paths)
            shared = load(port, args.clients, args.seconds, lambda rng: rng.choice(paths))
            days = (last - first).days + 1
            distinct = load(port, args.clients, args.seconds,
                            lambda rng: distinct_ranges(teams, str(first), days, rng))  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(60)
    report(lines, args, startup, first_answers, shared, distinct, base)


def report(
    lines: int,
    args: argparse.Namespace,
    startup: dict[str, float],
    first_answers: dict[str, float],
    shared: dict[str, Any],
    distinct: dict[str, Any],
    base: float,
) -> None:
    print(f"ledger: {lines:,} cost lines; {args.clients} clients for {args.seconds:.0f} s a phase")
    print(f"start-up: first page (/) 200 after {startup['first_page_s']:.2f} s, overview API 200 "
          f"after {startup['overview_s']:.2f} s (target: first page within 1 s)")  # fmt: skip
    summary: dict[str, Any] = {"lines": lines, "clients": args.clients, **startup}
    for name, result in (("every endpoint, dashboard views", shared),
                         ("distinct ranges (computed)", distinct)):  # fmt: skip
        n = len(result["all"])
        errors = sum(len(v) for v in result["errors"].values())
        print(f"\n{name}: {n:,} requests ({n / result['wall']:.1f}/s), errors: {errors}")
        for kind, found in result["errors"].items():
            for e in found[:2]:
                print(f"  error ({kind}):", e)
        print(f"{'endpoint':<24}{'n':>7}{'cold ms':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
              f"{'errors':>8}")  # fmt: skip
        worst = 0.0
        for kind, values in sorted(result["latencies"].items()):
            p95 = pct(values, 95)
            worst = max(worst, p95)
            first = first_answers.get(kind) if result is shared else None
            print(f"{kind:<24}{len(values):>7}{first if first is not None else float('nan'):>9.0f}"
                  f"{pct(values, 50):>9.0f}{p95:>9.0f}{pct(values, 99):>9.0f}"
                  f"{len(result['errors'].get(kind, ())):>8}")  # fmt: skip
        print(f"{'all':<24}{n:>7}{'':>9}{pct(result['all'], 50):>9.0f}"
              f"{pct(result['all'], 95):>9.0f}{pct(result['all'], 99):>9.0f}{errors:>8}")  # fmt: skip
        print(f"target p95 <= 300 ms on every endpoint: {'met' if worst <= 300 else 'NOT met'}")
        summary[name.split(" ")[0] + "_worst_p95_ms"] = round(worst, 1)
        summary[name.split(" ")[0] + "_errors"] = errors
    print(f"\nbaseline: DuckDB's own spend-by-team-per-day on the ledger, one client, no server: "
          f"p95 {base:.0f} ms")  # fmt: skip
    summary["baseline_p95_ms"] = round(base, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
