"""`costline detect` (scan spend for anomalies, store findings) and `costline findings` (list them)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from costline.cli.options import FormatOpt, parse_day
from costline.cli.output import default_format, emit_rows
from costline.cli.present import finding_row

Days = Annotated[
    int, typer.Option("--days", min=43, help="Days of history to scan, ending --until")
]


def detect_cmd(
    days: Days = 90,
    until: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD, first day not scanned (default: the day after the last bill)"
        ),
    ] = None,
    by: Annotated[
        str,
        typer.Option(
            help="Dimensions to watch, comma-separated: service, team, usage_type, "
            "account, region, model, resource"
        ),
    ] = "service,team,usage_type",
    min_impact: Annotated[
        float, typer.Option(help="Dollars a day above expected before a day is anomalous")
    ] = 100.0,
    min_pct: Annotated[float, typer.Option(help="Percent above expected")] = 20.0,
    fmt: FormatOpt = None,
) -> None:
    """Scan daily spend per service, team and usage type for anomalies (seasonal, robust, gated by
    dollars and percent) and store one finding per incident (the anomalies of one cause and
    window), with its root cause ranked by share of the excess, what changed, its owner, whether
    successful requests rose with it (value) or not (waste), and suggested actions."""
    from costline.cli.context import open_ledger, state
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.detect.anomaly import Settings
    from costline.detect.daily import detect_all
    from costline.detect.spend import DIMENSIONS
    from costline.errors import CostlineError
    from costline.ledger.sql import last_bill_day

    dims = [d.strip() for d in by.split(",") if d.strip()]
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not dims:
        raise CostlineError(f"--by {by!r}: choose from {', '.join(DIMENSIONS)}")
    config = load_config(state.config_path)
    with open_ledger() as ledger:
        if until is None:
            end_day = last_bill_day(ledger.con) + dt.timedelta(days=1)
        else:
            end_day = parse_day("--until", until)
        end = dt.datetime(end_day.year, end_day.month, end_day.day, tzinfo=dt.UTC)
        findings = detect_all(
            ledger,
            config,
            end=end,
            clock=SYSTEM_CLOCK,
            days=days,
            dimensions=dims,
            settings=Settings(min_impact=min_impact, min_pct=min_pct),
        )
        ledger.write([], source="detect", findings=findings)
    rows = [finding_row(json.loads(f.model_dump_json())) for f in findings]
    emit_rows(rows, default_format(fmt), title=f"Spend anomalies, {days} days to {end_day}")


def findings_cmd(
    status: Annotated[
        str,
        typer.Option(help="open, acknowledged, resolved, snoozed, or all (default: the open ones)"),
    ] = "open",
    kind: Annotated[str | None, typer.Option(help="anomaly, budget_threshold, ...")] = None,
    fmt: FormatOpt = None,
) -> None:
    """The open findings in the ledger (`--status` for others, `all` for every one), largest
    impact first: kind, scope, start, impact, owner, title, root cause (top values with their
    share of the excess) and suggested actions."""
    from costline.cli.context import open_ledger
    from costline.ledger import fetch

    with open_ledger(read_only=True) as ledger:
        t = ledger.table("findings")
        if status != "all":
            t = t.filter(t.status == status)
        if kind:
            t = t.filter(t.kind == kind)
        bodies = [r["body"] for r in fetch.rows(t.select("body"))]
    rows = [finding_row(b if isinstance(b, dict) else json.loads(b)) for b in bodies]
    rows.sort(key=lambda r: -float(r["impact_usd"] or 0))
    emit_rows(rows, default_format(fmt), title="Findings")


def register(app: typer.Typer) -> None:
    app.command("detect")(detect_cmd)
    app.command("findings")(findings_cmd)
