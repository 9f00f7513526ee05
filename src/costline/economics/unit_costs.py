"""Unit economics of a period: what a request, a token, a GPU-hour and a training run cost.

LLM API units come from `llm_requests` (priced at ingest, unpriced calls counted apart, never as
zero); what an app's calls bought, from the outcome metrics the user ingests (`outcomes`): cost
per successful request, per accepted answer, per resolved ticket. GPU units come from the period's allocation (docs/methodology/allocation.md), so a
training run's cost is the GPU-time it held at its hosts' real hourly cost. Each figure is
compared with the period just before it (same length): `change_pct`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.allocation.allocate import (
    GPU_HELD_IDLE,
    GPU_SCHEDULED,
    GPU_UNHELD,
    HELD_KINDS,
    SHARED,
    Allocation,
)
from costline.allocation.gpu import holder
from costline.allocation.idle import pool_rows
from costline.allocation.split import split
from costline.config import BusinessUnit
from costline.economics.outcomes import Outcome, same_model
from costline.ledger import fetch
from costline.money import MONEY_CONTEXT

THOUSAND = Decimal(1000)
MONEY_QUANTUM = Decimal("1e-18")


def per(
    cost: Decimal | None, units: float | int | None, scale: Decimal = Decimal(1)
) -> Decimal | None:
    if cost is None or not units:
        return None
    exact = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(Decimal(cost), scale), Decimal(units))
    return exact.quantize(MONEY_QUANTUM, context=MONEY_CONTEXT)  # the ledger's 18 places


def _change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    if now is None or not before:
        return None
    return ((Decimal(now) - Decimal(before)) / abs(Decimal(before)) * 100).quantize(Decimal("0.1"))


def llm_totals(requests: ibis.Table, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Per model and app over `[start, end)`: requests, successes (by status), tokens, cost and
    unpriced requests; one engine query that `llm_units` and `llm_outcomes` both read."""
    r = requests.filter(requests.ts >= start, requests.ts < end)
    n = r.requests.fill_null(1)
    ok = r.status.isnull() | r.status.lower().isin(
        ["ok", "success", "succeeded", "200", "completed"]
    )
    return fetch.rows(
        r.group_by(["model", "app"]).aggregate(
            requests=n.sum(),
            successes=n.sum(where=ok),
            input_tokens=r.input_tokens.sum(),
            cached_input_tokens=r.cached_input_tokens.sum(),
            output_tokens=r.output_tokens.sum(),
            cost_usd=r.cost_usd.sum(),
            output_cost=r.output_cost_usd.sum(),
            priced_input_tokens=r.input_tokens.sum(where=r.cost_usd.notnull()),
            priced_output_tokens=r.output_tokens.sum(where=r.cost_usd.notnull()),
            unpriced=n.sum(where=r.cost_usd.isnull()),
        )
    )


