"""The `costline` command line (Typer). Exit codes: 0 ok, 1 a gate failed, 2 bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from costline.cli.output import Format, default_format, dumps, emit_arrow, emit_rows
from costline.errors import CostlineError, LedgerError
from costline.ledger.store import DEFAULT_LEDGER_URL

if TYPE_CHECKING:
    from costline.ledger.store import Ledger
    from costline.pipeline import IngestSummary
    from costline.sources.base import FileSource

app = typer.Typer(
    name="costline",
    help="FinOps for AI workloads: one ledger for cloud bills, GPUs, jobs, tokens and storage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
ingest_app = typer.Typer(
    help="Load data into the ledger (atomic, idempotent).", no_args_is_help=True
)
export_app = typer.Typer(help="Write the ledger out in standard formats.", no_args_is_help=True)
schema_app = typer.Typer(help="Print the JSON Schemas costline publishes.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")
app.add_typer(schema_app, name="schema")

err = Console(stderr=True)
out = Console()

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format", "-f", help="table, json or csv (default: table on a terminal, else json)"
    ),
]


class State:
    ledger_url: str = DEFAULT_LEDGER_URL
    ledger_explicit: bool = False
    config_path: Path | None = None


state = State()


@app.callback()
def main_options(
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            envvar="COSTLINE_LEDGER",
            help=f"Ledger URL, e.g. duckdb:///path/ledger.duckdb [default: {DEFAULT_LEDGER_URL}]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar="COSTLINE_CONFIG", help="costline.yaml (default ./costline.yaml)"
        ),
    ] = None,
) -> None:
    state.ledger_url = ledger or DEFAULT_LEDGER_URL
    state.ledger_explicit = bool(ledger)
    state.config_path = config


def ledger_url() -> str:
    """--ledger or COSTLINE_LEDGER, else costline.yaml's `ledger:`, else the default file."""
    if state.ledger_explicit:
        return state.ledger_url
    from costline.config import load_config

    return load_config(state.config_path).ledger or DEFAULT_LEDGER_URL


def open_ledger(read_only: bool = False) -> Ledger:
    """The ledger, its cost lines reported in USD with the configuration's `fx:` rates."""
    from costline.config import load_config
    from costline.fx import configured_rates
    from costline.ledger.store import Ledger

    config = load_config(state.config_path)
    rates = configured_rates(config.fx, config.base_dir)
    return Ledger(ledger_url(), read_only=read_only, fx_rates=rates)


def print_ingest_summary(summary: IngestSummary, fmt: Format) -> None:
    """The one rendering of an ingestion, for every `costline ingest` source."""
    data = summary.as_json()
    if fmt is Format.json:
        sys.stdout.write(dumps(data) + "\n")
        return
    columns = ["path", "status", "table", "rows", "dialect", "focus_version"]
    if fmt is Format.csv:
        emit_rows(data["files"], fmt, columns=columns)
        return
    emit_rows(data["files"], fmt, title="Files", columns=[*columns, "duplicate_of"])
    if data["totals"]:
        emit_rows(data["totals"], fmt, title="Totals per currency")
    for f in summary.files:
        for note in f.notes:
            err.print(
                f"[yellow]note[/yellow] {escape(f.path)}: {escape(note.summary or note.title)}"
            )
    for period in summary.period_status:
        err.print(escape(period.describe()))
    for r in data["restated_periods"]:
        err.print(
            f"restated: {r['provider']} {r['billing_account_id']} {r['billing_period_start']} "
            f"({r['replaced_rows']} rows replaced)"
        )
    if summary.replaced_rows:
        err.print(f"replaced: {summary.replaced_rows} earlier rows (their newer state, or an "
                  "edited registry file's entries)")  # fmt: skip
    if summary.superseded_rows:
        err.print(f"kept the ledger's newer state: {summary.superseded_rows} rows of this input "
                  "are older than what the ledger holds")  # fmt: skip
    out.print(
        f"{summary.rows} rows from {len(summary.files) - len(summary.duplicates)} file(s), "
        f"{len(summary.duplicates)} duplicate(s), {summary.seconds:.2f}s"
    )


def run_ingest(
    paths: list[str], source: FileSource, fmt: Format | None, *, replace_periods: bool = False
) -> None:
    """Ingest `paths` with `source` into the ledger and print the summary."""
    from costline.pipeline import ingest_files

    chosen = default_format(fmt)
    with open_ledger() as ledger:
        if chosen is Format.table:
            with err.status(f"Ingesting {len(paths)} path(s) into {ledger.path} ..."):
                summary = ingest_files(ledger, paths, source, replace_periods=replace_periods)
        else:
            summary = ingest_files(ledger, paths, source, replace_periods=replace_periods)
    print_ingest_summary(summary, chosen)


