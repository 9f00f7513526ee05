"""Suggested actions for a spend incident, read from its evidence: the one place they are made.

`detect.spend_findings` attaches them to each anomaly finding, and the spike review
(`detect.review`) lists the same ones, so what a page, a message and a postmortem suggest agree.
What the evidence shows decides the action:

- **value** (successful requests rose with the spend): raise the baseline and the forecast;
- **a drop** (less than expected): check that what it runs still works;
- **tokens** (an LLM meter): check the prompt and `max_tokens` of what changed;
- **transfer or replication** (egress, inter-region bytes): turn replication off or scope it;
- **storage**: a lifecycle rule (expire or tier down old checkpoints, snapshots, objects);
- **a sweep** (three or more resources share the excess, none half of it): stop the extra
  instances and require a TTL;
- **one resource** carrying at least half: stop it or scale it to zero;

a creep (`pattern` creep, from the scan) first says what the next month costs if it continues;
then, for waste, a threshold that pages within a day, and a note to annotate deploys when nothing
said why. Savings are the excess a day over a month (30 days) while the incident is ongoing;
one that has ended saves nothing more, and says so by having none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from costline.model import Action

MONTH_DAYS = 30
CENT = Decimal("0.01")
_TOKENS = ("token",)
_TRANSFER = ("transfer", "out-bytes", "in-bytes", "egress", "replication", "inter-region",
             "data transfer", "bandwidth")  # fmt: skip
_STORAGE = ("storage", "stored", "gb-mo", "snapshot", "bucket", "blob")


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _causes(evidence: Mapping[str, Any], dim: str) -> list[Mapping[str, Any]]:
    causes = evidence.get("root_cause") or []
    return [c for c in causes if isinstance(c, Mapping) and c.get("dimension") == dim]


def _carried(evidence: Mapping[str, Any], scope: Mapping[str, str], words: Sequence[str]) -> float:
    """The share of the excess carried by the service or SKUs whose name or value holds one of
    `words`: all of it when the scope or a service carrying half of it does."""
    said = " ".join(f"{k} {v}" for k, v in scope.items()).lower()
    services = [f"{c.get('value')} {c.get('name') or ''}".lower()
                for c in _causes(evidence, "service") if float(c.get("share") or 0) >= 0.5]  # fmt: skip
    if any(w in text for w in words for text in [said, *services]):
        return 1.0
    return sum(float(c.get("share") or 0) for c in _causes(evidence, "usage_type")
               if any(w in f"{c.get('value')} {c.get('name') or ''}".lower() for w in words))  # fmt: skip


def _where(evidence: Mapping[str, Any], scope: Mapping[str, str]) -> str:
    """The scope as a person reads it: each value by its name where the root cause has one."""
    names = {(c.get("dimension"), c.get("value")): c.get("name")
             for c in evidence.get("root_cause") or [] if isinstance(c, Mapping)}  # fmt: skip
    return ", ".join(f"{k} {names.get((k, v)) or v}" for k, v in scope.items())


def _named(c: Mapping[str, Any]) -> str:
    return str(c.get("name") or c.get("value"))


def anomaly_actions(evidence: Mapping[str, Any], scope: Mapping[str, str]) -> list[Action]:
    """The suggested actions of a spend incident (see the module), at least one."""
    days = max(int(evidence.get("days") or 1), 1)
    expected = float(evidence.get("expected_usd") or 0) / days
    observed = float(evidence.get("observed_usd") or 0) / days
    extra = float(evidence.get("extra_per_day_usd") or 0)
    # `open`: a level shift the scan keeps open while it lasts
    ongoing = bool(evidence.get("ongoing") or evidence.get("open"))
    monthly = (Decimal(repr(extra * MONTH_DAYS)).quantize(CENT)
               if ongoing and extra > 0 else None)  # fmt: skip
    where = _where(evidence, scope)
    cost = f" It costs {_money(extra)}/day more than before" + (
        ", and is still on." if ongoing else "."
    )
    if evidence.get("verdict") == "value":
        return [Action(text=f"Forecast: raise the baseline of {where} toward "
                       f"{_money(observed)}/day (from {_money(expected)}): successful requests "
                       "rose with it, so this is demand and month-end forecasts should carry it.")]  # fmt: skip
    if extra < 0 or observed < expected:
        return [Action(text=f"Check: {where} spends {_money(max(-extra, expected - observed))}/day less than before: see "
                       "that what it runs still works (failed jobs, a broken pipeline, lost "
                       "traffic), or mark the new level as expected.")]  # fmt: skip
    out = [Action(text=t + cost, estimated_monthly_savings_usd=monthly)
           for t in _specific(evidence, scope)]  # fmt: skip
    if evidence.get("pattern") == "creep" and evidence.get("projected_month_excess") is not None:
        ahead = float(evidence["projected_month_excess"])
        out.insert(1, Action(  # after what to do about its cause itself
            text=f"Creep: {where} grows {evidence.get('growth_pct_per_day')}% a day; if it "
                 f"continues the next {MONTH_DAYS} days cost {_money(ahead)} over its baseline: "
                 "find what grows (retained data, replicas, traffic, retries) and cap it.",
            estimated_monthly_savings_usd=Decimal(repr(ahead)).quantize(CENT) if ahead > 0
            else None))  # fmt: skip
    out.append(Action(text=f"Threshold: alert on {where} above {_money(expected * 1.5)}/day "
                      f"(1.5x its expected {_money(expected)}) so the next one pages within a "
                      "day, not at month end."))  # fmt: skip
    if not evidence.get("changes"):
        out.append(Action(text="Process: annotate deploys and launches (`costline annotate`), "
                          "so the next review shows what changed."))  # fmt: skip
    return out


def _specific(evidence: Mapping[str, Any], scope: Mapping[str, str]) -> Sequence[str]:
    """What to do about the cause itself: from the kind of meter that carries at least half of
    the excess (tokens, transfer, storage, by the names of its SKUs and service), else from how
    the excess spreads over resources."""
    resources = _causes(evidence, "resource")
    lead = next((c for c in resources if float(c.get("share") or 0) >= 0.5), None)
    target = f"`{_named(lead)}`" if lead else "the resources listed in the root cause"
    if _carried(evidence, scope, _TOKENS) >= 0.5:
        return [f"Tokens: check the prompt size and `max_tokens` of {target} (a longer system "
                "prompt, a retry loop or a missing cap multiplies every request's cost)."]  # fmt: skip
    if _carried(evidence, scope, _TRANSFER) >= 0.5:
        return [f"Transfer: turn off or scope the replication or cross-region copy of {target} "
                "(replicate only the prefixes that need it), or add a lifecycle rule to its "
                "replica."]  # fmt: skip
    if _carried(evidence, scope, _STORAGE) >= 0.5:
        return [f"Storage: add a lifecycle rule to {target} (expire or tier down old "
                "checkpoints, snapshots and objects)."]  # fmt: skip
    spread = int(evidence.get("resources") or len(resources))
    if lead is None and spread >= 3:
        names = ", ".join(f"`{_named(c)}`" for c in resources[:3])
        return [f"Sweep: stop the {spread} extra instances ({names}, ...) and require a TTL on sweeps "
                "(`experiments.cap_usd`, a `ttl` tag) so a forgotten sweep stops itself."]  # fmt: skip
    if lead is not None:
        return [f"Resource: stop {target} or scale it to zero if nothing needs it."]
    return [f"Review: ask the owner of {', '.join(scope.values())} whether the new level is "
            "needed; stop what is not."]  # fmt: skip
