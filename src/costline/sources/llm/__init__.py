"""LLM usage files into `llm_requests`, priced: the format is detected per file.

| format | detected by |
|---|---|
| OpenAI Chat Completions results, JSON lines | `usage.prompt_tokens` |
| OpenAI Responses API results, JSON lines | `object: "response"` or `usage.input_tokens_details` |
| Anthropic Messages results, JSON lines | `type: "message"`, `usage.cache_*_input_tokens` or a `claude*` model |
| LiteLLM SpendLogs, CSV / JSON array / JSON lines | `request_id`, `spend`, `startTime` |
| OpenTelemetry GenAI spans, OTLP JSON (or lines) | `resourceSpans` |
| OpenAI organization Usage API (completions) | a page whose `data[]` buckets have `results` |

JSON lines may wrap each response in a log record (`timestamp`, `latency_ms`, `request`,
`response`, `metadata`), and may mix OpenAI and Anthropic records; see docs/llm-usage.md. Rows are
priced by `costline.catalog.token_prices` before they reach the ledger; unpriced models come back
as warnings (data-quality findings) with their request counts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from costline.catalog.token_prices import price_arrow
from costline.errors import IngestError
from costline.sources.base import SourceBatch, SourceFile, arrow_batch
from costline.sources.llm import anthropic, litellm, openai, openai_usage, otlp
from costline.sources.llm.records import Envelope, LlmRecord, RecordError, to_arrow

LLM_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".jsonl.gz", ".json.gz", ".csv.gz")
TABLE = "llm_requests"

Parsed = tuple[str, LlmRecord]  # (dialect, record)


def _bad(path: Path, where: str, number: int, message: str) -> IngestError:
    err = IngestError(f"{where} {number}: {message}", path=str(path))
    err.row = number
    return err


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


def _parse_lines(path: Path, lines: Iterable[str]) -> list[Parsed]:
    out: list[Parsed] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.extend(_document(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise _bad(path, "line", number, f"not JSON ({exc.msg})") from None
        except (RecordError, TypeError, AttributeError, ValueError) as exc:
            raise _bad(path, "line", number, str(exc)) from None
    return out


def _parse_json(path: Path, text: str) -> list[Parsed]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # more than one value: JSON lines
            return _parse_lines(path, text.splitlines())
        raise _bad(path, "line", exc.lineno, f"not JSON ({exc.msg})") from None
    items = doc if isinstance(doc, list) else [doc]
    out: list[Parsed] = []
    for number, item in enumerate(items, start=1):
        try:
            out.extend(_document(item))
        except (RecordError, TypeError, AttributeError, ValueError) as exc:
            where = "record" if isinstance(doc, list) else "line"
            raise _bad(path, where, number, str(exc)) from None
    return out


def _parse_csv(path: Path, text: str) -> list[Parsed]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not litellm.is_spend_log({k: None for k in reader.fieldnames or ()}):
        raise IngestError(
            "not a LiteLLM SpendLogs CSV: expected the columns request_id, spend, startTime",
            path=str(path),
        )
    out: list[Parsed] = []
    for row in reader:
        try:
            out.append(("litellm-spendlogs", litellm.parse_spend_log(row)))
        except (RecordError, ValueError) as exc:
            raise _bad(path, "line", reader.line_num, str(exc)) from None
    return out


def parse_file(path: Path) -> tuple[str, list[LlmRecord]]:
    """The dialect(s) and the calls of one usage file."""
    text = _read_text(path)
    lower = path.name.lower()
    parsed = (
        _parse_csv(path, text) if lower.endswith((".csv", ".csv.gz")) else _parse_json(path, text)
    )
    dialects = sorted({d for d, _ in parsed}) or ["empty"]
    return "+".join(dialects), [r for _, r in parsed]


def read_llm(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Each file parsed, detected and priced into one `llm_requests` batch."""
    batches = []
    for f in files:
        dialect, records = parse_file(f.path)
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
