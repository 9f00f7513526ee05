"""Executing Ibis expressions for the small results analytics read back (Arrow, rows, a scalar).

Same results as `expr.to_pyarrow()`. On DuckDB the compiled SQL runs on the backend's own
connection and the result is typed by Ibis' pyarrow mapper, because Ibis' DuckDB `to_pyarrow`
imports its pandas converter on first use: 0.3-0.4 s of every command's start, for nothing.
Other engines go through Ibis unchanged. On DuckDB the SQL of a query asked before with other
dates is reused rather than compiled again (`ledger.compiled`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.duckdb import Backend as DuckDBBackend
from ibis.formats.pyarrow import PyArrowData
from ibis.util import gen_name

from costline.ledger import compiled
from costline.ledger.sql import run


class _DuckDBArrow(PyArrowData):  # type: ignore[misc]
    """Ibis' DuckDB Arrow mapper (`ibis.backends.duckdb.converter`), without its pandas half."""

    @classmethod
    def convert_scalar(cls, scalar: pa.Scalar, dtype: Any) -> pa.Scalar:
        if dtype.is_null():
            return pa.scalar(None)
        return super().convert_scalar(scalar, dtype)

    @classmethod
    def convert_column(cls, column: pa.Array, dtype: Any) -> pa.Array:
        if dtype.is_null():
            return pa.nulls(len(column))
        return super().convert_column(column, dtype)


def arrow(expr: ir.Expr) -> Any:
    """`expr.to_pyarrow()`: a table for a table, an array for a column, a scalar for a scalar."""
    backend = ibis.get_backend(expr)
    if not isinstance(backend, DuckDBBackend):
        return expr.to_pyarrow()
    backend._run_pre_execute_hooks(expr)  # registers the expression's memtables
    table = expr.as_table()
    query = compiled.sql(backend, table)
    # Run as a statement, not through `con.sql(query)`: a relation binds its query to learn its
    # columns and binds it again to run it, 2 ms a query of planning for nothing. DuckDB warns
    # that the statement's rows are copied once more into Arrow: a small result's copy is cheap.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_COPY, category=UserWarning)
        result = backend.con.execute(query).to_arrow_table()
    return expr.__pyarrow_result__(result, data_mapper=_DuckDBArrow)


_COPY = "Arrow output on a DB-API result makes an extra copy"


def kept(stack: contextlib.ExitStack, table: ir.Table) -> ir.Table:
    """`table` computed once into a temporary table of the engine, dropped when `stack` closes,
    so that the queries reading it several times neither recompile nor rerun its plan; the
    expression itself on an engine without temporary tables.

    On DuckDB the table is made with the expression's own schema and filled by one INSERT, as
    Ibis' `Table.cache()` makes it, without what `cache()` adds around that (reading the new
    table's schema back, its registry of cached expressions): 20-30 ms a table."""
    backend = ibis.get_backend(table)
    if not backend.supports_temporary_tables:
        return table
    if not isinstance(backend, DuckDBBackend):
        cached = table.cache()
        stack.callback(cached.release)
        return cached
    backend._run_pre_execute_hooks(table)  # registers the expression's memtables
    name, schema = gen_name("kept"), table.schema()
    quoted = sg.to_identifier(name, quoted=True).sql(backend.dialect)
    columns = ", ".join(
        sge.ColumnDef(this=sg.to_identifier(n, quoted=True),
                      kind=backend.compiler.type_mapper.from_ibis(t)).sql(backend.dialect)
        for n, t in schema.items()
    )  # fmt: skip
    query = compiled.sql(backend, table)
    run(backend.con, f"CREATE TEMP TABLE {quoted} ({columns})")
    stack.callback(run, backend.con, f"DROP TABLE IF EXISTS temp.main.{quoted}")
    run(backend.con, f"INSERT INTO temp.main.{quoted} {query}")
    namespace = ops.Namespace(catalog="temp", database="main")
    return ops.DatabaseTable(name, schema=schema, source=backend, namespace=namespace).to_expr()


def rows(expr: ir.Table) -> list[dict[str, Any]]:
    """A table expression's rows as dicts, as `to_pyarrow().to_pylist()` gives them."""
    table: pa.Table = arrow(expr)
    names = table.column_names
    columns = [pylist(table.column(name)) for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def pylist(column: pa.ChunkedArray | pa.Array) -> list[Any]:
    """`column.to_pylist()`, with UTC timestamps made 20-100x faster: Arrow converts each one
    through `zoneinfo` (0.6 s for 30,000 of them); here each distinct instant is made once, and
    so is each distinct date (a column of days repeats a few hundred of them)."""
    kind = column.type
    if pa.types.is_date32(kind):
        return _distinct(column.cast(pa.int32()).to_pylist(), lambda n: _DAY0 + dt.timedelta(n))
    if not (pa.types.is_timestamp(kind) and kind.tz in _UTC and kind.unit in _MICROS):
        return column.to_pylist()
    scale = _MICROS[kind.unit]
    return _distinct(column.cast(pa.int64()).to_pylist(),
                     lambda n: _EPOCH + dt.timedelta(microseconds=n * scale))  # fmt: skip


def _distinct(numbers: list[int | None], make: Callable[[int], Any]) -> list[Any]:
    """`make(n)` for each number (None for None), made once per distinct number."""
    made: dict[int, Any] = {}
    out: list[Any] = []
    for n in numbers:
        if n is None:
            out.append(None)
            continue
        at = made.get(n)
        if at is None:
            at = made[n] = make(n)
        out.append(at)
    return out


_UTC = ("UTC", "utc", "Etc/UTC", "+00:00")
_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY0 = dt.date(1970, 1, 1)


def value(expr: ir.Scalar) -> Any:
    """A scalar expression's Python value (`to_pyarrow().as_py()`)."""
    return arrow(expr).as_py()
