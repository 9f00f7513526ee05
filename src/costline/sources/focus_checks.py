"""What a FOCUS file must be beyond each value's type: refused with file, row and column, or loaded.

A value that does not convert is found by the conversions in `costline.sources.focus`. This module
holds the rest, each run by the engine over the whole file:

- **the header**: a column named twice (DuckDB would quietly read the second `BilledCost` as
  `BilledCost_1` and keep it as an extra column), and a file with no data rows;
- **the row**: rules across a row's typed values: a period that ends before it starts, a
  `BillingCurrency` that is not an ISO 4217 code, a NUL byte in text. `guard` wraps the typed
  SELECT in one filter that raises on the first such row, so the fast path pays one comparison per
  rule and row; `first_row_failure` names the row and the column once it has fired;
- **the shape**: a CSV row with more or fewer fields than the header. DuckDB's sniffer then either
  reads the whole file as one column or stops mid-scan; `csv_shape_error` re-reads the file with
  DuckDB's reject table, which names the line.

A column whose file type cannot hold the value at all (a BOOLEAN cost, an integer date) is refused
at its first non-null value (`unusable_type`), not cast: `CAST(true AS DECIMAL)` is 1.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from costline.errors import IngestError
from costline.sources.base import quote_ident, quote_literal

_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
NUMERIC_TYPES = frozenset(
    {*_INTEGERS, *(f"U{t}" for t in _INTEGERS), "FLOAT", "DOUBLE", "REAL", "VARCHAR", '"NULL"'}
)
TIME_TYPES = ("TIMESTAMP", "DATE", "VARCHAR", '"NULL"')
# ISO 4217 alphabetic codes are three capital letters; `usd` or `US$` are not codes.
CURRENCY_CODE = "[A-Z]{3}"
_DEDUPED = re.compile(r"^(.*)_[0-9]+$")
_DELIMITERS = (",", "\t", ";", "|")
_HEAD = 1 << 20
_CHUNK = 8 << 20


def holds_number(src_type: str) -> bool:
    """True when a source column of this DuckDB type can hold an amount (text is checked later)."""
    t = src_type.upper()
    return t in NUMERIC_TYPES or t.startswith("DECIMAL")


def holds_time(src_type: str) -> bool:
    return src_type.upper().startswith(TIME_TYPES)


def unusable_type(src: str, column: str) -> tuple[str, str]:
    """(expr, bad) refusing every non-null value of a column whose type cannot be converted."""
    expr = f"CASE WHEN {src} IS NULL THEN NULL ELSE error('costline: wrong type in {column}') END"
    return expr, f"({src} IS NOT NULL)"


# -- the header --------------------------------------------------------------------------------


def check_header(
    con: duckdb.DuckDBPyConnection, path: str, kind: str, names: Sequence[str]
) -> None:
    """Refuse a column named twice (compared as DuckDB does, ignoring case).

    DuckDB renames a repeated name `NAME_1`, so the real header is only read when such a name
    appears beside its base name: an ordinary file costs nothing.
    """
    lower = {n.lower() for n in names}
    suspects = [n for n in names if (m := _DEDUPED.match(n)) and m.group(1).lower() in lower]
    if not suspects:
        return
    try:
        header = _parquet_names(path) if kind == "parquet" else _csv_header(con, path)
    except (duckdb.Error, OSError, pa.ArrowException):
        return  # the typed read will say what is wrong with the file
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        key = name.lstrip("\ufeff").strip().lower()
        if key in seen:
            raise IngestError(
                f"the header names {name!r} twice (columns {seen[key]} and {position}): "
                "which one holds the values is ambiguous",
                path=path,
                column=name.lstrip("\ufeff").strip(),
            )
        seen[key] = position


def _parquet_names(path: str) -> list[str]:
    """The top-level column names as the file's metadata spells them (DuckDB renames repeats)."""
    return list(pq.read_schema(path).names)


