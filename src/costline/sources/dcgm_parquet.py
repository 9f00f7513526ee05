"""Bulk DCGM history as Parquet: a month of 1,000 GPUs is 43M samples, too many for text.

Two layouts, told apart by their columns (names are matched exactly, as Prometheus spells them):

- **long**: one row per sample of one series, as a TSDB export writes it: a metric name column
  (`__name__`, `metric` or `name`), a `value` column, a time column and one column per label.
- **wide**: one row per series instant with a column per DCGM metric (`DCGM_FI_DEV_GPU_UTIL`,
  `DCGM_FI_PROF_SM_ACTIVE`, ...), as a pivoted export or `dcgmi dmon` collected into a table writes it.

The time column is `timestamp`, `ts` or `time`: a Parquet timestamp (one without a zone is UTC), or
epoch seconds or milliseconds by the text format's rule (at or above 1e11 is milliseconds). Every
other text or integer column is a label, read with the same spellings as the text format
(`costline.sources.dcgm.identify`); other columns, and DCGM metrics we do not keep, are ignored
and named in a note.

The rows are the ones the text format gives for the same samples: blank sentinels are NULL, a
NaN or negative value of a metric we keep refuses the file (naming the row and column), and a
time-sliced GPU's rows share its time. To keep a month fast, the adapter first reads the distinct
label sets with the first and last instant of each; a device whose users never overlap in time, and
whose series map one to one onto users, is written straight through with share 1, and only the
others go through the per-instant merge.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow as pa

from costline.errors import IngestError
from costline.sources import dcgm
from costline.sources.base import SourceBatch, SourceFile, quote_ident, quote_literal
from costline.sources.dcgm_sql import FIELDS, DeviceTable, gpu_sample_rows_sql, who_sql

TIME_COLUMNS = ("timestamp", "ts", "time")
NAME_COLUMNS = ("__name__", "metric", "name")
_LABEL_TYPES = (
    "VARCHAR",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


class _Layout:
    """What the file's columns say: its time column, layout, metrics and labels."""

    def __init__(self, path: str, columns: dict[str, str]) -> None:
        self.path = path
        self.time = next((c for c in TIME_COLUMNS if c in columns), None)
        if self.time is None:
            raise IngestError(
                f"no time column: expected one of {', '.join(TIME_COLUMNS)} among "
                f"{', '.join(columns)}",
                path=path,
            )
        self.time_type = columns[self.time]
        self.name = next((c for c in NAME_COLUMNS if c in columns), None)
        self.long = self.name is not None and "value" in columns
        taken = {self.time, *((self.name, "value") if self.long else ())}
        self.metrics = [] if self.long else [c for c in columns if c in dcgm.METRIC_FIELDS]
        if not self.long and not self.metrics:
            raise IngestError(
                "no DCGM samples: expected a metric name column (__name__, metric or name) with "
                "a value column, or columns named by DCGM metrics (DCGM_FI_DEV_GPU_UTIL, ...)",
                path=path,
            )
        taken.update(self.metrics)
        self.labels = [
            c
            for c, t in columns.items()
            if c not in taken and t in _LABEL_TYPES and not _is_metric(c)
        ]
        self.ignored = [c for c in columns if c not in taken and c not in self.labels]

    def ts_us(self) -> str:
        """The time column as integer microseconds since the epoch."""
        col = quote_ident(self.time or "")
        if self.time_type.startswith(("TIMESTAMP", "DATE")):
            return f"epoch_us(CAST({col} AS TIMESTAMPTZ))"
        t = f"CAST({col} AS DOUBLE)"
        return (
            f"CAST(round(CASE WHEN abs({t}) >= {dcgm.MS_TIMESTAMP_FLOOR} THEN {t} * 1000 "
            f"ELSE {t} * 1e6 END) AS BIGINT)"
        )

    def label_key(self) -> str:
        """One hash of every label column: the join key to the identified devices."""
        if not self.labels:
            return "CAST(0 AS UBIGINT)"
        return "hash(" + ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in self.labels) + ")"


def _is_metric(column: str) -> bool:
    return column.upper().startswith("DCGM_") and column not in dcgm.LABELS["gpu_model"]


