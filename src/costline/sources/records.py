"""Rows an adapter built in Python, as an Arrow table in a ledger table's canonical types.

Adapters that parse record by record (JSON dumps, sacct text, YAML registries, inventories) collect
plain dicts; this turns them into the Arrow table `arrow_batch` hands the ledger. Map columns travel
as JSON object text (the ledger converts them), decimals are rounded to the column's scale, and
columns no row sets are left out (the ledger fills them with NULL).

    >>> t = records_table("workloads", [{"workload_id": "a", "tags": {"team": "ml"}}])
    >>> t.column_names
    ['workload_id', 'tags']
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import ibis.expr.datatypes as dt
import pyarrow as pa

from costline import schema
from costline.errors import IngestError


def map_columns(table: str) -> list[str]:
    """The map-typed columns of a ledger table (they travel as JSON object text)."""
    return [name for name, dtype in schema.tables()[table].items() if dtype.is_map()]


def records_table(table: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """`rows` (dicts keyed by column name) as an Arrow table in `table`'s canonical types."""
    target = schema.tables()[table]
    names = [name for name in target.names if any(r.get(name) is not None for r in rows)]
    if not rows:
        names = [target.names[0]]
    arrays: dict[str, pa.Array] = {}
    for name in names:
        dtype = target[name]
        values = [r.get(name) for r in rows]
        if dtype.is_map():
            arrays[name] = pa.array([_json_map(v) for v in values], pa.string())
        elif dtype.is_decimal():
            arrays[name] = pa.array([_decimal(v, dtype) for v in values], dtype.to_pyarrow())
        else:
            arrays[name] = pa.array(values, dtype.to_pyarrow())
    return pa.table(arrays)


def _json_map(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True)


def _decimal(value: Decimal | Fraction | int | None, dtype: dt.DataType) -> Decimal | None:
    if value is None:
        return None
    assert isinstance(dtype, dt.Decimal)
    scale = dtype.scale if dtype.scale is not None else 0
    exact = (
        Decimal(value.numerator) / Decimal(value.denominator)
        if isinstance(value, Fraction)
        else Decimal(value)
    )
    return exact.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file; a bad line is an
    `IngestError` naming the file and line."""
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IngestError(f"invalid JSON: {exc.msg}", path=str(path), row=line) from None
        if not isinstance(value, dict):
            raise IngestError("each line must be a JSON object", path=str(path), row=line)
        yield line, value
