"""The demo's LLM API traffic: `llm/openai_chat.jsonl` and `llm/anthropic_messages.jsonl`.

Log records wrapping each response (`timestamp`, `latency_ms`, `request`, `response`, `metadata`
with `app`, `team`, `endpoint`), as docs/llm-usage.md describes. Requests follow the diurnal curve
(`usage.DIURNAL`) over the telemetry window; apps with a long system prompt read most of it from
the prompt cache. Four more apps (`WASTE_APPS`) each waste tokens in one known way, and the
dollars they waste are returned for `ground_truth.json` (see `token_waste`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from costline.demo.fleets.base import stable_hex
from costline.demo.token_waste import (
    KEPT_TURNS,
    NEEDED_OUTPUT,
    RUNAWAY_EVERY,
    RUNAWAY_OUTPUT,
    STATIC_PREFIX,
    Call,
    token_waste,
)
from costline.demo.usage import DIURNAL


@dataclass(frozen=True)
class LlmApp:
    app: str
    team: str
    provider: str  # openai, anthropic
    model: str  # as the API echoes it
    endpoint: str
    per_hour: int  # requests in the busiest hour at scale 1
    prompt: tuple[int, int]  # input tokens, min..max
    output: tuple[int, int]
    cached: int  # tokens of the system prompt read from the cache (0: no caching)
    max_tokens: int | None = None  # sent in every request
    waste: str | None = None  # the waste planted in the app (`token_waste.SAVINGS`)


STEADY_APPS: tuple[LlmApp, ...] = (
    LlmApp(
        "assistant-chat", "assistant", "anthropic", "claude-sonnet-4-5-20250929", "/chat",
        260, (2600, 9000), (150, 900), 2048,
    ),
    LlmApp(
        "code-review", "ml-platform", "anthropic", "claude-3-5-haiku-20241022", "/review",
        70, (3000, 14000), (200, 1200), 0,
    ),
    LlmApp(
        "support-triage", "assistant", "openai", "gpt-4.1-2025-04-14", "/v1/triage",
        90, (1500, 4000), (100, 600), 1024,
    ),
    LlmApp(
        "search-rewrite", "search", "openai", "gpt-4o-mini-2024-07-18", "/rewrite",
        420, (300, 900), (20, 80), 0,
    ),
)  # fmt: skip
# Output tokens of ticket-summary are its answers' (up to NEEDED_OUTPUT); tutor-chat's `per_hour`
# is conversations started, its prompt the system prompt and its output one answer.
WASTE_APPS: tuple[LlmApp, ...] = (
    LlmApp(
        "contract-qa", "assistant", "anthropic", "claude-sonnet-4-5-20250929", "/contracts/ask",
        120, (STATIC_PREFIX + 50, STATIC_PREFIX + 1500), (100, 600), 0, 1024, "static_prefix",
    ),
    LlmApp(
        "ticket-summary", "assistant", "openai", "gpt-4o-2024-05-13", "/tickets/summary",
        600, (600, 2500), (120, NEEDED_OUTPUT), 0, None, "runaway_output",
    ),
    LlmApp(
        "tutor-chat", "search", "openai", "gpt-4.1-2025-04-14", "/tutor",
        24, (700, 700), (150, 500), 0, None, "full_history",
    ),
    LlmApp(
        "faq-bot", "search", "openai", "gpt-4.1-2025-04-14", "/faq",
        360, (300, 300), (120, 320), 0, None, "duplicates",
    ),
)  # fmt: skip
APPS = STEADY_APPS + WASTE_APPS
FILES = {"openai": "openai_chat.jsonl", "anthropic": "anthropic_messages.jsonl"}
# A live incident: this app's system prompt triples (its cached 1,024 tokens stay cached; the
# 2,048 new ones are read fresh) for the window's last hours, when the window has a baseline.
PROMPT_SPIKE_APP = "support-triage"
PROMPT_SPIKE_HOURS = 3
PROMPT_SPIKE_MIN_WINDOW = 12  # hours of traffic the spike needs before it, to be a spike


def prompt_spike_start(start: dt.datetime, hours: int) -> dt.datetime | None:
    """When the live prompt spike begins in a window of `hours` from `start`; None if none."""
    if hours < PROMPT_SPIKE_MIN_WINDOW:
        return None
    return start + dt.timedelta(hours=hours - PROMPT_SPIKE_HOURS, minutes=17)


def _openai(
    app: LlmApp, rid: str, created: int, tokens: tuple[int, int, int], finish: str = "stop"
) -> dict[str, object]:
    prompt, cached, completion = tokens
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": app.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "..."},
             "finish_reason": finish}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
        "service_tier": "default",
    }  # fmt: skip


def _anthropic(app: LlmApp, rid: str, tokens: tuple[int, int, int]) -> dict[str, object]:
    prompt, cached, completion = tokens
    return {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": app.model,
        "content": [{"type": "text", "text": "..."}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": prompt - cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": completion,
            "service_tier": "standard",
        },
    }


@dataclass(frozen=True)
class Shape:
    """What a waste app's call adds to a log record: its request fields and metadata."""

    request: dict[str, object] = field(default_factory=dict)
    metadata: dict[str, object] = field(default_factory=dict)
    finish: str = "stop"


