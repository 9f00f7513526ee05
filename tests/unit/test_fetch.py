"""Reading results back: the same values as Ibis' own `to_pyarrow`, without importing pandas."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import ibis
import pyarrow as pa

from costline.ledger import fetch


def _table() -> ibis.Table:
    utc = pa.timestamp("us", tz="UTC")
    data = pa.table(
        {
            "ts": pa.array([dt.datetime(2026, 10, 1, 13, 0, 0, 1, tzinfo=dt.UTC), None,
                            dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)], utc),
            "amount": pa.array([Decimal("1.000000000000000001"), None, Decimal("-2.5")],
                               pa.decimal128(38, 18)),
            "tags": pa.array([[("team", "a")], None, []], pa.map_(pa.string(), pa.string())),
            "name": ["x", None, "z"],
        }
    )  # fmt: skip
    return ibis.memtable(data)


def test_rows_and_values_are_what_to_pyarrow_gives() -> None:
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'").fetchall()
    t = con.create_table("t", _table().to_pyarrow())
    assert fetch.rows(t) == t.to_pyarrow().to_pylist()
    grouped = t.group_by("name").aggregate(total=t.amount.sum(), first=t.ts.min()).order_by("name")
    assert fetch.rows(grouped) == grouped.to_pyarrow().to_pylist()
    assert fetch.value(t.amount.sum()) == Decimal("-1.499999999999999999")
    [row] = fetch.rows(t.filter(t.name == "x"))
    assert row["ts"] == dt.datetime(2026, 10, 1, 13, 0, 0, 1, tzinfo=dt.UTC)
    assert row["ts"].isoformat() == "2026-10-01T13:00:00.000001+00:00"


def test_kept_tables_are_read_again_and_dropped_after(tmp_path: Path) -> None:
    import contextlib

    con = ibis.duckdb.connect()
    t = con.create_table("t", _table().to_pyarrow())

    def temporary() -> set[str]:
        sql = "SELECT table_name FROM duckdb_tables() WHERE temporary"
        return {r[0] for r in con.con.execute(sql).fetchall()}

    with contextlib.ExitStack() as stack:
        kept = fetch.kept(stack, t.filter(t.name.notnull()))
        assert len(temporary()) == 1 and kept.get_name().endswith(next(iter(temporary())))
        assert fetch.value(kept.count()) == 2
        assert fetch.rows(kept.select("name").order_by("name")) == [{"name": "x"}, {"name": "z"}]
    assert temporary() == set()


def test_a_report_reads_the_ledger_without_importing_pandas(tmp_path: Path) -> None:
    script = (
        "import sys, datetime as dt\n"
        "from costline.ledger.store import Ledger\n"
        "from costline.ledger import fetch\n"
        f"ledger = Ledger('duckdb:///{tmp_path / 'l.duckdb'}')\n"
        "lines = ledger.table('cost_lines')\n"
        "print(fetch.rows(lines.group_by('ServiceName').aggregate(c=lines.EffectiveCost.sum())))\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_dates_read_back_as_arrow_gives_them_each_made_once() -> None:
    """A column of days (a few hundred distinct in many thousand rows) is read back as Arrow's
    `to_pylist` reads it, each distinct day made once."""
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE TABLE d AS SELECT DATE '2026-10-01' + (i % 7)::INTEGER AS day "
                "FROM range(1000) r(i) UNION ALL SELECT NULL UNION ALL SELECT DATE '1969-12-31'"
                ).fetchall()  # fmt: skip
    t = con.table("d")
    column = fetch.arrow(t)["day"]
    days = fetch.pylist(column)
    assert days == column.to_pylist() and days.count(None) == 1
    assert len({id(d) for d in days if d is not None}) == 8
