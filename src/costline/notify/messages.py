"""A finding, rendered for each channel: Slack Block Kit, PagerDuty Events v2, email, webhook.

Every message carries the same facts (`Alert`), so whoever reads it can act without opening
anything else: the title, the owner, the environment, the impact in USD (or `unpriced`), what
changed (the annotations in the window, else the top root causes), the severity, the escalation
tier reached, and a link to the finding on the dashboard when `notify.dashboard_url` is set.

Rendering is pure and needs no secret: the outbox stores what is rendered here, and the sender
adds the PagerDuty routing key and the webhook signature at send time (`costline.notify.senders`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from typing import Any, Final, Literal

from costline.config import Config, EmailRoute, RouteConfig, SlackRoute
from costline.model import Finding
from costline.money import format_money

MESSAGE_VERSION: Final = 1
TOP_CHANGES = 3
SLACK_HEADER_CHARS = 150  # Block Kit: a header's plain_text
SLACK_TEXT_CHARS = 3000  # Block Kit: a section's text
SLACK_FIELD_CHARS = 2000  # Block Kit: a section field's text
PD_SUMMARY_CHARS = 1024  # Events API v2: payload.summary
SIGNATURE_HEADER = "X-Costline-Signature"
MESSAGE_ID_HEADER = "X-Costline-Message-Id"
TIMESTAMP_HEADER = "X-Costline-Timestamp"

Event = Literal["trigger", "resolve"]


@dataclass(frozen=True)
class Alert:
    """The facts every channel shows about a finding."""

    fingerprint: str
    kind: str
    title: str
    summary: str
    severity: str
    status: str
    owner: str
    environment: str
    impact_usd: Decimal | None
    changes: tuple[str, ...]
    tier: str | None
    link: str | None
    scope: dict[str, str]

    @property
    def impact(self) -> str:
        """`$1,234.57`, or `unpriced` when the finding carries no dollar figure."""
        return format_money(self.impact_usd)

    def fields(self) -> dict[str, Any]:
        """The facts as JSON (money as a decimal string, like every costline JSON)."""
        return {
            "title": self.title,
            "summary": self.summary,
            "severity": self.severity,
            "status": self.status,
            "owner": self.owner,
            "environment": self.environment,
            "impact_usd": None if self.impact_usd is None else format(self.impact_usd, "f"),
            "impact": self.impact,
            "what_changed": list(self.changes),
            "tier": self.tier,
            "link": self.link,
            "scope": self.scope,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
        }


def alert_of(finding: Finding, config: Config) -> Alert:
    """The facts of `finding` that every message shows."""
    evidence = finding.evidence
    environment = finding.scope.get("environment") or evidence.get("environment")
    tier = evidence.get("tier")
    base = config.notify.dashboard_url
    return Alert(
        fingerprint=finding.fingerprint,
        kind=str(finding.kind),
        title=finding.title,
        summary=finding.summary,
        severity=str(finding.severity),
        status=str(finding.status),
        owner=finding.owner or "unowned",
        environment=str(environment) if environment else "unknown",
        impact_usd=finding.impact_usd,
        changes=what_changed(evidence),
        tier=str(tier) if tier is not None else None,
        link=f"{base.rstrip('/')}/findings/{finding.fingerprint}" if base else None,
        scope=dict(finding.scope),
    )


def what_changed(evidence: dict[str, Any], top: int = TOP_CHANGES) -> tuple[str, ...]:
    """The top items of `changes` (annotations: ts, kind, text), else of `root_cause`."""
    changes = evidence.get("changes")
    if isinstance(changes, list) and changes:
        return tuple(
            f"{c.get('ts', '')} {c.get('kind', 'change')}: {c.get('text', '')}".strip()
            for c in changes[:top]
            if isinstance(c, dict)
        )
    causes = evidence.get("root_cause")
    if isinstance(causes, list) and causes:
        said = []
        for c in causes[:top]:
            if not isinstance(c, dict):
                continue
            extra = c.get("extra_per_day_usd")
            money = f": {format_money(Decimal(str(extra)))} a day more" if extra is not None else ""
            share = f" ({float(c['share']):.0%} of it)" if c.get("share") is not None else ""
            said.append(f"{c.get('dimension', '?')} {c.get('name') or c.get('value', '?')}"
                        f"{money}{share}")  # fmt: skip
        return tuple(said)
    return ()


# -- Slack ----------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(alert: Alert, route: SlackRoute | None = None) -> dict[str, Any]:
    """An incoming-webhook body: Block Kit `blocks` (header, section with fields, what changed,
    context with the link) and a plain `text` fallback for notifications."""
    fields = [
        f"*Owner*\n{_mrkdwn(alert.owner)}",
        f"*Environment*\n{_mrkdwn(alert.environment)}",
        f"*Impact*\n{_mrkdwn(alert.impact)}",
        f"*Severity*\n{alert.severity}",
    ]
    if alert.tier:
        fields.append(f"*Tier*\n{_mrkdwn(alert.tier)}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(alert.title, SLACK_HEADER_CHARS)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(_mrkdwn(alert.summary or alert.title), SLACK_TEXT_CHARS),
            },
            "fields": [{"type": "mrkdwn", "text": _clip(f, SLACK_FIELD_CHARS)} for f in fields],
        },
    ]
    if alert.changes:
        lines = "\n".join(f"• {_mrkdwn(c)}" for c in alert.changes)
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(f"*What changed*\n{lines}", SLACK_TEXT_CHARS),
                },
            }
        )
    context = [f"costline {alert.kind}", f"`{alert.fingerprint[:12]}`"]
    if alert.link:
        context.append(f"<{alert.link}|Open in costline>")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    body: dict[str, Any] = {"text": fallback_text(alert), "blocks": blocks}
    if route is not None and route.channel:
        body["channel"] = route.channel
    return body


def fallback_text(alert: Alert) -> str:
    """One line for notifications and clients that do not draw blocks."""
    text = (
        f"[{alert.severity}] {alert.title}: {alert.impact}, owner {alert.owner}, "
        f"environment {alert.environment}"
    )
    if alert.tier:
        text += f", tier {alert.tier}"
    return text + (f" ({alert.link})" if alert.link else "")


# -- PagerDuty Events API v2 ----------------------------------------------------------------------


def pagerduty_event(alert: Alert, action: Event = "trigger") -> dict[str, Any]:
    """An Events API v2 event without its `routing_key` (a secret, added at send time by
    `with_routing_key`). `dedup_key` is the fingerprint, so PagerDuty folds repeats into one
    incident and a `resolve` closes it."""
    if action == "resolve":
        return {"event_action": "resolve", "dedup_key": alert.fingerprint}
    component = ",".join(f"{k}={v}" for k, v in sorted(alert.scope.items())) or alert.kind
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "payload": {
            "summary": _clip(f"{alert.title} ({alert.impact})", PD_SUMMARY_CHARS),
            "source": "costline",
            "severity": alert.severity,  # critical, warning, info: PagerDuty's own words
            "component": component,
            "group": alert.owner,
            "class": alert.kind,
            "custom_details": alert.fields(),
        },
    }
    if alert.link:
        event["links"] = [{"href": alert.link, "text": "Open in costline"}]
    return event


def with_routing_key(event: dict[str, Any], routing_key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, **event}


# -- email ----------------------------------------------------------------------------------------


def email_content(alert: Alert) -> dict[str, str]:
    """Subject and plain-text body (stored in the outbox; `email_message` makes the email)."""
    lines = [
        alert.title,
        "",
        alert.summary,
        "",
        f"Owner:       {alert.owner}",
        f"Environment: {alert.environment}",
        f"Impact:      {alert.impact}",
        f"Severity:    {alert.severity}",
    ]
    if alert.tier:
        lines.append(f"Tier:        {alert.tier}")
    if alert.changes:
        lines += ["", "What changed:", *(f"  - {c}" for c in alert.changes)]
    if alert.link:
        lines += ["", f"Open in costline: {alert.link}"]
    lines += ["", f"Finding {alert.fingerprint} ({alert.kind}), sent by costline."]
    return {
        "subject": f"[costline] {alert.severity}: {alert.title}",
        "text": "\n".join(lines) + "\n",
    }


def email_message(
    content: dict[str, str], route: EmailRoute, message_id: str | None = None
) -> EmailMessage:
    """The email for one route; `Message-ID` is derived from the outbox message id, so a mail
    client shows a re-sent copy as the same message."""
    message = EmailMessage()
    message["Subject"] = content["subject"]
    message["From"] = route.from_address
    message["To"] = ", ".join(route.to)
    if message_id:
        message["Message-ID"] = f"<{message_id}@costline>"
        message[MESSAGE_ID_HEADER] = message_id
    message.set_content(content["text"])
    if content.get("html"):  # a weekly review: its page beside the text
        message.add_alternative(content["html"], subtype="html")
    return message


# -- webhook --------------------------------------------------------------------------------------


def webhook_body(finding: Finding, alert: Alert, message_id: str, event: Event) -> dict[str, Any]:
    """The finding in its published JSON schema, with the message's facts beside it."""
    return {
        "version": MESSAGE_VERSION,
        "message_id": message_id,
        "event": event,
        "finding": json.loads(finding.model_dump_json()),
        "message": alert.fields(),
    }


def webhook_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact, keys sorted, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body with the secret, as `X-Costline-Signature`.

    >>> sign(b'{}', 'k')
    'sha256=add853b103fbcc936a194f9eb15e29c4ff08af6e47d5d1bca4f20218e31e4fff'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(body, secret), signature)


# -- per route ------------------------------------------------------------------------------------


def render(
    finding: Finding, alert: Alert, route: RouteConfig, message_id: str, event: Event
) -> dict[str, Any]:
    """What the outbox stores for one message to one route: no URL, key or secret."""
    if route.type == "slack":
        assert isinstance(route, SlackRoute)
        return slack_message(alert, route)
    if route.type == "pagerduty":
        return pagerduty_event(alert, event)
    if route.type == "email":
        return email_content(alert)
    if route.type == "webhook":
        return webhook_body(finding, alert, message_id, event)
    raise ValueError(f"route {route.name!r}: no renderer for route type {route.type!r}")
