"""Which instance type a billed line is, and its GPUs: `gpu_lines`, the one place that decides it.

A line is matched to the instance types of the catalogs (the GPU price catalog's
`gpu_instances.csv`, then the GPU rows of the instance list-price table the demo bills from) by
what it says about its instance (`rules.instance_text`: description, SKU, usage type). When
several types' names occur in the text, the longest wins (`p5.48xlarge`, not a shorter name
it contains). Forecasts read the GPUs (`gpu_hours`), recommendations the type and its provider.
"""

from __future__ import annotations

import functools

import ibis
import pyarrow as pa

from costline.attribution.rules import GPU_INSTANCE, instance_text

HOURS = ("hours", "hour", "hrs")


@functools.cache
def _gpu_types() -> pa.Table:
    from costline.catalog.gpu_prices import gpu_instances
    from costline.catalog.instances import instance_prices

    found: dict[str, tuple[str, str, int]] = {}
    for g in gpu_instances().values():
        found.setdefault(g.instance_type.lower(), (g.provider, g.instance_type, g.gpu_count))
    for p in instance_prices():
        if p.gpu_count:
            found.setdefault(p.instance_type.lower(), (p.provider, p.instance_type, p.gpu_count))
    rows = sorted(found.items())
    return pa.table({
        "match": [k for k, _ in rows],
        "provider": [v[0] for _, v in rows],
        "instance_type": [v[1] for _, v in rows],
        "gpus": pa.array([v[2] for _, v in rows], pa.int64()),
    })  # fmt: skip


def gpu_lines(derived: ibis.Table) -> ibis.Table:
    """Hour-metered lines of GPU instances, with `text`, and `instance_type`, `provider` and `gpus`
    of the catalogued type they name (null when no catalog knows it)."""
    hours = derived.filter(derived.ConsumedUnit.lower().isin(list(HOURS)))
    hours = hours.mutate(text=instance_text(hours).lower())
    hours = hours.filter(hours.text.re_search(GPU_INSTANCE)).mutate(line_id=ibis.row_number())
    cat = ibis.memtable(_gpu_types())
    matched = hours.join(cat, hours.text.contains(cat.match))
    matched = matched.mutate(rank=ibis.row_number().over(
        group_by=matched.line_id, order_by=[ibis.desc(matched.match.length()), matched.match]))  # fmt: skip
    best = matched.filter(matched.rank == 0).select(
        "line_id", type_provider="provider", instance_type="instance_type", gpus="gpus"
    )
    return hours.left_join(best, "line_id").drop("line_id_right")
