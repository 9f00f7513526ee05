"""The canonical ledger: every table of DESIGN.md with its types, as Ibis schemas.

`cost_lines` is generated from the FOCUS column catalogues shipped in `data/` (FOCUS 1.2 names, plus
the 1.3 and 1.4 columns), and so are the tables of FOCUS 1.4's other datasets (Contract Commitment,
Billing Period, Invoice Detail), so the schema, version detection and export read one source of truth.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import ibis
import ibis.expr.datatypes as dt
from ibis.expr.schema import Schema

from costline.money import MONEY_DTYPE

TS = dt.Timestamp(timezone="UTC", scale=6)
STR = dt.string
TAGS = dt.Map(dt.string, dt.string)

# FOCUS versions in order; "0.5" and "1.0-preview" are the pre-1.0 drafts some tools still emit.
FOCUS_VERSIONS = ("0.5", "1.0-preview", "1.0", "1.1", "1.2", "1.3", "1.4")

# FOCUS 1.4's datasets, and the ledger table each one is read into.
COST_AND_USAGE = "Cost and Usage"
DATASET_TABLES = {
    COST_AND_USAGE: "cost_lines",
    "Contract Commitment": "contract_commitments",
    "Billing Period": "billing_periods",
    "Invoice Detail": "invoice_details",
}


@dataclass(frozen=True)
class FocusColumn:
    """One FOCUS column: its type, and in which versions it exists and is mandatory or nullable.

    `feature_level`/`allows_nulls` are 1.0-1.3's (for the other datasets, 1.4's); 1.4 changed a few
    (HostProviderName may be null, PricingCurrency may not), so 1.4's are kept apart.
    """

    name: str
    introduced: str
    data_type: str  # Decimal, Date/Time, String, JSON
    feature_level: str  # Mandatory, Conditional, Recommended
    versions: frozenset[str]
    allows_nulls: bool = True
    feature_level_1_4: str | None = None  # None when the column is not in 1.4
    allows_nulls_1_4: bool = True
    allowed_values: tuple[str, ...] = ()

    @property
    def dtype(self) -> dt.DataType:
        if self.name in ("Tags", "AllocatedTags"):
            return TAGS
        return {"Decimal": MONEY_DTYPE, "Date/Time": TS}.get(self.data_type, STR)

    def mandatory_in(self, version: str) -> bool:
        level = self.feature_level_1_4 if version == "1.4" else self.feature_level
        return level == "Mandatory" and version in self.versions

    def nullable_in(self, version: str) -> bool:
        return self.allows_nulls_1_4 if version == "1.4" else self.allows_nulls


def _csv_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("costline").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def _focus_1_4() -> dict[str, dict[str, dict[str, str]]]:
    """FOCUS 1.4's column catalogue (`data/focus_1_4_columns.csv`): dataset -> column -> row."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for r in _csv_rows("focus_1_4_columns.csv"):
        out.setdefault(r["Dataset"], {})[r["ColumnId"]] = r
    return out


