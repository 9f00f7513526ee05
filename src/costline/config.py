"""`costline.yaml`: the configuration as code, its models, its JSON Schema and its loader.

The words users write after `type:` (`type: focus`, `type: slack`) are small classes in explicit
registries (`SOURCE_TYPES`, `ROUTE_TYPES`); each carries a docstring with a YAML example that a
meta-test loads. The loader validates in two passes (structure: YAML syntax, duplicate keys, top
level, folder merge; then schema) and names the file, the line and the dotted key in every error:

    costline.yaml:12: budgets[0].amount_usd: Input should be a valid decimal (got 'lots')
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import inspect
import itertools
import operator
import os
import re
import textwrap
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from costline.errors import ConfigError
from costline.manifest import EnvironmentRules, ExperimentManifest, default_environments
from costline.model import JSON_SCHEMA_DIALECT, Selector, Severity, Usd
from costline.yamlfile import (
    Loc,
    Located,
    YamlDocument,
    YamlIssue,
    dotted,
    merge_documents,
    parse_yaml,
    read_yaml,
    show,
)

CONFIG_ENV = "COSTLINE_CONFIG"
DEFAULT_CONFIG_FILE = "costline.yaml"
CONFIG_SUFFIXES = (".yaml", ".yml")

ConfigIssue = YamlIssue
"""One thing wrong with the configuration, and where: `file:line: key: message`."""


class ConfigValidationError(ConfigError):
    """The configuration is invalid; `issues` lists every problem found, one per line."""

    def __init__(self, issues: Sequence[YamlIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


# -- shared field types ---------------------------------------------------------------------------

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _env_name(value: str) -> str:
    if not re.match(_ENV_NAME, value):
        raise ValueError(
            f"{value!r} is not an environment variable name: keep the secret in an environment "
            "variable and name it here (e.g. SLACK_WEBHOOK_URL)"
        )
    return value


EnvVarName = Annotated[
    str, AfterValidator(_env_name), Field(json_schema_extra={"pattern": _ENV_NAME})
]
EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
Name = Annotated[str, Field(min_length=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- sources: the `type:` words under `sources:` --------------------------------------------------


class SourceBase(_Section):
    """What every source has: its `type` and an optional `name` (default: the type)."""

    type: str
    name: Name | None = None

    @property
    def label(self) -> str:
        """The name the ledger records for rows from this source."""
        return self.name or self.type


class FocusSource(SourceBase):
    """FOCUS cost and usage exports (CSV or Parquet, FOCUS 1.0 to 1.3) from any provider.

    `paths` are glob patterns, relative to the folder of the configuration.

    ```yaml
    type: focus
    name: aws
    paths:
      - exports/aws/focus/*.parquet
      - exports/aws/focus/*.csv.gz
    replace_period: false
    ```

    A file that restates a billing period but would remove more than half of its rows or cost is
    refused (a `data_quality` finding on the source) unless `replace_period` is true.
    """

    type: Literal["focus"]
    paths: list[Name] = Field(min_length=1)
    replace_period: bool = False


FileFormat = Literal[
    "focus", "dcgm", "llm", "metrics", "kubernetes", "slurm", "registry", "storage", "lifecycle",
    "annotations",
]  # fmt: skip
FILE_FORMATS: tuple[str, ...] = typing.get_args(FileFormat)
PullKind = Literal["dcgm", "kube_state_metrics"]


def _both_pulls() -> list[PullKind]:
    return ["dcgm", "kube_state_metrics"]


TraceField = Literal[
    "ts", "request_id", "provider", "model", "input_tokens", "output_tokens",
    "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "latency_ms", "status",
    "max_tokens", "app", "user", "team", "tenant", "endpoint", "prompt_id", "conversation_id",
    "turn", "prompt_hash", "stop_reason", "prefix_hashes",
]  # fmt: skip
TRACE_FIELDS: tuple[str, ...] = typing.get_args(TraceField)
TimeUnit = Literal["s", "ms", "us", "ns"]


class LlmTrace(_Section):
    """A plain LLM request trace (CSV or JSON lines: a time, token counts, perhaps a model and
    an app): the column each `llm_requests` field is read from, and the values of fields no
    column holds. A field not in `columns` is read from a column of its own name, if any.
    `input_tokens` is the total input; `cached_input_tokens` is a part of it.

    ```yaml
    columns:
      ts: TIMESTAMP
      input_tokens: ContextTokens
      output_tokens: GeneratedTokens
    default_model: gpt-4o-mini
    provider: openai
    app: code-completion
    ```
    """

    columns: dict[TraceField, Name] = Field(
        default_factory=dict, description="field -> the column (JSON: key or dotted path) it is in"
    )
    default_model: Name | None = Field(None, description="the model of rows without one")
    provider: Name | None = Field(None, description="the provider of rows without one")
    app: Name | None = Field(None, description="the app of rows without one")
    time_origin: dt.datetime | None = Field(
        None, description="times are offsets from this instant (e.g. Mooncake's ms since start)"
    )
    time_unit: TimeUnit | None = Field(
        None, description="unit of numeric times (default: s with an origin, else guessed)"
    )
    block_tokens: int = Field(
        512, ge=1, description="tokens per block of prefix_hashes (Mooncake's hash_ids: 512)"
    )

    @field_validator("time_origin")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class FilesSource(SourceBase):
    """A watched folder of exports or logs in any format costline ingests (`costline ingest
    FORMAT`): each sync ingests the files not loaded before (by content), so a file dropped in
    the folder is in the ledger minutes later, and one already loaded changes nothing.

    ```yaml
    type: files
    name: llm-gateway-logs
    format: llm
    paths:
      - logs/llm/*.jsonl
    ```
    """

    type: Literal["files"]
    format: FileFormat
    paths: list[Name] = Field(min_length=1)
    trace: LlmTrace | None = Field(
        None, description="`format: llm` only: read the files as plain request traces"
    )

    @model_validator(mode="after")
    def _trace_is_llm(self) -> Self:
        if self.trace is not None and self.format != "llm":
            raise ValueError(f"trace applies to format llm, not {self.format}")
        return self


class PrometheusSource(SourceBase):
    """A Prometheus server with dcgm-exporter and kube-state-metrics series, pulled
    incrementally: GPU samples from where the last pull ended, pods over the last `step`s.

    ```yaml
    type: prometheus
    name: gpu-cluster
    url: http://prometheus.monitoring:9090
    pull: [dcgm, kube_state_metrics]
    step_seconds: 60
    first_pull_hours: 6
    ```
    """

    type: Literal["prometheus"]
    url: str = Field(pattern=r"^https?://")
    pull: list[PullKind] = Field(default_factory=_both_pulls, min_length=1)
    step_seconds: int = Field(default=60, ge=1)
    first_pull_hours: int = Field(default=6, ge=1, description="how far back the first pull goes")


SOURCE_TYPES: dict[str, type[SourceBase]] = {
    "focus": FocusSource,
    "files": FilesSource,
    "prometheus": PrometheusSource,
}
"""Every `type:` a source may have, name -> model. Register new source types here."""


# -- routes: where findings are delivered ---------------------------------------------------------


class RouteBase(_Section):
    """What every route has: a `name` owners refer to, and the least severity it delivers."""

    type: str
    name: Name
    min_severity: Severity = Severity.INFO


class SlackRoute(RouteBase):
    """A Slack incoming webhook; the URL is a secret, so it is read from an environment variable.

    ```yaml
    type: slack
    name: fraud-slack
    webhook_url_env: SLACK_FRAUD_WEBHOOK_URL
    channel: "#fraud-costs"
    min_severity: warning
    ```
    """

    type: Literal["slack"]
    webhook_url_env: EnvVarName
    channel: str | None = None


class PagerDutyRoute(RouteBase):
    """PagerDuty Events API v2; the integration's routing key is read from an environment variable.

    ```yaml
    type: pagerduty
    name: platform-oncall
    routing_key_env: PAGERDUTY_PLATFORM_KEY
    min_severity: critical
    ```
    """

    type: Literal["pagerduty"]
    routing_key_env: EnvVarName
    events_url: str = "https://events.pagerduty.com/v2/enqueue"


class EmailRoute(RouteBase):
    """Email through an SMTP relay.

    ```yaml
    type: email
    name: finops-mail
    to: [finops@example.com]
    from_address: costline@example.com
    smtp_host: smtp.example.com
    smtp_port: 587
    ```
    """

    type: Literal["email"]
    to: list[EmailAddress] = Field(min_length=1)
    from_address: EmailAddress
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)


def _http_url(value: str) -> str:
    if not re.match(r"^https?://", value):
        # The value is not shown: a webhook URL can hold a token or a password.
        raise ValueError("expected an http:// or https:// URL")
    return value


HttpUrl = Annotated[
    str, AfterValidator(_http_url), Field(json_schema_extra={"pattern": "^https?://"})
]


class WebhookRoute(RouteBase):
    """A JSON POST of each finding (its published schema) to any HTTP endpoint.

    The URL is `url`, or, when it holds a secret (a token in its query, a password), the value
    of the variable `url_env` names. `headers` are sent as written; `headers_env` maps a header
    to the variable holding its value (`Authorization`, `X-Api-Key`). When `secret_env` is set,
    the body is signed with HMAC-SHA256 using that variable's value. A secret written in `url`
    or `headers` anyway is redacted from everything costline shows (CLI, API, logs, outbox).

    ```yaml
    type: webhook
    name: finops-bot
    url_env: FINOPS_BOT_URL
    headers: {X-Team: finops}
    headers_env: {Authorization: FINOPS_BOT_AUTHORIZATION}
    secret_env: COSTLINE_WEBHOOK_SECRET
    ```
    """

    type: Literal["webhook"]
    url: HttpUrl | None = None
    url_env: EnvVarName | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, EnvVarName] = Field(default_factory=dict)
    secret_env: EnvVarName | None = None

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_env is None):
            raise ValueError(
                f"webhook route {self.name!r}: give `url` or `url_env` (the variable holding a "
                "URL with a secret in it), one of them"
            )
        both = sorted(set(self.headers) & set(self.headers_env))
        if both:
            raise ValueError(
                f"webhook route {self.name!r}: header {both[0]!r} is in both `headers` and "
                "`headers_env`: keep it in one"
            )
        return self


ROUTE_TYPES: dict[str, type[RouteBase]] = {
    "slack": SlackRoute,
    "pagerduty": PagerDutyRoute,
    "email": EmailRoute,
    "webhook": WebhookRoute,
}
"""Every `type:` a route may have, name -> model. Register new route types here."""


def _tagged_union(registry: Mapping[str, type[BaseModel]]) -> Any:
    """`A | B | ...` discriminated on `type`, built from a registry."""
    for name, cls in registry.items():
        if typing.get_args(cls.model_fields["type"].annotation) != (name,):
            raise TypeError(f"{cls.__name__} is registered as {name!r} but its type says otherwise")
    members = functools.reduce(operator.or_, registry.values())
    return Annotated[members, Field(discriminator="type")]


if TYPE_CHECKING:
    SourceConfig: TypeAlias = SourceBase
    RouteConfig: TypeAlias = RouteBase
else:
    SourceConfig = _tagged_union(SOURCE_TYPES)
    RouteConfig = _tagged_union(ROUTE_TYPES)

# Sections whose items are tagged by `type`, for error messages.
_REGISTRIES: dict[str, Mapping[str, type[BaseModel]]] = {
    "sources": SOURCE_TYPES,
    "routes": ROUTE_TYPES,
}


# -- the other sections ---------------------------------------------------------------------------


class TagRules(_Section):
    """Which tags every cost line must carry, and which spellings mean the same tag.

    ```yaml
    required: [team, project, environment]
    aliases:
      team: [Team, owner_team, "k8s-label:team"]
      environment: [env, Environment]
    case_fold_values: true
    account_defaults:
      "123456789012": {team: search, environment: prod}
    namespace_defaults:
      fraud-ml: {team: fraud}
    ```
    """

    required: list[Name] = Field(default_factory=list)
    aliases: dict[str, list[Name]] = Field(
        default_factory=dict, description="canonical key -> the alias keys that mean it"
    )
    case_fold_values: bool = Field(
        default=True,
        description="compare tag values folded: lower case, spaces and underscores as hyphens",
    )
    account_defaults: dict[str, dict[Name, str]] = Field(
        default_factory=dict,
        description="SubAccountId -> tags its lines inherit when they lack them",
    )
    namespace_defaults: dict[str, dict[Name, str]] = Field(
        default_factory=dict,
        description="Kubernetes namespace -> tags its workloads inherit when they lack them",
    )

    @model_validator(mode="after")
    def _aliases_unambiguous(self) -> Self:
        seen: dict[str, str] = {}
        for canonical, aliases in self.aliases.items():
            for alias in aliases:
                if alias in self.aliases and alias != canonical:
                    raise ValueError(f"{alias!r} is a canonical key and cannot alias {canonical!r}")
                if seen.setdefault(alias, canonical) != canonical:
                    raise ValueError(
                        f"alias {alias!r} is listed under both {seen[alias]!r} and {canonical!r}"
                    )
        return self


class ModelNames(_Section):
    """One name per model: bills tag a model one way (`claude-3-5-sonnet`), LLM usage logs
    another (`claude-3-5-sonnet-20241022`). Each alias becomes its model's name wherever a model
    is derived (the `model` of cost lines and of LLM requests), so spend by model and tokens by
    model name the same models. Names compare folded when `tags.case_fold_values` is on.

    ```yaml
    aliases:
      claude-3-5-sonnet-20241022: claude-3.5-sonnet
      claude-3-5-sonnet: claude-3.5-sonnet
      gpt-4o-mini-2024-07-18: gpt-4o-mini
    ```
    """

    aliases: dict[Name, Name] = Field(
        default_factory=dict, description="a model name as a bill or log writes it -> its name"
    )

    @model_validator(mode="after")
    def _no_chains(self) -> Self:
        for alias, name in self.aliases.items():
            if name in self.aliases and self.aliases[name] != name:
                raise ValueError(
                    f"{alias!r} -> {name!r}, but {name!r} is itself an alias of "
                    f"{self.aliases[name]!r}: map {alias!r} to {self.aliases[name]!r}"
                )
        return self


class Owner(_Section):
    """Who owns the costs a selector matches, and the routes their findings go to.

    ```yaml
    name: fraud
    kind: team
    match: {team: fraud}
    routes: [fraud-slack]
    ```
    """

    name: Name
    kind: Literal["team", "person", "service"] = "team"
    match: Selector
    routes: list[Name] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _match_something(cls, value: Selector) -> Selector:
        if not value.dimensions:
            raise ValueError("an owner must match something, e.g. match: {team: fraud}")
        return value


class SharedPool(_Section):
    """A shared cost (a model gateway, a vector store, observability, shared storage, egress,
    platform overhead) and how chargeback splits it among owners.

    ```yaml
    name: model-gateway
    match: {cost_layer: tokens, team: ml-platform}
    split: metric
    metric: gateway_requests
    by: team
    ```

    `match` selects cost lines by their derived columns (team, project, model, environment,
    cost_domain, cost_layer, ...). `split`: `proportional` to each owner's direct cost, `even`
    among owners with direct cost, `fixed` by `ratios` (value -> weight), or by a usage `metric`
    (the sum of `metrics.value` per value of label `by` over the period).
    """

    name: Name
    match: Selector
    split: Literal["proportional", "even", "fixed", "metric"] = "proportional"
    by: Name = "team"
    ratios: dict[str, Annotated[Decimal, Field(gt=0)]] = Field(default_factory=dict)
    metric: Name | None = None

    @model_validator(mode="after")
    def _rule_complete(self) -> Self:
        if not self.match.dimensions:
            raise ValueError("a shared pool must match something, e.g. match: {cost_layer: tokens}")
        if self.split == "fixed" and not self.ratios:
            raise ValueError("split: fixed needs ratios, e.g. ratios: {search: 60, assistant: 40}")
        if self.split == "metric" and not self.metric:
            raise ValueError("split: metric needs metric: the name of a metric in the ledger")
        return self


class BusinessUnit(_Section):
    """A unit of value to price: what the scope's cost buys, counted by a metric in the ledger.

    ```yaml
    name: resolved-ticket
    metric: tickets_resolved
    labels: {queue: support}
    scope: {team: support}
    ```

    Cost per unit = the scope's direct cost in the period (its tagged lines and the GPU-time its
    workloads held) / the sum of `metrics.value` of `metric` (rows whose labels match `labels`).
    """

    name: Name
    metric: Name
    labels: dict[str, str] = Field(default_factory=dict)
    scope: Selector = Field(
        default_factory=Selector, description="the costs the units are bought with"
    )


class Budget(_Section):
    """A spending limit over a scope: findings as spend crosses each threshold, when it burns
    faster than the budget allows, and when the period-end forecast runs over.

    ```yaml
    name: search-training
    scope: {team: search, cost_domain: training}
    amount_usd: 25000
    period: month
    thresholds: [50, 75, 90, 100]
    burn_rate: 2
    ```

    `scope` takes the derived attribution columns (team, project, environment, model, endpoint,
    cost_domain: training, online_inference, batch_ai, ...; cost_layer), FOCUS columns
    (ProviderName, ServiceName, SubAccountId, RegionId, ...) and the short names provider,
    service, account, region and usage_type. `period: custom` needs `start` and `end` (dates,
    end exclusive).
    """

    name: Name
    scope: Selector = Field(
        default_factory=Selector, description="what the budget covers; empty = everything"
    )
    amount_usd: Annotated[Usd, Field(gt=0)]
    period: Literal["month", "quarter", "year", "custom"] = "month"
    start: dt.date | None = Field(default=None, description="first day of a custom period")
    end: dt.date | None = Field(default=None, description="day after a custom period")
    thresholds: list[Annotated[Decimal, Field(gt=0, le=1000)]] = Field(
        default_factory=lambda: [Decimal(p) for p in (50, 75, 90, 100)],
        min_length=1,
        description="percents of amount_usd; default [50, 75, 90, 100]",
    )
    burn_rate: Annotated[Decimal, Field(gt=0)] | None = Field(
        default=Decimal(2),
        description="alert when the last 7 days' spend rate is this many times the rate the "
        "budget allows (amount / days in the period); null turns it off",
    )
    forecast_alert: bool = Field(
        default=True, description="alert when the period-end forecast (P50) exceeds the budget"
    )

    @field_validator("thresholds")
    @classmethod
    def _sorted_unique(cls, value: list[Decimal]) -> list[Decimal]:
        repeated = sorted({t for t in value if value.count(t) > 1})
        if repeated:
            raise ValueError(f"thresholds repeat {', '.join(str(t) for t in repeated)}")
        return sorted(value)

    @model_validator(mode="after")
    def _custom_dates(self) -> Self:
        if self.period == "custom":
            if self.start is None or self.end is None:
                raise ValueError("period: custom needs start and end dates")
            if self.end <= self.start:
                raise ValueError(f"end {self.end} must be after start {self.start}")
        elif self.start is not None or self.end is not None:
            raise ValueError(f"start and end are for period: custom, not {self.period}")
        return self


class Experiments(_Section):
    """The default cap of every experiment (a training run, sweep or fine-tune in the workload
    registry, or an observed training workload) that declares no `budget_usd` of its own.

    ```yaml
    cap_usd: 1000
    alert_at: [80, 100]
    required_tags: [cost_center]
    environments:
      dev: {max_ttl_hours: 72, allowed_gpus: [T4, L4, A10G], max_gpus: 8}
    ```

    `manifests` lists experiments declared before launch (`ExperimentManifest`); `costline
    estimate` prices them and `costline gate` checks them against these rules.
    """

    cap_usd: Annotated[Usd, Field(gt=0)] | None = Field(
        default=Decimal(1000), description="null: only experiments with their own budget_usd"
    )
    alert_at: list[Annotated[Decimal, Field(gt=0, le=1000)]] = Field(
        default_factory=lambda: [Decimal(80), Decimal(100)],
        min_length=1,
        description="percents of the cap; default [80, 100]",
    )
    manifests: list[ExperimentManifest] = Field(
        default_factory=list, description="experiments declared before launch (costline gate)"
    )
    environments: dict[str, EnvironmentRules] = Field(
        default_factory=default_environments,
        description="per environment: longest TTL, GPUs and instance types allowed, GPU ceiling",
    )
    required_tags: list[str] = Field(
        default_factory=list, description="tags every manifest must carry (costline gate)"
    )
    approve_above_usd: Annotated[Usd, Field(gt=0)] | None = Field(
        default=None,
        description="a manifest whose P90 estimate is above this needs an approval; "
        "default: cap_usd",
    )


class FxRate(_Section):
    """One dated exchange rate: from `date` on (until its currency's next rate), one unit of
    `currency` is `rate` units of the reporting currency.

    ```yaml
    date: 2026-10-01
    currency: CAD
    rate: "0.7215"
    ```
    """

    date: dt.date
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    rate: Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=10)]


class Fx(_Section):
    """Exchange rates into the reporting currency: reports that add amounts billed in several
    currencies convert each line at the rate of its charge day, and refuse when a rate is missing.

    ```yaml
    reporting_currency: USD
    rates:
      - {date: 2026-09-01, currency: CAD, rate: "0.7215"}
      - {date: 2026-10-01, currency: CAD, rate: "0.7163"}
    file: fx.csv          # optional: columns date,currency,rate (paths relative to this file)
    ```
    """

    reporting_currency: Literal["USD"] = Field(
        default="USD", description="amounts are reported in USD (the `_usd` fields)"
    )
    rates: list[FxRate] = Field(default_factory=list)
    file: Path | None = Field(default=None, description="a CSV of date,currency,rate")


class Tier(_Section):
    """One step of an escalation: who hears of a spike once it has lasted `after_minutes` and
    cost `impact_usd` (both must hold; a tier with neither is reached at once).

    ```yaml
    name: finance
    after_minutes: 60
    impact_usd: 1000
    routes: [finops-mail]
    ```
    """

    name: Name
    after_minutes: int = Field(default=0, ge=0, description="minutes the breach has lasted")
    impact_usd: Annotated[Usd, Field(ge=0)] | None = Field(
        default=None, description="dollars above baseline so far; null: any"
    )
    routes: list[Name] = Field(default_factory=list, description="routes this tier adds")


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="platform"),
        Tier(name="finance", after_minutes=60, impact_usd=Decimal(1000)),
        Tier(name="leadership", after_minutes=240, impact_usd=Decimal(10000)),
    ]


def _tiers_in_order(tiers: list[Tier]) -> list[Tier]:
    for before, after in itertools.pairwise(tiers):
        if after.after_minutes < before.after_minutes or (
            before.impact_usd is not None
            and (after.impact_usd is None or after.impact_usd < before.impact_usd)
        ):
            raise ValueError(
                f"tier {after.name!r} comes after {before.name!r} but asks less of a breach: "
                "list tiers from the first to hear of it to the last"
            )
    names = [t.name for t in tiers]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"tier names repeat: {', '.join(repeated)}")
    return tiers


Tiers = Annotated[list[Tier], AfterValidator(_tiers_in_order)]


class Threshold(_Section):
    """A spike threshold on a telemetry signal (see `costline signals` for the names), checked
    every few minutes per value of `by`, against a rolling baseline of the hours before.

    A bucket breaches when every condition given holds: `absolute` (the value itself),
    `pct_over_baseline` and `z` (a robust z-score: the excess over the baseline's median in
    1.4826 x MAD units). `min_buckets` breaching buckets in a row make a breach. A threshold
    that gives none of the three checks its signal's default condition (`costline signals`
    lists them: GPU utilization under 10% for 30 minutes, tokens a minute twice the baseline
    for 15, ...); what it sets itself (`min_buckets`, `direction`) wins.

    ```yaml
    name: chat-output-tokens
    signal: output_tokens_per_min
    by: model
    scope: {app: chat}
    bucket_minutes: 5
    baseline_hours: 6
    pct_over_baseline: 100
    z: 4
    severity: warning
    ```
    """

    name: Name
    signal: Name
    by: Name | None = Field(default=None, description="a dimension of the signal, or none")
    scope: Selector = Field(
        default_factory=Selector, description="only the rows whose dimensions match"
    )
    bucket_minutes: int = Field(default=5, ge=1, le=1440)
    baseline_hours: int = Field(default=6, ge=1, le=24 * 28)
    direction: Literal["above", "below"] = Field(
        default="above", description="below: a drop is the breach (a cache-hit rate falling)"
    )
    absolute: float | None = Field(
        default=None, description="breach at or above this value (at or below, for below)"
    )
    pct_over_baseline: float | None = Field(default=None, gt=0)
    z: float | None = Field(default=None, gt=0)
    min_buckets: int = Field(default=1, ge=1)
    severity: Severity = Severity.WARNING
    escalation: Tiers | None = Field(
        default=None, description="tiers for this threshold; default: the top-level escalation"
    )

    @model_validator(mode="after")
    def _some_condition(self) -> Self:
        none = self.absolute is None and self.pct_over_baseline is None and self.z is None
        if none and self.signal.startswith("metric:"):
            raise ValueError(
                "a metric: signal has no default condition: give at least one of absolute, "
                "pct_over_baseline and z"
            )
        return self


class Notify(_Section):
    """How alerts are delivered: the dashboard link in each message, when to alert again.

    ```yaml
    dashboard_url: http://costline.internal:8000
    realert_growth_pct: 50
    max_attempts: 8
    ```
    """

    dashboard_url: str | None = Field(
        default=None, pattern=r"^https?://", description="base URL for links to findings"
    )
    realert_growth_pct: Annotated[Decimal, Field(gt=0)] = Field(
        default=Decimal(50),
        description="alert again about a finding when its impact grew this much since the last "
        "alert to the same route (or it reached a new tier)",
    )
    max_attempts: int = Field(default=8, ge=1, description="tries per message before it fails")
    backoff_seconds: float = Field(
        default=30, gt=0, description="wait before the second try; doubles each time"
    )


class ApiToken(_Section):
    """A token for `costline serve`'s API and dashboard: who holds it, the environment variable it
    is read from (never the token itself in YAML) and what it may do. Roles: `viewer` reads,
    `operator` also acknowledges, resolves, snoozes and reopens findings, `admin` also reads and
    reloads the configuration.

    ```yaml
    name: finops-team
    token_env: COSTLINE_FINOPS_TOKEN
    role: operator
    ```
    """

    name: Name
    token_env: EnvVarName
    role: Literal["viewer", "operator", "admin"] = "viewer"


class Server(_Section):
    """`costline serve`: the API tokens (none: the API is open, for a server on 127.0.0.1), how
    often the dashboard refreshes and how often the scheduler pulls and evaluates.

    ```yaml
    tokens:
      - name: dashboard
        token_env: COSTLINE_DASHBOARD_TOKEN
        role: viewer
      - name: oncall
        token_env: COSTLINE_ONCALL_TOKEN
        role: operator
    refresh_seconds: 300
    interval_minutes: 5
    ```
    """

    tokens: list[ApiToken] = Field(default_factory=list)
    refresh_seconds: int = Field(default=300, ge=5, description="dashboard refresh period")
    interval_minutes: int = Field(
        default=5, ge=1, description="scheduler period: pull sources, evaluate, notify"
    )

    @field_validator("tokens")
    @classmethod
    def _names_unique(cls, value: list[ApiToken]) -> list[ApiToken]:
        names = [t.name for t in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"token names repeat: {', '.join(repeated)}")
        return value


_DEFER_REFERENCES = "costline.defer_references"


class Config(_Section):
    """The whole of `costline.yaml` (or of a folder of YAML files, merged)."""

    version: Literal[1] = 1
    ledger: str | None = Field(
        default=None, description="ledger URL, e.g. duckdb://.costline/ledger.duckdb"
    )
    sources: list[SourceConfig] = Field(default_factory=list)
    tags: TagRules = Field(default_factory=TagRules)
    models: ModelNames = Field(default_factory=ModelNames)
    owners: list[Owner] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    budgets: list[Budget] = Field(default_factory=list)
    experiments: Experiments = Field(default_factory=Experiments)
    shared_pools: list[SharedPool] = Field(default_factory=list)
    units: list[BusinessUnit] = Field(default_factory=list)
    fx: Fx = Field(default_factory=Fx)
    escalation: Tiers = Field(
        default_factory=_default_tiers,
        description="who hears of a spike, tier by tier: platform, then finance, then leadership",
    )
    thresholds: list[Threshold] = Field(default_factory=list)
    notify: Notify = Field(default_factory=Notify)
    server: Server = Field(default_factory=Server)

    _files: tuple[Path, ...] = PrivateAttr(default=())
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(_DEFER_REFERENCES):
            return self  # the loader checks them itself, to point at lines
        problems = self.reference_problems()
        if problems:
            raise ValueError("; ".join(f"{dotted(loc)}: {message}" for loc, message in problems))
        return self

    def reference_problems(self) -> list[tuple[Loc, str]]:
        """Names that repeat within a section, and routes that owners name but nobody defines."""
        problems = _duplicates("sources", [s.label for s in self.sources])
        problems += _duplicates("owners", [o.name for o in self.owners])
        problems += _duplicates("routes", [r.name for r in self.routes])
        problems += _duplicates("budgets", [b.name for b in self.budgets])
        problems += _duplicates("shared_pools", [p.name for p in self.shared_pools])
        problems += _duplicates("units", [u.name for u in self.units])
        problems += _duplicates("thresholds", [t.name for t in self.thresholds])
        names = [m.name for m in self.experiments.manifests]
        problems += [(("experiments", *loc), m) for loc, m in _duplicates("manifests", names)]
        defined = sorted({r.name for r in self.routes})
        named: list[tuple[Loc, str]] = [
            (("owners", i, "routes", j), route)
            for i, owner in enumerate(self.owners)
            for j, route in enumerate(owner.routes)
        ]
        named += [
            (("escalation", i, "routes", j), route)
            for i, tier in enumerate(self.escalation)
            for j, route in enumerate(tier.routes)
        ]
        named += [
            (("thresholds", i, "escalation", k, "routes", j), route)
            for i, threshold in enumerate(self.thresholds)
            for k, tier in enumerate(threshold.escalation or [])
            for j, route in enumerate(tier.routes)
        ]
        for loc, route in named:
            if route not in defined:
                known = ", ".join(defined) or "none defined"
                problems.append((loc, f"no route named {route!r} (routes: {known})"))
        return problems

    @property
    def files(self) -> tuple[Path, ...]:
        """The files this configuration was read from, in merge order; empty for defaults."""
        return self._files

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the configuration start: its folder, else the working dir."""
        return self._base_dir if self._base_dir is not None else Path.cwd()


