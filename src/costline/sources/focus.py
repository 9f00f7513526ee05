"""The FOCUS source: FOCUS 1.0-1.4 Cost and Usage exports and provider-native bills, to canonical Arrow.

The file is read by an in-memory DuckDB of the adapter's own (never the ledger's) in three stages:
raw (CSV all-VARCHAR, or Parquet as typed), named (source columns renamed or mapped to FOCUS), and
typed (the ledger's types, with hard casts). The typed stage raises on the first bad value, so the
fast path does no per-row checking in Python; only when it fails does `diagnose` scan again, one
thread and row numbers on, to name the file, the row and the column.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import ibis.expr.datatypes as dt
import pyarrow as pa

from costline.errors import IngestError
from costline.money import MONEY_DTYPE, MONEY_SQL
from costline.schema import TAGS, TS, focus_column_map, focus_columns
from costline.sources import focus_checks, timestamps
from costline.sources.base import (
    SourceBatch,
    SourceFile,
    billing_dialects,
    quote_ident,
    quote_literal,
)
from costline.sources.focus_columns import (
    NOT_NULL,
    ColumnPlan,
    missing_mandatory,
    missing_required,
    plan_columns,
)

BATCH_ROWS = 1 << 20
CSV_NULLS = "['NULL', 'null', 'Null', '']"
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


def file_kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz")):
        return "csv"
    raise IngestError("not a FOCUS file: expected .csv, .csv.gz, .tsv or .parquet", path=path)


def raw_relation_sql(path: str, kind: str) -> str:
    p = quote_literal(path)
    if kind == "parquet":
        return f"read_parquet({p})"
    return f"read_csv({p}, all_varchar = true, header = true, nullstr = {CSV_NULLS})"


@dataclass(frozen=True)
class Conversion:
    """How one source column becomes one ledger column: the fast cast and the test for a bad value."""

    column: str
    expr: str
    bad: str | None  # SQL true where the value cannot be converted; None if nothing can fail
    expected: str


# Spreadsheet-formatted amounts, as in the FOCUS 1.2 spec's own SaaS examples: `$10,000.00 `.
# Only this exact shape is accepted (a sign, an optional `$`, groups of three): `1,5` stays an error.
_ACCOUNTING = r"^\s*-?\s*\$?\s*-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?\s*$"


def _money_text(src: str, *, strict: bool) -> str:
    cleaned = f"regexp_replace({src}, '[$,\\s]', '', 'g')"
    cast = "CAST" if strict else "TRY_CAST"
    otherwise = "error('costline: bad amount ' || " + src + ")" if strict else "NULL"
    return (
        f"coalesce(TRY_CAST({src} AS {MONEY_SQL}), CASE WHEN regexp_full_match({src}, "
        f"'{_ACCOUNTING}') THEN {cast}({cleaned} AS {MONEY_SQL}) ELSE {otherwise} END)"
    )


def _money(src: str, src_type: str, column: str) -> Conversion:
    t = src_type.upper()
    expected = "a decimal number"
    if not focus_checks.holds_number(t):  # a BOOLEAN cost would cast to 1
        expr, bad = focus_checks.unusable_type(src, column)
        expected += f" (the file's column is {t})"
    elif t in FLOAT_TYPES:
        # Through the shortest text, so 0.1 stays 0.1 and not 0.1000000000000000055; NaN, inf
        # and 1e300 have no decimal.
        expr = f"CAST(CAST({src} AS VARCHAR) AS {MONEY_SQL})"
        bad = f"({src} IS NOT NULL AND TRY_CAST(CAST({src} AS VARCHAR) AS {MONEY_SQL}) IS NULL)"
    elif t == "VARCHAR":
        expr = f"CASE WHEN {src} IS NULL THEN NULL ELSE {_money_text(src, strict=True)} END"
        bad = f"({src} IS NOT NULL AND {_money_text(src, strict=False)} IS NULL)"
    else:
        expr, bad = (
            f"CAST({src} AS {MONEY_SQL})",
            f"(TRY_CAST({src} AS {MONEY_SQL}) IS NULL AND {src} IS NOT NULL)",
        )
    if column in NOT_NULL:
        expr = f"CASE WHEN {src} IS NULL THEN error('costline: null {column}') ELSE {expr} END"
        bad = f"({src} IS NULL OR {bad})" if bad else f"({src} IS NULL)"
    return Conversion(column, expr, bad, expected)


def _timestamp(src: str, src_type: str, column: str) -> Conversion:
    t = src_type.upper()
    expected = "a date-time (ISO 8601, or M/D/YYYY)"
    if not focus_checks.holds_time(t):  # an integer is no date: 20261005 or epoch seconds?
        expr, bad = focus_checks.unusable_type(src, column)
        expected = f"a date-time (ISO 8601, or M/D/YYYY; the file's column is {t})"
    elif t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        expr, bad = src, None
    elif t.startswith(("TIMESTAMP", "DATE")):
        expr, bad = f"CAST({src} AS TIMESTAMPTZ)", None
    else:
        expr = timestamps.parse_sql(src, strict=True)
        bad = f"({src} IS NOT NULL AND {timestamps.parse_sql(src, strict=False)} IS NULL)"
    if column in NOT_NULL:
        expr = f"CASE WHEN {src} IS NULL THEN error('costline: null {column}') ELSE {expr} END"
        bad = f"({src} IS NULL OR {bad})" if bad else f"({src} IS NULL)"
    return Conversion(column, expr, bad, expected)


def _json_object(src: str, src_type: str, column: str) -> Conversion:
    t = src_type.upper()
    if t.startswith(("MAP", "STRUCT")):
        return Conversion(column, f"CAST(to_json({src}) AS VARCHAR)", None, "a JSON object")
    bad = f"({src} IS NOT NULL AND coalesce(json_type(try_cast({src} AS JSON)) <> 'OBJECT', true))"
    return Conversion(column, f"CAST({src} AS VARCHAR)", bad, "a JSON object of tags")


def conversion_for(
    column: str, src: str, src_type: str, dtype: dt.DataType | None = None
) -> Conversion:
    """How to type `column` (a Cost and Usage column unless its ledger `dtype` is given)."""
    dtype = dtype or focus_column_map()[column].dtype
    if dtype == MONEY_DTYPE:
        return _money(src, src_type, column)
    if dtype == TS:
        return _timestamp(src, src_type, column)
    if dtype == TAGS:
        return _json_object(src, src_type, column)
    return Conversion(column, f"CAST({src} AS VARCHAR)", None, "text")


@dataclass
class FocusFile:
    """One FOCUS or provider-native file, planned: what is read from where, and how it is typed."""

    file: SourceFile
    con: duckdb.DuckDBPyConnection
    kind: str
    dialect: str
    version: str
    named_sql: str  # stage 2: FOCUS names over the raw source
    conversions: list[Conversion]
    extras: list[str]
    warnings: list[str]
    table: str = "cost_lines"  # FOCUS 1.4's other datasets have tables of their own
    replace_on: tuple[str, ...] = ()  # their keys: a newer row of the same key replaces the older

    @property
    def path(self) -> str:
        return str(self.file.path)

    def typed_sql(self, *, guarded: bool = True) -> str:
        """The ledger's rows; `guarded`, the engine refuses any row a row check fails."""
        cols = [f"{c.expr} AS {quote_ident(c.column)}" for c in self.conversions]
        have = {c.column for c in self.conversions}
        # FOCUS 1.3 renamed ProviderName to ServiceProviderName: the ledger keeps both, filled.
        for old, new in (
            ("ProviderName", "ServiceProviderName"),
            ("ServiceProviderName", "ProviderName"),
        ):
            if self.table == "cost_lines" and old in have and new not in have:
                cols.append(f"CAST({quote_ident(old)} AS VARCHAR) AS {quote_ident(new)}")
        if self.extras:
            pairs = ", ".join(f"{quote_literal(e)}, {quote_ident('__x_' + e)}" for e in self.extras)
            cols.append(f"CAST(json_object({pairs}) AS VARCHAR) AS x_extra")
        cols.append(f"{quote_literal(self.dialect)} AS x_source")
        cols.append(f"{quote_literal(self.version)} AS x_focus_version")
        sql = f"SELECT {', '.join(cols)} FROM ({self.named_sql})"
        return focus_checks.guard(sql, self.row_checks()) if guarded else sql

    def row_checks(self) -> list[focus_checks.RowCheck]:
        text = [c.column for c in self.conversions if c.expected.startswith(("text", "a JSON"))]
        if self._nul_free:
            text = []
        return focus_checks.row_checks(
            [c.column for c in self.conversions], [*text, *(["x_extra"] if self.extras else [])]
        )

    @functools.cached_property
    def _nul_free(self) -> bool:
        """The file's bytes hold no NUL (scanned once): then no text column needs checking."""
        return focus_checks.nul_free(self.path, self.kind)

    def batch(self) -> SourceBatch:
        sql = self.typed_sql()
        try:
            columns = [row[0] for row in self.con.execute(f"DESCRIBE {sql}").fetchall()]
        except duckdb.Error as exc:
            raise self.diagnose(exc) from exc
        map_cols = [c for c in ("Tags", "AllocatedTags", "x_extra") if c in columns]

        def reader() -> pa.RecordBatchReader:
            try:
                return self.con.sql(sql).to_arrow_reader(BATCH_ROWS)
            except duckdb.Error as exc:
                raise self.diagnose(exc) from exc

        return SourceBatch(
            table=self.table,
            file=self.file,
            columns=columns,
            reader=reader,
            dialect=self.dialect,
            diagnose=self.diagnose,
            duckdb_sql=sql,
            focus_version=self.version,
            json_map_columns=map_cols,
            warnings=self.warnings,
            keepalive=self.con,
            replace_on=self.replace_on,
            replace_skips_nulls=True,
        )

    def diagnose(self, exc: BaseException) -> IngestError:
        """Scan again, single-threaded with row numbers, for the first values that cannot load."""
        checks = [c for c in self.conversions if c.bad]
        if not checks:
            return self._explain(exc)
        flags = ", ".join(f"CASE WHEN {c.bad} THEN {quote_literal(c.column)} END" for c in checks)
        values = ", ".join(f"CAST({quote_ident(c.column)} AS VARCHAR)" for c in checks)
        sql = f"""SELECT __row, list_filter([{flags}], lambda x: x IS NOT NULL) AS bad, [{values}] AS vals
                  FROM (SELECT row_number() OVER () AS __row, * FROM ({self.named_sql}))
                  WHERE {" OR ".join(c.bad for c in checks if c.bad)}
                  ORDER BY __row LIMIT 10"""
        try:
            self.con.execute("SET threads = 1")
            found = self.con.execute(sql).fetchall()
        except duckdb.Error:
            return self._explain(exc)
        if not found:
            return self._explain(exc)
        row, bad, vals = found[0]
        column = bad[0]
        by_col = {c.column: (c, v) for c, v in zip(checks, vals, strict=True)}
        conv, value = by_col[column]
        what = "is empty" if value is None else f"{value!r} is not {conv.expected}"
        where = f" (line {row + 1})" if self.kind == "csv" else ""
        more = f"; {len(found) - 1}+ more bad rows follow" if len(found) > 1 else ""
        return IngestError(
            f"{what}{where}{more}", path=self.path, row=int(row), column=column, value=value
        )

    def _explain(self, exc: BaseException) -> IngestError:
        """A failure no value explains: a row check, a ragged CSV row, or else the engine's words."""
        try:
            sql = self.typed_sql(guarded=False)
            found = focus_checks.first_row_failure(
                self.con, self.path, self.kind, sql, self.row_checks()
            )
        except duckdb.Error:
            found = None
        if found is None and self.kind == "csv":
            found = focus_checks.csv_shape_error(self.con, self.path, ())
        return found or IngestError(_engine_message(exc), path=self.path)


