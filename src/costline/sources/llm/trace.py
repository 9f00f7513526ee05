"""Plain LLM request traces: CSV or JSON lines with a time, token counts and perhaps a model.

A trace written by a gateway, a load generator or a research group (Azure's `TIMESTAMP,
ContextTokens, GeneratedTokens`; Mooncake's `{"timestamp", "input_length", "output_length"}`)
follows no provider's format, so the reader is told which column holds each `llm_requests` field
(`LlmTrace.columns`; a field not mapped is read from a column of its own name when there is one,
in any case in a CSV header; the time also from `timestamp`, `time`, `start_time`, `created_at`)
and the values of the fields no column holds (`default_model`, `provider`, `app`). Each row is one
request. Times are ISO 8601 or numbers (unix time, or offsets from `time_origin` in `time_unit`).

A row without a `request_id` column gets one from its content (`trace-<hash>-<n>`, n counting
identical rows of the file), so a trace read again after it grew, or an overlapping export,
replaces its requests instead of counting them twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from costline.catalog.token_prices import resolve_model
from costline.config import TRACE_FIELDS, LlmTrace
from costline.sources.llm.lines import json_values
from costline.sources.llm.records import (
    LlmRecord,
    RecordError,
    count,
    line_error,
    optional_count,
    text,
    timestamp,
)

REQUIRED = ("ts", "input_tokens", "output_tokens")
_COUNTS = ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "max_tokens", "turn")
_TEXTS = ("request_id", "status", "user", "team", "tenant", "endpoint", "prompt_id",
          "conversation_id", "prompt_hash", "stop_reason")  # fmt: skip
_DEFAULTED = {"model": "default_model", "provider": "provider", "app": "app"}
_UNIT_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
# The columns an unmapped field is read from: its own name, and for the time the usual ones.
_UNMAPPED = {
    "ts": ("ts", "timestamp", "time", "start_time", "created_at"),
    "conversation_id": ("conversation_id", "session_id"),
    "stop_reason": ("stop_reason", "finish_reason"),
    "prefix_hashes": ("prefix_hashes", "hash_ids"),  # Mooncake's prefix block ids
}
# A numeric time before this is not a unix time but an offset from the trace's start.
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# What makes two rows the same request when the trace has no request id.
_IDENTITY = (
    "ts", "provider", "model", "input_tokens", "output_tokens", "cached_input_tokens",
    "cache_write_tokens", "reasoning_tokens", "app", "user", "team", "tenant", "endpoint",
    "status", "latency_ms",
)  # fmt: skip


class TraceError(RecordError):
    """A value of one column that cannot be read; the reader adds the file and the line."""

    def __init__(self, column: str, message: str) -> None:
        self.column = column
        super().__init__(f"column {column}: {message}")


def columns(spec: LlmTrace, header: Collection[str] | None) -> dict[str, tuple[str, ...]]:
    """field -> the column(s) it is read from, for a file with `header` (None: JSON lines,
    whose keys vary: an unmapped field is then looked up per row under each of its names).

    A CSV must have a column for each required field; JSON rows are checked one by one.
    """
    mapped: dict[str, str] = {str(k): v for k, v in spec.columns.items()}
    by_lower = {h.lower(): h for h in header or ()}
    of: dict[str, tuple[str, ...]] = {}
    for field in TRACE_FIELDS:
        column = mapped.get(field)
        names = _UNMAPPED.get(field, (field,))
        if column is not None:
            if header is not None and column not in header:
                raise TraceError(column, f"mapped to {field}, but the file's columns are "
                                 f"{_names(header)}")  # fmt: skip
            of[field] = (column,)
        elif header is None:
            of[field] = names
        elif found := next((by_lower[n] for n in names if n in by_lower), None):
            of[field] = (found,)
    if header is not None:
        for field in required(spec):
            if field not in of:
                raise RecordError(f"no column for {field}: {_hint(field)}; the file's columns "
                                  f"are {_names(header)}")  # fmt: skip
    return of


def required(spec: LlmTrace) -> tuple[str, ...]:
    return REQUIRED if spec.default_model is not None else (*REQUIRED, "model")


def _names(header: Collection[str]) -> str:
    return ", ".join(header) if header else "none"


def _hint(field: str) -> str:
    also = " or give a default model (--default-model)" if field == "model" else ""
    return f"map one (--map {field}=COLUMN, or trace.columns in the config){also}"


def _lookup(row: Mapping[str, Any], column: str) -> object:
    """A column's value: the key itself, else a dotted path into nested JSON objects."""
    if column in row:
        return row[column]
    value: object = row
    for part in column.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _number(value: object, column: str) -> float:
    if isinstance(value, bool):
        raise TraceError(column, f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        raise TraceError(column, f"not a number: {value!r}") from None


def trace_time(value: object, column: str, spec: LlmTrace) -> dt.datetime:
    """The request's time: ISO text, a unix time, or an offset from `spec.time_origin`."""
    if spec.time_origin is not None:
        seconds = _number(value, column) / _UNIT_SECONDS[spec.time_unit or "s"]
        return spec.time_origin.astimezone(dt.UTC) + dt.timedelta(seconds=seconds)
    numeric = isinstance(value, int | float) or _is_number(value)
    if numeric and spec.time_unit is not None:
        value = _number(value, column) / _UNIT_SECONDS[spec.time_unit]
    try:
        ts = timestamp(value, column)
    except (RecordError, OverflowError, OSError, ValueError):
        raise TraceError(column, f"not a time: {value!r}") from None
    if numeric and ts < _EARLIEST:
        raise TraceError(
            column,
            f"{value} is not a unix time (it is before 2000): if times are offsets from the "
            "trace's start, give a time origin (--time-origin, and --time-unit)",
        )
    return ts


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


class RowReader:
    """Reads the rows of one trace file into records, with stable request ids."""

    def __init__(self, spec: LlmTrace, of: Mapping[str, tuple[str, ...]]) -> None:
        self.spec = spec
        self.of = of
        self.required = required(spec)
        self.first = {field: columns[0] for field, columns in of.items() if columns}
        self.seen: Counter[str] = Counter()

    def column(self, field: str) -> str:
        """The column `field` is read from (its first candidate), for messages."""
        return self.first.get(field, field)

    def find(self, row: Mapping[str, Any], field: str) -> tuple[str, object]:
        """(column, value) of `field` in `row`; an empty value is None (a required one raises)."""
        for column in self.of.get(field, ()):
            value = row[column] if column in row else _lookup(row, column)
            if value is not None and value != "":
                return column, value
        if field in self.required:
            raise TraceError(self.column(field), f"{field} is missing ({_hint(field)})")
        return field, None

    def get(self, row: Mapping[str, Any], field: str) -> object:
        return self.find(row, field)[1]

    def _count(self, row: Mapping[str, Any], field: str, read: Callable[..., int | None]) -> Any:
        column, value = self.find(row, field)
        try:
            return read(value, field)
        except RecordError as exc:
            raise TraceError(column, str(exc)) from None

    def record(self, row: Mapping[str, Any]) -> LlmRecord:
        """One row as one request: mapped columns, then the defaults for what they lack."""
        spec = self.spec
        values: dict[str, Any] = {
            f: text(self.get(row, f)) or getattr(spec, d) for f, d in _DEFAULTED.items()
        }
        values |= {f: text(self.get(row, f)) for f in _TEXTS}
        values |= {f: self._count(row, f, optional_count) for f in _COUNTS}
        ts_column, ts = self.find(row, "ts")
        latency = self.get(row, "latency_ms")
        blocks = _hash_list(*self.find(row, "prefix_hashes"))
        record = LlmRecord(
            ts=trace_time(ts, ts_column, spec),
            input_tokens=self._count(row, "input_tokens", count),
            output_tokens=self._count(row, "output_tokens", count),
            latency_ms=None if latency is None else _number(latency, self.column("latency_ms")),
            prefix_hashes=blocks,
            prefix_block_tokens=None if blocks is None else spec.block_tokens,
            **values,
        )
        record.status = record.status or "ok"
        if record.request_id is None:
            record.request_id = self._content_id(record)
        return record.check()

    def _content_id(self, record: LlmRecord) -> str:
        key = "\x1f".join([str(getattr(record, n)) for n in _IDENTITY])
        digest = hashlib.sha256(key.encode()).hexdigest()[:20]
        n = self.seen[digest]
        self.seen[digest] += 1
        return f"trace-{digest}-{n}"


def _hash_list(column: str, value: object) -> list[str] | None:
    """Prefix block ids: a JSON array (Mooncake's `hash_ids`), or in a CSV cell a JSON array or
    ids separated by spaces, commas or semicolons."""
    if value is None:
        return None
    if isinstance(value, str):
        cell = value.strip()
        if cell.startswith("["):
            try:
                value = json.loads(cell)
            except json.JSONDecodeError:
                raise TraceError(column, f"not a JSON array: {value!r}") from None
        else:
            value = [v for v in cell.replace(",", " ").replace(";", " ").split() if v]
    if not isinstance(value, list) or any(isinstance(v, dict | list) for v in value):
        raise TraceError(column, f"prefix block ids must be a list of ids, got {value!r}")
    return [str(v) for v in value]


def _csv_items(reader: csv.DictReader[str]) -> Iterator[tuple[str, int, object]]:
    for row in reader:
        yield "line", reader.line_num, row


def parse_trace(path: Path, body: str, spec: LlmTrace, *, is_csv: bool) -> list[LlmRecord]:
    """Every row of a CSV or JSON trace as one request; a bad row is an IngestError naming the
    file, the line and the column."""
    header: list[str] | None = None
    if is_csv:
        reader = csv.DictReader(io.StringIO(body, newline=""))
        header = list(reader.fieldnames or ())
        items = _csv_items(reader)
    else:
        where, values = json_values(path, body)
        items = ((where, number, value) for number, value in values)
    try:
        rows = RowReader(spec, columns(spec, header))
    except RecordError as exc:
        raise line_error(path, "line", 1, str(exc), getattr(exc, "column", None)) from None
    out: list[LlmRecord] = []
    for where, number, row in items:
        try:
            if not isinstance(row, Mapping):
                raise RecordError(f"expected a JSON object, got {type(row).__name__}")
            out.append(rows.record(row))
        except (RecordError, ValueError) as exc:
            raise line_error(path, where, number, str(exc), getattr(exc, "column", None)) from None
    _fill_providers(out)
    return out


def _fill_providers(records: list[LlmRecord]) -> None:
    """A row with no provider gets the one genai-prices finds for its model (gpt-4o-mini:
    openai), so it is attributed, and found again when the trace is re-read (the ledger
    replaces a request by provider and request id). An unknown model keeps none."""
    owners: dict[str, str | None] = {}
    for r in records:
        if r.provider is None and r.model is not None:
            if r.model not in owners:
                hit = resolve_model("", r.model)
                owners[r.model] = None if hit is None else hit[0]
            r.provider = owners[r.model]
