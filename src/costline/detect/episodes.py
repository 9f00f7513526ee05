"""The sequential part of the anomaly scan: how a series' candidate points become anomalies.

`assemble_row` walks one series' candidates (the points that passed the scan's stateless gates,
see `detect.anomaly`) and its creep triggers (`detect.trend`) in time order. An anomaly starts at

- a **strong** point (every gate) that beats the highest point of the past `peaks` points (in
  the scan's direction) by its margin, the points of earlier anomalies left out: a series' normal
  peaks have been seen before, an incident's level has not, and an old incident's peak must not
  hide a later change;
- (neither of these when the same days of the month before stood as far above their level: a
  month-start batch recurs, see `_Row.recurs`)
- the first of `sustain` consecutive **weak** points (the percent gate and `weak_z`) whose excess
  together reaches `min_total_impact` (and `min_impact`): a small rise that lasts is found by its
  total, not its daily excess, and need not be a new high (a weekend surge, a +25% week);
- a creep trigger: the first point of the trend's window that stands out against the level from
  before the window.

Once started, an anomaly is **followed** against a frozen baseline: for each phase of the season,
the median of the same phase in the `seasons` seasons before it began (the expected value of its
first point), and the spread of the `history` points before it. So a level shift (a forgotten
endpoint, replication left on, new spend from zero) is never absorbed into its own baseline: it
stays open, its impact accrues every point, and it ends when the series returns to that baseline
(`gap` + 1 points in a row less than `weak_z` spreads, half of `min_pct` percent or half of
`min_impact` above it), or at a **rebase** point: the owner acknowledged it, or a launch was
announced. After a rebase the new level is normal for `seasons` seasons (until the rolling
baseline has learned it): nothing starts there but a point twice the new level's high.

Everything a point's verdict uses comes before it or is it, so scanning a longer stretch of the
same series finds the same anomalies with the same starts (a daily job's findings keep their
fingerprints); an anomaly still open at the last point says so (`open`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from costline.detect.trend import CONSISTENT

if TYPE_CHECKING:
    from costline.detect.scan import Anomaly, Settings

MAD_TO_SIGMA = 1.4826

# t, excess, z, strong, beats, margin: in the scan's direction; `beats` with the whole past,
# `margin` the new-high margin of the point (`new_high`, or `spiky_new_high` for a bursty series)
Candidate = tuple[int, float, float, bool, bool, float]


def frozen_baseline(x: Sequence[float], anchor: int, s: Settings) -> tuple[list[float], float]:
    """The baseline an anomaly from `anchor` keeps: the expected value of each phase (offset from
    `anchor`) and the spread of the history before it."""
    history = x[max(0, anchor - s.history) : anchor]
    center = statistics.median(history) if history else 0.0
    scale = statistics.median(abs(v - center) for v in history) * MAD_TO_SIGMA if history else 0.0
    season = s.season if s.season > 0 and s.seasons > 0 else 0
    if season == 0:
        return [center], scale
    base = []
    for j in range(season):
        same = [x[anchor + j - k * season] for k in range(1, s.seasons + 1)
                if anchor + j - k * season >= 0]  # fmt: skip
        base.append(statistics.median(same) if same else center)
    return base, scale


def _continues(e: float, base: float, scale: float, s: Settings, sgn: float) -> bool:
    """Whether a point `e` over its frozen `base` (both in the scan's direction) still stands out."""
    if e <= 0 or e < s.weak_z * scale or e < s.min_impact / 2:
        return False
    plain = sgn * base
    return not (plain > 0 and e / plain * 100 < s.min_pct / 2)


@dataclass
class Follow:
    """One anomaly being followed: where its baseline was taken, and where it must stop."""

    start: int
    anchor: int
    stop: int  # the first point it may not reach (a rebase, or the series' end)
    points: list[int] = field(default_factory=list)


def follow(values: Sequence[float], x: Sequence[float], f: Follow, s: Settings) -> Anomaly:
    """The anomaly from `f.start`, followed against its frozen baseline until it ends."""
    from costline.detect.scan import Anomaly

    sgn = -1.0 if s.direction == "down" else 1.0
    base, scale = frozen_baseline(x, f.anchor, s)
    a = Anomaly(start=f.start, end=f.start, open=True)
    a.baseline = sgn * statistics.fmean(base)
    misses = 0
    for t in range(f.start, f.stop):
        b = base[(t - f.anchor) % len(base)]
        e = x[t] - b
        if t == f.start or _continues(e, b, scale, s, sgn):
            misses = 0
            a.end = t
            a.impact += e
            a.observed += values[t]
            a.expected += sgn * b
            a.peak_z = max(a.peak_z, e / scale if scale > 0 else float("inf"))
            a.points.append(t)
        else:
            misses += 1
            if misses > s.gap:
                a.open = False
                break
    else:
        a.open = f.stop == len(x)
    last = a.points[-max(s.season, 1) :]
    a.level = sum(values[t] for t in last) / len(last)
    return a


def _beats_unflagged(x: Sequence[float], t: int, flagged: set[int], margin: float,
                     s: Settings) -> bool:  # fmt: skip
    """The new-high test with the points of earlier anomalies left out of the past."""
    past = [x[i] for i in range(max(0, t - s.peaks), t) if i not in flagged]
    if not past:
        return True
    high = max(past)
    return x[t] > high + margin * abs(high)


@dataclass
class _Row:
    values: Sequence[float]
    x: list[float]
    s: Settings
    rebases: list[int]
    monthly: Sequence[int]  # each point's same day of the month before (-1: none), or empty
    found: list[Anomaly] = field(default_factory=list)
    flagged: set[int] = field(default_factory=set)
    busy_until: int = -1
    run: list[tuple[int, float]] = field(default_factory=list)
    renewed: dict[int, int] = field(default_factory=dict)  # rebase -> its new level's start

    def horizon(self, t: int) -> int | None:
        """Where the new normal began when `t` is inside a rebase's horizon, else None."""
        span = max(self.s.season, 1) * max(self.s.seasons, 1)
        for b in reversed(self.rebases):
            if b <= t:
                return self.renewed.get(b, b) if t < b + span else None
        return None

    def beats_unflagged(self, t: int, margin: float) -> bool:
        """A strong point that is no new high may be one with earlier anomalies left out."""
        if not self.found or self.found[-1].end < t - self.s.peaks:
            return False
        return _beats_unflagged(self.x, t, self.flagged, margin, self.s)

    def recurs(self, t: int) -> bool:
        """Whether the same days of one of the two months before (a day either side) stood as
        far above their level as `t` does (within `monthly_margin`): a month-start batch, a
        monthly job; not news."""
        now = _lift(self.x, t, self.s)
        m = t
        for _ in range(2):
            m = self.monthly[m] if 0 <= m < len(self.monthly) else -1
            if m < 0:
                return False
            if any(_lift(self.x, j, self.s) >= now / (1 + self.s.monthly_margin)
                   for j in (m - 1, m, m + 1) if 0 < j < t):  # fmt: skip
                return True
        return False

    def stop_after(self, t: int) -> int:
        return next((b for b in self.rebases if b > t), len(self.x))

    def begin(self, start: int, anchor: int, pattern: str, growth: float = 0.0) -> None:
        stop = self.stop_after(start)
        a = follow(self.values, self.x, Follow(start, anchor, stop), self.s)
        a.growth = growth
        lasting = (a.open and len(a.points) >= self.s.sustain) or len(a.points) >= max(
            self.s.season, 3
        )
        a.pattern = (
            "creep" if pattern == "creep" else "drop" if self.s.direction == "down"
            else "level_shift" if lasting else "spike"
        )  # fmt: skip
        if stop < len(self.x):
            self.renewed[stop] = start
        self.found.append(a)
        self.flagged.update(a.points)
        self.busy_until = a.end if not a.open else len(self.x)
        self.run = []

    def extend(self, c: Candidate) -> bool:
        """Add a weak point to the run of them; whether the run now starts an anomaly: `sustain`
        points in a row, their excess together past the gates, in a calm series, at a level
        not held as long before."""
        t, s = c[0], self.s
        if not self.run or self.run[-1][0] != t - 1:
            self.run = []
        self.run.append((t, c[1]))
        enough = sum(e for _, e in self.run) >= max(s.min_total_impact, s.min_impact)
        calm = c[5] <= s.new_high  # a bursty series' runs are its nature: new highs only
        if len(self.run) < s.sustain or not enough or not calm:
            return False
        return self.sustained(t) and not self.recurs(t)

    def creep_start(self, t: int) -> int | None:
        """Where the trend's rise began: the first point of the stretch (holes of at most `gap`
        points) that ends at `t` and stands out against the level before the trend's window;
        None when that stretch is shorter than `sustain` points."""
        anchor = max(t - self.s.creep_window + 1, self.busy_until + 1)
        base, scale = frozen_baseline(self.x, anchor, self.s)
        sgn = -1.0 if self.s.direction == "down" else 1.0
        start, misses = None, 0
        for i in range(t, anchor - 1, -1):
            b = base[(i - anchor) % len(base)]
            if _continues(self.x[i] - b, b, scale, self.s, sgn):
                start, misses = i, 0
            elif i == t or misses >= self.s.gap:
                break
            else:
                misses += 1
        if start is None or t - start + 1 < self.s.sustain:
            return None
        return start

    def rising(self, t: int) -> bool:
        """Whether the open anomaly, on which a creep trigger fired at `t`, is a creep rather than
        a step that the trend's window straddles: the window lies inside it (its own trend), or
        the points just before it began were already rising (a step jumps from a flat level):
        most pair slopes of log(value / baseline before the window) over them are positive."""
        a, s = self.found[-1], self.s
        w0 = max(0, t - s.creep_window + 1)
        if a.start <= w0 - max(s.season, 1):
            # The window lies inside it: a creep only if the window itself climbs (its last
            # season well above its first), not a plateau or a step that came back down.
            week = max(s.season, 1)
            first, last = self.x[w0 : w0 + week], self.x[t - week + 1 : t + 1]
            return bool(first) and statistics.fmean(last) > statistics.fmean(first) * (
                1 + s.creep_pct / 200
            )
        base, _ = frozen_baseline(self.x, w0, s)
        lifts = []
        for i in range(max(w0, a.start - max(s.season, 2 * s.sustain)), a.start):
            b = base[(i - w0) % len(base)]
            if self.x[i] > 0 and b > 0:
                lifts.append((i, math.log(self.x[i] / b)))
        slopes = [
            (lj - li) / (j - i) for n, (i, li) in enumerate(lifts) for j, lj in lifts[n + 1 :]
        ]
        # Rising, and at least at a creep's rate: noise that happens to climb is a step's eve.
        rate = math.log(1 + s.creep_pct / 100) / max(s.creep_window, 1)
        return len(lifts) >= s.sustain and (
            sum(1 for x in slopes if x > 0) >= CONSISTENT * len(slopes)
            and statistics.median(slopes) >= rate
        )

    def bursty(self, before: int) -> bool:
        """Whether the `peaks` points before `before` hold `spiky` spikes (as the new-high test
        counts them): a bursty series' bursts make no trend."""
        history = self.x[max(0, before - self.s.history) : before]
        if not history:
            return False
        center = statistics.median(history)
        mad = statistics.median(abs(v - center) for v in history) * MAD_TO_SIGMA
        limit = max(self.s.z * mad, self.s.min_impact)
        past = self.x[max(0, before - self.s.peaks) : before]
        return sum(1 for v in past if v - center > limit) >= self.s.spiky

    def sustained(self, t: int) -> bool:
        """Whether the last `sustain` points' level (their least) was never held as long in the
        past `peaks` points (earlier anomalies left out): a batch that runs for days every week
        has been seen before; a new level, however small, has not."""
        k = self.s.sustain
        now = min(self.x[t - k + 1 : t + 1])
        lo = max(0, t - k + 1 - self.s.peaks)
        for i in range(lo, t - k + 1 - k + 1):
            window = range(i, i + k)
            if not any(j in self.flagged for j in window) and min(self.x[j] for j in window) >= now:
                return False
        return True


def assemble_row(
    values: Sequence[float],
    candidates: Sequence[Candidate],
    creeps: Mapping[int, float],
    rebases: Sequence[int],
    s: Settings,
    monthly: Sequence[int] = (),
) -> list[Anomaly]:
    """One series' anomalies from its candidate points and creep triggers (see the module);
    `monthly`: for each point, the index of the same day of the month before (-1: none)."""
    x = list(values) if s.direction != "down" else [-v for v in values]
    row = _Row(values, x, s, sorted(set(rebases)), monthly)
    by_t = {c[0]: c for c in candidates}
    for t in sorted({*by_t, *creeps}):
        if t <= row.busy_until:
            if t in creeps and row.rising(t):
                row.found[-1].pattern, row.found[-1].growth = "creep", creeps[t]
            continue
        c = by_t.get(t)
        renewed = row.horizon(t)
        if c is not None and _new(row, c, renewed):
            row.begin(t, t, "spike")
        elif c is not None and renewed is None and row.extend(c):
            row.begin(row.run[0][0], row.run[0][0], "spike")
        else:
            if c is None:
                row.run = []
            if t in creeps and renewed is None and not row.bursty(t - s.creep_window + 1):
                start = row.creep_start(t)
                if start is not None:
                    anchor = max(t - s.creep_window + 1, row.busy_until + 1)
                    row.begin(start, anchor, "creep", creeps[t])
    for a in row.found:  # a "creep" over in under two seasons was a step (a sweep): no trend
        if a.pattern == "creep" and not a.open and a.end - a.start + 1 < 2 * max(s.season, 1):
            a.pattern, a.growth = "spike", 0.0
    return [a for a in row.found if a.impact >= s.min_total_impact]


def _new(row: _Row, c: Candidate, renewed: int | None) -> bool:
    """A strong point that beats the past's high (or, after a rebase, the new level's), and does
    not recur from the month before."""
    t, _, _, strong, beats, margin = c
    if not strong or not (beats or row.beats_unflagged(t, margin)):
        return False
    if renewed is not None and not _beats_new_level(row.x, t, renewed, row.s):
        return False
    return not row.recurs(t)


def _lift(x: Sequence[float], t: int, s: Settings) -> float:
    """How far `x[t]` stands above the median of the `history` points before it: a ratio for a
    positive level, else the difference."""
    history = x[max(0, t - s.history) : t]
    center = statistics.median(history)
    return x[t] / center if center > 0 else x[t] - center


def _beats_new_level(x: Sequence[float], t: int, renewed: int, s: Settings) -> bool:
    """Inside a rebase's horizon: twice (`spiky_new_high`) the new level's high, or nothing."""
    if t <= renewed:
        return False
    high = max(x[renewed:t])
    return x[t] > high + s.spiky_new_high * abs(high)
