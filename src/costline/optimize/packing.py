"""Packing small workloads: several that each hold a whole GPU and use little of it share one.

Per workload (a holder of GPU-time: `namespace/pod`, else the job id, as allocation names it),
the engine reads over the window: the largest framebuffer it used on a GPU, the 95th percentile
of its compute activity, and the GPU-time and dollars it held (the allocation's). A workload is
small when `HEADROOM` x its peak memory fits a seventh of its GPU (the smallest MIG slice of an
A100 or H100 holds about that) several times over and its p95 activity is under `SMALL_BUSY`.
Small workloads of one pool can share GPUs: `k` per GPU, the most whose memory fits the GPU and
whose p95 activity sums under `TARGET_BUSY`, at most 7 (MIG's slices; time-slicing has no such
limit, but contention grows). Packing `n` of them on `ceil(n / k)` GPUs frees the rest: the
saving is their held dollars x (1 - 1/k) per 30 days (P50); low at half the packing factor
(contention, uneven peaks); high = P50. MIG slices already in use are left out.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from costline.allocation.allocate import HELD_KINDS
from costline.allocation.gpu import holder
from costline.catalog.gpu_prices import price
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs, pool_name, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "gpu_packing"
HEADROOM = 1.2
SMALL_BUSY = 0.3
TARGET_BUSY = 0.7
MAX_PER_GPU = 7
MIG = ("A100", "H100", "H200", "B200")


def _workloads(inputs: Inputs) -> list[dict[str, Any]]:
    """Per host and holder: peak framebuffer, p95 activity, held GPU-hours and dollars."""
    s = inputs.samples
    s = s.filter(s.ts >= inputs.start, s.ts < inputs.end, s.host.notnull(),
                 s.mig_profile.isnull())  # fmt: skip
    s = s.mutate(who=holder(s), busy=s.sm_active.fill_null(s.gr_engine_active))
    s = s.filter(s.who.notnull())
    use = s.group_by(["host", "who"]).aggregate(fb_max=s.fb_used_mib.max(),
                                                busy_p95=s.busy.quantile(0.95))  # fmt: skip
    r = inputs.allocation.table()
    r = r.filter(r.kind.isin(list(HELD_KINDS)), r.holder.notnull())
    held = r.group_by(["host", "holder"]).aggregate(gpu_hours=r.gpu_seconds.sum() / 3600,
                                                    usd=r.amount.sum())  # fmt: skip
    j = use.join(held, [use.host == held.host, use.who == held.holder])
    return fetch.rows(j.select(use.host, use.who, use.fb_max, use.busy_p95, held.gpu_hours,
                               held.usd))  # fmt: skip


def recommend_packing(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool whose small workloads would share GPUs (see the module)."""
    pooled = inputs.pooled(_workloads(inputs))
    return inputs.kept(_finding(k, m, inputs) for k, m in pooled.items())


def _per_gpu(members: list[dict[str, Any]], memory_mib: float) -> int:
    """How many of these workloads one GPU holds: by the largest memory and busiest of them."""
    fb = max(float(m["fb_max"]) for m in members) * HEADROOM
    busy = max(float(m["busy_p95"]) for m in members)
    by_memory = math.floor(memory_mib / fb) if fb > 0 else MAX_PER_GPU
    by_compute = math.floor(TARGET_BUSY / busy) if busy > 0 else MAX_PER_GPU
    return max(min(by_memory, by_compute, MAX_PER_GPU), 1)


def _finding(key: tuple[str, str, str], members: list[dict[str, Any]],
             inputs: Inputs) -> Finding | None:  # fmt: skip
    catalog = price(key[0], key[2], key[1])
    if catalog is None:
        return None
    gpu = catalog.gpu
    memory = gpu.gpu_memory_gb * 1024.0
    small = [m for m in members if m["fb_max"] is not None and m["busy_p95"] is not None
             and float(m["fb_max"]) * HEADROOM * 2 <= memory
             and float(m["busy_p95"]) < SMALL_BUSY]  # fmt: skip
    if len(small) < 2:
        return None
    k = min(_per_gpu(small, memory), len(small))
    if k < 2:
        return None
    held = sum((Decimal(m["usd"]) for m in small), Decimal(0)) * inputs.per_month
    p50 = held * (1 - Decimal(1) / k)
    low = held * (1 - Decimal(1) / max(k // 2, 1))
    how = "MIG slices" if gpu.chip in MIG else "time-slicing"
    team = team_of(members)
    name = pool_name(key)
    return recommendation(
        kind=KIND,
        scope={"pool": name, **({"team": team} if team else {})},
        title=f"{name}: {len(small)} small workloads could share GPUs, {k} per {gpu.gpu_model}",
        summary=(
            f"{len(small)} workloads each held a whole {gpu.gpu_model} but used at most "
            f"{max(float(m['fb_max']) for m in small) / 1024:.1f} GiB and were busy under "
            f"{SMALL_BUSY:.0%} at p95. {k} fit on one GPU with {HEADROOM - 1:.0%} memory headroom "
            f"and {TARGET_BUSY:.0%} compute: {math.ceil(len(small) / k)} GPUs instead of "
            f"{len(small)}."
        ),
        owner=inputs.owner(team),
        current_monthly=held,
        savings=Savings(p50, min(low, p50), p50),
        method=f"pack small workloads {k} per GPU by peak memory and p95 compute ({how})",
        inputs={
            "workloads": sorted(str(m["who"]) for m in small)[:20],
            "per_gpu": k,
            "gpu_memory_gb": gpu.gpu_memory_gb,
            "sharing": how,
            "largest_fb_mib": max(round(float(m["fb_max"])) for m in small),
            "busiest_p95": round(max(float(m["busy_p95"]) for m in small), 3),
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="medium: workloads sharing a GPU contend for it; peaks that coincide slow them",
        action=f"Share the {gpu.gpu_model} GPUs of {name}, {k} workloads per GPU: "
        + (
            "partition them into MIG slices that hold each workload's peak (the GPU operator's "
            "`nvidia.com/mig.config` node label) and request one slice per workload."
            if how == "MIG slices"
            else f"enable time-slicing with `replicas: {k}` in the device plugin's sharing config."
        ),
        clock=inputs.clock,
    )
