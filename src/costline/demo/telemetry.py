"""The demo organization's GPUs as DCGM saw them, one minute apart, every GPU of every cluster.

Which hosts: every GPU instance of the bills that runs in the telemetry window. One host of each
training run group, autoscaled pool or batch group (the first member running in the window; at most
`MAX_WIDE_HOSTS` 8-GPU hosts, training first) is written as dcgm-exporter scrapes, `dcgm/<host>.txt`;
every other host goes into `dcgm/fleet.parquet` in the wide layout a TSDB export writes (a column
per metric, see `costline.sources.dcgm_parquet`), so the text stays small. A host writes samples
only in the hours its bill shows it running. Each host exposes every GPU of its instance type
(`gpu_count` from the catalogue) with stable UUIDs.

Shapes follow the workload: training steady and high (GR_ENGINE 0.85-0.98, tensor cores busy),
inference diurnal (`usage.DIURNAL`), batch high while its burst runs, notebooks held but idle
(GR_ENGINE about 0 with memory in use), and a scratch VM nobody uses. One A100 inference host is
split into MIG slices, and GPU 0 of the notebook host is time-sliced between two pods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from costline.demo.fleets.base import stable_guid, stable_hex
from costline.demo.org import Resource
from costline.demo.schedule import UsageSeries
from costline.demo.usage import (
    DIURNAL,
    Bursts,
    Runs,
    Slot,
    Traits,
    office_minutes,
    traffic_key,
)

Shape = Literal["training", "inference", "batch", "notebook", "idle"]
Scheduler = Literal["slurm", "kubernetes", "none"]

MAX_WIDE_HOSTS = 3  # hosts with 8 GPUs written at most (they dominate the volume)
MAX_WIDE_TRAINING = 2  # of which training hosts, leaving room for an 8-GPU endpoint
SAMPLE_SECONDS = 60
MIG_POOL = "query-encoder-a100"  # its first host is split into MIG slices
MIG_PROFILE = "3g.20gb"
MIG_SLICES = 2
SHARED_NOTEBOOK_GPU = 0  # on the first notebook host, two pods time-slice this GPU

# catalogue gpu_model -> (modelName as NVML reports it, framebuffer MiB, board power W)
GPU_BOARDS: dict[str, tuple[str, int, float]] = {
    "H100-80GB": ("NVIDIA H100 80GB HBM3", 81559, 700.0),
    "H100-NVL-94GB": ("NVIDIA H100 NVL", 95830, 400.0),
    "A100-80GB": ("NVIDIA A100-SXM4-80GB", 81920, 400.0),
    "A100-40GB": ("NVIDIA A100-SXM4-40GB", 40960, 400.0),
    "L40S-48GB": ("NVIDIA L40S", 46068, 350.0),
    "A10G-24GB": ("NVIDIA A10G", 23028, 300.0),
    "A10-24GB": ("NVIDIA A10", 23028, 150.0),
    "L4-24GB": ("NVIDIA L4", 23034, 72.0),
    "GH200-96GB": ("NVIDIA GH200 480GB", 97871, 900.0),
}
DEFAULT_BOARD = ("NVIDIA GPU", 24576, 300.0)

# metric -> HELP text; written once at the top of each file, in this order for every scrape.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_SM_ACTIVE", "gauge", "The ratio of cycles an SM has at least 1 warp assigned."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory is active."),
)


@dataclass(frozen=True)
class User:
    """Who a device's series name: a pod (namespace/pod/container) or a Slurm job."""

    namespace: str = ""
    pod: str = ""
    container: str = ""
    hpc_job: str = ""


@dataclass(frozen=True)
class Device:
    index: int
    uuid: str
    mig_profile: str = ""
    mig_id: str = ""
    fb_total_mib: int = 0
    users: tuple[User, ...] = ()


@dataclass(frozen=True)
class GpuHost:
    """One host written to `dcgm/<name>.txt`, and the resources it stands for."""

    name: str
    resource: Resource
    shape: Shape
    scheduler: Scheduler
    gpu_model: str
    model_name: str
    gpu_count: int
    power_w: float
    fb_total_mib: int
    hours: tuple[bool, ...]  # running in each hour of the telemetry window
    represents: tuple[str, ...]  # resource keys of its group
    text: bool = True  # written as scrapes (the group's representative), else into fleet.parquet

    @property
    def active_hours(self) -> int:
        return sum(self.hours)


