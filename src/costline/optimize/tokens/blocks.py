"""Lever 4 from prefix block ids: what a prompt cache could serve, when the logs carry the ids of
each prompt's prefix blocks (`prefix_hashes`, e.g. the Mooncake trace's `hash_ids`, one id per
`prefix_block_tokens` tokens, an id standing for the whole prefix up to its block).

A block of a request is **reusable** when the same group used the same block id within the cache
lifetime before it (`plan.CACHE_SECONDS`; each use refreshes it). A request can read from the cache
its leading run of reusable blocks (a prefix cache serves prefixes, not blocks after a miss):
`reusable_blocks` x block tokens, at most its input. A block that is not reusable but is reused
by a later request within the lifetime is a **write** that pays off. Reads and writes beyond
what the logs show cached are priced at the provider's cache prices, as in `prompt`.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.recommend import Savings
from costline.optimize.tokens.audit import Audit, dec, money, name_of, priced, priced_share
from costline.optimize.tokens.plan import CACHE_SECONDS
from costline.optimize.tokens.prompt import cache_action

KEY = ("gid", "us", "order")  # one request


def per_request(audit: Audit, lifetime: int = CACHE_SECONDS) -> ir.Table:
    """Per request with prefix block ids: its blocks, its leading reusable blocks, and the
    blocks it writes that a later request reuses within `lifetime` seconds."""
    t = audit.requests
    t = t.filter(t.prefix_hashes.notnull(), t.calls == 1)
    t = t.select(*KEY, "input_tokens", "cached_input_tokens", "cache_write_tokens",
                 "prefix_block_tokens", "prefix_hashes")  # fmt: skip
    u = t.unnest("prefix_hashes", offset="pos")
    w = ibis.window(group_by=[u.gid, u.prefix_hashes], order_by=[u.us, u.order])
    prev, after = u.us.lag().over(w), u.us.lead().over(w)
    within = lifetime * 1_000_000
    u = u.mutate(hit=prev.notnull() & (u.us - prev <= within),
                 pays=after.notnull() & (after - u.us <= within))  # fmt: skip
    u = u.mutate(miss_pos=ibis.ifelse(u.hit, ibis.null("int64"), u.pos), pays=~u.hit & u.pays)
    per = u.group_by(list(KEY)).aggregate(
        blocks=u.count(), first_miss=u.miss_pos.min(), written_blocks=u.pays.sum(),
        input_tokens=u.input_tokens.max(), cached=u.cached_input_tokens.max(),
        written=u.cache_write_tokens.max(), block_tokens=u.prefix_block_tokens.max(),
    )  # fmt: skip
    reusable = per.first_miss.fill_null(per.blocks)
    return per.mutate(
        reusable_blocks=reusable,
        reusable_tokens=ibis.least(reusable * per.block_tokens, per.input_tokens),
    )


def per_group(audit: Audit, lifetime: int = CACHE_SECONDS) -> ir.Table:
    """Per group: blocks, reusable blocks and tokens, and the dollars of caching them."""
    r = per_request(audit, lifetime)
    cached, written = r.cached.fill_null(0), r.written.fill_null(0)
    write = ibis.least(r.written_blocks * r.block_tokens, r.input_tokens - r.reusable_tokens)
    agg = r.group_by("gid").aggregate(
        requests=r.count(), blocks=r.blocks.sum(), reusable_blocks=r.reusable_blocks.sum(),
        reusable_tokens=r.reusable_tokens.sum(), reading=(r.reusable_blocks > 0).sum(),
        extra_read=ibis.greatest(r.reusable_tokens - cached, 0).sum(),
        extra_write=ibis.greatest(write - written, 0).sum(),
    )  # fmt: skip
    p = priced(agg, audit.prices)
    return p.mutate(
        read_saving_usd=money(p.extra_read, p.input_price - p.read_price),
        write_extra_usd=money(p.extra_write, p.write_price - p.input_price),
    )


def keys(audit: Audit) -> set[int]:
    """The groups whose logs carry prefix block ids (measured here, not from the fixed part)."""
    return {int(g["gid"]) for g in audit.groups if g["prefix_rows"]}


def caching(audit: Audit) -> Iterator[Finding]:
    """One finding per group whose reusable prefix blocks would save more than writes cost."""
    if not keys(audit):
        return
    for r in audit.named(fetch.rows(per_group(audit))):
        saving = dec(r["read_saving_usd"]) - dec(r["write_extra_usd"])
        if saving > 0:
            yield _finding(audit, r, saving)


def _finding(audit: Audit, r: dict[str, Any], saving: Decimal) -> Finding:
    name = name_of(r)
    blocks, reusable = int(r["blocks"]), int(r["reusable_blocks"])
    share = reusable / max(blocks, 1)
    reading = int(r["reading"]) / max(int(r["requests"]), 1)
    return audit.finding(
        r, lever="prompt_caching",
        title=f"{name}: {share:.0%} of its prompt blocks are a prefix sent within the cache "
        "lifetime: cache them",
        summary=(
            f"Of {blocks:,} prefix blocks in {int(r['requests']):,} requests of {name}, "
            f"{reusable:,} lead a prompt whose prefix the group sent within "
            f"{CACHE_SECONDS // 60} minutes before ({reading:.0%} of requests could read some): "
            f"{int(r['reusable_tokens']):,} tokens a prompt cache could serve, "
            f"{int(r['extra_read']):,} more than the logs show read from one."
        ),
        current=dec(r["cost"]), savings=Savings(saving, saving, saving),
        method="leading prefix blocks reused within the cache lifetime (block ids), read at the "
        "cache-read price; blocks reused later written at the cache-write price (genai-prices)",
        inputs={"blocks": blocks, "reusable_blocks": reusable,
                "reusable_tokens": r["reusable_tokens"], "extra_cache_read_tokens":
                r["extra_read"], "extra_cache_write_tokens": r["extra_write"],
                "read_saving_usd": r["read_saving_usd"],
                "write_cost_usd": r["write_extra_usd"]},
        coverage=priced_share(r),
        risk="low: caching changes no answer; the cost of cache writes is counted",
        action=cache_action(str(r["provider"]),
                            int(r["reusable_tokens"]) // max(int(r["reading"]), 1)),
    )  # fmt: skip
