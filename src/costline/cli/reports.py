"""`costline report ...`: showback and chargeback of a period (docs/methodology/allocation.md)."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.output import Format, default_format, emit_rows
from costline.errors import CostlineError

if TYPE_CHECKING:
    from costline.allocation.allocate import Allocation
    from costline.model import Selector, Window

report_app = typer.Typer(
    help="Reports: showback, chargeback and tag compliance.", no_args_is_help=True
)


class By(enum.StrEnum):
    team = "team"
    project = "project"
    model = "model"
    owner = "owner"
    environment = "environment"
    domain = "domain"


class Cost(enum.StrEnum):
    effective = "effective"
    billed = "billed"


class Idle(enum.StrEnum):
    shown = "shown"
    shared = "shared"


def parse_period(text: str) -> Window:
    """`2026-10` (a month), `2026-10-31` (a day) or `2026-10-01..2026-10-15` (days, end excluded)."""
    from costline.model import Window

    try:
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return Window.month(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return Window.day(text)
        first, sep, last = text.partition("..")
        if sep:
            start = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
            end = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
            return Window(start=start, end=end)
    except ValueError as exc:
        raise CostlineError(f"--period {text!r}: {exc}") from exc
    raise CostlineError(
        f"--period {text!r}: expected YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
    )


def _where(items: list[str] | None) -> Selector | None:
    from costline.model import Selector

    if not items:
        return None
    try:
        return Selector.parse(",".join(items))
    except ValueError as exc:
        raise CostlineError(f"--where: {exc}") from exc


def run_allocation(period: str, cost: Cost, where: list[str] | None) -> Allocation:
    """The period's allocation from the ledger, the config's owners naming owners."""
    from costline.allocation.allocate import allocate
    from costline.attribution.rules import Rules
    from costline.cli.main import open_ledger, state
    from costline.config import load_config

    window = parse_period(period)
    rules = Rules.from_config(load_config(state.config_path))

    with open_ledger(read_only=True) as ledger:
        return allocate(
            ledger.table("cost_lines"),
            ledger.table("gpu_samples"),
            ledger.table("workloads"),
            window.start,
            window.end,
            cost=cost.value,
            where=_where(where),
            rules=rules,
        )


def _emit(kind: str, by: By, period: str, cost: Cost, idle: Idle, where: list[str] | None,
          fmt: Format | None) -> None:  # fmt: skip
    from costline.allocation.reports import buckets, report_rows
    from costline.money import format_money

    dimension = "cost_domain" if by is By.domain else by.value
    allocation = run_allocation(period, cost, where)
    chargeback = kind == "chargeback"
    result = buckets(
        allocation,
        dimension,
        idle="shared" if chargeback or idle is Idle.shared else "shown",
        shared="proportional" if chargeback else "shown",
    )
    rows = report_rows(result, allocation, by.value)
    chosen = default_format(fmt)
    title = (
        f"{kind.capitalize()} by {by.value}, {period} ({cost.value} cost): "
        f"{format_money(allocation.total)}"
    )
    emit_rows(rows, chosen, title=title)


Period = Annotated[str, typer.Option("--period", help="YYYY-MM, YYYY-MM-DD or START..END (days)")]
ByOpt = Annotated[By, typer.Option("--by", help="The dimension to report by")]
CostOpt = Annotated[Cost, typer.Option("--cost", help="effective (amortized) or billed")]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where", help="Filter lines by FOCUS column, e.g. ProviderName=AWS (repeatable)"
    ),
]
FormatOpt = Annotated[
    Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
]


@report_app.command("showback")
def showback_cmd(
    period: Period,
    by: ByOpt = By.team,
    cost: CostOpt = Cost.effective,
    idle: Annotated[
        Idle, typer.Option("--idle", help="shown: __idle__ its own bucket; shared: over holders")
    ] = Idle.shown,
    where: WhereOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Who spent what in a period: GPU hosts split by GPU-time held, other lines by tags.

    Buckets add up exactly to the period's cost: owners + __shared__ + __idle__ + __unallocated__.
    """
    _emit("showback", by, period, cost, idle, where, fmt)


@report_app.command("chargeback")
def chargeback_cmd(
    period: Period,
    by: ByOpt = By.team,
    cost: CostOpt = Cost.effective,
    where: WhereOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """What each owner is charged: showback with idle GPU cost shared over each pool's holders by
    GPU-time and the shared platform over owners in proportion to their direct cost."""
    _emit("chargeback", by, period, cost, Idle.shared, where, fmt)


@report_app.command("compliance")
def compliance_cmd(period: Period, top: Annotated[int, typer.Option(min=1)] = 10,
                   fmt: FormatOpt = None) -> None:  # fmt: skip
    """Tag compliance: coverage of each required tag (share of cost and of resources), share of
    spend with an owner, the top untagged spend by service and by account, and large GPU
    instances outside production."""
    import sys

    from costline.attribution.compliance import compliance
    from costline.attribution.rules import Rules
    from costline.cli.main import open_ledger, state
    from costline.cli.output import dumps
    from costline.config import load_config

    window = parse_period(period)
    rules = Rules.from_config(load_config(state.config_path))
    with open_ledger(read_only=True) as ledger:
        sections = compliance(ledger.table("cost_lines"), window.start, window.end, rules, top=top)
    chosen = default_format(fmt)
    if chosen is Format.json:
        sys.stdout.write(dumps(sections) + "\n")
        return
    for name, rows in sections.items():
        title = f"{name.replace('_', ' ').capitalize()}, {period}"
        if chosen is Format.csv:
            sys.stdout.write(f"# {title}\n")
        emit_rows(rows, chosen, title=title)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