def _record(
    app: LlmApp, at: dt.datetime, n: int, rng: Random, extra_prompt: int = 0,
    tokens: tuple[int, int, int] | None = None, shape: Shape = Shape(),
) -> dict[str, object]:  # fmt: skip
    if tokens is None:
        prompt = rng.randint(*app.prompt) + extra_prompt
        cached = app.cached if app.cached and rng.random() < 0.85 else 0
        tokens = (prompt, min(cached, prompt), rng.randint(*app.output))
    rid = stable_hex(f"{app.app}/{at.isoformat()}/{n}", 24)
    response = (
        _openai(app, rid, int(at.timestamp()), tokens, shape.finish)
        if app.provider == "openai"
        else _anthropic(app, rid, tokens)
    )
    user = f"u-{rng.randint(1, 400)}"
    request: dict[str, object] = {"model": app.model.rsplit("-20", 1)[0], **shape.request,
                                  "metadata": {"user_id": user}}  # fmt: skip
    if app.max_tokens is not None:
        request["max_tokens"] = app.max_tokens
    return {
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "latency_ms": round(200 + tokens[2] * (8 + 10 * rng.random()), 1),
        "request": request,
        "response": response,
        "metadata": {
            "app": app.app,
            "team": app.team,
            "endpoint": app.endpoint,
            **shape.metadata,
        },
    }


def _hours(
    app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random
) -> Iterator[list[dt.datetime]]:
    """Each hour's request times (sorted): the diurnal curve, lower at weekends."""
    for hour in range(hours):
        at = start + dt.timedelta(hours=hour)
        week = 0.72 if at.weekday() >= 5 else 1.0
        n = int(app.per_hour * scale * DIURNAL[at.hour] * week * (0.9 + 0.2 * rng.random()))
        offsets = sorted(rng.randint(0, 3_599_999) for _ in range(n))
        yield [at + dt.timedelta(milliseconds=ms) for ms in offsets]


Line = tuple[dt.datetime, dict[str, object]]


def _steady(app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random) -> list[Line]:
    spike = prompt_spike_start(start, hours)
    out: list[Line] = []
    for times in _hours(app, start, hours, scale, rng):
        for when in times:
            tripled = app.app == PROMPT_SPIKE_APP and spike is not None and when >= spike
            extra = 2 * app.cached if tripled else 0
            out.append((when, _record(app, when, len(out), rng, extra)))
    return out


def _prefixed(app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random,
              calls: list[Call]) -> list[Line]:  # fmt: skip
    """contract-qa: the static prefix and the user's question, never cached."""
    out: list[Line] = []
    for times in _hours(app, start, hours, scale, rng):
        for when in times:
            tokens = (rng.randint(*app.prompt), 0, rng.randint(*app.output))
            calls.append(Call(when, tokens[0], tokens[2]))
            out.append((when, _record(app, when, len(out), rng, tokens=tokens)))
    return out


def _runaway(app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random,
             calls: list[Call]) -> list[Line]:  # fmt: skip
    """ticket-summary: no max_tokens; about one answer in 140 runs on to the model's output
    limit (spread out, so the app's latency p95 stays a steady app's)."""
    out: list[Line] = []
    due = rng.randint(*RUNAWAY_EVERY)
    for times in _hours(app, start, hours, scale, rng):
        for when in times:
            due -= 1
            runaway = due <= 0
            due = rng.randint(*RUNAWAY_EVERY) if runaway else due
            answer = RUNAWAY_OUTPUT if runaway else rng.randint(*app.output)
            tokens = (rng.randint(*app.prompt), 0, answer)
            calls.append(Call(when, tokens[0], answer))
            shape = Shape(finish="length" if runaway else "stop")
            out.append((when, _record(app, when, len(out), rng, tokens=tokens, shape=shape)))
    return out


