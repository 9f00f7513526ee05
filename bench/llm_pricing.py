"""Benchmark: pricing LLM requests from Parquet into an on-disk table, against DuckDB's own load.

    uv run python bench/llm_pricing.py                  # 30M requests
    uv run python bench/llm_pricing.py --rows 1000000

It writes N synthetic requests (20 models of OpenAI, Anthropic and Google, one unknown model,
cache reads and writes, long-context requests, batch and flex tiers, timestamps across the o3
price cut of 2025-06-10) to Parquet, then, in one process, times:
  - DuckDB: `CREATE TABLE loaded AS SELECT * FROM read_parquet(...)` in an on-disk database;
  - costline: `costline.catalog.token_prices.price_requests` over a view of the same Parquet
    (distinct models resolved with genai-prices, then one join) written as
    `CREATE TABLE priced AS ...`, a DECIMAL(38,18) cost per request, in the same database;
and prints requests/s for each, the peak RSS, and the pricing summed instead of stored.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import duckdb

from costline.catalog.token_prices import price_requests, resolve_model

OUT = Path(__file__).parent / "out"
MODELS = [
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "o3-2025-04-16"),
    ("openai", "o4-mini"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"),
    ("anthropic", "claude-opus-4-1-20250805"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash"),
    ("google", "gemini-2.0-flash"),
    ("deepseek", "deepseek-chat"),
    ("mistral", "mistral-large-latest"),
    ("x-ai", "grok-4"),
    ("azure", "gpt-4o"),
    ("openai", "internal-finetune-v7"),  # unknown: unpriced
]


def _list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def generate(rows: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"llm_requests_{rows}.parquet"
    if path.exists():
        return path
    providers, models = _list([p for p, _ in MODELS]), _list([m for _, m in MODELS])
    k = len(MODELS)
    select = f"""
      SELECT
        TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_microseconds((h % 22000000) * 1000000) AS ts,
        'req-' || i AS request_id,
        {providers}[1 + (h // 7) % {k}] AS provider,
        {models}[1 + (h // 7) % {k}] AS model,
        input_tokens, cached_input_tokens, cache_write_tokens,
        (h // 13) % 2000 AS output_tokens, (h // 17) % 200 AS reasoning_tokens,
        1::BIGINT AS requests,
        'app-' || (h // 19) % 12 AS app, 'team-' || (h // 23) % 9 AS team,
        'tenant-' || (h // 29) % 500 AS tenant,
        '{{"env": "prod"}}' AS tags,
        CASE (h // 31) % 20 WHEN 0 THEN 'processing=batch' WHEN 1 THEN 'service_tier=flex' END
          AS price_context,
        CASE WHEN (h // 37) % 4 = 0 THEN cache_write_tokens // 2 ELSE 0 END AS cache_write_1h_tokens
      FROM (
        SELECT i, h,
          CASE WHEN (h // 41) % 50 = 0 THEN 200000 + (h % 100000) ELSE 100 + (h % 12000) END
            AS input_tokens,
          CASE WHEN (h // 43) % 3 = 0 THEN (h % 12000) // 2 ELSE 0 END AS cached_input_tokens,
          CASE WHEN (h // 47) % 10 = 0 THEN 64 ELSE 0 END AS cache_write_tokens
        FROM (SELECT i, (hash(i) // 2)::BIGINT AS h FROM range({rows}) t(i))
      )"""
    tmp = path.with_suffix(".tmp")
    duckdb.connect().execute(f"COPY ({select}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    path = generate(args.rows)
    print(f"data: {args.rows:,} requests in {path} ({time.perf_counter() - started:.1f}s)")
    # An on-disk database, as the ledger is: in memory, 30M rows twice (requests and priced) need
    # 11.5 GB and the run slows to 0.6M/s.
    db = path.parent / "llm_pricing.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    # As the ledger does: row order means nothing, and keeping it serialises the inserts.
    con.execute("SET preserve_insertion_order = false")
    started = time.perf_counter()
    resolve_model("openai", "gpt-4o")  # loads genai-prices' bundled data: once per process
    print(f"genai-prices data loaded in {time.perf_counter() - started:.2f}s (once per process)")

    started = time.perf_counter()
    con.execute(f"CREATE TABLE loaded AS SELECT * FROM read_parquet('{path}')")
    read_s = time.perf_counter() - started
    con.execute("DROP TABLE loaded")

    # Priced straight from the file: resolve the distinct models, then one join, written once.
    started = time.perf_counter()
    con.execute(f"CREATE VIEW requests AS SELECT * FROM read_parquet('{path}')")
    priced = price_requests(con, "requests")
    con.execute(f"CREATE TABLE priced AS {priced.sql}")
    price_s = time.perf_counter() - started

    n, costed, total = con.execute(
        "SELECT count(*), count(cost_usd), sum(cost_usd) FROM priced"
    ).fetchone() or (0, 0, 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"DuckDB, Parquet -> table        : {read_s:7.2f}s  {args.rows / read_s:>12,.0f} requests/s"
    )
    print(
        f"costline, Parquet -> priced table: {price_s:7.2f}s  {args.rows / price_s:>12,.0f} requests/s"
    )
    print(f"peak RSS {peak:,.0f} MiB")
    started = time.perf_counter()
    con.execute(f"SELECT sum(cost_usd), count(price_version) FROM ({priced.sql})").fetchall()
    agg_s = time.perf_counter() - started
    print(
        f"price, summed: {agg_s:7.2f}s  {args.rows / agg_s:>14,.0f} requests/s (not materialised)"
    )
    print(f"priced {costed:,} of {n:,} requests, total ${total:,.2f}; unpriced:")
    for note in priced.warnings():
        print(f"  {note}")


if __name__ == "__main__":
    main()
