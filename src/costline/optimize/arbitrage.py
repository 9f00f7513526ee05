"""GPU arbitrage: portable batch and training work on a GPU that costs less elsewhere.

The work is the interruption-tolerant kinds of `capacity.TOLERANT` (training, sweeps, fine-tunes,
batch jobs, evaluations, embeddings): it is not pinned to its users' region as an endpoint is.
Its GPU cost per pool is the allocation's (GPU-time held). The same GPU model (chip and memory)
is looked up in the catalog in every region and provider, on-demand, per GPU-hour; the cheapest
that is at least `MIN_GAIN` cheaper than the pool's own catalog price is proposed.

Moving the work moves its data: the datasets and checkpoints its team keeps in the pool's region
(the newest storage inventory's bytes of the team's buckets there, `storage_objects`) are copied
once at `EGRESS_USD_PER_GB` (internet egress list price, the upper bound of a cross-region or
cross-cloud copy) and spread over `AMORTIZE_MONTHS`. The saving: held GPU-hours x the price gap
per GPU-hour, at the organization's discount on its current price, less that transfer; low: at
list prices (no discount carried over) less the transfer in one month; high: without transfer.

When no inventory says how much data the team keeps in the region, the transfer is **unpriced**,
not free: the P50 is the GPU price gap before transfer, the low end is zero (copying the data may
cost the whole gain), the risk and the evidence say so, and the confidence drops a step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from costline.catalog.gpu_prices import GpuPrice, matching, price
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.capacity import held_by_tolerant
from costline.optimize.inputs import Inputs, pool_name, team_of
from costline.optimize.recommend import Savings, recommendation

KIND = "gpu_arbitrage"
MIN_GAIN = Decimal("0.15")  # the playbooks' 15-25%: less is not worth a move
EGRESS_USD_PER_GB = Decimal("0.09")
AMORTIZE_MONTHS = 3
GB = Decimal(10) ** 9


def recommend_arbitrage(inputs: Inputs) -> list[Finding]:
    """One recommendation per pool whose portable work is cheaper on the same GPU elsewhere."""
    pooled = inputs.pooled(held_by_tolerant(inputs.allocation.table(), inputs.workloads))
    stored = _stored_gb(inputs)
    return inputs.kept(_finding(k, m, stored, inputs) for k, m in pooled.items())


def _stored_gb(inputs: Inputs) -> dict[tuple[str, str], Decimal]:
    """(team, region) -> GB in the newest inventory snapshot of the window; a (team, region)
    absent is one whose data size is unknown."""
    s = inputs.storage
    if s is None:
        return {}
    s = s.filter(s.snapshot_date < inputs.end.date(), s.snapshot_date >= inputs.start.date())
    newest = s.snapshot_date.max().as_scalar()
    s = s.filter(s.snapshot_date == newest)
    rows = fetch.rows(s.group_by(["team", "region"]).aggregate(size=s.size_bytes.sum()))
    return {(r["team"], r["region"]): Decimal(r["size"] or 0) / GB for r in rows if r["team"]}


def cheapest_elsewhere(now: GpuPrice) -> GpuPrice | None:
    """The same GPU model on-demand elsewhere, cheapest per GPU-hour, if `MIN_GAIN` cheaper."""
    found = [
        p
        for p in matching(now.gpu.gpu_model, capacity="on_demand")
        if p.gpu.gpu_model == now.gpu.gpu_model
        and (p.region, p.gpu.provider) != (now.region, now.gpu.provider)
    ]
    if not found:
        return None
    best = found[0]
    return best if best.per_gpu_hour <= now.per_gpu_hour * (1 - MIN_GAIN) else None


def _finding(
    key: tuple[str, str, str], members: list[dict[str, Any]],
    stored: dict[tuple[str, str], Decimal], inputs: Inputs,
) -> Finding | None:  # fmt: skip
    provider, region, instance_type = key
    now = price(provider, instance_type, region)
    if now is None:
        return None  # unpriced here: nothing to compare with
    best = cheapest_elsewhere(now)
    if best is None:
        return None
    gpu_hours = sum((Decimal(repr(float(m["gpu_hours"]))) for m in members), Decimal(0))
    held = sum((Decimal(m["usd"]) for m in members), Decimal(0))
    paid_per_gpu_hour = held / gpu_hours if gpu_hours else Decimal(0)
    ratio = paid_per_gpu_hour / now.per_gpu_hour
    team = team_of(members)
    data_gb = stored.get((team or "", region))
    transfer = data_gb * EGRESS_USD_PER_GB if data_gb is not None else None
    per_month = inputs.per_month
    gap = (paid_per_gpu_hour - best.per_gpu_hour * ratio) * gpu_hours * per_month
    if transfer is None:  # data size unknown: transfer unpriced, never free
        p50, low = gap, Decimal(0)
    else:
        p50 = gap - transfer / AMORTIZE_MONTHS
        low = (paid_per_gpu_hour - best.per_gpu_hour) * gpu_hours * per_month - transfer
    if p50 <= 0:
        return None
    where = f"{best.gpu.provider} {best.region} ({best.gpu.instance_type})"
    name = pool_name(key)
    kinds = sorted({str(m["wkind"]) for m in members})
    return recommendation(
        kind=KIND,
        scope={"pool": name, **({"team": team} if team else {})},
        title=f"{name}: {now.gpu.gpu_model} costs {1 - best.per_gpu_hour / now.per_gpu_hour:.0%} "
        f"less per GPU-hour in {best.gpu.provider} {best.region}",
        summary=(
            f"{float(gpu_hours):,.0f} GPU-hours of portable work ({', '.join(kinds)}) ran on "
            f"{now.gpu.gpu_model} at ${now.per_gpu_hour:,.2f}/GPU-hour list in {region}; "
            f"{where} lists it at ${best.per_gpu_hour:,.2f}. " + _copying(data_gb, transfer)
        ),
        owner=inputs.owner(team),
        current_monthly=held * per_month,
        savings=Savings(p50, min(low, p50), max(gap, p50)),
        method="same GPU model, cheapest on-demand GPU-hour in the catalog, less data transfer",
        inputs={
            "gpu_model": now.gpu.gpu_model,
            "gpu_hours": gpu_hours.quantize(Decimal("0.1")),
            "current_usd_per_gpu_hour": now.per_gpu_hour,
            "target": where,
            "target_usd_per_gpu_hour": best.per_gpu_hour,
            "data_gb": data_gb if data_gb is not None else "unknown",
            "egress_usd_per_gb": EGRESS_USD_PER_GB,
            "transfer_usd": transfer if transfer is not None else "unpriced",
            "amortize_months": AMORTIZE_MONTHS,
            "catalog_as_of": best.as_of,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="medium: GPU availability and quotas in the target differ; data residency rules "
        f"may forbid the move; {_transfer_risk(transfer)}",
        action=f"Run the {', '.join(kinds)} work of {name} on {best.gpu.instance_type} in "
        f"{best.gpu.provider} {best.region}, after copying its data there once.",
        clock=inputs.clock,
        unpriced=("data transfer",) if transfer is None else (),
    )


def _transfer_risk(transfer: Decimal | None) -> str:
    if transfer is None:
        return ("transfer unpriced: no storage inventory says how much data the work reads, so "
                "the saving is before copying it and the low end is zero")  # fmt: skip
    return "transfer priced at internet egress list"


def _copying(data_gb: Decimal | None, transfer: Decimal | None) -> str:
    if data_gb is None or transfer is None:
        return "How much data it reads is unknown (no storage inventory): moving it is unpriced."
    return f"Copying its {float(data_gb):,.0f} GB of data costs about ${transfer:,.0f} once."
