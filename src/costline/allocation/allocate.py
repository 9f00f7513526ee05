"""A period's cost lines, allocated: one row per line group and holder, summing exactly to the input.

`allocate` reads the ledger's tables as Ibis expressions, lets the engine aggregate (GPU-seconds per
host, hour and holder; tagged cost per owner dimensions), and splits each GPU line group's cost in
decimal on the small result (docs/methodology/allocation.md). Reports (`costline.allocation.reports`)
group these rows by any dimension.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import ibis
import pyarrow as pa

from costline.allocation.gpu import gpus_by_host, held_by_hour, with_host
from costline.allocation.schedule import scheduled_by_hour, scheduled_hosts
from costline.allocation.split import from_units, split_units, to_units
from costline.attribution import tags as tagging
from costline.attribution.rules import Rules, cost_layer, domain_of, fold_text
from costline.config import SharedPool
from costline.errors import CostlineError
from costline.ledger import fetch
from costline.model import Selector
from costline.money import MONEY_CONTEXT

CostColumn = Literal["effective", "billed"]
COST_COLUMNS: Mapping[str, str] = {"effective": "EffectiveCost", "billed": "BilledCost"}
DIMENSIONS = ("team", "project", "model", "environment", "owner", "cost_domain")
# Kinds of allocation rows (the `kind` column).
GPU_USED, GPU_HELD_IDLE, GPU_UNHELD = "gpu_used", "gpu_held_idle", "gpu_unheld"
GPU_UNOBSERVED = "gpu_unobserved"  # a GPU host's hours with no sample and no schedule: by tags
GPU_SCHEDULED = "gpu_scheduled"  # hours without samples, held as the workloads' schedules say
GPU_KINDS = (GPU_USED, GPU_HELD_IDLE, GPU_UNHELD, GPU_SCHEDULED, GPU_UNOBSERVED)
HELD_KINDS = (GPU_USED, GPU_HELD_IDLE, GPU_SCHEDULED)  # GPU-time a workload held
TAGGED, SHARED = "tagged", "shared"
PLATFORM_POOL = "__platform__"  # shared-platform lines no configured pool matches: proportional
DOMAIN_OF_KIND: Mapping[str, str] = {
    "training_run": "training",
    "sweep_trial": "training",
    "fine_tune": "training",
    "notebook": "training",
    "inference_endpoint": "online_inference",
    "batch_job": "batch_ai",
}
WEIGHT_SCALE = 10**12
MONEY = pa.decimal128(38, 18)
SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("pool", pa.string()),
        ("host", pa.string()),
        ("holder", pa.string()),
        *[(d, pa.string()) for d in DIMENSIONS],
        ("cost_layer", pa.string()),  # gpu_compute for GPU hosts; from the service otherwise
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
    # Shared pools by name (rows of kind `shared` name theirs in `pool`), and for pools split by a
    # usage metric, the metric's total per value of the pool's `by` dimension in the period.
    pools: Mapping[str, SharedPool] = field(default_factory=dict)
    pool_weights: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    # GPUs of each GPU host the lines were split over (physical GPUs reported, else the most
    # its schedules claimed at once).
    host_gpus: Mapping[str, int] = field(default_factory=dict)

    def table(self) -> ibis.Table:
        return ibis.memtable(self.rows)

    def pool_gpus(self) -> dict[str, int]:
        """pool -> GPUs of the hosts whose lines the pool's rows split."""
        pairs = {
            (h, p)
            for h, p, k in zip(
                self.rows.column("host").to_pylist(),
                self.rows.column("pool").to_pylist(),
                self.rows.column("kind").to_pylist(),
                strict=True,
            )
            if h is not None and k in GPU_KINDS
        }
        out: dict[str, int] = defaultdict(int)
        for host, pool in pairs:
            out[pool] += self.host_gpus.get(host, 0)
        return dict(out)


_TAG_DIMENSIONS = ("team", "project", "model", "environment", "cost_domain")


def _with_dims(lines: ibis.Table, rules: Rules) -> ibis.Table:
    """`lines` with their pool, cost layer and tag dimensions. The tags are read first, then named
    from those columns: a model's aliases and the domains compare a tag with many values, and
    built from the tags each comparison repeated the whole lookup (3x the SQL, 2x the time)."""
    tags = ("team", "project", "model", "environment", "workload_type")
    lines = lines.mutate(pool=rules.tag(lines, "pool"), cost_layer=cost_layer(lines),
                         **{t: rules.tag(lines, t) for t in tags})  # fmt: skip
    return lines.mutate(model=rules.model_name(lines.model),
                        cost_domain=domain_of(lines.workload_type))  # fmt: skip


