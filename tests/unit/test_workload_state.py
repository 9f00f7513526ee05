"""Workload sources are state: a newer dump, pull or registry file replaces what an older one said.

kubectl snapshots and sacct dumps keep each workload's newest state whatever order they are
ingested in; an edited registry file replaces the entries it declared before, so experiments and
their cap findings are listed once, with the new cap.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costline.attribution.registry import declared
from costline.budgets.experiments import cap_findings, experiment_rows
from costline.clock import FixedClock
from costline.config import Experiments
from costline.economics.declared import declared_costs
from costline.errors import IngestError
from costline.ledger import migrations
from costline.ledger.store import Ledger
from costline.model import Window
from costline.pipeline import ingest_files
from costline.sources.workloads import KUBERNETES, REGISTRY, SLURM
from tests.helpers import FIXTURES

UTC = dt.UTC
REGISTRY_YAML = FIXTURES / "registry" / "experiments.yaml"


def state(ledger: Ledger, source: str) -> dict[str, tuple[Any, ...]]:
    """workload_id -> (status, end, gpu_seconds, observed_at) of one source's rows."""
    found = ledger.con.execute(
        'SELECT workload_id, status, "end", gpu_seconds, observed_at FROM workloads '
        "WHERE source = ? ORDER BY workload_id",
        [source],
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in found}


def count(ledger: Ledger, source: str) -> int:
    [(n,)] = ledger.con.execute(
        "SELECT count(*) FROM workloads WHERE source = ?", [source]
    ).fetchall()
    return int(n)


# -- kubectl get pods -A -o json -------------------------------------------------------------------


