"""OpenAI Chat Completions and Responses API results (or log records around them), one per line.

Chat: `usage.prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens`, and
`completion_tokens` includes `completion_tokens_details.reasoning_tokens`. Responses:
`input_tokens` includes `input_tokens_details.cached_tokens`, `output_tokens` includes
`output_tokens_details.reasoning_tokens`. Both are already the ledger's semantics (total input,
cache reads a part of it); OpenAI charges nothing extra for cache writes, so `cache_write_tokens` is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costline.sources.llm.records import (
    Envelope,
    LlmRecord,
    RecordError,
    conversation_of,
    count,
    mapping,
    optional_count,
    text,
    timestamp,
)


def is_chat(response: Mapping[str, Any]) -> bool:
    usage = response.get("usage")
    return isinstance(usage, Mapping) and "prompt_tokens" in usage


def is_responses(response: Mapping[str, Any]) -> bool:
    usage = response.get("usage")
    return response.get("object") == "response" or (
        isinstance(usage, Mapping)
        and ("input_tokens_details" in usage or "output_tokens_details" in usage)
    )


def _price_context(response: Mapping[str, Any], env: Envelope) -> str | None:
    if env.batch:
        return "processing=batch"
    tier = text(response.get("service_tier"))
    return f"service_tier={tier}" if tier and tier not in ("auto", "scale") else None


def _common(response: Mapping[str, Any], env: Envelope, created_key: str) -> dict[str, Any]:
    return {
        "ts": timestamp(env.ts if env.ts is not None else response.get(created_key), created_key),
        "provider": env.provider or "openai",
        "model": text(response.get("model")),
        "request_id": text(response.get("id")),
        "price_context": _price_context(response, env),
    }


def parse_chat(env: Envelope) -> LlmRecord:
    response = env.response
    usage = mapping(response.get("usage"), "usage")
    prompt = mapping(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
    completion = mapping(usage.get("completion_tokens_details"), "usage.completion_tokens_details")
    record = LlmRecord(
        **_common(response, env, "created"),
        input_tokens=count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        cached_input_tokens=count(prompt.get("cached_tokens"), "cached_tokens", required=False),
        cache_write_tokens=0,
        output_tokens=count(usage.get("completion_tokens"), "usage.completion_tokens"),
        reasoning_tokens=optional_count(completion.get("reasoning_tokens"), "reasoning_tokens"),
        status="ok",
    )
    if response.get("service_tier") is not None:
        record.tags["service_tier"] = str(response["service_tier"])
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        record.stop_reason = text(choices[0].get("finish_reason"))  # stop, length, tool_calls
    record.attribute(mapping(response.get("metadata"), "metadata"))
    record.user = record.user or text(response.get("user"))
    return env.finish(record)


def parse_responses(env: Envelope) -> LlmRecord:
    response = env.response
    usage = mapping(response.get("usage"), "usage")
    if not usage:
        raise RecordError("a Responses API result without `usage`")
    inp = mapping(usage.get("input_tokens_details"), "usage.input_tokens_details")
    out = mapping(usage.get("output_tokens_details"), "usage.output_tokens_details")
    prompt = mapping(response.get("prompt"), "prompt")
    record = LlmRecord(
        **_common(response, env, "created_at"),
        input_tokens=count(usage.get("input_tokens"), "usage.input_tokens"),
        cached_input_tokens=count(inp.get("cached_tokens"), "cached_tokens", required=False),
        cache_write_tokens=0,
        output_tokens=count(usage.get("output_tokens"), "usage.output_tokens"),
        reasoning_tokens=optional_count(out.get("reasoning_tokens"), "reasoning_tokens"),
        status="ok" if response.get("status") in (None, "completed") else str(response["status"]),
        max_tokens=optional_count(response.get("max_output_tokens"), "max_output_tokens"),
        prompt_id=text(prompt.get("id")),
    )
    if response.get("service_tier") is not None:
        record.tags["service_tier"] = str(response["service_tier"])
    incomplete = mapping(response.get("incomplete_details"), "incomplete_details")
    record.stop_reason = text(incomplete.get("reason")) or text(response.get("status"))
    record.conversation_id = conversation_of(response)
    record.attribute(mapping(response.get("metadata"), "metadata"))
    record.user = (
        record.user or text(response.get("user")) or text(response.get("safety_identifier"))
    )
    return env.finish(record)
