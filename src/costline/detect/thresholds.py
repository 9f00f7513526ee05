"""Spike thresholds on telemetry signals, with escalation tiers: checked minutes after the data.

For each configured threshold (`thresholds:` in costline.yaml) the engine returns the signal's
buckets of the last `lookback` (plus the baseline's hours before it), one small series per value of
`by`; the rest runs in Python over a few hundred points a series:

- **baseline** of a bucket: the median of the `baseline_hours` of buckets before it, and its
  scale 1.4826 x their median absolute deviation. Buckets already in a breach are left out of the
  baselines after them, so a spike that lasts longer than half the window does not become its own
  baseline. Fewer than half the window's buckets with a value: no baseline, no verdict on the
  relative conditions.
- **breach** of a bucket: every condition the threshold gives holds: `absolute` (the value at or
  over it; at or under it for `direction: below`), `pct_over_baseline` and `z` (the robust
  z-score). Only whole buckets are judged: the bucket still filling at `as_of` waits.
- **episode**: breaching buckets less than 30 quiet minutes apart (so a spike whose noise dips
  under the line for a bucket or two stays one alert); `min_buckets` of them make a breach.
  One finding per episode (fingerprint: threshold, key and the episode's first bucket), so each
  check moves its `last_seen`, its minutes and its impact, never making a second finding.
- **impact** in dollars: for a priced signal, the bucket's dollars x (value - baseline) / value,
  summed over the episode; unpriced signals have none.
- **across checks**: each check reads only its lookback, so an episode older than it would start
  again at the lookback's first bucket, and again a check later: a new finding every few minutes.
  `known` (the unresolved breaches in the ledger: threshold and key -> window) carries the
  episode on: a breach that begins within `QUIET_MINUTES` of a known one's end is that episode
  (its start, its fingerprint), its minutes counted from the known start and its impact never
  less than the known one's.
- **default condition**: a threshold that gives no condition checks its signal's
  (`signals.DEFAULTS`; `effective`).
- **owner** and **action**: `costline.detect.breach`.
- **tier**: the last escalation tier (the threshold's own, else the top-level `escalation`) whose
  `after_minutes` the episode has lasted and whose `impact_usd` its impact has reached (a tier
  with a dollar condition is never reached by an unpriced breach). The finding carries the tier,
  its index and the routes of every tier up to it, for `notify/` to deliver; it is critical at
  the last of several tiers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis.expr.types as ir
import numpy as np

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.config import Threshold, Tier
from costline.detect.breach import KeyOwner, action, key_owners, owner_of
from costline.detect.signals import Signal, UnknownSignal, bucketed, signal
from costline.ledger import fetch
from costline.model import Finding, FindingKind, Severity, Window

MAD_TO_SIGMA = 1.4826
CENT = Decimal("0.01")
QUIET_MINUTES = 30  # a breach ends after this long with no breaching bucket (no flapping)
QUIET = dt.timedelta(minutes=QUIET_MINUTES)


@dataclass
class Episode:
    key: str
    first: int  # index of the first breaching bucket
    last: int  # index of the last (inclusive)
    points: list[int] = field(default_factory=list)
    peak: float = 0.0
    baseline: float | None = None  # at the first bucket
    excess: float = 0.0  # sum of (value - baseline) over its buckets with a baseline
    impact_usd: float | None = None
    peak_pct: float | None = None
    peak_z: float | None = None


@dataclass(frozen=True)
class Known:
    """A breach episode already in the ledger, unresolved: its window and impact."""

    start: dt.datetime
    end: dt.datetime
    impact_usd: Decimal | None = None


KnownEpisodes = Mapping[tuple[str, str], Known]  # (threshold name, key) -> the latest one
CONDITION_KEYS = ("direction", "absolute", "pct_over_baseline", "z", "min_buckets",
                  "bucket_minutes", "baseline_hours")  # fmt: skip


def effective(th: Threshold) -> Threshold:
    """The threshold as checked: with no condition of its own, its signal's default one (what it
    sets itself, such as `min_buckets` or `bucket_minutes`, wins)."""
    if th.absolute is not None or th.pct_over_baseline is not None or th.z is not None:
        return th
    default = signal(th.signal).default
    if default is None:
        raise UnknownSignal(
            f"threshold {th.name}: signal {th.signal} has no default condition; give at least "
            "one of absolute, pct_over_baseline and z"
        )
    update = {k: getattr(default, k) for k in CONDITION_KEYS
              if k not in th.model_fields_set and getattr(default, k) is not None}  # fmt: skip
    return th.model_copy(update=update)


@dataclass(frozen=True)
class Check:
    """One threshold's series: bucket starts (epoch seconds) and, per key, values and dollars."""

    threshold: Threshold
    signal: Signal
    starts: list[int]
    values: dict[str, np.ndarray]
    costs: dict[str, np.ndarray]


