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
from typing import Any

import ibis
import numpy as np

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.detect import incidents
from costline.detect.anomaly import Anomaly, Settings, monthly_lags, scan_many
from costline.detect.spend_findings import incident_findings
from costline.detect.usage_sums import DEFAULT_DIMENSIONS, usage_sums
from costline.detect.usage_sums import DIMENSIONS as DIMENSIONS  # where the CLI reads them
from costline.ledger import fetch
from costline.model import Finding


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
    return _daily(usage_sums(lines, start, start, end, rules, dimensions), start, end, dimensions)


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
    table = fetch.arrow(_union(parts))
    columns = (fetch.pylist(table[n]) for n in ("dimension", "value", "day", "cost"))
    for dimension, value, day, cost in zip(*columns, strict=True):
        series = out.setdefault((dimension, value), [0.0] * days)
        i = (day - start.date()).days
        if 0 <= i < days:
            series[i] += cost or 0.0
    # In the dimensions' order, then by value: anomalies of equal impact keep this order, which
    # must not depend on the order the engine returns rows in.
    order = {name: n for n, name in enumerate(dimensions)}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])))


def _union(parts: Sequence[ibis.Table]) -> ibis.Table:
    return functools.reduce(lambda x, y: x.union(y, distinct=False), parts)


def find_anomalies(
    series: Mapping[tuple[str, str], Sequence[float]],
    origin: dt.date,
    settings: Settings,
    renewed: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
) -> list[SpendAnomaly]:
    """Every series' anomalies, largest impact first. Series of one length (all of them, from
    `daily_series`) are scanned as one block by `scan_many`; `renewed` gives, per series, the
    days from which its level is the new normal (see `renewals`)."""
    keys_by_length: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for key, values in series.items():
        keys_by_length[len(values)].append(key)
    scanned: dict[tuple[str, str], list[Anomaly]] = {}
    renewed = renewed or {}
    for n, keys in keys_by_length.items():
        matrix = np.array([series[k] for k in keys], dtype=np.float64).reshape(len(keys), n)
        rebases = [[(d - origin).days for d in renewed.get(k, ()) if 0 <= (d - origin).days < n]
                   for k in keys]  # fmt: skip
        each = scan_many(matrix, settings, rebases, monthly_lags(origin, n))
        scanned.update(zip(keys, each, strict=True))
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
    renewed: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
    sums: ibis.Table | None = None,
) -> list[Finding]:
    """Findings for the spend anomalies of [start, end) (whole UTC days).

    The series begin `lookback(settings)` days before `start` (or on the first day the ledger
    has spend, if later), so each day of the window is judged with the same history in every
    run, and an anomaly keeps its start day (and its fingerprint) from one daily run to the next.
    Anomalies that ended before `start` are left out. `renewed`: per (dimension, value), days
    from which the level is the new normal (an owner acknowledged it); announced launches in
    `annotations` are added (`renewals`). `sums`: the lines' `usage_sums` from `first_day`, when
    the caller has derived them already (`detect_all`, for zombies too).
    """
    rules = rules or Rules()
    settings = settings or Settings()
    origin = start - dt.timedelta(days=lookback(settings))
    history = first_day(start, settings)
    with contextlib.ExitStack() as stack:
        # Derived once into the engine's memory, read by the series, root causes and names.
        if sums is None:
            sums = fetch.kept(stack, usage_sums(lines, history, start, end, rules, dimensions))
        series, first = _trimmed(_daily(sums, origin, end, dimensions), origin.date())
        launches = new_normal(annotations)
        found = find_anomalies(series, first, settings, renewals(launches, series, renewed))
        anomalies = [a for a in found if a.last >= start.date()]
        rows = incidents.cause_rows(sums, anomalies, settings.history)
        explained = incidents.explain(anomalies, rows, settings.history,
                                      drop=lambda a, c: announced(launches, a, c))  # fmt: skip
        known = incidents.names(sums, _named(explained))
    return incident_findings(explained, known, end=end.date(), rules=rules, clock=clock,
                             annotations=annotations, metrics=metrics, history=settings.history,
                             shape=lambda n: (shape_evidence(n.frame.anomaly),
                                              shape_sentence(n.frame.anomaly)))  # fmt: skip


def _named(explained: Sequence[incidents.Incident]) -> set[tuple[str, str]]:
    """The values the findings of `explained` name: causes, leads and the anomalies' scopes."""
    keys = {(c.dimension, c.value) for n in explained for c in n.causes if c.value is not None}
    return keys | {n.lead for n in explained} | {(a.dimension, a.value) for n in explained
                                                 for a in n.members}  # fmt: skip


