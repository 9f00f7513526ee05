"""`costline recommend`: what to change, with the dollars it saves, stored as findings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import typer

from costline.cli.options import FormatOpt


def recommend_cmd(
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only this kind: gpu_rightsizing, idle_capacity, spot_capacity, commitment, gpu_arbitrage, autoscaling, quantization, gpu_packing, commitment_use or tokens"
        ),
    ] = None,
    days: Annotated[
        int, typer.Option(help="Days of bills and telemetry to judge on, to the last bill", min=1)
    ] = 14,
    min_savings: Annotated[
        float, typer.Option(help="Leave out recommendations saving less a month (USD)", min=0)
    ] = 100.0,
    fmt: FormatOpt = None,
) -> None:
    """Recommendations with dollars attached, largest saving first: each with its current monthly
    cost, the saving (P50 and a low-high range), confidence, risk and the exact change. Stored as
    findings of kind recommendation; one a run no longer finds is resolved."""
    from costline.attribution.rules import Rules
    from costline.cli.context import open_ledger, state
    from costline.cli.output import default_format, emit_rows
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.errors import CostlineError
    from costline.ledger.findings import transition
    from costline.optimize.run import KINDS, recommend

    if kind is not None and kind not in KINDS:
        raise CostlineError(f"--kind {kind!r}: choose from {', '.join(KINDS)}")
    rules = Rules.from_config(load_config(state.config_path))
    with open_ledger() as ledger:
        last = _last_day(ledger.con, kind)
        end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        run = recommend(ledger, rules, end=end, days=days, clock=SYSTEM_CLOCK,
                        kinds=[kind] if kind else list(KINDS),
                        min_savings=Decimal(str(min_savings)))  # fmt: skip
        ledger.write([], source="recommend", findings=[*run.found, *run.stale])
        for stale in run.stale:
            transition(ledger.con, stale.fingerprint, "resolve", clock=SYSTEM_CLOCK)
    rows = [_row(f.model_dump(mode="json")) for f in run.found]
    emit_rows(rows, default_format(fmt), title=f"Recommendations, {days} days to {last}")


def _last_day(con: Any, kind: str | None) -> dt.date:
    """The window's last day: the last bill's; for the token audit of a ledger of LLM logs
    alone, the last request's."""
    from costline.errors import CostlineError
    from costline.ledger.sql import last_bill_day, run_one

    try:
        return last_bill_day(con)
    except CostlineError:
        row = run_one(con, "SELECT max(ts) FROM llm_requests")
        if kind != "tokens" or not row or row[0] is None:
            raise
        day: dt.date = row[0].astimezone(dt.UTC).date()
        return day


def _row(body: dict[str, Any]) -> dict[str, Any]:
    e = body["evidence"]
    savings = e["savings_monthly_usd"]
    return {
        "fingerprint": body["fingerprint"],
        "kind": e["recommendation"],
        "scope": body["scope"],
        "owner": body.get("owner"),
        "title": body["title"],
        "current_monthly_usd": e["current_monthly_usd"],
        "savings_monthly_usd": savings["p50"],
        "savings_low_usd": savings["low"],
        "savings_high_usd": savings["high"],
        "confidence": e["confidence"],
        "risk": e["risk"],
        "action": body["actions"][0]["text"] if body["actions"] else None,
    }


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
