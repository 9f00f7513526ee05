"""Alert routing, rendering, the re-alert rule and retries: on a real ledger, no services.

Delivery failures here are real ones (a closed port on 127.0.0.1 refuses the connection); the
receivers that accept messages are in tests/integration/test_notify_receivers.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import doctest
import io
import json
import logging
import socket
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from costline.cli.output import Format, emit_rows
from costline.clock import FixedClock
from costline.config import (
    Config,
    ConfigValidationError,
    EmailRoute,
    SlackRoute,
    WebhookRoute,
    load_config,
)
from costline.ledger import outbox as ledger_outbox
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.notify import deliver, enqueue, messages, outbox, plan, redact, routes_for, routing
from costline.notify.messages import (
    alert_of,
    email_content,
    email_message,
    pagerduty_event,
    sign,
    slack_message,
    verify,
    webhook_body,
    webhook_bytes,
)

T0 = dt.datetime(2026, 10, 3, 12, tzinfo=dt.UTC)
SLACK_SECRET = "https://hooks.slack.example/services/T000/B000/s3cr3t-slack-token"
PD_KEY = "R0UTINGKEY0123456789abcdef012345"


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def config(**notify: Any) -> Config:
    return Config.model_validate(
        {
            "routes": [
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
                    "min_severity": "critical",
                    "events_url": f"http://127.0.0.1:{closed_port()}/v2/enqueue",
                },
                {
                    "type": "email",
                    "name": "finops-mail",
                    "to": ["finops@example.com"],
                    "from_address": "costline@example.com",
                },
                {
                    "type": "webhook",
                    "name": "bot",
                    "url": "http://127.0.0.1:9/hook",
                    "secret_env": "HOOK_SECRET",
                    "min_severity": "warning",
                },
            ],
            "owners": [
                {"name": "fraud", "match": {"team": "fraud"}, "routes": ["fraud-slack", "oncall"]},
                {"name": "search", "match": {"team": "search"}, "routes": ["bot"]},
            ],
            "notify": {"dashboard_url": "http://costline.internal:8000/", **notify},
        }
    )


def finding(
    impact: str | None = "1000",
    severity: str = "critical",
    scope: dict[str, str] | None = None,
    **evidence: Any,
) -> Finding:
    return Finding.new(
        kind="anomaly",
        scope=scope if scope is not None else {"team": "fraud"},
        dedup_key="spend:2026-10-01",
        clock=FixedClock(T0),
        title="team fraud: daily spend 4.1x its expected since 2026-10-01",
        summary="team fraud spent $5,000 over 2 day(s)",
        severity=severity,
        owner="fraud",
        impact_usd=Decimal(impact) if impact is not None else None,
        evidence={
            "changes": [
                {
                    "ts": "2026-10-01T09:00:00Z",
                    "kind": "deploy",
                    "text": "fraud-scorer v2 <canary>",
                },
                {"ts": "2026-10-01T10:00:00Z", "kind": "launch", "text": "gpt-5 for triage"},
                {"ts": "2026-10-01T11:00:00Z", "kind": "deploy", "text": "third"},
                {"ts": "2026-10-01T12:00:00Z", "kind": "deploy", "text": "fourth, not shown"},
            ],
            **evidence,
        },
    )


# -- routing -------------------------------------------------------------------------------------


def test_routes_come_from_owners_then_tiers_deduplicated_and_filtered_by_severity() -> None:
    cfg = config()
    assert [r.name for r in routes_for(finding(), cfg)] == ["fraud-slack", "oncall"]
    # warning: the critical-only PagerDuty route drops out
    assert [r.name for r in routes_for(finding(severity="warning"), cfg)] == ["fraud-slack"]
    # tier routes from the evidence, after the owner's, without repeats; unknown names skipped
    tiered = finding(routes=["finops-mail", "fraud-slack", "gone"])
    assert [r.name for r in routes_for(tiered, cfg)] == ["fraud-slack", "oncall", "finops-mail"]
    # by owner name alone (the scope matches nobody), and by scope alone (another owner's name)
    by_name = finding(scope={"service": "bedrock"})
    assert [r.name for r in routes_for(by_name, cfg)] == ["fraud-slack", "oncall"]
    both = finding(scope={"team": "search"})
    assert routing.route_names(both, cfg) == ["fraud-slack", "oncall", "bot"]
    assert [r.name for r in routes_for(finding(severity="info", scope={"team": "x"}), cfg)] == [
        "fraud-slack"
    ]


# -- rendering -----------------------------------------------------------------------------------


def test_alert_facts_carry_owner_environment_impact_changes_tier_and_link() -> None:
    f = finding(tier="finance", environment="prod")
    a = alert_of(f, config())
    assert (a.owner, a.environment, a.impact, a.tier) == ("fraud", "prod", "$1,000.00", "finance")
    assert a.link == f"http://costline.internal:8000/findings/{f.fingerprint}"
    assert len(a.changes) == 3 and a.changes[0].startswith("2026-10-01T09:00:00Z deploy: ")
    unpriced = alert_of(
        finding(impact=None, scope={"team": "fraud", "environment": "dev"}), Config()
    )
    assert (unpriced.impact, unpriced.environment, unpriced.link) == ("unpriced", "dev", None)
    causes = {
        "root_cause": [{"dimension": "service", "value": "Bedrock", "extra_per_day_usd": 1234.5}]
    }
    bare = Finding.new(
        kind="anomaly",
        scope={},
        dedup_key="x",
        clock=FixedClock(T0),
        title="t",
        severity="info",
        evidence=causes,
    )
    b = alert_of(bare, Config())
    assert b.changes == ("service Bedrock: $1,234.50 a day more",)
    assert (b.owner, b.environment, b.tier) == ("unowned", "unknown", None)


def test_slack_message_is_block_kit_with_a_text_fallback() -> None:
    f = finding(tier="finance")
    route = SlackRoute(type="slack", name="s", webhook_url_env="X", channel="#fraud-costs")
    body = slack_message(alert_of(f, config()), route)
    assert body["channel"] == "#fraud-costs"
    assert "$1,000.00" in body["text"] and "owner fraud" in body["text"]
    header, section, changed, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": f.title}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    fields = [x["text"] for x in section["fields"]]
    assert fields == [
        "*Owner*\nfraud",
        "*Environment*\nunknown",
        "*Impact*\n$1,000.00",
        "*Severity*\ncritical",
        "*Tier*\nfinance",
    ]
    assert all(x["type"] == "mrkdwn" for x in section["fields"]) and len(fields) <= 10
    assert "&lt;canary&gt;" in changed["text"]["text"] and "fourth" not in str(changed)
    assert context["type"] == "context"
    assert (
        f"<http://costline.internal:8000/findings/{f.fingerprint}|Open in costline>"
        in (context["elements"][0]["text"])
    )
    long = finding().model_copy(update={"title": "x" * 400})
    assert len(slack_message(alert_of(long, Config()))["blocks"][0]["text"]["text"]) == 150


def test_pagerduty_event_has_the_v2_fields() -> None:
    f = finding().model_copy(update={"title": "y" * 2000})
    event = pagerduty_event(alert_of(f, config()))
    assert event["event_action"] == "trigger" and event["dedup_key"] == f.fingerprint
    p = event["payload"]
    assert len(p["summary"]) == 1024 and p["source"] == "costline"
    assert (p["severity"], p["component"], p["group"], p["class"]) == (
        "critical",
        "team=fraud",
        "fraud",
        "anomaly",
    )
    assert p["custom_details"]["impact_usd"] == "1000" and p["custom_details"]["owner"] == "fraud"
    assert event["links"] == [
        {
            "href": f"http://costline.internal:8000/findings/{f.fingerprint}",
            "text": "Open in costline",
        }
    ]
    assert "routing_key" not in event  # added at send time only
    assert messages.with_routing_key(event, "k")["routing_key"] == "k"
    assert pagerduty_event(alert_of(f, config()), "resolve") == {
        "event_action": "resolve",
        "dedup_key": f.fingerprint,
    }
    for severity in ("info", "warning"):
        assert (
            pagerduty_event(alert_of(finding(severity=severity), Config()))["payload"]["severity"]
            == severity
        )


def test_email_has_the_subject_and_the_facts() -> None:
    f = finding(tier="finance")
    route = EmailRoute(type="email", name="m", to=["a@x.org", "b@x.org"], from_address="c@x.org")
    content = email_content(alert_of(f, config()))
    mail = email_message(content, route, "abc123")
    assert mail["Subject"] == f"[costline] critical: {f.title}"
    assert (mail["From"], mail["To"], mail["Message-ID"]) == (
        "c@x.org",
        "a@x.org, b@x.org",
        "<abc123@costline>",
    )
    text = mail.get_content()
    for fact in (
        "Owner:       fraud",
        "Environment: unknown",
        "Impact:      $1,000.00",
        "Tier:        finance",
        "deploy: fraud-scorer v2 <canary>",
        f"/findings/{f.fingerprint}",
    ):
        assert fact in text


def test_webhook_body_is_the_finding_plus_the_message_and_its_signature_verifies() -> None:
    f = finding()
    body = webhook_body(f, alert_of(f, config()), "mid", "trigger")
    assert body["version"] == 1 and body["message_id"] == "mid"
    assert Finding.model_validate(body["finding"]) == f
    assert body["message"]["impact"] == "$1,000.00"
    raw = webhook_bytes(body)
    signature = sign(raw, "shh")
    assert signature.startswith("sha256=") and verify(raw, "shh", signature)
    assert not verify(raw + b" ", "shh", signature) and not verify(raw, "other", signature)


# -- the re-alert rule ---------------------------------------------------------------------------


def test_same_state_twice_queues_nothing_new(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    first = enqueue(ledger, [finding()], cfg, clock)
    assert [(m.route, m.event, m.seq) for m in first] == [
        ("fraud-slack", "trigger", 1),
        ("oncall", "trigger", 1),
    ]
    clock.advance(hours=1)
    assert enqueue(ledger, [finding()], cfg, clock) == []
    assert plan(ledger, [finding()], cfg, clock) == []
    assert ledger_outbox.counts(ledger.con) == {"pending": 2, "sent": 0, "failed": 0}


def test_impact_growth_realerts_above_the_threshold_only(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    enqueue(ledger, [finding("1000")], cfg, clock)
    assert enqueue(ledger, [finding("1100")], cfg, clock) == []  # +10%
    again = enqueue(ledger, [finding("1600")], cfg, clock)  # +60%
    assert [(m.route, m.seq, m.payload["reason"]) for m in again] == [
        ("fraud-slack", 2, "impact grew 60% since the last alert"),
        ("oncall", 2, "impact grew 60% since the last alert"),
    ]
    # measured from the last alert's impact (1600), not the first's
    assert enqueue(ledger, [finding("2000")], cfg, clock) == []
    assert len(enqueue(ledger, [finding("2400")], cfg, clock)) == 2
    # unpriced, then priced: alert; a fall never does
    assert len(enqueue(ledger, [finding(None, scope={"team": "fraud", "x": "1"})], cfg, clock)) == 2
    assert len(enqueue(ledger, [finding("5", scope={"team": "fraud", "x": "1"})], cfg, clock)) == 2
    assert enqueue(ledger, [finding("1", scope={"team": "fraud", "x": "1"})], cfg, clock) == []


def test_a_severity_rise_realerts_though_the_impact_grew_little(ledger: Ledger) -> None:
    """An open level shift accrues daily: passing from warning to critical is a new alert even
    when the impact grew less than `realert_growth_pct` since the last one."""
    cfg, clock = config(), FixedClock(T0)
    assert [m.route for m in enqueue(ledger, [finding("4600", "warning")], cfg, clock)] == [
        "fraud-slack"
    ]
    assert enqueue(ledger, [finding("4900", "warning")], cfg, clock) == []
    up = enqueue(ledger, [finding("5100", "critical")], cfg, clock)  # +11%, warning -> critical
    assert [(m.route, m.payload["reason"]) for m in up] == [
        ("fraud-slack", "severity rose to critical"),
        ("oncall", "first alert"),
    ]
    assert enqueue(ledger, [finding("5200", "critical")], cfg, clock) == []


def test_reaching_a_higher_tier_realerts_and_adds_the_tier_routes(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    enqueue(ledger, [finding(tier="platform", tier_index=0)], cfg, clock)
    assert enqueue(ledger, [finding(tier="platform", tier_index=0)], cfg, clock) == []
    up = enqueue(
        ledger, [finding(tier="finance", tier_index=1, routes=["finops-mail"])], cfg, clock
    )
    assert [(m.route, m.payload["reason"]) for m in up] == [
        ("fraud-slack", "reached tier finance"),
        ("oncall", "reached tier finance"),
        ("finops-mail", "first alert"),
    ]
    assert up[2].payload["content"]["subject"].startswith("[costline] critical: ")


def test_acknowledged_and_snoozed_findings_are_quiet_and_resolved_ones_resolve_pagerduty(
    ledger: Ledger,
) -> None:
    cfg, clock = config(), FixedClock(T0)
    f = finding()
    assert enqueue(ledger, [f.acknowledge()], cfg, clock) == []
    snoozed = f.snooze(T0 + dt.timedelta(hours=2), clock=clock)
    assert enqueue(ledger, [snoozed], cfg, clock) == []
    assert enqueue(ledger, [f.resolve()], cfg, clock) == []  # never alerted: nothing to resolve
    clock.advance(hours=3)  # the snooze ran out: it alerts like an open finding
    assert len(enqueue(ledger, [snoozed], cfg, clock)) == 2
    resolved = enqueue(ledger, [f.resolve()], cfg, clock)
    assert [(m.route, m.event) for m in resolved] == [("oncall", "resolve")]
    assert resolved[0].payload["content"] == {"event_action": "resolve", "dedup_key": f.fingerprint}
    assert enqueue(ledger, [f.resolve()], cfg, clock) == []
    reopened = enqueue(ledger, [f], cfg, clock)
    assert [(m.route, m.event, m.seq) for m in reopened] == [("oncall", "trigger", 3)]


def test_one_call_writes_all_its_messages_or_none(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    planned = plan(ledger, [finding(), finding(scope={"team": "fraud", "x": "1"})], cfg, clock)
    assert len(planned) == 4
    broken = replace(planned[2], payload={"not json": object()})
    with pytest.raises(TypeError):
        ledger_outbox.insert(ledger.con, [*planned[:2], broken, planned[3]])
    assert ledger_outbox.counts(ledger.con) == {"pending": 0, "sent": 0, "failed": 0}
    assert ledger_outbox.insert(ledger.con, planned) == [m.message_id for m in planned]


def test_message_ids_are_deterministic_and_payloads_hold_no_secrets(
    ledger: Ledger, tmp_path: Any
) -> None:
    cfg, clock = config(), FixedClock(T0)
    with Ledger(f"duckdb:///{tmp_path / 'other.duckdb'}") as other:
        a = [m.message_id for m in enqueue(ledger, [finding()], cfg, clock)]
        b = [m.message_id for m in enqueue(other, [finding()], cfg, clock)]
    assert a == b and len(set(a)) == 2
    stored = json.dumps(ledger.con.execute("SELECT * FROM outbox").fetchall(), default=str)
    for secret_name in ("FRAUD_SLACK_URL", "PD_KEY", "routing_key", "hooks.slack"):
        assert secret_name not in stored


# -- delivery failures, backoff ------------------------------------------------------------------


def webhook_only(port: int, **notify: Any) -> Config:
    return Config.model_validate(
        {
            "routes": [
                {
                    "type": "webhook",
                    "name": "bot",
                    "url": f"http://127.0.0.1:{port}/h/x",
                    "secret_env": "HOOK_SECRET",
                }
            ],
            "owners": [{"name": "fraud", "match": {"team": "fraud"}, "routes": ["bot"]}],
            "notify": notify,
        }
    )


def test_backoff_doubles_until_max_attempts_then_the_message_fails(ledger: Ledger) -> None:
    cfg = webhook_only(closed_port(), max_attempts=3, backoff_seconds=30)
    clock = FixedClock(T0)
    env = {"HOOK_SECRET": "shh"}
    [queued] = enqueue(ledger, [finding()], cfg, clock)
    waits = []
    for _ in range(3):
        report = deliver(ledger, cfg, clock, env)
        [m] = report.attempted
        if m.status == "pending":
            assert m.next_attempt_at is not None
            waits.append((m.next_attempt_at - clock.now()).total_seconds())
            clock.advance(seconds=waits[-1] - 1)
            assert deliver(ledger, cfg, clock, env).attempted == []  # not due yet
            clock.advance(seconds=1)
    assert waits == [30, 60]
    [failed] = ledger_outbox.messages(ledger.con, status="failed")
    assert failed.message_id == queued.message_id and failed.attempts == 3
    assert failed.last_error is not None
    assert failed.last_error.startswith(
        "gave up after 3 attempts: webhook route 'bot': ConnectError"
    )
    clock.advance(days=1)
    assert deliver(ledger, cfg, clock, env).attempted == []  # failed stays failed
    assert ledger_outbox.retry_failed(ledger.con, clock.now()) == 1
    assert [m.attempts for m in deliver(ledger, cfg, clock, env).attempted] == [1]


def test_a_message_whose_sends_never_finish_fails_once_out_of_attempts(ledger: Ledger) -> None:
    cfg = webhook_only(closed_port(), max_attempts=2)
    clock = FixedClock(T0)
    enqueue(ledger, [finding()], cfg, clock)
    for _ in range(2):  # two deliverers died mid-send: claimed, never recorded
        assert ledger_outbox.claim_next(ledger.con, clock.now(), dt.timedelta(seconds=60))
        clock.advance(seconds=61)
    [m] = deliver(ledger, cfg, clock, {"HOOK_SECRET": "shh"}).attempted
    assert (m.status, m.attempts) == ("failed", 3)
    assert (m.last_error or "").startswith("gave up after 2 attempts that never finished")


def test_a_missing_secret_fails_at_once_naming_the_variable(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    enqueue(ledger, [finding()], cfg, clock)
    report = deliver(ledger, cfg, clock, {"PD_KEY": PD_KEY})
    by_route = {m.route: m for m in report.attempted}
    slack = by_route["fraud-slack"]
    assert slack.status == "failed" and slack.attempts == 1
    assert (
        slack.last_error is not None and "environment variable FRAUD_SLACK_URL" in slack.last_error
    )
    # PagerDuty's receiver is down: retried, and the key is nowhere in the error
    oncall = by_route["oncall"]
    assert oncall.status == "pending" and "ConnectError" in (oncall.last_error or "")
    assert PD_KEY not in json.dumps(
        ledger.con.execute("SELECT * FROM outbox").fetchall(), default=str
    )


def test_a_route_removed_from_the_config_fails_its_messages(ledger: Ledger) -> None:
    cfg, clock = config(), FixedClock(T0)
    enqueue(ledger, [finding()], cfg, clock)
    [m, n] = deliver(ledger, Config(), clock, {}).attempted
    assert m.status == n.status == "failed"
    assert "no longer configured" in (m.last_error or "")


def test_an_unexpected_error_is_retried_like_a_transient_one(ledger: Ledger) -> None:
    cfg, clock = webhook_only(closed_port()), FixedClock(T0)
    [planned] = plan(ledger, [finding()], cfg, clock)
    ledger_outbox.insert(ledger.con, [replace(planned, payload={"seq": 1})])  # no content
    [m] = deliver(ledger, cfg, clock, {"HOOK_SECRET": "shh"}).attempted
    assert (m.status, m.last_error) == ("pending", "unexpected KeyError: 'content'")


def test_redact_keeps_hosts_and_drops_paths_queries_userinfo_and_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = redact.redact(
        f"POST {SLACK_SECRET}?x=1 and http://user:pw@10.0.0.1:8080/p said {PD_KEY}", [PD_KEY]
    )
    assert text == (
        "POST https://hooks.slack.example/[redacted] and http://10.0.0.1:8080/[redacted] said "
        "[redacted]"
    )
    redact.guard_logs()
    redact.guard_logs()
    assert logging.getLogger("httpx").filters.count(redact._FILTER) == 1
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", SLACK_SECRET, "200")
    assert "s3cr3t" not in caplog.text and "hooks.slack.example/[redacted]" in caplog.text


def test_a_route_s_secrets_are_every_form_an_echo_may_show_them_in() -> None:
    written = WebhookRoute.model_validate({
        "type": "webhook", "name": "bot",
        "url": "https://bot:pa%24%24word@hooks.example.com/in?team=finops&token=tok-1234&sig=ab",
        "headers": {"Authorization": "Bearer hdr-1234", "X-Api-Key": "key-1234", "X-Team": "x"}})  # fmt: skip
    # the password as written and as sent (and in httpx's Basic credential), the `token=`
    # value (not `team=`; `sig=ab` is too short to hide), the credential headers
    assert redact.route_secrets(written, {}) == [
        "pa%24%24word",
        "pa$$word",
        base64.b64encode(b"bot:pa$$word").decode(),
        "tok-1234",
        "Bearer hdr-1234",
        "hdr-1234",
        "key-1234",
    ]
    from_env = WebhookRoute.model_validate({
        "type": "webhook", "name": "bot", "url_env": "BOT_URL",
        "headers_env": {"Authorization": "BOT_AUTH"}, "secret_env": "HOOK_SECRET"})  # fmt: skip
    env = {"BOT_URL": "https://hooks.example.com/in/path-1234?x=query-1234",
           "BOT_AUTH": "Token auth-1234", "HOOK_SECRET": "shh"}  # fmt: skip
    assert redact.route_secrets(from_env, env) == [
        env["BOT_URL"], "Token auth-1234", "shh", "/in/path-1234", "x=query-1234",
        "/in/path-1234?x=query-1234", "query-1234", "auth-1234"]  # fmt: skip
    slack = SlackRoute(type="slack", name="s", webhook_url_env="FRAUD_SLACK_URL")
    echo = "no_service for /services/T000/B000/s3cr3t-slack-token (token=tok-1234)"
    hidden = redact.route_secrets(slack, {"FRAUD_SLACK_URL": SLACK_SECRET})
    assert redact.redact(echo, hidden) == "no_service for [redacted] (token=tok-1234)"
    assert redact.redact(echo, redact.route_secrets(written, {})).endswith("(token=[redacted])")


def test_the_api_s_view_of_the_config_hides_what_routes_write_and_keeps_variable_names() -> None:
    cfg = Config.model_validate({"routes": [
        {"type": "webhook", "name": "bot", "url": "https://h.example.com/in?api_key=k-123456",
         "headers": {"X-Gitlab-Token": "g-123456", "X-Team": "finops"}},
        {"type": "slack", "name": "s", "webhook_url_env": "FRAUD_SLACK_URL"}]})  # fmt: skip
    [bot, slack] = redact.redacted_config(cfg)["routes"]
    assert bot["url"] == "https://h.example.com/in?api_key=[redacted]"
    assert bot["headers"] == {"X-Gitlab-Token": "[redacted]", "X-Team": "finops"}
    assert slack["webhook_url_env"] == "FRAUD_SLACK_URL"
    assert cfg.routes[0].model_dump()["url"].endswith("k-123456")  # the config itself is intact


def test_a_webhook_url_is_given_once_and_a_bad_one_is_never_echoed(tmp_path: Path) -> None:
    for n, (route, says) in enumerate((
        ("{}", "routes[0]: webhook route 'bot': give `url` or `url_env`"),
        ("{url: 'https://a.example.com', url_env: A}", "give `url` or `url_env`"),
        ("{url: 'ftp://bot:pw-s3cr3t@a.example.com'}",
         "routes[0].url: expected an http:// or https:// URL"),
        ("{url_env: A, headers: {Authorization: x}, headers_env: {Authorization: B}}",
         "header 'Authorization' is in both `headers` and `headers_env`"),
    )):  # fmt: skip
        path = tmp_path / f"c{n}.yaml"
        path.write_text(f"routes:\n  - {{type: webhook, name: bot, {route[1:-1]}}}\n")
        with pytest.raises(ConfigValidationError) as caught:
            load_config(path)
        assert says in str(caught.value) and "pw-s3cr3t" not in str(caught.value)


def test_a_webhook_s_url_and_header_variables_unset_fail_at_once_naming_them(
    ledger: Ledger,
) -> None:
    route = {"type": "webhook", "name": "bot", "url_env": "BOT_URL",
             "headers_env": {"Authorization": "BOT_AUTH"}}  # fmt: skip
    cfg = Config.model_validate(
        {
            "routes": [route],
            "owners": [{"name": "fraud", "match": {"team": "fraud"}, "routes": ["bot"]}],
        }
    )
    clock = FixedClock(T0)
    enqueue(ledger, [finding()], cfg, clock)
    [m] = deliver(ledger, cfg, clock, {"BOT_AUTH": "Bearer auth-1234"}).attempted
    assert m.status == "failed" and "environment variable BOT_URL" in (m.last_error or "")
    ledger_outbox.retry_failed(ledger.con, clock.now())
    url = f"http://127.0.0.1:{closed_port()}/in?token=query-1234"
    [m] = deliver(ledger, cfg, clock, {"BOT_URL": url}).attempted
    assert m.status == "failed" and "environment variable BOT_AUTH" in (m.last_error or "")


def test_a_table_shows_a_redacted_value_as_written() -> None:
    out = io.StringIO()
    emit_rows([{"last_error": "token=[redacted] [bold]x"}], Format.table,
              console=Console(file=out, width=200))  # fmt: skip
    assert "token=[redacted] [bold]x" in out.getvalue()  # not swallowed as rich markup


def test_docstring_examples_run() -> None:
    for module in (redact, messages, outbox, routing):
        assert doctest.testmod(module).failed == 0
