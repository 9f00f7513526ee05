"""A spike review for a postmortem: `spike_review(finding, related)` renders markdown.

What triggered it (observed against expected, the robust z-score), the root cause by dimension,
what changed in the window (annotations), value against waste (did successful requests rise with
the spend), which other signals and controls fired around it (budget crossings, other anomalies
of the same owner) and when, and suggested policy and forecast updates with numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

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
        lines += ["| dimension | value | extra per day |", "|---|---|---:|"]
        lines += [f"| {c['dimension']} | {c['value']} | {_money(c['extra_per_day_usd'])} |"
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
    """Policy and forecast updates, with the numbers they need."""
    e: dict[str, Any] = dict(finding.evidence)
    scope = ",".join(f"{k}={v}" for k, v in finding.scope.items())
    expected = float(e.get("expected_usd") or 0) / max(int(e.get("days") or 1), 1)
    observed = float(e.get("observed_usd") or 0) / max(int(e.get("days") or 1), 1)
    out = []
    if e.get("verdict") == "value":
        out.append(
            f"Forecast: raise the baseline of {scope} toward ${observed:,.0f}/day (from "
            f"${expected:,.0f}): this was demand, and month-end forecasts should carry it."
        )
    else:
        out.append(
            f"Threshold: alert on {scope} above ${expected * 1.5:,.0f}/day (1.5x its expected "
            f"${expected:,.0f}) so the next one pages within a day, not at month end."
        )
    budgets = [f for f in related if f.kind == FindingKind.BUDGET_THRESHOLD]
    if not budgets:
        out.append(f"Budget: {scope} fired no budget control; add one (`budgets:` in "
                   "costline.yaml) with an owner route.")  # fmt: skip
    if "usage_type" in finding.scope:
        out.append(
            "Policy: cap experiments on this instance type (`experiments.cap_usd`) and "
            "require a TTL on sweeps, so a forgotten sweep stops itself."
        )
    if not e.get("changes"):
        out.append("Process: annotate deploys and launches (`costline annotate`), so the next "
                   "review shows what changed.")  # fmt: skip
    return out
