"""Declared work whole: registry links, run storage and transfer, endpoint traffic, lifecycle rules."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from costline.attribution.compliance import lifecycle_coverage
from costline.attribution.registry import Declared, declared, links, name_glob_regex
from costline.economics.declared import declared_costs
from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources.base import SourceFile
from costline.sources.metrics import METRICS
from costline.sources.storage.lifecycle import LIFECYCLE, read_lifecycle
from costline.sources.workloads import KUBERNETES, REGISTRY, SLURM
from costline.sources.workloads.registry import load_registry
from tests.helpers import FIXTURES

UTC = dt.UTC
START = dt.datetime(2026, 10, 1, tzinfo=UTC)
END = dt.datetime(2026, 10, 2, tzinfo=UTC)
MONEY = pa.decimal128(38, 18)


def test_name_glob_regex_follows_duckdb_glob() -> None:
    import re

    cases = [("llama3-8b-*", "llama3-8b-pretrain-0", True), ("llama3-8b-*", "llama3-70b", False),
             ("job_[0-9]", "job_7", True), ("job_[!0-9]", "job_7", False), ("a?c", "abc", True),
             ("a.c", "abc", False)]  # fmt: skip
    for glob, text, expected in cases:
        assert (re.search(name_glob_regex(glob), text) is not None) is expected, (glob, text)


def test_links_are_the_documented_join_and_each_workload_has_one_entry(ledger: Ledger) -> None:
    ingest_files(ledger, [FIXTURES / "kubernetes" / "pods.json"], KUBERNETES)
    ingest_files(ledger, [FIXTURES / "slurm" / "sacct.txt"], SLURM)
    ingest_files(ledger, [FIXTURES / "registry" / "experiments.yaml"], REGISTRY)
    w = ledger.table("workloads")
    entries = declared(w)
    assert [e.name for e in entries] == ["fraud-scorer", "llama3-8b-pretrain", "sweep-lr"]
    got = sorted((r["entry"], r["workload_id"]) for r in links(w, entries).to_pyarrow().to_pylist())
    assert got == [
        ("fraud-scorer", "serving/fraud-scorer-6d4cf56db6-2xkqz"),
        ("llama3-8b-pretrain", "ml-research/llama3-8b-pretrain-0-x7k2p"),
        ("sweep-lr", "4410180_3"),
        ("sweep-lr", "4410180_4"),
        ("sweep-lr", "4410180_[5-8]"),
    ]


def test_registry_storage_uris(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("- name: run\n  kind: training_run\n  storage: [s3://ckpt/run/, gs://data]\n")
    assert load_registry(SourceFile.of(path))[0].storage == ["s3://ckpt/run/", "gs://data"]
    path.write_text("- name: run\n  kind: training_run\n  storage: [/mnt/ckpt]\n")
    with pytest.raises(IngestError, match=r"r.yaml:3: \[0\].storage: expected s3://"):
        load_registry(SourceFile.of(path))


def _lines(rows: list[dict[str, Any]]) -> ibis.Table:
    return ibis.memtable(
        pa.table(
            {
                "ResourceId": pa.array([r["id"] for r in rows], pa.string()),
                "ResourceName": pa.array([r.get("name") for r in rows], pa.string()),
                "ProviderName": pa.array([r.get("provider", "AWS") for r in rows], pa.string()),
                "ServiceCategory": pa.array([r["category"] for r in rows], pa.string()),
                "ServiceName": pa.array([r.get("service", "S3") for r in rows], pa.string()),
                "ChargePeriodStart": pa.array(
                    [r.get("at", START) for r in rows], pa.timestamp("us", tz="UTC")
                ),
                "EffectiveCost": pa.array([Decimal(r["cost"]) for r in rows], MONEY),
            }
        )
    )


def _objects(rows: list[tuple[str, str, int, dt.date]]) -> ibis.Table:
    bucket, key, size, day = zip(*rows, strict=True)
    return ibis.memtable(pa.table({"bucket": pa.array(bucket, pa.string()),
                                   "key": pa.array(key, pa.string()),
                                   "size_bytes": pa.array(size, pa.int64()),
                                   "snapshot_date": pa.array(day, pa.date32())}))  # fmt: skip


def _metrics(rows: list[tuple[dt.datetime, str, float, str]]) -> ibis.Table:
    ts, metric, value, endpoint = zip(*rows, strict=True)
    labels = pa.array([[("endpoint", e)] for e in endpoint], pa.map_(pa.string(), pa.string()))
    return ibis.memtable(pa.table({"ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                                   "metric": pa.array(metric, pa.string()),
                                   "value": pa.array(value, pa.float64()), "labels": labels}))  # fmt: skip


def _entry(name: str, kind: str, storage: tuple[tuple[str, str], ...] = ()) -> Declared:
    return Declared(workload_id=f"registry:{name}", name=name, kind=kind, team="ml", owner=None,
                    budget_usd=Decimal(100), name_glob=None, labels={}, storage=storage)  # fmt: skip


def test_run_storage_and_transfer_are_prefix_shares_of_their_buckets_and_endpoints_get_per_prediction() -> (
    None
):
    day = dt.date(2026, 10, 1)
    objects = _objects([
        ("ckpt", "run-a/step-1/model.pt", 300, day), ("ckpt", "run-b/x.pt", 100, day),
        ("ckpt", "other/y", 600, day),
        ("ckpt", "run-a/old.pt", 10**9, dt.date(2026, 9, 20)),  # an older snapshot: not read
        ("ckpt", "run-a/later.pt", 10**9, dt.date(2026, 10, 5)),  # after the period: not read
    ])  # fmt: skip
    lines = _lines([
        {"id": "ckpt", "category": "Storage", "cost": "10.000000000000000001"},
        {"id": "arn:aws:s3:::ckpt", "category": "Networking", "service": "AWS Data Transfer",
         "cost": "3"},
        {"id": "other-bucket", "category": "Storage", "cost": "5"},
        {"id": "ckpt", "category": "Storage", "cost": "7", "at": END},  # next period
    ])  # fmt: skip
    metrics = _metrics([
        (START, "inference_requests", 1000.0, "ep"), (START, "inference_successes", 990.0, "ep"),
        (END, "inference_requests", 5.0, "ep"),
    ])  # fmt: skip
    entries = [
        _entry("run-a", "training_run", (("ckpt", "run-a/"),)),
        _entry("run-b", "fine_tune", (("ckpt", "run-b/"),)),
        _entry("ep", "inference_endpoint"),
        _entry("idle", "training_run"),  # no work, storage or traffic: no row
    ]
    work = [{"workload": "pod-1", "gpu_hours": 2.0, "gpu_cost_usd": Decimal(8),
             "orchestration_usd": Decimal("0.5")}]  # fmt: skip
    rows = {r["name"]: r for r in declared_costs(entries, {"pod-1": "ep"}, work, lines, objects,
                                                  metrics, START, END)}  # fmt: skip
    assert set(rows) == {"run-a", "run-b", "ep"}
    a, b, ep = rows["run-a"], rows["run-b"], rows["ep"]
    assert a["storage_usd"] + b["storage_usd"] <= Decimal("10.000000000000000001")
    assert abs(a["storage_usd"] - Decimal(3)) < Decimal("1e-17")
    assert abs(b["storage_usd"] - Decimal(1)) < Decimal("1e-17")
    assert (a["transfer_usd"], b["transfer_usd"]) == (Decimal("0.9"), Decimal("0.3"))
    assert a["cost_usd"] == a["storage_usd"] + a["transfer_usd"] and a["gpu_cost_usd"] == 0
    assert ep["storage_usd"] is None and ep["cost_usd"] == Decimal("8.5")
    assert ep["inferences"] == 1000
    assert ep["per_1k_inferences_usd"] == Decimal("8.5")
    assert ep["per_success_usd"] == (Decimal("8.5") / 990).quantize(Decimal("1e-18"))
    assert ep["budget_used_pct"] == Decimal("8.5")


def test_no_inventory_no_storage_share_and_no_counts_no_per_unit() -> None:
    lines = _lines([{"id": "ckpt", "category": "Storage", "cost": "10"}])
    entries = [
        _entry("run", "training_run", (("ckpt", "run/"),)),
        _entry("ep", "inference_endpoint"),
    ]
    work = [{"workload": "p", "gpu_hours": 1.0, "gpu_cost_usd": Decimal(2),
             "orchestration_usd": Decimal(0)}]  # fmt: skip
    rows = {r["name"]: r for r in declared_costs(
        entries, {"p": "ep"}, work, lines, _objects([("x", "k", 1, dt.date(2026, 9, 1))]),
        _metrics([(START, "other", 1.0, "ep")]), START, END)}  # fmt: skip
    assert set(rows) == {"ep"}  # the run had no GPU time, and no bytes to share the bucket by
    assert rows["ep"]["per_success_usd"] is None and rows["ep"]["per_1k_inferences_usd"] is None


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_csv_and_jsonl_and_overlapping_exports_replace(
    ledger: Ledger, tmp_path: Path
) -> None:
    csv_file = tmp_path / "inference.csv"
    csv_file.write_text(
        "ts,metric,value,endpoint\n2026-10-01T00:00:00Z,inference_requests,100,ep\n"
        "2026-10-01T01:00:00Z,inference_requests,120,ep\n"
    )
    jsonl = tmp_path / "tickets.jsonl"
    jsonl.write_text(json.dumps({"ts": "2026-10-01", "metric": "tickets_resolved", "value": 7,
                                 "labels": {"queue": "support"}}) + "\n")  # fmt: skip
    assert ingest_files(ledger, [csv_file, jsonl], METRICS).rows == 3
    assert ingest_files(ledger, [csv_file], METRICS).duplicates == [str(csv_file)]
    again = tmp_path / "inference-2.csv"  # a later export of an overlapping window
    again.write_text(
        "ts,metric,value,endpoint\n2026-10-01T01:00:00Z,inference_requests,125,ep\n"
        "2026-10-01T02:00:00Z,inference_requests,90,ep\n"
    )
    ingest_files(ledger, [again], METRICS)
    got = ledger.con.execute(
        "SELECT metric, sum(value), count(*) FROM metrics GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == [("inference_requests", 315.0, 3), ("tickets_resolved", 7.0, 1)]
    labels = ledger.con.execute(
        "SELECT labels['queue'] FROM metrics WHERE metric = 'tickets_resolved'"
    ).fetchall()
    assert labels == [("support",)]


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        ("ts,metric,value\n2026-10-01,m,-3\n", 2, "value"),
        ("ts,metric,value\n2026-10-01,m,3\nyesterday,m,1\n", 3, "ts"),
        ("ts,metric,value\n2026-10-01,,3\n", 2, "metric"),
    ],
)
def test_bad_metric_rows_are_named_and_nothing_is_written(
    ledger: Ledger, tmp_path: Path, text: str, row: int, column: str
) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(IngestError) as exc:
        ingest_files(ledger, [path], METRICS)
    assert (exc.value.row, exc.value.column) == (row, column)
    assert ledger.con.execute("SELECT count(*) FROM metrics").fetchall() == [(0,)]


# -- lifecycle -----------------------------------------------------------------------------------

AWS_RULES = {
    "Rules": [
        {"ID": "ckpt", "Status": "Enabled", "Filter": {"Prefix": "runs/"},
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}], "Expiration": {"Days": 180}},
        {"ID": "tagged", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "", "Tags": [{"Key": "tmp", "Value": "1"}]}},
         "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}},
    ]
}  # fmt: skip


def _lifecycle_files(tmp_path: Path) -> list[Path]:
    files = {
        "b.lifecycle.json": AWS_RULES,
        "a.json": {"Rules": [{"ID": "all", "Status": "Enabled", "Filter": {},
                              "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}]}]},
        "c.lifecycle.json": {"Bucket": "c", "Rules": []},
        "e.lifecycle.json": {"Rules": [AWS_RULES["Rules"][1]]},
        "g.json": {"name": "g", "lifecycle_config": {"rule": [
            {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefix": ["tmp/", "logs/"]}}]}},
    }  # fmt: skip
    for name, doc in files.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return [tmp_path / n for n in files]


def test_lifecycle_rules_of_aws_and_gcs(ledger: Ledger, tmp_path: Path) -> None:
    paths = _lifecycle_files(tmp_path)
    ingest_files(ledger, paths, LIFECYCLE)
    got = ledger.con.execute(
        "SELECT provider, bucket, rule_id, prefix, enabled, filtered_by_tag, actions "
        "FROM storage_lifecycle ORDER BY bucket, rule_id, prefix"
    ).fetchall()
    assert got == [
        ("AWS", "a", "all", "", True, False, "transition INTELLIGENT_TIERING after 0d"),
        ("AWS", "b", "ckpt", "runs/", True, False,
         "transition GLACIER_IR after 30d; expire after 180d"),
        ("AWS", "b", "off", "", False, False, "expire after 7d"),
        ("AWS", "b", "tagged", "", True, True, "expire after 1d"),
        ("AWS", "c", None, "", False, False, None),
        ("AWS", "e", "tagged", "", True, True, "expire after 1d"),
        ("Google Cloud", "g", "rule-0", "logs/", True, False, "Delete after 30d"),
        ("Google Cloud", "g", "rule-0", "tmp/", True, False, "Delete after 30d"),
    ]  # fmt: skip
    # Reading a bucket's rules again replaces them: b now has none.
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "b.lifecycle.json").write_text('{"Rules": []}')
    ingest_files(ledger, [tmp_path / "new" / "b.lifecycle.json"], LIFECYCLE)
    assert ledger.con.execute(
        "SELECT rule_id FROM storage_lifecycle WHERE bucket = 'b'"
    ).fetchall() == [(None,)]


def test_bad_lifecycle_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"Rules": [{"ID": "r", "Status": "enabled"}]}')
    with pytest.raises(IngestError, match=r"Rules\[0\]\.Status must be Enabled or Disabled"):
        read_lifecycle([SourceFile.of(path)])
    path.write_text('{"Buckets": []}')
    with pytest.raises(IngestError, match="not a lifecycle configuration"):
        read_lifecycle([SourceFile.of(path)])
    path.write_text('{"Rules": [{"ID": "r", "Status": "Enabled", "Transitions": [30]}]}')
    with pytest.raises(IngestError, match=r"Rules\[0\]\.Transitions\[0\] must be an object"):
        read_lifecycle([SourceFile.of(path)])


def test_a_malformed_lifecycle_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.lifecycle.json", tmp_path / "b.lifecycle.json"
    good.write_text('{"Rules": []}')
    bad.write_text('{"Rules": [{"ID": "r", "Status": "Enabled", "Filter": "logs/"}]}')
    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    env = {**os.environ, "COSTLINE_LEDGER": url}
    proc = subprocess.run([sys.executable, "-m", "costline", "ingest", "lifecycle", str(good),
                           str(bad)], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "b.lifecycle.json" in proc.stderr and "Rules[0].Filter must be an object" in proc.stderr
    with Ledger(url, read_only=True) as ledger:
        assert ledger.con.execute("SELECT count(*) FROM storage_lifecycle").fetchall() == [(0,)]


def test_share_of_storage_cost_under_lifecycle_rules(ledger: Ledger, tmp_path: Path) -> None:
    ingest_files(ledger, _lifecycle_files(tmp_path), LIFECYCLE)
    rules = ibis.memtable(ledger.table("storage_lifecycle").to_pyarrow())
    day = dt.date(2026, 9, 30)
    objects = _objects([("b", "runs/1.pt", 250, day), ("b", "data/x", 750, day),
                        ("g", "tmp/x", 10, day)])  # fmt: skip
    lines = _lines([{"id": n, "category": "Storage", "cost": "100"} for n in "abcdeg"])
    got = lifecycle_coverage(lines, objects, rules, START, END)
    by = {r["bucket"]: r for r in got["storage_outside_lifecycle"]}
    assert got["storage_lifecycle"] == [{
        "storage_usd": Decimal(600), "under_rules_usd": Decimal(225), "under_rules_pct": Decimal("37.50"),
        "buckets": 6, "buckets_with_rules": 4}]  # fmt: skip
    # a: whole bucket (not listed: nothing outside); b: 25% of bytes under runs/; c: read, none;
    # d: never read; e: only a tag-filtered rule; g: all its inventoried bytes under tmp/.
    assert set(by) == {"b", "c", "d", "e"}
    assert by["b"]["under_rules_usd"] == 25 and by["b"]["coverage"] == "by prefix (inventory)"
    assert (by["c"]["coverage"], by["d"]["coverage"]) == ("no rules", "rules not read")
    assert by["e"]["coverage"] == "unknown: prefix rules, no inventory"
