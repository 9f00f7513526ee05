"""Counted outcomes (inferences served, tickets resolved, documents indexed) -> `metrics`.

Unit costs divide a cost by what it bought; a bill does not say what it bought, so these come from
the systems that do: a helpdesk export, a gateway's request log rolled up, a Prometheus query of an
inference server's counters (`increase(vllm:request_success_total[1h])` by endpoint). Files:

- CSV with a header: `ts`, `metric`, `value`, and every other column a label
  (`ts,metric,value,endpoint,status`);
- JSON Lines: `{"ts": ..., "metric": ..., "value": ..., "labels": {...}}` (other keys are labels too).

`ts` is ISO 8601 (UTC when no zone) and `value` a number: the count in the interval that starts at
`ts` (not a running counter). A later file with the same `ts`, `metric` and labels replaces the
earlier value, so overlapping exports are not counted twice. Names costline reads: `inference_requests` and `inference_successes`
labelled `endpoint` (see `costline.economics.declared`), any metric a business unit names in the
config, and outcome metrics of LLM apps (labelled `app`, see `costline.economics.outcomes`). A bad row is named by file, line and column, and nothing of the file is written.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from costline.errors import IngestError
from costline.sources.annotations import parse_time
from costline.sources.base import FileSource, SourceBatch, SourceFile, arrow_batch
from costline.sources.records import json_lines, map_columns

METRIC_SUFFIXES = (".csv", ".jsonl", ".ndjson")
INFERENCE_REQUESTS = "inference_requests"
INFERENCE_SUCCESSES = "inference_successes"


def read_metrics(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Each metrics file as one batch."""
    batches = []
    for f in files:
        ts, names, values, labels = [], [], [], []
        for line, record in _records(f):
            row = _row(record, f, line)
            ts.append(row[0])
            names.append(row[1])
            values.append(row[2])
            labels.append(json.dumps(row[3], sort_keys=True))
        table = pa.table(
            {
                "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                "metric": pa.array(names, pa.string()),
                "value": pa.array(values, pa.float64()),
                "labels": pa.array(labels, pa.string()),
            }
        )
        dialect = "csv" if f.path.name.lower().endswith(".csv") else "jsonl"
        batches.append(
            arrow_batch(
                "metrics",
                f,
                table,
                dialect=dialect,
                json_map_columns=map_columns("metrics"),
                replace_on=("ts", "metric", "labels"),  # a re-export of an interval replaces it
            )
        )
    return batches


def _records(f: SourceFile) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if f.path.name.lower().endswith(".csv"):
        with f.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"ts", "metric", "value"} - set(reader.fieldnames or ())
            if missing:
                raise IngestError(
                    f"the header lacks {', '.join(sorted(missing))}; expected ts, metric, value "
                    "and label columns",
                    path=str(f.path),
                    row=1,
                )
            for record in reader:
                yield reader.line_num, {k: v for k, v in record.items() if v not in (None, "")}
        return
    yield from json_lines(f.path)


def _row(
    record: Mapping[str, Any], f: SourceFile, line: int
) -> tuple[Any, str, float, dict[str, str]]:
    def fail(message: str, column: str) -> IngestError:
        return IngestError(message, path=str(f.path), row=line, column=column)

    for key in ("ts", "metric", "value"):
        if record.get(key) in (None, ""):
            raise fail("required value missing", key)
    try:
        ts = parse_time(str(record["ts"]))
    except ValueError as exc:
        raise fail(str(exc), "ts") from None
    raw = record["value"]
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise fail(f"expected a count of zero or more (got {raw!r})", "value")
    labels = record.get("labels") or {}
    if not isinstance(labels, dict):
        raise fail("labels must be a JSON object", "labels")
    out = {str(k): str(v) for k, v in labels.items()}
    out.update(
        {str(k): str(v) for k, v in record.items() if k not in ("ts", "metric", "value", "labels")}
    )
    return ts, str(record["metric"]), value, out


METRICS = FileSource("metrics", METRIC_SUFFIXES, read_metrics)
