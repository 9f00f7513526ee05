"""`costline sql`: read-only SQL against the ledger, refused before it runs if it would write.

Two locks: the statement types are checked first (only SELECT, and EXPLAIN of one), then the query
runs on a read-only connection with external access (file reads and writes, COPY, ATTACH) off.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from costline.errors import LedgerError
from costline.ledger import locking
from costline.ledger.sql import run
from costline.ledger.store import ledger_path

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise LedgerError(f"cannot parse the SQL: {exc}") from exc
    if not statements:
        raise LedgerError("no SQL statement given")
    for st in statements:
        if st.type not in ALLOWED:
            kind = st.type.name if hasattr(st.type, "name") else str(st.type)
            raise LedgerError(
                f"refused: {kind} statements can change the ledger; only SELECT runs here"
            )


def run_sql(url: str, sql: str) -> pa.Table:
    check_read_only(sql)
    path = ledger_path(url)
    if path != ":memory:" and not Path(path).exists():
        raise LedgerError(f"no ledger at {path}: ingest something first")
    try:
        con = locking.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise LedgerError(f"cannot open the ledger {path} read-only: {exc}") from exc
    try:
        run(con, "SET TimeZone = 'UTC'")
        run(con, "SET enable_external_access = false")
        run(con, "SET lock_configuration = true")
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise LedgerError(f"the query failed: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()
