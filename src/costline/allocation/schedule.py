"""GPU-time the workloads' own schedules claim, per host and hour (Ibis in, Ibis out).

Where a GPU host has no telemetry, who held its GPUs is still known from the schedulers: a Slurm
job's NodeList, start, end and allocated GPUs; a pod's node, start, end and GPU requests. Those
hours are split by the schedule (allocation kind `gpu_scheduled`), so a run's GPU cost covers the
whole window of its bills, not just the hours an exporter happened to scrape
(docs/methodology/allocation.md, section 2).
"""

from __future__ import annotations

import datetime as dt

import ibis
import pyarrow as pa

from costline.ledger import fetch
from costline.sources.workloads.hostlist import expand

HOUR = dt.timedelta(hours=1)


def _hours(start: dt.datetime, end: dt.datetime) -> ibis.Table:
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while first < end:
        hours.append(first)
        first += HOUR
    return ibis.memtable(pa.table({"hour": pa.array(hours, pa.timestamp("us", tz="UTC"))}))


def _node_hosts(nodes: list[str]) -> ibis.Table:
    """node list text -> (host, hosts in the list): the few distinct lists, expanded here."""
    names, hosts, counts = [], [], []
    for text in nodes:
        expanded = expand(text)
        for host in expanded:
            names.append(text)
            hosts.append(host)
            counts.append(len(expanded))
    return ibis.memtable(
        pa.table(
            {
                "node_text": pa.array(names, pa.string()),
                "node_host": pa.array(hosts, pa.string()),
                "node_count": pa.array(counts, pa.int64()),
            }
        )
    )


_SCHEDULE_COLUMNS = {"workload_id", "node", "start", "end", "gpus_requested"}


def _empty() -> ibis.Table:
    return ibis.memtable(
        pa.table(
            {
                "host": pa.array([], pa.string()),
                "hour": pa.array([], pa.timestamp("us", tz="UTC")),
                "holder": pa.array([], pa.string()),
                "held_seconds": pa.array([], pa.float64()),
            }
        )
    )


def scheduled_by_hour(workloads: ibis.Table, start: dt.datetime, end: dt.datetime) -> ibis.Table:
    """host, hour, holder, held_seconds: the GPU-seconds each workload's schedule claims.

    A workload on several hosts (a Slurm job over `gpu-[0-3]`) holds `gpus_requested / hosts` on
    each. One still running (no end) holds until `end`. Workloads without a node, a start or GPUs
    claim nothing.
    """
    if not set(workloads.columns) >= _SCHEDULE_COLUMNS:  # a bare table (tests, old callers)
        return _empty()
    w = workloads.filter(
        workloads.node.notnull(),
        workloads.start.notnull(),
        workloads.gpus_requested > 0,
        workloads.start < end,
        workloads.end.isnull() | (workloads.end > start),
    )
    texts = [r["node"] for r in fetch.rows(w.select("node").distinct())]
    if not any(texts):
        return _empty()
    nodes = _node_hosts([t for t in texts if t])
    w = w.join(nodes, w.node == nodes.node_text)
    w = w.mutate(
        w_start=w.start.epoch_seconds(),
        w_end=ibis.coalesce(w.end, ibis.literal(end)).epoch_seconds(),
        per_host=w.gpus_requested.cast("float64") / w.node_count.cast("float64"),
    )
    hours = _hours(start, end)
    hours = hours.mutate(h_start=hours.hour.epoch_seconds())
    j = w.join(hours, [hours.h_start < w.w_end, hours.h_start + 3600 > w.w_start])
    overlap = ibis.least(j.w_end, j.h_start + 3600) - ibis.greatest(j.w_start, j.h_start)
    j = j.mutate(held=j.per_host * overlap.cast("float64"))
    j = j.filter(j.held > 0)
    return j.group_by(host=j.node_host, hour=j.hour, holder=j.workload_id).aggregate(
        held_seconds=j.held.sum()
    )


def scheduled_hosts(scheduled: ibis.Table) -> ibis.Table:
    """host, gpus: the most GPUs the schedules claim on a host in any one hour (a lower bound of
    its GPUs, for hosts that reported no telemetry), gpu_model NULL."""
    per_hour = scheduled.group_by(["host", "hour"]).aggregate(s=scheduled.held_seconds.sum())
    out = per_hour.group_by("host").aggregate(most=per_hour.s.max())
    return out.select(
        "host",
        gpus=(out.most / 3600.0).ceil().cast("int64"),
        gpu_model=ibis.null("string"),
    )
