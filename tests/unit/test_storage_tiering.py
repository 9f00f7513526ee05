"""Storage tiering (issue 16, point 6): checkpoints of ended runs and cold data, in dollars.

Hand-made inventories in Cloud Storage `us-central1`, whose list prices the catalog has (Standard
$0.02, Nearline $0.01 + $0.01/GB read, Coldline $0.004 + $0.02, Archive $0.0012 + $0.05 per
GB-month; minimum 30, 90 and 365 days), and in S3, priced from the organization's own bill.
"""

from __future__ import annotations

import datetime as dt
import json
import typing
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.rules import Rules
from costline.catalog.storage_prices import colder, list_price, tier_of
from costline.cli.recommend import recommend_cmd
from costline.clock import FixedClock
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.run import KINDS
from costline.optimize.storage import recommend_storage_tiering
from costline.optimize.storage_plan import kept_checkpoints, step_of
from costline.schema import STORAGE_LIFECYCLE, STORAGE_OBJECTS, WORKLOADS
from tests.unit.recommend_data import LINES

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
START = END - dt.timedelta(days=14)
GIB = 2**30
C = Decimal("0.01")
GCS = "//storage.googleapis.com/projects/_/buckets/"


def _ago(days: int) -> dt.datetime:
    return END - dt.timedelta(days=days)


def obj(bucket: str, key: str, gib: int, *, modified: int, accessed: int | None,
        provider: str = "Google Cloud", klass: str = "STANDARD", ckpt: bool = False,
        ) -> dict[str, Any]:  # fmt: skip
    """An object of `gib` GiB written `modified` days before the window's end, read `accessed`
    days before it (None: the inventory has no access time)."""
    return {"snapshot_date": _ago(1).date(), "provider": provider, "bucket": bucket, "key": key,
            "size_bytes": gib * GIB, "object_count": 1, "storage_class": klass,
            "last_modified": _ago(modified),
            "last_accessed": _ago(accessed) if accessed is not None else None,
            "is_checkpoint": ckpt}  # fmt: skip


def stored(bucket: str, what: str, rate: str, *, provider: str = "Google Cloud",
           region: str = "us-central1", rid: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A day of a bucket's storage bill: 100 GB-months at `rate`."""
    qty = Decimal(100)
    return {"ProviderName": provider, "ChargePeriodStart": _ago(2),
            "ChargePeriodEnd": _ago(1), "ChargeCategory": "Usage", "ChargeDescription": what,
            "RegionId": region, "ResourceId": rid or f"{GCS}{bucket}", "ResourceName": bucket,
            "ServiceName": "Storage", "ServiceCategory": "Storage", "ConsumedQuantity": qty,
            "ConsumedUnit": "GB-Months", "EffectiveCost": qty * Decimal(rate),
            "BilledCost": qty * Decimal(rate), "Tags": [("team", "research")]}  # fmt: skip


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(rows, schema=schema))


def run(objects: list[dict[str, Any]], lines: list[dict[str, Any]],
        workloads: list[dict[str, Any]] | None = None, rules: list[dict[str, Any]] | None = None,
        ) -> list[Finding]:  # fmt: skip
    inputs = Inputs(
        _table(lines, LINES), ibis.memtable(pa.table({"ts": pa.array([], pa.timestamp("us"))})),
        _table(workloads or [], WORKLOADS.to_pyarrow()), START, END, Rules(), FixedClock(END),
        storage=_table(objects, STORAGE_OBJECTS.to_pyarrow()),
        lifecycle=_table(rules or [], STORAGE_LIFECYCLE.to_pyarrow()),
    )  # fmt: skip
    return recommend_storage_tiering(inputs)


def money(f: Finding) -> tuple[str, str, str, str]:
    s = f.evidence["savings_monthly_usd"]
    assert isinstance(s, dict)
    return str(f.evidence["current_monthly_usd"]), str(s["p50"]), str(s["low"]), str(s["high"])


def inputs_of(f: Finding) -> dict[str, Any]:
    found = f.evidence["inputs"]
    assert isinstance(found, dict)
    return found


GCS_LINE = [stored("ckpt", "Standard Storage US Central 1", "0.02"),
            stored("data", "Standard Storage US Central 1", "0.02")]  # fmt: skip


