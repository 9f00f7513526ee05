"""Incidents injected into the demo's bills, so detection can be scored: `plan_incidents`.

Each seed places, after six weeks of history and one week apart, what really happens to AI
spend (the kinds of `KINDS`, each on a real resource of the organization):

- `token_spike`: a tripled system prompt: one LLM API resource's tokens x3 for 3-5 days, its
  successful requests unchanged (waste);
- `runaway_sweep`: a team's hyperparameter sweep left running: eight more copies of one of its GPU
  training instances, on demand, for 3-5 days;
- `checkpoint_jump`: a checkpoint bucket's stored bytes x1.7 from one day on (kept);
- `replication_left_on`: cross-region replication of a dataset bucket left on: its transfer x5
  from one day on (kept);
- `traffic_surge`: a product launch: one LLM API resource's tokens x2.2 for 3 days, and its
  successful requests with them (value, not waste).

`ground_truth.json` lists them (`incidents`: id, kind, scope, start, end, impact_usd, verdict);
`impact_usd` is the extra cost the bills carry because of it, to the cent of the files' rates.
`metrics/daily_successes.csv` gives the successful requests per day of every LLM API resource
(labels team, service, model) over the whole window, so spend can be weighed against value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from random import Random

from costline.demo.org import InstanceMeter, RateMeter, Resource, sku_id
from costline.demo.schedule import Timeline
from costline.demo.usage import Always, Runs, Volume

KINDS = ("token_spike", "runaway_sweep", "checkpoint_jump", "replication_left_on", "traffic_surge")
SLOT_DAYS = 7
SWEEP_COPIES = 8
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Incident:
    id: str
    kind: str
    resource: Resource  # the resource it changes (the template, for a sweep)
    start_day: int
    end_day: int  # exclusive
    factor: float  # level multiplier in [start_day, end_day); sweeps: 1
    verdict: str  # waste or value
    added: tuple[Resource, ...] = ()  # resources it brings (a sweep's instances)

    def scope(self) -> dict[str, str | list[str]]:
        """The dimensions it shows under in a ledger: team (when tagged), service, usage types
        (the SKUs of its meters: any of them), region."""
        r = self.resource
        skus = sorted(
            sku_id(r.account.provider, m.price.instance_type, m.price.region)
            if isinstance(m, InstanceMeter) else sku_id(r.account.provider, m.rate.sku)
            for m in r.meters
        )  # fmt: skip
        out: dict[str, str | list[str]] = {"service": r.service.name, "usage_type": skus}
        if r.tagged:
            out["team"] = r.owner.team
        if r.region:
            out["region"] = r.region
        return out


@dataclass(frozen=True)
class Incidents:
    """The planned incidents; `levels` applies them to a volume resource's daily levels."""

    timeline: Timeline
    items: tuple[Incident, ...]

    @property
    def added(self) -> list[Resource]:
        return [r for i in self.items for r in i.added]

    def levels(self, resource: Resource, levels: list[float]) -> list[float]:
        out = list(levels)
        for i in self.items:
            if i.resource.key == resource.key and i.factor != 1:
                for d in range(i.start_day, min(i.end_day, len(out))):
                    out[d] *= i.factor
        return out

    def truth(
        self, original: dict[str, list[float]], cost: dict[str, Decimal]
    ) -> list[dict[str, object]]:
        """The ground truth's `incidents`: `original` are the volume levels before incidents,
        `cost` the billed effective cost per resource key (for the sweeps' instances)."""
        out: list[dict[str, object]] = []
        for i in self.items:
            if i.added:
                impact = sum((cost.get(r.key, Decimal(0)) for r in i.added), Decimal(0))
            else:
                impact = _extra_cost(i.resource, original[i.resource.key], self.levels(
                    i.resource, original[i.resource.key]), self.timeline)  # fmt: skip
            out.append(
                {
                    "id": i.id,
                    "kind": i.kind,
                    "scope": i.scope(),
                    "resource": i.resource.key,
                    "start": self.timeline.day_marks[i.start_day],
                    "end": self.timeline.day_marks[min(i.end_day, self.timeline.days)],
                    "impact_usd": format(impact.quantize(CENT), "f"),
                    "verdict": i.verdict,
                }
            )
        return out


def _extra_cost(
    r: Resource, before: list[float], after: list[float], timeline: Timeline
) -> Decimal:
    """What `after` levels bill more than `before`, with the bill's own quantities (see charges)."""
    extra = Decimal(0)
    for meter in r.meters:
        assert isinstance(meter, RateMeter)
        rate = meter.rate
        for day, (b, a) in enumerate(zip(before, after, strict=True)):
            if a == b:
                continue
            q = []
            for level in (b, a):
                quantity = meter.per_day * Decimal(f"{level:.6f}")
                if rate.monthly:
                    quantity /= timeline.months[timeline.month_of_day[day]].days
                q.append(quantity.quantize(rate.quantum))
            extra += (q[1] - q[0]) * rate.unit_price
    return extra


