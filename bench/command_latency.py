"""Wall time of the analysis commands on the 90-day demo ledger, against `import duckdb` and SQL.

    uv run python bench/command_latency.py /path/to/demo     # a `costline demo --out` folder
    uv run python bench/command_latency.py                   # builds one (costline demo, ~3 min)

For each command: the best of three runs of the CLI in a fresh process with `--format json`
(start-up, imports, queries, models and output: what a user waits for), on a copy of the ledger
(`detect` and `budgets` store findings). In the same run, two baselines:

- `python -c 'import duckdb'`, best of three: a process that only imports the engine;
- a hand-written DuckDB query for the same answer, best of three, timed in one process from
  `duckdb.connect(ledger, read_only=True)` to the fetched rows (what each computes: `BASELINES`).
  It is the engine's part only: tags read as written (no aliases, inheritance or owners), no
  exact decimal split, no statistical model. It says how far the command is from the data's cost.

`rows()` is the section: the lead merges it into bench/cli_latency.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

PERIOD = "2026-10"  # the demo's last month (its bills end 2026-11-01)
PREVIOUS = "2026-09"


@dataclass(frozen=True)
class Baseline:
    """A hand-written query for one command's answer; `says` is what it computes."""

    says: str
    sql: Sequence[str]


def _month(period: str) -> tuple[str, str]:
    year, month = (int(x) for x in period.split("-"))
    nxt = f"{year + month // 12}-{month % 12 + 1:02d}-01"
    return f"{period}-01", nxt


def _gpu_split(period: str) -> str:
    """Each GPU line's cost split over the workloads that held its host in its hours, by
    GPU-seconds sampled, the rest of the line unheld; other lines by their team tag."""
    start, end = _month(period)
    return f"""
WITH lines AS (
  SELECT coalesce(ResourceName, ResourceId) AS host, ChargePeriodStart AS s, ChargePeriodEnd AS e,
         EffectiveCost AS cost, Tags['team'] AS team
  FROM cost_lines WHERE ChargePeriodStart >= TIMESTAMPTZ '{start}' AND ChargePeriodStart < TIMESTAMPTZ '{end}'),
held AS (
  SELECT host, date_trunc('hour', ts) AS hour, coalesce(namespace || '/' || pod, job_id) AS holder,
         sum(sample_seconds * coalesce(time_slice_share, 1)) AS secs,
         count(DISTINCT coalesce(gpu_uuid, gpu_index::VARCHAR)) AS gpus
  FROM gpu_samples WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}' GROUP BY ALL),
hosts AS (SELECT host, max(gpus) AS gpus FROM held GROUP BY host),
share AS (
  SELECT l.host, l.s, h.holder, sum(h.secs) AS secs
  FROM lines l JOIN held h ON h.host = l.host AND h.hour >= l.s AND h.hour < l.e GROUP BY ALL),
capacity AS (
  SELECT l.host, l.s, epoch(l.e - l.s) * g.gpus AS secs FROM lines l JOIN hosts g USING (host)),
gpu AS (
  SELECT coalesce(w.team, w.tags['team'], '__unallocated__') AS team,
         sum(l.cost * sh.secs / c.secs) AS cost
  FROM lines l JOIN share sh USING (host, s) JOIN capacity c USING (host, s)
  LEFT JOIN workloads w ON w.workload_id = sh.holder GROUP BY 1),
other AS (SELECT team, sum(cost) AS cost FROM lines WHERE host NOT IN (SELECT host FROM hosts) GROUP BY 1)
SELECT team, sum(cost) FROM (SELECT * FROM gpu UNION ALL SELECT * FROM other) GROUP BY team"""


def _llm(period: str) -> str:
    start, end = _month(period)
    return f"""
SELECT model, app, sum(cost_usd) / nullif(sum(requests), 0) * 1000 AS per_1k, sum(input_tokens + output_tokens)
FROM llm_requests WHERE ts >= TIMESTAMPTZ '{start}' AND ts < TIMESTAMPTZ '{end}' GROUP BY ALL"""


