"""`costline report ...`: showback and chargeback of a period (docs/methodology/allocation.md)."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from costline.cli.options import Cost, CostOpt, FormatOpt, parse_where
from costline.cli.output import Format, default_format, emit_rows, emit_sections
from costline.cli.progress import progress_bar
from costline.errors import CostlineError

if TYPE_CHECKING:
    from costline.allocation.allocate import Allocation
    from costline.config import Config
    from costline.model import Window

report_app = typer.Typer(
    help="Reports: showback, chargeback, tag compliance, unit costs, nowcast and reconcile.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class By(enum.StrEnum):
    team = "team"
    project = "project"
    model = "model"
    owner = "owner"
    environment = "environment"
    domain = "domain"


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


def run_allocation(period: str, cost: Cost, where: list[str] | None) -> Allocation:
    """The period's allocation from the ledger, the config's owners naming owners."""
    from costline.allocation.allocate import allocate
    from costline.attribution.rules import Rules
    from costline.cli.context import open_ledger, state
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
            where=parse_where(where),
            rules=rules,
            metrics=ledger.table("metrics"),
        )


def _emit(kind: Literal["showback", "chargeback"], by: By, period: str, cost: Cost, idle: Idle,
          where: list[str] | None, fmt: Format | None) -> None:  # fmt: skip
    from costline.allocation.idle import idle_totals
    from costline.allocation.reports import report
    from costline.money import format_money

    with progress_bar(f"Allocating {period} ({cost.value} cost)", total=None,
                      fmt=default_format(fmt)):  # fmt: skip
        allocation = run_allocation(period, cost, where)
        rows = report(allocation, by.value, kind, idle=idle.value)
        idle_ = idle_totals(allocation)
    title = (
        f"{kind.capitalize()} by {by.value}, {period} ({cost.value} cost): "
        f"{format_money(allocation.total)}; idle GPU-time: unheld "
        f"{idle_.unheld_gpu_hours:,.1f} GPU-h {format_money(idle_.unheld_idle_usd)}, held idle "
        f"{idle_.held_idle_gpu_hours:,.1f} GPU-h {format_money(idle_.held_idle_usd)}"
    )
    emit_rows(rows, default_format(fmt), title=title)


Period = Annotated[str, typer.Option("--period", help="YYYY-MM, YYYY-MM-DD or START..END (days)")]
ByOpt = Annotated[By, typer.Option("--by", help="The dimension to report by")]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where", help="Filter lines by FOCUS column, e.g. ProviderName=AWS (repeatable)"
    ),
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
    spend with an owner, the top untagged spend by service and by account, large GPU instances
    outside production, and the share of storage cost under lifecycle rules (with the buckets
    holding the most cost outside them)."""

    from costline.attribution.compliance import compliance, lifecycle_coverage
    from costline.attribution.rules import Rules
    from costline.cli.context import open_ledger, state
    from costline.config import load_config

    window = parse_period(period)
    rules = Rules.from_config(load_config(state.config_path))
    with open_ledger(read_only=True) as ledger:
        sections = compliance(ledger.table("cost_lines"), window.start, window.end, rules, top=top)
        sections |= lifecycle_coverage(ledger.table("cost_lines"), ledger.table("storage_objects"),
                                       ledger.table("storage_lifecycle"), window.start, window.end,
                                       top=top)  # fmt: skip
    emit_sections(sections, fmt, lambda name: f"{name.replace('_', ' ').capitalize()}, {period}")


