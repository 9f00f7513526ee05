"""Exact decimal totals of the four FOCUS cost columns, and a row count."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from costline.demo.focus_files import FocusTable, Row
from costline.money import MONEY_CONTEXT

ZERO = Decimal(0)


@dataclass(frozen=True)
class CostTotals:
    rows: int = 0
    billed: Decimal = ZERO
    effective: Decimal = ZERO
    list: Decimal = ZERO
    contracted: Decimal = ZERO

    def __add__(self, other: CostTotals) -> CostTotals:
        with localcontext(MONEY_CONTEXT):  # 28 default digits could round 18-decimal sums
            return CostTotals(
                self.rows + other.rows,
                self.billed + other.billed,
                self.effective + other.effective,
                self.list + other.list,
                self.contracted + other.contracted,
            )

    @classmethod
    def of_table(cls, table: FocusTable) -> CostTotals:
        return cls(
            table.rows,
            table.total("BilledCost"),
            table.total("EffectiveCost"),
            table.total("ListCost"),
            table.total("ContractedCost"),
        )

    def as_json(self) -> dict[str, int | str]:
        """FOCUS column names, amounts as decimal strings (exact, never floats)."""
        return {
            "rows": self.rows,
            "BilledCost": format(self.billed, "f"),
            "EffectiveCost": format(self.effective, "f"),
            "ListCost": format(self.list, "f"),
            "ContractedCost": format(self.contracted, "f"),
        }


class TotalsAccumulator:
    """Running totals, cheaper than adding frozen `CostTotals` row by row."""

    __slots__ = ("billed", "contracted", "effective", "list", "rows")

    def __init__(self) -> None:
        self.rows = 0
        self.billed = ZERO
        self.effective = ZERO
        self.list = ZERO
        self.contracted = ZERO

    def add_row(self, row: Row) -> None:
        self.rows += 1
        self.billed += _money(row, "BilledCost")
        self.effective += _money(row, "EffectiveCost")
        self.list += _money(row, "ListCost")
        self.contracted += _money(row, "ContractedCost")

    def freeze(self) -> CostTotals:
        return CostTotals(self.rows, self.billed, self.effective, self.list, self.contracted)


def _money(row: Row, name: str) -> Decimal:
    value = row[name]
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {value!r}")
    return value


def sum_totals(items: list[CostTotals]) -> CostTotals:
    total = CostTotals()
    for item in items:
        total = total + item
    return total
