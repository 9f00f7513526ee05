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
import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.allocation.allocate import GPU_HELD_IDLE, allocate
from costline.allocation.gpu import held_by_hour
from costline.attribution.rules import Rules, bucket_of, derive_lines, fold_text, instance_text
from costline.clock import Clock
from costline.detect.spend import usage
from costline.ledger import fetch
from costline.model import Action, Finding, FindingKind, Window

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(365) / Decimal(12)
GIB = Decimal(2**30)  # a bill's "GB" of storage is 2^30 bytes (AWS, GCP, Azure)
REQUEST_METRICS = ("inference_requests", "inference_successes", "requests", "request_count")
USE_LABELS = ("endpoint", "resource", "resource_id", "resource_name", "service", "app")
JOB_KINDS = ("training_run", "fine_tune", "sweep_trial", "batch_job", "pipeline_stage")
LIVE_KINDS = ("inference_endpoint", "notebook")  # never "ended runs" whose outputs are waste
SCHEMES = {"AWS": "s3://", "Google Cloud": "gs://", "Microsoft": "az://", "Azure": "az://"}
RUN_TAGS = ("run_id", "run", "job_id", "workload_id", "workload")
_STORED = r"(?i)(gi?b(y\.|[- /])?mo|timedstorage|byte-?hrs|data stored|storage used)"
_REQUESTS = r"(?i)(request|operation|transaction|api call|class [ab])"
_COPY = r"(?i)([a-z]{2,4}\d?-[a-z]{2,4}\d?-aws-(out|in)-bytes|inter-?region|replicat|transfer to )"
_EGRESS = r"(?i)(datatransfer-out|data transfer out|egress|internet)"


@dataclass(frozen=True)
class ZombieSettings:
    """The gates, chosen for real data: a week of quiet (a weekend or a night is not one), 1% of
    its own level (a real endpoint's quietest week is far above that), $10 a day (under ~$300 a
    month a forgotten resource is not worth a person's time)."""

    quiet_days: int = 7  # days of near-zero use at least (and longer than any earlier pause)
    baseline_days: int = 28  # the level before a quiet run is its mean over these days
    near_zero: float = 0.01  # a day is quiet under this share of the level before
    floor: float = 1.0  # ... or under this absolute use a day (never-used resources)
    min_daily_usd: Decimal = Decimal(10)  # cost a day under which nothing is reported
    gpu_hours: int = 168  # telemetry read for idle GPU holders
    job_idle_hours: int = 6  # a training or batch job idle this long is stuck
    live_idle_hours: int = 24  # a notebook or endpoint idle a whole day and night
    busy_share: float = 0.05  # an hour is busy when this share of its GPU-time was busy
    ended_days: int = 30  # storage of runs ended longer ago than this


@dataclass(frozen=True)
class Quiet:
    """A trailing run of quiet days on one daily use series (indexes into the window's days)."""

    since: int
    level: float  # mean use a day before it
    peak: float  # the highest use a day in the run


def quiet_run(use: Sequence[float | None], s: ZombieSettings) -> Quiet | None:
    """The trailing run of quiet days of `use` (None: the source reported nothing that day), if it
    is long enough: at least `quiet_days`, and longer than any gap between active days before."""
    n = len(use)
    peak7 = max(
        (sum(v or 0.0 for v in use[i : i + 7]) / 7 for i in range(max(n - 6, 1))), default=0
    )
    gate = max(s.floor, s.near_zero * peak7)
    i = n
    while i > 0 and use[i - 1] is not None and (use[i - 1] or 0.0) <= gate:
        i -= 1
    before = [v for v in use[max(i - s.baseline_days, 0) : i] if v is not None]
    level = sum(before) / len(before) if before else 0.0
    gate = max(s.floor, s.near_zero * level)
    run = use[i:]
    if any(v is None or v > gate for v in run):
        return None
    active = [k for k, v in enumerate(use[:i]) if v is not None and v > gate]
    gaps = [b - a - 1 for a, b in itertools.pairwise(active)]
    if len(run) < max(s.quiet_days, max(gaps, default=0) + 1):
        return None
    return Quiet(since=i, level=level, peak=max((v or 0.0) for v in run))


def detect_zombies(
    table: Callable[[str], ir.Table],
    start: dt.datetime,
    end: dt.datetime,
    *,
    rules: Rules | None = None,
    clock: Clock,
    settings: ZombieSettings | None = None,
) -> list[Finding]:
    """The zombie findings of [start, end) (whole UTC days), largest cost so far first;
    `table` names a ledger table (`Ledger.table`)."""
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
    found = [
        *idle_endpoints(t["cost_lines"], t["metrics"], t["llm_requests"], start, end, rules, clock, s),
        *unread_storage(t["cost_lines"], start, end, rules, clock, s),
        *idle_gpu_holders(t["cost_lines"], t["gpu_samples"], t["workloads"], end, rules, clock, s),
        *ended_run_storage(t["storage_objects"], t["workloads"], t["cost_lines"], end, rules, clock, s),
    ]  # fmt: skip
    return sorted(found, key=lambda f: -(f.impact_usd or 0))


