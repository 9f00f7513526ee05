"""Spend incidents: the anomalies of one cause and window, grouped, explained and named.

`detect.spend` scans the daily cost of every value of every watched dimension, so one incident
(a forgotten sweep, replication left on) shows on its service, its usage type and its team at
once. This module makes it one finding:

- **contributions**: for each anomaly, every value of every cause dimension (service, account,
  region, team, usage type, resource) with the extra cost a day it carries in the anomaly against
  the weeks before it, and its **share** of the anomaly's whole excess (the anomaly's own value
  carries all of it); from one query over the daily sums (`cause_rows`);
- **lead**: the most specific value explaining at least half an anomaly's excess (a resource,
  else a usage type: the SKU);
- **grouping**: anomalies whose windows overlap (a day's slack) and where one's lead explains at
  least half of the other are one incident; an anomaly with no lead of its own (a team's rise made
  of two incidents) joins the incident whose lead explains most of it, if the overlapping
  incidents' leads explain at least a quarter of it, else it is an incident of its own;
- **root cause**: the values ranked by their share of the incident's excess (its largest
  anomaly's scope, over the incident's window); shares within ten points rank the more specific
  value first; a value under 5% of the excess is not listed;
- **names**: resource names and SKU descriptions from the ledger lines, in one query (`names`).

An incident's scope is its lead (a resource or usage type) with its team, and its fingerprint is
that scope and its first day: a daily run sees the same incident again, and merges into it.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import ibis

from costline.ledger import fetch

CAUSE_DIMENSIONS = ("service", "account", "region", "team", "usage_type", "resource")
SPECIFIC = ("resource", "usage_type")  # the dimensions a lead is taken from, most specific first
# The order a root cause ranks values of about equal share in: the most specific first.
SPECIFICITY = ("resource", "usage_type", "model", "team", "account", "region", "service")
COLUMNS = {"usage_type": "SkuId", "resource": "ResourceId"}
LEAD_SHARE = 0.5
JOIN_SHARE = 0.25  # a lead-less anomaly that overlapping incidents explain this much is theirs
MIN_SHARE = 0.05
TOP = 8
# "$0.0025 per 1K Tokens - gpt-4o-0806-Inp-glbl": a price and its unit before a meter's name
_PRICED = re.compile(r"^\s*\$?[\d.,]+\s+per\s+(?P<unit>.*?)\s+-\s+(?P<meter>.+)$")

Key = tuple[str, str]


class Scanned(Protocol):
    """What an incident reads of an anomaly (`detect.spend.SpendAnomaly`)."""

    @property
    def dimension(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def start(self) -> dt.date: ...
    @property
    def last(self) -> dt.date: ...
    @property
    def anomaly(self) -> Any: ...  # detect.anomaly.Anomaly: impact, observed, expected, peak_z


@dataclass(frozen=True)
class Cause:
    """One value's part in an excess: its extra cost a day, and that as a share of the whole."""

    dimension: str
    value: str | None
    extra_per_day: float
    share: float


@dataclass
class Incident:
    """Anomalies of one cause and window: `members` largest impact first, `lead` its scope."""

    members: list[Scanned]
    lead: Key
    causes: list[Cause] = field(default_factory=list)
    excess_per_day: float = 0.0  # the frame's extra cost a day over the incident's window
    resources: int = 0  # how many resources carry at least `MIN_SHARE` of it

    @property
    def frame(self) -> Scanned:
        """The largest anomaly: its scope is the excess the root cause divides."""
        return self.members[0]

    @property
    def start(self) -> dt.date:
        return min(a.start for a in self.members)

    @property
    def last(self) -> dt.date:
        return max(a.last for a in self.members)


Row = tuple[dt.date, str, str | None, Decimal | None]  # day, cause dimension, its value, cost


def cause_rows(
    narrow: ibis.Table, anomalies: Sequence[Scanned], history_days: int
) -> dict[Key, list[Row]]:
    """(anomaly dimension, value) -> its daily cost per value of every other cause dimension,
    from `history_days` before the first anomaly to the last one's end: one query for all."""
    if not anomalies:
        return {}
    first = min(a.start for a in anomalies) - dt.timedelta(days=history_days)
    last = max(a.last for a in anomalies)
    parts = []
    for dim in dict.fromkeys(a.dimension for a in anomalies):
        values = _listed({a.value for a in anomalies if a.dimension == dim})
        d = narrow.filter(values.contains(narrow[dim]), narrow.day >= first, narrow.day <= last)
        parts += [
            d.group_by(anomaly_value=d[dim], day=d.day, value=d[name])
            .aggregate(cost=d.cost.sum())
            .mutate(anomaly_dimension=ibis.literal(dim), dimension=ibis.literal(name))
            for name in CAUSE_DIMENSIONS
            if name != dim and name in narrow.columns
        ]
    out: dict[Key, list[Row]] = defaultdict(list)
    if parts:
        table = fetch.arrow(functools.reduce(lambda x, y: x.union(y, distinct=False), parts))
        scope = zip(fetch.pylist(table["anomaly_dimension"]), fetch.pylist(table["anomaly_value"]),
                    strict=True)  # fmt: skip
        rows = zip(*(fetch.pylist(table[n]) for n in ("day", "dimension", "value", "cost")),
                   strict=True)  # fmt: skip
        for key, row in zip(scope, rows, strict=True):
            out[key].append(row)
    return out


