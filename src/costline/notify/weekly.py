"""The weekly review, sent: each owner gets `costline report weekly --owner NAME` through the routes
configured for their alerts, once per ISO week.

- **Who**: every configured owner (`owners:` in costline.yaml) with a route. Each gets the review
  of their own scope (`weekly.gather(owner=name)`: their teams' movers, the incidents and
  recommendations they own, the budgets at risk that are theirs; the quick-win checklist is the
  organization's).
- **Where**: the owner's routes (`owners[].routes`) except PagerDuty: a weekly letter is not an
  incident to page anyone about. A route's `min_severity` filters findings, not letters: it
  does not hold the review back.
- **When**: once per ISO week (UTC) of the time it is queued. `costline sync` queues it on its
  first run of a week with bills in the ledger; `costline report weekly --send` queues it now.
- **Once**: a review's message id is a hash of the owner, the week and the route, and the outbox
  keeps one message per id (`ledger.outbox.insert`). Queueing again in the same week writes
  nothing; a check before building finds the week's messages there, so a sync every five
  minutes costs one query, not a review.
- **What**: the review rendered per channel: Slack Block Kit (its sections in mrkdwn), email (the
  markdown as text and the HTML page as an alternative part), a webhook (the review as JSON
  beside its markdown, signed as any webhook is). Delivery, retries and secrets are the outbox's
  (`notify.deliver`): nothing rendered here holds a URL, key or token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from costline.clock import Clock
from costline.config import Config, Owner, RouteConfig, SlackRoute
from costline.errors import CostlineError
from costline.ledger import outbox as ledger_outbox
from costline.ledger.outbox import OutboxMessage
from costline.ledger.sql import bill_days
from costline.ledger.store import Ledger
from costline.money import total
from costline.notify.messages import MESSAGE_VERSION, SLACK_HEADER_CHARS, SLACK_TEXT_CHARS
from costline.notify.outbox import queue
from costline.optimize import weekly
from costline.optimize.reviews import as_json, reviews

KIND = "weekly_review"
NOT_SENT_TO = ("pagerduty",)


def week_of(now: dt.datetime) -> str:
    """The ISO week of an instant, in UTC: `2026-W45`."""
    iso = now.astimezone(dt.UTC).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def review_key(owner: str, week: str) -> str:
    """What the outbox files a review's messages under (its `finding_fingerprint` column)."""
    return hashlib.sha256(f"{KIND}\x1f{owner}\x1f{week}".encode()).hexdigest()


def message_id(owner: str, week: str, route: str) -> str:
    return hashlib.sha256(f"{KIND}\x1f{owner}\x1f{week}\x1f{route}".encode()).hexdigest()


def targets(
    config: Config, owners: Sequence[str] | None = None
) -> list[tuple[Owner, list[RouteConfig]]]:
    """The owners (all, or those named) and the routes their review goes to."""
    defined = {r.name: r for r in config.routes}
    if owners is not None:
        missing = sorted(set(owners) - {o.name for o in config.owners})
        if missing:
            raise CostlineError(f"owner {', '.join(missing)} is not configured: add it under "
                                "`owners:` in costline.yaml with the routes it hears on")  # fmt: skip
    out = []
    for owner in config.owners:
        if owners is not None and owner.name not in owners:
            continue
        routes = [defined[n] for n in dict.fromkeys(owner.routes)
                  if n in defined and defined[n].type not in NOT_SENT_TO]  # fmt: skip
        if routes:
            out.append((owner, routes))
    return out


