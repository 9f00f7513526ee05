"""The runs of deferrable GPU work in a window, as `cheaper_window` moves them: `runs`.

Two sources, so work is seen whether or not a scheduler recorded it:

- **workloads**: a workload of a kind `capacity.tolerant` keeps (fine-tunes, evaluations, batch
  inference, embedding generation, training runs, sweeps) that started in the window, from its
  start to its end, its GPU dollars the allocation's (HELD_KINDS);
- **bills**: GPU instances billed by the hour and tagged with a workload type of the batch cost
  domain (`capacity.TOLERANT_DOMAINS`: evaluation, embeddings, batch, batch-inference, ...): each
  stretch of consecutive billed hours of one instance that started in the window is a run (an
  instance started for a job and stopped after it), unless a workload run already covers it;
  named as the recorded run that used the same instance (its job's other runs), else by its
  `job-name` or `app` tag, else by its resource name.

A run's dollars are what moving it can save: on Spot, all of them; on on-demand capacity, only
those billed at on-demand rates (a commitment covered the rest already). Its deadline is its tag
`deadline_hours` (also `deadline-hours`, `costline.io/deadline-hours`: hours after it starts),
else `DEFAULT_DEADLINE_HOURS`. Runs are grouped by their name's pattern (`name_pattern`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.allocation.allocate import HELD_KINDS
from costline.allocation.gpu import with_host
from costline.attribution.instances import gpu_lines
from costline.attribution.rules import derive_lines
from costline.ledger import fetch
from costline.optimize.capacity import TOLERANT_DOMAINS, tolerant
from costline.optimize.hour_prices import SPOT, hourly
from costline.optimize.inputs import Inputs

DEFAULT_DEADLINE_HOURS = 24
DEADLINE_TAGS = ("costline.io/deadline-hours", "deadline-hours", "deadline_hours")
NAME_TAGS = ("job-name", "app")  # what a billed instance's job is called, before its own name
_SUFFIX = re.compile(r"[-_.](?:\d+|(?=[a-z0-9]*\d)[a-z0-9]{4,})$", re.IGNORECASE)
Pool = tuple[str, str, str]  # provider, region, instance type


def name_pattern(name: str) -> str:
    """A job's name without its run suffixes (dates, counters, hashes): what its runs share. A
    name that would shrink to under 3 characters (an instance id, `i-0fa0...`) stays whole.

    >>> name_pattern("atlas-eval-20261031"), name_pattern("ft-8b"), name_pattern("i-0fa03795e1")
    ('atlas-eval', 'ft-8b', 'i-0fa03795e1')
    """
    while len(shorter := _SUFFIX.sub("", name)) >= 3 and shorter != name:
        name = shorter
    return name


@dataclass(frozen=True)
class Seen:
    """One run of deferrable GPU work as the ledger shows it."""

    pool: Pool
    team: str | None
    kind: str  # the workload kind, or the bills' workload type
    name: str
    start: dt.datetime
    finish: dt.datetime
    deadline_hours: float | None  # tagged; None: the default
    usd: Decimal  # what moving it can save (see the module)
    spot: bool
    hosts: frozenset[str]


def _deadline(tags: ibis.Value) -> ibis.FloatingValue:
    return ibis.coalesce(*[tags.get(k) for k in DEADLINE_TAGS]).try_cast("float64")


def _workload_rows(inputs: Inputs) -> list[dict[str, Any]]:
    """Tolerant workloads that started in the window, with the GPU dollars they held (engine)."""
    w = tolerant(inputs.workloads)
    if not {"name", "start", "end"} <= set(w.columns):
        return []
    w = w.filter(w.start >= inputs.start, w.start < inputs.end)
    capacity = w.capacity_type if "capacity_type" in w.columns else ibis.null("string")
    w = w.select(holder=w.workload_id, wkind=w.kind, name=ibis.coalesce(w.name, w.workload_id),
                 start=w.start, finish=w.end, capacity=capacity.fill_null("on_demand"),
                 deadline_hours=_deadline(w.tags))  # fmt: skip
    a = inputs.allocation.table()
    a = a.filter(a.kind.isin(list(HELD_KINDS)), a.host.notnull())
    j = a.join(w, "holder")
    return fetch.rows(j.group_by(["holder", "wkind", "name", "start", "finish", "capacity",
                                  "deadline_hours"])
                      .aggregate(host=j.host.min(), hosts=j.host.collect(), wteam=j.team.mode(),
                                 usd=j.amount.sum()))  # fmt: skip


def _on_demand(t: ibis.Table) -> ibis.BooleanValue:
    """Lines billed at on-demand rates: not Spot, not covered by a commitment."""
    category = t.PricingCategory.fill_null("Standard")
    return t.CommitmentDiscountId.isnull() & ~category.isin(["Committed", SPOT])


def _billing(inputs: Inputs, hosts: Iterable[str]) -> dict[str, tuple[bool, Decimal]]:
    """host -> (billed on Spot at all, share of its dollars billed at on-demand rates)."""
    wanted = sorted(set(hosts))
    if not wanted:
        return {}
    t = with_host(inputs.window_lines, ibis.memtable(pa.table({"host": wanted})))
    t = t.filter(t.host.notnull())
    rows = fetch.rows(t.group_by("host").aggregate(
        spot=(t.PricingCategory == SPOT).any(), total=t.EffectiveCost.sum(),
        on_demand=t.EffectiveCost.sum(where=_on_demand(t)).fill_null(0)))  # fmt: skip
    return {r["host"]: (bool(r["spot"]), Decimal(r["on_demand"]) / Decimal(r["total"])
                        if r["total"] else Decimal(0)) for r in rows}  # fmt: skip


def workload_runs(inputs: Inputs) -> list[Seen]:
    """The runs the workloads table records (see the module)."""
    rows = [r for r in _workload_rows(inputs) if Decimal(r["usd"] or 0) > 0]
    billing = _billing(inputs, (str(r["host"]) for r in rows))
    out = []
    for pool, members in inputs.pooled(rows).items():
        for m in members:
            on_spot, share = billing.get(m["host"], (False, Decimal(1)))
            spot = m["capacity"] == "spot" or on_spot
            out.append(Seen(pool, m["wteam"] or m.get("team"), m["wkind"], str(m["name"]),
                            m["start"], m["finish"] or inputs.end, m["deadline_hours"],
                            Decimal(m["usd"]) * (1 if spot else share), spot,
                            frozenset(m["hosts"] or ())))  # fmt: skip
    return out


def _billed_rows(inputs: Inputs) -> list[dict[str, Any]]:
    """Stretches of consecutive billed hours of batch-tagged GPU instances (engine)."""
    d = derive_lines(hourly(inputs.window_lines), inputs.rules)
    g = gpu_lines(d.filter(d.cost_domain.isin(list(TOLERANT_DOMAINS)), d.ConsumedQuantity > 0))
    g = g.filter(g.instance_type.notnull())
    name = ibis.coalesce(*[g.Tags.get(k) for k in NAME_TAGS], g.ResourceName, g.ResourceId)
    per = g.group_by(resource=ibis.coalesce(g.ResourceId, g.ResourceName), at=g.ChargePeriodStart,
                     provider=g.type_provider, region=g.RegionId,
                     instance_type=g.instance_type).aggregate(
        host=g.ResourceName.arbitrary(), name=name.arbitrary(), team=g.team.arbitrary(),
        kind=g.workload_type.arbitrary(), deadline_hours=_deadline(g.Tags).max(),
        usd=g.EffectiveCost.sum(), spot=(g.PricingCategory == SPOT).any(),
        on_demand=g.EffectiveCost.sum(where=_on_demand(g)).fill_null(0))  # fmt: skip
    n = ibis.row_number().over(group_by=per.resource, order_by=per.at)
    per = per.mutate(island=per.at - n.as_interval("h"))
    keys = ["resource", "island", "provider", "region", "instance_type"]
    runs = per.group_by(keys).aggregate(
        start=per.at.min(), hours=per.count(), host=per.host.arbitrary(), name=per.name.arbitrary(),
        team=per.team.arbitrary(), kind=per.kind.arbitrary(),
        deadline_hours=per.deadline_hours.max(), usd=per.usd.sum(), spot=per.spot.any(),
        on_demand=per.on_demand.sum())  # fmt: skip
    return fetch.rows(runs.filter(runs.start > inputs.start))


def billed_runs(inputs: Inputs, covered: Iterable[Seen]) -> list[Seen]:
    """The runs the bills show and no run of `covered` (on the same host, overlapping) does. A
    run on a host a covered run used is named as that run (its job's other runs)."""
    taken: dict[str, list[Seen]] = defaultdict(list)
    for s in covered:
        for host in s.hosts:
            taken[host].append(s)
    out = []
    for r in _billed_rows(inputs):
        start = r["start"]
        finish = start + dt.timedelta(hours=int(r["hours"]))
        hosts = frozenset(h for h in (r["host"], r["resource"]) if h)
        if any(s.start < finish and start < s.finish for h in hosts for s in taken.get(h, ())):
            continue
        usd = Decimal(r["usd"] if r["spot"] else r["on_demand"])
        pool = (r["provider"], r["region"], r["instance_type"])
        name = next((taken[h][0].name for h in sorted(hosts) if h in taken), str(r["name"]))
        out.append(Seen(pool, r["team"], r["kind"] or "batch", name, start, finish,
                        r["deadline_hours"], usd, bool(r["spot"]), hosts))  # fmt: skip
    return out


def runs(inputs: Inputs) -> list[Seen]:
    """Every run of deferrable GPU work that started in the window (see the module)."""
    recorded = workload_runs(inputs)
    return [s for s in [*recorded, *billed_runs(inputs, recorded)] if s.usd > 0]
