"""Lever 5: duplicate calls, in groups whose logs carry a prompt hash (`prompt_hash`: a gateway's
cache key, or the hash costline takes of a logged request's messages).

A request is a **duplicate** when the same group sent the same prompt hash within `WINDOW`
before it (each call restarts the window, as a response cache refreshed on every hit would). A
response cache would have answered it without a call: the saving is what the duplicates cost.
The range is the same count with a `SHORT` window (low) and a `LONG` one (high), in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.recommend import Savings
from costline.optimize.tokens.audit import Audit, dec, key_hash, name_of

WINDOW = 300  # seconds (P50)
SHORT = 60  # low
LONG = 900  # high


def per_prompt(audit: Audit) -> ir.Table:
    """Per group: requests with a prompt hash, and the count and cost of the duplicates. Only
    prompts sent twice or more in their group go through the ordered pass."""
    t = audit.requests
    t = t.filter(t.prompt_hash.notnull(), t.calls == 1)
    t = t.select("gid", "us", "order", "cost_usd", prompt=key_hash(t.gid, t.prompt_hash))
    counts = t.group_by(["gid", "prompt"]).aggregate(sent=t.count())
    totals = counts.group_by("gid").aggregate(hashed=counts.sent.sum(), prompts=counts.count())
    again = t.semi_join(counts.filter(counts.sent > 1), ["gid", "prompt"])
    w = ibis.window(group_by=[again.prompt], order_by=[again.us, again.order])
    again = again.mutate(gap=again.us - again.us.lag().over(w))

    def within(seconds: int) -> ir.BooleanValue:
        return again.gap.notnull() & (again.gap <= seconds * 1_000_000)

    dups = again.group_by("gid").aggregate(
        duplicates=within(WINDOW).sum(), usd=again.cost_usd.sum(where=within(WINDOW)),
        usd_low=again.cost_usd.sum(where=within(SHORT)),
        usd_high=again.cost_usd.sum(where=within(LONG)),
    )  # fmt: skip
    return totals.join(dups, "gid")


def duplicates(audit: Audit) -> Iterator[Finding]:
    """One finding per group whose duplicate calls cost something (see the module)."""
    if not any(g["hash_rows"] for g in audit.groups):
        return
    for r in audit.named(fetch.rows(per_prompt(audit))):
        if dec(r["usd"]) > 0:
            yield _finding(audit, r)


def _finding(audit: Audit, r: dict[str, Any]) -> Finding:
    name = name_of(r)
    saving, share = dec(r["usd"]), int(r["duplicates"]) / max(int(r["hashed"]), 1)
    return audit.finding(
        r, lever="duplicate_calls",
        title=f"{name}: {share:.0%} of calls repeat a prompt sent in the previous "
        f"{WINDOW // 60} minutes",
        summary=(
            f"{int(r['duplicates']):,} of {int(r['hashed']):,} calls of {name} sent a prompt "
            f"identical to one sent within {WINDOW // 60} minutes before ({r['prompts']:,} "
            "distinct prompts). A response cache keyed on the prompt would have answered them "
            "without a call."
        ),
        current=dec(r["cost"]),
        savings=Savings(saving, min(dec(r["usd_low"]), saving), max(dec(r["usd_high"]), saving)),
        method=f"cost of calls whose prompt hash the group sent within {WINDOW} s before "
        f"({SHORT}-{LONG} s for the range)",
        inputs={"calls_with_prompt_hash": r["hashed"], "distinct_prompts": r["prompts"],
                "duplicates": r["duplicates"], "window_seconds": WINDOW},
        coverage=int(r["hashed"]) / max(int(r["calls"] or 0), 1),
        risk="low for deterministic tasks (temperature 0, no per-user data in the answer); "
        "keep the cache's lifetime short where answers go stale",
        action=f"Put a response cache keyed on model and prompt in front of {name} (a gateway "
        f"cache such as LiteLLM's or Helicone's, or your own) with a {WINDOW // 60}-minute "
        "lifetime.",
    )  # fmt: skip
