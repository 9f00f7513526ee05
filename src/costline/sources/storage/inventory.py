"""One inventory record -> one `storage_objects` row, for every provider's inventory format.

Column names are compared normalised (lower case, letters and digits only), so the S3 manifest's
`LastModifiedDate`, S3 Parquet's `last_modified_date` and GCS's `updated` land in one place.
`provider` uses FOCUS ProviderName values (`AWS`, `Google Cloud`) so storage joins cost lines.
Delete markers are skipped (they hold no bytes); noncurrent versions are kept (they are billed) and
tagged `is_latest=false` with their `version_id`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from costline.errors import IngestError
from costline.sources.storage.checkpoints import CheckpointMatcher

# canonical field -> normalised source column names, in order of preference
FIELDS: dict[str, tuple[str, ...]] = {
    "bucket": ("bucket",),
    "key": ("key", "name"),
    "size": ("size",),
    "last_modified": ("lastmodifieddate", "updated", "timecreated"),
    "storage_class": ("storageclass",),
    "version_id": ("versionid", "generation"),
    "is_latest": ("islatest",),
    "is_delete_marker": ("isdeletemarker",),
    "access_tier": ("intelligenttieringaccesstier",),
}

_DATE_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def normalise(column: str) -> str:
    """`LastModifiedDate`, `last_modified_date` -> `lastmodifieddate`."""
    return re.sub(r"[^a-z0-9]", "", column.lower())


def field_positions(columns: Iterable[str]) -> dict[str, str]:
    """canonical field -> the source column that carries it."""
    by_norm = {normalise(c): c for c in columns}
    out = {}
    for canonical, names in FIELDS.items():
        found = next((by_norm[n] for n in names if n in by_norm), None)
        if found is not None:
            out[canonical] = found
    return out


@dataclass(frozen=True)
class Inventory:
    """What is common to every record of one inventory file."""

    path: Path
    provider: str
    snapshot_date: dt.date
    checkpoints: CheckpointMatcher


def object_row(
    inv: Inventory, record: Mapping[str, Any], columns: Mapping[str, str], row: int
) -> dict[str, Any] | None:
    """One inventory record as a `storage_objects` row; None for a delete marker."""

    def get(name: str) -> Any:
        column = columns.get(name)
        value = record.get(column) if column is not None else None
        return None if value == "" else value

    if _true(get("is_delete_marker")):
        return None
    key = get("key")
    if key is None:
        raise IngestError("record has no object key", path=str(inv.path), row=row)
    tags: dict[str, str] = {}
    if get("version_id") is not None and get("version_id") != "null":
        tags["version_id"] = str(get("version_id"))
    if get("is_latest") is not None and not _true(get("is_latest")):
        tags["is_latest"] = "false"
    if get("access_tier") is not None:
        tags["access_tier"] = str(get("access_tier"))
    return {
        "snapshot_date": inv.snapshot_date,
        "provider": inv.provider,
        "bucket": get("bucket"),
        "key": str(key),
        "size_bytes": _size(get("size"), inv, row),
        "object_count": 1,
        "storage_class": get("storage_class"),
        "last_modified": _timestamp(get("last_modified"), inv, row),
        "tags": tags or None,
        "is_checkpoint": inv.checkpoints.matches(str(key)),
    }


def snapshot_from_name(path: Path) -> dt.date | None:
    """The last `YYYY-MM-DD` in the path (S3 writes `2025-03-01T01-00Z/manifest.json`)."""
    found = _DATE_IN_NAME.findall(str(path))
    for year, month, day in reversed(found):
        try:
            return dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
    return None


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _size(value: Any, inv: Inventory, row: int) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise IngestError(
            f"size must be a whole number of bytes (got {value!r})",
            path=str(inv.path),
            row=row,
            column="size",
        ) from None
    if size < 0:
        raise IngestError(f"negative size {size}", path=str(inv.path), row=row, column="size")
    return size


def _timestamp(value: Any, inv: Inventory, row: int) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise IngestError(
            f"expected an ISO 8601 time like 2025-03-01T10:00:00.000Z (got {value!r})",
            path=str(inv.path),
            row=row,
            column="last_modified",
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
