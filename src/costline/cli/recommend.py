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
            help="Only this kind: gpu_rightsizing, idle_capacity, spot_capacity, commitment, gpu_arbitrage, autoscaling, quantization, gpu_packing, commitment_use, storage_tiering, model_tiering, cheaper_window or tokens"
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
    from costline.optimize.run import KINDS, recommend
    from costline.optimize.store import store, window_end

    if kind is not None and kind not in KINDS:
        raise CostlineError(f"--kind {kind!r}: choose from {', '.join(KINDS)}")
    rules = Rules.from_config(load_config(state.config_path))
    with open_ledger() as ledger:
        last = _last_day(ledger.con, kind)
        run = recommend(ledger, rules, end=window_end(last), days=days, clock=SYSTEM_CLOCK,
                        kinds=[kind] if kind else list(KINDS),
                        min_savings=Decimal(str(min_savings)))  # fmt: skip
        store(ledger.con, run, SYSTEM_CLOCK)
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


COLUMNS = ("fingerprint", "kind", "scope", "owner", "title", "current_monthly_usd",
           "savings_monthly_usd", "savings_low_usd", "savings_high_usd", "confidence", "risk",
           "action")  # fmt: skip


def _row(body: dict[str, Any]) -> dict[str, Any]:
    from costline.optimize.store import row

    full = row(body)
    return {k: full[k] for k in COLUMNS}


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_cmd)
