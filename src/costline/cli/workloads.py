"""CLI commands for workloads, storage inventories, annotations and metrics.

`register(app, ingest_app)` adds `ingest kubernetes|slurm|registry|storage|lifecycle|annotations|
metrics` and the top-level `annotate`. Heavy imports happen inside the commands, so `costline --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from costline.cli.output import Format, default_format, emit_rows

if TYPE_CHECKING:
    from costline.ledger.store import Ledger
    from costline.sources.annotations import Annotation

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format", "-f", help="table, json or csv (default: table on a terminal, else json)"
    ),
]
Paths = Annotated[list[str], typer.Argument(help="Files, folders or globs")]


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add this module's commands to the `costline` app and its `ingest` group."""
    ingest_app.command("kubernetes")(ingest_kubernetes_cmd)
    ingest_app.command("slurm")(ingest_slurm_cmd)
    ingest_app.command("registry")(ingest_registry_cmd)
    ingest_app.command("storage")(ingest_storage_cmd)
    ingest_app.command("annotations")(ingest_annotations_cmd)
    ingest_app.command("metrics")(ingest_metrics_cmd)
    ingest_app.command("lifecycle")(ingest_lifecycle_cmd)
    app.command("annotate")(annotate_cmd)


def ingest_kubernetes_cmd(paths: Paths, fmt: FormatOpt = None) -> None:
    """Ingest `kubectl get pods -A -o json` dumps as workloads (one per pod)."""
    from costline.cli.ingest import run_ingest
    from costline.sources.workloads import KUBERNETES

    run_ingest(paths, KUBERNETES, fmt)


def ingest_slurm_cmd(
    paths: Paths,
    tz: Annotated[
        str, typer.Option("--tz", help="Time zone sacct printed Start/End in (IANA name)")
    ] = "UTC",
    fmt: FormatOpt = None,
) -> None:
    """Ingest `sacct -P` output as workloads (jobs; steps skipped), with GPU-seconds."""
    from costline.cli.ingest import run_ingest
    from costline.sources.base import FileSource
    from costline.sources.workloads import SLURM, SLURM_SUFFIXES
    from costline.sources.workloads.slurm import slurm_reader

    source = SLURM if tz == "UTC" else FileSource("slurm", SLURM_SUFFIXES, slurm_reader(tz))
    run_ingest(paths, source, fmt)


def ingest_registry_cmd(paths: Paths, fmt: FormatOpt = None) -> None:
    """Ingest the experiment and endpoint registry (YAML): owners, budgets, TTLs, outputs."""
    from costline.cli.ingest import run_ingest
    from costline.sources.workloads import REGISTRY

    run_ingest(paths, REGISTRY, fmt)


def ingest_storage_cmd(
    paths: Paths,
    checkpoint_pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--checkpoint-pattern",
            help="Key glob (or re:REGEX) marking checkpoints; repeat; replaces the defaults",
        ),
    ] = None,
    snapshot_date: Annotated[
        str | None,
        typer.Option("--snapshot-date", help="YYYY-MM-DD, when neither manifest nor name says"),
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """Ingest S3 Inventory (manifest.json, CSV, Parquet) and GCS inventory reports."""
    from costline.cli.ingest import run_ingest
    from costline.sources.storage import DEFAULT_CHECKPOINT_PATTERNS, storage_source

    try:
        date = dt.date.fromisoformat(snapshot_date) if snapshot_date else None
    except ValueError:
        raise typer.BadParameter(
            f"expected YYYY-MM-DD (got {snapshot_date!r})", param_hint="--snapshot-date"
        ) from None
    patterns = checkpoint_pattern or DEFAULT_CHECKPOINT_PATTERNS
    run_ingest(paths, storage_source(patterns, date), fmt)


def ingest_annotations_cmd(paths: Paths, fmt: FormatOpt = None) -> None:
    """Ingest annotations from YAML, JSON Lines or CSV files of {ts, end, kind, scope, text}."""
    from costline.cli.ingest import run_ingest
    from costline.sources.annotations import ANNOTATIONS

    run_ingest(paths, ANNOTATIONS, fmt)


def ingest_lifecycle_cmd(paths: Paths, fmt: FormatOpt = None) -> None:
    """Ingest bucket lifecycle rules: `aws s3api get-bucket-lifecycle-configuration` output
    (BUCKET.lifecycle.json) or GCS lifecycle JSON; a bucket's rules replace its earlier ones."""
    from costline.cli.ingest import run_ingest
    from costline.sources.storage.lifecycle import LIFECYCLE

    run_ingest(paths, LIFECYCLE, fmt)


def ingest_metrics_cmd(paths: Paths, fmt: FormatOpt = None) -> None:
    """Ingest counted outcomes (inferences served, tickets resolved, ...) from CSV (ts, metric,
    value, label columns) or JSON Lines: the denominators of unit costs."""
    from costline.cli.ingest import run_ingest
    from costline.sources.metrics import METRICS

    run_ingest(paths, METRICS, fmt)


def annotate_cmd(
    text: Annotated[str, typer.Argument(help="What happened")],
    kind: Annotated[str, typer.Option("--kind", help="deploy, launch, migration, traffic, ...")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="key=value[,key=value]; repeat for more"),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="ISO 8601 time (default: now, to the minute)")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="ISO 8601 end, for a period")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Record something that happened (a deploy, a launch); the same annotation twice is a no-op."""
    from costline.cli.context import open_ledger
    from costline.sources.annotations import Annotation, parse_scope, parse_time

    try:
        terms = {k: v for s in scope or [] for k, v in parse_scope(s).items()}
        ts = parse_time(at) if at else None
        until = parse_time(end) if end else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with open_ledger() as ledger:
        start = ts or ledger.clock.now().replace(second=0, microsecond=0)
        note = Annotation(ts=start, kind=kind, text=text, scope=terms, end=until)
        result = record_annotation(ledger, note)
    emit_rows([result], default_format(fmt))


def record_annotation(ledger: Ledger, annotation: Annotation) -> dict[str, Any]:
    """Write one annotation unless the same one is already there; say which happened."""
    from costline.sources.annotations import annotation_batch

    batch = annotation_batch(annotation)
    status = "duplicate"
    if not ledger.known_fingerprints([batch.file.fingerprint]):
        ledger.write([batch], source="annotations")
        status = "ingested"
    return {
        "annotation_id": annotation.annotation_id,
        "status": status,
        "ts": annotation.ts,
        "end": annotation.end,
        "kind": annotation.kind,
        "scope": dict(annotation.scope),
        "text": annotation.text,
    }