def _pod(name: str, phase: str, created: str, started: str | None = None,
         finished: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A pod as `kubectl get pods -o json` prints it (the fields costline reads)."""
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": created}],
    }
    if started is not None:
        status["startTime"] = started
        state = {"running": {"startedAt": started}}
        if finished is not None:
            state = {"terminated": {"exitCode": 0, "startedAt": started, "finishedAt": finished}}
        status["containerStatuses"] = [{"name": "main", "ready": False, "state": state}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": created,
                     "labels": {"workload-type": "training"}},
        "spec": {"containers": [{"name": "main",
                                 "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
        "status": status,
    }  # fmt: skip


def _dump(path: Path, *pods: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(pods)}))
    return path


FINISHED = "2025-03-01T12:00:00Z"


@pytest.fixture
def snapshots(tmp_path: Path) -> tuple[Path, Path]:
    """At 10:15 `a` and `b` run; at 12:30 `a` has succeeded, `b` is gone and `c` is pending."""
    older = _dump(
        tmp_path / "pods-1015.json",
        _pod("a", "Running", "2025-03-01T09:59:00Z", "2025-03-01T10:00:00Z"),
        _pod("b", "Running", "2025-03-01T10:10:00Z", "2025-03-01T10:15:00Z"),
    )
    newer = _dump(
        tmp_path / "pods-1230.json",
        _pod("a", "Succeeded", "2025-03-01T09:59:00Z", "2025-03-01T10:00:00Z", FINISHED),
        _pod("c", "Pending", "2025-03-01T12:30:00Z"),
    )
    return older, newer


AT_1015 = dt.datetime(2025, 3, 1, 10, 15, tzinfo=UTC)
AT_1230 = dt.datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
NEWEST_PODS = {
    "ml/a": ("succeeded", dt.datetime(2025, 3, 1, 12, tzinfo=UTC), 2 * 7200.0, AT_1230),
    "ml/b": ("running", None, None, AT_1015),  # gone from the newer dump: its last known state
    "ml/c": ("pending", None, None, AT_1230),
}


def test_a_newer_kubectl_snapshot_replaces_the_pods_it_shows(
    ledger: Ledger, snapshots: tuple[Path, Path]
) -> None:
    older, newer = snapshots
    first = ingest_files(ledger, [older], KUBERNETES)
    assert first.rows == 2 and state(ledger, "kubernetes")["ml/a"][3] == AT_1015
    second = ingest_files(ledger, [newer], KUBERNETES)
    assert (second.rows, second.replaced_rows, second.superseded_rows) == (2, 1, 0)
    assert state(ledger, "kubernetes") == NEWEST_PODS


def test_an_older_kubectl_snapshot_ingested_later_changes_nothing_newer(
    ledger: Ledger, snapshots: tuple[Path, Path]
) -> None:
    older, newer = snapshots
    ingest_files(ledger, [newer], KUBERNETES)
    late = ingest_files(ledger, [older], KUBERNETES)
    # `a` stays succeeded; `b`, which the newer dump lacks, is added as last seen.
    assert (late.rows, late.replaced_rows, late.superseded_rows) == (2, 0, 1)
    assert state(ledger, "kubernetes") == NEWEST_PODS
    assert ingest_files(ledger, [older], KUBERNETES).duplicates == [str(older)]


def test_two_snapshots_in_one_command_keep_the_newest_whatever_their_order(
    ledger: Ledger, snapshots: tuple[Path, Path]
) -> None:
    older, newer = snapshots
    ingest_files(ledger, [newer, older], KUBERNETES)
    assert state(ledger, "kubernetes") == NEWEST_PODS


# -- sacct -P ------------------------------------------------------------------------------------

SACCT_HEADER = "JobID|JobName|AllocTRES|Submit|Start|End|State|Elapsed\n"
# 10:30: job 1 waits, job 2 runs for 1h30 so far; 12:00: 1 runs, 2 has ended; 13:00: 1 has ended.
SACCT_1030 = ("1|train|gres/gpu=4|2025-03-01T10:00:00|Unknown|Unknown|PENDING|00:00:00\n"
              "2|eval|gres/gpu=1|2025-03-01T08:55:00|2025-03-01T09:00:00|Unknown|RUNNING|01:30:00\n"
              "2.batch|batch|gres/gpu=1||2025-03-01T09:00:00|Unknown|RUNNING|01:30:00\n")  # fmt: skip
SACCT_1200 = ("1|train|gres/gpu=4|2025-03-01T10:00:00|2025-03-01T11:00:00|Unknown|RUNNING|01:00:00\n"
              "2|eval|gres/gpu=1|2025-03-01T08:55:00|2025-03-01T09:00:00|2025-03-01T11:30:00|"
              "COMPLETED|02:30:00\n")  # fmt: skip
SACCT_1300 = ("1|train|gres/gpu=4|2025-03-01T10:00:00|2025-03-01T11:00:00|2025-03-01T12:45:00|"
              "COMPLETED|01:45:00\n")  # fmt: skip


def test_sacct_dumps_out_of_order_keep_each_jobs_newest_state(
    ledger: Ledger, tmp_path: Path
) -> None:
    dumps = {}
    for name, body in (("1030", SACCT_1030), ("1200", SACCT_1200), ("1300", SACCT_1300)):
        dumps[name] = tmp_path / f"sacct-{name}.txt"
        dumps[name].write_text(SACCT_HEADER + body)
    at = {n: dt.datetime(2025, 3, 1, int(n[:2]), int(n[2:]), tzinfo=UTC) for n in dumps}
    ended = dt.datetime(2025, 3, 1, 12, 45, tzinfo=UTC)  # all the 13:00 dump can say of its time
    newest = {
        "1": ("completed", ended, 4 * 6300.0, ended),
        "2": ("completed", dt.datetime(2025, 3, 1, 11, 30, tzinfo=UTC), 9000.0, at["1200"]),
    }
    ingest_files(ledger, [dumps["1300"]], SLURM)
    late = ingest_files(ledger, [dumps["1030"]], SLURM)  # older than what job 1's row says
    assert (late.replaced_rows, late.superseded_rows) == (0, 1)
    assert state(ledger, "slurm")["2"] == ("running", None, 5400.0, at["1030"])  # new to it
    ingest_files(ledger, [dumps["1200"]], SLURM)
    assert state(ledger, "slurm") == newest
    # The other way round, all in one command, ends the same.
    with Ledger(f"duckdb:///{tmp_path / 'other.duckdb'}") as other:
        ingest_files(other, [dumps["1030"], dumps["1200"], dumps["1300"]], SLURM)
        assert state(other, "slurm") == newest


def test_a_running_job_in_two_dumps_keeps_the_longer_elapsed(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Both dumps show only `Start`; `Start + Elapsed` says which was taken later."""
    later, earlier = tmp_path / "later.txt", tmp_path / "earlier.txt"
    row = "7|train|gres/gpu=8|2025-03-01T07:00:00|2025-03-01T08:00:00|Unknown|RUNNING|{}\n"
    later.write_text(SACCT_HEADER + row.format("02:00:00"))
    earlier.write_text(SACCT_HEADER + row.format("01:00:00"))
    ingest_files(ledger, [later], SLURM)
    ingest_files(ledger, [earlier], SLURM)
    assert state(ledger, "slurm")["7"] == (
        "running", None, 8 * 7200.0, dt.datetime(2025, 3, 1, 10, tzinfo=UTC))  # fmt: skip


# -- the registry ----------------------------------------------------------------------------------


def _edited(path: Path, budget: str, *, drop_sweep: bool = False) -> Path:
    """The fixture registry at `path`, with llama's budget changed (and sweep-lr taken out)."""
    text = REGISTRY_YAML.read_text().replace("budget_usd: 12000", f"budget_usd: {budget}")
    if drop_sweep:
        text = text[: text.index("  - name: sweep-lr")]
    path.write_text(text)
    return path


def budgets_of(ledger: Ledger) -> dict[str, Decimal | None]:
    return {e.name: e.budget_usd for e in declared(ledger.table("workloads"))}


def test_an_edited_registry_replaces_its_entries(ledger: Ledger, tmp_path: Path) -> None:
    path = _edited(tmp_path / "registry.yaml", "12000")
    assert ingest_files(ledger, [path], REGISTRY).rows == 3
    again = ingest_files(ledger, [_edited(path, "9000")], REGISTRY)
    assert (again.rows, again.replaced_rows) == (3, 3)
    assert count(ledger, "registry") == 3
    assert budgets_of(ledger)["llama3-8b-pretrain"] == Decimal(9000)
    # An entry taken out of the file is gone.
    ingest_files(ledger, [_edited(path, "9000", drop_sweep=True)], REGISTRY)
    assert budgets_of(ledger) == {"fraud-scorer": Decimal("8000.5"),
                                  "llama3-8b-pretrain": Decimal(9000)}  # fmt: skip
    # The same bytes again change nothing; going back to an earlier version is that state again.
    same = ingest_files(ledger, [path], REGISTRY)
    assert (same.duplicates, same.rows) == ([str(path)], 0)
    back = ingest_files(ledger, [_edited(path, "12000")], REGISTRY)
    assert (back.duplicates, back.rows) == ([], 3)
    assert (
        budgets_of(ledger)["llama3-8b-pretrain"] == Decimal(12000)
        and count(ledger, "registry") == 3
    )


def test_registry_files_each_replace_their_own_entries(ledger: Ledger, tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("- name: ocr-ft\n  kind: fine_tune\n  budget_usd: 500\n")
    main = _edited(tmp_path / "registry.yaml", "12000")
    ingest_files(ledger, [main, team], REGISTRY)
    ingest_files(ledger, [_edited(main, "100", drop_sweep=True)], REGISTRY)
    assert budgets_of(ledger) == {"fraud-scorer": Decimal("8000.5"), "ocr-ft": Decimal(500),
                                  "llama3-8b-pretrain": Decimal(100)}  # fmt: skip
    # A name is one entry: declared by another file ingested later, it moves there.
    team.write_text("- name: ocr-ft\n  kind: fine_tune\n- name: fraud-scorer\n  kind: notebook\n")
    ingest_files(ledger, [team], REGISTRY)
    assert count(ledger, "registry") == 3 and budgets_of(ledger)["fraud-scorer"] is None
    # ... but two files of one ingestion may not both declare it.
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("- name: ocr-v2\n  kind: fine_tune\n")
    two.write_text("- name: asr\n  kind: fine_tune\n- name: ocr-v2\n  kind: training_run\n")
    with pytest.raises(
        IngestError, match=r"two.yaml: duplicate name 'ocr-v2': .*one.yaml declares"
    ):
        ingest_files(ledger, [one, two], REGISTRY)
    assert count(ledger, "registry") == 3


def test_an_edited_cap_lists_each_experiment_once_and_stores_its_findings_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A run that cost $90 against a $100 cap (80% reached), then the cap cut to $50 (80% and
    100%): one experiment row, one finding per level, titled with the new cap."""
    path = _edited(tmp_path / "registry.yaml", "100")
    ingest_files(ledger, [path], REGISTRY)
    clock = FixedClock(dt.datetime(2026, 10, 2, tzinfo=UTC))
    window = Window(start=dt.datetime(2026, 10, 1, tzinfo=UTC), end=clock.now())
    work = [{"workload": "ml/llama3-8b-pretrain-0", "gpu_hours": 10.0,
             "gpu_cost_usd": Decimal(90), "orchestration_usd": Decimal(0)}]  # fmt: skip
    linked = {"ml/llama3-8b-pretrain-0": "llama3-8b-pretrain"}

    def evaluate() -> tuple[list[dict[str, Any]], list[Any]]:
        t = {n: ledger.table(n) for n in ("cost_lines", "storage_objects", "metrics")}
        runs = declared_costs(declared(ledger.table("workloads")), linked, work, t["cost_lines"],
                              t["storage_objects"], t["metrics"], window.start, window.end)  # fmt: skip
        rows = experiment_rows(runs, [], linked, Experiments())
        found = cap_findings(rows, Experiments(), window, clock=clock)
        ledger.write([], source="budgets", findings=found)
        return rows, found

    rows, _ = evaluate()
    assert [(r["experiment"], r["cap_usd"], r["used_pct"]) for r in rows] == [
        ("llama3-8b-pretrain", Decimal("100.00"), Decimal("90.0"))]  # fmt: skip
    ingest_files(ledger, [_edited(path, "50")], REGISTRY)
    rows, found = evaluate()
    assert [(r["experiment"], r["cap_usd"], r["used_pct"]) for r in rows] == [
        ("llama3-8b-pretrain", Decimal("50.00"), Decimal("180.0"))]  # fmt: skip
    assert sorted(f.evidence["alert_pct"] for f in found) == ["100", "80"]
    assert len({f.fingerprint for f in found}) == len(found)
    stored = ledger.con.execute(
        "SELECT title FROM findings WHERE scope['experiment'] = 'llama3-8b-pretrain' ORDER BY 1"
    ).fetchall()
    assert stored == [("Experiment llama3-8b-pretrain used 180.0% of its $50.00 cap",)] * 2


# -- ledgers written before ----------------------------------------------------------------------


def test_migration_keeps_one_row_per_workload_and_scopes_old_registry_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger at schema 4 where the registry was ingested twice (the rows doubled) and a pod
    from two dumps: one row each after the upgrade (the latest ingestion's), and the next edit of
    the registry file replaces the entries it declared before (sweep-lr is taken out)."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    migrations.migrate(con, migrations.MIGRATIONS[:4])
    for hour, (ingestion, source, path) in enumerate([
        ("r1", "registry", "registry.yaml"), ("r2", "registry", "registry.yaml"),
        ("k1", "kubernetes", "pods-1.json"), ("k2", "kubernetes", "pods-2.json")]):  # fmt: skip
        con.execute("INSERT INTO ingestions (fingerprint, ingestion_id, source, path, ingested_at) "
                    "VALUES (?, ?, ?, ?, ?)", [f"fp-{ingestion}", ingestion, source, path,
                     dt.datetime(2025, 3, 1, hour, tzinfo=UTC)])  # fmt: skip
    for n, (wid, budget, ingestion) in enumerate([
        ("registry:llama3-8b-pretrain", 12000, "r1"), ("registry:sweep-lr", None, "r1"),
        ("registry:llama3-8b-pretrain", 9000, "r2"), ("registry:sweep-lr", None, "r2"),
        ("ml/a", None, "k2"), ("ml/a", None, "k1"),
    ]):  # fmt: skip
        source = "kubernetes" if ingestion.startswith("k") else "registry"
        con.execute("INSERT INTO workloads (workload_id, source, name, kind, budget_usd, status, "
                    "x_ingestion_id) VALUES (?, ?, ?, 'training_run', ?, ?, ?)",
                    [wid, source, wid.removeprefix("registry:"), budget, f"s{n}", ingestion])  # fmt: skip
    con.close()
    with Ledger(f"duckdb:///{db}") as ledger:
        assert ledger.schema_version() == migrations.LATEST
        rows = ledger.con.execute(
            "SELECT workload_id, budget_usd, status, source_path FROM workloads ORDER BY 1"
        ).fetchall()
        registry_path = str(tmp_path / "registry.yaml")
        assert rows == [("ml/a", None, "s4", None),
                        ("registry:llama3-8b-pretrain", Decimal(9000), "s2", registry_path),
                        ("registry:sweep-lr", None, "s3", registry_path)]  # fmt: skip
        ingest_files(ledger, [_edited(tmp_path / "registry.yaml", "500", drop_sweep=True)],
                     REGISTRY)  # fmt: skip
        assert budgets_of(ledger) == {"fraud-scorer": Decimal("8000.5"),
                                      "llama3-8b-pretrain": Decimal(500)}  # fmt: skip