def contributions(
    rows: Iterable[Row],
    scope: Key,
    start: dt.date,
    last: dt.date,
    history_days: int,
) -> list[Cause]:
    """Each value's extra cost a day in [start, last] against the `history_days` before, and its
    share of the scope's whole extra (the sum over the values of any one dimension): the scope's
    own value first, with all of it. For a drop the whole is negative, and so are the values
    that carry it: their shares are positive all the same. `rows`: (day, dimension, value, cost)
    of the scope's daily costs per value (`cause_rows`)."""
    first = start - dt.timedelta(days=history_days)
    sums: dict[tuple[str, str | None], list[Decimal]] = {}
    for day, dimension, value, cost in rows:
        if first <= day <= last and cost is not None:
            pair = sums.setdefault((dimension, value), [Decimal(0), Decimal(0)])
            pair[0 if day >= start else 1] += cost
    span = (last - start).days + 1
    extra = {k: float(during) / span - float(before) / history_days
             for k, (during, before) in sums.items()}  # fmt: skip
    reference = next((d for d in CAUSE_DIMENSIONS if d != scope[0]), "service")
    total = sum(v for (d, _), v in extra.items() if d == reference)
    own = Cause(scope[0], scope[1], round(total, 2), 1.0)
    return [own] + [
        Cause(d, v, round(x, 2), x / total if abs(total) > 1e-9 else 0.0)
        for (d, v), x in extra.items()
    ]


def ranked(causes: Iterable[Cause], top: int = TOP) -> list[Cause]:
    """The causes that explain at least `MIN_SHARE` of the excess, largest share first (within
    ten points, the more specific first)."""

    def key(c: Cause) -> tuple[int, int, float, str]:
        rank = SPECIFICITY.index(c.dimension) if c.dimension in SPECIFICITY else len(SPECIFICITY)
        return (-round(c.share * 10), rank, -c.share, c.value or "")

    return sorted((c for c in causes if c.value is not None and c.share >= MIN_SHARE), key=key)[
        :top
    ]


def lead_of(causes: Sequence[Cause]) -> Key | None:
    """The most specific value explaining at least half of an anomaly's excess, if any."""
    for dim in SPECIFIC:
        best = max((c for c in causes if c.dimension == dim and c.value is not None
                    and c.share >= LEAD_SHARE), key=lambda c: c.share, default=None)  # fmt: skip
        if best is not None and best.value is not None:
            return (dim, best.value)
    return None


def _overlap(a: Scanned, b: Scanned) -> bool:
    slack = dt.timedelta(days=1)
    return a.start <= b.last + slack and b.start <= a.last + slack