_SERIES = """
SELECT 'service' AS d, ServiceName AS v, ChargePeriodStart::DATE AS day, sum(EffectiveCost)::DOUBLE
FROM cost_lines WHERE ChargeCategory = 'Usage' GROUP BY ALL
UNION ALL SELECT 'team', Tags['team'], ChargePeriodStart::DATE, sum(EffectiveCost)::DOUBLE
FROM cost_lines WHERE ChargeCategory = 'Usage' GROUP BY ALL
UNION ALL SELECT 'usage_type', SkuId, ChargePeriodStart::DATE, sum(EffectiveCost)::DOUBLE
FROM cost_lines WHERE ChargeCategory = 'Usage' GROUP BY ALL"""

_CAUSES = """
WITH top AS (
  SELECT ServiceName FROM cost_lines WHERE ChargePeriodStart >= TIMESTAMPTZ '2026-10-25'
  GROUP BY 1 ORDER BY sum(EffectiveCost) DESC LIMIT 10),
d AS (SELECT *, ChargePeriodStart >= TIMESTAMPTZ '2026-10-25' AS inside FROM cost_lines
      WHERE ServiceName IN (SELECT * FROM top) AND ChargePeriodStart >= TIMESTAMPTZ '2026-09-27')
SELECT ServiceName, d, v, sum(EffectiveCost) FILTER (inside)::DOUBLE / 7
       - sum(EffectiveCost) FILTER (NOT inside)::DOUBLE / 28 AS extra
FROM (SELECT ServiceName, EffectiveCost, inside, 'account' AS d, SubAccountName AS v FROM d
      UNION ALL SELECT ServiceName, EffectiveCost, inside, 'region', RegionId FROM d
      UNION ALL SELECT ServiceName, EffectiveCost, inside, 'team', Tags['team'] FROM d
      UNION ALL SELECT ServiceName, EffectiveCost, inside, 'resource', ResourceId FROM d)
GROUP BY ALL ORDER BY extra DESC"""

_BUDGET_SPEND = """
SELECT Tags['team'] AS team, Tags['project'] AS project, Tags['workload-type'] AS workload_type,
       ChargePeriodStart::DATE AS day, sum(EffectiveCost)
FROM cost_lines GROUP BY ALL"""

_DAILY_BY_TEAM = """
SELECT Tags['team'] AS team, ChargePeriodStart::DATE AS day, sum(EffectiveCost)::DOUBLE
FROM cost_lines GROUP BY ALL ORDER BY team, day"""

BASELINES: dict[str, Baseline] = {
    "report showback": Baseline("GPU lines split by GPU-seconds held per hour, other lines by team tag; per team", [_gpu_split(PERIOD)]),
    "report chargeback": Baseline("the same split as showback", [_gpu_split(PERIOD)]),
    "report unit-costs": Baseline("the GPU split of the month and the month before, LLM cost per 1K requests by model and app of both", [_gpu_split(PERIOD), _gpu_split(PREVIOUS), _llm(PERIOD), _llm(PREVIOUS)]),
    "detect": Baseline("daily usage cost per service, team tag and SKU over 90 days; root-cause sums (4 dimensions, last week against 4 weeks before) for the 10 largest services", [_SERIES, _CAUSES]),
    "budgets": Baseline("daily cost per team, project and workload-type tag (every budget's scope and series)", [_BUDGET_SPEND]),
    "forecast": Baseline("daily cost per team tag (the series the models are fitted on)", [_DAILY_BY_TEAM]),
    "findings": Baseline("every finding's body", ["SELECT body FROM findings"]),
}  # fmt: skip

COMMANDS: dict[str, list[str]] = {
    "report showback": ["report", "showback", "--period", PERIOD],
    "report chargeback": ["report", "chargeback", "--period", PERIOD],
    "report unit-costs": ["report", "unit-costs", "--period", PERIOD],
    "detect": ["detect"],
    "budgets": ["budgets"],
    "forecast": ["forecast"],
    "findings": ["findings"],
}


def best(run: Callable[[], object], times: int = 3) -> float:
    return best_of(run, times)[0]


