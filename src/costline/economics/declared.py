"""What each declared training run and endpoint cost in a period, whole: `declared_costs`.

A registry entry (`costline.attribution.registry`) gathers the pods and jobs that did its work.
Its cost in a period is:

- **GPU**: the allocated GPU cost of those workloads (their hosts' whole hourly cost by GPU-time
  held, docs/methodology/allocation.md: by telemetry where samples exist, by the jobs' own
  schedules where they do not; `coverage_pct` is the share of GPU-hours telemetry backs); this
  includes anything billed on the hosts themselves, such as their own data transfer;
- **orchestration**: their share of the control plane by GPU-time (`gpu_units`);
- **storage**: for each `bucket/prefix` the entry declares (its checkpoints and datasets), the
  bucket's storage lines in the period times the prefix's share of the bucket's bytes in its latest
  inventory snapshot before the period ends; the bucket's cost is split with Hamilton's method
  among the entries' prefixes and the rest of the bucket, so shares never exceed the bucket;
- **transfer**: the bucket's network lines (replication, egress billed on the bucket), shared the
  same way. Per-prefix transfer is not in any bill; bytes stored is the documented proxy.

Endpoints add their traffic from `metrics`: `inference_requests` and `inference_successes` labelled
`endpoint=<entry name>` in the period give cost per 1K inferences and per successful inference
("per prediction"). No counts, no per-unit figure: never a made-up denominator.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.split import split
from costline.attribution.registry import Declared
from costline.attribution.rules import bucket_of, cost_layer
from costline.economics.unit_costs import THOUSAND, coverage_pct, per
from costline.ledger import fetch
from costline.money import MONEY_CONTEXT
from costline.sources.metrics import INFERENCE_REQUESTS, INFERENCE_SUCCESSES

ZERO = Decimal(0)


def declared_costs(
    entries: Sequence[Declared],
    links: Mapping[str, str],
    workload_rows: Sequence[Mapping[str, Any]],
    lines: ibis.Table,
    storage: ibis.Table,
    metrics: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    cost: str = "EffectiveCost",
) -> list[dict[str, Any]]:
    """One row per registry entry with work, storage or traffic in the period.

    `links` maps observed workload ids to entry names (`attribution.registry.links`);
    `workload_rows` are `gpu_units`' per-workload rows of the same period.
    """
    gpu: dict[str, dict[str, Any]] = defaultdict(_no_gpu)
    for w in workload_rows:
        name = links.get(w["workload"])
        if name is not None:
            g = gpu[name]
            g["jobs"] += 1
            g["hours"] += w["gpu_hours"]
            g["telemetry_hours"] += w.get("telemetry_gpu_hours", w["gpu_hours"])
            g["gpu"] = MONEY_CONTEXT.add(g["gpu"], w["gpu_cost_usd"])
            g["orchestration"] = MONEY_CONTEXT.add(g["orchestration"], w["orchestration_usd"])
    stored = storage_shares(entries, lines, storage, start, end, cost)
    traffic = inference_counts(metrics, [e.name for e in entries], start, end)
    out = []
    for e in entries:
        s = stored.get(e.name, {})
        t = traffic.get(e.name, {})
        if e.name not in gpu and not s and not t:
            continue
        g = gpu.get(e.name) or _no_gpu()
        parts = [
            g["gpu"],
            g["orchestration"],
            s.get("storage", ZERO),
            s.get("network_egress", ZERO),
        ]
        total = sum(parts, ZERO)
        requests, successes = t.get(INFERENCE_REQUESTS), t.get(INFERENCE_SUCCESSES)
        out.append(
            {
                "name": e.name,
                "kind": e.kind,
                "team": e.team,
                "owner": e.owner,
                "jobs": g["jobs"],
                "gpu_hours": round(g["hours"], 2),
                "coverage_pct": coverage_pct(g["telemetry_hours"], g["hours"]),
                "gpu_cost_usd": g["gpu"],
                "orchestration_usd": g["orchestration"],
                "storage_usd": s.get("storage", ZERO) if e.storage else None,
                "transfer_usd": s.get("network_egress", ZERO) if e.storage else None,
                "cost_usd": total,
                "inferences": requests,
                "per_1k_inferences_usd": per(total, requests, THOUSAND),
                "per_success_usd": per(total, successes),
                "budget_usd": e.budget_usd,
                "budget_used_pct": (total / e.budget_usd * 100).quantize(Decimal("0.1"))
                if e.budget_usd else None,
            }
        )  # fmt: skip
    return sorted(out, key=lambda r: -r["cost_usd"])


def _no_gpu() -> dict[str, Any]:
    return {"jobs": 0, "hours": 0.0, "telemetry_hours": 0.0, "gpu": ZERO, "orchestration": ZERO}


def storage_shares(
    entries: Sequence[Declared],
    lines: ibis.Table,
    storage: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    cost: str = "EffectiveCost",
) -> dict[str, dict[str, Decimal]]:
    """entry name -> {"storage": $, "network_egress": $}: its prefixes' shares of their buckets."""
    prefixes = [(e.name, b, p) for e in entries for b, p in e.storage]
    if not prefixes:
        return {}
    buckets = sorted({b for _, b, _ in prefixes})
    s = storage.filter(storage.bucket.isin(buckets), storage.snapshot_date < end.date())
    latest = s.group_by("bucket").aggregate(last=s.snapshot_date.max())
    s = s.join(latest, [s.bucket == latest.bucket, s.snapshot_date == latest["last"]])
    sizes = {f"b{i}": s.size_bytes.sum(where=s.bucket == b) for i, b in enumerate(buckets)}
    sizes |= {
        f"p{i}": s.size_bytes.sum(where=(s.bucket == b) & s.key.startswith(p))
        for i, (_, b, p) in enumerate(prefixes)
    }
    got = fetch.rows(s.aggregate(**sizes))[0]
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    period = period.mutate(bucket=bucket_of(period), layer=cost_layer(period))
    billed = period.filter(
        period.bucket.isin(buckets), period.layer.isin(["storage", "network_egress"])
    )
    amounts = billed.group_by(["bucket", "layer"]).aggregate(cost=billed[cost].sum())
    out: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for row in fetch.rows(amounts):
        bucket, amount = row["bucket"], row["cost"] or ZERO
        whole = got[f"b{buckets.index(bucket)}"] or 0
        if not whole:
            continue  # no inventory of the bucket: its bytes, hence shares, are unknown
        mine = [(i, n) for i, (n, b, _) in enumerate(prefixes) if b == bucket]
        weights = [Decimal(got[f"p{i}"] or 0) for i, _ in mine]
        rest = Decimal(max(whole - sum(weights, ZERO), 0))
        shares = split(amount, [*weights, rest])
        for (_, name), share in zip(mine, shares, strict=False):
            out[name][row["layer"]] = MONEY_CONTEXT.add(out[name].get(row["layer"], ZERO), share)
    return out


def inference_counts(
    metrics: ibis.Table, endpoints: Sequence[str], start: dt.datetime, end: dt.datetime
) -> dict[str, dict[str, float]]:
    """endpoint -> {"inference_requests": n, "inference_successes": n} in the period."""
    if not endpoints:
        return {}
    m = metrics.filter(
        metrics.metric.isin([INFERENCE_REQUESTS, INFERENCE_SUCCESSES]),
        metrics.ts >= start,
        metrics.ts < end,
    )
    m = m.mutate(endpoint=m.labels.get("endpoint"))
    m = m.filter(m.endpoint.isin(list(endpoints)))
    agg = m.group_by(["endpoint", "metric"]).aggregate(n=m.value.sum())
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in fetch.rows(agg):
        out[r["endpoint"]][r["metric"]] = r["n"]
    return out
