"""costline: FinOps for AI workloads.

>>> import costline
>>> ledger = costline.open("duckdb:///tmp/ledger.duckdb")   # doctest: +SKIP
>>> ledger.table("cost_lines").BilledCost.sum().execute()   # doctest: +SKIP

`Ledger` (and with it Ibis, pyarrow and DuckDB) is imported on first use, not by `import costline`:
every `costline.*` module, `costline --help` included, imports this package first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from costline.ledger import DEFAULT_LEDGER_URL

if TYPE_CHECKING:
    from costline.ledger.store import Ledger

__version__ = "0.1.0"


def open(url: str = DEFAULT_LEDGER_URL, *, read_only: bool = False) -> Ledger:
    """Open (creating and migrating if needed) the ledger at `url`."""
    from costline.ledger.store import Ledger

    return Ledger(url, read_only=read_only)


def __getattr__(name: str) -> Any:
    """`costline.Ledger`, imported when first asked for."""
    if name == "Ledger":
        from costline.ledger.store import Ledger

        return Ledger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_LEDGER_URL", "Ledger", "__version__", "open"]
