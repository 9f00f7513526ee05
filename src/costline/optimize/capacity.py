"""Capacity mix: interruption-tolerant GPU work on on-demand capacity that could run on Spot.

Which work tolerates interruption is decided by its kind (`TOLERANT`: training runs, sweep trials,
fine-tunes, batch jobs, evaluations, embedding generation; never an inference endpoint or a
notebook, which a person or a user waits on). Its GPU cost is the allocation's: the dollars of
the GPU-time its workloads held (`allocation.allocate`, HELD_KINDS), per pool of hosts (provider,
region, instance type, as rightsizing). Work already on Spot (`capacity_type`) is left out.

Spot is cheaper per hour, but an interruption loses the work since the last checkpoint and a
restart. With a checkpoint written every `tau` hours taking `C` hours, a restart of `R` hours and
a mean time between interruptions `M` hours, the overhead on each useful hour is

    C / tau + (tau / 2 + R) / M

and the interval that minimizes it is Young/Daly's `tau* = sqrt(2 C M)`. A workload that says its
interval (tag `checkpoint_interval_min`) is priced at it, and the recommendation gives `tau*`
beside it. The saving per month is `held cost x (1 - spot / on-demand x (1 + overhead))`: P50 at
`MTBI_HOURS` between interruptions, low at a quarter of it, high at four times it. The Spot price
is the catalog's; where the catalog has none for the type and region (AWS and Azure publish no
Spot prices in its tables), the pool is not recommended on: unpriced, never zero.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.allocate import HELD_KINDS
from costline.catalog.gpu_prices import price
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs, pool_name, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "spot_capacity"
TOLERANT = ("training_run", "sweep_trial", "fine_tune", "batch_job", "evaluation", "embedding")
# LLM traffic of these cost domains (evaluations, embeddings, batch inference) can wait for a
# cheaper hour; online inference (a user waits) never.
TOLERANT_DOMAINS = ("batch_ai",)
MTBI_HOURS = 24.0  # mean time between Spot interruptions assumed for GPU instances
CHECKPOINT_HOURS = 5 / 60  # time to write a checkpoint
RESTART_HOURS = 10 / 60  # time to get a new instance and load the last checkpoint
INTERVAL_TAG = "checkpoint_interval_min"


def young_daly(mtbi: float, checkpoint: float = CHECKPOINT_HOURS) -> float:
    """The checkpoint interval (hours) that minimizes lost work plus checkpointing: sqrt(2 C M)."""
    return math.sqrt(2 * checkpoint * mtbi)


def overhead(tau: float, mtbi: float) -> float:
    """Extra hours per useful hour on Spot: checkpoint writes, and work lost per interruption."""
    return CHECKPOINT_HOURS / tau + (tau / 2 + RESTART_HOURS) / mtbi


def tolerant(workloads: ibis.Table) -> ibis.Table:
    """The workloads whose kind tolerates interruption and waiting (`TOLERANT`): the one place
    that decides it, for Spot, for arbitrage and for cheaper windows alike."""
    return workloads.filter(workloads.kind.isin(list(TOLERANT)))


def held_by_tolerant(rows: ibis.Table, workloads: ibis.Table) -> list[dict[str, Any]]:
    """host, workload kind, checkpoint interval, GPU-hours and dollars held by tolerant work."""
    w = tolerant(workloads)
    w = w.filter(w.capacity_type.fill_null("on_demand") != "spot")
    w = w.select(workload_id=w.workload_id, wkind=w.kind,
                 interval=w.tags.get(INTERVAL_TAG).cast("float64"))  # fmt: skip
    r = rows.filter(rows.kind.isin(list(HELD_KINDS)), rows.host.notnull())
    j = r.join(w, r.holder == w.workload_id)
    return fetch.rows(j.group_by(["host", "wkind", "interval"]).aggregate(
        gpu_hours=j.gpu_seconds.sum() / 3600, usd=j.amount.sum()))  # fmt: skip


def recommend_spot(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool whose tolerant on-demand work would cost less on Spot."""
    pooled = inputs.pooled(held_by_tolerant(inputs.allocation.table(), inputs.workloads))
    return inputs.kept(_finding(k, m, inputs) for k, m in pooled.items())


