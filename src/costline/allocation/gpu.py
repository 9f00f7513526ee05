"""GPU-time held, per host, hour and holder: the engine's part of GPU allocation (Ibis in, Ibis out).

See docs/methodology/allocation.md, section 2. Tens of millions of samples become one row per host,
hour, holder and busy flag here; the money is split afterwards, in decimal, on those few rows.
"""

from __future__ import annotations

import datetime as dt

import ibis

# Below this the GPU's graphics engine counts as idle (held but idle; see the methodology).
IDLE_ACTIVITY = 0.05
# Compute slices of a MIG-capable GPU: 7 on A100, H100, H200, B200 (A30: 4).
MIG_SLICES_DEFAULT = 7
MIG_SLICES = {"A30": 4}


def mig_weight(samples: ibis.Table) -> ibis.FloatingValue:
    """A MIG slice's share of its GPU (`3g.40gb` on an H100: 3/7); 1 for a whole GPU."""
    slices = ibis.cases(
        *[(samples.gpu_model.contains(model), n) for model, n in MIG_SLICES.items()],
        else_=MIG_SLICES_DEFAULT,
    )
    compute = samples.mig_profile.re_extract(r"^(\d+)g", 1).nullif("").cast("float64")
    return ibis.ifelse(samples.mig_profile.isnull(), 1.0, (compute / slices).fill_null(1.0))


def holder(samples: ibis.Table) -> ibis.StringValue:
    """The workload id a sample's user is known by: `namespace/pod`, else the HPC job id."""
    pod = samples.namespace.fill_null("") + "/" + samples.pod
    return ibis.coalesce(pod, samples.job_id)


def held_by_hour(samples: ibis.Table, start: dt.datetime, end: dt.datetime) -> ibis.Table:
    """host, hour, holder (NULL: nobody), busy, held_seconds: GPU-seconds held in [start, end).

    A sample with nobody on it holds nothing: its row has `holder` NULL and is kept so that the
    caller knows the host was seen; its seconds are not counted as held.
    """
    s = samples.filter(samples.ts >= start, samples.ts < end)
    activity = ibis.coalesce(s.gr_engine_active, s.gpu_util)
    s = s.mutate(
        hour=s.ts.truncate("h"),
        holder=holder(s),
        busy=activity.isnull() | (activity >= IDLE_ACTIVITY),
        held=s.sample_seconds * s.time_slice_share.fill_null(1.0) * mig_weight(s),
    )
    return s.group_by(["host", "hour", "holder", "busy"]).aggregate(held_seconds=s.held.sum())


def gpus_by_host(samples: ibis.Table, start: dt.datetime, end: dt.datetime) -> ibis.Table:
    """host, gpus (physical GPUs reported: MIG slices of one GPU count once), gpu_model."""
    s = samples.filter(samples.ts >= start, samples.ts < end, samples.host.notnull())
    gpu = ibis.coalesce(s.gpu_uuid, s.gpu_index.cast("string"))
    return s.group_by("host").aggregate(gpus=gpu.nunique(), gpu_model=s.gpu_model.arbitrary())


def with_host(lines: ibis.Table, hosts: ibis.Table) -> ibis.Table:
    """`lines` with `host`: the GPU host (of `hosts.host`) its ResourceName, else its ResourceId,
    names; NULL for other lines. Joins in the engine, not literal lists: a fleet has thousands."""
    by_name = hosts.select(host_by_name=hosts.host)
    by_id = hosts.select(host_by_id=hosts.host)
    joined = lines.left_join(by_name, lines.ResourceName == by_name.host_by_name)
    joined = joined.left_join(by_id, joined.ResourceId == by_id.host_by_id)
    joined = joined.mutate(host=ibis.coalesce(joined.host_by_name, joined.host_by_id))
    return joined.drop("host_by_name", "host_by_id")
