"""Experiment manifests: what a training run, sweep, fine-tune or endpoint will use, declared before
it launches, so that it can be estimated (`costline estimate`) and gated in CI (`costline gate`).

A manifest lives in `costline.yaml` under `experiments.manifests`, or one per YAML file. Its budget
defaults to `experiments.cap_usd` ($1,000) and its TTL to 24 h unless its environment is
production (`effective_budget`, `effective_ttl_hours`); a TTL written as `null` means "none".
Per-environment limits (the longest TTL, the GPUs and instance types allowed, a GPU ceiling) are
`experiments.environments` (`EnvironmentRules`). Both are foundation models: the governance layer
(`costline.governance`) reads them, and the JSON Schema of `costline.yaml` includes them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from costline.model import JSON_SCHEMA_DIALECT, Usd

DEFAULT_TTL_HOURS = Decimal(24)
PRODUCTION = "production"
ENDPOINT_KINDS = ("inference_endpoint",)
MANIFEST_KINDS = (
    "training_run",
    "sweep",
    "fine_tune",
    "batch_job",
    "evaluation",
    "embedding",
    "inference_endpoint",
)
Capacity = Literal["on_demand", "spot", "commit_1y", "commit_3y"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """What one trial runs on: an instance type (its GPUs from the catalog), or a GPU type and
    count per node; `nodes` of them; on which capacity."""

    provider: Literal["aws", "azure", "gcp", "lambda"] | None = None
    region: str | None = None
    instance_type: str | None = Field(default=None, description="e.g. p5.48xlarge")
    gpu_type: str | None = Field(default=None, description="e.g. H100, A100-80GB, L4")
    gpus: Annotated[int, Field(gt=0)] | None = Field(default=None, description="GPUs per node")
    nodes: Annotated[int, Field(gt=0)] = 1
    capacity_type: Capacity = "on_demand"


class Checkpoint(_Strict):
    """How often a checkpoint is written, how big it is and how long the set is kept."""

    interval_minutes: Annotated[Decimal, Field(gt=0)] | None = None
    size_gb: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    keep_last: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="checkpoints kept; default: all"
    )
    retention_days: Annotated[Decimal, Field(ge=0)] = Decimal(30)


class Approval(_Strict):
    """Who approved the manifest (a name or handle), and optionally the role and the day."""

    by: Annotated[str, Field(min_length=1)]
    role: str | None = None
    date: dt.date | None = None


class ExperimentManifest(_Strict):
    """One experiment, declared before it launches.

    ```yaml
    name: llama-8b-sft
    kind: fine_tune
    owner: ana@example.com
    team: search
    project: ranking
    purpose: instruction-tune the ranker
    environment: dev
    budget_usd: 2500
    ttl_hours: 48
    resources: {provider: aws, region: us-east-1, instance_type: g6.12xlarge, nodes: 1}
    steps: 12000
    steps_per_hour: 800
    checkpoint: {interval_minutes: 30, size_gb: 16, keep_last: 3}
    approvals: [{by: lead@example.com, role: team lead}]
    ```

    Say how long it runs with `duration_hours`, or with `steps` and `steps_per_hour`; a sweep
    runs `trials` of it.
    """

    name: Annotated[str, Field(min_length=1)]
    kind: Literal[MANIFEST_KINDS] = "training_run"  # type: ignore[valid-type]
    owner: str | None = None
    team: str | None = None
    project: str | None = None
    purpose: str | None = None
    environment: str | None = Field(default=None, description="dev, staging, production, ...")
    budget_usd: Annotated[Usd, Field(gt=0)] | None = Field(
        default=None, description="default: experiments.cap_usd"
    )
    ttl_hours: Annotated[Decimal, Field(gt=0)] | None = Field(
        default=None, description="default 24 unless production; null: no TTL"
    )
    resources: Resources = Field(default_factory=Resources)
    duration_hours: Annotated[Decimal, Field(gt=0)] | None = None
    steps: Annotated[int, Field(gt=0)] | None = None
    steps_per_hour: Annotated[Decimal, Field(gt=0)] | None = None
    trials: Annotated[int, Field(gt=0)] = Field(default=1, description="a sweep's variants")
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    max_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="an endpoint's cap on output tokens per request"
    )
    tags: dict[str, str] = Field(default_factory=dict)
    approvals: list[Approval] = Field(default_factory=list)

    @model_validator(mode="after")
    def _duration_once(self) -> Self:
        if self.steps is not None and self.steps_per_hour is None:
            raise ValueError("steps needs steps_per_hour (the throughput) to give a duration")
        if self.duration_hours is not None and self.steps is not None:
            raise ValueError("give duration_hours or steps with steps_per_hour, not both")
        return self

    @property
    def hours(self) -> Decimal | None:
        """Expected wall-clock hours of one trial, or None when the manifest does not say."""
        if self.duration_hours is not None:
            return self.duration_hours
        if self.steps is not None and self.steps_per_hour is not None:
            return Decimal(self.steps) / self.steps_per_hour
        return None

    @property
    def ttl_stated(self) -> bool:
        """Whether the manifest wrote `ttl_hours` (a number, or null for none)."""
        return "ttl_hours" in self.model_fields_set


class EnvironmentRules(_Strict):
    """What an environment allows: the longest TTL, the GPUs and instance types, a GPU ceiling.

    ```yaml
    max_ttl_hours: 72
    allowed_gpus: [T4, L4, A10G, L40S]
    max_gpus: 8
    ```
    """

    max_ttl_hours: Annotated[Decimal, Field(gt=0)] | None = Field(
        default=None, description="null: no maximum"
    )
    allowed_gpus: list[str] | None = Field(
        default=None, description="GPU chips allowed (H100, L4, ...); null: any"
    )
    allowed_instance_types: list[str] | None = Field(
        default=None, description="instance types allowed (shell patterns: g6.*); null: any"
    )
    max_gpus: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="GPUs of one trial (per node x nodes); null: no ceiling"
    )


def default_environments() -> dict[str, EnvironmentRules]:
    """dev: 72 h, small GPUs, 8 GPUs; staging: a week, 64 GPUs; production: no TTL maximum."""
    small = ["T4", "L4", "A10G", "A10", "L40S", "V100"]
    return {
        "dev": EnvironmentRules(max_ttl_hours=Decimal(72), allowed_gpus=small, max_gpus=8),
        "staging": EnvironmentRules(max_ttl_hours=Decimal(168), max_gpus=64),
        PRODUCTION: EnvironmentRules(),
    }


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of one manifest file (printed by `costline schema manifest`)."""
    return {"$schema": JSON_SCHEMA_DIALECT, **ExperimentManifest.model_json_schema()}


def effective_budget(manifest: ExperimentManifest, cap_usd: Decimal | None) -> Decimal | None:
    """The manifest's own budget, else the configured experiment cap (`experiments.cap_usd`)."""
    return manifest.budget_usd if manifest.budget_usd is not None else cap_usd


def effective_ttl_hours(manifest: ExperimentManifest) -> Decimal | None:
    """The stated TTL (None when written as null), else 24 h outside production, else None."""
    if manifest.ttl_stated:
        return manifest.ttl_hours
    return None if manifest.environment == PRODUCTION else DEFAULT_TTL_HOURS


__all__ = [
    "DEFAULT_TTL_HOURS",
    "ENDPOINT_KINDS",
    "MANIFEST_KINDS",
    "PRODUCTION",
    "Approval",
    "Checkpoint",
    "EnvironmentRules",
    "ExperimentManifest",
    "Resources",
    "default_environments",
    "effective_budget",
    "effective_ttl_hours",
    "manifest_json_schema",
]
