"""`costline notify`: queue alerts for the findings in the ledger and deliver the outbox.

Routes, tiers and the re-alert rule are in docs/methodology/alerts.md. Secrets (webhook URLs,
routing keys, signing secrets) are read from the environment variables the routes name, at send
time; nothing printed here contains them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from costline.cli.options import FormatOpt
from costline.cli.output import default_format, emit_rows

if TYPE_CHECKING:
    from costline.ledger.outbox import OutboxMessage

COLUMNS = ["message", "route", "channel", "event", "status", "attempts", "next_attempt_at",
           "last_error"]  # fmt: skip
PLAN_COLUMNS = ["message", "route", "channel", "event", "reason", "finding", "title"]


def notify_cmd(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print what would be queued now; write and send nothing"),
    ] = False,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="pending, sent or failed: list the outbox's messages in that status"
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Put failed messages back in the queue first (after fixing a route or secret)",
        ),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Queue alerts for the open findings (first alert to each route, again when the impact grew
    by `notify.realert_growth_pct` or a higher escalation tier was reached, a PagerDuty resolve
    when resolved) and deliver every due message, with retries and backoff. Exits 1 when a message
    failed for good."""
    from costline.cli.context import open_ledger, state
    from costline.cli.output import err_console
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.errors import CostlineError, DeliveryError
    from costline.ledger import outbox
    from costline.notify import current_findings, deliver, enqueue, plan

    chosen = default_format(fmt)
    if status is not None:
        if status not in outbox.STATUSES:
            raise CostlineError(f"--status {status!r}: choose from {', '.join(outbox.STATUSES)}")
        with open_ledger(read_only=True) as ledger:
            rows = [m.row() for m in outbox.messages(ledger.con, status=status)]
        emit_rows(rows, chosen, title=f"Outbox: {status}", columns=COLUMNS)
        return
    config = load_config(state.config_path)
    if not config.routes:
        err_console().print(
            "No routes configured: add `routes:` and owners' `routes` to costline.yaml "
            "(docs/methodology/alerts.md)."
        )
    if dry_run:
        with open_ledger(read_only=True) as ledger:
            planned = plan(ledger, current_findings(ledger), config, SYSTEM_CLOCK)
        emit_rows([_planned_row(m) for m in planned], chosen, title="Would queue",
                  columns=PLAN_COLUMNS)  # fmt: skip
        return
    with open_ledger() as ledger:
        if retry_failed:
            again = outbox.retry_failed(ledger.con, SYSTEM_CLOCK.now())
            err_console().print(f"{again} failed message(s) queued again")
        queued = enqueue(ledger, current_findings(ledger), config, SYSTEM_CLOCK)
        report = deliver(ledger, config, SYSTEM_CLOCK)
        ids = list(dict.fromkeys([m.message_id for m in queued] + [
            m.message_id for m in report.attempted]))  # fmt: skip
        rows = [m.row() for m in outbox.messages(ledger.con, ids=ids)]
        counts = outbox.counts(ledger.con)
    emit_rows(rows, chosen, title="Alerts", columns=COLUMNS)
    err_console().print(
        f"{len(queued)} queued, {len(report.sent)} sent, {len(report.retrying)} to retry, "
        f"{len(report.failed)} failed; outbox: {counts['pending']} pending, {counts['sent']} "
        f"sent, {counts['failed']} failed",
        soft_wrap=True,
        highlight=False,
    )
    if report.failed:
        raise DeliveryError(
            f"{len(report.failed)} message(s) failed for good (see last_error above); fix the "
            "route or its environment variable, then run `costline notify --retry-failed`"
        )


def _planned_row(message: OutboxMessage) -> dict[str, Any]:
    return {**message.row(), "reason": message.payload.get("reason")}


def register(app: typer.Typer) -> None:
    app.command("notify")(notify_cmd)
