"""Build `src/costline/catalog/data/gpu_prices.csv`, the dated GPU price catalog, from public tables.

    uv run python tools/build_gpu_prices.py --data ../shared/data/prices

Reads, at build time only (the product reads the built file, never these):
- `aws-azure-ondemand/aws_ondemand_linux_prices_us-east-1.csv` (Karpenter AWS provider):
  on-demand Linux prices, us-east-1;
- `aws-azure-ondemand/azure_ondemand_linux_prices_by_region.csv` (Karpenter Azure provider):
  on-demand Linux prices, every region;
- `gcp/gcp_gpu_machine_price_history.csv.gz` (Cyclenerd's Google Cloud price list, every
  version): its newest version's on-demand and Spot prices per hour, and the 1-year and 3-year
  committed-use prices, published per month of 730 hours, divided by 730.

Only the instance types of `gpu_instances.csv` are kept. Prices are copied as text; the committed
prices per hour are rounded to 9 decimals (the division is not exact). No row is written for a
price a source does not publish (AWS and Azure publish no Spot or committed prices here): the
catalog leaves those unpriced.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import catalog_csv  # tools/catalog_csv.py, beside this script

PACKAGE_DATA = catalog_csv.PACKAGE_DATA
HOURS_PER_MONTH = Decimal(730)  # the price list's month
NINE = Decimal("0.000000001")
AS_OF = {"karpenter-aws": "2026-07-20", "karpenter-azure": "2026-06-18"}
HEADER = (
    "provider",
    "region",
    "instance_type",
    "capacity",
    "price_usd_per_hour",
    "as_of",
    "source",
)


def _instances() -> dict[tuple[str, str], dict[str, str]]:
    text = (PACKAGE_DATA / "gpu_instances.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {(r["provider"], r["instance_type"]): r for r in rows}


def _karpenter(path: Path, provider: str, key: str, kept: set[str]) -> Iterator[tuple[str, ...]]:
    with path.open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            name = r.get("instance_type") or r["sku"]
            if name in kept and Decimal(r["price_usd_per_hour"]) > 0:
                yield (provider, r["region"], name, "on_demand", r["price_usd_per_hour"],
                       AS_OF[key], key)  # fmt: skip


def _gcp(path: Path, kept: set[str]) -> Iterator[tuple[str, ...]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    newest = max(r["snapshot_date"] for r in rows)
    for r in rows:
        if r["snapshot_date"] != newest or r["machine_type"] not in kept:
            continue
        base = ("gcp", r["region"], r["machine_type"])
        for capacity, hourly in (
            ("on_demand", r["hour_ondemand_usd"]),
            ("spot", r["hour_spot_usd"]),
            ("commit_1y", _per_hour(r["month_1y_cud_usd"])),
            ("commit_3y", _per_hour(r["month_3y_cud_usd"])),
        ):
            if hourly and Decimal(hourly) > 0:
                yield (*base, capacity, hourly, newest, "cyclenerd-gcp")


def _per_hour(monthly: str) -> str:
    return str((Decimal(monthly) / HOURS_PER_MONTH).quantize(NINE)) if monthly else ""


def build(data: Path) -> list[tuple[str, ...]]:
    instances = _instances()
    kept = {p: {t for (q, t) in instances if q == p} for p in ("aws", "azure", "gcp")}
    od = data / "aws-azure-ondemand"
    rows = [
        *_karpenter(od / "aws_ondemand_linux_prices_us-east-1.csv", "aws", "karpenter-aws",
                    kept["aws"]),
        *_karpenter(od / "azure_ondemand_linux_prices_by_region.csv", "azure", "karpenter-azure",
                    kept["azure"]),
        *_gcp(data / "gcp/gcp_gpu_machine_price_history.csv.gz", kept["gcp"]),
    ]  # fmt: skip
    return sorted(set(rows))


if __name__ == "__main__":
    catalog_csv.main(
        __doc__ or "", "gpu_prices.csv", "GPU price catalog", HEADER, build, "build_gpu_prices.py"
    )
