"""The demo's LLM API traffic: `llm/openai_chat.jsonl` and `llm/anthropic_messages.jsonl`.

Log records wrapping each response (`timestamp`, `latency_ms`, `request`, `response`, `metadata`
with `app`, `team`, `endpoint`), as docs/llm-usage.md describes. Requests follow the diurnal curve
(`usage.DIURNAL`) over the telemetry window; apps with a long system prompt read most of it from
the prompt cache.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from random import Random

from costline.demo.fleets.base import stable_hex
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


APPS: tuple[LlmApp, ...] = (
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


def _openai(app: LlmApp, rid: str, created: int, tokens: tuple[int, int, int]) -> dict[str, object]:
    prompt, cached, completion = tokens
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": app.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "..."}}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
        "service_tier": "default",
    }


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


def _record(
    app: LlmApp, at: dt.datetime, n: int, rng: Random, extra_prompt: int = 0
) -> dict[str, object]:
    prompt = rng.randint(*app.prompt) + extra_prompt
    cached = app.cached if app.cached and rng.random() < 0.85 else 0
    tokens = (prompt, min(cached, prompt), rng.randint(*app.output))
    rid = stable_hex(f"{app.app}/{at.isoformat()}/{n}", 24)
    response = (
        _openai(app, rid, int(at.timestamp()), tokens)
        if app.provider == "openai"
        else _anthropic(app, rid, tokens)
    )
    user = f"u-{rng.randint(1, 400)}"
    return {
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "latency_ms": round(200 + tokens[2] * (8 + 10 * rng.random()), 1),
        "request": {"model": app.model.rsplit("-20", 1)[0], "metadata": {"user_id": user}},
        "response": response,
        "metadata": {"app": app.app, "team": app.team, "endpoint": app.endpoint},
    }


def write_llm_usage(
    out: Path, start: dt.datetime, hours: int, scale: float, seed: int
) -> dict[str, int]:
    """Write both files; return the requests written per app."""
    per_app: dict[str, int] = {}
    lines: dict[str, list[str]] = {p: [] for p in FILES}
    spike = prompt_spike_start(start, hours)
    for app in APPS:
        rng = Random(f"{seed}/llm/{app.app}")
        count = 0
        for hour in range(hours):
            at = start + dt.timedelta(hours=hour)
            week = 0.72 if at.weekday() >= 5 else 1.0
            n = int(app.per_hour * scale * DIURNAL[at.hour] * week * (0.9 + 0.2 * rng.random()))
            offsets = sorted(rng.randint(0, 3_599_999) for _ in range(n))
            for ms in offsets:
                when = at + dt.timedelta(milliseconds=ms)
                tripled = app.app == PROMPT_SPIKE_APP and spike is not None and when >= spike
                extra = 2 * app.cached if tripled else 0
                lines[app.provider].append(json.dumps(_record(app, when, count, rng, extra)))
                count += 1
        per_app[app.app] = count
    out.mkdir(parents=True, exist_ok=True)
    for provider, name in FILES.items():
        (out / name).write_text("".join(f"{line}\n" for line in lines[provider]), encoding="utf-8")
    return per_app