def _reading(expr: str, factor: float) -> str:
    v = f"CAST({expr} AS DOUBLE)"
    return (
        f"CASE WHEN {_refused(expr)} THEN error('costline: not a DCGM reading') "
        f"WHEN isinf({v}) OR {v} >= {dcgm.BLANK_FLOOR} THEN NULL ELSE {v} * {factor!r} END"
    )


def _refused(expr: str) -> str:
    """SQL true where a value is refused (`costline.sources.dcgm.refused_reading`).

    Parquet min/max statistics leave NaN out, and DuckDB folds `isnan(column)` to false from
    them: `nullif` (infinity is a blank anyway) hides the statistics from that shortcut."""
    v = f"CAST({expr} AS DOUBLE)"
    return f"(isnan(nullif({v}, 'inf'::DOUBLE)) OR {v} < 0)"


def _first_refused(path: str, layout: _Layout) -> IngestError | None:
    """The first row whose kept metric is NaN or negative: the error the fast path raised."""
    columns = ["value"] if layout.long else layout.metrics
    kept = ""
    if layout.long and layout.name:
        names = ", ".join(quote_literal(m) for m in dcgm.METRIC_FIELDS)
        kept = f" AND CAST({quote_ident(layout.name)} AS VARCHAR) IN ({names})"
    flags = ", ".join(
        f"CASE WHEN {_refused(quote_ident(c))}{kept} THEN {quote_literal(c)} END" for c in columns
    )
    values = ", ".join(f"CAST({quote_ident(c)} AS DOUBLE)" for c in columns)
    con = duckdb.connect()
    try:
        found = con.execute(
            f"SELECT file_row_number, list_filter([{flags}], lambda x: x IS NOT NULL)[1], "
            f"[{values}] FROM read_parquet({quote_literal(path)}, file_row_number = true) "
            f"WHERE list_filter([{flags}], lambda x: x IS NOT NULL) <> [] ORDER BY 1 LIMIT 1"
        ).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    if not found:
        return None
    row, column, vals = found[0]
    value = vals[columns.index(column)]
    why = dcgm.refused_reading(value) or "not a reading"
    return IngestError(why, path=path, row=int(row) + 1, column=column, value=str(value))


def _identify(
    con: duckdb.DuckDBPyConnection, layout: _Layout, out: Path, instants: int
) -> tuple[list[str], bool, bool]:
    """Write the `devices` Parquet (label key -> cell, device, user, flags).

    Returns the metrics whose series name no GPU, and whether any device is merged, and grouped.

    Flags, per device: `merged` when two users may hold it at one instant, or a device-wide series
    runs beside a user's (the per-instant merge applies); `grouped` when one user's samples come in
    more than one row per instant (two series with the same meaning, or repeated rows: they are
    folded). `instants` is the file's number of distinct instants: a series with more rows than
    that repeats some.
    """
    labels = ", ".join(
        f"CAST({quote_ident(c)} AS VARCHAR) AS {quote_ident(c)}" for c in layout.labels
    )
    name = f", {quote_ident(layout.name)} AS metric" if layout.long and layout.name else ""
    groups = con.execute(
        f"SELECT {layout.label_key()} AS k, {labels + ',' if labels else ''} min(ts_us), max(ts_us), "
        f"count(*){', list(DISTINCT metric)' if name else ''} "
        f"FROM (SELECT *, {layout.ts_us()} AS ts_us{name} FROM read_parquet({quote_literal(layout.path)})) "
        "GROUP BY ALL"
    ).fetchall()
    if len({g[0] for g in groups}) != len(groups):
        raise IngestError(
            "two label sets share one hash; please report this file", path=layout.path
        )
    n = len(layout.labels)
    table = DeviceTable()
    spans: dict[dcgm.Device, list[tuple[int, int, int]]] = defaultdict(list)  # (first, last, cell)
    repeated: set[dcgm.Device] = set()
    unidentified: set[str] = set()
    for group in groups:
        values = dict(zip(layout.labels, group[1 : 1 + n], strict=True))
        found = dcgm.identify({k: v for k, v in values.items() if v is not None})
        if found is None:
            unidentified.update(group[4 + n] if layout.long else layout.metrics)
            continue
        cell = table.add(group[0], *found)
        spans[found[0]].append((group[1 + n], group[2 + n], cell))
        per_series = group[3 + n] / len(group[4 + n]) if layout.long else group[3 + n]
        if per_series > instants:
            repeated.add(found[0])
    merged, grouped = [], []
    for device, device_spans in spans.items():
        if _overlap(device_spans, same_cell=False):
            merged.append(table.devices[device])
        if device in repeated or _overlap(device_spans, same_cell=True):
            grouped.append(table.devices[device])
    table.create(
        con,
        "UBIGINT",
        ", list_contains($15, device_key) AS merged, list_contains($16, device_key) AS grouped",
        [merged, grouped],
    )
    con.execute(f"COPY devices TO {quote_literal(str(out))} (FORMAT parquet)")
    if layout.long:
        unidentified &= set(dcgm.METRIC_FIELDS)
    return sorted(unidentified), bool(merged), bool(grouped)


