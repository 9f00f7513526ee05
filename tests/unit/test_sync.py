"""`costline sync` and the server's scheduler: a watched folder, thresholds, findings and the
alert they route, delivered once to a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from costline.clock import FixedClock
from costline.config import load_config
from costline.demo.activity import generate_activity
from costline.demo.billing import generate_billing
from costline.ledger.sql import run
from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from costline.server.scheduler import Scheduler
from costline.sync import last_sync, sync


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every JSON body it accepts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A demo telemetry day (seed 2): its LLM logs carry the live prompt spike."""
    org = tmp_path_factory.mktemp("sync") / "org"
    manifest = generate_billing(org, seed=2, days=2)
    activity = generate_activity(org, manifest, seed=2, telemetry_days=1)
    return org, json.loads(activity.truth.read_text())


def _config(root: Path, receiver: Receiver, org: Path) -> Path:
    demo = yaml.safe_load((org / "costline.yaml").read_text())
    doc = {
        "sources": [{"type": "files", "name": "llm-logs", "format": "llm",
                     "paths": ["incoming/*.jsonl"]}],
        "routes": [{"type": "webhook", "name": "platform-hook", "url": receiver.url}],
        "escalation": [{"name": "platform", "routes": ["platform-hook"]}],
        "thresholds": [t for t in demo["thresholds"] if t["signal"] != "idle_gpu_minutes"],
    }  # fmt: skip
    path = root / "costline.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_sync_pulls_a_watched_folder_finds_the_spike_and_alerts_once(
    tmp_path: Path, receiver: Receiver, telemetry: tuple[Path, dict[str, Any]]
) -> None:
    org, truth = telemetry
    config = load_config(_config(tmp_path, receiver, org))
    (tmp_path / "incoming").mkdir()
    shutil.copy(org / "llm" / "openai_chat.jsonl", tmp_path / "incoming")
    clock = FixedClock(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    with Ledger(f"duckdb://{tmp_path / 'ledger.duckdb'}", clock=clock) as ledger:
        first = sync(ledger, config, clock=clock, env={})
        assert first.errors == []
        assert first.pulled == [{"source": "llm-logs", "status": "ingested", "files": 1,
                                 "rows": first.pulled[0]["rows"]}]  # fmt: skip
        assert first.findings == {"threshold_breach": 1}
        assert (first.queued, first.sent) == (1, 1)
        [body] = receiver.bodies
        assert body["finding"]["scope"] == {"threshold": "context-length-by-app",
                                            "app": truth["live_incidents"][0]["scope"]["app"]}  # fmt: skip
        assert last_sync(ledger) == clock.now()

        clock.advance(minutes=5)
        again = sync(ledger, config, clock=clock, env={})
        assert again.pulled[0]["status"] == "up-to-date"
        assert (again.queued, again.sent) == (0, 0)  # same breach, same impact: no second alert
        assert "anomalies" in first.seconds and "anomalies" not in again.seconds  # no new bills
        assert len(receiver.bodies) == 1
        [(n,)] = run(ledger.con, "SELECT count(*) FROM findings")
        assert n == 1

        shutil.copy(org / "llm" / "anthropic_messages.jsonl", tmp_path / "incoming")
        clock.advance(minutes=5)
        third = sync(ledger, config, clock=clock, env={})
        assert third.pulled[0]["status"] == "ingested"  # a file dropped in is in minutes later
        assert "anomalies" not in third.seconds  # usage logs are not bills

        ingest_focus(ledger, sorted((org / "aws").glob("*.parquet")))
        clock.advance(minutes=5)
        billed = sync(ledger, config, clock=clock, env={})
        assert "budgets" in billed.seconds and "anomalies" in billed.seconds
        clock.advance(hours=6)
        assert "anomalies" in sync(ledger, config, clock=clock, env={}).seconds  # 6 hours on


def test_a_source_that_fails_is_reported_and_the_rest_still_runs(
    tmp_path: Path, receiver: Receiver, telemetry: tuple[Path, dict[str, Any]]
) -> None:
    org, _ = telemetry
    config = load_config(_config(tmp_path, receiver, org))
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "bad.jsonl").write_text("{not json\n", encoding="utf-8")
    clock = FixedClock(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    with Ledger(f"duckdb://{tmp_path / 'ledger.duckdb'}", clock=clock) as ledger:
        report = sync(ledger, config, clock=clock, env={})
    assert report.pulled[0]["status"] == "error" and "bad.jsonl" in report.pulled[0]["error"]
    assert report.finished is not None and "notify" in report.seconds
    assert report.findings == {"data_quality": 1}  # the failing source is a finding

    # The CLI: exit 2 naming the file; nothing of the bad source written.
    cli = subprocess.run(
        [sys.executable, "-m", "costline", "--ledger", f"duckdb://{tmp_path / 'cli.duckdb'}",
         "--config", str(tmp_path / "costline.yaml"), "sync", "--no-notify", "-f", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 2, cli.stderr
    assert "source llm-logs" in cli.stderr and "bad.jsonl" in cli.stderr
    with Ledger(f"duckdb://{tmp_path / 'cli.duckdb'}", read_only=True) as ledger:
        assert run(ledger.con, "SELECT count(*) FROM llm_requests") == [(0,)]


def test_the_scheduler_keeps_its_rhythm_across_a_restart(tmp_path: Path) -> None:
    clock = FixedClock(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    config = load_config(None)
    url = f"duckdb://{tmp_path / 'ledger.duckdb'}"
    with Ledger(url, clock=clock) as ledger:
        s = Scheduler(ledger, config, interval=dt.timedelta(minutes=5), clock=clock)
        assert s.next_due() == clock.now()  # never synced: due now
        assert s.run_now() is not None and s.runs == 1
    clock.advance(minutes=2)
    with Ledger(url, clock=clock) as ledger:  # the server restarted two minutes later
        s = Scheduler(ledger, config, interval=dt.timedelta(minutes=5), clock=clock)
        assert s.next_due() == clock.now() + dt.timedelta(minutes=3)
        done = threading.Event()
        s.on_sync = lambda _: done.set()
        s.start()
        s.poke()  # run now, not in three minutes
        assert done.wait(30)
        s.stop()
        assert s.status()["runs"] == 1 and s.status()["last_error"] is None


def test_every_file_format_the_config_accepts_has_its_reader() -> None:
    from costline.config import FILE_FORMATS
    from costline.sync import _source_of

    assert [_source_of(fmt).name for fmt in FILE_FORMATS] == list(FILE_FORMATS)


def test_a_running_workload_past_its_ttl_is_one_finding(tmp_path: Path) -> None:
    from costline.detect.ttl import expired

    now = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    with Ledger(f"duckdb://{tmp_path / 'ledger.duckdb'}") as ledger:
        run(ledger.con, """INSERT INTO workloads (workload_id, kind, name, start, "end", ttl,
                               status, team)
            VALUES ('nb-1', 'notebook', 'demo-nb', TIMESTAMPTZ '2026-11-01 00:00:00+00', NULL,
                    INTERVAL 8 HOUR, 'running', 'vision'),
                   ('nb-2', 'notebook', 'fresh', TIMESTAMPTZ '2026-11-01 10:00:00+00', NULL,
                    INTERVAL 8 HOUR, 'running', 'vision'),
                   ('nb-3', 'notebook', 'stopped', TIMESTAMPTZ '2026-10-30 00:00:00+00',
                    TIMESTAMPTZ '2026-10-30 05:00:00+00', INTERVAL 8 HOUR, 'succeeded', 'vision'),
                   ('job-4', 'batch_job', 'no-ttl', TIMESTAMPTZ '2026-10-01 00:00:00+00', NULL,
                    NULL, 'running', 'vision')""")  # fmt: skip
        [f] = expired(ledger.table("workloads"), now, clock=FixedClock(now))
        again = expired(ledger.table("workloads"), now + dt.timedelta(hours=1),
                        clock=FixedClock(now))  # fmt: skip
    assert f.kind == "ttl_expiry" and f.scope == {"workload": "nb-1"} and f.owner == "vision"
    assert f.evidence["overdue_hours"] == 4.0 and f.evidence["ttl_seconds"] == 8 * 3600
    assert [a.fingerprint for a in again] == [f.fingerprint]  # seen again: the same finding
