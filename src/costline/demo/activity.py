"""The demo organization's telemetry and usage, consistent with its bills: `generate_activity`.

    >>> billing = generate_billing(Path("/tmp/org"), days=30)             # doctest: +SKIP
    >>> generate_activity(Path("/tmp/org"), billing, seed=7).dcgm_files  # doctest: +SKIP

Writes under `out/`: `dcgm/<host>.txt` (see `telemetry`), `kubernetes/pods.json`,
`slurm/sacct.txt`, `registry.yaml` (see `workloads`), `llm/*.jsonl` (see `llm_usage`),
`storage/<bucket>/...` and `storage/lifecycle/<bucket>.lifecycle.json` (see `storage`),
`metrics/inference.csv` (hourly inferences per endpoint), `annotations.yaml`, and
`activity_truth.json`: which hosts were written and whom they stand for, the samples, jobs, pods,
requests and bytes to expect.
The telemetry window is the last `telemetry_days` days (or `telemetry_hours` hours) of the billing
window. Everything comes from the seed: the same arguments write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from costline.demo.billing import BillingManifest
from costline.demo.fleets import organization
from costline.demo.ground_truth import add_token_waste
from costline.demo.llm_tiering import write_llm_tiering
from costline.demo.llm_usage import (
    APPS,
    PROMPT_SPIKE_APP,
    PROMPT_SPIKE_HOURS,
    prompt_spike_start,
    write_llm_usage,
)
from costline.demo.manifests import MANIFEST_DIR, write_manifests
from costline.demo.org import Resource
from costline.demo.schedule import Timeline, UsageSeries
from costline.demo.storage import (
    BucketInventory,
    RunCheckpoints,
    write_gcs_inventory,
    write_inventories,
    write_lifecycles,
)
from costline.demo.telemetry import Device, GpuHost, group_of, plan_hosts, write_fleet, write_host
from costline.demo.waste import Waste, finished_runs, plant_waste, run_checkpoints, with_waste
from costline.demo.workloads import (
    Pod,
    SlurmJob,
    endpoint_names,
    host_devices,
    slurm_jobs,
    write_inference_metrics,
    write_pods,
    write_registry,
    write_sacct,
)

ACTIVITY_TRUTH_FILE = "activity_truth.json"


@dataclass(frozen=True)
class ActivityManifest:
    """What `generate_activity` wrote, by source."""

    root: Path
    window_start: dt.datetime
    window_end: dt.datetime
    dcgm_files: tuple[Path, ...]
    dcgm_samples: int
    pods_file: Path
    pods: int
    sacct_file: Path
    slurm_jobs: int
    registry_file: Path
    registry_entries: int
    llm_files: tuple[Path, ...]
    llm_requests: int
    storage_manifests: tuple[Path, ...]
    storage_objects: int
    lifecycle_files: tuple[Path, ...]
    metrics_file: Path
    metrics_rows: int
    annotations_file: Path
    annotations: int
    truth: Path


def _window(
    manifest: BillingManifest, telemetry_days: int, telemetry_hours: int | None
) -> tuple[int, int]:
    """(first hour index in the billing window, hours) of the telemetry window."""
    total = manifest.days * 24
    hours = telemetry_hours if telemetry_hours is not None else telemetry_days * 24
    if hours < 1:
        raise ValueError("the telemetry window must be at least one hour")
    hours = min(hours, total)
    return total - hours, hours


def _buckets(resources: list[Resource]) -> list[Resource]:
    return [r for r in resources if r.resource_type == "Bucket" and r.service.category == "Storage"]


def _planted_bucket(
    out: Path, waste: Waste, jobs: list[SlurmJob], series: UsageSeries, manifest: BillingManifest
) -> BucketInventory:
    """The inventory of the planted checkpoint bucket (`demo.waste`, `storage_tiering`): each
    run of the fine-tuning cluster that ended 8-29 days ago, under a folder named by its job."""
    plant, cluster = waste.plant("storage_tiering"), waste.plant("spot_capacity").members[0]
    group = getattr(cluster.usage, "group", "")
    origin = manifest.window_start
    starts = {int((j.start - origin).total_seconds() // 3600): j for j in jobs if j.group == group}
    runs = finished_runs(series.active(cluster), manifest.days)
    found = [(starts[a], checkpoints) for (a, _), checkpoints
             in zip(runs, run_checkpoints(plant, runs), strict=True) if a in starts]  # fmt: skip
    checkpoints = [RunCheckpoints(f"{plant.facts['prefix']}{j.job_id}/", count, 500, j.end, gib)
                   for j, (count, gib) in found if j.end is not None]  # fmt: skip
    project = plant.members[0].sub_account.id or "demo"
    snapshot = manifest.window_end - dt.timedelta(hours=23)
    return write_gcs_inventory(out, project, plant.resource, checkpoints, snapshot)


def _annotations(start: dt.datetime, hours: int, jobs: list[SlurmJob]) -> list[dict[str, object]]:
    def at(h: float) -> str:
        return (start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")

    out: list[dict[str, object]] = [
        {
            "ts": at(hours * 0.2),
            "kind": "deploy",
            "scope": {"app": "assistant-chat", "endpoint": "assistant-chat-a100"},
            "text": "assistant-chat v4.12 rolled out: longer system prompt",
        },
        {
            "ts": at(hours * 0.45),
            "kind": "model_launch",
            "scope": {"model": "atlas-8b-instruct", "team": "assistant"},
            "text": "atlas-8b-instruct 2026.10 launched on assistant-lite",
        },
        {
            "ts": at(hours * 0.7),
            "kind": "deploy",
            "scope": {"app": "search-rewrite", "model": "gpt-4o-mini"},
            "text": "search-rewrite moved to gpt-4o-mini",
        },
    ]
    for j in jobs[-2:]:
        out.append(
            {
                "ts": j.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "kind": "training_start",
                "scope": {"job": j.job_id, "model": j.resource.owner.model or ""},
                "text": f"Slurm job {j.job_id} ({j.name}) started",
            }
        )
    return out


def _held(h: GpuHost, devices: list[Device]) -> dict[str, dict[str, object]]:
    """The truth of who held `h`'s GPUs: workload id -> team, host and GPU-seconds held.

    Every running minute of a device counts for its users, time-sliced ones splitting it, a MIG
    slice weighing its compute share of the GPU (3g on an A100: 3/7).
    """
    held: dict[str, dict[str, object]] = {}
    for d in devices:
        users = [u for u in d.users if u.pod or u.hpc_job]
        weight = int(d.mig_profile.split("g", 1)[0]) / 7 if d.mig_profile else 1.0
        for u in users:
            wid = f"{u.namespace}/{u.pod}" if u.pod else u.hpc_job
            entry = held.setdefault(
                wid, {"team": h.resource.owner.team, "host": h.name, "gpu_seconds": 0.0}
            )
            entry["gpu_seconds"] = float(
                str(entry["gpu_seconds"])
            ) + h.active_hours * 3600 * weight / len(users)
    return held


def _dcgm(
    out: Path, hosts: list[GpuHost], jobs: list[SlurmJob], start: dt.datetime, seed: int
) -> tuple[list[Path], list[Pod], dict[str, int], dict[str, dict[str, object]]]:
    """Write a scrape file per `text` host and `fleet.parquet` for the rest; return the files, the
    pods on the hosts and samples per host."""
    window_start_ms = int(start.timestamp() * 1000)
    running = {j.group: j.job_id for j in jobs if j.end is None or j.end > start}
    files: list[Path] = []
    pods: list[Pod] = []
    samples: dict[str, int] = {}
    fleet = []
    held: dict[str, dict[str, object]] = {}
    first_notebook = next((h.name for h in hosts if h.shape == "notebook"), None)
    for h in hosts:
        group = getattr(h.resource.usage, "group", None)
        job = running.get(group) if isinstance(group, str) else None
        devices, host_pods = host_devices(h, start, job, h.name == first_notebook)
        pods += host_pods
        held.update(_held(h, devices))
        if not h.text:
            fleet.append((h, devices))
            continue
        path = out / "dcgm" / f"{h.name}.txt"
        samples[h.name] = write_host(path, h, devices, window_start_ms, seed)
        files.append(path)
    if fleet:
        path = out / "dcgm" / "fleet.parquet"
        samples.update(write_fleet(path, fleet, window_start_ms, seed))
        files.append(path)
    return files, pods, samples, held


def _host_truth(h: GpuHost, samples: int, pods: list[Pod]) -> dict[str, object]:
    who = h.resource.owner
    return {
        "host": h.name,
        "resource_key": h.resource.key,
        "instance_type": h.resource.instance.instance_type if h.resource.instance else None,
        "gpu_model": h.gpu_model,
        "gpu_count": h.gpu_count,
        "shape": h.shape,
        "scheduler": h.scheduler,
        "team": who.team,
        "project": who.project,
        "model": who.model,
        "workload_type": who.workload_type,
        "active_hours": h.active_hours,
        "expected_samples": samples,
        "represents": list(h.represents),
        "format": "text" if h.text else "parquet",
        "pods": [f"{p.namespace}/{p.name}" for p in pods if p.host.name == h.name],
    }


def _truth(
    hosts: list[GpuHost],
    samples: dict[str, int],
    pods: list[Pod],
    jobs: list[SlurmJob],
    requests: dict[str, int],
    buckets: list[BucketInventory],
) -> dict[str, object]:
    return {
        "version": 1,
        "dcgm": {
            "note": "every GPU host running in the window; one per training group, pool or "
            "batch group (at most 3 with 8 GPUs) as scrapes, the rest in fleet.parquet",
            "sample_seconds": 60,
            "expected_samples": sum(samples.values()),
            "hosts": [_host_truth(h, samples[h.name], pods) for h in hosts],
            "mig_pods": [f"{p.namespace}/{p.name}" for p in pods if "mig-" in p.resource_name],
        },
        "slurm_jobs": [
            {"job_id": j.job_id, "name": j.name, "state": j.state, "nodes": len(j.nodes)}
            for j in jobs
        ],
        "llm_requests_per_app": requests,
        "llm_apps": {a.app: {"team": a.team, "model": a.model} for a in APPS},
        "storage": [
            {
                "bucket": b.bucket,
                "objects": b.objects,
                "bytes": b.total_bytes,
                "checkpoint_objects": b.checkpoint_objects,
                "checkpoint_bytes": b.checkpoint_bytes,
            }
            for b in buckets
        ],
    }


def generate_activity(
    out: Path,
    manifest: BillingManifest,
    *,
    seed: int,
    telemetry_days: int = 1,
    telemetry_hours: int | None = None,
) -> ActivityManifest:
    """Write the telemetry and usage of the window's last days under `out` (see the module)."""
    first_hour, hours = _window(manifest, telemetry_days, telemetry_hours)
    timeline = Timeline.of(manifest.window_start.date(), manifest.days)
    series = UsageSeries(timeline, manifest.seed)
    waste = plant_waste(manifest.seed, manifest.scale)
    resources = with_waste(organization(manifest.scale), waste)
    start = manifest.window_start + dt.timedelta(hours=first_hour)
    hosts = plan_hosts(resources, series, first_hour, hours)
    training = [
        (r, series.active(r))
        for r in resources
        if r.instance is not None and r.instance.gpu_count and r.owner.cost_domain == "training"
        and r.owner.workload_type in ("training", "fine-tuning")
    ]  # fmt: skip
    jobs = slurm_jobs(training, manifest.window_start)
    dcgm_files, pods, samples, held = _dcgm(out, hosts, jobs, start, seed)
    write_pods(out / "kubernetes" / "pods.json", pods)
    planned = write_manifests(
        out / MANIFEST_DIR, jobs, manifest.window_end, seed, manifest.config_file
    )
    write_sacct(out / "slurm" / "sacct.txt", jobs, manifest.window_end, planned)
    registry = write_registry(out / "registry.yaml", hosts, jobs)
    usage = write_llm_usage(out / "llm", start, hours, manifest.scale, seed)
    requests = usage.per_app
    add_token_waste(manifest.ground_truth, usage.waste)
    requests |= write_llm_tiering(out, start, hours, manifest.scale, seed, manifest.ground_truth)
    snapshot = manifest.window_end - dt.timedelta(hours=23)
    buckets = write_inventories(out / "storage", _buckets(resources), snapshot, seed)
    buckets.append(_planted_bucket(out / "storage", waste, jobs, series, manifest))
    stores = [r.name or "" for r in resources if r.service.category == "Storage"]
    lifecycles = write_lifecycles(out / "storage" / "lifecycle", stores)
    metrics_file = out / "metrics" / "inference.csv"
    traffic = {group_of(h.resource).split("/")[-1]: h.resource.traits for h in hosts
               if h.resource.traits is not None and h.resource.traits.office is not None}  # fmt: skip
    metrics_rows = write_inference_metrics(metrics_file, endpoint_names(hosts), start, hours, seed,
                                           traffic)  # fmt: skip
    notes = _annotations(start, hours, jobs)
    annotations = out / "annotations.yaml"
    annotations.write_text(yaml.safe_dump({"annotations": notes}, sort_keys=False), "utf-8")
    truth = out / ACTIVITY_TRUTH_FILE
    doc = _truth(hosts, samples, pods, jobs, requests, buckets)
    spike = prompt_spike_start(start, hours)
    doc["live_incidents"] = [
        {
            "id": f"prompt-spike-{PROMPT_SPIKE_APP}",
            "kind": "prompt_spike",
            "note": "the app's system prompt tripled: 2,048 more fresh input tokens a request",
            "signal": "avg_context_tokens",
            "scope": {"app": PROMPT_SPIKE_APP},
            "start": spike.isoformat().replace("+00:00", "Z"),
            "end": (start + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
            "hours": PROMPT_SPIKE_HOURS,
        }
    ] if spike is not None else []  # fmt: skip
    doc["allocation"] = {
        "note": "who truly held each GPU in the window: the owner team and GPU-seconds of every "
        "workload; a share is its GPU-seconds over its host's (gpu_count x running hours)",
        "host_capacity_gpu_seconds": {h.name: h.gpu_count * h.active_hours * 3600 for h in hosts},
        "workloads": held,
    }
    truth.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return ActivityManifest(
        root=out,
        window_start=start,
        window_end=start + dt.timedelta(hours=hours),
        dcgm_files=tuple(dcgm_files),
        dcgm_samples=sum(samples.values()),
        pods_file=out / "kubernetes" / "pods.json",
        pods=len(pods),
        sacct_file=out / "slurm" / "sacct.txt",
        slurm_jobs=len(jobs),
        registry_file=out / "registry.yaml",
        registry_entries=registry,
        llm_files=tuple(out / "llm" / n for n in ("openai_chat.jsonl", "anthropic_messages.jsonl")),
        llm_requests=sum(requests.values()),
        storage_manifests=tuple(b.manifest for b in buckets),
        storage_objects=sum(b.objects for b in buckets),
        lifecycle_files=tuple(lifecycles),
        metrics_file=metrics_file,
        metrics_rows=metrics_rows,
        annotations_file=annotations,
        annotations=len(notes),
        truth=truth,
    )
