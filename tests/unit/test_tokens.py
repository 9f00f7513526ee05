"""The token audit's levers on small request logs with known answers, priced by genai-prices:
the recurring cost of a fixed prompt and caching it, output limits and truncation, context
growth in conversations, and duplicate calls."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ibis
import pytest
from genai_prices import Usage, calc_price

from costline.attribution.rules import Rules
from costline.catalog.token_prices import price_arrow
from costline.clock import FixedClock
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.tokens import recommend_tokens
from costline.sources.llm.records import LlmRecord, to_arrow

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
HOUR_TO_MONTH = Decimal(720)  # logs within one hour: dollars x 30 x 24 a month
CENT = Decimal("0.01")
SONNET, GPT = ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1")


def per_token(provider: str, model: str, **usage: int) -> Decimal:
    """genai-prices' own price of 1,000 tokens of one kind, per token."""
    return calc_price(Usage(**usage), model, provider_id=provider,
                      genai_request_timestamp=T0).total_price / 1000  # fmt: skip


def call(seconds: float, *, model: tuple[str, str] = SONNET, app: str = "qa",
         **fields: Any) -> LlmRecord:  # fmt: skip
    values: dict[str, Any] = {"input_tokens": 3000, "output_tokens": 100, "team": "search"}
    values.update(fields)
    n = call.count = getattr(call, "count", 0) + 1  # type: ignore[attr-defined]
    return LlmRecord(ts=T0 + dt.timedelta(seconds=seconds), provider=model[0], model=model[1],
                     app=app, request_id=f"r{n}", status="ok", **values)  # fmt: skip


def audit(records: Sequence[LlmRecord], hours: int = 1) -> dict[str, Finding]:
    """The token audit of `records` over `hours` from T0, by lever (one group each here)."""
    priced, warnings = price_arrow(to_arrow([r.check() for r in records]))
    assert not warnings
    end = T0 + dt.timedelta(hours=hours)
    empty = ibis.memtable({"x": [1]})
    inputs = Inputs(empty, empty, empty, T0, end, Rules(), FixedClock(end),
                    llm=ibis.memtable(priced))  # fmt: skip
    found = recommend_tokens(inputs)
    assert len({f.scope["lever"] for f in found}) == len(found), [f.title for f in found]
    return {f.scope["lever"]: f for f in found}


def test_a_logged_system_prompt_costs_calls_x_price_and_caching_it_reads_within_5_minutes() -> None:
    """13 calls with a 2,000-token system prompt, none cached: 10 a minute apart, then 11
    minutes of silence, then 3 more. 11 would read the prefix from the cache, 2 would write it."""
    times = [60 * k for k in range(10)] + [1200, 1260, 1320]
    found = audit([call(s, system_prompt_tokens=2000) for s in times])
    inp = per_token(*SONNET, input_tokens=1000)
    read = per_token(*SONNET, input_tokens=1000, cache_read_tokens=1000)
    write = per_token(*SONNET, input_tokens=1000, cache_write_tokens=1000)
    assert (read / inp, write / inp) == (Decimal("0.1"), Decimal("1.25"))
    caching = found["prompt_caching"]
    saving = 2000 * 11 * (inp - read) - 2000 * 2 * (write - inp)
    assert caching.impact_usd == (saving * HOUR_TO_MONTH).quantize(CENT)
    assert caching.evidence["inputs"]["requests_within_ttl"] == 11
    assert caching.evidence["inputs"]["prefix_source"] == "system_prompt_tokens (median)"
    assert caching.scope == {
        "lever": "prompt_caching",
        "app": "qa",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "recommendation": "tokens",
    }
    assert caching.owner == "search"
    prompt = found["recurring_prompt"]
    cost = 2000 * 13 * inp
    assert prompt.impact_usd == (cost * Decimal("0.3") * HOUR_TO_MONTH).quantize(CENT)
    assert prompt.evidence["current_monthly_usd"] == str((cost * HOUR_TO_MONTH).quantize(CENT))
    assert prompt.evidence["savings_monthly_usd"]["low"] == str(
        (cost * Decimal("0.1") * HOUR_TO_MONTH).quantize(CENT))  # fmt: skip
    assert "2,000-token fixed prompt" in prompt.title


def test_without_a_logged_prompt_the_fixed_part_is_the_input_floor_or_the_cached_prefix() -> None:
    """Inputs of 1,500 + 0..990 tokens: the floor (1st percentile) is the fixed part. Where the
    provider reads a 1,792-token prefix from its cache on most calls but a few calls are short
    (and so below the floor of the rest), the cached prefix is."""
    inputs = [1500 + 10 * (k % 100) for k in range(300)]
    floor = audit([call(10 * k, model=GPT, input_tokens=n) for k, n in enumerate(inputs)])
    prompt = floor["recurring_prompt"].evidence["inputs"]
    assert prompt["fixed_tokens"] == int(_quantile(inputs, 0.01)) == 1509
    assert prompt["fixed_source"] == "the input floor, the 1st percentile of input tokens"
    mixed = [call(10 * k, model=GPT, input_tokens=1900, cached_input_tokens=1792)
             if k % 10 else call(10 * k, model=GPT, input_tokens=600) for k in range(200)]  # fmt: skip
    prompt = audit(mixed)["recurring_prompt"].evidence["inputs"]
    assert (prompt["fixed_tokens"], prompt["fixed_source"]) == (1792, "median cached prefix")


