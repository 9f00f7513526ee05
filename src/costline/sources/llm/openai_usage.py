"""OpenAI organization Usage API, completions: pages of time buckets of grouped results.

`GET /v1/organization/usage/completions` returns `{"object": "page", "data": [bucket...]}`; a
bucket has `start_time`/`end_time` (unix seconds) and `results`, each with `input_tokens`
(INCLUDES `input_cached_tokens`), `output_tokens`, `num_model_requests` and the group-by keys
`project_id`, `user_id`, `api_key_id`, `model`, `batch`, `service_tier` (null when not grouped).
Each result becomes one rollup row with `requests` = `num_model_requests`, stamped at the bucket
start. A file may hold one page, a JSON array of pages, or one page per line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from costline.sources.llm.records import (
    LlmRecord,
    RecordError,
    count,
    mapping,
    text,
    timestamp,
)


def is_usage_page(doc: object) -> bool:
    if not isinstance(doc, Mapping):
        return False
    data = doc.get("data")
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], Mapping)
        and "results" in data[0]
    ) or (doc.get("object") == "page" and isinstance(data, list))


def _price_context(result: Mapping[str, Any]) -> str | None:
    if result.get("batch") is True:
        return "processing=batch"
    tier = text(result.get("service_tier"))
    return f"service_tier={tier}" if tier and tier not in ("auto", "scale") else None


def parse_result(bucket: Mapping[str, Any], result: Mapping[str, Any]) -> LlmRecord:
    record = LlmRecord(
        ts=timestamp(bucket.get("start_time"), "start_time"),
        provider="openai",
        model=text(result.get("model")),
        input_tokens=count(result.get("input_tokens"), "input_tokens"),
        cached_input_tokens=count(
            result.get("input_cached_tokens"), "input_cached_tokens", required=False
        ),
        cache_write_tokens=0,
        output_tokens=count(result.get("output_tokens"), "output_tokens"),
        requests=count(result.get("num_model_requests"), "num_model_requests"),
        user=text(result.get("user_id")),
        price_context=_price_context(result),
    )
    for key in ("project_id", "api_key_id", "service_tier", "batch"):
        if result.get(key) is not None:
            value = result[key]
            record.tags[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if bucket.get("end_time") is not None:
        end = timestamp(bucket["end_time"], "end_time")
        record.tags["bucket_seconds"] = str(int((end - record.ts).total_seconds()))
    return record.check()


def results(page: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for bucket in page.get("data") or []:
        bucket = mapping(bucket, "bucket")
        items = bucket.get("results")
        if not isinstance(items, list):
            raise RecordError("a usage bucket without a `results` list")
        for result in items:
            yield bucket, mapping(result, "result")
