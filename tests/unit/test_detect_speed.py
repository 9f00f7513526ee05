"""What a daily detection run asks of the engine, on a generated scenario replayed day by day as
the scorer replays it (`costline.demo.scoring`): the cost lines derived once, every query's SQL
compiled once and reused on later days, queries that do not grow with the incidents, each ledger
table's schema read once, and the run's findings stored in a fixed number of statements. Each
with the same findings as before: `bench/detect_quality.py` checks that on the held-out seeds."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costline.clock import FixedClock
from costline.config import Config, load_config
from costline.demo.scenario import Scenario, generate
from costline.demo.scoring import ingest, visible_until
from costline.detect.daily import detect_all
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.model import Finding

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path]:
    root = tmp_path_factory.mktemp("speed")
    s = generate(21, root / "21", shape="steady")
    with Ledger(f"duckdb://{root / 'ledger.duckdb'}") as ledger:
        ingest(ledger, s.root)
    return s, root / "ledger.duckdb"


@pytest.fixture
def ledger(scenario: tuple[Scenario, Path]) -> Iterator[Ledger]:
    with Ledger(f"duckdb://{scenario[1]}") as opened:
        yield opened


def _end(s: Scenario, day: int) -> dt.datetime:
    truth = json.loads(s.ground_truth.read_text())
    start = dt.datetime.fromisoformat(truth["window"]["start"].replace("Z", "+00:00"))
    return start + (day + 1) * DAY


def _run(ledger: Ledger, config: Config, end: dt.datetime) -> list[Finding]:
    with visible_until(ledger, end):
        return detect_all(ledger, config, end=end, clock=FixedClock(end))


@contextlib.contextmanager
def statements(ledger: Ledger) -> Iterator[list[str]]:
    """The statements DuckDB runs on the ledger's connection meanwhile (its query log)."""
    ledger.con.execute("CALL enable_logging('QueryLog')").fetchall()
    ledger.con.execute("CALL truncate_duckdb_logs()").fetchall()
    seen: list[str] = []
    try:
        yield seen
    finally:
        rows = ledger.con.execute(
            "SELECT message FROM duckdb_logs() WHERE type = 'QueryLog'"
        ).fetchall()
        ledger.con.execute("CALL disable_logging()").fetchall()
        seen += [r[0] for r in rows]


def test_a_daily_run_derives_the_cost_lines_once(
    scenario: tuple[Scenario, Path], ledger: Ledger
) -> None:
    """Spend anomalies, their root causes and names, and zombies all read one table of daily
    sums: the cost lines (a view over their parts, derived through the tag rules) are read by
    one statement of the run (it read them three times: spend, names, zombies)."""
    s, _ = scenario
    config = load_config(s.root / "costline.yaml")
    end = _end(s, 80)
    ledger.table("cost_lines")  # the currency check of the reporting view is the ledger's
    with visible_until(ledger, end), statements(ledger) as seen:
        found = detect_all(ledger, config, end=end, clock=FixedClock(end))
    reading = [q for q in seen if '"cost_lines"' in q]
    assert found and len(reading) == 1, reading
    assert reading[0].startswith("INSERT INTO temp.main.")  # kept for the run's other queries


