"""Slurm accounting (`sacct -P` or `sacct -p`) -> `workloads`, one row per job (steps skipped).

Expected columns (any order, header row first; extra columns are ignored):
`sacct -P --format=JobID,JobName,User,Account,Partition,AllocTRES,Start,End,State,Elapsed,NodeList,WCKey,Comment`

- Job steps (`123.batch`, `123.extern`, `123.0`, `123_4.batch`, `123+0.0`) are skipped: the job row
  already accounts for them. Array tasks (`123_4`) and heterogeneous components (`123+0`) are jobs.
- `gpus_requested` from `AllocTRES`: `gres/gpu=N`, else the sum of typed `gres/gpu:<type>=N`
  (whose type becomes `gpu_model`). `gpu_seconds` = N x `Elapsed` (`[D-]HH:MM:SS`), which for a
  running job is the time so far.
- `Start`/`End` are the cluster's local time without a zone: read in `tz` (UTC unless told).
  `Unknown`, `None` and empty are NULL (a running job has `End=Unknown`).
- `status` is the first word of `State`, lower-cased: `CANCELLED by 1234` -> `cancelled`.
- `tags`: `WCKey` as `wckey` (its leading `*`, Slurm's "default wckey" mark, dropped), and `Comment`
  parsed as `key=value,key=value`; a comment that is not such a list is kept as tag `comment`.
- `kind`: a kind tag (`workload-type=training` -> `training_run`, see `kinds`), else `batch_job`.
  `owner` from the owner/team tags.
- `observed_at` is the dump's time: sacct prints none, so it is the newest time the dump shows, a
  running job's `Start` + `Elapsed` (exactly when sacct ran) or else the latest `Submit`, `Start`
  or `End`. A job seen in several dumps as it goes PENDING -> RUNNING -> COMPLETED keeps its newest
  state, whatever order the dumps are ingested in (`SourceBatch.newest_by`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from costline.errors import IngestError
from costline.sources.base import SourceBatch, SourceFile, arrow_batch
from costline.sources.records import map_columns, records_table
from costline.sources.workloads.kinds import kind_from_labels, owner_from_labels

REQUIRED = ("JobID", "State")
NULLS = frozenset({"", "Unknown", "None", "None assigned", "N/A"})

_STEP = re.compile(r"^[^.]+\.")
_ELAPSED = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.\d+)?$")
_TRES_GPU = re.compile(r"^gres/gpu(?::([^=]+))?=(\d+)$")


def read_slurm(files: Sequence[SourceFile], *, tz: str = "UTC") -> list[SourceBatch]:
    """Each sacct file as one batch; `tz` is the zone sacct printed its times in."""
    zone = _zone(tz)
    batches = []
    for f in files:
        rows = [job_row(fields, f, line, zone) for line, fields in _records(f)]
        observed = max((r["observed_at"] for r in rows if r["observed_at"]), default=None)
        for row in rows:
            row["observed_at"] = observed
            row["source_path"] = str(f.path.absolute())
        batches.append(
            arrow_batch(
                "workloads",
                f,
                records_table("workloads", rows),
                dialect="slurm-sacct",
                json_map_columns=map_columns("workloads"),
                replace_on=["workload_id"],
                newest_by="observed_at",
            )
        )
    return batches


def slurm_reader(tz: str = "UTC") -> Callable[[Sequence[SourceFile]], list[SourceBatch]]:
    """`read_slurm` with the cluster's time zone fixed (for a `FileSource`)."""
    _zone(tz)

    def read(files: Sequence[SourceFile]) -> list[SourceBatch]:
        return read_slurm(files, tz=tz)

    return read


