"""Cheaper windows for LLM traffic: deferrable requests sent when their model's tokens cost less.

Deferrable requests are those of the batch cost domain (`capacity.TOLERANT_DOMAINS`: a
`workload_type` of evaluation, embeddings, batch or batch-inference, from the request's column or
its tags); a chat or an online endpoint (a user waits) never moves. Their tokens are summed per
team, app (else endpoint), provider, model and hour of day in the engine. A model whose price
genai-prices varies by time of day (`hour_prices.token_prices_by_hour`; DeepSeek's off-peak
hours, for one) has a cheapest hour; with the default deadline (`DEFAULT_DEADLINE_HOURS`, 24 h:
any hour of the day is reachable) every request of the group can be sent in it. Saving per 30
days: the requests' priced cost (`cost_usd`, at the hours they were sent) less their tokens at
the cheapest hour's prices, each hour at the dearest price any part of it has. The prices are
published, so low and high equal P50. A model priced the same all day, or one genai-prices does
not know, has no cheaper window: none is offered, and no price is made up.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from costline.attribution.rules import domain_of
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.capacity import TOLERANT_DOMAINS
from costline.optimize.hour_prices import TOKEN_PARTS, token_prices_by_hour
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, recommendation

DEFAULT_DEADLINE_HOURS = 24
Key = tuple[str | None, str, str, str]  # team, app, provider, model


def _sums(inputs: Inputs) -> dict[Key, list[dict[str, Any]]]:
    """Deferrable priced requests' tokens and cost per group and hour of day (engine)."""
    r = inputs.llm
    if r is None:
        return {}
    r = r.filter(r.ts >= inputs.start, r.ts < inputs.end, r.cost_usd.notnull())
    kind = inputs.rules.tag(r, "workload_type", tags="tags")
    if "workload_type" in r.columns:
        kind = r.workload_type.fill_null(kind)
    r = r.filter(domain_of(kind).isin(list(TOLERANT_DOMAINS)))
    app = r.app if "app" in r.columns else r.endpoint

    def n(column: str) -> Any:
        return r[column].fill_null(0)

    rows = fetch.rows(r.group_by(
        team=r.team, app=app.fill_null(r.endpoint).fill_null("(no app)"),
        provider=r.provider.fill_null(""), model=r.model, hour=r.ts.hour(),
    ).aggregate(
        uncached_tokens=(n("input_tokens") - n("cached_input_tokens")
                         - n("cache_write_tokens")).sum(),
        cached_input_tokens=n("cached_input_tokens").sum(),
        cache_write_tokens=n("cache_write_tokens").sum(), output_tokens=n("output_tokens").sum(),
        requests=r.requests.fill_null(1).sum(), cost=r.cost_usd.sum(),
    ))  # fmt: skip
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[(row["team"], row["app"], row["provider"], row["model"])].append(row)
    return dict(out)


def _cost(rows: list[dict[str, Any]], prices: dict[str, Decimal]) -> Decimal:
    return sum((Decimal(r[part] or 0) * prices[price] for r in rows for part, price in TOKEN_PARTS),
               Decimal(0))  # fmt: skip


def token_windows(inputs: Inputs, kind: str) -> list[Finding | None]:
    """One recommendation per deferrable LLM app and model with a cheaper hour of day."""
    out: list[Finding | None] = []
    for key, rows in sorted(_sums(inputs).items(), key=lambda kv: str(kv[0])):
        hours = token_prices_by_hour(key[2], key[3], inputs.end)
        if hours is None:
            continue  # priced the same all day, or unknown: no window, no invented price
        now = sum((Decimal(r["cost"]) for r in rows), Decimal(0))
        best = min(range(24), key=lambda h: (_cost(rows, hours[h]), h))
        saving = now - _cost(rows, hours[best])
        if saving > 0:
            out.append(_finding(key, rows, hours, best, now, saving, inputs, kind))
    return out


def _window(hours: list[dict[str, Decimal]], best: int) -> tuple[int, int]:
    """The run of hours priced as `best` is, around it: (first hour, hours)."""
    first = best
    while (first - 1) % 24 != best and hours[(first - 1) % 24] == hours[best]:
        first = (first - 1) % 24
    length = 1
    while length < 24 and hours[(first + length) % 24] == hours[best]:
        length += 1
    return first, length


def _finding(key: Key, rows: list[dict[str, Any]], hours: list[dict[str, Decimal]], best: int,
             now: Decimal, saving: Decimal, inputs: Inputs, kind: str) -> Finding:  # fmt: skip
    team, app, provider, model = key
    per_month = inputs.llm_per_month
    first, length = _window(hours, best)
    last = (first + length) % 24
    busy = max(rows, key=lambda r: Decimal(r["cost"]))["hour"]
    requests = sum(int(r["requests"] or 0) for r in rows)
    schedule = f"0 {first} * * *"
    p50 = saving * per_month
    return recommendation(
        kind=kind,
        scope={"workload": app, "model": model, **({"team": team} if team else {})},
        title=f"{app}: send its {model} batch requests at {first:02d}:00-{last:02d}:00 UTC, "
        f"when the model's tokens cost less",
        summary=(
            f"{requests:,} deferrable requests of {app} to {model} ({provider}), mostly at "
            f"{int(busy):02d}:00 UTC, cost ${now * per_month:,.2f} a month. genai-prices lists "
            f"{model} cheaper at {first:02d}:00-{last:02d}:00 UTC; sent then (within the "
            f"default {DEFAULT_DEADLINE_HOURS} h deadline) they cost ${p50:,.2f} a month less."
        ),
        owner=inputs.owner(team),
        current_monthly=now * per_month,
        savings=Savings(p50, p50, p50),
        method="token prices by time of day (genai-prices), the requests' tokens repriced at "
        "the cheapest hour",
        inputs={
            "market": "token_time_of_day",
            "provider": provider,
            "requests": requests,
            "cheap_hours_utc": f"{first:02d}:00-{last:02d}:00",
            "cron_utc": schedule,
            "deadline_hours": DEFAULT_DEADLINE_HOURS,
            "deadline_tagged": False,
            "prices_per_token_cheap": hours[best],
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="low: published prices; the provider's rate limits must take the day's requests "
        "in the cheap hours",
        action=(
            f"Queue {app}'s {model} requests and send them at {first:02d}:00-{last:02d}:00 UTC "
            f"(a worker started by cron `{schedule}`, or a Kubernetes CronJob `spec: {{schedule: "
            f'"{schedule}", timeZone: "Etc/UTC"}}`).'
        ),
        clock=inputs.clock,
    )


__all__ = ["DEFAULT_DEADLINE_HOURS", "token_windows"]
