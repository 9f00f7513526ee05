"""Token waste planted in the demo's LLM traffic, and what it wastes: `token_waste` in
`ground_truth.json`, so the token audit (`costline recommend --kind tokens`) can be scored.

Four apps waste tokens in one known way each (`llm_usage.WASTE_APPS`):

| app | waste | lever(s) and true saving |
|---|---|---|
| contract-qa | a 2,400-token static prefix, never cached | `prompt_caching`: each call within 5 minutes of the previous reads the prefix at the cache-read price, every other writes it at the cache-write price; `recurring_prompt`: 30% of the prefix's cost |
| ticket-summary | no `max_tokens`; answers need at most 800 tokens, but one in about 140 runs away to the model's 4,096 | `output_limit`: the runaway tokens above 800 |
| tutor-chat | every turn re-sends the whole conversation | `context_window`: the history older than the last 6 exchanges, on every later turn |
| faq-bot | the same popular questions asked again within minutes | `duplicate_calls`: the calls whose question was asked within 5 minutes before |

The true savings are computed here from the calls as generated, priced per token by genai-prices
itself (`calc_price`), per 30 days of the window's traffic.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from genai_prices import Usage, calc_price

STATIC_PREFIX = 2400
NEEDED_OUTPUT = 800  # the longest answer ticket-summary needs
RUNAWAY_EVERY = (100, 180)  # requests between two runaway answers of ticket-summary
RUNAWAY_OUTPUT = 4096  # gpt-4o-2024-05-13's output limit: a runaway stops there (length)
KEPT_TURNS = 6  # the rolling window the truth of tutor-chat is computed for (the audit's P50)
CACHE_SECONDS = 300  # the provider's cache lifetime, refreshed on each use
DUPLICATE_SECONDS = 300
TRIM = Decimal("0.3")


@dataclass(frozen=True)
class Call:
    """One generated call, as the truth needs it."""

    ts: dt.datetime
    input_tokens: int
    output_tokens: int
    history: int = 0  # tokens of exchanges older than the last KEPT_TURNS (tutor-chat)
    question: str | None = None  # what was asked (faq-bot)


@dataclass(frozen=True)
class Prices:
    """USD per token, from genai-prices' `calc_price` at the traffic's start."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal

    @classmethod
    def of(cls, provider: str, model: str, at: dt.datetime) -> Prices:
        def per_token(**usage: int) -> Decimal:
            price = calc_price(Usage(**usage), model, provider_id=provider,
                               genai_request_timestamp=at)  # fmt: skip
            return price.total_price / 1000

        return cls(
            input=per_token(input_tokens=1000),
            cache_read=per_token(input_tokens=1000, cache_read_tokens=1000),
            cache_write=per_token(input_tokens=1000, cache_write_tokens=1000),
            output=per_token(output_tokens=1000),
        )


def _gaps(calls: Sequence[Call]) -> list[float | None]:
    """Seconds since the previous call (None for the first), in time order."""
    ordered = sorted(c.ts for c in calls)
    return [None, *((b - a).total_seconds() for a, b in itertools.pairwise(ordered))]


def caching_saving(calls: Sequence[Call], p: Prices) -> Decimal:
    """Caching the static prefix: reads within the cache lifetime, writes otherwise."""
    gaps = _gaps(calls)
    hits = sum(1 for g in gaps if g is not None and g <= CACHE_SECONDS)
    misses = len(gaps) - hits
    return STATIC_PREFIX * (hits * (p.input - p.cache_read) - misses * (p.cache_write - p.input))


def trim_saving(calls: Sequence[Call], p: Prices) -> Decimal:
    return TRIM * STATIC_PREFIX * len(calls) * p.input


def output_saving(calls: Iterable[Call], p: Prices) -> Decimal:
    return sum((max(c.output_tokens - NEEDED_OUTPUT, 0) * p.output for c in calls), Decimal(0))


def window_saving(calls: Iterable[Call], p: Prices) -> Decimal:
    return sum((c.history * p.input for c in calls), Decimal(0))


def duplicate_saving(calls: Sequence[Call], p: Prices) -> Decimal:
    """The cost of every call whose question was asked within DUPLICATE_SECONDS before."""
    last: dict[str, dt.datetime] = {}
    total = Decimal(0)
    for c in sorted(calls, key=lambda c: c.ts):
        assert c.question is not None
        before = last.get(c.question)
        if before is not None and (c.ts - before).total_seconds() <= DUPLICATE_SECONDS:
            total += c.input_tokens * p.input + c.output_tokens * p.output
        last[c.question] = c.ts
    return total


SAVINGS = {
    "static_prefix": (("prompt_caching", caching_saving), ("recurring_prompt", trim_saving)),
    "runaway_output": (("output_limit", output_saving),),
    "full_history": (("context_window", window_saving),),
    "duplicates": (("duplicate_calls", duplicate_saving),),
}


def token_waste(
    app: str, provider: str, model: str, waste: str, calls: Sequence[Call],
    start: dt.datetime, hours: int,
) -> list[dict[str, str]]:  # fmt: skip
    """The `token_waste` entries of one app: {lever, app, model, savings_usd_month}."""
    if not calls:
        return []
    prices = Prices.of(provider, model, start)
    per_month = Decimal(30 * 24) / hours
    return [
        {"lever": lever, "app": app, "model": model,
         "savings_usd_month": format((saving(calls, prices) * per_month).quantize(
             Decimal("0.01")), "f")}
        for lever, saving in SAVINGS[waste]
    ]  # fmt: skip
