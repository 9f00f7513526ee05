"""Many files in one ledger: shape tables, restatement and idempotency, crash safety, migration.

Each ingested file is a part of the table of its shape (its set of columns), so the ledger's
tables do not multiply with the files (`costline.ledger.parts`, issue 14).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from ibis.backends.sql.datatypes import DuckDBType

from costline import schema
from costline.errors import IngestError
from costline.ledger import migrations, parts
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from tests.helpers import FOCUS_ROW, snapshot

COLUMNS = [*FOCUS_ROW, "BilledCost", "EffectiveCost"]


def _file(path: Path, account: str, costs: list[str], *, extra: dict[str, str] | None = None,
          drop: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """A FOCUS CSV of one billing account's October, one line per cost."""
    cols = [c for c in [*COLUMNS, *(extra or {})] if c not in drop]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for cost in costs:
            w.writerow({**FOCUS_ROW, **(extra or {}), "BillingAccountId": account,
                        "BilledCost": cost, "EffectiveCost": cost})  # fmt: skip
    return path


def _objects(led: Ledger) -> list[str]:
    rows = led.con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary "
        "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() "
        "WHERE NOT internal AND NOT temporary ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _by_account(led: Ledger) -> dict[str, tuple[int, Decimal]]:
    rows = led.con.execute(
        "SELECT BillingAccountId, count(*), sum(BilledCost) FROM cost_lines GROUP BY 1"
    ).fetchall()
    return {a: (int(n), s) for a, n, s in rows}


def _costs(i: int) -> list[str]:
    return [f"{i}.25", f"{i + 1}.5", "0.125", f"{2 * i}"]


@pytest.fixture
def many(ledger: Ledger, tmp_path: Path) -> tuple[Ledger, list[Path]]:
    """Twelve files ingested one by one, one billing account each."""
    files = [_file(tmp_path / f"acct-{i}.csv", f"acct-{i}", _costs(i)) for i in range(12)]
    for f in files:
        assert ingest_focus(ledger, [f]).rows == 4
    return ledger, files


def _expected(*, without: tuple[int, ...] = ()) -> dict[str, tuple[int, Decimal]]:
    return {f"acct-{i}": (4, sum((Decimal(c) for c in _costs(i)), Decimal(0)))
            for i in range(12) if i not in without}  # fmt: skip


def test_files_of_one_shape_share_one_table(ledger: Ledger, tmp_path: Path) -> None:
    ingest_focus(ledger, [_file(tmp_path / "a.csv", "acct-a", ["1"])])
    after_one = _objects(ledger)
    for i in range(10):
        ingest_focus(ledger, [_file(tmp_path / f"f{i}.csv", f"acct-{i}", ["2", "3"])])
    assert _objects(ledger) == after_one  # no table or view per file
    assert [name for name, _ in parts.shapes(ledger.con)] == ["parts.cost_lines_shape_001"]
    assert ledger.con.execute("SELECT count(*), sum(BilledCost) FROM cost_lines").fetchall() == [
        (21, Decimal(51))
    ]
    # A file with other columns gets a table of its shape; a later one of that shape shares it.
    ingest_focus(ledger, [_file(tmp_path / "r1.csv", "acct-r", ["4"], extra={"RegionId": "eu"})])
    ingest_focus(ledger, [_file(tmp_path / "r2.csv", "acct-s", ["5"], extra={"RegionId": "us"})])
    assert len(_objects(ledger)) == len(after_one) + 1
    assert ledger.con.execute(
        "SELECT RegionId, sum(BilledCost) FROM cost_lines GROUP BY 1 ORDER BY 1 NULLS FIRST"
    ).fetchall() == [(None, Decimal(51)), ("eu", Decimal(4)), ("us", Decimal(5))]


