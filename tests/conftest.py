from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from costline.ledger.store import Ledger
from tests.helpers import Mailbox, smtp_mailbox
from tests.unit.demo_orgs import DemoOrgs


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(f"duckdb:///{tmp_path / 'ledger.duckdb'}") as led:
        yield led


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 and the messages it accepted (the email notifier's tests)."""
    with smtp_mailbox() as box:
        yield box


@pytest.fixture(scope="session")
def demo_orgs(tmp_path_factory: pytest.TempPathFactory) -> DemoOrgs:
    """The demo's bills per seed (tests/unit/demo_orgs.py), generated once a session."""
    return DemoOrgs(tmp_path_factory.mktemp("demo-orgs"))
