"""Object-storage tiers and their list prices: what a GB-month and a GB read cost, per tier.

`data/storage_tiers.csv` holds each provider's tiers (S3 storage classes, Cloud Storage classes,
Azure access tiers) from hot (rank 0) to cold, with the minimum storage duration each charges for
and how soon a first byte can be read. `data/storage_prices.csv`, built offline by
`tools/build_storage_prices.py` (`data/SOURCES.md`), holds list prices per GB-month and per GB
retrieved by location: Google Cloud only, the one provider the reference price tables publish
storage for. A price it lacks is None (unpriced), never zero.

    >>> t = tier_of("Google Cloud", "nearline")
    >>> t.name, t.min_storage_days, [c.name for c in colder(t)]
    ('NEARLINE', 30, ['COLDLINE', 'ARCHIVE'])
    >>> p = list_price("gcp", "us-central1", "ARCHIVE")
    >>> p.per_gb_month, p.retrieval_per_gb
    (Decimal('0.0012'), Decimal('0.05'))
    >>> list_price("aws", "us-east-1", "GLACIER") is None
    True
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

# FOCUS ProviderName (and the inventories' provider) -> the catalogs' provider key
PROVIDERS = {"aws": "aws", "amazon web services": "aws", "google cloud": "gcp", "gcp": "gcp",
             "google": "gcp", "microsoft": "azure", "azure": "azure", "microsoft azure": "azure"}  # fmt: skip


@dataclass(frozen=True)
class Tier:
    """One storage tier of one provider."""

    provider: str  # aws, gcp, azure
    name: str  # as the provider writes it: STANDARD_IA, NEARLINE, Cool
    rank: int  # 0 is the hot tier; higher is colder
    min_storage_days: int  # an object deleted or moved out earlier is charged for these days
    first_byte: str  # how soon an object can be read: "milliseconds", else what a restore takes

    @property
    def needs_restore(self) -> bool:
        """Objects of this tier must be restored (hours) before they can be read."""
        return self.first_byte != "milliseconds"


@dataclass(frozen=True)
class StoragePrice:
    """A tier's list prices in one location."""

    provider: str
    location: str  # a region (us-central1), dual-region (NAM4) or multi-region (US)
    tier: str
    per_gb_month: Decimal
    retrieval_per_gb: Decimal | None  # None: the source publishes none (unpriced)
    as_of: str
    source: str  # key of the origin in data/SOURCES.md


def _rows(name: str) -> Iterator[dict[str, str]]:
    text = resources.files("costline.catalog").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))


def provider_key(name: str | None) -> str | None:
    """`AWS`, `Google Cloud`, `Microsoft` -> aws, gcp, azure; None for a provider not known."""
    return PROVIDERS.get((name or "").strip().lower())


@functools.cache
def _tiers() -> dict[tuple[str, str], Tier]:
    """(provider, upper-cased tier name or alias) -> tier."""
    out: dict[tuple[str, str], Tier] = {}
    for r in _rows("storage_tiers.csv"):
        t = Tier(r["provider"], r["tier"], int(r["rank"]), int(r["min_storage_days"]),
                 r["first_byte"])  # fmt: skip
        for name in (r["tier"], *r["aliases"].split()):
            out[(t.provider, name.upper())] = t
    return out


def tier_of(provider: str | None, storage_class: str | None) -> Tier | None:
    """The tier an inventory's storage class (or a bill's tier word) names, any case; None for a
    tier the catalog does not rank (S3 Intelligent-Tiering and One Zone-IA among them)."""
    key = provider_key(provider) or (provider or "")
    return _tiers().get((key, (storage_class or "").strip().upper()))


def hot_classes() -> list[str]:
    """Every provider's hot tier names and aliases, upper-cased (STANDARD, HOT, ...)."""
    return sorted({name for (_, name), t in _tiers().items() if t.rank == 0})


def colder(tier: Tier) -> list[Tier]:
    """The provider's tiers colder than `tier`, warmest first."""
    found = {t for t in _tiers().values() if t.provider == tier.provider and t.rank > tier.rank}
    return sorted(found, key=lambda t: t.rank)


@functools.cache
def _prices() -> dict[tuple[str, str, str], StoragePrice]:
    out = {}
    for r in _rows("storage_prices.csv"):
        p = StoragePrice(r["provider"], r["location"], r["tier"], Decimal(r["price_usd_per_gb_month"]),
                         Decimal(r["retrieval_usd_per_gb"]) if r["retrieval_usd_per_gb"] else None,
                         r["as_of"], r["source"])  # fmt: skip
        out[(p.provider, p.location.lower(), p.tier)] = p
    return out


def list_price(provider: str | None, location: str | None, tier: str) -> StoragePrice | None:
    """The catalog's list price of `tier` in `location` (any case), or None (unpriced)."""
    key = provider_key(provider) or (provider or "")
    return _prices().get((key, (location or "").lower(), tier))


@functools.cache
def catalog_version() -> str:
    """The newest publication date of the storage prices in the catalog."""
    return max(p.as_of for p in _prices().values())
