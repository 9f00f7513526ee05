"""Findings in the ledger: stored by fingerprint, so the same finding seen again is updated.

`transition` moves one finding through its lifecycle (acknowledge, resolve, snooze, reopen) with
the rules of `Finding`, read and written in one transaction.

Findings also resolve themselves when what they are about is over (a budget's month closed, an
anomaly that ended long ago, a TTL of a workload that is gone):

- a detector that sends a finding already resolved with `evidence["resolved_reason"]` (its period
  is closed, a higher alert supersedes it, it is summed up in a digest) resolves the stored one
  too, whatever its status; one not stored is not recorded at all (`upsert`), so a first run
  stores only what needs someone;
- `resolve_stale` resolves the stored open, acknowledged or snoozed findings of a kind whose
  window ended before a day, or that a complete run of their detector no longer reports; the
  reason lands in `evidence["resolved_reason"]`, so `costline findings --status resolved` says
  why each went.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import duckdb

from costline.clock import SYSTEM_CLOCK, Clock
from costline.errors import CostlineError
from costline.ledger.sql import run, run_one
from costline.model import Finding, FindingStatus

RESOLVED_REASON = "resolved_reason"  # evidence key: why costline resolved a finding by itself

Action = Literal["acknowledge", "resolve", "snooze", "reopen"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "resolve", "snooze", "reopen")


class UnknownFinding(CostlineError, LookupError):
    """No finding in the ledger has this fingerprint."""


def upsert(con: duckdb.DuckDBPyConnection, findings: Sequence[Finding]) -> None:
    """Insert new findings; merge ones already stored (first_seen kept, last_seen moved on).

    One read of the stored ones, one delete and one insert for all of them (not three
    statements each: a daily detection run stores a dozen). The same fingerprint twice in
    `findings` merges the second into the first, as storing them one after the other does."""
    if not findings:
        return
    wanted = sorted({f.fingerprint for f in findings})
    stored = dict(run(con, "SELECT fingerprint, body FROM findings "
                           "WHERE fingerprint IN (SELECT unnest(?))", [wanted]))  # fmt: skip
    kept: dict[str, Finding] = {}  # in the order they are written, as stored one by one
    for finding in findings:
        body = kept.pop(finding.fingerprint).model_dump_json() if finding.fingerprint in kept else (
            stored.get(finding.fingerprint))  # fmt: skip
        if body is not None:
            finding = _settled(Finding.model_validate_json(body), finding)
        elif _born_resolved(finding):
            continue  # it only closes a stored one: with none, there is nothing to record
        kept[finding.fingerprint] = finding
    if not kept:
        return
    run(con, "DELETE FROM findings WHERE fingerprint IN (SELECT unnest(?))", [list(kept)])
    rows = list(kept.values())
    for at in range(0, len(rows), _BATCH):
        batch = rows[at : at + _BATCH]
        run(con, f"INSERT INTO findings ({_COLUMNS}) VALUES {', '.join([_ROW] * len(batch))}",
            [p for f in batch for p in _params(f)])  # fmt: skip


_COLUMNS = ("fingerprint, kind, severity, status, title, summary, scope, owner, impact_usd, "
            "window_start, window_end, first_seen, last_seen, snoozed_until, body")  # fmt: skip
_BATCH = 500  # findings an INSERT writes at most
_ROW = "(?, ?, ?, ?, ?, ?, MAP(?::VARCHAR[], ?::VARCHAR[]), ?, ?, ?, ?, ?, ?, ?, ?)"


def _params(finding: Finding) -> list[Any]:
    """One finding's values for `_ROW`."""
    window = finding.window
    return [
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
    ]


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


def _born_resolved(finding: Finding) -> bool:
    """A finding its detector resolved itself (its period closed, a higher alert superseded it,
    it is in a digest)."""
    return finding.status is FindingStatus.RESOLVED and RESOLVED_REASON in finding.evidence


def _settled(stored: Finding, newer: Finding) -> Finding:
    """`stored.merge(newer)`, resolved when the detector resolved `newer` itself: the stored
    status would otherwise keep it open forever."""
    merged = stored.merge(newer)
    if _born_resolved(newer) and merged.status is not FindingStatus.RESOLVED:
        return merged.model_copy(update={"status": FindingStatus.RESOLVED, "snoozed_until": None})
    return merged


def resolved_because(finding: Finding, reason: str, at: dt.datetime) -> Finding:
    """The finding resolved by costline itself, the reason and time in its evidence."""
    evidence = {**finding.evidence, RESOLVED_REASON: reason, "resolved_at": at.isoformat()}
    return finding.model_copy(
        update={"status": FindingStatus.RESOLVED, "snoozed_until": None, "evidence": evidence}
    )


def resolve_stale(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    reason: str,
    *,
    clock: Clock,
    ended_before: dt.datetime | None = None,
    absent_from: Sequence[Finding] | None = None,
    scope_key: str | None = None,
) -> list[Finding]:
    """Resolve the stored unresolved findings of `kind` (with `scope_key` in their scope, when
    given) whose window ended at or before `ended_before`, or, with `absent_from`, that are not
    among those findings (a complete run of their detector no longer reports them). `reason`
    may hold `{end}`, the window's end day. Returns the findings resolved, as stored."""
    if ended_before is None and absent_from is None:
        raise ValueError("resolve_stale needs ended_before or absent_from")
    rows = run(
        con,
        "SELECT body FROM findings WHERE kind = ? AND status <> 'resolved' ORDER BY fingerprint",
        [kind],
    )
    present = {f.fingerprint for f in absent_from} if absent_from is not None else None
    out = []
    for (body,) in rows:
        finding = Finding.model_validate_json(body)
        if scope_key is not None and scope_key not in finding.scope:
            continue
        if present is not None and finding.fingerprint in present:
            continue
        end = finding.window.end if finding.window else None
        if ended_before is not None and (end is None or end > ended_before):
            continue
        text = reason.format(end=(end - dt.timedelta(microseconds=1)).date() if end else "?")
        moved = resolved_because(finding, text, clock.now())
        run(
            con,
            "UPDATE findings SET status = ?, snoozed_until = NULL, body = ? WHERE fingerprint = ?",
            [str(moved.status), moved.model_dump_json(), moved.fingerprint],
        )
        out.append(moved)
    return out
