"""Zombie workloads (`costline.detect.zombies`, cases 2 and 4): GPUs a workload holds idle, and
the stored outputs of runs that ended long ago."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.allocation.allocate import GPU_HELD_IDLE, allocate
from costline.allocation.gpu import held_by_hour
from costline.attribution.rules import Rules, bucket_of, fold_text
from costline.attribution.storage import ended_run_objects, newest_inventory, storage_uri
from costline.clock import Clock
from costline.detect.usage_sums import usage
from costline.detect.zombie_core import (
    CENT,
    DAYS_PER_MONTH,
    GIB,
    HOUR,
    JOB_KINDS,
    Zombie,
    ZombieSettings,
    as_utc,
    day_start,
    meter_kind,
    zombie_finding,
)  # fmt: skip
from costline.ledger import fetch
from costline.model import Finding


def _team_owner(workload: Mapping[str, Any], rules: Rules) -> tuple[str | None, str | None]:
    """A workload's team (its tags, inheriting its namespace's) and owner, as the allocation
    names them: the configured owner of its dimensions, else its own owner, else its team."""
    tags, ns = dict(workload.get("tags") or []), workload.get("namespace")
    values = {d: rules.tag_text(tags, d, ns) for d in ("team", "project", "model", "environment")}
    values["workload"] = workload.get("workload_id")
    owner = rules.owner_of(values) or fold_text(workload.get("owner")) or values["team"]
    return values["team"], owner


# -- 2. GPUs held idle ----------------------------------------------------------------------------


def _hourly(samples: ir.Table, start: dt.datetime, end: dt.datetime, s: ZombieSettings
            ) -> ir.Table:  # fmt: skip
    """holder, hour, active: the GPU-time each holder held in each hour, and whether at least
    `busy_share` of it was busy (`held_by_hour`'s busy flag: the allocation's idle)."""
    h = held_by_hour(samples, start, end)
    h = h.filter(h.holder.notnull())
    per = h.group_by(["holder", "hour"]).aggregate(
        held=h.held_seconds.sum(), busy=h.held_seconds.sum(where=h.busy).fill_null(0.0)
    )
    return per.mutate(active=per.busy >= s.busy_share * per.held)  # fmt: skip


def _idle_runs(samples: ir.Table, start: dt.datetime, end: dt.datetime, s: ZombieSettings
               ) -> ir.Table:  # fmt: skip
    """Per holder still holding GPUs at the telemetry's last hour: the trailing run of its idle
    hours in [start, end) (`run_start` NULL when it was idle in every hour of them), its hours
    with samples, and the GPUs it held in its last hour."""
    per = _hourly(samples, start, end, s)
    last_hour = per.hour.max().as_scalar()
    g = per.group_by("holder").aggregate(
        first=per.hour.min(), last=per.hour.max(),
        last_busy=per.hour.max(where=per.active))  # fmt: skip
    g = g.filter(g.last >= last_hour - ibis.interval(hours=1))
    g = g.mutate(run_start=g.last_busy + ibis.interval(hours=1))
    j = per.join(g, per.holder == g.holder)
    j = j.filter(j.hour >= ibis.coalesce(j.run_start, j.first))
    return j.group_by(["holder", "run_start", "first", "last"]).aggregate(
        hours=j.hour.nunique(),
        gpus=(j.held.sum(where=j.hour == j.last) / 3600.0),
    )  # fmt: skip


def _idle_since(samples: ir.Table, holders: Sequence[str], before: dt.datetime,
                s: ZombieSettings) -> dict[str, dt.datetime]:  # fmt: skip
    """holder -> the hour after its last busy hour before `before` (else its first hour held):
    where an idle run began before the telemetry read, so its since-day does not move as the
    window does."""
    if not holders:
        return {}
    early = samples.filter(samples.ts < before)
    first = fetch.value(early.ts.min())
    if first is None:
        return {}
    per = _hourly(early, first, before, s)
    per = per.filter(per.holder.isin(list(holders)))
    g = per.group_by("holder").aggregate(first=per.hour.min(), busy=per.hour.max(where=per.active))
    return {r["holder"]: as_utc(r["busy"]) + HOUR if r["busy"] else as_utc(r["first"])
            for r in fetch.rows(g)}  # fmt: skip


def idle_gpu_holders(
    lines: ir.Table, samples: ir.Table, workloads: ir.Table, end: dt.datetime, rules: Rules,
    clock: Clock, s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 2: workloads holding GPUs idle for `job_idle_hours` (jobs) or `live_idle_hours`
    (notebooks, endpoints, anything else) up to the telemetry's last hour, priced by the
    allocation's held-idle dollars of those hours."""
    start = end - dt.timedelta(hours=s.gpu_hours)
    if not fetch.value(samples.filter(samples.ts >= start, samples.ts < end).count()):
        return []  # no telemetry of these hours: nothing to build the hourly query for
    runs = fetch.rows(_idle_runs(samples, start, end, s))
    if not runs:
        return []
    earlier = _idle_since(samples, [r["holder"] for r in runs if r["run_start"] is None], start, s)
    for r in runs:
        r["last"] = as_utc(r["last"])
        r["from_first_sample"] = r["run_start"] is None and r["holder"] not in earlier
        r["run_start"] = as_utc(r["run_start"] or earlier.get(r["holder"]) or r["first"])
    ids = [r["holder"] for r in runs]
    w = workloads.filter(workloads.workload_id.isin(ids))
    known = {r["workload_id"]: r for r in fetch.rows(w.select(
        "workload_id", "kind", "name", "owner", "tags", "namespace"))}  # fmt: skip
    due = []
    for r in runs:
        wl = known.get(r["holder"], {})
        need = s.job_idle_hours if wl.get("kind") in JOB_KINDS else s.live_idle_hours
        span = (r["last"] - r["run_start"]) / HOUR + 1
        if span >= need:
            due.append((r, wl, span))
    if not due:
        return []
    first = day_start(
        max(min(r["run_start"] for r, _, _ in due), start).date()
    )  # recent hours' rate
    rates = _idle_rates(lines, samples, workloads, [r["holder"] for r, _, _ in due], first, end,
                        rules)  # fmt: skip
    out = []
    for r, wl, span in due:
        rate = rates.get(r["holder"])
        gpus = Decimal(repr(round(r["gpus"], 6)))
        daily = (rate * gpus * 86400).quantize(CENT) if rate is not None else None
        if daily is not None and daily < s.min_daily_usd:
            continue
        accrued = rate * gpus * Decimal(repr(span)) * 3600 if rate is not None else None
        kind, name = wl.get("kind") or "workload", wl.get("name") or r["holder"]
        label = f"{kind.replace('_', ' ')} {name} ({gpus.normalize():f} GPU)"
        team, owner = _team_owner(wl, rules)
        verb = "Stop" if kind in JOB_KINDS else "Shut down or scale to zero"
        out.append(zombie_finding(Zombie(
            case="idle_gpu", resource=r["holder"], name=label, owner=owner, team=team,
            since=r["run_start"], daily=daily, accrued=accrued, dimension="workload",
            action=f"{verb} {name}: it holds {gpus.normalize():f} GPU(s) doing nothing",
            evidence={"signal": "gpu_held_idle", "idle_hours": span,
                      "hours_with_samples": r["hours"], "coverage": round(r["hours"] / span, 3),
                      "busy_share_below": s.busy_share, "gpus": float(gpus),
                      "idle_since_first_sample": r["from_first_sample"]},
        ), end, clock))  # fmt: skip
    return out


