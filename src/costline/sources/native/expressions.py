"""DuckDB SQL building blocks shared by the provider-native dialects.

A dialect maps raw billing columns to FOCUS columns with one SQL expression each. These helpers
find raw columns by name, keep money in DECIMAL (never DOUBLE), and turn small packaged lookup
tables into DuckDB MAP literals, so a lookup costs one hash-free scan of a short constant map per
row and no join.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from costline.sources.base import quote_ident, quote_literal

MONEY = "DECIMAL(38, 18)"
# A product of two DECIMAL(38, 18) has 36 decimals and overflows at 100. Two factors rounded to 14
# decimals give a DECIMAL(38, 28) product (exact, up to about 1.7e10); a further factor (an exchange
# rate) is rounded to 10 decimals against the DECIMAL(38, 18) running product.
_FACTOR = "DECIMAL(38, 14)"
_RATE = "DECIMAL(38, 10)"
NULL_TEXT = "CAST(NULL AS VARCHAR)"
NULL_MONEY = f"CAST(NULL AS {MONEY})"
EMPTY_TAGS = "'{}'"
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _squash(name: str) -> str:
    return name.lower().replace(" ", "").replace("_", "")


class SourceColumns:
    """The raw columns of one file, looked up by name.

    `exact=True` matches names as written (AWS CUR). Otherwise matching ignores case, spaces and
    underscores (Azure: `CostInBillingCurrency`, `costInBillingCurrency`, `Cost In Billing
    Currency`), and every reference still quotes the file's own spelling.
    """

    def __init__(self, names: Sequence[str], *, exact: bool) -> None:
        self.names = tuple(names)
        self.exact = exact
        self._index: dict[str, str] = {}
        for name in self.names:
            self._index.setdefault(name if exact else _squash(name), name)

    def find(self, *candidates: str) -> str | None:
        """The file's spelling of the first candidate it has, or None."""
        for candidate in candidates:
            found = self._index.get(candidate if self.exact else _squash(candidate))
            if found is not None:
                return found
        return None

    def has(self, *candidates: str) -> bool:
        return self.find(*candidates) is not None

    def ref(self, *candidates: str) -> str:
        """The column as VARCHAR (a no-op on CSV text; Parquet numbers and times go through their
        shortest text, as the FOCUS reader does), or a VARCHAR NULL when the file has none."""
        found = self.find(*candidates)
        return f"CAST({quote_ident(found)} AS VARCHAR)" if found is not None else NULL_TEXT

    def money(self, *candidates: str) -> str:
        """The column as DECIMAL(38, 18), or a DECIMAL NULL."""
        found = self.find(*candidates)
        return dec(self.ref(found)) if found is not None else NULL_MONEY


def dec(expr: str) -> str:
    """`expr` as DECIMAL(38, 18); DuckDB reads `5.2E-9` exactly, without going through DOUBLE."""
    return f"CAST({expr} AS {MONEY})"


def mul(first: str, second: str, *rates: str) -> str:
    """The DECIMAL(38, 18) product `first * second * rates...`, rounded to 18 decimals at each step.

    `first` and `second` are rounded to 14 decimals, each rate to 10, before multiplying.
    """
    product = f"CAST(CAST({first} AS {_FACTOR}) * CAST({second} AS {_FACTOR}) AS {MONEY})"
    for rate in rates:
        product = f"CAST({product} * CAST({rate} AS {_RATE}) AS {MONEY})"
    return product


def case_map(subject: str, mapping: Mapping[str, str], default: str) -> str:
    """`CASE subject WHEN key THEN 'value' ... ELSE default END` (values quoted as literals)."""
    arms = " ".join(
        f"WHEN {quote_literal(key)} THEN {quote_literal(value)}" for key, value in mapping.items()
    )
    return f"CASE {subject} {arms} ELSE {default} END"


def in_list(subject: str, values: Iterable[str]) -> str:
    return f"{subject} IN ({', '.join(quote_literal(v) for v in values)})"


def map_literal(mapping: Mapping[str, str]) -> str:
    """A DuckDB `MAP {...}` constant of VARCHAR to VARCHAR."""
    if not mapping:
        return "MAP {}::MAP(VARCHAR, VARCHAR)"
    pairs = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in mapping.items())
    return "MAP {" + pairs + "}"


def lookup(mapping: Mapping[str, str], key: str) -> str:
    """The value of `key` (an SQL expression) in `mapping`, NULL when absent."""
    return f"map_extract_value({map_literal(mapping)}, {key})"


def read_table(filename: str) -> list[dict[str, str]]:
    """Rows of a CSV packaged under `costline/sources/native/data/`."""
    text = resources.files("costline.sources.native").joinpath("data", filename).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def iso(timestamp: str) -> str:
    """A TIMESTAMP expression as ISO 8601 UTC text (`2023-09-02T00:00:00Z`)."""
    return f"strftime({timestamp}, '{ISO_FORMAT}')"


def parse_date(text: str) -> str:
    """A TIMESTAMP from provider date text: `9/2/2023`, `09/02/2023`, `2023-09-02`, or ISO 8601
    (a Parquet DATE or TIMESTAMP goes through its text)."""
    as_text = f"CAST({text} AS VARCHAR)"
    return (
        f"coalesce(try_strptime({as_text}, ['%m/%d/%Y', '%Y-%m-%d']), "
        f"TRY_CAST({as_text} AS TIMESTAMP))"
    )
