"""What the anomaly scan is told and what it finds: `Settings` and `Anomaly`.

Kept apart from the scan (`detect.anomaly`), its sequential part (`detect.episodes`) and its trend
test (`detect.trend`), which all read them, so that those three import it and not each other in a
circle. `detect.anomaly` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PATTERNS = ("spike", "level_shift", "creep", "drop")


@dataclass(frozen=True)
class Settings:
    min_impact: float = 100.0
    min_pct: float = 20.0
    z: float = 4.0
    new_high: float = 0.1
    spiky: int = 2
    spiky_new_high: float = 1.0
    min_total_impact: float = 250.0
    season: int = 7  # points per season: 7 for days in a week, 24 for hours in a day
    seasons: int = 4
    history: int = 28
    peaks: int = 56  # how far back a normal peak is remembered
    warmup: int = 42  # points before the first judged: six weeks show a daily burst pattern
    gap: int = 1  # anomalous points this far apart are one anomaly
    direction: str = "up"  # "up": rises are anomalies; "down": drops (requests, successes)
    sustain: int = 3  # weak points in a row whose total passes `min_total_impact` start one
    weak_z: float = 2.0  # scales a weak point (in a sustained run, or continuing one) needs
    creep_window: int = 21  # points a trend is measured over (0: no trend test)
    creep_pct: float = 25.0  # rise over `creep_window` points, at the trend's rate, that is creep
    monthly_margin: float = 0.5  # a lift this much over the month before's same days is news


@dataclass
class Anomaly:
    start: int  # index of the first anomalous point
    end: int  # index of the last (inclusive)
    impact: float = 0.0  # sum of |observed - baseline| over its anomalous points
    observed: float = 0.0
    expected: float = 0.0  # the baseline from before it began, summed over its points
    peak_z: float = 0.0
    points: list[int] = field(default_factory=list)
    pattern: str = "spike"  # one of PATTERNS
    baseline: float = 0.0  # the expected value a point from before it began (a season's mean)
    open: bool = False  # still going at the last point scanned
    growth: float = 0.0  # for a creep: the growth per point (0.03 is +3% a point)
    level: float = 0.0  # its level at its last point: the mean of its last season of points

    def projected(self, points: int) -> float:
        """Its total over the next `points` points if it goes on as it is (growing, for a creep).

        >>> round(Anomaly(0, 0, level=100.0, growth=0.1).projected(2), 2)
        231.0
        """
        if self.growth == 0:
            return self.level * points
        return self.level * sum((1 + self.growth) ** k for k in range(1, points + 1))
