"""A period's cost lines, allocated: one row per line group and holder, summing exactly to the input.

`allocate` reads the ledger's tables as Ibis expressions, lets the engine aggregate (GPU-seconds per
host, hour and holder; tagged cost per owner dimensions), and splits each GPU line group's cost in
decimal on the small result (docs/methodology/allocation.md). Reports (`costline.allocation.reports`)
group these rows by any dimension.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import ibis
import pyarrow as pa

from costline.allocation.gpu import gpus_by_host, held_by_hour
from costline.allocation.split import split
from costline.attribution import tags as tagging
from costline.model import Selector

CostColumn = Literal["effective", "billed"]
COST_COLUMNS: Mapping[str, str] = {"effective": "EffectiveCost", "billed": "BilledCost"}
DIMENSIONS = ("team", "project", "model", "environment", "owner", "cost_domain")
# Kinds of allocation rows (the `kind` column).
GPU_USED, GPU_HELD_IDLE, GPU_UNHELD = "gpu_used", "gpu_held_idle", "gpu_unheld"
GPU_UNOBSERVED = "gpu_unobserved"  # a GPU host's line with no sample in its period: by its tags
TAGGED, SHARED = "tagged", "shared"
ALIASES: Mapping[str, Sequence[str]] = {
    **tagging.DEFAULT_ALIASES,
    "project": ("project", "Project", "PROJECT"),
    "model": ("model", "Model", "model-name"),
    "environment": ("environment", "env", "Environment", "Env", "stage"),
    "pool": ("pool", "gpu-pool", "cluster", "Cluster", "node-pool"),
}
DOMAIN_OF_KIND: Mapping[str, str] = {
    "training_run": "training",
    "sweep_trial": "training",
    "fine_tune": "training",
    "notebook": "training",
    "inference_endpoint": "online_inference",
    "batch_job": "batch_ai",
}
MONEY = pa.decimal128(38, 18)
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("pool", pa.string()),
        ("host", pa.string()),
        ("holder", pa.string()),
        *[(d, pa.string()) for d in DIMENSIONS],
        ("gpu_seconds", pa.float64()),
        ("amount", MONEY),
    ]
)


@dataclass(frozen=True)
class Allocation:
    """The allocation rows (`SCHEMA`) and the total of the lines they split."""

    rows: pa.Table
    total: Decimal
    cost: CostColumn
    start: dt.datetime
    end: dt.datetime

    def table(self) -> ibis.Table:
        return ibis.memtable(self.rows)


def normalized(value: object) -> str | None:
    """A tag value as attribution compares it (see `costline.attribution.tags.normalized`)."""
    if value is None:
        return None
    text = "-".join(str(value).strip().lower().replace("_", " ").split())
    return text or None


_TAG_DIMENSIONS = ("team", "project", "model", "environment", "cost_domain")


def _line_dims(lines: ibis.Table) -> dict[str, ibis.Value]:
    return {
        "team": tagging.tag(lines, "team", ALIASES),
        "project": tagging.tag(lines, "project", ALIASES),
        "model": tagging.tag(lines, "model", ALIASES),
        "environment": tagging.tag(lines, "environment", ALIASES),
        "cost_domain": tagging.cost_domain(lines, ALIASES).nullif(tagging.UNTAGGED),
    }


def _workload_dims(
    workloads: ibis.Table, holders: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    """workload_id -> its dimensions, from the workload's tags, owner and kind."""
    if not holders:
        return {}
    w = workloads.filter(workloads.workload_id.isin(list(holders)))
    rows = w.select("workload_id", "kind", "owner", "tags").to_pyarrow().to_pylist()
    out: dict[str, dict[str, str | None]] = {}
    for r in rows:
        tags = dict(r["tags"] or [])

        def tag(name: str, tags: Mapping[str, str] = tags) -> str | None:
            return next(
                (normalized(tags[k]) for k in ALIASES.get(name, (name,)) if tags.get(k)), None
            )

        kind_tag = tag("workload_type")
        domain = DOMAIN_OF_KIND.get(r["kind"] or "") or (
            tagging.DOMAIN_OF_WORKLOAD.get(kind_tag) if kind_tag else None
        )
        out[r["workload_id"]] = {
            "team": tag("team"),
            "project": tag("project"),
            "model": tag("model"),
            "environment": tag("environment"),
            "owner": normalized(r["owner"]),
            "cost_domain": domain,
        }
    return out


