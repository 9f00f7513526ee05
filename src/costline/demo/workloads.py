"""What ran on the demo's GPUs: `kubernetes/pods.json`, `slurm/sacct.txt` and `registry.yaml`.

Training and fine-tuning run as Slurm jobs: one job per run of a training group over the whole
billing window (the hours its bill shows), its DCGM series labelled `hpc_job`. Inference endpoints,
notebooks and batch jobs are Kubernetes pods on the hosts `telemetry` writes, named as the DCGM
`pod` labels name them; the MIG host's pods request `nvidia.com/mig-3g.20gb`, and the two notebook
pods that time-slice one GPU each request `nvidia.com/gpu: 1`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random

import yaml

from costline.demo.fleets.base import stable_guid, stable_hex
from costline.demo.org import Resource
from costline.demo.telemetry import (
    MIG_POOL,
    MIG_PROFILE,
    MIG_SLICES,
    SHARED_NOTEBOOK_GPU,
    Device,
    GpuHost,
    User,
    gpu_uuid,
    group_of,
    pod_suffix,
)
from costline.demo.usage import Runs, Traits, office_minutes, stretches, traffic_key

FIRST_JOB_ID = 880100
MIG_FB_MIB = 19968
KIND_WORD = {"inference": "inference", "notebook": "notebook", "batch": "batch"}


@dataclass(frozen=True)
class SlurmJob:
    job_id: str
    name: str
    group: str
    nodes: tuple[str, ...]
    gpus_per_node: int
    gpu_type: str
    start: dt.datetime
    end: dt.datetime | None  # None: still running at the end of the window
    state: str
    resource: Resource


def slurm_jobs(
    training: Sequence[tuple[Resource, list[bool]]], origin: dt.datetime
) -> list[SlurmJob]:
    """One job per run of every training group over the billing window, numbered by start."""
    groups: dict[str, list[tuple[Resource, list[bool]]]] = {}
    for r, active in training:
        if isinstance(r.usage, Runs):
            groups.setdefault(r.usage.group, []).append((r, active))
    found: list[tuple[dt.datetime, str, SlurmJob]] = []
    for group, members in groups.items():
        first, active = members[0]
        price = first.instance
        assert price is not None and price.gpu_model is not None
        hours = len(active)
        for i, (a, b) in enumerate(stretches(active)):
            start = origin + dt.timedelta(
                hours=a, minutes=int(stable_hex(f"{group}/{i}", 2), 16) % 7
            )
            running = b == hours
            state = "RUNNING" if running else ("CANCELLED" if i % 5 == 3 else "COMPLETED")
            end = None if running else origin + dt.timedelta(hours=b) - dt.timedelta(minutes=2)
            job = SlurmJob(
                job_id="",
                name=group.split("/")[-1],
                group=group,
                nodes=tuple(r.name or r.key for r, _ in members),
                gpus_per_node=price.gpu_count,
                gpu_type=price.gpu_model.split("-")[0].lower(),
                start=start,
                end=end,
                state=state,
                resource=first,
            )
            found.append((start, group, job))
    found.sort(key=lambda t: (t[0], t[1]))
    return [
        SlurmJob(**{**job.__dict__, "job_id": str(FIRST_JOB_ID + n)})
        for n, (_, _, job) in enumerate(found)
    ]


def _slurm_time(at: dt.datetime | None) -> str:
    return "Unknown" if at is None else at.strftime("%Y-%m-%dT%H:%M:%S")


def _elapsed(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def write_sacct(
    path: Path,
    jobs: Sequence[SlurmJob],
    window_end: dt.datetime,
    planned: Mapping[str, str] | None = None,
) -> int:
    """`sacct -P` with a `.batch` step under each job; return the job rows written. `planned`:
    job id -> `key=value` tags its Comment adds (what a run launched from a manifest says)."""
    header = "JobID|JobName|User|Account|Partition|AllocTRES|Start|End|State|Elapsed|NodeList|WCKey|Comment"
    lines = [header]
    for j in jobs:
        n = len(j.nodes)
        gpus = n * j.gpus_per_node
        tres = f"billing={96 * n},cpu={96 * n},gres/gpu:{j.gpu_type}={gpus},gres/gpu={gpus},mem={1900 * n}G,node={n}"
        elapsed = _elapsed(int(((j.end or window_end) - j.start).total_seconds()))
        who = j.resource.owner
        nodelist = j.nodes[0] if n == 1 else f"{j.nodes[0].rsplit('-', 1)[0]}-[0-{n - 1}]"
        kind = "fine_tune" if who.workload_type == "fine-tuning" else who.workload_type
        comment = f"workload-type={kind},team={who.team},project={who.project}"
        if who.model:
            comment += f",model={who.model}"
        if j.resource.traits and j.resource.traits.checkpoint_min:
            comment += f",checkpoint_interval_min={j.resource.traits.checkpoint_min}"
        if planned and j.job_id in planned:
            comment += f",{planned[j.job_id]}"
        user = f"svc-{who.project}"
        partition = f"{j.resource.account.provider}-{j.gpu_type}"
        row = [j.job_id, j.name, user, who.team, partition, tres, _slurm_time(j.start)]
        row += [
            _slurm_time(j.end),
            j.state if j.state != "CANCELLED" else f"CANCELLED by 4{j.job_id[-3:]}",
        ]
        row += [elapsed, nodelist, f"*{who.project}", comment]
        lines.append("|".join(row))
        step = [f"{j.job_id}.batch", "batch", "", who.team, "", tres, _slurm_time(j.start)]
        step += [_slurm_time(j.end), j.state, elapsed, j.nodes[0], "", ""]
        lines.append("|".join(step))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(jobs)


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    controller: str  # ReplicaSet, Job, StatefulSet
    controller_name: str
    container: str
    resource_name: str  # nvidia.com/gpu or nvidia.com/mig-<profile>
    count: int
    host: GpuHost
    start: dt.datetime
    end: dt.datetime | None
    labels: tuple[tuple[str, str], ...]


def _span(host: GpuHost, window_start: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    """A pod's start (before the window when the host runs from its first hour) and end."""
    first = host.hours.index(True)
    last = len(host.hours) - host.hours[::-1].index(True)
    start = window_start + dt.timedelta(hours=first)
    if first == 0:
        start -= dt.timedelta(hours=int(stable_hex(host.name, 2), 16) % 72 + 2)
    end = None if last == len(host.hours) else window_start + dt.timedelta(hours=last)
    return start, end


