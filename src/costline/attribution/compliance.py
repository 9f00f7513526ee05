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
    derive_lines,
    instance_text,
)

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
