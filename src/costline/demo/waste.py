"""Waste planted in the demo organization with savings known to the cent: `plant_waste`.

Every seed plants one item of each kind `costline recommend` is scored on (`KINDS`), each on
resources of its own (a pool no other resource shares: a pool is one provider, region and
instance type). The seed's draws size them, so five seeds are five organizations:

- `gpu_rightsizing`: an inference endpoint on Google Cloud A100 hosts (a2-highgpu-2g or -4g), the
  same replicas around the clock, busy about 15% of the time (16-20% in its busiest hour, never
  under 11%: its traffic comes from every time zone) with 8-14 GiB of each GPU's memory in use:
  an L4 holds it;
- `spot_capacity`: a fine-tuning cluster of a2-highgpu-8g on on-demand, one run after another,
  whose Slurm jobs checkpoint every 20-60 minutes (tag `checkpoint_interval_min`);
- `autoscaling`: an internal endpoint on Azure A100 VMs, 3-6 replicas around the clock, whose
  requests come on weekdays in office hours and are near zero at night and at weekends (per
  minute in `metrics/inference.csv`);
- `storage_tiering`: the fine-tuning cluster's Cloud Storage bucket, holding in the Standard
  class every checkpoint of its runs that ended 8-29 days before the window's end (each run's
  under a folder named by its Slurm job id); a cleanup deleted older ones;
- `commitment`: an L4 inference pool (g2-standard-4 or -12) whose baseline of 8-16 replicas runs
  all the time on on-demand, with no commitment;
- `cheaper_window`: an evaluation job on g2-standard-48 that runs every weekday at the traffic
  peak on on-demand, beside a committed use discount for that type sized for an inference pool's
  daytime peak, idle at night.

`Waste.added` are the resources to bill (and to write telemetry and workloads for);
`Waste.reservations` the committed use discount; `demo.waste_truth` computes each item's true
monthly saving from what was drawn and charged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from random import Random

from costline.catalog.gpu_prices import price
from costline.demo.commitment import COST_QUANTUM, Reservation
from costline.demo.fleets import azure, gcp
from costline.demo.fleets.base import CENTRAL, FleetBuilder, owner, slots
from costline.demo.org import Owner, Resource
from costline.demo.usage import (
    HOURS_PER_DAY,
    Always,
    Bursts,
    Office,
    Pool,
    Runs,
    Traits,
    Volume,
    stretches,
)

KINDS = (
    "gpu_rightsizing",
    "spot_capacity",
    "autoscaling",
    "storage_tiering",
    "commitment",
    "cheaper_window",
)
GIB = 2**30
# At a small --scale, an item keeps the instances it needs to be waste at all (an endpoint of
# one replica cannot scale down; a commitment of none idles nowhere).
SHORTEST_HISTORY = 36  # days the storage plant's runs need before the window's end
ENDED_DAYS = (8, 29)  # the bucket keeps the runs that ended this many days before the end
KEEP_CHECKPOINTS = 2  # the checkpoints of a finished run worth keeping: its last (and best) two
# Where the planted Azure endpoint runs (a region and types no other resource uses).
AZURE_PLACE = azure.Place("rg-internal-tools", "eastus", azure.PROD)
RIGHTSIZE_TYPES = ("a2-highgpu-2g", "a2-highgpu-4g")
SPOT_TYPE = "a2-highgpu-8g"
BASELINE_TYPES = ("g2-standard-4", "g2-standard-12")
WINDOW_TYPE = "g2-standard-48"
OFFICE_TYPES = ("Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4")
# (team, project, model, name): who each planted item belongs to, one drawn per seed.
SMALL_MODELS = (
    ("assistant", "support", "support-router-deberta", "support-router"),
    ("search", "semantic-search", "intent-bert-large", "intent-classifier"),
    ("vision", "vision-api", "doc-tagger-vit-b", "doc-tagger"),
)
TUNERS = (
    ("vision", "image-gen", "sdxl-lora", "sdxl-lora-ft"),
    ("search", "semantic-search", "reranker-v3", "reranker-ft"),
    ("assistant", "assistant", "atlas-8b-support", "support-ft"),
)
OFFICE_TOOLS = (
    ("search", "enterprise-search", "docqa-13b", "docqa-api"),
    ("assistant", "contracts", "contracts-13b", "contracts-assistant"),
    ("web", "kb", "kb-answers-7b", "kb-answers"),
)
BASELINES = (
    ("search", "semantic-search", "bge-reranker-v2", "rerank-l4"),
    ("vision", "vision-api", "vista-vit-b", "vision-embed-l4"),
    ("assistant", "assistant", "guard-2b", "guard-l4"),
)
EVALS = (
    ("vision", "image-gen", "flux-schnell", "flux"),
    ("assistant", "assistant", "atlas-8b-instruct", "atlas-8b"),
)


@dataclass(frozen=True)
class Plant:
    """One planted item: its kind, the name a recommendation gives it (`resource`, and the
    `aliases` it may go by), the resources it consists of and what was drawn for it."""

    kind: str
    resource: str
    members: tuple[Resource, ...]
    facts: Mapping[str, float | int | str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    extra: tuple[Resource, ...] = ()  # resources it brings that are not the waste itself


@dataclass(frozen=True)
class Waste:
    """The planted items and what they add to the organization."""

    plants: tuple[Plant, ...]
    reservations: tuple[Reservation, ...]

    @property
    def added(self) -> list[Resource]:
        """The planted resources, each item's `extra` before its members: a commitment covers
        eligible instances in this order, so the inference pool it was bought for comes first."""
        return [r for p in self.plants for r in (*p.extra, *p.members)]

    def plant(self, kind: str) -> Plant:
        return next(p for p in self.plants if p.kind == kind)


def catalog_price(
    provider: str, instance_type: str, region: str, capacity: str = "on_demand"
) -> Decimal:
    """The price per hour costline's catalog ships (`catalog.gpu_prices`); the demo plants
    nothing the catalog does not price."""
    found = price(provider, instance_type, region, capacity)
    if found is None:
        raise ValueError(f"the catalog has no {capacity} price for {provider} {instance_type}")
    return found.price_usd_per_hour


def pool_of(provider: str, region: str, instance_type: str) -> str:
    """A pool's name as recommendations give it (`optimize.inputs.pool_name`)."""
    return f"{provider}/{region}/{instance_type}"


