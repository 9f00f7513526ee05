"""LLM logs as people write them: a provider response with its time beside it, Anthropic
streaming events, and plain request traces read with a column mapping (command line or config),
each priced exactly as genai-prices prices it at the request's own time."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from genai_prices import Usage, calc_price
from typer.testing import CliRunner

from costline.catalog.token_prices import GENAI_PRICES_VERSION
from costline.cli.usage import llm_source, register
from costline.clock import FixedClock
from costline.config import FilesSource, LlmTrace, example_yaml, load_config
from costline.errors import IngestError
from costline.ledger.store import Ledger
from costline.pipeline import ingest_files
from costline.sync import pull
from tests.helpers import FIXTURES

LLM = FIXTURES / "llm"
AZURE_MAP = ["--map", "input_tokens=ContextTokens", "--map", "output_tokens=GeneratedTokens"]


def rows(led: Ledger) -> dict[str, dict[str, Any]]:
    rel = led.con.sql("SELECT * EXCLUDE (tags), CAST(tags AS JSON) AS tags FROM llm_requests")
    out = {}
    for r in rel.fetch_arrow_table().to_pylist():
        r["tags"] = json.loads(r["tags"]) if r["tags"] else {}
        out[r["request_id"]] = r
    return out


def price(model: str, provider: str, ts: dt.datetime, **tokens: int) -> Decimal:
    """genai-prices' own price of one call (Usage: input_tokens is the total input)."""
    return calc_price(
        Usage(**tokens), model, provider_id=provider, genai_request_timestamp=ts
    ).total_price


