"""Showback and chargeback: allocation rows grouped by a dimension, idle and shared cost placed.

Every report ends in buckets whose amounts add up exactly to the allocation's total; `buckets`
checks it and refuses to return anything else (docs/methodology/allocation.md, sections 2 to 5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from costline.allocation.allocate import (
    DIMENSIONS,
    GPU_HELD_IDLE,
    GPU_UNHELD,
    HELD_KINDS,
    SHARED,
    Allocation,
)
from costline.allocation.split import split
from costline.attribution.rules import fold_text
from costline.errors import CostlineError
from costline.money import MONEY_CONTEXT, total

IDLE = "__idle__"
SHARED_BUCKET = "__shared__"
UNALLOCATED = "__unallocated__"
SPECIAL = (SHARED_BUCKET, IDLE, UNALLOCATED)
IdleMode = Literal["shown", "shared"]
SharedMode = Literal["shown", "proportional"]
ReportKind = Literal["showback", "chargeback"]
# What a report may be by: the allocation's dimensions, and `domain` for `cost_domain`.
REPORT_BY = (*DIMENSIONS, "domain")


@dataclass
class Bucket:
    """One line of a report: an owner (or a special bucket) and what it is charged."""

    name: str
    direct: Decimal = Decimal(0)  # its own lines and the GPU-time it held
    idle: Decimal = Decimal(0)  # its part of its pools' unheld GPU-time (idle shared)
    shared: Decimal = Decimal(0)  # its part of the shared platform (shared proportional)
    gpu_seconds: float = 0.0
    idle_gpu_seconds: float = 0.0  # held but idle
    held_idle: Decimal = Decimal(0)  # the cost of that held-idle time (inside `direct`)
    unheld_gpu_seconds: float = 0.0  # unheld GPU-time in this bucket (`__idle__`, idle shown)
    unheld: Decimal = Decimal(0)  # unheld GPU cost in this bucket or charged to it
    pools: set[str] = field(default_factory=set)

    @property
    def amount(self) -> Decimal:
        return total((self.direct, self.idle, self.shared))


def _bucket_of(row: dict[str, object], by: str) -> str:
    if row["kind"] == GPU_UNHELD:
        return IDLE
    if row["kind"] == SHARED:
        return SHARED_BUCKET
    value = row.get(by)
    return str(value) if value else UNALLOCATED


def buckets(
    allocation: Allocation, by: str, *, idle: IdleMode = "shown", shared: SharedMode = "shown"
) -> list[Bucket]:
    """The allocation by `by` (a dimension), largest first, special buckets last."""
    if by not in DIMENSIONS:
        raise CostlineError(f"cannot report by {by!r}: one of {', '.join(DIMENSIONS)}")
    rows = allocation.rows.to_pylist()
    out: dict[str, Bucket] = {}

    def get(name: str) -> Bucket:
        return out.setdefault(name, Bucket(name))

    held_by_pool: dict[str, list[tuple[str, float]]] = defaultdict(list)
    idle_by_pool: dict[str, list[Decimal]] = defaultdict(list)
    idle_seconds: dict[str, float] = defaultdict(float)
    shared_by_pool: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        name = _bucket_of(r, by)
        if r["kind"] == SHARED:
            shared_by_pool[str(r["pool"])] = MONEY_CONTEXT.add(
                shared_by_pool[str(r["pool"])], r["amount"]
            )
        if idle == "shared" and r["kind"] == GPU_UNHELD:
            idle_by_pool[str(r["pool"])].append(r["amount"])
            idle_seconds[str(r["pool"])] += r["gpu_seconds"]
            continue
        b = get(name)
        b.direct = MONEY_CONTEXT.add(b.direct, r["amount"])
        if r["kind"] == GPU_UNHELD:
            b.unheld = MONEY_CONTEXT.add(b.unheld, r["amount"])
            b.unheld_gpu_seconds += r["gpu_seconds"]
        if r["kind"] in HELD_KINDS:
            b.gpu_seconds += r["gpu_seconds"]
            b.pools.add(str(r["pool"]))
            held_by_pool[str(r["pool"])].append((name, r["gpu_seconds"]))
            if r["kind"] == GPU_HELD_IDLE:
                b.idle_gpu_seconds += r["gpu_seconds"]
                b.held_idle = MONEY_CONTEXT.add(b.held_idle, r["amount"])
    for pool, amounts in idle_by_pool.items():
        amount = total(amounts)
        holders = _weights(held_by_pool.get(pool, []))
        if not holders:
            get(IDLE).direct = MONEY_CONTEXT.add(get(IDLE).direct, amount)
            get(IDLE).unheld = MONEY_CONTEXT.add(get(IDLE).unheld, amount)
            get(IDLE).unheld_gpu_seconds += idle_seconds[pool]
            continue
        for name, part in zip(holders, split(amount, list(holders.values())), strict=True):
            get(name).idle = MONEY_CONTEXT.add(get(name).idle, part)
            get(name).unheld = MONEY_CONTEXT.add(get(name).unheld, part)
    if shared == "proportional" and SHARED_BUCKET in out:
        out.pop(SHARED_BUCKET)
        direct = {n: b.direct for n, b in out.items() if n not in SPECIAL and b.direct > 0}
        for pool, amount in shared_by_pool.items():
            weights = _pool_weights(allocation, pool, by, direct)
            if not weights:
                get(SHARED_BUCKET).direct = MONEY_CONTEXT.add(get(SHARED_BUCKET).direct, amount)
                continue
            for name, part in zip(weights, split(amount, list(weights.values())), strict=True):
                get(name).shared = MONEY_CONTEXT.add(get(name).shared, part)
    result = sorted(out.values(), key=lambda b: (b.name in SPECIAL, -b.amount, b.name))
    got = total(b.amount for b in result)
    if got != allocation.total:
        raise CostlineError(
            f"allocation does not conserve money: buckets {got} != lines {allocation.total}"
        )
    return result


def _pool_weights(
    allocation: Allocation, pool: str, by: str, direct: dict[str, Decimal]
) -> dict[str, Decimal]:
    """How a shared pool splits over the report's buckets (docs/methodology/allocation.md, 4).

    Fixed ratios and usage metrics are stated per value of the pool's own dimension (`by` in the
    config); a report by another dimension splits that pool in proportion to direct cost.
    """
    spec = allocation.pools.get(pool)
    if spec is not None and spec.by == by:
        if spec.split == "fixed":  # keys folded as tag values are
            return {fold_text(k) or k: v for k, v in spec.ratios.items() if v > 0}
        if spec.split == "metric":
            return dict(allocation.pool_weights.get(pool, {}))
    if spec is not None and spec.split == "even":
        return dict.fromkeys(direct, Decimal(1))
    return direct


def _weights(pairs: Iterable[tuple[str, float]]) -> dict[str, Decimal]:
    weights: dict[str, Decimal] = defaultdict(Decimal)
    for name, seconds in pairs:
        weights[name] += Decimal(repr(seconds))
    return {n: w for n, w in weights.items() if w > 0}


def report_rows(result: list[Bucket], allocation: Allocation, by: str) -> list[dict[str, object]]:
    """Buckets as rows for the CLI and API: amounts, share of the total, GPU-hours held, and both
    kinds of idle (`costline.allocation.idle`) with the same names in every view: `held_idle_*`
    (its own held-but-idle time, inside its direct cost) and `unheld_idle_*` (`__idle__`'s own
    when idle is shown; each owner's share of its pools' unheld time when idle is shared)."""
    whole = allocation.total
    rows = []
    for b in result:
        share = (b.amount / whole * 100) if whole else Decimal(0)
        rows.append(
            {
                by: b.name,
                "amount_usd": b.amount,
                "direct_usd": b.direct,
                "shared_usd": b.shared,
                "share_pct": share.quantize(Decimal("0.01")),
                "gpu_hours": round(b.gpu_seconds / 3600, 2),
                "held_idle_gpu_hours": round(b.idle_gpu_seconds / 3600, 2),
                "held_idle_usd": b.held_idle,
                "unheld_idle_gpu_hours": round(b.unheld_gpu_seconds / 3600, 2),
                "unheld_idle_usd": b.unheld,
            }
        )
    return rows


def report(
    allocation: Allocation, by: str, kind: ReportKind = "showback", *, idle: IdleMode = "shown"
) -> list[dict[str, object]]:
    """The rows of `costline report showback|chargeback` (the API's too): buckets by `by`.

    Showback keeps `__shared__`, and `__idle__` unless `idle="shared"`; chargeback shares idle GPU
    cost over each pool's holders by GPU-time and the shared platform over owners.
    """
    chargeback = kind == "chargeback"
    result = buckets(
        allocation,
        "cost_domain" if by == "domain" else by,
        idle="shared" if chargeback else idle,
        shared="proportional" if chargeback else "shown",
    )
    return report_rows(result, allocation, by)
