"""What every source adapter hands the ledger: a lazy Arrow stream in the canonical schema.

An adapter parses and maps only. It never writes the ledger: the ledger consumes the stream inside
its own transaction, and when the engine raises while reading it, the ledger asks the batch to
`diagnose` the failure so the user sees the file, the row and the column.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from costline.errors import IngestError

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class SourceFile:
    """A file named on the command line, with the fingerprint that makes re-ingestion a no-op."""

    path: Path
    fingerprint: str
    size_bytes: int

    @classmethod
    def virtual(cls, name: str, content_key: str) -> SourceFile:
        """A source that is not a file (an API pull): fingerprinted by what was asked for."""
        digest = hashlib.sha256(content_key.encode()).hexdigest()
        return cls(path=Path(name), fingerprint=digest, size_bytes=0)

    @classmethod
    def of(cls, path: Path) -> SourceFile:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return cls(path=path, fingerprint=digest.hexdigest(), size_bytes=path.stat().st_size)


@dataclass
class SourceBatch:
    """One file's rows for one ledger table, as a lazy Arrow stream or a DuckDB query.

    `reader()` opens a stream of record batches in the canonical Arrow schema of `table` (see
    `costline.schema`), except that map-typed columns travel as JSON object text: the ledger
    converts them, which is much cheaper than moving Arrow maps between engines.

    `duckdb_sql`, when set, is the same rows as a self-contained DuckDB SELECT (reading the file
    itself). A DuckDB ledger runs it inside its own INSERT, one parallel pipeline instead of two
    engines handing Arrow across; the adapter still writes nothing.
    """

    table: str
    file: SourceFile
    columns: Sequence[str]
    reader: Callable[[], pa.RecordBatchReader]
    dialect: str
    diagnose: Callable[[BaseException], IngestError]
    duckdb_sql: str | None = None
    # Further SELECTs of the same columns, inserted after `duckdb_sql` in the same transaction: for
    # plans DuckDB runs better as separate statements (not for cost lines, which are one part).
    more_duckdb_sql: Sequence[str] = ()
    focus_version: str | None = None
    json_map_columns: Sequence[str] = ()
    warnings: list[str] = field(default_factory=list)
    # Rows already in the ledger (from earlier ingestions) with the same values of these columns are
    # replaced: a workload seen again in a newer dump or pull is its newer state, not a second one.
    replace_on: Sequence[str] = ()
    # True: a row with a null key replaces nothing (an LLM rollup row has no request id, and two
    # rollups are not one request seen twice); False: null keys match null keys.
    replace_skips_nulls: bool = False
    # With `replace_on`: the column saying when the source observed a row's state (a snapshot's
    # time). Newest wins, whatever the order of ingestion: the ledger keeps one row per key, the
    # one with the newest time (null counts as oldest); on a tie, this ingestion's, then the later
    # file's. Without it, this ingestion's rows replace the ledger's whatever their times.
    newest_by: str | None = None
    # Rows of earlier ingestions with these column values are replaced whole: the batch is all that
    # is left of that state (a registry file: an entry it no longer declares is gone).
    replace_scope: Mapping[str, str] = field(default_factory=dict)
    # Keeps the adapter's own engine (e.g. an in-memory DuckDB) alive while `reader` is consumed.
    keepalive: Any = None


def arrow_batch(
    table: str,
    file: SourceFile,
    rows: pa.Table,
    *,
    dialect: str,
    json_map_columns: Sequence[str] = (),
    warnings: Sequence[str] = (),
    replace_on: Sequence[str] = (),
    replace_skips_nulls: bool = False,
    newest_by: str | None = None,
    replace_scope: Mapping[str, str] | None = None,
) -> SourceBatch:
    """A batch of rows an adapter built itself (parsed in Python, pulled from an API).

    Values were checked while building them, so the engine has nothing left to refuse; an error
    here is the ledger's own and is reported against the file as a whole.
    """

    def diagnose(exc: BaseException) -> IngestError:
        return IngestError(
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__, path=str(file.path)
        )

    return SourceBatch(
        table=table,
        file=file,
        columns=rows.column_names,
        reader=lambda: rows.to_reader(),
        dialect=dialect,
        diagnose=diagnose,
        json_map_columns=list(json_map_columns),
        warnings=list(warnings),
        replace_on=list(replace_on),
        replace_skips_nulls=replace_skips_nulls,
        newest_by=newest_by,
        replace_scope=dict(replace_scope or {}),
    )


@dataclass(frozen=True)
class FileSource:
    """A file format `costline ingest NAME` reads: which files, and the adapter that reads them.

    Defined beside each adapter; `costline.pipeline.ingest_files` runs any of them.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Sequence[SourceFile]], list[SourceBatch]]
    # For a format whose file is the whole state of a scope (a registry file): the table and the
    # `replace_scope` a file's batch has. A file whose bytes were ingested before is then a
    # duplicate only while the ledger's rows of that scope still come from it, so going back to
    # an earlier version of the file is ingested again (and is the state again).
    state_of: Callable[[SourceFile], tuple[str, Mapping[str, str]]] | None = None


@dataclass(frozen=True)
class NativeDialect:
    """A provider-native billing format mapped to FOCUS column names.

    `detect` says whether a file with these (exact, case-sensitive) column names is in this dialect.
    `select` returns, for the file's columns, a list of `(focus_column, sql_expression)` pairs over
    the raw columns (all read as VARCHAR from CSV, or with their Parquet types). Expressions are DuckDB
    SQL; quote raw column names with `quote_ident`. The FOCUS reader then types and validates the
    result exactly as it does a FOCUS file, so expressions may return VARCHAR.
    """

    name: str
    description: str
    detect: Callable[[Sequence[str]], bool]
    select: Callable[[Sequence[str]], list[tuple[str, str]]]


def billing_dialects() -> list[NativeDialect]:
    """Every registered dialect (the `costline_billing_dialects` hook of `costline.plugins`),
    built-in and third-party, in registration order."""
    from costline.plugins import manager

    found: list[NativeDialect] = []
    for dialects in reversed(manager().hook.costline_billing_dialects()):
        found.extend(dialects)
    return found


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted: `lineItem/UnblendedCost` -> `"lineItem/UnblendedCost"`."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
