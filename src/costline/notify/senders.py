"""Sending one outbox message to one route: Slack, PagerDuty and webhooks over httpx, email over
SMTP. A sender returns when the receiver accepted the message and raises `SendFailed` otherwise.

What counts as accepted, and which refusals are worth retrying:

- HTTP 2xx is accepted. 5xx, 408, 409, 425 and 429 may pass later: retried (a `Retry-After` in
  seconds is honoured as the least wait). Any other 4xx (PagerDuty's 400 "invalid event", a 404
  for a deleted Slack webhook, a 401 from a receiver that rejects the signature) will not pass by
  trying again: the message fails at once, with the receiver's answer as the error. 3xx fails too:
  redirects are not followed, configure the final URL.
- Network errors and timeouts (10 s) are retried.
- SMTP 5xx replies fail at once; 4xx replies, dropped connections and timeouts are retried.
- A route whose secret variable is not set fails at once, naming the variable (never a value).

Secrets (the Slack webhook URL, the PagerDuty routing key, a webhook's URL, headers and signing
secret) are read from the environment here, at send time, and every error text is passed through
`redact` with every secret the route holds or reads (`redact.route_secrets`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from costline.config import EmailRoute, PagerDutyRoute, RouteConfig, SlackRoute, WebhookRoute
from costline.errors import DeliveryError
from costline.notify.messages import (
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    email_message,
    sign,
    webhook_bytes,
    with_routing_key,
)
from costline.notify.redact import redact, route_secrets, short

if TYPE_CHECKING:
    from costline.clock import Clock
    from costline.ledger.outbox import OutboxMessage

TIMEOUT_SECONDS = 10.0
RETRYABLE_HTTP = frozenset({408, 409, 425, 429})
log = logging.getLogger("costline.notify")


class SendFailed(DeliveryError):
    """A message was not accepted. `permanent`: trying again will not help."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


SmtpFactory = Callable[[str, int, float], smtplib.SMTP]


def default_smtp(host: str, port: int, timeout: float) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, timeout=timeout)


@dataclass
class Transport:
    """The external clients a sender uses, injected so tests and the server can supply theirs."""

    http: httpx.Client
    env: Mapping[str, str]
    clock: Clock
    smtp: SmtpFactory = field(default=default_smtp)


def secret(env: Mapping[str, str], variable: str, route: RouteConfig, what: str) -> str:
    """The value of a route's secret variable; a missing one fails the message, naming it."""
    value = env.get(variable)
    if not value:
        raise SendFailed(
            f"{route.type} route {route.name!r}: environment variable {variable} ({what}) is not "
            "set; set it where costline delivers (costline notify, costline serve), then "
            "`costline notify --retry-failed`",
            permanent=True,
        )
    return value


def send(message: OutboxMessage, route: RouteConfig, transport: Transport) -> None:
    """Send `message` over `route`; returns once the receiver accepted it."""
    sender = SENDERS.get(route.type)
    if sender is None:
        raise SendFailed(f"route {route.name!r}: no sender for type {route.type!r}", permanent=True)
    sender(message, route, transport)


def _send_slack(message: OutboxMessage, route: RouteConfig, t: Transport) -> None:
    assert isinstance(route, SlackRoute)
    url = secret(t.env, route.webhook_url_env, route, "the incoming-webhook URL")
    body = json.dumps(message.payload["content"], ensure_ascii=False).encode()
    _post(t, route, url, body, {})


def _send_pagerduty(message: OutboxMessage, route: RouteConfig, t: Transport) -> None:
    assert isinstance(route, PagerDutyRoute)
    key = secret(t.env, route.routing_key_env, route, "the integration's routing key")
    event = with_routing_key(message.payload["content"], key)
    body = json.dumps(event, ensure_ascii=False).encode()
    _post(t, route, route.events_url, body, {})


def _send_webhook(message: OutboxMessage, route: RouteConfig, t: Transport) -> None:
    assert isinstance(route, WebhookRoute)
    url = route.url
    if url is None:
        url = secret(t.env, str(route.url_env), route, "the webhook URL")
    key = secret(t.env, route.secret_env, route, "the signing secret") if route.secret_env else None
    body = webhook_bytes(message.payload["content"])
    headers = {
        **route.headers,
        **{
            name: secret(t.env, variable, route, f"the {name} header")
            for name, variable in route.headers_env.items()
        },
        MESSAGE_ID_HEADER: message.message_id,
        TIMESTAMP_HEADER: str(int(t.clock.now().timestamp())),
    }
    if key is not None:
        headers[SIGNATURE_HEADER] = sign(body, key)
    _post(t, route, url, body, headers)


def _post(
    t: Transport,
    route: RouteConfig,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """POST `body`; any text of the failure is redacted of every secret the route holds or reads
    (a receiver may echo the URL, its query or the headers it was sent)."""
    secrets = [*route_secrets(route, t.env), url]
    try:
        response = t.http.post(
            url,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        # The exception's text can carry the URL: say what kind of failure it was, redacted.
        raise SendFailed(
            f"{route.type} route {route.name!r}: {type(exc).__name__}: "
            f"{short(redact(str(exc) or 'no detail', secrets))}"
        ) from None
    code = response.status_code
    if 200 <= code < 300:
        return
    answer = short(redact(response.text or response.reason_phrase, secrets))
    said = f"{route.type} route {route.name!r}: the receiver answered HTTP {code}: {answer}"
    if code >= 500 or code in RETRYABLE_HTTP:
        raise SendFailed(said, retry_after=_retry_after(response))
    if 300 <= code < 400:
        said += " (redirects are not followed: configure the final URL)"
    raise SendFailed(said, permanent=True)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _send_email(message: OutboxMessage, route: RouteConfig, t: Transport) -> None:
    assert isinstance(route, EmailRoute)
    email = email_message(message.payload["content"], route, message.message_id)
    where = f"email route {route.name!r} (SMTP {route.smtp_host}:{route.smtp_port})"
    try:
        smtp = t.smtp(route.smtp_host, route.smtp_port, TIMEOUT_SECONDS)
        try:
            refused = smtp.send_message(email)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise SendFailed(
            f"{where}: every recipient was refused: {short(_smtp_text(exc.recipients))}",
            permanent=all(code >= 500 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise SendFailed(
            f"{where}: the server answered {exc.smtp_code} {short(text)}",
            permanent=500 <= exc.smtp_code < 600,
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(
            f"{where}: {type(exc).__name__}: {short(str(exc) or 'no detail')}"
        ) from None
    if refused:
        log.warning("%s: some recipients were refused: %s", where, _smtp_text(refused))


def _smtp_text(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{rcpt} {code} {text.decode(errors='replace')}"
        for rcpt, (code, text) in recipients.items()
    )


Sender = Callable[["OutboxMessage", RouteConfig, Transport], None]

SENDERS: dict[str, Sender] = {
    "slack": _send_slack,
    "pagerduty": _send_pagerduty,
    "email": _send_email,
    "webhook": _send_webhook,
}
"""A sender per route `type` (the keys of `costline.config.ROUTE_TYPES`)."""
