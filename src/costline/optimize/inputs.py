"""What every recommender reads: the window's tables, rules and clock (`Inputs`), the window's
allocation (computed once, on first use), and GPU hosts gathered into pools.

A **pool** is the GPU hosts of one provider, region and instance type: the unit a node pool, a
scale set or a managed instance group buys. A host's instance type comes from its bill lines
(`allocation.gpu.with_host`, then `attribution.instances.gpu_lines`); a host no bill line names
is in no pool.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.allocation.allocate import Allocation, allocate
from costline.allocation.gpu import with_host
from costline.attribution.instances import gpu_lines
from costline.attribution.rules import Rules, derive_lines
from costline.clock import Clock
from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.recommend import per_month

Pooled = dict[tuple[str, str, str], list[dict[str, Any]]]  # (provider, region, type) -> hosts


def billed_hosts(lines: ibis.Table, hosts: ibis.Table, rules: Rules) -> ibis.Table:
    """host -> provider, region, instance type, team, billed hours and effective cost."""
    g = gpu_lines(with_host(derive_lines(lines, rules), hosts))
    g = g.filter(g.host.notnull(), g.instance_type.notnull(), g.ConsumedQuantity > 0)
    return g.group_by(["host"]).aggregate(
        provider=g.type_provider.arbitrary(), region=g.RegionId.arbitrary(),
        instance_type=g.instance_type.arbitrary(), team=g.team.mode(),
        hours=g.ConsumedQuantity.sum(), cost=g.EffectiveCost.sum(),
    )  # fmt: skip


def pool_name(key: tuple[str, str, str]) -> str:
    return "/".join(key)


@dataclass
class Inputs:
    """One recommendation run's window and tables."""

    lines: ibis.Table
    samples: ibis.Table
    workloads: ibis.Table
    start: dt.datetime
    end: dt.datetime
    rules: Rules
    clock: Clock
    min_savings: Decimal = Decimal(0)
    storage: ibis.Table | None = None  # storage_objects, for what moving work would move
    metrics: ibis.Table | None = None  # metrics, for endpoints' traffic
    contracts: ibis.Table | None = None  # FOCUS Contract Commitment rows, for commitments' ends
    lifecycle: ibis.Table | None = None  # storage_lifecycle, for the rules buckets already have
    llm: ibis.Table | None = None  # llm_requests, for the token audit and model tiering

    @functools.cached_property
    def allocation(self) -> Allocation:
        """The window's allocation, computed on first use and shared by every recommender."""
        return allocate(self.lines, self.samples, self.workloads, self.start, self.end,
                        rules=self.rules)  # fmt: skip

    @property
    def window_lines(self) -> ibis.Table:
        t = self.lines
        return t.filter(t.ChargePeriodStart >= self.start, t.ChargePeriodStart < self.end)

    @functools.cached_property
    def per_month(self) -> Decimal:
        """Multiply an amount of the window's bills by this to get it per 30 days."""
        return self.per_month_of(self.lines, "ChargePeriodStart")

    @functools.cached_property
    def llm_per_month(self) -> Decimal:
        """`per_month` for amounts of the window's LLM requests (the logs may begin later)."""
        return self.per_month if self.llm is None else self.per_month_of(self.llm, "ts")

    def per_month_of(self, table: ibis.Table, column: str) -> Decimal:
        """Multiply an amount of `table`'s rows in the window by this to get it per 30 days.

        The window is counted from the table's first row in it, so data that began during the
        window (a ledger with a week of bills, LLM logs kept for two days) is not spread over
        days it does not cover and read as a smaller monthly amount."""
        t = table.filter(table[column] >= self.start, table[column] < self.end)
        first = fetch.value(t[column].min())
        start = max(self.start, first) if isinstance(first, dt.datetime) else self.start
        return per_month(start, self.end)

    def hosts(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """host -> its `billed_hosts` row, for the hosts named (one engine query)."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        seen = ibis.memtable(pa.table({"host": wanted}))
        return {r["host"]: r for r in fetch.rows(billed_hosts(self.window_lines, seen, self.rules))}

    def pooled(self, rows: Iterable[dict[str, Any]]) -> Pooled:
        """Rows with a `host`, each merged with its host's bill row, gathered by pool."""
        rows = list(rows)
        billed = self.hosts(str(r["host"]) for r in rows)
        out: Pooled = defaultdict(list)
        for r in rows:
            b = billed.get(r["host"])
            if b is not None:
                out[(b["provider"], b["region"], b["instance_type"])].append({**r, **b})
        return dict(sorted(out.items()))

    def owner(self, team: str | None, **scope: str) -> str | None:
        """The owner of a recommendation about `team`'s resources: the configured owner of the
        team (and `scope`), else the team itself; None without a team."""
        if not team:
            return None
        return self.rules.owner_of({"team": team, **scope}) or team

    def kept(self, found: Iterable[Finding | None]) -> list[Finding]:
        """The findings saving at least `min_savings` (and something), largest saving first."""
        least = max(self.min_savings, Decimal("0.01"))
        out = [f for f in found if f is not None and (f.impact_usd or 0) >= least]
        return sorted(out, key=lambda f: -(f.impact_usd or 0))


def team_of(members: Iterable[dict[str, Any]]) -> str | None:
    """The team most of a pool's hosts bill to (ties: the first by name)."""
    teams = [str(m["team"]) for m in members if m.get("team")]
    return max(sorted(set(teams)), key=teams.count) if teams else None
