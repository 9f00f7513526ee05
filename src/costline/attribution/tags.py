"""First attribution: team and cost domain read from tags, as Ibis expressions.

Tag keys are spelled differently across providers and teams (`team`, `Team`, `cost-center`), and
values too (`foundation-models`, `Foundation Models`): keys are looked up through aliases, values
are case-folded with spaces and underscores as hyphens. A line without the tag is `(untagged)`.
The full attribution (owners, inheritance, required tags, cost layers) builds on this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis

UNTAGGED = "(untagged)"

DEFAULT_ALIASES: Mapping[str, Sequence[str]] = {
    "team": ("team", "Team", "TEAM", "owner-team", "team_name"),
    "workload_type": ("workload-type", "workload_type", "workload", "WorkloadType", "Workload"),
}

# Workload kinds, as teams tag them, to the cost domains of DESIGN.md.
DOMAIN_OF_WORKLOAD: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "training",
            "pretraining",
            "fine-tuning",
            "finetuning",
            "experiment",
            "notebook",
            "checkpoints",
        ),
        "training",
    ),
    **dict.fromkeys(("inference", "serving", "endpoint", "online-inference"), "online_inference"),
    **dict.fromkeys(
        (
            "embeddings",
            "evaluation",
            "batch",
            "batch-inference",
            "reindexing",
            "captioning",
            "summarization",
        ),
        "batch_ai",
    ),
    **dict.fromkeys(
        ("platform", "shared", "billing", "vector-db", "observability"), "shared_platform"
    ),
    **dict.fromkeys(("web", "etl", "analytics", "non-ai"), "non_ai"),
}
UNCLASSIFIED = "(unclassified)"


def normalized(value: ibis.StringValue) -> ibis.StringValue:
    return value.strip().lower().re_replace(r"[\s_]+", "-")


def tag(
    lines: ibis.Table, canonical: str, aliases: Mapping[str, Sequence[str]] = DEFAULT_ALIASES
) -> ibis.StringValue:
    """The first present alias of a tag key, normalised; NULL when none is present."""
    keys = aliases.get(canonical, (canonical,))
    values = [lines.Tags.get(k) for k in keys]
    return normalized(ibis.coalesce(*values))


def team(
    lines: ibis.Table, aliases: Mapping[str, Sequence[str]] = DEFAULT_ALIASES
) -> ibis.StringValue:
    return tag(lines, "team", aliases).fill_null(UNTAGGED).name("team")


def cost_domain(
    lines: ibis.Table, aliases: Mapping[str, Sequence[str]] = DEFAULT_ALIASES
) -> ibis.StringValue:
    """The cost domain from the workload tag: `(untagged)` without one, `(unclassified)` for a
    workload kind this table does not know (shown, never guessed into `non_ai`)."""
    kind = tag(lines, "workload_type", aliases)
    cases = [(kind == k, v) for k, v in DOMAIN_OF_WORKLOAD.items()]
    return ibis.cases(*cases, else_=ibis.ifelse(kind.isnull(), UNTAGGED, UNCLASSIFIED)).name(
        "cost_domain"
    )
