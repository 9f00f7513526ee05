"""NVIDIA dcgm-exporter metrics into `gpu_samples`: saved `/metrics` scrapes, and the row builder
the Prometheus pull shares (one mapping of labels and metrics to columns, not two).

One row is one GPU, or one MIG slice, at one instant, for one pod (or HPC job) using it:

- **Metrics** (`METRIC_FIELDS`): GR_ENGINE_ACTIVE, SM_ACTIVE, PIPE_TENSOR_ACTIVE and DRAM_ACTIVE are
  0-1 ratios and kept as they are; `DCGM_FI_DEV_GPU_UTIL` is a 0-100 percentage and is divided by 100
  into `gpu_util`, so every activity column is a 0-1 ratio. `fb_total_mib` is FB_USED + FB_FREE
  (+ FB_RESERVED when exported), else FB_TOTAL. Other metrics are read and ignored.
- **Labels** (`identify`): every spelling the exporter has used (`hostname`/`Hostname`, `UUID`/`uuid`,
  `gpu`, `device`, `modelName`, `GPU_I_PROFILE`/`GPU_I_ID`, `namespace`/`pod`/`container` or the
  `--use-old-namespace` `pod_namespace`/`pod_name`/`container_name`, `hpc_job`). `exported_pod`,
  `exported_namespace` and `exported_container` win over the plain ones: Prometheus renames the
  exporter's label to `exported_*` when its own target label of the same name collides. On a GPU
  no pod holds the exporter writes `pod=""`, so Prometheus' target labels name the exporter's own
  pod instead: a plain `pod` containing `dcgm-exporter` is read as no pod.
- **Blank sentinels**: DCGM reports "blank / not supported / not found" as huge numbers (int32
  2147483632+, fp64 2^47+, int64 9223372036854775792+, 2^64-1). None of our columns can reach 2^31 - 16
  (that would be 2 PiB of memory or 2 GW), so any value at or above `BLANK_FLOOR` (and +Inf) is NULL.
- **Refused values**: in a file, a sample of a metric we keep that is NaN or negative is no reading
  (DCGM says "blank" with its sentinels, and nothing it measures is below zero): the file is refused
  naming the line (or Parquet row) and the metric. A file with no samples at all is refused too.
- **Time-slicing**: dcgm-exporter repeats a device's series on every pod that shares it. At one
  instant, k distinct pods (or jobs) on one device give k rows with `time_slice_share` = 1/k, so
  `sum(sample_seconds * time_slice_share)` counts the device once. Series of that device without a
  pod fill the columns the pod series lack. A device with no pod gives one row with share 1.
- **Timestamps**: a sample timestamp at or above 1e11 is milliseconds (Prometheus text format),
  below is seconds (OpenMetrics): 1e11 s is the year 5138, 1e11 ms is 1973. Samples without a
  timestamp take the file's time: `at` (`--at`), else the file's modification time, which stamps the
  file's *last* scrape. Scrapes are told apart by `# EOF` or by a series appearing again; earlier
  untimestamped scrapes are placed `sample_seconds` apart before the last.
- **sample_seconds**: given (`--sample-seconds`), else the median gap between the file's distinct
  timestamps, else 30 s, dcgm-exporter's default collection interval (`-c 30000`).

The file's fingerprint is its bytes: the same scrape ingested again (even with another `--at`) is a
duplicate.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import itertools
import math
import re
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, NamedTuple

import pyarrow as pa

from costline.errors import IngestError
from costline.sources.base import SourceBatch, SourceFile, arrow_batch

DEFAULT_SAMPLE_SECONDS = 30.0
# At or above this a DCGM value is a blank sentinel, not a reading (see the module docstring).
BLANK_FLOOR = float(2**31 - 16)
MS_TIMESTAMP_FLOOR = 1e11
DCGM_SUFFIXES = (
    ".txt",
    ".prom",
    ".metrics",
    ".om",
    ".txt.gz",
    ".prom.gz",
    ".metrics.gz",
    ".om.gz",
    ".parquet",
)

# metric name -> (field, factor to our unit). Old lowercase names are `--use-old-namespace`.
METRIC_FIELDS: dict[str, tuple[str, float]] = {
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": ("gr_engine_active", 1.0),
    "DCGM_FI_PROF_SM_ACTIVE": ("sm_active", 1.0),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("tensor_active", 1.0),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("dram_active", 1.0),
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_util", 0.01),
    "DCGM_FI_DEV_FB_USED": ("fb_used_mib", 1.0),
    "DCGM_FI_DEV_FB_FREE": ("fb_free_mib", 1.0),
    "DCGM_FI_DEV_FB_RESERVED": ("fb_reserved_mib", 1.0),
    "DCGM_FI_DEV_FB_TOTAL": ("fb_total_reported_mib", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "dcgm_fi_prof_gr_engine_active": ("gr_engine_active", 1.0),
    "dcgm_fi_prof_pipe_tensor_active": ("tensor_active", 1.0),
    "dcgm_fi_prof_dram_active": ("dram_active", 1.0),
    "dcgm_gpu_utilization": ("gpu_util", 0.01),
    "dcgm_fb_used": ("fb_used_mib", 1.0),
    "dcgm_fb_free": ("fb_free_mib", 1.0),
    "dcgm_power_usage": ("power_w", 1.0),
}
VALUE_COLUMNS = (
    "gr_engine_active",
    "sm_active",
    "tensor_active",
    "dram_active",
    "gpu_util",
    "fb_used_mib",
    "fb_total_mib",
    "power_w",
)

# A plain `pod` naming the exporter itself is a scrape target label, not a workload (see above).
EXPORTER_POD = "dcgm-exporter"
# column -> label spellings, first present and non-empty wins.
LABELS: dict[str, tuple[str, ...]] = {
    "host": ("hostname", "Hostname"),
    "gpu_uuid": ("UUID", "uuid", "gpu_uuid"),
    "gpu": ("gpu",),
    "device": ("device",),
    "gpu_model": ("modelName", "model_name", "DCGM_FI_DEV_NAME"),
    "mig_profile": ("GPU_I_PROFILE",),
    "mig_instance_id": ("GPU_I_ID",),
    "namespace": ("exported_namespace", "namespace", "pod_namespace"),
    "pod": ("exported_pod", "pod", "pod_name"),
    "container": ("exported_container", "container", "container_name"),
    "job_id": ("hpc_job",),
}

GPU_SAMPLE_ARROW = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("host", pa.string()),
        ("gpu_uuid", pa.string()),
        ("gpu_index", pa.int32()),
        ("gpu_model", pa.string()),
        ("mig_profile", pa.string()),
        ("mig_instance_id", pa.string()),
        *[(c, pa.float64()) for c in VALUE_COLUMNS],
        ("namespace", pa.string()),
        ("pod", pa.string()),
        ("container", pa.string()),
        ("job_id", pa.string()),
        ("sample_seconds", pa.float64()),
        ("time_slice_share", pa.float64()),
        ("source", pa.string()),
    ]
)


@dataclass(frozen=True)
class Device:
    """One GPU or MIG slice, as its labels name it."""

    host: str | None
    gpu_uuid: str | None
    gpu_index: int | None
    gpu_model: str | None
    mig_profile: str | None
    mig_instance_id: str | None


@dataclass(frozen=True)
class Attribution:
    """Who uses a device: a Kubernetes container, or an HPC job. All None: nobody."""

    namespace: str | None = None
    pod: str | None = None
    container: str | None = None
    job_id: str | None = None

    @property
    def empty(self) -> bool:
        return self == NOBODY


NOBODY = Attribution()


def _label(labels: Mapping[str, str], column: str) -> str | None:
    for name in LABELS[column]:
        value = labels.get(name)
        if value:
            return value
    return None


def _gpu_index(labels: Mapping[str, str]) -> int | None:
    text = _label(labels, "gpu")
    if text is None:
        device = _label(labels, "device") or ""
        match = re.fullmatch(r"nvidia(\d+)", device)
        text = match.group(1) if match else None
    return int(text) if text is not None and text.isdigit() else None


def identify(labels: Mapping[str, str]) -> tuple[Device, Attribution] | None:
    """The device and user a series' labels name; None when they name no GPU."""
    device = Device(
        host=_label(labels, "host"),
        gpu_uuid=_label(labels, "gpu_uuid"),
        gpu_index=_gpu_index(labels),
        gpu_model=_label(labels, "gpu_model"),
        mig_profile=_label(labels, "mig_profile"),
        mig_instance_id=_label(labels, "mig_instance_id"),
    )
    if device.gpu_uuid is None and device.gpu_index is None:
        return None
    who = Attribution(
        namespace=_label(labels, "namespace"),
        pod=_label(labels, "pod"),
        container=_label(labels, "container"),
        job_id=_label(labels, "job_id"),
    )
    if who.pod and EXPORTER_POD in who.pod and not labels.get("exported_pod"):
        # Prometheus' own target label: the exporter's pod, on a GPU that no workload holds.
        who = Attribution(job_id=who.job_id)
    return device, who


