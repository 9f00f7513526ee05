"""Keeping a recommendation run: `store` writes what it found and resolves what it no longer finds.

`costline recommend` and `POST /api/v1/recommendations/run` both end here, so a recommendation
has one lifecycle whichever ran it:

- each recommendation found is stored by its fingerprint (its kind and scope): running again
  updates the stored one (first seen kept, last seen, savings and evidence moved on) rather
  than adding another, and keeps its status (an acknowledged one stays acknowledged);
- each stored live one (open or acknowledged) of the kinds run that the run no longer finds is
  resolved, with the reason in `evidence["resolved_reason"]` and, when it was about a pool, the
  saving the bills since show (`realized_monthly_usd`, from `realized.with_realized`);

all in one transaction. `window_end` is the end of the window both judge on: the day after the
last billed day. `row` is a stored recommendation as the CLI, the API and the dashboard list it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb

from costline.clock import Clock
from costline.ledger.findings import resolved_because, upsert
from costline.ledger.sql import run as run_sql
from costline.model import Finding
from costline.optimize.run import Run

NO_LONGER = "a run of {kind} no longer finds it on the bills and telemetry since"


def window_end(last_bill_day: dt.date) -> dt.datetime:
    """Midnight UTC after the last billed day: a run judges the days before it."""
    day = last_bill_day + dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def settled(run: Run, clock: Clock) -> list[Finding]:
    """The findings `store` writes: those found, and the stale ones resolved with their reason."""
    now = clock.now()
    resolved = [resolved_because(f, NO_LONGER.format(kind=f.scope.get("recommendation", "its "
                                 "kind")), now) for f in run.stale]  # fmt: skip
    return [*run.found, *resolved]


def store(con: duckdb.DuckDBPyConnection, run: Run, clock: Clock) -> list[Finding]:
    """Write a run's findings and resolve its stale ones, in one transaction (see the module).
    Returns what was written: the found, then the resolved."""
    written = settled(run, clock)
    run_sql(con, "BEGIN TRANSACTION")
    try:
        upsert(con, written)
        run_sql(con, "COMMIT")
    except BaseException:
        run_sql(con, "ROLLBACK")
        raise
    return written


def row(body: Mapping[str, Any]) -> dict[str, Any]:
    """A stored recommendation (its JSON body) as a flat row: money as decimal strings, the
    action in full and, when it carries a config snippet after its first line, the snippet."""
    e = body.get("evidence") or {}
    savings = e.get("savings_monthly_usd") or {}
    actions = body.get("actions") or []
    action = actions[0]["text"] if actions else None
    scope = body.get("scope") or {}
    resource = [f"{k}={v}" for k, v in scope.items() if k not in ("recommendation", "team")]
    return {
        "fingerprint": body["fingerprint"],
        "kind": e.get("recommendation") or scope.get("recommendation"),
        "status": body.get("status"),
        "scope": scope,
        "resource": ", ".join(resource) or None,
        "owner": body.get("owner"),
        "title": body["title"],
        "summary": body.get("summary", ""),
        "current_monthly_usd": e.get("current_monthly_usd"),
        "savings_monthly_usd": savings.get("p50"),
        "savings_low_usd": savings.get("low"),
        "savings_high_usd": savings.get("high"),
        "confidence": e.get("confidence"),
        "risk": e.get("risk"),
        "coverage": e.get("coverage"),
        "method": e.get("method"),
        "action": action,
        "snippet": action.split("\n", 1)[1] if action and "\n" in action else None,
        "realized_monthly_usd": e.get("realized_monthly_usd"),
        "first_seen": body.get("first_seen"),
        "last_seen": body.get("last_seen"),
    }
