"""Cheaper windows: deferrable work moved to the hours it costs less in, its deadline kept.

Deferrable work is what `capacity.tolerant` calls interruption-tolerant (fine-tunes, evaluations,
batch inference, embedding generation, training runs, sweeps) and LLM traffic of the batch cost
domain (`capacity.TOLERANT_DOMAINS`); never an inference endpoint or a notebook. An hour costs
less (`hour_prices`, learned per hour of the week) when:

- the work runs on **Spot** and its pool's Spot price, learned from the bills, is lower then;
- the work runs on **on-demand** capacity and a **commitment** of the provider sits idle then
  (`held.commitment_hours`): up to its unused dollars, the work costs nothing more there;
- the work is **LLM traffic** on a model genai-prices prices by time of day (`token_windows`).

GPU work comes as runs: a tolerant workload that started in the window, its hours its start to
its end, its GPU dollars the allocation's (HELD_KINDS); on on-demand capacity, only the share of
its host's dollars billed at on-demand rates (`Billing`: what no commitment covered already).
Runs are grouped by team, kind, job name pattern (the name without its date, counter or hash
suffix: `atlas-eval-20261031` -> `atlas-eval`) and pool. For each start hour `H` of a daily
schedule, every run of a group moves to the first `H:00` at or after the hour it started, and
only if it then ends by its deadline: the workload's tag `deadline_hours` (hours after it starts
now by which it must finish; also `deadline-hours`, `costline.io/deadline-hours`), else
`DEFAULT_DEADLINE_HOURS` (24) after its start. A group's saving at `H` is what its runs paid at
their own hours less their cost at the new ones: on Spot, each run's billed dollars times the
learned price of the new hours over that of its own (P50: the median of each hour's samples;
low at their 90th percentile, high at their 10th); on idle commitments, the dollars the idle
hours take of the run's hourly cost (P50 at the median idle dollars of each hour, low at the
10th percentile, high at the 90th); the hours of the week the runs already paid on-demand in
offer nothing, and idle dollars there make the low end zero (`_plan`). Idle dollars one group
is given are not offered to the next (groups in order of their cost). The `H` saving most (the
earliest after the runs' own start on a tie) is the recommendation, with its cron schedule.
One group, one recommendation: its scope is the job name pattern (`workload`), the pool and the
team.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.allocation.allocate import HELD_KINDS
from costline.allocation.gpu import with_host
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.capacity import tolerant
from costline.optimize.hour_prices import (
    SPOT,
    Cell,
    Idle,
    Profile,
    cell_of,
    hour_index,
    idle_commitments,
    spot_prices,
)
from costline.optimize.inputs import Inputs, pool_name
from costline.optimize.recommend import CENT, Savings, recommendation
from costline.optimize.token_windows import token_windows

KIND = "cheaper_window"
DEFAULT_DEADLINE_HOURS = 24
DEADLINE_TAGS = ("costline.io/deadline-hours", "deadline-hours", "deadline_hours")
HOUR = dt.timedelta(hours=1)
_SUFFIX = re.compile(r"[-_.](?:\d+|(?=[a-z0-9]*\d)[a-z0-9]{4,})$", re.IGNORECASE)


def name_pattern(name: str) -> str:
    """A job's name without its run suffixes (dates, counters, hashes): what its runs share.

    >>> name_pattern("atlas-eval-20261031"), name_pattern("ft-8b")
    ('atlas-eval', 'ft-8b')
    """
    while (shorter := _SUFFIX.sub("", name)) != name and shorter:
        name = shorter
    return name


@dataclass(frozen=True)
class Run:
    """One run of deferrable work, in hours after the Unix epoch (`hour_prices.hour_index`):
    the hour it started in, its length, the latest it may end (its deadline), its dollars."""

    first: int
    hours: int
    latest: float
    usd: Decimal
    rate: Decimal  # dollars an hour

    def moved(self, hour: int) -> int | None:
        """The first `hour`:00 at or after its start hour, if it still ends by its deadline."""
        at = self.first - self.first % 24 + hour
        at += 24 if at < self.first else 0
        return at if at + self.hours <= self.latest else None


@dataclass
class SpotMarket:
    """A pool's learned Spot prices: a run costs its dollars times the new hours' price over its
    own hours' (unknown where an hour has no price)."""

    prices: Profile
    low_q: float = 0.9
    high_q: float = 0.1

    @property
    def learned_hours(self) -> int:
        return self.prices.hours

    def _price(self, first: int, hours: int, q: float) -> Decimal | None:
        total = Decimal(0)
        for index in range(first, first + hours):
            price = self.prices.at_index(index, q)
            if price is None:
                return None
            total += price
        return total

    def value(self, runs: list[Run], starts: list[int], q: float, commit: bool = False,
              own: frozenset[Cell] = frozenset()) -> Decimal | None:  # fmt: skip
        """What the runs cost less started at `starts` than at their own hours' P50 price."""
        total = Decimal(0)
        for run, at in zip(runs, starts, strict=True):
            now, new = self._price(run.first, run.hours, 0.5), self._price(at, run.hours, q)
            if not now or new is None:
                return None
            total += run.usd * (1 - new / now)
        return total