def reading(value: float, factor: float) -> float | None:
    """A DCGM value in our unit; None for NaN, infinities and blank sentinels."""
    if math.isnan(value) or math.isinf(value) or value >= BLANK_FLOOR:
        return None
    return value * factor


class GpuSamples:
    """Samples pivoted into `gpu_samples` rows: add (metric, labels, time, value), then `table()`.

    Times are integer microseconds since the epoch (negative keys are placeholders `retime` fills).
    """

    def __init__(self) -> None:
        self._cells: dict[tuple[int, Device], dict[Attribution, dict[str, float | None]]] = {}
        self.unidentified: set[str] = set()
        # Series repeat their labels in every scrape: identify each label set once.
        self._who: dict[frozenset[tuple[str, str]], tuple[Device, Attribution] | None] = {}

    def add(self, metric: str, labels: Mapping[str, str], ts_us: int, value: float) -> bool:
        """Record one sample; False when the metric is not one we keep or names no GPU."""
        spec = METRIC_FIELDS.get(metric)
        if spec is None:
            return False
        key = frozenset(labels.items())
        if key not in self._who:
            self._who[key] = identify(labels)
        who = self._who[key]
        if who is None:
            self.unidentified.add(metric)
            return False
        device, attribution = who
        fields = self._cells.setdefault((ts_us, device), {}).setdefault(attribution, {})
        fields[spec[0]] = reading(value, spec[1])
        return True

    def __len__(self) -> int:
        return len(self._cells)

    def timestamps(self) -> list[int]:
        return sorted({ts for ts, _ in self._cells})

    def retime(self, new_ts: Callable[[int], int]) -> None:
        """Move every instant through `new_ts` (used to place untimestamped scrapes)."""
        cells: dict[tuple[int, Device], dict[Attribution, dict[str, float | None]]] = {}
        for (ts, device), by_who in self._cells.items():
            target = cells.setdefault((new_ts(ts), device), {})
            for who, fields in by_who.items():
                target.setdefault(who, {}).update(fields)
        self._cells = cells

    def table(self, *, sample_seconds: float, source: str) -> pa.Table:
        """The rows in the Arrow schema of `gpu_samples`, shares of time-sliced devices applied."""
        cols: dict[str, list[object]] = {name: [] for name in GPU_SAMPLE_ARROW.names}
        for (ts, device), by_who in self._cells.items():
            device_wide = by_who.get(NOBODY, {})
            users = [w for w in by_who if not w.empty]
            share = 1.0 / len(users) if users else 1.0
            for who in users or [NOBODY]:
                fields = {**device_wide, **by_who[who]} if users else device_wide
                row = _row(ts, device, who, fields)
                row.update(sample_seconds=sample_seconds, time_slice_share=share, source=source)
                for name in GPU_SAMPLE_ARROW.names:
                    cols[name].append(row[name])
        return pa.table(cols, schema=GPU_SAMPLE_ARROW)


