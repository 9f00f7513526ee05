"""Annotations (a deploy, a model launch, a migration, a traffic event) -> `annotations`.

Two ways in: `costline annotate --kind deploy --scope model=X "text"` (one `Annotation`, see
`annotation_batch`) and files of them (`read_annotations`): YAML (a list, or `annotations:` a list),
JSON Lines, or CSV with a header; each record has `ts` (ISO 8601, UTC when no zone), optional `end`,
`kind`, `scope` (a mapping; in CSV `k=v,k=v` or a JSON object) and `text`.

An annotation's id and its fingerprint come from kind + scope + ts + text, so writing the same
annotation twice is a no-op.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from costline.errors import IngestError
from costline.sources.base import FileSource, SourceBatch, SourceFile, arrow_batch
from costline.sources.records import json_lines, map_columns, records_table
from costline.yamlfile import YamlIssue, read_yaml

ANNOTATION_SUFFIXES = (".yaml", ".yml", ".jsonl", ".ndjson", ".csv")
FIELDS = frozenset({"ts", "end", "kind", "scope", "text"})


@dataclass(frozen=True)
class Annotation:
    ts: dt.datetime
    kind: str
    text: str
    scope: Mapping[str, str]
    end: dt.datetime | None = None

    @property
    def content_key(self) -> str:
        """What identifies the annotation: kind, scope, ts and text (end may be amended later)."""
        return json.dumps(
            [self.kind, sorted(self.scope.items()), self.ts.isoformat(), self.text],
            ensure_ascii=False,
        )

    @property
    def annotation_id(self) -> str:
        return hashlib.sha256(self.content_key.encode()).hexdigest()[:24]

    def row(self, source: str) -> dict[str, Any]:
        return {
            "annotation_id": self.annotation_id,
            "ts": self.ts,
            "end": self.end,
            "kind": self.kind,
            "scope": dict(self.scope),
            "text": self.text,
            "source": source,
        }


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (`2025-03-01T10:00:00Z`, `2025-03-01 10:00`, `2025-03-01`); no zone means UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 time like 2025-03-01T10:00:00Z (got {text!r})"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def parse_scope(text: str) -> dict[str, str]:
    """`model=X,env=prod` (or a JSON object) as a mapping."""
    stripped = text.strip()
    if stripped.startswith("{"):
        value = json.loads(stripped)
        if not isinstance(value, dict):
            raise ValueError("scope must be a JSON object")
        return {str(k): str(v) for k, v in value.items()}
    scope = {}
    for term in (t.strip() for t in stripped.split(",")):
        if not term:
            continue
        key, sep, value = term.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad scope term {term!r}: write key=value, e.g. model=llama3")
        scope[key.strip()] = value.strip()
    return scope


def annotation_batch(annotation: Annotation, *, source: str = "cli") -> SourceBatch:
    """One annotation as a batch, fingerprinted by its content: re-running it is a duplicate."""
    file = SourceFile.virtual(f"annotate:{annotation.kind}", annotation.content_key)
    return arrow_batch(
        "annotations",
        file,
        records_table("annotations", [annotation.row(source)]),
        dialect="cli",
        json_map_columns=map_columns("annotations"),
    )


def read_annotations(files: Sequence[SourceFile]) -> list[SourceBatch]:
    """Each annotations file (YAML, JSON Lines, CSV) as one batch."""
    batches = []
    for f in files:
        rows = [_annotation(rec, f, where).row("file") for where, rec in _records(f)]
        batches.append(
            arrow_batch(
                "annotations",
                f,
                records_table("annotations", rows),
                dialect=_format(f.path),
                json_map_columns=map_columns("annotations"),
            )
        )
    return batches


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    return "jsonl" if name.endswith((".jsonl", ".ndjson")) else "yaml"


def _records(f: SourceFile) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line, record) of every annotation in the file."""
    fmt = _format(f.path)
    if fmt == "yaml":
        yield from _yaml_records(f.path)
    elif fmt == "jsonl":
        yield from json_lines(f.path)
    else:
        with f.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            for record in reader:
                yield reader.line_num, {k: v for k, v in record.items() if v not in (None, "")}


def _yaml_records(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    issues: list[YamlIssue] = []
    doc = read_yaml(path, issues)
    if doc is None:
        raise IngestError("\n".join(str(i) for i in issues))
    data, located = doc.data, doc.located
    if isinstance(data, dict) and set(data) == {"annotations"}:
        data, located = data["annotations"], (located.mapping or {})["annotations"]
    if not isinstance(data, list):
        raise IngestError(
            f"{path}:{located.line}: expected a list of annotations (or `annotations:` a list)"
        )
    for i, item in enumerate(data):
        line = located.items[i].line if located.items else located.line
        if not isinstance(item, dict):
            raise IngestError(f"{path}:{line}: an annotation must be a mapping")
        yield line, item


def _annotation(record: Mapping[str, Any], f: SourceFile, line: int) -> Annotation:
    unknown = sorted(set(record) - FIELDS)
    if unknown:
        raise IngestError(
            f"unknown key(s) {', '.join(unknown)}; expected ts, end, kind, scope, text",
            path=str(f.path),
            row=line,
        )
    for key in ("ts", "kind", "text"):
        if record.get(key) in (None, ""):
            raise IngestError("required key missing", path=str(f.path), row=line, column=key)
    try:
        scope_raw = record.get("scope") or {}
        scope = (
            parse_scope(scope_raw)
            if isinstance(scope_raw, str)
            else {str(k): str(v) for k, v in dict(scope_raw).items()}
        )
    except (ValueError, TypeError) as exc:
        raise IngestError(str(exc), path=str(f.path), row=line, column="scope") from None
    return Annotation(
        ts=_time(record["ts"], f, line, "ts"),
        end=None if record.get("end") in (None, "") else _time(record["end"], f, line, "end"),
        kind=str(record["kind"]),
        text=str(record["text"]),
        scope=scope,
    )


def _time(value: object, f: SourceFile, line: int, column: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise IngestError(str(exc), path=str(f.path), row=line, column=column) from None


ANNOTATIONS = FileSource("annotations", ANNOTATION_SUFFIXES, read_annotations)
