"""`cost_lines` as a typed view over a few shape tables; each ingested file is a part of one.

A FOCUS file fills 20 to 45 of the ledger's 85 cost-line columns. Writing the absent ones as NULLs
into one wide table still doubles the write on DuckDB 2.0: a million 25-column rows take 1.8 s of
CPU into a table of their own columns and 3.6 s into the 85-column one, with `INSERT BY NAME` or
one full-width SELECT alike (`bench/many_files.py --null-cost`, docs/benchmarks.md). So rows are
stored only in the columns their file has: files with the same set of columns (a "shape": every
export of one provider and dialect has the same) share one table in schema `parts`, and
`cost_lines` is a view that unions the shapes and supplies typed NULLs for the rest. Readers (Ibis, `costline sql`, exports)
see one table with the canonical schema.

Until issue 14 each file got its own table, so the view unioned one branch per file: at 400 files
a `count(*)` took 5.3 s and each ingest rebuilt and re-planned the whole union. Now the number of
tables and view branches is the number of shapes (a handful), whatever the number of files, and a
ledger of 5,000 files reads like one of a single file (`bench/many_files.py`).

A file's rows carry its part number (`x_part`, increasing, not part of the view); the registry
(`cost_line_parts`) says which ingestion and file each part came from, and `cost_line_keys` holds
each part's restatement keys (provider, billing account, billing period) with their row count and
billed cost. Restatement reads that small table, not the cost lines, and deletes only in the parts
holding a restated key (`x_part` ascends with the table, so DuckDB's zone maps skip the others):
ingesting a file costs the same with 10 or 5,000 files already in the ledger.

Shapes, parts and keys change only inside the ledger's write transaction, and the view is rebuilt
in the same transaction when a shape is added, so a crash leaves all of them as they were.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
from ibis.backends.sql.datatypes import DuckDBType
from ibis.expr.schema import Schema

from costline.ledger.sql import run, run_one
from costline.money import MONEY_SQL

SCHEMA = "parts"
REGISTRY = "cost_line_parts"  # one row per file whose rows are (still) in the ledger
SHAPES = "cost_line_shapes"  # one row per shape table and its columns
KEYS = "cost_line_keys"  # per part: its restatement keys, rows and billed cost
VIEW = "cost_lines"
PART = "x_part"  # a part's number on its rows (BIGINT); not in the view


@dataclass(frozen=True)
class Part:
    """One file's rows: their number and the shape table that holds them."""

    seq: int
    shape: str
    columns: frozenset[str]


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Migration step: the shape registry and the key summary; the part registry gains `shape`."""
    run(con, f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    run(
        con,
        f"""CREATE TABLE IF NOT EXISTS {REGISTRY} (
              part VARCHAR PRIMARY KEY, ingestion_id VARCHAR, fingerprint VARCHAR,
              seq BIGINT, created_at TIMESTAMPTZ DEFAULT now())""",
    )
    run(con, f"ALTER TABLE {REGISTRY} ADD COLUMN IF NOT EXISTS shape VARCHAR")
    run(
        con,
        f"""CREATE TABLE IF NOT EXISTS {SHAPES} (
              shape VARCHAR PRIMARY KEY, columns VARCHAR[], seq BIGINT)""",
    )
    run(
        con,
        f"""CREATE TABLE IF NOT EXISTS {KEYS} (
              part BIGINT, provider VARCHAR, account VARCHAR, period TIMESTAMPTZ,
              currency VARCHAR, n BIGINT, cost {MONEY_SQL})""",
    )


def shapes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, frozenset[str]]]:
    """Every shape table with its columns, oldest first."""
    rows = run(con, f"SELECT shape, columns FROM {SHAPES} ORDER BY seq")
    return [(name, frozenset(cols)) for name, cols in rows]


def shape_for(con: duckdb.DuckDBPyConnection, columns: Iterable[str], canonical: Schema) -> str:
    """The shape table holding exactly these columns; created (and the view rebuilt) if new."""
    wanted = sorted(set(columns))
    row = run_one(con, f"SELECT shape FROM {SHAPES} WHERE columns = ?", [wanted])
    if row:
        return str(row[0])
    top = run_one(con, f"SELECT coalesce(max(seq), 0) + 1 FROM {SHAPES}")
    seq = int(top[0]) if top else 1
    name = f"{SCHEMA}.cost_lines_shape_{seq:03d}"
    cols = [f'"{c}" {t}' for c, t in column_types(canonical) if c in wanted]
    run(con, f"CREATE TABLE {name} ({', '.join([*cols, f'{PART} BIGINT'])})")
    run(con, f"INSERT INTO {SHAPES} (shape, columns, seq) VALUES (?, ?, ?)", [name, wanted, seq])
    rebuild_view(con, canonical)
    return name


def new_part(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    canonical: Schema,
    ingestion_id: str,
    fingerprint: str,
) -> Part:
    """Register a part for one file's rows with these columns (its shape made if new)."""
    shape = shape_for(con, columns, canonical)
    row = run_one(con, f"SELECT coalesce(max(seq), 0) + 1 FROM {REGISTRY}")
    seq = int(row[0]) if row else 1
    run(
        con,
        f"INSERT INTO {REGISTRY} (part, ingestion_id, fingerprint, seq, shape) "
        "VALUES (?, ?, ?, ?, ?)",
        [f"{seq:06d}", ingestion_id, fingerprint, seq, shape],
    )
    return Part(seq, shape, frozenset(columns))