def total(led: Ledger, where: str = "true") -> tuple[Any, ...]:
    got = led.con.execute(
        "SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd), "
        f"count(cost_usd), count(DISTINCT request_id) FROM llm_requests WHERE {where}"
    ).fetchone()
    assert got is not None
    return tuple(got)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`costline ingest llm ARGS...` on a ledger in tmp_path; returns the CliRunner result."""
    from costline.cli import main

    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    register(app, ingest_app)
    monkeypatch.setattr(main.state, "ledger_url", f"duckdb:///{tmp_path / 'l.duckdb'}")
    monkeypatch.setattr(main.state, "ledger_explicit", True)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, ["ingest", "llm", *args, "--format", "json"])

    yield invoke


def open_ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}")


# -- 1. a provider response with its time beside it ------------------------------------------------


def test_a_bare_response_with_its_timestamp_beside_it_is_one_request(ledger: Ledger) -> None:
    """Refused before ("timestamp is missing"): the time beside the response is read, in ISO or
    unix seconds, and an OpenAI chat.completion without `created` takes it too."""
    summary = ingest_files(ledger, [LLM / "provider_responses_timestamped.jsonl"], llm_source())
    assert summary.files[0].dialect == "anthropic-messages+openai-chat"
    got = rows(ledger)
    iso, epoch, chat = got["msg_01BareIso"], got["msg_01BareEpoch"], got["chatcmpl-BareTime"]
    when = dt.datetime(2025, 11, 4, 10, 15, tzinfo=dt.UTC)
    assert iso["ts"] == epoch["ts"] == when  # "2025-11-04T10:15:00Z" and 1762251300
    assert chat["ts"] == dt.datetime(2025, 11, 4, 10, 20, tzinfo=dt.UTC)  # 11:20+01:00
    assert (epoch["input_tokens"], epoch["cached_input_tokens"], epoch["app"]) == (
        4010,
        4000,
        "search",
    )
    assert epoch["stop_reason"] == "max_tokens"
    assert iso["cost_usd"] == price(
        "claude-haiku-4-5", "anthropic", when, input_tokens=820, output_tokens=96
    )
    assert epoch["cost_usd"] == price(
        "claude-sonnet-4-5", "anthropic", when, input_tokens=4010, cache_read_tokens=4000,
        output_tokens=250,
    )  # fmt: skip
    assert chat["cost_usd"] == price(
        "gpt-4o-mini", "openai", chat["ts"], input_tokens=1500, output_tokens=200
    )


# -- 2. Anthropic streaming events ----------------------------------------------------------------


def test_streaming_events_are_summed_into_one_request_per_message(ledger: Ledger) -> None:
    summary = ingest_files(ledger, [LLM / "anthropic_stream.jsonl"], llm_source())
    assert (summary.files[0].dialect, summary.rows) == ("anthropic-stream", 4)  # 19 lines
    got = rows(ledger)
    a = got["msg_01StreamA"]  # bare events, each with its own timestamp
    assert a["ts"] == dt.datetime(2025, 10, 3, 9, 0, 0, 120000, tzinfo=dt.UTC)
    assert (a["input_tokens"], a["cached_input_tokens"], a["output_tokens"]) == (4200, 3000, 412)
    assert (a["status"], a["stop_reason"]) == ("ok", "end_turn")
    b = got["msg_01StreamB"]  # interleaved with C, matched by the request_id beside each event
    # message_delta usage is cumulative: 120 then 260 is 260 output tokens, not 380.
    assert (b["input_tokens"], b["cache_write_tokens"], b["output_tokens"]) == (2300, 2000, 260)
    assert (b["app"], b["team"], b["max_tokens"]) == ("chat-ui", "growth", 1024)
    assert b["ts"] == dt.datetime(2025, 10, 3, 9, 0, 0, 500000, tzinfo=dt.UTC)
    c = got["msg_01StreamC"]
    assert (c["output_tokens"], c["max_tokens"], c["stop_reason"]) == (
        300,
        300,
        "max_tokens",
    )
    d = got["msg_01StreamD"]  # an overloaded error after message_start
    assert (d["status"], d["tags"]["error_type"], d["output_tokens"]) == (
        "error",
        "overloaded_error",
        1,
    )
    assert a["cost_usd"] == price(
        "claude-sonnet-4-5", "anthropic", a["ts"], input_tokens=4200, cache_read_tokens=3000,
        output_tokens=412,
    )  # fmt: skip
    assert b["cost_usd"] == price(
        "claude-haiku-4-5", "anthropic", b["ts"], input_tokens=2300, cache_write_tokens=2000,
        output_tokens=260,
    )  # fmt: skip
    assert c["cost_usd"] == price(
        "claude-sonnet-4-5", "anthropic", c["ts"], input_tokens=5000, output_tokens=300
    )


def test_a_stream_read_again_after_it_grew_counts_each_message_once(
    ledger: Ledger, tmp_path: Path
) -> None:
    lines = (LLM / "anthropic_stream.jsonl").read_text().splitlines(keepends=True)
    log = tmp_path / "stream.jsonl"
    log.write_text("".join(lines[:7]))  # stream A only
    assert ingest_files(ledger, [log], llm_source()).rows == 1
    log.write_text("".join(lines))
    assert ingest_files(ledger, [log], llm_source()).rows == 4
    again = ingest_files(ledger, [log], llm_source())
    assert (again.rows, again.files[0].status) == (0, "duplicate")
    assert total(ledger)[0] == total(ledger)[5] == 4


@pytest.mark.parametrize(
    ("lines", "message", "row"),
    [
        (  # two streams open, and a delta that names neither
            [7, 8, 11],
            "line 4: message_delta without a message id while 2 messages are streaming "
            "(started on lines 2, 3)",
            4,
        ),
        ([5], "line 2: message_delta before any message_start", 2),
    ],
)
def test_a_stream_event_that_cannot_be_placed_is_refused(
    ledger: Ledger, tmp_path: Path, lines: list[int], message: str, row: int
) -> None:
    source = (LLM / "anthropic_stream.jsonl").read_text().splitlines()
    unwrapped = [json.loads(source[i]) for i in lines]
    body = [json.dumps(u.get("data", u)) for u in unwrapped]  # no request_id beside the events
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "ping"}\n' + "\n".join(body) + "\n")
    with pytest.raises(IngestError) as info:
        ingest_files(ledger, [path], llm_source())
    assert str(path) in str(info.value) and message in str(info.value)
    assert (info.value.exit_code, info.value.row) == (2, row)
    assert total(ledger)[0] == 0


# -- 3. plain request traces ----------------------------------------------------------------------


def azure_rows() -> list[dict[str, str]]:
    with (LLM / "azure_code_trace_300.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_azure_trace_csv_from_the_command_line(cli: Any, tmp_path: Path) -> None:
    """The Azure trace names no model: --default-model prices it, at each request's own time
    (TIMESTAMP is found without a mapping); the same file again is a duplicate."""
    path = str(LLM / "azure_code_trace_300.csv")
    args = [path, *AZURE_MAP, "--default-model", "gpt-4o-mini", "--provider", "openai"]
    result = cli(*args, "--app", "code-completion")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["rows"], data["files"][0]["dialect"], data["files"][0]["notes"]) == (
        300,
        "trace",
        [],
    )
    trace = azure_rows()
    expected = sum(
        (
            price("gpt-4o-mini", "openai",
                  dt.datetime.fromisoformat(r["TIMESTAMP"]).replace(tzinfo=dt.UTC),
                  input_tokens=int(r["ContextTokens"]), output_tokens=int(r["GeneratedTokens"]))
            for r in trace
        ),
        Decimal(0),
    )  # fmt: skip
    with open_ledger(tmp_path) as led:
        assert total(led) == (
            300,
            sum(int(r["ContextTokens"]) for r in trace),
            sum(int(r["GeneratedTokens"]) for r in trace),
            expected,
            300,
            300,
        )
        first = led.con.execute(
            "SELECT ts, app, provider, model, status, price_version FROM llm_requests "
            "ORDER BY ts LIMIT 1"
        ).fetchone()
    assert first == (
        dt.datetime(2023, 11, 16, 18, 17, 3, 979960, tzinfo=dt.UTC),
        "code-completion",
        "openai",
        "gpt-4o-mini",
        "ok",
        f"genai-prices {GENAI_PRICES_VERSION}:openai/gpt-4o-mini",
    )
    again = json.loads(cli(*args).stdout)
    assert (again["rows"], again["files"][0]["status"]) == (0, "duplicate")


def test_a_trace_that_grew_is_read_again_without_counting_a_request_twice(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Without a request id column each row's id comes from its content, so the first 100 rows
    read again (in a file of 300) replace themselves."""
    spec = LlmTrace(
        columns={"input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"},
        default_model="gpt-4o-mini",
    )
    lines = (LLM / "azure_code_trace_300.csv").read_text().splitlines(keepends=True)
    log = tmp_path / "trace.csv"
    log.write_text("".join(lines[:101]))
    assert ingest_files(ledger, [log], llm_source(spec)).rows == 100
    log.write_text("".join(lines))
    assert ingest_files(ledger, [log], llm_source(spec)).rows == 300
    assert total(ledger)[0] == total(ledger)[5] == 300


