"""The ledger's guarantees: schema and migrations, crash safety, read-only SQL, FOCUS export."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costline import schema
from costline.errors import LedgerError
from costline.export import export_focus
from costline.ledger import migrations
from costline.ledger.readonly import check_read_only, run_sql
from costline.ledger.store import Ledger, ledger_path
from costline.pipeline import ingest_focus
from tests.helpers import FOCUS_SAMPLE, SPEC_EXAMPLES, snapshot


def test_every_design_table_exists_with_its_types(ledger: Ledger) -> None:
    for name, table_schema in schema.tables().items():
        assert dict(ledger.table(name).schema().items()) == dict(table_schema.items()), name
    lines = ledger.table("cost_lines").schema()
    assert str(lines["BilledCost"]) == "decimal(38, 18)"
    assert lines["Tags"].is_map()
    assert (
        lines["ChargePeriodStart"].is_timestamp() and lines["ChargePeriodStart"].timezone == "UTC"
    )
    focus_12 = [c.name for c in schema.focus_columns_of("1.2")]
    assert len(focus_12) == 57 and all(c in lines for c in focus_12)
    assert {"ServiceProviderName", "HostProviderName", "AllocatedMethodId"} <= set(lines)
    assert ledger.schema_version() == migrations.LATEST


def test_migrations_apply_once_and_refuse_a_newer_ledger(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    Ledger(url).close()
    con = duckdb.connect(str(tmp_path / "l.duckdb"))
    assert migrations.migrate(con) == []  # already current
    step = migrations.LATEST + 1
    extra = [
        *migrations.MIGRATIONS,
        (step, "test step", lambda c: c.execute("CREATE TABLE t2 (x INT)")),
    ]
    assert migrations.migrate(con, extra) == [step]
    con.execute("INSERT INTO schema_version (version, description) VALUES (99, 'future')")
    con.close()
    with pytest.raises(LedgerError, match="newer than this costline"):
        Ledger(url)


def test_v2_drops_the_stored_attribution_columns_of_gpu_samples_and_keeps_the_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.duckdb"
    con = duckdb.connect(str(path))
    assert migrations.migrate(con, migrations.MIGRATIONS[:1]) == [1]
    for name in schema.ATTRIBUTION_COLUMNS:  # as version 1 created them
        con.execute(f'ALTER TABLE gpu_samples ADD COLUMN "{name}" VARCHAR')
    con.execute(
        "INSERT INTO gpu_samples (ts, gpu_uuid, pod) VALUES ('2026-10-01T00:00:00Z', 'GPU-1', 'p')"
    )
    con.close()
    with Ledger(f"duckdb:///{path}") as led:
        assert dict(led.table("gpu_samples").schema().items()) == dict(schema.GPU_SAMPLES.items())
        assert led.con.execute("SELECT gpu_uuid, pod FROM gpu_samples").fetchall() == [
            ("GPU-1", "p")
        ]
        assert led.schema_version() == migrations.LATEST


def _v2_ledger(path: Path) -> None:
    """A ledger as costline wrote it at schema version 2 (before llm_requests.output_cost_usd)."""
    con = duckdb.connect(str(path))
    migrations.migrate(con, migrations.MIGRATIONS[:2])
    con.execute("ALTER TABLE llm_requests DROP COLUMN output_cost_usd")
    con.close()


def test_a_report_upgrades_an_older_ledger_then_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    _v2_ledger(path)
    with Ledger(f"duckdb:///{path}", read_only=True) as led:
        assert led.schema_version() == migrations.LATEST
        assert "output_cost_usd" in led.table("llm_requests").schema()


def test_an_older_ledger_held_open_by_another_process_names_costline_migrate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.duckdb"
    _v2_ledger(path)
    holder = subprocess.Popen(  # another report reading it: a shared lock, so no writer gets in
        [sys.executable, "-c",
         f"import duckdb,sys; c=duckdb.connect({str(path)!r}, read_only=True); "
         "print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LedgerError, match="run `costline migrate`"):
            Ledger(f"duckdb:///{path}", read_only=True)
    finally:
        holder.communicate("", timeout=30)
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb:///{path}"}
    proc = subprocess.run([sys.executable, "-m", "costline", "migrate"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"schema version {migrations.LATEST}" in proc.stdout


def test_ledger_urls() -> None:
    assert ledger_path("duckdb:///abs/l.duckdb") == "/abs/l.duckdb"
    assert ledger_path("duckdb://.costline/ledger.duckdb") == ".costline/ledger.duckdb"
    with pytest.raises(LedgerError, match="only duckdb"):
        ledger_path("bigquery://project/dataset")


@pytest.mark.parametrize("point", ["ingest.after_insert", "ingest.before_commit"])
def test_kill_mid_ingest_leaves_the_ledger_as_it_was(tmp_path: Path, point: str) -> None:
    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    with Ledger(url) as led:
        ingest_focus(led, [SPEC_EXAMPLES])
        before = snapshot(led)
    env = {**os.environ, "COSTLINE_LEDGER": url, "COSTLINE_FAULT": point}
    proc = subprocess.run(
        [sys.executable, "-m", "costline", "ingest", "focus", str(FOCUS_SAMPLE), "-f", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr  # SIGKILL, mid-transaction
    with Ledger(url) as led:
        assert snapshot(led) == before
        # ...and the same file loads normally afterwards.
        assert ingest_focus(led, [FOCUS_SAMPLE]).rows == 1000


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM cost_lines",
        "INSERT INTO findings (kind) VALUES ('x')",
        "COPY cost_lines TO '/tmp/out.csv'",
        "ATTACH '/tmp/other.duckdb'",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DROP TABLE cost_lines",
        "SET enable_external_access = true",
    ],
)
def test_sql_refuses_statements_that_write(sql: str) -> None:
    with pytest.raises(LedgerError, match="refused"):
        check_read_only(sql)


def test_sql_reads_and_cannot_touch_files(ledger: Ledger) -> None:
    ingest_focus(ledger, [FOCUS_SAMPLE])
    url, path = ledger.url, ledger.path
    ledger.close()
    table = run_sql(
        url, "SELECT ProviderName, sum(BilledCost) AS billed FROM cost_lines GROUP BY 1 ORDER BY 1"
    )
    assert table.column("ProviderName").to_pylist() == ["AWS", "Microsoft", "Oracle"]
    assert sum(table.column("billed").to_pylist(), Decimal(0)) == Decimal("20.52022672899")
    with pytest.raises(LedgerError, match="disabled"):
        run_sql(url, f"SELECT * FROM read_csv('{FOCUS_SAMPLE}')")
    assert Path(path).exists()


def _totals(led: Ledger) -> list[tuple[object, ...]]:
    return led.con.execute(
        "SELECT BillingPeriodStart, ProviderName, ServiceName, count(*), sum(BilledCost), "
        "sum(EffectiveCost), sum(ListCost), sum(ContractedCost) FROM cost_lines "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()


@pytest.mark.parametrize("out_name", ["focus.parquet", "focus.csv"])
def test_export_then_ingest_again_gives_identical_totals(tmp_path: Path, out_name: str) -> None:
    with Ledger(f"duckdb:///{tmp_path / 'a.duckdb'}") as first:
        ingest_focus(first, [FOCUS_SAMPLE, SPEC_EXAMPLES])
        result = export_focus(first, tmp_path / out_name, focus_version="1.2")
        expected = _totals(first)
        tags = first.con.execute("SELECT sum(cardinality(Tags)) FROM cost_lines").fetchone()
    assert result.rows == 1081
    with Ledger(f"duckdb:///{tmp_path / 'b.duckdb'}") as second:
        summary = ingest_focus(second, [tmp_path / out_name])
        assert summary.files[0].focus_version == "1.2"
        assert _totals(second) == expected
        assert (
            second.con.execute("SELECT sum(cardinality(Tags)) FROM cost_lines").fetchone() == tags
        )
        # The sample's non-FOCUS `Id` column went out as `x_Id` and came back.
        assert second.con.execute("SELECT count(x_extra['x_Id']) FROM cost_lines").fetchone() == (
            1000,
        )


def test_export_refuses_unknown_version(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"focus-version 0\.9"):
        export_focus(ledger, tmp_path / "x.parquet", focus_version="0.9")
