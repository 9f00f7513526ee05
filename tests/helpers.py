"""Helpers shared by the tests: fixture paths, the files' own sums, ledger snapshots."""

from __future__ import annotations

import contextlib
import csv
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

from costline.ledger.store import Ledger

FIXTURES = Path(__file__).parent / "fixtures"
FOCUS_SAMPLE = FIXTURES / "focus" / "focus_sample.csv"
SPEC_EXAMPLES = FIXTURES / "focus" / "spec-examples-1.2"
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
# One AWS usage line of October 2026, for tests that write small FOCUS files of their own.
FOCUS_ROW = {
    "BillingAccountId": "acct-1",
    "BillingCurrency": "USD",
    "BillingPeriodStart": "2026-10-01T00:00:00Z",
    "BillingPeriodEnd": "2026-11-01T00:00:00Z",
    "ChargePeriodStart": "2026-10-05T00:00:00Z",
    "ChargePeriodEnd": "2026-10-06T00:00:00Z",
    "ChargeCategory": "Usage",
    "ProviderName": "AWS",
    "ServiceName": "Amazon EC2",
}


def csv_sums(paths: list[Path], by: str | None = None) -> dict[tuple[str | None, str], Decimal]:
    """The files' own sums, in plain Python Decimal: what the ledger must reproduce exactly."""
    out: dict[tuple[str | None, str], Decimal] = {}
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                key = row.get(by) if by else None
                for col in COST_COLUMNS:
                    text = row.get(col)
                    if text in (None, "", "NULL", "null"):
                        continue
                    value = Decimal(re.sub(r"[$,\s]", "", text))
                    out[(key, col)] = out.get((key, col), Decimal(0)) + value
    return out


def ledger_sums(led: Ledger, by: str | None = None) -> dict[tuple[str | None, str], Decimal]:
    group = f'"{by}"' if by else "NULL"
    rows = led.con.execute(
        f"SELECT {group}, "
        + ", ".join(f'sum("{c}")' for c in COST_COLUMNS)
        + f" FROM cost_lines GROUP BY {group}"
    ).fetchall()
    out: dict[tuple[str | None, str], Decimal] = {}
    for key, *sums in rows:
        for col, value in zip(COST_COLUMNS, sums, strict=True):
            if value is not None:
                out[(key, col)] = value
    return out


def snapshot(led: Ledger) -> tuple[object, ...]:
    """Everything a failed ingestion must leave untouched."""
    lines = led.con.execute(
        "SELECT count(*), sum(BilledCost), sum(EffectiveCost), "
        "count(DISTINCT x_ingestion_id) FROM cost_lines"
    ).fetchone()
    files = led.con.execute(
        "SELECT count(*), string_agg(fingerprint, ',' ORDER BY fingerprint) FROM ingestions"
    ).fetchone()
    findings = led.con.execute("SELECT count(*), max(last_seen) FROM findings").fetchone()
    return (lines, files, findings)


def run_costline(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m costline ARGS` as a user runs it: the real exit status and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "costline", *args], capture_output=True, text=True, timeout=300
    )


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate a server the test started (draining its pipes); kill it if it has not exited."""
    proc.terminate()
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def api_ok(client: Any, path: str, **params: Any) -> dict[str, Any]:
    """GET an API path (a TestClient's), assert 200, and return its JSON object."""
    r = client.get(path, params=params)
    assert r.status_code == 200, (path, r.text)
    body: dict[str, Any] = r.json()
    return body


@dataclass
class Mailbox:
    """An SMTP receiver's inbox (aiosmtpd's handler): every message it accepted."""

    port: int
    messages: list[Message] = field(default_factory=list)
    transient: int = 0  # answer the next N messages with 451

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.transient > 0:
            self.transient -= 1
            return "451 4.3.0 mailbox busy, try again"
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"


@contextlib.contextmanager
def smtp_mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, for the notifier tests."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox(port)
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
