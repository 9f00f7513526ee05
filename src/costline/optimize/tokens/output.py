"""Lever 3: output limits, per group (a task: an app, endpoint and prompt on one model).

**Output limit** (`output_limit`): p50/p95/p99 of output tokens against `max_tokens`. When most
requests send no `max_tokens`, or a limit above the cap `plan.output_cap` would set, setting the
cap saves the output tokens above it (priced at the model's output price), from the runaway
answers that pad or loop. Range: half of it (some long answers are needed) to all of it. The
finding says what share of answers the cap would have cut.

**Limit truncation** (`limit_truncation`): where the current limit cuts `TRUNCATING` or more of the
answers that say why they stopped (stop reason `length`, `max_tokens`, `max_output_tokens`, or
output tokens at the limit), the money spent on those answers is at stake: each is discarded or
asked again (P50: half of it; high: all; low: none). Raise the limit, or ask for shorter answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from costline.model import Finding
from costline.optimize.recommend import Savings
from costline.optimize.tokens.audit import Audit, dec, name_of, priced_share
from costline.optimize.tokens.plan import output_cap

TRUNCATING = 0.02
HALF = Decimal("0.5")


def _quantiles(r: Mapping[str, Any]) -> str:
    return "/".join(f"{float(r[k] or 0):,.0f}" for k in ("out_p50", "out_p95", "out_p99"))


def _limit(r: Mapping[str, Any]) -> int | None:
    return None if r["limit_p50"] is None else int(r["limit_p50"])


def limits(audit: Audit, rows: Sequence[Mapping[str, Any]]) -> Iterator[Finding]:
    """One finding per group whose outputs run past the cap they could be given."""
    for r in rows:
        cap, saving = output_cap(r), dec(r["tail_usd"])
        single = max(int(r["single"] or 0), 1)
        unlimited = 1 - int(r["limit_rows"] or 0) / single
        limit = _limit(r)
        if cap is None or saving <= 0 or (unlimited < 0.5 and (limit or 0) <= cap):
            continue
        cut = int(r["over_cap"] or 0) / single
        now = "no max_tokens" if unlimited >= 0.5 else f"max_tokens {limit:,}"
        yield audit.finding(
            r, lever="output_limit",
            title=f"{name_of(r)}: set max_tokens to {cap:,} ({unlimited:.0%} of requests "
            f"without one; p95 output {float(r['out_p95']):,.0f} tokens)",
            summary=(
                f"Output tokens of {name_of(r)} are {_quantiles(r)} at p50/p95/p99 with {now}; "
                f"{cut:.1%} of answers ran past {cap:,} tokens, {int(r['tail_tokens']):,} tokens "
                f"in all. A max_tokens of {cap:,} stops them there."
            ),
            current=dec(r["cost"]), savings=Savings(saving, saving * HALF, saving),
            method="output tokens above the cap (1.1 x p99 when within 3x p95, else 2 x p95, "
            "rounded up to 64) x the output price",
            inputs={"out_p50": r["out_p50"], "out_p95": r["out_p95"], "out_p99": r["out_p99"],
                    "out_max": r["out_max"], "share_without_max_tokens": round(unlimited, 3),
                    "max_tokens_p50": limit, "recommended_max_tokens": cap,
                    "tokens_above_cap": r["tail_tokens"], "share_cut_by_cap": round(cut, 4)},
            coverage=priced_share(r),
            risk=("low" if cut < 0.01 else "medium") + f": the cap would have cut {cut:.1%} of "
            "answers (they end with finish reason length); check a sample of those",
            action=f"Set max_tokens={cap} on the requests of {name_of(r)} (now {now}).",
        )  # fmt: skip


def truncation(audit: Audit, rows: Sequence[Mapping[str, Any]]) -> Iterator[Finding]:
    """One finding per group whose limit cuts `TRUNCATING` or more of its answers."""
    for r in rows:
        known = int(r["stop_rows"] or 0) or int(r["limit_rows"] or 0)
        rate = int(r["truncated"] or 0) / known if known else 0.0
        at_stake = dec(r["truncated_cost"])
        if rate < TRUNCATING or at_stake <= 0:
            continue
        limit, cap = _limit(r), output_cap(r)
        raise_to = f"raise max_tokens to {cap:,}" if cap and limit and cap > limit else (
            "raise max_tokens")  # fmt: skip
        yield audit.finding(
            r, lever="limit_truncation",
            title=f"{name_of(r)}: the output limit cuts {rate:.0%} of answers",
            summary=(
                f"{int(r['truncated']):,} answers of {name_of(r)} stopped at the output limit "
                f"(max_tokens {limit if limit is not None else 'unset'}; output p50/p95/p99 "
                f"{_quantiles(r)}): ${at_stake:,.2f} spent on answers cut short, which are "
                "discarded or asked again."
            ),
            current=dec(r["cost"]), savings=Savings(at_stake * HALF, Decimal(0), at_stake),
            method="cost of the requests stopped by the output limit (stop reason length or "
            "max_tokens, or output at max_tokens); P50 half of it",
            inputs={"truncated": r["truncated"], "with_stop_reason": known,
                    "truncation_rate": round(rate, 4), "max_tokens_p50": limit,
                    "truncated_cost_usd": at_stake},
            coverage=priced_share(r),
            risk="low: a higher limit costs only the tokens the answers need",
            action=f"For {name_of(r)}: {raise_to}, or ask for shorter answers in the prompt "
            "(a length or format instruction), so answers finish rather than stop.",
        )  # fmt: skip
