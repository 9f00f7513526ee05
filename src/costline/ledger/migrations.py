"""Forward-only schema migrations of the ledger, applied in one transaction on open.

Each migration is a function of the raw DuckDB connection, numbered in order. Version 1 creates
every table of `costline.schema`. A ledger written by a newer costline is refused rather
than guessed at.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import duckdb
from ibis.backends.sql.datatypes import DuckDBType
from ibis.expr.schema import Schema

from costline import schema
from costline.errors import LedgerError
from costline.ledger import parts
from costline.ledger.sql import run, run_one
from costline.money import MONEY_SQL

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def create_table_sql(name: str, table_schema: Schema) -> str:
    cols = ",\n  ".join(
        f'"{col}" {DuckDBType.to_string(dtype)}' for col, dtype in table_schema.items()
    )
    return f'CREATE TABLE IF NOT EXISTS "{name}" (\n  {cols}\n)'


def _v1_create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name, table_schema in schema.tables().items():
        if name != parts.VIEW:
            run(con, create_table_sql(name, table_schema))
    run(con, f"CREATE SCHEMA IF NOT EXISTS {parts.SCHEMA}")
    run(
        con,
        f"""CREATE TABLE IF NOT EXISTS {parts.REGISTRY} (
              part VARCHAR PRIMARY KEY, ingestion_id VARCHAR, fingerprint VARCHAR,
              seq BIGINT, created_at TIMESTAMPTZ DEFAULT now())""",
    )
    _file_parts_view(con)


def _file_parts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, frozenset[str]]]:
    """Up to version 6, each file's rows were a table of their own: (table, seq, columns)."""
    rows = run(con, f"SELECT part, seq FROM {parts.REGISTRY} ORDER BY seq")
    out = []
    for part, seq in rows:
        schema_name, table = part.split(".", 1)
        cols = run(
            con,
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
            [schema_name, table],
        )
        out.append((part, int(seq), frozenset(c[0] for c in cols)))
    return out


def _file_parts_view(con: duckdb.DuckDBPyConnection) -> None:
    """The view over one table per file, as versions 1 to 6 kept it."""
    canonical = schema.cost_lines_schema()
    selects = [parts.select_sql(part, cols, canonical) for part, _, cols in _file_parts(con)]
    body = "\nUNION ALL ".join(selects or [parts.select_sql(None, frozenset(), canonical)])
    run(con, f"CREATE OR REPLACE VIEW {parts.VIEW} AS {body}")


def _v2_gpu_samples_unattributed(con: duckdb.DuckDBPyConnection) -> None:
    """gpu_samples loses its (always empty) stored attribution columns: see `schema.GPU_SAMPLES`."""
    present = {
        r[0]
        for r in run(
            con, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'gpu_samples'"
        )
    }
    for name in schema.ATTRIBUTION_COLUMNS:
        if name in present and name not in schema.GPU_SAMPLES:
            run(con, f'ALTER TABLE gpu_samples DROP COLUMN "{name}"')


def _v3_llm_output_cost(con: duckdb.DuckDBPyConnection) -> None:
    """llm_requests gains output_cost_usd (unit costs per 1K input and per 1K output tokens)."""
    present = {
        r[0]
        for r in run(
            con, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'llm_requests'"
        )
    }
    if "output_cost_usd" not in present:
        run(con, f"ALTER TABLE llm_requests ADD COLUMN output_cost_usd {MONEY_SQL}")


def _v4_storage_lifecycle(con: duckdb.DuckDBPyConnection) -> None:
    """storage_lifecycle: bucket lifecycle rules (compliance: storage under lifecycle rules)."""
    run(con, create_table_sql("storage_lifecycle", schema.STORAGE_LIFECYCLE))


def _v5_focus_1_4(con: duckdb.DuckDBPyConnection) -> None:
    """FOCUS 1.4: tables for the Contract Commitment, Billing Period and Invoice Detail datasets,
    and `cost_lines` gains CommitmentProgramEligibilityDetails and InvoiceDetailId."""
    for dataset, table in schema.DATASET_TABLES.items():
        if dataset != schema.COST_AND_USAGE:
            run(con, create_table_sql(table, schema.dataset_schema(dataset)))
    _file_parts_view(con)