def _workload_dims(
    workloads: ibis.Table, holders: ibis.Table, rules: Rules
) -> dict[str, dict[str, str | None]]:
    """workload_id -> its dimensions, from the workload's tags, owner and kind.

    Only the workloads that hold GPU-time (`holders.holder`), found by a semi-join in the engine:
    a list of ids as literals would cost Ibis seconds to compile at tens of thousands.
    """
    w = workloads.semi_join(holders, workloads.workload_id == holders.holder)
    rows = fetch.rows(w.select("workload_id", "kind", "owner", "tags", "namespace"))
    out: dict[str, dict[str, str | None]] = {}
    for r in rows:
        tags = dict(r["tags"] or [])
        ns = r["namespace"]
        kind_tag = rules.tag_text(tags, "workload_type", ns)
        domain = DOMAIN_OF_KIND.get(r["kind"] or "") or (
            tagging.DOMAIN_OF_WORKLOAD.get(kind_tag) if kind_tag else None
        )
        out[r["workload_id"]] = {
            "team": rules.tag_text(tags, "team", ns),
            "project": rules.tag_text(tags, "project", ns),
            "model": rules.model_text(rules.tag_text(tags, "model", ns)),
            "environment": rules.tag_text(tags, "environment", ns),
            "owner": fold_text(r["owner"]),
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
    rules: Rules | None = None,
    metrics: ibis.Table | None = None,
) -> Allocation:
    """Allocate the cost of lines charged in [start, end) (see the module and the methodology).

    `where` filters the lines first by FOCUS columns (`ProviderName=AWS`, `ServiceName=...`).
    `rules` are the configuration's attribution rules (tag aliases, inheritance, owners): the
    owner of a row is the first configured owner matching its other dimensions, else a workload's
    own owner, else the team.
    """
    rules = rules or Rules()
    with contextlib.ExitStack() as stack:  # the engine's temporary tables live until read
        read = _read(stack, _period(lines, start, end, where), samples, workloads, start, end,
                     COST_COLUMNS[cost], rules)  # fmt: skip
    return Allocation(
        rows=pa.table(_split(read, rules), schema=SCHEMA),
        total=read.grand or Decimal(0),
        cost=cost,
        start=start,
        end=end,
        pools={p.name: p for p in rules.shared_pools},
        pool_weights=_metric_weights(metrics, rules.shared_pools, start, end),
        host_gpus={h: int(r["gpus"]) for h, r in read.hosts.items()},
    )


@dataclass(frozen=True)
class _Read:
    """What `allocate` reads back from the engine: a few aggregates, split in Python after."""

    hosts: dict[str, dict[str, Any]]  # GPU host -> gpus, gpu_model
    groups: list[dict[str, Any]]  # GPU line groups: host, period, cost, pool, tag dimensions
    held: dict[tuple[str, dt.datetime], list[dict[str, Any]]]  # (host, start) -> holders' time
    observed_hours: dict[tuple[str, dt.datetime], int]  # (host, start) -> hours with telemetry
    tagged: list[dict[str, Any]]  # other lines' cost per dimensions
    grand: Decimal | None
    holders: dict[str, dict[str, str | None]]  # workload id -> its dimensions


def _period(
    lines: ibis.Table, start: dt.datetime, end: dt.datetime, where: Selector | None
) -> ibis.Table:
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    for dimension, accepted in where.root.items() if where else ():
        if dimension not in lines.columns:
            raise CostlineError(
                f"--where {dimension}: not a column of cost_lines (FOCUS names, e.g. "
                "ProviderName, ServiceName, SubAccountId, RegionId)"
            )
        period = period.filter(period[dimension].isin(list(accepted)))
    return period


