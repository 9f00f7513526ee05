"""Anthropic Messages API results (or log records, or Message Batches results), one per line.

Anthropic's `usage.input_tokens` EXCLUDES `cache_read_input_tokens` and
`cache_creation_input_tokens`: the ledger's `input_tokens` is the sum of the three (genai-prices'
semantics). `cache_creation.ephemeral_1h_input_tokens` (1h writes, priced higher than 5m ones)
are priced as such. A Message has no timestamp: a log record around it, or a `timestamp` beside
it, must carry one. Streamed messages are summed by `anthropic_stream` and read here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costline.sources.llm.records import (
    Envelope,
    LlmRecord,
    count,
    mapping,
    text,
    timestamp,
)


def is_messages(response: Mapping[str, Any]) -> bool:
    usage = response.get("usage")
    if not isinstance(usage, Mapping) or "input_tokens" not in usage:
        return False
    return (
        response.get("type") == "message"
        or "cache_read_input_tokens" in usage
        or "cache_creation_input_tokens" in usage
        or str(response.get("model", "")).startswith("claude")
    )


def _price_context(tier: str | None, env: Envelope) -> str | None:
    if env.batch or tier == "batch":
        return "processing=batch"
    return "service_tier=priority" if tier == "priority" else None


def parse_messages(env: Envelope) -> LlmRecord:
    response = env.response
    usage = mapping(response.get("usage"), "usage")
    uncached = count(usage.get("input_tokens"), "usage.input_tokens")
    read = count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens", required=False)
    write = count(
        usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens", required=False
    )
    creation = mapping(usage.get("cache_creation"), "usage.cache_creation")
    write_1h = count(
        creation.get("ephemeral_1h_input_tokens"), "ephemeral_1h_input_tokens", required=False
    )
    tier = text(usage.get("service_tier"))
    record = LlmRecord(
        ts=timestamp(env.ts, "timestamp"),
        provider=env.provider or "anthropic",
        model=text(response.get("model")),
        input_tokens=uncached + read + write,
        cached_input_tokens=read,
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        output_tokens=count(usage.get("output_tokens"), "usage.output_tokens"),
        request_id=text(response.get("id")),
        status="ok" if response.get("stop_reason") != "refusal" else "refusal",
        price_context=_price_context(tier, env),
    )
    if tier is not None:
        record.tags["service_tier"] = tier
    # end_turn, max_tokens (truncated), stop_sequence, tool_use, refusal, ...
    record.stop_reason = text(response.get("stop_reason"))
    if write_1h:
        record.tags["cache_write_1h_tokens"] = str(write_1h)
    return env.finish(record)