def test_a_floor_needs_enough_requests_to_mean_anything() -> None:
    assert audit([call(60 * k) for k in range(50)]) == {}


def test_a_prefix_below_the_minimum_cacheable_prompt_is_not_recommended_for_caching() -> None:
    found = audit([call(30 * k, system_prompt_tokens=900, input_tokens=1000) for k in range(50)])
    assert "recurring_prompt" in found and "prompt_caching" not in found


def _quantile(values: list[int], q: float) -> float:
    """DuckDB's quantile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def test_answers_without_max_tokens_that_run_away_get_a_cap_with_the_tokens_it_saves() -> None:
    outputs = [100 + (k * 37) % 400 for k in range(298)] + [4000, 3500]
    found = audit([call(10 * k, model=GPT, output_tokens=o) for k, o in enumerate(outputs)])
    p95, p99 = _quantile(outputs, 0.95), _quantile(outputs, 0.99)
    cap = math.ceil(1.1 * p99 / 64) * 64
    assert p99 <= 3 * p95 and cap == 576
    limit = found["output_limit"]
    tail = sum(max(o - cap, 0) for o in outputs)
    price = per_token(*GPT, output_tokens=1000)
    assert limit.impact_usd == (tail * price * HOUR_TO_MONTH).quantize(CENT)
    assert limit.evidence["inputs"]["recommended_max_tokens"] == 576
    assert limit.evidence["inputs"]["share_cut_by_cap"] == round(2 / 300, 4)
    assert "max_tokens=576" in limit.actions[0].text and limit.evidence["risk"].startswith("low")


def test_a_limit_that_truncates_answers_is_flagged_with_what_they_cost() -> None:
    records = [call(10 * k, model=GPT, max_tokens=256, output_tokens=256 if k % 10 == 0 else 120,
                    stop_reason="length" if k % 10 == 0 else "stop") for k in range(100)]  # fmt: skip
    found = audit(records)
    flag = found["limit_truncation"]
    cut = per_token(*GPT, input_tokens=1000) * 3000 + per_token(*GPT, output_tokens=1000) * 256
    assert flag.evidence["inputs"]["truncation_rate"] == 0.1
    assert flag.impact_usd == (10 * cut * HOUR_TO_MONTH / 2).quantize(CENT)
    assert "output_limit" not in found  # the answers that finish need far less than 256


def _conversation(start: float, name: str, turns: int, *, logged: bool) -> list[LlmRecord]:
    """A conversation re-sending its history: a 500-token system prompt, then 50 tokens from the
    user and a 250-token answer per turn (each turn's input: 500 + 300 x earlier turns + 50)."""
    out = []
    for t in range(1, turns + 1):
        extra = {"turn": t} if logged else {}
        out.append(call(start + 60 * t, model=GPT, app="tutor", input_tokens=500 + 300 * (t - 1)
                        + 50, output_tokens=250, conversation_id=name, **extra))  # fmt: skip
    return out


@pytest.mark.parametrize("logged", [True, False])
def test_conversations_that_resend_their_history_get_a_rolling_window(logged: bool) -> None:
    """Turns 8, 9 and 10 of each 10-turn conversation carry 1, 2 and 3 exchanges more than a
    window of the last 6 keeps (turn 7's input): 6 x 300 tokens each; a 5-turn one none."""
    records = [*_conversation(0, "c1", 10, logged=logged),
               *_conversation(30, "c2", 10, logged=logged),
               *_conversation(45, "c3", 5, logged=logged)]  # fmt: skip
    window = audit(records)["context_window"]
    price = per_token(*GPT, input_tokens=1000)
    assert window.impact_usd == (2 * 6 * 300 * price * HOUR_TO_MONTH).quantize(CENT)
    # Range: keeping 10 exchanges saves nothing here, keeping 4 saves (1+..+5) x 300 each.
    savings = window.evidence["savings_monthly_usd"]
    assert savings["low"] == "0.00"
    assert savings["high"] == str((2 * 15 * 300 * price * HOUR_TO_MONTH).quantize(CENT))
    assert window.evidence["inputs"]["conversations"] == 3


def test_identical_prompts_within_five_minutes_are_duplicates_a_response_cache_would_answer() -> (
    None
):
    """Prompt a at 0, 100 and 500 s; b at 0 and 30 s; c once. Within 5 minutes: a@100 and b@30
    (the range: b@30 within a minute, a@500 within 15 minutes too)."""
    sent = [(0, "a"), (100, "a"), (500, "a"), (0, "b"), (30, "b"), (200, "c")]
    found = audit([call(s, model=GPT, prompt_hash=h) for s, h in sent])
    dup = found["duplicate_calls"]
    one = per_token(*GPT, input_tokens=1000) * 3000 + per_token(*GPT, output_tokens=1000) * 100
    assert dup.impact_usd == (2 * one * HOUR_TO_MONTH).quantize(CENT)
    assert dup.evidence["savings_monthly_usd"]["low"] == str((one * HOUR_TO_MONTH).quantize(CENT))
    assert dup.evidence["savings_monthly_usd"]["high"] == str(
        (3 * one * HOUR_TO_MONTH).quantize(CENT))  # fmt: skip
    assert dup.evidence["inputs"]["distinct_prompts"] == 3


def test_no_requests_no_recommendations() -> None:
    empty = ibis.memtable({"x": [1]})
    inputs = Inputs(empty, empty, empty, T0, T0 + dt.timedelta(days=1), Rules(), FixedClock(T0))
    assert recommend_tokens(inputs) == []
