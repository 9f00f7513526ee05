"""The API's telemetry views: GPU utilization and idle cost per pool, and LLM tokens.

Like `server.queries` (whose window and helpers these share): Ibis in, plain dicts out. These read
`gpu_samples` and `llm_requests`, which run ahead of the invoice, so their default window is the
month of the later of the last bill and the table's own last record. Filters a table has no column
for are listed in `ignored_filters`, never silently dropped; every LLM request is on the `tokens`
cost layer. Idle cost comes from the allocation of the window's bills
(docs/methodology/allocation.md): GPUs nobody held, and GPUs held but idle.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import ibis

from costline.attribution.rules import derive_requests
from costline.ledger.sql import run_one
from costline.model import Selector
from costline.server.filters import Filters, Span, choice, resolve
from costline.server.queries import last_bill_day, window
from costline.server.reader import NONE_KEY, ZERO, Reader

LLM_COLUMNS = {d: d for d in ("team", "project", "environment", "model", "provider", "region")}
TOKENS_BY = ("model", "app", "team", "provider")
MAX_HEATMAP_ROWS = 200


def _telemetry_window(reader: Reader, filters: Filters, table: str) -> Span:
    """The filters' days; by default the month of the later of the last bill and the table's
    last record (telemetry runs ahead of the invoice)."""
    if filters.start is not None or filters.end is not None:
        return window(reader, filters)

    def ask() -> dt.date | None:
        row = run_one(reader.cursor(), f"SELECT max(ts) FROM {table}")  # a table we name
        return row[0].date() if row and row[0] is not None else None

    seen = reader.cached("last_ts", table, ask)
    bills = last_bill_day(reader)
    last = max((d for d in (seen, bills) if d is not None), default=None)
    return resolve(filters, last, reader.clock.now().date())


def _narrowed(
    t: ibis.Table, selector: Selector, columns: Mapping[str, str]
) -> tuple[ibis.Table, list[str]]:
    """`t` within the selector's dimensions it has columns for; the others, to report."""
    ignored = []
    for dimension, accepted in selector.root.items():
        column = columns.get(dimension)
        if column is None:
            ignored.append(dimension)
        else:
            t = t.filter(t[column].isin(list(accepted)))
    return t, ignored


def _requests(reader: Reader, filters: Filters) -> tuple[ibis.Table, Span, list[str]]:
    span = _telemetry_window(reader, filters, "llm_requests")
    start, end = span.at()
    t = derive_requests(reader.table("llm_requests"), reader.rules)  # models named as on bills
    t, ignored = _narrowed(t.filter(t.ts >= start, t.ts < end), filters.selector, LLM_COLUMNS)
    if "cost_layer" in ignored:  # every LLM request is on the tokens layer
        ignored.remove("cost_layer")
        if "tokens" not in filters.selector.values("cost_layer"):
            t = t.filter(ibis.literal(False))
    return t, span, ignored


