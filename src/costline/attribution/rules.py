"""Attribution from configuration: tag aliases, value folding, inheritance, owners, cost layers.

`Rules.from_config` reads `tags:` and `owners:` of costline.yaml. `derive_lines` adds the derived
attribution columns of DESIGN.md to cost lines as Ibis expressions (Ibis in, Ibis out), so they
follow the configuration as it changes and run where the data is:

- a tag is the first present of its canonical key and its aliases (configured ones first, then
  the common spellings in `costline.attribution.tags.DEFAULT_ALIASES`), folded (`Foundation Models`
  -> `foundation-models`) unless `case_fold_values: false`;
- a line without it inherits its sub-account's default (`account_defaults`);
- `owner` is the first configured owner whose selector matches the line's derived columns, else
  the team;
- `cost_domain` follows the workload type; `cost_layer` the service and, for compute, whether the
  instance has GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import ibis

from costline.attribution import tags as tagging
from costline.config import Config, Owner, SharedPool
from costline.model import Selector
from costline.schema import ATTRIBUTION_COLUMNS

EXTRA_ALIASES: Mapping[str, Sequence[str]] = {
    "project": ("project", "Project", "PROJECT"),
    "model": ("model", "Model", "model-name"),
    "model_version": ("model-version", "model_version", "ModelVersion"),
    "environment": ("environment", "env", "Environment", "Env", "stage"),
    "endpoint": ("endpoint", "Endpoint", "app"),
    "pipeline": ("pipeline", "Pipeline"),
    "tenant": ("tenant", "Tenant", "customer"),
    "accelerator": ("accelerator", "gpu", "gpu-model"),
    "pool": ("pool", "gpu-pool", "cluster", "Cluster", "node-pool"),
}
# The derived columns read from tags; region, owner, cost_domain and cost_layer are computed.
TAG_COLUMNS = tuple(
    c for c in ATTRIBUTION_COLUMNS if c not in ("region", "owner", "cost_domain", "cost_layer")
)
PRODUCTION = ("prod", "production", "prd")
# Compute lines of GPU instances, by how providers name them: AWS p/g families, GCP a2/a3/g2,
# Azure N-series, Lambda's gpu_*, anything saying GPU or NVIDIA.
GPU_INSTANCE = (
    r"(?i)(\b[pg][3-6][a-z]*\.\d*x?large|\b(a2|a3|g2)-[a-z]+-\d+g?|standard_n[cdv]|"
    r"\bn[cdv]\d+|\bgpu|nvidia|h100|a100|l40s|gh200)"
)
LARGE_GPU_INSTANCE = r"(?i)(48xlarge|24xlarge|-8g\b|highgpu-8g|megagpu|nd96|nd40|gpu_8x)"


def fold(value: ibis.StringValue) -> ibis.StringValue:
    return tagging.normalized(value)


def fold_text(value: object) -> str | None:
    """`fold` for a Python value (workload tags read back from the engine)."""
    if value is None:
        return None
    text = "-".join(str(value).strip().lower().replace("_", " ").split())
    return text or None


@dataclass(frozen=True)
class Rules:
    """The attribution rules of one configuration (the defaults when there is none)."""

    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    case_fold: bool = True
    required: tuple[str, ...] = ()
    account_defaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    namespace_defaults: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    owners: tuple[Owner, ...] = ()
    shared_pools: tuple[SharedPool, ...] = ()
    model_aliases: Mapping[str, str] = field(default_factory=dict)  # see `model_name`

    @classmethod
    def from_config(cls, config: Config | None) -> Rules:
        if config is None:
            return cls()
        t = config.tags
        return cls(
            aliases={k: tuple(v) for k, v in t.aliases.items()},
            case_fold=t.case_fold_values,
            required=tuple(t.required),
            account_defaults=t.account_defaults,
            namespace_defaults=t.namespace_defaults,
            owners=tuple(config.owners),
            shared_pools=tuple(config.shared_pools),
            model_aliases=dict(config.models.aliases),
        )

    def keys(self, canonical: str) -> tuple[str, ...]:
        """The tag keys that mean `canonical`, in the order they are looked up."""
        known = (
            tagging.DEFAULT_ALIASES.get(canonical) or EXTRA_ALIASES.get(canonical) or (canonical,)
        )
        ordered = [canonical, *self.aliases.get(canonical, ()), *known]
        return tuple(dict.fromkeys(ordered))

    def value(self, raw: ibis.StringValue) -> ibis.StringValue:
        return fold(raw) if self.case_fold else raw.strip().nullif("")

    def tag(self, lines: ibis.Table, canonical: str, *, tags: str = "Tags") -> ibis.StringValue:
        """A tag of each line: its own (any alias), else its sub-account's default."""
        found = self.value(ibis.coalesce(*[lines[tags].get(k) for k in self.keys(canonical)]))
        defaults = [
            (lines.SubAccountId == account, values[canonical])
            for account, values in self.account_defaults.items()
            if canonical in values and "SubAccountId" in lines.columns
        ]
        if defaults:
            inherited = self.value(ibis.cases(*defaults, else_=ibis.null("string")))
            found = ibis.coalesce(found, inherited)
        return found

    def tag_text(self, tags: Mapping[str, str], canonical: str,
                 namespace: str | None = None) -> str | None:  # fmt: skip
        """`tag` for one workload's tags, inheriting its namespace's defaults."""
        raw = next((tags[k] for k in self.keys(canonical) if tags.get(k)), None)
        if raw is None and namespace is not None:
            raw = self.namespace_defaults.get(namespace, {}).get(canonical)
        if raw is None:
            return None
        return fold_text(raw) if self.case_fold else str(raw).strip() or None

    def model_name(self, value: ibis.StringValue) -> ibis.StringValue:
        """A model's one name (`models.aliases` of the config) from a name as a bill's tag or an
        LLM log writes it (`value` already folded by `value`, as the aliases are compared)."""
        cases = [(value == self._model_key(alias), self._model_key(name))
                 for alias, name in self.model_aliases.items()]  # fmt: skip
        return ibis.cases(*cases, else_=value) if cases else value

    def model_text(self, value: str | None) -> str | None:
        """`model_name` for one (folded) value read back from the engine (a workload's tag)."""
        if value is None:
            return None
        keys = {self._model_key(a): self._model_key(n) for a, n in self.model_aliases.items()}
        return keys.get(value, value)

    def _model_key(self, name: str) -> str:
        return (fold_text(name) or name) if self.case_fold else name.strip()

    def owner_of(self, values: Mapping[str, object]) -> str | None:
        """The first configured owner whose selector matches `values`."""
        for owner in self.owners:
            if owner.match.matches(values):
                return owner.name
        return None

    def owner(self, table: ibis.Table) -> ibis.StringValue:
        """`owner_of` as an expression over derived columns, else the team."""
        cases = []
        for owner in self.owners:
            terms = [
                table[d].isin(list(accepted)) if d in table.columns else ibis.literal(False)
                for d, accepted in owner.match.root.items()
            ]
            condition = terms[0]
            for term in terms[1:]:
                condition = condition & term
            cases.append((condition.fill_null(False), owner.name))
        if not cases:
            return table.team
        return ibis.cases(*cases, else_=table.team)


