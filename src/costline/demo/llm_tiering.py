"""The demo's model-tiering waste: a classification app on a frontier model, with the proof that a
smaller one does as well.

`intent-classifier` (team assistant) sends its `classification` requests (metadata `task`) to
`gpt-4.1`, and a canary share to `gpt-4.1-mini`; an hourly outcome metric `accepted_answers`
per model (labels `app`, `model`: how many of the hour's labels a reviewer or the downstream
queue accepted) shows the mini model's acceptance as good as the big one's. The requests go
into `llm/openai_chat.jsonl` (after `llm_usage`'s), the metric into
`metrics/llm_outcomes.jsonl`, and the waste into `ground_truth.json` under `token_waste`:
what routing the big model's requests to the small one saves a month, computed here from the
requests written and genai-prices (`genai_prices.calc_price`), not by the recommender.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from random import Random

from genai_prices import Usage, calc_price

from costline.demo.fleets.base import stable_hex
from costline.demo.llm_usage import FILES
from costline.demo.usage import DIURNAL, WEEKEND_TRAFFIC

APP, TEAM, ENDPOINT, TASK = "intent-classifier", "assistant", "/v1/classify", "classification"
FRONTIER = "gpt-4.1-2025-04-14"
SMALL = "gpt-4.1-mini-2025-04-14"
PER_HOUR = 700  # requests in the busiest hour at scale 1
CANARY = 0.15  # the share of requests sent to the small model
ACCEPTED = {FRONTIER: 0.958, SMALL: 0.973}  # the chance a label is accepted
PROMPT = (1300, 2100)  # input tokens: instructions and examples (1,024 cached), then the ticket
CACHED = 1024
OUTPUT = (2, 14)  # a label and its confidence
MAX_TOKENS = 16
OUTCOMES_FILE = "llm_outcomes.jsonl"
METRIC = "accepted_answers"


def _response(
    model: str, rid: str, created: int, tokens: tuple[int, int, int]
) -> dict[str, object]:
    prompt, cached, completion = tokens
    return {
        "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "billing"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion,
                  "prompt_tokens_details": {"cached_tokens": cached}},
        "service_tier": "default",
    }  # fmt: skip


def _record(at: dt.datetime, model: str, n: int, rng: Random) -> tuple[dict[str, object], tuple[int, int, int]]:  # fmt: skip
    prompt = rng.randint(*PROMPT)
    tokens = (prompt, CACHED if rng.random() < 0.85 else 0, rng.randint(*OUTPUT))
    rid = stable_hex(f"{APP}/{at.isoformat()}/{n}", 24)
    record = {
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "latency_ms": round(150 + tokens[2] * (8 + 10 * rng.random()), 1),
        "request": {"model": model.rsplit("-20", 1)[0], "max_tokens": MAX_TOKENS,
                    "metadata": {"user_id": f"u-{rng.randint(1, 400)}"}},
        "response": _response(model, rid, int(at.timestamp()), tokens),
        "metadata": {"app": APP, "team": TEAM, "endpoint": ENDPOINT, "task": TASK},
    }  # fmt: skip
    return record, tokens


def _price(model: str, tokens: tuple[int, int, int], day: dt.date) -> Decimal:
    """A day's summed tokens on `model` by genai-prices (these models' prices are flat per token:
    no long-context tier or time-of-day price, so the sum prices as the requests one by one)."""
    usage = Usage(input_tokens=tokens[0], cache_read_tokens=tokens[1], output_tokens=tokens[2])
    at = dt.datetime.combine(day, dt.time(12), dt.UTC)
    return calc_price(usage, model, provider_id="openai", genai_request_timestamp=at).total_price


def write_llm_tiering(
    out: Path, start: dt.datetime, hours: int, scale: float, seed: int, truth: Path
) -> dict[str, int]:
    """Append the app's requests under `out/llm`, write its outcome metric, add its waste to the
    ground truth at `truth`; return its requests written, by app (see the module)."""
    rng = Random(f"{seed}/llm/{APP}")
    lines: list[str] = []
    metrics: list[str] = []
    daily: dict[dt.date, tuple[int, int, int]] = defaultdict(lambda: (0, 0, 0))  # frontier's
    count = 0
    for hour in range(hours):
        at = start + dt.timedelta(hours=hour)
        week = WEEKEND_TRAFFIC if at.weekday() >= 5 else 1.0
        n = int(PER_HOUR * scale * DIURNAL[at.hour] * week * (0.9 + 0.2 * rng.random()))
        accepted = dict.fromkeys(ACCEPTED, 0)
        for ms in sorted(rng.randint(0, 3_599_999) for _ in range(n)):
            model = SMALL if rng.random() < CANARY else FRONTIER
            record, tokens = _record(at + dt.timedelta(milliseconds=ms), model, count, rng)
            lines.append(json.dumps(record))
            accepted[model] += rng.random() < ACCEPTED[model]
            if model == FRONTIER:
                was = daily[at.date()]
                daily[at.date()] = (was[0] + tokens[0], was[1] + tokens[1], was[2] + tokens[2])
            count += 1
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        metrics += [json.dumps({"ts": stamp, "metric": METRIC, "value": v,
                                "labels": {"app": APP, "model": m}}) for m, v in accepted.items()]  # fmt: skip
    path = out / "llm" / FILES["openai"]
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    (out / "metrics" / OUTCOMES_FILE).write_text("".join(f"{m}\n" for m in metrics), "utf-8")
    saved = sum((_price(FRONTIER, t, d) - _price(SMALL, t, d) for d, t in daily.items()),
                Decimal(0))  # fmt: skip
    _add_truth(truth, saved * 30 * 24 / hours)
    return {APP: count}


def _add_truth(truth: Path, monthly: Decimal) -> None:
    """The waste, as an item of `token_waste` in the ground truth (other levers add theirs)."""
    doc = json.loads(truth.read_text(encoding="utf-8"))
    kept = [i for i in doc.get("token_waste", []) if i.get("lever") != "model_tiering"]
    doc["token_waste"] = [*kept, {
        "lever": "model_tiering", "app": APP, "task": TASK, "model": FRONTIER, "target": SMALL,
        "savings_usd_month": format(monthly.quantize(Decimal("0.01")), "f"),
        "note": "the frontier model's requests priced on the small one, per 30 days at the "
        "telemetry window's rate; the small model's acceptance on its canary share is as good",
    }]  # fmt: skip
    truth.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