def test_mooncake_trace_from_config_with_offsets_from_a_time_origin(tmp_path: Path) -> None:
    """Mooncake's `timestamp` is ms since the trace began: a time origin and unit place it."""
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "kimi.jsonl").write_bytes(
        (LLM / "mooncake_trace_300.jsonl").read_bytes()
    )
    trace = {
        "columns": {"input_tokens": "input_length", "output_tokens": "output_length"},
        "default_model": "kimi-k2", "provider": "moonshotai", "app": "kimi-chat",
        "time_origin": "2025-08-01T00:00:00Z", "time_unit": "ms",
    }  # fmt: skip
    doc = {"sources": [{"type": "files", "name": "kimi", "format": "llm",
                        "paths": ["traces/*.jsonl"], "trace": trace}]}  # fmt: skip
    (tmp_path / "costline.yaml").write_text(yaml.safe_dump(doc))
    config = load_config(tmp_path / "costline.yaml")
    clock = FixedClock(dt.datetime(2025, 9, 1, tzinfo=dt.UTC))
    with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}", clock=clock) as led:
        assert pull(led, config, clock) == [
            {"source": "kimi", "status": "ingested", "files": 1, "rows": 300}
        ]
        origin = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
        source = [json.loads(line) for line in (LLM / "mooncake_trace_300.jsonl").open()]
        expected = sum(
            (
                price("kimi-k2", "moonshotai", origin + dt.timedelta(milliseconds=r["timestamp"]),
                      input_tokens=r["input_length"], output_tokens=r["output_length"])
                for r in source
            ),
            Decimal(0),
        )  # fmt: skip
        assert total(led) == (
            300,
            sum(r["input_length"] for r in source),
            sum(r["output_length"] for r in source),
            expected,
            300,
            300,
        )
        span = led.con.execute(
            "SELECT min(ts), max(ts), any_value(app) FROM llm_requests"
        ).fetchone()
        assert span == (
            origin,
            origin + dt.timedelta(milliseconds=source[-1]["timestamp"]),
            "kimi-chat",
        )
        assert pull(led, config, clock)[0]["status"] == "up-to-date"


