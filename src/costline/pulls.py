"""Pulling from live APIs into the ledger: the pipeline half of the Prometheus source.

`costline.sources.prometheus` fetches series and builds rows; this module asks the ledger for the
watermark, hands it the batch, and advances the watermark in the same transaction. Sources never
write the ledger themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

import httpx

from costline.ledger.store import Ledger
from costline.model import Finding
from costline.pipeline import file_notes
from costline.sources.base import SourceFile, arrow_batch
from costline.sources.dcgm import GpuSamples, unidentified_notes
from costline.sources.prometheus import (
    DCGM_SERIES,
    MAX_POINTS,
    MICROS,
    SOURCE,
    PrometheusClient,
    dcgm_watermark_key,
    from_micros,
    grid,
    kube_state_workloads,
)
from costline.sources.records import map_columns, records_table


@dataclass
class PullReport:
    """What one pull did: the window it asked for, and what it wrote."""

    what: str  # dcgm | kube-state-metrics
    url: str
    name: str
    status: str  # ingested | up-to-date | duplicate
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    rows: int = 0
    replaced_rows: int = 0
    superseded_rows: int = 0  # rows not kept: the ledger holds a newer state of those pods
    fingerprint: str | None = None
    ingestion_id: str | None = None
    table: str | None = None
    notes: list[Finding] = field(default_factory=list)  # what the pull noticed, as stored


def _name(url: str, what: str) -> str:
    # SourceFile paths are Paths: keep `//` out of them.
    return f"prometheus:{re.sub(r'^[a-z]+://', '', url.rstrip('/'))} {what}"


def pull_dcgm(
    ledger: Ledger,
    url: str,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
    *,
    client: httpx.Client | None = None,
    max_points: int = MAX_POINTS,
) -> PullReport:
    """DCGM series of `[start, end)` not pulled before into `gpu_samples`, in one transaction."""
    prom = PrometheusClient(url, client, max_points=max_points)
    key = dcgm_watermark_key(url)
    report = PullReport("dcgm", url, _name(url, "dcgm"), "up-to-date", table="gpu_samples")
    window = grid(start, end, step, after=ledger.watermark(SOURCE, key))
    if window is None:
        return report
    samples = GpuSamples()
    for metric in DCGM_SERIES:
        for series in prom.query_range(metric, window):
            for t, v in series.points:
                samples.add(metric, series.labels, round(t * MICROS), v)
    instants = samples.timestamps()
    if not instants:
        return report
    report.first, report.last = from_micros(instants[0]), from_micros(instants[-1])
    file = SourceFile.virtual(report.name, f"{key}|{instants[0]}|{instants[-1]}|{window.step_us}")
    rows = samples.table(sample_seconds=window.step_us / MICROS, source=SOURCE)
    batch = arrow_batch(
        "gpu_samples",
        file,
        rows,
        dialect="prometheus-dcgm",
        warnings=unidentified_notes(samples.unidentified),
    )
    report.notes = file_notes(batch, ledger.clock, SOURCE)
    result = ledger.write(
        [batch], source=SOURCE, findings=report.notes, watermarks={key: report.last}
    )
    report.status, report.rows = "ingested", result.rows
    report.fingerprint, report.ingestion_id = file.fingerprint, result.ingestion_id
    return report


def pull_kube_state_metrics(
    ledger: Ledger,
    url: str,
    start: dt.datetime,
    end: dt.datetime,
    step: dt.timedelta,
    *,
    client: httpx.Client | None = None,
    max_points: int = MAX_POINTS,
) -> PullReport:
    """Pods of `[start, end)` into `workloads`, each replacing its earlier state."""
    prom = PrometheusClient(url, client, max_points=max_points)
    report = PullReport(
        "kube-state-metrics", url, _name(url, "kube-state-metrics"), "up-to-date", table="workloads"
    )
    window = grid(start, end, step)
    if window is None:
        return report
    report.first, report.last = from_micros(window.first_us), from_micros(window.last_us)
    rows = kube_state_workloads(prom, window)
    if not rows:
        return report
    file = SourceFile.virtual(report.name, json.dumps(rows, sort_keys=True, default=str))
    report.fingerprint = file.fingerprint
    if ledger.known_fingerprints([file.fingerprint]):
        report.status = "duplicate"
        return report
    # Observed at the window's last instant (left out of the fingerprint, so a pull that finds
    # the pods as they were is a duplicate): an older window pulled later is not newer state.
    observed = {"observed_at": report.last, "source_path": report.name}
    batch = arrow_batch(
        "workloads",
        file,
        records_table("workloads", [{**r, **observed} for r in rows]),
        dialect="kube-state-metrics",
        json_map_columns=map_columns("workloads"),
        replace_on=["workload_id"],
        newest_by="observed_at",
    )
    result = ledger.write([batch], source=SOURCE)
    report.status, report.rows = "ingested", result.rows
    report.replaced_rows = result.replaced.get("workloads", 0)
    report.superseded_rows = result.superseded.get("workloads", 0)
    report.ingestion_id = result.ingestion_id
    return report