def _row(
    ts_us: int, device: Device, who: Attribution, fields: Mapping[str, float | None]
) -> dict[str, object]:
    row: dict[str, object] = {
        "ts": dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us),
        "host": device.host,
        "gpu_uuid": device.gpu_uuid,
        "gpu_index": device.gpu_index,
        "gpu_model": device.gpu_model,
        "mig_profile": device.mig_profile,
        "mig_instance_id": device.mig_instance_id,
        "namespace": who.namespace,
        "pod": who.pod,
        "container": who.container,
        "job_id": who.job_id,
    }
    for name in VALUE_COLUMNS:
        row[name] = fields.get(name)
    row["fb_total_mib"] = _fb_total(fields)
    return row


def _fb_total(fields: Mapping[str, float | None]) -> float | None:
    used, free = fields.get("fb_used_mib"), fields.get("fb_free_mib")
    if used is not None and free is not None:
        return used + free + (fields.get("fb_reserved_mib") or 0.0)
    return fields.get("fb_total_reported_mib")


# -- the exposition text format ----------------------------------------------------------------

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\.)*)"')
# `{` pairs `}`: each pair followed by a comma or the closing brace; a trailing comma is allowed.
_LABEL_BLOCK = re.compile(
    r'\{((?:\s*[a-zA-Z_][a-zA-Z0-9_]*\s*=\s*"(?:[^"\\\n]|\\.)*"\s*(?:,|(?=\})))*\s*)\}'
)
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"n": "\n", "\\": "\\", '"': '"'}


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), "\\" + m.group(1)), value)


def label_pairs(block: str) -> list[tuple[str, str]]:
    """The `key="value"` pairs of a label block (the text between the braces), unescaped."""
    return [(k, _unescape(v) if "\\" in v else v) for k, v in _LABEL.findall(block)]


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float
    ts_us: int | None  # None: the sample has no timestamp
    scrape: int  # 0, 1, ...: which scrape of the file it belongs to
    line: int = 0  # its line number in the file


