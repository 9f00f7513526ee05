"""Prometheus as a source, against a real Prometheus backfilled with DCGM and kube-state-metrics.

Two hours at 60 s of: an H100 used by one pod, an A100 in MIG mode (a 3g.40gb slice used by a pod,
a 4g.40gb slice idle) and an L4 time-sliced by two pods; five pods in kube-state-metrics.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pulls import pull_dcgm, pull_kube_state_metrics
from costline.sources.prometheus import (
    DCGM_SERIES,
    Grid,
    PrometheusClient,
    grid,
    mig_profile,
    original_labels,
)
from tests.helpers import stop

pytestmark = pytest.mark.integration

T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(seconds=60)
POINTS = 120  # two hours
HOUR = dt.timedelta(hours=1)

# (labels, pods sharing it): the devices the exporter reports.
H100 = {
    "gpu": "0",
    "UUID": "GPU-aaaa",
    "device": "nvidia0",
    "modelName": "NVIDIA H100 80GB HBM3",
    "Hostname": "node-1",
}
A100 = {
    "gpu": "1",
    "UUID": "GPU-bbbb",
    "device": "nvidia1",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "Hostname": "node-1",
}
L4 = {
    "gpu": "0",
    "UUID": "GPU-cccc",
    "device": "nvidia0",
    "modelName": "NVIDIA L4",
    "hostname": "node-2",
}
DEVICES: list[tuple[dict[str, str], list[dict[str, str]]]] = [
    (H100, [{"namespace": "ml", "pod": "trainer-0", "container": "main"}]),
    (
        {**A100, "GPU_I_PROFILE": "3g.40gb", "GPU_I_ID": "1"},
        [{"namespace": "ml", "pod": "infer-a", "container": "srv"}],
    ),
    (
        {**A100, "GPU_I_PROFILE": "4g.40gb", "GPU_I_ID": "2"},
        [{"namespace": "", "pod": "", "container": ""}],
    ),
    (
        L4,
        [
            {"namespace": "inf", "pod": "ts-a", "container": "c"},
            {"namespace": "inf", "pod": "ts-b", "container": "c"},
        ],
    ),
]


def dcgm_value(metric: str, device: int, i: int) -> float:
    """A distinct, checkable value per metric, device and minute."""
    if metric == "DCGM_FI_DEV_GPU_UTIL":
        return float((i + 10 * device) % 100)
    if metric == "DCGM_FI_DEV_FB_USED":
        return 1000.0 * (device + 1)
    if metric == "DCGM_FI_DEV_FB_FREE":
        return 40000.0
    if metric == "DCGM_FI_DEV_POWER_USAGE":
        return 100.0 + device
    return round(((i + device) % 10) / 10, 2)  # the PROF ratios


DCGM_METRICS = DCGM_SERIES  # every series the pull asks for

# namespace, pod, uid, node, owner kind, owner name, labels, GPU resource requests
PODS = [
    (
        "ml",
        "trainer-0",
        "u1",
        "node-1",
        "PyTorchJob",
        "llm-pretrain",
        {"team": "research"},
        {"nvidia_com_gpu": 1},
    ),
    (
        "ml",
        "infer-a",
        "u2",
        "node-1",
        "ReplicaSet",
        "infer-7d9",
        {"app_kubernetes_io_component": "predictor", "pod_template_hash": "7d9"},
        {"nvidia_com_mig_3g_40gb": 1},
    ),
    (
        "inf",
        "ts-a",
        "u3",
        "node-2",
        "ReplicaSet",
        "embed-5c4",
        {"serving_kserve_io_inferenceservice": "embed"},
        {"nvidia_com_gpu": 1},
    ),
    ("inf", "ts-b", "u4", "node-2", "Job", "batch-embed", {}, {"nvidia_com_gpu": 1}),
    ("default", "web-1", "u5", "node-3", "ReplicaSet", "web-66f", {"app": "web"}, {}),
]
TS_B_DONE = 60  # ts-b succeeds after an hour


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _family(
    lines: list[str], name: str, series: list[tuple[dict[str, str], list[float | None]]]
) -> None:
    lines.append(f"# TYPE {name} gauge")
    for labels, values in series:
        for i, v in enumerate(values):
            if v is not None:
                lines.append(f"{name}{_labels(labels)} {v} {int(T0.timestamp()) + 60 * i}")


def openmetrics() -> str:
    lines: list[str] = []
    exporter = {"job": "dcgm-exporter", "instance": "10.0.0.1:9400"}
    for metric in DCGM_METRICS:
        series = [
            ({**exporter, **dev, **pod}, [dcgm_value(metric, d, i) for i in range(POINTS)])
            for d, (dev, pods) in enumerate(DEVICES)
            for pod in pods
        ]
        if metric == "DCGM_FI_DEV_POWER_USAGE":  # a series that names no GPU: skipped, and noted
            series.append((dict(exporter), [50.0] * POINTS))
        _family(
            lines, metric, [({k: v for k, v in lab.items() if v}, vals) for lab, vals in series]
        )
    start = int(T0.timestamp())
    every = [1.0] * POINTS

    def pod_series(
        extra: dict[str, str] | None = None,
    ) -> list[tuple[dict[str, str], list[float | None]]]:
        return [
            ({"namespace": ns, "pod": pod, "uid": uid, **(extra or {})}, list(every))
            for ns, pod, uid, *_ in PODS
        ]

    _family(
        lines,
        "kube_pod_info",
        [
            (
                {
                    "namespace": ns,
                    "pod": pod,
                    "uid": uid,
                    "node": node,
                    "created_by_kind": kind,
                    "created_by_name": owner,
                },
                list(every),
            )
            for ns, pod, uid, node, kind, owner, _, _ in PODS
        ],
    )
    _family(
        lines,
        "kube_pod_owner",
        [
            (
                {
                    "namespace": ns,
                    "pod": pod,
                    "uid": uid,
                    "owner_kind": kind,
                    "owner_name": owner,
                    "owner_is_controller": "true",
                },
                list(every),
            )
            for ns, pod, uid, _, kind, owner, _, _ in PODS
        ],
    )
    _family(
        lines,
        "kube_pod_labels",
        [
            (
                {
                    "namespace": ns,
                    "pod": pod,
                    "uid": uid,
                    **{f"label_{k}": v for k, v in labels.items()},
                },
                list(every),
            )
            for ns, pod, uid, _, _, _, labels, _ in PODS
        ],
    )
    _family(
        lines,
        "kube_pod_container_resource_requests",
        [
            (
                {
                    "namespace": ns,
                    "pod": pod,
                    "uid": uid,
                    "container": "main",
                    "node": node,
                    "resource": r,
                    "unit": "integer",
                },
                [float(n)] * POINTS,
            )
            for ns, pod, uid, node, _, _, _, requests in PODS
            for r, n in requests.items()
        ]
        + [
            (
                {
                    "namespace": "ml",
                    "pod": "trainer-0",
                    "uid": "u1",
                    "container": "main",
                    "node": "node-1",
                    "resource": "cpu",
                    "unit": "core",
                },
                [8.0] * POINTS,
            )
        ],
    )
    _family(
        lines,
        "kube_pod_start_time",
        [(lab, [float(start - 600)] * POINTS) for lab, _ in pod_series()],
    )
    done: list[float | None] = [None] * TS_B_DONE + [float(start + 60 * TS_B_DONE)] * (
        POINTS - TS_B_DONE
    )
    _family(
        lines,
        "kube_pod_completion_time",
        [({"namespace": "inf", "pod": "ts-b", "uid": "u4"}, done)],
    )
    phases = []
    for ns, pod, uid, *_ in PODS:
        for phase in ("Pending", "Running", "Succeeded"):
            if pod == "ts-b" and phase != "Pending":
                running = phase == "Running"
                vals = [1.0 if (i < TS_B_DONE) == running else 0.0 for i in range(POINTS)]
            else:
                vals = [1.0 if phase == "Running" else 0.0] * POINTS
            phases.append(({"namespace": ns, "pod": pod, "uid": uid, "phase": phase}, vals))
    _family(lines, "kube_pod_status_phase", phases)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on loopback, backfilled; started once for the module, always stopped."""
    if not (shutil.which("promtool") and shutil.which("prometheus")):
        pytest.skip("promtool and prometheus are not on PATH (Debian package `prometheus`)")
    root = tmp_path_factory.mktemp("prometheus")
    data = root / "data"
    source = root / "backfill.om"
    source.write_text(openmetrics())
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "prometheus.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url
    finally:
        stop(proc)
        log.close()