def _engine_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def plan_file(file: SourceFile) -> FocusFile:
    """Open a file, find its dialect and FOCUS version, and plan its conversion to the ledger."""
    path = str(file.path)
    kind = file_kind(path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    raw = raw_relation_sql(path, kind)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"cannot read as {kind}: {_engine_message(exc)}", path=path) from exc
    raw_types = {name: str(t) for name, t, *_ in described}
    focus_checks.check_header(con, path, kind, list(raw_types))
    focus_checks.require_rows(con, path, kind, raw)
    native = next((d for d in billing_dialects() if d.detect(list(raw_types))), None)
    if native is not None:
        named_pairs = native.select(list(raw_types))
        named_sql = (
            "SELECT "
            + ", ".join(f"{expr} AS {quote_ident(col)}" for col, expr in named_pairs)
            + f" FROM {raw}"
        )
        plan = ColumnPlan(focus={col: col for col, _ in named_pairs})
        dialect, version = native.name, "1.2"
    else:
        plan = plan_columns(list(raw_types))
        selects = [f"{quote_ident(src)} AS {quote_ident(col)}" for col, src in plan.focus.items()]
        selects += [f"{quote_ident(e)} AS {quote_ident('__x_' + e)}" for e in plan.extras]
        named_sql = f"SELECT {', '.join(selects)} FROM {raw}"
        dialect, version = "focus", plan.version
    missing = missing_required(plan)
    if missing and kind == "csv":  # a ragged row can make DuckDB read the file as one column
        ragged = focus_checks.csv_shape_error(con, path, list(raw_types))
        if ragged is not None:
            raise ragged
    if missing:
        raise IngestError(
            f"mandatory FOCUS column{'s' if len(missing) > 1 else ''} missing: "
            f"{', '.join(missing)} (found: {', '.join(list(raw_types)[:12])}"
            f"{' ...' if len(raw_types) > 12 else ''})",
            path=path,
            column=missing[0],
        )
    named_types = {n: str(t) for n, t, *_ in con.execute(f"DESCRIBE {named_sql}").fetchall()}
    order = [c.name for c in focus_columns() if c.name in plan.focus]
    conversions = [conversion_for(col, quote_ident(col), named_types[col]) for col in order]
    warnings = _plan_warnings(plan, version, dialect)
    return FocusFile(
        file=file,
        con=con,
        kind=kind,
        dialect=dialect,
        version=version,
        named_sql=named_sql,
        conversions=conversions,
        extras=plan.extras if native is None else [],
        warnings=warnings,
    )


def _plan_warnings(plan: ColumnPlan, version: str, dialect: str) -> list[str]:
    out = []
    if dialect == "focus":
        lacking = missing_mandatory(plan, version)
        if lacking:
            out.append(f"FOCUS {version} mandatory columns missing: {', '.join(lacking)}")
        if plan.renamed:
            pairs = ", ".join(f"{a} -> {b}" for a, b in plan.renamed.items())
            out.append(f"columns renamed to FOCUS 1.2: {pairs}")
    return out


def read_focus(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Plan every file first (so a bad header fails before anything is read), then open streams."""
    plans = [plan_file(f) for f in files]
    return [p.batch() for p in plans]
