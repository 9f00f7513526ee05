"""Findings in the ledger: stored by fingerprint, so the same finding seen again is updated.

`transition` moves one finding through its lifecycle (acknowledge, resolve, snooze, reopen) with
the rules of `Finding`, read and written in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import duckdb

from costline.clock import SYSTEM_CLOCK, Clock
from costline.errors import CostlineError
from costline.ledger.sql import run, run_one
from costline.model import Finding

Action = Literal["acknowledge", "resolve", "snooze", "reopen"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "resolve", "snooze", "reopen")


class UnknownFinding(CostlineError, LookupError):
    """No finding in the ledger has this fingerprint."""


def upsert(con: duckdb.DuckDBPyConnection, findings: Sequence[Finding]) -> None:
    """Insert new findings; merge ones already stored (first_seen kept, last_seen moved on)."""
    for finding in findings:
        row = run_one(con, "SELECT body FROM findings WHERE fingerprint = ?", [finding.fingerprint])
        if row is not None:
            finding = Finding.model_validate_json(row[0]).merge(finding)
            run(con, "DELETE FROM findings WHERE fingerprint = ?", [finding.fingerprint])
        window = finding.window
        run(
            con,
            """INSERT INTO findings (fingerprint, kind, severity, status, title, summary, scope,
                 owner, impact_usd, window_start, window_end, first_seen, last_seen,
                 snoozed_until, body)
               VALUES (?, ?, ?, ?, ?, ?, MAP(?::VARCHAR[], ?::VARCHAR[]), ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                finding.fingerprint,
                str(finding.kind),
                str(finding.severity),
                str(finding.status),
                finding.title,
                finding.summary,
                list(finding.scope),
                list(finding.scope.values()),
                finding.owner,
                finding.impact_usd,
                window.start if window else None,
                window.end if window else None,
                finding.first_seen,
                finding.last_seen,
                finding.snoozed_until,
                finding.model_dump_json(),
            ],
        )


def transition(
    con: duckdb.DuckDBPyConnection,
    fingerprint: str,
    action: Action,
    until: dt.datetime | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Finding:
    """Acknowledge, resolve, snooze (`until`, in the future) or reopen a stored finding.

    Raises `UnknownFinding` when no finding has `fingerprint`, and `costline.model.
    InvalidTransition` when its lifecycle does not allow `action` from its current status; the
    ledger is unchanged then. Returns the finding as stored.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if action == "snooze" and until is None:
        raise CostlineError("snooze needs `until`: the time the finding may page again")
    run(con, "BEGIN TRANSACTION")
    try:
        row = run_one(con, "SELECT body FROM findings WHERE fingerprint = ?", [fingerprint])
        if row is None:
            raise UnknownFinding(
                f"no finding {fingerprint!r} in the ledger (list them with `costline findings`)"
            )
        finding = Finding.model_validate_json(row[0])
        if action == "acknowledge":
            moved = finding.acknowledge()
        elif action == "resolve":
            moved = finding.resolve()
        elif action == "reopen":
            moved = finding.reopen()
        else:
            assert until is not None
            moved = finding.snooze(until, clock=clock)
        run(
            con,
            "UPDATE findings SET status = ?, snoozed_until = ?, body = ? WHERE fingerprint = ?",
            [str(moved.status), moved.snoozed_until, moved.model_dump_json(), fingerprint],
        )
        run(con, "COMMIT")
    except BaseException:
        run(con, "ROLLBACK")
        raise
    return moved
