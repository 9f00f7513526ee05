"""Delivery to real receivers on 127.0.0.1: Slack, PagerDuty Events v2 and a signed webhook served
by a `ThreadingHTTPServer`, email by an aiosmtpd SMTP server. Retries, permanent refusals, secrets
kept out of everything written down, and crash safety (a real SIGKILL mid-batch).

Needs nothing but Python: marked integration because it opens sockets and runs the CLI.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
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
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from costline.cli.main import app
from costline.clock import FixedClock
from costline.config import Config
from costline.ledger import outbox
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.notify import deliver, enqueue
from costline.notify.deliver import LEASE
from costline.notify.messages import sign
from costline.server.app import create_app
from tests.helpers import Mailbox

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 10, 3, 12, tzinfo=dt.UTC)
SLACK_TOKEN = "XOXB-s3cr3t-slack-path-token"
PD_KEY = "R0UTINGKEY0123456789abcdef0123456"
HOOK_SECRET = "whsec-very-secret-signing-key"
SECRETS = (SLACK_TOKEN, PD_KEY, HOOK_SECRET)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Slack (`/services/...`), PagerDuty (`/v2/enqueue`) and webhook (`/hook`) receivers.

    `fail[path]` answers the next N requests to a path with HTTP 500; `hangup[path]` closes the
    connection without an answer; `refuse[path]` answers (code, text) every time; `echo[path]`
    answers that code with the request's path and query and the headers it was sent. The webhook
    answers 401 unless the signature verifies; PagerDuty 400 unless the routing key is right.
    """

    port: int = 0
    accepted: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    hangup: dict[str, int] = field(default_factory=dict)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    echo: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.accepted if r.path.startswith(path)]

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        path = handler.path
        key = next((p for p in ("/services", "/v2/enqueue", "/hook") if path.startswith(p)), path)
        with self.lock:
            if self.hangup.get(key, 0) > 0:
                self.hangup[key] -= 1
                return  # HTTP/1.0: the connection closes with no answer
            if self.fail.get(key, 0) > 0:
                self.fail[key] -= 1
                return _reply(handler, 500, "internal error, try later")
            if key in self.refuse:
                return _reply(handler, *self.refuse[key])
            if key in self.echo:
                return _reply(handler, self.echo[key], _echo(handler))
            if key == "/hook":
                signature = handler.headers.get("X-Costline-Signature", "")
                if signature != sign(body, HOOK_SECRET):
                    return _reply(handler, 401, "bad signature")
                self.verified += 1
            if key == "/v2/enqueue" and json.loads(body).get("routing_key") != PD_KEY:
                return _reply(handler, 400, '{"status":"invalid event"}')
            self.accepted.append(Received(path, dict(handler.headers.items()), body))
        if key == "/v2/enqueue":
            return _reply(handler, 202, '{"status":"success","message":"Event processed"}')
        _reply(handler, 200, "ok")


ECHOED_HEADERS = ("Authorization", "X-Api-Key", "X-Gitlab-Token", "X-Team")


def _echo(handler: BaseHTTPRequestHandler) -> str:
    """What a careless receiver says back: the path and query, and the headers it was sent."""
    sent = [
        f"{name}: {handler.headers[name]}" for name in ECHOED_HEADERS if name in handler.headers
    ]
    return "; ".join([f"you sent {handler.path}", *sent])


def _reply(handler: BaseHTTPRequestHandler, code: int, text: str) -> None:
    data = text.encode()
    handler.send_response(code)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def config_data(receiver: Receiver, mailbox: Mailbox | None = None) -> dict[str, Any]:
    routes: list[dict[str, Any]] = [
        {
            "type": "slack",
            "name": "fraud-slack",
            "webhook_url_env": "FRAUD_SLACK_URL",
            "channel": "#fraud-costs",
        },
        {
            "type": "pagerduty",
            "name": "oncall",
            "routing_key_env": "PD_KEY",
            "events_url": receiver.url("/v2/enqueue"),
            "min_severity": "critical",
        },
        {
            "type": "webhook",
            "name": "bot",
            "url": receiver.url("/hook"),
            "secret_env": "HOOK_SECRET",
            "headers": {"X-Team": "fraud"},
        },
    ]
    if mailbox is not None:
        routes.append(
            {
                "type": "email",
                "name": "finops-mail",
                "to": ["finops@example.com"],
                "from_address": "costline@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": mailbox.port,
            }
        )
    return {
        "routes": routes,
        "owners": [
            {"name": "fraud", "match": {"team": "fraud"}, "routes": [r["name"] for r in routes]}
        ],
        "notify": {"dashboard_url": "http://costline.internal:8000", "backoff_seconds": 30},
    }


