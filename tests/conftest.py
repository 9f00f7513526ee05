from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from costline.ledger.store import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"duckdb:///{tmp_path / 'ledger.duckdb'}") as led:
        yield led
