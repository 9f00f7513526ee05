"""`costline sync`: one pull, evaluate, store and notify cycle (what the server's scheduler runs)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from costline.cli.options import FormatOpt
from costline.cli.output import Format, default_format, dumps, emit_rows


def sync_cmd(
    no_notify: Annotated[
        bool, typer.Option("--no-notify", help="Evaluate and store findings, send nothing")
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Pull the sources of costline.yaml (watched folders, Prometheus), check thresholds, budgets,
    spend anomalies and TTLs, store the findings, queue alerts by the outbox rule (and, once per
    ISO week, each owner's weekly review) and deliver them.
    `costline serve` runs this every few minutes; run it from cron when there is no server.
    Exits 2 when a source's input is bad (that source writes nothing; the others run), 1 when a
    source or a check failed otherwise."""
    from costline.cli.context import open_ledger, state
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.sync import sync

    config = load_config(state.config_path)
    with open_ledger() as ledger:
        report = sync(ledger, config, clock=SYSTEM_CLOCK, deliver=not no_notify)
    out = default_format(fmt)
    if out is Format.json:
        sys.stdout.write(dumps(report.as_json()) + "\n")
    else:
        emit_rows(report.pulled, out, title="Sources pulled")
        rows = [{"kind": k, "findings": n} for k, n in sorted(report.findings.items())]
        emit_rows(rows, out, title=f"Findings evaluated; {report.queued} alert(s) and "
                  f"{report.reviews} weekly review(s) queued, {report.sent} sent, "
                  f"{report.retrying} retrying, {report.failed} failed")  # fmt: skip
    failed = [p for p in report.pulled if p["status"] == "error"]
    for p in failed:
        sys.stderr.write(f"error: source {p['source']}: {p['error']}\n")
    for error in report.errors:
        sys.stderr.write(f"error: {error}\n")
    if failed or report.errors:
        # A source's bad input exits 2 (nothing of that source was written; the rest ran).
        raise typer.Exit(max([p["exit_code"] for p in failed] + [1] * bool(report.errors)))


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_cmd)
