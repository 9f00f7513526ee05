"""Model tiering: an app's task served by a model dearer than one that does it as well.

**What is compared.** The window's LLM requests are summed in the engine per app, **task** and
model (`usage_by_task`: requests, input, cached, cache-write and output tokens, cost). The task
is the request's `task` (or `task_type`) tag when the logs carry one, else the first of `TASKS`
whose words appear in its workload type, endpoint or app (`/v1/triage` is classification,
`summarize-calls` summarization), else `general`. Each model serving at least `MIN_SHARE` of an
app's task (a smaller share is an experiment or a canary, not a route to change) has its
requests, the same token counts of each kind, priced by genai-prices (`catalog.token_prices`,
the pricer of `llm_requests.cost_usd`) on its own price and on each cheaper model: the models
the app already sends that task to, and `CANDIDATES` (small and mid-tier chat models of the
main providers). The saving is the difference of the two, per 30 days; cached input is assumed
to stay cached (at the other model's cache-read price).

**Quality.** The signal is the app's outcome metrics per model (`economics.outcomes`: accepted
answers, resolved tickets, passed evals, labelled `app` and `model`, optionally `task`), as a
rate of the model's requests. For every outcome metric both models have over at least
`MIN_REQUESTS` requests each, a cheaper model B is judged against the model A it would replace
(a non-inferiority test of two proportions, margin `MARGIN_PTS`):
- it **fails** when its rate is more than `MARGIN_PTS` points below A's;
- it **passes** when its rate less A's, less `Z` standard errors of that difference (one-sided
  95%), is still above minus `MARGIN_PTS` points: B is shown to be at most that much worse;
- else the signal is **inconclusive** (too few requests for the difference seen).
B passes when it passes on every such metric, fails when it fails on one; with no such metric,
or an inconclusive one, it is unmeasured.

**What is recommended**, one finding per app, task and model:
- *route*: the passing model with the largest saving, at least `ROUTE_MIN_GAIN` of the cost;
  P50 the repriced difference, low with the tokens per request B shows on the app's own
  traffic (another tokenizer, longer answers), confidence from the window's length;
- else *benchmark this*: models with no signal on the app that would save at least
  `BENCH_MIN_GAIN` (or measured inconclusively), none at or below the price of a model that failed (a cheaper one is unlikely
  to do better); P50 the dearest such model of the same provider (else of any), low 0 (nothing
  measured says it will hold), high the cheapest; confidence low.
A model that failed, with nothing else to try, gets nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.catalog.token_prices import GENAI_PRICES_VERSION, price_arrow
from costline.economics.outcomes import Outcome, outcomes, same_model
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, recommendation

KIND = "model_tiering"
# (provider, genai-prices model) of small and mid-tier chat models, not reasoning ones (whose
# hidden reasoning tokens the same output count would not price).
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("openai", "gpt-4.1-mini"), ("openai", "gpt-4.1-nano"), ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-haiku-4-5"), ("anthropic", "claude-3-5-haiku-latest"),
    ("google", "gemini-2.0-flash"), ("google", "gemini-2.5-flash-lite"),
    ("mistral", "mistral-small-latest"),
)  # fmt: skip
TASKS: tuple[tuple[str, str], ...] = (
    ("classification", r"classif|triage|categor|intent|label|moderat|sentiment|router|routing"),
    ("extraction", r"extract|parse|parsing|entit"),
    ("summarization", r"summar|digest|tldr"),
    ("translation", r"translat"),
    ("code", r"code|review|lint"),
    ("rewriting", r"rewrit|search|query"),
    ("chat", r"chat|assist|convers|agent|support"),
)
GENERAL = "general"
MARGIN_PTS = 1.0
Z = 1.645  # one-sided 95%
MIN_REQUESTS = 200
MIN_SHARE = 0.2
ROUTE_MIN_GAIN = Decimal("0.10")
BENCH_MIN_GAIN = Decimal("0.50")
RULE = (f"B replaces A when, for every outcome metric both have over at least {MIN_REQUESTS} "
        f"requests each, B's rate less A's, less {Z} standard errors, is above -{MARGIN_PTS:g} "
        "point (non-inferiority, one-sided 95%); more than that many points below A's fails")  # fmt: skip


def task_of(r: ibis.Table) -> ibis.StringValue:
    """A request's task: its `task` (or `task_type`) tag, else the first of `TASKS` whose words
    its workload type, endpoint or app carry, else `general` (see the module)."""
    named = ibis.coalesce(r.tags.get("task"), r.tags.get("task_type")).lower()
    text = (r.workload_type.fill_null("") + " " + r.endpoint.fill_null("") + " "
            + r.app.fill_null("")).lower()  # fmt: skip
    guessed = ibis.cases(*((text.re_search(words), name) for name, words in TASKS), else_=GENERAL)
    return ibis.coalesce(named, guessed)


def usage_by_task(requests: ibis.Table, start: dt.datetime, end: dt.datetime) -> ibis.Table:
    """Requests, tokens of each kind and cost per app, task, provider and model in the window
    (Ibis in, Ibis out: the engine sums; Python prices the few rows that come back)."""
    r = requests.filter(requests.ts >= start, requests.ts < end, requests.model.notnull())
    r = r.mutate(task=task_of(r), app=r.app.fill_null("(no app)"))
    n = r.requests.fill_null(1)
    return r.group_by(["app", "task", "provider", "model"]).aggregate(
        requests=n.sum(), input_tokens=r.input_tokens.sum(),
        cached_input_tokens=r.cached_input_tokens.sum(),
        cache_write_tokens=r.cache_write_tokens.sum(), output_tokens=r.output_tokens.sum(),
        cost_usd=r.cost_usd.sum(), unpriced=n.sum(where=r.cost_usd.isnull()), ts=r.ts.max(),
        team=r.team.mode(),
    )  # fmt: skip


@dataclass(frozen=True)
class Usage:
    """One app, task and model's requests over the window."""

    app: str
    task: str
    provider: str | None
    model: str
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    unpriced: int
    ts: dt.datetime
    team: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Usage:
        tokens = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")
        return cls(**{**row, **{k: int(row[k] or 0) for k in (*tokens, "requests", "unpriced")}})

    def per_request(self, key: str) -> float:
        return float(getattr(self, key)) / self.requests if self.requests else 0.0


