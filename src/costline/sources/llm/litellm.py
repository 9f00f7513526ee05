"""LiteLLM proxy SpendLogs exports (CSV, a JSON array, or JSON lines): one row per `request_id`.

LiteLLM normalises usage to OpenAI's shape, so `prompt_tokens` is the total input (cache reads and
writes included). Cache parts come from `metadata.usage_object` (or `additional_usage_values`)
when LiteLLM logged it. LiteLLM's own `spend` is kept as the tag `litellm_spend`: the ledger's
`cost_usd` is priced by genai-prices like every other source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from costline.sources.llm.records import (
    LlmRecord,
    RecordError,
    count,
    mapping,
    optional_count,
    text,
    timestamp,
)

REQUIRED = ("request_id", "spend", "model", "prompt_tokens", "completion_tokens", "startTime")


def is_spend_log(row: Mapping[str, Any]) -> bool:
    return "request_id" in row and "spend" in row and "startTime" in row


def _json(value: object, name: str) -> object:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{name} is not JSON: {exc.msg}") from None
    return value


def _usage_parts(metadata: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    usage = mapping(
        metadata.get("usage_object") or metadata.get("additional_usage_values"), "usage"
    )
    details = mapping(usage.get("prompt_tokens_details"), "prompt_tokens_details")
    out = mapping(usage.get("completion_tokens_details"), "completion_tokens_details")
    read = usage.get("cache_read_input_tokens", details.get("cached_tokens"))
    write = usage.get("cache_creation_input_tokens")
    return (
        optional_count(read, "cache_read_input_tokens"),
        optional_count(write, "cache_creation_input_tokens"),
        optional_count(out.get("reasoning_tokens"), "reasoning_tokens"),
    )


def _provider_model(row: Mapping[str, Any]) -> tuple[str | None, str | None]:
    model = text(row.get("model"))
    provider = text(row.get("custom_llm_provider"))
    if model and "/" in model and provider is None:
        prefix, rest = model.split("/", 1)
        return prefix, rest
    if model and provider and model.startswith(provider + "/"):
        model = model[len(provider) + 1 :]
    return provider, model


def _tags(row: Mapping[str, Any], record: LlmRecord) -> None:
    tags = _json(row.get("request_tags"), "request_tags") or []
    if not isinstance(tags, list):
        raise RecordError("request_tags must be a JSON array")
    for tag in tags:
        key, _, value = str(tag).partition(":")
        record.tags.setdefault(key, value)
    for key in ("api_key", "call_type", "model_group", "end_user"):
        if text(row.get(key)):
            record.tags.setdefault(key, str(row[key]))
    record.conversation_id = text(row.get("session_id"))
    # LiteLLM's response-cache key is a hash of the request; "Cache OFF" when caching is off.
    cache_key = text(row.get("cache_key"))
    record.prompt_hash = cache_key if cache_key and cache_key.lower() != "cache off" else None
    if text(row.get("spend")) is not None:
        record.tags["litellm_spend"] = str(row["spend"])


def parse_spend_log(row: Mapping[str, Any]) -> LlmRecord:
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise RecordError(f"not a LiteLLM SpendLogs row: missing {', '.join(missing)}")
    metadata = mapping(_json(row.get("metadata"), "metadata"), "metadata")
    read, write, reasoning = _usage_parts(metadata)
    provider, model = _provider_model(row)
    start = timestamp(row.get("startTime"), "startTime")
    end = timestamp(row["endTime"], "endTime") if text(row.get("endTime")) else None
    status = text(row.get("status")) or "success"
    record = LlmRecord(
        ts=start,
        provider=provider,
        model=model,
        input_tokens=count(row.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=count(row.get("completion_tokens"), "completion_tokens"),
        cached_input_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
        request_id=text(row.get("request_id")),
        latency_ms=None if end is None else (end - start).total_seconds() * 1000,
        status="ok" if status == "success" else status,
        user=text(row.get("user")) or text(metadata.get("user_api_key_user_id")),
        team=text(row.get("team_id")) or text(metadata.get("user_api_key_team_id")),
    )
    _tags(row, record)
    record.attribute(mapping(metadata.get("requester_metadata"), "requester_metadata"))
    for key in ("user_api_key_alias", "user_api_key_team_alias"):
        if text(metadata.get(key)):
            record.tags.setdefault(key, str(metadata[key]))
    return record.check()
