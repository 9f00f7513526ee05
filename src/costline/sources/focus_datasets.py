"""FOCUS 1.4's four datasets: which one a file is, and reading the three that are not cost lines.

FOCUS 1.3 added a Contract Commitment dataset beside Cost and Usage; 1.4 added Billing Period (is a
month final?) and Invoice Detail (what was invoiced). Each is told by columns no other dataset has,
and goes into a ledger table of its own (`schema.DATASET_TABLES`), typed and checked exactly like
cost lines by the FOCUS reader's stages. Cost and Usage files and provider-native bills go on to
`focus.plan_file`; a file that is none of these is refused with what it looks like.

    >>> detect_dataset(["BillingPeriodStart", "BillingPeriodEnd", "BillingPeriodStatus"])
    'Billing Period'
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from costline.errors import IngestError
from costline.schema import (
    COST_AND_USAGE,
    DATASET_TABLES,
    FocusColumn,
    dataset_columns,
    focus_columns,
)
from costline.sources.base import (
    SourceBatch,
    SourceFile,
    billing_dialects,
    quote_ident,
    quote_literal,
)
from costline.sources.focus import (
    Conversion,
    FocusFile,
    conversion_for,
    file_kind,
    plan_file,
    raw_relation_sql,
)
from costline.sources.focus_columns import LEGACY_NAMES

# Columns that only one dataset has: any of them says which dataset a file is. A Cost and Usage
# file has charge periods; Invoice Detail shares BilledCost and InvoiceDetailId with it, not those.
MARKERS: dict[str, tuple[str, ...]] = {
    COST_AND_USAGE: ("ChargePeriodStart", "ChargePeriodEnd", "ServiceName"),
    "Contract Commitment": (
        "ContractCommitmentId",
        "ContractCommitmentCategory",
        "ContractCommitmentType",
        "ContractCommitmentPeriodStart",
    ),
    "Billing Period": ("BillingPeriodStatus", "BillingPeriodCreated", "BillingPeriodLastUpdated"),
    "Invoice Detail": (
        "InvoiceDetailCreated",
        "InvoiceDetailLastUpdated",
        "InvoiceIssueStatus",
        "InvoiceIssueDate",
        "ReferenceInvoiceId",
        "PaymentTerms",
    ),
}
# Without these a row of the dataset means nothing: their absence, or a null, is refused.
REQUIRED: dict[str, tuple[str, ...]] = {
    "Contract Commitment": ("ContractCommitmentId",),
    "Billing Period": ("BillingPeriodStart", "BillingPeriodEnd", "BillingPeriodStatus"),
    "Invoice Detail": ("InvoiceDetailId", "BilledCost", "BillingCurrency", "BillingPeriodStart"),
}
# A row of a newer ingestion with the same key replaces the older row: its newer state. A billing
# period keeps one row per LastUpdated, so the ledger holds when it closed (`ledger.periods`).
KEYS: dict[str, tuple[str, ...]] = {
    "Contract Commitment": ("ContractCommitmentId",),
    "Billing Period": ("InvoiceIssuerName", "BillingPeriodStart", "BillingPeriodLastUpdated"),
    "Invoice Detail": ("InvoiceDetailId",),
}
STATUS_VALUES = ("Open", "Closed")

# Billing formats costline does not read, told by columns they always have, so that a refusal can
# say what the file looks like (all markers must be present; names compared case-insensitively).
FOREIGN_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("an OCI native cost report", ("lineItem/referenceNo", "lineItem/tenantId", "cost/myCost")),
    (
        "an AWS Data Exports CUR 2.0 file",
        ("line_item_unblended_cost", "line_item_usage_start_date", "bill_payer_account_id"),
    ),
    ("a GCP Cloud Billing export", ("billing_account_id", "usage_start_time", "cost")),
)


def _clean(name: str) -> str:
    return name.lstrip("\ufeff").strip().lower()


def detect_dataset(columns: Sequence[str]) -> str | None:
    """The FOCUS dataset whose own columns the file has most of; None when it has none."""
    have = {_clean(c) for c in columns}
    scores = {d: sum(m.lower() in have for m in marks) for d, marks in MARKERS.items()}
    best = max(scores, key=lambda d: scores[d])
    return best if scores[best] else None


def supported_formats() -> str:
    """What `costline ingest focus` reads, for messages."""
    native = "; ".join(f"{d.name} ({d.description})" for d in billing_dialects())
    return (
        "FOCUS Cost and Usage 1.0-1.4, Contract Commitment 1.3-1.4, Billing Period 1.4 and "
        f"Invoice Detail 1.4 (CSV, CSV.gz or Parquet), and provider-native bills: {native}"
    )


def _looks_like(columns: Sequence[str]) -> str | None:
    have = {_clean(c): c for c in columns}
    for what, marks in FOREIGN_FORMATS:
        if all(m.lower() in have for m in marks):
            return f"{what} (it has {', '.join(have[m.lower()] for m in marks)})"
    focus_names = {c.name.lower() for c in focus_columns()} | {n.lower() for n in LEGACY_NAMES}
    for dataset in DATASET_TABLES:
        if dataset != COST_AND_USAGE:
            focus_names |= {c.name.lower() for c in dataset_columns(dataset)}
    if not focus_names & set(have):
        shown = ", ".join(list(columns)[:8]) + (" ..." if len(columns) > 8 else "")
        return f"no billing format costline knows: none of its columns is a FOCUS column ({shown})"
    return None


def refuse_unknown(path: str, columns: Sequence[str]) -> None:
    """Raise when the file is a format costline does not read, naming what it looks like."""
    looks = _looks_like(columns)
    if looks is not None:
        raise IngestError(
            f"not a format costline reads: it looks like {looks}. costline reads "
            f"{supported_formats()}. Export the data as FOCUS, or register a billing dialect "
            "(docs/ingestion.md)",
            path=path,
        )


def _required(conv: Conversion, column: str) -> Conversion:
    """The conversion of a column that must not be null (one of `REQUIRED`)."""
    src = quote_ident(column)
    expr = f"CASE WHEN {src} IS NULL THEN error('costline: null {column}') ELSE {conv.expr} END"
    bad = f"({src} IS NULL OR {conv.bad})" if conv.bad else f"({src} IS NULL)"
    return Conversion(column, expr, bad, conv.expected)


def _status(column: str) -> Conversion:
    """BillingPeriodStatus: Open or Closed (in any case), which `final_periods` relies on."""
    src = quote_ident(column)
    cases = " ".join(
        f"WHEN {quote_literal(v.lower())} THEN {quote_literal(v)}" for v in STATUS_VALUES
    )
    expr = (
        f"CASE lower(trim({src})) {cases} "
        f"ELSE error('costline: bad BillingPeriodStatus ' || coalesce({src}, 'null')) END"
    )
    allowed = ", ".join(quote_literal(v.lower()) for v in STATUS_VALUES)
    bad = f"({src} IS NULL OR lower(trim({src})) NOT IN ({allowed}))"
    return Conversion(column, expr, bad, "Open or Closed")


def _conversions(
    dataset: str, present: Sequence[FocusColumn], types: dict[str, str]
) -> list[Conversion]:
    out = []
    for col in present:
        if col.name == "BillingPeriodStatus":
            out.append(_status(col.name))
            continue
        conv = conversion_for(col.name, quote_ident(col.name), types[col.name], col.dtype)
        out.append(_required(conv, col.name) if col.name in REQUIRED[dataset] else conv)
    return out


def _version(dataset: str, present: Sequence[FocusColumn]) -> str:
    """Contract Commitment exists since 1.3: a file with any of 1.4's columns is 1.4."""
    if dataset == "Contract Commitment" and not any(c.introduced == "1.4" for c in present):
        return "1.3"
    return "1.4"


