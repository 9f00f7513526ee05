"""Idle capacity: GPU pools whose idle GPU-time exceeds a target for the work they do.

Idle is the allocation's, defined once (`allocation.idle.pool_idle`, docs/methodology/
allocation.md): **unheld** GPU-time (a host provided it, nobody held it) and **held idle**
GPU-time (a workload held it, the engine was idle), both in GPU-hours and in the dollars the
exact split gave them. Here it is read per host and gathered into the same pools as rightsizing
(the hosts of one provider, region and instance type, `rightsizing.billed_hosts`).

Each pool's target depends on the work it mostly carries (its GPU-hours used, by cost domain):
online inference keeps `TARGETS["online_inference"]` idle as headroom for traffic peaks; training
and batch work, which queue, keep much less. The saving is the idle dollars above the target,
per 30 days: scaling unheld capacity down, or consolidating workloads that hold GPUs idle. The
range: low = half of it (hosts come whole, and peaks need some of it), high = every idle dollar.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.allocate import HELD_KINDS
from costline.allocation.idle import pool_idle
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs, pool_name, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "idle_capacity"
TARGETS = {"online_inference": 0.30, "training": 0.10, "batch_ai": 0.10}
DEFAULT_TARGET = 0.20  # shared or unknown work


def _per_host(rows: ibis.Table) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """(`pool_idle` per host, host -> cost domain -> GPU-hours held)."""
    idle = fetch.rows(pool_idle(rows.mutate(pool=rows.host)).rename(host="pool"))
    held = rows.filter(rows.kind.isin(list(HELD_KINDS)), rows.host.notnull())
    by = held.group_by(["host", "cost_domain"]).aggregate(hours=held.gpu_seconds.sum() / 3600)
    domains: dict[str, dict[str, float]] = defaultdict(dict)
    for r in fetch.rows(by):
        domains[r["host"]][r["cost_domain"] or "shared"] = float(r["hours"] or 0)
    return [r for r in idle if r["host"] is not None], domains


def recommend_idle(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool whose idle GPU dollars exceed its target (see the module)."""
    hosts, domains = _per_host(inputs.allocation.table())
    pooled = inputs.pooled(hosts)
    return inputs.kept(_finding(pool_name(k), m, domains, inputs) for k, m in pooled.items())


def _finding(
    name: str, members: list[dict[str, Any]], domains: dict[str, dict[str, float]],
    inputs: Inputs,
) -> Finding | None:  # fmt: skip
    def total(key: str) -> Decimal:
        return sum((Decimal(str(m[key] or 0)) for m in members), Decimal(0))

    cost, idle = total("gpu_cost_usd"), total("idle_usd")
    if cost <= 0:
        return None
    work: dict[str, float] = defaultdict(float)
    for m in members:
        for domain, hours in domains.get(str(m["host"]), {}).items():
            work[domain] += hours
    domain = max(sorted(work), key=lambda d: work[d]) if work else "shared"
    target = Decimal(str(TARGETS.get(domain, DEFAULT_TARGET)))
    per_month = inputs.per_month
    window_days = (inputs.end - inputs.start).total_seconds() / 86400
    excess = (idle - target * cost) * per_month
    if excess <= 0:
        return None
    gpu_hours, unheld, held_idle = (sum(float(m[k] or 0) for m in members)
                                    for k in ("gpu_hours", "unheld_gpu_hours",
                                              "held_idle_gpu_hours"))  # fmt: skip
    observed = gpu_hours - sum(float(m["unobserved_gpu_hours"] or 0) for m in members)
    team = team_of(members)
    share = idle / cost
    move = (
        "scale the pool down"
        if unheld >= held_idle
        else "consolidate the workloads holding idle GPUs"
    )
    return recommendation(
        kind=KIND,
        scope={"pool": name, **({"team": team} if team else {})},
        title=f"{name}: {share:.0%} of its GPU spend idle, target {target:.0%} for {domain}",
        summary=(
            f"{len(members)} host(s) of {name} provided {gpu_hours:,.0f} GPU-hours; "
            f"{unheld:,.0f} were held by nobody and {held_idle:,.0f} held but idle: "
            f"${idle * per_month:,.0f} a month of ${cost * per_month:,.0f}. The pool mostly runs "
            f"{domain}, which needs at most {target:.0%} idle."
        ),
        owner=inputs.owner(team),
        current_monthly=cost * per_month,
        savings=Savings(excess, excess / 2, idle * per_month),
        method="allocation idle (unheld + held idle) above a target by workload type",
        inputs={
            "hosts": len(members),
            "gpu_hours": round(gpu_hours, 1),
            "unheld_gpu_hours": round(unheld, 1),
            "held_idle_gpu_hours": round(held_idle, 1),
            "idle_usd": idle,
            "gpu_cost_usd": cost,
            "workload": domain,
            "target_idle_share": target,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=min(observed / gpu_hours, 1.0) if gpu_hours else 0.0,
        risk="low: capacity removed is capacity that sat idle; keep headroom for peaks",
        action=f"{move[0].upper()}{move[1:]} of {name}: about "
        f"{float(excess / (cost * per_month)) * gpu_hours / window_days / 24:,.1f} "
        "GPUs fewer on average (a node-pool max, a scale-down delay, or bin-packing).",
        clock=inputs.clock,
    )
