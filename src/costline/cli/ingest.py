"""What every `costline ingest` command shares: ingest paths with a source, print the summary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from costline.cli.context import open_ledger
from costline.cli.output import Format, default_format, dumps, emit_rows, err_console, out_console
from costline.cli.progress import progress_bar

if TYPE_CHECKING:
    from costline.pipeline import IngestSummary
    from costline.sources.base import FileSource


def print_ingest_summary(summary: IngestSummary, fmt: Format) -> None:
    """The one rendering of an ingestion, for every `costline ingest` source."""
    from rich.markup import escape

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
    err = err_console()
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
    out_console().print(
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
        what = f"Ingesting {len(paths)} path(s) into {ledger.path}"
        with progress_bar(what, total=None, fmt=chosen) as bar:
            summary = ingest_files(ledger, paths, source, replace_periods=replace_periods,
                                   progress=bar.update if bar.shown else None)  # fmt: skip
    print_ingest_summary(summary, chosen)
