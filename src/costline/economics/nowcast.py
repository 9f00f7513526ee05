"""Nowcast: what the last hours cost before the invoice lands, and how far off that was.

GPU hosts: every hour a host reported telemetry costs its GPUs x the host's **effective rate per
GPU-hour**, learned from its own billed lines in the `lookback` before the window (so the estimate
of a day never sees that day's bill); a host with no bill yet takes the average rate of its GPU
model. LLM APIs: the requests' own token prices (`llm_requests.cost_usd`, priced at ingest; unpriced
calls are counted, never zero). `reconcile` puts the GPU estimate beside the billed cost of the same
hosts, per day and provider, once the bill is in the ledger.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.allocate import COST_COLUMNS, CostColumn
from costline.allocation.gpu import gpus_by_host, with_host
from costline.ledger import fetch
from costline.money import MONEY_CONTEXT

RATE_PLACES = Decimal("1e-6")


def _host_lines(lines: ibis.Table, hosts: ibis.Table) -> ibis.Table:
    """Lines of GPU hosts, with `host` (see `costline.allocation.gpu.with_host`)."""
    joined = with_host(lines, hosts)
    return joined.filter(joined.host.notnull())


def rates(
    lines: ibis.Table, samples: ibis.Table, start: dt.datetime, end: dt.datetime,
    *, lookback: dt.timedelta = dt.timedelta(days=7), cost: CostColumn = "effective",
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """host -> provider, gpus, gpu_model and rate_per_gpu_hour (None: no bill in the lookback)."""
    hosts = gpus_by_host(samples, start, end)
    known = {r["host"]: {**r, "provider": None, "rate": None} for r in fetch.rows(hosts)}
    past = lines.filter(
        lines.ChargePeriodStart >= start - lookback, lines.ChargePeriodStart < start
    )
    billed = _host_lines(past, hosts)
    seconds = billed.ChargePeriodEnd.epoch_seconds() - billed.ChargePeriodStart.epoch_seconds()
    agg = billed.group_by("host").aggregate(
        cost=billed[COST_COLUMNS[cost]].sum(), hours=(seconds / 3600).sum(), provider=billed.ProviderName.arbitrary()
    )  # fmt: skip
    for r in fetch.rows(agg):
        info = known[r["host"]]
        info["provider"] = r["provider"]
        if r["hours"] and info["gpus"] and r["cost"] is not None:
            per = MONEY_CONTEXT.divide(Decimal(r["cost"]), Decimal(repr(r["hours"])) * info["gpus"])
            info["rate"] = per.quantize(RATE_PLACES)
    by_model: dict[str, list[Decimal]] = {}
    for info in known.values():
        if info["rate"] is not None:
            by_model.setdefault(info["gpu_model"], []).append(info["rate"])
    for info in known.values():
        info["estimated_rate"] = info["rate"] is None
        same_model = by_model.get(info["gpu_model"])
        if info["rate"] is None and same_model:
            info["rate"] = (sum(same_model, Decimal(0)) / len(same_model)).quantize(RATE_PLACES)
    return known


def nowcast(
    lines: ibis.Table, samples: ibis.Table, requests: ibis.Table, start: dt.datetime, end: dt.datetime,
    *, lookback: dt.timedelta = dt.timedelta(days=7), cost: CostColumn = "effective",
) -> list[dict[str, Any]]:  # fmt: skip
    """Estimated cost per day, provider and source (`gpu`, `tokens`) in [start, end)."""
    host_rates = rates(lines, samples, start, end, lookback=lookback, cost=cost)
    s = samples.filter(samples.ts >= start, samples.ts < end, samples.host.notnull())
    hours = fetch.rows(s.group_by(["host", s.ts.truncate("h").name("hour")]).aggregate())
    out: dict[tuple[dt.date, str, str], dict[str, Any]] = {}
    for r in hours:
        info = host_rates[r["host"]]
        key = (r["hour"].date(), info["provider"] or "(unknown)", "gpu")
        row = out.setdefault(key, {"estimate_usd": Decimal(0), "gpu_hours": 0, "unpriced": 0})
        if info["rate"] is None:
            row["unpriced"] += 1
            continue
        row["estimate_usd"] = MONEY_CONTEXT.add(row["estimate_usd"], info["rate"] * info["gpus"])
        row["gpu_hours"] += info["gpus"]
    q = requests.filter(requests.ts >= start, requests.ts < end)
    tokens = q.group_by([q.ts.date().name("day"), "provider"]).aggregate(
        cost=q.cost_usd.sum(), unpriced=q.requests.fill_null(1).sum(where=q.cost_usd.isnull())
    )
    for r in fetch.rows(tokens):
        out[(r["day"], r["provider"] or "(unknown)", "tokens")] = {
            "estimate_usd": r["cost"] or Decimal(0),
            "gpu_hours": 0,
            "unpriced": r["unpriced"] or 0,
        }
    return [
        {"day": day, "provider": provider, "source": source, **values}
        for (day, provider, source), values in sorted(out.items())
    ]


def reconcile(
    lines: ibis.Table, samples: ibis.Table, requests: ibis.Table, start: dt.datetime, end: dt.datetime,
    *, lookback: dt.timedelta = dt.timedelta(days=7), cost: CostColumn = "effective",
) -> list[dict[str, Any]]:  # fmt: skip
    """Per day and provider: the GPU nowcast beside the billed cost of the same hosts."""
    estimates = [
        r for r in nowcast(lines, samples, requests, start, end, lookback=lookback, cost=cost)
        if r["source"] == "gpu"
    ]  # fmt: skip
    hosts = gpus_by_host(samples, start, end)
    period = lines.filter(lines.ChargePeriodStart >= start, lines.ChargePeriodStart < end)
    billed = _host_lines(period, hosts)
    # Only the hours the estimate covered: a host's bill for hours without telemetry is not a miss.
    s = samples.filter(samples.ts >= start, samples.ts < end, samples.host.notnull())
    seen = s.select(seen_host=s.host, hour=s.ts.truncate("h")).distinct()
    billed = billed.semi_join(
        seen, [billed.host == seen.seen_host, billed.ChargePeriodStart == seen.hour]
    )
    by_day = billed.group_by(
        [billed.ChargePeriodStart.date().name("day"), billed.ProviderName.name("provider")]
    ).aggregate(billed=billed[COST_COLUMNS[cost]].sum())
    actual = {(r["day"], r["provider"]): r["billed"] for r in fetch.rows(by_day)}
    out = []
    for r in estimates:
        bill = actual.get((r["day"], r["provider"]))
        error = None if bill is None else MONEY_CONTEXT.subtract(r["estimate_usd"], Decimal(bill))
        out.append(
            {
                "day": r["day"],
                "provider": r["provider"],
                "estimate_usd": r["estimate_usd"],
                "billed_usd": bill,
                "error_usd": error,
                "error_pct": (error / Decimal(bill) * 100).quantize(Decimal("0.01"))
                if bill and error is not None
                else None,
                "gpu_hours": r["gpu_hours"],
            }
        )
    return out
