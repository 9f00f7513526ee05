"""`costline export focus`: the ledger written back as FOCUS (1.0 to 1.4), one dataset a file.

A FOCUS file must be valid FOCUS for the version it claims:
- date-times in CSV are ISO 8601 UTC with a `Z` (`2026-09-01T00:00:00Z`); Parquet keeps timestamps;
- a mandatory column the ledger can fill is filled: renamed columns from their other name
  (ProviderName and ServiceProviderName, PublisherName, HostProviderName), PricingCurrency and its
  amounts from the billing currency when the line was priced in it, EffectiveCost of a tax or credit
  from BilledCost (FOCUS says they are equal);
- a column FOCUS does not make mandatory is left out when no line has a value (its condition does
  not apply), since FOCUS forbids nulls in some of them (PricingCurrency, BillingAccountType);
- what is still null where the version forbids it is data the sources did not have: the result
  lists those columns (`lacking`) rather than inventing values.
Tags go back to FOCUS's JSON object text; the kept `x_` columns come back as columns (a non-FOCUS
column without the prefix, such as the official sample's `Id`, gets one, as FOCUS requires).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from costline.errors import CostlineError
from costline.ledger.sql import run, run_one
from costline.ledger.store import Ledger
from costline.schema import (
    COST_AND_USAGE,
    DATASET_TABLES,
    TAGS,
    TS,
    FocusColumn,
    dataset_columns,
    focus_columns_of,
)
from costline.sources.base import quote_ident, quote_literal

EXPORT_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")
# --dataset names, and the FOCUS versions each dataset exists in.
DATASETS = {
    "cost-and-usage": (COST_AND_USAGE, EXPORT_VERSIONS),
    "contract-commitment": ("Contract Commitment", ("1.3", "1.4")),
    "billing-period": ("Billing Period", ("1.4",)),
    "invoice-detail": ("Invoice Detail", ("1.4",)),
}
# Rows are written in this order (date-times sort the same as their ISO 8601 text).
ORDER = {
    COST_AND_USAGE: ("ChargePeriodStart", "BillingAccountId"),
    "Contract Commitment": ("ContractCommitmentId",),
    "Billing Period": ("BillingPeriodStart", "InvoiceIssuerName"),
    "Invoice Detail": ("BillingPeriodStart", "InvoiceDetailId"),
}
_SAME_CURRENCY = '("PricingCurrency" IS NULL OR "PricingCurrency" = "BillingCurrency")'
# Cost and Usage columns the ledger can fill when a source did not: SQL over `cost_lines`.
DERIVED = {
    "ProviderName": 'coalesce("ProviderName", "ServiceProviderName")',
    "ServiceProviderName": 'coalesce("ServiceProviderName", "ProviderName")',
    "PublisherName": 'coalesce("PublisherName", "ServiceProviderName", "ProviderName")',
    "HostProviderName": 'coalesce("HostProviderName", "ProviderName", "ServiceProviderName")',
    "PricingCurrency": 'coalesce("PricingCurrency", "BillingCurrency")',
    "PricingCurrencyEffectiveCost": 'coalesce("PricingCurrencyEffectiveCost", '
    f'CASE WHEN {_SAME_CURRENCY} THEN "EffectiveCost" END)',
    "PricingCurrencyListUnitPrice": 'coalesce("PricingCurrencyListUnitPrice", '
    f'CASE WHEN {_SAME_CURRENCY} THEN "ListUnitPrice" END)',
    "PricingCurrencyContractedUnitPrice": 'coalesce("PricingCurrencyContractedUnitPrice", '
    f'CASE WHEN {_SAME_CURRENCY} THEN "ContractedUnitPrice" END)',
    "EffectiveCost": 'coalesce("EffectiveCost", '
    """CASE WHEN "ChargeCategory" IN ('Tax', 'Credit') THEN "BilledCost" END)""",
}


@dataclass(frozen=True)
class ExportResult:
    path: str
    rows: int
    focus_version: str
    columns: int
    dataset: str = "cost-and-usage"
    # Columns the version forbids to be null that some rows have no value for: data the sources lacked.
    lacking: list[str] = field(default_factory=list)
    # Columns of the version FOCUS does not make mandatory, left out because no row has a value.
    omitted: list[str] = field(default_factory=list)


def _format(out: Path) -> str:
    name = out.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "FORMAT parquet, COMPRESSION zstd"
    if name.endswith((".csv", ".csv.gz")):
        return "FORMAT csv, HEADER true"
    raise CostlineError(f"{out}: the export must end in .parquet, .csv or .csv.gz")


def _columns(dataset: str, version: str) -> list[FocusColumn]:
    if dataset == COST_AND_USAGE:
        return focus_columns_of(version)
    return [c for c in dataset_columns(dataset) if version in c.versions]


def _value(column: FocusColumn, dataset: str) -> str:
    """The column's value as FOCUS has it, filled where the ledger can (before text formatting)."""
    if dataset == COST_AND_USAGE and column.name in DERIVED:
        return DERIVED[column.name]
    return quote_ident(column.name)