def _overlap(spans: list[tuple[int, int, int]], *, same_cell: bool) -> bool:
    """True when two series of one cell (`same_cell`), or of two cells, may have rows at one instant."""
    ordered = sorted(spans)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b[0] > a[1]:
                break  # sorted by first instant: no later series starts before `a` ends
            if (a[2] == b[2]) == same_cell:
                return True
    return False


def _main_sql(
    layout: _Layout, devices: Path, sample_seconds: float, *, merged: bool, grouped: bool
) -> list[str]:
    """The SELECTs of the rows, inserted one after the other.

    Wide: rows written straight through, then (when there are any) rows of merged (time-sliced)
    devices: two statements, not one UNION, so DuckDB streams the first and holds only the second.
    Long: one statement, as both kinds of rows come out of the one pivot.
    """
    path = quote_literal(layout.path)
    fields = ", ".join(FIELDS)
    keys = "ts_us, cell, device_key, nobody, merged, grouped"
    if layout.long:
        factors = ", ".join(
            f"({quote_literal(m)}, {quote_literal(f)}, {factor!r})"
            for m, (f, factor) in dcgm.METRIC_FIELDS.items()
        )
        picks = ", ".join(f"max(val) FILTER (WHERE field = '{f}') AS {f}" for f in FIELDS)
        cells = f"""
          metrics(metric, field, factor) AS (VALUES {factors}),
          src AS (
            SELECT {layout.ts_us()} AS ts_us, {layout.label_key()} AS k,
                   CAST({quote_ident(layout.name or "")} AS VARCHAR) AS metric, value
            FROM read_parquet({path})
          ),
          all_cells AS (
            SELECT {keys}, {picks}
            FROM (SELECT ts_us, k, field, {_reading("value", 1.0)} * factor AS val
                  FROM src JOIN metrics USING (metric)) s
            JOIN devices d ON d.key = s.k GROUP BY ALL
          ),
          simple AS (SELECT * FROM all_cells WHERE NOT merged),
          cells AS (SELECT * FROM all_cells WHERE merged)"""
    else:
        by_field: dict[str, list[str]] = defaultdict(list)
        for m in layout.metrics:
            field, factor = dcgm.METRIC_FIELDS[m]
            by_field[field].append(_reading(quote_ident(m), factor))
        values = ", ".join(
            f"coalesce({', '.join(by_field[f])}) AS {f}"
            if f in by_field
            else f"CAST(NULL AS DOUBLE) AS {f}"
            for f in FIELDS
        )
        # Only the branches this file needs: an empty UNION branch still costs DuckDB gigabytes.
        parts = [
            f"SELECT ts_us, cell, device_key, nobody, {fields} FROM joined WHERE merged AND NOT grouped"
        ]
        if grouped:
            parts.append(
                f"SELECT ts_us, cell, device_key, nobody, {', '.join(f'max({f}) AS {f}' for f in FIELDS)} "
                "FROM joined WHERE grouped GROUP BY ts_us, cell, device_key, nobody"
            )
        cells_sql = " UNION ALL ".join(parts)
        # Not materialized: the file is read twice (straight rows, merged rows) rather than held.
        cells = f"""
          src AS NOT MATERIALIZED (
            SELECT {layout.ts_us()} AS ts_us, {layout.label_key()} AS k, {values}
            FROM read_parquet({path})
          ),
          joined AS NOT MATERIALIZED (SELECT {keys}, {fields} FROM src JOIN devices d ON d.key = src.k),
          simple AS NOT MATERIALIZED (SELECT * FROM joined WHERE NOT merged AND NOT grouped),
          cells AS ({cells_sql})"""
    ctes = f"devices AS (SELECT * FROM read_parquet({quote_literal(str(devices))})), {cells}, {who_sql()}"
    direct = f"SELECT ts_us, cell, 1.0 AS share, {fields} FROM simple"
    if layout.long:
        return [
            gpu_sample_rows_sql(
                ctes, sample_seconds, source="dcgm-file", direct=direct, order=False
            )
        ]
    statements = [
        gpu_sample_rows_sql(
            ctes, sample_seconds, source="dcgm-file", direct=direct, merge=False, order=False
        )
    ]
    if merged or grouped:
        statements.append(
            gpu_sample_rows_sql(ctes, sample_seconds, source="dcgm-file", order=False)
        )
    return statements


