"""Workload TTLs: a workload still running past its time-to-live is a finding.

A workload (a notebook, a sweep trial, a demo endpoint) may declare a `ttl` in the registry or a
label. It has expired when it has no `end` yet, its status is not a finished one, and
`start + ttl` is at or before `now`. One finding per workload and expiry (the fingerprint holds
the workload and its start), so each check moves the same finding's `last_seen` and overdue time.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from costline.clock import Clock
from costline.ledger import fetch
from costline.model import Finding, FindingKind, Window

FINISHED = ("succeeded", "completed", "failed", "cancelled", "terminated", "deleted")


def expired(workloads: ir.Table, now: dt.datetime, *, clock: Clock) -> list[Finding]:
    """One finding per running workload past its TTL at `now`."""
    w = workloads
    due = w.filter(
        w.ttl.notnull(), w.start.notnull(), w["end"].isnull(),
        ~w.status.fill_null("running").lower().isin(list(FINISHED)), w.start + w.ttl <= now,
    )  # fmt: skip
    cols = ("workload_id", "kind", "name", "start", "owner", "team", "project", "environment",
            "gpus_requested", "gpu_model")  # fmt: skip
    rows = fetch.rows(due.select(*cols, expiry=due.start + due.ttl))
    out = []
    for r in rows:
        expiry, ttl = r["expiry"], r["expiry"] - r["start"]
        overdue = now - expiry
        hours = overdue.total_seconds() / 3600
        gpus = (
            f", {float(r['gpus_requested']):g} GPU(s) {r['gpu_model'] or ''}".rstrip()
            if r["gpus_requested"]
            else ""
        )
        out.append(
            Finding.new(
                kind=FindingKind.TTL_EXPIRY,
                scope={"workload": r["workload_id"]},
                dedup_key=f"ttl:{r['start'].isoformat()}",
                clock=clock,
                title=f"{r['kind']} {r['name'] or r['workload_id']} is {hours:,.1f} h past its TTL",
                severity="warning",
                summary=(
                    f"{r['kind']} {r['name'] or r['workload_id']}{gpus} started "
                    f"{r['start']:%Y-%m-%d %H:%M} UTC with a TTL of {ttl}; it expired "
                    f"{expiry:%Y-%m-%d %H:%M} UTC and is still running. Stop it, or extend its TTL."
                ),
                owner=r["owner"] or r["team"],
                window=Window(start=expiry, end=max(now, expiry + dt.timedelta(microseconds=1))),
                evidence={
                    "workload_id": r["workload_id"],
                    "kind": r["kind"],
                    "team": r["team"],
                    "project": r["project"],
                    "environment": r["environment"],
                    "start": r["start"].isoformat(),
                    "ttl_seconds": ttl.total_seconds(),
                    "expired": expiry.isoformat(),
                    "overdue_hours": round(hours, 2),
                },
                actions=[
                    {
                        "text": f"Stop {r['name'] or r['workload_id']}, which frees "
                        + (
                            f"its {float(r['gpus_requested']):g} GPU(s)"
                            if r["gpus_requested"]
                            else "what it holds"
                        )
                        + " at once; or extend its ttl if it is still needed"
                    }
                ],
            )
        )
    return out