def _duplicates(section: str, names: Sequence[str]) -> list[tuple[Loc, str]]:
    first: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for i, name in enumerate(names):
        if name in first:
            message = (
                f"{section}[{first[name]}] already has the name {name!r}; names must be unique"
            )
            problems.append(((section, i, "name"), message))
        first.setdefault(name, i)
    return problems


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of `costline.yaml` (printed by `costline schema config`)."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Config.model_json_schema()}


_EXAMPLE = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def example_yaml(cls: type) -> str:
    """The YAML example in a config class's docstring (every registered class has one)."""
    match = _EXAMPLE.search(inspect.getdoc(cls) or "")
    if match is None:
        raise ValueError(f"{cls.__name__} has no ```yaml example in its docstring")
    return textwrap.dedent(match.group(1))


# -- loading --------------------------------------------------------------------------------------


def resolve_config_path(path: Path | None = None) -> Path | None:
    """Which configuration to read: `path`, else `$COSTLINE_CONFIG`, else `./costline.yaml`."""
    if path is not None:
        return path
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_config(path: Path | None = None) -> Config:
    """Load and validate the configuration (a file, or a folder of `*.yaml` files merged).

    With no path, `$COSTLINE_CONFIG`, then `./costline.yaml`; with none of those, the defaults.
    Raises `ConfigError` naming the file, line and key of every problem found.
    """
    resolved = resolve_config_path(path)
    if resolved is None:
        return Config()
    if not resolved.exists():
        named_by = "" if path is not None else f" (named by ${CONFIG_ENV})"
        raise ConfigError(f"{resolved}: no such configuration file or folder{named_by}")
    files = _config_files(resolved)
    issues: list[YamlIssue] = []
    documents = [_top_level(read_yaml(f, issues), str(f), issues) for f in files]
    if issues:
        raise ConfigValidationError(issues)
    merged = functools.reduce(lambda a, b: merge_documents(a, b, issues), documents)
    if issues:
        raise ConfigValidationError(issues)
    config = _validate(merged)
    config._files = tuple(files)
    config._base_dir = (resolved if resolved.is_dir() else resolved.parent).resolve()
    return config