# -- the bill side: daily cost per resource ------------------------------------------------------


def _billed_days(lines: ir.Table, start: dt.datetime, end: dt.datetime) -> int:
    """Days of the window up to the last day the bill has reached (bills land a day or two late:
    a day not billed yet is not a bill that stopped)."""
    w = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    last = fetch.value(w.ChargePeriodStart.max())
    return 0 if last is None else (_utc(last).date() - start.date()).days + 1


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


def _bill(derived: ir.Table, key: ir.StringValue) -> ir.Table:
    """Daily cost per resource key, with its readable name, team, owner and service."""
    d = derived.mutate(rkey=key, day=derived.ChargePeriodStart.date())
    return d.group_by(["rkey", "day"]).aggregate(
        cost=d.EffectiveCost.sum(),
        name=d.ResourceName.arbitrary(),
        team=d.team.arbitrary(),
        owner=d.owner.arbitrary(),
        service=d.ServiceName.arbitrary(),
    )


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
    parts = [m.select("source", "day", ident=m.labels.get(k), use=m.value) for k in USE_LABELS]
    q = requests.filter(requests.ts >= start, requests.ts < end)
    q = q.mutate(day=q.ts.date(), source=ibis.literal("llm_requests"),
                 use=q.requests.fill_null(1).cast("float64"))  # fmt: skip
    parts += [q.select("source", "day", ident=q[k], use=q.use) for k in ("endpoint", "app")]
    u = parts[0]
    for p in parts[1:]:
        u = u.union(p, distinct=False)
    u = u.filter(u.ident.notnull() & (u.ident != ""))
    use = u.group_by(["source", "ident", "day"]).aggregate(use=u.use.sum())
    alive = m.select("source", "day").union(q.select("source", "day")).distinct()
    return use, alive


