"""Prompt caching measured from prefix block ids, on a real trace: the first 1,500 requests of
the Mooncake synthetic trace (`hash_ids`, 512-token blocks), read as a plain trace. The engine's
count of reusable prefix blocks is checked against a direct count over the file, and its dollars
against genai-prices' own cache prices."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.config import LlmTrace
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.optimize.inputs import Inputs
from costline.optimize.tokens import blocks, recommend_tokens
from costline.optimize.tokens.audit import Audit
from costline.pipeline import ingest_files
from costline.sources.llm import llm_file_source
from tests.helpers import FIXTURES, run_costline

TRACE = FIXTURES / "llm" / "mooncake_trace_1500.jsonl"
ORIGIN = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
MODEL, PROVIDER = "claude-sonnet-4-5", "anthropic"  # a model with cache prices
BLOCK = 512


def direct_count(lifetime_ms: int) -> dict[str, int]:
    """Straight from the file, in time order: each request's leading blocks whose id an earlier
    request used within `lifetime_ms` (each use refreshes it), and the blocks that are new but
    reused by a later request within the lifetime (the cache writes that pay off)."""
    rows = sorted((json.loads(line) for line in TRACE.open()), key=lambda r: r["timestamp"])
    uses: dict[Any, list[int]] = {}
    for r in rows:
        for h in r["hash_ids"]:
            uses.setdefault(h, []).append(r["timestamp"])
    seen: dict[Any, int] = {}
    out = {"blocks": 0, "reusable_blocks": 0, "reusable_tokens": 0, "write_tokens": 0}
    for r in rows:
        lead, leading, written = 0, True, 0
        for h in r["hash_ids"]:
            hit = h in seen and r["timestamp"] - seen[h] <= lifetime_ms
            leading = leading and hit
            lead += leading
            later = [t for t in uses[h] if t > r["timestamp"]]
            written += not hit and bool(later) and later[0] - r["timestamp"] <= lifetime_ms
        for h in r["hash_ids"]:
            seen[h] = r["timestamp"]
        reused = min(lead * BLOCK, r["input_length"])
        out["blocks"] += len(r["hash_ids"])
        out["reusable_blocks"] += lead
        out["reusable_tokens"] += reused
        out["write_tokens"] += min(written * BLOCK, r["input_length"] - reused)
    return out


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("mooncake") / "l.duckdb"
    trace = LlmTrace.model_validate({
        "columns": {"input_tokens": "input_length", "output_tokens": "output_length"},
        "default_model": MODEL, "provider": PROVIDER, "app": "kimi-chat",
        "time_origin": ORIGIN.isoformat(), "time_unit": "ms",
    })  # fmt: skip
    with Ledger(f"duckdb:///{path}") as ledger:
        ingest_files(ledger, [TRACE], llm_file_source(trace))
        end = ORIGIN + dt.timedelta(hours=1)
        inputs = Inputs(ledger.table("cost_lines"), ledger.table("gpu_samples"),
                        ledger.table("workloads"), ORIGIN, end, Rules(), FixedClock(end),
                        llm=ledger.table("llm_requests"))  # fmt: skip
        yield inputs, Audit.of(inputs)


def test_the_trace_reader_keeps_hash_ids_as_prefix_blocks(audit: Any) -> None:
    inputs, _ = audit
    t = inputs.llm
    [row] = fetch.rows(t.aggregate(n=t.count(), blocks=t.prefix_hashes.length().sum(),
                                   size=t.prefix_block_tokens.max()))  # fmt: skip
    assert row == {"n": 1500, "blocks": direct_count(300_000)["blocks"], "size": BLOCK}


@pytest.mark.parametrize("lifetime", [300, 60])
def test_reusable_prefix_blocks_equal_a_direct_count_of_the_trace(
    audit: Any, lifetime: int
) -> None:
    _, a = audit
    [group] = fetch.rows(blocks.per_group(a, lifetime))
    expected = direct_count(lifetime * 1000)
    assert {k: group[k] for k in ("blocks", "reusable_blocks", "reusable_tokens")} == {
        k: expected[k] for k in ("blocks", "reusable_blocks", "reusable_tokens")
    }
    assert group["extra_read"] == expected["reusable_tokens"]  # nothing was cached
    assert group["extra_write"] == expected["write_tokens"]
    share = expected["reusable_blocks"] / expected["blocks"]
    assert (0.2 < share < 0.25) if lifetime == 300 else (0.05 < share < 0.1)


def test_the_caching_saving_is_priced_at_the_providers_cache_prices(audit: Any) -> None:
    """Reads at Anthropic's 0.1x, writes at 1.25x, per 30 days of the trace's span."""
    inputs, a = audit
    [found] = [f for f in recommend_tokens(inputs) if f.scope["lever"] == "prompt_caching"]
    expected = direct_count(300_000)

    def price(**usage: int) -> Decimal:
        return calc_price(Usage(**usage), MODEL, provider_id=PROVIDER,
                          genai_request_timestamp=ORIGIN).total_price  # fmt: skip

    n = 1000  # below the 200K-token long-context tier
    full, cached = price(input_tokens=n), price(input_tokens=n, cache_read_tokens=n)
    written = price(input_tokens=n, cache_write_tokens=n)
    assert (cached / full, written / full) == (Decimal("0.1"), Decimal("1.25"))
    window = (expected["reusable_tokens"] * (full - cached)
              - expected["write_tokens"] * (written - full)) / n  # fmt: skip
    assert a.days == pytest.approx(1 / 24)  # the trace's 6.8 minutes: one hour of logs
    assert found.impact_usd == (window * 30 * 24).quantize(Decimal("0.01"))
    assert found.evidence["inputs"]["reusable_blocks"] == expected["reusable_blocks"]
    assert "cache_control" in found.actions[0].text


def test_costline_recommend_kind_tokens_on_a_ledger_of_llm_logs_alone(tmp_path: Path) -> None:
    """No bills: the window ends with the last request's day; the finding is stored."""
    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    ingest = run_costline(
        "--ledger", url, "ingest", "llm", str(TRACE), "--map", "input_tokens=input_length",
        "--map", "output_tokens=output_length", "--default-model", MODEL, "--provider",
        PROVIDER, "--time-origin", ORIGIN.isoformat(), "--time-unit", "ms",
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    done = run_costline("--ledger", url, "recommend", "--kind", "tokens", "--format", "json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["kind"], row["scope"]["lever"]) == ("tokens", "prompt_caching")
    assert Decimal(row["savings_monthly_usd"]) > 1000
    with Ledger(url, read_only=True) as led:
        assert led.con.execute("SELECT count(*) FROM findings").fetchone() == (1,)
    assert run_costline("--ledger", url, "recommend", "--kind", "idle_capacity").returncode == 2
