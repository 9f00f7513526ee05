"""AWS S3 Inventory: the manifest.json and its CSV (or Parquet) data files.

S3 writes `DEST/SOURCE-BUCKET/CONFIG/YYYY-MM-DDTHH-MMZ/manifest.json` naming the data files
(`DEST/SOURCE-BUCKET/CONFIG/data/<uuid>.csv.gz`) and, in `fileSchema`, the column order of its
header-less CSV. Ingesting the manifest reads every file it lists (looked for beside the manifest,
in `data/` beside it, or in `../data/`), as one batch fingerprinted by the manifest (which carries
the files' MD5 sums). A CSV given alone takes its column order from a `manifest.json` in its folder
or its parent's subfolders that lists it, else `DEFAULT_COLUMNS`.
In CSV, keys are URL-encoded (a space is `+`): they are decoded.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_plus

from costline.errors import IngestError

DEFAULT_COLUMNS = ("Bucket", "Key", "Size", "LastModifiedDate", "StorageClass")


@dataclass(frozen=True)
class Manifest:
    path: Path
    file_format: str  # CSV, Parquet, ORC
    columns: tuple[str, ...]
    snapshot_date: dt.date | None
    data_files: tuple[Path, ...]


def is_manifest(path: Path) -> bool:
    return path.name.lower().endswith(".json")


def load_manifest(path: Path) -> Manifest:
    """Parse an S3 Inventory manifest and find its data files on disk."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=str(path)
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise IngestError(
            "not an S3 Inventory manifest.json (no `files` list)", path=str(path), column="files"
        )
    file_format = str(doc.get("fileFormat", "CSV"))
    if file_format.upper() == "ORC":
        raise IngestError(
            "ORC inventories are not read; configure the inventory as CSV or Parquet",
            path=str(path),
            column="fileFormat",
        )
    schema = str(doc.get("fileSchema", ""))
    columns = (
        tuple(c.strip() for c in schema.split(",") if c.strip())
        if file_format.upper() == "CSV"
        else ()
    )
    data = tuple(_data_file(path, entry) for entry in doc["files"])
    return Manifest(path, file_format, columns or DEFAULT_COLUMNS, _created(doc, path), data)


def _created(doc: dict[str, Any], path: Path) -> dt.date | None:
    raw = doc.get("creationTimestamp")
    if raw in (None, ""):
        return None
    try:
        return dt.datetime.fromtimestamp(int(str(raw)) / 1000, tz=dt.UTC).date()
    except (ValueError, OverflowError, OSError):
        raise IngestError(
            f"creationTimestamp must be milliseconds since the epoch (got {raw!r})",
            path=str(path),
            column="creationTimestamp",
        ) from None


def _data_file(manifest: Path, entry: object) -> Path:
    key = entry.get("key") if isinstance(entry, dict) else None
    if not isinstance(key, str):
        raise IngestError("a `files` entry has no `key`", path=str(manifest), column="files")
    name = key.rsplit("/", 1)[-1]
    here = manifest.parent
    candidates = [here / name, here / "data" / name, here.parent / "data" / name]
    for c in candidates:
        if c.is_file():
            return c
    raise IngestError(
        f"lists {key}, which is not on disk (looked for {', '.join(str(c) for c in candidates)})",
        path=str(manifest),
        column="files",
    )


def manifest_for(data_file: Path) -> Manifest | None:
    """A manifest.json that lists `data_file`: in its folder, or in its parent's subfolders."""
    here = data_file.parent
    candidates = [here / "manifest.json", *sorted(here.parent.glob("*/manifest.json"))]
    for c in candidates:
        if not c.is_file():
            continue
        try:
            manifest = load_manifest(c)
        except IngestError:
            continue
        if any(p.resolve() == data_file.resolve() for p in manifest.data_files):
            return manifest
    return None


def csv_records(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, record) of a header-less S3 inventory CSV, keys URL-decoded."""
    with open_text(path) as fh:
        for line, values in enumerate(csv.reader(fh), start=1):
            if not values:
                continue
            if len(values) != len(columns):
                raise IngestError(
                    f"{len(values)} fields, but the column order has {len(columns)} "
                    f"({', '.join(columns)}); put the inventory's manifest.json beside the file",
                    path=str(path),
                    row=line,
                )
            record = dict(zip(columns, values, strict=True))
            for name in columns:
                if name.lower() == "key":
                    record[name] = unquote_plus(record[name])
            yield line, record


def open_text(path: Path) -> IO[str]:
    """A text stream of a CSV file, gunzipped when it is `.gz`."""
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")
