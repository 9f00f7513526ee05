"""Anthropic Messages streaming events, logged one per line, summed into one request per message.

A streamed call is a run of server-sent events: `message_start` (the message id, model and the
input side of `usage`: `input_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`),
`content_block_*` and `ping` (no usage), `message_delta` (`delta.stop_reason` and `usage`, whose
counts are CUMULATIVE: the last value is the total, deltas are never added) and `message_stop`.
A line is an event itself, or a log record around one (`{"timestamp", "message_id", "event":
{...}}`, or `"data"` for an SSE log), whose `timestamp`, `metadata`, `request` and `provider` are
read as for a response.

Events of several streams may be interleaved: a line is matched to its message by an id beside
the event (`message_id`, `request_id`, `stream_id`) or in it (`message.id`); a line with
no id belongs to the one message still open (started, not stopped); with several open it is
refused, as no reader could tell which it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from costline.sources.llm import anthropic
from costline.sources.llm.records import Envelope, LlmRecord, RecordError, mapping, text

EVENTS = frozenset(
    {"message_start", "message_delta", "message_stop", "content_block_start",
     "content_block_delta", "content_block_stop", "ping", "error"}
)  # fmt: skip
_ID_KEYS = ("message_id", "request_id", "stream_id")
_WRAPPER_KEYS = ("event", "data")


def event_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The streaming event `obj` is or wraps, else None."""
    if obj.get("type") in EVENTS:
        return obj
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner.get("type") in EVENTS:
            return inner
    return None


@dataclass
class _Message:
    """One streamed message being summed: the first line's log record, and its usage so far."""

    line: int
    wrapper: Mapping[str, Any]
    message: dict[str, Any]
    usage: dict[str, Any]
    ts: object = None
    open: bool = True
    delta_seen: bool = False
    error: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def record(self) -> LlmRecord:
        """The message as one Messages API response, read like any other."""
        response = {**self.message, "usage": self.usage}
        env = Envelope.of({**self.wrapper, "response": response})
        env.ts = self.ts
        record = anthropic.parse_messages(env)
        if self.error is not None:
            record.status = "error"
            record.tags["error_type"] = self.error
        elif not self.delta_seen:
            record.status = "incomplete"  # the stream ended before its final usage
        return record


class StreamAssembler:
    """Collects the event lines of a file and yields one record per streamed message."""

    def __init__(self) -> None:
        self.messages: list[_Message] = []
        self.by_id: dict[str, _Message] = {}

    def add(self, number: int, obj: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Take one event line (its 1-based `number`, the line `obj`, the `event` in it)."""
        kind = event.get("type")
        ts = _ts(obj, event)
        if kind == "message_start":
            self._start(number, obj, event, ts)
            return
        if kind in ("ping", "content_block_start", "content_block_delta", "content_block_stop"):
            return
        msg = self._find(obj, event, kind)
        if msg is None:
            return  # an error before any message started: there was no call to price
        if msg.ts is None:
            msg.ts = ts
        if kind == "message_delta":
            usage = mapping(event.get("usage"), "usage")
            msg.usage.update({k: v for k, v in usage.items() if v is not None})  # cumulative
            delta = mapping(event.get("delta"), "delta")
            if delta.get("stop_reason") is not None:
                msg.message["stop_reason"] = delta["stop_reason"]
            msg.delta_seen = True
        elif kind == "message_stop":
            msg.open = False
        elif kind == "error":
            msg.error = text(mapping(event.get("error"), "error").get("type")) or "error"
            msg.open = False

    def _start(
        self, number: int, obj: Mapping[str, Any], event: Mapping[str, Any], ts: object
    ) -> None:
        message = dict(mapping(event.get("message"), "message"))
        if not message:
            raise RecordError("message_start without `message`")
        usage = dict(mapping(message.pop("usage", None), "message.usage"))
        wrapper = {k: v for k, v in obj.items() if k not in (*_WRAPPER_KEYS, "type", "message")}
        msg = _Message(number, wrapper, message, usage, ts)
        self.messages.append(msg)
        for key in [*_ids(obj, event), text(message.get("id"))]:
            if key is not None:
                if key in self.by_id and self.by_id[key] is not msg:
                    raise RecordError(f"message {key} started twice")
                self.by_id[key] = msg

    def _find(self, obj: Mapping[str, Any], event: Mapping[str, Any], kind: Any) -> _Message | None:
        ids = _ids(obj, event)
        if ids:
            found = next((self.by_id[i] for i in ids if i in self.by_id), None)
            if found is None and kind != "error":
                raise RecordError(f"{kind} for message {ids[0]}, which no message_start began")
            return found
        open_ = [m for m in self.messages if m.open]
        if len(open_) == 1:
            return open_[0]
        if not open_ and kind == "error":
            return None
        if not open_:
            raise RecordError(f"{kind} before any message_start")
        raise RecordError(
            f"{kind} without a message id while {len(open_)} messages are streaming "
            f"(started on lines {', '.join(str(m.line) for m in open_)}): log the id beside "
            "each event (message_id) so they can be told apart"
        )

    def pending(self) -> Iterator[tuple[int, Callable[[], LlmRecord]]]:
        """(line of its message_start, its record's builder) for every message, in the order
        they began: building may raise RecordError, which the reader puts on that line."""
        for msg in self.messages:
            yield msg.line, msg.record


def _ids(obj: Mapping[str, Any], event: Mapping[str, Any]) -> list[str]:
    """Ids beside the event in its log record (a bare event carries none but `message.id`)."""
    if obj is event:
        return []
    return [str(obj[k]) for k in _ID_KEYS if obj.get(k) is not None]


def _ts(obj: Mapping[str, Any], event: Mapping[str, Any]) -> object:
    for source in (obj, event):
        for key in ("timestamp", "ts", "time", "created_at"):
            if source.get(key) is not None:
                return source[key]
    return None
