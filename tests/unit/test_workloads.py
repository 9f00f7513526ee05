"""Workloads from kubectl pod dumps, Slurm sacct and the YAML registry: mapped values, errors, idempotency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources.base import FileSource, SourceFile
from costline.sources.workloads import KUBERNETES, REGISTRY, SLURM, SLURM_SUFFIXES, mig
from costline.sources.workloads.registry import load_registry
from costline.sources.workloads.slurm import alloc_gpus, elapsed_seconds, job_status, slurm_reader
from tests.helpers import FIXTURES

PODS = FIXTURES / "kubernetes" / "pods.json"
SACCT = FIXTURES / "slurm" / "sacct.txt"
REGISTRY_YAML = FIXTURES / "registry" / "experiments.yaml"
UTC = dt.UTC


def rows(ledger: Ledger, source: str) -> dict[str, dict[str, Any]]:
    cur = ledger.con.execute(
        "SELECT * FROM workloads WHERE source = ? ORDER BY workload_id", [source]
    )
    names = [d[0] for d in cur.description]
    found = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    return {r["workload_id"]: r for r in found}


# -- kubernetes ------------------------------------------------------------------------------


def test_pods_map_to_workloads(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [PODS], KUBERNETES)
    assert summary.rows == 6
    got = rows(ledger, "kubernetes")
    kinds = {k: v["kind"] for k, v in got.items()}
    assert kinds == {
        "batch/nightly-embeddings-28990080-q2w9z": "batch_job",
        "data/ingest-worker-7f9c8d7b5-mq4lz": "pod",
        "kubeflow-user-alice/alice-nb-0": "notebook",
        "ml-research/bert-sweep-t17-worker-0": "training_run",
        "ml-research/llama3-8b-pretrain-0-x7k2p": "training_run",
        "serving/fraud-scorer-6d4cf56db6-2xkqz": "inference_endpoint",
    }
    train = got["ml-research/llama3-8b-pretrain-0-x7k2p"]
    assert train["name"] == "llama3-8b-pretrain"
    assert train["gpus_requested"] == Decimal("8")
    assert train["start"] == dt.datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    # The latest terminated container (the log shipper, 5 s after the trainer).
    assert train["end"] == dt.datetime(2025, 3, 1, 14, 30, 5, tzinfo=UTC)
    assert train["gpu_seconds"] == 8 * (4 * 3600 + 30 * 60 + 5)
    assert (train["status"], train["owner"], train["node"]) == (
        "succeeded",
        "alice",
        "ip-10-0-12-4.ec2.internal",
    )
    assert (train["gpu_model"], train["pool"], train["capacity_type"]) == (
        "NVIDIA-H100-80GB-HBM3",
        "h100-spot",
        "spot",
    )
    assert dict(train["tags"])["workload-type"] == "training"


def test_mig_requests_are_fractions_of_a_gpu(ledger: Ledger) -> None:
    ingest_files(ledger, [PODS], KUBERNETES)
    serving = rows(ledger, "kubernetes")["serving/fraud-scorer-6d4cf56db6-2xkqz"]
    # Two containers with one nvidia.com/mig-1g.10gb each (one by limits only): 2/7 of a GPU.
    assert serving["gpus_requested"] == Decimal("0.285714")
    assert serving["name"] == "fraud-scorer"  # the Deployment, not the ReplicaSet
    assert (serving["status"], serving["end"], serving["gpu_seconds"]) == ("running", None, None)
    assert serving["owner"] == "fraud"
    assert mig.fraction_of_resource("nvidia.com/mig-3g.40gb") == Fraction(3, 7)
    assert mig.fraction_of_resource("nvidia.com/mig-7g.80gb") == 1
    assert mig.fraction_of_resource("nvidia.com/mig-1g.10gb+me") == Fraction(1, 7)
    assert mig.fraction_of_resource("nvidia.com/mig-2g.12gb") == Fraction(1, 2)  # A30
    assert mig.fraction_of_resource("nvidia.com/gpu") is None


def test_cpu_pod_pending_pod_and_failed_job(ledger: Ledger) -> None:
    ingest_files(ledger, [PODS], KUBERNETES)
    got = rows(ledger, "kubernetes")
    cpu = got["data/ingest-worker-7f9c8d7b5-mq4lz"]
    assert (cpu["gpus_requested"], cpu["name"], cpu["owner"]) == (
        None,
        "ingest-worker",
        "data-platform",
    )
    pending = got["ml-research/bert-sweep-t17-worker-0"]
    assert (pending["status"], pending["start"], pending["node"]) == ("pending", None, None)
    assert pending["gpus_requested"] == 2
    failed = got["batch/nightly-embeddings-28990080-q2w9z"]
    assert (failed["status"], failed["capacity_type"], failed["pool"]) == (
        "failed",
        "on_demand",
        "g5-ondemand",
    )
    assert failed["gpu_seconds"] == 45 * 60 + 25


def test_bad_pod_dump_names_file_and_item(tmp_path: Path, ledger: Ledger) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"items": [\n  {"metadata": {"name": "a"}},\n  oops\n]}')
    with pytest.raises(IngestError, match=r"broken\.json.*line 3"):
        ingest_files(ledger, [broken], KUBERNETES)
    bad_time = tmp_path / "bad_time.json"
    bad_time.write_text(
        '{"kind": "List", "items": [{"metadata": {"name": "ok"}}, '
        '{"metadata": {"name": "p"}, "status": {"startTime": "yesterday"}}]}'
    )
    with pytest.raises(IngestError) as exc:
        ingest_files(ledger, [bad_time], KUBERNETES)
    assert (exc.value.path, exc.value.row, exc.value.column) == (
        str(bad_time),
        2,
        "status.startTime",
    )
    assert ledger.con.execute("SELECT count(*) FROM workloads").fetchone() == (0,)


# -- slurm -----------------------------------------------------------------------------------


def test_sacct_jobs_without_steps(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [SACCT], SLURM)
    got = rows(ledger, "slurm")
    assert summary.rows == len(got) == 9
    assert not [k for k in got if "." in k]
    assert {"4410180_3", "4410180_4", "4410180_[5-8]", "4410300+0", "4410300+1"} <= set(got)
    ft = got["4410021"]
    assert (ft["kind"], ft["gpus_requested"], ft["gpu_model"]) == ("fine_tune", 8, "h100")
    assert ft["gpu_seconds"] == 8 * (26 * 3600 + 30 * 60)
    assert (ft["user"], ft["account"], ft["partition"], ft["node"], ft["owner"]) == (
        "alice",
        "research",
        "gpu-h100",
        "gpu-h100-017",
        "alice",
    )
    assert dict(ft["tags"]) == {
        "wckey": "llm-ft",
        "workload-type": "fine_tune",
        "team": "research",
        "owner": "alice",
    }
    assert ft["start"] == dt.datetime(2025, 3, 1, 8, tzinfo=UTC)


def test_sacct_states_gpus_and_times(ledger: Ledger) -> None:
    ingest_files(ledger, [SACCT], SLURM)
    got = rows(ledger, "slurm")
    status = {k: v["status"] for k, v in got.items()}
    assert status["4410412"] == "cancelled"
    assert status["4410180_4"] == "failed"
    assert status["4410300+0"] == "running"
    assert status["4410500"] == "out_of_memory"
    assert status["4410180_[5-8]"] == "pending"
    sweep = got["4410180_3"]
    # Only a typed count (gres/gpu:a100=2): its sum and its type.
    assert (sweep["kind"], sweep["gpus_requested"], sweep["gpu_model"]) == (
        "sweep_trial",
        2,
        "a100",
    )
    assert sweep["gpu_seconds"] == 2 * (3600 + 15 * 60 + 30)
    running = got["4410300+0"]
    assert (running["end"], running["gpus_requested"], running["kind"]) == (
        None,
        16,
        "training_run",
    )
    assert running["gpu_seconds"] == 16 * (2 * 86400 + 4 * 3600)
    assert got["4410300+1"]["gpus_requested"] is None  # the CPU component of the het job
    pending = got["4410180_[5-8]"]
    assert (pending["start"], pending["end"], pending["node"]) == (None, None, None)
    cancelled = got["4410412"]
    assert dict(cancelled["tags"]) == {"comment": "nightly eval run"}
    assert cancelled["kind"] == "batch_job" and cancelled["gpu_seconds"] == 2530
    cpu = got["4410500"]
    assert (cpu["gpus_requested"], cpu["gpu_seconds"], cpu["tags"]) == (None, None, None)
    assert dict(got["4410501"]["tags"]) == {"comment": "a|b pipes in comment"}


def test_sacct_parsers() -> None:
    assert alloc_gpus("billing=8,cpu=8,gres/gpu:a100=2,gres/gpu=2,mem=64G") == (2, "a100")
    assert alloc_gpus("cpu=4,gres/gpu:l4=1,gres/gpu:t4=2") == (3, "l4")
    assert alloc_gpus("cpu=4,mem=8G") == (None, None)
    assert elapsed_seconds("2-04:00:00", {}) == 187200
    assert elapsed_seconds("05:07", {}) == 307
    assert elapsed_seconds("Unknown", {}) is None
    assert job_status("CANCELLED by 50123") == "cancelled"
    assert job_status("NODE_FAIL") == "node_fail"


def test_sacct_local_time_zone(tmp_path: Path, ledger: Ledger) -> None:
    source = FileSource("slurm", SLURM_SUFFIXES, slurm_reader("Europe/Paris"))
    ingest_files(ledger, [SACCT], source)
    start = rows(ledger, "slurm")["4410021"]["start"]
    assert start == dt.datetime(2025, 3, 1, 7, tzinfo=UTC)  # 08:00 CET


def test_bad_sacct_line_names_file_line_and_column(tmp_path: Path, ledger: Ledger) -> None:
    bad = tmp_path / "bad.txt"
    lines = SACCT.read_text().splitlines()
    lines[5] = lines[5].replace("01:15:30", "an hour")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError) as exc:
        ingest_files(ledger, [bad], SLURM)
    assert (exc.value.path, exc.value.row, exc.value.column) == (str(bad), 6, "Elapsed")
    short = tmp_path / "short.txt"
    short.write_text(lines[0] + "\n" + "123|x|u\n")
    with pytest.raises(IngestError, match=r"short\.txt, row 2: 3 fields"):
        ingest_files(ledger, [short], SLURM)
    nohdr = tmp_path / "nohdr.txt"
    nohdr.write_text("just text\n")
    with pytest.raises(IngestError, match="not sacct -P output"):
        ingest_files(ledger, [nohdr], SLURM)


def test_sacct_p_with_trailing_pipes(tmp_path: Path, ledger: Ledger) -> None:
    p = tmp_path / "sacct-p.txt"
    p.write_text(
        "JobID|JobName|AllocTRES|State|Elapsed|\n"
        "77|train|gres/gpu=4|COMPLETED|01:00:00|\n"
        "77.batch|batch|gres/gpu=4|COMPLETED|01:00:00|\n"
    )
    ingest_files(ledger, [p], SLURM)
    assert rows(ledger, "slurm")["77"]["gpu_seconds"] == 4 * 3600


def test_reingest_is_a_duplicate(ledger: Ledger) -> None:
    ingest_files(ledger, [SACCT], SLURM)
    ingest_files(ledger, [PODS], KUBERNETES)
    again = ingest_files(ledger, [SACCT], SLURM)
    assert again.duplicates == [str(SACCT)] and again.rows == 0
    assert ingest_files(ledger, [PODS], KUBERNETES).duplicates == [str(PODS)]
    assert ledger.con.execute("SELECT count(*) FROM workloads").fetchone() == (15,)


# -- registry --------------------------------------------------------------------------------


def test_registry_entries(ledger: Ledger) -> None:
    assert ingest_files(ledger, [REGISTRY_YAML], REGISTRY).rows == 3
    got = rows(ledger, "registry")
    llama = got["registry:llama3-8b-pretrain"]
    assert (llama["kind"], llama["owner"], llama["team"], llama["status"]) == (
        "training_run",
        "alice@example.com",
        "research",
        "declared",
    )
    assert llama["budget_usd"] == Decimal("12000")
    assert llama["ttl"] == dt.timedelta(hours=72)
    assert dict(llama["outputs"]) == {"tokens": 2.1e9}
    assert dict(llama["tags"]) == {
        "project": "support-llm",
        "cost-center": "4410",
        "team": "research",
        "costline.match.name": "llama3-8b-*",
    }
    fraud = got["registry:fraud-scorer"]
    assert fraud["budget_usd"] == Decimal("8000.50")
    assert fraud["ttl"] == dt.timedelta(days=90)
    assert dict(fraud["tags"])["costline.match.labels"] == "app=fraud-scorer,team=fraud"
    assert dict(fraud["outputs"])["resolved_alerts"] == 312
    sweep = got["registry:sweep-lr"]
    assert dict(sweep["tags"])["costline.match.name"] == "sweep-lr"  # no match: its own name
    assert sweep["outputs"] is None and sweep["ttl"] == dt.timedelta(days=14)


def test_registry_joins_observed_workloads(ledger: Ledger) -> None:
    """The documented join: name GLOB, or every label of the selector equal."""
    ingest_files(ledger, [PODS], KUBERNETES)
    ingest_files(ledger, [SACCT], SLURM)
    ingest_files(ledger, [REGISTRY_YAML], REGISTRY)
    joined = ledger.con.execute(
        """
        WITH r AS (SELECT name AS entry, tags FROM workloads WHERE source = 'registry'),
        w AS (SELECT workload_id, name, tags FROM workloads WHERE source <> 'registry')
        SELECT r.entry, w.workload_id FROM r JOIN w ON
          (r.tags['costline.match.name'] IS NULL OR w.name GLOB r.tags['costline.match.name'])
          AND (r.tags['costline.match.labels'] IS NULL OR list_bool_and(list_transform(
                string_split(r.tags['costline.match.labels'], ','),
                lambda t: coalesce(w.tags[split_part(t, '=', 1)] = split_part(t, '=', 2), false))))
        ORDER BY 1, 2
        """
    ).fetchall()
    assert joined == [
        ("fraud-scorer", "serving/fraud-scorer-6d4cf56db6-2xkqz"),
        ("llama3-8b-pretrain", "ml-research/llama3-8b-pretrain-0-x7k2p"),
        ("sweep-lr", "4410180_3"),
        ("sweep-lr", "4410180_4"),
        ("sweep-lr", "4410180_[5-8]"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        (
            "workloads:\n  - name: a\n    kind: training_run\n    ttl: soon\n",
            4,
            "workloads[0].ttl",
            "72h",
        ),
        ("- name: a\n  kind: gpu_party\n", 2, "[0].kind", "training_run"),
        (
            "workloads:\n  - name: a\n    kind: notebook\n    budget: 5\n",
            4,
            "workloads[0].budget",
            "unknown key",
        ),
        ("workloads:\n  - kind: notebook\n", 2, "workloads[0].name", "required key missing"),
        (
            "workloads:\n  - name: a\n    kind: notebook\n    match: {}\n",
            4,
            "workloads[0].match",
            "glob",
        ),
        (
            "workloads:\n  - name: a\n    kind: notebook\n  - name: a\n    kind: notebook\n",
            4,
            "workloads[1].name",
            "duplicate name",
        ),
    ],
)
def test_registry_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(IngestError) as exc:
        load_registry(SourceFile.of(path))
    assert f"{path}:{line}: {key}: " in str(exc.value)
    assert message in str(exc.value)


def test_ingest_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costline.cli import main
    from costline.cli.workloads import register

    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    register(app, ingest_app)
    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    monkeypatch.setattr(main.state, "ledger_url", url)
    monkeypatch.setattr(main.state, "ledger_explicit", True)
    runner = CliRunner()
    for args in (
        ["ingest", "kubernetes", str(PODS)],
        ["ingest", "slurm", str(SACCT), "--tz", "America/New_York"],
        ["ingest", "registry", str(REGISTRY_YAML)],
        ["ingest", "storage", str(FIXTURES / "storage"), "--checkpoint-pattern", "*.pt"],
        ["ingest", "annotations", str(FIXTURES / "annotations")],
    ):
        result = runner.invoke(app, [*args, "-f", "json"])
        assert result.exit_code == 0, (args, result.output)
    bad = tmp_path / "bad.txt"
    bad.write_text("JobID|State|Elapsed\n1|RUNNING|soon\n")
    failed = runner.invoke(app, ["ingest", "slurm", str(bad)])
    assert isinstance(failed.exception, IngestError) and failed.exception.exit_code == 2
    with Ledger(url) as led:
        counts = dict(
            led.con.execute("SELECT source, count(*) FROM workloads GROUP BY 1").fetchall()
        )
        assert counts == {"kubernetes": 6, "slurm": 9, "registry": 3}
        start = led.con.execute(
            "SELECT start FROM workloads WHERE workload_id = '4410021'"
        ).fetchone()
        assert start == (dt.datetime(2025, 3, 1, 13, tzinfo=UTC),)  # 08:00 EST
        assert led.con.execute(
            "SELECT count(*) FILTER (is_checkpoint) FROM storage_objects"
        ).fetchone() == (5,)  # *.pt only
        assert led.con.execute("SELECT count(*) FROM annotations").fetchone() == (6,)