def _who(pick: tuple[str, str, str, str], workload: str, domain: str) -> tuple[Owner, str]:
    team, project, model, name = pick
    return owner(team, project, model, workload, domain, "gpu_compute"), name


def _rightsizing(rng: Random, f: FleetBuilder) -> Plant:
    """A2 inference hosts around the clock at ~15% busy, with an L4's worth of memory in use."""
    machine = rng.choice(RIGHTSIZE_TYPES)
    who, name = _who(rng.choice(SMALL_MODELS), "inference", "online_inference")
    endpoint = f"{name}-a100"
    traits = Traits(peak=round(rng.uniform(0.16, 0.20), 3), swing=0.4,
                    fb_used_mib=int(rng.uniform(8, 14) * 1024))  # fmt: skip
    for i in range(f.count(rng.randint(2, 4))):
        gcp.vm(f, f"{endpoint}-{i}", machine, Always(), who, gcp.SEARCH, traits=traits)
    return Plant("gpu_rightsizing", pool_of("gcp", gcp.REGION, machine), tuple(f.resources),
                 {"peak_busy": traits.peak or 0.0, "fb_used_mib": traits.fb_used_mib or 0},
                 aliases=(endpoint,))  # fmt: skip


def _spot(rng: Random, f: FleetBuilder) -> Plant:
    """A fine-tuning cluster on on-demand, one run after another, checkpointing as it goes; its
    runs' checkpoints go to a bucket of their own (the `storage_tiering` plant)."""
    who, name = _who(rng.choice(TUNERS), "fine-tuning", "training")
    runs = Runs(f"gcp/{name}", duty=1.0, min_days=3, max_days=7)
    interval = rng.choice((20, 30, 45, 60))
    count = f.count(rng.randint(1, 3))
    budget = int(catalog_price("gcp", SPOT_TYPE, gcp.REGION) * 24 * 200 * count)
    bucket = f"{who.team}-{name}-checkpoints"
    uri = f"gs://{bucket}/{who.model}/"
    traits = Traits(checkpoint_min=interval, budget_usd=budget, storage=(uri,))
    for i in range(count):
        gcp.vm(f, f"{name}-{i}", SPOT_TYPE, runs, who, gcp.TRAINING, traits=traits)
    # What interruptions on Spot truly cost this work (the truth's, not the recommender's).
    facts: dict[str, float | int | str] = {"checkpoint_interval_min": interval,
             "mtbi_hours": round(rng.uniform(12, 48), 1),
             "checkpoint_write_min": round(rng.uniform(2, 6), 1),
             "restart_min": round(rng.uniform(5, 15), 1),
             "bucket": bucket, "checkpoint_uri": uri}  # fmt: skip
    return Plant("spot_capacity", pool_of("gcp", gcp.REGION, SPOT_TYPE), tuple(f.resources),
                 facts, aliases=(name,))  # fmt: skip