def shape_of(resource: Resource) -> Shape:
    workload = resource.owner.workload_type
    if workload in ("training", "fine-tuning"):
        return "training"
    if workload == "inference":
        return "inference"
    if workload == "notebook":
        return "notebook"
    if workload == "experiment":
        return "idle"
    return "batch"


def group_of(resource: Resource) -> str:
    usage = resource.usage
    if isinstance(usage, Runs | Bursts):
        return usage.group
    if isinstance(usage, Slot):
        return usage.pool.name
    head, _, tail = resource.key.rpartition("-")
    return head if tail.isdigit() else resource.key  # jupyter-gpu-0, -1: one group


def _scheduler(shape: Shape) -> Scheduler:
    return {"training": "slurm", "idle": "none"}.get(shape, "kubernetes")  # type: ignore[return-value]


def plan_hosts(
    resources: Sequence[Resource], series: UsageSeries, first_hour: int, hours: int
) -> list[GpuHost]:
    """Every GPU host running in the window; per group, the first is `text` (see the module)."""
    groups: dict[str, list[Resource]] = {}
    for r in resources:
        price = r.instance
        if price is not None and price.gpu_count and r.kind == "usage":
            groups.setdefault(group_of(r), []).append(r)
    order = {"training": 0, "inference": 1, "notebook": 2, "idle": 3, "batch": 4}
    ranked = sorted(groups.values(), key=lambda g: order[shape_of(g[0])])
    hosts: list[GpuHost] = []
    wide = 0
    for members in ranked:
        keys = tuple(m.key for m in members)
        running = [
            (r, window)
            for r in members
            if any(window := tuple(series.active(r)[first_hour : first_hour + hours]))
        ]
        for i, (r, window) in enumerate(running):
            price = r.instance
            assert price is not None
            text = i == 0
            if text and price.gpu_count >= 8:
                cap = MAX_WIDE_TRAINING if shape_of(r) == "training" else MAX_WIDE_HOSTS
                text = wide < cap
                wide += text
            hosts.append(replace(_host(r, window, keys), text=text))
    return sorted(hosts, key=lambda h: h.name)


def _host(r: Resource, window: tuple[bool, ...], members: tuple[str, ...]) -> GpuHost:
    price = r.instance
    assert price is not None and price.gpu_model is not None
    model_name, fb, power = GPU_BOARDS.get(price.gpu_model, DEFAULT_BOARD)
    shape = shape_of(r)
    return GpuHost(
        name=r.name or r.key.split("/")[-1],
        resource=r,
        shape=shape,
        scheduler=_scheduler(shape),
        gpu_model=price.gpu_model,
        model_name=model_name,
        gpu_count=price.gpu_count,
        power_w=power,
        fb_total_mib=fb,
        hours=window,
        represents=members,
    )


def gpu_uuid(host: str, index: int) -> str:
    return f"GPU-{stable_guid(f'gpu/{host}/{index}')}"


