"""The true monthly saving of each planted item (`demo.waste`): `ground_truth.json`'s
`recommendations`, and the facts of every GPU pool the scorer checks other recommendations on.

Every saving is computed from what the generator drew and charged, never from a recommender:
the hours each instance ran (`schedule.UsageSeries`), the rate the bill charged it
(`charges.charged_rate`), the commitments' hour-by-hour coverage (`commitment.CommitmentPlan`),
the utilization and traffic drawn for it (`usage.Traits`), and the prices costline's catalog
ships (`catalog.gpu_prices`). "A month" is 30 days: a saving over the window is scaled by
30 / the window's days. The formula of each kind is in its function's docstring and in
docs/methodology/recommendations.md ("How the demo scores recommendations").
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from costline.catalog.gpu_prices import GpuPrice, fp16_tflops, gpu_prices
from costline.demo.charges import charged_rate
from costline.demo.commitment import CommitmentPlan
from costline.demo.org import RateMeter, Resource
from costline.demo.rates import RATES
from costline.demo.schedule import Timeline
from costline.demo.telemetry import inference_sm_ceiling
from costline.demo.usage import HOURS_PER_DAY, office_minutes, traffic_key
from costline.demo.waste import (
    KEEP_CHECKPOINTS,
    Plant,
    Waste,
    catalog_price,
    finished_runs,
    run_checkpoints,
)

CENT = Decimal("0.01")
MIB_PER_GB = 1024
COLD_TIER = "gcp.gcs.coldline"  # where finished runs' checkpoints belong (see `_storage`)


@dataclass(frozen=True)
class Drawn:
    """What the generator drew and charged, for the truths."""

    timeline: Timeline
    seed: int
    active: Mapping[str, list[bool]]  # resource key -> running in each hour of the window
    plans: Sequence[CommitmentPlan]

    @property
    def per_month(self) -> Decimal:
        return Decimal(30) / Decimal(self.timeline.days)

    def hours(self, members: Sequence[Resource]) -> int:
        return sum(sum(self.active[r.key]) for r in members)

    @functools.cached_property
    def _covered(self) -> dict[str, list[bool]]:
        out: dict[str, list[bool]] = {}
        for plan in self.plans:
            for key, hours in plan.covered.items():
                mine = out.setdefault(key, [False] * len(hours))
                out[key] = [a or b for a, b in zip(mine, hours, strict=True)]
        return out

    def covered(self, key: str, hour: int) -> bool:
        """Whether a commitment covered resource `key`'s hour."""
        hours = self._covered.get(key)
        return hours is not None and hours[hour]


def _money(amount: Decimal) -> str:
    return format(amount.quantize(CENT), "f")


def _entry(plant: Plant, saving: Decimal, current: Decimal, formula: str,
           inputs: Mapping[str, object]) -> dict[str, object]:  # fmt: skip
    return {
        "kind": plant.kind,
        "resource": plant.resource,
        "aliases": list(plant.aliases),
        "savings_usd_month": _money(saving),
        "current_usd_month": _money(current),
        "formula": formula,
        "inputs": {**plant.facts, **inputs},
    }


def _cheapest_fit(now: Resource, need_mib: int, need_tflops: float) -> GpuPrice:
    """The cheapest on-demand type of the catalog in `now`'s provider and region, of another
    GPU model and at least as many GPUs, whose memory holds `need_mib` and whose FP16 TFLOPS
    cover `need_tflops` on each GPU."""
    price = now.instance
    assert price is not None and price.gpu_model is not None
    tflops = fp16_tflops()
    fits = [p for p in gpu_prices()
            if p.capacity == "on_demand" and p.gpu.provider == now.account.provider
            and p.region == now.region and p.gpu.gpu_count >= price.gpu_count
            and p.gpu.gpu_model != price.gpu_model and p.gpu.gpu_model in tflops
            and p.gpu.gpu_memory_gb * MIB_PER_GB >= need_mib
            and float(tflops[p.gpu.gpu_model]) >= need_tflops]  # fmt: skip
    return min(fits, key=lambda p: (p.price_usd_per_hour, p.gpu.instance_type))


def _rightsizing(plant: Plant, d: Drawn) -> dict[str, object]:
    """Each GPU needs at most the framebuffer drawn for it, and at most the largest SM activity
    the telemetry can show (`telemetry.inference_sm_ceiling`) x its GPU's FP16 TFLOPS. The target
    is the cheapest catalog type that meets both (`_cheapest_fit`). Saving = hours a month x
    (the rate charged - the target's catalog price x the charged / catalog ratio of today's type)."""
    r = plant.members[0]
    assert r.instance is not None and r.instance.gpu_model is not None
    need = inference_sm_ceiling(float(plant.facts["peak_busy"]))
    need_tflops = need * float(fp16_tflops()[r.instance.gpu_model])
    target = _cheapest_fit(r, int(plant.facts["fb_used_mib"]), need_tflops)
    paid = charged_rate(r)
    ratio = paid / catalog_price(r.account.provider, r.instance.instance_type, r.region or "")
    hours = Decimal(d.hours(plant.members)) * d.per_month
    saving = hours * (paid - target.price_usd_per_hour * ratio)
    return _entry(plant, saving, hours * paid,
                  "hours a month x (charged rate - cheapest fitting type's catalog rate x "
                  "charged/catalog ratio)",
                  {"target_instance_type": target.gpu.instance_type,
                   "target_usd_per_hour": str(target.price_usd_per_hour),
                   "paid_usd_per_hour": str(paid), "hours_a_month": str(hours),
                   "need_tflops_per_gpu": round(need_tflops, 1)})  # fmt: skip


