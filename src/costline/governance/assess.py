"""Manifests priced and gated against the ledger's history, when there is a ledger.

With a ledger: the duration factors of similar past runs (`history`), the rates the organization
paid for GPU instances over the last 30 days of bills (`optimize.rates`), and each team's budget
left in its current period (`budgets.evaluate.evaluate`, as `costline budgets` computes it, for
the budgets whose scope is exactly one team). Without one: the catalog and stated assumptions.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from costline.governance.estimate import Estimate, estimate, paid_window
from costline.governance.history import ASSUMED, duration_factors

if TYPE_CHECKING:
    import ibis

    from costline.config import Budget, Config
    from costline.governance.manifests import Declared
    from costline.ledger.store import Ledger
    from costline.optimize.rates import PaidRate


def estimates(
    declared: Sequence[Declared], config: Config, ledger: Ledger | None
) -> list[Estimate]:
    """Each manifest's estimate, with the organization's history and paid rates where known."""
    paid: list[PaidRate] = []
    workloads = None
    if ledger is not None:
        from costline.attribution.rules import Rules
        from costline.optimize.rates import effective_rates

        workloads = ledger.table("workloads")
        last = _last_day(ledger)
        if last is not None:
            start, end = paid_window(last)
            rules = Rules.from_config(config)
            paid = effective_rates(ledger.table("cost_lines"), start, end, rules)
    entries = [] if workloads is None else registry_globs(workloads)
    return [
        replace(estimate(d.manifest, d.source,
                         duration_factors(workloads, d.manifest.team, d.manifest.kind)
                         if workloads is not None else ASSUMED, paid),
                registry=next((name for name, glob in entries
                               if fnmatch.fnmatchcase(d.manifest.name, glob)), None))
        for d in declared
    ]  # fmt: skip


def registry_globs(workloads: ibis.Table) -> list[tuple[str, str]]:
    """(entry name, its `match.name` glob) of every registry entry, by name: what a manifest's
    name is matched against (the registry's own rule for observed workloads, `GLOB`)."""
    from costline.ledger import fetch
    from costline.sources.workloads.registry import MATCH_NAME_TAG

    w = workloads.filter(workloads.source == "registry")
    glob = w.tags.get(MATCH_NAME_TAG)
    rows = fetch.rows(w.filter(glob.notnull()).select(w.name, glob=glob).order_by("name"))
    return [(r["name"], r["glob"]) for r in rows]


def team_budgets(config: Config, ledger: Ledger | None) -> dict[str, dict[str, Any]]:
    """team -> its budget's name, period, amount, spend and what is left (the first budget
    whose scope is exactly `{team: X}`); empty without a ledger or such budgets."""
    chosen: dict[str, Budget] = {}
    for b in config.budgets:
        teams = b.scope.root.get("team")
        if len(b.scope.root) == 1 and teams is not None:
            names = [teams] if isinstance(teams, str) else list(teams)
            if len(names) == 1:
                chosen.setdefault(names[0], b)
    last = None if ledger is None or not chosen else _last_day(ledger)
    if ledger is None or last is None:
        return {}
    from costline.attribution.rules import Rules
    from costline.budgets.evaluate import evaluate
    from costline.budgets.status import current

    statuses = evaluate(ledger.table("cost_lines"), list(chosen.values()), last,
                        rules=Rules.from_config(config), forecast=False)  # fmt: skip
    by_name = {s.budget.name: s for s in current(statuses)}
    return {
        team: {"name": b.name, "period": str(by_name[b.name].period),
               "amount_usd": str(b.amount_usd), "spent_usd": str(by_name[b.name].spent),
               "remaining_usd": str(b.amount_usd - by_name[b.name].spent)}
        for team, b in chosen.items() if b.name in by_name
    }  # fmt: skip


def _last_day(ledger: Ledger) -> dt.date | None:
    """The last day billed; None for a ledger without bills (no paid rates, no budgets)."""
    from costline.ledger.sql import bill_days

    return bill_days(ledger.con)[1]