def tokens(reader: Reader, filters: Filters, *, by: str = "model") -> dict[str, Any]:
    """Requests, tokens, cost, cost per 1K tokens, cache-hit rate and context length per value of
    `by`, and per day (context growth); unpriced requests count, but never as $0."""
    from costline.economics.unit_costs import THOUSAND, per

    choice("by", by, TOKENS_BY)
    r, span, ignored = _requests(reader, filters)
    n = r.requests.fill_null(1)
    key = r[by].fill_null(NONE_KEY)
    tokens_ = r.input_tokens.fill_null(0) + r.output_tokens.fill_null(0)
    sums = {"requests": n.sum(), "input_tokens": r.input_tokens.sum(),
            "output_tokens": r.output_tokens.sum(), "cost_usd": r.cost_usd.sum()}  # fmt: skip
    totals = r.group_by(key=key).aggregate(
        **sums,
        cached_input_tokens=r.cached_input_tokens.sum(),
        priced_tokens=tokens_.sum(where=r.cost_usd.notnull()),
        unpriced_requests=n.sum(where=r.cost_usd.isnull()),
    )
    rows = []
    for t in totals.to_pyarrow().to_pylist():
        requests, inputs = t["requests"] or 0, t["input_tokens"] or 0
        rows.append({
            "key": t["key"], "requests": requests, "input_tokens": inputs,
            "output_tokens": t["output_tokens"] or 0,
            "cached_input_tokens": t["cached_input_tokens"] or 0, "cost_usd": t["cost_usd"],
            "cost_per_1k_tokens": per(t["cost_usd"], t["priced_tokens"], THOUSAND),
            "cache_hit_rate": round((t["cached_input_tokens"] or 0) / inputs, 4) if inputs else None,
            "avg_context_tokens": round(inputs / requests, 1) if requests else None,
            "unpriced_requests": t["unpriced_requests"] or 0,
        })  # fmt: skip
    rows.sort(key=lambda x: (-(x["cost_usd"] or ZERO), -x["requests"], x["key"]))
    per_day = r.group_by(day=r.ts.date(), key=key).aggregate(**sums).order_by(["day", "key"])
    daily = [
        {"day": d["day"], "key": d["key"], "input_tokens": d["input_tokens"] or 0,
         "output_tokens": d["output_tokens"] or 0, "cost_usd": d["cost_usd"],
         "avg_context_tokens": round((d["input_tokens"] or 0) / d["requests"], 1)
         if d["requests"] else None}
        for d in per_day.to_pyarrow().to_pylist()
    ]  # fmt: skip
    return {"by": by, "start": span.start, "end": span.end, "rows": rows, "daily": daily,
            "ignored_filters": ignored}  # fmt: skip


def _allocation(reader: Reader, span: Span) -> Any:
    from costline.server.reports import allocation

    return allocation(reader, span)  # the showback's, computed once per window


def _host_pools(reader: Reader, span: Span) -> dict[str, str]:
    """host -> GPU pool, as the allocation names them (the `pool` tag, else the GPU model)."""
    from costline.allocation.allocate import GPU_KINDS

    kinds = set(GPU_KINDS)
    rows = _allocation(reader, span).rows.select(["kind", "host", "pool"]).to_pylist()
    return {r["host"]: r["pool"] for r in rows if r["kind"] in kinds and r["host"] and r["pool"]}


def gpu_utilization(reader: Reader, filters: Filters, *, by: str = "gpu") -> dict[str, Any]:
    """A GPU x hour heatmap of utilization (0-100: the graphics engine's active share, else
    DCGM's GPU utilization), per GPU or per pool; at most `MAX_HEATMAP_ROWS` rows."""
    import pyarrow as pa

    choice("by", by, ("gpu", "pool"))
    span = _telemetry_window(reader, filters, "gpu_samples")
    start, end = span.at()
    s = reader.table("gpu_samples")
    s = s.filter(s.ts >= start, s.ts < end)
    if by == "pool":
        pools = _host_pools(reader, span)
        known = ibis.memtable(pa.table({"host_": list(pools), "pool_": list(pools.values())}))
        s = s.left_join(known, s.host == known.host_)
        label = ibis.coalesce(s.pool_, s.gpu_model, ibis.literal(NONE_KEY))
    else:
        mig = ibis.ifelse(s.mig_profile.isnull(), "", " " + s.mig_profile.fill_null("") + "#"
                          + s.mig_instance_id.fill_null(""))  # fmt: skip
        device = ibis.coalesce(s.gpu_index.cast("string"), s.gpu_uuid, ibis.literal("?"))
        label = s.host.fill_null("?") + "/gpu" + device + mig
    activity = ibis.coalesce(s.gr_engine_active, s.gpu_util) * 100
    cells = s.group_by(label=label, hour=s.ts.truncate("h")).aggregate(u=activity.mean())
    # Ibis ranks from 0: ranks 0..MAX are MAX + 1 rows, the last only to tell it was truncated.
    cells = cells.mutate(rank=ibis.dense_rank().over(order_by=cells.label))
    table = cells.filter(cells.rank <= MAX_HEATMAP_ROWS).select("label", "hour", "u").to_pyarrow()
    labels = sorted(set(table["label"].to_pylist()))
    truncated = len(labels) > MAX_HEATMAP_ROWS
    labels = labels[:MAX_HEATMAP_ROWS]
    row_of = {v: i for i, v in enumerate(labels)}
    hours = sorted({h for lb, h in zip(table["label"].to_pylist(), table["hour"].to_pylist(),
                                       strict=True) if lb in row_of})  # fmt: skip
    col_of = {v: i for i, v in enumerate(hours)}
    z: list[list[float | None]] = [[None] * len(hours) for _ in labels]
    for label_, hour, u in zip(*(table[c].to_pylist() for c in ("label", "hour", "u")),
                               strict=True):  # fmt: skip
        if label_ in row_of:
            z[row_of[label_]][col_of[hour]] = None if u is None else round(u, 1)
    return {"by": by, "start": span.start, "end": span.end, "hours": hours, "gpus": labels,
            "z": z, "truncated": truncated,
            "ignored_filters": list(filters.selector.dimensions)}  # fmt: skip