def provider_key(alias: str, present: bool | Iterable[str]) -> str:
    """The provider of a cost line for restatement: 1.3's ServiceProviderName, else ProviderName.

    `present` is True for the view (every column exists) or the columns a shape has.
    """
    have = None if present is True else set(present or ())
    cols = [
        f'{alias}."{c}"'
        for c in ("ServiceProviderName", "ProviderName")
        if have is None or c in have
    ]
    return f"coalesce({', '.join(cols)})" if cols else "NULL"


def key_exprs(alias: str, present: frozenset[str]) -> tuple[str, str, str]:
    """(provider, billing account, billing period) of a row of a shape with these columns."""
    account = f'{alias}."BillingAccountId"' if "BillingAccountId" in present else "NULL"
    period = f'{alias}."BillingPeriodStart"' if "BillingPeriodStart" in present else "NULL"
    return provider_key(alias, present), account, f"CAST({period} AS TIMESTAMPTZ)"


def summarise(
    con: duckdb.DuckDBPyConnection, shape: str, columns: frozenset[str], seq: int | None = None
) -> None:
    """Record the restatement keys of part `seq` of a shape (a scan of its rows only), or of
    every part in the shape (migration), with their rows and billed cost."""
    provider, account, period = key_exprs("c", columns)
    currency = 'c."BillingCurrency"' if "BillingCurrency" in columns else "NULL"
    cost = 'c."BilledCost"' if "BilledCost" in columns else f"CAST(NULL AS {MONEY_SQL})"
    where = "" if seq is None else f" WHERE c.{PART} = {int(seq)}"
    run(
        con,
        f"""INSERT INTO {KEYS} (part, provider, account, period, currency, n, cost)
            SELECT c.{PART}, {provider}, {account}, {period}, {currency}, count(*), sum({cost})
            FROM {shape} c{where} GROUP BY ALL""",
    )


def restate(con: duckdb.DuckDBPyConnection, restated: str, ingestion_id: str) -> None:
    """Delete the rows of older parts whose key is in the `restated` table (columns p, a, s).

    Only parts the key summary names are touched; a part left without rows leaves the registry.
    """
    match = "k.p IS NOT DISTINCT FROM o.provider AND k.a IS NOT DISTINCT FROM o.account " \
            "AND k.s IS NOT DISTINCT FROM o.period"  # fmt: skip
    hit = run(
        con,
        f"""SELECT DISTINCT r.shape, o.part FROM {KEYS} o JOIN {REGISTRY} r ON r.seq = o.part
            WHERE r.ingestion_id <> ? AND EXISTS (SELECT 1 FROM {restated} k WHERE {match})
            ORDER BY 1, 2""",
        [ingestion_id],
    )
    by_shape: dict[str, list[int]] = {}
    for shape, part in hit:
        by_shape.setdefault(shape, []).append(int(part))
    present = dict(shapes(con))
    for shape, seqs in by_shape.items():
        provider, account, period = key_exprs("c", present[shape])
        run(
            con,
            f"""DELETE FROM {shape} c
                WHERE c.{PART} BETWEEN {min(seqs)} AND {max(seqs)} AND c.{PART} IN ({_ints(seqs)})
                AND EXISTS (SELECT 1 FROM {restated} k WHERE k.p IS NOT DISTINCT FROM {provider}
                  AND k.a IS NOT DISTINCT FROM {account} AND k.s IS NOT DISTINCT FROM {period})""",
        )
    touched = _ints(int(p) for _, p in hit)
    if touched:
        run(con, f"DELETE FROM {KEYS} o WHERE o.part IN ({touched}) AND EXISTS ("
                 f"SELECT 1 FROM {restated} k WHERE {match})")  # fmt: skip
        run(con, f"DELETE FROM {REGISTRY} WHERE seq IN ({touched}) AND seq NOT IN ("
                 f"SELECT part FROM {KEYS} WHERE part IN ({touched}))")  # fmt: skip


def _ints(values: Iterable[int]) -> str:
    return ", ".join(str(int(v)) for v in values)


@functools.cache
def column_types(canonical: Schema) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of a schema: spelled once, not on every ingest (~50 ms for 85)."""
    return tuple((name, DuckDBType.to_string(dtype)) for name, dtype in canonical.items())


def select_sql(
    table: str | None, present: frozenset[str], canonical: Schema, where: str = ""
) -> str:
    """One table's rows with the canonical columns: its own, typed NULLs for the rest."""
    cols = []
    for name, sql_type in column_types(canonical):
        source = f'"{name}"' if name in present else "NULL"
        cols.append(f'CAST({source} AS {sql_type}) AS "{name}"')
    body = f"SELECT {', '.join(cols)}"
    return f"{body} FROM {table}{where}" if table else f"{body} WHERE false"


def lines_sql(con: duckdb.DuckDBPyConnection, canonical: Schema, where: str = "") -> str:
    """The cost lines with the canonical columns, as SQL; `where` (e.g. on `x_part`) applies to
    every shape, so a query about a few parts reads only their rows."""
    suffix = f" WHERE {where}" if where else ""
    selects = [select_sql(s, cols, canonical, suffix) for s, cols in shapes(con)]
    return "\nUNION ALL ".join(selects or [select_sql(None, frozenset(), canonical)])


def rebuild_view(con: duckdb.DuckDBPyConnection, canonical: Schema) -> None:
    """Point `cost_lines` at the current shapes, with the canonical columns and types."""
    run(con, f"CREATE OR REPLACE VIEW {VIEW} AS " + lines_sql(con, canonical))