def plan_reviews(
    ledger: Ledger, config: Config, clock: Clock, owners: Sequence[str] | None = None
) -> list[OutboxMessage]:
    """The review messages of this ISO week not yet in the outbox (see the module)."""
    now = clock.now()
    week = week_of(now)
    wanted = [(owner, route) for owner, routes in targets(config, owners) for route in routes]
    ids = [message_id(o.name, week, r.name) for o, r in wanted]
    known = {m.message_id for m in ledger_outbox.messages(ledger.con, ids=ids)} if ids else set()
    due = [(o, r) for (o, r), mid in zip(wanted, ids, strict=True) if mid not in known]
    if not due or bill_days(ledger.con)[1] is None:  # nothing owed, or no week to review yet
        return []
    names = list(dict.fromkeys(o.name for o, _ in due))
    built = reviews(ledger, config, clock, names)
    out = []
    for owner, route in due:
        review = built[owner.name]
        mid = message_id(owner.name, week, route.name)
        out.append(OutboxMessage(
            message_id=mid, finding_fingerprint=review_key(owner.name, week), channel=route.type,
            route=route.name, next_attempt_at=now, created_at=now,
            payload={"version": MESSAGE_VERSION, "event": "trigger", "kind": KIND, "seq": 1,
                     "reason": f"weekly review {week}", "title": title(review),
                     "owner": owner.name, "week": week, "severity": "info", "impact_usd": None,
                     "content": render(review, route, mid, week)},
        ))  # fmt: skip
    return out


def enqueue_reviews(
    ledger: Ledger, config: Config, clock: Clock, owners: Sequence[str] | None = None
) -> list[OutboxMessage]:
    """Queue this week's reviews not yet queued, in one transaction; returns those written."""
    return queue(ledger, lambda: plan_reviews(ledger, config, clock, owners), "weekly reviews")


# -- rendering ------------------------------------------------------------------------------------


def title(review: weekly.Review) -> str:
    last = review.end - dt.timedelta(days=1)
    return f"Weekly review for {review.owner or 'everyone'}: {review.start} to {last}"


def render(review: weekly.Review, route: RouteConfig, mid: str, week: str) -> dict[str, Any]:
    """What the outbox stores for one route: no URL, key or secret."""
    text = weekly.markdown(review)
    if route.type == "slack":
        assert isinstance(route, SlackRoute)
        return slack_review(review, text, route)
    if route.type == "email":
        return {"subject": f"[costline] {title(review)}", "text": text,
                "html": weekly.html(review)}  # fmt: skip
    if route.type == "webhook":
        return {"version": MESSAGE_VERSION, "message_id": mid, "event": KIND, "week": week,
                "owner": review.owner, "review": as_json(review), "markdown": text}  # fmt: skip
    raise ValueError(f"route {route.name!r}: no weekly review for route type {route.type!r}")


def slack_review(review: weekly.Review, text: str, route: SlackRoute) -> dict[str, Any]:
    """Block Kit: a header, then one mrkdwn section per section of the markdown."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {
        "type": "plain_text", "text": title(review)[:SLACK_HEADER_CHARS]}}]  # fmt: skip
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, rest = part.partition("\n")
        body = "\n".join([f"*{_mrkdwn(heading)}*", *_lines(rest.splitlines())])
        if len(body) > SLACK_TEXT_CHARS:
            body = body[: SLACK_TEXT_CHARS - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    saving = total(f.impact_usd for f in review.recommendations)
    fallback = (f"{title(review)}: {len(review.incidents)} open incident(s), "
                f"{len(review.recommendations)} recommendation(s) saving ${saving:,.2f} a month")  # fmt: skip
    out: dict[str, Any] = {"text": fallback, "blocks": blocks}
    if route.channel:
        out["channel"] = route.channel
    return out


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped, markdown's **bold** as Slack's *bold*."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("**", "*")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _rule(line: str) -> bool:
    return line.startswith("|") and all(set(c) <= set("-:") for c in _cells(line))


def _lines(lines: list[str]) -> list[str]:
    """Markdown lines as Slack lines: a table's header in italics, each row `• a · b · c`, its
    rule dropped; list items as bullets."""
    out = []
    for i, line in enumerate(lines):
        if not line.strip() or _rule(line):
            continue
        if not line.startswith("|"):
            out.append(_mrkdwn("• " + line[2:] if line.startswith("- ") else line))
        elif i + 1 < len(lines) and _rule(lines[i + 1]):
            out.append("_" + " · ".join(_mrkdwn(c) for c in _cells(line)) + "_")
        else:
            out.append("• " + " · ".join(_mrkdwn(c) for c in _cells(line)))
    return out