def _autoscaling(rng: Random, f: FleetBuilder) -> Plant:
    """Fixed replicas around the clock for office-hours traffic."""
    who, endpoint = _who(rng.choice(OFFICE_TOOLS), "inference", "online_inference")
    office = Office(start=rng.randint(12, 14), hours=rng.randint(9, 11),
                    night=round(rng.uniform(0.01, 0.02), 4),
                    weekend=round(rng.uniform(0.06, 0.10), 4))  # fmt: skip
    traits = Traits(peak=round(rng.uniform(0.55, 0.70), 3), office=office,
                    peak_rpm=round(rng.uniform(120, 480)))  # fmt: skip
    sku = rng.choice(OFFICE_TYPES)
    for i in range(max(3, f.count(rng.randint(3, 6)))):  # fewer could not scale down
        azure.vm(f, f"{endpoint}-{i}", AZURE_PLACE, sku, Always(), who, traits=traits)
    facts = {"peak_busy": traits.peak or 0.0, "peak_rpm": traits.peak_rpm or 0.0,
             "office_start_utc": office.start, "office_hours": office.hours,
             "night_share": office.night, "weekend_share": office.weekend}  # fmt: skip
    return Plant("autoscaling", endpoint, tuple(f.resources), facts,
                 aliases=(pool_of("azure", AZURE_PLACE.region, sku),))  # fmt: skip


def _storage(rng: Random, f: FleetBuilder, spot: Plant) -> Plant:
    """The fine-tuning cluster's bucket, in the Standard class, keeping every checkpoint of the
    runs that ended `ENDED_DAYS` before the window's end (older ones a cleanup deleted)."""
    who = spot.members[0].owner
    bucket, uri = str(spot.facts["bucket"]), str(spot.facts["checkpoint_uri"])
    gb = Decimal(int(rng.uniform(60_000, 160_000) * f.scale))
    store = dataclasses.replace(who, workload_type="checkpoints", cost_layer="storage")
    rid = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    meter = (f.volume("gcp.gcs", str(gb), scaled=False),)
    gcp.metered(f, bucket, rid, "storage.googleapis.com/Bucket", gcp.GCS, meter,
                Volume("steady"), store, gcp.TRAINING)  # fmt: skip
    facts: dict[str, float | int | str] = {
        "gb": str(gb), "prefix": f"{who.model}/", "keep_last": KEEP_CHECKPOINTS,
        "runs_of": spot.members[0].key, "runs_ended_days": "-".join(map(str, ENDED_DAYS)),
    }  # fmt: skip
    return Plant("storage_tiering", bucket, tuple(f.resources), facts, aliases=(uri,))


def finished_runs(active: Sequence[bool], days: int) -> list[tuple[int, int]]:
    """(first hour, end hour) of the runs of `active` (a cluster's running hours over a window
    of `days`) that ended `ENDED_DAYS` before its end; a window shorter than `SHORTEST_HISTORY`
    days holds them proportionally closer."""
    fit = min(1.0, days / SHORTEST_HISTORY)
    end = len(active)
    early, late = (end - int(d * fit * HOURS_PER_DAY) for d in reversed(ENDED_DAYS))
    return [(a, b) for a, b in stretches(active) if early <= b <= late]


