"""The DCGM file source (`costline ingest dcgm`): each file to its reader, fastest first.

Parquet exports go to `dcgm_parquet`; exposition text to DuckDB's fast path (`dcgm_sql`) when its
shape allows, else to the general line parser (`dcgm.read_dcgm_text`). The rules every reader
follows are in `costline.sources.dcgm`'s docstring. This module sits above the three readers, so
none of them imports another in a circle.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from costline.sources.base import FileSource, SourceBatch, SourceFile
from costline.sources.dcgm import DCGM_SUFFIXES, read_dcgm_text
from costline.sources.dcgm_parquet import read_dcgm_parquet
from costline.sources.dcgm_sql import read_dcgm_sql


def read_dcgm_file(
    file: SourceFile, *, at: dt.datetime | None = None, sample_seconds: float | None = None
) -> SourceBatch:
    """One saved scrape file (or several scrapes in one file) as a `gpu_samples` batch."""
    if file.path.name.lower().endswith(".parquet"):
        return read_dcgm_parquet(file, sample_seconds=sample_seconds)
    fast = read_dcgm_sql(file, sample_seconds=sample_seconds)
    if fast is not None:
        return fast
    return read_dcgm_text(file, at=at, sample_seconds=sample_seconds)


def read_dcgm(
    files: Sequence[SourceFile],
    *,
    at: dt.datetime | None = None,
    sample_seconds: float | None = None,
) -> list[SourceBatch]:
    """Every file as one `gpu_samples` batch (the rules: `costline.sources.dcgm`)."""
    return [read_dcgm_file(f, at=at, sample_seconds=sample_seconds) for f in files]


def dcgm_source(at: dt.datetime | None = None, sample_seconds: float | None = None) -> FileSource:
    """`costline ingest dcgm` with `--at` and `--sample-seconds` applied."""
    return FileSource(
        "dcgm", DCGM_SUFFIXES, functools.partial(read_dcgm, at=at, sample_seconds=sample_seconds)
    )


DCGM = FileSource("dcgm", DCGM_SUFFIXES, read_dcgm)
