"""The outbox table: the messages costline decided to send, and what became of each one.

Deciding to alert (`costline.notify.outbox`) is separate from delivering (`costline.notify.deliver`);
this module is the SQL both share. Each state change is one statement, committed on its own, so a
crash between two of them loses nothing already committed; `insert` writes a whole batch in one
transaction. A message moves `pending` -> `sent`, or `pending` -> (retries) -> `failed`.

Claiming is a lease: `claim_next` takes the oldest due message, counts the attempt and moves its
`next_attempt_at` a lease ahead in the same statement. A deliverer that dies mid-send leaves the
message pending, to be tried again when the lease runs out, never lost. Messages of one (finding,
route) pair are claimed in the order they were queued (`seq`), so a PagerDuty `resolve` never
overtakes the `trigger` it resolves.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from costline.ledger.sql import run, run_one

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)

_COLUMNS = (
    "message_id, finding_fingerprint, channel, route, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, sent_at"
)
_SEQ = "TRY_CAST(json_extract_string({t}.payload, '$.seq') AS INTEGER)"


@dataclass(frozen=True)
class OutboxMessage:
    """One row of the outbox. `payload` is JSON without secrets: the route is named, and its URL,
    key or secret are read from the environment when the message is sent."""

    message_id: str
    finding_fingerprint: str
    channel: str
    route: str
    payload: dict[str, Any]
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    last_error: str | None = None
    created_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None

    @property
    def seq(self) -> int:
        """The message's place among those of its (finding, route) pair: 1, 2, ..."""
        return int(self.payload.get("seq") or 0)

    @property
    def event(self) -> str:
        """`trigger` (an alert) or `resolve` (PagerDuty: the finding was resolved)."""
        return str(self.payload.get("event") or "trigger")

    def row(self) -> dict[str, Any]:
        """What `costline notify` prints: never a URL, key or secret (none is stored)."""
        return {
            "message": self.message_id[:12],
            "route": self.route,
            "channel": self.channel,
            "event": self.event,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at if self.status == PENDING else None,
            "last_error": self.last_error,
            "finding": self.finding_fingerprint[:12],
            "title": self.payload.get("title"),
        }