def parse_config(text: str, *, filename: str = DEFAULT_CONFIG_FILE) -> Config:
    """Validate configuration YAML held in a string; errors name `filename` and lines in `text`."""
    issues: list[YamlIssue] = []
    document = _top_level(parse_yaml(text, filename, issues), filename, issues)
    if issues:
        raise ConfigValidationError(issues)
    return _validate(document)


def _config_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"{path}: the configuration folder has no *.yaml files")
    return files


def _top_level(
    document: YamlDocument | None, filename: str, issues: list[YamlIssue]
) -> YamlDocument:
    """The structure pass's last check: a file is a mapping of sections (or empty)."""
    empty = YamlDocument({}, Located(filename, 1, mapping={}))
    if document is None or document.data is None:
        return empty
    if not isinstance(document.data, dict):
        what = show(document.data)
        message = f"the top level must be a mapping of sections (version, sources, ...), not {what}"
        issues.append(YamlIssue(filename, document.located.line, "", message))
        return empty
    return document


def _validate(document: YamlDocument) -> Config:
    """The schema pass: every pydantic error and every dangling reference, with its line."""
    located = document.located
    try:
        config = Config.model_validate(document.data, context={_DEFER_REFERENCES: True})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise ConfigValidationError([_error_issue(e, located) for e in errors]) from None
    problems = config.reference_problems()
    if problems:
        raise ConfigValidationError([located.issue(loc, msg) for loc, msg in problems])
    return config


