"""Cheaper windows: deferrable work moved to the hours it costs less in, its deadline kept.

Deferrable work is what `capacity.tolerant` calls interruption-tolerant (fine-tunes, evaluations,
batch inference, embedding generation, training runs, sweeps) and LLM traffic of the batch cost
domain (`capacity.TOLERANT_DOMAINS`); never an inference endpoint or a notebook. An hour costs
less (`hour_prices`, learned per hour of the week) when:

- the work runs on **Spot** and its pool's Spot price, learned from the bills, is lower then;
- the work runs on **on-demand** capacity and a **commitment** of the provider sits idle then
  (`held.commitment_hours`): up to its unused dollars, the work costs nothing more there;
- the work is **LLM traffic** on a model genai-prices prices by time of day (`token_windows`).

GPU work comes as runs (`window_runs`: the workloads that started in the window, and the
stretches of hours batch-tagged instances were billed that no workload covers), each with the
dollars moving it can save (on on-demand capacity, those billed at on-demand rates). Runs are
grouped by team, job name pattern (`atlas-eval-20261031` -> `atlas-eval`), pool and capacity
(Spot or not). For each start hour `H` of a daily schedule, each run waits for the first `H:00`
after the hour it started if it then still ends by its deadline (its tag `deadline_hours`, else
24 hours after it starts), and starts when it did otherwise. A group's saving at `H` is what its runs paid at
their own hours less their cost at the new ones: on Spot, each run's billed dollars times the
learned price of the new hours over that of its own (P50: the median of each hour's samples;
low at their 90th percentile, high at their 10th); on idle commitments, the dollars the idle
hours take of the run's hourly cost (P50 at the median idle dollars of each hour, low at the
10th percentile, high at the 90th); the hours of the week the runs already paid on-demand in
offer nothing, and idle dollars there make the low end zero (`_plan`). Idle dollars one group
is given are not offered to the next (groups in order of their cost). The `H` saving most (the
earliest after the runs' own start on a tie) is the recommendation, with its cron schedule.
One group, one recommendation: its scope is the job name pattern (`workload`), the pool, the
team, and `capacity: spot` for work on Spot.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import astuple, dataclass, field
from decimal import Decimal
from typing import Any

from costline.model import Finding, Window
from costline.optimize.hour_prices import (
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
from costline.optimize.window_runs import DEFAULT_DEADLINE_HOURS, Pool, Seen, name_pattern, runs

KIND = "cheaper_window"
HOUR = dt.timedelta(hours=1)


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
        """The first `hour`:00 after its start hour, if it still ends by its deadline (None: it
        does not, or `hour` is the hour it starts in)."""
        at = self.first - self.first % 24 + hour
        at += 24 if at < self.first else 0
        return at if self.first < at and at + self.hours <= self.latest else None

    def start_at(self, hour: int) -> int:
        """Where it starts under "wait for `hour`:00, unless that misses the deadline"."""
        moved = self.moved(hour)
        return self.first if moved is None else moved


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
    pattern: str
    pool: Pool
    spot: bool
    market: SpotMarket | IdleMarket
    runs: list[Run] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # workload kinds, or the bills' workload types
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
        # A run that would miss its deadline waiting for `hour` starts when it does now.
        starts = [r.start_at(hour) for r in g.runs]
        new = g.market.value(g.runs, starts, 0.5, own=own)
        delay = sum(s - r.first for s, r in zip(starts, g.runs, strict=True))
        if new is not None and new > 0 and (best is None or (new, -delay) > (best[0], -best[1])):
            best = (new, delay, hour, starts)
    if best is None:
        return None
    _, _, hour, starts = best
    low, p50, high = (g.market.value(g.runs, starts, q, commit=True, own=own) or Decimal(0)
                      for q in (g.market.low_q, 0.5, g.market.high_q))  # fmt: skip
    low = Decimal(0) if idle_now > 0 else min(low, p50)
    return Plan(hour, starts, Savings(p50, low, max(high, p50)), idle_now)


def _groups(inputs: Inputs, spot: dict[Pool, Profile],
            idle: dict[str, IdleMarket]) -> list[Group]:  # fmt: skip
    """The window's runs gathered by team, name pattern, pool and capacity (Spot or not), each
    with its market."""
    spot_markets = {k: SpotMarket(p) for k, p in spot.items()}
    groups: dict[tuple[Any, ...], Group] = {}
    for seen in runs(inputs):
        market = spot_markets.get(seen.pool) if seen.spot else idle.get(seen.pool[0])
        if market is None:
            continue
        key = (seen.team, name_pattern(seen.name), seen.pool, seen.spot)
        g = groups.setdefault(key, Group(*key, market=market))
        g.runs.append(_run(seen))
        g.kinds.add(seen.kind)
        if seen.deadline_hours is not None:
            g.deadlines.add(float(seen.deadline_hours))
    return list(groups.values())


def _run(seen: Seen) -> Run:
    hours = max(1, math.ceil((seen.finish - seen.start) / HOUR))
    deadline = DEFAULT_DEADLINE_HOURS if seen.deadline_hours is None else seen.deadline_hours
    latest = seen.start.timestamp() / 3600 + float(deadline)
    return Run(hour_index(seen.start), hours, latest, seen.usd, seen.usd / hours)


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
    kinds = ", ".join(sorted(g.kinds))
    moved = sum(1 for at, r in zip(plan.starts, g.runs, strict=True) if at != r.first)
    why, method, extra, risk = _market_words(g, plan)
    schedule = cron(new)
    window_hours = (inputs.end - inputs.start) / HOUR
    return recommendation(
        kind=KIND,
        scope={
            "workload": g.pattern,
            "pool": name,
            **({"team": g.team} if g.team else {}),
            **({"capacity": "spot"} if g.spot else {}),
        },
        title=f"{g.pattern}: start at {new:02d}:00 UTC instead of {now:02d}:00, {why}",
        summary=(
            f"{len(g.runs)} run(s) of {g.pattern} ({kinds}) on {name}, mostly starting at "
            f"{now:02d}:00 UTC for up to {length} h, cost ${g.usd * per_month:,.0f} a month. "
            f"{moved} of them can wait for {new:02d}:00 UTC and still end by their deadline "
            f"({deadline}); started then, they cost ${plan.savings.p50 * per_month:,.0f} a "
            f"month less: {why}."
        ),
        owner=inputs.owner(g.team),
        current_monthly=g.usd * per_month,
        savings=Savings(*(per_month * v for v in astuple(plan.savings))),
        method=method,
        inputs={
            "market": "spot" if spot else "idle_commitment",
            "runs": len(g.runs),
            "runs_moved": moved,
            "run_hours_max": length,
            "start_hour_now_utc": now,
            "start_hour_new_utc": new,
            "cron_utc": schedule,
            "deadline_hours": sorted(g.deadlines) or [float(DEFAULT_DEADLINE_HOURS)],
            "deadline_tagged": bool(g.deadlines),
            "workload_kinds": sorted(g.kinds),
            **extra,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=min(1.0, g.market.learned_hours / max(1.0, window_hours)),
        risk=risk,
        action=(
            f"Start {g.pattern} daily at {new:02d}:00 UTC (cron `{schedule}`) instead of around "
            f"{now:02d}:00 UTC; it runs {new:02d}:00-{(new + length) % 24:02d}:00 UTC. "
            f'Kubernetes CronJob: `spec: {{schedule: "{schedule}", timeZone: "Etc/UTC"}}`; for '
            f"triggered runs, a queue that holds them until {new:02d}:00 UTC (or Slurm "
            "`--begin`) and starts at once a run that would miss its deadline waiting."
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