def _conversations(app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random,
                   calls: list[Call]) -> list[Line]:  # fmt: skip
    """tutor-chat: conversations of 3-24 turns, each turn re-sending the whole history."""
    end = start + dt.timedelta(hours=hours)
    out: list[Line] = []
    for times in _hours(app, start, hours, scale, rng):
        for first in times:
            session = stable_hex(f"{app.app}/{first.isoformat()}", 16)
            exchanges: list[int] = []
            when = first
            for turn in range(1, rng.randint(3, 24) + 1):
                if when >= end:
                    break
                user, answer = rng.randint(40, 250), rng.randint(*app.output)
                tokens = (app.prompt[0] + sum(exchanges) + user, 0, answer)
                older = sum(exchanges[: max(turn - 1 - KEPT_TURNS, 0)])
                calls.append(Call(when, tokens[0], answer, history=older))
                shape = Shape(metadata={"session_id": session, "turn": turn})
                out.append((when, _record(app, when, len(out), rng, tokens=tokens, shape=shape)))
                exchanges.append(user + answer)
                when += dt.timedelta(seconds=rng.randint(20, 90))
    return out


FAQ_SYSTEM = "You answer questions about the product from its help center. Be brief."
FAQ_POPULAR = 40  # questions asked again and again
FAQ_REPEAT = 0.55  # share of calls asking a popular question


def _questions(app: LlmApp, start: dt.datetime, hours: int, scale: float, rng: Random,
               calls: list[Call]) -> list[Line]:  # fmt: skip
    """faq-bot: most calls ask one of a few popular questions (Zipf), the rest their own."""
    weights = [1 / (k + 1) for k in range(FAQ_POPULAR)]
    out: list[Line] = []
    for times in _hours(app, start, hours, scale, rng):
        for when in times:
            popular = rng.random() < FAQ_REPEAT
            k = rng.choices(range(FAQ_POPULAR), weights)[0] if popular else len(out)
            question = f"{'faq' if popular else 'own'}-{k}: how do I ...?"
            asked = app.prompt[0] + 15 + (k * 7919) % 45  # the same question, the same tokens
            tokens = (asked, 0, rng.randint(*app.output))
            calls.append(Call(when, asked, tokens[2], question=question))
            messages = [{"role": "system", "content": FAQ_SYSTEM},
                        {"role": "user", "content": question}]  # fmt: skip
            shape = Shape(request={"messages": messages, "temperature": 0})
            out.append((when, _record(app, when, len(out), rng, tokens=tokens, shape=shape)))
    return out


WASTE = {"static_prefix": _prefixed, "runaway_output": _runaway,
         "full_history": _conversations, "duplicates": _questions}  # fmt: skip


@dataclass(frozen=True)
class LlmUsage:
    """What `write_llm_usage` wrote: requests per app, and the token waste planted."""

    per_app: dict[str, int]
    waste: list[dict[str, str]]


def write_llm_usage(out: Path, start: dt.datetime, hours: int, scale: float, seed: int) -> LlmUsage:
    """Write both files; return the requests written per app and the waste planted."""
    per_app: dict[str, int] = {}
    waste: list[dict[str, str]] = []
    lines: dict[str, list[str]] = {p: [] for p in FILES}
    for app in APPS:
        rng = Random(f"{seed}/llm/{app.app}")
        calls: list[Call] = []
        if app.waste is None:
            written = _steady(app, start, hours, scale, rng)
        else:
            written = WASTE[app.waste](app, start, hours, scale, rng, calls)
            waste += token_waste(app.app, app.provider, app.model, app.waste, calls, start, hours)
        lines[app.provider] += [json.dumps(record) for _, record in written]
        per_app[app.app] = len(written)
    out.mkdir(parents=True, exist_ok=True)
    for provider, name in FILES.items():
        (out / name).write_text("".join(f"{line}\n" for line in lines[provider]), encoding="utf-8")
    return LlmUsage(per_app, waste)