def test_restatement_among_many_files_replaces_only_its_key(
    many: tuple[Ledger, list[Path]], tmp_path: Path
) -> None:
    led, _ = many
    summary = ingest_focus(led, [_file(tmp_path / "acct-5-v2.csv", "acct-5", ["7", "8", "9"])])
    assert [(r.billing_account_id, r.replaced_rows) for r in summary.restated] == [("acct-5", 4)]
    assert _by_account(led) == {**_expected(), "acct-5": (3, Decimal(24))}
    # Restated again: the second version's rows go, and only they.
    summary = ingest_focus(led, [_file(tmp_path / "acct-5-v3.csv", "acct-5", ["10", "11"])])
    assert [(r.billing_account_id, r.replaced_rows) for r in summary.restated] == [("acct-5", 3)]
    # A restatement in another shape (RegionId added, no EffectiveCost) replaces across tables.
    v2 = _file(tmp_path / "acct-7-v2.csv", "acct-7", ["30", "40"], extra={"RegionId": "eu"},
               drop=("EffectiveCost",))  # fmt: skip
    summary = ingest_focus(led, [v2])
    assert [(r.billing_account_id, r.replaced_rows) for r in summary.restated] == [("acct-7", 4)]
    want = {**_expected(), "acct-5": (2, Decimal(21)), "acct-7": (2, Decimal(70))}
    assert _by_account(led) == want
    # Files whose rows were all replaced leave the part registry; the others stay.
    assert led.con.execute(f"SELECT count(*) FROM {parts.REGISTRY}").fetchall() == [(12,)]
    assert led.con.execute(f"SELECT sum(n), sum(cost) FROM {parts.KEYS}").fetchall() == [
        (sum(n for n, _ in want.values()), sum(c for _, c in want.values()))
    ]


def test_many_files_ingested_again_change_nothing(
    many: tuple[Ledger, list[Path]], tmp_path: Path
) -> None:
    led, files = many
    ingest_focus(led, [_file(tmp_path / "acct-3-v2.csv", "acct-3", ["5", "5", "5"])])
    before, objects = snapshot(led), _objects(led)
    registry = led.con.execute(f"SELECT * FROM {parts.REGISTRY} ORDER BY seq").fetchall()
    summary = ingest_focus(led, files)
    assert summary.rows == 0 and summary.duplicates == [str(f) for f in files]
    assert (snapshot(led), _objects(led)) == (before, objects)
    assert led.con.execute(f"SELECT * FROM {parts.REGISTRY} ORDER BY seq").fetchall() == registry
    assert _by_account(led) == {**_expected(), "acct-3": (3, Decimal(15))}


def test_shrink_guard_among_many_files_names_the_file_and_writes_nothing(
    many: tuple[Ledger, list[Path]], tmp_path: Path
) -> None:
    led, _ = many
    before, objects = snapshot(led), _objects(led)
    day = _file(tmp_path / "acct-9-day.csv", "acct-9", ["1"], extra={"RegionId": "eu"})
    with pytest.raises(IngestError, match=r"billing account acct-9.*4 rows") as err:
        ingest_focus(led, [day])
    assert err.value.path == str(day)
    assert (snapshot(led), _objects(led)) == (before, objects)  # not even the new shape's table
    assert ingest_focus(led, [day], replace_periods=True).restated[0].replaced_rows == 4
    assert _by_account(led) == {**_expected(), "acct-9": (1, Decimal(1))}