def _labels(host: GpuHost, app: str) -> tuple[tuple[str, str], ...]:
    who = host.resource.owner
    labels = [
        ("app", app),
        ("team", who.team),
        ("project", who.project),
        ("workload-type", KIND_WORD[host.shape]),
    ]
    if who.model:
        labels.append(("model", who.model))
    if host.shape == "inference":
        labels.append(("app.kubernetes.io/component", "inference"))
    if host.shape == "notebook":
        labels.append(("notebook-name", app))
    return tuple(labels)


def _pod(
    host: GpuHost,
    name: str,
    controller: tuple[str, str],
    container: str,
    gpu: tuple[str, int],
    span: tuple[dt.datetime, dt.datetime | None],
    app: str,
) -> Pod:
    return Pod(
        namespace=host.resource.owner.team,
        name=name,
        controller=controller[0],
        controller_name=controller[1],
        container=container,
        resource_name=gpu[0],
        count=gpu[1],
        host=host,
        start=span[0],
        end=span[1],
        labels=_labels(host, app),
    )


def host_devices(
    host: GpuHost, window_start: dt.datetime, job_id: str | None, shared: bool
) -> tuple[list[Device], list[Pod]]:
    """The host's GPUs (or MIG slices) with who uses each, and the pods that use them."""
    uuids = [gpu_uuid(host.name, i) for i in range(host.gpu_count)]
    if host.scheduler == "none":
        return [Device(i, u) for i, u in enumerate(uuids)], []
    if host.scheduler == "slurm":
        user = User(hpc_job=job_id or "")
        return [Device(i, u, users=(user,)) for i, u in enumerate(uuids)], []
    span = _span(host, window_start)
    group = group_of(host.resource).split("/")[-1]
    if host.shape == "notebook":
        return _notebooks(host, uuids, span, shared)
    if group == MIG_POOL:
        return _mig(host, uuids, span, group)
    if host.shape == "batch":
        name = f"{group}-{window_start:%Y%m%d}"
        pod = _pod(
            host,
            f"{name}-{pod_suffix(host.name)}",
            ("Job", name),
            "worker",
            ("nvidia.com/gpu", host.gpu_count),
            span,
            group,
        )
    else:
        rs = f"{group}-{stable_hex('rs/' + group, 10)}"
        pod = _pod(
            host,
            f"{rs}-{pod_suffix(host.name)}",
            ("ReplicaSet", rs),
            "server",
            ("nvidia.com/gpu", host.gpu_count),
            span,
            group,
        )
    user = User(pod.namespace, pod.name, pod.container)
    return [Device(i, u, users=(user,)) for i, u in enumerate(uuids)], [pod]