def _idle_rates(
    lines: ir.Table, samples: ir.Table, workloads: ir.Table, holders: Sequence[str],
    start: dt.datetime, end: dt.datetime, rules: Rules,
) -> dict[str, Decimal]:  # fmt: skip
    """holder -> dollars per GPU-second of its held-idle time in [start, end): the allocation's
    `gpu_held_idle` rows of their hosts (a host's lines are split among its own holders only)."""
    held = held_by_hour(samples, start, end)
    held = held.filter(held.holder.isin(list(holders)))
    hosts = sorted(r["host"] for r in fetch.rows(held.select("host").distinct()) if r["host"])
    mine = lines.filter(lines.ResourceName.isin(hosts) | lines.ResourceId.isin(hosts))
    a = allocate(mine, samples.filter(samples.host.isin(hosts)), workloads, start, end,
                 rules=rules).table()  # fmt: skip
    a = a.filter(a.kind == GPU_HELD_IDLE, a.holder.isin(list(holders)))
    g = a.group_by("holder").aggregate(usd=a.amount.sum(), seconds=a.gpu_seconds.sum())
    return {r["holder"]: r["usd"] / Decimal(repr(r["seconds"]))
            for r in fetch.rows(g) if r["seconds"] and r["usd"] is not None}  # fmt: skip


