"""The served ledger (`server.shared`): the server answers its first page before it has read the
ledger, reads a copy and holds no lock on the ledger between its own writes, sees what others
write, and writes its own moves to the ledger itself; aged answers are given while refreshed."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from costline.clock import FixedClock
from costline.config import Config
from costline.ledger import locking
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind, Severity
from costline.pipeline import ingest_files
from costline.server import shared
from costline.server.app import create_app
from costline.server.reader import ResponseCache
from costline.server.shared import Served, Snapshots
from costline.sources.annotations import ANNOTATIONS
from tests.helpers import FIXTURES
from tests.unit.test_ledger_locking import hold

WINDOW = {"start": "2025-03-01", "end": "2025-04-01"}  # the annotation fixtures' month


def finding() -> Finding:
    clock = FixedClock(dt.datetime(2025, 3, 10, tzinfo=dt.UTC))
    return Finding.new(kind=FindingKind.ANOMALY, scope={"team": "vision"}, dedup_key="2025-03-09",
                       clock=clock, title="Spend on gpu-east rose 80%", severity=Severity.WARNING,
                       impact_usd="120.00")  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.duckdb"
    with Ledger(f"duckdb://{path}") as ledger:
        ledger.write([], source="detect", findings=[finding()])
    yield path


def test_first_page_before_the_ledger_is_read_then_writes_of_others_are_seen(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    take = Snapshots.take

    def slow_take(self: Snapshots) -> tuple[Path, shared.Signature]:
        gate.wait(60)  # the ledger is slow to read (a large one)
        return take(self)

    monkeypatch.setattr(Snapshots, "take", slow_take)
    monkeypatch.setattr(shared, "POLL_SECONDS", 0.05)
    served = Served(Config(), url=f"duckdb://{path}")
    with TestClient(create_app(served, Config(), warm=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "ready": False}
        page = client.get("/")
        assert page.status_code == 200 and "Overview" in page.text  # not waiting for the ledger
        gate.set()
        assert client.get("/api/v1/annotations", params=WINDOW).json()["rows"] == []
        # The server holds no lock on the ledger: another connection writes it (a process of its
        # own would too, which DuckDB refuses while any other process has the file open).
        con = duckdb.connect(str(path))  # would raise "Could not set lock" in another process
        con.close()
        with Ledger(f"duckdb://{path}") as other:
            ingest_files(other, [FIXTURES / "annotations" / "events.yaml"], ANNOTATIONS)
        deadline = time.monotonic() + 30
        rows: list[object] = []
        while time.monotonic() < deadline and not rows:
            rows = client.get("/api/v1/annotations", params=WINDOW).json()["rows"]
            time.sleep(0.05)
        assert len(rows) == 2  # the two events of the file
        assert client.get("/api/v1/health").json()["ledger"] == str(path)
    assert not list(path.parent.glob(".costline-serve-*"))  # its copies are gone


def test_a_move_through_the_api_is_written_to_the_ledger_and_shown_at_once(path: Path) -> None:
    served = Served(Config(), url=f"duckdb://{path}")
    fingerprint = finding().fingerprint
    with TestClient(create_app(served, Config(), warm=False)) as client:
        moved = client.post(f"/api/v1/findings/{fingerprint}/ack")
        assert moved.status_code == 200 and moved.json()["status"] == "acknowledged"
        assert client.get(f"/api/v1/findings/{fingerprint}").json()["status"] == "acknowledged"
        with duckdb.connect(str(path), read_only=True) as con:  # the ledger itself
            (body,) = con.execute("SELECT body FROM findings").fetchone()  # type: ignore[misc]
        assert json.loads(body)["status"] == "acknowledged"
        again = client.post(f"/api/v1/findings/{fingerprint}/ack")
        assert again.status_code == 409  # the lifecycle is the ledger's


def test_an_aged_answer_is_given_while_its_successor_is_computed() -> None:
    cache = ResponseCache(seconds=0.05)
    assert cache.get("k", lambda: 1) == 1
    time.sleep(0.1)
    release = threading.Event()

    def slow() -> int:
        release.wait(10)
        return 2

    started = time.monotonic()
    assert cache.get("k", slow) == 1  # aged: given at once, recomputed in the background
    assert time.monotonic() - started < 1
    release.set()
    deadline = time.monotonic() + 10
    while cache.get("k", slow) != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get("k", slow) == 2


def test_a_move_while_another_process_holds_the_ledger_is_a_503_naming_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(locking.WAIT_ENV, "0.3")
    fingerprint = finding().fingerprint
    with TestClient(create_app(Served(Config(), url=f"duckdb://{path}"), Config(),
                               warm=False)) as client:  # fmt: skip
        assert client.get("/api/v1/health").status_code == 200  # the copy is read
        proc = hold(path, 30)
        try:
            moved = client.post(f"/api/v1/findings/{fingerprint}/ack")
            assert moved.status_code == 503
            error = moved.json()["error"]
            assert error["code"] == "ledger_unavailable"
            assert f"in use by another process (PID {proc.pid})" in error["message"]
            assert "Could not set lock" not in moved.text
            # Reads go on meanwhile, from the copy.
            assert client.get(f"/api/v1/findings/{fingerprint}").json()["status"] == "open"
        finally:
            proc.kill()
            proc.wait(10)


def test_an_answer_of_the_data_alone_is_not_computed_again_for_age() -> None:
    cache = ResponseCache(seconds=0.01)
    assert cache.get("report", lambda: 1, ages=False) == 1
    time.sleep(0.05)
    calls: list[int] = []

    def again() -> int:
        calls.append(1)
        return 2

    assert cache.get("report", again, ages=False) == 1
    time.sleep(0.1)
    assert cache.get("report", again, ages=False) == 1 and calls == []


def test_the_dashboards_first_views_are_computed_in_the_background_at_start(path: Path) -> None:
    served = Served(Config(), url=f"duckdb://{path}")
    with TestClient(create_app(served, Config(), warm=True)) as client:
        wanted = {"overview", "spend", "findings", "budgets", "tokens", "gpu/utilization",
                  "showback", "gpu/idle", "chargeback", "unit-costs", "forecast"}  # fmt: skip
        deadline = time.monotonic() + 120
        held: set[object] = set()
        while time.monotonic() < deadline and not wanted <= held:
            reader = served.latest()
            if reader is not None:
                held = {key[0] for key in list(reader.cache._items)}  # type: ignore[index]
            time.sleep(0.1)
        assert wanted <= held  # computed with no request asking for them
        assert client.get("/api/v1/unit-costs").status_code == 200


def test_copies_a_killed_server_left_are_removed_when_a_server_starts(tmp_path: Path) -> None:
    """A server killed with SIGKILL leaves its copy folder (a ledger's size); the next server on
    that ledger removes it, and leaves the folder of a server still running."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"{shared.PREFIX}{gone.stdout.strip()}-abc"
    orphan.mkdir()
    (orphan / "ledger-1.duckdb").write_bytes(b"x" * 1024)
    running = tmp_path / f"{shared.PREFIX}{os.getpid()}-def"
    running.mkdir()
    ledger = tmp_path / "ledger.duckdb"
    Ledger(f"duckdb:///{ledger}").close()
    snapshots = Snapshots(str(ledger))
    try:
        assert not orphan.exists() and running.exists()
    finally:
        snapshots.close()
