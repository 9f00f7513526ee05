"""Zombie resources: spend with no matching use, one finding per resource while it lasts.

Four shapes, each read from the ledger in the engine (Python sees a few rows per candidate):

1. **idle endpoint**: a billed resource whose requests (`metrics` such as `inference_requests`
   labelled with its endpoint, name or id; `llm_requests` by endpoint or app) have stayed near
   zero (under 1% of its own level before, or under a small floor) for at least a week, and
   longer than any pause its use took before, while its bill continues;
2. **idle GPU holder**: a training run, batch job, notebook or endpoint holding GPUs whose engine
   has been idle (the allocation layer's definition, `allocation.gpu.held_by_hour`) for hours up
   to now, priced from the allocation's held-idle dollars;
3. **unread storage or replication**: a bucket's storage or cross-region transfer lines continue
   while its request and egress lines are near zero (judged only where the provider's bill
   meters requests at all: a bill without request lines says nothing about reads);
4. **storage of ended runs**: objects of the newest inventory whose key (or run tag) names a run
   that ended more than a month ago and that nobody read since, at the bucket's price per
   GB-month when the bill gives it.

A day-level "quiet" needs a whole week under the gate and coverage on every day of it (the signal's
source reported that day), so a quiet night, a weekend or a batch job between its runs is not a
zombie. The fingerprint is kind + resource + since-day: each daily run moves the same finding, and
once use returns (or the bill stops) the run no longer reports it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.detect.usage_sums import usage_sums
from costline.detect.zombie_core import (
    CENT,
    DAYS_PER_MONTH,
    REQUEST_METRICS,
    USE_LABELS,
    Zombie,
    ZombieSettings,
    day_start,
    quiet_run,
    zombie_finding,
)  # fmt: skip
from costline.detect.zombie_workloads import ended_run_storage, idle_gpu_holders
from costline.ledger import fetch
from costline.model import Finding

__all__ = ["DAYS_PER_MONTH", "ZombieSettings", "detect_zombies", "quiet_run"]


def detect_zombies(
    table: Callable[[str], ir.Table],
    start: dt.datetime,
    end: dt.datetime,
    *,
    rules: Rules | None = None,
    clock: Clock,
    settings: ZombieSettings | None = None,
    sums: ir.Table | None = None,
) -> list[Finding]:
    """The zombie findings of [start, end) (whole UTC days), largest cost so far first;
    `table` names a ledger table (`Ledger.table`); `sums`: the lines' `usage_sums` (their
    `in_window` from `start`), when the caller has derived them already (`detect_all`)."""
    rules = rules or Rules()
    s = settings or ZombieSettings()
    t = {
        name: table(name)
        for name in (
            "cost_lines",
            "metrics",
            "llm_requests",
            "gpu_samples",
            "workloads",
            "storage_objects",
        )
    }
    lines = t["cost_lines"]
    with contextlib.ExitStack() as stack:
        if sums is None:
            sums = fetch.kept(stack, usage_sums(lines, start, start, end, rules))
        narrow = fetch.kept(stack, narrow_bill(sums))
        n = _billed_days(narrow, start)
        found = [
            *idle_endpoints(narrow, t["metrics"], t["llm_requests"], start, end, n, rules, clock, s),
            *unread_storage(narrow, start, end, n, rules, clock, s),
        ]  # fmt: skip
    found += [
        *idle_gpu_holders(lines, t["gpu_samples"], t["workloads"], end, rules, clock, s),
        *ended_run_storage(t["storage_objects"], t["workloads"], lines, end, rules, clock, s),
    ]  # fmt: skip
    return sorted(found, key=lambda f: -(f.impact_usd or 0))


# -- the bill side: daily cost per resource ------------------------------------------------------


def narrow_bill(sums: ir.Table) -> ir.Table:
    """The window's usage lines summed per day, resource and meter, from their `usage_sums`: all
    that cases 1 and 3 ask the engine about (cost, quantity, the resource's names, team and
    owner)."""
    d = sums.filter(sums.in_window)
    return d.group_by(["rid", "day", "bucket", "meter"]).aggregate(
        cost=d.cost.sum(), qty=d.qty.sum().cast("float64"), name=d.name.arbitrary(),
        endpoint=d.endpoint.arbitrary(), team=d.team.arbitrary(), owner=d.owner.arbitrary(),
        service=d.service.arbitrary(),
    )  # fmt: skip


def _billed_days(narrow: ir.Table, start: dt.datetime) -> int:
    """Days of the window up to the last day the bill has reached (bills land a day or two late:
    a day not billed yet is not a bill that stopped)."""
    last = fetch.value(narrow.day.max())
    return 0 if last is None else (last - start.date()).days + 1


def _daily(rows: Sequence[Mapping[str, Any]], key: str, value: str, start: dt.datetime,
           n: int) -> dict[str, list[Any]]:  # fmt: skip
    """key -> one value a day over the window (None where no row)."""
    out: dict[str, list[Any]] = {}
    for r in rows:
        i = (r["day"] - start.date()).days
        if 0 <= i < n:
            series = out.setdefault(r[key], [None] * n)
            series[i] = r[value] if series[i] is None else series[i] + r[value]
    return out


def _bill(narrow: ir.Table, key: str) -> ir.Table:
    """Daily cost per resource key, with its readable name, team, owner and service."""
    return narrow.group_by([narrow[key].name("rkey"), "day"]).aggregate(
        cost=narrow.cost.sum(), name=narrow.name.arbitrary(), team=narrow.team.arbitrary(),
        owner=narrow.owner.arbitrary(), service=narrow.service.arbitrary(),
    )  # fmt: skip


def _billed(rows: Sequence[Mapping[str, Any]], start: dt.datetime, n: int
            ) -> tuple[dict[str, list[Decimal | None]], dict[str, dict[str, Any]]]:  # fmt: skip
    costs = _daily(rows, "rkey", "cost", start, n)
    info = {r["rkey"]: dict(r) for r in rows}
    return costs, info


def _recent_cost(cost: Sequence[Decimal | None], since: int, s: ZombieSettings) -> Decimal | None:
    """The mean cost a day of the run's last `quiet_days` days, if the bill went on every day of
    the run (a bill that stopped is no zombie) and it is worth reporting."""
    run = cost[since:]
    if not run or any(c is None or c <= 0 for c in run):
        return None
    last = [c for c in run[-s.quiet_days :] if c is not None]
    daily = (sum(last, Decimal(0)) / len(last)).quantize(CENT)
    return daily if daily >= s.min_daily_usd else None


# -- 1. endpoints with no requests ----------------------------------------------------------------


def _use_keys(metrics: ir.Table, requests: ir.Table, start: dt.datetime, end: dt.datetime
              ) -> tuple[ir.Table, ir.Table]:  # fmt: skip
    """(daily use per (source, ident), days each source reported anything) of the requests
    metrics and the LLM request logs, every label value an identity it may be billed under."""
    m = metrics.filter(metrics.metric.isin(list(REQUEST_METRICS)), metrics.ts >= start,
                       metrics.ts < end)  # fmt: skip
    m = m.mutate(day=m.ts.date(), source="metric:" + m.metric)
    q = requests.filter(requests.ts >= start, requests.ts < end)
    q = q.mutate(day=q.ts.date(), source=ibis.literal("llm_requests"),
                 use=q.requests.fill_null(1).cast("float64"))  # fmt: skip
    # One row per identity a row names (each label, the endpoint and the app), in one scan.
    labels = ibis.array([m.labels.get(k) for k in USE_LABELS]).unnest()
    u = m.select("source", "day", ident=labels, use=m.value).union(
        q.select("source", "day", ident=ibis.array([q.endpoint, q.app]).unnest(), use=q.use),
        distinct=False,
    )
    u = u.filter(u.ident.notnull() & (u.ident != ""))
    use = u.group_by(["source", "ident", "day"]).aggregate(use=u.use.sum())
    alive = m.select("source", "day").union(q.select("source", "day")).distinct()
    return use, alive


def idle_endpoints(
    narrow: ir.Table, metrics: ir.Table, requests: ir.Table, start: dt.datetime,
    end: dt.datetime, n: int, rules: Rules, clock: Clock, s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 1: billed resources whose requests stayed near zero for a week or more (`narrow`:
    `narrow_bill`; `n`: the days the bill has reached)."""
    use, alive = _use_keys(metrics, requests, start, end)
    names = [narrow.select("rid", ident=narrow[c]) for c in ("rid", "name", "endpoint")]
    ident = names[0].union(names[1]).union(names[2]).distinct()
    ident = ident.filter(ident.rid.notnull())
    j = use.join(ident, use.ident == ident.ident)
    use_rows = fetch.rows(j.group_by([j.rid, j.source, j.day]).aggregate(use=j.use.sum()))
    if not use_rows:
        return []  # no requests name a billed resource: nothing to judge endpoints by
    alive_rows = fetch.rows(alive)
    # The resources as one list of text, not one literal each: the query's SQL is then the same
    # from one run to the next (`ledger.compiled`).
    billed = ibis.literal(sorted({r["rid"] for r in use_rows}), type="array<string>")
    bill = narrow.filter(billed.contains(narrow.rid))
    bill_rows = fetch.rows(_bill(bill, "rid"))
    costs, info = _billed(bill_rows, start, n)
    up = {(r["source"], (r["day"] - start.date()).days) for r in alive_rows}
    by_source: dict[tuple[str, str], list[float | None]] = {}
    for r in use_rows:
        by_source.setdefault((r["rid"], r["source"]), [0.0] * n)
        i = (r["day"] - start.date()).days
        if 0 <= i < n:
            by_source[(r["rid"], r["source"])][i] += r["use"] or 0.0
    by_rid: dict[str, list[tuple[str, list[float | None]]]] = defaultdict(list)
    for (rid, source), series in sorted(by_source.items()):
        by_rid[rid].append(
            (source, [v if (source, i) in up else None for i, v in enumerate(series)])
        )
    out = []
    for rid, signals in by_rid.items():
        if rid not in costs:
            continue
        born = next(i for i, c in enumerate(costs[rid]) if c is not None)
        quiets = [(source, quiet_run(series, s, born)) for source, series in signals]
        if any(q is None for _, q in quiets):
            continue  # one signal in use is enough: the resource serves
        source, quiet = max(quiets, key=lambda sq: sq[1].since if sq[1] else 0)
        assert quiet is not None
        daily = _recent_cost(costs[rid], quiet.since, s)
        if daily is None:
            continue
        evidence = {"signal": source, "signals": [src for src, _ in quiets],
                    "level_before_per_day": round(quiet.level, 2),
                    "peak_per_day_since": round(quiet.peak, 2), "coverage": 1.0}  # fmt: skip
        out.append(_bill_finding("idle_endpoint", rid, info[rid], start, end, quiet.since,
                                 costs[rid], daily, evidence, rules, clock))  # fmt: skip
    return out