def pod_suffix(key: str) -> str:
    """Five characters like Kubernetes' random pod suffixes, derived from `key`."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = int(stable_hex(key, 12), 16)
    return "".join(alphabet[(digest >> (5 * i)) % len(alphabet)] for i in range(5))


@dataclass(frozen=True)
class Reading:
    util: float  # 0-1
    sm: float
    tensor: float
    dram: float
    fb_used_share: float
    power_share: float


def reading(
    shape: Shape, hour_of_day: int, minute: int, peak: float, rng: Random,
    level: float | None = None,
) -> Reading:  # fmt: skip
    """One minute of one GPU in `shape`; `peak` scales inference load (its busiest hour), and
    `level` (the minute's share of the peak's traffic) replaces the diurnal curve when given."""
    noise = rng.random()
    if shape == "training":
        gr = 0.85 + 0.13 * noise if minute % 30 else 0.35 + 0.2 * noise  # a checkpoint stall
        return Reading(gr, gr * 0.93, gr * 0.68, 0.45 + 0.1 * noise, 0.9, 0.55 + 0.4 * gr)
    if shape == "inference" and level is not None:
        gr = min(1.0, peak * level * (1 - NOISE + 2 * NOISE * noise))
        return Reading(gr, gr * SM_PER_ENGINE, gr * 0.45, gr * 0.6, 0.72, 0.2 + 0.7 * gr)
    if shape == "inference":
        gr = peak * DIURNAL[hour_of_day] * (1 - NOISE + 2 * NOISE * noise)
        return Reading(gr, gr * SM_PER_ENGINE, gr * 0.45, gr * 0.6, 0.72, 0.2 + 0.7 * gr)
    if shape == "batch":
        gr = 0.7 + 0.2 * noise
        return Reading(gr, gr * 0.85, gr * 0.5, 0.35 + 0.1 * noise, 0.6, 0.3 + 0.6 * gr)
    if shape == "notebook":
        working = 9 <= hour_of_day <= 18 and noise < 0.06
        gr = 0.3 + 0.3 * rng.random() if working else 0.0
        return Reading(gr, gr * 0.7, gr * 0.2, gr * 0.3, 0.55, 0.12 + 0.5 * gr)
    return Reading(0.0, 0.0, 0.0, 0.0, 0.31, 0.1)


# An inference GPU's engine activity is its peak x the hour's diurnal level x 1 +- NOISE; SM
# activity is SM_PER_ENGINE of it: the busiest SM minute is at most `inference_sm_ceiling(peak)`.
NOISE = 0.15
SM_PER_ENGINE = 0.8


def inference_sm_ceiling(peak: float) -> float:
    """The largest SM activity an inference GPU of busiest-hour activity `peak` shows."""
    return peak * max(DIURNAL) * (1 + NOISE) * SM_PER_ENGINE


INFERENCE_PEAK: dict[str, float] = {
    "assistant-chat-a100": 0.28,  # the A100 endpoint idling around 15 %
    "sdxl-demo-endpoint": 0.03,  # a demo endpoint that serves almost nothing
    "gh200-rag-proto": 0.04,
}
DEFAULT_PEAK = 0.75


def _labels(host: GpuHost, device: Device, user: User) -> str:
    parts = [
        f'gpu="{device.index}"',
        f'UUID="{device.uuid}"',
        f'device="nvidia{device.index}"',
        f'modelName="{host.model_name}"',
    ]
    if device.mig_profile:
        parts += [f'GPU_I_PROFILE="{device.mig_profile}"', f'GPU_I_ID="{device.mig_id}"']
    parts += [
        f'Hostname="{host.name}"',
        f'namespace="{user.namespace}"',
        f'pod="{user.pod}"',
        f'container="{user.container}"',
    ]
    if user.hpc_job:
        parts.append(f'hpc_job="{user.hpc_job}"')
    return "{" + ",".join(parts) + "}"


def _series(host: GpuHost, devices: Sequence[Device]) -> list[tuple[Device, list[str]]]:
    """Per device, one label block per user (a time-sliced GPU repeats its series per pod)."""
    out: list[tuple[Device, list[str]]] = []
    for d in devices:
        users = d.users or (User(),)
        out.append((d, [_labels(host, d, u) for u in users]))
    return out


def _values(
    r: Reading, fb_total: int, power_w: float, mig: bool, fb_used: int | None = None
) -> tuple[str | None, ...]:
    used = int(fb_total * r.fb_used_share) if fb_used is None else min(fb_used, fb_total)
    return (
        None if mig else f"{min(100, round(r.util * 100))}",
        f"{fb_total - used}",
        f"{used}",
        None if mig else f"{power_w * r.power_share:.3f}",
        f"{r.util:.6f}",
        f"{r.sm:.6f}",
        f"{r.tensor:.6f}",
        f"{r.dram:.6f}",
    )


def _scrapes(
    host: GpuHost, devices: Sequence[Device], start_ms: int, seed: int
) -> Iterator[tuple[int, list[tuple[str | None, ...]]]]:
    """Per running minute: its time (ms) and each device's values in `METRICS` order (None: not exported)."""
    rng = Random(f"{seed}/dcgm/{host.name}")
    group = group_of(host.resource).split("/")[-1]
    traits = host.resource.traits or Traits()
    peak = traits.peak if traits.peak is not None else INFERENCE_PEAK.get(group, DEFAULT_PEAK)
    for hour, running in enumerate(host.hours):
        if not running:
            continue
        hour_of_day = (start_ms // 3_600_000 + hour) % 24
        levels = _office_levels(traits, start_ms + hour * 3_600_000, traffic_key(seed, group))
        flat = None if traits.swing is None else 1 - traits.swing * (1 - DIURNAL[hour_of_day])
        for minute in range(60):
            level = levels[minute] if levels else flat
            yield (
                start_ms + (hour * 60 + minute) * SAMPLE_SECONDS * 1000,
                [
                    _values(
                        reading(host.shape, hour_of_day, minute, peak, rng, level),
                        d.fb_total_mib or host.fb_total_mib,
                        host.power_w,
                        bool(d.mig_profile),
                        traits.fb_used_mib,
                    )
                    for d in devices
                ],
            )


def _office_levels(traits: Traits, hour_ms: int, key: str) -> list[float] | None:
    """Each minute's share of the peak's requests, for an endpoint with office-hours traffic."""
    if traits.office is None or not traits.peak_rpm:
        return None
    hour = dt.datetime.fromtimestamp(hour_ms / 1000, dt.UTC)
    return [n / traits.peak_rpm for n in office_minutes(traits.office, traits.peak_rpm, hour, key)]


def write_host(
    path: Path, host: GpuHost, devices: Sequence[Device], start_ms: int, seed: int
) -> int:
    """Write `host`'s scrapes, one a minute in its running hours; return the samples written."""
    series = _series(host, devices)
    header = [f"# HELP {m} {h}\n# TYPE {m} {t}\n" for m, t, h in METRICS]
    lines: list[str] = []
    samples = 0
    for ts_ms, values in _scrapes(host, devices, start_ms, seed):
        ts = f" {ts_ms}\n"
        for m, (metric, _, _) in enumerate(METRICS):
            for (_, blocks), vals in zip(series, values, strict=True):
                value = vals[m]
                if value is None:
                    continue
                for block in blocks:
                    lines.append(f"{metric}{block} {value}{ts}")
        samples += sum(len(b) for _, b in series)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(header))
        fh.write("".join(lines))
    return samples


