"""The demo's budgets (`costline.yaml` beside the bills) and the budget overrun it injects.

- a monthly budget per team, at 1.25x the team's largest month in the window (rounded up to
  $1,000): a team may cross 50-90% in a busy month, never 100%;
- a monthly budget per AI cost domain (training, online inference, batch AI) on the same rule;
- the overrun: a monthly budget for the project of the runaway sweep (`demo.incidents`; its
  team's training domain when the bill shows no project), sized at that month's spend without
  the sweep plus 40% of the sweep's cost (rounded up to $100), so the sweep pushes it past 100%.

`ground_truth.json` gains a `budget_overrun` incident for every month that budget ends over,
with the day its running total reached the amount and the overrun to the cent. Team and domain
are read from each resource's tags the way the ledger derives them (the same tag keys, folded).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from costline.attribution.tags import DEFAULT_ALIASES, DOMAIN_OF_WORKLOAD
from costline.demo.incidents import Incidents
from costline.demo.org import Resource
from costline.money import MONEY_CONTEXT

AI_DOMAINS = ("training", "online_inference", "batch_ai")
HEADROOM = Decimal("1.25")
SWEEP_SHARE = Decimal("0.4")
CENT = Decimal("0.01")
ZERO = Decimal(0)


def _fold(value: str) -> str:
    return "-".join(value.strip().lower().replace("_", " ").split())


def _tag(r: Resource, canonical: str) -> str | None:
    tags = dict(r.tags)
    keys = DEFAULT_ALIASES.get(canonical) or (canonical, canonical.capitalize())
    raw = next((tags[k] for k in keys if tags.get(k)), None)
    return _fold(raw) if raw else None


def derived(r: Resource) -> tuple[str | None, str | None]:
    """(team, cost_domain) as the ledger derives them from the resource's tags."""
    workload = _tag(r, "workload_type")
    return _tag(r, "team"), DOMAIN_OF_WORKLOAD.get(workload) if workload else None


def _round_up(amount: Decimal, step: int) -> Decimal:
    return Decimal(math.ceil(amount / step) * step)


def plan_budgets(
    resources: Sequence[Resource],
    per_day: Mapping[tuple[str, str], Decimal],
    incidents: Incidents,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the `budgets:` of the demo's costline.yaml, the `budget_overrun` incidents)."""
    with localcontext(MONEY_CONTEXT):  # sums of 18-decimal amounts, never rounded
        return _plan(resources, per_day, incidents)


def _plan(
    resources: Sequence[Resource],
    per_day: Mapping[tuple[str, str], Decimal],
    incidents: Incidents,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    keys = {r.key: derived(r) for r in resources}
    month_of: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # (group, month)
    for (key, day), cost in per_day.items():
        team, domain = keys.get(key, (None, None))
        if team:
            month_of[(f"team:{team}", day[:7])] += cost
        if domain in AI_DOMAINS:
            month_of[(f"domain:{domain}", day[:7])] += cost
    biggest: dict[str, Decimal] = defaultdict(Decimal)
    for (group, _), cost in month_of.items():
        biggest[group] = max(biggest[group], cost)
    budgets: list[dict[str, Any]] = []
    for group in sorted(biggest):
        kind, value = group.split(":", 1)
        scope = {"team": value} if kind == "team" else {"cost_domain": value}
        name = f"{value}-monthly" if kind == "team" else f"{value.replace('_', '-')}-domain"
        amount = _round_up(biggest[group] * HEADROOM, 1000)
        budgets.append({"name": name, "scope": scope, "amount_usd": int(amount)})
    overrun = _overrun_budget(resources, per_day, incidents, keys)
    if overrun is None:
        return budgets, []
    budget, members = overrun
    budgets.append(budget)
    return budgets, _overruns(budget, members, per_day)


def _overrun_budget(
    resources: Sequence[Resource],
    per_day: Mapping[tuple[str, str], Decimal],
    incidents: Incidents,
    keys: Mapping[str, tuple[str | None, str | None]],
) -> tuple[dict[str, Any], set[str]] | None:
    sweep = next((i for i in incidents.items if i.kind == "runaway_sweep"), None)
    if sweep is None:
        return None
    team, domain = keys[sweep.resource.key]
    project = _tag(sweep.resource, "project")
    if team is None or (project is None and domain != "training"):
        return None
    if project is not None:  # the sweep's own project, as its tags name it
        members = {
            r.key for r in resources if keys[r.key][0] == team and _tag(r, "project") == project
        }
        name, scope = f"{project}-project", {"team": team, "project": project}
    else:
        members = {k for k, (t, d) in keys.items() if t == team and d == "training"}
        name, scope = f"{team}-training", {"team": team, "cost_domain": "training"}
    added = {r.key for r in sweep.added}
    month = incidents.timeline.day_marks[sweep.start_day][:7]
    base = sum((c for (k, day), c in per_day.items()
                if k in members - added and day[:7] == month), ZERO)  # fmt: skip
    extra = sum((c for (k, day), c in per_day.items() if k in added and day[:7] == month), ZERO)
    amount = _round_up(base + SWEEP_SHARE * extra, 100)
    return {"name": name, "scope": scope, "amount_usd": int(amount)}, members


def _overruns(
    budget: Mapping[str, Any], members: set[str], per_day: Mapping[tuple[str, str], Decimal]
) -> list[dict[str, Any]]:
    """Every month the budget ends over: the day it reached its amount and the overrun."""
    daily: dict[str, Decimal] = defaultdict(Decimal)
    for (key, day), cost in per_day.items():
        if key in members:
            daily[day] += cost
    amount = Decimal(budget["amount_usd"])
    out = []
    for month in sorted({day[:7] for day in daily}):
        running = ZERO
        crossed = None
        for day in sorted(d for d in daily if d[:7] == month):
            running += daily[day]
            if crossed is None and running >= amount:
                crossed = day
        if crossed is not None:
            out.append({
                "id": f"budget-overrun-{month}",
                "kind": "budget_overrun",
                "scope": {"budget": budget["name"], **budget["scope"]},
                "start": f"{crossed}T00:00:00Z",
                "end": f"{_next_month(month)}-01T00:00:00Z",
                "impact_usd": format((running - amount).quantize(CENT), "f"),
                "verdict": "waste",
            })  # fmt: skip
    return out


def _next_month(month: str) -> str:
    year, m = int(month[:4]), int(month[5:7])
    return f"{year + m // 12}-{m % 12 + 1:02d}"
