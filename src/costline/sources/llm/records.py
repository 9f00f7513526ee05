"""One LLM call as every usage format is mapped to it, and the Arrow table the pricing step reads.

Token semantics of the ledger (the same as genai-prices'): `input_tokens` is the TOTAL input of
the call, and `cached_input_tokens` (cache reads) and `cache_write_tokens` (cache writes) are parts
of it; `output_tokens` is the total output, and `reasoning_tokens` a part of it. OpenAI already
reports input that way; Anthropic's `input_tokens` excludes cache reads and writes, so its adapter
adds the three. `check()` refuses a record whose parts exceed their total.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral
from pathlib import Path
from typing import Any

import pyarrow as pa

from costline.errors import IngestError
from costline.schema import LLM_REQUESTS


class RecordError(ValueError):
    """A record that cannot be mapped; the reader adds the file and the line."""


def line_error(
    path: Path, where: str, number: int, message: str, column: str | None = None
) -> IngestError:
    """`FILE: line N: message` (or `record N`), with the row and column set on the error."""
    err = IngestError(f"{where} {number}: {message}", path=str(path))
    err.row = number
    err.column = column
    return err


# Metadata keys read into the ledger's attribution columns, first match wins; the rest go to tags.
ATTRIBUTION_KEYS: dict[str, tuple[str, ...]] = {
    "app": ("app", "app_name", "application", "service.name"),
    "team": ("team", "team_id", "team_alias"),
    "tenant": ("tenant", "tenant_id", "customer", "customer_id", "org_id"),
    "user": ("user", "user_id", "end_user", "enduser.id"),
    "prompt_id": ("prompt_id", "prompt_name"),
    "endpoint": ("endpoint", "route", "feature"),
    "system_prompt_tokens": ("system_prompt_tokens",),
    # What the token audit reads (docs/llm-usage.md): LiteLLM and Langfuse call a conversation a
    # session, OpenAI Assistants a thread, OpenTelemetry `gen_ai.conversation.id`.
    "conversation_id": (
        "conversation_id",
        "session_id",
        "sessionId",
        "thread_id",
        "chat_id",
        "gen_ai.conversation.id",
    ),
    "turn": ("turn", "turn_number"),
    "prompt_hash": ("prompt_hash",),
    "stop_reason": ("stop_reason", "finish_reason"),
}
_INT_ATTRIBUTES = ("system_prompt_tokens", "turn")
# Stop reasons that mean the output limit cut the answer (OpenAI, Anthropic, Responses, Gemini).
TRUNCATED = ("length", "max_tokens", "max_output_tokens")


@dataclass
class LlmRecord:
    """One call (or a rollup of `requests` calls), before pricing."""

    ts: dt.datetime
    provider: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    requests: int = 1
    request_id: str | None = None
    latency_ms: float | None = None
    status: str | None = None
    max_tokens: int | None = None
    system_prompt_tokens: int | None = None
    prompt_id: str | None = None
    app: str | None = None
    user: str | None = None
    team: str | None = None
    tenant: str | None = None
    endpoint: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    conversation_id: str | None = None
    turn: int | None = None
    prompt_hash: str | None = None
    stop_reason: str | None = None
    prefix_hashes: list[str] | None = None
    prefix_block_tokens: int | None = None
    # Pricing only, not ledger columns: 1h cache writes (a part of cache_write_tokens) and the
    # genai-prices price context ("processing=batch", "service_tier=priority").
    cache_write_1h_tokens: int | None = None
    price_context: str | None = None

    def check(self) -> LlmRecord:
        parts = (self.cached_input_tokens or 0) + (self.cache_write_tokens or 0)
        if parts > self.input_tokens:
            raise RecordError(
                f"cache reads and writes ({parts}) exceed the total input ({self.input_tokens})"
            )
        if (self.reasoning_tokens or 0) > self.output_tokens:
            raise RecordError(
                f"reasoning tokens ({self.reasoning_tokens}) exceed output tokens "
                f"({self.output_tokens})"
            )
        if (self.cache_write_1h_tokens or 0) > (self.cache_write_tokens or 0):
            raise RecordError("1h cache writes exceed all cache writes")
        if self.requests < 0:
            raise RecordError(f"negative request count {self.requests}")
        return self

    def attribute(self, metadata: Mapping[str, Any], *, tag_rest: bool = True) -> None:
        """Fill unset attribution columns from `metadata`; other scalar keys become tags."""
        used: set[str] = set()
        for column, keys in ATTRIBUTION_KEYS.items():
            for key in keys:
                value = metadata.get(key)
                if value is None or isinstance(value, dict | list):
                    continue
                used.add(key)
                if getattr(self, column) is None:
                    setattr(
                        self, column,
                        _as_int(value, column) if column in _INT_ATTRIBUTES else str(value),
                    )  # fmt: skip
                break
        if tag_rest:
            for key, value in metadata.items():
                if key not in used and value is not None and key not in self.tags:
                    self.tags[key] = value if isinstance(value, str) else json.dumps(value)


def _as_int(value: object, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return count(value, name)


def count(value: object, name: str, *, required: bool = True) -> int:
    """A token or request count: a non-negative integer (JSON may write 12 or 12.0)."""
    if value is None and not required:
        return 0
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, Integral) or int(value) < 0:
        raise RecordError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def optional_count(value: object, name: str) -> int | None:
    return None if value is None or value == "" else count(value, name)


def timestamp(value: object, name: str) -> dt.datetime:
    """Unix seconds (or milliseconds, or nanoseconds) or ISO 8601 text; no zone means UTC."""
    if isinstance(value, bool) or value is None or value == "":
        raise RecordError(f"{name} is missing: a timestamp is needed to price the call")
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds > 1e17:
            seconds /= 1e9
        elif seconds > 1e11:
            seconds /= 1e3
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            ts = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                return timestamp(float(text), name)
            except ValueError:
                raise RecordError(f"{name} is not a timestamp: {value!r}") from None
        return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
    raise RecordError(f"{name} is not a timestamp: {value!r}")


def text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def mapping(value: object, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordError(f"{name} must be an object, got {type(value).__name__}")
    return value


# -- to Arrow -------------------------------------------------------------------------------------

_PRICING_ONLY = {"cache_write_1h_tokens": pa.int64(), "price_context": pa.string()}
_TS = pa.timestamp("us", tz="UTC")


def _arrow_type(name: str) -> pa.DataType:
    if name == "ts":
        return _TS
    if name == "tags":
        return pa.string()  # JSON object text; the ledger makes it a map
    return LLM_REQUESTS[name].to_pyarrow()


RECORD_COLUMNS = tuple(f.name for f in fields(LlmRecord))
ARROW_SCHEMA = pa.schema([(n, _PRICING_ONLY.get(n) or _arrow_type(n)) for n in RECORD_COLUMNS])


def to_arrow(records: Sequence[LlmRecord]) -> pa.Table:
    """The records as the Arrow table the pricing step reads (tags as JSON object text)."""
    columns: dict[str, list[Any]] = {n: [] for n in RECORD_COLUMNS}
    for r in records:
        for n in RECORD_COLUMNS:
            columns[n].append(getattr(r, n))
    columns["tags"] = [json.dumps(t, sort_keys=True) for t in columns["tags"]]
    return pa.table(columns, schema=ARROW_SCHEMA)


# -- log records around a provider response -------------------------------------------------------

_TS_KEYS = ("timestamp", "ts", "time", "created_at", "start_time", "startTime", "request_time")
_LATENCY_KEYS = ("latency_ms", "duration_ms", "elapsed_ms")


@dataclass
class Envelope:
    """What a log record says around the provider's response: when, how long, for whom."""

    response: Mapping[str, Any]
    request: Mapping[str, Any]
    metadata: Mapping[str, Any]
    ts: object = None
    latency_ms: float | None = None
    status: str | None = None
    provider: str | None = None
    batch: bool = False

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Envelope:
        """A bare response (perhaps with `timestamp` and `metadata` beside it), a log record
        `{timestamp, request, response, metadata}`, or a Batch API output line (`custom_id` +
        `response.body` from OpenAI, `result.message` from Anthropic)."""
        batch = "custom_id" in obj
        response: Mapping[str, Any] = obj
        if isinstance(obj.get("response"), Mapping):
            response = obj["response"]
            if isinstance(response.get("body"), Mapping):
                response = response["body"]
        elif isinstance(obj.get("result"), Mapping) and isinstance(
            obj["result"].get("message"), Mapping
        ):
            response = obj["result"]["message"]
        latency = next((obj[k] for k in _LATENCY_KEYS if obj.get(k) is not None), None)
        if latency is not None and (
            isinstance(latency, bool) or not isinstance(latency, int | float)
        ):
            raise RecordError(f"latency must be a number of milliseconds, got {latency!r}")
        return cls(
            response=mapping(response, "response"),
            request=mapping(obj.get("request"), "request") if response is not obj else {},
            metadata=mapping(obj.get("metadata"), "metadata"),
            # A bare response logged with its time beside it ({"timestamp": ..., "id": "msg_...",
            # "type": "message", ...}) is read too: an Anthropic Message has no time of its own.
            ts=next((obj[k] for k in _TS_KEYS if obj.get(k) is not None), None),
            latency_ms=None if latency is None else float(latency),
            status=text(obj.get("status")) if response is not obj else None,
            provider=text(obj.get("provider")),
            batch=batch,
        )

    def max_tokens(self) -> int | None:
        for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
            if self.request.get(key) is not None:
                return count(self.request[key], f"request.{key}")
        return None

    def finish(self, record: LlmRecord) -> LlmRecord:
        """Apply the envelope's latency, status and metadata (before the response's own)."""
        record.latency_ms = self.latency_ms
        record.status = self.status or record.status
        if record.max_tokens is None:
            record.max_tokens = self.max_tokens()
        record.attribute(self.metadata)
        record.attribute(mapping(self.request.get("metadata"), "request.metadata"))
        if self.request.get("user") is not None and record.user is None:
            record.user = text(self.request.get("user"))
        record.conversation_id = record.conversation_id or conversation_of(self.request)
        record.prompt_hash = record.prompt_hash or prompt_hash(self.request)
        return record.check()


# The request fields that make two calls the same question: the prompt, the tools and the
# output format (not the model, which the audit groups by, nor metadata, user or streaming).
PROMPT_FIELDS = ("system", "messages", "input", "instructions", "prompt", "tools",
                 "tool_choice", "response_format", "text")  # fmt: skip


def prompt_hash(request: Mapping[str, Any]) -> str | None:
    """sha256 (first 32 hex digits) of the request's prompt fields as canonical JSON; None when
    the log kept no prompt. Only the hash reaches the ledger, never the text."""
    content = {k: request[k] for k in PROMPT_FIELDS if request.get(k) is not None}
    if not any(k in content for k in ("messages", "input", "prompt", "system", "instructions")):
        return None
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def conversation_of(obj: Mapping[str, Any]) -> str | None:
    """OpenAI's `conversation` (an id, or an object with one) of a request or a response."""
    value = obj.get("conversation")
    if isinstance(value, Mapping):
        value = value.get("id")
    return text(value) if isinstance(value, str | int) else None