def _bill_finding(
    case: str, rid: str, info: Mapping[str, Any], start: dt.datetime, end: dt.datetime,
    since: int, cost: Sequence[Decimal | None], daily: Decimal, evidence: Mapping[str, Any],
    rules: Rules, clock: Clock, action: str | None = None,
) -> Finding:  # fmt: skip
    """A zombie found on the bill's daily cost of one resource (cases 1 and 3)."""
    name = info.get("name") or rid
    label = f"{name} ({info['service']})" if info.get("service") else name
    team = info.get("team")
    owner = info.get("owner") or rules.owner_of({"resource": rid, "team": team}) or team
    accrued = sum((c or Decimal(0) for c in cost[since:]), Decimal(0))
    day = start.date() + dt.timedelta(days=since)
    window = {"window_days": len(cost) - since, **evidence}
    return zombie_finding(Zombie(
        case=case, resource=rid, name=label, owner=owner, team=team, since=day_start(day),
        daily=daily, accrued=accrued,
        action=action or f"Scale {name} to zero or delete it", evidence=window,
    ), end, clock)  # fmt: skip


# -- 3. storage and replication nobody reads ----------------------------------------------------


def unread_storage(
    narrow: ir.Table, start: dt.datetime, end: dt.datetime, n: int, rules: Rules, clock: Clock,
    s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 3: buckets whose storage or replication is billed while their request and egress
    lines are near zero. Only buckets whose bill metered reads at some time in the window are
    judged: where a bill carries no request lines, it says nothing about reads."""
    d = narrow.filter(narrow.meter.notnull(), narrow.bucket.notnull())
    read = d.filter(d.meter.isin(["request", "egress"]))
    judged = read.select("bucket").distinct()
    d = d.semi_join(judged, d.bucket == judged.bucket)
    g = d.group_by(["bucket", "day", "meter"]).aggregate(
        cost=d.cost.sum(), qty=d.qty.sum(), team=d.team.arbitrary(), owner=d.owner.arbitrary()
    )
    rows = fetch.rows(g)
    seen: dict[str, set[int]] = defaultdict(set)
    kept: dict[str, dict[str, list[Any]]] = defaultdict(dict)
    info: dict[str, dict[str, Any]] = {}
    for r in rows:
        i = (r["day"] - start.date()).days
        if not 0 <= i < n:
            continue
        seen[r["bucket"]].add(i)
        series = kept[r["bucket"]].setdefault(r["meter"], [None] * n)
        value = r["cost"] if r["meter"] in ("stored", "copy") else (r["qty"] or 0.0)
        series[i] = value if series[i] is None else series[i] + value
        if r["meter"] in ("stored", "copy") or r["bucket"] not in info:
            info[r["bucket"]] = {**r, "name": r["bucket"], "service": None}
    out = []
    for bucket, meters in sorted(kept.items()):
        found = _unread(bucket, meters, seen[bucket], n, s)
        if found is None:
            continue
        since, daily, cost, case, evidence = found
        name = bucket
        action = (
            f"Turn off the cross-region replication of {name}"
            if case == "idle_replication"
            else f"Delete {name}, or add a lifecycle rule moving it to an archive class"
        )
        out.append(_bill_finding(case, bucket, info[bucket], start, end, since, cost, daily,
                                 evidence, rules, clock, action))  # fmt: skip
    return out


def _unread(
    bucket: str, meters: Mapping[str, list[Any]], seen: set[int], n: int, s: ZombieSettings
) -> tuple[int, Decimal, list[Decimal | None], str, dict[str, Any]] | None:
    """(since, daily cost, cost a day, case, evidence) of a bucket quiet on every read meter."""
    quiets = {}
    for meter in ("request", "egress"):
        if meter in meters:
            use = [(meters[meter][i] or 0.0) if i in seen else None for i in range(n)]
            quiets[meter] = quiet_run(use, s)
    if not quiets or any(q is None for q in quiets.values()):
        return None
    since = max(q.since for q in quiets.values() if q is not None)
    cost: list[Decimal | None] = [None] * n
    for meter in ("stored", "copy"):
        for i, c in enumerate(meters.get(meter, ())):
            if c is not None:
                cost[i] = (cost[i] or Decimal(0)) + c
    copy = sum((c or Decimal(0) for c in meters.get("copy", [])[since:]), Decimal(0))
    stored = sum((c or Decimal(0) for c in meters.get("stored", [])[since:]), Decimal(0))
    case = "idle_replication" if copy > stored else "unread_storage"
    if case == "idle_replication":  # turning it off saves the transfer, not the storage
        cost = list(meters["copy"])
    daily = _recent_cost(cost, since, s)
    if daily is None:
        return None
    evidence = {"signal": "+".join(f"bill:{m}" for m in quiets), "coverage": 1.0,
                **{f"{m}_level_before_per_day": round(q.level, 2)
                   for m, q in quiets.items() if q is not None}}  # fmt: skip
    return since, daily, cost, case, evidence
