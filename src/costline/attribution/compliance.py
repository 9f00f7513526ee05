"""Tag compliance of a period's cost lines: what is tagged, what is owned, who the offenders are.

Every figure is an Ibis aggregation over `derive_lines` (so aliases, folding and inheritance count
as the configuration says); only the small results come back.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.rules import (
    LARGE_GPU_INSTANCE,
    PRODUCTION,
    Rules,
    bucket_of,
    cost_layer,
    derive_lines,
    instance_text,
)
from costline.money import MONEY_CONTEXT

DEFAULT_REQUIRED = ("team", "project", "environment")


def _pct(part: Decimal | None, whole: Decimal | None) -> Decimal:
    if not whole:
        return Decimal(0)
    return (Decimal(part or 0) / Decimal(whole) * 100).quantize(Decimal("0.01"))


def compliance(
    lines: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    rules: Rules | None = None,
    *,
    top: int = 10,
) -> dict[str, list[dict[str, Any]]]:
    """Sections of the compliance report (see `costline report compliance --help`)."""
    rules = rules or Rules()
    required = rules.required or DEFAULT_REQUIRED
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    d = derive_lines(period, rules)
    cost = d.EffectiveCost
    missing = ibis.or_(*[d[k].isnull() for k in required]) if required else ibis.literal(False)
    d = d.mutate(untagged=missing, resource=d.ResourceId)
    totals = d.aggregate(
        cost=cost.sum(), resources=d.resource.nunique(), owned=cost.sum(where=d.owner.notnull()),
        registry=cost.sum(where=d.owner.notnull() & (d.owner != d.team.fill_null(""))),
        **{f"cost_{k}": cost.sum(where=d[k].notnull()) for k in required},
        **{f"res_{k}": d.resource.nunique(where=d[k].notnull()) for k in required},
    ).to_pyarrow().to_pylist()[0]  # fmt: skip
    coverage = [
        {
            "tag": k,
            "cost_covered_pct": _pct(totals[f"cost_{k}"], totals["cost"]),
            "resources_covered_pct": _pct(
                Decimal(totals[f"res_{k}"] or 0), Decimal(totals["resources"] or 0)
            ),
            "cost_missing_usd": Decimal(totals["cost"] or 0) - Decimal(totals[f"cost_{k}"] or 0),
        }
        for k in required
    ]
    ownership = [
        {
            "with_owner_pct": _pct(totals["owned"], totals["cost"]),
            "owner_from_registry_pct": _pct(totals["registry"], totals["cost"]),
            "without_owner_usd": Decimal(totals["cost"] or 0) - Decimal(totals["owned"] or 0),
            "total_usd": totals["cost"],
        }
    ]

    def offenders(by: list[str]) -> list[dict[str, Any]]:
        u = d.filter(d.untagged)
        rows = (
            u.group_by(by)
            .aggregate(untagged_usd=u.EffectiveCost.sum(), lines=u.count())
            .order_by(ibis.desc("untagged_usd"))
            .limit(top)
        )
        return list(rows.to_pyarrow().to_pylist())

    accounts = (
        ["SubAccountId", "SubAccountName"] if "SubAccountName" in d.columns else ["SubAccountId"]
    )
    big = d.filter(
        (d.cost_layer == "gpu_compute")
        & ~d.environment.fill_null("").isin(list(PRODUCTION))
        & instance_text(d).re_search(LARGE_GPU_INSTANCE)
    )
    oversized = (
        big.group_by(["ResourceId", "ResourceName", "environment"])
        .aggregate(
            cost_usd=big.EffectiveCost.sum(), hours=big.count(), instance=big.SkuId.arbitrary()
        )
        .order_by(ibis.desc("cost_usd"))
        .limit(top)
        .to_pyarrow()
        .to_pylist()
    )
    return {
        "coverage": coverage,
        "ownership": ownership,
        "untagged_by_service": offenders(["ProviderName", "ServiceName"]),
        "untagged_by_account": offenders(["ProviderName", *accounts]),
        "large_gpu_instances_outside_production": list(oversized),
    }


def lifecycle_coverage(
    lines: ibis.Table,
    storage: ibis.Table,
    lifecycle: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    top: int = 10,
) -> dict[str, list[dict[str, Any]]]:
    """The share of the period's storage cost under an enabled lifecycle rule, and the buckets
    with the most cost outside one.

    A bucket's covered share: 1 with an enabled rule for the whole bucket; else the bytes under an
    enabled rule's prefix over the bucket's bytes, in its latest inventory snapshot before the
    period ends. Rules that also filter by object tag count for nothing (which objects carry the
    tag is not known); prefix rules without an inventory make the share unknown, counted as 0.
    """
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    period = period.mutate(bucket=bucket_of(period), layer=cost_layer(period))
    stored = period.filter(period.layer == "storage")
    cost_rows = (
        stored.group_by(["ProviderName", "bucket"])
        .aggregate(storage_usd=stored.EffectiveCost.sum())
        .to_pyarrow()
        .to_pylist()
    )
    rules = lifecycle.filter(lifecycle.rule_id.notnull() & lifecycle.enabled)
    useful = rules.filter(~rules.filtered_by_tag.fill_null(False))
    read = {r["bucket"] for r in lifecycle.select("bucket").distinct().to_pyarrow().to_pylist()}
    whole = {
        r["bucket"]
        for r in useful.filter(useful.prefix.fill_null("") == "")
        .select("bucket")
        .to_pyarrow()
        .to_pylist()
    }
    with_rules = {r["bucket"] for r in rules.select("bucket").distinct().to_pyarrow().to_pylist()}
    s = storage.filter(storage.snapshot_date < end.date())
    latest = s.group_by("bucket").aggregate(last=s.snapshot_date.max())
    s = s.join(latest, [s.bucket == latest.bucket, s.snapshot_date == latest["last"]])
    covered = s.semi_join(useful, [s.bucket == useful.bucket, s.key.startswith(useful.prefix)])
    all_bytes = dict(
        (r["bucket"], r["b"])
        for r in s.group_by("bucket").aggregate(b=s.size_bytes.sum()).to_pyarrow().to_pylist()
    )
    cov_bytes = dict(
        (r["bucket"], r["b"])
        for r in covered.group_by("bucket")
        .aggregate(b=covered.size_bytes.sum())
        .to_pyarrow()
        .to_pylist()
    )
    buckets = []
    for r in cost_rows:
        b, amount = r["bucket"], Decimal(r["storage_usd"] or 0)
        if b in whole:
            share, how = Decimal(1), "whole bucket"
        elif b in with_rules and all_bytes.get(b):
            share = Decimal(cov_bytes.get(b) or 0) / Decimal(all_bytes[b])
            how = "by prefix (inventory)"
        elif b in with_rules:
            share, how = Decimal(0), "unknown: prefix rules, no inventory"
        else:
            share, how = Decimal(0), "no rules" if b in read else "rules not read"
        under = MONEY_CONTEXT.multiply(amount, share).quantize(Decimal("1e-18"))
        buckets.append({"provider": r["ProviderName"], "bucket": b, "storage_usd": amount,
                        "under_rules_usd": under, "outside_rules_usd": amount - under,
                        "under_rules_pct": _pct(under, amount), "coverage": how})  # fmt: skip
    total = sum((b["storage_usd"] for b in buckets), Decimal(0))
    under_total = sum((b["under_rules_usd"] for b in buckets), Decimal(0))
    summary = [{"storage_usd": total, "under_rules_usd": under_total,
                "under_rules_pct": _pct(under_total, total), "buckets": len(buckets),
                "buckets_with_rules": sum(1 for b in buckets if b["bucket"] in with_rules)}]  # fmt: skip
    worst = sorted(buckets, key=lambda b: -b["outside_rules_usd"])
    return {
        "storage_lifecycle": summary,
        "storage_outside_lifecycle": [b for b in worst if b["outside_rules_usd"] > 0][:top],
    }
