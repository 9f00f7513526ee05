"""`costline export focus`: the ledger written back as a FOCUS file (1.0, 1.1, 1.2 or 1.3 columns).

Tags go back to FOCUS's JSON object text; the kept `x_` columns come back as columns (a non-FOCUS
column without the prefix, such as the official sample's `Id`, gets one, as FOCUS requires).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from costline.errors import CostlineError
from costline.ledger.sql import run, run_one
from costline.ledger.store import Ledger
from costline.schema import TAGS, focus_columns_of
from costline.sources.base import quote_ident, quote_literal

EXPORT_VERSIONS = ("1.0", "1.1", "1.2", "1.3")


@dataclass(frozen=True)
class ExportResult:
    path: str
    rows: int
    focus_version: str
    columns: int


def export_focus(ledger: Ledger, out: Path, *, focus_version: str = "1.2") -> ExportResult:
    if focus_version not in EXPORT_VERSIONS:
        raise CostlineError(
            f"--focus-version {focus_version}: choose one of {', '.join(EXPORT_VERSIONS)}"
        )
    name = out.name.lower()
    if name.endswith((".parquet", ".pq")):
        fmt = "FORMAT parquet, COMPRESSION zstd"
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        fmt = "FORMAT csv, HEADER true"
    else:
        raise CostlineError(f"{out}: the export must end in .parquet, .csv or .csv.gz")
    cols = []
    for c in focus_columns_of(focus_version):
        if c.dtype == TAGS:
            cols.append(
                f"CASE WHEN {quote_ident(c.name)} IS NULL THEN NULL ELSE "
                f"CAST(to_json({quote_ident(c.name)}) AS VARCHAR) END AS {quote_ident(c.name)}"
            )
        else:
            cols.append(quote_ident(c.name))
    extra_keys = [
        r[0]
        for r in ledger.con.execute(
            "SELECT DISTINCT unnest(map_keys(x_extra)) AS k FROM cost_lines ORDER BY k"
        ).fetchall()
    ]
    for key in extra_keys:
        alias = key if key.startswith("x_") else f"x_{key}"
        cols.append(f"x_extra[{quote_literal(key)}] AS {quote_ident(alias)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    select = (
        f"SELECT {', '.join(cols)} FROM cost_lines ORDER BY ChargePeriodStart, BillingAccountId"
    )
    run(ledger.con, f"COPY ({select}) TO {quote_literal(str(out))} ({fmt})")
    count = run_one(ledger.con, "SELECT count(*) FROM cost_lines")
    return ExportResult(str(out), int(count[0]) if count else 0, focus_version, len(cols))