def allocate(
    lines: ibis.Table,
    samples: ibis.Table,
    workloads: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    cost: CostColumn = "effective",
    where: Selector | None = None,
    owner_of: Callable[[Mapping[str, str | None]], str | None] | None = None,
) -> Allocation:
    """Allocate the cost of lines charged in [start, end) (see the module and the methodology).

    `where` filters the lines first by FOCUS columns (`ProviderName=AWS`, `ServiceName=...`).
    `owner_of` names the owner of a row from its other dimensions (the config's owner registry);
    without it, or when it names none, a workload's own owner, else the team, is the owner.
    """
    column = COST_COLUMNS[cost]
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    for dimension, accepted in where.root.items() if where else ():
        period = period.filter(period[dimension].isin(list(accepted)))
    hosts = {r["host"]: r for r in gpus_by_host(samples, start, end).to_pyarrow().to_pylist()}
    names = list(hosts) or ["\x00"]
    period = period.mutate(
        host=ibis.cases(
            (period.ResourceName.isin(names), period.ResourceName),
            (period.ResourceId.isin(names), period.ResourceId),
            else_=ibis.null("string"),
        ),
        pool=tagging.tag(period, "pool", ALIASES),
        cost=period[column],
    )
    on_hosts = period.filter(period.host.notnull())
    on_hosts = on_hosts.mutate(**_line_dims(on_hosts))
    gpu_lines = on_hosts.group_by(["host", "ChargePeriodStart", "ChargePeriodEnd"]).aggregate(
        cost=on_hosts.cost.sum(),
        pool=on_hosts.pool.arbitrary(),
        **{d: on_hosts[d].arbitrary() for d in _TAG_DIMENSIONS},
    )
    held = held_by_hour(samples, start, end)
    joined = gpu_lines.join(
        held,
        [
            gpu_lines.host == held.host,
            held.hour >= gpu_lines.ChargePeriodStart,
            held.hour < gpu_lines.ChargePeriodEnd,
        ],
    )
    held_by_line = joined.group_by(
        ["host", "ChargePeriodStart", "hour", "holder", "busy"]
    ).aggregate(held_seconds=joined.held_seconds.sum())
    other = period.filter(period.host.isnull())
    other = other.mutate(**_line_dims(other))
    tagged = other.group_by(["team", "project", "model", "environment", "cost_domain"]).aggregate(
        cost=other.cost.sum()
    )
    groups = gpu_lines.to_pyarrow().to_pylist()
    held_rows = held_by_line.to_pyarrow().to_pylist()
    tagged_rows = tagged.to_pyarrow().to_pylist()
    grand = period.cost.sum().to_pyarrow().as_py()

    by_line: dict[tuple[str, dt.datetime], list[dict[str, object]]] = defaultdict(list)
    for r in held_rows:
        by_line[(r["host"], r["ChargePeriodStart"])].append(r)
    dims = _workload_dims(workloads, sorted({str(r["holder"]) for r in held_rows if r["holder"]}))

    def owner(values: dict[str, str | None], fallback: str | None) -> str | None:
        named = owner_of(values) if owner_of else None
        return named or fallback or values.get("team")

    cols: dict[str, list[object]] = {name: [] for name in SCHEMA.names}

    def emit(kind: str, pool: str | None, host: str | None, who: str | None,
             values: Mapping[str, str | None], seconds: float, amount: Decimal) -> None:  # fmt: skip
        for k, v in (("kind", kind), ("pool", pool), ("host", host), ("holder", who),
                     ("gpu_seconds", seconds), ("amount", amount)):  # fmt: skip
            cols[k].append(v)
        for d in DIMENSIONS:
            cols[d].append(values.get(d))

    nobody: dict[str, str | None] = dict.fromkeys(DIMENSIONS)
    for g in groups:
        host, amount = g["host"], g["cost"]
        if amount is None:
            continue
        info = hosts[host]
        pool = g["pool"] or info["gpu_model"]
        seconds = max((g["ChargePeriodEnd"] - g["ChargePeriodStart"]).total_seconds(), 0.0)
        observed = by_line.get((host, g["ChargePeriodStart"]), [])
        # Hours of the line with telemetry (any sample, nobody's too) are split by GPU-time;
        # the rest by the line's tags: absence of evidence is not idleness (methodology, 2).
        hours = {r["hour"] for r in observed}
        seen = Decimal(min(len(hours) * 3600, seconds))
        parts: list[tuple[str, str | None, Decimal]] = []
        for r in observed:
            if r["holder"] is None or not r["held_seconds"]:
                continue
            kind = GPU_USED if r["busy"] else GPU_HELD_IDLE
            parts.append((kind, str(r["holder"]), Decimal(repr(r["held_seconds"]))))
        capacity = Decimal(info["gpus"]) * seen
        held_total = sum((p[2] for p in parts), Decimal(0))
        if held_total > capacity:  # more claimed than provided: scale down (methodology, 2)
            parts = [(k, h, s * capacity / held_total) for k, h, s in parts]
            held_total = capacity
        if capacity > held_total:
            parts.append((GPU_UNHELD, None, capacity - held_total))
        if seen < Decimal(seconds):
            parts.append((GPU_UNOBSERVED, None, Decimal(info["gpus"]) * (Decimal(seconds) - seen)))
        if not parts:  # a line without duration: by its tags
            parts.append((GPU_UNOBSERVED, None, Decimal(1)))
        tagged_values = {d: g[d] for d in DIMENSIONS if d in g}
        tagged_values["owner"] = owner(tagged_values, None)
        for (kind, who, weight), money in zip(
            parts, split(amount, [p[2] for p in parts]), strict=True
        ):
            if kind == GPU_UNOBSERVED:
                values = tagged_values
            else:
                values = dict(dims.get(who, nobody)) if who else dict(nobody)
                values["owner"] = owner(values, values.get("owner")) if who in dims else None
            emit(kind, pool, host, who, values, float(weight), money)
    for t in tagged_rows:
        if t["cost"] is None:
            continue
        values = {d: t.get(d) for d in DIMENSIONS}
        values["owner"] = owner(values, None)
        kind = SHARED if t["cost_domain"] == "shared_platform" else TAGGED
        emit(kind, None, None, None, values, 0.0, t["cost"])
    rows = pa.table(cols, schema=SCHEMA)
    return Allocation(rows=rows, total=grand or Decimal(0), cost=cost, start=start, end=end)
