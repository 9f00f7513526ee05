"""The dated GPU price catalog: what a GPU-hour costs by provider, region, instance type and capacity.

Built offline by `tools/build_gpu_prices.py` from public price tables (`data/SOURCES.md`) into
`data/gpu_prices.csv`, with the GPUs of each instance type in `data/gpu_instances.csv`. Capacity is
`on_demand`, `spot`, `commit_1y` or `commit_3y` (a committed-use price per hour). A price a source
does not publish has no row, and `price` returns None for it: unpriced, never zero.

    >>> p = price("aws", "p5.48xlarge", "us-east-1")
    >>> p.price_usd_per_hour, p.per_gpu_hour, p.gpu.gpu_model
    (Decimal('55.04'), Decimal('6.88'), 'H100-80GB')
    >>> price("aws", "p5.48xlarge", "us-east-1", "spot") is None
    True
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

CAPACITIES = ("on_demand", "spot", "commit_1y", "commit_3y")


@dataclass(frozen=True)
class GpuInstance:
    """An instance type and the GPUs it carries."""

    provider: str  # aws, azure, gcp
    instance_type: str
    gpu_model: str  # e.g. "H100-80GB": the chip and its memory
    gpu_count: int
    gpu_memory_gb: int  # per GPU

    @property
    def chip(self) -> str:
        """The GPU without its memory size: "H100" for "H100-80GB"."""
        return self.gpu_model.split("-")[0]


@dataclass(frozen=True)
class GpuPrice:
    """One instance type's price per hour in one region, for one capacity type."""

    gpu: GpuInstance
    region: str
    capacity: str
    price_usd_per_hour: Decimal
    as_of: str  # the date the source's prices were published (YYYY-MM-DD)
    source: str  # key of the origin in data/SOURCES.md

    @property
    def per_gpu_hour(self) -> Decimal:
        return self.price_usd_per_hour / self.gpu.gpu_count


def _rows(name: str) -> Iterator[dict[str, str]]:
    text = resources.files("costline.catalog").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))


@functools.cache
def catalog_version() -> str:
    """The newest publication date of the prices in the catalog (its version)."""
    return max(p.as_of for p in gpu_prices())


@functools.cache
def gpu_instances() -> dict[tuple[str, str], GpuInstance]:
    """(provider, instance type) -> the instance type's GPUs."""
    return {
        (r["provider"], r["instance_type"]): GpuInstance(
            r["provider"], r["instance_type"], r["gpu_model"], int(r["gpu_count"]),
            int(r["gpu_memory_gb"]),
        )
        for r in _rows("gpu_instances.csv")
    }  # fmt: skip


@functools.cache
def fp16_tflops() -> dict[str, Decimal]:
    """GPU model -> its dense FP16/BF16 Tensor Core TFLOPS (datasheet figures, `gpu_models.csv`);
    models without a figure are absent: their compute cannot be compared."""
    return {r["gpu_model"]: Decimal(r["fp16_tflops"]) for r in _rows("gpu_models.csv")}


@functools.cache
def gpu_prices() -> tuple[GpuPrice, ...]:
    """Every price of the catalog, in file order (provider, region, instance type, capacity)."""
    instances = gpu_instances()
    return tuple(
        GpuPrice(instances[(r["provider"], r["instance_type"])], r["region"], r["capacity"],
                 Decimal(r["price_usd_per_hour"]), r["as_of"], r["source"])
        for r in _rows("gpu_prices.csv")
    )  # fmt: skip


@functools.cache
def _index() -> dict[tuple[str, str, str, str], GpuPrice]:
    return {(p.gpu.provider, p.gpu.instance_type, p.region, p.capacity): p for p in gpu_prices()}


def price(
    provider: str, instance_type: str, region: str, capacity: str = "on_demand"
) -> GpuPrice | None:
    """The catalog's price, or None when it has none (unpriced)."""
    if capacity not in CAPACITIES:
        raise ValueError(f"capacity {capacity!r}: choose from {', '.join(CAPACITIES)}")
    return _index().get((provider, instance_type, region, capacity))


def matching(
    gpu: str | None = None,
    *,
    provider: str | None = None,
    region: str | None = None,
    capacity: str | None = None,
) -> list[GpuPrice]:
    """Prices whose GPU model starts with `gpu` (case-insensitive: "h100" matches H100-80GB and
    H100-94GB), cheapest GPU-hour first."""
    want = (gpu or "").upper()
    found = [
        p
        for p in gpu_prices()
        if p.gpu.gpu_model.upper().startswith(want)
        and (provider is None or p.gpu.provider == provider)
        and (region is None or p.region == region)
        and (capacity is None or p.capacity == capacity)
    ]
    return sorted(found, key=lambda p: (p.per_gpu_hour, p.gpu.provider, p.region,
                                        p.gpu.instance_type, p.capacity))  # fmt: skip