def window_of(threshold: Threshold, as_of: dt.datetime, lookback: dt.timedelta) -> tuple[int, int]:
    """(first bucket start, end) in epoch seconds: whole buckets only, the filling one left out."""
    width = threshold.bucket_minutes * 60
    end = int(as_of.timestamp()) // width * width
    first = (end - int(lookback.total_seconds()) - threshold.baseline_hours * 3600) // width * width
    return first, end


def series(
    threshold: Threshold,
    table: ir.Table,
    as_of: dt.datetime,
    lookback: dt.timedelta,
    host_rates: Mapping[str, float] | None = None,
) -> Check:
    """The threshold's signal per key over its window, in one engine query."""
    s = signal(threshold.signal)
    first, end = window_of(threshold, as_of, lookback)
    width = threshold.bucket_minutes * 60
    starts = list(range(first, end, width))
    rows = fetch.rows(bucketed(
        s, table, _utc(first), _utc(end), minutes=threshold.bucket_minutes, by=threshold.by,
        scope=threshold.scope, host_rates=host_rates,
    ))  # fmt: skip
    # A volume is 0 in an empty bucket only once the table has data: before its first row in the
    # window nothing was measured, and zeros there would make the first data a spike.
    covered = min(((r["bucket"] - first) // width for r in rows), default=0)
    values: dict[str, np.ndarray] = {}
    costs: dict[str, np.ndarray] = {}
    for r in rows:
        i = (r["bucket"] - first) // width
        if not 0 <= i < len(starts):
            continue
        if r["key"] not in values:
            values[r["key"]] = np.full(len(starts), math.nan)
            if s.volume:
                values[r["key"]][covered:] = 0.0
            costs[r["key"]] = np.full(len(starts), math.nan)
        values[r["key"]][i] = math.nan if r["value"] is None else r["value"]
        costs[r["key"]][i] = math.nan if r["cost"] is None else r["cost"]
    return Check(threshold, s, starts, values, costs)


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def baseline(values: np.ndarray, t: int, window: int) -> tuple[float, float] | None:
    """(median, 1.4826 x MAD) of the `window` points before `t` that have a value."""
    past = values[max(0, t - window) : t]
    past = past[~np.isnan(past)]
    if len(past) < max(1, window // 2):
        return None
    center = float(np.median(past))
    return center, float(np.median(np.abs(past - center))) * MAD_TO_SIGMA


def breaches(th: Threshold, value: float, base: tuple[float, float] | None) -> bool:
    """Whether one bucket's value breaches: every condition the threshold gives holds."""
    if math.isnan(value):
        return False
    below = th.direction == "below"
    if th.absolute is not None and (value > th.absolute if below else value < th.absolute):
        return False
    if th.pct_over_baseline is None and th.z is None:
        return True
    if base is None:
        return False
    center, scale = base
    excess = center - value if below else value - center
    if excess <= 0:
        return False
    if (
        th.pct_over_baseline is not None
        and center > 0
        and excess / center * 100 < th.pct_over_baseline
    ):
        return False
    return not (th.z is not None and scale > 0 and excess / scale < th.z)


def episodes(check: Check) -> list[Episode]:
    """Every key's breach episodes, in time order per key."""
    th = check.threshold
    window = max(1, th.baseline_hours * 60 // th.bucket_minutes)
    first_judged = window  # the buckets before it are the first baseline only
    found: list[Episode] = []
    for key, values in check.values.items():
        clean = values.copy()  # breaching buckets leave the later baselines
        open_: Episode | None = None
        costs = check.costs[key]
        for t in range(first_judged, len(values)):
            base = baseline(clean, t, window)
            if not breaches(th, float(values[t]), base):
                continue
            clean[t] = math.nan
            if open_ is None or (t - open_.last - 1) * th.bucket_minutes >= QUIET_MINUTES:
                open_ = Episode(key, t, t, baseline=base[0] if base else None)
                found.append(open_)
            _add(open_, t, float(values[t]), float(costs[t]), base, th, check.signal)
    return [e for e in found if len(e.points) >= th.min_buckets]


def _add(
    e: Episode,
    t: int,
    value: float,
    cost: float,
    base: tuple[float, float] | None,
    th: Threshold,
    s: Signal,
) -> None:
    e.last = t
    e.points.append(t)
    if len(e.points) == 1:
        e.peak = value
    else:
        e.peak = min(e.peak, value) if th.direction == "below" else max(e.peak, value)
    if base is None:
        return
    center, scale = base
    excess = center - value if th.direction == "below" else value - center
    e.excess += excess
    if center > 0:
        e.peak_pct = max(e.peak_pct or 0.0, excess / center * 100)
    if scale > 0:
        e.peak_z = max(e.peak_z or 0.0, excess / scale)
    if s.priced and th.direction == "above" and value > 0 and not math.isnan(cost):
        e.impact_usd = (e.impact_usd or 0.0) + cost * excess / value


def tier_of(tiers: Sequence[Tier], minutes: int, impact: Decimal | None) -> int | None:
    """The index of the last tier the breach has reached, or None with no tiers."""
    reached = None
    for i, tier in enumerate(tiers):
        if minutes < tier.after_minutes:
            continue
        if tier.impact_usd is not None and (impact is None or impact < tier.impact_usd):
            continue
        reached = i
    return reached


def findings(
    check: Check,
    *,
    tiers: Sequence[Tier],
    rules: Rules,
    clock: Clock,
    owners: Mapping[str, KeyOwner] | None = None,
    known: KnownEpisodes | None = None,
    found_episodes: list[Episode] | None = None,
) -> list[Finding]:
    """One finding per breach episode of the check's series (`known`: see the module;
    `found_episodes`: `episodes(check)`, when already computed)."""
    th, s = check.threshold, check.signal
    tiers = th.escalation if th.escalation is not None else tiers
    width = th.bucket_minutes * 60
    out = []
    for e in episodes(check) if found_episodes is None else found_episodes:
        start = _utc(check.starts[e.first])
        end = _utc(check.starts[e.last] + width)
        impact = None if e.impact_usd is None else Decimal(repr(e.impact_usd)).quantize(CENT)
        before = (known or {}).get((th.name, e.key))
        if before is not None and before.start <= start <= before.end + QUIET:
            start = before.start  # the same episode, begun before this check's lookback
            if before.impact_usd is not None:
                impact = max(impact or before.impact_usd, before.impact_usd)
        minutes = int((end - start).total_seconds() // 60)
        reached = tier_of(tiers, minutes, impact)
        severity = th.severity
        if reached is not None and reached >= 1:
            severity = max(severity, Severity.WARNING, key=lambda x: x.rank)
        if reached is not None and len(tiers) > 1 and reached == len(tiers) - 1:
            severity = Severity.CRITICAL
        ongoing = e.last == len(check.starts) - 1
        found = (owners or {}).get(e.key)
        scope = {"threshold": th.name, **({th.by: e.key} if th.by else {})}
        who = f" of {th.by} {e.key}" if th.by else ""
        word = "under" if th.direction == "below" else "over"
        out.append(
            Finding.new(
                kind=FindingKind.THRESHOLD_BREACH,
                scope=scope,
                dedup_key=f"{s.name}:{start.isoformat()}",
                clock=clock,
                title=f"{th.name}: {s.name}{who} {word} threshold since {start:%Y-%m-%d %H:%M} UTC",
                severity=severity,
                summary=_summary(check, e, start, minutes, ongoing, impact, found)
                + (f"; tier {tiers[reached].name}" if reached is not None else "")
                + ".",
                owner=owner_of(th, e.key, found, rules),
                impact_usd=impact,
                window=Window(start=start, end=end),
                evidence=_evidence(check, e, start, minutes, ongoing, tiers, reached, found),
                actions=[action(th, s, e.key, ongoing, minutes, impact)],
            )
        )
    return out


def _summary(check: Check, e: Episode, start: dt.datetime, minutes: int, ongoing: bool,
             impact: Decimal | None, found: KeyOwner | None) -> str:  # fmt: skip
    th, s = check.threshold, check.signal
    word = "under" if th.direction == "below" else "over"
    pct = (
        f", {e.peak_pct:.0f}% {word} its baseline of {e.baseline:,.4g}"
        if e.peak_pct is not None and e.baseline is not None
        else ""
    )
    who = f" of {th.by} {e.key}" if th.by else ""
    team = f" (team {found.team})" if found is not None and found.team else ""
    return (
        f"{s.name}{who}{team} peaked at {e.peak:,.4g} {s.unit}{pct}, for {minutes} minutes from "
        f"{start:%Y-%m-%d %H:%M} UTC" + (" and still going" if ongoing else "")
        + (f"; ${impact:,} above baseline so far" if impact is not None else "")
    )  # fmt: skip


def _evidence(
    check: Check,
    e: Episode,
    start: dt.datetime,
    minutes: int,
    ongoing: bool,
    tiers: Sequence[Tier],
    reached: int | None,
    found: KeyOwner | None,
) -> dict[str, Any]:
    th = check.threshold
    routes = [r for tier in tiers[: (reached or 0) + 1] for r in tier.routes] if (
        reached is not None) else []  # fmt: skip
    return {
        "signal": check.signal.name,
        "unit": check.signal.unit,
        "threshold": th.name,
        "bucket_minutes": th.bucket_minutes,
        "baseline_hours": th.baseline_hours,
        "start": start.isoformat(),
        "team": found.team if found else None,
        "project": found.project if found else None,
        "last_seen": _utc(check.starts[e.last] + th.bucket_minutes * 60).isoformat(),
        "minutes": minutes,
        "buckets": len(e.points),
        "ongoing": ongoing,
        "peak": _round(e.peak),
        "baseline": _round(e.baseline),
        "peak_pct_over_baseline": _round(e.peak_pct),
        "peak_z": _round(e.peak_z),
        "excess": _round(e.excess),
        "tier": tiers[reached].name if reached is not None else None,
        "tier_index": reached,
        "routes": routes,
    }


def _round(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) or math.isnan(x) else round(x, 4)


def evaluate(
    tables: Mapping[str, ir.Table],
    thresholds: Sequence[Threshold],
    *,
    as_of: dt.datetime,
    lookback: dt.timedelta,
    tiers: Sequence[Tier],
    rules: Rules,
    clock: Clock,
    host_rates: Mapping[str, float] | None = None,
    known: KnownEpisodes | None = None,
) -> list[Finding]:
    """The findings of every threshold's breaches in the `lookback` before `as_of`; `tables`
    holds each signal's table, and `workloads` for the owners of GPU keys."""
    out: list[Finding] = []
    for th in map(effective, thresholds):
        s = signal(th.signal)
        check = series(th, tables[s.table], as_of, lookback, host_rates)
        found = episodes(check)
        owners: Mapping[str, KeyOwner] = {}
        if found:
            first, end = window_of(th, as_of, lookback)
            owners = key_owners(th, s, tables, _utc(first), _utc(end), rules)
        out.extend(findings(check, tiers=tiers, rules=rules, clock=clock, owners=owners,
                            known=known, found_episodes=found))  # fmt: skip
    return sorted(out, key=lambda f: (-(f.impact_usd or 0), f.title))
