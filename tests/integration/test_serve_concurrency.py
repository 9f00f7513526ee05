"""A running `costline serve` locks nobody out: while 20 clients read its API, the CLI ingests a
file, runs a report, annotates and acknowledges a finding on the same ledger, in other processes;
every request and every command succeeds, every row arrives, and the server shows the changes.

Real processes throughout (the server, each command), as a user runs them: DuckDB's lock is per
process, so nothing in-process could show it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

FOCUS_FILE = Path(__file__).parents[1] / "fixtures" / "focus" / "focus_sample.csv"
CLIENTS = 20
THINK_SECONDS = 0.05  # between a client's requests: a dashboard's pace, not a flood
ENDPOINTS = (
    "/api/v1/health",
    "/api/v1/overview",
    "/api/v1/spend?by=team",
    "/api/v1/spend?by=service&granularity=month",
    "/api/v1/meta/dimensions",
    "/api/v1/findings",
    "/api/v1/annotations",
    "/api/v1/budgets",
    "/api/v1/tokens",
    "/api/v1/gpu/utilization",
    "/",
)


@dataclass(frozen=True)
class Org:
    root: Path
    env: dict[str, str]


def costline(org: Org, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "costline", *args], env=org.env, cwd=org.root,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    root = tmp_path_factory.mktemp("serve-concurrency")
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb://{root / 'ledger.duckdb'}",
           "COSTLINE_CONFIG": str(root / "org" / "costline.yaml")}  # fmt: skip
    org = Org(root, env)
    made = costline(org, "demo", "--out", str(root / "org"), "--days", "10", "--scale", "0.1",
                    "--format", "json", timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    return org


@pytest.fixture
def server(org: Org) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "costline", "serve", "--port", "0", "--no-scheduler",
         "--log-level", "warning"],
        env=org.env, cwd=org.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split("/ ", 1)[0]
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


def ask(org: Org, sql: str) -> dict[str, object]:
    """The first row of a `costline sql` query, as JSON."""
    done = costline(org, "sql", sql, "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    row: dict[str, object] = json.loads(done.stdout)[0]
    return row


COUNTS = (
    "SELECT (SELECT count(*) FROM cost_lines) AS lines, "
    "(SELECT count(*) FROM annotations) AS annotations"
)


def test_cli_works_while_the_server_answers_20_clients(org: Org, server: str) -> None:
    before = ask(
        org, f"{COUNTS}, (SELECT min(fingerprint) FROM findings WHERE status = 'open') AS fp"
    )
    fingerprint = str(before["fp"])

    statuses: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(i: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as http:
            n = i
            while not stop.is_set():
                path = ENDPOINTS[n % len(ENDPOINTS)]
                n += 1
                try:
                    status = http.get(path).status_code
                except httpx.HTTPError as exc:
                    status = 0
                    failures.append(f"{path}: {exc!r}")
                statuses.append(status)
                if status != 200:
                    failures.append(f"{path}: {status}")
                time.sleep(THINK_SECONDS)

    clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in clients:
        t.start()
    try:
        time.sleep(1.0)  # the clients are at it
        commands = [
            ("ingest", "focus", str(FOCUS_FILE), "--format", "json"),
            ("report", "showback", "--period", "2026-10", "--format", "json"),
            ("annotate", "checkout deploy", "--kind", "deploy", "--at", "2026-10-20T10:00:00Z"),
            ("ack", fingerprint, "--format", "json"),
            ("findings", "--status", "acknowledged", "--format", "json"),
        ]
        for args in commands:
            done = costline(org, *args)
            assert done.returncode == 0, f"costline {' '.join(args)}: {done.stderr[-2000:]}"
            assert "Could not set lock" not in done.stderr
        assert fingerprint in {f["fingerprint"] for f in json.loads(done.stdout)}
        after = ask(org, COUNTS)
        assert after["lines"] == int(str(before["lines"])) + 1000  # the sample file's rows
        assert after["annotations"] == int(str(before["annotations"])) + 1
        # The server sees the acknowledgement (it reads a copy, taken again on a change).
        with httpx.Client(base_url=server, timeout=60) as http:
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                status = http.get(f"/api/v1/findings/{fingerprint}").json()["status"]
                if status == "acknowledged":
                    break
                time.sleep(0.2)
            assert status == "acknowledged"
            health = http.get("/api/v1/health").json()
            assert health["ledger"] == str(org.root / "ledger.duckdb")
    finally:
        stop.set()
        for t in clients:
            t.join(120)
    assert failures == []
    assert len(statuses) > CLIENTS and set(statuses) == {200}
