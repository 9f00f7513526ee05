"""The shared parts of zombie detection (`costline.detect.zombies`): the settings, the quiet-run
rule, what a storage or transfer line meters, and the finding every zombie becomes."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.attribution.rules import instance_text
from costline.clock import Clock
from costline.model import Action, Finding, FindingKind, Window

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(365) / Decimal(12)
GIB = Decimal(2**30)  # a bill's "GB" of storage is 2^30 bytes (AWS, GCP, Azure)
REQUEST_METRICS = ("inference_requests", "inference_successes", "requests", "request_count")
USE_LABELS = ("endpoint", "resource", "resource_id", "resource_name", "service", "app")
JOB_KINDS = ("training_run", "fine_tune", "sweep_trial", "batch_job", "pipeline_stage")
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
    floor: float = 10.0  # ... or under this absolute use a day (fewer than 10 requests a day)
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


def quiet_run(use: Sequence[float | None], s: ZombieSettings, born: int = 0) -> Quiet | None:
    """The trailing run of quiet days of `use` (None: the source reported nothing that day), if it
    is long enough: at least `quiet_days`, and longer than any gap between active days before.
    `born` is the first day the resource existed (was billed): a run does not start before it."""
    q = _quiet(use[born:], s)
    return Quiet(since=q.since + born, level=q.level, peak=q.peak) if q else None


def _quiet(use: Sequence[float | None], s: ZombieSettings) -> Quiet | None:
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


# -- findings ------------------------------------------------------------------------------------

WHAT = {  # what has been true since the since-day
    "idle_endpoint": "no requests since {since}",
    "unread_storage": "nothing read since {since}",
    "idle_replication": "replicating a bucket nobody has read since {since}",
    "idle_gpu": "GPUs held idle since {since}",
    "ended_run_storage": "kept since its run ended on {since}",
}


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def as_utc(ts: dt.datetime) -> dt.datetime:
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
        evidence={"pattern": "zombie", "zombie": z.case, "verdict": "waste", "resource": z.resource,
                  "resource_name": z.name, "since": since.isoformat(),
                  "daily_cost_usd": str(z.daily) if z.daily is not None else None,
                  "monthly_cost_usd": str(monthly) if monthly is not None else None,
                  "root_cause": cause, **z.evidence},
        actions=[Action(text=z.action, estimated_monthly_savings_usd=monthly)],
    )  # fmt: skip


def meter_kind(lines: ir.Table) -> ir.StringValue:
    """What a storage or transfer line meters: `copy` (cross-region transfer, replication),
    `egress`, `request` (requests, operations, transactions), `stored` (GB-months), else NULL;
    from its units, description, SKU and usage type (`x_UsageType`)."""
    units = lines.PricingUnit.fill_null("") + " " + lines.ConsumedUnit.fill_null("")
    return meter_of(instance_text(lines) + " " + units, units)


def meter_of(text: ir.StringValue, units: ir.StringValue) -> ir.StringValue:
    """`meter_kind` of a line's `text` (its instance text and units) and `units` (its pricing and
    consumed units), for a table that holds those rather than the line's columns."""
    return ibis.cases(
        (text.re_search(_COPY), "copy"),
        (text.re_search(_EGRESS), "egress"),
        (units.re_search(_REQUESTS) | text.re_search(_REQUESTS), "request"),
        (text.re_search(_STORED), "stored"),
        else_=ibis.null("string"),
    )
