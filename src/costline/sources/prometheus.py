"""Prometheus as a source: DCGM GPU series into `gpu_samples`, kube-state-metrics into `workloads`.

Reads the HTTP API's `query_range` (an instant query only looks back 5 minutes). Instants lie on a
grid of `step` from the epoch, inside the half-open window `[start, end)`, so two pulls with the same
step evaluate the same instants. A request asks at most `MAX_POINTS` instants per series (Prometheus
refuses more than 11,000); longer windows are pulled in chunks and joined.

- `pull_dcgm` is incremental: the ledger keeps a watermark per URL and series set (the last instant
  that had data) and a pull starts after it, so pulling again writes nothing and a later end pulls
  only the new part. A window entirely before the watermark pulls nothing (no backfill behind it).
- `pull_kube_state_metrics` reads the window's pod state and writes one workload per pod, by the
  same rules as `kubectl get pods -o json` dumps (`sources.workloads.kubernetes`: `workload_id`
  `namespace/pod`, kind, controller name, MIG slices as fractions of a GPU), reading each pod's
  latest state in the window. A pod pulled again replaces its earlier row when the pull is at
  least as new (`observed_at` is the window's last instant; `SourceBatch.newest_by`): an older
  window pulled later changes nothing a newer pull or kubectl dump said. A pull whose rows equal
  an earlier pull's is a duplicate by fingerprint. `end` is `kube_pod_completion_time`, else, for a pod
  that stopped being reported before the window's last instant, that last instant (status
  `deleted`). Tags are the pod labels as kube-state-metrics sanitises them (`label_` stripped),
  plus `mig_profile` and `mig_slices` when the pod requests MIG slices.

The HTTP client is injected (`client=`): tests hand in an `httpx.Client` with a mock transport.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import httpx

from costline.errors import IngestError
from costline.sources.workloads import mig
from costline.sources.workloads.kinds import KIND_KEYS, OWNER_KEYS, owner_from_labels
from costline.sources.workloads.kubernetes import SERVING_LABELS, classify, controller_name

SOURCE = "prometheus"
MAX_POINTS = 11_000
DCGM_SERIES = (
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_SM_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "DCGM_FI_PROF_DRAM_ACTIVE",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_POWER_USAGE",
)
MICROS = 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RangeSeries:
    """One series of a `query_range` matrix: its labels and (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Grid:
    """The instants a pull evaluates: `first`, `first + step`, ..., `last` (microseconds)."""

    first_us: int
    last_us: int
    step_us: int

    @property
    def instants(self) -> int:
        return (self.last_us - self.first_us) // self.step_us + 1

    def chunks(self, max_points: int) -> Iterator[Grid]:
        span = (max_points - 1) * self.step_us
        start = self.first_us
        while start <= self.last_us:
            end = min(start + span, self.last_us)
            yield Grid(start, end, self.step_us)
            start = end + self.step_us


def _us(ts: dt.datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds


def from_micros(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def grid(
    start: dt.datetime, end: dt.datetime, step: dt.timedelta, *, after: dt.datetime | None = None
) -> Grid | None:
    """The step-aligned instants in `[start, end)`, strictly after `after`; None when there are none."""
    step_us = round(step.total_seconds() * MICROS)
    if step_us <= 0:
        raise IngestError(f"step must be positive, got {step}")
    lower = _us(start)
    if after is not None:
        lower = max(lower, _us(after) + 1)
    first = -(-lower // step_us) * step_us
    end_us = _us(end)
    if first >= end_us:
        return None
    return Grid(first, first + ((end_us - 1 - first) // step_us) * step_us, step_us)


class PrometheusClient:
    """The Prometheus HTTP API's `query_range`, chunked so no request exceeds `max_points`."""

    def __init__(
        self, url: str, client: httpx.Client | None = None, *, max_points: int = MAX_POINTS
    ) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(timeout=60.0)
        self.max_points = max_points

    def query_range(self, query: str, window: Grid) -> list[RangeSeries]:
        """The matrix of `query` over `window`, chunks joined per series (by labels)."""
        joined: dict[frozenset[tuple[str, str]], RangeSeries] = {}
        for chunk in window.chunks(self.max_points):
            for item in self._request(query, chunk):
                labels = {str(k): str(v) for k, v in item.get("metric", {}).items()}
                series = joined.setdefault(frozenset(labels.items()), RangeSeries(labels, []))
                series.points.extend((float(t), float(v)) for t, v in item.get("values", []))
        return list(joined.values())

    def _request(self, query: str, chunk: Grid) -> list[dict[str, Any]]:
        params = {
            "query": query,
            "start": f"{chunk.first_us / MICROS:.6f}",
            "end": f"{chunk.last_us / MICROS:.6f}",
            "step": f"{chunk.step_us / MICROS:g}",
        }
        where = f"{self.url}/api/v1/query_range"
        try:
            response = self._client.get(where, params=params)
        except httpx.HTTPError as exc:
            raise IngestError(f"Prometheus did not answer: {exc}", path=self.url) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            why = body.get("error") or response.text[:200]
            raise IngestError(
                f"query_range {query!r} failed (HTTP {response.status_code}): {why}", path=self.url
            )
        data = body.get("data", {})
        if data.get("resultType") != "matrix":
            raise IngestError(f"query_range {query!r} returned no matrix", path=self.url)
        result: list[dict[str, Any]] = data.get("result", [])
        return result


def dcgm_watermark_key(url: str, series: Sequence[str] = DCGM_SERIES) -> str:
    digest = hashlib.sha256(",".join(sorted(series)).encode()).hexdigest()[:12]
    return f"{url.rstrip('/')} dcgm:{digest}"


# -- kube-state-metrics ------------------------------------------------------------------------

KSM_QUERIES = {
    "info": "kube_pod_info",
    "labels": "kube_pod_labels",
    "requests": 'kube_pod_container_resource_requests{resource=~"nvidia_com_gpu|nvidia_com_mig_.+"}',
    "start": "kube_pod_start_time",
    "completion": "kube_pod_completion_time",
    "phase": "kube_pod_status_phase == 1",
    "owner": "kube_pod_owner",
}
TERMINAL_PHASES = ("succeeded", "failed")
_MIG_RESOURCE = re.compile(r"nvidia_com_mig_(\d+)g_(\d+)gb(_me)?")
# Label keys the Kubernetes rules read, by their original spelling: kube-state-metrics sanitises
# `app.kubernetes.io/component` to `label_app_kubernetes_io_component`, and the rules are written
# for the original. Other labels stay as kube-state-metrics spells them (`label_` stripped).
RULE_LABELS = (
    *KIND_KEYS,
    *OWNER_KEYS,
    *SERVING_LABELS,
    "app.kubernetes.io/component",
    "training.kubeflow.org/job-name",
    "pod-template-hash",
    "user",
    "created-by",
)


def sanitized(label: str) -> str:
    """A Kubernetes label key as kube-state-metrics writes it (`label_` prefix not included)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def original_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """`tags` plus the original spelling of every key in `RULE_LABELS` found sanitised in them."""
    found = {key: tags[sanitized(key)] for key in RULE_LABELS if sanitized(key) in tags}
    return {**tags, **found}


def mig_profile(resource: str) -> str | None:
    """`nvidia_com_mig_3g_40gb` (kube-state-metrics) -> `3g.40gb`; None for other resources."""
    match = _MIG_RESOURCE.fullmatch(resource)
    if match is None:
        return None
    return f"{match.group(1)}g.{match.group(2)}gb" + ("+me" if match.group(3) else "")


@dataclass
class PodState:
    """What the window says about one pod: the latest value of each series."""

    namespace: str
    pod: str
    node: str | None = None
    first_seen_us: int | None = None
    last_seen_us: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    gpus: Fraction = Fraction(0)
    mig_profiles: dict[str, int] = field(default_factory=dict)
    start_s: float | None = None
    completion_s: float | None = None
    phase: tuple[int, str] | None = None  # (instant, phase)
    owner_kind: str | None = None
    owner_name: str | None = None

    def add_request(self, resource: str, value: float) -> None:
        """A container's request of whole GPUs, or of MIG slices (as fractions of a GPU)."""
        if resource == "nvidia_com_gpu":
            self.gpus += Fraction(str(value))
            return
        profile = mig_profile(resource)
        fraction = mig.fraction_of_profile(profile) if profile else None
        if profile is None or fraction is None:
            return
        self.mig_profiles[profile] = self.mig_profiles.get(profile, 0) + int(value)
        self.gpus += int(value) * fraction


def _last(series: RangeSeries) -> tuple[int, float]:
    t, v = max(series.points)
    return round(t * MICROS), v


def _apply(pods: dict[tuple[str, str], PodState], what: str, series: RangeSeries) -> None:
    labels = series.labels
    ns, name = labels.get("namespace"), labels.get("pod")
    if not ns or not name or not series.points:
        return
    state = pods.setdefault((ns, name), PodState(ns, name))
    t, v = _last(series)
    if what == "info":
        first = round(min(series.points)[0] * MICROS)
        state.first_seen_us = min(first, state.first_seen_us or first)
        state.last_seen_us = max(t, state.last_seen_us or t)
        state.node = labels.get("node") or state.node
        state.owner_kind = state.owner_kind or labels.get("created_by_kind")
        state.owner_name = state.owner_name or labels.get("created_by_name")
    elif what == "labels":
        state.tags.update({k[6:]: val for k, val in labels.items() if k.startswith("label_")})
    elif what == "requests":
        state.add_request(labels.get("resource", ""), v)
    elif what == "start":
        state.start_s = v
    elif what == "completion":
        state.completion_s = v
    elif what == "phase" and (state.phase is None or t >= state.phase[0]):
        state.phase = (t, labels.get("phase", "Unknown").lower())
    elif what == "owner" and labels.get("owner_kind") not in (None, "", "<none>"):
        state.owner_kind, state.owner_name = labels["owner_kind"], labels.get("owner_name")


def _span(state: PodState, last_instant_us: int) -> tuple[float | None, float | None, str | None]:
    """Start and end (unix seconds) and status; a pod gone before the window's end ended then."""
    phase = state.phase[1] if state.phase else None
    start = state.start_s
    if start is None and state.first_seen_us is not None:
        start = state.first_seen_us / MICROS
    end, status = state.completion_s, phase
    gone = state.last_seen_us is not None and state.last_seen_us < last_instant_us
    if end is None and gone and phase not in TERMINAL_PHASES:
        end, status = (state.last_seen_us or 0) / MICROS, "deleted"
    return start, end, status


def _workload_row(state: PodState, last_instant_us: int) -> dict[str, Any]:
    labels = original_labels(state.tags)
    owners = [{"kind": state.owner_kind, "name": state.owner_name, "controller": True}]
    owners = owners if state.owner_kind else []
    start, end, status = _span(state, last_instant_us)
    tags = dict(state.tags)
    if state.mig_profiles:
        tags["mig_profile"] = ",".join(sorted(state.mig_profiles))
        tags["mig_slices"] = str(sum(state.mig_profiles.values()))
    gpus = state.gpus if state.gpus > 0 else None
    return {
        "workload_id": f"{state.namespace}/{state.pod}",
        "kind": classify(state.pod, labels, owners),
        "name": controller_name(state.pod, labels, owners),
        "tags": tags or None,
        "start": None if start is None else from_micros(round(start * MICROS)),
        "end": None if end is None else from_micros(round(end * MICROS)),
        "gpus_requested": gpus,
        "gpu_seconds": None
        if gpus is None or start is None or end is None
        else float(gpus) * (end - start),
        "status": status,
        "source": "kube-state-metrics",
        "namespace": state.namespace,
        "node": state.node,
        "owner": owner_from_labels(labels),
        "user": labels.get("user") or labels.get("created-by"),
    }


def kube_state_workloads(prom: PrometheusClient, window: Grid) -> list[dict[str, Any]]:
    """One workload row per pod seen in `window`, from its latest kube-state-metrics state."""
    pods: dict[tuple[str, str], PodState] = {}
    for what, query in KSM_QUERIES.items():
        for series in prom.query_range(query, window):
            _apply(pods, what, series)
    rows = [_workload_row(s, window.last_us) for s in pods.values()]
    return sorted(rows, key=lambda r: str(r["workload_id"]))
