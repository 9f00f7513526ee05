"""Ingestion end to end: expand paths, fingerprint, skip duplicates, read, write in one transaction.

Sources parse and map; the ledger writes; this module only wires them and summarises what happened.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from costline.clock import Clock
from costline.ledger.periods import PeriodStatus, period_statuses
from costline.ledger.store import CurrencyTotals, Ledger, RestatedPeriod
from costline.model import Finding
from costline.sources.base import FileSource, SourceBatch, SourceFile
from costline.sources.files import expand_paths
from costline.sources.focus_datasets import read_focus_datasets

FOCUS_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".tsv", ".tsv.gz", ".parquet", ".pq")


@dataclass
class FileReport:
    path: str
    fingerprint: str
    status: str  # ingested | duplicate
    rows: int = 0
    table: str | None = None
    dialect: str | None = None
    focus_version: str | None = None
    duplicate_of: str | None = None
    notes: list[Finding] = field(default_factory=list)


@dataclass
class IngestSummary:
    source: str
    ingestion_id: str | None
    files: list[FileReport]
    totals: list[CurrencyTotals]
    billing_periods: list[str]
    providers: list[str]
    restated: list[RestatedPeriod]
    seconds: float
    # Rows of earlier ingestions this one replaced by key or scope (a workload's newer state, an
    # edited registry file's entries), and rows it brought but did not keep (the ledger had newer).
    replaced_rows: int = 0
    superseded_rows: int = 0
    # The status (final/open) of the billing periods this ingestion touched, where a FOCUS 1.4
    # Billing Period file told it.
    period_status: list[PeriodStatus] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def duplicates(self) -> list[str]:
        return [f.path for f in self.files if f.status == "duplicate"]

    def as_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "source": self.source,
            "ingestion_id": self.ingestion_id,
            "rows": self.rows,
            "totals": [
                {
                    "currency": t.currency,
                    "rows": t.rows,
                    "billed": _text(t.billed),
                    "effective": _text(t.effective),
                    "list": _text(t.list),
                    "contracted": _text(t.contracted),
                }
                for t in self.totals
            ],
            "billing_periods": self.billing_periods,
            "providers": self.providers,
            "duplicates": self.duplicates,
            "replaced_rows": self.replaced_rows,
            "superseded_rows": self.superseded_rows,
            "restated_periods": [
                {
                    "provider": r.provider,
                    "billing_account_id": r.billing_account_id,
                    "billing_period_start": _iso(r.billing_period_start),
                    "replaced_rows": r.replaced_rows,
                }
                for r in self.restated
            ],
            "files": [
                {**vars(f), "notes": [n.model_dump(mode="json") for n in f.notes]}
                for f in self.files
            ],
            "period_status": [
                {
                    "invoice_issuer": p.invoice_issuer,
                    "billing_period_start": _iso(p.start),
                    "billing_period_end": _iso(p.end),
                    "status": p.status,
                }
                for p in self.period_status
            ],
            "seconds": round(self.seconds, 3),
        }


def file_notes(batch: SourceBatch, clock: Clock, source: str = "focus") -> list[Finding]:
    """What a reader noticed about a file (missing FOCUS columns, renames), as data-quality findings."""
    return [
        Finding.new(
            kind="data_quality",
            scope={"source": source, "file": str(batch.file.path)},
            dedup_key=f"{batch.file.fingerprint}:{note.split(':', 1)[0]}",
            clock=clock,
            title=note.split(":", 1)[0],
            summary=note,
            severity="info",
            evidence={
                "fingerprint": batch.file.fingerprint,
                "dialect": batch.dialect,
                "focus_version": batch.focus_version,
            },
            actions=[
                {
                    "text": f"Fix the export of {batch.file.path.name} as the note says and "
                    "ingest it again: until then the views that read what it lacks count "
                    "its lines as unknown"
                }
            ],
        )
        for note in batch.warnings
    ]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso(ts: dt.datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


FOCUS = FileSource("focus", FOCUS_SUFFIXES, read_focus_datasets)


# (done, total, what is being done): how ingestion reports its steps to whoever shows progress.
Progress = Callable[[int, int, str], None]


def ingest_focus(
    ledger: Ledger,
    paths: Iterable[str | Path],
    *,
    replace_periods: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """`costline ingest focus`: FOCUS and provider-native billing files into `cost_lines`.

    `replace_periods` lets a restatement remove more than half of a period's rows or cost."""
    return ingest_files(ledger, paths, FOCUS, replace_periods=replace_periods, progress=progress)


