"""The weekly reviews of a ledger: `reviews` for everyone and for each owner, `as_json` to send.

`costline report weekly` prints one; `costline report weekly --send` and `costline sync` send
one to each owner (`costline.notify.weekly`). All of them judge the same week, the 7 days to the
last bill, and read the budgets at risk once for every owner (`weekly.budgets_at_risk`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from costline.attribution.rules import Rules
from costline.budgets.evaluate import evaluate_budgets
from costline.clock import Clock
from costline.config import Config
from costline.ledger.sql import last_bill_day
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.optimize import weekly

TABLES = ("cost_lines", "findings", "gpu_samples", "workloads", "llm_requests")


def reviews(
    ledger: Ledger, config: Config, clock: Clock, owners: Sequence[str | None] = (None,)
) -> dict[str | None, weekly.Review]:
    """The review of the week to the last bill for each of `owners` (None: everyone). A ledger
    without bills is an error (`last_bill_day`): there is no week to review."""
    last = last_bill_day(ledger.con)
    statuses = (evaluate_budgets(ledger, config, last, clock=clock, since=last).statuses
                if config.budgets else [])  # fmt: skip
    at_risk = weekly.budgets_at_risk(statuses)
    tables = {name: ledger.table(name) for name in TABLES}
    rules = Rules.from_config(config)
    end = last + dt.timedelta(days=1)
    return {o: weekly.gather(tables, end, rules, owner=o, budgets=at_risk) for o in owners}


def as_json(review: weekly.Review) -> dict[str, Any]:
    """The review as JSON: findings in their published schema, money as decimal strings."""
    return {"version": 1, **_plain(dataclasses.asdict(review))}


def _plain(value: Any) -> Any:
    if isinstance(value, Finding):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