@dataclass
class IdleMarket:
    """A provider's idle committed dollars per hour: a run costs nothing more up to them. The
    dollars given to a group (`commit`) are not offered to the next."""

    idle: Idle
    low_q: float = 0.1
    high_q: float = 0.9
    taken: dict[float, dict[int, Decimal]] = field(default_factory=dict)

    @property
    def learned_hours(self) -> int:
        return self.idle.dollars.hours

    def value(self, runs: list[Run], starts: list[int], q: float, commit: bool = False,
              own: frozenset[Cell] = frozenset()) -> Decimal | None:  # fmt: skip
        """The dollars of the runs, started at `starts`, that idle committed hours take: in each
        hour the lesser of what the runs spend and what sits idle (less what is given away).
        Hours of the week in `own` (where the runs paid on-demand already) offer nothing."""
        demand: dict[int, Decimal] = defaultdict(Decimal)
        for run, at in zip(runs, starts, strict=True):
            for index in range(at, at + run.hours):
                demand[index] += run.rate
        taken = self.taken.setdefault(q, {})
        total = Decimal(0)
        for index, want in demand.items():
            if cell_of(index) in own:
                continue
            free = (self.idle.dollars.at_index(index, q) or Decimal(0)) - taken.get(index, 0)
            take = min(want, max(free, Decimal(0)))
            total += take
            if commit and take:
                taken[index] = taken.get(index, Decimal(0)) + take
        return total


@dataclass
class Group:
    """The runs of one job on one pool, and how their hours are priced."""

    team: str | None
    kind: str
    pattern: str
    pool: tuple[str, str, str]
    market: SpotMarket | IdleMarket
    runs: list[Run] = field(default_factory=list)
    deadlines: set[float] = field(default_factory=set)  # the tagged deadlines (hours) seen

    @property
    def usd(self) -> Decimal:
        return sum((r.usd for r in self.runs), Decimal(0))

    @property
    def hour_now(self) -> int:
        """The hour of day most of its runs start in."""
        counts = Counter(r.first % 24 for r in self.runs)
        return min(counts, key=lambda h: (-counts[h], h))


@dataclass(frozen=True)
class Plan:
    hour: int
    starts: list[int]  # hour indexes
    savings: Savings  # over the window
    idle_now: Decimal  # idle committed dollars in the runs' own hours (0 on Spot)


def recommend_windows(inputs: Inputs) -> list[Finding]:
    """One recommendation per deferrable job (or LLM app) with a cheaper window (see the module)."""
    found: list[Finding | None] = []
    spot, idle = spot_prices(inputs), idle_commitments(inputs)
    if spot or idle:
        idle_markets = {p: IdleMarket(i) for p, i in idle.items()}
        groups = _groups(inputs, spot, idle_markets)
        for g in sorted(groups, key=lambda g: (-g.usd, g.pattern, g.pool)):
            plan = _plan(g)
            found.append(_finding(g, plan, inputs) if plan else None)
    found += token_windows(inputs, KIND)
    return inputs.kept(found)


def _plan(g: Group) -> Plan | None:
    """The start hour saving the group most at P50, its deadlines kept (None: no cheaper hour);
    the idle dollars it takes are given to it (`commit`).

    The runs paid their bills at their own hours: that is their cost now (on Spot, the learned
    price of those hours; on-demand, in full). So idle committed dollars in the hours of the week
    they already run in are not offered to them: if the commitment sat idle while they paid
    on-demand, it did not cover them there (commitments apply to eligible usage by themselves),
    and the low end of the saving is then zero: the work may be outside its scope."""
    own = frozenset(cell_of(i) for r in g.runs for i in range(r.first, r.first + r.hours))
    idle_now = g.market.value(g.runs, [r.first for r in g.runs], 0.5)  # on Spot, 0
    if idle_now is None:
        return None
    best: tuple[Decimal, int, int, list[int]] | None = None
    for hour in range(24):
        moved = [r.moved(hour) for r in g.runs]
        kept = [s for s in moved if s is not None]
        if len(kept) < len(moved):
            continue
        new = g.market.value(g.runs, kept, 0.5, own=own)
        delay = sum(s - r.first for s, r in zip(kept, g.runs, strict=True))
        if new is not None and new > 0 and (best is None or (new, -delay) > (best[0], -best[1])):
            best = (new, delay, hour, kept)
    if best is None:
        return None
    _, _, hour, starts = best
    low, p50, high = (g.market.value(g.runs, starts, q, commit=True, own=own) or Decimal(0)
                      for q in (g.market.low_q, 0.5, g.market.high_q))  # fmt: skip
    low = Decimal(0) if idle_now > 0 else min(low, p50)
    return Plan(hour, starts, Savings(p50, low, max(high, p50)), idle_now)