def domain_of(workload_type: ibis.StringValue) -> ibis.StringValue:
    """The cost domain of a (folded) workload type: NULL when untagged, `(unclassified)` when unknown."""
    cases = [(workload_type == k, v) for k, v in tagging.DOMAIN_OF_WORKLOAD.items()]
    return ibis.cases(*cases, else_=ibis.ifelse(workload_type.isnull(), None, tagging.UNCLASSIFIED))


def instance_text(lines: ibis.Table) -> ibis.StringValue:
    """What a line says about its instance type (description, SKU, AWS usage type)."""
    parts = [
        lines[c].fill_null("")
        for c in ("ChargeDescription", "SkuId", "ResourceType")
        if c in lines.columns
    ]
    if "x_extra" in lines.columns:
        parts.append(lines.x_extra.get("x_UsageType").fill_null(""))
    text = parts[0] if parts else ibis.literal("")
    for p in parts[1:]:
        text = text + " " + p
    return text


def bucket_of(lines: ibis.Table) -> ibis.StringValue:
    """The bucket (or storage account) a line is billed on: the last segment of its ResourceId
    (`atlas-data`, `arn:aws:s3:::atlas-data`, `//storage.googleapis.com/projects/_/buckets/atlas-data`),
    else its ResourceName."""
    rid = lines.ResourceId.re_extract(r"([^/:]+)/?$", 1).nullif("")
    return ibis.coalesce(rid, lines.ResourceName)