def _first_line(con: duckdb.DuckDBPyConnection, path: str) -> str:
    row = con.execute(
        f"SELECT line FROM read_csv({quote_literal(path)}, columns = {{'line': 'VARCHAR'}}, "
        "delim = '\\x01', quote = '', escape = '', header = false, auto_detect = false) LIMIT 1"
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def _csv_header(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    line = _first_line(con, path)
    return next(csv.reader([line], delimiter=_delimiter(line)), [])


def _delimiter(header_line: str) -> str:
    return max(_DELIMITERS, key=header_line.count)


def plain_text(path: str, kind: str) -> bool:
    """An uncompressed CSV or TSV: its bytes are its text, so Python can scan them directly."""
    return kind == "csv" and path.lower().endswith((".csv", ".tsv"))


def _head_has_row(path: str) -> bool | None:
    """Whether a plain CSV has a line after its header; None when its first MiB cannot tell."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    newline = head.find(b"\n")
    if newline >= 0 and head[newline + 1 :].strip():
        return True
    return None if len(head) == _HEAD else False


def nul_free(path: str, kind: str) -> bool:
    """True when a plain CSV holds no NUL byte (nor JSON's `\\u0000`), so no column needs the
    per-row NUL check.

    One pass over the file's bytes (about a tenth of a second per GB, a fifth of what the check
    costs in SQL); compressed and Parquet files are not scanned (False)."""
    if not plain_text(path, kind):
        return False
    escape = b"\\u0000"
    tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if chunk.find(0) >= 0:
                return False
            # memchr for a backslash first: searching six bytes is twenty times slower.
            edge = tail + chunk[: len(escape) - 1]  # an escape cut by the chunk boundary
            if escape in edge or (chunk.find(92) >= 0 and escape in chunk):
                return False
            tail = chunk[-len(escape) + 1 :]
    return True


def require_rows(con: duckdb.DuckDBPyConnection, path: str, kind: str, raw: str) -> None:
    """Refuse a file with a header and no data rows: it restates nothing and bills nothing."""
    has_row = _head_has_row(path) if plain_text(path, kind) else None
    if has_row is None:
        try:
            row = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {raw} LIMIT 1)").fetchone()
        except duckdb.Error:
            return  # unreadable further on: the typed read names where
        has_row = bool(row and row[0])
    if has_row:
        return
    where = "the header is the whole file (line 2 is missing)" if kind == "csv" else "no rows"
    raise IngestError(f"no data rows: {where}", path=path, row=1)


# -- the shape of a CSV file -------------------------------------------------------------------


def csv_shape_error(
    con: duckdb.DuckDBPyConnection, path: str, names: Sequence[str]
) -> IngestError | None:
    """The first line whose number of fields differs from the header's, or None.

    `names` are the columns DuckDB found: when a ragged row confused its sniffer there is one,
    holding the whole header line, and the delimiter is read from that line.
    """
    delim = ""
    if len(names) == 1 and any(d in names[0] for d in _DELIMITERS):
        delim = f", delim = {quote_literal(_delimiter(names[0]))}"
    try:
        con.execute(
            f"SELECT count(*) FROM read_csv({quote_literal(path)}, all_varchar = true, "
            f"header = true, store_rejects = true{delim})"
        ).fetchall()
        found = con.execute(
            "SELECT line, column_idx, column_name, error_type, error_message FROM reject_errors "
            "ORDER BY line, column_idx LIMIT 1"
        ).fetchall()
    except duckdb.Error:
        return None
    if not found:
        return None
    line, index, column, kind, message = found[0]
    header = _csv_header(con, path)
    if kind == "TOO MANY COLUMNS":
        what = f"line {line} has more fields than the header's {len(header)}"
        column = f"field {len(header) + 1}"
    elif kind == "MISSING COLUMNS":
        what = f"line {line} has {index} fields where the header has {len(header)}"
    else:
        what = f"{message} (line {line})"
    return IngestError(what, path=path, row=int(line) - 1, column=column or f"field {index}")


# -- rules across a row ------------------------------------------------------------------------


@dataclass(frozen=True)
class RowCheck:
    """A rule over a row's typed values: `bad` is true where the row must be refused, `says`
    is SQL text telling the user why."""

    column: str
    bad: str
    says: str


def row_checks(columns: Sequence[str], text_columns: Sequence[str]) -> list[RowCheck]:
    """The rules that apply to a typed SELECT with these output columns."""
    have = set(columns)
    checks = []
    for start, end in (
        ("ChargePeriodStart", "ChargePeriodEnd"),
        ("BillingPeriodStart", "BillingPeriodEnd"),
    ):
        if start in have and end in have:
            s, e = quote_ident(start), quote_ident(end)
            says = (
                f"'{end} ' || CAST({e} AS VARCHAR) || ' is before {start} ' || CAST({s} AS VARCHAR)"
            )
            checks.append(RowCheck(end, f"({e} < {s})", says))
    if "BillingCurrency" in have:
        c = quote_ident("BillingCurrency")
        checks.append(
            RowCheck(
                "BillingCurrency",
                f"(NOT regexp_full_match({c}, '{CURRENCY_CODE}'))",
                f"'''' || {c} || ''' is not an ISO 4217 currency code (three capital letters, "
                "like USD)'",
            )
        )
    for name in text_columns:
        if name in have:
            q = quote_ident(name)
            # JSON text (Tags, extras) carries a NUL as the escape \u0000.
            nul = f"contains({q}, chr(0))"
            if name in ("Tags", "AllocatedTags", "x_extra"):
                nul = f"({nul} OR contains({q}, '\\u0000'))"
            says = f"'''' || replace({q}, chr(0), '\\x00') || ''' holds a NUL byte'"
            checks.append(RowCheck(name, nul, says))
    return checks


def guard(sql: str, checks: Sequence[RowCheck]) -> str:
    """`sql` refusing, in the engine, any row that fails one of `checks`."""
    if not checks:
        return sql
    failing = " OR ".join(c.bad for c in checks)
    return (
        f"SELECT * FROM ({sql}) "
        f"WHERE CASE WHEN {failing} THEN error('costline: a row fails a check') ELSE true END"
    )


def first_row_failure(
    con: duckdb.DuckDBPyConnection, path: str, kind: str, sql: str, checks: Sequence[RowCheck]
) -> IngestError | None:
    """Scan `sql` (unguarded) single-threaded with row numbers for the first row a check refuses."""
    if not checks:
        return None
    cases = " ".join(f"WHEN {c.bad} THEN [{quote_literal(c.column)}, {c.says}]" for c in checks)
    query = f"""SELECT __row, CASE {cases} END
                FROM (SELECT row_number() OVER () AS __row, * FROM ({sql}))
                WHERE {" OR ".join(c.bad for c in checks)}
                ORDER BY __row LIMIT 1"""
    con.execute("SET threads = 1")
    found = con.execute(query).fetchall()
    if not found:
        return None
    row, (column, says) = found[0]
    where = f" (line {row + 1})" if kind == "csv" else ""
    return IngestError(f"{says}{where}", path=path, row=int(row), column=column)
