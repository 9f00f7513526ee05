"""`kubectl get pods -A -o json` dumps -> `workloads`, one row per pod.

Mapping (see docs in each function):

- `workload_id` is `namespace/pod-name`; `name` is the controller's name: the Job, the Deployment
  (the ReplicaSet's name less its `pod-template-hash`), the StatefulSet, else the pod's own name, so
  the registry's name globs match every replica and retry of one workload.
- `kind` (`classify`): a kind label (`workload-type: training`, see `kinds.KIND_KEYS`) wins;
  then notebooks (a label key or value or the pod name mentioning jupyter/notebook, e.g. Kubeflow's
  `notebook-name` label); then the owner: Kubeflow training operators (PyTorchJob, TFJob, MPIJob,
  ...) -> `training_run`; Job/CronJob -> `batch_job`; Deployment/ReplicaSet/StatefulSet labelled as
  serving (KServe's `serving.kserve.io/inferenceservice`, or `app.kubernetes.io/component` one of
  inference, serving, predictor, server) -> `inference_endpoint`; anything else -> `pod`.
- `gpus_requested` (`gpu_request`): per container, `requests` else `limits` of `nvidia.com/gpu`, plus
  MIG slices as fractions of a GPU (`mig.fraction`); the pod's effective request is
  max(sum over containers, max over init containers), as the Kubernetes scheduler counts it.
- `start` = `status.startTime`; `end` = the latest terminated container's `finishedAt`, only for
  Succeeded/Failed pods; `gpu_seconds` = GPUs x (end - start) when both are known.
- `status` is the phase, lower-cased; `owner` from the owner/team labels (`kinds.OWNER_KEYS`);
  `gpu_model`, `pool`, `capacity_type` from well-known `nodeSelector` keys.
- `observed_at` is the dump's time (`snapshot_time`): kubectl writes none, so it is the newest
  time any pod in the dump records. A pod's row replaces its earlier state in the ledger, and only
  when it is at least as new: an older dump ingested later changes nothing of what a newer one
  said (`SourceBatch.newest_by`). A pod a newer dump lacks keeps its last known row.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

from costline.errors import IngestError
from costline.sources.base import SourceBatch, SourceFile, arrow_batch
from costline.sources.records import map_columns, records_table
from costline.sources.workloads import mig
from costline.sources.workloads.kinds import kind_from_labels, owner_from_labels

GPU_RESOURCE = "nvidia.com/gpu"
TRAINING_OWNERS = frozenset(
    {"PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "TrainJob", "RayJob"}
)
JOB_OWNERS = frozenset({"Job", "CronJob"})
SERVING_OWNERS = frozenset({"Deployment", "ReplicaSet", "StatefulSet"})
SERVING_COMPONENTS = frozenset({"inference", "serving", "predictor", "server"})
SERVING_LABELS = ("serving.kserve.io/inferenceservice", "serving.knative.dev/service")
NOTEBOOK_WORDS = ("jupyter", "notebook")

GPU_MODEL_SELECTORS = (
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "accelerator",
)
POOL_SELECTORS = (
    "karpenter.sh/nodepool",
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "node-pool",
)


def read_kubernetes(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Each `kubectl get pods -o json` dump (a List, a PodList or one Pod) as one batch."""
    batches = []
    for f in files:
        items = _items(f)
        rows = [pod_row(item, f, i) for i, item in enumerate(items, start=1)]
        observed = snapshot_time(items, f)
        for row in rows:
            row["observed_at"] = observed
            row["source_path"] = str(f.path.absolute())
        batches.append(
            arrow_batch(
                "workloads",
                f,
                records_table("workloads", rows),
                dialect="kubectl-pods",
                json_map_columns=map_columns("workloads"),
                replace_on=["workload_id"],
                newest_by="observed_at",
            )
        )
    return batches


