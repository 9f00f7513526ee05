"""costline: FinOps for AI workloads.

>>> import costline
>>> ledger = costline.open("duckdb:///tmp/ledger.duckdb")   # doctest: +SKIP
>>> ledger.table("cost_lines").BilledCost.sum().execute()   # doctest: +SKIP
"""

from __future__ import annotations

from costline.ledger.store import DEFAULT_LEDGER_URL, Ledger

__version__ = "0.1.0"


def open(url: str = DEFAULT_LEDGER_URL, *, read_only: bool = False) -> Ledger:
    """Open (creating and migrating if needed) the ledger at `url`."""
    return Ledger(url, read_only=read_only)


__all__ = ["DEFAULT_LEDGER_URL", "Ledger", "__version__", "open"]
