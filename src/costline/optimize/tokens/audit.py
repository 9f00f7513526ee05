"""What every lever of the token audit reads: the window's requests by group, each group's
statistics (one aggregate pass), the prices of its model, and the plan each lever derives.

A **group** is the requests of one app, endpoint, provider, model, prompt (`prompt_id`, when the
logs name one) and tenant: the unit a prompt, a `max_tokens` or a cache setting is changed for.
Missing values are grouped as "" (and left out of a finding's scope). Rollup rows (`requests` >
1, the Usage API's buckets) count in totals but not in per-request distributions.

Dollars a month are the window's dollars x 30 days / the days the logs cover in the window
(`Audit.per_month`): a ledger whose logs begin three days before the window's end is not
averaged over fourteen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.types as ir
import pyarrow as pa

from costline.catalog.token_prices import PRICE_DTYPE, unit_prices
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.money import MONEY_DTYPE
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, per_month, recommendation
from costline.sources.llm.records import TRUNCATED

KIND = "tokens"
GROUP = ("app", "endpoint", "provider", "model", "prompt_id", "tenant")
FLOOR_QUANTILE = 0.01  # the fixed part of a prompt: the input floor of the group's requests
OUTPUT_QUANTILES = (0.5, 0.95, 0.99)
HOUR = dt.timedelta(hours=1)
MONEY = MONEY_DTYPE  # the engine's money type, for casts of token x price products
TS = dt_.Timestamp(timezone="UTC", scale=6)


# Two DuckDB builtins keep 30M requests within a minute: a group is one 64-bit key, not six
# strings, and a time one integer of microseconds (`epoch_seconds` casts each value to a naive
# timestamp first, 10x slower). An engine without them needs its own two expressions here.
def _hash6(a: Any, b: Any, c: Any, d: Any, e: Any, f: Any) -> None:
    """DuckDB `hash` of six values."""


def _hash2(a: Any, b: Any) -> None:
    """DuckDB `hash` of two values."""


def _epoch_us(ts: Any) -> None:
    """DuckDB `epoch_us`."""


assert len(GROUP) == 6
_GROUP_HASH = ibis.udf.scalar.builtin(_hash6, name="hash",
                                      signature=((dt_.string,) * 6, dt_.uint64))  # fmt: skip
_KEY_HASH = ibis.udf.scalar.builtin(_hash2, name="hash",
                                    signature=((dt_.uint64, dt_.string), dt_.uint64))  # fmt: skip
_EPOCH_US = ibis.udf.scalar.builtin(_epoch_us, name="epoch_us", signature=((TS,), dt_.int64))


def group_hash(*columns: ir.StringValue) -> ir.IntegerValue:
    """A 64-bit key of a group's columns (DuckDB `hash`)."""
    out: ir.IntegerValue = _GROUP_HASH(*columns)
    return out


def key_hash(key: ir.IntegerValue, text: ir.StringValue) -> ir.IntegerValue:
    """A 64-bit key of a key and a string (a prompt hash, a request or conversation id)."""
    out: ir.IntegerValue = _KEY_HASH(key, text)
    return out


