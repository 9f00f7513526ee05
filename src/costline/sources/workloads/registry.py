"""The experiment and endpoint registry (YAML) -> `workloads` rows with `source = "registry"`.

What people declare about their work, which observed pods and Slurm jobs cannot say: owner, team,
purpose, a budget, a time to live, and the outputs that make unit costs (requests, tokens, ...).

```yaml
workloads:                     # or a bare list of entries
  - name: llama3-70b-finetune
    kind: fine_tune            # training_run, sweep_trial, fine_tune, inference_endpoint, ...
    owner: alice@example.com
    team: research
    purpose: domain adaptation for support tickets
    budget_usd: 12000
    ttl: 14d                   # 90s, 30m, 72h, 14d, 2w
    outputs: {tokens: 2.1e9, evals: 12}
    tags: {project: support-llm}
    match:                     # which observed workloads this entry describes
      name: "llama3-70b-ft-*"  # a glob on workloads.name (Slurm JobName, k8s controller name)
      labels: {app: llama-ft}  # and/or a label selector on workloads.tags (all must equal)
    storage:                   # the run's checkpoints and datasets: their storage cost is its own
      - s3://ml-checkpoints/llama3-70b-ft/
      - s3://ml-datasets/support-tickets/v4/
```

How analyses join the registry to observed workloads (source kubernetes or slurm): an observed row
`w` belongs to a registry row `r` when `w.name GLOB r.tags['costline.match.name']` (DuckDB GLOB:
`*`, `?`, `[...]`), or, for a label selector, when every `k=v` of `r.tags['costline.match.labels']`
(written in `Selector` syntax, `app=llama-ft,team=research`) equals `w.tags[k]`; both given means
both must hold. With no `match`, the name must equal the entry's `name`. The registry row's
`workload_id` is `registry:<name>`; `team`, `owner` and `purpose` have their own columns.
`storage` travels in `tags['costline.storage']`, one `bucket/prefix` URI a line (`s3://`, `gs://`,
`az://container/...`); see `costline.economics.declared` for how it is priced.

A registry file is the whole declared state of what it declares: ingesting it again once edited
replaces every entry that file (by its absolute path, `source_path`) declared before, so an entry
taken out of the file is gone and an edited budget is the only budget. An entry's name is its key
across files too: a name declared by another file ingested later moves to that file. Two files of
one ingestion that declare the same name are an error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from costline.errors import IngestError
from costline.sources.base import SourceBatch, SourceFile, arrow_batch
from costline.sources.records import map_columns, records_table
from costline.yamlfile import Loc, YamlIssue, read_yaml, show

MATCH_NAME_TAG = "costline.match.name"
MATCH_LABELS_TAG = "costline.match.labels"
STORAGE_TAG = "costline.storage"
STORAGE_URI = re.compile(r"^(s3|gs|az)://([^/\s]+)(/.*)?$")

Kind = Literal[
    "training_run",
    "sweep_trial",
    "fine_tune",
    "inference_endpoint",
    "batch_job",
    "notebook",
    "pipeline_stage",
]

_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> dt.timedelta:
    """`72h` -> 3 days; units s, m, h, d, w."""
    m = _TTL.match(text)
    if m is None:
        raise ValueError(f"expected a duration like 72h, 14d or 30m (got {text!r})")
    return dt.timedelta(seconds=float(m.group(1)) * _TTL_UNITS[m.group(2)])


class Match(BaseModel):
    """Which observed workloads an entry describes: a name glob, a label selector, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    name: Annotated[str, Field(min_length=1)] | None = None
    labels: dict[str, str] | None = None

    @model_validator(mode="after")
    def _something(self) -> Match:
        if self.name is None and not self.labels:
            raise ValueError("give `name` (a glob) or `labels` (a selector), or both")
        return self