def _rendered(column: FocusColumn, value: str, csv: bool) -> str:
    if column.dtype == TAGS:
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE CAST(to_json({value}) AS VARCHAR) END"
    if column.dtype == TS and csv:
        utc = f"({value} AT TIME ZONE 'UTC')"
        fraction = (
            f"CASE WHEN microsecond({utc}) % 1000000 = 0 THEN '' "
            f"ELSE rtrim(strftime({utc}, '.%f'), '0') END"
        )
        return f"strftime({utc}, '%Y-%m-%dT%H:%M:%S') || {fraction} || 'Z'"
    return value


def _nullable(column: FocusColumn, version: str) -> bool:
    """Whether FOCUS lets the column be null. Before 1.4, only where 1.4 does too: the 1.0-1.3
    catalogue lets PricingCurrency (and its EffectiveCost) be null, which 1.4 and validators do not."""
    in_1_4 = column.feature_level_1_4 is None or column.allows_nulls_1_4
    return column.nullable_in(version) and (version == "1.4" or in_1_4)


def _counts(ledger: Ledger, table: str, values: dict[str, str]) -> tuple[int, dict[str, int]]:
    """Rows in `table`, and how many have a value in each column: one scan."""
    names = list(values)
    counts = ", ".join(f"count({values[n]})" for n in names)
    row = run_one(ledger.con, f"SELECT count(*){', ' + counts if counts else ''} FROM {table}")
    assert row is not None
    return int(row[0]), {n: int(v) for n, v in zip(names, row[1:], strict=True)}


def _dataset(name: str, version: str) -> str:
    if name not in DATASETS:
        raise CostlineError(f"--dataset {name}: choose one of {', '.join(DATASETS)}")
    dataset, versions = DATASETS[name]
    if version not in versions:
        raise CostlineError(
            f"--focus-version {version}: FOCUS {dataset} exists in {', '.join(versions)}"
            if version in EXPORT_VERSIONS
            else f"--focus-version {version}: choose one of {', '.join(versions)}"
        )
    return dataset


def export_focus(
    ledger: Ledger, out: Path, *, focus_version: str = "1.2", dataset: str = "cost-and-usage"
) -> ExportResult:
    """Write one FOCUS dataset of the ledger to `out` (.parquet, .csv, .csv.gz) as `focus_version`."""
    name = _dataset(dataset, focus_version)
    fmt = _format(out)
    table = DATASET_TABLES[name]
    columns = _columns(name, focus_version)
    values = {c.name: _value(c, name) for c in columns}
    rows, filled = _counts(ledger, table, values)
    kept = [c for c in columns if c.mandatory_in(focus_version) or filled[c.name] or not rows]
    lacking = [c.name for c in kept
               if filled[c.name] < rows and not _nullable(c, focus_version)]  # fmt: skip
    cols = [f"{_rendered(c, values[c.name], 'csv' in fmt)} AS {quote_ident(c.name)}" for c in kept]
    extra_keys = [
        r[0]
        for r in run(ledger.con, f"SELECT DISTINCT unnest(map_keys(x_extra)) AS k FROM {table}")
    ]
    for key in sorted(extra_keys):
        alias = key if key.startswith("x_") else f"x_{key}"
        cols.append(f"x_extra[{quote_literal(key)}] AS {quote_ident(alias)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    order = ", ".join(quote_ident(c) for c in ORDER[name])
    select = f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}"
    run(ledger.con, f"COPY ({select}) TO {quote_literal(str(out))} ({fmt})")
    return ExportResult(
        path=str(out),
        rows=rows,
        focus_version=focus_version,
        columns=len(cols),
        dataset=dataset,
        lacking=lacking,
        omitted=[c.name for c in columns if c not in kept],
    )