def test_kill_while_adding_a_shape_leaves_the_ledger_as_it_was(
    many: tuple[Ledger, list[Path]], tmp_path: Path
) -> None:
    led, _ = many
    url = led.url
    new_shape = _file(tmp_path / "acct-x.csv", "acct-x", ["3"], extra={"RegionId": "eu"})
    before, objects = snapshot(led), _objects(led)
    view = led.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'cost_lines'")
    view_sql = view.fetchall()
    led.close()
    env = {**os.environ, "COSTLINE_LEDGER": url, "COSTLINE_FAULT": "ingest.before_commit"}
    proc = subprocess.run(
        [sys.executable, "-m", "costline", "ingest", "focus", str(new_shape), "-f", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    with Ledger(url) as again:
        assert (snapshot(again), _objects(again)) == (before, objects)
        view = again.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'cost_lines'")
        assert view.fetchall() == view_sql
        assert ingest_focus(again, [new_shape]).rows == 1


# -- a ledger written before issue 14: one table per file -----------------------------------

_OLD_PARTS = [
    # (seq, ingestion, columns, rows): typed as costline wrote them
    (1, "ing-1", "BillingAccountId, BillingPeriodStart, ProviderName, BilledCost",
     [("'acct-1'", "'2026-10-01'", "'AWS'", "1.5"), ("'acct-1'", "'2026-10-01'", "'AWS'", "2.5")]),
    (2, "ing-2", "BillingAccountId, BillingPeriodStart, ProviderName, BilledCost, ServiceName",
     [("'acct-2'", "'2026-10-01'", "'AWS'", "10", "'EC2'")]),
    (3, "ing-2", "BillingAccountId, BillingPeriodStart, ProviderName, BilledCost",
     [("'acct-3'", "'2026-09-01'", "'AWS'", "100")]),
    (5, "ing-3", "BillingPeriodStart, ServiceProviderName, BilledCost",
     [("'2026-10-01'", "'Azure'", "7"), ("NULL", "'Azure'", "8")]),
]  # fmt: skip


def _old_layout_ledger(path: Path) -> None:
    """A ledger at schema version 6 holding four files as four part tables (two shapes)."""
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    migrations.migrate(con, migrations.MIGRATIONS[:6])
    canonical = schema.cost_lines_schema()
    for seq, ingestion, cols, rows in _OLD_PARTS:
        names = [c.strip() for c in cols.split(",")]
        table = f"parts.cost_lines_{seq:06d}"
        casts = ", ".join(
            f'CAST(v{i} AS {DuckDBType.to_string(canonical[n])}) AS "{n}"'
            for i, n in enumerate(names)
        )
        values = ", ".join("(" + ", ".join(r) + ")" for r in rows)
        con.execute(
            f"CREATE TABLE {table} AS SELECT {casts}, '{ingestion}' AS x_ingestion_id "
            f"FROM (VALUES {values}) t({', '.join(f'v{i}' for i in range(len(names)))})"
        )
        con.execute(
            "INSERT INTO cost_line_parts (part, ingestion_id, fingerprint, seq) VALUES (?, ?, ?, ?)",
            [table, ingestion, f"fp-{seq}", seq],
        )
    migrations.MIGRATIONS[4][2](con)  # version 5 step: the view over the parts, as it was
    con.close()


def test_a_ledger_of_per_file_tables_is_migrated_and_reads_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    _old_layout_ledger(path)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    old_rows = sorted(map(repr, con.execute("SELECT * FROM cost_lines").fetchall()))
    con.close()
    assert len(old_rows) == 6
    with Ledger(f"duckdb:///{path}") as led:
        assert led.schema_version() == migrations.LATEST
        assert sorted(map(repr, led.con.execute("SELECT * FROM cost_lines").fetchall())) == (
            old_rows
        )
        tables = [t for t in _objects(led) if t.startswith("parts.")]
        assert tables == ["parts.cost_lines_shape_001", "parts.cost_lines_shape_002",
                          "parts.cost_lines_shape_003"]  # fmt: skip
        assert led.con.execute(
            f"SELECT seq, ingestion_id, fingerprint FROM {parts.REGISTRY} ORDER BY seq"
        ).fetchall() == [(s, i, f"fp-{s}") for s, i, _, _ in _OLD_PARTS]
        # Restatement works on the migrated rows: acct-1's October is replaced, nothing else.
        new = _file(tmp_path / "acct-1.csv", "acct-1", ["3", "4"])
        summary = ingest_focus(led, [new])
        assert [(r.billing_account_id, r.replaced_rows) for r in summary.restated] == [
            ("acct-1", 2)
        ]
        totals = led.con.execute(
            "SELECT coalesce(BillingAccountId, '-'), sum(BilledCost) FROM cost_lines "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert totals == [("-", Decimal(15)), ("acct-1", Decimal(7)), ("acct-2", Decimal(10)),
                          ("acct-3", Decimal(100))]  # fmt: skip
        assert led.con.execute(f"SELECT seq FROM {parts.REGISTRY} ORDER BY seq").fetchall() == [
            (2,),
            (3,),
            (5,),
            (6,),
        ]
