"""`costline ack|resolve|reopen|snooze FINGERPRINT`: move a finding through its lifecycle.

What `POST /api/v1/findings/{fingerprint}/ack` (and its siblings) does, from the command line:
the finding is moved in the ledger (works while `costline serve` runs: the server sees it).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from costline.ledger.findings import Action

from costline.cli.options import FormatOpt
from costline.cli.output import Format, default_format, emit_rows

Fingerprint = Annotated[str, typer.Argument(help="The finding's fingerprint (costline findings)")]


def _move(fingerprint: str, action: Action, until: dt.datetime | None, fmt: Format | None) -> None:
    from costline.cli.context import open_ledger
    from costline.ledger.findings import transition

    with open_ledger() as ledger:
        moved = transition(ledger.con, fingerprint, action, until)
    body = json.loads(moved.model_dump_json())
    row = {k: body.get(k) for k in ("fingerprint", "kind", "status", "snoozed_until", "title")}
    emit_rows([row], default_format(fmt), title="Finding")


def ack_cmd(fingerprint: Fingerprint, fmt: FormatOpt = None) -> None:
    """Acknowledge a finding (open or snoozed): someone owns it; it stops paging."""
    _move(fingerprint, "acknowledge", None, fmt)


def resolve_cmd(fingerprint: Fingerprint, fmt: FormatOpt = None) -> None:
    """Resolve a finding that is open, acknowledged or snoozed."""
    _move(fingerprint, "resolve", None, fmt)


def reopen_cmd(fingerprint: Fingerprint, fmt: FormatOpt = None) -> None:
    """Reopen an acknowledged, resolved or snoozed finding."""
    _move(fingerprint, "reopen", None, fmt)


def snooze_cmd(
    fingerprint: Fingerprint,
    until: Annotated[str, typer.Option(help="ISO 8601 time it may page again, e.g. 2026-11-08")],
    fmt: FormatOpt = None,
) -> None:
    """Snooze a finding until a time in the future."""
    from costline.errors import CostlineError

    try:
        when = dt.datetime.fromisoformat(until)
    except ValueError:
        raise CostlineError(f"--until {until!r} is not an ISO 8601 time") from None
    _move(fingerprint, "snooze", when if when.tzinfo else when.replace(tzinfo=dt.UTC), fmt)


def register(app: typer.Typer) -> None:
    app.command("ack")(ack_cmd)
    app.command("resolve")(resolve_cmd)
    app.command("reopen")(reopen_cmd)
    app.command("snooze")(snooze_cmd)