def run_checkpoints(plant: Plant, runs: Sequence[tuple[int, int]]) -> list[tuple[int, float]]:
    """(checkpoints, GiB) of each of the storage plant's `runs`, in order: one checkpoint every
    12 hours it ran (4 at least), the bucket's bytes split by the runs' hours."""
    hours = [max(b - a, 1) for a, b in runs]
    gib = float(plant.facts["gb"])
    return [(max(4, h // 12), gib * h / sum(hours)) for h in hours]


def _commitment(rng: Random, f: FleetBuilder) -> Plant:
    """An L4 pool whose always-on baseline has no commitment."""
    who, name = _who(rng.choice(BASELINES), "inference", "online_inference")
    machine = rng.choice(BASELINE_TYPES)
    low = rng.randint(8, 16)
    pool = f.pool(name, low, low + rng.randint(2, 5))
    for slot_name, slot in slots(pool):
        gcp.vm(f, slot_name, machine, slot, who, gcp.VISION)
    return Plant("commitment", pool_of("gcp", gcp.REGION, machine), tuple(f.resources),
                 {"baseline_replicas": pool.min_count, "max_replicas": pool.max_count},
                 aliases=(name,))  # fmt: skip


def _cheaper_window(rng: Random, f: FleetBuilder) -> tuple[Plant, Reservation]:
    """An inference pool's peak-sized committed use discount, idle at night, and an evaluation
    job at the daytime peak on on-demand beside it."""
    team, project, model, name = rng.choice(EVALS)
    serve = owner(team, project, model, "inference", "online_inference", "gpu_compute")
    evals = owner(team, project, model, "evaluation", "batch_ai", "gpu_compute")
    pool = Pool(f"{name}-serve-l4", 1, max(3, f.count(rng.randint(4, 6))))
    cud = f"projects/{gcp.VISION.id}/regions/{gcp.REGION}/commitments/{name}-l4-cud-1y"
    committed = catalog_price("gcp", WINDOW_TYPE, gcp.REGION, "commit_1y")
    reservation = Reservation(cud, f"{name}-l4-cud-1y", WINDOW_TYPE, pool.max_count - 1,
                              committed.quantize(COST_QUANTUM))  # fmt: skip
    for slot_name, slot in slots(pool):
        gcp.vm(f, slot_name, WINDOW_TYPE, slot, serve, gcp.VISION, commitment=cud)
    served = len(f.resources)
    job = f"{name}-eval"
    burst = Bursts(f"gcp/{job}", 1.0, rng.randint(4, 6), rng.randint(6, 7),
                   start_hour=rng.randint(14, 16), weekdays_only=True)  # fmt: skip
    for i in range(max(2, f.count(rng.randint(3, 5)))):
        gcp.vm(f, f"{job}-{i}", WINDOW_TYPE, burst, evals, gcp.VISION, commitment=cud)
    f.add(f"{name}-l4-cud", sub=gcp.VISION, rid=cud, name=reservation.name, rtype="Commitment",
          region=gcp.REGION, service=gcp.COMPUTE, meters=(), usage=Always(), who=CENTRAL,
          kind="commitment")  # fmt: skip
    plant = Plant("cheaper_window", job, tuple(f.resources[served:-1]),
                  {"commitment": reservation.name, "committed_instances": reservation.count,
                   "start_hour_utc": burst.start_hour or 0},
                  aliases=(pool_of("gcp", gcp.REGION, WINDOW_TYPE), reservation.name),
                  extra=(*f.resources[:served], f.resources[-1]))  # fmt: skip
    return plant, reservation


def plant_waste(seed: int, scale: float = 1.0) -> Waste:
    """The seed's planted waste (see the module); the same arguments plant the same."""
    rng = Random(f"{seed}/waste")
    builders = {k: FleetBuilder(azure.ACCOUNT if k == "autoscaling" else gcp.ACCOUNT, scale)
                for k in KINDS}  # fmt: skip
    window, reservation = _cheaper_window(rng, builders["cheaper_window"])
    plants = (
        _rightsizing(rng, builders["gpu_rightsizing"]),
        spot := _spot(rng, builders["spot_capacity"]),
        _autoscaling(rng, builders["autoscaling"]),
        _storage(rng, builders["storage_tiering"], spot),
        _commitment(rng, builders["commitment"]),
        window,
    )
    return Waste(plants, (reservation,))


def with_waste(resources: Sequence[Resource], waste: Waste) -> list[Resource]:
    """`resources` and the planted ones; refuses a planted key the organization already has."""
    keys = {r.key for r in resources}
    clash = sorted(r.key for r in waste.added if r.key in keys)
    if clash:
        raise ValueError(f"planted resources clash with the organization's: {clash}")
    return [*resources, *waste.added]


__all__ = [
    "KINDS",
    "Plant",
    "Waste",
    "catalog_price",
    "finished_runs",
    "plant_waste",
    "pool_of",
    "run_checkpoints",
    "with_waste",
]
