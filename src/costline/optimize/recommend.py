"""A recommendation is a Finding of kind `recommendation`: one builder, so every kind says the same.

Every recommendation carries (DESIGN.md, "Acting on what costline sees"): its scope and resource,
owner, current monthly cost, estimated monthly savings (P50 and a low-high range), the method
and its inputs, the evidence (which metrics, which window, coverage), confidence, risk, and the
exact change as its action. `impact_usd` is the P50 monthly saving. A cost the estimate could not
price (`unpriced`: the data a move copies, a tier's retrieval fee) is named in the evidence and
lowers the confidence one step: the saving is then only as good as what was priced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import JsonValue

from costline.clock import Clock
from costline.model import Action, Finding, FindingKind, Window

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(30)


def per_month(start: dt.datetime, end: dt.datetime) -> Decimal:
    """Multiply an amount over `start`-`end` (the span the data covers, at least an hour) by
    this to get it per 30 days: every recommendation's monthly figure comes through here."""
    return DAYS_PER_MONTH * 86400 / Decimal(max((end - start).total_seconds(), 3600))


@dataclass(frozen=True)
class Savings:
    """Monthly savings: the estimate, and the range it could fall in."""

    p50: Decimal
    low: Decimal
    high: Decimal


def confidence(coverage: float, days: float) -> str:
    """high with telemetry for 80% of the billed time over a week or more; low under half."""
    if coverage >= 0.8 and days >= 7:
        return "high"
    return "medium" if coverage >= 0.5 else "low"


def _lowered(level: str) -> str:
    return {"high": "medium"}.get(level, "low")


def recommendation(
    *,
    kind: str,
    scope: Mapping[str, str],
    title: str,
    summary: str,
    owner: str | None,
    current_monthly: Decimal,
    savings: Savings,
    method: str,
    inputs: Mapping[str, Any],
    window: Window,
    coverage: float,
    risk: str,
    action: str,
    clock: Clock,
    unpriced: Sequence[str] = (),
) -> Finding:
    """The Finding of one recommendation (see the module). Its identity is its kind and scope, so
    running again updates it rather than adding another."""
    days = (window.end - window.start).total_seconds() / 86400
    evidence: dict[str, JsonValue] = {
        "recommendation": kind,
        "current_monthly_usd": str(current_monthly.quantize(CENT)),
        "savings_monthly_usd": {
            k: str(getattr(savings, k).quantize(CENT)) for k in ("p50", "low", "high")
        },
        "method": method,
        "inputs": _json(inputs),
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "days": round(days, 2),
        },
        "coverage": round(coverage, 3),
        "confidence": confidence(coverage, days),
        "risk": risk,
    }
    if unpriced:
        evidence["unpriced"] = list(unpriced)
        evidence["confidence"] = _lowered(confidence(coverage, days))
    return Finding.new(
        kind=FindingKind.RECOMMENDATION,
        scope=dict(scope, recommendation=kind),
        dedup_key=kind,
        clock=clock,
        title=title,
        severity="warning" if savings.p50 >= 1000 else "info",
        summary=summary,
        owner=owner,
        impact_usd=savings.p50.quantize(CENT),
        window=window,
        evidence=evidence,
        actions=[Action(text=action, estimated_monthly_savings_usd=savings.p50.quantize(CENT))],
    )


def _json(value: Any) -> JsonValue:
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
