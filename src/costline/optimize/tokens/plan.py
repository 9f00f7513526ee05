"""Each group's plan (its fixed prompt part, what of it a provider would cache, the output cap a
`max_tokens` would set), and the one pass over the requests that measures what each plan changes.

- **Fixed part** (`fixed_part`): the median `system_prompt_tokens` when most requests log it;
  else the larger of the input floor (the 1st percentile of input tokens: every request carries
  at least its fixed part) and the median prefix the provider already cached or wrote, for a
  group of `MIN_REQUESTS` requests or more.
- **Cacheable** (`cacheable`): the fixed part when it reaches the provider's minimum cacheable
  prompt (1,024 tokens; 2,048 for Anthropic's Haiku 3 and 3.5 models), else 0.
- **Cache lifetime** (`CACHE_SECONDS`): 5 minutes since the prefix was last used, Anthropic's
  default (each hit refreshes it) and OpenAI's documented minimum (5-10 minutes idle).
- **Output cap** (`output_cap`): 1.1 x the p99 of output tokens, when the p99 is within 3x the
  p95 (a bulk of answers, a few runaways above it); else 2 x the p95. Rounded up to 64 tokens;
  none for a group of fewer than `MIN_REQUESTS` requests.

The pass (`per_request`) finds, for each request, whether its group was last called within the
cache lifetime: such a request would read the cacheable prefix from the cache (a hit), any other
would write it. Per group it sums the tokens each plan saves or adds, and the output tokens
above the cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.optimize.tokens.audit import Audit, money, priced

CACHE_SECONDS = 300
MIN_CACHEABLE = 1024
MIN_CACHEABLE_MODELS = {"claude-3-haiku": 2048, "claude-3-5-haiku": 2048}
CAP_ROUND = 64
MIN_REQUESTS = 100  # below this, a floor or a p99 says little: no fixed part, no cap


def fixed_part(group: Mapping[str, Any]) -> tuple[int, str]:
    """(tokens, where from) of the fixed part of the group's prompts (see the module); 0 when
    the logs say nothing of it and the group has too few requests for a floor."""
    single = int(group["single"] or 0)
    if group["system_tokens"] is not None and group["system_rows"] * 2 >= max(single, 1):
        return int(group["system_tokens"]), "system_prompt_tokens (median)"
    if single < MIN_REQUESTS:
        return 0, f"unknown (fewer than {MIN_REQUESTS} requests)"
    floor = int(group["floor"] or 0)
    prefix = int(group["cached_prefix"] or 0)
    if prefix > floor:
        return prefix, "median cached prefix"
    return floor, "the input floor, the 1st percentile of input tokens"


def min_cacheable(model: str) -> int:
    return next((n for m, n in MIN_CACHEABLE_MODELS.items() if m in model), MIN_CACHEABLE)


def cacheable(group: Mapping[str, Any]) -> int:
    tokens, _ = fixed_part(group)
    return tokens if tokens >= min_cacheable(str(group["model"])) else 0


def output_cap(group: Mapping[str, Any]) -> int | None:
    """The `max_tokens` to recommend (see the module); None without per-request outputs."""
    p95, p99 = group["out_p95"], group["out_p99"]
    if p95 is None or p99 is None or p95 <= 0 or int(group["single"] or 0) < MIN_REQUESTS:
        return None
    cap = 1.1 * p99 if p99 <= 3 * p95 else 2 * p95
    return max(CAP_ROUND, math.ceil(cap / CAP_ROUND) * CAP_ROUND)


def plan_table(audit: Audit) -> ir.Table:
    """The groups' plans as a small table to join to the requests."""
    groups = audit.groups
    return audit.plan({
        "fixed": ("int64", [fixed_part(g)[0] for g in groups]),
        "cacheable": ("int64", [cacheable(g) for g in groups]),
        "cap": ("int64", [output_cap(g) for g in groups]),
    })  # fmt: skip


PACK = 2**32  # a bucket's first request's read and write tokens, packed in one integer


def per_request(audit: Audit) -> ir.Table:
    """Per group: the tokens each plan changes (see the module), without sorting the requests.

    Requests are gathered in buckets of one cache lifetime: within a bucket every request but
    the first comes less than a lifetime after the one before it (a hit); the first is a hit
    when the bucket before holds a request within a lifetime of it (a request two buckets
    back is always older than that). One aggregation and one join of the buckets, exact."""
    t = audit.requests.join(plan_table(audit), "gid")
    one = t.calls == 1
    cached = t.cached_input_tokens.fill_null(0)
    written = t.cache_write_tokens.fill_null(0)
    fixed = ibis.least(t.fixed, t.input_tokens // ibis.greatest(t.calls, 1)) * t.calls
    prefix = ibis.least(t.cacheable, t.input_tokens)
    read = ibis.greatest(prefix - cached, 0)
    write = ibis.greatest(prefix - cached - written, 0)
    r = t.select(
        "gid", "us", one=one, bucket=t.us // (CACHE_SECONDS * 1_000_000), fixed=fixed,
        fixed_cached=ibis.least(fixed, cached), reading=one & (cached > 0),
        read=ibis.ifelse(one, read, 0), packed=read.cast("int64") * PACK + write,
        tail=ibis.ifelse(one, ibis.greatest(t.output_tokens - t.cap, 0).fill_null(0), 0),
    )  # fmt: skip
    b = r.group_by(["gid", "bucket"]).aggregate(
        n=r.one.sum(), first=r.us.min(where=r.one), last=r.us.max(where=r.one),
        first_packed=r.packed.argmin(r.us, where=r.one), read=r.read.sum(),
        fixed=r.fixed.sum(), fixed_cached=r.fixed_cached.sum(), reading=r.reading.sum(),
        tail=r.tail.sum(), over_cap=(r.tail > 0).sum(),
    )  # fmt: skip
    before = b.select("gid", bucket=b.bucket + 1, before_last=b.last)
    j = b.left_join(before, ["gid", "bucket"])
    hit = j.before_last.notnull() & (j.first - j.before_last <= CACHE_SECONDS * 1_000_000)
    miss = (j.n > 0) & ~hit
    first_read, first_write = j.first_packed // PACK, j.first_packed % PACK
    return j.group_by("gid").aggregate(
        fixed_tokens=j.fixed.sum(), fixed_cached=j.fixed_cached.sum(),
        hits=(j.n - miss.cast("int64")).sum(), misses=miss.sum(), hit_calls=j.reading.sum(),
        extra_read=(j.read - ibis.ifelse(miss, first_read, 0)).sum(),
        extra_write=ibis.ifelse(miss, first_write, 0).sum(),
        tail_tokens=j.tail.sum(), over_cap=j.over_cap.sum(),
    )  # fmt: skip


def costed(audit: Audit) -> ir.Table:
    """`per_request` with its dollars, computed in the engine at the model's prices: the fixed
    part's cost (cached tokens at the cache-read price), what reading the cacheable prefix from
    the cache saves and what writing it costs extra, and the output above the cap."""
    p = priced(per_request(audit), audit.prices)
    return p.mutate(
        fixed_usd=money(p.fixed_tokens - p.fixed_cached, p.input_price)
        + money(p.fixed_cached, p.read_price),
        read_saving_usd=money(p.extra_read.fill_null(0), p.input_price - p.read_price),
        write_extra_usd=money(p.extra_write.fill_null(0), p.write_price - p.input_price),
        tail_usd=money(p.tail_tokens, p.output_price),
    )
