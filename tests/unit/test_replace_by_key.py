"""A row seen again (a pod in a newer kubectl dump) replaces its older state, in one transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa

from costline.ledger.store import Ledger
from costline.sources.base import SourceFile, arrow_batch


def _batch(name: str, rows: list[dict[str, object]]) -> object:
    table = pa.Table.from_pylist(
        rows, schema=pa.schema([("workload_id", pa.string()), ("status", pa.string())])
    )
    return arrow_batch(
        "workloads",
        SourceFile.virtual(name, name),
        table,
        dialect="test",
        replace_on=["workload_id"],
    )


def test_newer_state_replaces_older_rows_with_the_same_key(tmp_path: Path) -> None:
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:
        ledger.write(
            [
                _batch(
                    "dump-1",
                    [
                        {"workload_id": "a", "status": "Running"},
                        {"workload_id": "b", "status": "Running"},
                    ],
                )
            ],
            source="test",
        )  # type: ignore[list-item]
        result = ledger.write(
            [_batch("dump-2", [{"workload_id": "a", "status": "Succeeded"}])], source="test"
        )  # type: ignore[list-item]
        assert result.replaced == {"workloads": 1}
        rows = sorted(ledger.con.execute("SELECT workload_id, status FROM workloads").fetchall())
        assert rows == [("a", "Succeeded"), ("b", "Running")]


def _observed(name: str, rows: list[tuple[str, str, str | None]], **kw: Any) -> Any:
    """A batch of (workload_id, status, observed_at) rows that keeps the newest state."""
    table = pa.Table.from_pylist(
        [{"workload_id": w, "status": s,
          "observed_at": None if t is None else dt.datetime.fromisoformat(t)}
         for w, s, t in rows],
        schema=pa.schema([("workload_id", pa.string()), ("status", pa.string()),
                          ("observed_at", pa.timestamp("us", tz="UTC"))]),
    )  # fmt: skip
    return arrow_batch("workloads", SourceFile.virtual(name, name), table, dialect="test",
                       replace_on=["workload_id"], newest_by="observed_at", **kw)  # fmt: skip


def test_newest_state_wins_whatever_the_order_of_ingestion(tmp_path: Path) -> None:
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:
        newer = [("a", "Succeeded", "2025-03-01T12:00:00+00:00"), ("c", "Running", None)]
        ledger.write([_observed("dump-2", newer)], source="test")
        older = [("a", "Running", "2025-03-01T10:00:00+00:00"),
                 ("b", "Running", "2025-03-01T10:00:00+00:00"),
                 ("c", "Pending", "2025-03-01T10:00:00+00:00")]  # fmt: skip
        result = ledger.write([_observed("dump-1", older)], source="test")
        # `a` is newer in the ledger: kept; `b` is new; `c`'s stored time is unknown (oldest).
        assert (result.replaced, result.superseded) == ({"workloads": 1}, {"workloads": 1})
        rows = sorted(ledger.con.execute("SELECT workload_id, status FROM workloads").fetchall())
        assert rows == [("a", "Succeeded"), ("b", "Running"), ("c", "Pending")]
        # A tie goes to the later ingestion; two batches of one ingestion keep the newer one.
        ledger.write([_observed("dump-3", [("b", "Failed", "2025-03-01T10:00:00+00:00")]),
                      _observed("dump-4", [("b", "Unknown", "2025-03-01T09:00:00+00:00")])],
                     source="test")  # fmt: skip
        assert ledger.con.execute(
            "SELECT status FROM workloads WHERE workload_id = 'b'"
        ).fetchall() == [("Failed",)]


def test_a_scope_is_replaced_whole(tmp_path: Path) -> None:
    """A registry file's entries: one the file no longer declares is gone, others' stay."""
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:

        def declares(name: str, path: str, ids: list[str]) -> Any:
            table = pa.Table.from_pylist(
                [{"workload_id": i, "source": "registry", "source_path": path} for i in ids],
                schema=pa.schema([(c, pa.string()) for c in ("workload_id", "source",
                                                              "source_path")]),
            )  # fmt: skip
            return arrow_batch("workloads", SourceFile.virtual(name, name), table, dialect="t",
                               replace_on=["workload_id"],
                               replace_scope={"source": "registry", "source_path": path})  # fmt: skip

        ledger.write([declares("a-1", "/a.yaml", ["x", "y"]), declares("b-1", "/b.yaml", ["z"])],
                     source="test")  # fmt: skip
        result = ledger.write([declares("a-2", "/a.yaml", ["x"])], source="test")
        assert result.replaced == {"workloads": 2}
        got = sorted(
            ledger.con.execute("SELECT workload_id, source_path FROM workloads").fetchall()
        )
        assert got == [("x", "/a.yaml"), ("z", "/b.yaml")]
        ledger.write([declares("a-3", "/a.yaml", [])], source="test")  # an emptied file
        assert ledger.con.execute("SELECT workload_id FROM workloads").fetchall() == [("z",)]
