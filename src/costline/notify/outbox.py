"""Deciding to alert: which (finding, route) pairs get a message now, written to the outbox.

For each finding and each of its routes (`routing.routes_for`), a message is queued when

- nothing was ever queued for that pair (the first alert);
- the pair's last message was a PagerDuty `resolve` and the finding is open again;
- the finding reached a higher escalation tier than the last message said
  (`evidence["tier_index"]`, an int: 0 platform, 1 finance, 2 leadership, ...);
- its severity rose above the one the last message said (an open level shift's impact accrues
  every day and passes the severity tiers: each step up is news);
- its impact grew by at least `notify.realert_growth_pct` percent over the impact recorded in the
  last message (a finding that was unpriced and now has a positive impact counts as grown);
- for a digest (`evidence["digest_crossings"]`, the budget digest of a period): only when it holds
  more crossings than the last message said and `DIGEST_EVERY` (a week) has passed since it, so
  a digest is a weekly letter, not a message per crossing.

Open findings alert; so do snoozed ones whose snooze has run out. Acknowledged and snoozed ones
do not. A resolved finding whose pair's last message was a PagerDuty `trigger` (not failed) gets
one `resolve` event, and nothing else.

The message id is the sha256 of fingerprint, route, event, the pair's sequence number, impact and
tier: deciding twice from the same state yields the same ids, and the outbox keeps one of each, so
enqueueing twice queues nothing new. A call's messages are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from costline.config import Config, RouteConfig
from costline.errors import LedgerError
from costline.ledger import outbox as ledger_outbox
from costline.ledger.outbox import OutboxMessage
from costline.ledger.sql import run
from costline.model import Finding, FindingStatus, Severity
from costline.notify.messages import Event, alert_of, render
from costline.notify.routing import routes_for

if TYPE_CHECKING:
    from costline.clock import Clock
    from costline.ledger.store import Ledger

HUNDRED = Decimal(100)
DIGEST_EVERY = dt.timedelta(days=7)


@dataclass(frozen=True)
class Decision:
    event: Event
    reason: str


def tier_index(finding: Finding) -> int | None:
    value = finding.evidence.get("tier_index")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _recorded_impact(last: OutboxMessage) -> Decimal | None:
    value = last.payload.get("impact_usd")
    return Decimal(str(value)) if value is not None else None


def grew(now: Decimal | None, before: Decimal | None, growth_pct: Decimal) -> bool:
    """Whether the impact grew by at least `growth_pct` percent since `before`.

    >>> grew(Decimal(160), Decimal(100), Decimal(50)), grew(Decimal(140), Decimal(100), Decimal(50))
    (True, False)
    """
    if now is None or now <= 0:
        return False
    if before is None or before <= 0:
        return True
    return now >= before * (1 + growth_pct / HUNDRED)


def _digest_size(values: Mapping[str, object]) -> int | None:
    value = values.get("digest_crossings")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def alertable(finding: Finding, now: dt.datetime) -> bool:
    """Open, or snoozed with the snooze run out."""
    if finding.status is FindingStatus.OPEN:
        return True
    return (
        finding.status is FindingStatus.SNOOZED
        and finding.snoozed_until is not None
        and finding.snoozed_until <= now
    )


def decide(
    finding: Finding,
    route: RouteConfig,
    last: OutboxMessage | None,
    growth_pct: Decimal,
    now: dt.datetime,
) -> Decision | None:
    """Whether `route` gets a message about `finding` now, given the pair's last message."""
    if finding.status is FindingStatus.RESOLVED:
        if (
            route.type == "pagerduty"
            and last is not None
            and last.event == "trigger"
            and last.status != ledger_outbox.FAILED
        ):
            return Decision("resolve", "the finding was resolved")
        return None
    if not alertable(finding, now):
        return None
    if last is None:
        return Decision("trigger", "first alert")
    if last.event == "resolve":
        return Decision("trigger", "open again after it was resolved")
    digest = _digest_size(finding.evidence)
    if digest is not None:
        told = _digest_size(last.payload) or 0
        sent = last.created_at
        if digest > told and (sent is None or now - sent >= DIGEST_EVERY):
            return Decision("trigger", f"{digest - told} new crossing(s) in the digest")
        return None
    tier, before = tier_index(finding), last.payload.get("tier_index")
    if tier is not None and (not isinstance(before, int) or tier > before):
        name = finding.evidence.get("tier")
        return Decision("trigger", f"reached tier {name if name is not None else tier}")
    said = last.payload.get("severity")
    if said in list(Severity) and finding.severity.rank > Severity(str(said)).rank:
        return Decision("trigger", f"severity rose to {finding.severity}")
    previous = _recorded_impact(last)
    if grew(finding.impact_usd, previous, growth_pct):
        if previous is None or previous <= 0:
            return Decision("trigger", "impact now priced")
        pct = (finding.impact_usd or Decimal(0)) / previous * HUNDRED - HUNDRED
        return Decision("trigger", f"impact grew {pct:.0f}% since the last alert")
    return None


