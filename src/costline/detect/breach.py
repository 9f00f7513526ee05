"""What a threshold breach says beyond its numbers: who owns it and what to do about it.

**Owners**, as spend findings get theirs: the key of a breach (an app, an endpoint, a team, a
namespace, a pod, a job) is looked up in the telemetry itself, in the breach's window. LLM
requests and storage objects carry their team, project and owner; GPU samples carry the pod or
job holding the GPU, whose workload (registry, Kubernetes, Slurm) has the team tag (or its
namespace's default, `tags.namespace_defaults`) and an owner. The configured owner whose `match`
selects those values (`Rules.owner_of`, the rule spend findings use) owns the breach; else the
workload's owner; else the team.

**Actions**: one per breach, worded for its signal (release idle GPUs, restore a prompt's cache
prefix, find the caller behind a token surge, ...), with the monthly savings of ending the excess
where the signal is priced and the breach still going: the excess dollars of the episode so far,
per minute, over a month.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.attribution.rules import Rules
from costline.config import Threshold
from costline.detect.signals import Signal, key_of, scoped
from costline.ledger import fetch

MONTH_MINUTES = 30 * 24 * 60
CENT = Decimal("0.01")


@dataclass(frozen=True)
class KeyOwner:
    """Who a breach's key belongs to, as the telemetry says."""

    team: str | None = None
    project: str | None = None
    owner: str | None = None  # the workload's or the rows' own owner (a person)


def key_owners(
    th: Threshold,
    s: Signal,
    tables: Mapping[str, ir.Table],
    start: dt.datetime,
    end: dt.datetime,
    rules: Rules,
) -> dict[str, KeyOwner]:
    """key -> its team, project and owner: the values most rows of the key in [start, end) carry."""
    table = tables.get(s.table)
    if table is None or s.table == "metrics":
        return {}
    if s.table == "gpu_samples":
        return _gpu_owners(th, s, table, tables.get("workloads"), start, end, rules)
    t = table.mutate(ts=table.snapshot_date.cast("timestamp('UTC')")) if (
        s.table == "storage_objects") else table  # fmt: skip
    t = scoped(s, t.filter(t.ts >= start, t.ts < end), th.scope)
    cols = [c for c in ("team", "project", "owner") if c in t.columns]
    if not cols:
        return {}
    t = t.mutate(key=key_of(s, t, th.by))
    counted = t.group_by(["key", *cols]).aggregate(n=t.count())
    best: dict[str, tuple[int, KeyOwner]] = {}
    for r in fetch.rows(counted):
        found = KeyOwner(r.get("team"), r.get("project"), r.get("owner"))
        if found.team is None and found.owner is None:
            continue
        if r["key"] not in best or r["n"] > best[r["key"]][0]:
            best[r["key"]] = (r["n"], found)
    return {k: v for k, (_, v) in best.items()}


def _gpu_owners(
    th: Threshold,
    s: Signal,
    samples: ir.Table,
    workloads: ir.Table | None,
    start: dt.datetime,
    end: dt.datetime,
    rules: Rules,
) -> dict[str, KeyOwner]:
    """The workloads holding each key's GPUs (namespace/pod, else job id), their team and owner."""
    t = scoped(s, samples.filter(samples.ts >= start, samples.ts < end), th.scope)
    holder = ibis.coalesce(t.namespace.fill_null("") + "/" + t.pod, t.job_id)
    t = t.mutate(key=key_of(s, t, th.by), holder=holder, ns=t.namespace)
    held = t.group_by(["key", "holder", "ns"]).aggregate(n=t.count())
    rows = fetch.rows(held)
    info: dict[str, dict[str, Any]] = {}
    if workloads is not None and rows:
        w = workloads.semi_join(held, workloads.workload_id == held.holder)
        for r in fetch.rows(w.select("workload_id", "tags", "owner", "namespace")):
            info[r["workload_id"]] = r
    best: dict[str, tuple[int, KeyOwner]] = {}
    for r in rows:
        w = info.get(r["holder"] or "", {})
        tags, ns = dict(w.get("tags") or []), w.get("namespace") or r["ns"]
        found = KeyOwner(rules.tag_text(tags, "team", ns), rules.tag_text(tags, "project", ns),
                         w.get("owner"))  # fmt: skip
        if found.team is None and found.owner is None:
            continue
        if r["key"] not in best or r["n"] > best[r["key"]][0]:
            best[r["key"]] = (r["n"], found)
    return {k: v for k, (_, v) in best.items()}


def owner_of(th: Threshold, key: str, found: KeyOwner | None, rules: Rules) -> str | None:
    """The configured owner matching the breach's scope, key, team and project; else the
    workload's owner; else the team."""
    values = {k: v[0] for k, v in th.scope.root.items() if len(v) == 1}
    if th.by:
        values[th.by] = key
    if found is not None:
        values |= {k: v for k, v in (("team", found.team), ("project", found.project)) if v}
    owner = rules.owner_of(values)
    if owner is None and found is not None:
        owner = found.owner or found.team
    return owner


_ACTIONS: Mapping[str, str] = {
    "gpu_minutes": "Check what started holding more GPUs in {who}: scale it back if it was not "
    "planned",
    "idle_gpu_minutes": "Release the idle GPUs of {who}: scale the deployment down, stop the "
    "notebook or job, or shrink its GPU request",
    "gpu_utilization": "Stop or scale down what holds the GPUs of {who} while they sit nearly "
    "idle, or pack its work onto fewer GPUs",
    "cache_hit_rate": "Restore the stable prompt prefix of {who} (a changed system prompt, tool "
    "list or ordering breaks the provider's cache): cached input costs a fraction",
    "avg_context_tokens": "Find the prompt change that grew the context of {who} (a longer "
    "system prompt, unbounded history, more retrieved chunks) and trim it",
    "latency_p95_ms": "Check the provider status, model and routing of {who}: fail over or cap "
    "max_tokens while the provider is slow",
    "cost_per_1k_tokens": "Check the model mix of {who}: a pricier model or fewer cached tokens "
    "raise the price of a token",
    "cost_per_successful_request": "Check the failures and retries of {who}: failed requests "
    "are paid for too",
    "storage_gb": "Add a lifecycle rule to {who}: expire what is not read, move cold data to a "
    "colder class",
    "checkpoint_gb": "Keep the last checkpoints of {who} only (a lifecycle rule on old ones)",
}
_SURGE = ("Find the caller or release behind the surge of {who} (`costline signals {signal} "
          "--by user`); rate-limit it or cap its max_tokens")  # fmt: skip


def action(
    th: Threshold, s: Signal, key: str, ongoing: bool, minutes: int, impact: Decimal | None
) -> dict[str, Any]:
    """What to do about a breach, and the monthly savings of ending it where priced."""
    who = f"{th.by} {key}" if th.by else (str(th.scope) or "everything it watches")
    text = _ACTIONS.get(s.name, _SURGE if s.table == "llm_requests" else
                        "Look into {signal} of {who}").format(who=who, signal=s.name)  # fmt: skip
    saving = None
    if impact is not None and impact > 0 and ongoing and minutes > 0:
        saving = (impact / minutes * MONTH_MINUTES).quantize(CENT)
        text += f": ending the excess saves about ${saving:,} a month at its rate so far"
    return {"text": text, "estimated_monthly_savings_usd": saving}
