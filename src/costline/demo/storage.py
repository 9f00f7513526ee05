"""The demo's S3 buckets as S3 Inventory saw them on the window's last day.

`storage/<bucket>/manifest.json` and `storage/<bucket>/data/<uuid>.csv.gz` (header-less CSV, keys
URL-encoded, columns named by the manifest's `fileSchema`). Each bucket's bytes add up to about the
GB its bill meters; object counts are capped (`MAX_OBJECTS`) by making objects larger. The
checkpoint bucket holds DeepSpeed `global_step*` folders, the artifacts bucket Hugging Face
`checkpoint-*` folders beside released models.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from urllib.parse import quote_plus

from costline.demo.fleets.base import stable_guid, stable_hex
from costline.demo.org import RateMeter, Resource

MAX_OBJECTS = 4000
GIB = 1024**3
SCHEMA = (
    "Bucket",
    "Key",
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
)
CHECKPOINT_FILES = (
    "mp_rank_00_model_states.pt",
    *(f"zero_pp_rank_{k}_mp_rank_00_optim_states.pt" for k in range(8)),
)


@dataclass(frozen=True)
class BucketInventory:
    bucket: str
    manifest: Path
    objects: int
    total_bytes: int
    checkpoint_objects: int
    checkpoint_bytes: int


def _keys(bucket: str, count: int) -> Iterator[tuple[str, float, bool]]:
    """(key, relative size, is a checkpoint) for `count` objects of `bucket`."""
    if bucket == "atlas-checkpoints":
        for i in range(count):
            step, k = divmod(i, len(CHECKPOINT_FILES))
            run = step // 40
            weight = 1.0 if k == 0 else 6.0 / 8
            path = f"atlas-70b/pretrain-r{run:02d}/global_step{(step % 40 + 1) * 2000}"
            yield f"{path}/{CHECKPOINT_FILES[k]}", weight, True
    elif bucket == "ml-model-artifacts":
        for i in range(count):
            if i % 2:
                yield (
                    f"releases/atlas-8b-instruct/v{i // 10}.{i % 10}/model.safetensors",
                    1.0,
                    False,
                )
            else:
                shard = i // 2 % 4 + 1
                step = (i // 8 + 1) * 500
                name = f"model-{shard:05d}-of-00004.safetensors"
                yield f"runs/atlas-8b-instruct/sft 2026-10/checkpoint-{step}/{name}", 0.25, True
    elif bucket == "atlas-training-data":
        for i in range(count):
            if i % 10 == 0:
                yield f"raw crawl/2026-09/part {i:05d}+dedup.jsonl.zst", 2.0, False
            else:
                yield f"datasets/atlas-pretrain-v3/tokenized/shard-{i:05d}.bin", 1.0, False
    else:
        for i in range(count):
            yield f"media/videos/product {i:04d}.mp4", 1.0, False


def _gigabytes(resource: Resource) -> float:
    meter = resource.meters[0]
    assert isinstance(meter, RateMeter)
    return float(meter.per_day)


def _rows(r: Resource, snapshot: dt.datetime, rng: Random) -> tuple[list[str], BucketInventory]:
    bucket = r.name or r.key.split("/")[-1]
    target = _gigabytes(r) * GIB
    count = max(20, min(MAX_OBJECTS, int(_gigabytes(r) / 50)))
    keys = list(_keys(bucket, count))
    unit = target / sum(w for _, w, _ in keys)
    lines: list[str] = []
    total = ckpt = ckpt_bytes = 0
    for key, weight, is_ckpt in keys:
        size = int(unit * weight * (0.97 + 0.06 * rng.random()))
        modified = snapshot - dt.timedelta(minutes=rng.randint(60, 60 * 24 * 120))
        etag = f"{stable_hex(bucket + key, 32)}-{max(1, size // (512 * 1024**2))}"
        klass = "STANDARD" if is_ckpt or rng.random() < 0.7 else "INTELLIGENT_TIERING"
        stamp = modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        fields = (bucket, quote_plus(key, safe="/"), str(size), stamp, etag, klass, "true")
        lines.append(",".join(f'"{v}"' for v in fields))
        total += size
        if is_ckpt:
            ckpt, ckpt_bytes = ckpt + 1, ckpt_bytes + size
    inventory = BucketInventory(bucket, Path(), len(lines), total, ckpt, ckpt_bytes)
    return lines, inventory


def write_inventories(
    out: Path, buckets: Sequence[Resource], snapshot: dt.datetime, seed: int
) -> list[BucketInventory]:
    """One manifest and one gzipped CSV per bucket; return what each holds."""
    written: list[BucketInventory] = []
    for r in buckets:
        lines, inv = _rows(r, snapshot, Random(f"{seed}/s3/{r.key}"))
        data_name = f"{stable_guid('inventory/' + inv.bucket)}.csv.gz"
        folder = out / inv.bucket
        (folder / "data").mkdir(parents=True, exist_ok=True)
        body = gzip.compress("".join(f"{line}\n" for line in lines).encode(), mtime=0)
        (folder / "data" / data_name).write_bytes(body)
        manifest = {
            "sourceBucket": inv.bucket,
            "destinationBucket": "arn:aws:s3:::costline-demo-inventory",
            "version": "2016-11-30",
            "creationTimestamp": str(int(snapshot.timestamp() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": ", ".join(SCHEMA),
            "files": [
                {
                    "key": f"{inv.bucket}/daily-inventory/data/{data_name}",
                    "size": len(body),
                    "MD5checksum": hashlib.md5(body).hexdigest(),
                }
            ],
        }
        path = folder / "manifest.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        written.append(
            BucketInventory(inv.bucket, path, inv.objects, inv.total_bytes,
                            inv.checkpoint_objects, inv.checkpoint_bytes)
        )  # fmt: skip
    return written


# The demo's lifecycle rules, as `aws s3api get-bucket-lifecycle-configuration` and `gsutil
# lifecycle get` print them: checkpoints move and expire, most training data and the model
# artifacts stay hot forever (what the compliance report is for).
LIFECYCLE: dict[str, dict[str, object]] = {
    "atlas-checkpoints": {
        "Rules": [
            {
                "ID": "checkpoints-to-glacier-ir",
                "Status": "Enabled",
                "Filter": {"Prefix": "atlas-70b/"},
                "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}],
                "Expiration": {"Days": 180},
            }
        ]
    },
    "atlas-training-data": {
        "Rules": [
            {
                "ID": "raw-crawl-to-deep-archive",
                "Status": "Enabled",
                "Filter": {"Prefix": "raw crawl/"},
                "Transitions": [{"Days": 14, "StorageClass": "DEEP_ARCHIVE"}],
            },
            {"ID": "scratch", "Status": "Disabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": 7}},
        ]
    },
    "ml-model-artifacts": {"Bucket": "ml-model-artifacts", "Rules": []},
    "web-assets": {
        "Rules": [
            {
                "ID": "tiering",
                "Status": "Enabled",
                "Filter": {},
                "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}],
            }
        ]
    },
    "vision-datasets": {
        "rule": [
            {"action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
             "condition": {"age": 60}}
        ]
    },
}  # fmt: skip


def write_lifecycles(out: Path, buckets: Sequence[str]) -> list[Path]:
    """`<bucket>.lifecycle.json` for each of `buckets` the demo has rules for."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in buckets:
        if name in LIFECYCLE:
            path = out / f"{name}.lifecycle.json"
            path.write_text(json.dumps(LIFECYCLE[name], indent=2) + "\n", encoding="utf-8")
            paths.append(path)
    return paths


