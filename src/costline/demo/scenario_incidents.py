"""What goes wrong in a scenario: 8 to 14 incidents of the kinds real AI spend and telemetry show.

Spend incidents add cost to the bills (`CostSeries.extra`, on top of an unchanged baseline):

- `runaway_sweep`: 4-12 copies of a training instance for 2-5 days (thousands a day);
- `forgotten_endpoint`: a new inference endpoint that starts and never stops, serving ~no requests;
- `slow_creep`: +1.5-4% a day for 2-5 weeks on one series, then held there;
- `replication_left_on`: a bucket's inter-region transfer x3-8 from one day on;
- `token_surge`: an app's tokens x2.5-4 for 3-6 days, its successful requests unchanged (waste);
- `launch_surge`: an app's tokens x1.8-3 from a launch on, announced by an annotation, with its
  successful requests rising as much (value: no alert is expected);
- `weekend_surge`: a job run on one or two weekends, 1.5-3x the series' weekday cost a day;
- `borderline_rise`: +25% for 5-7 days on the series nearest $300 a day (about $75 a day).

Metric incidents change unit-free or count series (no dollars): `usage_drop` (successful
requests crash, or purchases fall), `utilization_shift` (GPU utilization falls to idle and stays),
`latency_shift` (p95 latency x1.6-3 for days).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from random import Random
from typing import Any

from costline.demo.scenario_catalog import account_name
from costline.demo.scenario_series import Baseline, CostSeries, MetricSeries

KINDS = ("runaway_sweep", "forgotten_endpoint", "slow_creep", "replication_left_on", "token_surge",
         "launch_surge", "weekend_surge", "borderline_rise", "usage_drop", "utilization_shift",
         "latency_shift")  # fmt: skip
REPEATABLE = ("runaway_sweep", "forgotten_endpoint", "slow_creep", "token_surge", "weekend_surge",
              "borderline_rise")  # fmt: skip
WARMUP_DAYS = 42  # no incident starts before day WARMUP_DAYS + 3; detection runs from here
NAN = float("nan")


@dataclass
class Incident:
    kind: str
    scope: dict[str, Any]  # str values, or a list for a sweep's resources
    start: int  # day index
    end: int | None  # exclusive day index; None when it lasts to the end
    direction: str = "rise"
    series: list[CostSeries] = field(default_factory=list)  # whose `extra` is its cost
    annotation: dict[str, Any] | None = None

    @property
    def waste(self) -> bool:
        return self.kind != "launch_surge" and bool(self.series)


def spend_scope(s: CostSeries) -> dict[str, Any]:
    """The dimension values a spend incident on `s` shows under (costline's dimension names)."""
    return {"resource": s.resource_id, "usage_type": s.sku, "service": s.meter.service,
            "team": s.team, "account": account_name(s.team, s.meter.provider),
            "region": s.region}  # fmt: skip


class Planner:
    """Draws the incidents of one scenario and applies them to its baseline."""

    def __init__(self, base: Baseline, seed: int) -> None:
        self.base = base
        self.rng = Random(f"{seed}/{base.shape.name}/incidents")
        self.used: set[int] = set()

    def plan(self) -> list[Incident]:
        rng = self.rng
        n = rng.randint(8, 14)
        kinds = rng.sample(KINDS, min(n, len(KINDS)))
        kinds += [rng.choice(REPEATABLE) for _ in range(n - len(kinds))]
        found = [getattr(self, kind)() for kind in kinds]
        return sorted((i for i in found if i is not None), key=lambda i: (i.start, i.kind))

    # -- helpers ----------------------------------------------------------------------------

    def _start(self, left: int) -> int:
        """A first day after the warm-up, with at least `left` days of the scenario after it."""
        return self.rng.randint(WARMUP_DAYS + 3, max(WARMUP_DAYS + 3, self.base.days - left))

    def _pick(self, roles: tuple[str, ...], near: float | None = None) -> CostSeries | None:
        free = [s for s in self.base.series if s.meter.role in roles and id(s) not in self.used]
        if not free:
            return None
        s = min(free, key=lambda x: abs(x.level - near)) if near else self.rng.choice(free)
        self.used.add(id(s))
        return s

    def _metric(self, metric: str) -> MetricSeries | None:
        free = [m for m in self.base.metrics if m.metric == metric and id(m) not in self.used]
        if not free:
            return None
        m = self.rng.choice(free)
        self.used.add(id(m))
        return m

    def _scale(self, s: CostSeries, start: int, end: int | None, factor: float) -> None:
        for d in range(start, end or self.base.days):
            s.extra[d] += s.base[d] * (factor - 1)

    def _new(self, template: CostSeries, name: str, team: str, level: float, start: int,
             end: int | None) -> CostSeries:  # fmt: skip
        days = self.base.days
        extra = [level * self.rng.gauss(1.0, 0.03) if start <= d < (end or days) else 0.0
                 for d in range(days)]  # fmt: skip
        new = CostSeries(template.meter, team, template.region, name, template.app,
                         template.model, level, [0.0] * days, extra)  # fmt: skip
        self.base.series.append(new)
        self.used.add(id(new))
        return new

    # -- spend incidents ---------------------------------------------------------------------

    def runaway_sweep(self) -> Incident | None:
        s = self._pick(("training",))
        if s is None:
            return None
        start, length = self._start(6), self.rng.randint(2, 5)
        level = max(s.level, self.rng.uniform(500, 1500))
        copies = [self._new(s, f"{s.name[:9]}sweep{j:02d}", s.team, level, start, start + length)
                  for j in range(self.rng.randint(4, 12))]  # fmt: skip
        scope = spend_scope(copies[0]) | {"resource": [c.resource_id for c in copies]}
        return Incident("runaway_sweep", scope, start, start + length, series=copies)

    def forgotten_endpoint(self) -> Incident | None:
        template = next((s for s in self.base.series if s.meter.role == "endpoint"), None)
        if template is None:
            return None
        start = self._start(10)
        team = self.rng.choice(sorted({s.team for s in self.base.series}))
        name = f"{team}-eval-{self.rng.getrandbits(24):06x}"
        new = self._new(template, name, team, self.rng.uniform(150, 900), start, None)
        new.app = name
        labels = {"endpoint": name, "service": new.meter.service, "team": team}
        for metric in ("inference_requests", "inference_successes"):
            values = [float(self.rng.randint(0, 2)) if d >= start else NAN
                      for d in range(self.base.days)]  # fmt: skip
            self.base.metrics.append(MetricSeries(metric, dict(labels), values, 0))
        return Incident("forgotten_endpoint", spend_scope(new), start, None, series=[new])

    def slow_creep(self) -> Incident | None:
        s = self._pick(("kubernetes", "database", "storage", "endpoint"))
        if s is None:
            return None
        start, rate, weeks = self._start(15), self.rng.uniform(0.015, 0.04), self.rng.randint(2, 5)
        for d in range(start, self.base.days):
            s.extra[d] += s.base[d] * ((1 + rate) ** min(d - start + 1, weeks * 7) - 1)
        return Incident("slow_creep", spend_scope(s), start, None, series=[s])

    def replication_left_on(self) -> Incident | None:
        s = self._pick(("transfer",))
        if s is None:
            return None
        start = self._start(10)
        self._scale(s, start, None, self.rng.uniform(3, 8))
        return Incident("replication_left_on", spend_scope(s), start, None, series=[s])

    def token_surge(self) -> Incident | None:
        s = self._pick(("tokens",))
        if s is None:
            return None
        start = self._start(7)
        end = start + self.rng.randint(3, 6)
        self._scale(s, start, end, self.rng.uniform(2.5, 4))
        return Incident("token_surge", spend_scope(s), start, end, series=[s])

    def launch_surge(self) -> Incident | None:
        s = self._pick(("tokens",))
        if s is None or s.app is None:
            return None
        start, factor = self._start(10), self.rng.uniform(1.8, 3)
        self._scale(s, start, None, factor)
        for m in self.base.metrics:
            if m.metric.startswith("inference_") and m.labels.get("endpoint") == s.app:
                for d in range(start, self.base.days):
                    m.values[d] *= factor * self.rng.gauss(1.0, 0.02)
        when = self.base.start + dt.timedelta(days=start)
        scope = {"service": s.meter.service, "team": s.team, "endpoint": s.app}
        note = {"ts": f"{when.isoformat()}T09:00:00Z", "kind": "launch", "scope": scope,
                "text": f"{s.app} launches to every customer (marketing campaign)"}  # fmt: skip
        return Incident("launch_surge", spend_scope(s), start, None, series=[s], annotation=note)

    def weekend_surge(self) -> Incident | None:
        s = self._pick(("kubernetes", "batch", "database", "endpoint"))
        if s is None:
            return None
        first = self._start(12)
        while (self.base.start + dt.timedelta(days=first)).weekday() != 5:
            first += 1
        weekends = self.rng.randint(1, 2)
        for w in range(weekends):
            for d in (first + 7 * w, first + 7 * w + 1):
                s.extra[d] += s.level * self.rng.uniform(1.5, 3.0)
        return Incident("weekend_surge", spend_scope(s), first, first + 7 * weekends - 5,
                        series=[s])  # fmt: skip

    def borderline_rise(self) -> Incident | None:
        s = self._pick(("kubernetes", "database", "storage", "endpoint"), 300.0)
        if s is None:
            return None
        start = self._start(8)
        end = start + self.rng.randint(5, 7)
        self._scale(s, start, end, 1.25)
        return Incident("borderline_rise", spend_scope(s), start, end, series=[s])

    # -- metric incidents --------------------------------------------------------------------

    def _metric_incident(self, kind: str, m: MetricSeries, start: int, end: int | None,
                         direction: str) -> Incident:  # fmt: skip
        return Incident(kind, {"metric": m.metric, **m.labels}, start, end, direction)

    def usage_drop(self) -> Incident | None:
        purchases = self.rng.random() < 0.4
        m = self._metric("purchases" if purchases else "inference_successes")
        if m is None:
            return None
        start = self._start(11)
        end = start + self.rng.randint(3, 10)
        factor = self.rng.uniform(0.4, 0.7) if purchases else self.rng.uniform(0.1, 0.4)
        for d in range(start, end):
            m.values[d] *= factor
        return self._metric_incident("usage_drop", m, start, end, "drop")

    def utilization_shift(self) -> Incident | None:
        m = self._metric("gpu_utilization_pct")
        if m is None:
            return None
        start, idle = self._start(10), self.rng.uniform(3, 15)
        for d in range(start, self.base.days):
            m.values[d] = max(0.0, idle + self.rng.gauss(0, 1.5))
        return self._metric_incident("utilization_shift", m, start, None, "drop")

    def latency_shift(self) -> Incident | None:
        m = self._metric("latency_p95_ms")
        if m is None:
            return None
        start = self._start(11)
        end, factor = start + self.rng.randint(3, 10), self.rng.uniform(1.6, 3)
        for d in range(start, end):
            m.values[d] *= factor
        return self._metric_incident("latency_shift", m, start, end, "rise")