# Where a pod records a time: its creation, start, conditions, and its containers' states.
_STATE_TIMES = ("startedAt", "finishedAt")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def snapshot_time(items: Sequence[Mapping[str, Any]], f: SourceFile) -> dt.datetime | None:
    """When a dump was taken, at the latest: the newest time any of its pods records (creation,
    start, condition transitions and probes, container starts and ends). `deletionTimestamp` is
    left out: it lies in the future by the grace period. None for a dump without times."""
    times = [
        t
        for row, pod in enumerate(items, start=1)
        for t in _pod_times(pod, f, row)
        if t is not None
    ]
    return max(times, default=None)


def _pod_times(pod: Mapping[str, Any], f: SourceFile, row: int) -> Iterator[dt.datetime | None]:
    meta, status = _mapping(pod, "metadata", f, row), _mapping(pod, "status", f, row)
    yield _time(meta.get("creationTimestamp"), f, row, "metadata.creationTimestamp")
    yield _time(status.get("startTime"), f, row, "status.startTime")
    for condition in status.get("conditions") or []:
        for key in ("lastTransitionTime", "lastProbeTime"):
            yield _time(condition.get(key), f, row, f"status.conditions.{key}")
    for name in _STATUS_LISTS:
        for container in status.get(name) or []:
            for state in (container.get("state"), container.get("lastState")):
                for detail in (state or {}).values():
                    if isinstance(detail, dict):
                        for key in _STATE_TIMES:
                            yield _time(detail.get(key), f, row, f"status.{name}.{key}")


