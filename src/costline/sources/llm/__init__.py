"""LLM usage files into `llm_requests`, priced: the format is detected per file.

| format | detected by |
|---|---|
| OpenAI Chat Completions results, JSON lines | `usage.prompt_tokens` |
| OpenAI Responses API results, JSON lines | `object: "response"` or `usage.input_tokens_details` |
| Anthropic Messages results, JSON lines | `type: "message"`, `usage.cache_*_input_tokens` or a `claude*` model |
| LiteLLM SpendLogs, CSV / JSON array / JSON lines | `request_id`, `spend`, `startTime` |
| OpenTelemetry GenAI spans, OTLP JSON (or lines) | `resourceSpans` |
| OpenAI organization Usage API (completions) | a page whose `data[]` buckets have `results` |
| Anthropic streaming events, JSON lines | `type: "message_start"`, `"message_delta"`, ... |

JSON lines may wrap each response in a log record (`timestamp`, `latency_ms`, `request`,
`response`, `metadata`), or carry the timestamp beside a bare response, and may mix OpenAI and
Anthropic records; streaming events are summed into one request per message. A plain request
trace (CSV or JSON lines of times and token counts) is read with a column mapping (`LlmTrace`),
never detected. See docs/llm-usage.md. Rows are
priced by `costline.catalog.token_prices` before they reach the ledger; unpriced models come back
as warnings (data-quality findings) with their request counts.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from costline.catalog.token_prices import price_arrow
from costline.config import LlmTrace
from costline.errors import IngestError
from costline.sources.base import FileSource, SourceBatch, SourceFile, arrow_batch
from costline.sources.llm import anthropic, anthropic_stream, litellm, openai, openai_usage, otlp
from costline.sources.llm.lines import Numbered, json_values
from costline.sources.llm.records import Envelope, LlmRecord, RecordError, line_error, to_arrow
from costline.sources.llm.trace import parse_trace

LLM_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".jsonl.gz", ".json.gz", ".csv.gz")
TABLE = "llm_requests"

Parsed = tuple[str, LlmRecord]  # (dialect, record)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"not UTF-8 text ({exc.reason})", path=str(path)) from None


def parse_response(obj: Mapping[str, Any]) -> Parsed:
    """One provider response, or a log record or Batch API line around one."""
    env = Envelope.of(obj)
    response = env.response
    if openai.is_responses(response):
        return "openai-responses", openai.parse_responses(env)
    if openai.is_chat(response):
        return "openai-chat", openai.parse_chat(env)
    if anthropic.is_messages(response):
        return "anthropic-messages", anthropic.parse_messages(env)
    if isinstance(response.get("usage"), Mapping) and "input_tokens" in response["usage"]:
        return "openai-responses", openai.parse_responses(env)
    raise RecordError(
        "not an LLM usage record: expected `usage` with prompt_tokens (OpenAI Chat), "
        "input_tokens (OpenAI Responses, Anthropic), a LiteLLM SpendLogs row, OTLP "
        "`resourceSpans` or a Usage API page"
    )


def _document(doc: object) -> Iterator[Parsed]:
    """Every call in one JSON value (a line, or the whole file)."""
    if otlp.is_otlp(doc):
        assert isinstance(doc, Mapping)
        for resource, span in otlp.spans(doc):
            if otlp.is_llm_span(otlp.attributes(span.get("attributes"))):
                yield "otel-genai", otlp.parse_span(resource, span)
    elif openai_usage.is_usage_page(doc):
        assert isinstance(doc, Mapping)
        for bucket, result in openai_usage.results(doc):
            yield "openai-usage-api", openai_usage.parse_result(bucket, result)
    elif isinstance(doc, Mapping) and litellm.is_spend_log(doc):
        yield "litellm-spendlogs", litellm.parse_spend_log(doc)
    elif isinstance(doc, Mapping):
        yield parse_response(doc)
    else:
        raise RecordError(f"expected a JSON object, got {type(doc).__name__}")


def _parse_values(path: Path, where: str, values: Numbered) -> list[Parsed]:
    """Every call in the JSON values of a file; streaming events are summed per message."""
    out: list[Parsed] = []
    streams = anthropic_stream.StreamAssembler()
    for number, doc in values:
        try:
            event = anthropic_stream.event_of(doc) if isinstance(doc, Mapping) else None
            if event is not None:
                assert isinstance(doc, Mapping)
                streams.add(number, doc, event)
            else:
                out.extend(_document(doc))
        except (RecordError, TypeError, AttributeError, ValueError) as exc:
            raise line_error(path, where, number, str(exc)) from None
    for number, build in streams.pending():
        try:
            out.append(("anthropic-stream", build()))
        except (RecordError, TypeError, AttributeError, ValueError) as exc:
            raise line_error(path, where, number, str(exc)) from None
    return out


def _parse_csv(path: Path, text: str) -> list[Parsed]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not litellm.is_spend_log({k: None for k in reader.fieldnames or ()}):
        raise IngestError(
            "not a LiteLLM SpendLogs CSV: expected the columns request_id, spend, startTime; "
            "to read a plain request trace, map its columns (--map ts=COLUMN --map "
            "input_tokens=COLUMN --map output_tokens=COLUMN --default-model MODEL)",
            path=str(path),
        )
    out: list[Parsed] = []
    for row in reader:
        try:
            out.append(("litellm-spendlogs", litellm.parse_spend_log(row)))
        except (RecordError, ValueError) as exc:
            raise line_error(path, "line", reader.line_num, str(exc)) from None
    return out


def parse_file(path: Path, trace: LlmTrace | None = None) -> tuple[str, list[LlmRecord]]:
    """The dialect(s) and the calls of one usage file; with `trace`, a plain request trace."""
    text = _read_text(path)
    if trace is not None:
        is_csv = path.name.lower().endswith((".csv", ".csv.gz"))
        return "trace", parse_trace(path, text, trace, is_csv=is_csv)
    if path.name.lower().endswith((".csv", ".csv.gz")):
        parsed = _parse_csv(path, text)
    else:
        parsed = _parse_values(path, *json_values(path, text))
    dialects = sorted({d for d, _ in parsed}) or ["empty"]
    return "+".join(dialects), [r for _, r in parsed]


def read_llm(files: Sequence[SourceFile], trace: LlmTrace | None = None) -> list[SourceBatch]:
    """Each file parsed, detected (or read as a plain `trace`) and priced into one
    `llm_requests` batch."""
    batches = []
    for f in files:
        dialect, records = parse_file(f.path, trace)
        priced, warnings = price_arrow(to_arrow(records))
        batches.append(
            # A request seen again (a log that grew, a corrected export) is the same request:
            # its newer row replaces the older one, so re-reading a growing log never counts twice.
            arrow_batch(
                TABLE,
                f,
                priced,
                dialect=dialect,
                json_map_columns=["tags"],
                warnings=warnings,
                replace_on=("provider", "request_id"),
                replace_skips_nulls=True,
            )
        )
    return batches


ReadLlm = Callable[[Sequence[SourceFile]], list[SourceBatch]]


def llm_file_source(trace: LlmTrace | None = None) -> FileSource:
    """What `costline ingest llm` reads: usage files by detection, or plain traces by `trace`."""
    read: ReadLlm = read_llm if trace is None else functools.partial(read_llm, trace=trace)
    return FileSource("llm", LLM_SUFFIXES, read)
