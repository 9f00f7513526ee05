"""The API's reports: showback and chargeback of a window, from the functions `costline report`
runs, so the dashboard shows the CLI's numbers to the cent.

A report allocates the window's bills (`allocation.allocate`, docs/methodology/allocation.md)
and groups the allocation by a dimension (`allocation.reports.report`), exactly as
`costline report showback|chargeback --period START..END` does. Its buckets add up to the
window's billed total: owners + `__shared__` + `__idle__` + `__unallocated__`.

Filters: `provider`, `service` and `region` narrow the cost lines before they are allocated (the
CLI's `--where ProviderName=...`). The derived dimensions (team, project, ...) cannot narrow a
report without breaking it (a GPU host's bill is split by who held it, not by its tags), so they
are listed in `ignored_filters`, never silently applied or dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from costline.allocation.reports import REPORT_BY, report
from costline.model import Selector
from costline.server.filters import DAY, Filters, Span, choice, next_month
from costline.server.queries import COSTS, window
from costline.server.reader import Reader

if TYPE_CHECKING:
    from costline.allocation.allocate import Allocation, CostColumn

# Filter dimensions that are FOCUS columns of the cost lines: they narrow the lines allocated.
LINE_COLUMNS = {"provider": "ProviderName", "service": "ServiceName", "region": "RegionId"}
IDLE_MODES = ("shown", "shared")


def allocation(
    reader: Reader, span: Span, cost: CostColumn = "effective", where: Selector | None = None
) -> Allocation:
    """The window's allocation (as `costline report` computes it), kept per data version."""
    from costline.allocation.allocate import allocate

    terms = tuple(sorted((d, tuple(sorted(v))) for d, v in (where.root if where else {}).items()))

    def run() -> Allocation:
        t = {n: reader.table(n) for n in ("cost_lines", "gpu_samples", "workloads", "metrics")}
        return allocate(t["cost_lines"], t["gpu_samples"], t["workloads"], *span.at(),
                        cost=cost, where=where or None, rules=reader.rules, metrics=t["metrics"])  # fmt: skip

    return reader.cached_data("allocation", (span.start, span.end, cost, terms), run)


def line_filters(filters: Filters) -> tuple[Selector, list[str]]:
    """The filters on FOCUS columns as an allocation's `where`; the others, to report."""
    where: dict[str, list[str]] = {}
    ignored = []
    for dimension, accepted in filters.selector.root.items():
        if dimension in LINE_COLUMNS:
            where[LINE_COLUMNS[dimension]] = list(accepted)
        else:
            ignored.append(dimension)
    return Selector.model_validate(where), ignored


def showback(
    reader: Reader,
    filters: Filters,
    *,
    kind: Literal["showback", "chargeback"] = "showback",
    by: str = "team",
    idle: str = "shown",
    cost: str = "effective",
) -> dict[str, Any]:
    """`costline report showback|chargeback --format json`'s rows for the window, its total, and
    the filters a report cannot apply."""
    choice("by", by, REPORT_BY)
    choice("idle", idle, IDLE_MODES)
    column: CostColumn = "billed" if choice("cost", cost, COSTS) == "billed" else "effective"
    span = window(reader, filters)
    where, ignored = line_filters(filters)
    allocated = allocation(reader, span, column, where)
    rows = report(allocated, by, kind, idle="shown" if idle == "shown" else "shared")
    return {
        "kind": kind,
        "by": by,
        "idle": "shared" if kind == "chargeback" else idle,
        "cost": cost,
        "start": span.start,
        "end": span.end,
        "total_usd": allocated.total,
        "rows": rows,
        "ignored_filters": ignored,
    }


# -- unit costs ------------------------------------------------------------------------------------


def period_text(span: Span) -> str:
    """How `costline report --period` writes the window: `2026-10`, `2026-10-31` or `a..b`."""
    if span.start.day == 1 and span.end == next_month(span.start):
        return span.start.strftime("%Y-%m")
    if span.end - span.start == DAY:
        return span.start.isoformat()
    return f"{span.start.isoformat()}..{span.end.isoformat()}"


def unit_report(
    reader: Reader, filters: Filters, *, cost: str = "effective", top: int = 15
) -> dict[str, Any]:
    """`costline report unit-costs --period <the window> --format json` (`economics.unit_report`):
    its sections (each row's `change_pct` against the previous period), the sentences it prints,
    and its scorecard: cost per request, per 1K tokens, GPU utilization, p95 latency, queue depth
    and failed jobs side by side, week over week and month over month. The report covers the
    whole organization, as the CLI's does: every filter is listed in `ignored_filters`."""
    from costline.economics.unit_report import (
        TABLES,
        previous_window,
        unit_cost_report,
        unit_sentences,
    )

    column: CostColumn = "billed" if choice("cost", cost, COSTS) == "billed" else "effective"
    span = window(reader, filters)
    before = previous_window(*span.at())
    tables = {name: reader.table(name) for name in TABLES}
    sections = unit_cost_report(tables, reader.config, span.at(), before, cost=column,
                                scorecard=True)  # fmt: skip
    scorecard = sections.pop("scorecard", [])
    sections = {k: v[:top] for k, v in sections.items()}
    return {
        "start": span.start,
        "end": span.end,
        "period": period_text(span),
        "previous": {"start": before[0].date(), "end": before[1].date()},
        "cost": cost,
        "scorecard": scorecard,
        "sentences": unit_sentences(sections, period_text(span), span.at()),
        "sections": sections,
        "ignored_filters": list(filters.selector.dimensions),
    }
