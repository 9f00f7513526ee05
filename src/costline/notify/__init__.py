"""Alert delivery: routing findings to owners' routes, an outbox with retries, four channels.

Deciding to alert is separate from delivering (docs/methodology/alerts.md):

- `enqueue(ledger, findings, config, clock)` decides which (finding, route) pairs get a message
  now (first alert, impact grown, tier reached, PagerDuty resolve) and writes them to the ledger's
  outbox in one transaction (`costline.notify.outbox`);
- `deliver(ledger, config, clock)` sends the due messages over Slack, PagerDuty Events v2, SMTP
  and signed webhooks, with retries and exponential backoff (`costline.notify.deliver`).

Each owner's weekly review goes through the same outbox, once per ISO week
(`costline.notify.weekly.enqueue_reviews`).
"""

from __future__ import annotations

from costline.notify.deliver import DeliveryReport, deliver
from costline.notify.outbox import current_findings, enqueue, plan
from costline.notify.routing import routes_for

__all__ = ["DeliveryReport", "current_findings", "deliver", "enqueue", "plan", "routes_for"]