def test_later_daily_runs_compile_only_queries_of_new_shapes_and_find_the_same(
    scenario: tuple[Scenario, Path], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After two days, a day's run compiles at most the few queries whose shape its anomalies
    change (which dimensions they are on); the rest reuse their SQL with the new dates and
    value lists. Its findings are those of a run that compiles everything afresh."""
    from costline.detect import usage_sums
    from costline.ledger import compiled

    s, _ = scenario
    config = load_config(s.root / "costline.yaml")
    kind = type(ledger.backend.compiler)
    original = kind.to_sqlglot
    asked: list[Any] = []

    def counting(self: Any, expr: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(expr)
        return original(self, expr, *args, **kwargs)

    monkeypatch.setattr(kind, "to_sqlglot", counting)
    compiled._shapes.clear()
    counts = []
    for day in (70, 71, 72, 73):
        asked.clear()
        found = _run(ledger, config, _end(s, day))
        counts.append(len(asked))
    assert counts[0] >= 15 and max(counts[2:]) <= 2, counts
    compiled._shapes.clear()
    usage_sums._DERIVED.clear()
    again = _run(ledger, config, _end(s, 73))
    assert [f.model_dump_json() for f in found] == [f.model_dump_json() for f in again]
    assert found


def test_a_runs_queries_do_not_grow_with_its_incidents(
    scenario: tuple[Scenario, Path], ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What changed around each incident (annotations) and whether successful requests rose
    with it (metrics) are one query each for all incidents (they were two per incident)."""
    s, _ = scenario
    config = load_config(s.root / "costline.yaml")
    original = fetch.arrow
    asked: list[Any] = []

    def counting(expr: Any) -> Any:
        asked.append(expr)
        return original(expr)

    monkeypatch.setattr(fetch, "arrow", counting)
    seen: list[tuple[int, int]] = []  # (spend incidents, queries) of each day
    for day in range(60, 100, 4):
        asked.clear()
        found = _run(ledger, config, _end(s, day))
        seen.append((sum(f.evidence.get("signal") == "daily_spend" for f in found), len(asked)))
    few, many = min(n for n, _ in seen if n), max(n for n, _ in seen)
    assert many >= few + 2, seen  # days with different numbers of spend incidents
    assert max(q for n, q in seen if n == many) <= max(q for n, q in seen if n == few), seen


def test_the_ledger_reads_a_tables_schema_once(
    scenario: tuple[Scenario, Path], ledger: Ledger
) -> None:
    """A table's Ibis handle is made once per connection (a DESCRIBE: 11 ms for the cost lines'
    view), storing findings in between or not."""
    first = ledger.table("metrics"), ledger.table("cost_lines")
    with statements(ledger) as seen:
        again = ledger.table("metrics"), ledger.table("cost_lines")
    ledger.write([], source="detect", findings=[])
    assert again[0] is first[0] and again[1] is first[1] and not seen, seen
    assert ledger.table("cost_lines") is first[1]


def test_a_runs_findings_are_stored_in_a_fixed_number_of_statements(
    scenario: tuple[Scenario, Path], ledger: Ledger
) -> None:
    """One read of the stored ones, one delete and one insert, whatever their number (three
    statements each, before); what is stored is what storing them one at a time stores."""
    s, _ = scenario
    config = load_config(s.root / "costline.yaml")
    runs = [_run(ledger, config, _end(s, day)) for day in (84, 85)]
    assert len(runs[0]) >= 3 and len(runs[1]) >= 3
    counts = []
    for found in runs:
        with statements(ledger) as seen:
            ledger.write([], source="detect", findings=found)
        counts.append(len(seen))
    assert counts == [5, 5], counts  # BEGIN, read, delete, insert, COMMIT
    batched = ledger.con.execute("SELECT body FROM findings ORDER BY fingerprint").fetchall()
    ledger.con.execute("DELETE FROM findings").fetchall()
    for found in runs:
        for f in found:
            ledger.write([], source="detect", findings=[f])
    single = ledger.con.execute("SELECT body FROM findings ORDER BY fingerprint").fetchall()
    assert batched == single and batched


def test_the_same_finding_twice_in_one_write_merges_as_two_writes_do(
    scenario: tuple[Scenario, Path], ledger: Ledger
) -> None:
    s, _ = scenario
    config = load_config(s.root / "costline.yaml")
    early, late = _run(ledger, config, _end(s, 84)), _run(ledger, config, _end(s, 90))
    twice = {f.fingerprint for f in early} & {f.fingerprint for f in late}
    assert twice
    ledger.con.execute("DELETE FROM findings").fetchall()
    ledger.write([], source="detect", findings=[*early, *late])
    together = ledger.con.execute("SELECT body FROM findings ORDER BY fingerprint").fetchall()
    ledger.con.execute("DELETE FROM findings").fetchall()
    ledger.write([], source="detect", findings=early)
    ledger.write([], source="detect", findings=late)
    apart = ledger.con.execute("SELECT body FROM findings ORDER BY fingerprint").fetchall()
    assert together == apart
    merged = [Finding.model_validate_json(b) for (b,) in together]
    assert any(f.first_seen < f.last_seen for f in merged if f.fingerprint in twice)


def test_a_daily_run_imports_no_pandas(scenario: tuple[Scenario, Path], tmp_path: Path) -> None:
    """0.3-0.4 s of a command's start: nothing detection does may import it (Arrow does, on
    the first array it makes from Python values)."""
    s, path = scenario
    script = (
        "import sys, datetime as dt\n"
        "from pathlib import Path\n"
        "from costline.clock import FixedClock\n"
        "from costline.config import load_config\n"
        "from costline.detect.daily import detect_all\n"
        "from costline.ledger.store import Ledger\n"
        f"end = dt.datetime.fromisoformat('{_end(s, 90).isoformat()}')\n"
        f"with Ledger('duckdb://{path}', read_only=True) as ledger:\n"
        f"    found = detect_all(ledger, load_config(Path('{s.root / 'costline.yaml'}')), end=end,\n"
        "                       clock=FixedClock(end))\n"
        "assert found and 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_deriving_only_some_columns_gives_those_of_deriving_all(
    scenario: tuple[Scenario, Path], ledger: Ledger, tmp_path: Path
) -> None:
    """Detection derives only the team, endpoint, owner and model: each equal to what deriving
    every attribution column gives, with owner rules on columns it did not ask for (the
    environment and the model, through its aliases) and on the cost domain."""
    from costline.attribution.rules import Rules, derive_lines

    (tmp_path / "costline.yaml").write_text(
        "version: 1\n"
        "models: {aliases: {mistral-large: mistral}}\n"
        "owners:\n"
        "- {name: prod-mistral, kind: team, match: {environment: [prod], model: [mistral]}}\n"
        "- {name: batch, kind: team, match: {cost_domain: [batch_ai]}}\n"
    )
    rules = Rules.from_config(load_config(tmp_path / "costline.yaml"))
    lines = ledger.table("cost_lines")
    wanted = ["team", "endpoint", "owner", "model"]
    key = ["x_ingestion_id", "ResourceId", "SkuId", "ChargePeriodStart"]
    every = derive_lines(lines, rules).select(*key, *wanted)
    some = derive_lines(lines, rules, only=wanted)
    assert "project" not in some.columns and "cost_layer" not in some.columns
    a = Counter(tuple(r.values()) for r in fetch.rows(every))
    b = Counter(tuple(r.values()) for r in fetch.rows(some.select(*key, *wanted)))
    assert a == b and sum(a.values()) > 1000
    owners = {row[6] for row in a}
    assert {"prod-mistral", "growth"} <= owners