def cost_layer(lines: ibis.Table) -> ibis.StringValue:
    """gpu_compute, cpu_compute, tokens, storage, vector_db, network_egress, observability,
    control_plane or other, from the line's service and instance."""

    def column(name: str) -> ibis.StringValue:
        return lines[name].fill_null("") if name in lines.columns else ibis.literal("")

    category = column("ServiceCategory")
    service = column("ServiceName").lower()
    gpu = instance_text(lines).re_search(GPU_INSTANCE)
    return ibis.cases(
        (category == "AI and Machine Learning", "tokens"),
        (service.re_search(r"kubernetes|\beks\b|\baks\b|\bgke\b"), "control_plane"),
        (
            service.re_search(r"opensearch|ai search|pinecone|vector|weaviate|qdrant|milvus"),
            "vector_db",
        ),
        ((category == "Compute") & gpu, "gpu_compute"),
        (category == "Compute", "cpu_compute"),
        (category == "Storage", "storage"),
        (category == "Networking", "network_egress"),
        (service.re_search(r"cloudwatch|monitor|logging|datadog|observab"), "observability"),
        (category == "Management and Governance", "observability"),
        else_="other",
    )


def derive_lines(
    lines: ibis.Table, rules: Rules | None = None, *, only: Collection[str] | None = None
) -> ibis.Table:
    """Cost lines with the derived attribution columns of DESIGN.md (replacing stored ones).

    `only`: the derived columns a caller reads; the others are left out (with the stored ones),
    a smaller query to build and to run: each is a lookup of every tag alias, folded. Those
    columns are the same as deriving all of them gives (`owner` reads what its rules select on).
    """
    rules = rules or Rules()
    need = _needed(rules, only)
    derived: dict[str, ibis.Value] = {c: rules.tag(lines, c) for c in TAG_COLUMNS if c in need}
    if "region" in need:
        derived["region"] = lines.RegionId if "RegionId" in lines.columns else ibis.null("string")
    stored = (*TAG_COLUMNS, "region", "owner", "cost_domain", "cost_layer")
    out = lines.drop(*[c for c in stored if c in lines.columns]).mutate(**derived)
    # Read back from the columns just made, not rebuilt from the tags: aliases and domains
    # compare a tag with many values, and each comparison would repeat its whole lookup.
    later: dict[str, Callable[[], ibis.Value]] = {
        "model": lambda: rules.model_name(out.model),
        "cost_domain": lambda: domain_of(out.workload_type),
        "cost_layer": lambda: cost_layer(out),
    }
    made = {c: make() for c, make in later.items() if c in need}
    out = out.mutate(**made) if made else out
    return out.mutate(owner=rules.owner(out)) if "owner" in need else out


DERIVED = (*TAG_COLUMNS, "region", "cost_domain", "cost_layer", "owner")


def _needed(rules: Rules, only: Collection[str] | None) -> set[str]:
    """The derived columns to make for `only` (all of them for None): what is asked for, the
    team and the columns the owner rules select on for `owner`, the workload type for
    `cost_domain`."""
    need = set(DERIVED if only is None else only)
    if "owner" in need:
        need |= {"team", *(d for o in rules.owners for d in o.match.root)}
    if "cost_domain" in need:
        need.add("workload_type")
    return need


def derive_requests(requests: ibis.Table, rules: Rules | None = None) -> ibis.Table:
    """LLM requests with `model` named as cost lines name it: folded like a tag value, then
    through `models.aliases`, so tokens by model and spend by model show one row per model."""
    rules = rules or Rules()
    return requests.mutate(model=rules.model_name(rules.value(requests.model)))


# Short names a scope may use for FOCUS columns (budgets, forecasts, --where).
SCOPE_COLUMNS: Mapping[str, str] = {
    "provider": "ProviderName",
    "service": "ServiceName",
    "account": "SubAccountName",
    "account_id": "SubAccountId",
    "usage_type": "SkuId",
}


def scope_column(derived: ibis.Table, dimension: str) -> ibis.StringValue:
    """The column of derived lines a scope dimension names; `KeyError` when none does."""
    column = SCOPE_COLUMNS.get(dimension, dimension)
    if column not in derived.columns:
        raise KeyError(dimension)
    return derived[column].cast("string")


def select(derived: ibis.Table, selector: Selector) -> ibis.Table:
    """Derived lines (`derive_lines`) within a selector: every dimension one of its values.

    Raises `KeyError(dimension)` for a dimension that is neither a derived attribution column,
    a FOCUS column nor one of `SCOPE_COLUMNS`.
    """
    for dimension, accepted in selector.root.items():
        column = scope_column(derived, dimension)
        derived = derived.filter(column.isin(list(accepted)))
    return derived
