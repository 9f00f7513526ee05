"""The ledger: canonical tables over Ibis (`costline.ledger.store`), its schema and state tables.

This package's own namespace stays light (no Ibis, DuckDB or pyarrow): the CLI's help reads
`DEFAULT_LEDGER_URL` from here.
"""

from __future__ import annotations

DEFAULT_LEDGER_URL = "duckdb://.costline/ledger.duckdb"
