"""Annotations: one from the command line (idempotent), files of them (YAML, CSV, JSONL), errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from costline.cli.workloads import record_annotation, register
from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources.annotations import ANNOTATIONS, Annotation, parse_scope, parse_time
from tests.helpers import FIXTURES

EVENTS = FIXTURES / "annotations"
UTC = dt.UTC


def test_annotate_twice_is_a_no_op(ledger: Ledger) -> None:
    note = Annotation(
        ts=dt.datetime(2025, 3, 2, 8, tzinfo=UTC),
        kind="deploy",
        text="fraud-scorer v7.2.0",
        scope={"model": "xgb-fraud-v7"},
    )
    first = record_annotation(ledger, note)
    again = record_annotation(ledger, note)
    assert (first["status"], again["status"]) == ("ingested", "duplicate")
    assert first["annotation_id"] == again["annotation_id"]
    rows = ledger.con.execute(
        'SELECT annotation_id, ts, "end", kind, scope, text, source FROM annotations'
    ).fetchall()
    assert rows == [
        (
            note.annotation_id,
            dt.datetime(2025, 3, 2, 8, tzinfo=UTC),
            None,
            "deploy",
            {"model": "xgb-fraud-v7"},
            "fraud-scorer v7.2.0",
            "cli",
        )
    ]
    other = Annotation(ts=note.ts, kind="deploy", text="fraud-scorer v7.2.1", scope=note.scope)
    assert record_annotation(ledger, other)["status"] == "ingested"


def test_annotate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costline.cli import main

    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    register(app, ingest_app)
    env = {"COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'l.duckdb'}"}
    # This bare app has no `--ledger` callback: point the CLI's state at the test ledger.
    monkeypatch.setattr(main.state, "ledger_url", env["COSTLINE_LEDGER"])
    monkeypatch.setattr(main.state, "ledger_explicit", True)
    args = [
        "annotate", "--kind", "deploy", "--scope", "model=llama3,env=prod", "--scope", "region=eu",
        "--at", "2025-03-01T10:00:00+01:00", "-f", "json", "llama3 v2 live",
    ]  # fmt: skip
    first = CliRunner().invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert '"status": "ingested"' in first.output and '"ts": "2025-03-01T09:00:00Z"' in first.output
    again = CliRunner().invoke(app, args, env=env)
    assert '"status": "duplicate"' in again.output
    bad = CliRunner().invoke(app, ["annotate", "--kind", "x", "--at", "noon", "t"], env=env)
    assert bad.exit_code == 2
    with Ledger(env["COSTLINE_LEDGER"]) as led:
        scope = led.con.execute("SELECT scope FROM annotations").fetchall()
    assert scope == [({"model": "llama3", "env": "prod", "region": "eu"},)]


def test_annotation_files(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [EVENTS], ANNOTATIONS)
    assert summary.rows == 6
    assert {f.dialect for f in summary.files} == {"csv", "jsonl", "yaml"}
    rows = ledger.con.execute(
        'SELECT ts, "end", kind, scope, text FROM annotations ORDER BY ts'
    ).fetchall()
    assert rows[0] == (
        dt.datetime(2025, 3, 1, 9, tzinfo=UTC),  # CSV, no zone: UTC
        None,
        "launch",
        {"model": "llama3-8b"},
        "llama3-8b pre-training launched, 8x H100 spot",
    )
    migration = next(r for r in rows if r[2] == "migration")
    assert migration[1] == dt.datetime(2025, 3, 5, tzinfo=UTC)
    assert migration[3] == {"cluster": "h100-east"}
    traffic = next(r for r in rows if r[2] == "traffic")
    assert traffic[0:2] == (
        dt.datetime(2025, 3, 4, 11, tzinfo=UTC),
        dt.datetime(2025, 3, 4, 13, tzinfo=UTC),
    )
    assert traffic[3] == {"endpoint": "fraud-scorer", "region": "eu"}
    assert [r[2] for r in rows[-2:]] == ["deploy", "incident"]
    again = ingest_files(ledger, [EVENTS], ANNOTATIONS)
    assert len(again.duplicates) == 3 and again.rows == 0


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("a.yaml", "- ts: 2025-03-01\n  kind: deploy\n  text: x\n- kind: deploy\n  text: y\n", r"a\.yaml, row 4, column ts"),
        ("b.yaml", "- ts: 2025-03-01\n  kind: deploy\n  text: x\n  colour: red\n", r"b\.yaml, row 1: unknown key\(s\) colour"),
        ("c.csv", "ts,kind,scope,text\n2025-03-01,deploy,model=a,x\n2025-03-02,deploy,oops,y\n", r"c\.csv, row 3, column scope"),
        ("d.jsonl", '{"ts": "2025-03-01", "kind": "k", "text": "t"}\n{"ts": "later", "kind": "k", "text": "t"}\n', r"d\.jsonl, row 2, column ts"),
        ("e.jsonl", '{"ts": "2025-03-01", "kind": "k", "text": "t"}\nnot json\n', r"e\.jsonl, row 2: invalid JSON"),
        ("f.yaml", "- ts: 2025-03-01\n  kind: [\n", r"f\.yaml:\d+: invalid YAML"),
    ],
)  # fmt: skip
def test_bad_annotation_files(
    tmp_path: Path, ledger: Ledger, name: str, text: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(IngestError, match=where):
        ingest_files(ledger, [path], ANNOTATIONS)
    assert ledger.con.execute("SELECT count(*) FROM annotations").fetchone() == (0,)


def test_parsers() -> None:
    assert parse_scope("model=a, env=prod") == {"model": "a", "env": "prod"}
    assert parse_scope('{"model": "a"}') == {"model": "a"}
    with pytest.raises(ValueError, match="key=value"):
        parse_scope("model")
    assert parse_time("2025-03-01") == dt.datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_time("2025-03-01T12:00:00-05:00") == dt.datetime(2025, 3, 1, 17, tzinfo=UTC)