@report_app.command("unit-costs")
def unit_costs_cmd(period: Period, top: Annotated[int, typer.Option(min=1)] = 15,
                   cost: CostOpt = Cost.effective, fmt: FormatOpt = None) -> None:  # fmt: skip
    """Unit economics: per LLM model and app (cost per 1K requests, per successful request, per
    1K tokens, cache-hit rate), per LLM app its cost per valuable output (per successful
    request, and per outcome of each outcome metric labelled with the app: accepted answers,
    resolved tickets), per GPU workload (GPU-hours, cost, cost per GPU-hour, held-idle
    share, SM-active efficiency) and per GPU pool (idle cost rate), each with its change against
    the previous period (month over month for a month, else the same length before); and a
    scorecard: cost per request, per 1K tokens, GPU utilization, p95 latency, queue depth and
    failed jobs, week over week and month over month."""

    from costline.cli.context import open_ledger, state
    from costline.cli.output import out_console
    from costline.config import load_config
    from costline.economics.unit_report import (
        TABLES,
        previous_window,
        unit_cost_report,
        unit_sentences,
    )

    window = parse_period(period)
    config = load_config(state.config_path)
    with (
        open_ledger(read_only=True) as ledger,
        progress_bar(
            f"Allocating {period} and the period before it, unit costs",
            total=None,
            fmt=default_format(fmt),
        ),
    ):
        tables = {name: ledger.table(name) for name in TABLES}
        sections = unit_cost_report(tables, config, (window.start, window.end),
                                    previous_window(window.start, window.end), cost=cost.value,
                                    scorecard=True)  # fmt: skip
    sections = {k: v[:top] for k, v in sections.items()}
    chosen = emit_sections(sections, fmt, lambda name: f"Unit costs: {name}, {period}")
    if chosen is Format.table:
        for line in unit_sentences(sections, period, (window.start, window.end)):
            out_console().print(line)


Lookback = Annotated[
    int,
    typer.Option(
        "--lookback-days", min=1, help="Days of bills before the period to learn rates from"
    ),
]


def _nowcast_tables(period: str, cost: Cost, lookback: int, which: str) -> list[dict[str, Any]]:
    from costline.cli.context import open_ledger
    from costline.economics import nowcast as nc

    window = parse_period(period)
    with open_ledger(read_only=True) as ledger:
        run = nc.nowcast if which == "nowcast" else nc.reconcile
        return run(
            ledger.table("cost_lines"),
            ledger.table("gpu_samples"),
            ledger.table("llm_requests"),
            window.start,
            window.end,
            lookback=dt.timedelta(days=lookback),
            cost=cost.value,
        )


@report_app.command("nowcast")
def nowcast_cmd(period: Period, lookback: Lookback = 7, cost: CostOpt = Cost.effective,
                fmt: FormatOpt = None) -> None:  # fmt: skip
    """Spend estimated from telemetry before the invoice lands: each GPU host's telemetry hours at
    its effective rate per GPU-hour (learned from its bills before the period), and LLM requests at
    their token prices; per day, provider and source."""
    rows = _nowcast_tables(period, cost, lookback, "nowcast")
    emit_rows(rows, default_format(fmt), title=f"Nowcast, {period} ({cost.value} rates)")


@report_app.command("reconcile")
def reconcile_cmd(period: Period, lookback: Lookback = 7, cost: CostOpt = Cost.effective,
                  fmt: FormatOpt = None) -> None:  # fmt: skip
    """The GPU nowcast of a period beside the billed cost of the same hosts and hours, once the
    bill has arrived: error per day and provider."""
    rows = _nowcast_tables(period, cost, lookback, "reconcile")
    emit_rows(rows, default_format(fmt), title=f"Nowcast against the bill, {period}")


@report_app.command("spike-review")
def spike_review_cmd(
    finding_id: Annotated[
        str, typer.Argument(help="A finding's fingerprint, or its first 8+ characters")
    ],
) -> None:
    """A postmortem of one finding, as markdown: what triggered it, root cause, what changed,
    value or waste, the signals and controls that fired around it, suggested policy and
    forecast updates."""
    import json
    import sys

    from costline.cli.context import open_ledger
    from costline.detect.review import related_to, spike_review
    from costline.model import Finding

    if len(finding_id) < 8:
        raise CostlineError(f"finding {finding_id!r}: give at least 8 characters of its id")
    with open_ledger(read_only=True) as ledger:
        t = ledger.table("findings")
        bodies = [r["body"] for r in t.select("body").to_pyarrow().to_pylist()]
    findings = [Finding.model_validate(b if isinstance(b, dict) else json.loads(b))
                for b in bodies]  # fmt: skip
    chosen = [f for f in findings if f.fingerprint.startswith(finding_id.lower())]
    if len(chosen) != 1:
        what = "no finding" if not chosen else f"{len(chosen)} findings"
        raise CostlineError(f"{what} with id {finding_id!r} (see costline findings)")
    sys.stdout.write(spike_review(chosen[0], related_to(chosen[0], findings)))