def secrets_env(receiver: Receiver) -> dict[str, str]:
    return {
        "FRAUD_SLACK_URL": receiver.url(f"/services/T000/B000/{SLACK_TOKEN}"),
        "PD_KEY": PD_KEY,
        "HOOK_SECRET": HOOK_SECRET,
    }


def finding(n: int = 0, impact: str = "5000") -> Finding:
    return Finding.new(
        kind="anomaly",
        scope={"team": "fraud", "service": f"svc-{n}"},
        dedup_key="spend:2026-10-01",
        clock=FixedClock(T0),
        title=f"svc-{n}: daily spend 4.1x its expected since 2026-10-01",
        severity="critical",
        owner="fraud",
        impact_usd=Decimal(impact),
        evidence={"changes": [{"ts": "2026-10-01T09:00:00Z", "kind": "deploy", "text": "v2"}]},
    )


def assert_no_secret(text: str, receiver: Receiver) -> None:
    for secret in (*SECRETS, "/services/T000", receiver.url("/hook")):
        assert secret not in text


def test_every_channel_delivers_with_retries_and_pagerduty_resolves(
    ledger: Ledger, receiver: Receiver, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = Config.model_validate(config_data(receiver, mailbox))
    env, clock = secrets_env(receiver), FixedClock(T0)
    receiver.fail["/services"] = 2
    receiver.hangup["/hook"] = 1
    mailbox.transient = 1
    f = finding()
    queued = enqueue(ledger, [f], cfg, clock)
    assert [m.route for m in queued] == ["fraud-slack", "oncall", "bot", "finops-mail"]

    first = deliver(ledger, cfg, clock, env)
    assert {m.route: m.status for m in first.attempted} == {
        "fraud-slack": "pending",
        "oncall": "sent",
        "bot": "pending",
        "finops-mail": "pending",
    }
    errors = {m.route: m.last_error for m in first.attempted}
    assert "HTTP 500: internal error, try later" in (errors["fraud-slack"] or "")
    assert "RemoteProtocolError" in (errors["bot"] or "")
    assert "451" in (errors["finops-mail"] or "")
    clock.advance(seconds=30)
    second = deliver(ledger, cfg, clock, env)
    assert {m.route: m.status for m in second.attempted} == {
        "fraud-slack": "pending",
        "bot": "sent",
        "finops-mail": "sent",
    }
    clock.advance(seconds=59)
    assert deliver(ledger, cfg, clock, env).attempted == []  # the second wait is 60 s
    clock.advance(seconds=1)
    assert [m.status for m in deliver(ledger, cfg, clock, env).attempted] == ["sent"]
    assert outbox.counts(ledger.con) == {"pending": 0, "sent": 4, "failed": 0}

    [slack] = receiver.on("/services")
    body = slack.json()
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert body["channel"] == "#fraud-costs" and "$5,000.00" in body["text"]
    [pd] = receiver.on("/v2/enqueue")
    event = pd.json()
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        PD_KEY,
        "trigger",
        f.fingerprint,
    )
    assert event["payload"]["source"] == "costline" and event["payload"]["severity"] == "critical"
    [hook] = receiver.on("/hook")
    assert receiver.verified == 1 and hook.headers["X-Team"] == "fraud"
    assert hook.headers["X-Costline-Message-Id"] == queued[2].message_id
    assert hook.headers["X-Costline-Timestamp"] == str(
        int((T0 + dt.timedelta(seconds=30)).timestamp())
    )
    assert Finding.model_validate(hook.json()["finding"]) == f
    [mail] = mailbox.messages
    assert mail["Subject"].strip() == f"[costline] critical: {f.title}"
    assert mail["To"] == "finops@example.com" and "Impact:      $5,000.00" in str(mail)

    # resolved: PagerDuty alone gets a resolve, once
    assert [m.route for m in enqueue(ledger, [f.resolve()], cfg, clock)] == ["oncall"]
    assert enqueue(ledger, [f.resolve()], cfg, clock) == []
    assert [m.status for m in deliver(ledger, cfg, clock, env).attempted] == ["sent"]
    assert receiver.on("/v2/enqueue")[-1].json() == {
        "routing_key": PD_KEY,
        "event_action": "resolve",
        "dedup_key": f.fingerprint,
    }
    assert_no_secret(caplog.text, receiver)


