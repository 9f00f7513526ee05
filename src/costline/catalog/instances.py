"""On-demand list prices of cloud instances (GPU types and a few CPU types), USD per hour, by region.

The rows are copied from public price tables (see `data/SOURCES.md`), except the GPU-cloud rows of
`data/gpu_cloud_prices_approx.csv`, which are hand-typed approximations and say so in `source`. An
instance that is not in the catalogue is unpriced (`None`), never zero.

    >>> from costline.catalog.instances import instance_price
    >>> instance_price("aws", "p5.48xlarge", "us-east-1").price_usd_per_hour
    Decimal('55.04')
    >>> instance_price("aws", "p5.48xlarge", "mars-north-1") is None
    True
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

DATA_FILES = ("instance_prices.csv", "gpu_cloud_prices_approx.csv")
ANY_REGION = "*"
APPROXIMATE_SUFFIX = "-approx"


@dataclass(frozen=True)
class InstancePrice:
    """One instance type's on-demand (pay-as-you-go, Linux) list price in one region."""

    provider: str  # aws, azure, gcp, lambda
    region: str  # the provider's region id, or "*" when one price holds in every region
    instance_type: str
    gpu_model: str | None  # e.g. "H100-80GB"; None for a CPU-only type
    gpu_count: int
    price_usd_per_hour: Decimal
    source: str  # key of the origin in data/SOURCES.md

    @property
    def approximate(self) -> bool:
        """True for hand-typed figures from a price page rather than a copied price table."""
        return self.source.endswith(APPROXIMATE_SUFFIX)

    @property
    def price_per_gpu_hour(self) -> Decimal | None:
        """The instance price divided by its GPUs; None for CPU-only types."""
        if not self.gpu_count:
            return None
        return self.price_usd_per_hour / self.gpu_count


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("costline.catalog").joinpath(f"data/{name}").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


@functools.cache
def instance_prices() -> tuple[InstancePrice, ...]:
    """Every catalogued price, in file order."""
    out: list[InstancePrice] = []
    for name in DATA_FILES:
        for r in _rows(name):
            out.append(
                InstancePrice(
                    provider=r["provider"],
                    region=r["region"],
                    instance_type=r["instance_type"],
                    gpu_model=r["gpu_model"] or None,
                    gpu_count=int(r["gpu_count"]),
                    price_usd_per_hour=Decimal(r["price_usd_per_hour"]),
                    source=r["source"],
                )
            )
    return tuple(out)


@functools.cache
def _index() -> dict[tuple[str, str, str], InstancePrice]:
    return {(p.provider, p.instance_type, p.region): p for p in instance_prices()}


def instance_price(provider: str, instance_type: str, region: str) -> InstancePrice | None:
    """The list price of `instance_type` in `region`, or None when the catalogue has none."""
    index = _index()
    found = index.get((provider, instance_type, region))
    if found is None:
        found = index.get((provider, instance_type, ANY_REGION))
    return found
