"""Do the views agree? The checks `costline demo` ends with, beside its ground truth.

- **Idle**: the GPU page's idle of both kinds (`allocation.idle`) equals the sums of
  `held_idle_usd` and `unheld_idle_usd` over showback's and chargeback's buckets, to the cent.
- **Run costs**: each experiment `costline budgets` lists has, over the window it states, the cost
  `report unit-costs` gives the same run over that window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import ibis

from costline.allocation.idle import idle_totals
from costline.allocation.reports import buckets, report_rows
from costline.attribution.rules import Rules
from costline.config import Config
from costline.economics.unit_report import run_allocation, unit_cost_report

CENT = Decimal("0.01")


def idle_agrees(
    tables: Mapping[str, ibis.Table], rules: Rules, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """The window's idle as the GPU page, showback and chargeback (by team) each report it."""
    a = run_allocation(tables, rules, start, end)
    page = idle_totals(a)
    views = {"gpu_page": (page.held_idle_usd, page.unheld_idle_usd)}
    reports = {
        "showback": buckets(a, "team"),
        "chargeback": buckets(a, "team", idle="shared", shared="proportional"),
    }
    for name, result in reports.items():
        rows = report_rows(result, a, "team")
        views[name] = (
            sum((Decimal(str(r["held_idle_usd"])) for r in rows), Decimal(0)),
            sum((Decimal(str(r["unheld_idle_usd"])) for r in rows), Decimal(0)),
        )
    cents = {k: (h.quantize(CENT), u.quantize(CENT)) for k, (h, u) in views.items()}
    return {
        "window": f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
        "held_idle_usd": cents["gpu_page"][0],
        "unheld_idle_usd": cents["gpu_page"][1],
        "agree": len(set(cents.values())) == 1,
        "views": {k: {"held_idle_usd": h, "unheld_idle_usd": u} for k, (h, u) in cents.items()},
    }


def run_costs_agree(
    tables: Mapping[str, ibis.Table], config: Config, experiments: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Each registry experiment's cost in budgets against unit costs over its stated window."""
    mismatched: list[str] = []
    checked = 0
    for window in sorted({str(e["window"]) for e in experiments if e.get("window")}):
        first, _, last = window.partition("..")
        span = (_day(first), _day(last))
        runs = {r["name"]: r for r in unit_cost_report(tables, config, span, None)
                .get("declared", [])}  # fmt: skip
        for e in experiments:
            run = runs.get(e["experiment"])
            if e.get("window") != window or run is None:
                continue
            checked += 1
            if Decimal(run["cost_usd"]).quantize(CENT) != Decimal(e["cost_usd"]).quantize(CENT):
                mismatched.append(e["experiment"])
    return {"runs": checked, "agree": not mismatched, "mismatched": mismatched}


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