def test_refusals_fail_at_once_and_secrets_stay_out_of_errors_logs_outbox_and_cli(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_url = secrets_env(receiver)["FRAUD_SLACK_URL"]
    # receivers that echo what they were sent: the URL, the key
    receiver.refuse["/services"] = (404, f"no_service for {slack_url}")
    receiver.refuse["/v2/enqueue"] = (400, f'{{"errors":["routing key {PD_KEY} is invalid"]}}')
    receiver.refuse["/hook"] = (503, f"maintenance; see {receiver.url('/hook')}?sig={HOOK_SECRET}")
    path = tmp_path / "costline.yaml"
    path.write_text(yaml.safe_dump(config_data(receiver)))
    db = tmp_path / "ledger.duckdb"
    with Ledger(f"duckdb:///{db}") as led:
        led.write([], source="test", findings=[finding()])
    env = {"COSTLINE_LEDGER": f"duckdb:///{db}", **secrets_env(receiver)}
    runner = CliRunner()

    run = runner.invoke(app, ["--config", str(path), "notify", "-f", "json"], env=env)
    assert run.exit_code == 1, run.output  # DeliveryError: two failed for good
    rows = {r["route"]: r for r in json.loads(run.stdout)}
    assert (rows["fraud-slack"]["status"], rows["oncall"]["status"]) == ("failed", "failed")
    assert rows["fraud-slack"]["attempts"] == rows["oncall"]["attempts"] == 1
    assert rows["fraud-slack"]["last_error"].endswith("HTTP 404: no_service for [redacted]")
    assert "routing key [redacted] is invalid" in rows["oncall"]["last_error"]
    assert rows["bot"]["status"] == "pending" and "HTTP 503" in rows["bot"]["last_error"]
    listed = runner.invoke(
        app, ["--config", str(path), "notify", "--status", "failed", "-f", "table"], env=env
    )
    assert listed.exit_code == 0 and "oncall" in listed.stdout
    with Ledger(f"duckdb:///{db}", read_only=True) as led:
        stored = json.dumps(led.con.execute("SELECT * FROM outbox").fetchall(), default=str)
    for text in (run.output, listed.output, stored, caplog.text):
        assert_no_secret(text, receiver)
    assert receiver.accepted == []


LITERAL = {"query": "lit-query-s3cr3t", "password": "lit-pass-s3cr3t", "key": "lit-key-s3cr3t"}
FROM_ENV = {"path": "env-path-s3cr3t", "query": "env-query-s3cr3t",
            "bearer": "env-bearer-s3cr3t", "token": "env-token-s3cr3t"}  # fmt: skip
BASIC = base64.b64encode(f"bot:{LITERAL['password']}".encode()).decode()  # from the userinfo


def test_a_receiver_that_echoes_webhook_urls_and_headers_leaks_no_secret_anywhere(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Two webhook routes: one with its secrets written in costline.yaml (a password and a
    `token=` in the URL, an `X-Api-Key` header), one reading its URL and headers from the
    environment. The receiver echoes the path, query and headers: no secret may reach the
    CLI (sync and notify, table and JSON), the logs, the outbox or the API."""
    caplog.set_level(logging.DEBUG)
    literal_url = receiver.url(f"/hook/literal?team=finops&token={LITERAL['query']}")
    data: dict[str, Any] = {
        "routes": [
            {"type": "webhook", "name": "literal-bot",
             "url": literal_url.replace("http://", f"http://bot:{LITERAL['password']}@"),
             "headers": {"X-Api-Key": LITERAL["key"], "X-Team": "finops"}},
            {"type": "webhook", "name": "env-bot", "url_env": "BOT_URL",
             "headers_env": {"Authorization": "BOT_AUTHORIZATION",
                             "X-Gitlab-Token": "BOT_TOKEN"},
             "secret_env": "HOOK_SECRET"},
        ],
        "owners": [{"name": "fraud", "match": {"team": "fraud"},
                    "routes": ["literal-bot", "env-bot"]}],
    }  # fmt: skip
    path = tmp_path / "costline.yaml"
    path.write_text(yaml.safe_dump(data))
    db = tmp_path / "ledger.duckdb"
    with Ledger(f"duckdb:///{db}") as led:
        led.write([], source="test", findings=[finding()])
    env = {
        "COSTLINE_LEDGER": f"duckdb:///{db}",
        "BOT_URL": receiver.url(f"/hook/{FROM_ENV['path']}?sig={FROM_ENV['query']}"),
        "BOT_AUTHORIZATION": f"Bearer {FROM_ENV['bearer']}",
        "BOT_TOKEN": FROM_ENV["token"],
        "HOOK_SECRET": HOOK_SECRET,
    }
    receiver.echo["/hook"] = 400  # a permanent refusal: failed at once, the echo kept as the error
    commands = ("sync -f json", "sync -f table", "notify -f json", "notify --dry-run -f json",
                "notify --status failed -f table", "notify --status failed -f json")  # fmt: skip
    runner = CliRunner()
    cli = {c: runner.invoke(app, ["--config", str(path), *c.split()], env=env) for c in commands}
    assert {c: r.exit_code for c, r in cli.items()} == dict.fromkeys(commands, 0), cli
    rows = {r["route"]: r for r in json.loads(cli["notify --status failed -f json"].stdout)}
    assert rows["literal-bot"]["last_error"] == (
        "webhook route 'literal-bot': the receiver answered HTTP 400: you sent "
        "/hook/literal?team=finops&token=[redacted]; Authorization: Basic [redacted]; "
        "X-Api-Key: [redacted]; X-Team: finops"
    )
    assert rows["env-bot"]["last_error"] == (
        "webhook route 'env-bot': the receiver answered HTTP 400: you sent [redacted]; "
        "Authorization: [redacted]; X-Gitlab-Token: [redacted]"
    )
    with Ledger(f"duckdb:///{db}") as led:
        stored = json.dumps(led.con.execute("SELECT * FROM outbox").fetchall(), default=str)
        config = Config.model_validate(data)
        with TestClient(create_app(led, config, warm=False)) as client:
            api = client.get("/api/v1/config")
    assert api.status_code == 200
    [literal, from_env] = api.json()["config"]["routes"]
    assert literal["url"] == literal_url.replace("http://", "http://bot:[redacted]@").replace(
        LITERAL["query"], "[redacted]"
    )
    assert literal["headers"] == {"X-Api-Key": "[redacted]", "X-Team": "finops"}
    assert from_env["url_env"] == "BOT_URL" and from_env["headers_env"] == {
        "Authorization": "BOT_AUTHORIZATION", "X-Gitlab-Token": "BOT_TOKEN"}  # fmt: skip
    secrets = [*LITERAL.values(), BASIC, *FROM_ENV.values(), HOOK_SECRET]
    texts = {"api": api.text, "outbox": stored, "logs": caplog.text}
    texts |= {f"costline {c}": r.output for c, r in cli.items()}
    leaks = [(where, s) for where, text in texts.items() for s in secrets if s in text]
    assert leaks == []
    assert receiver.accepted == []


def _notify_process(
    path: Path, db: Path, env: dict[str, str], fault: str | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costline", "--config", str(path), "notify", "-f", "json"],
        env={
            **os.environ,
            **env,
            "COSTLINE_LEDGER": f"duckdb:///{db}",
            **({"COSTLINE_FAULT": fault} if fault else {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("fault", ["notify.after_send", "notify.after_mark"])
def test_a_crash_mid_batch_loses_nothing_and_resends_only_the_uncommitted_message(
    tmp_path: Path, receiver: Receiver, fault: str
) -> None:
    data = config_data(receiver)
    data["owners"][0]["routes"] = ["bot"]
    path = tmp_path / "costline.yaml"
    path.write_text(yaml.safe_dump(data))
    db = tmp_path / "ledger.duckdb"
    with Ledger(f"duckdb:///{db}") as led:
        led.write([], source="test", findings=[finding(n) for n in range(3)])
    env = secrets_env(receiver)

    plan_run = CliRunner().invoke(
        app,
        ["--config", str(path), "notify", "--dry-run", "-f", "json"],
        env={**env, "COSTLINE_LEDGER": f"duckdb:///{db}"},
    )
    assert plan_run.exit_code == 0, plan_run.output
    assert [r["reason"] for r in json.loads(plan_run.stdout)] == ["first alert"] * 3

    crashed = _notify_process(path, db, env, fault)
    assert crashed.returncode == -9, crashed.stderr  # SIGKILL at the fault point
    [first] = receiver.on("/hook")
    first_id = first.headers["X-Costline-Message-Id"]

    cfg = Config.model_validate(data)
    now = dt.datetime.now(dt.UTC)
    with Ledger(f"duckdb:///{db}") as led:
        assert outbox.counts(led.con)["pending"] == (3 if fault == "notify.after_send" else 2)
        report = deliver(led, cfg, FixedClock(now), env)
        assert len(report.sent) == 2 and first_id not in {m.message_id for m in report.sent}
        # the one accepted but not recorded as sent waits out its lease, then goes again
        later = deliver(led, cfg, FixedClock(now + LEASE + dt.timedelta(seconds=1)), env)
        assert outbox.counts(led.con) == {"pending": 0, "sent": 3, "failed": 0}
    ids = [r.headers["X-Costline-Message-Id"] for r in receiver.on("/hook")]
    assert len(set(ids)) == 3
    if fault == "notify.after_send":  # at least once: re-sent once, the receiver de-duplicates
        assert [m.message_id for m in later.sent] == [first_id] and ids.count(first_id) == 2
    else:  # committed before the crash: never sent again
        assert later.attempted == [] and sorted(ids) == sorted(set(ids))
