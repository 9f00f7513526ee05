"""What the demo organization runs, provider by provider: the resources behind its bills.

Counts of instances, pool sizes and metered volumes are multiplied by `scale`. Identifiers are derived
from names by hashing, so they are stable across seeds and runs.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from costline.catalog.instances import InstancePrice, instance_price
from costline.demo.org import (
    CENTRAL_TEAM,
    Account,
    ChargeKind,
    Meter,
    Owner,
    RateMeter,
    Resource,
    Service,
    SubAccount,
    TagStyle,
    render_tags,
)
from costline.demo.rates import RATES
from costline.demo.usage import Activity, Pool, Slot, Traits, Volume


def stable_hex(key: str, length: int) -> str:
    """`length` hex digits derived from `key`: the same on every run and machine."""
    return hashlib.sha256(key.encode()).hexdigest()[:length]


def stable_guid(key: str) -> str:
    return str(uuid.UUID(hex=stable_hex(key, 32)))


def catalogued(provider: str, instance_type: str, region: str) -> InstancePrice:
    price = instance_price(provider, instance_type, region)
    if price is None:
        raise ValueError(f"no catalogue price for {provider} {instance_type} in {region}")
    return price


# Owners the fleets share (team, project, model, environment, workload type, domain, layer).
def owner(
    team: str,
    project: str,
    model: str | None,
    workload: str,
    domain: str,
    layer: str,
    env: str = "prod",
) -> Owner:
    return Owner(team, project, model, env, workload, domain, layer)


PLATFORM_CPU = owner(
    "ml-platform", "ml-platform", None, "platform", "shared_platform", "cpu_compute"
)
PLATFORM_CONTROL = owner(
    "ml-platform", "ml-platform", None, "platform", "shared_platform", "control_plane"
)
PLATFORM_OBS = owner(
    "ml-platform", "ml-platform", None, "platform", "shared_platform", "observability"
)
PLATFORM_STORAGE = owner(
    "ml-platform", "model-registry", None, "platform", "shared_platform", "storage"
)
SEARCH_VECTORS = owner(
    "search", "semantic-search", None, "vector-db", "shared_platform", "vector_db"
)
CENTRAL = owner(CENTRAL_TEAM, "commitments", None, "billing", "shared_platform", "other")


@dataclass
class FleetBuilder:
    """Collects one provider's resources; `count` applies the scale to instance counts."""

    account: Account
    scale: float
    resources: list[Resource] = field(default_factory=list)

    def count(self, n: int) -> int:
        return max(1, int(n * self.scale + 0.5))

    def pool(self, name: str, min_count: int, max_count: int) -> Pool:
        return Pool(name, self.count(min_count), max(self.count(min_count), self.count(max_count)))

    def volume(self, rate_key: str, per_day: str, *, scaled: bool = True) -> RateMeter:
        """A metered volume; `scaled=False` for fixed fees (a control plane bills 24 hours a day)."""
        quantity = Decimal(per_day) * (Decimal(repr(self.scale)) if scaled else 1)
        return RateMeter(RATES[rate_key], quantity)

    def add(
        self,
        key: str,
        *,
        sub: SubAccount,
        rid: str | None,
        name: str | None,
        rtype: str | None,
        region: str | None,
        service: Service,
        meters: tuple[Meter, ...],
        usage: Activity | Volume,
        who: Owner,
        tagged: bool = True,
        style: TagStyle | None = None,
        commitment: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        kind: ChargeKind = "usage",
        traits: Traits | None = None,
    ) -> Resource:
        tags = render_tags(style or self.account.tag_style, who, tagged=tagged, name=name)
        resource = Resource(
            key=f"{self.account.provider}/{key}",
            account=self.account,
            sub_account=sub,
            resource_id=rid,
            name=name,
            resource_type=rtype,
            region=region,
            service=service,
            meters=meters,
            usage=usage,
            owner=who,
            tags=tags,
            commitment=commitment,
            extra=extra,
            kind=kind,
            traits=traits,
        )
        self.resources.append(resource)
        return resource


def slots(pool: Pool) -> list[tuple[str, Slot]]:
    """One (instance name, activity) per possible instance of an autoscaled pool."""
    return [(f"{pool.name}-{i}", Slot(pool, i)) for i in range(pool.max_count)]
