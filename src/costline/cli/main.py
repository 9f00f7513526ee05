"""The `costline` command line (Typer). Exit codes: 0 ok, 1 a gate failed, 2 bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from costline.cli.context import ledger_url, open_ledger, state
from costline.cli.ingest import run_ingest
from costline.cli.output import (
    Format,
    default_format,
    emit_arrow,
    emit_rows,
    err_console,
    out_console,
)
from costline.errors import CostlineError, LedgerError
from costline.ledger import DEFAULT_LEDGER_URL

# rich_markup_mode=None: click's plain help, not typer's rich panels. Importing typer.rich_utils
# alone takes longer than importing DuckDB, on every `--help` and every usage error
# (docs/benchmarks.md, "CLI start-up").
app = typer.Typer(
    name="costline",
    help="FinOps for AI workloads: one ledger for cloud bills, GPUs, jobs, tokens and storage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
ingest_app = typer.Typer(
    help="Load data into the ledger (atomic, idempotent).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
export_app = typer.Typer(
    help="Write the ledger out in standard formats.", no_args_is_help=True, rich_markup_mode=None
)
schema_app = typer.Typer(
    help="Print the JSON Schemas costline publishes.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")
app.add_typer(schema_app, name="schema")

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format", "-f", help="table, json or csv (default: table on a terminal, else json)"
    ),
]


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
        err_console().print(
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
    out_console().print(f"{path}: schema version {migrations.LATEST} ({done})", soft_wrap=True)


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
        err=err_console(),
        telemetry_days=telemetry_days,
    )


@schema_app.command("config")
def schema_config_cmd() -> None:
    """The JSON Schema of costline.yaml."""
    from costline.config import config_json_schema

    sys.stdout.write(json.dumps(config_json_schema(), indent=2) + "\n")


@schema_app.command("manifest")
def schema_manifest_cmd() -> None:
    """The JSON Schema of an experiment manifest file (costline estimate, costline gate)."""
    from costline.manifest import manifest_json_schema

    sys.stdout.write(json.dumps(manifest_json_schema(), indent=2) + "\n")


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
        govern,
        notify,
        prices,
        recommend,
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
    govern.register(app)
    notify.register(app)
    prices.register(app)
    recommend.register(app)
    serve.register(app)
    thresholds.register(app)
    sync.register(app)


_register_source_commands()


def main() -> None:
    """Entry point: usage errors exit 2 (Typer), costline's own errors with their exit code."""
    try:
        app()
    except CostlineError as exc:
        from rich.markup import escape

        err_console().print(
            f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(exc.exit_code) from None