def _message(row: Sequence[Any]) -> OutboxMessage:
    payload = row[4]
    return OutboxMessage(
        message_id=row[0],
        finding_fingerprint=row[1],
        channel=row[2],
        route=row[3],
        payload=json.loads(payload) if isinstance(payload, str) else dict(payload or {}),
        status=row[5],
        attempts=int(row[6] or 0),
        next_attempt_at=row[7],
        last_error=row[8],
        created_at=row[9],
        sent_at=row[10],
    )


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception (a kill leaves DuckDB's WAL uncommitted)."""
    run(con, "BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        run(con, "ROLLBACK")
        raise
    run(con, "COMMIT")


def insert(con: duckdb.DuckDBPyConnection, messages: Sequence[OutboxMessage]) -> list[str]:
    """Queue `messages` in one transaction; ids already in the outbox are skipped. Returns the ids
    written."""
    written: list[str] = []
    if not messages:
        return written
    with transaction(con):
        for m in messages:
            row = run_one(
                con,
                f"""INSERT INTO outbox ({_COLUMNS})
                    SELECT ?, ?, ?, ?, ?::JSON, ?, ?, ?, ?, ?, ?
                    WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = ?)""",
                [m.message_id, m.finding_fingerprint, m.channel, m.route,
                 json.dumps(m.payload, sort_keys=True, ensure_ascii=False), m.status, m.attempts,
                 m.next_attempt_at, m.last_error, m.created_at, m.sent_at, m.message_id],
            )  # fmt: skip
            if row and int(row[0]):
                written.append(m.message_id)
    return written


def claim_next(
    con: duckdb.DuckDBPyConnection,
    now: dt.datetime,
    lease: dt.timedelta,
    *,
    exclude: Sequence[str] = (),
) -> OutboxMessage | None:
    """Take the oldest due pending message (not one in `exclude`): attempts + 1, next attempt a
    lease away, in one statement. None when nothing is due."""
    rows = run(
        con,
        f"""UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $lease_end
            WHERE status = 'pending' AND message_id = (
              SELECT o.message_id FROM outbox o
              WHERE o.status = 'pending' AND o.next_attempt_at <= $now
                AND NOT list_contains($exclude::VARCHAR[], o.message_id)
                AND NOT EXISTS (
                  SELECT 1 FROM outbox e
                  WHERE e.status = 'pending' AND e.finding_fingerprint = o.finding_fingerprint
                    AND e.route = o.route AND {_SEQ.format(t="e")} < {_SEQ.format(t="o")})
              ORDER BY o.next_attempt_at, o.created_at, o.message_id
              LIMIT 1)
            RETURNING {_COLUMNS}""",
        {"now": now, "lease_end": now + lease, "exclude": list(exclude)},
    )
    return _message(rows[0]) if rows else None


def mark_sent(con: duckdb.DuckDBPyConnection, message_id: str, now: dt.datetime) -> None:
    """The receiver accepted it."""
    run(
        con,
        "UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL "
        "WHERE message_id = ? AND status = 'pending'",
        [now, message_id],
    )


def mark_retry(
    con: duckdb.DuckDBPyConnection, message_id: str, next_attempt_at: dt.datetime, error: str
) -> None:
    """It failed in a way that may pass: try again at `next_attempt_at` (the attempt was counted
    when it was claimed)."""
    run(
        con,
        "UPDATE outbox SET next_attempt_at = ?, last_error = ? "
        "WHERE message_id = ? AND status = 'pending'",
        [next_attempt_at, error, message_id],
    )


def mark_failed(con: duckdb.DuckDBPyConnection, message_id: str, error: str) -> None:
    """It will not be tried again (a permanent refusal, or out of attempts)."""
    run(
        con,
        "UPDATE outbox SET status = 'failed', last_error = ? "
        "WHERE message_id = ? AND status = 'pending'",
        [error, message_id],
    )


def retry_failed(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> int:
    """Every failed message back to pending with its attempts reset (after fixing a route)."""
    row = run_one(
        con,
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? "
        "WHERE status = 'failed'",
        [now],
    )
    return int(row[0]) if row else 0


def last_per_pair(
    con: duckdb.DuckDBPyConnection, fingerprints: Sequence[str]
) -> dict[tuple[str, str], OutboxMessage]:
    """The latest message (highest `seq`) of each (finding, route) pair of these findings."""
    if not fingerprints:
        return {}
    rows = run(
        con,
        f"""SELECT {_COLUMNS} FROM outbox
            WHERE list_contains(?::VARCHAR[], finding_fingerprint)
            QUALIFY row_number() OVER (
              PARTITION BY finding_fingerprint, route
              ORDER BY {_SEQ.format(t="outbox")} DESC, created_at DESC) = 1""",
        [list(fingerprints)],
    )
    found = [_message(r) for r in rows]
    return {(m.finding_fingerprint, m.route): m for m in found}


def messages(
    con: duckdb.DuckDBPyConnection,
    *,
    status: str | None = None,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[OutboxMessage]:
    """Outbox rows, oldest first, optionally of one status or of the given ids."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if ids is not None:
        where.append("list_contains(?::VARCHAR[], message_id)")
        params.append(list(ids))
    sql = f"SELECT {_COLUMNS} FROM outbox"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at, finding_fingerprint, route, " + _SEQ.format(t="outbox")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_message(r) for r in run(con, sql, params)]


def counts(con: duckdb.DuckDBPyConnection) -> Mapping[str, int]:
    """How many messages are in each status (every status present, zero when none)."""
    found = {s: int(n) for s, n in run(con, "SELECT status, count(*) FROM outbox GROUP BY 1")}
    return {s: found.get(s, 0) for s in STATUSES}
