"""Storage inventories: S3 (manifest, CSV, Parquet) and GCS, decoded keys, checkpoints, errors."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources.storage import STORAGE, CheckpointMatcher, storage_source
from tests.helpers import FIXTURES

S3_DIR = FIXTURES / "storage" / "s3" / "ml-artifacts" / "daily-inventory"
MANIFEST = S3_DIR / "2025-03-01T01-00Z" / "manifest.json"
S3_CSV = S3_DIR / "data" / "8f1c5b8e-6a3e-4d2b-9b7a-2f4c1d0e9a11.csv"
GCS_CSV = FIXTURES / "storage" / "gcs" / "ml-prod-checkpoints_inventory_2025-03-02_0.csv"


def objects(ledger: Ledger, provider: str) -> list[dict[str, Any]]:
    cur = ledger.con.execute(
        "SELECT * FROM storage_objects WHERE provider = ? ORDER BY key, last_modified", [provider]
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def test_s3_manifest_reads_its_data_files(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [MANIFEST], STORAGE)
    assert summary.rows == 10  # 11 records, one delete marker
    got = objects(ledger, "AWS")
    assert {o["snapshot_date"] for o in got} == {dt.date(2025, 3, 1)}  # creationTimestamp
    assert {o["bucket"] for o in got} == {"ml-artifacts"}
    keys = {o["key"] for o in got}
    assert "runs/old-bert/checkpoint-9000/pytorch_model.bin" not in keys  # the delete marker
    # URL-decoded: %3D, %C3%A9, + as space, %2B as plus, %28 %29.
    assert {
        "experiments/vit-l/epoch=3-step=1200.ckpt",
        "datasets/café-reviews/train-00000.parquet",
        "eval/results (final).json",
        "notes/a+b plan.md",
    } <= keys
    shard = next(o for o in got if o["key"].endswith("model-00001-of-00004.safetensors"))
    assert (shard["size_bytes"], shard["storage_class"], shard["object_count"]) == (
        4976698672,
        "STANDARD",
        1,
    )
    assert shard["last_modified"] == dt.datetime(2025, 2, 20, 10, 11, 12, tzinfo=dt.UTC)
    old = [o for o in got if o["key"] == "runs/llama3-8b/checkpoint-500/optimizer.pt"]
    assert [o["tags"].get("is_latest") for o in old] == ["false", None]  # noncurrent kept
    tiered = next(o for o in got if "global_step2000" in o["key"])
    assert tiered["tags"] == {"access_tier": "ARCHIVE_INSTANT_ACCESS"}


def test_checkpoints_are_flagged(ledger: Ledger) -> None:
    ingest_files(ledger, [MANIFEST, GCS_CSV], STORAGE)
    flagged = {
        k: c
        for k, c in ledger.con.execute("SELECT key, is_checkpoint FROM storage_objects").fetchall()
    }
    assert flagged == {
        "runs/llama3-8b/checkpoint-500/model-00001-of-00004.safetensors": True,
        "runs/llama3-8b/checkpoint-500/optimizer.pt": True,
        "runs/llama3-8b/ckpt/step_1000.pt": True,
        "runs/gpt-neox-20b/global_step2000/mp_rank_00_model_states.pt": True,
        "experiments/vit-l/epoch=3-step=1200.ckpt": True,
        "datasets/café-reviews/train-00000.parquet": False,
        "eval/results (final).json": False,
        "notes/a+b plan.md": False,
        "archive/2023/bert-base/pytorch_model.bin": False,
        "gemma-ft/checkpoints/step-4000/model.safetensors": True,
        "gemma-ft/checkpoints/step-4000/optimizer.pt": True,
        "gemma-ft/orbax/checkpoint_12000/state/d/0.zarr": True,
        "datasets/support tickets/2025-02.jsonl": False,
        "serving/gemma-2b/model.tflite": False,
    }
    checkpoint_bytes = ledger.con.execute(
        "SELECT sum(size_bytes) FROM storage_objects WHERE is_checkpoint AND provider = 'AWS'"
    ).fetchone()
    assert checkpoint_bytes == (
        4976698672 + 2 * 32121044992 + 16060522496 + 41254000000 + 1214567890,
    )


def test_checkpoint_patterns_are_a_parameter(ledger: Ledger) -> None:
    ingest_files(ledger, [MANIFEST], storage_source(["archive/**", "re:\\.bin$"]))
    flagged = ledger.con.execute(
        "SELECT key FROM storage_objects WHERE is_checkpoint ORDER BY key"
    ).fetchall()
    assert flagged == [("archive/2023/bert-base/pytorch_model.bin",)]
    m = CheckpointMatcher()
    assert m.matches("a/CHECKPOINTS/x.pt")  # case-insensitive
    assert m.matches("model.ckpt") and not m.matches("ckpt.txt")


def test_gcs_inventory(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [GCS_CSV], STORAGE)
    assert summary.files[0].dialect == "gcs-inventory"
    got = objects(ledger, "Google Cloud")
    assert len(got) == 5
    assert {o["snapshot_date"] for o in got} == {dt.date(2025, 3, 2)}  # from the file name
    tickets = next(o for o in got if o["key"].startswith("datasets/"))
    assert tickets["key"] == "datasets/support tickets/2025-02.jsonl"  # GCS names are not encoded
    assert (tickets["bucket"], tickets["size_bytes"], tickets["storage_class"]) == (
        "ml-prod-checkpoints",
        734003200,
        "COLDLINE",
    )
    assert tickets["last_modified"] == dt.datetime(2025, 2, 3, 10, tzinfo=dt.UTC)  # `updated`


def test_folder_reads_each_object_once(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [FIXTURES / "storage"], STORAGE)
    assert summary.rows == 15
    assert ledger.con.execute("SELECT count(*) FROM storage_objects").fetchone() == (15,)


def test_csv_alone_finds_its_manifest_and_gzip(tmp_path: Path, ledger: Ledger) -> None:
    # Beside its manifest: the manifest's column order and creation date.
    summary = ingest_files(ledger, [S3_CSV], STORAGE)
    assert summary.rows == 10
    assert ledger.con.execute("SELECT DISTINCT snapshot_date FROM storage_objects").fetchall() == [
        (dt.date(2025, 3, 1),)
    ]
    # Alone and gzipped, in the default column order (Bucket, Key, Size, LastModifiedDate, StorageClass).
    plain = tmp_path / "inv-2025-03-05.csv.gz"
    with gzip.open(plain, "wt", encoding="utf-8") as fh:
        fh.write('"b","a%20b/checkpoints/x.pt","12","2025-03-01T00:00:00.000Z","STANDARD"\n')
    ingest_files(ledger, [plain], STORAGE)
    row = ledger.con.execute(
        "SELECT key, size_bytes, snapshot_date, is_checkpoint FROM storage_objects WHERE bucket = 'b'"
    ).fetchone()
    assert row == ("a b/checkpoints/x.pt", 12, dt.date(2025, 3, 5), True)


def test_parquet_inventories(tmp_path: Path, ledger: Ledger) -> None:
    s3 = tmp_path / "s3-inventory-2025-03-08.parquet"
    pq.write_table(
        pa.table(
            {
                "bucket": ["ml-artifacts"],
                "key": ["runs/x/checkpoint-1/model.safetensors"],
                "size": pa.array([100], pa.int64()),
                "last_modified_date": pa.array(
                    [dt.datetime(2025, 3, 1, tzinfo=dt.UTC)], pa.timestamp("ms", tz="UTC")
                ),
                "storage_class": ["STANDARD"],
            }
        ),
        s3,
    )
    gcs = tmp_path / "gcs.parquet"
    pq.write_table(
        pa.table(
            {"bucket": ["g"], "name": ["data/a b.txt"], "size": [5], "storageClass": ["STANDARD"]}
        ),
        gcs,
    )
    with pytest.raises(IngestError, match="no snapshot date"):
        ingest_files(ledger, [gcs], STORAGE)
    ingest_files(ledger, [s3], STORAGE)
    ingest_files(ledger, [gcs], storage_source(snapshot_date=dt.date(2025, 3, 9)))
    got = ledger.con.execute(
        "SELECT provider, key, size_bytes, snapshot_date, is_checkpoint FROM storage_objects ORDER BY 1"
    ).fetchall()
    assert got == [
        ("AWS", "runs/x/checkpoint-1/model.safetensors", 100, dt.date(2025, 3, 8), True),
        ("Google Cloud", "data/a b.txt", 5, dt.date(2025, 3, 9), False),
    ]


def test_bad_rows_name_file_and_row(tmp_path: Path, ledger: Ledger) -> None:
    folder = tmp_path / "inv" / "2025-03-01T01-00Z"
    shutil.copytree(MANIFEST.parent, folder)
    data = tmp_path / "inv" / "data"
    data.mkdir()
    lines = S3_CSV.read_text().splitlines()
    lines[3] = lines[3].replace('"16060522496"', '"16 GB"')
    (data / S3_CSV.name).write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError) as exc:
        ingest_files(ledger, [folder / "manifest.json"], STORAGE)
    assert (exc.value.path, exc.value.row, exc.value.column) == (str(data / S3_CSV.name), 4, "size")
    (data / S3_CSV.name).unlink()
    with pytest.raises(IngestError, match="not on disk"):
        ingest_files(ledger, [folder / "manifest.json"], STORAGE)
    short = tmp_path / "short-2025-03-01.csv"
    short.write_text('"b","k"\n')
    with pytest.raises(IngestError, match=r"row 1: 2 fields.*manifest\.json"):
        ingest_files(ledger, [short], STORAGE)
    assert ledger.con.execute("SELECT count(*) FROM storage_objects").fetchone() == (0,)


def test_reingest_is_a_duplicate(ledger: Ledger) -> None:
    ingest_files(ledger, [MANIFEST, GCS_CSV], STORAGE)
    again = ingest_files(ledger, [MANIFEST, GCS_CSV], STORAGE)
    assert sorted(again.duplicates) == sorted([str(MANIFEST), str(GCS_CSV)])
    assert ledger.con.execute("SELECT count(*) FROM storage_objects").fetchone() == (15,)
