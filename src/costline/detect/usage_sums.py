"""The window's usage lines, derived once: the daily sums spend anomalies and zombies both read.

Deriving a line's attribution columns (its tags through their aliases, folded; its owner) and
judging what it meters (`meter_kind`'s regular expressions over its description and units) are
the costly part of reading the bill. `usage_sums` does both once per run into one narrow table
of daily sums (a temporary table of the engine, `fetch.kept`): `detect.spend` reads its series
and root causes per dimension value from it, `detect.zombies` its daily cost per resource,
bucket and meter. The meter is judged once per distinct description of a day's group, not once
per line (a bill repeats a SKU's description on every hourly line).

Every sum is of `DECIMAL` amounts, exact: summing a sum again gives the same cents as summing the
lines, so each reader's totals equal what a query over the lines themselves gives.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.operations as ops

from costline.attribution.rules import DERIVED, Rules, bucket_of, derive_lines, instance_text
from costline.detect.incidents import CAUSE_DIMENSIONS
from costline.detect.zombie_core import meter_of

DIMENSIONS: Mapping[str, str] = {
    "service": "ServiceName",
    "team": "team",
    "account": "SubAccountName",
    "region": "RegionId",
    "model": "model",
    "usage_type": "SkuId",  # the SKU: an instance type in a region, a storage class, a token meter
    "resource": "ResourceId",
}
DEFAULT_DIMENSIONS = ("service", "team", "usage_type")
# What zombie detection reads of a resource besides its dimensions: its id, name, endpoint tag,
# owner, bucket and meter (`detect.zombies.bill`).
RESOURCE_KEYS = ("rid", "name", "endpoint", "owner", "bucket", "meter")
# What a SKU is called on the lines (`detect.incidents.names`): its usage type (`x_UsageType`),
# charge description, price details and meter, the greatest of each.
SKU_TEXT = ("sku_usage_type", "sku_description", "sku_price", "sku_meter")


def usage(lines: ibis.Table) -> ibis.Table:
    """Usage lines only: a month's tax, a credit or a commitment purchase is not an anomaly."""
    return lines.filter(lines.ChargeCategory.fill_null("Usage") == "Usage")


_DERIVED: OrderedDict[tuple[int, ops.Node, str, tuple[str, ...]], tuple[object, ibis.Table]] = (
    OrderedDict()
)
_LOCK = threading.Lock()


def derived(lines: ibis.Table, rules: Rules, only: Sequence[str]) -> ibis.Table:
    """`derive_lines(usage(lines), rules, only=only)`, built once for the same lines and rules:
    a daily run asks for it again with only the window's dates moved, and building it costs
    more than running the query on a day's lines (the dates filter the derived lines, row by
    row alike). Kept per engine connection: Ibis holds the tables of two ledgers' connections
    equal."""
    backend = ibis.get_backend(lines)
    key = (id(backend), lines.op(), repr(rules), tuple(only))  # the rules' fields, as text
    with _LOCK:
        found = _DERIVED.get(key)
        if found is None or found[0] is not backend:
            found = _DERIVED[key] = (backend, derive_lines(usage(lines), rules, only=only))
            while len(_DERIVED) > 8:
                _DERIVED.popitem(last=False)
        _DERIVED.move_to_end(key)
    return found[1]


def usage_sums(
    lines: ibis.Table,
    history: dt.datetime,
    start: dt.datetime,
    end: dt.datetime,
    rules: Rules,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
) -> ibis.Table:
    """Usage lines of [history, end), derived, summed per day and per value of every dimension a
    series or a root cause reads (as text) and of `RESOURCE_KEYS`: `cost` (EffectiveCost), `qty`
    (ConsumedQuantity) and the SKU's names (`SKU_TEXT`); `in_window` tells the lines of
    [start, end) from the history."""
    names = list(dict.fromkeys([*dimensions, *CAUSE_DIMENSIONS]))
    made = [DIMENSIONS[n] for n in names if DIMENSIONS[n] in DERIVED]  # team, model
    d = derived(lines, rules, list(dict.fromkeys([*made, "team", "endpoint", "owner"])))
    d = d.filter(d.ChargePeriodStart >= history, d.ChargePeriodStart < end)
    units = d.PricingUnit.fill_null("") + " " + d.ConsumedUnit.fill_null("")
    keys = {"day": d.ChargePeriodStart.date(), "in_window": d.ChargePeriodStart >= start,
            **{n: d[DIMENSIONS[n]].cast("string") for n in names},
            "ResourceId": d.ResourceId, "ResourceName": d.ResourceName, "endpoint": d.endpoint,
            "owner": d.owner, "text": instance_text(d) + " " + units, "units": units}  # fmt: skip
    g = d.group_by(**keys).aggregate(cost=d.EffectiveCost.sum(), qty=d.ConsumedQuantity.sum(),
                                     **_sku_text(d))  # fmt: skip
    g = g.mutate(rid=g.ResourceId, name=g.ResourceName, bucket=bucket_of(g),
                 meter=meter_of(g.text, g.units))  # fmt: skip
    return g.group_by(["day", "in_window", *names, *RESOURCE_KEYS]).aggregate(
        cost=g.cost.sum(), qty=g.qty.sum(), **{k: g[k].max() for k in SKU_TEXT}
    )


def _sku_text(lines: ibis.Table) -> dict[str, ibis.Value]:
    """The largest of each text a SKU is named by (`SKU_TEXT`), NULL where the ledger has no
    such column: the greatest of the greatest per group is the greatest of the lines."""
    null = ibis.null().cast("string")

    def text(name: str) -> ibis.Value:
        return lines[name].cast("string").max() if name in lines.columns else null

    extra = lines.x_extra.get("x_UsageType").max() if "x_extra" in lines.columns else null
    return {"sku_usage_type": extra, "sku_description": text("ChargeDescription"),
            "sku_price": text("SkuPriceDetails"), "sku_meter": text("SkuMeter")}  # fmt: skip
