"""Spend anomalies: daily cost per value of each dimension, scanned, then told as incidents.

`detect_spend` derives the window's usage lines once into a narrow table of daily sums (a
temporary table of the engine), reads from it the daily cost of every (dimension, value) series,
runs `detect.anomaly.scan_many` on them all as one block, and hands the anomalies to
`detect.incidents`: the anomalies of one cause and window (a sweep seen on its service, its usage
type and its team) are one incident, whose root cause ranks the values by their share of the
excess (one query for all of them), named from the ledger lines (one query);
`detect.spend_findings` makes each incident one finding, with what changed (annotations), value
or waste (did `inference_successes` rise with it), its owner and suggested actions.

An incident's fingerprint is kind + its lead scope (a resource or usage type, with its team) +
its first day, so scanning again (a daily run on the data so far) moves `last_seen` and the impact
so far, and never makes a second finding for the same incident.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import numpy as np

from costline.attribution.rules import Rules, derive_lines
from costline.clock import Clock
from costline.detect import incidents
from costline.detect.anomaly import Anomaly, Settings, scan_many
from costline.detect.incidents import CAUSE_DIMENSIONS
from costline.detect.spend_findings import incident_finding
from costline.ledger import fetch
from costline.model import Finding

DIMENSIONS: Mapping[str, str] = {
    "service": "ServiceName",
    "team": "team",
    "account": "SubAccountName",
    "region": "RegionId",
    "model": "model",
    "usage_type": "SkuId",  # the SKU: an instance type in a region, a storage class, a token meter
    "resource": "ResourceId",
}
DEFAULT_DIMENSIONS = ("service", "team", "usage_type")


@dataclass(frozen=True)
class SpendAnomaly:
    dimension: str
    value: str
    start: dt.date
    last: dt.date  # inclusive
    anomaly: Anomaly

    @property
    def days(self) -> int:
        return len(self.anomaly.points)


def daily_series(
    lines: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str], rules: Rules
) -> dict[tuple[str, str], list[float]]:
    """(dimension, value) -> daily effective cost over [start, end), one float per day."""
    return _daily(_narrow(usage(lines), start, end, dimensions, rules), start, end, dimensions)


def _narrow(
    used: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str], rules: Rules
) -> ibis.Table:
    """Usage lines of [start, end), derived, summed per day and per value of every dimension a
    series or a root cause reads (as text): all `detect_spend` asks the engine about, small."""
    d = derive_lines(used.filter(used.ChargePeriodStart >= start, used.ChargePeriodStart < end),
                     rules)  # fmt: skip
    names = list(dict.fromkeys([*dimensions, *CAUSE_DIMENSIONS]))
    keys = [d.ChargePeriodStart.date().name("day"),
            *[d[DIMENSIONS[n]].cast("string").name(n) for n in names]]  # fmt: skip
    return d.group_by(keys).aggregate(cost=d.EffectiveCost.sum())


def _daily(
    narrow: ibis.Table, start: dt.datetime, end: dt.datetime, dimensions: Sequence[str]
) -> dict[tuple[str, str], list[float]]:
    d = narrow.filter(narrow.day >= start.date(), narrow.day < end.date())
    days = (end.date() - start.date()).days
    out: dict[tuple[str, str], list[float]] = {}
    parts = []
    for name in dimensions:
        kept = d.filter(d[name].notnull())
        part = kept.group_by([kept[name].name("value"), "day"])
        parts.append(part.aggregate(cost=kept.cost.sum().cast("float64"))
                     .mutate(dimension=ibis.literal(name)))  # fmt: skip
    for r in fetch.rows(_union(parts)):
        series = out.setdefault((r["dimension"], r["value"]), [0.0] * days)
        i = (r["day"] - start.date()).days
        if 0 <= i < days:
            series[i] += r["cost"] or 0.0
    # In the dimensions' order, then by value: anomalies of equal impact keep this order, which
    # must not depend on the order the engine returns rows in.
    order = {name: n for n, name in enumerate(dimensions)}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])))


def usage(lines: ibis.Table) -> ibis.Table:
    """Usage lines only: a month's tax, a credit or a commitment purchase is not an anomaly."""
    return lines.filter(lines.ChargeCategory.fill_null("Usage") == "Usage")


def _union(parts: Sequence[ibis.Table]) -> ibis.Table:
    return functools.reduce(lambda x, y: x.union(y, distinct=False), parts)


def find_anomalies(
    series: Mapping[tuple[str, str], Sequence[float]], origin: dt.date, settings: Settings
) -> list[SpendAnomaly]:
    """Every series' anomalies, largest impact first. Series of one length (all of them, from
    `daily_series`) are scanned as one block by `scan_many`."""
    keys_by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, values in series.items():
        keys_by_length[len(values)].append(key)
    scanned: dict[tuple[str, str], list[Anomaly]] = {}
    for n, keys in keys_by_length.items():
        matrix = np.array([series[k] for k in keys], dtype=np.float64).reshape(len(keys), n)
        scanned.update(zip(keys, scan_many(matrix, settings), strict=True))
    found = []
    for dim, value in series:  # in the series' order, as one scan at a time gave: ties keep it
        for a in scanned[(dim, value)]:
            found.append(SpendAnomaly(dim, value, origin + dt.timedelta(days=a.start),
                                      origin + dt.timedelta(days=a.end), a))  # fmt: skip
    return sorted(found, key=lambda x: -x.anomaly.impact)


def detect_spend(
    lines: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    *,
    rules: Rules | None = None,
    clock: Clock,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    settings: Settings | None = None,
    annotations: ibis.Table | None = None,
    metrics: ibis.Table | None = None,
) -> list[Finding]:
    """Findings for the spend anomalies of [start, end) (whole UTC days; the first four weeks are
    history only)."""
    rules = rules or Rules()
    settings = settings or Settings()
    history = start - dt.timedelta(days=settings.history)
    with contextlib.ExitStack() as stack:
        # Derived once into the engine's memory, read by the series and every root cause.
        narrow = fetch.kept(stack, _narrow(usage(lines), history, end, dimensions, rules))
        series = _daily(narrow, start, end, dimensions)
        anomalies = find_anomalies(series, start.date(), settings)
        rows = incidents.cause_rows(narrow, anomalies, settings.history)
    found = incidents.explain(anomalies, rows, settings.history)
    keys = {(c.dimension, c.value) for n in found for c in n.causes if c.value is not None}
    keys |= {n.lead for n in found} | {(a.dimension, a.value) for n in found for a in n.members}
    known = incidents.names(usage(lines), keys, history, end)
    return [incident_finding(n, known, end=end.date(), rules=rules, clock=clock,
                             annotations=annotations, metrics=metrics, history=settings.history)
            for n in found]  # fmt: skip