def _spot(plant: Plant, d: Drawn) -> dict[str, object]:
    """On Spot, each useful hour costs 1 + C/tau + (tau/2 + R)/M hours (a checkpoint of C every
    tau, and per interruption, one every M hours on average, half an interval of work lost and a
    restart R), with the C, R and M drawn for this seed and the jobs' own tau. Saving = hours a
    month x (the rate charged - the catalog's Spot rate x (1 + that overhead))."""
    r = plant.members[0]
    assert r.instance is not None
    f = plant.facts
    tau, mtbi = float(f["checkpoint_interval_min"]) / 60, float(f["mtbi_hours"])
    write, restart = float(f["checkpoint_write_min"]) / 60, float(f["restart_min"]) / 60
    overhead = Decimal(repr(round(write / tau + (tau / 2 + restart) / mtbi, 6)))
    spot = catalog_price(r.account.provider, r.instance.instance_type, r.region or "", "spot")
    paid = charged_rate(r)
    hours = Decimal(d.hours(plant.members)) * d.per_month
    return _entry(plant, hours * (paid - spot * (1 + overhead)), hours * paid,
                  "hours a month x (charged rate - catalog Spot rate x (1 + C/tau + "
                  "(tau/2 + R)/M))",
                  {"spot_usd_per_hour": str(spot), "paid_usd_per_hour": str(paid),
                   "overhead": str(overhead), "hours_a_month": str(hours)})  # fmt: skip


def _autoscaling(plant: Plant, d: Drawn) -> dict[str, object]:
    """A replica serves `capacity` = peak requests a minute / (replicas x busy share at the
    peak) when fully busy. An autoscaler needs, each hour, max(1, ceil(the hour's busiest
    minute / capacity)) replicas (there are requests every hour). Saving = (replica-hours run -
    replica-hours needed) a month x the rate charged a replica-hour."""
    traits = plant.members[0].traits
    assert traits is not None and traits.office is not None and traits.peak_rpm
    replicas = len(plant.members)
    capacity = traits.peak_rpm / (replicas * float(plant.facts["peak_busy"]))
    key = traffic_key(d.seed, plant.resource)
    needed = 0
    origin = d.timeline.start
    for h in range(d.timeline.hours):
        if not any(d.active[r.key][h] for r in plant.members):
            continue
        at = _hour(origin, h)
        busiest = max(office_minutes(traits.office, traits.peak_rpm, at, key))
        needed += min(replicas, max(1, math.ceil(busiest / capacity)))
    paid = charged_rate(plant.members[0])
    run = Decimal(d.hours(plant.members))
    saving = (run - needed) * paid * d.per_month
    return _entry(plant, saving, run * paid * d.per_month,
                  "(replica-hours run - replica-hours needed at each hour's busiest minute) a "
                  "month x charged rate",
                  {"replicas": replicas, "capacity_rpm": round(capacity, 2),
                   "replica_hours_run": int(run), "replica_hours_needed": needed,
                   "paid_usd_per_hour": str(paid)})  # fmt: skip


def _hour(origin: dt.date, h: int) -> dt.datetime:
    start = dt.datetime(origin.year, origin.month, origin.day, tzinfo=dt.UTC)
    return start + dt.timedelta(hours=h)


def _storage(plant: Plant, d: Drawn) -> dict[str, object]:
    """The bucket holds every checkpoint of the fine-tuning cluster's runs that ended 8-29 days
    ago, never read again (`waste.finished_runs`). Of each run, the last `KEEP_CHECKPOINTS`
    (its best among them) are worth keeping, in the cold tier (`COLD_TIER`, Coldline: read in
    milliseconds, 90 days minimum, retrieval billed per GB read); the others are deleted.
    Saving = GB deleted x the rate charged a GB-month + GB kept x (that rate - the cold tier's)."""
    bucket = plant.members[0]
    meter = bucket.meters[0]
    assert isinstance(meter, RateMeter)
    hot, cold = meter.rate.unit_price, RATES[COLD_TIER].unit_price
    runs = finished_runs(d.active[str(plant.facts["runs_of"])], d.timeline.days)
    kept = sum((Decimal(repr(gib)) * min(KEEP_CHECKPOINTS, n) / n
                for n, gib in run_checkpoints(plant, runs)), Decimal(0))  # fmt: skip
    gb = meter.per_day
    return _entry(plant, (gb - kept) * hot + kept * (hot - cold), gb * hot,
                  "GB deleted x charged GB-month rate + GB kept x (charged - Coldline rate)",
                  {"hot_usd_per_gb_month": str(hot), "cold_usd_per_gb_month": str(cold),
                   "cold_tier": "COLDLINE", "kept_gb": str(kept.quantize(CENT)),
                   "runs_ended_days_ago": [(d.timeline.hours - b) // HOURS_PER_DAY
                                           for _, b in runs]})  # fmt: skip