def _fingerprinted(paths: Iterable[Path], progress: Progress | None) -> list[SourceFile]:
    """Each file with its fingerprint (a SHA-256 of its bytes), telling `progress` file by file."""
    paths = list(paths)
    files = []
    for i, path in enumerate(paths):
        if progress is not None:
            progress(i, len(paths) + 2, f"fingerprinting {path.name}")
        files.append(SourceFile.of(path))
    return files


def ingest_files(
    ledger: Ledger,
    paths: Iterable[str | Path],
    source: FileSource,
    *,
    replace_periods: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Any file source into the ledger: fingerprint, skip duplicates, read, write in one transaction.

    `progress`, when given, is told each step: one per file fingerprinted (by bytes read, the
    slow part of a large file before its rows), then reading, then the ledger write."""
    started = time.perf_counter()
    files = _fingerprinted(expand_paths(paths, source.suffixes), progress)
    steps = len(files) + 2
    reports: list[FileReport] = []
    fresh: list[SourceFile] = []
    known = ledger.known_fingerprints([f.fingerprint for f in files])
    in_this_run: dict[str, str] = {}
    for f in files:
        earlier = known.get(f.fingerprint) or in_this_run.get(f.fingerprint)
        if earlier is not None and f.fingerprint in known and source.state_of is not None:
            table, scope = source.state_of(f)
            earlier = earlier if ledger.state_from(table, scope, f.fingerprint) else None
        if earlier is not None:
            reports.append(
                FileReport(str(f.path), f.fingerprint, "duplicate", duplicate_of=earlier)
            )
            continue
        in_this_run[f.fingerprint] = str(f.path)
        fresh.append(f)
    if not fresh:
        return IngestSummary(
            source.name, None, reports, [], [], [], [], time.perf_counter() - started
        )
    if progress is not None:
        progress(len(files), steps, f"reading {len(fresh)} new file(s)")
    batches = source.read(fresh)
    notes = [note for b in batches for note in file_notes(b, ledger.clock, source.name)]
    if progress is not None:
        progress(len(files) + 1, steps, f"writing {len(fresh)} file(s) into the ledger")
    result = ledger.write(
        batches, source=source.name, findings=notes, replace_periods=replace_periods
    )
    if progress is not None:
        progress(steps, steps, "summing up")
    for b in batches:
        reports.append(
            FileReport(
                str(b.file.path),
                b.file.fingerprint,
                "ingested",
                rows=result.rows_by_file[b.file.fingerprint],
                table=b.table,
                dialect=b.dialect,
                focus_version=b.focus_version,
                notes=[n for n in notes if n.scope["file"] == str(b.file.path)],
            )
        )
    replaced, superseded = sum(result.replaced.values()), sum(result.superseded.values())
    periods = _period_status(ledger, result.ingestion_id, batches)
    if not any(b.table == "cost_lines" for b in batches):
        return IngestSummary(source.name, result.ingestion_id, reports, [], [], [], [],
                             time.perf_counter() - started, replaced, superseded,
                             periods)  # fmt: skip
    report = ledger.ingestion_report(result.ingestion_id)
    return IngestSummary(
        source=source.name,
        ingestion_id=result.ingestion_id,
        files=reports,
        totals=report.totals,
        billing_periods=sorted(p for p in (_iso(v) for v in report.billing_periods) if p),
        providers=sorted(report.providers),
        restated=result.restated,
        seconds=time.perf_counter() - started,
        replaced_rows=replaced,
        superseded_rows=superseded,
        period_status=periods,
    )


def _period_status(
    ledger: Ledger, ingestion_id: str, batches: list[SourceBatch]
) -> list[PeriodStatus]:
    """Billing period statuses, for ingestions of bills (other sources have no billing periods)."""
    if not any(b.table in ("cost_lines", "billing_periods") for b in batches):
        return []
    return period_statuses(ledger, ingestion_id=ingestion_id)