def llm_units(
    requests: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    totals: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Per model and app: requests, success rate, tokens, cost, cost per 1K requests, per
    successful request, per 1K tokens, per 1K input tokens (fresh, cached and cache-write input at
    their prices, with any per-request fee) and per 1K output tokens, cache-hit rate, average
    context; unpriced calls counted apart and left out of the per-token rates. `totals`: the
    window's `llm_totals`, when already read."""
    rows = llm_totals(requests, start, end) if totals is None else totals
    out = []
    for row in rows:
        tokens = (row["input_tokens"] or 0) + (row["output_tokens"] or 0)
        input_cost = (
            MONEY_CONTEXT.subtract(row["cost_usd"], row["output_cost"] or Decimal(0))
            if row["cost_usd"] is not None
            else None
        )
        out.append(
            {
                "model": row["model"],
                "app": row["app"],
                "requests": row["requests"],
                "success_pct": round(100 * (row["successes"] or 0) / row["requests"], 2) if row["requests"] else None,
                "input_tokens": row["input_tokens"],
                "output_tokens": row["output_tokens"],
                "cache_hit_pct": round(100 * (row["cached_input_tokens"] or 0) / row["input_tokens"], 2)
                if row["input_tokens"] else None,
                "avg_input_tokens": round((row["input_tokens"] or 0) / row["requests"], 1) if row["requests"] else None,
                "cost_usd": row["cost_usd"],
                "per_1k_requests_usd": per(row["cost_usd"], row["requests"], THOUSAND),
                "per_success_usd": per(row["cost_usd"], row["successes"]),
                "per_1k_tokens_usd": per(row["cost_usd"], tokens, THOUSAND),
                "per_1k_input_usd": per(input_cost, row["priced_input_tokens"], THOUSAND),
                "per_1k_output_usd": per(row["output_cost"], row["priced_output_tokens"], THOUSAND),
                "unpriced_requests": row["unpriced"],
            }
        )  # fmt: skip
    return sorted(out, key=lambda x: -(x["cost_usd"] or 0))


SUCCESSFUL_REQUESTS = "successful_requests"  # the outcome every app has: calls that succeeded


def llm_outcomes(
    totals: Sequence[Mapping[str, Any]], found: Sequence[Outcome]
) -> list[dict[str, Any]]:
    """Cost per valuable output, per app: per successful request (by status, every app), and per
    outcome of each outcome metric labelled with the app (`economics.outcomes`: accepted answers,
    resolved tickets, passed evals), over the LLM cost of the app's requests, or of the model's
    requests in the app when the metric names a model. A rate metric's outcomes are its mean
    rate times those requests; points of several tasks add up (counts) or average (rates)."""
    by_app: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in totals:
        if row["app"] is not None:
            by_app[row["app"]].append(row)
    out = [_outcome_row(app, None, SUCCESSFUL_REQUESTS, "status", rows,
                        sum(r["successes"] or 0 for r in rows))
           for app, rows in by_app.items()]  # fmt: skip
    merged: dict[tuple[str, str | None, str], list[Outcome]] = defaultdict(list)
    for o in found:
        merged[(o.app, o.model, o.metric)].append(o)
    for (app, model, metric), parts in merged.items():
        rows = [r for r in by_app.get(app, []) if model is None or same_model(model, r["model"])]
        if not rows:
            continue  # outcomes of an app (or model) with no LLM traffic in the window
        n = sum(r["requests"] or 0 for r in rows)
        rate = parts[0].rate
        count = (math.fsum(p.value for p in parts) / len(parts) * n if rate
                 else math.fsum(p.value for p in parts))  # fmt: skip
        out.append(_outcome_row(app, model, metric, "rate" if rate else "count", rows, count))
    return sorted(out, key=lambda x: (-(x["cost_usd"] or 0), x["app"], x["outcome"]))


def _outcome_row(app: str, model: str | None, outcome: str, source: str,
                 rows: Sequence[Mapping[str, Any]], count: float) -> dict[str, Any]:  # fmt: skip
    requests = sum(r["requests"] or 0 for r in rows)
    priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    cost = sum(priced, Decimal(0)) if priced else None
    return {
        "app": app,
        "model": model,
        "outcome": outcome,
        "source": source,
        "outcomes": int(count) if float(count).is_integer() else round(count, 2),
        "requests": requests,
        "outcome_pct": round(100 * count / requests, 2) if requests else None,
        "cost_usd": cost,
        "per_outcome_usd": per(cost, count),
        "unpriced_requests": sum(r["unpriced"] or 0 for r in rows),
    }


def gpu_units(
    allocation: Allocation, workloads: ibis.Table, samples: ibis.Table
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per workload (training runs, endpoints, notebooks, batch jobs) and per pool.

    A workload: GPU-hours held, its allocated GPU cost, its share of the control plane
    (orchestration, by GPU-time), their sum (`cost_usd`: a training run's cost), cost per
    GPU-hour, share of its time held idle, and SM-active efficiency weighted by GPU-time held. A pool: its GPU cost, the share that
    was idle (unheld) and held idle.
    """
    rows = allocation.rows.to_pylist()
    by_holder: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"seconds": [], "idle": [], "scheduled": [], "cost": Decimal(0)}
    )
    for r in rows:
        if r["kind"] in HELD_KINDS and r["holder"]:
            h = by_holder[r["holder"]]
            h["seconds"].append(r["gpu_seconds"])
            h["cost"] = MONEY_CONTEXT.add(h["cost"], r["amount"])
            h["team"] = r["team"]
            if r["kind"] == GPU_HELD_IDLE:
                h["idle"].append(r["gpu_seconds"])
            if r["kind"] == GPU_SCHEDULED:
                h["scheduled"].append(r["gpu_seconds"])
    for h in by_holder.values():  # exact float sums: the same whatever order the rows come in
        for k in ("seconds", "idle", "scheduled"):
            h[k] = math.fsum(h[k])
    # Orchestration: the period's control-plane cost (EKS, AKS, GKE, ...), shared by the GPU
    # workloads in proportion to the GPU-time they held.
    control = sum((r["amount"] for r in rows if r["cost_layer"] == "control_plane"), Decimal(0))
    holders = [w for w, h in by_holder.items() if h["seconds"] > 0]
    weights = [Decimal(repr(by_holder[w]["seconds"])) for w in holders]
    shares = dict(zip(holders, split(control, weights), strict=True)) if holders and control else {}
    kinds = _kinds(workloads, list(by_holder))
    efficiency = _efficiency(samples, allocation.start, allocation.end)
    per_workload = [
        {
            "workload": wid,
            "kind": kinds.get(wid),
            "team": h.get("team"),
            "gpu_hours": round(h["seconds"] / 3600, 2),
            "gpu_cost_usd": h["cost"],
            "orchestration_usd": shares.get(wid, Decimal(0)),
            "cost_usd": MONEY_CONTEXT.add(h["cost"], shares.get(wid, Decimal(0))),
            "per_gpu_hour_usd": per(h["cost"], h["seconds"], Decimal(3600)),
            "held_idle_pct": round(100 * h["idle"] / h["seconds"], 1) if h["seconds"] else None,
            "sm_active_pct": efficiency.get(wid),
            "telemetry_gpu_hours": round((h["seconds"] - h["scheduled"]) / 3600, 2),
            "coverage_pct": coverage_pct(h["seconds"] - h["scheduled"], h["seconds"]),
        }
        for wid, h in by_holder.items()
    ]
    per_pool = [
        {
            "pool": p["pool"],
            "gpus": p["gpus"],
            "gpu_cost_usd": p["gpu_cost_usd"],
            "unheld_gpu_hours": round(p["unheld_gpu_hours"], 2),
            "unheld_idle_usd": p["unheld_idle_usd"],
            "unheld_idle_pct": _pct(p["unheld_idle_usd"], p["gpu_cost_usd"]),
            "held_idle_gpu_hours": round(p["held_idle_gpu_hours"], 2),
            "held_idle_usd": p["held_idle_usd"],
            "held_idle_pct": _pct(p["held_idle_usd"], p["gpu_cost_usd"]),
            "idle_usd": p["idle_usd"],
        }
        for p in pool_rows(allocation)
    ]
    return (
        sorted(per_workload, key=lambda x: -x["cost_usd"]),
        sorted(per_pool, key=lambda x: -x["gpu_cost_usd"]),
    )


def coverage_pct(telemetry: float, held: float) -> float | None:
    """The share of GPU-time held that telemetry backs (the rest: the workload's schedule), both
    in the same unit (seconds or hours)."""
    return round(100 * max(telemetry, 0.0) / held, 1) if held else None


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(Decimal("0.1")) if whole else None


def _kinds(workloads: ibis.Table, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    wanted = ibis.memtable(pa.table({"wid": pa.array(list(ids), pa.string())}))  # not via pandas
    w = workloads.semi_join(wanted, workloads.workload_id == wanted.wid)
    return {r["workload_id"]: r["kind"] for r in fetch.rows(w.select("workload_id", "kind"))}


def _efficiency(samples: ibis.Table, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """SM-active (else GR-engine-active) percent per holder, weighted by the GPU-time it held."""
    s = samples.filter(samples.ts >= start, samples.ts < end)
    s = s.mutate(who=holder(s), w=s.sample_seconds * s.time_slice_share.fill_null(1.0),
                 a=ibis.coalesce(s.sm_active, s.gr_engine_active))  # fmt: skip
    s = s.filter(s.who.notnull() & s.a.notnull())
    agg = s.group_by("who").aggregate(num=(s.a * s.w).sum(), den=s.w.sum())
    return {r["who"]: round(100 * r["num"] / r["den"], 1) for r in fetch.rows(agg) if r["den"]}


def business_units(
    allocation: Allocation, metrics: ibis.Table, units: Sequence[BusinessUnit]
) -> list[dict[str, Any]]:
    """Cost per configured business unit (see `costline.config.BusinessUnit`)."""
    rows = [r for r in allocation.rows.to_pylist() if r["kind"] not in (GPU_UNHELD, SHARED)]
    out = []
    for unit in units:
        cost = sum((r["amount"] for r in rows if unit.scope.matches(r)), Decimal(0))
        m = metrics.filter(
            metrics.metric == unit.metric,
            metrics.ts >= allocation.start,
            metrics.ts < allocation.end,
        )
        for key, value in unit.labels.items():
            m = m.filter(m.labels.get(key) == value)
        count = fetch.value(m.value.sum()) or 0.0
        out.append(
            {
                "unit": unit.name,
                "scope": str(unit.scope),
                "units": count,
                "cost_usd": cost,
                "per_unit_usd": per(cost, count),
            }
        )
    return out


def compare(
    now: Sequence[Mapping[str, Any]],
    before: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    value: str,
) -> list[dict[str, Any]]:
    """`now` with `change_pct` of `value` against the row of `before` with the same `keys`."""
    earlier = {tuple(r[k] for k in keys): r.get(value) for r in before}
    return [
        {**r, "change_pct": _change(r.get(value), earlier.get(tuple(r[k] for k in keys)))}
        for r in now
    ]


def unit_costs(
    run: Callable[[dt.datetime, dt.datetime], dict[str, list[dict[str, Any]]]],
    period: tuple[dt.datetime, dt.datetime],
    previous: tuple[dt.datetime, dt.datetime],
) -> dict[str, list[dict[str, Any]]]:
    """`run(start, end)` for the period and the previous one, with `change_pct` filled in."""
    now = run(*period)
    before = run(*previous)
    keys = {"llm": (["model", "app"], "per_1k_requests_usd"), "workloads": (["workload"], "cost_usd"),
            "llm_outcomes": (["app", "model", "outcome"], "per_outcome_usd"),
            "pools": (["pool"], "gpu_cost_usd"), "business_units": (["unit"], "per_unit_usd"),
            "declared": (["name"], "cost_usd")}  # fmt: skip
    return {
        name: compare(rows, before.get(name, []), *keys[name]) if name in keys else rows
        for name, rows in now.items()
    }
