"""DCGM samples as Parquet (long and wide) give the same rows as the same samples as text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources import dcgm
from costline.sources.base import SourceFile
from costline.sources.dcgm import read_dcgm_text
from costline.sources.dcgm_source import DCGM, read_dcgm_file
from tests.unit.test_dcgm_fast_path import _exposition

T0 = 1_761_955_200_000
COLUMNS = [c for c in dcgm.GPU_SAMPLE_ARROW.names if c != "source"]


def _samples(text_path: Path) -> list[dcgm.Sample]:
    with text_path.open() as fh:
        return list(dcgm.parse_exposition(fh, str(text_path)))


def _long(samples: list[dcgm.Sample], path: Path, *, ms: bool = False) -> None:
    names = sorted({k for s in samples for k in s.labels})
    cols: dict[str, list[object]] = {"__name__": [], "value": [], "timestamp": []}
    cols.update({n: [] for n in names})
    for s in samples:
        cols["__name__"].append(s.name)
        cols["value"].append(s.value)
        stamp = s.ts_us or 0
        cols["timestamp"].append(
            stamp // 1000
            if ms
            else dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=stamp)
        )
        for n in names:
            cols[n].append(s.labels.get(n))
    pq.write_table(pa.table(cols), path)


def _wide(samples: list[dcgm.Sample], path: Path) -> None:
    names = sorted({k for s in samples for k in s.labels})
    rows: dict[tuple[object, ...], dict[str, object]] = {}
    for s in samples:
        if s.name not in dcgm.METRIC_FIELDS:
            continue
        key = (s.ts_us, *(s.labels.get(n) for n in names))
        row = rows.setdefault(
            key, {"timestamp": s.ts_us / 1e6, **{n: s.labels.get(n) for n in names}}
        )
        row[s.name] = s.value
    metrics = sorted({s.name for s in samples if s.name in dcgm.METRIC_FIELDS})
    table = {c: [r.get(c) for r in rows.values()] for c in ["timestamp", *names, *metrics]}
    pq.write_table(pa.table(table), path)


def _ledger_rows(led: Ledger) -> list[tuple[object, ...]]:
    got = led.con.execute(f"SELECT {', '.join(COLUMNS)} FROM gpu_samples").fetchall()
    return sorted(got, key=repr)


def _text_rows(path: Path) -> list[tuple[object, ...]]:
    table = read_dcgm_text(SourceFile.of(path)).reader().read_all()
    rows = [tuple(r[c] for c in COLUMNS) for r in table.to_pylist()]
    return sorted(rows, key=repr)


@pytest.mark.parametrize("layout", ["long", "long-ms", "wide"])
def test_parquet_gives_the_rows_of_the_same_samples_as_text(tmp_path: Path, layout: str) -> None:
    text = tmp_path / "scrapes.txt"
    text.write_text(_exposition(T0) + _exposition(T0 + 60_000))
    samples = _samples(text)
    path = tmp_path / f"{layout}.parquet"
    if layout == "wide":
        _wide(samples, path)
    else:
        _long(samples, path, ms=layout == "long-ms")
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as led:
        summary = ingest_files(led, [path], DCGM)
        report = summary.files[0]
        assert report.status == "ingested" and report.dialect.startswith("dcgm-parquet")
        got = _ledger_rows(led)
        shares = dict(led.con.execute("SELECT pod, time_slice_share FROM gpu_samples").fetchall())
    assert got == _text_rows(text)
    assert len(got) == 2 * 6
    assert shares["nb-1"] == shares["nb-2"] == 0.5 and shares["train-1"] == 1.0


def test_users_one_after_another_are_not_shared_but_overlapping_ones_are(tmp_path: Path) -> None:
    """A GPU held by pod a then pod b: each row whole. Two pods at once: halves."""
    rows = []
    for m in range(4):
        pods = ["a" if m < 2 else "b"] + (["c"] if m == 3 else [])
        for pod in pods:
            rows.append(
                {
                    "ts": T0 + m * 60_000,
                    "UUID": "GPU-1",
                    "gpu": "0",
                    "pod": pod,
                    "DCGM_FI_DEV_GPU_UTIL": 50.0,
                }
            )
    path = tmp_path / "w.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as led:
        ingest_files(led, [path], DCGM)
        got = led.con.execute(
            "SELECT epoch(ts)::BIGINT - 1761955200, pod, time_slice_share, gpu_util, sample_seconds "
            "FROM gpu_samples ORDER BY 1, 2"
        ).fetchall()
    assert got == [
        (0, "a", 1.0, 0.5, 60.0),
        (60, "a", 1.0, 0.5, 60.0),
        (120, "b", 1.0, 0.5, 60.0),
        (180, "b", 0.5, 0.5, 60.0),
        (180, "c", 0.5, 0.5, 60.0),
    ]


def test_repeated_rows_of_one_series_are_folded(tmp_path: Path) -> None:
    row = {"timestamp": T0 / 1000, "UUID": "GPU-1", "pod": "a", "DCGM_FI_DEV_GPU_UTIL": 40.0}
    path = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_pylist([row, row]), path)
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as led:
        ingest_files(led, [path], DCGM)
        assert led.con.execute(
            "SELECT count(*), sum(time_slice_share) FROM gpu_samples"
        ).fetchall() == [(1, 1.0)]


def test_ignored_and_unidentified_columns_are_noted(tmp_path: Path) -> None:
    rows = [
        {
            "time": T0,
            "UUID": "GPU-1",
            "pod": "a",
            "DCGM_FI_DEV_GPU_UTIL": 40.0,
            "DCGM_FI_DEV_SM_CLOCK": 1980.0,
            "temp": 41.5,
        },
        {
            "time": T0,
            "UUID": None,
            "pod": "b",
            "DCGM_FI_DEV_GPU_UTIL": 10.0,
            "DCGM_FI_DEV_SM_CLOCK": 1.0,
            "temp": 1.0,
        },
    ]
    path = tmp_path / "notes.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as led:
        report = ingest_files(led, [path], DCGM).files[0]
    assert report.rows == 1
    notes = " ".join(f"{n.title} {n.summary}" for n in report.notes)
    assert "DCGM_FI_DEV_SM_CLOCK" in notes and "temp" in notes
    assert "DCGM_FI_DEV_GPU_UTIL carry no UUID" in notes


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"UUID": ["GPU-1"], "DCGM_FI_DEV_GPU_UTIL": [1.0]}, "no time column"),
        ({"ts": [T0], "UUID": ["GPU-1"], "other": [1.0]}, "no DCGM samples"),
        (
            {
                "ts": [T0, T0],
                "__name__": ["DCGM_FI_DEV_GPU_UTIL"] * 2,
                "value": ["1", "x1"],
                "UUID": ["G", "G"],
            },
            "row 2, column value: 'x1' is not a number",
        ),
        (
            {"ts": [str(T0), "yesterday"], "UUID": ["G", "G"], "DCGM_FI_DEV_GPU_UTIL": [1.0, 2.0]},
            "row 2, column ts: 'yesterday' is not a number",
        ),
        (
            {"ts": [T0], "UUID": ["G"], "DCGM_FI_DEV_GPU_UTIL": ["n/a"]},
            "row 1, column DCGM_FI_DEV_GPU_UTIL: 'n/a' is not a number",
        ),
    ],
)
def test_bad_parquet_is_named_and_nothing_is_written(
    tmp_path: Path, table: dict[str, list[object]], message: str
) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table(table), path)
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as led:
        with pytest.raises(IngestError, match=message) as info:
            ingest_files(led, [path], DCGM)
        assert str(path) in str(info.value)
        assert led.con.execute("SELECT count(*) FROM gpu_samples").fetchall() == [(0,)]
        assert led.con.execute("SELECT count(*) FROM ingestions").fetchall() == [(0,)]


def test_the_arrow_reader_gives_the_rows_the_ledger_stores(tmp_path: Path) -> None:
    text = tmp_path / "scrapes.txt"
    text.write_text(_exposition(T0) + _exposition(T0 + 60_000))
    path = tmp_path / "wide.parquet"
    _wide(_samples(text), path)
    batch = read_dcgm_file(SourceFile.of(path))
    table = batch.reader().read_all()
    assert table.schema == dcgm.GPU_SAMPLE_ARROW
    assert sorted(
        (tuple(r[c] for c in COLUMNS) for r in table.to_pylist()), key=repr
    ) == _text_rows(text)
