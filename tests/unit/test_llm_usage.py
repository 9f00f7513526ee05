"""`costline ingest llm`: every usage format detected and mapped, priced exactly as genai-prices."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from genai_prices import Usage, calc_price
from typer.testing import CliRunner

from costline.catalog.token_prices import PROVIDER_ALIASES, price_arrow
from costline.cli.usage import llm_source, register
from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sources.llm import parse_file
from costline.sources.llm.records import LlmRecord, to_arrow
from tests.helpers import FIXTURES

LLM_FIXTURES = FIXTURES / "llm"
ALL_FILES = {
    "openai_chat.jsonl": ("openai-chat", 6),
    "openai_responses.jsonl": ("openai-responses", 3),
    "anthropic_messages.jsonl": ("anthropic-messages", 5),
    "litellm_spendlogs.csv": ("litellm-spendlogs", 3),
    "litellm_spendlogs.json": ("litellm-spendlogs", 2),
    "otel_genai_spans.json": ("otel-genai", 4),
    "openai_usage_completions.json": ("openai-usage-api", 3),
    "azure_code_trace_300.jsonl": ("openai-chat", 300),
    "provider_responses_timestamped.jsonl": ("anthropic-messages+openai-chat", 3),
    "anthropic_stream.jsonl": ("anthropic-stream", 4),
}
Q18 = Decimal(1).scaleb(-18)


def rows(led: Ledger, where: str = "true") -> dict[str, dict[str, Any]]:
    rel = led.con.sql(
        f"SELECT * EXCLUDE (tags), CAST(tags AS JSON) AS tags FROM llm_requests WHERE {where}"
    )
    out = {}
    for r in rel.fetch_arrow_table().to_pylist():
        r["tags"] = json.loads(r["tags"]) if r["tags"] else {}
        out[r["request_id"]] = r
    return out


def ingest(led: Ledger, *names: str) -> Any:
    return ingest_files(led, [LLM_FIXTURES / n for n in names], llm_source())


@pytest.mark.parametrize(("name", "expected"), sorted(ALL_FILES.items()))
def test_each_format_is_detected(ledger: Ledger, name: str, expected: tuple[str, int]) -> None:
    summary = ingest(ledger, name)
    report = summary.files[0]
    assert (report.table, report.dialect, report.rows) == ("llm_requests", *expected)
    count = ledger.con.execute("SELECT count(*) FROM llm_requests").fetchone()
    assert count == (expected[1],)


def test_openai_prompt_tokens_already_include_cached_tokens(ledger: Ledger) -> None:
    ingest(ledger, "openai_chat.jsonl", "openai_responses.jsonl")
    got = rows(ledger)
    chat = got["chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"]
    assert (chat["input_tokens"], chat["cached_input_tokens"], chat["cache_write_tokens"]) == (
        1117,
        1024,
        0,
    )
    assert chat["ts"] == dt.datetime(2025, 3, 10, 1, 31, 23, tzinfo=dt.UTC)
    o3 = got["chatcmpl-o3a1"]  # a log record around the response: its metadata attributes it
    assert (o3["output_tokens"], o3["reasoning_tokens"], o3["max_tokens"]) == (1800, 1536, 4096)
    assert (o3["app"], o3["team"], o3["tenant"], o3["user"]) == (
        "support-bot",
        "cx",
        "acme",
        "u-417",
    )
    assert (o3["prompt_id"], o3["endpoint"], o3["latency_ms"]) == (
        "triage-v3",
        "/v1/triage",
        8423.5,
    )
    assert o3["tags"] == {"ticket": "T-1182"}
    resp = got["resp_0a1"]
    assert (resp["input_tokens"], resp["cached_input_tokens"], resp["output_tokens"]) == (
        15321,
        12800,
        2290,
    )
    assert resp["reasoning_tokens"] == 1984
    assert (
        got["resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"]["prompt_id"]
        == "pmpt_summarise"
    )
    assert got["resp_0a2"]["status"] == "incomplete"


def test_anthropic_input_is_the_sum_of_uncached_cache_read_and_cache_write(ledger: Ledger) -> None:
    ingest(ledger, "anthropic_messages.jsonl")
    got = rows(ledger)
    first = got["msg_013Zva2CMHLNnXjNJJKqJ2EF"]  # 2095 uncached + 2051 written to the cache
    assert (first["input_tokens"], first["cached_input_tokens"], first["cache_write_tokens"]) == (
        4146,
        0,
        2051,
    )
    second = got["msg_01XFDUDYJgAACzvnptvVoYEL"]  # 44 uncached + 2051 read from the cache
    assert (second["input_tokens"], second["cached_input_tokens"]) == (2095, 2051)
    assert (first["app"], first["team"], first["tenant"], first["endpoint"], first["user"]) == (
        "code-review",
        "platform",
        "globex",
        "/review",
        "u-55",
    )
    assert first["ts"] == dt.datetime(2025, 10, 1, 12, tzinfo=dt.UTC)
    assert got["msg_01Haiku"]["cached_input_tokens"] == 0


def _calc(record: LlmRecord) -> Decimal:
    return _calculation(record).total_price


def _calculation(record: LlmRecord) -> Any:
    provider = record.provider or ""
    usage = Usage(
        input_tokens=record.input_tokens,
        cache_read_tokens=record.cached_input_tokens or 0,
        cache_write_tokens=record.cache_write_tokens or 0,
        cache_write_1h_tokens=record.cache_write_1h_tokens or 0,
        output_tokens=record.output_tokens,
    )
    context = dict([record.price_context.split("=")]) if record.price_context else None
    price = calc_price(
        usage,
        record.model or "",
        provider_id=PROVIDER_ALIASES.get(provider, provider) or None,
        genai_request_timestamp=record.ts,
        price_context=context,
    )
    return price


@pytest.mark.parametrize("name", sorted(ALL_FILES))
def test_costs_equal_genai_prices_calc_price(name: str) -> None:
    _, records = parse_file(LLM_FIXTURES / name)
    priced, _ = price_arrow(to_arrow(records))
    by_id = {(r["request_id"], r["model"], r["ts"]): r for r in priced.to_pylist()}
    checked = 0
    for record in records:
        row = by_id[(record.request_id, record.model, record.ts)]
        try:
            calculation = _calculation(record)
        except LookupError:
            assert row["cost_usd"] is None and row["price_version"] is None
            assert row["output_cost_usd"] is None
            continue
        expected = calculation.total_price
        # The ledger holds 18 decimals; genai-prices keeps every digit (none of these has more).
        assert row["cost_usd"] == expected.quantize(Q18, rounding=ROUND_HALF_UP), record
        assert row["output_cost_usd"] == calculation.output_price.quantize(
            Q18, rounding=ROUND_HALF_UP
        )
        assert row["price_version"].startswith("genai-prices 0.2.3:")
        checked += 1
    assert checked >= len(records) - 2


def test_price_change_over_time_is_applied_by_timestamp(ledger: Ledger) -> None:
    ingest(ledger, "openai_chat.jsonl")
    got = rows(ledger)
    # o3: $10 in, $0.50 cached, $40 out per M until 2025-06-10, then $2 / $0.50 / $8.
    before, after = got["chatcmpl-o3a1"], got["chatcmpl-o3b2"]
    assert before["cost_usd"] == Decimal("0.08384")  # 1120 x 10 + 1280 x 0.5 + 1800 x 40, per M
    assert after["cost_usd"] == Decimal("0.01728")  # 1120 x 2 + 1280 x 0.5 + 1800 x 8, per M
    assert before["price_version"] == "genai-prices 0.2.3:openai/o3"
    assert after["price_version"] == "genai-prices 0.2.3:openai/o3@2025-06-10"


def test_cache_read_write_1h_and_long_context_prices(ledger: Ledger) -> None:
    ingest(ledger, "anthropic_messages.jsonl")
    got = rows(ledger)
    # Sonnet 4.5 per M: $3 in, $0.30 cache read, $3.75 cache write (5m), $15 out.
    assert got["msg_013Zva2CMHLNnXjNJJKqJ2EF"]["cost_usd"] == Decimal("0.02152125")
    assert got["msg_01XFDUDYJgAACzvnptvVoYEL"]["cost_usd"] == Decimal("0.0054273")
    # 250K total input > 200K: every token at the long-context tier ($6, $0.60, $7.50, 1h $12,
    # $22.50 out), 40K of the 60K writes at the 1h price.
    long = got["msg_01LongContext"]
    assert long["cost_usd"] == Decimal("1.644")
    assert long["price_version"].endswith("claude-sonnet-4-5>200000")
    # Opus 4.1: 3000 1h writes at $30, 9000 reads at $1.50, 1200 in at $15, 700 out at $75.
    assert got["msg_01Opus"]["cost_usd"] == Decimal("0.174")


def test_unknown_model_is_unpriced_and_reported(ledger: Ledger) -> None:
    summary = ingest(ledger, "openai_chat.jsonl")
    unpriced = ledger.con.execute(
        "SELECT count(*), count(cost_usd), count(price_version) FROM llm_requests "
        "WHERE model = 'gpt-9-experimental'"
    ).fetchone()
    assert unpriced == (2, 0, 0)  # NULL, never 0
    notes = summary.files[0].notes
    assert [n.kind for n in notes] == ["data_quality"]
    assert notes[0].title == "unpriced model openai/gpt-9-experimental"
    assert "2 request(s)" in (notes[0].summary or "")
    stored = ledger.con.execute("SELECT kind, title FROM findings").fetchall()
    assert stored == [("data_quality", "unpriced model openai/gpt-9-experimental")]


def test_usage_api_results_are_rollup_rows(ledger: Ledger) -> None:
    ingest(ledger, "openai_usage_completions.json")
    got = {
        r[0]: r[1:]
        for r in ledger.con.execute(
            "SELECT model, requests, input_tokens, cached_input_tokens, cost_usd, price_version, "
            "tags['project_id'] FROM llm_requests"
        ).fetchall()
    }
    mini = got["gpt-4o-mini-2024-07-18"]
    assert mini[:3] == (730, 1250000, 400000)
    # 850K uncached at $0.15, 400K cached at $0.075, 84K out at $0.60 per M.
    assert mini[3] == Decimal("0.2079") and mini[5] == "proj_abc"
    batch = got["gpt-4o-2024-08-06"]  # batch = true: the Batch API price variant
    assert batch[0] == 3000 and batch[4] == "genai-prices 0.2.3:openai/gpt-4o[processing=batch]"


def test_otlp_spans_map_and_skip_non_llm_spans(ledger: Ledger) -> None:
    ingest(ledger, "otel_genai_spans.json")
    got = rows(ledger)
    assert len(got) == 4  # the HTTP span is not an LLM call
    chat = got["chatcmpl-otel-1"]
    assert (chat["provider"], chat["model"], chat["max_tokens"]) == (
        "openai",
        "gpt-4o-2024-08-06",
        512,
    )
    assert (chat["latency_ms"], chat["status"], chat["app"], chat["team"], chat["tenant"]) == (
        1840.0,
        "ok",
        "checkout-assistant",
        "payments",
        "umbrella",
    )
    assert got["eee19b7ec3c1b175"]["provider"] == "anthropic"  # older gen_ai.system
    assert got["eee19b7ec3c1b176"]["status"] == "error"
    assert got["eee19b7ec3c1b178"]["cost_usd"] is not None  # aws.bedrock is genai-prices' aws


def test_litellm_spend_logs(ledger: Ledger) -> None:
    ingest(ledger, "litellm_spendlogs.csv")
    got = rows(ledger)
    first = got["chatcmpl-3f1c2a"]
    assert (first["provider"], first["model"], first["cached_input_tokens"]) == (
        "openai",
        "gpt-4o-mini",
        1024,
    )
    assert (first["team"], first["user"], first["app"], first["tenant"], first["prompt_id"]) == (
        "team-search",
        "u-123",
        "search-api",
        "initech",
        "rerank-v2",
    )
    assert first["latency_ms"] == pytest.approx(1250.0)
    assert first["tags"]["env"] == "prod" and first["tags"]["litellm_spend"] == "0.000435"
    claude = got["msg_0a9b8c"]  # provider from the model's prefix
    assert (claude["provider"], claude["model"], claude["cache_write_tokens"]) == (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        1000,
    )
    assert got["req-ft-001"]["cost_usd"] is None


def test_azure_trace_totals_and_cost(ledger: Ledger) -> None:
    ingest(ledger, "azure_code_trace_300.jsonl")
    with (LLM_FIXTURES / "azure_code_trace_300.csv").open() as fh:
        trace = list(csv.DictReader(fh))
    totals = ledger.con.execute(
        "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd) FROM llm_requests"
    ).fetchone()
    assert totals is not None
    assert totals[:3] == (
        300,
        sum(int(r["ContextTokens"]) for r in trace),
        sum(int(r["GeneratedTokens"]) for r in trace),
    )
    expected = sum(
        (
            calc_price(
                Usage(
                    input_tokens=int(r["ContextTokens"]), output_tokens=int(r["GeneratedTokens"])
                ),
                "gpt-4o-mini",
                provider_id="openai",
                genai_request_timestamp=dt.datetime(2023, 11, 16, tzinfo=dt.UTC),
            ).total_price
            for r in trace
        ),
        Decimal(0),
    )
    assert totals[3] == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "usage": {"prompt_tokens": 10', "line 2: not JSON"),
        (
            '{"id":"x","created":1751328000,"model":"gpt-4o","usage":{"prompt_tokens":10,'
            '"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":20}}}',
            "line 2: cache reads and writes (20) exceed the total input (10)",
        ),
        (
            '{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":5,"output_tokens":1}}',
            "line 2: timestamp is missing",
        ),
        (
            '{"id":"x","created":1751328000,"model":"gpt-4o","usage":{"prompt_tokens":-3,'
            '"completion_tokens":1}}',
            "line 2: usage.prompt_tokens must be a non-negative integer",
        ),
    ],
)
def test_malformed_record_names_file_and_line(
    ledger: Ledger, tmp_path: Path, line: str, message: str
) -> None:
    good = (LLM_FIXTURES / "openai_chat.jsonl").read_text().splitlines()[0]
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(IngestError) as info:
        ingest_files(ledger, [path], llm_source())
    assert str(path) in str(info.value) and message in str(info.value)
    assert info.value.exit_code == 2 and info.value.row == 2
    assert ledger.con.execute("SELECT count(*) FROM llm_requests").fetchone() == (0,)


def test_reingest_is_a_duplicate(ledger: Ledger) -> None:
    first = ingest(ledger, "anthropic_messages.jsonl")
    again = ingest(ledger, "anthropic_messages.jsonl")
    assert first.rows == 5 and again.rows == 0
    assert again.files[0].status == "duplicate"
    assert ledger.con.execute("SELECT count(*) FROM llm_requests").fetchone() == (5,)


def test_cli_ingest_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costline.cli import main

    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    register(app, ingest_app)
    monkeypatch.setattr(main.state, "ledger_url", f"duckdb:///{tmp_path / 'l.duckdb'}")
    monkeypatch.setattr(main.state, "ledger_explicit", True)
    result = CliRunner().invoke(
        app, ["ingest", "llm", str(LLM_FIXTURES / "openai_chat.jsonl"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows"] == 6 and data["files"][0]["dialect"] == "openai-chat"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    result = CliRunner().invoke(app, ["ingest", "llm", str(bad)])
    assert isinstance(result.exception, IngestError)  # main() turns it into exit code 2
    assert result.exception.exit_code == 2 and "line 1: not JSON" in str(result.exception)


def test_a_log_that_grew_is_read_again_without_counting_a_request_twice(
    ledger: Ledger, tmp_path: Path
) -> None:
    """A watched gateway log is appended to: read again, its old requests replace themselves;
    rollup rows (no request id) are never taken for one another."""
    lines = (LLM_FIXTURES / "anthropic_messages.jsonl").read_text().splitlines(keepends=True)
    log = tmp_path / "gateway.jsonl"
    log.write_text("".join(lines[:3]))
    assert ingest_files(ledger, [log], llm_source()).rows == 3
    log.write_text("".join(lines))  # two more requests appended
    assert ingest_files(ledger, [log], llm_source()).rows == 5
    [(n, distinct)] = ledger.con.execute(
        "SELECT count(*), count(DISTINCT request_id) FROM llm_requests"
    ).fetchall()
    assert n == distinct == 5
    rollup = tmp_path / "usage-again.json"
    rollup.write_text((LLM_FIXTURES / "openai_usage_completions.json").read_text() + "\n")
    first = ingest(ledger, "openai_usage_completions.json").rows
    assert ingest_files(ledger, [rollup], llm_source()).rows == first  # a copy: not replaced
    [(rollups,)] = ledger.con.execute(
        "SELECT count(*) FROM llm_requests WHERE request_id IS NULL"
    ).fetchall()
    assert rollups == 2 * first