Quality = dict[tuple[str, str, str], dict[str, tuple[float, int]]]  # (app, task, model) -> metric


def quality_of(usage: Sequence[Usage], found: Sequence[Outcome]) -> Quality:
    """(app, task, model) -> outcome metric -> (rate, requests it is a rate of). A metric with no
    `task` label is the model's over all its tasks in the app; one with a label, of that task."""
    in_app: dict[tuple[str, str], int] = defaultdict(int)
    for u in usage:
        in_app[(u.app, u.model)] += u.requests
    out: Quality = defaultdict(dict)
    for o in found:
        for u in usage:
            if o.app != u.app or not same_model(o.model, u.model) or o.task not in (None, u.task):
                continue
            n = u.requests if o.task else in_app[(u.app, u.model)]
            rate = o.share(n)
            if rate is not None and (o.task or o.metric not in out[(u.app, u.task, u.model)]):
                out[(u.app, u.task, u.model)][o.metric] = (rate, n)
    return out


def judge(a: tuple[float, int], b: tuple[float, int]) -> bool | None:
    """B's (rate, requests) against A's: True (non-inferior), False (worse by more than the
    margin) or None (inconclusive); see the module."""
    diff, margin = b[0] - a[0], MARGIN_PTS / 100
    if diff < -margin:
        return False

    def var(rate: float, n: int) -> float:
        p = min(max(rate, 0.0), 1.0)
        return p * (1 - p) / n

    return True if diff - Z * math.sqrt(var(*a) + var(*b)) > -margin else None


