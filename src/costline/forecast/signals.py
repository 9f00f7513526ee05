"""The daily series forecasts are made of, in the units people plan in: `daily`.

Each is an Ibis expression over the ledger with columns `key` (the value of the `by` dimension,
or `all`), `day` and `value` (float64), run where the data is:

- `cost_usd`: effective cost of the cost lines (commitments amortized);
- `gpu_hours`: GPU-hours billed: usage hours of GPU instance lines times the instance's GPUs
  (from the instance catalogues, `attribution.instances`; an instance type the catalogue lacks is left out, and counted
  in `unknown_gpu_lines`);
- `tokens`: tokens billed on LLM API lines (ConsumedUnit `Tokens`);
- `storage_gb`: GB stored per day, from storage lines billed in GB-months (a level, not a flow);
- `training_jobs`: training runs, sweep trials and fine-tunes started per day (`workloads`);
- any other name: that metric of the `metrics` table (`inference_requests`,
  `inference_successes`, ...), summed per day, `by` read from its labels.

Cost-line metrics take any scope dimension for `by` (team, project, model, service, provider,
cost_domain, ...; see `attribution.rules.select`); `training_jobs` takes a workload column
(team, project, model, kind, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import ibis

from costline.attribution.instances import gpu_lines
from costline.attribution.registry import TRAINING_KINDS
from costline.attribution.rules import Rules, derive_lines, scope_column, select
from costline.ledger import fetch
from costline.model import Selector

LINE_METRICS = ("cost_usd", "gpu_hours", "tokens", "storage_gb")
METRICS = (*LINE_METRICS, "training_jobs")
LEVELS = ("storage_gb",)  # a level at each day, not an amount per day


class UnknownDimension(KeyError):
    """The `by` or a `where` dimension is not a column of the metric's table."""


def _key(t: ibis.Table, by: str | None, column: ibis.Value | None = None) -> ibis.StringValue:
    if by is None:
        return ibis.literal("all")
    value = column if column is not None else t[by]
    return value.cast("string").fill_null("(none)")


def daily(
    metric: str,
    tables: Mapping[str, ibis.Table],
    start: dt.datetime,
    end: dt.datetime,
    *,
    by: str | None = None,
    where: Selector | None = None,
    rules: Rules | None = None,
) -> ibis.Table:
    """`metric` per day and `by` value over [start, end): columns key, day, value."""
    if metric in LINE_METRICS:
        return _from_lines(metric, tables["cost_lines"], start, end, by, where, rules)
    if metric == "training_jobs":
        w = tables["workloads"]
        w = w.filter(w.kind.isin(list(TRAINING_KINDS)), w.start >= start, w.start < end)
        w = _where(w, where)
        if by is not None and by not in w.columns:
            raise UnknownDimension(by)
        w = w.mutate(key=_key(w, by), day=w.start.date())
        return w.group_by(["key", "day"]).aggregate(value=w.workload_id.nunique().cast("float64"))
    m = tables["metrics"]
    m = m.filter(m.metric == metric, m.ts >= start, m.ts < end)
    for dimension, accepted in where.root.items() if where else ():
        m = m.filter(m.labels.get(dimension).isin(list(accepted)))
    m = m.mutate(key=_key(m, by, m.labels.get(by) if by else None), day=m.ts.date())
    return m.group_by(["key", "day"]).aggregate(value=m.value.sum().cast("float64"))


def _where(t: ibis.Table, where: Selector | None) -> ibis.Table:
    for dimension, accepted in where.root.items() if where else ():
        if dimension not in t.columns:
            raise UnknownDimension(dimension)
        t = t.filter(t[dimension].cast("string").isin(list(accepted)))
    return t


def _from_lines(
    metric: str,
    lines: ibis.Table,
    start: dt.datetime,
    end: dt.datetime,
    by: str | None,
    where: Selector | None,
    rules: Rules | None,
) -> ibis.Table:
    d = derive_lines(lines.filter(lines.ChargePeriodStart >= start,
                                  lines.ChargePeriodStart < end), rules)  # fmt: skip
    try:
        d = select(d, where) if where else d
        key = _key(d, by, scope_column(d, by) if by else None)
    except KeyError as exc:
        raise UnknownDimension(exc.args[0]) from None
    d = d.mutate(key=key, day=d.ChargePeriodStart.date())
    if metric == "cost_usd":
        value = d.EffectiveCost.cast("float64")
    elif metric == "tokens":
        d = d.filter(d.ConsumedUnit.lower() == "tokens")
        value = d.ConsumedQuantity.cast("float64")
    elif metric == "storage_gb":
        d = d.filter(d.ConsumedUnit.lower().isin(["gb-months", "gb-month", "gibibyte month"]))
        month = d.ChargePeriodStart.truncate("M")
        days = (month + ibis.interval(months=1)).delta(month, unit="day")
        value = d.ConsumedQuantity.cast("float64") * days.cast("float64")
    else:
        d = gpu_lines(d)
        value = d.ConsumedQuantity.cast("float64") * d.gpus.cast("float64")
    d = d.mutate(v=value)
    return d.group_by(["key", "day"]).aggregate(value=d.v.sum().fill_null(0.0))


def unknown_gpu_lines(lines: ibis.Table, start: dt.datetime, end: dt.datetime) -> int:
    """GPU instance lines in [start, end) whose GPU count the catalogue does not know."""
    d = derive_lines(lines.filter(lines.ChargePeriodStart >= start,
                                  lines.ChargePeriodStart < end))  # fmt: skip
    g = gpu_lines(d)
    return int(fetch.value(g.filter(g.gpus.isnull()).count()))
