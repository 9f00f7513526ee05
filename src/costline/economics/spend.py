"""Spend aggregations: Ibis in, Ibis out, so the same code runs on DuckDB, Spark or a warehouse."""

from __future__ import annotations

from collections.abc import Sequence

import ibis


def spend_by_service_by_day(lines: ibis.Table) -> ibis.Table:
    """Billed and effective cost per UTC day, service and currency (the engine conformance query)."""
    return lines.group_by(
        day=lines.ChargePeriodStart.date(),
        service=lines.ServiceName,
        currency=lines.BillingCurrency,
    ).aggregate(
        rows=lines.count(),
        billed=lines.BilledCost.sum(),
        effective=lines.EffectiveCost.sum(),
    )


def spend_by(lines: ibis.Table, dimensions: Sequence[str | ibis.Value]) -> ibis.Table:
    """Billed, effective and list cost by any columns or expressions, largest billed first."""
    keys = [lines[d] if isinstance(d, str) else d for d in dimensions]
    return (
        lines.group_by(keys)
        .aggregate(
            rows=lines.count(),
            billed=lines.BilledCost.sum(),
            effective=lines.EffectiveCost.sum(),
            list=lines.ListCost.sum(),
        )
        .order_by(ibis.desc("billed"))
    )