def first_day(start: dt.datetime, settings: Settings) -> dt.datetime:
    """The first day `detect_spend` reads for a window starting `start`: its `lookback`, and the
    history of the first anomaly that could begin there (`usage_sums`' `history`)."""
    return start - dt.timedelta(days=lookback(settings) + settings.history)


def lookback(settings: Settings) -> int:
    """Days read before a window so that its first day is judged like its last."""
    return max(
        settings.warmup, settings.peaks, settings.history, settings.season * settings.seasons
    )


def _trimmed(
    series: dict[tuple[str, str], list[float]], origin: dt.date
) -> tuple[dict[tuple[str, str], list[float]], dt.date]:
    """The series from the first day any of them has spend: before it the ledger holds nothing,
    which is no history of zeros (every series would look new on the ledger's first day)."""
    days = len(next(iter(series.values()), []))
    first = next((d for d in range(days) if any(v[d] for v in series.values())), 0)
    return {k: v[first:] for k, v in series.items()}, origin + dt.timedelta(days=first)


NEW_NORMAL_KINDS = ("launch", "planned")  # and any kind ending in "_launch" (model_launch)


def _renews(kind: str) -> bool:
    return kind in NEW_NORMAL_KINDS or kind.endswith("_launch")


Launch = tuple[dt.date, dict[str, str]]


def new_normal(annotations: ibis.Table | None) -> list[Launch]:
    """(day, scope) of each announced launch or planned change: its level is no waste."""
    if annotations is None:
        return []
    rows = fetch.rows(annotations.select("ts", "kind", "scope"))
    return [(r["ts"].date(), dict(r["scope"] or [])) for r in rows if _renews(r["kind"] or "")]


def renewals(
    launches: Sequence[Launch],
    series: Mapping[tuple[str, str], Sequence[float]],
    acknowledged: Mapping[tuple[str, str], Sequence[dt.date]] | None = None,
) -> dict[tuple[str, str], list[dt.date]]:
    """Per series, the days its level becomes the new normal: the day of a launch or planned
    annotation whose scope names it (or has no scope: the whole organization), and the
    `acknowledged` days."""
    out: dict[tuple[str, str], list[dt.date]] = defaultdict(list)
    for key, days in (acknowledged or {}).items():
        out[key].extend(days)
    for day, scope in launches:
        for dim, value in series:
            if not scope or scope.get(dim) == value:
                out[(dim, value)].append(day)
    return dict(out)


def announced(
    launches: Sequence[Launch], a: incidents.Scanned, causes: Sequence[Mapping[str, Any]]
) -> bool:
    """An anomaly that began within a day of an announced launch whose scope names one of its
    causes (a launch by team X raises service and SKU series too): it is the launch, no waste."""
    for day, scope in launches:
        if abs((a.start - day).days) > 1:
            continue
        named = {(c["dimension"], c["value"]) for c in causes} | {(a.dimension, a.value)}
        if not scope or any(item in named for item in scope.items()):
            return True
    return False


MONTH_DAYS = 30


def shape_evidence(a: Anomaly) -> dict[str, Any]:
    """What kind of anomaly it is: its pattern, whether it still goes on, the daily baseline from
    before it began, and for a creep its growth and what the next month costs if it continues."""
    out: dict[str, Any] = {"pattern": a.pattern, "open": a.open,
                           "baseline_per_day": round(a.baseline, 2)}  # fmt: skip
    if a.pattern == "creep":
        ahead = a.projected(MONTH_DAYS)
        out |= {"growth_pct_per_day": round(a.growth * 100, 2),
                "projected_month": round(ahead, 2),
                "projected_month_excess": round(ahead - a.baseline * MONTH_DAYS, 2)}  # fmt: skip
    return out


def shape_sentence(a: Anomaly) -> str:
    """The summary's words for a creep or a level shift still going on."""
    if a.pattern == "creep":
        ahead = a.projected(MONTH_DAYS)
        return (f" Growing {a.growth * 100:.1f}% a day: if it continues, the next {MONTH_DAYS} "
                f"days cost ${ahead:,.0f}, ${ahead - a.baseline * MONTH_DAYS:,.0f} over its "
                "baseline.")  # fmt: skip
    if a.open and a.pattern == "level_shift":
        return (f" Still going: ${a.level - a.baseline:,.0f} a day over the baseline of "
                f"${a.baseline:,.0f} from before it began, about "
                f"${(a.level - a.baseline) * MONTH_DAYS:,.0f} a month.")  # fmt: skip
    return ""