def commitment_saving(counts: Sequence[int], paid: Decimal, committed: Decimal, commit: int
                      ) -> Decimal:  # fmt: skip
    """What committing `commit` instances saves over `counts` (instances running each hour):
    the on-demand hours it covers at `paid`, less `commit` x `committed` every hour."""
    covered = sum(min(c, commit) for c in counts)
    return paid * covered - committed * commit * len(counts)


def _commitment(plant: Plant, d: Drawn) -> dict[str, object]:
    """The pool runs u(h) instances in hour h, all on-demand. Committing L of them saves
    charged x sum_h min(u(h), L) - L x the catalog's 1-year committed rate x the window's hours;
    the truth is that saving at the best L, a month."""
    r = plant.members[0]
    assert r.instance is not None
    counts = [sum(d.active[m.key][h] for m in plant.members) for h in range(d.timeline.hours)]
    paid = charged_rate(r)
    committed = catalog_price(r.account.provider, r.instance.instance_type, r.region or "",
                              "commit_1y")  # fmt: skip
    best = max(range(max(counts) + 1),
               key=lambda n: (commitment_saving(counts, paid, committed, n), -n))  # fmt: skip
    saving = commitment_saving(counts, paid, committed, best) * d.per_month
    return _entry(plant, saving, paid * sum(counts) * d.per_month,
                  "max over L of (charged x sum_h min(u(h), L) - L x catalog commit_1y rate x "
                  "hours) a month",
                  {"instances": best, "paid_usd_per_hour": str(paid),
                   "committed_usd_per_hour": str(committed)})  # fmt: skip


def _cheaper_window(plant: Plant, d: Drawn) -> dict[str, object]:
    """The evaluation must finish within its UTC day. Each day, the instance-hours it ran on
    on-demand could have run instead in that day's idle committed instance-hours (the
    committed use discount's unused hours, paid for anyway): it saves the rate charged for
    min(on-demand eval hours, idle committed hours) of each day, a month."""
    plan = next(p for p in d.plans if p.name == plant.facts["commitment"])
    rate = next(iter(plan.rates.values()))
    paid = charged_rate(plant.members[0])
    eval_hours: Counter[int] = Counter()
    idle: Counter[int] = Counter()
    for h in range(d.timeline.hours):
        day = h // HOURS_PER_DAY
        eval_hours[day] += sum(d.active[r.key][h] and not d.covered(r.key, h)
                               for r in plant.members)  # fmt: skip
        idle[day] += int(plan.unused[h] / rate)
    moved = sum(min(eval_hours[day], idle[day]) for day in eval_hours)
    on_demand = sum(eval_hours.values())
    return _entry(plant, paid * moved * d.per_month, paid * on_demand * d.per_month,
                  "sum over days of min(eval's on-demand instance-hours, idle committed "
                  "instance-hours) a month x charged rate",
                  {"eval_on_demand_hours": on_demand, "movable_hours": moved,
                   "paid_usd_per_hour": str(paid), "committed_usd_per_hour": str(rate)})  # fmt: skip


TRUTHS: dict[str, Callable[[Plant, Drawn], dict[str, object]]] = {
    "gpu_rightsizing": _rightsizing,
    "spot_capacity": _spot,
    "autoscaling": _autoscaling,
    "storage_tiering": _storage,
    "commitment": _commitment,
    "cheaper_window": _cheaper_window,
}


def recommendations_truth(waste: Waste, drawn: Drawn) -> list[dict[str, object]]:
    """`ground_truth.json`'s `recommendations`: one per planted item, with its true saving."""
    return [TRUTHS[p.kind](p, drawn) for p in waste.plants]


def gpu_pools(resources: Sequence[Resource], drawn: Drawn) -> list[dict[str, object]]:
    """Per GPU pool (provider/region/instance type) of the bills: the hours in the window, the
    rate charged an on-demand hour, the work its instances do, and the hours it ran each count
    of instances on on-demand (committed hours left out): what lets a scorer check a
    recommendation on a pool that was not planted (a commitment below break-even, Spot for
    inference)."""
    members: dict[str, list[Resource]] = defaultdict(list)
    for r in resources:
        if r.kind == "usage" and r.instance is not None and r.instance.gpu_count:
            members[
                "/".join((r.account.provider, r.region or "", r.instance.instance_type))
            ].append(r)
    out = []
    for pool, rs in sorted(members.items()):
        counts: Counter[int] = Counter()
        for h in range(drawn.timeline.hours):
            counts[sum(drawn.active[r.key][h] and not drawn.covered(r.key, h) for r in rs)] += 1
        out.append({"pool": pool, "hours": drawn.timeline.hours,
                    "paid_usd_per_hour": str(charged_rate(rs[0])),
                    "workload_types": sorted({r.owner.workload_type for r in rs}),
                    "on_demand_hours_at": {str(k): v for k, v in sorted(counts.items())}})  # fmt: skip
    return out