GCS_COLUMNS = ("project", "bucket", "name", "location", "size", "timeCreated", "updated",
               "storageClass", "contentType")  # fmt: skip
SHARD_FILES = (*(f"model-{k:05d}-of-00004.safetensors" for k in range(1, 5)), "optimizer.pt",
               "scheduler.pt", "trainer_state.json")  # fmt: skip
SHARD_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 8.0, 0.001, 0.0001)  # Adam's states are twice the weights


@dataclass(frozen=True)
class RunCheckpoints:
    """A finished run's checkpoints in a bucket: under `prefix`, `checkpoints` of them written
    every `every` steps until `ended`, `gib` in all."""

    prefix: str
    checkpoints: int
    every: int
    ended: dt.datetime
    gib: float


def write_gcs_inventory(
    out: Path, project: str, bucket: str, runs: Sequence[RunCheckpoints], snapshot: dt.datetime
) -> BucketInventory:
    """A Cloud Storage Insights inventory report (CSV with a header) of `bucket` holding `runs`'
    Hugging Face checkpoints in the Standard class, as `<bucket>/<bucket>_inventory_<date>.csv`."""
    lines = [",".join(GCS_COLUMNS)]
    total = 0
    for run in runs:
        unit = run.gib * 2**30 / (run.checkpoints * sum(SHARD_WEIGHTS))
        for c in range(run.checkpoints):
            step = (c + 1) * run.every
            written = run.ended - dt.timedelta(hours=3 * (run.checkpoints - c))
            stamp = written.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            for name, weight in zip(SHARD_FILES, SHARD_WEIGHTS, strict=True):
                size = int(unit * weight)
                key = f"{run.prefix}checkpoint-{step}/{name}"
                lines.append(",".join((project, bucket, key, "US-CENTRAL1", str(size), stamp,
                                       stamp, "STANDARD", "application/octet-stream")))  # fmt: skip
                total += size
    path = out / bucket / f"{bucket}_inventory_{snapshot:%Y-%m-%d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return BucketInventory(bucket, path, len(lines) - 1, total, len(lines) - 1, total)
