"""The weekly review sent through the alert routes (issue 16, point 10): one message per owner and
route with only that owner's scope, never to PagerDuty, once per ISO week (the outbox dedups by
owner, week and route), from `costline sync` and `costline report weekly --send`. Receivers are
real ones on 127.0.0.1 (an HTTP server for Slack and the webhook, aiosmtpd for email)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from costline.clock import FixedClock
from costline.config import load_config
from costline.ledger import outbox
from costline.ledger.store import Ledger
from costline.model import Finding, Window
from costline.notify import deliver
from costline.notify.messages import sign
from costline.notify.weekly import enqueue_reviews, week_of
from costline.optimize.recommend import Savings, recommendation
from costline.pipeline import ingest_focus
from costline.sync import sync
from tests.helpers import FOCUS_ROW, Mailbox

NOW = dt.datetime(2026, 11, 3, 9, tzinfo=dt.UTC)  # a Tuesday of ISO week 2026-W45
SLACK_PATH = "/services/T0/B0/s3cr3t-slack-path"
HOOK_SECRET = "whsec-s3cr3t-signing-key"
PD_KEY = "R0UTINGKEY-s3cr3t-0123456789abcdef"


@dataclass
class Receiver:
    """Slack, PagerDuty and webhook receivers on one port: every accepted POST, kept."""

    got: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(b) for p, _, b in self.got if p.startswith(path)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.got.append((self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _bills(path: Path) -> Path:
    """14 days to Sunday 2026-11-01: search spends $100 a day, then $300; vision $50 flat."""
    rows = []
    for i in range(14):
        day = dt.date(2026, 10, 19) + dt.timedelta(days=i)
        month = day.replace(day=1)
        after = (month + dt.timedelta(days=32)).replace(day=1)
        for team, usd in (("search", 100 if i < 7 else 300), ("vision", 50)):
            rows.append({**FOCUS_ROW, "ChargePeriodStart": f"{day}T00:00:00Z",
                         "ChargePeriodEnd": f"{day + dt.timedelta(days=1)}T00:00:00Z",
                         "BillingPeriodStart": f"{month}T00:00:00Z",
                         "BillingPeriodEnd": f"{after}T00:00:00Z", "ServiceName": f"{team} EC2",
                         "BilledCost": str(usd), "EffectiveCost": str(usd),
                         "Tags": json.dumps({"team": team})})  # fmt: skip
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _findings() -> list[Finding]:
    clock = FixedClock(NOW - dt.timedelta(days=3))
    window = Window(start=dt.datetime(2026, 10, 19, tzinfo=dt.UTC),
                    end=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))  # fmt: skip
    out = [Finding.new(kind="anomaly", scope={"team": team}, dedup_key="d", clock=clock,
                       title=f"{team}: {what}", severity="warning", owner=team,
                       impact_usd=Decimal(usd))
           for team, what, usd in (("search", "GPU spend 3x its expected", "1400"),
                                   ("vision", "storage spend 2x its expected", "700"))]  # fmt: skip
    for team, pool, p50 in (("search", "pool-a", "9000"), ("vision", "pool-b", "4000")):
        out.append(recommendation(
            kind="idle_capacity", scope={"pool": pool, "team": team}, title=f"{pool}: scale down",
            summary="idle", owner=team, current_monthly=Decimal(20000),
            savings=Savings(Decimal(p50), Decimal(p50), Decimal(p50)), method="m", inputs={},
            window=window, coverage=1.0, risk="low", action="Scale down", clock=clock))  # fmt: skip
    return out


def _config(root: Path, receiver: Receiver, mailbox: Mailbox) -> Path:
    doc = {
        "routes": [
            {"type": "slack", "name": "search-slack", "webhook_url_env": "SEARCH_SLACK_URL",
             "min_severity": "critical"},
            {"type": "pagerduty", "name": "oncall", "routing_key_env": "PD_KEY",
             "events_url": receiver.url("/v2/enqueue")},
            {"type": "webhook", "name": "vision-hook", "url": receiver.url("/hook"),
             "secret_env": "HOOK_SECRET"},
            {"type": "email", "name": "vision-mail", "to": ["vision@example.com"],
             "from_address": "costline@example.com", "smtp_host": "127.0.0.1",
             "smtp_port": mailbox.port},
        ],
        "owners": [
            {"name": "search", "match": {"team": "search"}, "routes": ["search-slack", "oncall"]},
            {"name": "vision", "match": {"team": "vision"},
             "routes": ["vision-hook", "vision-mail"]},
            {"name": "finance", "match": {"team": "finance"}},  # no route: nothing to send
        ],
    }  # fmt: skip
    path = root / "costline.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@dataclass
class Org:
    root: Path
    url: str
    config: Path
    env: dict[str, str]


@pytest.fixture
def org(tmp_path: Path, receiver: Receiver, mailbox: Mailbox) -> Org:
    url = f"duckdb://{tmp_path / 'ledger.duckdb'}"
    with Ledger(url) as ledger:
        ingest_focus(ledger, [_bills(tmp_path / "bills.csv")])
        ledger.write([], source="test", findings=_findings())
    env = {"SEARCH_SLACK_URL": receiver.url(SLACK_PATH), "PD_KEY": PD_KEY,
           "HOOK_SECRET": HOOK_SECRET}  # fmt: skip
    return Org(tmp_path, url, _config(tmp_path, receiver, mailbox), env)


def test_each_owner_gets_their_own_review_on_their_routes_and_never_twice_a_week(
    org: Org, receiver: Receiver, mailbox: Mailbox
) -> None:
    config = load_config(org.config)
    clock = FixedClock(NOW)
    with Ledger(org.url, clock=clock) as ledger:
        queued = enqueue_reviews(ledger, config, clock)
        assert sorted((m.payload["owner"], m.route) for m in queued) == [
            ("search", "search-slack"), ("vision", "vision-hook"), ("vision", "vision-mail")]  # fmt: skip
        assert {m.payload["week"] for m in queued} == {"2026-W45"} == {week_of(NOW)}
        report = deliver(ledger, config, clock, org.env)
        assert len(report.sent) == 3 and not report.failed
        payloads = json.dumps([m.payload for m in outbox.messages(ledger.con)])
        for secret in (SLACK_PATH, HOOK_SECRET, PD_KEY):
            assert secret not in payloads
        # Later the same week: nothing to queue, nothing sent.
        clock.advance(days=2)
        assert enqueue_reviews(ledger, config, clock) == []
        assert deliver(ledger, config, clock, org.env).attempted == []
    assert receiver.bodies("/v2/enqueue") == []  # a weekly letter pages nobody
    # search, on Slack: its own incident, recommendation and movers; nothing of vision's.
    [slack] = receiver.bodies(SLACK_PATH)
    text = json.dumps(slack)
    assert (
        slack["blocks"][0]["text"]["text"] == "Weekly review for search: 2026-10-26 to 2026-11-01"
    )
    assert "search: GPU spend 3x its expected" in text and "pool-a: scale down" in text
    assert "$1,400.00" in text  # the week's change in search's spend: $2,100 against $700
    assert "vision" not in text and "pool-b" not in text
    # vision, on the webhook (signed) and by email: its own, nothing of search's.
    [(_, headers, raw)] = [g for g in receiver.got if g[0] == "/hook"]
    assert headers["X-Costline-Signature"] == sign(raw, HOOK_SECRET)
    hook = json.loads(raw)
    assert hook["event"] == "weekly_review" and hook["owner"] == "vision"
    review = hook["review"]
    assert [f["title"] for f in review["incidents"]] == ["vision: storage spend 2x its expected"]
    assert [f["title"] for f in review["recommendations"]] == ["pool-b: scale down"]
    assert [(m["team"], m["change_usd"]) for m in review["movers"]] == [("vision", "0.00")]
    assert "search" not in hook["markdown"]
    [mail] = mailbox.messages
    assert mail["Subject"] == "[costline] Weekly review for vision: 2026-10-26 to 2026-11-01"
    html = mail.get_body(preferencelist=("html",))
    plain = mail.get_body(preferencelist=("plain",))
    assert html is not None and "<h2>Quick wins</h2>" in html.get_content()
    assert plain is not None and "pool-b: scale down" in plain.get_content()
    assert "search" not in plain.get_content()


def test_sync_queues_the_reviews_on_its_first_run_of_each_week(
    org: Org, receiver: Receiver
) -> None:
    config = load_config(org.config)
    clock = FixedClock(NOW)

    def reviews_received() -> int:
        slack = [b for b in receiver.bodies(SLACK_PATH) if "Weekly review" in json.dumps(b)]
        hooks = [b for b in receiver.bodies("/hook") if b.get("event") == "weekly_review"]
        return len(slack) + len(hooks)

    with Ledger(org.url, clock=clock) as ledger:
        first = sync(ledger, config, clock=clock, env=org.env)
        assert first.errors == [] and first.reviews == 3
        assert first.as_json()["reviews_queued"] == 3 and reviews_received() == 2
        clock.advance(minutes=5)
        assert sync(ledger, config, clock=clock, env=org.env).reviews == 0
        clock.advance(days=4)  # Saturday, same ISO week
        assert sync(ledger, config, clock=clock, env=org.env).reviews == 0
        assert reviews_received() == 2
        clock.advance(days=2)  # Monday: a new week, a new review each
        assert week_of(clock.now()) == "2026-W46"
        assert sync(ledger, config, clock=clock, env=org.env).reviews == 3
        assert reviews_received() == 4
        quiet = sync(ledger, config, clock=clock, env=org.env, deliver=False)
        assert quiet.reviews == 0  # --no-notify queues nothing


def test_report_weekly_send_sends_one_owner_s_review_once(org: Org, mailbox: Mailbox) -> None:
    env = {**os.environ, **org.env, "COSTLINE_LEDGER": org.url, "COSTLINE_CONFIG": str(org.config)}

    def send(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "costline", "report", "weekly", "--send",
                               *args], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip

    first = send("--owner", "vision", "--format", "json")
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    assert sorted((r["route"], r["status"]) for r in rows) == [
        ("vision-hook", "sent"), ("vision-mail", "sent")]  # fmt: skip
    assert "2 review(s) queued" in first.stderr and len(mailbox.messages) == 1
    again = send("--owner", "vision", "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout) == []
    assert "0 review(s) queued" in again.stderr and len(mailbox.messages) == 1
    for out in (first.stdout + first.stderr, again.stdout + again.stderr):
        for secret in (SLACK_PATH, HOOK_SECRET, PD_KEY):
            assert secret not in out
    unknown = send("--owner", "nobody")
    assert unknown.returncode == 2 and "owner nobody is not configured" in unknown.stderr
    # Printing is unchanged, and its JSON carries findings in their schema.
    shown = subprocess.run([sys.executable, "-m", "costline", "report", "weekly", "--owner",
                            "vision", "--format", "json"], capture_output=True, text=True,
                           env=env, timeout=300)  # fmt: skip
    body = json.loads(shown.stdout)
    assert [f["title"] for f in body["recommendations"]] == ["pool-b: scale down"]
    assert body["recommendations"][0]["impact_usd"] == "4000.00"