def _v6_workload_state(con: duckdb.DuckDBPyConnection) -> None:
    """workloads gains observed_at and source_path (a workload's newest state replaces the older
    ones), and keeps one row per workload_id: the one its latest ingestion wrote. Registry rows
    of an ingestion of one registry file get that file as source_path (made absolute from here),
    so the next ingestion of the file replaces them whole."""
    run(con, "ALTER TABLE workloads ADD COLUMN IF NOT EXISTS observed_at TIMESTAMPTZ")
    run(con, "ALTER TABLE workloads ADD COLUMN IF NOT EXISTS source_path VARCHAR")
    single = run(
        con,
        "SELECT ingestion_id, any_value(path) FROM ingestions WHERE source = 'registry' "
        "GROUP BY ingestion_id HAVING count(*) = 1",
    )
    for ingestion_id, path in single:
        run(
            con,
            "UPDATE workloads SET source_path = ? "
            "WHERE source = 'registry' AND source_path IS NULL AND x_ingestion_id = ?",
            [os.path.abspath(path), ingestion_id],
        )
    run(
        con,
        """DELETE FROM workloads WHERE rowid IN (
          SELECT rid FROM (
            SELECT w.rowid AS rid, row_number() OVER (
              PARTITION BY w.workload_id ORDER BY i.at DESC NULLS LAST, w.rowid DESC) AS rank
            FROM workloads w LEFT JOIN (
              SELECT ingestion_id, max(ingested_at) AS at FROM ingestions GROUP BY ALL) i
            ON i.ingestion_id = w.x_ingestion_id)
          WHERE rank > 1)""",
    )


def _v7_shape_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Issue 14: cost lines move from one table per file into one table per shape (set of
    columns), each row numbered by its file's part (`parts.PART`), with the key summary that
    restatement reads. Totals, restatement keys and provenance stay exactly as they were."""
    canonical = schema.cost_lines_schema()
    old = _file_parts(con)
    parts.create(con)
    for table, seq, cols in old:
        shape = parts.shape_for(con, cols, canonical)
        names = sorted(cols)
        quoted = ", ".join(f'"{c}"' for c in names)
        run(
            con, f"INSERT INTO {shape} ({quoted}, {parts.PART}) SELECT {quoted}, {seq} FROM {table}"
        )
        run(con, f"UPDATE {parts.REGISTRY} SET part = ?, shape = ? WHERE seq = ?",
            [f"{seq:06d}", shape, seq])  # fmt: skip
        run(con, f"DROP TABLE {table}")
    for shape, cols in parts.shapes(con):
        parts.summarise(con, shape, cols)
    parts.rebuild_view(con, canonical)


def _v8_llm_token_audit(con: duckdb.DuckDBPyConnection) -> None:
    """llm_requests gains what the token audit reads when logs carry it: conversation_id, turn,
    prompt_hash, stop_reason, prefix_hashes and prefix_block_tokens (NULL in older rows)."""
    for name in ("conversation_id", "turn", "prompt_hash", "stop_reason", "prefix_hashes",
                 "prefix_block_tokens"):  # fmt: skip
        sql_type = DuckDBType.to_string(schema.LLM_REQUESTS[name])
        run(con, f'ALTER TABLE llm_requests ADD COLUMN IF NOT EXISTS "{name}" {sql_type}')


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "create the canonical ledger tables", _v1_create_tables),
    (2, "gpu_samples without stored attribution columns", _v2_gpu_samples_unattributed),
    (3, "llm_requests.output_cost_usd", _v3_llm_output_cost),
    (4, "storage_lifecycle", _v4_storage_lifecycle),
    (5, "FOCUS 1.4 datasets and Cost and Usage columns", _v5_focus_1_4),
    (6, "workloads.observed_at and source_path; one row per workload", _v6_workload_state),
    (7, "cost lines in one table per shape, not per file", _v7_shape_tables),
    (
        8,
        "llm_requests: conversation, turn, prompt hash, stop reason, prefix blocks",
        _v8_llm_token_audit,
    ),
]
LATEST = MIGRATIONS[-1][0]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    found = run_one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version'")
    if not found or not found[0]:
        return 0
    row = run_one(con, "SELECT max(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(
    con: duckdb.DuckDBPyConnection, migrations: list[tuple[int, str, Migration]] | None = None
) -> list[int]:
    """Apply the migrations the ledger lacks, all in one transaction; return the versions applied."""
    steps = MIGRATIONS if migrations is None else migrations
    latest = steps[-1][0]
    have = current_version(con)
    if have > latest:
        raise LedgerError(
            f"the ledger is at schema version {have}, newer than this costline knows ({latest}); "
            "upgrade costline to read it"
        )
    todo = [m for m in steps if m[0] > have]
    if not todo:
        return []
    run(con, "BEGIN TRANSACTION")
    try:
        run(
            con,
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER, description VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())",
        )
        for version, description, step in todo:
            step(con)
            run(
                con,
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [version, description],
            )
        run(con, "COMMIT")
    except BaseException:
        run(con, "ROLLBACK")
        raise
    return [m[0] for m in todo]