def _held(
    stack: contextlib.ExitStack,
    samples: ibis.Table,
    workloads: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[ibis.Table, ibis.Table]:
    """(GPU hosts, GPU-time held per host, hour and holder: telemetry's, then the schedules' in
    the hours telemetry did not see), each computed once in the engine."""
    telemetry = fetch.kept(stack, held_by_hour(samples, start, end))
    scheduled = scheduled_by_hour(workloads, start, end)
    scheduled = scheduled.mutate(hour=scheduled.hour.cast(telemetry.hour.type()))
    seen_hours = telemetry.select("host", "hour").distinct()
    scheduled = scheduled.anti_join(
        seen_hours, [scheduled.host == seen_hours.host, scheduled.hour == seen_hours.hour]
    )
    scheduled = fetch.kept(stack, scheduled)
    hosts = _hosts(gpus_by_host(samples, start, end), scheduled_hosts(scheduled))
    held = telemetry.union(
        scheduled.select("host", "hour", "holder", busy=ibis.null("boolean"),
                         held_seconds=scheduled.held_seconds.cast("float64"))
    )  # fmt: skip
    return fetch.kept(stack, hosts), held


def _read(
    stack: contextlib.ExitStack,
    period: ibis.Table,
    samples: ibis.Table,
    workloads: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    column: str,
    rules: Rules,
) -> _Read:
    host_table, held = _held(stack, samples, workloads, start, end)
    period = with_host(period, host_table)
    period = _with_dims(period.mutate(cost=period[column]), rules)
    # The period's lines, narrow, with their host and dimensions: derived once, read four times.
    period = fetch.kept(stack, period.select("host", "ChargePeriodStart", "ChargePeriodEnd",
                                             "cost", "pool", *_TAG_DIMENSIONS, "cost_layer"))  # fmt: skip
    on_hosts = period.filter(period.host.notnull())
    gpu_lines = on_hosts.group_by(["host", "ChargePeriodStart", "ChargePeriodEnd"]).aggregate(
        cost=on_hosts.cost.sum(),
        pool=on_hosts.pool.arbitrary(),
        **{d: on_hosts[d].arbitrary() for d in _TAG_DIMENSIONS},
    )
    gpu_lines = fetch.kept(stack, gpu_lines)
    joined = gpu_lines.join(held, [gpu_lines.host == held.host,
                                   held.hour >= gpu_lines.ChargePeriodStart,
                                   held.hour < gpu_lines.ChargePeriodEnd])  # fmt: skip
    held_by_line = joined.group_by(["host", "ChargePeriodStart", "holder", "busy"]).aggregate(
        held_seconds=joined.held_seconds.sum()
    )
    held_by_line = fetch.kept(stack, held_by_line)
    seen_by_line = joined.group_by(["host", "ChargePeriodStart"]).aggregate(
        hours=joined.hour.nunique(where=joined.busy.notnull())
    )
    other = period.filter(period.host.isnull())
    tagged = other.group_by(
        ["team", "project", "model", "environment", "cost_domain", "cost_layer"]
    ).aggregate(cost=other.cost.sum())
    by_line: dict[tuple[str, dt.datetime], list[dict[str, Any]]] = defaultdict(list)
    for r in fetch.rows(held_by_line):
        by_line[(r["host"], r["ChargePeriodStart"])].append(r)
    return _Read(
        hosts={r["host"]: r for r in fetch.rows(host_table)},
        groups=fetch.rows(gpu_lines),
        held=by_line,
        observed_hours={
            (r["host"], r["ChargePeriodStart"]): r["hours"] for r in fetch.rows(seen_by_line)
        },
        tagged=fetch.rows(tagged),
        grand=fetch.value(period.cost.sum()),
        holders=_workload_dims(workloads, held_by_line.select("holder").distinct(), rules),
    )


def _split(read: _Read, rules: Rules) -> dict[str, list[object]]:
    """The allocation rows' columns: each GPU line group split exactly among its parts
    (`_gpu_parts`), then the other lines by their tags or into their shared pool. Rows are made
    as tuples in `SCHEMA`'s order (a month has tens of thousands), then turned into columns."""

    def dims(values: dict[str, str | None], fallback: str | None) -> tuple[str | None, ...]:
        """The values of `DIMENSIONS`, the owner named by the configuration, else `fallback`."""
        values["owner"] = rules.owner_of(values) or fallback or values.get("team")
        return tuple(values.get(d) for d in DIMENSIONS)

    nobody: tuple[str | None, ...] = (None,) * len(DIMENSIONS)
    holders = {wid: dims(dict(d), d.get("owner")) for wid, d in read.holders.items()}
    by_tags: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
    rows: list[tuple[object, ...]] = []
    for g in read.groups:
        host, amount = g["host"], g["cost"]
        if amount is None:
            continue
        info = read.hosts[host]
        pool = g["pool"] or info["gpu_model"]
        key = (host, g["ChargePeriodStart"])
        # Weights are integer pico-GPU-seconds (as fine as a float's digits): exact sums, integer splits.
        seconds = max(round((g["ChargePeriodEnd"] - g["ChargePeriodStart"]).total_seconds()), 0)
        # Hours of the line with telemetry (any sample, nobody's too) are split by GPU-time;
        # the rest by the schedules, then the line's tags: absence of evidence is not idleness.
        seen = min(read.observed_hours.get(key, 0) * 3600, seconds)
        parts = _gpu_parts(read.held.get(key, ()), info["gpus"], seen, seconds)
        units, tail = to_units(amount)
        moneys = split_units(units, [p[2] for p in parts])
        for i, ((kind, who, weight), money) in enumerate(zip(parts, moneys, strict=True)):
            values = nobody
            if kind == GPU_UNOBSERVED:  # the line's own tags (few distinct sets: named once each)
                tags = tuple(g[d] for d in _TAG_DIMENSIONS)
                if tags not in by_tags:
                    by_tags[tags] = dims(dict(zip(_TAG_DIMENSIONS, tags, strict=True)), None)
                values = by_tags[tags]
            elif who is not None:
                values = holders.get(who, nobody)
            value = from_units(money)
            if i == 0 and tail:
                value = MONEY_CONTEXT.add(value, tail)
            rows.append((kind, pool, host, who, *values, "gpu_compute", weight / WEIGHT_SCALE,
                         value))  # fmt: skip
    for t in read.tagged:
        if t["cost"] is None:
            continue
        shared = next((p.name for p in rules.shared_pools if p.match.matches(t)), None)
        if shared is None and t["cost_domain"] == "shared_platform":
            shared = PLATFORM_POOL
        values = dims({d: t.get(d) for d in (*DIMENSIONS, "cost_layer")}, None)
        rows.append((SHARED if shared else TAGGED, shared, None, None, *values, t["cost_layer"],
                     0.0, t["cost"]))  # fmt: skip
    columns = zip(*rows, strict=True) if rows else [()] * len(SCHEMA.names)
    return {name: list(c) for name, c in zip(SCHEMA.names, columns, strict=True)}


def _hosts(observed: ibis.Table, scheduled: ibis.Table) -> ibis.Table:
    """GPU hosts: those with samples (their GPUs as reported), then those only schedules name."""
    only = scheduled.anti_join(observed, scheduled.host == observed.host)
    return observed.union(only.select(observed.columns))


def _gpu_parts(
    held_rows: Sequence[Mapping[str, Any]], gpus: int, seen: int, seconds: int
) -> list[tuple[str, str | None, int]]:
    """How one GPU line splits: (kind, holder, weight in pico-GPU-seconds), methodology 2.

    Hours with telemetry split by the GPU-time samples show held (busy or idle), the rest of
    their capacity unheld; hours without telemetry split by the schedules' claims, the rest of
    their capacity by the line's tags (absence of evidence is not idleness). Claims beyond what
    the line provides are scaled down, so a line never gives away more than it costs.
    """
    observed: list[tuple[str, str | None, int]] = []
    claimed: list[tuple[str, str | None, int]] = []
    for r in held_rows:
        held = round(r["held_seconds"] * WEIGHT_SCALE) if r["holder"] is not None else 0
        if held <= 0:
            continue
        if r["busy"] is None:
            claimed.append((GPU_SCHEDULED, r["holder"], held))
        else:
            observed.append((GPU_USED if r["busy"] else GPU_HELD_IDLE, r["holder"], held))
    parts = _fit(observed, gpus * seen * WEIGHT_SCALE, GPU_UNHELD)
    parts += _fit(claimed, gpus * (seconds - seen) * WEIGHT_SCALE, GPU_UNOBSERVED)
    if not any(p[2] for p in parts):  # a line without duration: by its tags
        parts = [(GPU_UNOBSERVED, None, 1)]
    return parts


def _fit(
    parts: list[tuple[str, str | None, int]], capacity: int, rest: str
) -> list[tuple[str, str | None, int]]:
    """`parts` scaled down to `capacity` if they claim more; what they leave goes to `rest`."""
    claimed = sum(p[2] for p in parts)
    if claimed > capacity:
        scaled = split_units(capacity, [p[2] for p in parts])
        parts = [(k, h, w) for (k, h, _), w in zip(parts, scaled, strict=True)]
        claimed = capacity
    if capacity > claimed:
        parts = [*parts, (rest, None, capacity - claimed)]
    return parts


def _metric_weights(
    metrics: ibis.Table | None, pools: Sequence[SharedPool], start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, Decimal]]:
    """For pools split by a usage metric: the metric's total per value of the pool's `by` label."""
    out: dict[str, dict[str, Decimal]] = {}
    for pool in pools:
        if pool.split != "metric" or metrics is None:
            continue
        m = metrics.filter(metrics.metric == pool.metric, metrics.ts >= start, metrics.ts < end)
        m = m.mutate(who=m.labels.get(pool.by))
        rows = fetch.rows(m.group_by("who").aggregate(v=m.value.sum()))
        out[pool.name] = {
            fold_text(r["who"]) or str(r["who"]): Decimal(repr(r["v"]))
            for r in rows
            if r["who"] and r["v"] and r["v"] > 0
        }
    return out