def _values(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(v for v in row.get("AllowedValues", "").split("|") if v)


@functools.cache
def focus_columns() -> tuple[FocusColumn, ...]:
    """All FOCUS Cost and Usage columns of versions 1.0 to 1.4, in catalogue order (1.4's new last)."""
    in_14 = _focus_1_4()[COST_AND_USAGE]
    out = []
    for r in _csv_rows("focus_cost_and_usage_columns_1.0-1.3.csv"):
        versions = {v for v in ("1.0", "1.1", "1.2", "1.3") if r[f"In_{v.replace('.', '_')}"]}
        r14 = in_14.get(r["ColumnId"])
        out.append(
            FocusColumn(
                name=r["ColumnId"],
                introduced=r["VersionIntroduced"],
                data_type=r["DataType"],
                feature_level=r["FeatureLevel"],
                versions=frozenset(versions | ({"1.4"} if r14 else set())),
                allows_nulls=r["AllowsNulls"] == "True",
                feature_level_1_4=r14["FeatureLevel"] if r14 else None,
                allows_nulls_1_4=r14["AllowsNulls"] == "True" if r14 else True,
                allowed_values=_values(r14) if r14 else (),
            )
        )
    known = {c.name for c in out}
    out += [_column_1_4(r) for name, r in in_14.items() if name not in known]
    return tuple(out)


def _column_1_4(r: dict[str, str]) -> FocusColumn:
    intro = r["VersionIntroduced"]
    return FocusColumn(
        name=r["ColumnId"],
        introduced=intro,
        data_type=r["DataType"],
        feature_level=r["FeatureLevel"],
        versions=frozenset(v for v in ("1.3", "1.4") if FOCUS_VERSIONS.index(v) >= _order(intro)),
        allows_nulls=r["AllowsNulls"] == "True",
        feature_level_1_4=r["FeatureLevel"],
        allows_nulls_1_4=r["AllowsNulls"] == "True",
        allowed_values=_values(r),
    )


def _order(version: str) -> int:
    return FOCUS_VERSIONS.index(version) if version in FOCUS_VERSIONS else 0


@functools.cache
def focus_column_map() -> dict[str, FocusColumn]:
    return {c.name: c for c in focus_columns()}


def focus_columns_of(version: str) -> list[FocusColumn]:
    """The Cost and Usage columns a FOCUS `version` (1.0 .. 1.4) defines."""
    return [c for c in focus_columns() if version in c.versions]


@functools.cache
def dataset_columns(dataset: str) -> tuple[FocusColumn, ...]:
    """The columns of one of FOCUS's other datasets (Contract Commitment 1.3+, Billing Period and
    Invoice Detail 1.4), in catalogue order."""
    return tuple(_column_1_4(r) for r in _focus_1_4()[dataset].values())


# Derived attribution columns, computed by `attribution/`, never typed by hand.
ATTRIBUTION_COLUMNS = (
    "team",
    "project",
    "model",
    "model_version",
    "environment",
    "workload_type",
    "endpoint",
    "pipeline",
    "region",
    "accelerator",
    "tenant",
    "owner",
    "cost_domain",
    "cost_layer",
)

COST_DOMAINS = ("training", "online_inference", "batch_ai", "shared_platform", "non_ai")
COST_LAYERS = (
    "gpu_compute",
    "cpu_compute",
    "tokens",
    "storage",
    "vector_db",
    "network_egress",
    "observability",
    "control_plane",
    "other",
)

# Columns costline adds to every cost line.
COST_LINE_META = {
    "x_extra": TAGS,  # other x_ (and unknown) columns of the source, by their source name
    "x_source": STR,  # the dialect that was read: focus, aws-cur, azure-ea, ...
    "x_focus_version": STR,  # FOCUS version detected from the source's columns
    "x_ingestion_id": STR,
}


def dataset_schema(dataset: str) -> Schema:
    """The ledger table of a FOCUS dataset other than Cost and Usage: its 1.4 columns, and costline's."""
    fields: dict[str, dt.DataType] = {c.name: c.dtype for c in dataset_columns(dataset)}
    fields.update(COST_LINE_META)
    return ibis.schema(fields)


def cost_lines_schema() -> Schema:
    fields: dict[str, dt.DataType] = {c.name: c.dtype for c in focus_columns()}
    fields.update(COST_LINE_META)
    fields.update({name: STR for name in ATTRIBUTION_COLUMNS})
    return ibis.schema(fields)


def _attributed(fields: dict[str, dt.DataType]) -> Schema:
    out = dict(fields)
    out.update({name: STR for name in ATTRIBUTION_COLUMNS if name not in out})
    out.setdefault("x_ingestion_id", STR)
    return ibis.schema(out)


# No stored attribution columns: a month of a large fleet is tens of millions of samples, and each
# empty column costs DuckDB ~0.3 s per million rows to write. Who used a GPU comes from its pod or
# job, joined to `workloads` at query time by `attribution/`, so it follows the config as it changes.
GPU_SAMPLES = ibis.schema(
    {
        "ts": TS,
        "host": STR,
        "gpu_uuid": STR,
        "gpu_index": dt.int32,
        "gpu_model": STR,
        "mig_profile": STR,
        "mig_instance_id": STR,
        "gr_engine_active": dt.float64,
        "sm_active": dt.float64,
        "tensor_active": dt.float64,
        "dram_active": dt.float64,
        "gpu_util": dt.float64,
        "fb_used_mib": dt.float64,
        "fb_total_mib": dt.float64,
        "power_w": dt.float64,
        "namespace": STR,
        "pod": STR,
        "container": STR,
        "job_id": STR,
        "sample_seconds": dt.float64,
        # 1/k when k pods time-slice one GPU (the device series is repeated on each): summing
        # sample_seconds * time_slice_share over pods counts the GPU once. 1 when not shared.
        "time_slice_share": dt.float64,
        "source": STR,  # dcgm-file, prometheus
        "x_ingestion_id": STR,
    }
)

WORKLOADS = _attributed(
    {
        "workload_id": STR,
        "kind": STR,  # training_run, sweep_trial, fine_tune, inference_endpoint, batch_job, ...
        "name": STR,
        "tags": TAGS,
        "start": TS,
        "end": TS,
        "gpus_requested": dt.Decimal(18, 6),
        "gpu_model": STR,
        "pool": STR,
        "capacity_type": STR,  # on_demand, spot, reserved
        "ttl": dt.Interval("us"),
        "budget_usd": MONEY_DTYPE,
        "status": STR,
        "outputs": dt.Map(dt.string, dt.float64),  # requests, successes, tokens, custom units
        "source": STR,  # kubernetes, kube-state-metrics, slurm, registry
        "namespace": STR,
        "node": STR,
        "user": STR,  # who launched it (Slurm User, pod's creator label)
        "account": STR,  # Slurm account, or cloud account
        "partition": STR,  # Slurm partition / node pool
        "gpu_seconds": dt.float64,  # GPUs held x seconds held, when the source says
        "purpose": STR,
        # When the source saw this state (a kubectl or sacct dump's time, a pull's last instant):
        # a workload's newest state wins, whatever order its dumps are ingested in. Null for the
        # registry, whose latest ingestion is its state.
        "observed_at": TS,
        "source_path": STR,  # the file (absolute path) or pull this row's state was read from
    }
)

LLM_REQUESTS = _attributed(
    {
        "ts": TS,
        "request_id": STR,
        "provider": STR,
        "model": STR,
        "input_tokens": dt.int64,
        "cached_input_tokens": dt.int64,
        "cache_write_tokens": dt.int64,
        "output_tokens": dt.int64,
        "reasoning_tokens": dt.int64,
        "requests": dt.int64,  # 1, or the count of a rollup row
        "latency_ms": dt.float64,
        "status": STR,
        "max_tokens": dt.int64,
        "system_prompt_tokens": dt.int64,
        "prompt_id": STR,
        "app": STR,
        "user": STR,
        "tags": TAGS,
        "cost_usd": MONEY_DTYPE,  # null = unpriced, never zero
        # The output tokens' part of cost_usd (at the output price); the rest is the input side
        # (fresh, cached and cache-write input, and any per-request fee). Null when unpriced.
        "output_cost_usd": MONEY_DTYPE,
        "price_version": STR,
        # What the token audit (`optimize/tokens`) reads when a log carries it; NULL when not.
        "conversation_id": STR,  # the conversation, session or thread the call belongs to
        "turn": dt.int64,  # the call's turn in its conversation (1 = first); NULL: by time
        "prompt_hash": STR,  # a hash of the whole prompt: identical requests share it
        "stop_reason": STR,  # why the output ended: stop, end_turn, length, max_tokens, ...
        "prefix_hashes": dt.Array(dt.string),  # ids of the prompt's prefix blocks, in order
        "prefix_block_tokens": dt.int64,  # tokens per prefix block (Mooncake: 512)
    }
)

STORAGE_OBJECTS = _attributed(
    {
        "snapshot_date": dt.date,
        "provider": STR,
        "bucket": STR,
        "key": STR,
        "size_bytes": dt.int64,
        "object_count": dt.int64,
        "storage_class": STR,
        "last_modified": TS,
        "last_accessed": TS,
        "tags": TAGS,
        "is_checkpoint": dt.boolean,
    }
)

# Lifecycle rules of buckets (S3 lifecycle configurations, GCS lifecycle rules): one row a rule and
# prefix; a bucket read with no rules has one row with a null rule_id, so "none" is recorded too.
STORAGE_LIFECYCLE = ibis.schema(
    {
        "provider": STR,
        "bucket": STR,
        "rule_id": STR,
        "prefix": STR,  # "" for the whole bucket
        "enabled": dt.boolean,
        "filtered_by_tag": dt.boolean,  # the rule also needs object tags: it covers only some keys
        "actions": STR,  # e.g. "transition GLACIER after 30d; expire after 365d"
        "x_ingestion_id": STR,
    }
)

METRICS = ibis.schema(
    {"ts": TS, "metric": STR, "value": dt.float64, "labels": TAGS, "x_ingestion_id": STR}
)

ANNOTATIONS = ibis.schema(
    {
        "annotation_id": STR,
        "ts": TS,
        "end": TS,
        "kind": STR,
        "scope": TAGS,
        "text": STR,
        "source": STR,
        "x_ingestion_id": STR,
    }
)

# State tables.
INGESTIONS = ibis.schema(
    {
        "fingerprint": STR,  # sha256 of the file's bytes: the idempotency key
        "ingestion_id": STR,  # one per transaction; shared by the files loaded together
        "source": STR,  # focus, dcgm, llm, ...
        "dialect": STR,
        "focus_version": STR,
        "path": STR,
        "size_bytes": dt.int64,
        "rows": dt.int64,
        "replaced_rows": dt.int64,
        "ingested_at": TS,
    }
)

FINDINGS = ibis.schema(
    {
        "fingerprint": STR,
        "kind": STR,
        "severity": STR,
        "status": STR,
        "title": STR,
        "summary": STR,
        "scope": TAGS,
        "owner": STR,
        "impact_usd": MONEY_DTYPE,
        "window_start": TS,
        "window_end": TS,
        "first_seen": TS,
        "last_seen": TS,
        "snoozed_until": TS,
        "body": dt.JSON(),  # the whole Finding as JSON (versioned)
    }
)

OUTBOX = ibis.schema(
    {
        "message_id": STR,
        "finding_fingerprint": STR,
        "channel": STR,
        "route": STR,
        "payload": dt.JSON(),
        "status": STR,  # pending, sent, failed
        "attempts": dt.int32,
        "next_attempt_at": TS,
        "last_error": STR,
        "created_at": TS,
        "sent_at": TS,
    }
)

WATERMARKS = ibis.schema({"source": STR, "key": STR, "value": TS, "updated_at": TS})


def tables() -> dict[str, Schema]:
    """Every ledger table, data and state, by name."""
    return {
        "cost_lines": cost_lines_schema(),
        "gpu_samples": GPU_SAMPLES,
        "workloads": WORKLOADS,
        "llm_requests": LLM_REQUESTS,
        "storage_objects": STORAGE_OBJECTS,
        "storage_lifecycle": STORAGE_LIFECYCLE,
        "metrics": METRICS,
        "annotations": ANNOTATIONS,
        **{t: dataset_schema(d) for d, t in DATASET_TABLES.items() if d != COST_AND_USAGE},
        "ingestions": INGESTIONS,
        "findings": FINDINGS,
        "outbox": OUTBOX,
        "watermarks": WATERMARKS,
    }
