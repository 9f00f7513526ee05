"""The GPU price catalog (issue 16, point 1): dated, offline, unpriced never zero; rates paid."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa
import pytest

from costline.attribution.instances import gpu_lines
from costline.catalog.gpu_prices import (
    CAPACITIES,
    catalog_version,
    gpu_instances,
    gpu_prices,
    matching,
    price,
)
from costline.optimize.rates import effective_rates
from tests.helpers import run_costline
from tests.unit.recommend_data import LINES

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def test_the_catalog_is_dated_and_prices_every_gpu_instance_it_lists() -> None:
    assert catalog_version() == "2026-07-30"
    priced = {(p.gpu.provider, p.gpu.instance_type) for p in gpu_prices()}
    assert set(gpu_instances()) == priced
    assert all(p.price_usd_per_hour > 0 for p in gpu_prices())
    assert {p.capacity for p in gpu_prices()} == set(CAPACITIES)


def test_prices_per_gpu_hour_and_capacity_types() -> None:
    p5 = price("aws", "p5.48xlarge", "us-east-1")
    assert p5 is not None and p5.per_gpu_hour == Decimal("6.88") and p5.source == "karpenter-aws"
    # AWS publishes no Spot price in the tables: unpriced, not zero.
    assert price("aws", "p5.48xlarge", "us-east-1", "spot") is None
    assert price("aws", "p5.48xlarge", "mars-1") is None
    gcp = {c: price("gcp", "a3-highgpu-8g", "us-central1", c) for c in CAPACITIES}
    rates = {c: p.price_usd_per_hour for c, p in gcp.items() if p is not None}
    assert rates.keys() == set(CAPACITIES)
    assert rates["commit_3y"] < rates["commit_1y"] < rates["on_demand"]
    assert rates["spot"] < rates["on_demand"]
    # Committed-use prices are published per 730-hour month.
    assert rates["commit_1y"] == Decimal("61.383672143")  # 44,810.08066464 a month / 730
    with pytest.raises(ValueError, match="capacity"):
        price("aws", "p5.48xlarge", "us-east-1", "reserved")


def test_matching_normalizes_across_providers_cheapest_first() -> None:
    found = matching("h100", capacity="on_demand")
    assert {p.gpu.gpu_model for p in found} == {"H100-80GB", "H100-94GB"}
    assert {p.gpu.provider for p in found} == {"aws", "azure", "gcp"}
    per_gpu = [p.per_gpu_hour for p in found]
    assert per_gpu == sorted(per_gpu)


def _line(text: str, provider: str, region: str, hours: str, effective: str,
          listed: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "ProviderName": provider, "ChargePeriodStart": T0, "ChargePeriodEnd": T0,
        "ChargeCategory": "Usage", "ChargeDescription": text, "SkuId": None, "RegionId": region,
        "ResourceId": f"r-{text}", "ServiceName": "Compute", "ServiceCategory": "Compute",
        "ConsumedQuantity": Decimal(hours), "ConsumedUnit": "Hours",
        "ListCost": None if listed is None else Decimal(listed),
        "EffectiveCost": Decimal(effective), "BilledCost": Decimal(effective), "Tags": [],
    }  # fmt: skip


def _lines() -> ibis.Table:
    rows = [
        _line("p5.48xlarge On Demand Linux", "AWS", "us-east-1", "10", "440.32", "550.40"),
        _line("p5.48xlarge On Demand Linux", "AWS", "us-east-1", "10", "440.32", "550.40"),
        _line("g2-standard-48 VM running", "Google Cloud", "us-central1", "4", "16", None),
        _line("nvidia gpu_3x_nothing", "Other", "x-1", "5", "50", None),  # not catalogued
    ]
    return ibis.memtable(pa.Table.from_pylist(rows, schema=LINES))


def test_a_line_is_the_longest_instance_type_its_text_names() -> None:
    g = gpu_lines(_lines()).execute()
    types = dict(zip(g.ChargeDescription, g.instance_type, strict=True))
    # "g2-standard-4" is inside "g2-standard-48": the longer name wins.
    assert types["g2-standard-48 VM running"] == "g2-standard-48"
    assert types["p5.48xlarge On Demand Linux"] == "p5.48xlarge"
    assert types["nvidia gpu_3x_nothing"] is None


def test_effective_rates_learned_from_the_bills() -> None:
    end = T0 + dt.timedelta(days=1)
    rates = {r.instance_type: r for r in effective_rates(_lines(), T0, end)}
    assert set(rates) == {"p5.48xlarge", "g2-standard-48"}  # the uncatalogued line is left out
    p5 = rates["p5.48xlarge"]
    assert (p5.hours, p5.per_hour, p5.per_gpu_hour) == (20, Decimal("44.032"), Decimal("5.504"))
    assert p5.list_cost == Decimal("1100.80")
    assert p5.discount_vs_catalog == Decimal("0.2")  # 44.032 against the catalog's 55.04
    g2 = rates["g2-standard-48"]
    assert (g2.gpus, g2.per_gpu_hour, g2.list_cost) == (4, Decimal(1), None)
    assert g2.on_demand is not None and g2.discount_vs_catalog is not None


def test_prices_command_lists_cheapest_first_and_rejects_what_it_does_not_know() -> None:
    done = run_costline("prices", "--gpu", "L4", "--provider", "gcp", "--capacity", "spot",
                        "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows and {r["gpu"] for r in rows} == {"L4-24GB"}
    assert {r["capacity"] for r in rows} == {"spot"}
    assert [Decimal(r["usd_per_gpu_hour"]) for r in rows] == sorted(
        Decimal(r["usd_per_gpu_hour"]) for r in rows
    )
    bad = run_costline("prices", "--gpu", "Z99")
    assert bad.returncode == 2 and "no catalogued price" in bad.stderr
    bad = run_costline("prices", "--capacity", "reserved")
    assert bad.returncode == 2 and "on_demand" in bad.stderr
