"""OpenTelemetry GenAI spans as OTLP JSON (`resourceSpans` / `scopeSpans` / `spans`).

A span is an LLM call when it has `gen_ai.usage.*` or `gen_ai.operation.name` attributes; others
(HTTP, database) are skipped. Semantic conventions (development stability): provider from
`gen_ai.provider.name` (older `gen_ai.system`), model from `gen_ai.response.model` else
`gen_ai.request.model`, `gen_ai.usage.input_tokens` (all input, cached included) and
`gen_ai.usage.output_tokens` (older `prompt_tokens` / `completion_tokens`),
`gen_ai.usage.cache_read.input_tokens` and `gen_ai.usage.cache_creation.input_tokens` when present.
Attribution from span, then resource attributes (`service.name` is the app).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from costline.sources.llm.records import LlmRecord, RecordError, count, optional_count, text
from costline.sources.llm.records import timestamp as to_ts

ERROR = (2, "STATUS_CODE_ERROR")


def is_otlp(doc: object) -> bool:
    return isinstance(doc, Mapping) and "resourceSpans" in doc


def attributes(items: object) -> dict[str, Any]:
    """OTLP `[{key, value: {stringValue|intValue|doubleValue|boolValue|arrayValue}}]` as a dict."""
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, Mapping) or "key" not in item:
            raise RecordError("an attribute without `key`")
        value = item.get("value") or {}
        if "intValue" in value:
            out[item["key"]] = int(value["intValue"])
        elif "arrayValue" in value:
            out[item["key"]] = [
                next(iter(v.values()), None) for v in value["arrayValue"].get("values", [])
            ]
        else:
            out[item["key"]] = next(iter(value.values()), None)
    return out


def spans(doc: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], Mapping[str, Any]]]:
    """(resource attributes, span) for every span of an OTLP export."""
    for rs in doc.get("resourceSpans") or []:
        resource = attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for span in ss.get("spans") or []:
                yield resource, span


def is_llm_span(attrs: Mapping[str, Any]) -> bool:
    return "gen_ai.operation.name" in attrs or any(k.startswith("gen_ai.usage.") for k in attrs)


def parse_span(resource: Mapping[str, Any], span: Mapping[str, Any]) -> LlmRecord:
    attrs = attributes(span.get("attributes"))
    inp = attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))
    out = attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))
    start = to_ts(count(span.get("startTimeUnixNano"), "startTimeUnixNano") / 1e9, "start")
    end_ns = optional_count(span.get("endTimeUnixNano"), "endTimeUnixNano")
    start_ns = count(span.get("startTimeUnixNano"), "startTimeUnixNano")
    code = (span.get("status") or {}).get("code")
    record = LlmRecord(
        ts=start,
        provider=text(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")),
        model=text(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")),
        input_tokens=count(inp, "gen_ai.usage.input_tokens", required=False),
        output_tokens=count(out, "gen_ai.usage.output_tokens", required=False),
        cached_input_tokens=optional_count(
            attrs.get("gen_ai.usage.cache_read.input_tokens"), "cache_read.input_tokens"
        ),
        cache_write_tokens=optional_count(
            attrs.get("gen_ai.usage.cache_creation.input_tokens"), "cache_creation.input_tokens"
        ),
        request_id=text(attrs.get("gen_ai.response.id")) or text(span.get("spanId")),
        latency_ms=None if not end_ns else (end_ns - start_ns) / 1e6,
        status="error" if code in ERROR else "ok",
        max_tokens=optional_count(attrs.get("gen_ai.request.max_tokens"), "max_tokens"),
    )
    if attrs.get("gen_ai.operation.name"):
        record.tags["operation"] = str(attrs["gen_ai.operation.name"])
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, list) and reasons:
        record.stop_reason = text(reasons[0])
    for key in ("error.type", "gen_ai.agent.name", "server.address"):
        if attrs.get(key) is not None:
            record.tags[key] = str(attrs[key])
    record.attribute(attrs, tag_rest=False)
    record.attribute(resource, tag_rest=False)
    for key in ("deployment.environment", "deployment.environment.name", "service.version"):
        if resource.get(key) is not None:
            record.tags.setdefault(key, str(resource[key]))
    return record.check()