def test_a_trace_model_genai_prices_does_not_know_is_unpriced_never_zero(
    ledger: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.csv"
    path.write_text(
        "time,model,prompt,completion,cached,service\n"
        "2025-09-01T10:00:00Z,gpt-4o,1000,100,200,search\n"
        "2025-09-01T10:00:01Z,,2000,50,,search\n"  # no model: the default one
        "2025-09-01T10:00:02Z,in-house-llm-7b,3000,10,0,ranker\n"
    )
    spec = LlmTrace(
        columns={"input_tokens": "prompt", "output_tokens": "completion",
                 "cached_input_tokens": "cached", "app": "service"},
        default_model="gpt-4o-mini", provider="openai",
    )  # fmt: skip
    summary = ingest_files(ledger, [path], llm_source(spec))
    got = {r["model"]: r for r in rows(ledger).values()}
    at = dt.datetime(2025, 9, 1, 10, tzinfo=dt.UTC)
    assert got["gpt-4o"]["cost_usd"] == price(
        "gpt-4o", "openai", at, input_tokens=1000, cache_read_tokens=200, output_tokens=100
    )
    assert got["gpt-4o-mini"]["cost_usd"] == price(
        "gpt-4o-mini", "openai", at + dt.timedelta(seconds=1), input_tokens=2000, output_tokens=50
    )
    unknown = got["in-house-llm-7b"]
    assert (unknown["cost_usd"], unknown["price_version"], unknown["app"]) == (None, None, "ranker")
    [note] = summary.files[0].notes
    assert note.title == "unpriced model openai/in-house-llm-7b"
    assert "1 request(s)" in (note.summary or "")


AZURE_HEAD = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZURE_COLUMNS = {"input_tokens": "ContextTokens", "output_tokens": "GeneratedTokens"}
BAD_TRACES = [  # (file, columns, the error after "FILE: ", its line, its column)
    (AZURE_HEAD + "2023-11-16 18:17:03,10,2\n2023-11-16 18:17:04,lots,2\n", AZURE_COLUMNS,
     "line 3: column ContextTokens: input_tokens must be a non-negative integer, got 'lots'",
     3, "ContextTokens"),
    (AZURE_HEAD + "2023-11-16 18:17:03,10,\n", AZURE_COLUMNS,
     "line 2: column GeneratedTokens: output_tokens is missing", 2, "GeneratedTokens"),
    (AZURE_HEAD + "yesterday,10,2\n", AZURE_COLUMNS,
     "line 2: column TIMESTAMP: not a time: 'yesterday'", 2, "TIMESTAMP"),
    (AZURE_HEAD + "2023-11-16 18:17:03,10,2\n", {**AZURE_COLUMNS, "output_tokens": "Generated"},
     "line 1: column Generated: mapped to output_tokens, but the file's columns are "
     "TIMESTAMP, ContextTokens, GeneratedTokens", 1, "Generated"),
    (AZURE_HEAD + "2023-11-16 18:17:03,10,2\n", {"input_tokens": "ContextTokens"},
     "line 1: no column for output_tokens: map one (--map output_tokens=COLUMN", 1, None),
    ("timestamp,input_tokens,output_tokens\n27,10,2\n", {},
     "line 2: column timestamp: 27 is not a unix time (it is before 2000): if times are "
     "offsets from the trace's start, give a time origin", 2, "timestamp"),
    ("ts,input_tokens,output_tokens,cached_input_tokens\n2025-01-01,10,2,11\n", {},
     "line 2: cache reads and writes (11) exceed the total input (10)", 2, None),
]  # fmt: skip


@pytest.mark.parametrize(("body", "columns", "message", "row", "column"), BAD_TRACES)
def test_a_bad_trace_row_names_file_line_and_column_and_writes_nothing(
    ledger: Ledger, tmp_path: Path, body: str, columns: dict[str, str], message: str, row: int,
    column: str | None,
) -> None:  # fmt: skip
    path = tmp_path / "trace.csv"
    path.write_text(body)
    spec = LlmTrace.model_validate({"columns": columns, "default_model": "gpt-4o-mini"})
    with pytest.raises(IngestError) as info:
        ingest_files(ledger, [path], llm_source(spec))
    assert str(info.value).startswith(f"{path}: {message}")
    assert (info.value.exit_code, info.value.row, info.value.column) == (2, row, column)
    assert total(ledger)[0] == 0


def test_a_trace_without_a_model_needs_one(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"ts": "2025-01-01T00:00:00Z", "input_tokens": 5, "output_tokens": 1}\n')
    with pytest.raises(IngestError, match="line 1: column model: model is missing"):
        ingest_files(ledger, [path], llm_source(LlmTrace()))


def test_trace_options_are_checked(cli: Any) -> None:
    path = str(LLM / "azure_code_trace_300.csv")
    bad_field = cli(path, "--map", "tokens=ContextTokens")
    assert bad_field.exit_code == 2 and "FIELD=COLUMN" in bad_field.output
    bad_unit = cli(path, *AZURE_MAP, "--default-model", "gpt-4o-mini", "--time-unit", "h")
    assert bad_unit.exit_code == 2 and "--time-unit" in bad_unit.output
    missing = cli(path, "--default-model", "gpt-4o-mini")  # no mapping for the token counts
    assert isinstance(missing.exception, IngestError) and missing.exception.exit_code == 2
    assert "no column for input_tokens" in str(missing.exception)


def test_the_config_trace_section() -> None:
    example = LlmTrace.model_validate(yaml.safe_load(example_yaml(LlmTrace)))
    assert example.columns["input_tokens"] == "ContextTokens"
    naive = LlmTrace.model_validate({"time_origin": "2025-08-01T00:00:00"})
    assert naive.time_origin == dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="trace applies to format llm, not dcgm"):
        FilesSource.model_validate(
            {"type": "files", "format": "dcgm", "paths": ["x"], "trace": {"default_model": "m"}}
        )
    with pytest.raises(ValueError, match="columns"):
        LlmTrace.model_validate({"columns": {"tokens": "x"}})
