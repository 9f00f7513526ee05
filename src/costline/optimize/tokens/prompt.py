"""Levers 1 and 4: the recurring cost of each group's fixed prompt, and caching it.

**Recurring prompt** (`recurring_prompt`): the fixed part (`plan.fixed_part`) x calls x price is
what the group pays for its system prompt and static context before any user types a word
(its cached share at the cache-read price). Trimming it by 30% saves 30% of that (the range: 10%
to 50%). Only fixed parts of `MIN_FIXED` tokens or more are worth a finding.

**Prompt caching** (`prompt_caching`): the cacheable prefix read from the cache by every request
within the cache lifetime of the group's previous one, written by every other (`plan`), priced at
the provider's own cache prices from genai-prices: Anthropic reads at 0.1x and writes 5-minute
entries at 1.25x the input price; OpenAI writes for free and reads at a discount. The saving is
what the reads save less what the writes add, beyond what the logs show cached already. When the
logs carry prefix block ids, `blocks` measures the cacheable prefix instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.recommend import Savings
from costline.optimize.tokens.audit import Audit, dec, name_of, priced_share
from costline.optimize.tokens.plan import CACHE_SECONDS, cacheable, fixed_part

MIN_FIXED = 500
TRIM = {"p50": Decimal("0.3"), "low": Decimal("0.1"), "high": Decimal("0.5")}
PREFIX_RANGE = Decimal("0.7")  # low: the prefix 30% shorter than estimated


def recurring(audit: Audit, rows: Sequence[Mapping[str, Any]]) -> Iterator[Finding]:
    """One finding per group whose fixed prompt part is `MIN_FIXED` tokens or more."""
    for r in rows:
        tokens, source = fixed_part(r)
        cost = dec(r["fixed_usd"])
        if tokens < MIN_FIXED or cost <= 0:
            continue
        per_day = cost / Decimal(str(audit.days))
        daily_tokens = int(r["fixed_tokens"] or 0) / audit.days
        name = name_of(r)
        yield audit.finding(
            r, lever="recurring_prompt",
            title=f"{name}: a {tokens:,}-token fixed prompt costs ${per_day:,.2f} a day",
            summary=(
                f"Every call of {name} sends about {tokens:,} fixed tokens ({source}): "
                f"{daily_tokens / 1e6:,.1f}M tokens and ${per_day:,.2f} a day before the user's "
                f"own text. Trimming it by 30% saves ${per_day * TRIM['p50']:,.2f} a day."
            ),
            current=cost, savings=Savings(*(cost * TRIM[k] for k in ("p50", "low", "high"))),
            method="fixed part x calls x price (cached share at the cache-read price); "
            "saving of trimming it by 30% (10-50%)",
            inputs={"fixed_tokens": tokens, "fixed_source": source,
                    "fixed_tokens_per_day": round(daily_tokens), "fixed_usd_per_day": per_day},
            coverage=priced_share(r),
            risk="medium: a shorter prompt can change answers; compare a sample of answers "
            "before and after",
            action=f"Trim the fixed prompt of {name} (about {tokens:,} tokens) by 30%, to about "
            f"{int(tokens * 0.7):,}: drop instructions and examples the model follows without "
            "them, and fetch rarely needed context only when a request needs it.",
        )  # fmt: skip


def caching(audit: Audit, rows: Sequence[Mapping[str, Any]], skip: set[int]) -> Iterator[Finding]:
    """One finding per group whose cacheable prefix would save more than its writes cost
    (groups in `skip` are measured from their prefix blocks instead)."""
    for r in rows:
        prefix = cacheable(r)
        saving = dec(r["read_saving_usd"]) - dec(r["write_extra_usd"])
        if prefix <= 0 or saving <= 0 or r["gid"] in skip:
            continue
        single = max(int(r["single"] or 0), 1)
        now, could = int(r["hit_calls"] or 0) / single, int(r["hits"] or 0) / single
        yield audit.finding(
            r, lever="prompt_caching",
            title=f"{name_of(r)}: cache its {prefix:,}-token prefix ({now:.0%} of requests read "
            f"the cache, {could:.0%} could)",
            summary=_cache_summary(r, prefix, now, could),
            current=dec(r["cost"]), savings=Savings(saving, saving * PREFIX_RANGE, saving),
            method="fixed-part prefix read from the cache by requests within the cache "
            "lifetime of the group's previous one, written by the others, at the provider's "
            "cache read and write prices (genai-prices)",
            inputs=_cache_inputs(r, prefix), coverage=priced_share(r),
            risk="low: caching changes no answer; the cost of cache writes is counted",
            action=cache_action(str(r["provider"]), prefix),
        )  # fmt: skip


def _cache_summary(r: Mapping[str, Any], prefix: int, now: float, could: float) -> str:
    return (
        f"{name_of(r)} sends a fixed prefix of about {prefix:,} tokens; {now:.0%} of its requests "
        f"read cached tokens, and {could:.0%} came within {CACHE_SECONDS // 60} minutes "
        f"of the previous one, so they could read the prefix from the cache: "
        f"{int(r['extra_read'] or 0):,} more tokens read at "
        f"{_ratio(r['read_price'], r['input_price'])} of the input price, "
        f"{int(r['extra_write'] or 0):,} written at {_ratio(r['write_price'], r['input_price'])}."
    )


def _cache_inputs(r: Mapping[str, Any], prefix: int) -> dict[str, Any]:
    return {
        "cacheable_prefix_tokens": prefix, "prefix_source": fixed_part(r)[1],
        "cache_lifetime_seconds": CACHE_SECONDS,
        "requests_within_ttl": r["hits"], "requests_reading_cache_now": r["hit_calls"],
        "extra_cache_read_tokens": r["extra_read"], "extra_cache_write_tokens": r["extra_write"],
        "read_saving_usd": r["read_saving_usd"], "write_cost_usd": r["write_extra_usd"],
        "cache_read_price_ratio": _ratio(r["read_price"], r["input_price"]),
        "cache_write_price_ratio": _ratio(r["write_price"], r["input_price"]),
    }  # fmt: skip


def cache_action(provider: str, prefix: int) -> str:
    """How to cache a prefix of `prefix` tokens with `provider`."""
    first = (f"Put the static {prefix:,}-token prefix first (system prompt, tools, fixed context) "
             "and everything that varies after it, byte for byte the same on every call")  # fmt: skip
    if provider == "anthropic":
        return f'{first}; mark its end with cache_control {{"type": "ephemeral"}}.'
    if provider == "openai":
        return (
            f"{first}: OpenAI then caches it automatically (prompts of 1,024 tokens or more); "
            "pass a prompt_cache_key so requests with this prefix reach the same cache."
        )
    return f"{first}, and turn on the provider's prompt caching for it."


def _ratio(price: object, base: object) -> str:
    if price is None or base is None or dec(base) == 0:
        return "n/a"
    return f"{dec(price) / dec(base):.2f}x"