def idle_endpoints(
    lines: ir.Table, metrics: ir.Table, requests: ir.Table, start: dt.datetime,
    end: dt.datetime, rules: Rules, clock: Clock, s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 1: billed resources whose requests stayed near zero for a week or more."""
    n = _billed_days(lines, start, end)
    with contextlib.ExitStack() as stack:
        use, alive = _use_keys(metrics, requests, start, end)
        use = fetch.kept(stack, use)
        d = derive_lines(usage(lines).filter(lines.ChargePeriodStart >= start,
                                             lines.ChargePeriodStart < end), rules)  # fmt: skip
        idents = d.select(rid=d.ResourceId, a=d.ResourceId, b=d.ResourceName, c=d.endpoint)
        names = [idents.select("rid", ident=idents[c]) for c in ("a", "b", "c")]
        ident = names[0].union(names[1]).union(names[2]).distinct()
        keys = use.select("source", "ident").distinct()
        matched = ident.join(keys, ident.ident == keys.ident).select("rid", "source", "ident")
        matched = fetch.kept(stack, matched.filter(matched.rid.notnull()))
        j = matched.join(use, [matched.source == use.source, matched.ident == use.ident])
        daily_use = j.group_by([j.rid, j.source, j.day]).aggregate(use=j.use.sum())
        use_rows = fetch.rows(daily_use)
        alive_rows = fetch.rows(alive)
        bill = d.semi_join(matched, d.ResourceId == matched.rid)
        bill_rows = fetch.rows(_bill(bill, bill.ResourceId))
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
        quiets = [(source, quiet_run(series, s)) for source, series in signals]
        if rid not in costs or any(q is None for _, q in quiets):
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


# -- findings ------------------------------------------------------------------------------------

WHAT = {  # what has been true since the since-day
    "idle_endpoint": "no requests since {since}",
    "unread_storage": "nothing read since {since}",
    "idle_replication": "replicating a bucket nobody has read since {since}",
    "idle_gpu": "GPUs held idle since {since}",
    "ended_run_storage": "kept since its run ended on {since}",
}


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _utc(ts: dt.datetime) -> dt.datetime:
    """An engine's timestamp as aware UTC (a truncated UTC timestamp may come back naive)."""
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


@dataclass(frozen=True)
class Zombie:
    """What a finding says about one zombie, whatever its shape."""

    case: str  # a key of WHAT
    resource: str  # its identity (scope)
    name: str  # what a person calls it
    owner: str | None
    team: str | None
    since: dt.datetime
    daily: Decimal | None  # its cost a day; None: unpriced
    accrued: Decimal | None  # its cost since `since`
    action: str
    evidence: Mapping[str, Any]
    monthly: Decimal | None = None  # savings a month, when not the daily cost x a month
    dimension: str = "resource"


def zombie_finding(z: Zombie, end: dt.datetime, clock: Clock) -> Finding:
    """One zombie as a finding: kind anomaly (waste that is happening), fingerprint kind +
    resource + since-day, so every daily run moves the same finding."""
    monthly = z.monthly if z.monthly is not None else (
        (z.daily * DAYS_PER_MONTH).quantize(CENT) if z.daily is not None else None)  # fmt: skip
    cost = f"{_money(z.daily)} a day" if z.daily is not None else "unpriced"
    severity = "info" if monthly is None else (
        "critical" if monthly >= 5000 else "warning" if monthly >= 500 else "info")  # fmt: skip
    since = z.since.date() if z.since.time() == dt.time(0) else z.since
    said = WHAT[z.case].format(
        since=since
        if isinstance(since, dt.date) and not isinstance(since, dt.datetime)
        else f"{z.since:%Y-%m-%d %H:%M} UTC"
    )
    cause = [{"dimension": z.dimension, "value": z.resource}]
    cause += [{"dimension": "team", "value": z.team}] if z.team else []
    return Finding.new(
        kind=FindingKind.ANOMALY,
        scope={z.dimension: z.resource},
        dedup_key=f"zombie:{z.since.isoformat()}",
        clock=clock,
        title=f"{z.name}: {cost}, {said}",
        severity=severity,
        summary=(f"{z.name} costs {cost}, {said}"
                 + (f" ({_money(z.accrued)} so far)" if z.accrued is not None else "")
                 + f". {z.action}"
                 + (f" to save about {_money(monthly)} a month." if monthly is not None else ".")),
        owner=z.owner or z.team,
        impact_usd=z.accrued.quantize(CENT) if z.accrued is not None else None,
        window=Window(start=z.since, end=max(end, z.since + HOUR)),
        evidence={"pattern": "zombie", "zombie": z.case, "resource": z.resource,
                  "resource_name": z.name, "since": since.isoformat(),
                  "daily_cost_usd": str(z.daily) if z.daily is not None else None,
                  "monthly_cost_usd": str(monthly) if monthly is not None else None,
                  "root_cause": cause, **z.evidence},
        actions=[Action(text=z.action, estimated_monthly_savings_usd=monthly)],
    )  # fmt: skip


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
        case=case, resource=rid, name=label, owner=owner, team=team, since=_at(day),
        daily=daily, accrued=accrued,
        action=action or f"Scale {name} to zero or delete it", evidence=window,
    ), end, clock)  # fmt: skip


# -- 3. storage and replication nobody reads ----------------------------------------------------


def meter_kind(lines: ir.Table) -> ir.StringValue:
    """What a storage or transfer line meters: `copy` (cross-region transfer, replication),
    `egress`, `request` (requests, operations, transactions), `stored` (GB-months), else NULL;
    from its units, description, SKU and usage type (`x_UsageType`)."""
    units = lines.PricingUnit.fill_null("") + " " + lines.ConsumedUnit.fill_null("")
    text = instance_text(lines) + " " + units
    return ibis.cases(
        (text.re_search(_COPY), "copy"),
        (text.re_search(_EGRESS), "egress"),
        (units.re_search(_REQUESTS) | text.re_search(_REQUESTS), "request"),
        (text.re_search(_STORED), "stored"),
        else_=ibis.null("string"),
    )


