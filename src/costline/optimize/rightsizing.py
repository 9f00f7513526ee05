"""GPU rightsizing from telemetry: pools of GPU hosts whose work fits a cheaper GPU.

For each pool (the GPU hosts of one provider, region and instance type, matched to their bill
lines by `allocation.gpu.with_host` and to the catalog by `attribution.instances.gpu_lines`), the
engine computes over the window: the billed instance-hours and effective cost, the GPU-seconds
of telemetry (coverage), the largest and the 95th percentile framebuffer used per GPU, and the 95th
percentile of compute activity (SM active, else graphics engine active, else GPU utilization).
MIG slices are left out: their GPU is already shared. A pool busy under 5% at p95 is idle, not
oversized: it is left to idle capacity. The same GPU on a smaller instance is not proposed:
costline does not see the hosts' CPU and memory needs.

The recommended type is the cheapest catalog type of the same provider and region, with another GPU
model and at least as many GPUs, whose memory holds the peak with `HEADROOM`, and whose compute (dense FP16 TFLOPS,
`catalog.gpu_prices.fp16_tflops`) keeps the observed p95 demand under `TARGET_BUSY` of it. That
compute comparison is an assumption no benchmark backs, and every recommendation says so.

Savings per month (30 days of the pool's billed hours): P50 at the organization's own discount
(paid rate / catalog on-demand, carried over to the new type); low at the new type's list price
(the discount does not carry over); high = P50. A pool whose type or region the catalog does not
price is not recommended on (unpriced, never zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import ibis
import pyarrow as pa

from costline.catalog.gpu_prices import GpuPrice, fp16_tflops, gpu_prices, price
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs, billed_hosts, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "gpu_rightsizing"
HEADROOM = 1.2  # memory kept free above the observed peak
TARGET_BUSY = 0.7  # the new GPUs' compute the observed p95 demand may use
MIB_PER_GB = 1024  # the catalog's GB are the datasheets' (binary) GB
IDLE_BELOW = 0.05  # p95 busy under this: the pool is idle, not oversized


@dataclass(frozen=True)
class Pool:
    provider: str
    region: str
    instance_type: str
    hosts: int
    team: str | None
    hours: Decimal  # billed instance-hours
    cost: Decimal  # effective cost of those hours
    gpu_seconds: float  # of telemetry
    fb_max_mib: float
    fb_p95_mib: float
    busy_p95: float  # 0-1

    @property
    def paid_per_hour(self) -> Decimal:
        return self.cost / self.hours


def pools(inputs: Inputs) -> list[Pool]:
    """The window's GPU pools with their bills and telemetry (two engine queries)."""
    samples = inputs.samples
    s = samples.filter(samples.ts >= inputs.start, samples.ts < inputs.end,
                       samples.host.notnull(), samples.mig_profile.isnull())  # fmt: skip
    hosts = s.select("host").distinct()
    billed = {r["host"]: r
              for r in fetch.rows(billed_hosts(inputs.window_lines, hosts, inputs.rules))}  # fmt: skip
    if not billed:
        return []
    keys = {h: f"{r['provider']}|{r['region']}|{r['instance_type']}" for h, r in billed.items()}
    pool_of = ibis.memtable(pa.table({"p_host": list(keys), "pool": list(keys.values())}))
    j = s.join(pool_of, s.host == pool_of.p_host)
    busy = ibis.coalesce(j.sm_active, j.gr_engine_active, j.gpu_util)
    stats = j.group_by("pool").aggregate(
        gpu_seconds=j.sample_seconds.fill_null(60.0).sum(), fb_max=j.fb_used_mib.max(),
        fb_p95=j.fb_used_mib.quantile(0.95), busy_p95=busy.quantile(0.95),
    )  # fmt: skip
    seen = {r["pool"]: r for r in fetch.rows(stats)}
    out = []
    for key, r in sorted(seen.items()):
        members = [billed[h] for h, k in keys.items() if k == key]
        if r["fb_max"] is None or r["busy_p95"] is None:
            continue  # telemetry without memory or activity: nothing to size on
        provider, region, instance_type = key.split("|")
        out.append(Pool(provider, region, instance_type, len(members), team_of(members),
                        sum((Decimal(m["hours"]) for m in members), Decimal(0)),
                        sum((Decimal(m["cost"]) for m in members), Decimal(0)),
                        float(r["gpu_seconds"]), float(r["fb_max"]), float(r["fb_p95"]),
                        float(r["busy_p95"])))  # fmt: skip
    return out


