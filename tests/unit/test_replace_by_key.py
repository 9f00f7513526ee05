"""A row seen again (a pod in a newer kubectl dump) replaces its older state, in one transaction."""

from __future__ import annotations

from pathlib import Path

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