def _lightning_run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run job-7 ended 40 days ago with five 1,000 GiB Lightning checkpoints; the best
    (val_loss 0.30) is step 300; all written 60 days ago, last read 45 days ago."""
    losses = {100: "0.90", 200: "0.50", 300: "0.30", 400: "0.40", 500: "0.35"}
    objects = [obj("ckpt", f"runs/job-7/epoch={s // 100}-step={s}-val_loss={v}.ckpt", 1000,
                   modified=60, accessed=45, ckpt=True) for s, v in losses.items()]  # fmt: skip
    work = [{"workload_id": "job-7", "kind": "training_run", "name": "llm-pretrain",
             "start": _ago(70), "end": _ago(40), "tags": [("team", "research")],
             "owner": "ana"}]  # fmt: skip
    return objects, work


def test_an_ended_run_keeps_its_last_two_and_best_checkpoints_and_tiers_them() -> None:
    """Steps 100 and 200 are deleted ($0.02 x 2,000 GiB = $40); 300 (best), 400 and 500 are kept
    on purpose, so priced over a year: Archive saves 3,000 x (0.02 - 0.0012) = $56.40 (Coldline
    $48, Nearline $30). Low, at their 60-day age: 3,000 x (0.02 - 0.0012 x 365/60) = $38.10."""
    objects, work = _lightning_run()
    [f] = run(objects, GCS_LINE, work)
    assert money(f) == ("100.00", "96.40", "78.10", "96.40")
    assert f.scope == {"resource": "gs://ckpt/runs/job-7/", "run": "job-7",
                       "recommendation": "storage_tiering"}  # fmt: skip
    got = inputs_of(f)
    assert got["deleted"] == ["runs/job-7/epoch=1-step=100-val_loss=0.90.ckpt",
                              "runs/job-7/epoch=2-step=200-val_loss=0.50.ckpt"]  # fmt: skip
    assert len(got["kept"]) == 3 and got["target_tier"] == "ARCHIVE"
    assert got["target_price_source"] == "list: cyclenerd-gcp 2026-07-30"
    assert got["life_days"] == "365" and got["retrieval_gb_month"] == "0.00"
    assert f.evidence["confidence"] == "high" and f.evidence["coverage"] == 1.0
    lifecycle = json.loads(f.actions[0].text.split(": ", 1)[1])
    assert lifecycle == got["lifecycle"]
    assert lifecycle["rule"][0] == {
        "action": {"type": "Delete"},
        "condition": {
            "age": 7,
            "matchesPrefix": ["runs/job-7/epoch=1-step=100-val_loss=0.90.ckpt"],
        },
    }
    assert lifecycle["rule"][2] == {
        "action": {"type": "SetStorageClass", "storageClass": "ARCHIVE"},
        "condition": {"age": 7, "matchesPrefix": ["runs/job-7/"]}}  # fmt: skip
    assert f.owner == "research"


def test_a_run_ended_lately_keeps_off_tiers_whose_minimum_may_outlast_it() -> None:
    """Checkpoints written 20 days ago, as the run ended: at that age (the low end's life)
    Archive's 365-day minimum costs more than it saves, so Coldline, which loses nothing there:
    $40 deleted + 3,000 x (0.02 - 0.004) = $48 (low 3,000 x (0.02 - 0.004 x 90/20) = $6)."""
    objects, work = _lightning_run()
    objects = [{**o, "last_modified": _ago(20), "last_accessed": _ago(20)} for o in objects]
    [f] = run(objects, GCS_LINE, [{**work[0], "end": _ago(20)}])
    assert money(f) == ("100.00", "88.00", "46.00", "88.00")
    assert inputs_of(f)["target_tier"] == "COLDLINE"


def test_a_running_run_deletes_nothing_and_read_checkpoints_stay() -> None:
    """Still running: its folder is data like any other (all five move to Coldline,
    5,000 x 0.014 = $70, nothing deleted). Ended but read 3 days ago: nothing is deleted, and
    reading 5,000 GB a month back costs more than any colder tier saves."""
    objects, work = _lightning_run()
    [f] = run(objects, GCS_LINE, [{**work[0], "end": None}])
    assert f.scope == {"resource": "gs://ckpt/runs/job-7/", "recommendation": "storage_tiering"}
    assert money(f)[1] == "70.00" and "deleted" not in inputs_of(f)
    read = [{**o, "last_accessed": _ago(3)} for o in objects]
    assert run(read, GCS_LINE, work) == []


def test_a_cold_dataset_moves_to_coldline() -> None:
    """2,000 GiB written 90 days ago, last read 60 days ago: Coldline saves
    2,000 x (0.02 - 0.004) = $32 (life 90 days covers its 90-day minimum); low at 45 days'
    life, 2,000 x (0.02 - 0.004 x 2) = $24."""
    found = run([obj("data", f"datasets/web-v1/part-{i}.parquet", 500, modified=90, accessed=60)
                 for i in range(4)], GCS_LINE)  # fmt: skip
    [f] = found
    assert money(f) == ("40.00", "32.00", "24.00", "32.00")
    assert f.scope["resource"] == "gs://data/datasets/web-v1/"
    assert "2,000 GB not read in 30+ days in STANDARD to COLDLINE" in f.title
    assert inputs_of(f)["objects"] == 4


def test_data_read_last_week_stays_hot() -> None:
    """Read 2 days ago: a month of reads (1,000 GB) at Nearline's $0.01/GB eats its $10 saving,
    and the colder tiers' fees more."""
    assert run([obj("data", "datasets/hot-v2/train.bin", 1000, modified=90, accessed=2)],
               GCS_LINE) == []  # fmt: skip


def test_data_written_lately_is_not_moved() -> None:
    assert run([obj("data", "datasets/new/train.bin", 1000, modified=10, accessed=10)],
               GCS_LINE) == []  # fmt: skip


def _vision(ended: int | None) -> list[dict[str, Any]]:
    """A registry entry declaring gs://data/datasets/vision-v1/, and its one run."""
    declared = {"workload_id": "registry:vision", "kind": "training_run", "name": "vision",
                "source": "registry", "team": "vision",
                "tags": [("costline.match.name", "vision-*"),
                         ("costline.storage", "gs://data/datasets/vision-v1/")]}  # fmt: skip
    ran = {"workload_id": "4242", "kind": "training_run", "name": "vision-vit-l",
           "source": "slurm", "start": _ago(90),
           "end": _ago(ended) if ended is not None else None}  # fmt: skip
    return [declared, ran]


def test_without_access_times_only_data_whose_runs_all_ended_moves() -> None:
    """The inventory has no access times (as S3 Inventory): a training set its registry entry's
    runs still read, or data nobody declares, is left alone; data whose declared runs all ended
    60 days ago moves (2,000 x 0.016 = $32 at Coldline), with low confidence."""
    objects = [obj("data", f"datasets/vision-v1/part-{i}.bin", 500, modified=90, accessed=None)
               for i in range(4)]  # fmt: skip
    assert run(objects, GCS_LINE) == []  # nobody declares it
    assert run(objects, GCS_LINE, _vision(ended=None)) == []  # its run still reads it
    assert run(objects, GCS_LINE, _vision(ended=10)) == []  # read until 10 days ago
    [f] = run(objects, GCS_LINE, _vision(ended=60))
    assert money(f)[1] == "32.00" and f.evidence["confidence"] == "low"
    assert inputs_of(f)["cold_because"].startswith("declared by vision, whose runs all ended")
    assert "not written in 30+ days" in f.title


def test_an_expiry_rule_ten_days_away_makes_every_minimum_duration_cost_more() -> None:
    """The bucket deletes objects at 100 days and these are 90 days old: 10 days left, and
    Nearline charges 30 (0.01 x 3 > 0.02), Coldline 90, Archive 365: nothing pays."""
    objects = [obj("data", "tmp/run-cache/blob.bin", 1000, modified=90, accessed=60)]
    rule = [{"provider": "Google Cloud", "bucket": "data", "rule_id": "rule-0", "prefix": "",
             "enabled": True, "filtered_by_tag": False, "actions": "Delete after 100d"}]  # fmt: skip
    assert run(objects, GCS_LINE, rules=rule) == []
    [f] = run(objects, GCS_LINE)  # without the rule the same data moves
    assert inputs_of(f)["target_tier"] == "COLDLINE"


def test_colder_tiers_without_a_price_claim_nothing() -> None:
    """An S3 bucket whose bill shows Standard only ($0.023): no list price for S3 tiers, none
    in the bill, so moving the data is unpriced and nothing is claimed."""
    line = stored("s3data", "$0.023 per GB-Mo USE1-TimedStorage-ByteHrs", "0.023",
                  provider="AWS", region="us-east-1", rid="s3data")  # fmt: skip
    objects = [obj("s3data", "datasets/old/a.bin", 1000, modified=90, accessed=60,
                   provider="AWS")]  # fmt: skip
    assert run(objects, [line]) == []
    # once the bill shows what Glacier Instant Retrieval costs the organization, it is priced:
    gir = stored("archive", "$0.004 per GB-Mo USE1-TimedStorage-GIR-ByteHrs", "0.004",
                 provider="AWS", region="us-east-1", rid="archive")  # fmt: skip
    [f] = run(objects, [line, gir])
    got = inputs_of(f)
    assert got["target_tier"] == "GLACIER_IR" and money(f)[1] == "19.00"  # 1,000 x 0.019
    assert got["target_price_source"].startswith("bill: the organization's effective GLACIER_IR")
    assert got["unpriced_tiers"] == ["STANDARD_IA price", "GLACIER price", "DEEP_ARCHIVE price"]
    assert f.actions[0].text.startswith("Merge into the S3 lifecycle configuration of s3://s3data")


def test_an_ended_runs_deletions_count_when_its_tiering_is_unpriced() -> None:
    """S3, Standard from the bill only: the superseded checkpoints' $0.023/GB is saved; moving the
    kept ones is unpriced, said so, and the confidence drops a step."""
    objects, work = _lightning_run()
    objects = [{**o, "provider": "AWS", "bucket": "s3ckpt"} for o in objects]
    line = stored("s3ckpt", "USE1-TimedStorage-ByteHrs", "0.023", provider="AWS",
                  region="us-east-1", rid="s3ckpt")  # fmt: skip
    [f] = run(objects, [line], work)
    assert money(f) == ("115.00", "46.00", "46.00", "46.00")  # 2,000 GiB x 0.023
    assert f.evidence["unpriced"] == ["STANDARD_IA price", "GLACIER_IR price", "GLACIER price",
                                      "DEEP_ARCHIVE price"]  # fmt: skip
    assert f.evidence["confidence"] == "medium"  # high, a step down
    rules = inputs_of(f)["lifecycle"]["Rules"]
    assert [r["Expiration"] for r in rules] == [{"Days": 7}, {"Days": 7}]


def test_an_unpriced_current_tier_claims_nothing() -> None:
    assert run([obj("nobill", "datasets/a/x.bin", 1000, modified=90, accessed=60,
                    provider="AWS")], []) == []  # fmt: skip


def test_checkpoint_order_and_best() -> None:
    assert step_of("runs/x/global_step12000/") == 12000
    assert step_of("runs/x/epoch=3-step=1200.ckpt") == 1200
    now = END
    named = [(f"r/checkpoint-{s}/", now) for s in (500, 1000, 1500, 2000)]
    assert kept_checkpoints(named, 2) == {"r/checkpoint-1500/", "r/checkpoint-2000/"}
    accuracy = [
        ("r/step=1-val_acc=0.71.ckpt", now),
        ("r/step=2-val_acc=0.93.ckpt", now),
        ("r/step=3-val_acc=0.80.ckpt", now),
        ("r/step=4-val_acc=0.79.ckpt", now),
    ]
    assert kept_checkpoints(accuracy, 1) == {"r/step=2-val_acc=0.93.ckpt",
                                             "r/step=4-val_acc=0.79.ckpt"}  # fmt: skip
    assert "r/best/" in kept_checkpoints([("r/best/", now), ("r/step-9/", now)], 1)


def test_the_tier_catalog() -> None:
    nearline = tier_of("Google Cloud", "nearline")
    assert nearline is not None and [t.name for t in colder(nearline)] == ["COLDLINE", "ARCHIVE"]
    assert tier_of("AWS", "INTELLIGENT_TIERING") is None  # managed by S3: never a candidate
    p = list_price("gcp", "US", "STANDARD")
    assert p is not None and p.per_gb_month == Decimal("0.026")
    assert list_price("aws", "us-east-1", "STANDARD") is None


def test_the_kind_is_registered_and_every_kind_is_named_by_the_cli_help() -> None:
    hints = typing.get_type_hints(recommend_cmd, include_extras=True)
    help_text = hints["kind"].__metadata__[0].help
    assert KINDS["storage_tiering"] is recommend_storage_tiering
    assert [k for k in KINDS if k not in help_text] == []


def test_a_name_several_runs_share_is_one_runs_and_none_while_one_still_runs() -> None:
    """Keys name `llm-pretrain`, the name two ended runs share: the objects are the later run's,
    counted once. Once a third run of that name is running, the name says nothing: the folder is
    data (moved, nothing deleted)."""
    objects, _ = _lightning_run()
    objects = [{**o, "key": o["key"].replace("job-7", "llm-pretrain")} for o in objects]
    runs = [
        {
            "workload_id": wid,
            "kind": "training_run",
            "name": "llm-pretrain",
            "start": _ago(90),
            "end": _ago(days),
        }
        for wid, days in (("a-1", 60), ("a-2", 40))
    ]
    [f] = run(objects, GCS_LINE, runs)
    assert f.scope["run"] == "a-2" and money(f) == ("100.00", "96.40", "78.10", "96.40")
    running = {"workload_id": "a-3", "kind": "training_run", "name": "llm-pretrain",
               "start": _ago(2), "end": None}  # fmt: skip
    [f] = run(objects, GCS_LINE, [*runs, running])
    assert "run" not in f.scope and "deleted" not in inputs_of(f)