def candidate(pool: Pool) -> tuple[GpuPrice, GpuPrice] | None:
    """(the pool's catalog on-demand price, the cheapest type that fits it), or None."""
    now = price(pool.provider, pool.instance_type, pool.region)
    tflops = fp16_tflops()
    if now is None or now.gpu.gpu_model not in tflops or pool.busy_p95 < IDLE_BELOW:
        return None  # unpriced, no compute figure, or idle (idle capacity's case, not a resize)
    demand = pool.busy_p95 * float(tflops[now.gpu.gpu_model])
    fits = [
        p
        for p in gpu_prices()
        if p.capacity == "on_demand" and p.gpu.provider == pool.provider
        and p.region == pool.region and p.gpu.gpu_count >= now.gpu.gpu_count
        and p.gpu.gpu_memory_gb * MIB_PER_GB >= pool.fb_max_mib * HEADROOM
        and p.gpu.gpu_model in tflops and p.gpu.gpu_model != now.gpu.gpu_model
        and demand <= TARGET_BUSY * float(tflops[p.gpu.gpu_model])
        and p.price_usd_per_hour < now.price_usd_per_hour
    ]  # fmt: skip
    if not fits:
        return None
    return now, min(fits, key=lambda p: (p.price_usd_per_hour, p.gpu.instance_type))


def recommend_rightsizing(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool that fits a cheaper GPU (see the module), largest first."""
    out = []
    for pool in pools(inputs):
        found = candidate(pool)
        if found is None:
            continue
        now, new = found
        monthly_hours = pool.hours * inputs.per_month
        ratio = pool.paid_per_hour / now.price_usd_per_hour
        p50 = (pool.paid_per_hour - new.price_usd_per_hour * ratio) * monthly_hours
        low = (pool.paid_per_hour - new.price_usd_per_hour) * monthly_hours
        out.append(_finding(pool, now, new, Savings(p50, min(low, p50), p50), inputs,
                            monthly_hours))  # fmt: skip
    return inputs.kept(out)


def _finding(
    pool: Pool, now: GpuPrice, new: GpuPrice, savings: Savings, inputs: Inputs,
    monthly_hours: Decimal,
) -> Finding:  # fmt: skip
    gpus = now.gpu.gpu_count
    coverage = pool.gpu_seconds / (float(pool.hours) * gpus * 3600) if pool.hours else 0.0
    peak_gib = pool.fb_max_mib / MIB_PER_GB
    where = f"{pool.provider} {pool.region}"
    action = (
        f"Move the {pool.hosts} {pool.instance_type} host(s) in {where} to {new.gpu.instance_type} "
        f"({new.gpu.gpu_count} x {new.gpu.gpu_model}); e.g. in the node pool: "
        f"`node.kubernetes.io/instance-type: {new.gpu.instance_type}`. Benchmark first: the "
        "compute comparison assumes throughput scales with FP16 TFLOPS."
    )
    return recommendation(
        kind=KIND,
        scope={
            "pool": f"{pool.provider}/{pool.region}/{pool.instance_type}",
            **({"team": pool.team} if pool.team else {}),
        },
        title=f"{pool.instance_type} in {where}: {now.gpu.gpu_model} at "
        f"{pool.busy_p95:.0%} p95 busy, {peak_gib:.1f} GiB peak; {new.gpu.gpu_model} fits",
        summary=(
            f"{pool.hosts} {pool.instance_type} host(s) ({gpus} x {now.gpu.gpu_model}) used at "
            f"most {peak_gib:.1f} GiB of {now.gpu.gpu_memory_gb} GB per GPU and were busy "
            f"{pool.busy_p95:.0%} at p95. {new.gpu.instance_type} ({new.gpu.gpu_model}, "
            f"{new.gpu.gpu_memory_gb} GB) holds that peak with {HEADROOM - 1:.0%} headroom and "
            f"that demand under {TARGET_BUSY:.0%} of its compute, for "
            f"${new.price_usd_per_hour:,.2f}/h list against ${now.price_usd_per_hour:,.2f}/h."
        ),
        owner=inputs.owner(pool.team),
        current_monthly=pool.paid_per_hour * monthly_hours,
        savings=savings,
        method="gpu memory peak + headroom and p95 compute demand against the catalog",
        inputs={
            "instance_type": pool.instance_type,
            "hosts": pool.hosts,
            "billed_hours": pool.hours,
            "paid_usd_per_hour": pool.paid_per_hour,
            "catalog_usd_per_hour": now.price_usd_per_hour,
            "recommended_instance_type": new.gpu.instance_type,
            "recommended_usd_per_hour": new.price_usd_per_hour,
            "fb_used_max_mib": round(pool.fb_max_mib),
            "fb_used_p95_mib": round(pool.fb_p95_mib),
            "busy_p95": round(pool.busy_p95, 3),
            "headroom": HEADROOM,
            "target_busy": TARGET_BUSY,
            "fp16_tflops": {m: fp16_tflops()[m] for m in (now.gpu.gpu_model, new.gpu.gpu_model)},
            "catalog_as_of": new.as_of,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=min(coverage, 1.0),
        risk="medium: no benchmark backs the compute comparison (FP16 TFLOPS); memory peak "
        f"+{HEADROOM - 1:.0%} headroom",
        action=action,
        clock=inputs.clock,
    )


__all__ = ["KIND", "Pool", "candidate", "pools", "recommend_rightsizing"]
