"""A scenario's baseline: its daily cost series and metric series, in a shape drawn by seed.

A `Shape` bounds what a scenario may look like (how many series, how many days, how strong the
weekly dip, how noisy, how fast spend grows, how many bursty batch meters and month-start jobs);
`baseline` draws one organization inside those bounds. Each cost series is one (resource, SKU)
billed once a day; its cost is lognormal in size ($5 to $5,000 a day), with a weekly dip of its
own strength, growth, noise, and for some a month-start batch job or bursts.

Everything is drawn from `random.Random` seeded by the seed and a name, never by incidents, so the
same seed gives the same baseline with or without incidents (the ground truth's excess is the
difference, to the cent).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from random import Random

from costline.demo.scenario_catalog import (
    APPS,
    METERS,
    MODELS,
    PROVIDERS,
    TEAMS,
    WORDS,
    Meter,
    resource_id,
)

REQUIRED_ROLES = ("tokens", "tokens", "tokens", "transfer", "transfer", "training", "training",
                  "kubernetes", "batch", "endpoint", "database", "storage")  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """The bounds a scenario is drawn in."""

    name: str
    series: tuple[int, int]  # daily cost series
    days: tuple[int, int]
    weekly: tuple[float, float]  # weekend dip, as a share of a weekday
    noise: tuple[float, float]  # relative standard deviation of a day
    growth: tuple[float, float]  # relative growth a day
    bursty: float  # share of batch meters that burst
    month_start: float  # share of series with a month-start batch job


SHAPES: dict[str, Shape] = {
    "steady": Shape("steady", (10, 30), (90, 120), (0.0, 0.2), (0.02, 0.06), (0.0, 0.001),
                    0.2, 0.1),
    "seasonal": Shape("seasonal", (20, 50), (100, 150), (0.2, 0.6), (0.04, 0.12), (0.0, 0.002),
                      0.4, 0.3),
    "growing": Shape("growing", (20, 50), (90, 150), (0.05, 0.4), (0.03, 0.10), (0.002, 0.008),
                     0.4, 0.2),
    "noisy": Shape("noisy", (40, 80), (110, 150), (0.0, 0.5), (0.10, 0.20), (0.0, 0.003),
                   0.7, 0.2),
}  # fmt: skip


def pick_shape(seed: int, shape: str) -> Shape:
    """`shape` by name, or with "mixed" one of them drawn by the seed."""
    if shape == "mixed":
        return SHAPES[sorted(SHAPES)[Random(f"{seed}/shape").randrange(len(SHAPES))]]
    if shape not in SHAPES:
        raise ValueError(f"unknown scenario shape {shape!r}: mixed, {', '.join(SHAPES)}")
    return SHAPES[shape]


@dataclass
class CostSeries:
    """One (resource, SKU) billed once a day: its names and its baseline cost a day."""

    meter: Meter
    team: str
    region: str
    name: str  # ResourceName
    app: str | None  # the app it serves (endpoints and token meters)
    model: str | None
    level: float  # typical weekday cost, USD
    base: list[float]  # baseline cost a day
    extra: list[float] = field(default_factory=list)  # incidents' cost a day, on top

    @property
    def resource_id(self) -> str:
        return resource_id(self.meter, self.team, self.region, self.name)

    @property
    def sku(self) -> str:
        return self.meter.sku(self.region)


@dataclass
class MetricSeries:
    """One metric's daily values with its labels (a count, a percentage or milliseconds)."""

    metric: str
    labels: dict[str, str]
    values: list[float]
    decimals: int


@dataclass
class Baseline:
    start: dt.date
    days: int
    shape: Shape
    series: list[CostSeries]
    metrics: list[MetricSeries]


def _level(rng: Random) -> float:
    """A daily cost, lognormal around $150, kept within $5 and $5,000."""
    return min(5000.0, max(5.0, rng.lognormvariate(math.log(150), 1.3)))


def _pattern(rng: Random, shape: Shape, start: dt.date, days: int, level: float,
             bursty: bool) -> list[float]:  # fmt: skip
    """One series' cost a day: weekly dip, growth, noise, a month-start job, bursts."""
    dip = rng.uniform(*shape.weekly) if rng.random() < 0.8 else 0.0
    noise = rng.uniform(*shape.noise)
    growth = rng.uniform(*shape.growth)
    month_start = rng.uniform(2.0, 5.0) if rng.random() < shape.month_start else 0.0
    burst_p = rng.uniform(0.08, 0.25)
    out = []
    for d in range(days):
        date = start + dt.timedelta(days=d)
        v = level * (1 + growth) ** d * (1 - dip if date.weekday() >= 5 else 1.0)
        if month_start and date.day <= 2:
            v *= month_start
        if bursty:
            v = v * 0.3 * (rng.uniform(3, 10) if rng.random() < burst_p else 1.0)
        out.append(max(0.5, v * max(0.2, rng.gauss(1.0, noise))))
    return out


