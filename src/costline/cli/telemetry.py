"""`costline ingest dcgm` and `costline ingest prometheus`: GPU telemetry and Kubernetes workloads.

`register(app, ingest_app)` adds the commands; what they run is imported inside them, so
`costline --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.output import Format
from costline.clock import SYSTEM_CLOCK
from costline.errors import IngestError

if TYPE_CHECKING:
    from costline.pipeline import IngestSummary
    from costline.pulls import PullReport

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class What(enum.StrEnum):
    dcgm = "dcgm"
    kube_state_metrics = "kube-state-metrics"
    all = "all"


def parse_duration(text: str) -> dt.timedelta:
    """`60s`, `5m`, `1h30m`, `1d`, or plain seconds (`60`), as Prometheus writes durations."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return dt.timedelta(seconds=float(text))
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise IngestError(f"not a duration: {text!r} (examples: 60s, 5m, 1h30m, 1d)")
    return dt.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_time(text: str, now: dt.datetime) -> dt.datetime:
    """An instant: `now`, relative to now (`-1h`, `now-90m`), or ISO 8601 (no zone means UTC)."""
    text = text.strip()
    if text == "now":
        return now
    relative = re.fullmatch(r"(?:now)?-(.+)", text)
    if relative:
        return now - parse_duration(relative.group(1))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise IngestError(
            f"not a time: {text!r} (ISO 8601 like 2026-05-01T00:00:00Z, now, or -1h)"
        ) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def pull_summary(reports: list[PullReport], seconds: float) -> IngestSummary:
    """Pull reports in the shape every `costline ingest` prints."""
    from costline.pipeline import FileReport, IngestSummary

    files = [
        FileReport(
            path=r.name,
            fingerprint=r.fingerprint or "",
            status=r.status,
            rows=r.rows,
            table=r.table,
            dialect=r.what,
            notes=list(r.notes),
        )
        for r in reports
    ]
    ingestion = next((r.ingestion_id for r in reports if r.ingestion_id), None)
    return IngestSummary("prometheus", ingestion, files, [], [], [], [], seconds,
                         replaced_rows=sum(r.replaced_rows for r in reports),
                         superseded_rows=sum(r.superseded_rows for r in reports))  # fmt: skip


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add `ingest dcgm` and `ingest prometheus` to the CLI."""

    @ingest_app.command("dcgm")
    def ingest_dcgm_cmd(
        paths: Annotated[
            list[str],
            typer.Argument(
                help="Saved dcgm-exporter /metrics scrapes, or Parquet exports of samples; "
                "folders or globs"
            ),
        ],
        at: Annotated[
            str | None,
            typer.Option(
                "--at", help="Time of the last untimestamped scrape (default: the file's mtime)"
            ),
        ] = None,
        sample_seconds: Annotated[
            float | None,
            typer.Option(
                "--sample-seconds",
                min=0.001,
                help="Scrape interval (default: the gap between timestamps, else 30)",
            ),
        ] = None,
        fmt: Annotated[
            Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
        ] = None,
    ) -> None:
        """Ingest DCGM GPU telemetry into gpu_samples.

        Saved dcgm-exporter scrapes (Prometheus or OpenMetrics text, .gz too), or bulk history as
        Parquet: long (__name__, value, time and label columns) or wide (a column per DCGM metric).
        """
        from costline.cli.ingest import run_ingest
        from costline.sources.dcgm_source import dcgm_source

        when = parse_time(at, SYSTEM_CLOCK.now()) if at else None
        run_ingest(paths, dcgm_source(at=when, sample_seconds=sample_seconds), fmt)

    @ingest_app.command("prometheus")
    def ingest_prometheus_cmd(
        url: Annotated[str, typer.Option("--url", help="Prometheus base URL")],
        start: Annotated[str, typer.Option("--start", help="ISO time, or -1h, now-2d")] = "-1h",
        end: Annotated[str, typer.Option("--end", help="ISO time, now, or -5m")] = "now",
        step: Annotated[str, typer.Option("--step", help="Resolution: 60s, 5m")] = "60s",
        what: Annotated[What, typer.Option("--what", help="What to pull")] = What.all,
        fmt: Annotated[
            Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
        ] = None,
    ) -> None:
        """Pull DCGM GPU series and kube-state-metrics pods from Prometheus (incremental)."""
        run_prometheus(url, start, end, step, what, fmt)


def run_prometheus(
    url: str, start: str, end: str, step: str, what: What, fmt: Format | None
) -> None:
    """`costline ingest prometheus`: pull, write, print the summary."""
    import time

    from costline.cli.context import open_ledger
    from costline.cli.ingest import print_ingest_summary
    from costline.cli.output import default_format
    from costline.pulls import pull_dcgm, pull_kube_state_metrics

    began = time.perf_counter()
    reports = []
    with open_ledger() as ledger:
        now = ledger.clock.now()
        window = (parse_time(start, now), parse_time(end, now), parse_duration(step))
        if window[1] <= window[0]:
            raise IngestError(f"--end {end!r} is not after --start {start!r}")
        if what in (What.dcgm, What.all):
            reports.append(pull_dcgm(ledger, url, *window))
        if what in (What.kube_state_metrics, What.all):
            reports.append(pull_kube_state_metrics(ledger, url, *window))
    print_ingest_summary(pull_summary(reports, time.perf_counter() - began), default_format(fmt))