def parse_line(line: str) -> tuple[str, dict[str, str], float, int | None]:
    """One sample line: name, labels, value, timestamp in microseconds. ValueError says why not."""
    match = _NAME.match(line)
    if match is None:
        raise ValueError("expected a metric name")
    name, pos = match.group(0), match.end()
    labels: dict[str, str] = {}
    if pos < len(line) and line[pos] == "{":
        block = _LABEL_BLOCK.match(line, pos)
        if block is None:
            raise ValueError(f"malformed labels after column {pos}")
        for key, value in _LABEL.findall(block.group(1)):
            labels[key] = _unescape(value) if "\\" in value else value
        pos = block.end()
    rest = line[pos:].split(" # ", 1)[0].split()  # drop an OpenMetrics exemplar
    if not rest or len(rest) > 2 or (pos < len(line) and line[pos] not in " \t"):
        raise ValueError("expected 'VALUE [TIMESTAMP]' after the metric")
    value = float(rest[0])
    ts_us = None
    if len(rest) == 2:
        stamp = float(rest[1])
        seconds = stamp / 1000 if abs(stamp) >= MS_TIMESTAMP_FLOOR else stamp
        ts_us = round(seconds * 1_000_000)
    return name, labels, value, ts_us


def parse_exposition(lines: Iterable[str], path: str) -> Iterator[Sample]:
    """Samples of a Prometheus or OpenMetrics text file, possibly several scrapes in a row.

    A malformed line raises IngestError naming the file and the line number.
    """
    scrape = 0
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line == "# EOF":
            scrape, seen = (scrape + 1, set()) if seen else (scrape, seen)
            continue
        if not line or line.startswith("#"):
            continue
        try:
            name, labels, value, ts_us = parse_line(line)
        except ValueError as exc:
            error = IngestError(
                f"line {number}: malformed sample ({exc}): {line[:120]!r}", path=path
            )
            error.row = number
            raise error from None
        key = (name, frozenset(labels.items()))
        if key in seen:
            scrape, seen = scrape + 1, set()
        seen.add(key)
        yield Sample(name, labels, value, ts_us, scrape, number)


def refused_reading(value: float) -> str | None:
    """Why a kept metric's value in a file is refused (NaN, negative), or None when it is a reading."""
    if math.isnan(value):
        return "NaN is not a reading (DCGM marks a blank value with its sentinels, not NaN)"
    if value < 0:
        return f"{value:g} is negative, and nothing DCGM measures is"
    return None


def _open_text(path: str) -> IO[str]:
    raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", newline=None)


def _file_time(file: SourceFile, at: dt.datetime | None) -> dt.datetime:
    if at is not None:
        return at.astimezone(dt.UTC)
    return dt.datetime.fromtimestamp(file.path.stat().st_mtime, dt.UTC)


def unidentified_notes(metrics: Iterable[str]) -> list[str]:
    """The note for series skipped because their labels name no GPU (empty when there were none)."""
    names = ", ".join(sorted(set(metrics)))
    if not names:
        return []
    return [f"series without GPU labels skipped: {names} carry no UUID, gpu or device label"]


def median_gap_seconds(timestamps: Sequence[int]) -> float | None:
    known = [t for t in timestamps if t >= 0]
    gaps = [b - a for a, b in itertools.pairwise(known)]
    return statistics.median(gaps) / 1e6 if gaps else None


def read_dcgm_text(
    file: SourceFile, *, at: dt.datetime | None = None, sample_seconds: float | None = None
) -> SourceBatch:
    """The general parser: any exposition text, line by line, with line numbers in errors."""
    path = str(file.path)
    samples = GpuSamples()
    scrapes = 0
    try:
        with _open_text(path) as fh:
            for s in parse_exposition(fh, path):
                why = refused_reading(s.value) if s.name in METRIC_FIELDS else None
                if why is not None:
                    error = IngestError(f"line {s.line}: {why}", path=path, column=s.name)
                    error.row, error.value = s.line, str(s.value)
                    raise error
                scrapes = max(scrapes, s.scrape + 1)
                # Untimestamped samples wait under a placeholder: -(scrape + 1).
                samples.add(
                    s.name, s.labels, s.ts_us if s.ts_us is not None else -(s.scrape + 1), s.value
                )
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise IngestError(f"cannot read as exposition text: {exc}", path=path) from exc
    if not scrapes:
        raise IngestError("no samples: the file has no sample lines", path=path)
    interval = sample_seconds or median_gap_seconds(samples.timestamps()) or DEFAULT_SAMPLE_SECONDS
    if any(t < 0 for t in samples.timestamps()):
        last_us = round(_file_time(file, at).timestamp() * 1e6)
        step_us = round(interval * 1e6)
        samples.retime(lambda t: t if t >= 0 else last_us - (scrapes + t) * step_us)
    warnings = unidentified_notes(samples.unidentified)
    return arrow_batch(
        "gpu_samples",
        file,
        samples.table(sample_seconds=interval, source="dcgm-file"),
        dialect="dcgm-exporter",
        warnings=warnings,
    )


__all__ = [
    "GpuSamples",
    "identify",
    "parse_exposition",
    "read_dcgm_text",
    "reading",
]