@report_app.command("weekly")
def weekly_cmd(
    owner: Annotated[
        str | None, typer.Option(help="Only this owner's (or team's) incidents, budgets, moves")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, html or json")] = "markdown",
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Send each configured owner's review (only --owner's, when given) through their "
            "alert routes, once per ISO week; print the messages",
        ),
    ] = False,
) -> None:
    """The weekly review of the last 7 billed days: top movers against the week before, open
    incidents, recommendations (new and acted on, with savings), budgets at risk, and the
    playbooks' quick-win checklist on your own data. With --send, each owner gets their own
    through the routes of their alerts (not PagerDuty), at most once a week; `costline sync`
    sends it on its first run of each week."""
    import sys

    from costline.cli.context import open_ledger, state
    from costline.cli.output import dumps
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.optimize import weekly
    from costline.optimize.reviews import as_json, reviews

    if fmt not in ("markdown", "html", "json"):
        raise CostlineError(f"--format {fmt!r}: choose from markdown, html, json")
    config = load_config(state.config_path)
    if send:
        _send_weekly(config, owner, Format.json if fmt == "json" else default_format(None))
        return
    with open_ledger(read_only=True) as ledger:
        review = reviews(ledger, config, SYSTEM_CLOCK, [owner])[owner]
    if fmt == "json":
        sys.stdout.write(dumps(as_json(review)) + "\n")
    else:
        sys.stdout.write(weekly.markdown(review) if fmt == "markdown" else weekly.html(review))


SENT_COLUMNS = ["message", "route", "channel", "status", "attempts", "last_error", "title"]


def _send_weekly(config: Config, owner: str | None, fmt: Format) -> None:
    """Queue this week's reviews not yet queued, deliver the outbox, print what became of them."""
    from costline.cli.context import open_ledger
    from costline.cli.output import err_console
    from costline.clock import SYSTEM_CLOCK
    from costline.errors import DeliveryError
    from costline.ledger import outbox
    from costline.notify import deliver
    from costline.notify.weekly import enqueue_reviews, targets, week_of

    week = week_of(SYSTEM_CLOCK.now())
    if not targets(config, [owner] if owner else None):
        err_console().print("No owner with a route to send to: give owners `routes:` in "
                            "costline.yaml (docs/methodology/alerts.md).")  # fmt: skip
    with open_ledger() as ledger:
        queued = enqueue_reviews(ledger, config, SYSTEM_CLOCK, [owner] if owner else None)
        report = deliver(ledger, config, SYSTEM_CLOCK)
        ids = list(dict.fromkeys([m.message_id for m in (*queued, *report.attempted)]))
        rows = [m.row() for m in outbox.messages(ledger.con, ids=ids)]
    emit_rows(rows, fmt, title=f"Weekly reviews, {week}", columns=SENT_COLUMNS)
    err_console().print(f"{len(queued)} review(s) queued for {week} (each owner's at most once a "
                        f"week), {len(report.sent)} message(s) sent, {len(report.retrying)} to "
                        f"retry, {len(report.failed)} failed", soft_wrap=True, highlight=False)  # fmt: skip
    if report.failed:
        raise DeliveryError(f"{len(report.failed)} message(s) failed for good (see last_error); "
                            "fix the route, then `costline notify --retry-failed`")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
