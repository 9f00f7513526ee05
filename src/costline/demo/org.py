"""The demo organization's vocabulary: teams, billing accounts, services, owners and resources.

A `Resource` carries the truth about a billable thing (its `Owner`: team, project, model, cost domain
and layer) and what its provider's bill shows of it (`tags`, which may leave the team out). The ground
truth reports the former; the billing files only the latter.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from costline.catalog.instances import InstancePrice
from costline.demo.rates import Rate
from costline.demo.usage import Activity, Traits, Volume

FileFormat = Literal["parquet", "csv", "csv.gz"]
TagStyle = Literal["aws", "aws-legacy", "azure", "gcp", "lambda"]
# What kind of lines a resource produces: metered usage, or an organization-level charge.
ChargeKind = Literal["usage", "commitment", "tax", "credit"]

# Tag keys that name the owning team, in every spelling the demo bills use.
TEAM_TAG_KEYS = ("team", "Team")
# Who owns charges that belong to no workload: commitments, taxes, credits.
CENTRAL_TEAM = "finance"


@dataclass(frozen=True)
class Team:
    key: str  # canonical name, as the ground truth reports it
    display: str  # the spelling Azure tag values use
    cost_center: str


TEAMS: tuple[Team, ...] = (
    Team("foundation-models", "Foundation Models", "CC-4100"),
    Team("assistant", "Assistant", "CC-4200"),
    Team("search", "Search", "CC-4300"),
    Team("vision", "Vision", "CC-4400"),
    Team("ml-platform", "ML Platform", "CC-4500"),
    Team("data-platform", "Data Platform", "CC-3100"),
    Team("web", "Web", "CC-2100"),
    Team(CENTRAL_TEAM, "Finance", "CC-1000"),
)
TEAM_BY_KEY = {t.key: t for t in TEAMS}


@dataclass(frozen=True)
class Account:
    """One billing account at one provider, and how its bills are exported."""

    provider: str  # aws, azure, gcp, lambda: also the folder name
    provider_name: str  # ProviderName, PublisherName and InvoiceIssuerName
    billing_account_id: str
    billing_account_name: str
    hourly: bool  # instance hours billed per hour (else one line per day)
    file_format: FileFormat
    tag_style: TagStyle


@dataclass(frozen=True)
class SubAccount:
    id: str | None
    name: str | None


@dataclass(frozen=True)
class Service:
    name: str
    category: str  # FOCUS ServiceCategory
    subcategory: str  # FOCUS ServiceSubcategory


@dataclass(frozen=True)
class Owner:
    """The truth about who a resource serves, which the ground truth reports."""

    team: str
    project: str
    model: str | None
    environment: str  # prod, staging, dev
    workload_type: str  # training, fine-tuning, inference, embeddings, evaluation, platform, ...
    cost_domain: str  # training, online_inference, batch_ai, shared_platform, non_ai
    cost_layer: str  # gpu_compute, cpu_compute, tokens, storage, vector_db, ...


@dataclass(frozen=True)
class InstanceMeter:
    """Instance hours at the catalogue's on-demand list price."""

    price: InstancePrice


@dataclass(frozen=True)
class RateMeter:
    """A metered service: `per_day` units of `rate.pricing_unit` per day at usage level 1.0."""

    rate: Rate
    per_day: Decimal


Meter = InstanceMeter | RateMeter


@dataclass(frozen=True)
class Resource:
    """A billable thing of the organization: its identity on the bill, its meters and its owner."""

    key: str  # unique within the organization; the ground truth's name for it
    account: Account
    sub_account: SubAccount
    resource_id: str | None
    name: str | None
    resource_type: str | None
    region: str | None
    service: Service
    meters: tuple[Meter, ...]
    usage: Activity | Volume
    owner: Owner
    tags: tuple[tuple[str, str], ...]
    commitment: str | None = None  # id of the commitment discount that may cover its hours
    extra: tuple[tuple[str, str], ...] = ()  # provider-specific x_ columns
    kind: ChargeKind = "usage"
    traits: Traits | None = None  # how its telemetry looks, when planted (`demo.waste`)

    @property
    def tagged(self) -> bool:
        """Whether the bill shows a team tag for this resource."""
        return any(k in TEAM_TAG_KEYS for k, _ in self.tags)

    @property
    def instance(self) -> InstancePrice | None:
        first = self.meters[0] if self.meters else None
        return first.price if isinstance(first, InstanceMeter) else None


def render_tags(
    style: TagStyle, owner: Owner, *, tagged: bool = True, name: str | None = None
) -> tuple[tuple[str, str], ...]:
    """The tags a provider's bill shows for `owner`, spelled the way that provider's teams spell them.

    An untagged resource keeps only what nobody forgets (the AWS `Name` tag).
    """
    team = TEAM_BY_KEY[owner.team]
    named = (("Name", name),) if name and style in ("aws", "aws-legacy") else ()
    if not tagged:
        return named
    model = owner.model or ""
    by_style: dict[str, tuple[tuple[str, str], ...]] = {
        "aws": (
            ("team", team.key),
            ("project", owner.project),
            ("model", model),
            ("env", owner.environment),
            ("workload-type", owner.workload_type),
        ),
        "aws-legacy": (
            ("Team", team.display),
            ("Project", owner.project),
            ("Environment", owner.environment.capitalize()),
        ),
        "azure": (
            ("Team", team.display),
            ("CostCenter", team.cost_center),
            ("Project", owner.project),
            ("Model", model),
            ("Environment", owner.environment.capitalize()),
        ),
        "gcp": (
            ("team", team.key),
            ("cost-center", team.cost_center.lower()),
            ("model", model.replace(".", "-")),
            ("env", owner.environment),
            ("workload", owner.workload_type),
        ),
        "lambda": (("team", team.key), ("project", owner.project), ("model", model)),
    }
    return named + tuple((k, v) for k, v in by_style[style] if v)


def sku_id(provider: str, label: str, region: str | None = None) -> str:
    """A provider-shaped SKU id derived from the SKU's name and region (stable across runs)."""
    if provider == "lambda":
        return label
    digest = hashlib.sha256(f"{provider}/{label}/{region}".encode()).digest()
    if provider == "aws":
        return base64.b32encode(digest).decode()[:16]
    if provider == "azure":
        h = digest.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    h = digest.hex().upper()  # Google Cloud's shape
    return f"{h[:4]}-{h[4:8]}-{h[8:12]}"