def _saving(members: list[dict[str, Any]], ratio: float, mtbi: float) -> Decimal:
    """Monthly-scaled dollars saved by moving the members' work to Spot at `mtbi`."""
    total = Decimal(0)
    for m in members:
        tau = (m["interval"] / 60) if m["interval"] else young_daly(mtbi)
        paid = Decimal(repr(ratio * (1 + overhead(tau, mtbi))))  # Spot's cost per dollar now
        total += Decimal(m["usd"]) * (1 - paid)
    return total


def _finding(
    key: tuple[str, str, str], members: list[dict[str, Any]], inputs: Inputs
) -> Finding | None:
    provider, region, instance_type = key
    per_month = inputs.per_month
    od = price(provider, instance_type, region)
    spot = price(provider, instance_type, region, "spot")
    if od is None or spot is None:
        return None  # no Spot price known: unpriced
    ratio = float(spot.price_usd_per_hour / od.price_usd_per_hour)
    p50, low, high = (_saving(members, ratio, m) * per_month
                      for m in (MTBI_HOURS, MTBI_HOURS / 4, MTBI_HOURS * 4))  # fmt: skip
    if p50 <= 0:
        return None
    cost = sum((Decimal(m["usd"]) for m in members), Decimal(0)) * per_month
    hours = sum(float(m["gpu_hours"]) for m in members)
    kinds = sorted({str(m["wkind"]) for m in members})
    team = team_of(members)
    tau = young_daly(MTBI_HOURS)
    name = pool_name(key)
    return recommendation(
        kind=KIND,
        scope={"pool": name, **({"team": team} if team else {})},
        title=f"{name}: {', '.join(kinds)} on on-demand could run on Spot at "
        f"{ratio:.0%} of the price",
        summary=(
            f"{hours:,.0f} GPU-hours of interruption-tolerant work ({', '.join(kinds)}) ran on "
            f"on-demand {instance_type} in {region}, ${cost:,.0f} a month. Spot lists at "
            f"${spot.price_usd_per_hour:,.2f}/h against ${od.price_usd_per_hour:,.2f}/h; net of "
            f"checkpoints and work lost to interruptions (one every {MTBI_HOURS:.0f} h assumed), "
            f"it saves ${p50:,.0f} a month."
        ),
        owner=inputs.owner(team),
        current_monthly=cost,
        savings=Savings(p50, min(low, p50), max(high, p50)),
        method="spot price net of checkpoint and interruption overhead (Young/Daly)",
        inputs={
            "on_demand_usd_per_hour": od.price_usd_per_hour,
            "spot_usd_per_hour": spot.price_usd_per_hour,
            "spot_as_of": spot.as_of,
            "mtbi_hours": MTBI_HOURS,
            "checkpoint_write_hours": round(CHECKPOINT_HOURS, 4),
            "restart_hours": round(RESTART_HOURS, 4),
            "young_daly_interval_hours": round(tau, 2),
            "workload_kinds": kinds,
            "gpu_hours": round(hours, 1),
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk=f"medium: interruptions assumed every {MTBI_HOURS:.0f} h on average (range "
        f"{MTBI_HOURS / 4:.0f}-{MTBI_HOURS * 4:.0f} h); jobs must resume from checkpoints",
        action=(
            f"Run the {', '.join(kinds)} work of {name} on Spot (e.g. a Spot node pool: "
            '`karpenter.sh/capacity-type: spot` or GKE `cloud.google.com/gke-spot: "true"`), '
            f"checkpointing every {tau * 60:.0f} minutes (Young/Daly for a {MTBI_HOURS:.0f} h "
            "mean time between interruptions); keep inference on on-demand."
        ),
        clock=inputs.clock,
    )


__all__ = [
    "KIND",
    "TOLERANT",
    "TOLERANT_DOMAINS",
    "overhead",
    "recommend_spot",
    "tolerant",
    "young_daly",
]