def _samples(ledger: Ledger) -> list[tuple[object, ...]]:
    return ledger.con.execute(
        "SELECT ts, gpu_uuid, mig_instance_id, pod, gpu_util, gr_engine_active, fb_used_mib, "
        "fb_total_mib, power_w, time_slice_share, sample_seconds, host, mig_profile, source "
        "FROM gpu_samples ORDER BY ALL"
    ).fetchall()


def test_pull_dcgm_values_and_incremental_watermark(prometheus: str, ledger: Ledger) -> None:
    first = pull_dcgm(ledger, prometheus, T0, T0 + HOUR, STEP)
    assert first.status == "ingested" and first.rows == 60 * 5
    # What the pull noticed is a data-quality Finding, stored with the rows.
    assert [n.kind for n in first.notes] == ["data_quality"]
    assert "DCGM_FI_DEV_POWER_USAGE" in first.notes[0].summary
    stored = ledger.con.execute("SELECT kind, scope['source'] FROM findings").fetchall()
    assert stored == [("data_quality", "prometheus")]
    assert (first.first, first.last) == (T0, T0 + HOUR - STEP)
    rows = _samples(ledger)
    at = {(r[1], r[2], r[3]): r for r in rows if r[0] == T0 + 7 * STEP}
    h100 = at[("GPU-aaaa", None, "trainer-0")]
    assert h100[4:11] == (0.07, 0.7, 1000.0, 41000.0, 100.0, 1.0, 60.0)
    assert (h100[11], h100[13]) == ("node-1", "prometheus")
    assert at[("GPU-bbbb", "1", "infer-a")][12] == "3g.40gb"
    idle = at[("GPU-bbbb", "2", None)]
    assert idle[12] == "4g.40gb" and idle[6] == 3000.0 and idle[9] == 1.0
    sliced = [at[("GPU-cccc", None, "ts-a")], at[("GPU-cccc", None, "ts-b")]]
    assert [r[9] for r in sliced] == [0.5, 0.5] and sliced[0][11] == "node-2"
    assert sliced[0][4] == pytest.approx((7 + 30) / 100)

    shares = ledger.con.execute(
        "SELECT ts, gpu_uuid, mig_instance_id, sum(time_slice_share) FROM gpu_samples GROUP BY ALL"
    ).fetchall()
    assert len(shares) == 60 * 4 and {s[3] for s in shares} == {1.0}

    again = pull_dcgm(ledger, prometheus, T0, T0 + HOUR, STEP)
    assert again.status == "up-to-date" and again.rows == 0
    assert _samples(ledger) == rows
    assert ledger.con.execute(
        "SELECT count(*) FROM ingestions WHERE source = 'prometheus'"
    ).fetchall() == [(1,)]

    later = pull_dcgm(ledger, prometheus, T0, T0 + 2 * HOUR, STEP)
    assert later.status == "ingested" and later.rows == 60 * 5
    assert (later.first, later.last) == (T0 + HOUR, T0 + 2 * HOUR - STEP)
    dupes = ledger.con.execute(
        "SELECT count(*) FROM (SELECT ts, gpu_uuid, mig_instance_id, pod, count(*) n "
        "FROM gpu_samples GROUP BY ALL HAVING n > 1)"
    ).fetchall()
    assert dupes == [(0,)] and len(_samples(ledger)) == 120 * 5