# -- 4. storage of runs that ended long ago ------------------------------------------------------


def _run_objects(
    objects: ir.Table, workloads: ir.Table, cutoff: dt.datetime, upto: dt.date
) -> ir.Table:
    """Objects of each bucket's newest inventory that belong to a run ended before `cutoff`
    (`attribution.storage.ended_run_objects`), not read since `cutoff`: one row per (bucket, run)."""
    o = newest_inventory(objects, upto)
    o = o.filter(o.last_accessed.isnull() | (o.last_accessed < cutoff))
    j = ended_run_objects(o, workloads, cutoff)
    return j.group_by(["bucket", "wid"]).aggregate(
        bytes=j.size_bytes.sum(), objects=j.key.count(), prefix=j.prefix.min(),
        provider=j.provider.arbitrary(),
        storage_class=j.storage_class.mode(), snapshot=j.snapshot_date.max())  # fmt: skip


def _storage_prices(
    lines: ir.Table, buckets: Sequence[str], end: dt.datetime
) -> dict[str, Decimal]:
    """bucket -> its price per GB-month over the bill's last 31 days: the cost of its stored
    lines over their GB-months (lines priced in GB-months only; others are not guessed)."""
    d = usage(lines).filter(lines.ChargePeriodStart >= end - dt.timedelta(days=31),
                            lines.ChargePeriodStart < end)  # fmt: skip
    d = d.mutate(bucket=bucket_of(d), meter=meter_kind(d))
    d = d.filter(d.bucket.isin(list(buckets)), d.meter == "stored",
                 d.ConsumedUnit.fill_null(d.PricingUnit).re_search(r"(?i)^gi?b(y\.|[- /])?mo"))  # fmt: skip
    g = d.group_by("bucket").aggregate(cost=d.EffectiveCost.sum(), gb=d.ConsumedQuantity.sum())
    return {r["bucket"]: r["cost"] / r["gb"] for r in fetch.rows(g) if r["gb"] and r["cost"]}


def ended_run_storage(
    objects: ir.Table, workloads: ir.Table, lines: ir.Table, end: dt.datetime, rules: Rules,
    clock: Clock, s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 4: the stored bytes of runs that ended more than `ended_days` ago, at the bucket's
    price per GB-month from its bill (unpriced without one)."""
    cutoff = end - dt.timedelta(days=s.ended_days)
    if not fetch.value(workloads.filter(workloads["end"] < cutoff).count()):
        return []  # no run ended that long ago: nothing to compile the inventory query for
    found = fetch.rows(_run_objects(objects, workloads, cutoff, end.date()))
    if not found:
        return []
    runs = {r["workload_id"]: r for r in fetch.rows(
        workloads.filter(workloads.workload_id.isin(sorted({f["wid"] for f in found})))
        .select("workload_id", "kind", "name", "owner", "tags", "namespace", "end"))}  # fmt: skip
    prices = _storage_prices(lines, sorted({f["bucket"] for f in found}), end)
    out = []
    for f in found:
        run = runs[f["wid"]]
        gb = Decimal(f["bytes"]) / GIB
        price = prices.get(f["bucket"])
        monthly = (gb * price).quantize(CENT) if price is not None else None
        daily = (gb * price / DAYS_PER_MONTH).quantize(CENT) if price is not None else None
        if daily is not None and daily * DAYS_PER_MONTH < s.min_daily_usd:
            continue  # under $10 a month: not worth a person's time
        ended = run["end"]
        accrued = (daily * Decimal((end - ended).days)) if daily is not None else None
        where = storage_uri(f["provider"], f["bucket"], f["prefix"])
        team, owner = _team_owner(run, rules)
        out.append(zombie_finding(Zombie(
            case="ended_run_storage", resource=where, name=f"{where} ({gb:,.0f} GB)",
            owner=owner, team=team, since=ended, daily=daily, accrued=accrued, monthly=monthly,
            dimension="storage_prefix",
            action=f"Delete {where}, or add a lifecycle rule expiring the prefix",
            evidence={"signal": "storage_objects", "workload_id": f["wid"],
                      "run": run["name"], "run_ended": ended.isoformat(),
                      "bucket": f["bucket"], "prefix": f["prefix"], "gb": round(float(gb), 3),
                      "objects": f["objects"], "storage_class": f["storage_class"],
                      "snapshot": f["snapshot"].isoformat(),
                      "price_per_gb_month_usd": str(price) if price is not None else None},
        ), end, clock))  # fmt: skip
    return out