def _workload_runs(inputs: Inputs) -> list[dict[str, Any]]:
    """Tolerant workloads that started in the window, with the GPU dollars they held (engine)."""
    w = tolerant(inputs.workloads)
    if not {"name", "start", "end"} <= set(w.columns):
        return []
    w = w.filter(w.start >= inputs.start, w.start < inputs.end)
    tags = [w.tags.get(k) for k in DEADLINE_TAGS]
    capacity = w.capacity_type if "capacity_type" in w.columns else ibis.null("string")
    w = w.select(holder=w.workload_id, wkind=w.kind, name=ibis.coalesce(w.name, w.workload_id),
                 start=w.start, finish=w.end, capacity=capacity.fill_null("on_demand"),
                 deadline_hours=ibis.coalesce(*tags).try_cast("float64"))  # fmt: skip
    a = inputs.allocation.table()
    a = a.filter(a.kind.isin(list(HELD_KINDS)), a.host.notnull())
    j = a.join(w, "holder")
    return fetch.rows(j.group_by(["holder", "wkind", "name", "start", "finish", "capacity",
                                  "deadline_hours"])
                      .aggregate(host=j.host.min(), wteam=j.team.mode(), usd=j.amount.sum()))  # fmt: skip


@dataclass(frozen=True)
class Billing:
    """How a host was billed in the window: on Spot at all, and the share of its dollars paid at
    on-demand rates (not Spot, not covered by a commitment): what idle committed hours can take."""

    spot: bool
    on_demand: Decimal


def _billing(inputs: Inputs, hosts: Iterable[str]) -> dict[str, Billing]:
    """host -> its `Billing`, for the hosts named (one engine query)."""
    wanted = sorted(set(hosts))
    if not wanted:
        return {}
    t = with_host(inputs.window_lines, ibis.memtable(pa.table({"host": wanted})))
    t = t.filter(t.host.notnull())
    category = t.PricingCategory.fill_null("Standard")
    on_demand = t.CommitmentDiscountId.isnull() & ~category.isin(["Committed", SPOT])
    rows = fetch.rows(t.group_by("host").aggregate(
        spot=(category == SPOT).any(), total=t.EffectiveCost.sum(),
        on_demand=t.EffectiveCost.sum(where=on_demand).fill_null(0)))  # fmt: skip
    return {r["host"]: Billing(bool(r["spot"]), Decimal(r["on_demand"]) / Decimal(r["total"])
                               if r["total"] else Decimal(0)) for r in rows}  # fmt: skip


def _groups(inputs: Inputs, spot: dict[tuple[str, str, str], Profile],
            idle: dict[str, IdleMarket]) -> list[Group]:  # fmt: skip
    """The window's runs gathered by team, kind, name pattern and pool, each with its market."""
    rows = [r for r in _workload_runs(inputs) if Decimal(r["usd"] or 0) > 0]
    billing = _billing(inputs, (str(r["host"]) for r in rows))
    spot_markets = {k: SpotMarket(p) for k, p in spot.items()}
    groups: dict[tuple[Any, ...], Group] = {}
    for pool, members in inputs.pooled(rows).items():
        for m in members:
            billed = billing.get(m["host"], Billing(False, Decimal(1)))
            is_spot = m["capacity"] == "spot" or billed.spot
            market = spot_markets.get(pool) if is_spot else idle.get(pool[0])
            usd = Decimal(m["usd"]) * (1 if is_spot else billed.on_demand)
            if market is None or usd <= 0:
                continue
            team = m["wteam"] or m.get("team")
            key = (team, m["wkind"], name_pattern(str(m["name"])), pool)
            g = groups.setdefault(key, Group(*key, market=market))
            g.runs.append(_run(m, usd, inputs.end))
            if m["deadline_hours"] is not None:
                g.deadlines.add(float(m["deadline_hours"]))
    return list(groups.values())


def _run(m: dict[str, Any], usd: Decimal, end: dt.datetime) -> Run:
    start, finish = m["start"], m["finish"] or end
    hours = max(1, math.ceil((finish - start) / HOUR))
    deadline = m["deadline_hours"] if m["deadline_hours"] is not None else DEFAULT_DEADLINE_HOURS
    latest = start.timestamp() / 3600 + float(deadline)
    return Run(hour_index(start), hours, latest, usd, usd / hours)


def cron(hour: int) -> str:
    """The daily cron schedule starting at `hour`:00 UTC."""
    return f"0 {hour} * * *"