FLEET_LABELS = ("Hostname", "gpu", "UUID", "device", "modelName", "GPU_I_PROFILE", "GPU_I_ID",
                "namespace", "pod", "container", "hpc_job")  # fmt: skip


def write_fleet(
    path: Path, hosts: Sequence[tuple[GpuHost, Sequence[Device]]], start_ms: int, seed: int
) -> dict[str, int]:
    """Write the hosts' samples as one wide Parquet file; return the samples written per host."""
    cols: dict[str, list[object]] = {"timestamp": [], **{k: [] for k in FLEET_LABELS}}
    cols.update({m: [] for m, _, _ in METRICS})
    samples: dict[str, int] = {}
    for host, devices in hosts:
        samples[host.name] = 0
        for ts_ms, values in _scrapes(host, devices, start_ms, seed):
            for d, vals in zip(devices, values, strict=True):
                for u in d.users or (User(),):
                    labels = (host.name, str(d.index), d.uuid, f"nvidia{d.index}", host.model_name,
                              d.mig_profile, d.mig_id, u.namespace, u.pod, u.container, u.hpc_job)  # fmt: skip
                    cols["timestamp"].append(ts_ms)
                    for k, v in zip(FLEET_LABELS, labels, strict=True):
                        cols[k].append(v or None)
                    for (m, _, _), value in zip(METRICS, vals, strict=True):
                        cols[m].append(float(value) if value is not None else None)
                    samples[host.name] += 1
    table = pa.table(
        {
            "timestamp": pa.array(cols.pop("timestamp"), pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
            **{k: pa.array(v, pa.string()) for k, v in cols.items() if k in FLEET_LABELS},
            **{k: pa.array(v, pa.float64()) for k, v in cols.items() if k not in FLEET_LABELS},
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return samples
