"""Attribution rules from config (aliases, folding, inheritance, owners), cost layers, compliance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.compliance import compliance
from costline.attribution.rules import Rules, derive_lines
from costline.config import load_config

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
TAGS = pa.map_(pa.string(), pa.string())
SCHEMA = pa.schema(
    [
        ("ChargePeriodStart", pa.timestamp("us", tz="UTC")),
        ("ProviderName", pa.string()),
        ("SubAccountId", pa.string()),
        ("SubAccountName", pa.string()),
        ("ServiceCategory", pa.string()),
        ("ServiceName", pa.string()),
        ("ChargeDescription", pa.string()),
        ("SkuId", pa.string()),
        ("ResourceType", pa.string()),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("RegionId", pa.string()),
        ("Tags", TAGS),
        ("x_extra", TAGS),
        ("EffectiveCost", pa.decimal128(38, 18)),
    ]
)


def line(category: str, service: str, cost: str, tags: dict[str, str] | None = None, *,
         description: str = "", account: str = "111", resource: str = "r") -> dict[str, Any]:  # fmt: skip
    return {
        "ChargePeriodStart": T0,
        "ProviderName": "AWS",
        "SubAccountId": account,
        "SubAccountName": f"acct {account}",
        "ServiceCategory": category,
        "ServiceName": service,
        "ChargeDescription": description,
        "SkuId": "sku",
        "ResourceType": "Instance",
        "ResourceId": resource,
        "ResourceName": resource,
        "RegionId": "us-east-1",
        "Tags": list((tags or {}).items()),
        "x_extra": [],
        "EffectiveCost": Decimal(cost),
    }


def table(rows: list[dict[str, Any]]) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(rows, SCHEMA))


def rules_from(tmp_path: Path, text: str) -> Rules:
    path = tmp_path / "costline.yaml"
    path.write_text(text)
    return Rules.from_config(load_config(path))


def derived(rows: list[dict[str, Any]], rules: Rules | None = None) -> list[dict[str, Any]]:
    return list(derive_lines(table(rows), rules).to_pyarrow().to_pylist())


LAYERS = [
    (("Compute", "Amazon Elastic Compute Cloud", "$98.32 per On Demand Linux p5.48xlarge Instance Hour"), "gpu_compute"),
    (("Compute", "Amazon Elastic Compute Cloud", "$0.40 per On Demand Linux m7i.2xlarge Instance Hour"), "cpu_compute"),
    (("Compute", "Compute Engine", "a3-highgpu-8g running in us-central1"), "gpu_compute"),
    (("Compute", "Lambda On-Demand Cloud", "On-demand gpu_1x_gh200 instance hours"), "gpu_compute"),
    (("Compute", "Amazon Elastic Kubernetes Service", ""), "control_plane"),
    (("Storage", "Amazon Simple Storage Service", ""), "storage"),
    (("AI and Machine Learning", "Amazon Bedrock", ""), "tokens"),
    (("Networking", "AWS Data Transfer", ""), "network_egress"),
    (("Management and Governance", "AmazonCloudWatch", ""), "observability"),
    (("Analytics", "Amazon OpenSearch Service", ""), "vector_db"),
    (("Other", "Sales Tax", ""), "other"),
]  # fmt: skip


def test_cost_layers_follow_the_service_and_the_instance() -> None:
    rows = [
        line(category, service, "1", description=text) for (category, service, text), _ in LAYERS
    ]
    assert [r["cost_layer"] for r in derived(rows)] == [layer for _, layer in LAYERS]


def test_aliases_folding_inheritance_and_owners_from_config(tmp_path: Path) -> None:
    rules = rules_from(
        tmp_path,
        """
tags:
  required: [team, environment]
  aliases:
    team: [owner_team]
  account_defaults:
    "222": {team: Search, environment: prod}
owners:
  - name: fraud-oncall
    match: {team: fraud-detection}
""",
    )
    rows = [
        line(
            "Compute", "EC2", "1", {"owner_team": "Fraud Detection", "workload-type": "inference"}
        ),
        line("Compute", "EC2", "1", {}, account="222"),  # inherits the account's tags
        line("Compute", "EC2", "1", {"team": "web", "env": "dev"}, account="222"),  # its own win
        line("Compute", "EC2", "1", {}),
    ]
    got = [
        (r["team"], r["environment"], r["owner"], r["cost_domain"]) for r in derived(rows, rules)
    ]
    assert got == [
        ("fraud-detection", None, "fraud-oncall", "online_inference"),
        ("search", "prod", "search", None),
        ("web", "dev", "web", None),
        (None, None, None, None),
    ]
    unfolded = rules_from(tmp_path, "tags: {case_fold_values: false}\n")
    assert (
        derived([line("Compute", "EC2", "1", {"team": " Fraud Detection "})], unfolded)[0]["team"]
        == "Fraud Detection"
    )


def test_compliance_coverage_ownership_offenders_and_big_gpus_outside_production() -> None:
    rows = [
        line("Compute", "EC2", "60", {"team": "a", "project": "x", "env": "prod"}, resource="r1"),
        line("Compute", "EC2", "20", {"team": "a"}, resource="r2"),
        line("Storage", "S3", "15", {}, account="999", resource="r3"),
        line(
            "Compute",
            "EC2",
            "5",
            {"team": "b", "env": "dev"},
            resource="r4",
            description="$98.32 per On Demand Linux p5.48xlarge Instance Hour",
        ),
    ]
    report = compliance(table(rows), T0, T0 + dt.timedelta(days=1))
    coverage = {r["tag"]: r for r in report["coverage"]}
    assert coverage["team"]["cost_covered_pct"] == Decimal("85.00")
    assert coverage["team"]["resources_covered_pct"] == Decimal("75.00")
    assert coverage["project"]["cost_missing_usd"] == Decimal(40)
    assert report["ownership"][0]["with_owner_pct"] == Decimal("85.00")
    services = report["untagged_by_service"]
    assert [(r["ServiceName"], r["untagged_usd"]) for r in services] == [
        ("EC2", Decimal(25)),
        ("S3", Decimal(15)),
    ]
    assert report["untagged_by_account"][0]["SubAccountId"] == "111"
    [big] = report["large_gpu_instances_outside_production"]
    assert big["ResourceId"] == "r4" and big["cost_usd"] == Decimal(5)
