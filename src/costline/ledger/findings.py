"""Findings in the ledger: stored by fingerprint, so the same finding seen again is updated."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from costline.ledger.sql import run, run_one
from costline.model import Finding


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