def _zone(tz: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise IngestError(f"unknown time zone {tz!r}; use an IANA name like Europe/Paris") from None


def _records(f: SourceFile) -> list[tuple[int, dict[str, str]]]:
    """(line number, fields by column) of every job row (steps and blank lines skipped)."""
    try:
        lines = f.path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read the file: {exc}", path=str(f.path)) from None
    if not lines or "|" not in lines[0]:
        raise IngestError(
            "not sacct -P output: the first line must be a `|`-separated header such as "
            "JobID|JobName|...|AllocTRES|Start|End|State|Elapsed",
            path=str(f.path),
            row=1,
        )
    trailing = lines[0].endswith("|")  # `sacct -p` ends every line with `|`; `-P` does not
    header = _split(lines[0], trailing)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise IngestError(f"header lacks column(s) {', '.join(missing)}", path=str(f.path), row=1)
    out = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        values = _split(line, trailing)
        if len(values) > len(header) and header[-1] == "Comment":
            # A comment may itself contain `|` (sacct does not escape it): rejoin the overflow.
            values = [*values[: len(header) - 1], "|".join(values[len(header) - 1 :])]
        if len(values) != len(header):
            raise IngestError(
                f"{len(values)} fields, but the header has {len(header)}",
                path=str(f.path),
                row=number,
            )
        fields = dict(zip(header, values, strict=True))
        if not _STEP.match(fields["JobID"]):
            out.append((number, fields))
    return out


def _split(line: str, trailing: bool) -> list[str]:
    return line.removesuffix("|").split("|") if trailing else line.split("|")


def job_row(fields: Mapping[str, str], f: SourceFile, line: int, zone: dt.tzinfo) -> dict[str, Any]:
    """One sacct job line as a `workloads` row; `line` is named in errors."""

    def where(column: str) -> dict[str, Any]:
        return {"path": str(f.path), "row": line, "column": column}

    gpus, gpu_model = alloc_gpus(fields.get("AllocTRES", ""))
    elapsed = elapsed_seconds(fields.get("Elapsed", ""), where("Elapsed"))
    tags = job_tags(fields.get("WCKey", ""), fields.get("Comment", ""))
    start = _time(fields.get("Start", ""), zone, where("Start"))
    end = _time(fields.get("End", ""), zone, where("End"))
    return {
        "workload_id": fields["JobID"],
        "kind": kind_from_labels(tags) or "batch_job",
        "name": _text(fields.get("JobName")),
        "tags": tags or None,
        "start": start,
        "end": end,
        "gpus_requested": gpus,
        "gpu_model": gpu_model,
        "gpu_seconds": None if gpus is None or elapsed is None else float(gpus * elapsed),
        "status": job_status(fields["State"]),
        "user": _text(fields.get("User")),
        "account": _text(fields.get("Account")),
        "partition": _text(fields.get("Partition")),
        "node": _text(fields.get("NodeList")),
        "owner": owner_from_labels(tags),
        "source": "slurm",
        "observed_at": _latest(
            _time(fields.get("Submit", ""), zone, where("Submit")),
            start,
            end,
            None if start is None or elapsed is None else start + dt.timedelta(seconds=elapsed),
        ),
    }


def _latest(*times: dt.datetime | None) -> dt.datetime | None:
    return max((t for t in times if t is not None), default=None)


def alloc_gpus(tres: str) -> tuple[Fraction | None, str | None]:
    """GPUs and GPU type from AllocTRES: `billing=8,cpu=8,gres/gpu:a100=2,gres/gpu=2,mem=64G`."""
    total: int | None = None
    typed = 0
    model = None
    for part in tres.split(","):
        m = _TRES_GPU.match(part.strip())
        if m is None:
            continue
        if m.group(1) is None:
            total = int(m.group(2))
        else:
            typed += int(m.group(2))
            model = model or m.group(1)
    count = total if total is not None else typed
    return (Fraction(count) if count else None), model


def elapsed_seconds(text: str, where: Mapping[str, Any]) -> int | None:
    """`[D-]HH:MM:SS` (also `MM:SS`) as seconds; empty or Unknown is None."""
    if text.strip() in NULLS:
        return None
    m = _ELAPSED.match(text.strip())
    if m is None:
        raise IngestError(f"expected [D-]HH:MM:SS (got {text!r})", **where)
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def job_status(state: str) -> str:
    """`CANCELLED by 1234` -> `cancelled`; `OUT_OF_MEMORY` -> `out_of_memory`."""
    words = state.strip().split()
    return words[0].rstrip("+").lower() if words else "unknown"


def job_tags(wckey: str, comment: str) -> dict[str, str]:
    """Tags from WCKey and a `key=value,key=value` Comment (else the comment as tag `comment`)."""
    tags: dict[str, str] = {}
    key = wckey.strip().lstrip("*")
    if key and key not in NULLS:
        tags["wckey"] = key
    text = comment.strip()
    if not text or text in NULLS:
        return tags
    pairs = [p.strip() for p in re.split(r"[,;]", text) if p.strip()]
    if pairs and all(re.match(r"^[A-Za-z0-9_.\-/]+=", p) for p in pairs):
        for pair in pairs:
            k, _, v = pair.partition("=")
            tags[k.strip()] = v.strip()
    else:
        tags["comment"] = text
    return tags


def _time(text: str, zone: dt.tzinfo, where: Mapping[str, Any]) -> dt.datetime | None:
    value = text.strip()
    if value in NULLS:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise IngestError(f"expected YYYY-MM-DDTHH:MM:SS (got {text!r})", **where) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def _text(value: str | None) -> str | None:
    return None if value is None or value.strip() in NULLS else value.strip()