def best_of(run: Callable[[], object], times: int = 3) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of `times` runs. CPU is this process's and its
    children's user + system time (all DuckDB threads): on a shared machine it moves less than
    wall time does when others load the cores."""
    out = []
    for _ in range(times):
        before = _cpu()
        t = time.perf_counter()
        run()
        out.append((time.perf_counter() - t, _cpu() - before))
    return min(out)


def _cpu() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _subprocess(args: Sequence[str], env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")

    return run


def _sql(ledger: Path, statements: Sequence[str]) -> Callable[[], None]:
    def run() -> None:
        con = duckdb.connect(str(ledger), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'").fetchall()
            for sql in statements:
                con.execute(sql).fetchall()
        finally:
            con.close()

    return run


def costline_exe() -> list[str]:
    found = shutil.which("costline", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "costline"]


def rows(demo: Path, times: int = 3) -> list[dict[str, object]]:
    """One row per command: seconds (best of `times`), the `import duckdb` process and the SQL
    baseline (best of `times`), and the ratios. Runs on a copy of `demo` (a demo folder)."""
    with tempfile.TemporaryDirectory(prefix="command-latency-") as tmp:
        work = Path(tmp)
        shutil.copy(demo / "ledger.duckdb", work / "ledger.duckdb")
        shutil.copy(demo / "costline.yaml", work / "costline.yaml")
        ledger = work / "ledger.duckdb"
        # Bytecode is written and read (a user's shell may say PYTHONDONTWRITEBYTECODE): the best
        # of `times` runs is then a run with the installed package's bytecode cached.
        plain = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {**plain, "COSTLINE_LEDGER": f"duckdb:///{ledger}",
               "COSTLINE_CONFIG": str(work / "costline.yaml")}  # fmt: skip
        importing, importing_cpu = best_of(
            _subprocess([sys.executable, "-c", "import duckdb"]), times
        )
        out: list[dict[str, object]] = []
        for name, args in COMMANDS.items():
            command = [*costline_exe(), *args, "--format", "json"]
            seconds, cpu = best_of(_subprocess(command, env), times)
            baseline = BASELINES[name]
            sql, sql_cpu = best_of(_sql(ledger, baseline.sql), times)
            out.append({
                "command": f"costline {name}",
                "seconds": round(seconds, 3),
                "import_duckdb_s": round(importing, 3),
                "x_import_duckdb": round(seconds / importing, 1),
                "sql_s": round(sql, 3),
                "x_sql": round(seconds / sql, 1),
                "cpu_s": round(cpu, 3),
                "import_duckdb_cpu_s": round(importing_cpu, 3),
                "sql_cpu_s": round(sql_cpu, 3),
                "sql_computes": baseline.says,
            })  # fmt: skip
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", nargs="?", type=Path, help="a `costline demo --out` folder")
    parser.add_argument("--times", type=int, default=3, help="runs per figure (best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="command-latency-demo-") as tmp:
        demo = args.demo
        if demo is None:
            demo = Path(tmp) / "demo"
            subprocess.run([*costline_exe(), "demo", "--out", str(demo), "--days", "90"],
                           check=True, capture_output=True)  # fmt: skip
        table = rows(demo, args.times)
    print(f"{'command':<30} {'seconds':>8} {'x import duckdb':>16} {'SQL s':>7} {'x SQL':>6}"
          f" {'CPU s':>7} {'SQL CPU s':>10}")  # fmt: skip
    for r in table:
        print(f"{r['command']:<30} {r['seconds']:>8.2f} {r['x_import_duckdb']:>16.1f} "
              f"{r['sql_s']:>7.3f} {r['x_sql']:>6.1f} {r['cpu_s']:>7.2f} {r['sql_cpu_s']:>10.3f}")  # fmt: skip
    print(f"import duckdb: {table[0]['import_duckdb_s']:.3f} s, CPU "
          f"{table[0]['import_duckdb_cpu_s']:.3f} s (best of {args.times})")  # fmt: skip
    for r in table:
        print(f"- {r['command']}: SQL baseline = {r['sql_computes']}")


if __name__ == "__main__":
    main()