def verdict(quality: Quality, a: Usage, b_model: str) -> tuple[bool | None, dict[str, Any]]:
    """Whether model `b_model` does `a`'s task in `a`'s app as well as `a.model` (`RULE`): True,
    False, or None when no outcome metric measures both over `MIN_REQUESTS` or one is
    inconclusive; and the rates."""
    qa = quality.get((a.app, a.task, a.model), {})
    qb = quality.get((a.app, a.task, b_model), {})
    rates = {m: {a.model: {"rate": round(qa[m][0], 4), "requests": qa[m][1]},
                 b_model: {"rate": round(qb[m][0], 4), "requests": qb[m][1]}}
             for m in sorted(set(qa) & set(qb))}  # fmt: skip
    judged = [judge(qa[m], qb[m]) for m in rates
              if qa[m][1] >= MIN_REQUESTS and qb[m][1] >= MIN_REQUESTS]  # fmt: skip
    if False in judged:
        return False, rates
    return (True if judged and all(judged) else None), rates


@dataclass
class Option:
    """A cheaper model for one app, task and model's requests, and what it would save."""

    provider: str
    model: str
    cost: Decimal  # the window's requests priced on it
    observed: Usage | None  # its own traffic on the same app and task, if any
    passed: bool | None = None
    rates: dict[str, Any] = field(default_factory=dict)
    scaled: Decimal | None = None  # priced with its own tokens per request


Target = tuple[str, str, Usage | None]  # provider, model, its own traffic on the app and task


def targets_of(a: Usage, peers: Sequence[Usage]) -> list[Target]:
    """The models `a`'s requests are priced on: the app's others on the task, then `CANDIDATES`
    (each model once, `a`'s own left out)."""
    out: list[Target] = []
    named = [(p.provider or "", p.model, p) for p in peers] + [(*c, None) for c in CANDIDATES]
    for provider, model, seen in named:
        if not same_model(model, a.model) and all(not same_model(model, t[1]) for t in out):
            out.append((provider, model, seen))
    return out


def _price_rows(k: int, a: Usage, targets: Sequence[Target]) -> list[dict[str, Any]]:
    """`a`'s requests as one rollup row per target model (own first, keys `k:i:0`), and per
    target with traffic again with that traffic's tokens per request (`k:i:1`)."""
    rows = []
    for i, (provider, model, seen) in enumerate([(a.provider or "", a.model, None), *targets]):
        for scaled in (False, True) if seen is not None else (False,):
            k_in = seen.per_request("input_tokens") / a.per_request("input_tokens") \
                if scaled and seen and a.input_tokens else 1.0  # fmt: skip
            k_out = seen.per_request("output_tokens") / a.per_request("output_tokens") \
                if scaled and seen and a.output_tokens else 1.0  # fmt: skip
            rows.append({
                "key": f"{k}:{i}:{int(scaled)}", "ts": a.ts, "provider": provider, "model": model,
                "input_tokens": round(a.input_tokens * k_in),
                "cached_input_tokens": round(a.cached_input_tokens * k_in),
                "cache_write_tokens": round(a.cache_write_tokens * k_in),
                "output_tokens": round(a.output_tokens * k_out), "requests": a.requests,
                "price_context": None, "cache_write_1h_tokens": 0,
            })  # fmt: skip
    return rows


