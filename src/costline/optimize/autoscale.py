"""Autoscaling replay: an endpoint's real traffic through candidate policies, priced.

The traffic is the endpoint's requests per minute over the window: the `inference_requests`
metric labelled `endpoint` (summed per minute in the engine; a series sampled coarser than a
minute has each sample spread over its interval, `sample_step`). The cost of a replica is the
allocation's: the GPU dollars the endpoint's workloads (kind `inference_endpoint`; the
`endpoint` column, else the pod's `endpoint` or `app` label) held, per GPU-hour held, times the
GPUs a replica requests. The replicas running
today are the GPU-hours held over the window's hours, per replica.

A replica's capacity is what the endpoint served at its busiest: the 99th percentile minute's
requests over the replicas running on average (today's fleet met that peak). Each policy is
replayed minute by minute (`replay`): a fluid queue where replicas serve `capacity` requests a
minute, a new replica is ready `cold_start` minutes after it is asked for (and is paid from then),
the desired count is the requests waiting and arriving over `target` x capacity within
[`min`, `max`], scaling down waits `cooldown` minutes after the last change, and a policy with
`min` 0 goes to zero after `idle` minutes without requests. A request's queue wait is the
backlog ahead of it over the capacity serving it (a minute's requests wait the cold start when
no replica is up). The cheapest policy whose p95 queue wait stays within `WAIT_BUDGET_S` is
recommended, with the KEDA ScaledObject that implements it. Today's fixed fleet is the baseline.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import numpy as np

from costline.allocation.allocate import HELD_KINDS
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, recommendation

KIND = "autoscaling"
METRIC = "inference_requests"
WAIT_BUDGET_S = 2.0  # p95 queue wait a policy may add
COLD_START_MIN = 2  # a GPU model server's start: pull, load weights, warm up


@dataclass(frozen=True)
class Policy:
    name: str
    min: int
    max: int
    target: float  # share of capacity the scaler aims at
    cooldown: int  # minutes after a change before scaling down
    idle: int = 15  # minutes without requests before a min-0 policy goes to zero
    cold_start: int = COLD_START_MIN


@dataclass(frozen=True)
class Replay:
    policy: Policy
    replica_minutes: float  # paid, warming included
    p95_wait_s: float
    peak_replicas: int


def replay(arrivals: np.ndarray, capacity: float, p: Policy) -> Replay:
    """`p` over the requests per minute `arrivals` with `capacity` requests a minute a replica."""
    ready = p.min
    warming: list[int] = []  # the minute each new replica is ready
    backlog = 0.0
    since_change, quiet = 0, 0
    paid = 0.0
    waits: list[tuple[float, float]] = []
    peak = ready
    for t, a in enumerate(arrivals.tolist()):
        ready += len([w for w in warming if w <= t])
        warming = [w for w in warming if w > t]
        quiet = quiet + 1 if a == 0 else 0
        want = math.ceil((backlog + a) / (capacity * p.target)) if a + backlog > 0 else 0
        want = min(max(want, p.min, 1 if a + backlog > 0 else p.min), p.max)
        if want > ready + len(warming):
            warming += [t + p.cold_start] * (want - ready - len(warming))
            since_change = 0
        elif want < ready and since_change >= p.cooldown and (want > 0 or quiet >= p.idle):
            ready, since_change = want, 0
        since_change += 1
        served = min(backlog + a, ready * capacity)
        if a > 0:
            if ready == 0:
                wait = (min(warming) - t) * 60.0 if warming else p.cold_start * 60.0
            else:
                wait = backlog / (ready * capacity) * 60.0
            waits.append((wait, a))
        backlog = backlog + a - served
        paid += ready + len(warming)
        peak = max(peak, ready + len(warming))
    return Replay(p, paid, _p95(waits), peak)


def _p95(waits: list[tuple[float, float]]) -> float:
    """The wait 95% of requests did not exceed ((wait, requests) per minute)."""
    total = sum(n for _, n in waits)
    run = 0.0
    for wait, n in sorted(waits):
        run += n
        if run >= 0.95 * total:
            return wait
    return 0.0


def candidates(fleet: int, peak_needed: int) -> list[Policy]:
    """Today's fleet, and the scaling policies tried against it."""
    top = max(fleet, peak_needed) * 2
    return [
        Policy("fixed (today)", fleet, fleet, 1.0, 10**9),
        Policy("scale 1..N at 70%", 1, top, 0.7, 5),
        Policy("scale 1..N at 85%", 1, top, 0.85, 5),
        Policy("scale to zero after 15 min idle, 70%", 0, top, 0.7, 5, idle=15),
        Policy("scale to zero after 60 min idle, 70%", 0, top, 0.7, 5, idle=60),
    ]