def epoch_us(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Microseconds since 1970 of a UTC timestamp (DuckDB `epoch_us`)."""
    out: ir.IntegerValue = _EPOCH_US(ts)
    return out


def requests_in(llm: ir.Table, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """The window's requests: group columns with "" for missing, `calls` the requests a row is,
    `gid` the group's key, `us` the time in microseconds and `order` a tiebreak of equal times."""
    t = llm.filter(llm.ts >= start, llm.ts < end)
    t = t.mutate(**{g: t[g].fill_null("") for g in GROUP}, calls=t.requests.fill_null(1))
    gid = group_hash(*(t[g] for g in GROUP))
    return t.mutate(gid=gid, us=epoch_us(t.ts), order=key_hash(gid, t.request_id.fill_null("")))


def group_stats(t: ir.Table) -> ir.Table:
    """One pass over the requests: per group, totals, the input floor, the cached prefix, the
    output quantiles, the limits and stop reasons, and which optional fields the logs carry."""
    one = t.calls == 1
    served = ibis.greatest(t.cached_input_tokens.fill_null(0), t.cache_write_tokens.fill_null(0))
    limited = t.max_tokens.notnull() & (t.output_tokens >= t.max_tokens)
    truncated = t.stop_reason.lower().isin(list(TRUNCATED)).fill_null(False) | limited
    out = t.output_tokens
    talk = t.conversation_id.notnull()
    return t.group_by("gid").aggregate(
        **{g: t[g].arbitrary() for g in GROUP},
        calls=t.calls.sum(), single=one.sum(),
        input_tokens=t.input_tokens.sum(), cached_tokens=t.cached_input_tokens.sum(),
        write_tokens=t.cache_write_tokens.sum(), output_tokens=out.sum(),
        cost=t.cost_usd.sum(), priced_calls=t.calls.sum(where=t.cost_usd.notnull()),
        team=t.team.max(),
        system_rows=t.system_prompt_tokens.count(),
        system_tokens=t.system_prompt_tokens.median(),
        floor=t.input_tokens.quantile(FLOOR_QUANTILE, where=one),
        cached_prefix=served.median(where=one & (served > 0)),
        out_q=out.quantile(list(OUTPUT_QUANTILES), where=one), out_max=out.max(where=one),
        limit_rows=t.max_tokens.count(where=one), limit_p50=t.max_tokens.median(where=one),
        truncated=truncated.sum(where=one), stop_rows=t.stop_reason.count(where=one),
        truncated_cost=t.cost_usd.sum(where=one & truncated),
        conversation_rows=talk.sum(), turn_rows=t.turn.count(where=talk),
        hash_rows=t.prompt_hash.count(), prefix_rows=t.prefix_hashes.count(),
        first=t.ts.min(), last=t.ts.max(),
    )  # fmt: skip


def _named(row: dict[str, Any]) -> dict[str, Any]:
    """A stats row with its output quantiles as out_p50, out_p95 and out_p99."""
    q = row.pop("out_q") or [None] * len(OUTPUT_QUANTILES)
    return {**row, "out_p50": q[0], "out_p95": q[1], "out_p99": q[2]}


def prices_table(groups: list[dict[str, Any]], at: dt.datetime) -> ir.Table:
    """gid -> the standard USD-per-token prices at `at` of the group's model
    (`catalog.token_prices`); a group of an unpriced model has no row (no dollars)."""
    names = ("gid", "input_price", "read_price", "write_price", "output_price")
    rows: dict[str, list[Any]] = {k: [] for k in names}
    for g in groups:
        p = unit_prices(str(g["provider"]), str(g["model"]), at)
        if p is not None:
            for key, value in zip(names, (g["gid"], p.input, p.cache_read, p.cache_write,
                                          p.output), strict=True):  # fmt: skip
                rows[key].append(value)
    schema = pa.schema([("gid", pa.uint64())] + [(k, PRICE_DTYPE) for k in names[1:]])
    return ibis.memtable(pa.table(rows, schema=schema))


def money(tokens: ir.NumericValue, price: ir.NumericValue) -> ir.NumericValue:
    """tokens x a per-token price, as money (DECIMAL(38, 18)); tokens are rounded to whole ones."""
    whole = tokens.round().cast("int64").cast("decimal(38, 0)")
    return (whole * price).cast(MONEY)


def priced(t: ir.Table, prices: ir.Table) -> ir.Table:
    """`t` (per group `gid`) with its model's prices; a group of an unpriced model is dropped."""
    return t.join(prices, "gid")


def _hour_floor(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


@dataclass
class Audit:
    """One token audit's window: its requests, groups and prices (see the module)."""

    inputs: Inputs
    requests: ir.Table
    groups: list[dict[str, Any]]
    prices: ir.Table
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, inputs: Inputs) -> Audit | None:
        """The audit of the window's LLM requests; None when there are none."""
        if inputs.llm is None:
            return None
        t = requests_in(inputs.llm, inputs.start, inputs.end)
        groups = [_named(r) for r in fetch.rows(group_stats(t))]
        if not groups:
            return None
        first = min(g["first"] for g in groups)
        last = max(g["last"] for g in groups)
        start = max(inputs.start, _hour_floor(first))
        end = min(inputs.end, _hour_floor(last) + HOUR)
        prices = prices_table(groups, end - dt.timedelta(microseconds=1))
        return cls(inputs, t, groups, prices, start, end)

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    @property
    def per_month(self) -> Decimal:
        """Multiply an amount of the logs' span in the window by this to get it per 30 days."""
        return per_month(self.start, self.end)

    def plan(self, columns: Mapping[str, tuple[str, list[Any]]]) -> ir.Table:
        """A small table of the groups' keys (`gid`) with one value per group of each of
        `columns` (name -> (Ibis type, values in the order of `groups`)), to join to requests."""
        data: dict[str, Any] = {"gid": [r["gid"] for r in self.groups]}
        data.update({name: values for name, (_, values) in columns.items()})
        schema = ibis.schema({"gid": "uint64", **{n: kind for n, (kind, _) in columns.items()}})
        return ibis.memtable(pa.table(data, schema=schema.to_pyarrow()))

    def named(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per-group rows of a pass (keyed by `gid`) merged with their group's statistics."""
        stats = {g["gid"]: g for g in self.groups}
        return [{**stats[r["gid"]], **r} for r in rows]

    def finding(self, group: Mapping[str, Any], *, lever: str, title: str, summary: str,
                current: Decimal, savings: Savings, method: str, inputs: Mapping[str, Any],
                coverage: float, risk: str, action: str) -> Finding:  # fmt: skip
        """The recommendation of one lever for one group, per 30 days (`per_month` applied)."""
        k = self.per_month
        scope = {g: str(group[g]) for g in GROUP if group.get(g)}
        team = group.get("team") or None
        return recommendation(
            kind=KIND, scope={"lever": lever, **scope}, title=title, summary=summary,
            owner=self.inputs.owner(team, app=scope.get("app", "")) if team else None,
            current_monthly=current * k,
            savings=Savings(savings.p50 * k, savings.low * k, savings.high * k),
            method=method, inputs={"calls": group["calls"], **inputs},
            window=Window(start=self.start, end=self.end), coverage=coverage, risk=risk,
            action=action, clock=self.inputs.clock,
        )  # fmt: skip


def name_of(group: Mapping[str, Any]) -> str:
    """How a finding names a group: `app /endpoint on model (tenant t)`."""
    who = group.get("app") or group.get("endpoint") or "(no app)"
    if group.get("app") and group.get("endpoint"):
        who += f" {group['endpoint']}"
    if group.get("prompt_id"):
        who += f" [prompt {group['prompt_id']}]"
    tenant = f" for tenant {group['tenant']}" if group.get("tenant") else ""
    return f"{who} on {group.get('model') or '(no model)'}{tenant}"


def dec(value: object) -> Decimal:
    """An engine money value (Decimal, or None for nothing) as a Decimal."""
    return Decimal(0) if value is None else Decimal(str(value))


def priced_share(r: Mapping[str, Any]) -> float:
    """The share of a group's calls that are priced: the coverage of its dollars."""
    calls = int(r["calls"] or 0)
    return int(r["priced_calls"] or 0) / calls if calls else 0.0
