"""FOCUS 1.2 cost-and-usage files as providers export them: Parquet, CSV and gzipped CSV.

A `FocusTable` buffers one file's rows column by column. Writers are byte-for-byte deterministic:
no wall-clock timestamps (gzip `mtime=0`), fixed column order, fixed row order.

- CSV: money and quantities as plain decimal strings, nulls as empty fields, timestamps ISO 8601 `Z`.
- Parquet: money and quantities as decimal128(38, 18), timestamps as timestamp[ms, UTC].
`Tags` is JSON object text in both.
"""

from __future__ import annotations

import csv
import gzip
import io
import operator
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from costline.money import MONEY_PRECISION, MONEY_SCALE, total

MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
DECIMAL_COLUMNS = (
    *MONEY_COLUMNS,
    "ListUnitPrice",
    "ContractedUnitPrice",
    "PricingQuantity",
    "ConsumedQuantity",
    "CommitmentDiscountQuantity",
)
TIME_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")

# FOCUS 1.2 columns the demo bills carry, in the order they are written.
FOCUS_COLUMNS: tuple[str, ...] = (
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "InvoiceId",
    "InvoiceIssuerName",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceSubcategory",
    "ServiceName",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)

Row = Mapping[str, str | Decimal | None]


class FocusTable:
    """One file's rows, buffered as tuples in column order.

    Every row must carry every column (start rows from `blank_row()`), so a row is read with one
    C-level `itemgetter` call instead of a Python loop over the columns.
    """

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self._getter = operator.itemgetter(*columns)
        self._rows: list[tuple[str | Decimal | None, ...]] = []

    @property
    def rows(self) -> int:
        return len(self._rows)

    def blank_row(self) -> dict[str, str | Decimal | None]:
        return dict.fromkeys(self.columns)

    def append(self, row: Row) -> None:
        if len(row) != len(self.columns):
            extra = sorted(row.keys() - set(self.columns))
            missing = sorted(set(self.columns) - row.keys())
            raise KeyError(f"row does not match the table: extra {extra}, missing {missing}")
        self._rows.append(self._getter(row))

    def column(self, name: str) -> list[str | Decimal | None]:
        i = self.columns.index(name)
        return [r[i] for r in self._rows]

    def total(self, name: str) -> Decimal:
        """Exact decimal sum of a numeric column (nulls skipped)."""
        return total(v for v in self.column(name) if isinstance(v, Decimal))

    def records(self) -> Iterator[tuple[str | Decimal | None, ...]]:
        return iter(self._rows)


def write_csv(table: FocusTable, path: Path, *, gzipped: bool = False) -> None:
    """Write `table` as CSV (header row, `\\n` line ends), gzipped when asked, deterministically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = csv_text(table).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)


def csv_text(table: FocusTable) -> str:
    """The CSV text of `table`: decimals in plain notation, nulls as empty fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    numeric = [i for i, c in enumerate(table.columns) if c in DECIMAL_COLUMNS]
    for record in table.records():
        values: list[str | Decimal | None] = list(record)
        for i in numeric:
            value = values[i]
            if value is not None:  # plain notation: str() would write 0E-10
                values[i] = format(value, "f")
        writer.writerow(values)  # None is written as an empty field
    return buffer.getvalue()


def _arrow_column(name: str, values: list[str | Decimal | None]) -> pa.Array:
    if name in DECIMAL_COLUMNS:
        return pa.array(values, type=pa.decimal128(MONEY_PRECISION, MONEY_SCALE))
    strings = pa.array(values, type=pa.string())
    if name in TIME_COLUMNS:
        return strings.cast(pa.timestamp("ms", tz="UTC"))
    return strings


def write_parquet(table: FocusTable, path: Path) -> None:
    """Write `table` as Parquet (snappy), with decimal money and UTC timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [_arrow_column(c, table.column(c)) for c in table.columns]
    pq.write_table(pa.table(arrays, names=list(table.columns)), path, compression="snappy")
