"""`cost_lines` as a typed view over part tables, one part per file ingested.

A FOCUS file fills 20 to 45 of the ledger's 80 cost-line columns. Writing the absent ones as NULLs
into one wide table costs DuckDB about 1.5 s per million rows for 54 empty columns, three times the
parse itself. So each file's rows go into a part table (in schema `parts`) holding only the columns
it has, and `cost_lines` is a view that unions the parts and supplies typed NULLs for the rest.
Readers (Ibis, `costline sql`, exports) see one table with the canonical schema.

Parts are created, restated (rows deleted) and dropped only inside the ledger's write transaction,
and the view is rebuilt in the same transaction, so a crash leaves both as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
from ibis.backends.sql.datatypes import DuckDBType
from ibis.expr.schema import Schema

from costline.ledger.sql import run, run_one

SCHEMA = "parts"
REGISTRY = "cost_line_parts"
VIEW = "cost_lines"


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Migration step: the parts schema, its registry and the (empty) view."""
    run(con, f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    run(
        con,
        f"""CREATE TABLE IF NOT EXISTS {REGISTRY} (
              part VARCHAR PRIMARY KEY, ingestion_id VARCHAR, fingerprint VARCHAR,
              seq BIGINT, created_at TIMESTAMPTZ DEFAULT now())""",
    )


def next_name(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    row = run_one(con, f"SELECT coalesce(max(seq), 0) + 1 FROM {REGISTRY}")
    seq = int(row[0]) if row else 1
    return f"{SCHEMA}.cost_lines_{seq:06d}", seq


def register(
    con: duckdb.DuckDBPyConnection, part: str, seq: int, ingestion_id: str, fingerprint: str
) -> None:
    run(
        con,
        f"INSERT INTO {REGISTRY} (part, ingestion_id, fingerprint, seq) VALUES (?, ?, ?, ?)",
        [part, ingestion_id, fingerprint, seq],
    )


def listed(con: duckdb.DuckDBPyConnection, *, not_ingestion: str | None = None) -> list[str]:
    if not_ingestion is None:
        rows = run(con, f"SELECT part FROM {REGISTRY} ORDER BY seq")
    else:
        rows = run(
            con,
            f"SELECT part FROM {REGISTRY} WHERE ingestion_id <> ? ORDER BY seq",
            [not_ingestion],
        )
    return [r[0] for r in rows]


def columns_of(con: duckdb.DuckDBPyConnection, part: str) -> set[str]:
    schema_name, table = part.split(".", 1)
    rows = run(
        con,
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
        [schema_name, table],
    )
    return {r[0] for r in rows}


def drop_if_empty(con: duckdb.DuckDBPyConnection, part: str) -> bool:
    row = run_one(con, f"SELECT count(*) FROM {part}")
    if row and row[0] == 0:
        run(con, f"DROP TABLE {part}")
        run(con, f"DELETE FROM {REGISTRY} WHERE part = ?", [part])
        return True
    return False


def _select(part: str | None, present: set[str], canonical: Schema) -> str:
    cols = []
    for name, dtype in canonical.items():
        sql_type = DuckDBType.to_string(dtype)
        source = f'"{name}"' if name in present else "NULL"
        cols.append(f'CAST({source} AS {sql_type}) AS "{name}"')
    body = f"SELECT {', '.join(cols)}"
    return f"{body} FROM {part}" if part else f"{body} WHERE false"


def rebuild_view(con: duckdb.DuckDBPyConnection, canonical: Schema) -> None:
    """Point `cost_lines` at the current parts, with the canonical columns and types."""
    selects: Sequence[str] = [
        _select(part, columns_of(con, part), canonical) for part in listed(con)
    ] or [_select(None, set(), canonical)]
    run(con, f"CREATE OR REPLACE VIEW {VIEW} AS " + "\nUNION ALL ".join(selects))