def _tokens(resources: Sequence[Resource]) -> list[Resource]:
    return [r for r in resources if r.kind == "usage" and isinstance(r.usage, Volume)
            and r.usage.pattern == "traffic" and r.owner.cost_layer == "tokens" and r.tagged]  # fmt: skip


def _nominal(r: Resource) -> Decimal:
    return sum((m.per_day * m.rate.unit_price for m in r.meters if isinstance(m, RateMeter)),
               Decimal(0))  # fmt: skip


def plan_incidents(resources: Sequence[Resource], timeline: Timeline, seed: int) -> Incidents:
    """Where and when each kind strikes, from the seed; a kind without a fitting resource is left out."""
    rng = Random(f"{seed}/incidents")
    slots = list(range(len(KINDS)))
    rng.shuffle(slots)
    last = timeline.days - 2  # incidents start before the telemetry days at the window's end
    first_slot = max(42, last - SLOT_DAYS * len(KINDS))  # six weeks of history before any
    tokens = sorted(_tokens(resources), key=lambda r: -_nominal(r))
    gpus = [r for r in resources if r.kind == "usage" and r.instance and r.instance.gpu_count
            and isinstance(r.usage, Runs) and r.owner.cost_domain == "training"]  # fmt: skip
    volumes = [r for r in resources if r.kind == "usage" and isinstance(r.usage, Volume)]
    ckpt = [r for r in volumes if r.service.category == "Storage"
            and any(w in (r.name or r.key) for w in ("checkpoint", "ckpt"))]  # fmt: skip
    replica = [r for r in volumes if r.service.category == "Networking"
               and "replica" in (r.name or r.key)]  # fmt: skip
    items: list[Incident] = []
    for n, (kind, slot) in enumerate(zip(KINDS, slots, strict=True)):
        start = first_slot + slot * SLOT_DAYS + rng.randint(0, 2)
        if start >= last:
            continue
        length = rng.randint(3, 5)
        end = min(start + length, last)
        ident = f"inc-{n + 1}-{kind.replace('_', '-')}"
        if kind == "token_spike" and tokens:
            r = tokens[rng.randint(0, min(1, len(tokens) - 1))]  # one of the two largest apps
            items.append(Incident(ident, kind, r, start, end, 3.0, "waste"))
        elif kind == "traffic_surge" and len(tokens) > 1:
            taken = {i.resource.key for i in items}
            r = next(t for t in tokens if t.key not in taken)
            items.append(Incident(ident, kind, r, start, min(start + 3, last), 2.2, "value"))
        elif kind == "runaway_sweep" and gpus:
            r = gpus[rng.randint(0, len(gpus) - 1)]
            added = tuple(
                dataclasses.replace(
                    r, key=f"{r.key}-sweep-{k}", name=f"{r.name or 'gpu'}-sweep-{k}",
                    resource_id=f"{r.resource_id or r.key}-sweep-{k}",
                    usage=Always(start, end), commitment=None,
                )
                for k in range(SWEEP_COPIES)
            )  # fmt: skip
            items.append(Incident(ident, kind, r, start, end, 1.0, "waste", added))
        elif kind == "checkpoint_jump" and ckpt:
            r = ckpt[rng.randint(0, len(ckpt) - 1)]
            items.append(Incident(ident, kind, r, start, timeline.days, 1.7, "waste"))
        elif kind == "replication_left_on" and replica:
            r = replica[0]
            items.append(Incident(ident, kind, r, start, timeline.days, 5.0, "waste"))
    return Incidents(timeline, tuple(items))


def write_daily_successes(
    path: Path, resources: Sequence[Resource], levels: dict[str, list[float]],
    incidents: Incidents, timeline: Timeline, seed: int,
) -> int:  # fmt: skip
    """`inference_successes` per day of every LLM API resource, labelled team, service and model:
    they follow the resource's traffic before incidents, and a traffic surge's extra traffic."""
    rng = Random(f"{seed}/successes")
    rows = ["ts,metric,value,team,service,model"]
    for r in _tokens(resources):
        per_day = rng.uniform(2_000, 40_000)
        surged = incidents.levels(r, levels[r.key]) if any(
            i.resource.key == r.key and i.kind == "traffic_surge" for i in incidents.items
        ) else levels[r.key]  # fmt: skip
        for day, level in enumerate(surged):
            ts = timeline.day_marks[day]
            value = round(per_day * level * rng.uniform(0.97, 1.03))
            rows.append(f"{ts},inference_successes,{value},{r.owner.team},{r.service.name},"
                        f"{r.owner.model or ''}")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows) - 1
