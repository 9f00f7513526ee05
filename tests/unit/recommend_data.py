"""Small organizations for the recommendation tests: bill lines, samples and workloads as tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.optimize.inputs import Inputs
from costline.sources.dcgm import GPU_SAMPLE_ARROW
from tests.unit.test_allocation import WORKLOAD_SCHEMA

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
END = T0 + dt.timedelta(days=1)
MONEY = pa.decimal128(38, 18)
LINES = pa.schema([
    ("ProviderName", pa.string()), ("ChargePeriodStart", pa.timestamp("us", tz="UTC")),
    ("ChargePeriodEnd", pa.timestamp("us", tz="UTC")), ("ChargeCategory", pa.string()),
    ("ChargeDescription", pa.string()), ("SkuId", pa.string()), ("RegionId", pa.string()),
    ("ResourceId", pa.string()), ("ResourceName", pa.string()), ("ServiceName", pa.string()),
    ("ServiceCategory", pa.string()), ("ConsumedQuantity", MONEY), ("ConsumedUnit", pa.string()),
    ("ListCost", MONEY), ("EffectiveCost", MONEY), ("BilledCost", MONEY),
    ("Tags", pa.map_(pa.string(), pa.string())), ("PricingCategory", pa.string()),
    ("CommitmentDiscountId", pa.string()), ("CommitmentDiscountName", pa.string()),
    ("CommitmentDiscountStatus", pa.string()),
])  # fmt: skip
WORKLOADS = pa.schema([*WORKLOAD_SCHEMA, ("capacity_type", pa.string()),
                       ("endpoint", pa.string()), ("gpus_requested", pa.float64())])  # fmt: skip


def line(host: str, instance: str, hour: int, cost: Decimal, provider: str = "AWS",
         region: str = "us-east-1") -> dict[str, Any]:  # fmt: skip
    """An hour of `instance` on `host`, billed `cost`, tagged team search."""
    return {
        "ProviderName": provider, "ChargePeriodStart": T0 + dt.timedelta(hours=hour),
        "ChargePeriodEnd": T0 + dt.timedelta(hours=hour + 1), "ChargeCategory": "Usage",
        "ChargeDescription": f"{instance} On Demand Linux", "SkuId": None, "RegionId": region,
        "ResourceId": host, "ServiceName": "Compute", "ServiceCategory": "Compute",
        "ConsumedQuantity": Decimal(1), "ConsumedUnit": "Hours", "ListCost": None,
        "EffectiveCost": cost, "BilledCost": cost, "Tags": [("team", "search")],
    }  # fmt: skip


def inputs(
    lines: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]] = (),
    workloads: Sequence[dict[str, Any]] = (),
    *,
    start: dt.datetime = T0,
    end: dt.datetime = END,
    **tables: ibis.Table,
) -> Inputs:
    """A recommendation run over these rows (missing columns are null)."""
    return Inputs(
        ibis.memtable(pa.Table.from_pylist(list(lines), schema=LINES)),
        ibis.memtable(pa.Table.from_pylist(list(samples), schema=GPU_SAMPLE_ARROW)),
        ibis.memtable(pa.Table.from_pylist(list(workloads), schema=WORKLOADS)),
        start, end, Rules(), FixedClock(end), **tables,  # type: ignore[arg-type]
    )  # fmt: skip
