"""Delivering the outbox: claim a due message, send it, record the outcome; one at a time.

For each message: `claim_next` (commits: attempts + 1, next attempt a lease away), send, then
`mark_sent` (commits) once the receiver accepted it, or on failure

- `mark_retry` at now + `backoff_seconds * 2 ** (attempts - 1)` (30 s, 60 s, 120 s, ... by
  default; at least the receiver's `Retry-After`), or
- `mark_failed` when the failure is permanent or the message has had `max_attempts` tries.

Because every step commits on its own, a crash loses nothing: a message whose send completed but
whose `mark_sent` did not is sent again when its lease runs out (`LEASE`): at least once, and at
most one extra time per crash. Receivers de-duplicate: PagerDuty by `dedup_key` (the finding's
fingerprint), webhook receivers by `X-Costline-Message-Id`, mail clients by `Message-ID`. Slack
has no de-duplication: after a crash at that exact point a Slack message can appear twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import httpx

from costline import faults
from costline.errors import LedgerError
from costline.ledger import outbox as ledger_outbox
from costline.ledger.outbox import OutboxMessage
from costline.notify.redact import guard_logs, redact, route_secrets, short
from costline.notify.senders import (
    SendFailed,
    SmtpFactory,
    Transport,
    default_smtp,
    send,
)

if TYPE_CHECKING:
    from costline.clock import Clock
    from costline.config import Config, RouteConfig
    from costline.ledger.store import Ledger

LEASE = dt.timedelta(seconds=60)  # longer than any send can take (10 s timeouts)
log = logging.getLogger("costline.notify")


@dataclass
class DeliveryReport:
    """What one `deliver` call did, message by message, in the order it tried them."""

    attempted: list[OutboxMessage] = field(default_factory=list)

    @property
    def sent(self) -> list[OutboxMessage]:
        return [m for m in self.attempted if m.status == ledger_outbox.SENT]

    @property
    def retrying(self) -> list[OutboxMessage]:
        return [m for m in self.attempted if m.status == ledger_outbox.PENDING]

    @property
    def failed(self) -> list[OutboxMessage]:
        return [m for m in self.attempted if m.status == ledger_outbox.FAILED]

    def rows(self) -> list[dict[str, Any]]:
        return [m.row() for m in self.attempted]


def backoff(config: Config, attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed try: backoff_seconds * 2 ** (attempts - 1)."""
    return dt.timedelta(seconds=config.notify.backoff_seconds * 2 ** max(attempts - 1, 0))


def deliver(
    ledger: Ledger,
    config: Config,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
    *,
    http: httpx.Client | None = None,
    smtp: SmtpFactory = default_smtp,
    limit: int | None = None,
) -> DeliveryReport:
    """Send every due message (at most `limit`), each at most once in this call."""
    if ledger.read_only:
        raise LedgerError("the ledger was opened read-only: open it for writing to deliver")
    guard_logs(secret for route in config.routes for secret in route_secrets(route, env))
    client = http or httpx.Client(follow_redirects=False)  # HTTPS_PROXY etc. honoured
    transport = Transport(http=client, env=env, clock=clock, smtp=smtp)
    routes = {route.name: route for route in config.routes}
    report = DeliveryReport()
    tried: list[str] = []
    try:
        while limit is None or len(tried) < limit:
            now = clock.now()
            message = ledger_outbox.claim_next(ledger.con, now, LEASE, exclude=tried)
            if message is None:
                break
            tried.append(message.message_id)
            report.attempted.append(_deliver_one(ledger, config, transport, routes, message))
    finally:
        if http is None:
            client.close()
    return report


def _deliver_one(
    ledger: Ledger,
    config: Config,
    transport: Transport,
    routes: Mapping[str, RouteConfig],
    message: OutboxMessage,
) -> OutboxMessage:
    con, mid = ledger.con, message.message_id
    route = routes.get(message.route)
    try:
        if message.attempts > config.notify.max_attempts:  # earlier tries died mid-send
            raise SendFailed(
                f"gave up after {message.attempts - 1} attempts that never finished (the "
                "deliverer stopped while sending)",
                permanent=True,
            )
        if route is None:
            raise SendFailed(
                f"route {message.route!r} is no longer configured: add it back to costline.yaml "
                "and run `costline notify --retry-failed`",
                permanent=True,
            )
        send(message, route, transport)
    except SendFailed as exc:
        error, permanent, wait = str(exc), exc.permanent, exc.retry_after
    except Exception as exc:  # a bug must not stop the other messages; it is retried, then fails
        hidden = route_secrets(route, transport.env) if route is not None else []
        error = f"unexpected {type(exc).__name__}: {short(redact(str(exc), hidden))}"
        permanent, wait = False, None
    else:
        faults.point("notify.after_send")
        now = transport.clock.now()
        ledger_outbox.mark_sent(con, mid, now)
        faults.point("notify.after_mark")
        return replace(message, status=ledger_outbox.SENT, sent_at=now, last_error=None)
    if permanent or message.attempts >= config.notify.max_attempts:
        if not permanent:
            error = f"gave up after {message.attempts} attempts: {error}"
        ledger_outbox.mark_failed(con, mid, error)
        log.warning("message %s to route %s failed: %s", mid[:12], message.route, error)
        return replace(message, status=ledger_outbox.FAILED, last_error=error)
    delay = backoff(config, message.attempts)
    if wait is not None:
        delay = max(delay, dt.timedelta(seconds=wait))
    at = transport.clock.now() + delay
    ledger_outbox.mark_retry(con, mid, at, error)
    log.info("message %s to route %s will be retried at %s: %s", mid[:12], message.route, at, error)
    return replace(message, next_attempt_at=at, last_error=error)