def unread_storage(
    lines: ir.Table, start: dt.datetime, end: dt.datetime, rules: Rules, clock: Clock,
    s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 3: buckets whose storage or replication is billed while their request and egress
    lines are near zero. Only buckets whose bill metered reads at some time in the window are
    judged: where a bill carries no request lines, it says nothing about reads."""
    n = _billed_days(lines, start, end)
    d = derive_lines(usage(lines).filter(lines.ChargePeriodStart >= start,
                                         lines.ChargePeriodStart < end), rules)  # fmt: skip
    d = d.mutate(bucket=bucket_of(d), meter=meter_kind(d))
    d = d.filter(d.meter.notnull(), d.bucket.notnull())
    read = d.filter(d.meter.isin(["request", "egress"]))
    judged = read.select("bucket").distinct()
    d = d.semi_join(judged, d.bucket == judged.bucket)
    day = d.ChargePeriodStart.date()
    g = d.group_by(["bucket", day.name("day"), "meter"]).aggregate(
        cost=d.EffectiveCost.sum(), qty=d.ConsumedQuantity.sum().cast("float64"),
        name=d.ResourceName.arbitrary(), team=d.team.arbitrary(), owner=d.owner.arbitrary(),
        service=d.ServiceName.arbitrary(),
    )  # fmt: skip
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
    return {r["holder"]: _utc(r["busy"]) + HOUR if r["busy"] else _utc(r["first"])
            for r in fetch.rows(g)}  # fmt: skip


def idle_gpu_holders(
    lines: ir.Table, samples: ir.Table, workloads: ir.Table, end: dt.datetime, rules: Rules,
    clock: Clock, s: ZombieSettings,
) -> list[Finding]:  # fmt: skip
    """Case 2: workloads holding GPUs idle for `job_idle_hours` (jobs) or `live_idle_hours`
    (notebooks, endpoints, anything else) up to the telemetry's last hour, priced by the
    allocation's held-idle dollars of those hours."""
    start = end - dt.timedelta(hours=s.gpu_hours)
    runs = fetch.rows(_idle_runs(samples, start, end, s))
    if not runs:
        return []
    earlier = _idle_since(samples, [r["holder"] for r in runs if r["run_start"] is None], start, s)
    for r in runs:
        r["last"] = _utc(r["last"])
        r["run_start"] = _utc(r["run_start"] or earlier.get(r["holder"]) or r["first"])
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
    first = _at(max(min(r["run_start"] for r, _, _ in due), start).date())  # recent hours' rate
    held = held_by_hour(samples, first, end)
    held = held.filter(held.holder.isin([r["holder"] for r, _, _ in due]))
    hosts = sorted(r["host"] for r in fetch.rows(held.select("host").distinct()) if r["host"])
    # Their hosts only: the allocation of a host's lines is its own (methodology 2).
    mine = lines.filter(lines.ResourceName.isin(hosts) | lines.ResourceId.isin(hosts))
    a = allocate(mine, samples.filter(samples.host.isin(hosts)), workloads, first, end,
                 rules=rules).table()  # fmt: skip
    a = a.filter(a.kind == GPU_HELD_IDLE, a.holder.isin([r["holder"] for r, _, _ in due]))
    priced = {x["holder"]: x for x in fetch.rows(a.group_by("holder").aggregate(
        usd=a.amount.sum(), seconds=a.gpu_seconds.sum()))}  # fmt: skip
    out = []
    for r, wl, span in due:
        p = priced.get(r["holder"])
        rate = p["usd"] / Decimal(repr(p["seconds"])) if p and p["seconds"] else None
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
                      "busy_share_below": s.busy_share, "gpus": float(gpus)},
        ), end, clock))  # fmt: skip
    return out


# -- 4. storage of runs that ended long ago ------------------------------------------------------


def _run_objects(
    objects: ir.Table, workloads: ir.Table, cutoff: dt.datetime, upto: dt.date
) -> ir.Table:
    """Objects of each bucket's newest inventory that name an ended run (a key segment, or a run
    tag, equal to its id or name), not read since `cutoff`: one row per (bucket, run)."""
    objects = objects.filter(objects.snapshot_date < upto)
    newest = objects.group_by("bucket").aggregate(newest=objects.snapshot_date.max())
    o = objects.join(newest, [objects.bucket == newest.bucket,
                              objects.snapshot_date == newest.newest])  # fmt: skip
    o = o.filter(o.last_accessed.isnull() | (o.last_accessed < cutoff))
    segs = o.mutate(ident=o.key.split("/").unnest())
    tags = [o.mutate(ident=o.tags.get(k)) for k in RUN_TAGS]
    cols = ["bucket", "provider", "key", "size_bytes", "storage_class", "snapshot_date", "ident"]
    named = segs.select(*cols)
    for t in tags:
        named = named.union(t.select(*cols), distinct=False)
    w = workloads.filter(workloads["end"].notnull(), workloads["end"] < cutoff,
                         ~workloads.kind.fill_null("").isin(list(LIVE_KINDS)))  # fmt: skip
    ids = w.select(wid=w.workload_id, ident=w.workload_id).union(
        w.select(wid=w.workload_id, ident=w.name), distinct=True
    )
    ids = ids.filter(ids.ident.length() >= 4)
    j = named.join(ids, named.ident == ids.ident)
    j = j.select(
        "bucket",
        "provider",
        "key",
        "size_bytes",
        "storage_class",
        "snapshot_date",
        "wid",
        prefix=j.key.substr(0, j.key.find(j.ident) + j.ident.length()),
    )
    j = j.distinct()
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
        where = f"{SCHEMES.get(f['provider'], 's3://')}{f['bucket']}/{f['prefix']}"
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
