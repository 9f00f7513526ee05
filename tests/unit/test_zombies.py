"""Zombie resources: spend with no matching use, found from files ingested as a user loads them.

One small organization, written in real formats (a FOCUS export, a metrics CSV, DCGM exposition
with timestamps, `sacct -P`, a GCS inventory report) and ingested through the ledger's own paths,
holds one zombie of each shape and the look-alikes that are not zombies: an endpoint quiet at
weekends, one used weekly, a busy one, a nightly GPU batch job, a notebook idle for an evening,
the checkpoints of a run that ended last week, a bucket read every day.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costline.clock import FixedClock
from costline.config import load_config
from costline.detect.daily import detect_all
from costline.detect.zombies import DAYS_PER_MONTH, ZombieSettings, quiet_run
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.pipeline import ingest_files, ingest_focus
from costline.sources.dcgm_source import DCGM
from costline.sources.metrics import METRICS
from costline.sources.storage import STORAGE
from costline.sources.workloads import SLURM

END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # the daily run's end: bills through Oct 31
FIRST = dt.date(2026, 8, 1)
DAYS = (END.date() - FIRST).days
WINDOW = 60  # days a run reads
CENT = Decimal("0.01")
HOUR = dt.timedelta(hours=1)
QUIET_SINCE = dt.date(2026, 10, 12)  # fraud-scorer's last request was on Oct 11
UNREAD_SINCE = dt.date(2026, 10, 5)  # atlas-logs' last read was on Oct 4
PROMO_QUIET = (dt.date(2026, 10, 1), dt.date(2026, 10, 28))  # promo-api: quiet, then back
FORGOTTEN = dt.date(2026, 10, 10)  # eval-bot: deployed that day, never used since
IDLE_SINCE = dt.datetime(2026, 10, 30, 12, tzinfo=dt.UTC)  # job 5001's GPUs idle from then
H100_HOUR = Decimal("98.32")  # a p5.48xlarge hour (8 GPUs)
TIB = 2**40


def _days() -> Iterator[dt.date]:
    for i in range(DAYS):
        yield FIRST + dt.timedelta(days=i)


def _iso(ts: dt.datetime | dt.date) -> str:
    if not isinstance(ts, dt.datetime):
        ts = dt.datetime(ts.year, ts.month, ts.day, tzinfo=dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(
    start: dt.datetime | dt.date, cost: str, fields: dict[str, str], hours: int = 24
) -> dict[str, str]:
    """One FOCUS usage line of `hours` from `start`, in its billing month."""
    if not isinstance(start, dt.datetime):
        start = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    month = start.replace(day=1, hour=0)
    after = (month + dt.timedelta(days=32)).replace(day=1)
    return {
        "BillingAccountId": "acct-1", "BillingCurrency": "USD", "ChargeCategory": "Usage",
        "BillingPeriodStart": _iso(month), "BillingPeriodEnd": _iso(after),
        "ChargePeriodStart": _iso(start), "ChargePeriodEnd": _iso(start + hours * HOUR),
        "ProviderName": "AWS", "BilledCost": cost, "EffectiveCost": cost, **fields,
    }  # fmt: skip


def _endpoint(name: str, team: str) -> dict[str, str]:
    return {"ServiceName": "Amazon SageMaker", "ServiceCategory": "AI and Machine Learning",
            "ResourceId": f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}", "ResourceName": name,
            "ChargeDescription": "ml.g5.2xlarge hosting", "PricingUnit": "Hours",
            "ConsumedUnit": "Hours", "ConsumedQuantity": "24", "Tags": json.dumps({"team": team})}  # fmt: skip


def _bucket(name: str, team: str) -> dict[str, str]:
    return {"ResourceId": f"arn:aws:s3:::{name}", "ResourceName": name,
            "Tags": json.dumps({"team": team})}  # fmt: skip


S3 = {"ServiceName": "Amazon Simple Storage Service", "ServiceCategory": "Storage"}
STORED = {**S3, "ChargeDescription": "$0.023 per GB - first 50 TB / month of storage used",
          "PricingUnit": "GB-Months", "ConsumedUnit": "GB-Months", "ConsumedQuantity": "1000"}  # fmt: skip
GETS = {**S3, "ChargeDescription": "$0.0004 per 1,000 GET and all other requests",
        "PricingUnit": "Requests", "ConsumedUnit": "Requests", "ConsumedQuantity": "200000"}  # fmt: skip
COPY = {"ServiceName": "AWS Data Transfer", "ServiceCategory": "Networking",
        "ChargeDescription": "$0.02 per GB - US East (N. Virginia) data transfer to US West (Oregon)",
        "PricingUnit": "GB", "ConsumedUnit": "GB", "ConsumedQuantity": "3000"}  # fmt: skip
EGRESS = {**S3, "ChargeDescription": "$0.09 per GB - first 10 TB / month data transfer out beyond "
          "the global free tier", "PricingUnit": "GB", "ConsumedUnit": "GB",
          "ConsumedQuantity": "100"}  # fmt: skip
GCS = {"ProviderName": "Google Cloud", "ServiceName": "Cloud Storage", "ServiceCategory": "Storage",
       "ResourceId": "//storage.googleapis.com/projects/_/buckets/ml-prod-checkpoints",
       "ResourceName": "ml-prod-checkpoints", "ChargeDescription": "Standard Storage US Multi-region",
       "PricingUnit": "GiBy.mo", "ConsumedUnit": "GiBy.mo", "ConsumedQuantity": "1000",
       "Tags": json.dumps({"team": "research"})}  # fmt: skip
EC2 = {"ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute",
       "ChargeDescription": "p5.48xlarge On Demand", "Tags": json.dumps({"team": "research"})}  # fmt: skip


def _bills() -> list[dict[str, str]]:
    rows = []
    for d in _days():
        rows.append(_line(d, "96.00", _endpoint("fraud-scorer", "fraud")))
        rows.append(_line(d, "50.00", _endpoint("kyc-api", "risk")))
        rows.append(_line(d, "200.00", _endpoint("search-api", "search")))
        rows.append(_line(d, "30.00", _endpoint("weekly-report", "finance")))
        rows.append(_line(d, "40.00", _endpoint("promo-api", "growth")))
        if d >= FORGOTTEN:
            rows.append(_line(d, "150.00", _endpoint("eval-bot", "research")))
        rows.append(_line(d, "23.00", {**STORED, **_bucket("atlas-logs", "data")}))
        rows.append(_line(d, "60.00", {**COPY, **_bucket("atlas-logs", "data")}))
        if d < UNREAD_SINCE:
            rows.append(_line(d, "0.08", {**GETS, **_bucket("atlas-logs", "data")}))
        rows.append(_line(d, "23.00", {**STORED, **_bucket("web-assets", "web")}))
        rows.append(_line(d, "0.08", {**GETS, **_bucket("web-assets", "web")}))
        rows.append(_line(d, "9.00", {**EGRESS, **_bucket("web-assets", "web")}))
        rows.append(_line(d, "20.00", GCS))
    for h in range(72):  # the GPU hosts, hourly, Oct 29-31
        at = dt.datetime(2026, 10, 29, tzinfo=dt.UTC) + h * HOUR
        for host in ("gpu-h100-01", "gpu-h100-02"):
            host_line = {"ResourceId": f"i-{host}", "ResourceName": host, **EC2}
            rows.append(_line(at, str(H100_HOUR), host_line, hours=1))
        a10 = {"ResourceId": "i-gpu-a10-01", "ResourceName": "gpu-a10-01", **EC2}
        rows.append(_line(at, "1.29", a10, hours=1))
    return rows


def _requests(d: dt.date) -> dict[str, float]:
    weekend = d.weekday() >= 5
    return {
        "fraud-scorer": (3000.0 if weekend else 5000.0) if d < QUIET_SINCE else [0, 3, 0, 12][d.day % 4],
        "kyc-api": 0.0 if weekend else 2000.0,
        "search-api": 10000.0,
        "weekly-report": 500.0 if d.weekday() == 0 else 0.0,
        "promo-api": 0.0 if PROMO_QUIET[0] <= d < PROMO_QUIET[1] else 3000.0,
        **({"eval-bot": float(d.day % 3)} if d >= FORGOTTEN else {}),  # a probe or two a day
    }  # fmt: skip


SACCT = [
    "JobID|JobName|User|Account|Partition|AllocTRES|Start|End|State|Elapsed|NodeList|WCKey|Comment",
    "5001|llama-ft-stuck|alice|research|gpu-h100|gres/gpu=8,node=1|2026-10-29T00:00:00|Unknown|"
    "RUNNING|3-00:00:00|gpu-h100-01|*llm-ft|workload-type=fine_tune,team=research,owner=alice",
    "5010|llama-ft-old|alice|research|gpu-h100|gres/gpu=8,node=1|2026-09-01T00:00:00|"
    "2026-09-10T00:00:00|COMPLETED|9-00:00:00|gpu-h100-01|*llm-ft|workload-type=fine_tune,team=research,owner=alice",
    "5011|llama-ft-recent|alice|research|gpu-h100|gres/gpu=8,node=1|2026-10-20T00:00:00|"
    "2026-10-25T00:00:00|COMPLETED|5-00:00:00|gpu-h100-01|*llm-ft|workload-type=fine_tune,team=research,owner=alice",
    *[f"51{d:02d}|nightly-embed|svc|search|gpu-h100|gres/gpu=8,node=1|2026-10-{d:02d}T01:00:00|"
      f"2026-10-{d:02d}T03:00:00|COMPLETED|00:02:00|gpu-h100-02||workload-type=batch,team=search"
      for d in (29, 30, 31)],
    "5200|jupyter-bob|bob|vision|gpu-a10|gres/gpu=1,node=1|2026-10-29T00:00:00|Unknown|RUNNING|"
    "3-00:00:00|gpu-a10-01||workload-type=notebook,team=vision,owner=bob",
]  # fmt: skip


def _dcgm(path: Path, host: str, gpus: int, model: str,
          activity: Any) -> Path:  # fmt: skip
    """DCGM exposition with timestamps, every 5 minutes of Oct 29-31: `activity(ts)` gives
    (hpc job, GR engine activity) or None when nobody holds the host."""
    lines = ["# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.",
             "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge"]  # fmt: skip
    t0 = dt.datetime(2026, 10, 29, tzinfo=dt.UTC)
    for k in range(72 * 12):
        ts = t0 + dt.timedelta(minutes=5 * k)
        held = activity(ts)
        if held is None:
            continue
        job, value = held
        for g in range(gpus):
            labels = (f'gpu="{g}",UUID="GPU-{host}-{g}",modelName="{model}",Hostname="{host}",'
                      f'namespace="",pod="",container="",hpc_job="{job}"')  # fmt: skip
            lines.append(
                f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} {value} {int(ts.timestamp() * 1000)}"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _stuck(ts: dt.datetime) -> tuple[str, float]:
    return "5001", 0.9 if ts < IDLE_SINCE else 0.0


def _nightly(ts: dt.datetime) -> tuple[str, float] | None:
    return (f"51{ts.day:02d}", 0.95) if 1 <= ts.hour < 3 else None


def _notebook(ts: dt.datetime) -> tuple[str, float]:
    evening = ts >= dt.datetime(2026, 10, 31, 10, tzinfo=dt.UTC)  # idle for its last 14 hours
    return "5200", 0.0 if evening else 0.3


def _inventory(path: Path) -> Path:
    header = "project,bucket,name,location,size,timeCreated,updated,storageClass"
    keys = [*(f"llama-ft-old/checkpoints/step-{s}/model.safetensors" for s in (1000, 2000, 3000)),
            "llama-ft-recent/checkpoints/step-500/model.safetensors", "datasets/shared/x.bin"]  # fmt: skip
    rows = [f"acme,ml-prod-checkpoints,{k},US,{10 * TIB},2026-09-09T00:00:00Z,"
            "2026-09-09T00:00:00Z,STANDARD" for k in keys]  # fmt: skip
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zombies")
    metrics = [{"ts": _iso(d), "metric": "inference_requests", "value": v, "endpoint": name}
               for d in _days() for name, v in _requests(d).items()]  # fmt: skip
    (root / "sacct.txt").write_text("\n".join(SACCT) + "\n", encoding="utf-8")
    (root / "costline.yaml").write_text(
        "owners:\n  - name: fraud-oncall\n    match: {team: fraud}\n", encoding="utf-8"
    )
    h100 = "NVIDIA H100 80GB HBM3"
    with Ledger(f"duckdb://{root / 'ledger.duckdb'}") as ledger:
        ingest_focus(ledger, [_write_csv(root / "focus.csv", _bills())])
        ingest_files(ledger, [_write_csv(root / "requests.csv", metrics)], METRICS)
        ingest_files(ledger, [root / "sacct.txt"], SLURM)
        ingest_files(ledger, [_dcgm(root / "h100-01.txt", "gpu-h100-01", 8, h100, _stuck),
                              _dcgm(root / "h100-02.txt", "gpu-h100-02", 8, h100, _nightly),
                              _dcgm(root / "a10-01.txt", "gpu-a10-01", 1, "NVIDIA A10G", _notebook)],
                     DCGM)  # fmt: skip
        for day in ("2026-10-30", "2026-10-31"):  # the daily inventory reports
            ingest_files(ledger, [_inventory(root / f"ml-prod-checkpoints_inventory_{day}_0.csv")],
                         STORAGE)  # fmt: skip
    return root


def zombies(org: Path, end: dt.datetime) -> dict[str, Finding]:
    """The zombie findings of the daily run ending `end`, by resource."""
    with Ledger(f"duckdb://{org / 'ledger.duckdb'}", read_only=True) as ledger:
        found = detect_all(ledger, load_config(org / "costline.yaml"), end=end,
                           clock=FixedClock(end), days=WINDOW)  # fmt: skip
    out = {}
    for f in found:
        if f.evidence.get("pattern") == "zombie":
            out[str(f.evidence["resource"])] = f
    return out


@pytest.fixture(scope="module")
def found(org: Path) -> dict[str, Finding]:
    return zombies(org, END)


def _monthly(daily: str) -> Decimal:
    return (Decimal(daily) * DAYS_PER_MONTH).quantize(CENT)


def _check(f: Finding, *, owner: str, team: str, daily: str, since: str, savings: Decimal) -> None:
    """One zombie finding: an anomaly of its resource (first in its root cause, then its team),
    its owner, its cost a day, since when, and one action with its savings a month."""
    assert f.kind == "anomaly" and f.owner == owner, (f.kind, f.owner)
    assert f.evidence["daily_cost_usd"] == daily and f.evidence["since"] == since
    assert f.evidence["pattern"] == "zombie" and f.evidence["verdict"] == "waste"
    [(dimension, resource)] = f.scope.items()
    assert f.evidence["root_cause"] == [{"dimension": dimension, "value": resource},
                                        {"dimension": "team", "value": team}]  # fmt: skip
    [action] = f.actions
    assert action.estimated_monthly_savings_usd == savings


def test_an_endpoint_with_no_requests_while_billed_is_a_zombie(found: dict[str, Finding]) -> None:
    f = found["arn:aws:sagemaker:us-east-1:1:endpoint/fraud-scorer"]
    _check(f, owner="fraud-oncall", team="fraud", daily="96.00", since=QUIET_SINCE.isoformat(),
           savings=_monthly("96.00"))  # fmt: skip
    assert f.evidence["zombie"] == "idle_endpoint"
    assert f.evidence["signal"] == "metric:inference_requests"
    assert f.evidence["level_before_per_day"] == pytest.approx(
        4428.57, abs=0.01
    )  # 5000 wd, 3000 we
    assert f.evidence["peak_per_day_since"] == 12.0 and f.evidence["coverage"] == 1.0
    assert f.impact_usd == Decimal("96.00") * (END.date() - QUIET_SINCE).days  # accrued so far
    assert "fraud-scorer" in f.title and "Scale fraud-scorer to zero" in f.actions[0].text


def test_an_endpoint_deployed_and_never_used_is_a_zombie_from_its_first_day(
    found: dict[str, Finding],
) -> None:
    f = found["arn:aws:sagemaker:us-east-1:1:endpoint/eval-bot"]
    since = FORGOTTEN.isoformat()
    _check(f, owner="research", team="research", daily="150.00", since=since,
           savings=_monthly("150.00"))  # fmt: skip
    assert f.evidence["level_before_per_day"] == 0.0 and f.evidence["peak_per_day_since"] == 2.0


def test_an_endpoint_quiet_at_weekends_used_weekly_or_busy_is_not(
    found: dict[str, Finding],
) -> None:
    names = {str(f.evidence["resource_name"]).split(" ")[0] for f in found.values()}
    assert not names & {"kyc-api", "weekly-report", "search-api", "promo-api"}, names


def test_a_job_holding_gpus_idle_for_hours_is_a_zombie_priced_by_the_allocation(
    found: dict[str, Finding],
) -> None:
    f = found["5001"]
    daily = str(H100_HOUR * 24)
    _check(
        f,
        owner="alice",
        team="research",
        daily=daily,
        since=IDLE_SINCE.isoformat(),
        savings=_monthly(daily),
    )
    assert f.evidence["zombie"] == "idle_gpu" and f.evidence["idle_hours"] == 36
    assert f.evidence["gpus"] == 8 and f.evidence["coverage"] == 1.0
    assert f.impact_usd == H100_HOUR * 36  # 36 idle hours of the host's bill
    assert f.title.startswith("fine tune llama-ft-stuck (8 GPU)")


def test_a_nightly_batch_job_and_a_notebook_idle_for_an_evening_are_not(
    found: dict[str, Finding],
) -> None:
    assert not {"5129", "5130", "5131", "5200"} & set(found)


def test_replication_of_a_bucket_nobody_reads_is_a_zombie(found: dict[str, Finding]) -> None:
    f = found["atlas-logs"]
    since = UNREAD_SINCE.isoformat()
    _check(f, owner="data", team="data", daily="60.00", since=since, savings=_monthly("60.00"))
    assert f.evidence["zombie"] == "idle_replication" and f.evidence["signal"] == "bill:request"
    assert f.evidence["request_level_before_per_day"] == 200000.0
    assert "replication of atlas-logs" in f.actions[0].text
    assert "web-assets" not in found  # read every day


def test_checkpoints_of_a_run_that_ended_long_ago_are_a_zombie(found: dict[str, Finding]) -> None:
    f = found["gs://ml-prod-checkpoints/llama-ft-old"]
    gib = Decimal(30 * 1024)  # three 10 TiB checkpoints, at $0.02 a GiB-month
    monthly = (gib * Decimal("0.02")).quantize(CENT)
    daily = (gib * Decimal("0.02") / DAYS_PER_MONTH).quantize(CENT)
    _check(f, owner="alice", team="research", daily=str(daily), since="2026-09-10", savings=monthly)
    assert monthly == Decimal("614.40") and f.evidence["zombie"] == "ended_run_storage"
    assert f.evidence["run"] == "llama-ft-old" and f.evidence["objects"] == 3
    assert f.evidence["storage_class"] == "STANDARD"
    # the run that ended a week ago, and objects of no run, are not
    assert not [k for k in found if "llama-ft-recent" in k or "datasets" in k]


def test_a_zombie_is_the_same_finding_across_daily_runs_and_ends_when_use_returns(
    org: Path, found: dict[str, Finding]
) -> None:
    before = zombies(org, END - dt.timedelta(days=1))
    for key in ("arn:aws:sagemaker:us-east-1:1:endpoint/fraud-scorer", "5001", "atlas-logs",
                "gs://ml-prod-checkpoints/llama-ft-old"):  # fmt: skip
        assert before[key].fingerprint == found[key].fingerprint, key
    promo = "arn:aws:sagemaker:us-east-1:1:endpoint/promo-api"
    quiet = zombies(org, dt.datetime.combine(PROMO_QUIET[1], dt.time(), dt.UTC))
    assert quiet[promo].evidence["since"] == PROMO_QUIET[0].isoformat()
    assert promo not in found  # its traffic came back on Oct 28


def test_quiet_needs_a_week_and_longer_than_any_earlier_pause() -> None:
    s = ZombieSettings()
    fortnightly = ([100.0] + [0.0] * 13) * 4 + [100.0] + [0.0] * 12  # 12 quiet days: its usual
    assert quiet_run(fortnightly, s) is None
    assert quiet_run([*fortnightly, 0.0, 0.0], s) is not None  # 14: longer than its pauses
    gone = [100.0] * 30 + [0.5] * 7
    q = quiet_run(gone, s)
    assert q is not None and q.since == 30 and q.level == 100.0
    assert quiet_run([100.0] * 30 + [0.5] * 6, s) is None  # six days: a long weekend
    assert quiet_run([100.0] * 30 + [0.5] * 3 + [None] + [0.5] * 4, s) is None  # a gap in telemetry


def test_the_demo_flags_only_its_two_gpu_endpoints_that_serve_almost_nothing(
    tmp_path: Path,
) -> None:
    """On the demo's bills as `test_detect` ingests them, nothing is a zombie: there is no
    telemetry, and the bills meter no storage requests (a bucket is then not judged). With the
    demo's telemetry, exactly the two endpoints it keeps under 5% busy all day (`INFERENCE_PEAK`:
    "a demo endpoint that serves almost nothing", and a prototype) are: true zombies."""
    from costline.cli.demo import _activity_parts
    from costline.demo.activity import generate_activity
    from costline.demo.billing import generate_billing

    billing = generate_billing(tmp_path, seed=3, days=56)
    assert billing.successes_file is not None and billing.config_file is not None
    config = load_config(billing.config_file)
    end = billing.window_end

    def run(ledger: Ledger) -> list[Finding]:
        found = detect_all(ledger, config, end=end, clock=FixedClock(end), days=56)
        return [f for f in found if f.evidence.get("pattern") == "zombie"]

    with Ledger(f"duckdb://{tmp_path / 'ledger.duckdb'}") as ledger:
        ingest_focus(ledger, [tmp_path / f.path for f in billing.files])
        ingest_files(ledger, [billing.successes_file], METRICS)
        assert run(ledger) == []
        activity = generate_activity(tmp_path, billing, seed=3, telemetry_days=2)
        for _, files, source in _activity_parts(activity):
            ingest_files(ledger, files, source)
        found = run(ledger)
    names = sorted(str(f.evidence["resource_name"]) for f in found)
    assert names == ["inference endpoint gh200-rag-proto (1 GPU)",
                     "inference endpoint sdxl-demo-endpoint (2 GPU)"]  # fmt: skip
    assert all(f.evidence["zombie"] == "idle_gpu" and f.owner for f in found)