_PRICE_INPUT = pa.schema(
    [("key", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("provider", pa.string()),
     ("model", pa.string())]
    + [(c, pa.int64()) for c in ("input_tokens", "cached_input_tokens", "cache_write_tokens",
                                 "output_tokens", "requests")]
    + [("price_context", pa.string()), ("cache_write_1h_tokens", pa.int64())]
)  # fmt: skip


def options(
    k: int, a: Usage, targets: Sequence[Target], cost: dict[str, Decimal | None], quality: Quality
) -> tuple[Decimal, list[Option]]:
    """`a`'s requests priced on its own model, and the cheaper models with their verdicts
    (`cost`: the priced rows of `_price_rows(k, a, targets)` by key)."""
    own = cost.get(f"{k}:0:0")
    if own is None or own <= 0:
        return Decimal(0), []
    out = []
    for i, (provider, model, seen) in enumerate(targets, start=1):
        c = cost.get(f"{k}:{i}:0")
        if c is None or c >= own:
            continue
        passed, rates = verdict(quality, a, model) if seen else (None, {})
        out.append(Option(provider, model, c, seen, passed, rates, cost.get(f"{k}:{i}:1")))
    return own, sorted(out, key=lambda o: o.cost)


def recommend_tiering(inputs: Inputs) -> list[Finding]:
    """One routing or benchmark recommendation per app, task and model (see the module): every
    model's requests priced on every target in one genai-prices batch."""
    if inputs.llm is None:
        return []
    usage = [Usage.of(r) for r in fetch.rows(usage_by_task(inputs.llm, inputs.start,
                                                           inputs.end))]  # fmt: skip
    quality = quality_of(usage, outcomes(inputs.metrics, inputs.start, inputs.end))
    groups: dict[tuple[str, str], list[Usage]] = defaultdict(list)
    for u in usage:
        groups[(u.app, u.task)].append(u)
    judged: list[tuple[Usage, list[Target]]] = []
    for _, members in sorted(groups.items()):
        total = sum(u.requests for u in members)
        for a in sorted(members, key=lambda u: u.model):
            if a.requests >= MIN_SHARE * total and a.cost_usd is not None and a.cost_usd > 0:
                judged.append((a, targets_of(a, members)))
    if not judged:
        return []
    rows = [r for k, (a, targets) in enumerate(judged) for r in _price_rows(k, a, targets)]
    priced, _ = price_arrow(pa.Table.from_pylist(rows, schema=_PRICE_INPUT))
    cost = {r["key"]: r["cost_usd"] for r in priced.to_pylist()}
    return inputs.kept(_assess(*options(k, a, targets, cost, quality), a, inputs)
                       for k, (a, targets) in enumerate(judged))  # fmt: skip


def _assess(own: Decimal, cheaper: list[Option], a: Usage, inputs: Inputs) -> Finding | None:
    """The routing recommendation for `a`, else the benchmark one, else none (see the module)."""
    gain = {id(o): (own - o.cost) / own for o in cheaper}
    route = [o for o in cheaper if o.passed and gain[id(o)] >= ROUTE_MIN_GAIN]
    if route:
        return _routing(a, own, route[0], inputs)
    failed = [o.cost for o in cheaper if o.passed is False]
    floor = max(failed) if failed else Decimal(-1)
    bench = [o for o in cheaper
             if o.passed is None and gain[id(o)] >= BENCH_MIN_GAIN and o.cost > floor]  # fmt: skip
    return _benchmark(a, own, bench, inputs) if bench else None


def _common(a: Usage, own: Decimal, inputs: Inputs) -> dict[str, Any]:
    """The arguments every tiering recommendation shares."""
    scope = {"app": a.app, "task": a.task, "model": a.model}
    return {
        "kind": KIND, "scope": {**scope, **({"team": a.team} if a.team else {})},
        "owner": inputs.owner(a.team, app=a.app) if a.team else None,
        "current_monthly": (a.cost_usd or Decimal(0)) * inputs.llm_per_month,
        "window": Window(start=inputs.start, end=inputs.end), "clock": inputs.clock,
        "method": "the window's requests (input, cached and output tokens) priced by "
        f"genai-prices {GENAI_PRICES_VERSION} on each cheaper model; quality from outcome "
        f"metrics per model ({RULE})",
    }  # fmt: skip


def _inputs(a: Usage, own: Decimal, shown: Sequence[Option], inputs: Inputs) -> dict[str, Any]:
    return {
        "requests": a.requests, "provider": a.provider, "window_cost_usd": a.cost_usd,
        "unpriced_requests": a.unpriced,
        "repriced_monthly_usd": {a.model: own * inputs.llm_per_month,
                                 **{o.model: o.cost * inputs.llm_per_month for o in shown}},
        "rule": RULE,
    }  # fmt: skip


def _routing(a: Usage, own: Decimal, b: Option, inputs: Inputs) -> Finding:
    pm = inputs.llm_per_month
    p50 = (own - b.cost) * pm
    low = (own - b.scaled) * pm if b.scaled is not None else p50
    metric = sorted(b.rates)[0]
    ra, rb = b.rates[metric][a.model], b.rates[metric][b.model]
    return recommendation(
        **_common(a, own, inputs),
        title=f"{a.app}: route {a.task} from {a.model} to {b.model}: ${p50:,.0f}/month saved, "
        f"{metric} {rb['rate']:.1%} on {b.model} vs {ra['rate']:.1%}",
        summary=(
            f"{a.requests:,} {a.task} requests of {a.app} ran on {a.model} (${own * pm:,.0f} a "
            f"month at its prices); the same tokens cost ${b.cost * pm:,.0f} on {b.model}. "
            f"{b.model} already answers {rb['requests']:,} of the app's requests: {metric} "
            f"{rb['rate']:.1%} against {ra['rate']:.1%} on {a.model} over {ra['requests']:,}: "
            f"at most {MARGIN_PTS:g} point worse, at 95% confidence."
        ),
        savings=Savings(p50, min(low, p50), max(low, p50)),
        inputs={
            **_inputs(a, own, [b], inputs),
            "advice": "route",
            "target": b.model,
            "quality": b.rates,
        },
        coverage=1.0,
        risk="low: the cheaper model's outcomes were measured on this app's own traffic; move "
        "the traffic in steps and keep watching the metric",
        action=f"Route {a.app}'s {a.task} requests from {a.model} to {b.model} (a gateway or "
        f"router rule), in steps, watching {metric}.",
    )


def _benchmark(a: Usage, own: Decimal, bench: list[Option], inputs: Inputs) -> Finding:
    pm = inputs.llm_per_month
    same = [o for o in bench if o.provider == (a.provider or "")]
    pick = (same or bench)[-1]  # the dearest qualifying: the smallest step down
    p50, high = (own - pick.cost) * pm, (own - bench[0].cost) * pm
    shown = [pick, *[o for o in bench if o is not pick][:2]]
    names = ", ".join(f"{o.model} ${o.cost * pm:,.0f}" for o in shown)
    return recommendation(
        **_common(a, own, inputs),
        title=f"{a.app}: benchmark {pick.model} for {a.task} now on {a.model}: "
        f"${p50:,.0f}/month at stake",
        summary=(
            f"{a.requests:,} {a.task} requests of {a.app} ran on {a.model} (${own * pm:,.0f} a "
            f"month at its prices). Priced on cheaper models a month: {names}. No outcome "
            f"metric measures them on this app (labelled app and model, over {MIN_REQUESTS} "
            "requests each): whether they answer as well is unknown."
        ),
        savings=Savings(p50, Decimal(0), max(high, p50)),
        inputs={**_inputs(a, own, shown, inputs), "advice": "benchmark", "target": pick.model},
        coverage=0.0,
        risk="high: nothing measured says the cheaper model answers these requests as well; "
        "benchmark before routing",
        action=f"Send a sample of {a.app}'s {a.task} requests to {pick.model} (shadow or canary), "
        f"record an outcome metric (accepted answers, evals) labelled app and model, and route "
        f"when its rate is within {MARGIN_PTS:g} point of {a.model}'s.",
    )