def _names(rng: Random, role: str, team: str, app: str | None, n: int) -> str:
    word = WORDS[rng.randrange(len(WORDS))]
    return {
        "endpoint": f"{app}-{word}", "tokens": f"{app}-{word}",
        "training": f"{rng.getrandbits(68):017x}", "batch": f"{team}-nightly-{word}",
        "storage": f"{team}-checkpoints-{word}-{n}", "transfer": f"{team}-datasets-{word}-{n}",
        "database": f"{team}-features-{word}", "kubernetes": f"{team}-{word}-workers",
    }[role]  # fmt: skip


def _series(rng: Random, shape: Shape, start: dt.date, days: int, role: str, n: int) -> CostSeries:
    meter = rng.choice([m for m in METERS if m.role == role])
    team = rng.choice(TEAMS)
    region = rng.choice(PROVIDERS[meter.provider][2])
    app = rng.choice(APPS) if role in ("endpoint", "tokens") else None
    model = rng.choice(MODELS) if role == "tokens" else None
    level = _level(rng)
    bursty = role == "batch" and rng.random() < shape.bursty
    name = _names(rng, role, team, app, n)
    base = _pattern(rng, shape, start, days, level, bursty)
    return CostSeries(meter, team, region, name, app, model, level, base, [0.0] * days)


def baseline(seed: int, shape: Shape, end: dt.date | None = None) -> Baseline:
    """The organization of `seed` in `shape`: its cost series and metric series, no incidents."""
    rng = Random(f"{seed}/{shape.name}/baseline")
    days = rng.randint(*shape.days)
    end = end or dt.date(2026, 11, 1) - dt.timedelta(days=rng.randrange(0, 60))
    start = end - dt.timedelta(days=days)
    count = rng.randint(*shape.series)
    roles = list(REQUIRED_ROLES) + [
        rng.choice(("endpoint", "training", "batch", "storage", "transfer", "tokens", "database",
                    "kubernetes", "kubernetes", "batch"))
        for _ in range(max(0, count - len(REQUIRED_ROLES)))
    ]  # fmt: skip
    series: list[CostSeries] = []
    seen: set[str] = set()
    for n, role in enumerate(roles):
        s, tries = _series(rng, shape, start, days, role, n), 0
        while s.resource_id + s.sku in seen or (s.app and any(o.app == s.app for o in series)):
            tries += 1  # every app has one endpoint or token meter: past ten, none is left
            s = _series(rng, shape, start, days, role if tries < 20 else "kubernetes", n)
        seen.add(s.resource_id + s.sku)
        series.append(s)
    return Baseline(start, days, shape, series, _metrics(rng, start, days, series))


def _metrics(
    rng: Random, start: dt.date, days: int, series: list[CostSeries]
) -> list[MetricSeries]:
    """Requests and successes per app (following its spend), p95 latency per app, GPU utilization
    per training instance, purchases of the storefront."""
    out: list[MetricSeries] = []
    for s in series:
        if s.app is not None:
            per_request = rng.uniform(0.002, 0.05)
            ok = rng.uniform(0.97, 0.995)
            labels = {"endpoint": s.app, "service": s.meter.service, "team": s.team}
            if s.model:
                labels["model"] = s.model
            requests = [c / per_request * rng.gauss(1.0, 0.02) for c in s.base]
            out.append(MetricSeries("inference_requests", labels, requests, 0))
            out.append(MetricSeries("inference_successes", dict(labels),
                                    [r * ok * rng.gauss(1.0, 0.005) for r in requests], 0))  # fmt: skip
            p95 = rng.uniform(150, 900)
            out.append(MetricSeries("latency_p95_ms", {"endpoint": s.app, "team": s.team},
                                    [p95 * rng.gauss(1.0, 0.06) for _ in range(days)], 1))  # fmt: skip
        if s.meter.role == "training":
            util = rng.uniform(55, 85)
            values = [min(100.0, max(0.0, util * (0.9 if (start + dt.timedelta(days=d))
                      .weekday() >= 5 else 1.0) + rng.gauss(0, 4))) for d in range(days)]  # fmt: skip
            out.append(MetricSeries("gpu_utilization_pct", {"resource": s.name, "team": s.team},
                                    values, 1))  # fmt: skip
    for app in ("storefront", "mobile-checkout"):
        level = rng.uniform(2000, 20000)
        values = [level * (1.25 if (start + dt.timedelta(days=d)).weekday() >= 5 else 1.0)
                  * rng.gauss(1.0, 0.05) for d in range(days)]  # fmt: skip
        out.append(MetricSeries("purchases", {"app": app, "team": "growth"}, values, 0))
    return out