@ingest_app.command("focus")
def ingest_focus_cmd(
    paths: Annotated[
        list[str], typer.Argument(help="FOCUS or provider-native files, folders or globs")
    ],
    replace_period: Annotated[
        bool,
        typer.Option(
            "--replace-period",
            help="Let a restatement remove more than half of a billing period's rows or cost "
            "(refused by default: a partial file would replace the whole period)",
        ),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Ingest FOCUS 1.0-1.3 exports (CSV, CSV.gz, Parquet) and AWS CUR / Azure EA-MCA bills."""
    from costline.pipeline import FOCUS

    run_ingest(paths, FOCUS, fmt, replace_periods=replace_period)


@export_app.command("focus")
def export_focus_cmd(
    out_path: Annotated[
        Path, typer.Argument(metavar="OUT", help="OUT.parquet, OUT.csv or OUT.csv.gz")
    ],
    focus_version: Annotated[
        str, typer.Option("--focus-version", help="1.0, 1.1, 1.2, 1.3 or 1.4")
    ] = "1.2",
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="cost-and-usage, contract-commitment (1.3+), billing-period or "
            "invoice-detail (1.4)",
        ),
    ] = "cost-and-usage",
    fmt: FormatOpt = None,
) -> None:
    """Write one FOCUS dataset of the ledger as a FOCUS file of the chosen version.

    Mandatory columns the ledger can fill are filled; those it has no value for in some rows (the
    sources lacked them) are listed, on stderr and as `lacking`."""
    from costline.export import export_focus

    with open_ledger(read_only=True) as ledger:
        result = export_focus(ledger, out_path, focus_version=focus_version, dataset=dataset)
    if result.lacking:
        err.print(
            f"[yellow]note[/yellow] FOCUS {result.focus_version} requires values the sources "
            f"did not give for some rows: {', '.join(result.lacking)}",
            soft_wrap=True,
        )
    emit_rows([vars(result)], default_format(fmt))


@app.command("sql")
def sql_cmd(
    query: Annotated[str, typer.Argument(help="SELECT ... against the ledger's tables")],
    fmt: FormatOpt = None,
) -> None:
    """Run read-only SQL against the ledger; statements that write are refused (exit 2)."""
    from costline.ledger.readonly import run_sql

    emit_arrow(run_sql(ledger_url(), query), default_format(fmt))


@app.command("migrate")
def migrate_cmd() -> None:
    """Bring the ledger's schema up to this costline's version (commands that write do it too).

    Reports upgrade an older ledger on their own when they can take the write lock for a moment;
    this is the command for when they could not (another process had the ledger open)."""
    from costline.ledger import migrations
    from costline.ledger.store import ledger_path

    path = ledger_path(ledger_url())
    if path != ":memory:" and not Path(path).exists():
        raise LedgerError(f"no ledger at {path}: ingest something first")
    import duckdb

    from costline.ledger import locking

    try:
        con = locking.connect(path)
    except duckdb.Error as exc:
        raise LedgerError(f"cannot open the ledger {path} to write: {exc}") from exc
    try:
        applied = migrations.migrate(con)
    finally:
        con.close()
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    out.print(f"{path}: schema version {migrations.LATEST} ({done})", soft_wrap=True)


@app.command("demo")
def demo_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the bills are written")] = Path(
        "demo-org"
    ),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same bytes")] = 7,
    days: Annotated[int, typer.Option(min=1, help="Days of billing, ending 2026-11-01")] = 90,
    scale: Annotated[
        float, typer.Option(min=0.01, help="Multiplies the number of resources")
    ] = 1.0,
    telemetry_days: Annotated[
        int,
        typer.Option(min=1, help="Days of GPU telemetry and LLM usage, at the window's end"),
    ] = 1,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start OUT/ledger.duckdb anew (rows a different costline version wrote "
            "from files of the same names would otherwise stay beside the new ones)",
        ),
    ] = False,
    fmt: FormatOpt = None,
) -> None:
    """Write a multi-cloud AI organization's bills in real formats, ingest them and report.

    The ledger is OUT/ledger.duckdb unless --ledger or COSTLINE_LEDGER names one.
    """
    from costline.cli.demo import run_demo

    url = state.ledger_url if state.ledger_explicit else f"duckdb://{out_dir / 'ledger.duckdb'}"
    if fresh and not state.ledger_explicit:
        for leftover in (out_dir / "ledger.duckdb", out_dir / "ledger.duckdb.wal"):
            leftover.unlink(missing_ok=True)
    run_demo(
        out=out_dir,
        ledger_url=url,
        seed=seed,
        days=days,
        scale=scale,
        fmt=default_format(fmt),
        err=err,
        telemetry_days=telemetry_days,
    )


@schema_app.command("config")
def schema_config_cmd() -> None:
    """The JSON Schema of costline.yaml."""
    from costline.config import config_json_schema

    sys.stdout.write(json.dumps(config_json_schema(), indent=2) + "\n")


@schema_app.command("finding")
def schema_finding_cmd() -> None:
    """The JSON Schema of a Finding, as emitted in JSON output and webhooks."""
    from costline.model import finding_json_schema

    sys.stdout.write(json.dumps(finding_json_schema(), indent=2) + "\n")


def _register_source_commands() -> None:
    """Commands of the telemetry, usage and workload sources, each defined beside its own kind."""
    from costline.cli import (
        budgets,
        detect,
        forecast,
        notify,
        reports,
        serve,
        sync,
        telemetry,
        thresholds,
        triage,
        usage,
        workloads,
    )

    for module in (telemetry, usage, workloads):
        module.register(app, ingest_app)
    reports.register(app)
    detect.register(app)
    triage.register(app)
    budgets.register(app)
    forecast.register(app)
    notify.register(app)
    serve.register(app)
    thresholds.register(app)
    sync.register(app)


_register_source_commands()


def main() -> None:
    """Entry point: usage errors exit 2 (Typer), costline's own errors with their exit code."""
    try:
        app()
    except CostlineError as exc:
        err.print(
            f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(exc.exit_code) from None
