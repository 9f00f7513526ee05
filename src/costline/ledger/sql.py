"""Running a statement on a raw DuckDB connection to completion.

DuckDB 2.0 keeps a statement's result open until it is fetched, and refuses other work on the
connection meanwhile (Ibis shares the ledger's connection), so every statement is run through here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb


def run(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[Any]:
    cursor = con.execute(sql, params) if params is not None else con.execute(sql)
    return cursor.fetchall()


def run_one(
    con: duckdb.DuckDBPyConnection, sql: str, params: object = None
) -> tuple[Any, ...] | None:
    """The first row of a statement's result (the rest is fetched too, to complete it)."""
    rows = run(con, sql, params)
    return tuple(rows[0]) if rows else None


def bill_days(con: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, dt.date | None]:
    """(first, last) day any cost line is charged in; (None, None) for a ledger without bills."""
    row = run_one(con, "SELECT min(ChargePeriodStart), max(ChargePeriodStart) FROM cost_lines")
    if not row or row[0] is None:
        return None, None
    return row[0].date(), row[1].date()


def last_bill_day(con: duckdb.DuckDBPyConnection) -> dt.date:
    """The last day any cost line is charged in (what reports default to); a ledger without bills
    is an error: there is nothing to report on."""
    from costline.errors import CostlineError

    day = bill_days(con)[1]
    if day is None:
        raise CostlineError("no cost lines in the ledger: ingest bills first")
    return day
