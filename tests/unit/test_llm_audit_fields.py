"""What the token audit reads from LLM logs, under the names each format gives it: the
conversation (session, thread), the turn, a hash of the prompt, why the output stopped, and
prefix block ids; and the ledger migration that adds their columns."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from costline.config import LlmTrace
from costline.ledger import migrations
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.schema import LLM_REQUESTS
from costline.sources.llm import llm_file_source

AUDIT = ("conversation_id", "turn", "prompt_hash", "stop_reason", "prefix_hashes",
         "prefix_block_tokens")  # fmt: skip


def _rows(ledger: Ledger, path: Path, trace: LlmTrace | None = None) -> dict[str, dict[str, Any]]:
    ingest_files(ledger, [path], llm_file_source(trace))
    rel = ledger.con.sql(f"SELECT request_id, {', '.join(AUDIT)} FROM llm_requests")
    return {r["request_id"]: r for r in rel.fetch_arrow_table().to_pylist()}


def _lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _chat(
    rid: str, finish: str, messages: list[dict[str, str]] | None, **meta: Any
) -> dict[str, Any]:
    request: dict[str, Any] = {"model": "gpt-4.1", "max_tokens": 300}
    if messages is not None:
        request["messages"] = messages
    return {
        "timestamp": "2026-10-01T10:00:00Z", "request": request, "metadata": meta,
        "response": {"id": rid, "object": "chat.completion", "model": "gpt-4.1-2025-04-14",
                     "choices": [{"index": 0, "finish_reason": finish}],
                     "usage": {"prompt_tokens": 900, "completion_tokens": 300}},
    }  # fmt: skip


def test_openai_logs_give_finish_reason_session_turn_and_a_hash_of_the_messages(
    ledger: Ledger, tmp_path: Path
) -> None:
    question = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    other = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bye?"}]
    rows = _rows(ledger, _lines(tmp_path / "chat.jsonl", [
        _chat("c1", "length", question, session_id="s-1", turn=3),
        _chat("c2", "stop", question, conversation_id="conv-9", turn="4"),
        _chat("c3", "stop", other, thread_id="th-2"),
        _chat("c4", "stop", None),
    ]))  # fmt: skip
    assert (rows["c1"]["stop_reason"], rows["c1"]["conversation_id"], rows["c1"]["turn"]) == (
        "length", "s-1", 3)  # fmt: skip
    assert (rows["c2"]["conversation_id"], rows["c2"]["turn"]) == ("conv-9", 4)
    assert rows["c3"]["conversation_id"] == "th-2"
    assert rows["c1"]["prompt_hash"] == rows["c2"]["prompt_hash"] != rows["c3"]["prompt_hash"]
    assert len(rows["c1"]["prompt_hash"]) == 32 and rows["c4"]["prompt_hash"] is None
    assert "Hi?" not in json.dumps(rows)  # only the hash reaches the ledger


def test_responses_anthropic_otel_and_litellm_name_them_their_own_way(
    ledger: Ledger, tmp_path: Path
) -> None:
    responses = {
        "id": "resp_1", "object": "response", "created_at": 1759312800, "model": "gpt-4.1",
        "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
        "conversation": {"id": "conv_abc"},
        "usage": {"input_tokens": 100, "output_tokens": 64, "input_tokens_details": {}},
    }  # fmt: skip
    anthropic = {
        "timestamp": "2026-10-01T10:00:00Z",
        "request": {"max_tokens": 64, "system": "You review code.",
                    "messages": [{"role": "user", "content": "diff"}]},
        "response": {"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5",
                     "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 64}},
    }  # fmt: skip
    otel = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [{
        "spanId": "s1", "startTimeUnixNano": "1759312800000000000", "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
            {"key": "gen_ai.conversation.id", "value": {"stringValue": "otel-conv"}},
            {"key": "gen_ai.response.finish_reasons",
             "value": {"arrayValue": {"values": [{"stringValue": "length"}]}}}]}]}]}]}  # fmt: skip
    rows = _rows(ledger, _lines(tmp_path / "mixed.jsonl", [responses, anthropic]))
    assert (rows["resp_1"]["stop_reason"], rows["resp_1"]["conversation_id"]) == (
        "max_output_tokens", "conv_abc")  # fmt: skip
    assert rows["msg_1"]["stop_reason"] == "max_tokens" and rows["msg_1"]["prompt_hash"]
    (tmp_path / "otel.json").write_text(json.dumps(otel))
    rows = _rows(ledger, tmp_path / "otel.json")
    assert (rows["s1"]["conversation_id"], rows["s1"]["stop_reason"]) == ("otel-conv", "length")


def test_litellm_session_id_and_cache_key(ledger: Ledger, tmp_path: Path) -> None:
    head = ["request_id", "spend", "startTime", "model", "custom_llm_provider",
            "prompt_tokens", "completion_tokens", "session_id", "cache_key"]  # fmt: skip
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(head)
    out.writerow(["l1", "0.01", "2026-10-01T10:00:00Z", "gpt-4o", "openai", 10, 5, "sess-1",
                  "9f8e7d"])  # fmt: skip
    out.writerow(["l2", "0.01", "2026-10-01T10:01:00Z", "gpt-4o", "openai", 10, 5, "",
                  "Cache OFF"])  # fmt: skip
    (tmp_path / "spend.csv").write_text(buf.getvalue())
    rows = _rows(ledger, tmp_path / "spend.csv")
    assert (rows["l1"]["conversation_id"], rows["l1"]["prompt_hash"]) == ("sess-1", "9f8e7d")
    assert (rows["l2"]["conversation_id"], rows["l2"]["prompt_hash"]) == (None, None)


def test_a_plain_trace_reads_sessions_turns_finish_reasons_and_block_ids(
    ledger: Ledger, tmp_path: Path
) -> None:
    (tmp_path / "trace.csv").write_text(
        "timestamp,input,output,session_id,turn,finish_reason,hash_ids\n"
        "2026-10-01T10:00:00Z,1200,40,s1,1,stop,1 2 3\n"
        '2026-10-01T10:00:30Z,1700,80,s1,2,length,"[1, 2, 3, 4]"\n',
        encoding="utf-8",
    )
    trace = LlmTrace.model_validate({
        "columns": {"input_tokens": "input", "output_tokens": "output"},
        "default_model": "gpt-4o-mini", "block_tokens": 256,
    })  # fmt: skip
    rows = sorted(_rows(ledger, tmp_path / "trace.csv", trace).values(), key=lambda r: r["turn"])
    assert [(r["conversation_id"], r["turn"], r["stop_reason"]) for r in rows] == [
        ("s1", 1, "stop"), ("s1", 2, "length")]  # fmt: skip
    assert [r["prefix_hashes"] for r in rows] == [["1", "2", "3"], ["1", "2", "3", "4"]]
    assert [r["prefix_block_tokens"] for r in rows] == [256, 256]


def test_costline_migrate_adds_the_audit_columns_to_an_older_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    con = duckdb.connect(str(path))
    migrations.migrate(con, migrations.MIGRATIONS[:7])
    for name in AUDIT:  # as version 7 created llm_requests
        con.execute(f'ALTER TABLE llm_requests DROP COLUMN "{name}"')
    con.execute("INSERT INTO llm_requests (request_id, input_tokens) VALUES ('old', 5)")
    con.close()
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb:///{path}"}
    proc = subprocess.run([sys.executable, "-m", "costline", "migrate"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "schema version 8" in proc.stdout and migrations.LATEST == 8
    with Ledger(f"duckdb:///{path}", read_only=True) as led:
        columns = led.table("llm_requests").schema()
        assert all(columns[n] == LLM_REQUESTS[n] for n in AUDIT)
        assert led.con.execute("SELECT request_id, turn FROM llm_requests").fetchall() == [
            ("old", None)]  # fmt: skip
