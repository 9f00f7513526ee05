"""The fast path for timestamped dcgm-exporter text: DuckDB splits and pivots, Python names devices.

A scrape spends eight text lines on one GPU sample, and label sets repeat in every scrape. So the
lines are split with string functions in DuckDB (parallel), each distinct label block is parsed and
identified once in Python by `costline.sources.dcgm.identify` (the one mapping of labels to
columns), and DuckDB joins, pivots and applies time-slice shares. It gives the same rows as the
general parser, which still reads whatever this path declines: samples without timestamps,
escaped label values, exemplars, or a line it cannot split (there the general parser names the line).

One difference, on purpose: a device-level reading fills a pod row's empty field even when the pod's
own series held a blank sentinel at that instant (the general parser keeps the blank).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from costline.sources import dcgm
from costline.sources.base import SourceBatch, SourceFile, arrow_batch, quote_literal

FIELDS = sorted({field for field, _ in dcgm.METRIC_FIELDS.values()})


def _lines_sql(path: str) -> str:
    """One row per sample line: metric, label block, value and timestamp as text."""
    source = (
        f"read_csv({quote_literal(path)}, columns = {{'line': 'VARCHAR'}}, delim = '\\x01', "
        "quote = '', escape = '', header = false, auto_detect = false, strict_mode = false)"
    )
    # `} ` closes the label block; a line with surrounding whitespace, a carriage return, an escape
    # or an exemplar is "unusual" and the whole file goes to the general parser.
    return f"""
      WITH cut AS (
        SELECT line, strpos(line, '{{') AS lb, strpos(line, '}} ') AS rb
        FROM {source}
        WHERE line IS NOT NULL AND line <> '' AND NOT starts_with(line, '#')
      ), parts AS (
        SELECT
          CASE WHEN lb > 0 THEN left(line, lb - 1) ELSE split_part(line, ' ', 1) END AS metric,
          CASE WHEN lb > 0 THEN substr(line, lb + 1, rb - lb - 1) ELSE '' END AS labels,
          string_split(CASE WHEN lb > 0 THEN substr(line, rb + 2)
                            ELSE substr(line, strpos(line, ' ') + 1) END, ' ') AS rest,
          (lb > 0 AND rb = 0) OR contains(line, '\\') OR contains(line, ' # ')
            OR starts_with(line, ' ') OR ends_with(line, ' ') OR ends_with(line, chr(13))
            OR starts_with(line, chr(9)) AS unusual
        FROM cut
      )
      SELECT metric, labels, rest[1] AS value_text, rest[2] AS ts_text, len(rest) AS tokens, unusual
      FROM parts"""


def _declines(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the general parser must read this file (it handles, or names, the odd lines:
    a kept metric's NaN or negative value among them)."""
    v = "TRY_CAST(value_text AS DOUBLE)"
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE tokens <> 2 OR unusual OR {v} IS NULL
                                    OR TRY_CAST(ts_text AS DOUBLE) IS NULL
                                    OR ((isnan({v}) OR {v} < 0) AND list_contains($1, metric))),
                   count(*)
            FROM lines""",
        [list(dcgm.METRIC_FIELDS)],
    ).fetchall()[0]
    return bool(row[0]) or not row[1]


WHO_COLUMNS = {
    "host": "VARCHAR",
    "gpu_uuid": "VARCHAR",
    "gpu_index": "INTEGER",
    "gpu_model": "VARCHAR",
    "mig_profile": "VARCHAR",
    "mig_instance_id": "VARCHAR",
    "namespace": "VARCHAR",
    "pod": "VARCHAR",
    "container": "VARCHAR",
    "job_id": "VARCHAR",
}


class DeviceTable:
    """Label sets identified once, each given its cell (one device and one user) and device number.

    The SQL then groups, counts and joins on small integers, and names devices and users only at
    the end (`gpu_sample_rows_sql`).
    """

    def __init__(self) -> None:
        self.cells: dict[tuple[dcgm.Device, dcgm.Attribution], int] = {}
        self.devices: dict[dcgm.Device, int] = {}
        self.columns: dict[str, list[object]] = {
            "key": [],
            "cell": [],
            "device_key": [],
            "nobody": [],
            **{k: [] for k in WHO_COLUMNS},
        }

    def add(self, key: object, device: dcgm.Device, who: dcgm.Attribution) -> int:
        """Record the label set `key`; returns its cell."""
        cell = self.cells.setdefault((device, who), len(self.cells))
        values = {
            **vars(device),
            **vars(who),
            "key": key,
            "cell": cell,
            "device_key": self.devices.setdefault(device, len(self.devices)),
            "nobody": who.empty,
        }
        for k, column in self.columns.items():
            column.append(values[k])
        return cell

    def create(
        self,
        con: duckdb.DuckDBPyConnection,
        key_type: str,
        extra: str = "",
        params: Sequence[object] = (),
    ) -> None:
        """The `devices` table (key, cell, device_key, nobody, who columns) in `con`.

        Built in DuckDB from list parameters: converting Python lists to Arrow imports pandas (1 s).
        """
        types = {
            "key": key_type,
            "cell": "INTEGER",
            "device_key": "INTEGER",
            "nobody": "BOOLEAN",
            **WHO_COLUMNS,
        }
        selects = ", ".join(
            f"CAST(unnest(${i + 1}) AS {types[k]}) AS {k}" for i, k in enumerate(self.columns)
        )
        con.execute(
            f"CREATE TEMP TABLE devices AS SELECT {selects}{extra}",
            [*self.columns.values(), *params],
        )


def _devices(con: duckdb.DuckDBPyConnection) -> None:
    """Each distinct label block, identified once: the `devices` table of device and user columns."""
    table = DeviceTable()
    for (block,) in con.execute("SELECT DISTINCT labels FROM lines").fetchall():
        found = dcgm.identify(dict(dcgm.label_pairs(block)))
        if found is not None:
            table.add(block, *found)
    table.create(con, "VARCHAR")


def gpu_sample_rows_sql(
    ctes: str,
    sample_seconds: float,
    *,
    source: str,
    direct: str | None = None,
    merge: bool = True,
    order: bool = True,
) -> str:
    """`gpu_samples` rows from `ctes`, which must define two relations:

    - `cells`: one row per instant and cell: ts_us (integer microseconds), cell, device_key (any
      key of the device), nobody (no pod or job holds it) and one column per field of `FIELDS`;
    - `who`: cell -> the device and user columns (`WHO_COLUMNS`).

    Shares of time-sliced devices are applied and a device's own series fill its users' empty
    fields. `direct`, when given, is a SELECT of (ts_us, cell, share, FIELDS...) rows that need no
    merging, added as they are; with `merge=False` they are the only rows and `cells` is not read.
    """
    merged = ", ".join(
        f"coalesce(u.{f}, w.{f}) AS {f}" if f != "fb_total_reported_mib" else f"u.{f} AS {f}"
        for f in FIELDS
    )
    merge_sql = f"""
      users AS (SELECT *, count(*) OVER (PARTITION BY ts_us, device_key) AS k FROM cells WHERE NOT nobody),
      wide AS (SELECT * FROM cells WHERE nobody),
      rows AS (
        SELECT u.ts_us, u.cell, 1.0 / u.k AS share, {merged}
        FROM users u LEFT JOIN wide w ON u.ts_us = w.ts_us AND u.device_key = w.device_key
        UNION ALL
        SELECT w.ts_us, w.cell, 1.0, {", ".join(f"w.{f}" for f in FIELDS)}
        FROM wide w ANTI JOIN users u ON u.ts_us = w.ts_us AND u.device_key = w.device_key
        {f"UNION ALL {direct}" if direct else ""}
      )"""
    return f"""
      WITH {ctes},
      {merge_sql if merge else f"rows AS ({direct})"}
      SELECT make_timestamp(ts_us)::TIMESTAMPTZ AS ts, host, gpu_uuid, gpu_index,
             gpu_model, mig_profile, mig_instance_id,
             gr_engine_active, sm_active, tensor_active, dram_active, gpu_util, fb_used_mib,
             CASE WHEN fb_used_mib IS NOT NULL AND fb_free_mib IS NOT NULL
                  THEN fb_used_mib + fb_free_mib + coalesce(fb_reserved_mib, 0)
                  ELSE fb_total_reported_mib END AS fb_total_mib,
             power_w, namespace, pod, container, job_id,
             CAST({sample_seconds!r} AS DOUBLE) AS sample_seconds, share AS time_slice_share,
             {quote_literal(source)} AS source
      FROM rows JOIN who USING (cell)
      {"ORDER BY ts, host, gpu_uuid, gpu_index, mig_instance_id, pod" if order else ""}"""


def who_sql(devices: str = "devices") -> str:
    """The `who` relation of `gpu_sample_rows_sql` from a devices table."""
    return f"who AS (SELECT DISTINCT cell, {', '.join(WHO_COLUMNS)} FROM {devices})"


def _pivot_sql(factors: str, sample_seconds: float) -> str:
    picks = ", ".join(f"max(val) FILTER (WHERE field = '{f}') AS {f}" for f in FIELDS)
    ctes = f"""
      metrics(metric, field, factor) AS (VALUES {factors}),
      s AS (
        SELECT CAST(round(CASE WHEN abs(t) >= {dcgm.MS_TIMESTAMP_FLOOR} THEN t * 1000 ELSE t * 1e6 END)
                    AS BIGINT) AS ts_us,
               d.cell, d.device_key, d.nobody, m.field,
               CASE WHEN isnan(v) OR isinf(v) OR v >= {dcgm.BLANK_FLOOR} THEN NULL ELSE v * m.factor END AS val
        FROM (SELECT metric, labels, CAST(value_text AS DOUBLE) AS v, CAST(ts_text AS DOUBLE) AS t
              FROM lines) l
        JOIN metrics m USING (metric) JOIN devices d ON d.key = l.labels
      ),
      cells AS (SELECT ts_us, cell, device_key, nobody, {picks} FROM s GROUP BY ALL),
      {who_sql()}"""
    return gpu_sample_rows_sql(ctes, sample_seconds, source="dcgm-file")


def read_dcgm_sql(file: SourceFile, *, sample_seconds: float | None = None) -> SourceBatch | None:
    """The file as a `gpu_samples` batch, or None when the general parser must read it."""
    path = str(file.path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.execute(f"CREATE TEMP TABLE lines AS {_lines_sql(path)}")
    except duckdb.Error:
        return None
    if _declines(con):
        return None
    _devices(con)
    unidentified = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT metric FROM lines WHERE labels NOT IN (SELECT key FROM devices) "
            "AND metric IN (SELECT unnest(?)) ORDER BY 1",
            [list(dcgm.METRIC_FIELDS)],
        ).fetchall()
    ]
    factors = ", ".join(
        f"({quote_literal(m)}, {quote_literal(f)}, {factor!r})"
        for m, (f, factor) in dcgm.METRIC_FIELDS.items()
    )
    if sample_seconds is None:
        stamps = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT CAST(round(CASE WHEN abs(t) >= {dcgm.MS_TIMESTAMP_FLOOR} THEN t * 1000 "
                "ELSE t * 1e6 END) AS BIGINT) FROM (SELECT CAST(ts_text AS DOUBLE) AS t FROM lines) ORDER BY 1"
            ).fetchall()
        ]
        sample_seconds = dcgm.median_gap_seconds(stamps) or dcgm.DEFAULT_SAMPLE_SECONDS
    table = (
        con.sql(_pivot_sql(factors, sample_seconds)).to_arrow_table().cast(dcgm.GPU_SAMPLE_ARROW)
    )
    return arrow_batch(
        "gpu_samples",
        file,
        table,
        dialect="dcgm-exporter",
        warnings=dcgm.unidentified_notes(unidentified),
    )
