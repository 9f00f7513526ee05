"""Money is Decimal at the edges and DECIMAL(38, 18) in the engine; never a float."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal, localcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ibis.expr.datatypes as dt

    MONEY_DTYPE: dt.Decimal

MONEY_PRECISION = 38
MONEY_SCALE = 18
MONEY_SQL = f"DECIMAL({MONEY_PRECISION},{MONEY_SCALE})"


def __getattr__(name: str) -> Any:
    """`MONEY_DTYPE`, Ibis's DECIMAL(38, 18), made when first asked for: the server answers its
    first page (which needs `MONEY_CONTEXT`) before it has imported Ibis."""
    if name == "MONEY_DTYPE":
        import ibis.expr.datatypes as dt

        return dt.Decimal(MONEY_PRECISION, MONEY_SCALE)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)

# Python's default decimal context keeps 28 significant digits, fewer than DECIMAL(38, 18) holds:
# `sum()` of ledger amounts in the default context silently rounds. Money arithmetic uses this.
MONEY_CONTEXT = Context(prec=76)


def total(values: Iterable[Decimal | None]) -> Decimal:
    """The exact sum of amounts (None is skipped), whatever their size."""
    with localcontext(MONEY_CONTEXT):
        return sum((v for v in values if v is not None), Decimal(0))


def to_money(value: Decimal | int | str) -> Decimal:
    """Normalise a value to the ledger's 18 decimal places; floats are refused on purpose."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a str or Decimal")
    return Decimal(value).quantize(_QUANTUM, context=MONEY_CONTEXT)


def format_money(value: Decimal | None, currency: str | None = "USD", places: int = 2) -> str:
    """Human rendering: `$1,234.57`, `-$3.20`, or `unpriced` when there is no value."""
    if value is None:
        return "unpriced"
    q = value.quantize(Decimal(1).scaleb(-places), context=MONEY_CONTEXT)
    symbol = "$" if currency in (None, "USD") else ""
    suffix = "" if symbol else f" {currency}"
    sign = "-" if q < 0 else ""
    return f"{sign}{symbol}{abs(q):,}{suffix}"