def group(anomalies: Sequence[Scanned], causes: Sequence[Sequence[Cause]]) -> list[Incident]:
    """The incidents of `anomalies` (largest impact first) from their contributions (see the
    module), largest first."""
    shares = [{(c.dimension, c.value): c.share for c in cs} for cs in causes]
    leads = [lead_of(cs) for cs in causes]
    parent = list(range(len(anomalies)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j, i in itertools.combinations(range(len(anomalies)), 2):
        li, lj = leads[i], leads[j]
        if _overlap(anomalies[i], anomalies[j]) and (
            (li is not None and shares[j].get(li, 0.0) >= LEAD_SHARE)
            or (lj is not None and shares[i].get(lj, 0.0) >= LEAD_SHARE)
        ):
            parent[root(i)] = root(j)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(anomalies)):
        members[root(i)].append(i)
    incidents: list[Incident] = []
    loose: list[int] = []
    for idx in members.values():
        found = [leads[i] for i in idx if leads[i] is not None]
        if not found:
            loose += idx
            continue
        resource = [k for k in found if k is not None and k[0] == "resource"]
        lead = (resource or found)[0]
        assert lead is not None
        incidents.append(Incident([anomalies[i] for i in idx], lead))
    for i in loose:
        _place(anomalies[i], shares[i], incidents)
    return sorted(incidents, key=lambda n: -max(a.anomaly.impact for a in n.members))


def _place(a: Scanned, shares: Mapping[Any, float], incidents: list[Incident]) -> None:
    """A lead-less anomaly (a team's or a service's rise, no resource or SKU half of it) joins
    the incident whose lead explains most of it, when the overlapping incidents' leads explain
    at least a quarter of it: the rest rose on no specific value of its own (or it would be an
    incident of its own), so it is that incident seen on a broader dimension. Else it is one."""
    near = [(shares.get(n.lead, 0.0), k) for k, n in enumerate(incidents)
            if any(_overlap(a, m) for m in n.members)]  # fmt: skip
    if near and sum(s for s, _ in near) >= JOIN_SHARE:
        best = max(near)[1]
        incidents[best].members.append(a)
        incidents[best].members.sort(key=lambda m: -m.anomaly.impact)
    else:
        incidents.append(Incident([a], (a.dimension, a.value)))


def explain(
    anomalies: Sequence[Scanned],
    rows: Mapping[Key, Sequence[Row]],
    history: int,
    drop: Callable[[Scanned, list[dict[str, Any]]], bool] | None = None,
) -> list[Incident]:
    """The incidents of `anomalies` with their root causes, from `cause_rows`' rows. `drop`
    leaves out an anomaly before grouping, given it and its causes (`as_dicts`): one an
    announced launch explains, say."""
    causes = [contributions(rows.get((a.dimension, a.value), ()), (a.dimension, a.value),
                            a.start, a.last, history) for a in anomalies]  # fmt: skip
    if drop is not None:
        kept = [(a, c) for a, c in zip(anomalies, causes, strict=True)
                if not drop(a, as_dicts(ranked(c)))]  # fmt: skip
        anomalies, causes = [a for a, _ in kept], [c for _, c in kept]
    incidents = group(anomalies, causes)
    for n in incidents:
        scope = (n.frame.dimension, n.frame.value)
        every = contributions(rows.get(scope, ()), scope, n.start, n.last, history)
        n.causes, n.excess_per_day = ranked(every), every[0].extra_per_day
        n.resources = len(ranked((c for c in every if c.dimension == "resource"), len(every)))
    return incidents


def names(sums: ibis.Table, keys: Iterable[Key]) -> dict[Key, str]:
    """Names a person knows for resources and SKUs: a resource's `ResourceName`, a SKU's usage
    type (`x_UsageType`), its `ChargeDescription` without the price, `SkuPriceDetails` or its
    meter; one query over the window's `usage_sums` (`detect.usage_sums`) for all of them."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for dim, value in keys:
        if dim in COLUMNS and value:
            wanted[dim].add(value)
    t = sums
    null = ibis.null().cast("string")
    parts = []
    if wanted["usage_type"]:
        parts.append(t.filter(_listed(wanted["usage_type"]).contains(t.usage_type))
                     .group_by(key=t.usage_type)
                     .aggregate(a=t.sku_usage_type.max(), b=t.sku_description.max(),
                                c=t.sku_price.max(), d=t.sku_meter.max())
                     .mutate(dimension=ibis.literal("usage_type")))  # fmt: skip
    if wanted["resource"]:
        parts.append(t.filter(_listed(wanted["resource"]).contains(t.resource))
                     .group_by(key=t.resource)
                     .aggregate(a=t.name.max(), b=null, c=null, d=null)
                     .mutate(dimension=ibis.literal("resource")))  # fmt: skip
    if not parts:
        return {}
    out: dict[Key, str] = {}
    for r in fetch.rows(functools.reduce(lambda x, y: x.union(y, distinct=False), parts)):
        desc = _description(r["b"])
        name = r["a"] or desc or r["c"] or r["d"]
        if name and name != r["key"]:
            out[(r["dimension"], r["key"])] = name
        elif r["dimension"] == "resource":
            out[(r["dimension"], r["key"])] = r["key"].rstrip("/").rsplit("/", 1)[-1]
    return out


def _listed(values: Iterable[str]) -> ibis.ArrayValue:
    """Values as one list literal, not one literal each: a query naming them keeps its shape,
    and its SQL (`ledger.compiled`), from one run to the next."""
    return ibis.literal(sorted(values), type="array<string>")


def as_dicts(causes: Iterable[Cause]) -> list[dict[str, Any]]:
    """Causes as the evidence's `root_cause` rows: dimension, value, extra a day, share."""
    return [{"dimension": c.dimension, "value": c.value, "extra_per_day_usd": c.extra_per_day,
             "share": round(c.share, 3)} for c in causes]  # fmt: skip


def label(dim: str, value: str, known: Mapping[Key, str]) -> str:
    """A value as a person says it: its name where the ledger has one, else the value."""
    return known.get((dim, value)) or value


def _description(text: str | None) -> str | None:
    """A charge description as a name: "$0.0025 per 1K Tokens - gpt-4o" is "gpt-4o (1K Tokens)"."""
    if not text or not text.strip():
        return None
    priced = _PRICED.match(text)
    return f"{priced['meter'].strip()} ({priced['unit']})" if priced else text.strip()