def test_chunked_pull_equals_one_request(prometheus: str, tmp_path: Path) -> None:
    with (
        Ledger(f"duckdb:///{tmp_path / 'a.duckdb'}") as one,
        Ledger(f"duckdb:///{tmp_path / 'b.duckdb'}") as chunked,
    ):
        pull_dcgm(one, prometheus, T0, T0 + 2 * HOUR, STEP)
        report = pull_dcgm(chunked, prometheus, T0, T0 + 2 * HOUR, STEP, max_points=7)
        assert report.rows == 600
        assert _samples(one) == _samples(chunked)


def _workloads(ledger: Ledger) -> dict[str, dict[str, object]]:
    cur = ledger.con.execute(
        'SELECT workload_id, name, kind, gpus_requested, gpu_seconds, status, "start", "end", node, '
        "namespace, tags, owner, source FROM workloads"
    )
    names = [d[0] for d in cur.description]
    return {str(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_pull_kube_state_metrics_workloads(prometheus: str, ledger: Ledger) -> None:
    early = pull_kube_state_metrics(ledger, prometheus, T0, T0 + HOUR / 2, STEP)
    assert early.status == "ingested" and early.rows == 5
    ts_b = _workloads(ledger)["inf/ts-b"]
    assert (ts_b["status"], ts_b["end"]) == ("running", None)

    full = pull_kube_state_metrics(ledger, prometheus, T0, T0 + 2 * HOUR, STEP)
    assert full.status == "ingested" and full.rows == 5 and full.replaced_rows == 5
    w = _workloads(ledger)
    assert set(w) == {"ml/trainer-0", "ml/infer-a", "inf/ts-a", "inf/ts-b", "default/web-1"}
    started = T0 - dt.timedelta(minutes=10)
    trainer = w["ml/trainer-0"]
    assert (trainer["kind"], trainer["name"], trainer["gpus_requested"]) == (
        "training_run",
        "llm-pretrain",
        Decimal("1.000000"),
    )
    assert (trainer["status"], trainer["start"], trainer["end"]) == ("running", started, None)
    assert (trainer["node"], trainer["namespace"], trainer["owner"]) == ("node-1", "ml", "research")
    assert trainer["tags"] == {"team": "research"} and trainer["source"] == "kube-state-metrics"
    infer = w["ml/infer-a"]
    # A 3g.40gb MIG slice is 3/7 of a GPU; the ReplicaSet's hash is cut from the name.
    assert (infer["kind"], infer["name"]) == ("inference_endpoint", "infer")
    assert infer["gpus_requested"] == Decimal("0.428571")
    assert infer["tags"]["mig_profile"] == "3g.40gb" and infer["tags"]["mig_slices"] == "1"
    assert w["inf/ts-a"]["kind"] == "inference_endpoint"  # labelled by KServe, sanitised by ksm
    ts_b = w["inf/ts-b"]
    assert (ts_b["kind"], ts_b["status"], ts_b["end"]) == ("batch_job", "succeeded", T0 + HOUR)
    assert ts_b["gpu_seconds"] == 4200.0  # 1 GPU from 23:50 to 01:00
    web = w["default/web-1"]
    assert (web["kind"], web["gpus_requested"], web["tags"]) == ("pod", None, {"app": "web"})

    again = pull_kube_state_metrics(ledger, prometheus, T0, T0 + 2 * HOUR, STEP)
    assert again.status == "duplicate" and again.rows == 0
    assert _workloads(ledger) == w


def test_an_older_kube_state_metrics_window_pulled_later_changes_nothing_newer(
    prometheus: str, ledger: Ledger
) -> None:
    """The whole two hours (ts-b succeeded), then the first half hour (ts-b running): each pod
    keeps the state of the newer window, observed at its last instant."""
    full = pull_kube_state_metrics(ledger, prometheus, T0, T0 + 2 * HOUR, STEP)
    w = _workloads(ledger)
    early = pull_kube_state_metrics(ledger, prometheus, T0, T0 + HOUR / 2, STEP)
    assert _workloads(ledger) == w
    assert (early.status, early.rows, early.replaced_rows, early.superseded_rows) == (
        "ingested", 5, 0, 5)  # fmt: skip
    ts_b = w["inf/ts-b"]
    assert (ts_b["status"], ts_b["end"]) == ("succeeded", T0 + HOUR)
    [(rows, observed)] = ledger.con.execute(
        "SELECT count(*), any_value(observed_at) FROM workloads"
    ).fetchall()
    assert (rows, observed) == (5, full.last) and full.last == T0 + 2 * HOUR - STEP


def test_cli_ingest_prometheus(
    prometheus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from costline.cli import main
    from costline.cli.telemetry import register

    monkeypatch.setattr(main.state, "ledger_url", f"duckdb:///{tmp_path / 'cli.duckdb'}")
    monkeypatch.setattr(main.state, "ledger_explicit", True)
    app, ingest = typer.Typer(), typer.Typer()
    app.add_typer(ingest, name="ingest")
    register(app, ingest)
    args = [
        "ingest",
        "prometheus",
        "--url",
        prometheus,
        "--start",
        "2025-06-01T00:00:00Z",
        "--end",
        "2025-06-01T02:00:00",
        "--step",
        "1m",
        "-f",
        "json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows"] == 600 + 5
    assert [f["status"] for f in data["files"]] == ["ingested", "ingested"]
    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert [f["status"] for f in again["files"]] == ["up-to-date", "duplicate"]
    bad = CliRunner().invoke(app, [*args[:-2], "--step", "soon"])
    assert bad.exit_code != 0 and isinstance(bad.exception, IngestError)


# -- no server needed --------------------------------------------------------------------------


def test_grid_is_step_aligned_half_open_and_after_the_watermark() -> None:
    g = grid(T0 + dt.timedelta(seconds=30), T0 + 3 * STEP, STEP)
    assert g is not None and g.instants == 2  # T0+60, T0+120; T0+180 is the open end
    after = grid(T0, T0 + 3 * STEP, STEP, after=T0 + STEP)
    assert after is not None and (after.first_us, after.instants) == (g.first_us + 60_000_000, 1)
    assert grid(T0, T0 + STEP, STEP, after=T0) is None
    chunks = list(Grid(0, 99 * 60_000_000, 60_000_000).chunks(30))
    assert [c.instants for c in chunks] == [30, 30, 30, 10]
    assert chunks[1].first_us == chunks[0].last_us + 60_000_000


def test_client_errors_are_ingest_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "status": "error",
                "errorType": "bad_data",
                "error": "exceeded maximum resolution",
            },
        )

    client = PrometheusClient(
        "http://prom:9090", httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(IngestError, match="exceeded maximum resolution"):
        client.query_range("up", Grid(0, 60_000_000, 60_000_000))

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = PrometheusClient("http://prom:9090", httpx.Client(transport=httpx.MockTransport(down)))
    with pytest.raises(IngestError, match="did not answer"):
        client.query_range("up", Grid(0, 60_000_000, 60_000_000))


def test_kube_state_metrics_spellings() -> None:
    assert mig_profile("nvidia_com_mig_1g_10gb") == "1g.10gb"
    assert mig_profile("nvidia_com_mig_1g_10gb_me") == "1g.10gb+me"
    assert mig_profile("nvidia_com_gpu") is None
    labels = original_labels({"app_kubernetes_io_component": "predictor", "team": "x"})
    assert labels["app.kubernetes.io/component"] == "predictor" and labels["team"] == "x"


def test_sync_pulls_a_configured_prometheus_from_its_watermark_on(
    prometheus: str, tmp_path: Path
) -> None:
    """`type: prometheus` in costline.yaml: the first sync pulls `first_pull_hours` back, the next
    one only what came after (the scheduler's incremental pull)."""
    from costline.clock import FixedClock
    from costline.config import parse_config
    from costline.sync import sync

    config = parse_config(
        f"sources: [{{type: prometheus, name: gpus, url: '{prometheus}', first_pull_hours: 1}}]\n"
    )
    clock = FixedClock(T0 + HOUR)
    with Ledger(f"duckdb:///{tmp_path / 'ledger.duckdb'}", clock=clock) as ledger:
        first = sync(ledger, config, clock=clock, env={})
        pulled = {p["source"]: p for p in first.pulled}
        assert pulled["gpus:dcgm"]["status"] == "ingested" and pulled["gpus:dcgm"]["rows"] == 60 * 5
        assert pulled["gpus:kube_state_metrics"]["status"] in ("ingested", "duplicate")
        clock.advance(minutes=30)
        second = {p["source"]: p for p in sync(ledger, config, clock=clock, env={}).pulled}
        assert second["gpus:dcgm"]["rows"] == 30 * 5  # from the watermark on, nothing twice
        assert len(_samples(ledger)) == 90 * 5