def read_dcgm_parquet(file: SourceFile, *, sample_seconds: float | None = None) -> SourceBatch:
    """A Parquet file of DCGM samples (long or wide, see the module docstring) as a `gpu_samples` batch."""
    path = str(file.path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({quote_literal(path)})"
        ).fetchall()
    except duckdb.Error as exc:
        raise IngestError(f"cannot read as Parquet: {str(exc).splitlines()[0]}", path=path) from exc
    layout = _Layout(path, {r[0]: r[1] for r in described})
    count = con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(path)})").fetchall()
    if not count[0][0]:
        raise IngestError("no samples: the file has no rows", path=path)
    types = {r[0]: r[1] for r in described}
    numeric = ["value"] if layout.long else list(layout.metrics)
    if layout.time is not None and not layout.time_type.startswith(("TIMESTAMP", "DATE")):
        numeric.append(layout.time)  # epoch seconds or milliseconds
    _check_text_numbers(con, path, [c for c in numeric if types[c] == "VARCHAR"])
    workdir = tempfile.TemporaryDirectory(prefix="costline-dcgm-")
    devices = Path(workdir.name) / "devices.parquet"
    try:
        stamps = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {layout.ts_us()} FROM read_parquet({quote_literal(path)}) ORDER BY 1"
            ).fetchall()
        ]
        unidentified, merged, grouped = _identify(con, layout, devices, len(stamps))
        if sample_seconds is None:
            sample_seconds = dcgm.median_gap_seconds(stamps) or dcgm.DEFAULT_SAMPLE_SECONDS
    except duckdb.Error as exc:
        workdir.cleanup()
        raise IngestError(str(exc).splitlines()[0], path=path) from exc
    finally:
        con.close()
    sql, *more_sql = _main_sql(layout, devices, sample_seconds, merged=merged, grouped=grouped)
    warnings = dcgm.unidentified_notes(unidentified)
    if layout.ignored:
        warnings.append(
            f"columns ignored (not a label or a DCGM metric we keep): {', '.join(layout.ignored)}"
        )

    def reader() -> pa.RecordBatchReader:
        """The same rows for an engine that cannot run `duckdb_sql` itself."""
        rows = duckdb.connect().sql(" UNION ALL ".join(f"({q})" for q in (sql, *more_sql)))
        return rows.to_arrow_reader().cast(dcgm.GPU_SAMPLE_ARROW)

    def diagnose(exc: BaseException) -> IngestError:
        refused = _first_refused(path, layout)
        return refused or IngestError(str(exc).splitlines()[0] or type(exc).__name__, path=path)

    return SourceBatch(
        table="gpu_samples",
        file=file,
        columns=dcgm.GPU_SAMPLE_ARROW.names,
        reader=reader,
        dialect="dcgm-parquet-long" if layout.long else "dcgm-parquet-wide",
        diagnose=diagnose,
        duckdb_sql=sql,
        more_duckdb_sql=more_sql,
        warnings=warnings,
        keepalive=workdir,
    )


def _check_text_numbers(con: duckdb.DuckDBPyConnection, path: str, columns: list[str]) -> None:
    """Columns that must hold numbers but are stored as text: name the first row that does not."""
    for column in columns:
        col = quote_ident(column)
        bad = con.execute(
            f"SELECT file_row_number, {col} FROM read_parquet({quote_literal(path)}, "
            f"file_row_number = true) WHERE {col} IS NOT NULL AND TRY_CAST({col} AS DOUBLE) IS NULL "
            "ORDER BY 1 LIMIT 1"
        ).fetchall()
        if bad:
            raise IngestError(
                f"{bad[0][1]!r} is not a number",
                path=path,
                row=int(bad[0][0]) + 1,
                column=column,
                value=bad[0][1],
            )
