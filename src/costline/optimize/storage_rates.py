"""What a GB-month of each storage tier costs, and where each bucket is: for storage tiering.

A tier's price in a location is, in this order: the catalog's **list** price
(`catalog.storage_prices`: Cloud Storage, from the public price list), else the organization's
own **effective** rate from its bills (the window's usage lines of that tier, stored cost over
GB-months, in that location, else in any location of the provider), else **unpriced** (None),
never zero. A tier's retrieval fee per GB is found the same way (retrieval lines, cost over GB).
Every price says which it is (`source`). A bucket's location and team are its bill lines'
(`RegionId`, the derived team), the most common of the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import ibis

from costline.attribution.rules import Rules, bucket_of, derive_lines
from costline.attribution.storage import line_tier
from costline.catalog.storage_prices import Tier, list_price, provider_key
from costline.ledger import fetch

ANY = "*"  # the provider's rate over every location
RATE = Decimal("0.000000001")  # a rate from the bill, to a billionth of a dollar


@dataclass(frozen=True)
class TierPrice:
    """A tier's price per GB-month and per GB retrieved where the data is, and its origin."""

    tier: Tier
    per_gb_month: Decimal
    retrieval_per_gb: Decimal | None  # None: unpriced
    source: str  # "list: <source> <date>" or "bill: ..."


@dataclass(frozen=True)
class BucketFacts:
    location: str | None
    team: str | None


@dataclass(frozen=True)
class StorageRates:
    """The bill's effective rates, and the buckets' facts, of one window."""

    stored: dict[tuple[str, str, str], Decimal]  # (provider, location or ANY, tier) -> $/GB-month
    retrieved: dict[tuple[str, str, str], Decimal]  # ... -> $/GB read
    buckets: dict[str, BucketFacts]

    def price(self, provider: str | None, location: str | None, tier: Tier) -> TierPrice | None:
        """`tier`'s price in `location` (see the module), or None: unpriced."""
        listed = list_price(provider, location, tier.name)
        if listed is not None:
            return TierPrice(tier, listed.per_gb_month, listed.retrieval_per_gb,
                             f"list: {listed.source} {listed.as_of}")  # fmt: skip
        key = provider_key(provider) or ""
        for where in ((location or "").lower(), ANY):
            rate = self.stored.get((key, where, tier.name))
            if rate is not None:
                read = self.retrieved.get((key, where, tier.name),
                                          self.retrieved.get((key, ANY, tier.name)))  # fmt: skip
                if read is None and tier.rank == 0:
                    read = Decimal(0)  # a hot tier charges no retrieval
                scope = f"in {location}" if where != ANY else "over all its locations"
                return TierPrice(tier, rate, read,
                                 f"bill: the organization's effective {tier.name} rate {scope}")  # fmt: skip
        return None


def storage_rates(
    lines: ibis.Table, rules: Rules, start: dt.datetime, end: dt.datetime,
    buckets: Sequence[str],
) -> StorageRates:  # fmt: skip
    """The window's effective storage rates per tier, and the location and team of `buckets`
    (three engine queries)."""
    w = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end,
                     lines.ChargeCategory.fill_null("Usage") == "Usage")  # fmt: skip
    t = line_tier(w)
    t = t.filter(t.tier.notnull(), t.meters.notnull(), t.ConsumedQuantity > 0)
    t = t.mutate(where=t.RegionId.lower().fill_null(""))
    stored: dict[tuple[str, str, str], Decimal] = {}
    retrieved: dict[tuple[str, str, str], Decimal] = {}
    for grouped in (["where"], []):
        g = t.group_by(["tier_provider", "tier", "meters", *grouped]).aggregate(
            cost=t.EffectiveCost.sum(), qty=t.ConsumedQuantity.sum()
        )
        for r in fetch.rows(g):
            if r["cost"] is None or not r["qty"]:
                continue
            into = stored if r["meters"] == "stored" else retrieved
            rate = (r["cost"] / r["qty"]).quantize(RATE)
            into[(r["tier_provider"], r.get("where", ANY), r["tier"])] = rate
    return StorageRates(stored, retrieved, _buckets(w, rules, buckets))


def _buckets(lines: ibis.Table, rules: Rules, buckets: Sequence[str]) -> dict[str, BucketFacts]:
    if not buckets:
        return {}
    mine = lines.filter(bucket_of(lines).isin(list(buckets)))
    d = derive_lines(mine, rules)
    d = d.mutate(bucket=bucket_of(d))
    g = d.group_by("bucket").aggregate(location=d.RegionId.mode(), team=d.team.mode())
    return {r["bucket"]: BucketFacts(r["location"], r["team"]) for r in fetch.rows(g)}