def _items(f: SourceFile) -> list[dict[str, Any]]:
    try:
        doc = json.loads(f.path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=str(f.path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read the file: {exc}", path=str(f.path)) from None
    if isinstance(doc, dict) and doc.get("kind") == "Pod":
        return [doc]
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
        bad = [i for i, item in enumerate(items, start=1) if not isinstance(item, dict)]
        if bad:
            raise IngestError("item is not a JSON object", path=str(f.path), row=bad[0])
        return items
    raise IngestError(
        "not a `kubectl get pods -o json` dump: expected an object with `items` (a List or "
        "PodList) or one Pod",
        path=str(f.path),
    )


def pod_row(pod: Mapping[str, Any], f: SourceFile, row: int) -> dict[str, Any]:
    """One pod as a `workloads` row; `row` (1-based item index) is named in errors."""
    meta = _mapping(pod, "metadata", f, row)
    spec = _mapping(pod, "spec", f, row)
    status = _mapping(pod, "status", f, row)
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name:
        raise IngestError("pod has no metadata.name", path=str(f.path), row=row)
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    phase = status.get("phase")
    start = _time(status.get("startTime"), f, row, "status.startTime")
    end = _end_time(status, f, row) if phase in ("Succeeded", "Failed") else None
    gpus = gpu_request(spec, f, row)
    selectors = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
    return {
        "workload_id": f"{namespace}/{name}" if namespace else name,
        "kind": classify(name, labels, meta.get("ownerReferences") or []),
        "name": controller_name(name, labels, meta.get("ownerReferences") or []),
        "tags": labels or None,
        "start": start,
        "end": end,
        "gpus_requested": gpus,
        "gpu_seconds": _gpu_seconds(gpus, start, end),
        "gpu_model": _first(selectors, GPU_MODEL_SELECTORS),
        "pool": _first(selectors, POOL_SELECTORS),
        "capacity_type": capacity_type(selectors),
        "status": phase.lower() if isinstance(phase, str) else None,
        "namespace": namespace,
        "node": spec.get("nodeName"),
        "owner": owner_from_labels(labels),
        "user": labels.get("user") or labels.get("created-by"),
        "source": "kubernetes",
    }


def classify(name: str, labels: Mapping[str, str], owners: Sequence[Mapping[str, Any]]) -> str:
    """The workload kind of a pod: the rule in the module docstring."""
    declared = kind_from_labels(labels)
    if declared is not None:
        return declared
    words = [name.lower(), *(k.lower() for k in labels), *(v.lower() for v in labels.values())]
    if any(w in text for text in words for w in NOTEBOOK_WORDS):
        return "notebook"
    owner_kinds = {str(o.get("kind")) for o in owners}
    if owner_kinds & TRAINING_OWNERS or "training.kubeflow.org/job-name" in labels:
        return "training_run"
    if owner_kinds & JOB_OWNERS:
        return "batch_job"
    serving = any(key in labels for key in SERVING_LABELS) or (
        labels.get("app.kubernetes.io/component", "").lower() in SERVING_COMPONENTS
    )
    if owner_kinds & SERVING_OWNERS and serving:
        return "inference_endpoint"
    return "pod"


def controller_name(
    name: str, labels: Mapping[str, str], owners: Sequence[Mapping[str, Any]]
) -> str:
    """The name of what runs the pod: Job, Deployment (ReplicaSet less its hash), StatefulSet."""
    for owner in owners:
        kind, owner_name = owner.get("kind"), owner.get("name")
        if not isinstance(owner_name, str) or not owner.get("controller", True):
            continue
        pod_hash = labels.get("pod-template-hash")
        if kind == "ReplicaSet" and pod_hash and owner_name.endswith(f"-{pod_hash}"):
            return owner_name[: -len(pod_hash) - 1]
        return owner_name
    return name


def gpu_request(spec: Mapping[str, Any], f: SourceFile, row: int) -> Fraction | None:
    """GPUs the pod holds: whole GPUs plus MIG slices as fractions; None when it asks for none."""
    main = [_container_gpus(c, f, row) for c in spec.get("containers") or []]
    init = [_container_gpus(c, f, row) for c in spec.get("initContainers") or []]
    total = max([sum(main, Fraction(0)), *init])
    return total if total > 0 else None


def _container_gpus(container: Mapping[str, Any], f: SourceFile, row: int) -> Fraction:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    total = Fraction(0)
    for resource in {*requests, *limits}:
        fraction = (
            Fraction(1) if resource == GPU_RESOURCE else mig.fraction_of_resource(str(resource))
        )
        if fraction is None:
            continue
        raw = requests.get(resource, limits.get(resource))
        try:
            count = int(str(raw))
        except ValueError:
            raise IngestError(
                f"{resource} must be a whole number of devices (got {raw!r})",
                path=str(f.path),
                row=row,
                column=f"containers[{container.get('name')}].resources",
            ) from None
        total += count * fraction
    return total


def capacity_type(selectors: Mapping[str, str]) -> str | None:
    """spot / on_demand from Karpenter, EKS and GKE node selectors."""
    raw = (
        selectors.get("karpenter.sh/capacity-type")
        or selectors.get("eks.amazonaws.com/capacityType")
        or ("spot" if selectors.get("cloud.google.com/gke-spot") == "true" else None)
        or ("spot" if selectors.get("cloud.google.com/gke-preemptible") == "true" else None)
    )
    if raw is None:
        return None
    return {"on-demand": "on_demand", "ondemand": "on_demand"}.get(raw.lower(), raw.lower())


def _end_time(status: Mapping[str, Any], f: SourceFile, row: int) -> dt.datetime | None:
    ends = []
    for c in status.get("containerStatuses") or []:
        terminated = (c.get("state") or {}).get("terminated") or {}
        finished = _time(terminated.get("finishedAt"), f, row, "containerStatuses.finishedAt")
        if finished is not None:
            ends.append(finished)
    return max(ends) if ends else None


def _gpu_seconds(
    gpus: Fraction | None, start: dt.datetime | None, end: dt.datetime | None
) -> float | None:
    if gpus is None or start is None or end is None:
        return None
    return float(gpus * Fraction((end - start).total_seconds()))


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _time(value: object, f: SourceFile, row: int, column: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise IngestError(
            f"expected an RFC 3339 time like 2025-03-01T10:00:00Z (got {value!r})",
            path=str(f.path),
            row=row,
            column=column,
        )
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def _mapping(obj: Mapping[str, Any], key: str, f: SourceFile, row: int) -> Mapping[str, Any]:
    value = obj.get(key) or {}
    if not isinstance(value, dict):
        raise IngestError(f"{key} is not an object", path=str(f.path), row=row, column=key)
    return value


def _first(values: Mapping[str, str], keys: Sequence[str]) -> str | None:
    return next((values[k] for k in keys if values.get(k)), None)