def _notebooks(
    host: GpuHost, uuids: list[str], span: tuple[dt.datetime, dt.datetime | None], shared: bool
) -> tuple[list[Device], list[Pod]]:
    devices: list[Device] = []
    pods: list[Pod] = []
    for i, u in enumerate(uuids):
        holders = 2 if shared and i == SHARED_NOTEBOOK_GPU else 1
        users: list[User] = []
        for k in range(holders):
            who = f"jupyter-{stable_hex(f'{host.name}/{i}/{k}', 4)}"
            pod = _pod(
                host, f"{who}-0", ("StatefulSet", who), "notebook", ("nvidia.com/gpu", 1), span, who
            )
            pods.append(pod)
            users.append(User(pod.namespace, pod.name, pod.container))
        devices.append(Device(i, u, users=tuple(users)))
    return devices, pods


def _mig(
    host: GpuHost, uuids: list[str], span: tuple[dt.datetime, dt.datetime | None], group: str
) -> tuple[list[Device], list[Pod]]:
    rs = f"{group}-{stable_hex('rs/' + group, 10)}"
    devices: list[Device] = []
    pods: list[Pod] = []
    for k in range(MIG_SLICES):
        resource = f"nvidia.com/mig-{MIG_PROFILE}"
        pod = _pod(
            host,
            f"{rs}-{pod_suffix(f'{host.name}/mig/{k}')}",
            ("ReplicaSet", rs),
            "server",
            (resource, 1),
            span,
            group,
        )
        pods.append(pod)
        user = User(pod.namespace, pod.name, pod.container)
        devices.append(Device(0, uuids[0], MIG_PROFILE, str(k + 1), MIG_FB_MIB, (user,)))
    return devices, pods