def _error_issue(error: ErrorDetails, located: Located) -> YamlIssue:
    """A pydantic error as `file:line: key: message`, in words a YAML author can act on."""
    loc: Loc = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx", {})
    section = loc[0] if loc and isinstance(loc[0], str) else ""
    expected = ", ".join(sorted(_REGISTRIES.get(section, {}))) or ctx.get("expected_tags", "")
    if kind == "union_tag_invalid":
        message = f"unknown type {ctx.get('tag')!r}; expected one of: {expected}"
        return located.issue((*loc, "type"), message)
    if kind == "union_tag_not_found":
        return located.issue((*loc, "type"), f"required key missing; one of: {expected}")
    if kind == "extra_forbidden":
        return located.issue(loc, _unknown_key(loc))
    if kind == "missing":
        return located.issue(loc, "required key missing")
    if kind in ("value_error", "assertion_error"):  # our own messages, which show the value
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return located.issue(loc, message)
    message, value = error["msg"], error.get("input")
    if isinstance(value, str | int | float | Decimal) or value is None:
        message += f" (got {show(value)})"
    return located.issue(loc, message)


def _unknown_key(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    message = "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1) if loc else []
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return f"{message}; allowed here: {', '.join(allowed)}" if allowed else message


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys the schema allows at `loc`, found by walking the generated JSON Schema."""
    schema = config_json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    node = _deref(schema, defs)
    for part in loc:
        properties: dict[str, Any] = node.get("properties", {})
        mapping: dict[str, str] = node.get("discriminator", {}).get("mapping", {})
        if isinstance(part, int) and "items" in node:
            node = _deref(node["items"], defs)
        elif str(part) in properties:
            node = _deref(properties[str(part)], defs)
        elif str(part) in mapping:
            node = _deref({"$ref": mapping[str(part)]}, defs)
        elif properties.get("type", {}).get("const") != part:
            return []
    return sorted(node.get("properties", {}))


def _deref(node: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        elif "anyOf" in node:  # Optional[X]: follow X
            node = next((n for n in node["anyOf"] if n.get("type") != "null"), {})
        else:
            return node