def _traffic(inputs: Inputs) -> dict[str, np.ndarray]:
    """endpoint -> requests per minute over the window (zeros where none were recorded). A
    series sampled every `k` minutes (its most common gap: hourly rows, 5-minute scrapes) has
    each sample's requests spread evenly over the `k` minutes from its timestamp, so an hour's
    requests are not replayed as one minute's burst."""
    m = inputs.metrics
    if m is None:
        return {}
    m = m.filter(m.metric == METRIC, m.ts >= inputs.start, m.ts < inputs.end,
                 m.labels.get("endpoint").notnull())  # fmt: skip
    minute = (m.ts.epoch_seconds() // 60).cast("int64")
    t = m.group_by(endpoint=inputs.rules.value(m.labels.get("endpoint")), minute=minute).aggregate(
        n=m.value.sum()
    )
    minutes = int((inputs.end - inputs.start).total_seconds() // 60)
    first = int(inputs.start.timestamp()) // 60
    samples: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in fetch.rows(t):
        samples[r["endpoint"]].append((int(r["minute"]) - first, float(r["n"] or 0)))
    out = {}
    for endpoint, points in samples.items():
        points.sort()
        step = sample_step([i for i, _ in points])
        series = np.zeros(minutes)
        for i, n in points:
            span = series[max(i, 0) : min(i + step, minutes)]
            span += n / step
        out[endpoint] = series
    return out


def sample_step(minutes: list[int]) -> int:
    """The minutes between a series' samples: its most common gap (the shortest of the most
    common), 1 for a single sample."""
    gaps = Counter(b - a for a, b in itertools.pairwise(minutes) if b > a)
    if not gaps:
        return 1
    top = max(gaps.values())
    return min(g for g, n in gaps.items() if n == top)


def _held(inputs: Inputs) -> dict[str, dict[str, Any]]:
    """endpoint -> GPU-hours and dollars its workloads held, and GPUs per replica. A workload's
    endpoint is its `endpoint` column, else its endpoint tag (`endpoint`, `Endpoint` or `app`
    label, folded as the rules fold tags): no source fills the column for Kubernetes pods."""
    w = inputs.workloads
    endpoint = ibis.coalesce(inputs.rules.value(w.endpoint),
                             inputs.rules.tag(w, "endpoint", tags="tags"))  # fmt: skip
    w = w.mutate(ep=endpoint)
    w = w.filter(w.kind == "inference_endpoint", w.ep.notnull())
    w = w.select(workload_id=w.workload_id, ep=w.ep, gpus=w.gpus_requested.cast("float64"))
    rows = inputs.allocation.table()
    r = rows.filter(rows.kind.isin(list(HELD_KINDS)))
    j = r.join(w, r.holder == w.workload_id)
    t = j.group_by(endpoint=j.ep).aggregate(
        gpu_hours=j.gpu_seconds.sum() / 3600, usd=j.amount.sum(), gpus=j.gpus.mean()
    )
    return {x["endpoint"]: x for x in fetch.rows(t)}


def recommend_autoscaling(inputs: Inputs) -> list[Finding]:
    """One recommendation per endpoint whose traffic a scaling policy serves for less."""
    traffic = _traffic(inputs)
    held = _held(inputs) if traffic else {}
    hours = (inputs.end - inputs.start).total_seconds() / 3600
    out = []
    for endpoint, arrivals in sorted(traffic.items()):
        h = held.get(endpoint)
        if h is None or not h["gpu_hours"] or not arrivals.any():
            continue  # no cost known for it, or no traffic to replay
        per_replica = float(h["gpus"] or 1)
        fleet = max(round(float(h["gpu_hours"]) / per_replica / hours), 1)
        capacity = float(np.percentile(arrivals, 99)) / fleet
        if capacity <= 0:
            continue
        out.append(_finding(endpoint, arrivals, capacity, fleet, h, per_replica, inputs))
    return inputs.kept(out)


def _finding(
    endpoint: str, arrivals: np.ndarray, capacity: float, fleet: int, held: dict[str, Any],
    per_replica: float, inputs: Inputs,
) -> Finding | None:  # fmt: skip
    usd = Decimal(held["usd"])
    per_replica_minute = usd / Decimal(repr(float(held["gpu_hours"]) / per_replica * 60))
    peak = math.ceil(float(arrivals.max()) / capacity)
    runs = [replay(arrivals, capacity, p) for p in candidates(fleet, peak)]
    today = runs[0]
    fits = [r for r in runs[1:] if r.p95_wait_s <= WAIT_BUDGET_S]
    if not fits:
        return None
    best = min(fits, key=lambda r: (r.replica_minutes, r.policy.name))
    cost = Decimal(repr(today.replica_minutes)) * per_replica_minute * inputs.per_month
    new = Decimal(repr(best.replica_minutes)) * per_replica_minute * inputs.per_month
    if new >= cost:
        return None
    runner_up = sorted(r.replica_minutes for r in fits)[1:2]
    high = cost - new
    low = (
        high
        if not runner_up
        else min(high, cost - Decimal(repr(runner_up[0])) * per_replica_minute * inputs.per_month)
    )
    table = {r.policy.name: {"replica_hours": round(r.replica_minutes / 60, 1),
                             "p95_wait_s": round(r.p95_wait_s, 2), "peak": r.peak_replicas}
             for r in runs}  # fmt: skip
    p = best.policy
    return recommendation(
        kind=KIND,
        scope={"endpoint": endpoint},
        title=f"endpoint {endpoint}: {p.name} serves its traffic for "
        f"{float(1 - new / cost):.0%} less, p95 queue wait {best.p95_wait_s:.1f} s",
        summary=(
            f"{endpoint} ran {fleet} replica(s) all the time. Replaying its "
            f"{float(arrivals.sum()):,.0f} requests minute by minute, {p.name} (min {p.min}, max "
            f"{p.max}) keeps the p95 queue wait at {best.p95_wait_s:.1f} s (budget "
            f"{WAIT_BUDGET_S:.0f} s) with {best.replica_minutes / 60:,.0f} replica-hours instead of "
            f"{today.replica_minutes / 60:,.0f}."
        ),
        owner=None,
        current_monthly=cost,
        savings=Savings(high, min(low, high), high),
        method="minute-by-minute replay of the endpoint's requests through scaling policies",
        inputs={
            "replica_capacity_per_min": round(capacity, 2),
            "replicas_today": fleet,
            "gpus_per_replica": per_replica,
            "cold_start_min": p.cold_start,
            "wait_budget_s": WAIT_BUDGET_S,
            "policies": table,
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=float(np.count_nonzero(arrivals)) / len(arrivals),
        risk=f"medium: replica capacity inferred from the busiest minutes; a {p.cold_start}-minute "
        "cold start assumed",
        action="Apply a KEDA ScaledObject:\n" + scaled_object(endpoint, p, capacity),
        clock=inputs.clock,
    )


def scaled_object(endpoint: str, p: Policy, capacity: float) -> str:
    """The KEDA ScaledObject that implements policy `p` on the endpoint's request rate."""
    per_second = capacity * p.target / 60
    return "\n".join([
        "apiVersion: keda.sh/v1alpha1",
        "kind: ScaledObject",
        f"metadata: {{name: {endpoint}}}",
        "spec:",
        f"  scaleTargetRef: {{name: {endpoint}}}",
        f"  minReplicaCount: {p.min}",
        f"  maxReplicaCount: {p.max}",
        f"  cooldownPeriod: {p.idle * 60}",
        "  advanced:",
        "    horizontalPodAutoscalerConfig:",
        f"      behavior: {{scaleDown: {{stabilizationWindowSeconds: {p.cooldown * 60}}}}}",
        "  triggers:",
        "    - type: prometheus",
        "      metadata:",
        f"        query: sum(rate(inference_requests_total{{endpoint=\"{endpoint}\"}}[1m]))",
        f"        threshold: \"{per_second:.3g}\"",
    ])  # fmt: skip


__all__ = ["KIND", "Policy", "candidates", "recommend_autoscaling", "replay"]
