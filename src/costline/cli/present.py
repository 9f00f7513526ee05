"""How findings, threshold breaches and budgets are shown: the rows and sentences `detect`,
`findings`, `thresholds`, `budgets` and `demo` print, in one place."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costline.budgets.status import BudgetStatus
    from costline.model import Finding


def finding_row(body: dict[str, Any]) -> dict[str, Any]:
    """A finding's JSON body as one table row: what, where, when, how much, whose."""
    evidence = body.get("evidence") or {}
    window = body.get("window") or {}
    return {
        "fingerprint": body["fingerprint"],
        "kind": body["kind"],
        "severity": body["severity"],
        "status": body["status"],
        "scope": body["scope"],
        "start": window.get("start"),
        "end": window.get("end"),
        "impact_usd": body.get("impact_usd"),
        "verdict": evidence.get("verdict"),
        "owner": body.get("owner"),
        "title": body["title"],
        "root_cause": root_cause_text(evidence),
        "actions": actions_text(body.get("actions") or []),
    }


def root_cause_text(evidence: dict[str, Any], top: int = 3) -> str | None:
    """An incident's top causes as "name 96% ($642/day); ...": by name, with their share of the
    excess (a finding stored before shares were kept shows its dollars only)."""
    said = []
    for c in (evidence.get("root_cause") or [])[:top]:
        if not isinstance(c, dict):
            continue
        share = f" {float(c['share']):.0%}" if c.get("share") is not None else ""
        money = c.get("extra_per_day_usd")
        per_day = f" (${float(money):,.0f}/day)" if money is not None else ""
        dim = str(c.get("dimension") or "")
        what = c.get("name") if dim in ("resource", "usage_type") else None
        said.append(
            f"{what or (dim.replace('_', ' ') + ' ' + str(c.get('value')))}{share}{per_day}"
        )
    return "; ".join(said) or None


def actions_text(actions: list[Any]) -> str | None:
    """Suggested actions in one cell, each with the monthly savings it brings where known."""
    said = []
    for a in actions:
        if isinstance(a, dict):
            saves = a.get("estimated_monthly_savings_usd")
            said.append(
                str(a.get("text", ""))
                + (f" (saves about ${float(saves):,.0f}/month)" if saves is not None else "")
            )
        else:
            said.append(str(a))
    return "; ".join(said) or None


def breach_row(f: Finding) -> dict[str, Any]:
    """A threshold breach (a finding of `costline thresholds`) as one table row."""
    row = finding_row(json.loads(f.model_dump_json()))
    e = f.evidence
    return {
        "threshold": e.get("threshold"),
        "scope": row["scope"],
        "start": row["start"],
        "minutes": e.get("minutes"),
        "ongoing": e.get("ongoing"),
        "peak": e.get("peak"),
        "baseline": e.get("baseline"),
        "pct_over_baseline": e.get("peak_pct_over_baseline"),
        "impact_usd": row["impact_usd"],
        "tier": e.get("tier"),
        "severity": row["severity"],
        "owner": row["owner"],
        "fingerprint": row["fingerprint"],
    }


def budget_sentences(statuses: list[BudgetStatus]) -> list[str]:
    """One sentence per budget: spent of amount, state, forecast, forecast miss, exhaustion."""
    said = []
    for s in statuses:
        r = s.row()
        text = (f"{r['budget']}: ${r['spent_usd']:,} of ${r['amount_usd']:,} in {r['period']} "
                f"({r['used_pct']}%, {r['state']})")  # fmt: skip
        if s.projection:
            text += (f"; forecast at period end ${r['forecast_p50_usd']:,} "
                     f"(P10 ${r['forecast_p10_usd']:,}, P90 ${r['forecast_p90_usd']:,})")  # fmt: skip
        if r["forecast_miss"]:
            text += f"; the mid-period forecast missed: {r['forecast_miss']}"
        if r["days_to_exhaustion"] == 0:
            text += f"; exhausted on {r['exhausted_on']}"
        elif r["days_to_exhaustion"] is not None:
            text += f"; at the last 7 days' rate it runs out in {r['days_to_exhaustion']} days"
        said.append(text + ".")
    return said