class RegistryEntry(BaseModel):
    """One declared experiment, endpoint or job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    kind: Kind
    owner: str | None = None
    team: str | None = None
    purpose: str | None = None
    budget_usd: Annotated[Decimal, Field(ge=0)] | None = None
    ttl: dt.timedelta | None = None
    outputs: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    match: Match | None = None
    storage: list[str] = Field(default_factory=list)

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: list[str]) -> list[str]:
        for uri in value:
            if STORAGE_URI.match(uri) is None:
                raise ValueError(f"expected s3://bucket/prefix, gs://... or az://... (got {uri!r})")
        return value

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_ttl(value) if isinstance(value, str) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else show(v) for k, v in value.items()}
        return value


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workloads: list[RegistryEntry]


def read_registry(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Each registry YAML file as one batch; every problem is reported with its file and line."""
    batches = []
    declared_in: dict[str, Path] = {}
    for f in files:
        entries = load_registry(f)
        for e in entries:
            if declared_in.setdefault(e.name, f.path) != f.path:
                raise IngestError(
                    f"duplicate name {e.name!r}: {declared_in[e.name]} declares it too",
                    path=str(f.path),
                )
        _, scope = registry_state(f)
        rows = [{**entry_row(e), "source_path": scope["source_path"]} for e in entries]
        batches.append(
            arrow_batch(
                "workloads",
                f,
                records_table("workloads", rows),
                dialect="registry-yaml",
                json_map_columns=map_columns("workloads"),
                replace_on=["workload_id"],
                newest_by="observed_at",  # null: this ingestion's entries win by name
                replace_scope=scope,
            )
        )
    return batches


def registry_state(f: SourceFile) -> tuple[str, dict[str, str]]:
    """The ledger rows a registry file is the whole state of: its entries, by its absolute path."""
    return "workloads", {"source": "registry", "source_path": str(f.path.absolute())}


def load_registry(f: SourceFile) -> list[RegistryEntry]:
    """Validate a registry file: `file:line: key: message` for every issue found."""
    issues: list[YamlIssue] = []
    doc = read_yaml(f.path, issues)
    if doc is None:
        raise _issues_error(issues)
    data: Any = doc.data
    prefix: Loc = ()
    if isinstance(data, list):
        data, prefix = {"workloads": data}, ("workloads",)
    try:
        registry = Registry.model_validate(data)
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False):
            loc: Loc = tuple(error["loc"])
            shown_loc = loc[1:] if prefix and loc[:1] == prefix else loc
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] == "missing":
                message = "required key missing"
            found.append(doc.located.issue(shown_loc, message))
        raise _issues_error(found) from None
    names = [e.name for e in registry.workloads]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        at = names.index(dupes[0], names.index(dupes[0]) + 1)
        loc = (at, "name") if prefix else ("workloads", at, "name")
        raise _issues_error([doc.located.issue(loc, f"duplicate name {dupes[0]!r}")])
    return registry.workloads


def _issues_error(issues: Sequence[YamlIssue]) -> IngestError:
    return IngestError("\n".join(str(i) for i in issues))


def entry_row(entry: RegistryEntry) -> dict[str, Any]:
    """A registry entry as a `workloads` row; `match` travels in tags (see the module docstring)."""
    tags = dict(entry.tags)
    match = entry.match or Match(name=entry.name)
    if match.name is not None:
        tags[MATCH_NAME_TAG] = match.name
    if match.labels:
        tags[MATCH_LABELS_TAG] = ",".join(f"{k}={v}" for k, v in sorted(match.labels.items()))
    if entry.storage:
        tags[STORAGE_TAG] = "\n".join(entry.storage)
    if entry.team is not None:
        tags.setdefault("team", entry.team)
    return {
        "workload_id": f"registry:{entry.name}",
        "kind": entry.kind,
        "name": entry.name,
        "tags": tags,
        "owner": entry.owner,
        "team": entry.team,
        "purpose": entry.purpose,
        "budget_usd": entry.budget_usd,
        "ttl": entry.ttl,
        "outputs": entry.outputs or None,
        "status": "declared",
        "source": "registry",
    }