def message_id(finding: Finding, route: str, event: Event, seq: int) -> str:
    """Deterministic: the same finding state to the same route gives the same id."""
    impact = "" if finding.impact_usd is None else format(finding.impact_usd.normalize(), "f")
    marker = "\x1f".join(
        [finding.fingerprint, route, event, str(seq), impact, str(tier_index(finding))]
    )
    return hashlib.sha256(marker.encode()).hexdigest()


def plan(
    ledger: Ledger, findings: Sequence[Finding], config: Config, clock: Clock
) -> list[OutboxMessage]:
    """The messages `enqueue` would write now, without writing them (`costline notify --dry-run`)."""
    now = clock.now()
    last = ledger_outbox.last_per_pair(ledger.con, [f.fingerprint for f in findings])
    configured = {r.name: r for r in config.routes}
    sent_to: dict[str, list[str]] = {}
    for fp, name in last:
        sent_to.setdefault(fp, []).append(name)
    planned: list[OutboxMessage] = []
    for finding in findings:
        if finding.status is FindingStatus.RESOLVED:
            # Resolves go where triggers went, even if routing has changed since.
            names = sent_to.get(finding.fingerprint, [])
            routes = [configured[name] for name in names if name in configured]
        else:
            routes = routes_for(finding, config)
        alert = None
        for route in routes:
            previous = last.get((finding.fingerprint, route.name))
            decision = decide(finding, route, previous, config.notify.realert_growth_pct, now)
            if decision is None:
                continue
            alert = alert or alert_of(finding, config)
            seq = previous.seq + 1 if previous else 1
            mid = message_id(finding, route.name, decision.event, seq)
            impact = finding.impact_usd
            planned.append(
                OutboxMessage(
                    message_id=mid,
                    finding_fingerprint=finding.fingerprint,
                    channel=route.type,
                    route=route.name,
                    payload={
                        "version": 1,
                        "event": decision.event,
                        "seq": seq,
                        "reason": decision.reason,
                        "title": finding.title,
                        "severity": str(finding.severity),
                        "impact_usd": None if impact is None else format(impact, "f"),
                        "tier_index": tier_index(finding),
                        "digest_crossings": _digest_size(finding.evidence),
                        "content": render(finding, alert, route, mid, decision.event),
                    },
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return planned


def current_findings(ledger: Ledger) -> list[Finding]:
    """The ledger's findings that may owe a message: all but the acknowledged (a resolved one may
    owe PagerDuty a resolve), oldest first."""
    rows = run(
        ledger.con,
        "SELECT body FROM findings WHERE status <> 'acknowledged' ORDER BY first_seen, fingerprint",
    )
    return [Finding.model_validate_json(body) for (body,) in rows]


def enqueue(
    ledger: Ledger, findings: Sequence[Finding], config: Config, clock: Clock
) -> list[OutboxMessage]:
    """Queue the messages `plan` decides on, in one transaction; returns those newly written."""
    return queue(ledger, lambda: plan(ledger, findings, config, clock), "alerts")


def queue(
    ledger: Ledger, planned: Callable[[], Sequence[OutboxMessage]], what: str
) -> list[OutboxMessage]:
    """Write the messages `planned()` gives (alerts, weekly reviews) in one transaction; an id
    already in the outbox is skipped. Returns those newly written."""
    if ledger.read_only:
        raise LedgerError(f"the ledger was opened read-only: open it for writing to queue {what}")
    messages = planned()
    written = set(ledger_outbox.insert(ledger.con, messages))
    return [m for m in messages if m.message_id in written]