def plan_dataset(
    file: SourceFile, dataset: str, con: duckdb.DuckDBPyConnection, kind: str, columns: list[str]
) -> FocusFile:
    """Plan a Contract Commitment, Billing Period or Invoice Detail file into its own table."""
    path = str(file.path)
    catalogue = {c.name.lower(): c for c in dataset_columns(dataset)}
    source: dict[str, str] = {}  # FOCUS name -> source column
    extras: list[str] = []
    for col in columns:
        known = catalogue.get(_clean(col))
        if known is not None and known.name not in source:
            source[known.name] = col
        else:
            extras.append(col)
    missing = [c for c in REQUIRED[dataset] if c not in source]
    if missing:
        raise IngestError(
            f"a FOCUS {dataset} file without {', '.join(missing)} "
            f"(found: {', '.join(columns[:12])}{' ...' if len(columns) > 12 else ''})",
            path=path,
            column=missing[0],
        )
    selects = [f"{quote_ident(src)} AS {quote_ident(name)}" for name, src in source.items()]
    selects += [f"{quote_ident(e)} AS {quote_ident('__x_' + e)}" for e in extras]
    named_sql = f"SELECT {', '.join(selects)} FROM {raw_relation_sql(path, kind)}"
    types = {n: str(t) for n, t, *_ in con.execute(f"DESCRIBE {named_sql}").fetchall()}
    present = [c for c in dataset_columns(dataset) if c.name in source]
    version = _version(dataset, present)
    lacking = [c.name for c in dataset_columns(dataset)
               if c.mandatory_in(version) and c.name not in source]  # fmt: skip
    warnings = [f"FOCUS {version} {dataset} mandatory columns missing: {', '.join(lacking)}"]
    return FocusFile(
        file=file,
        con=con,
        kind=kind,
        dialect="focus",
        version=version,
        named_sql=named_sql,
        conversions=_conversions(dataset, present, types),
        extras=extras,
        warnings=warnings if lacking else [],
        table=DATASET_TABLES[dataset],
        replace_on=KEYS[dataset],
    )


def plan_any(file: SourceFile) -> FocusFile:
    """Plan a file of any dataset or dialect `costline ingest focus` reads, or refuse it."""
    path = str(file.path)
    kind = file_kind(path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {raw_relation_sql(path, kind)}")
        columns = [str(r[0]) for r in described.fetchall()]
    except duckdb.Error:
        con.close()
        return plan_file(file)  # it names what is wrong with the file
    if len(columns) <= 1:  # a CSV its sniffer could not split (a ragged row): plan_file names it
        con.close()
        return plan_file(file)
    if not any(d.detect(columns) for d in billing_dialects()):
        dataset = detect_dataset(columns)
        if dataset is not None and dataset != COST_AND_USAGE:
            return plan_dataset(file, dataset, con, kind, columns)
        try:
            refuse_unknown(path, columns)
        finally:
            con.close()
    else:
        con.close()
    return plan_file(file)


def read_focus_datasets(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Plan every file first (so a bad header fails before anything is read), then open streams."""
    plans = [plan_any(f) for f in files]
    return [p.batch() for p in plans]
