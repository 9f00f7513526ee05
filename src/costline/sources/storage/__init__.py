"""Object-storage inventories -> `storage_objects`: AWS S3 Inventory and GCS Storage Insights.

Which format a file is:
- `*.json`: an S3 Inventory manifest; its data files (CSV or Parquet) are read as one batch, and
  data files it lists that were also named in the same run are not read twice;
- CSV (`.csv`, `.csv.gz`) with a header naming `bucket` and `name`: a GCS Storage Insights
  inventory report; any other CSV is an S3 inventory (header-less, see `s3`);
- Parquet: GCS when it has a `name` column, else S3.

`snapshot_date` is, in order: the option given, the manifest's `creationTimestamp`, the last
`YYYY-MM-DD` in the file's path; with none of them the file is refused. Checkpoints are flagged by
`checkpoints.DEFAULT_CHECKPOINT_PATTERNS` unless other patterns are given.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from costline.errors import IngestError
from costline.sources.base import FileSource, SourceBatch, SourceFile, arrow_batch
from costline.sources.records import map_columns, records_table
from costline.sources.storage import s3
from costline.sources.storage.checkpoints import DEFAULT_CHECKPOINT_PATTERNS, CheckpointMatcher
from costline.sources.storage.inventory import (
    Inventory,
    field_positions,
    normalise,
    object_row,
    snapshot_from_name,
)

STORAGE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".json")
AWS, GCP = "AWS", "Google Cloud"

Records = Iterator[tuple[int, Mapping[str, Any]]]


def read_storage(
    files: Sequence[SourceFile],
    *,
    checkpoint_patterns: Sequence[str] = DEFAULT_CHECKPOINT_PATTERNS,
    snapshot_date: dt.date | None = None,
) -> list[SourceBatch]:
    """Each inventory (a manifest with its data files, or one data file) as one batch."""
    try:
        matcher = CheckpointMatcher(checkpoint_patterns)
    except ValueError as exc:
        raise IngestError(str(exc)) from None
    manifests = {f.path: s3.load_manifest(f.path) for f in files if s3.is_manifest(f.path)}
    covered = {p.resolve() for m in manifests.values() for p in m.data_files}
    batches = []
    for f in files:
        if f.path in manifests:
            rows = _manifest_rows(manifests[f.path], matcher, snapshot_date)
        elif f.path.resolve() in covered:
            continue
        else:
            rows = _file_rows(f.path, matcher, snapshot_date)
        batches.append(
            arrow_batch(
                "storage_objects",
                f,
                records_table("storage_objects", rows),
                dialect="s3-inventory" if f.path in manifests else _dialect(rows),
                json_map_columns=map_columns("storage_objects"),
            )
        )
    return batches


def storage_reader(
    checkpoint_patterns: Sequence[str] = DEFAULT_CHECKPOINT_PATTERNS,
    snapshot_date: dt.date | None = None,
) -> Callable[[Sequence[SourceFile]], list[SourceBatch]]:
    """`read_storage` with its options fixed, for a `FileSource`."""
    return functools.partial(
        read_storage, checkpoint_patterns=tuple(checkpoint_patterns), snapshot_date=snapshot_date
    )


def _dialect(rows: Sequence[Mapping[str, Any]]) -> str:
    return "gcs-inventory" if rows and rows[0]["provider"] == GCP else "s3-inventory"


def _manifest_rows(
    manifest: s3.Manifest, matcher: CheckpointMatcher, option: dt.date | None
) -> list[dict[str, Any]]:
    date = option or manifest.snapshot_date or _date_from_name(manifest.path)
    rows: list[dict[str, Any]] = []
    for data in manifest.data_files:
        inv = Inventory(data, AWS, date, matcher)
        if manifest.file_format.lower() == "parquet":
            rows += _rows(inv, _parquet_records(data))
        else:
            rows += _rows(inv, s3.csv_records(data, manifest.columns))
    return rows


def _file_rows(
    path: Path, matcher: CheckpointMatcher, option: dt.date | None
) -> list[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        table = _parquet(path)
        provider = GCP if "name" in {normalise(c) for c in table.column_names} else AWS
        inv = Inventory(path, provider, option or _date_from_name(path), matcher)
        return _rows(inv, enumerate(table.to_pylist(), start=1))
    header = _first_row(path)
    if {"bucket", "name"} <= {normalise(c) for c in header}:
        inv = Inventory(path, GCP, option or _date_from_name(path), matcher)
        return _rows(inv, _gcs_csv_records(path))
    manifest = s3.manifest_for(path)
    date = option or (manifest.snapshot_date if manifest else None) or _date_from_name(path)
    columns = manifest.columns if manifest else s3.DEFAULT_COLUMNS
    return _rows(Inventory(path, AWS, date, matcher), s3.csv_records(path, columns))


def _rows(inv: Inventory, records: Iterable[tuple[int, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    columns: dict[str, str] | None = None
    try:
        for line, record in records:
            if columns is None:
                columns = field_positions(record.keys())
                if "key" not in columns:
                    raise IngestError(
                        "no object key column (Key for S3, name for GCS)", path=str(inv.path)
                    )
            row = object_row(inv, record, columns, line)
            if row is not None:
                out.append(row)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise IngestError(f"cannot read the file: {exc}", path=str(inv.path)) from None
    return out


def _gcs_csv_records(path: Path) -> Records:
    """(line, record) of a GCS Storage Insights inventory CSV (a header row, names not encoded)."""
    with s3.open_text(path) as fh:
        reader = csv.DictReader(fh)
        for record in reader:
            yield reader.line_num, record


def _first_row(path: Path) -> list[str]:
    try:
        with s3.open_text(path) as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise IngestError(f"cannot read the file: {exc}", path=str(path)) from None


def _parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(f"cannot read Parquet: {exc}", path=str(path)) from None


def _parquet_records(path: Path) -> Records:
    yield from enumerate(_parquet(path).to_pylist(), start=1)


def _date_from_name(path: Path) -> dt.date:
    found = snapshot_from_name(path)
    if found is None:
        raise IngestError(
            "no snapshot date: the path has no YYYY-MM-DD and there is no manifest; "
            "pass --snapshot-date",
            path=str(path),
        )
    return found


STORAGE = FileSource("storage", STORAGE_SUFFIXES, read_storage)


def storage_source(
    checkpoint_patterns: Sequence[str] = DEFAULT_CHECKPOINT_PATTERNS,
    snapshot_date: dt.date | None = None,
) -> FileSource:
    """`STORAGE` with other checkpoint patterns or a fixed snapshot date."""
    return FileSource(
        "storage", STORAGE_SUFFIXES, storage_reader(checkpoint_patterns, snapshot_date)
    )


__all__ = [
    "DEFAULT_CHECKPOINT_PATTERNS",
    "STORAGE",
    "CheckpointMatcher",
    "read_storage",
    "storage_source",
]
