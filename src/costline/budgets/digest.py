"""The budget digest: one finding per period that sums up the crossings under 90%.

A budget passing 50% or 75% of its amount needs nobody yet; sixty such notices a quarter bury the
one that does. So those crossings are not open findings (`budget_findings` resolves them at
birth) but entries of their period's **digest**: one info finding per period (`2026-10`,
`2026-Q4`), listing each budget that passed a threshold under 90% (and none above: those have
a finding of their own) with its owner, what it spent,
the thresholds and days, and where its last 7 days' rate takes it by the period's end. Its action
names the budgets that rate takes over their amount (with the daily spend that keeps each within
it, and the monthly savings), or says none needs anything yet.

Notify sends the digest to the routes of every owner it names (`evidence["routes"]`), and again
only once it holds new crossings and a week has passed since the last one sent there
(`costline.notify.outbox`): a weekly budget letter, not one message per crossing. The digest of a
closed period is resolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from costline.attribution.rules import Rules
from costline.budgets.status import (
    CENT,
    DIGEST_BELOW,
    BudgetStatus,
    _at,
    closed,
    current,
    hold_action,
)
from costline.clock import Clock
from costline.model import Finding, FindingKind, Window

DIGEST_SCOPE = "budget_digest"  # the scope key of a digest: {budget_digest: 2026-10}


def budget_digests(
    statuses: Sequence[BudgetStatus], *, clock: Clock, rules: Rules | None = None
) -> list[Finding]:
    """One digest finding per period with crossings under `DIGEST_BELOW` percent."""
    rules = rules or Rules()
    latest = {id(s) for s in current(statuses)}
    by_period: dict[str, list[BudgetStatus]] = {}
    for s in statuses:
        if s.crossed and s.crossed[-1][0] < DIGEST_BELOW:  # all under 90%: crossed is sorted
            by_period.setdefault(str(s.period), []).append(s)
    out = []
    for period, members in by_period.items():
        members.sort(key=lambda s: (-s.used_pct, s.budget.name))
        digest = _digest(period, members, clock, rules)
        if not any(id(s) in latest for s in members):
            digest = closed(digest, f"its period {period} is closed")
        out.append(digest)
    return out


def _owner(s: BudgetStatus, rules: Rules) -> str | None:
    flat = {d: v[0] for d, v in s.budget.scope.root.items() if v}
    return rules.owner_of(flat) or flat.get("team")


def _at_rate(s: BudgetStatus) -> Decimal:
    """Where the last 7 days' rate takes the spend by the period's end."""
    return (s.spent + s.daily_rate * s.days_left).quantize(CENT)


def _entry(s: BudgetStatus, owner: str | None) -> dict[str, Any]:
    below = [(pct, day) for pct, day in s.crossed if pct < DIGEST_BELOW]
    return {
        "budget": s.budget.name,
        "owner": owner,
        "amount_usd": str(s.budget.amount_usd),
        "spent_usd": str(s.spent.quantize(CENT)),
        "used_pct": str(s.used_pct),
        "crossed": [{"threshold_pct": str(p), "on": d.isoformat()} for p, d in below],
        "at_rate_end_usd": str(_at_rate(s)),
    }


def _line(s: BudgetStatus, owner: str | None) -> str:
    passed = ", ".join(f"{pct}% on {day:%b %d}" for pct, day in s.crossed if pct < DIGEST_BELOW)
    return (f"{s.budget.name}{f' ({owner})' if owner else ''} {s.used_pct}% of "
            f"${s.budget.amount_usd:,} (passed {passed}; at its rate ${_at_rate(s):,} by the "
            "end)")  # fmt: skip


def _digest(period: str, members: list[BudgetStatus], clock: Clock, rules: Rules) -> Finding:
    owners = {s.budget.name: _owner(s, rules) for s in members}
    routes = [r for o in rules.owners if o.name in owners.values() for r in o.routes]
    crossings = sum(1 for s in members for pct, _ in s.crossed if pct < DIGEST_BELOW)
    heading = [s for s in members if s.days_left and _at_rate(s) > s.budget.amount_usd]
    actions = [hold_action(s) for s in heading] or [{
        "text": f"None: at its last 7 days' rate every budget here ends {period} within its "
        f"amount (the fullest, {members[0].budget.name}, is at {members[0].used_pct}%). "
        f"Each gets a finding of its own at {DIGEST_BELOW}%",
    }]  # fmt: skip
    first = members[0]
    return Finding.new(
        kind=FindingKind.BUDGET_THRESHOLD, scope={DIGEST_SCOPE: period}, dedup_key="digest",
        clock=clock, severity="info",
        title=f"Budget digest {period}: {len(members)} budget(s) past a threshold under "
        f"{DIGEST_BELOW}%" + (f", {len(heading)} heading over at their rate" if heading else ""),
        summary=f"{period}: " + "; ".join(_line(s, owners[s.budget.name]) for s in members)
        + ".",
        window=Window(start=_at(first.period.start), end=_at(first.period.end)),
        evidence={"signal": "digest", "period": period, "digest_crossings": crossings,
                  "budgets": [_entry(s, owners[s.budget.name]) for s in members],
                  "routes": list(dict.fromkeys(routes))},
        actions=actions,
    )  # fmt: skip
