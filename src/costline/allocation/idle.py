"""Idle GPU cost, defined once (docs/methodology/allocation.md, "Idle"): every view reads this.

Two kinds of idle GPU-time, each in GPU-hours and in dollars, per pool:

- **unheld**: GPU-time a host provided while telemetry saw nobody on it (`__idle__` in showback;
  shared over the pool's holders in chargeback);
- **held idle**: GPU-time a workload held while the GPU's engine was idle (it stays with its holder
  in showback and chargeback, shown beside its busy time).

`pool_idle` is an Ibis expression over the allocation's rows (`Allocation.table()`): the GPU page,
showback, chargeback and unit costs all take their idle figures from it, so they agree to the cent.
Hours without telemetry are neither kind: they are `unobserved` (split by the workloads' schedules
where those say who held the GPUs, else by the line's tags), never idle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.allocate import (
    GPU_HELD_IDLE,
    GPU_KINDS,
    GPU_SCHEDULED,
    GPU_UNHELD,
    GPU_UNOBSERVED,
    GPU_USED,
    Allocation,
)
from costline.ledger import fetch
from costline.money import MONEY_CONTEXT, MONEY_DTYPE

HOUR = 3600.0
ZERO = Decimal(0)


def pool_idle(rows: ibis.Table) -> ibis.Table:
    """Per pool: GPU-hours and dollars of each kind of GPU-time, from allocation rows.

    Columns: pool, gpu_hours (everything the pool's lines provided), used_gpu_hours,
    held_idle_gpu_hours, unheld_gpu_hours, scheduled_gpu_hours, unobserved_gpu_hours,
    gpu_cost_usd, held_idle_usd, unheld_idle_usd, idle_usd (held idle + unheld).
    """
    g = rows.filter(rows.kind.isin(list(GPU_KINDS)))

    def hours(kind: str) -> ibis.FloatingValue:
        return (g.gpu_seconds.sum(where=g.kind == kind) / HOUR).fill_null(0.0)

    def usd(kind: str) -> ibis.DecimalValue:
        return g.amount.sum(where=g.kind == kind).fill_null(0).cast(MONEY_DTYPE)

    out = g.group_by("pool").aggregate(
        gpu_hours=(g.gpu_seconds.sum() / HOUR).fill_null(0.0),
        used_gpu_hours=hours(GPU_USED),
        held_idle_gpu_hours=hours(GPU_HELD_IDLE),
        unheld_gpu_hours=hours(GPU_UNHELD),
        scheduled_gpu_hours=hours(GPU_SCHEDULED),
        unobserved_gpu_hours=hours(GPU_UNOBSERVED),
        gpu_cost_usd=g.amount.sum().cast(MONEY_DTYPE),
        held_idle_usd=usd(GPU_HELD_IDLE),
        unheld_idle_usd=usd(GPU_UNHELD),
    )
    return out.mutate(idle_usd=(out.held_idle_usd + out.unheld_idle_usd).cast(MONEY_DTYPE))


@dataclass(frozen=True)
class IdleTotals:
    """The period's idle GPU-time of both kinds, as every view reports it."""

    held_idle_gpu_hours: float
    held_idle_usd: Decimal
    unheld_gpu_hours: float
    unheld_idle_usd: Decimal

    @property
    def idle_usd(self) -> Decimal:
        return MONEY_CONTEXT.add(self.held_idle_usd, self.unheld_idle_usd)

    def as_dict(self) -> dict[str, Any]:
        return {
            "held_idle_gpu_hours": round(self.held_idle_gpu_hours, 2),
            "held_idle_usd": self.held_idle_usd,
            "unheld_gpu_hours": round(self.unheld_gpu_hours, 2),
            "unheld_idle_usd": self.unheld_idle_usd,
            "idle_usd": self.idle_usd,
        }


def pool_rows(allocation: Allocation) -> list[dict[str, Any]]:
    """`pool_idle` of an allocation, executed: one dict per pool with its GPUs, largest idle first."""
    rows = fetch.rows(pool_idle(allocation.table()))
    gpus = allocation.pool_gpus()
    for r in rows:
        r["gpus"] = gpus.get(r["pool"], 0)
        for k in ("gpu_cost_usd", "held_idle_usd", "unheld_idle_usd", "idle_usd"):
            r[k] = r[k] if r[k] is not None else ZERO
    return sorted(rows, key=lambda r: (-r["idle_usd"], str(r["pool"])))


def totals(pools: list[dict[str, Any]]) -> IdleTotals:
    """The sum over `pool_rows`: the period's idle of both kinds."""
    return IdleTotals(
        held_idle_gpu_hours=sum(r["held_idle_gpu_hours"] for r in pools),
        held_idle_usd=_sum(r["held_idle_usd"] for r in pools),
        unheld_gpu_hours=sum(r["unheld_gpu_hours"] for r in pools),
        unheld_idle_usd=_sum(r["unheld_idle_usd"] for r in pools),
    )


def idle_totals(allocation: Allocation) -> IdleTotals:
    return totals(pool_rows(allocation))


def _sum(values: Any) -> Decimal:
    out = ZERO
    for v in values:
        out = MONEY_CONTEXT.add(out, v)
    return out