def gpu_idle(reader: Reader, filters: Filters) -> dict[str, Any]:
    """Per pool: GPUs, GPU-hours of each kind and the cost of both kinds of idle, from the
    allocation of the window's bills (`costline.allocation.idle`, as showback and chargeback
    report them), with the GPUs' mean activity from telemetry beside them."""
    from costline.allocation.gpu import mig_weight
    from costline.allocation.idle import pool_rows, totals

    span = _telemetry_window(reader, filters, "gpu_samples")
    start, end = span.at()
    pools = pool_rows(_allocation(reader, span))
    s = reader.table("gpu_samples")
    s = s.filter(s.ts >= start, s.ts < end)
    activity = ibis.coalesce(s.gr_engine_active, s.gpu_util)
    weight = s.sample_seconds * s.time_slice_share.fill_null(1.0) * mig_weight(s)
    hosts = s.group_by("host").aggregate(
        active=(activity * weight).sum(), measured=weight.sum(where=activity.notnull())
    )
    pool_of = _host_pools(reader, span)
    activity_of: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for h in hosts.to_pyarrow().to_pylist():
        pair = activity_of[pool_of.get(h["host"]) or NONE_KEY]
        pair[0] += h["active"] or 0.0
        pair[1] += h["measured"] or 0.0
    rows = []
    for p in pools:
        active, measured = activity_of.get(p["pool"], (0.0, 0.0))
        rows.append(
            {
                "pool": p["pool"],
                "gpus": p["gpus"],
                "gpu_hours": round(p["gpu_hours"], 2),
                "used_gpu_hours": round(p["used_gpu_hours"], 2),
                "held_idle_gpu_hours": round(p["held_idle_gpu_hours"], 2),
                "unheld_gpu_hours": round(p["unheld_gpu_hours"], 2),
                "scheduled_gpu_hours": round(p["scheduled_gpu_hours"], 2),
                "unobserved_gpu_hours": round(p["unobserved_gpu_hours"], 2),
                "utilization_pct": round(100 * active / measured, 1) if measured else None,
                "gpu_cost_usd": p["gpu_cost_usd"],
                "held_idle_usd": p["held_idle_usd"],
                "unheld_idle_usd": p["unheld_idle_usd"],
                "idle_usd": p["idle_usd"],
            }
        )
    whole = totals(pools)
    return {"start": span.start, "end": span.end, "rows": rows,
            "idle_usd_total": whole.idle_usd, "totals": whole.as_dict(),
            "ignored_filters": list(filters.selector.dimensions)}  # fmt: skip
