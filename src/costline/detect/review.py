"""A spike review for a postmortem: `spike_review(finding, related)` renders markdown.

What triggered it (observed against expected, the robust z-score), the root cause by dimension,
what changed in the window (annotations), value against waste (did successful requests rise with
the spend), which other signals and controls fired around it (budget crossings, other anomalies
of the same owner) and when, and the suggested actions (`detect.actions`, the finding's own) with their numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from costline.detect.actions import anomaly_actions
from costline.model import Finding, FindingKind


def _money(value: Any) -> str:
    return "unpriced" if value is None else f"${Decimal(str(value)):,.2f}"


def related_to(finding: Finding, others: Sequence[Finding]) -> list[Finding]:
    """Other findings whose window overlaps this one's (a day either side) and that share its
    owner or a scope value: the controls and signals that fired around it."""
    if finding.window is None:
        return []
    slack = timedelta(days=1)
    values = set(finding.scope.values())
    out = []
    for f in others:
        if f.fingerprint == finding.fingerprint or f.window is None:
            continue
        overlaps = (f.window.start < finding.window.end + slack
                    and f.window.end > finding.window.start - slack)  # fmt: skip
        shared = (finding.owner is not None and f.owner == finding.owner) or bool(
            values & set(f.scope.values())
        )
        if overlaps and shared:
            out.append(f)
    return sorted(out, key=lambda f: (str(f.evidence.get("crossed_on") or f.window), f.kind))


def spike_review(finding: Finding, related: Sequence[Finding]) -> str:
    e: dict[str, Any] = dict(finding.evidence)
    scope = ", ".join(f"{k} `{v}`" for k, v in finding.scope.items())
    lines = [
        f"# Spike review: {finding.title}",
        "",
        f"- **Finding**: `{finding.fingerprint[:12]}` ({finding.kind}, {finding.severity}, "
        f"{finding.status})",
        f"- **Scope**: {scope}",
        f"- **Owner**: {finding.owner or 'unassigned'}",
        f"- **Window**: {e.get('start')} to {e.get('last_seen')} ({e.get('days')} day(s)); "
        f"first seen {finding.first_seen:%Y-%m-%d %H:%M} UTC, last seen "
        f"{finding.last_seen:%Y-%m-%d %H:%M} UTC",
        f"- **Cost impact**: {_money(finding.impact_usd)} above expected",
        "",
        "## What triggered it",
        "",
        finding.summary,
        "",
        f"Observed {_money(e.get('observed_usd'))} against {_money(e.get('expected_usd'))} "
        f"expected (the median of the same weekday over four weeks); robust z-score "
        f"{e.get('peak_z') if e.get('peak_z') is not None else 'unbounded (a flat history)'}.",
        "",
        "## Root cause",
        "",
    ]
    causes = e.get("root_cause") or []
    if causes:
        lines += ["| dimension | value | extra per day | share of the excess |",
                  "|---|---|---:|---:|"]  # fmt: skip
        lines += [f"| {c['dimension']} | {c.get('name') or c['value']} | "
                  f"{_money(c['extra_per_day_usd'])} | {_share(c.get('share'))} |"
                  for c in causes if isinstance(c, dict)]  # fmt: skip
    else:
        lines.append("No single contributor stood out.")
    lines += ["", "## What changed", ""]
    changes = e.get("changes") or []
    lines += [f"- {c['ts']} **{c['kind']}**: {c['text']}" for c in changes if isinstance(c, dict)]
    if not changes:
        lines.append("No deploy, launch or other annotation in the window: nobody said why.")
    lines += ["", "## Value or waste", "", _verdict(e), "", "## Signals and controls that fired",
              ""]  # fmt: skip
    lines += [
        f"- {_when(f)}: {f.kind} `{f.fingerprint[:12]}` {f.title} ({f.status})" for f in related
    ] or ["- Only this finding: no budget, threshold or other anomaly fired for this owner."]
    lines += ["", "## Suggested updates", ""]
    lines += [f"- {s}" for s in suggestions(finding, related)]
    return "\n".join(lines) + "\n"


def _share(share: Any) -> str:
    return "" if share is None else f"{float(share):.0%}"


def _when(f: Finding) -> str:
    crossed = f.evidence.get("crossed_on") or f.evidence.get("start")
    return str(crossed) if crossed else f"{f.first_seen:%Y-%m-%d}"


def _verdict(e: dict[str, Any]) -> str:
    call = e.get("verdict")
    if call == "value":
        return (f"**Value.** Successful requests ({e.get('success_scope')}) rose "
                f"{e.get('successes_vs_before')}x while spend rose {e.get('cost_vs_expected')}x: "
                "the spend bought traffic.")  # fmt: skip
    if call == "waste":
        return (f"**Waste.** Spend rose {e.get('cost_vs_expected')}x but successful requests "
                f"({e.get('success_scope')}) only {e.get('successes_vs_before')}x: the extra "
                "spend bought nothing users saw.")  # fmt: skip
    return (
        "**Unknown.** No `inference_successes` series matches this scope: ingest them "
        "(`costline ingest metrics`) to weigh spend against value."
    )


def suggestions(finding: Finding, related: Sequence[Finding]) -> list[str]:
    """The finding's suggested actions (`detect.actions`, made once when it was found; computed
    from its evidence for one stored without them), with their savings, and a budget where no
    budget control fired."""
    actions = finding.actions
    if not actions and finding.kind == FindingKind.ANOMALY:
        actions = anomaly_actions(finding.evidence, finding.scope)
    out = [
        a.text
        + (
            f" (saves about {_money(a.estimated_monthly_savings_usd)}/month)"
            if a.estimated_monthly_savings_usd is not None
            else ""
        )
        for a in actions
    ]
    if not any(f.kind == FindingKind.BUDGET_THRESHOLD for f in related):
        scope = ", ".join(f"{k} {v}" for k, v in finding.scope.items())
        out.append(f"Budget: {scope} fired no budget control; add one (`budgets:` in "
                   "costline.yaml) with an owner route.")  # fmt: skip
    return out