def _pod_json(p: Pod) -> dict[str, object]:
    ts = p.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    owner = {
        "apiVersion": "batch/v1" if p.controller == "Job" else "apps/v1",
        "kind": p.controller,
        "name": p.controller_name,
        "uid": stable_guid(f"owner/{p.controller_name}"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = dict(p.labels)
    if p.controller == "Job":
        labels["job-name"] = p.controller_name
    elif p.controller == "ReplicaSet":
        labels["pod-template-hash"] = p.controller_name.rsplit("-", 1)[-1]
    gpu = {p.resource_name: str(p.count)}
    container: dict[str, object] = {
        "name": p.container,
        "image": f"registry.internal/{p.labels[0][1]}:2026.10",
        "resources": {"requests": {"cpu": "4", "memory": "32Gi", **gpu}, "limits": dict(gpu)},
    }
    finished = p.end is not None
    state: dict[str, object] = (
        {
            "terminated": {
                "exitCode": 0,
                "reason": "Completed",
                "startedAt": ts,
                "finishedAt": p.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        }
        if p.end is not None
        else {"running": {"startedAt": ts}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "uid": stable_guid(f"pod/{p.namespace}/{p.name}"),
            "creationTimestamp": ts,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "nodeName": p.host.name,
            "nodeSelector": {"nvidia.com/gpu.product": p.host.model_name.replace(" ", "-")},
            "containers": [container],
            "restartPolicy": "Never" if p.controller == "Job" else "Always",
        },
        "status": {
            "phase": "Succeeded" if finished else "Running",
            "startTime": ts,
            "containerStatuses": [
                {"name": p.container, "ready": not finished, "restartCount": 0, "state": state}
            ],
        },
    }


def write_pods(path: Path, pods: Sequence[Pod]) -> int:
    doc = {
        "apiVersion": "v1",
        "items": [_pod_json(p) for p in pods],
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return len(pods)


# The checkpoints and datasets of the training runs that have them in the demo's buckets.
RUN_STORAGE = {
    "atlas-70b-pretrain": [
        "s3://atlas-checkpoints/atlas-70b/",
        "s3://atlas-training-data/datasets/atlas-pretrain-v3/",
    ],
    "ft-8b": ["s3://ml-model-artifacts/runs/atlas-8b-instruct/"],
}


def endpoint_names(hosts: Sequence[GpuHost]) -> list[str]:
    """The Kubernetes inference endpoints (one per app), in the order of their hosts."""
    names: list[str] = []
    for h in hosts:
        group = group_of(h.resource).split("/")[-1]
        if h.scheduler == "kubernetes" and h.shape == "inference" and group not in names:
            names.append(group)
    return names


def _budget(j: SlurmJob) -> int:
    """A training group's registry budget: its planted one, else by its GPUs."""
    if j.resource.traits and j.resource.traits.budget_usd:
        return j.resource.traits.budget_usd
    return 250000 if j.gpus_per_node * len(j.nodes) >= 32 else 40000


def write_registry(path: Path, hosts: Sequence[GpuHost], jobs: Sequence[SlurmJob]) -> int:
    """Declared owners, budgets, TTLs and storage of the training groups and the endpoints."""
    entries: list[dict[str, object]] = []
    for group in sorted({j.group for j in jobs}):
        j = next(j for j in jobs if j.group == group)
        who = j.resource.owner
        entry: dict[str, object] = {
            "name": j.name,
            "kind": "fine_tune" if who.workload_type == "fine-tuning" else "training_run",
            "owner": f"{who.project}-lead@costline.example",
            "team": who.team,
            "purpose": f"{who.workload_type} of {who.model}",
            "budget_usd": _budget(j),
            "ttl": "21d",
            "tags": {"project": who.project},
            "match": {"name": f"{j.name}*"},
        }
        storage = RUN_STORAGE.get(j.name) or list(j.resource.traits.storage if j.resource.traits
                                                  else ())  # fmt: skip
        if storage:
            entry["storage"] = storage
        entries.append(entry)
    names = endpoint_names(hosts)
    for h in hosts:
        group = group_of(h.resource).split("/")[-1]
        if group not in names:
            continue
        names.remove(group)
        who = h.resource.owner
        ttl = "14d" if "demo" in group or "proto" in group else "180d"
        entries.append(
            {
                "name": group,
                "kind": "inference_endpoint",
                "owner": f"{who.team}-oncall@costline.example",
                "team": who.team,
                "purpose": f"serves {who.model}",
                "budget_usd": 8000 if ttl == "14d" else 60000,
                "ttl": ttl,
                "tags": {"project": who.project},
                "match": {"labels": {"app": group, "team": who.team}},
            }
        )
    path.write_text(yaml.safe_dump({"workloads": entries}, sort_keys=False), encoding="utf-8")
    return len(entries)


def write_inference_metrics(
    path: Path, endpoints: Sequence[str], start: dt.datetime, hours: int, seed: int,
    traffic: Mapping[str, Traits] | None = None,
) -> int:  # fmt: skip
    """`inference_requests` and `inference_successes` per endpoint (what a Prometheus query of
    the servers' counters exports): hourly with a daily cycle, or, for an endpoint `traffic`
    gives office hours (`usage.Office`), every minute; returns the rows written."""
    rng = Random(f"{seed}/inference")
    rows = ["ts,metric,value,endpoint"]
    for name in endpoints:
        base = rng.uniform(20_000, 400_000)
        errors = rng.uniform(0.001, 0.02)
        office = (traffic or {}).get(name)
        served = 0
        for h in range(hours):
            ts = start + dt.timedelta(hours=h)
            if office is not None and office.office is not None and office.peak_rpm:
                minutes = office_minutes(
                    office.office, office.peak_rpm, ts, traffic_key(seed, name)
                )
                counts = [(ts + dt.timedelta(minutes=m), n) for m, n in enumerate(minutes)]
            else:
                n = round(base * (0.55 + 0.45 * math.sin(math.pi * ((ts.hour - 6) % 24) / 24)))
                counts = [(ts, n)]
            for at, n in counts:
                # Failures so far, rounded: a minute's few requests fail as a whole request.
                failed = round((served + n) * errors) - round(served * errors)
                served += n
                stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
                rows.append(f"{stamp},inference_requests,{n},{name}")
                rows.append(f"{stamp},inference_successes,{n - failed},{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows) - 1