def _finding(g: Group, plan: Plan, inputs: Inputs) -> Finding:
    per_month = inputs.per_month
    name = pool_name(g.pool)
    now, new, length = g.hour_now, plan.hour, max(r.hours for r in g.runs)
    hours = ", ".join(f"{d:g}" for d in sorted(g.deadlines))
    deadline = (f"{hours} h after each run starts, as tagged" if g.deadlines else
                f"{DEFAULT_DEADLINE_HOURS} h after each run starts, the default without a "
                "deadline_hours tag")  # fmt: skip
    spot = isinstance(g.market, SpotMarket)
    why, method, extra, risk = _market_words(g, plan)
    schedule = cron(new)
    window_hours = (inputs.end - inputs.start) / HOUR
    return recommendation(
        kind=KIND,
        scope={"workload": g.pattern, "pool": name, **({"team": g.team} if g.team else {})},
        title=f"{g.pattern}: start at {new:02d}:00 UTC instead of {now:02d}:00, {why}",
        summary=(
            f"{len(g.runs)} run(s) of {g.pattern} ({g.kind}) on {name}, mostly starting at "
            f"{now:02d}:00 UTC for up to {length} h, cost ${g.usd * per_month:,.0f} a month. "
            f"Started at {new:02d}:00 UTC they end within their deadline ({deadline}) and "
            f"cost ${plan.savings.p50 * per_month:,.0f} a month less: {why}."
        ),
        owner=inputs.owner(g.team),
        current_monthly=g.usd * per_month,
        savings=Savings(*(per_month * v for v in astuple(plan.savings))),
        method=method,
        inputs={
            "market": "spot" if spot else "idle_commitment",
            "runs": len(g.runs),
            "run_hours_max": length,
            "start_hour_now_utc": now,
            "start_hour_new_utc": new,
            "cron_utc": schedule,
            "deadline_hours": sorted(g.deadlines) or [float(DEFAULT_DEADLINE_HOURS)],
            "deadline_tagged": bool(g.deadlines),
            "workload_kind": g.kind,
            **extra,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=min(1.0, g.market.learned_hours / max(1.0, window_hours)),
        risk=risk,
        action=(
            f"Start {g.pattern} daily at {new:02d}:00 UTC (cron `{schedule}`) instead of around "
            f"{now:02d}:00 UTC; it runs {new:02d}:00-{(new + length) % 24:02d}:00 UTC and ends "
            f'within its deadline. Kubernetes CronJob: `spec: {{schedule: "{schedule}", '
            f'timeZone: "Etc/UTC"}}`; a queue or Slurm `--begin` at the same hour works too.'
        ),
        clock=inputs.clock,
    )


def _market_words(g: Group, plan: Plan) -> tuple[str, str, dict[str, Any], str]:
    """(why the hours are cheaper, method, its inputs, risk) for the group's market."""
    m = g.market
    if isinstance(m, SpotMarket):
        run = max(g.runs, key=lambda r: r.usd)
        at = plan.starts[g.runs.index(run)]
        now = m.prices.at_index(run.first) or Decimal(0)
        new = m.prices.at_index(at) or Decimal(0)
        return (
            f"the pool's Spot price is ${new:,.2f}/h then against ${now:,.2f}/h now (learned "
            f"from {m.learned_hours} billed Spot hours)",
            "Spot price by hour of the week, learned from the bills (P50: median of each hour)",
            {
                "spot_usd_per_hour_now": now,
                "spot_usd_per_hour_new": new,
                "spot_hours_learned": m.learned_hours,
            },
            "medium: Spot prices move; low is at each cheap hour's 90th-percentile price, high "
            "at its 10th",
        )
    names = ", ".join(m.idle.commitments) or "a commitment"
    scope = (
        f"medium: {names} also sat idle in the hours the job runs now (${plan.idle_now:,.2f} in "
        "the window) while it paid on-demand, and commitments cover eligible usage by "
        "themselves: check the job's instance family, region and account are in its scope "
        "(low is zero for this)"
        if plan.idle_now > 0
        else "low: the hours are paid for already; the work must match the commitment's scope "
        "(a Savings Plan's instance families or a reservation's type); low is at each hour's "
        "10th-percentile idle dollars"
    )
    return (
        f"{names} sits idle then and the work costs nothing more in it",
        "idle committed hours (unused commitment dollars per hour of the week) filled with "
        "deferrable on-demand work",
        {
            "idle_commitments": list(m.idle.commitments),
            "idle_hours_learned": m.learned_hours,
            "idle_usd_in_current_hours": plan.idle_now.quantize(CENT),
            "on_demand_usd_per_committed_usd": m.idle.buys.quantize(Decimal("0.0001")),
        },
        scope,
    )
