"""LLM token prices from genai-prices' bundled data, as one table, and the SQL that prices requests.

genai-prices (MIT, offline) knows ~2,300 models with price history (start dates), time-of-day
prices, long-context tiers, cache read/write prices and request-context variants (batch, service
tier). Pricing a million requests one `calc_price` call at a time is far too slow, so:

1. `price_table()` flattens every model's prices once into rows keyed by (genai-prices provider,
   model id, price context) and valid for a half-open time range `[valid_from, valid_to)`, a
   time-of-day range and a band of input tokens per request (the long-context tier). Each row is
   evaluated by genai-prices itself (`ModelInfo.get_prices`) at the start of its ranges, so the
   rows reproduce its rules exactly; prices are USD per token (per request for `request_price`)
   as DECIMAL(38, 24): exact for prices with up to 18 decimals per million tokens.
2. `resolve()` maps each distinct (provider, model, context) of a batch to a genai-prices model
   with genai-prices' own matching rules (equals, starts_with, regex, provider fallbacks): a few
   Python calls per batch, however many requests it has.
3. `pricing_sql()` prices every request in the engine with one hash join on (provider, model,
   context) plus the range conditions, in DECIMAL: never a float.

Token semantics are genai-prices': `input_tokens` is the total input of the request, and cache
reads (`cached_input_tokens`) and cache writes (`cache_write_tokens`, of which
`cache_write_1h_tokens`) are parts of it. A model with no token price is unpriced: NULL, never 0.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import genai_prices
import pyarrow as pa
from genai_prices import types as gp
from genai_prices.data_snapshot import get_snapshot

from costline.money import MONEY_SQL

GENAI_PRICES_VERSION: str = genai_prices.__version__
PRICE_SCALE = 24
PRICE_SQL = f"DECIMAL(38,{PRICE_SCALE})"
PRICE_DTYPE = pa.decimal128(38, PRICE_SCALE)
STANDARD = ""  # the price context of a request with no batch or service-tier variant
DAY_SECONDS = 86_400
MAX_TOKENS = 2**62
EPOCH = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
FOREVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
_PER_TOKEN = Decimal(1_000_000)
_PER_REQUEST = Decimal(1_000)

# OpenTelemetry `gen_ai.provider.name` values (and LiteLLM providers) that genai-prices names otherwise.
PROVIDER_ALIASES = {
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "azure_ai": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "mistral_ai": "mistral",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
}

PRICE_SCHEMA = pa.schema(
    [
        ("gp_provider", pa.string()),
        ("gp_model", pa.string()),
        ("context", pa.string()),
        ("valid_from", pa.timestamp("us", tz="UTC")),
        ("valid_to", pa.timestamp("us", tz="UTC")),
        ("tod_from", pa.int32()),  # seconds after UTC midnight, inclusive
        ("tod_to", pa.int32()),  # exclusive; [0, 86400) when the price holds all day
        ("band_above", pa.int64()),  # input tokens per request > band_above ...
        ("band_upto", pa.int64()),  # ... and <= band_upto (long-context tiers)
        ("input_price", PRICE_DTYPE),  # USD per token
        ("cache_read_price", PRICE_DTYPE),
        ("cache_write_price", PRICE_DTYPE),
        ("cache_write_1h_price", PRICE_DTYPE),
        ("output_price", PRICE_DTYPE),
        ("request_price", PRICE_DTYPE),  # USD per request
        ("price_version", pa.string()),
    ]
)

PriceValue = Decimal | gp.TieredPrices | None


@dataclass(frozen=True)
class Resolution:
    """Where one distinct (provider, model, context) of a batch found its price, if anywhere."""

    provider: str
    model: str
    context: str
    gp_provider: str | None
    gp_model: str | None
    gp_context: str
    requests: int

    @property
    def priced(self) -> bool:
        return self.gp_model is not None


# -- the price table ------------------------------------------------------------------------------


def _date_breaks(model: gp.ModelInfo) -> list[dt.date]:
    constraints: list[object] = []
    if isinstance(model.prices, list):
        constraints += [c.constraint for c in model.prices]
    constraints += [v.constraint for v in model.price_variants or ()]
    return sorted({c.start_date for c in constraints if isinstance(c, gp.StartDateConstraint)})


def _tod_breaks(model: gp.ModelInfo) -> list[int]:
    constraints: list[object] = []
    if isinstance(model.prices, list):
        constraints += [c.constraint for c in model.prices]
    constraints += [v.constraint for v in model.price_variants or ()]
    out = {0}
    for c in constraints:
        if isinstance(c, gp.TimeOfDateConstraint):
            out |= {_seconds(c.start_time), _seconds(c.end_time)}
    return sorted(out)


def _seconds(value: dt.time) -> int:
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(1970, 1, 1), value).astimezone(dt.UTC).time()
    return value.hour * 3600 + value.minute * 60 + value.second


def _contexts(model: gp.ModelInfo) -> list[str]:
    whens = {_context_key(v.when) for v in model.price_variants or ()}
    return [STANDARD, *sorted(whens)]


def _context_key(when: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(when.items()))


def _context_dict(context: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in context.split(";")) if context else {}


def _thresholds(prices: gp.ModelPrice) -> list[int]:
    out: set[int] = set()
    for value in prices.__dict__.values():
        if isinstance(value, gp.TieredPrices):
            out |= {t.start for t in value.tiers}
    return sorted(out)


def _at(value: PriceValue, input_tokens: int) -> Decimal | None:
    """genai-prices' tier rule: the whole request pays the highest tier its total input exceeds."""
    if value is None or isinstance(value, Decimal):
        return value
    price = value.base
    for tier in reversed(value.tiers):
        if input_tokens > tier.start:
            price = tier.price
            break
    return price


def _band_prices(prices: gp.ModelPrice, input_tokens: int) -> list[Decimal] | None:
    """Per-token prices (and per-request), with cache prices falling back as genai-prices' units do."""
    given = {
        key: _at(getattr(prices, key, None), input_tokens)
        for key in (
            "input_mtok",
            "cache_read_mtok",
            "cache_write_mtok",
            "cache_write_1h_mtok",
            "output_mtok",
            "requests_kcount",
        )
    }
    if given["input_mtok"] is None and given["output_mtok"] is None:
        return None  # no token price: the model is priced in other units (audio, pages, ...)
    # A usage part with no price of its own is charged at its parent unit's price (genai-prices
    # subtracts only priced parts from the total): cache reads/writes at the input price, 1h
    # writes at the cache-write price.
    inp = given["input_mtok"] or Decimal(0)
    read = given["cache_read_mtok"] if given["cache_read_mtok"] is not None else inp
    write = given["cache_write_mtok"] if given["cache_write_mtok"] is not None else inp
    write_1h = given["cache_write_1h_mtok"] if given["cache_write_1h_mtok"] is not None else write
    out = given["output_mtok"] or Decimal(0)
    per_request = (given["requests_kcount"] or Decimal(0)) / _PER_REQUEST
    return [p / _PER_TOKEN for p in (inp, read, write, write_1h, out)] + [per_request]


def _model_rows(provider_id: str, model: gp.ModelInfo) -> Iterator[dict[str, object]]:
    dates = _date_breaks(model)
    date_starts = [EPOCH, *(dt.datetime.combine(d, dt.time(), dt.UTC) for d in dates)]
    date_ends = [*date_starts[1:], FOREVER]
    tods = _tod_breaks(model)
    tod_ends = [*tods[1:], DAY_SECONDS]
    for context in _contexts(model):
        for start, end in zip(date_starts, date_ends, strict=True):
            for tod_from, tod_to in zip(tods, tod_ends, strict=True):
                at = start + dt.timedelta(seconds=tod_from)
                prices = model.get_prices(at, _context_dict(context) or None)
                bounds = [-1, *_thresholds(prices)]
                for above, upto in zip(bounds, [*bounds[1:], MAX_TOKENS], strict=True):
                    band = _band_prices(prices, above + 1)
                    if band is None:
                        continue
                    version = f"genai-prices {GENAI_PRICES_VERSION}:{provider_id}/{model.id}"
                    version += f"@{start.date().isoformat()}" if start != EPOCH else ""
                    version += f"[{context}]" if context else ""
                    version += f">{above}" if above >= 0 else ""
                    yield {
                        "gp_provider": provider_id,
                        "gp_model": model.id,
                        "context": context,
                        "valid_from": start,
                        "valid_to": end,
                        "tod_from": tod_from,
                        "tod_to": tod_to,
                        "band_above": above,
                        "band_upto": upto,
                        "input_price": band[0],
                        "cache_read_price": band[1],
                        "cache_write_price": band[2],
                        "cache_write_1h_price": band[3],
                        "output_price": band[4],
                        "request_price": band[5],
                        "price_version": version,
                    }


_PRICE_COLUMNS = (
    "input_price",
    "cache_read_price",
    "cache_write_price",
    "cache_write_1h_price",
    "output_price",
    "request_price",
)


def _merged(rows: Iterable[dict[str, object]]) -> list[dict[str, object]]:
    """Adjacent date ranges with the same prices become one (its version names the first start)."""
    out: list[dict[str, object]] = []
    last: dict[tuple[object, ...], dict[str, object]] = {}
    for row in rows:
        key = (row["context"], row["tod_from"], row["tod_to"], row["band_above"], row["band_upto"])
        prev = last.get(key)
        if (
            prev is not None
            and prev["valid_to"] == row["valid_from"]
            and all(prev[c] == row[c] for c in _PRICE_COLUMNS)
        ):
            prev["valid_to"] = row["valid_to"]
            continue
        out.append(row)
        last[key] = row
    return out


@functools.cache
def model_prices(gp_provider: str, gp_model: str) -> pa.Table:
    """One genai-prices model's price rows (cached: a model is flattened once per process)."""
    rows: list[dict[str, object]] = []
    for p in get_snapshot().providers:
        if p.id == gp_provider:
            for m in p.models:
                if m.id == gp_model:
                    rows = _merged(_model_rows(p.id, m))
    return pa.Table.from_pylist(rows, schema=PRICE_SCHEMA)


def price_table() -> pa.Table:
    """Every model's token prices in genai-prices' bundled data, one row per price in force."""
    return pa.concat_tables(
        [model_prices(p.id, m.id) for p in get_snapshot().providers for m in p.models]
    )


def _batch_prices(resolutions: Sequence[Resolution]) -> pa.Table:
    models = sorted(
        {(r.gp_provider, r.gp_model) for r in resolutions if r.gp_provider and r.gp_model}
    )
    return pa.concat_tables([PRICE_SCHEMA.empty_table()] + [model_prices(*m) for m in models])


@dataclass(frozen=True)
class UnitPrices:
    """A model's standard prices in force at one instant, USD per token: what a change to its
    requests (caching a prefix, trimming a prompt) is priced at. 5-minute cache writes."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    version: str


def unit_prices(provider: str, model: str, at: dt.datetime) -> UnitPrices | None:
    """The standard (no batch or tier) prices of `model` at `at`, below any long-context tier
    and, for time-of-day prices, those of the longest part of the day; None when unpriced."""
    hit = resolve_model(provider, model)
    if hit is None:
        return None
    rows = [
        r
        for r in model_prices(hit[0], hit[1]).to_pylist()
        if r["context"] == STANDARD
        and r["band_above"] < 0
        and r["valid_from"] <= at < r["valid_to"]
    ]
    if not rows:
        return None
    r = max(rows, key=lambda r: (r["tod_to"] - r["tod_from"], -r["tod_from"]))
    return UnitPrices(r["input_price"], r["cache_read_price"], r["cache_write_price"],
                      r["output_price"], str(r["price_version"]))  # fmt: skip


# -- resolving a batch's models -------------------------------------------------------------------


@functools.cache
def _owners() -> dict[int, str]:
    return {id(m): p.id for p in get_snapshot().providers for m in p.models}


@functools.cache
def _variant_contexts(gp_provider: str, gp_model: str) -> frozenset[str]:
    for p in get_snapshot().providers:
        if p.id == gp_provider:
            for m in p.models:
                if m.id == gp_model:
                    return frozenset(_contexts(m))
    return frozenset({STANDARD})


@functools.cache
def resolve_model(provider: str, model: str) -> tuple[str, str, bool] | None:
    """(owner provider id, model id, found-via-fallback) by genai-prices' own rules, or None.

    `provider` "" means unknown: genai-prices then picks the provider by the model name.
    """
    if not model:
        return None
    provider_id = PROVIDER_ALIASES.get(provider.lower(), provider.lower()) or None
    try:
        found_provider, found = get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    owner = _owners()[id(found)]
    return owner, found.id, owner != found_provider.id


def resolve(keys: Iterable[tuple[str, str, str, int]]) -> list[Resolution]:
    """Resolve distinct (provider, model, context, requests) keys; "" stands for a missing value."""
    out = []
    for provider, model, context, requests in keys:
        hit = resolve_model(provider, model)
        if hit is None:
            out.append(Resolution(provider, model, context, None, None, STANDARD, requests))
            continue
        owner, model_id, via_fallback = hit
        # As in genai-prices, a context only selects a variant of the provider's own models.
        known = _variant_contexts(owner, model_id)
        gp_context = context if context in known and not via_fallback else STANDARD
        out.append(Resolution(provider, model, context, owner, model_id, gp_context, requests))
    return out


def _resolutions_arrow(resolutions: Sequence[Resolution]) -> pa.Table:
    return pa.table(
        {
            "provider": [r.provider for r in resolutions],
            "model": [r.model for r in resolutions],
            "context": [r.context for r in resolutions],
            "gp_provider": [r.gp_provider for r in resolutions],
            "gp_model": [r.gp_model for r in resolutions],
            "gp_context": [r.gp_context for r in resolutions],
        },
        schema=pa.schema(
            [(n, pa.string()) for n in ("provider", "model", "context")]
            + [(n, pa.string()) for n in ("gp_provider", "gp_model", "gp_context")]
        ),
    )


# -- pricing in the engine ------------------------------------------------------------------------

# Columns a relation to be priced carries besides the ledger's: they select the price, then go.
HELPER_COLUMNS = ("price_context", "cache_write_1h_tokens")


@dataclass
class PricedRequests:
    """A SELECT pricing every request of a relation, and what its models resolved to."""

    sql: str
    resolutions: list[Resolution]

    @property
    def unpriced(self) -> list[Resolution]:
        return [r for r in self.resolutions if not r.priced]

    def warnings(self) -> list[str]:
        """One data-quality note per unpriced model: its requests carry cost_usd NULL."""
        notes: dict[str, int] = {}
        for r in self.unpriced:
            name = f"{r.provider or '?'}/{r.model or '(no model)'}"
            notes[name] = notes.get(name, 0) + r.requests
        return [
            f"unpriced model {name}: {n} request(s) have no price in genai-prices "
            f"{GENAI_PRICES_VERSION}; their cost_usd is NULL (unpriced), not 0"
            for name, n in sorted(notes.items())
        ]


def _cost_sql(r: str, p: str, *, at_money_scale: bool) -> str:
    """Leaves of the total input, each times its price; DECIMAL all the way, rounded once.

    When every price of the batch is exact at 18 decimals (nearly always), the prices are already
    DECIMAL(38, 18) and the sum needs no rounding cast (a per-row int128 division, 10x the rest).
    """

    def n(col: str) -> str:
        return f"coalesce({r}.{col}, 0)"

    terms = [
        f"({n('input_tokens')} - {n('cached_input_tokens')} - {n('cache_write_tokens')})"
        f" * {p}.input_price",
        f"{n('cached_input_tokens')} * {p}.cache_read_price",
        f"({n('cache_write_tokens')} - {n('cache_write_1h_tokens')}) * {p}.cache_write_price",
        f"{n('cache_write_1h_tokens')} * {p}.cache_write_1h_price",
        f"{n('output_tokens')} * {p}.output_price",
        f"coalesce({r}.requests, 1) * {p}.request_price",
    ]
    total = " + ".join(terms)
    return total if at_money_scale else f"CAST({total} AS {MONEY_SQL})"


def _output_sql(r: str, p: str, *, at_money_scale: bool) -> str:
    """The output tokens' part of the cost (NULL when unpriced, like the cost)."""
    term = f"coalesce({r}.output_tokens, 0) * {p}.output_price"
    return term if at_money_scale else f"CAST({term} AS {MONEY_SQL})"


def pricing_sql(relation: str, prices: str, *, at_money_scale: bool = False) -> str:
    """SELECT `relation`'s rows with `cost_usd` and `price_version`, joined to batch `prices`.

    Long-context tiers select on input tokens per request (a rollup row's average); time-of-day
    prices on the UTC second of the day.
    """
    per_request = "coalesce(r.input_tokens, 0) // greatest(coalesce(r.requests, 1), 1)"
    second_of_day = "((epoch_us(r.ts) // 1000000) % 86400)"
    excluded = ", ".join(HELPER_COLUMNS)
    return f"""
        SELECT r.* EXCLUDE ({excluded}), {_cost_sql("r", "p", at_money_scale=at_money_scale)} AS cost_usd,
               {_output_sql("r", "p", at_money_scale=at_money_scale)} AS output_cost_usd, p.price_version
        FROM {relation} AS r LEFT JOIN {prices} AS p
          ON coalesce(r.provider, '') = p.provider
         AND coalesce(r.model, '') = p.model
         AND coalesce(r.price_context, '') = p.context
         AND r.ts >= p.valid_from AND r.ts < p.valid_to
         AND {per_request} > p.band_above AND {per_request} <= p.band_upto
         AND (p.all_day OR ({second_of_day} >= p.tod_from AND {second_of_day} < p.tod_to))
    """


def price_requests(
    con: duckdb.DuckDBPyConnection, relation: str, *, name: str = "costline_batch_prices"
) -> PricedRequests:
    """Resolve the distinct models of `relation` once, then price all its rows in one join.

    `relation` (a table or view on `con`) has the `llm_requests` token columns, `provider`,
    `model`, `ts`, `requests` and the `HELPER_COLUMNS`. Creates the temp table `name`.
    """
    keys = con.execute(
        f"SELECT coalesce(provider, ''), coalesce(model, ''), coalesce(price_context, ''), "
        f"sum(coalesce(requests, 1))::BIGINT FROM {relation} GROUP BY ALL"
    ).fetchall()
    resolutions = resolve((str(a), str(b), str(c), int(d)) for a, b, c, d in keys)
    con.register(f"{name}_keys", _resolutions_arrow(resolutions))
    con.register(f"{name}_all", _batch_prices(resolutions))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name} AS
            SELECT k.provider, k.model, k.context, p.* EXCLUDE (gp_provider, gp_model, context),
                   (p.tod_from = 0 AND p.tod_to = {DAY_SECONDS}) AS all_day
            FROM {name}_keys AS k JOIN {name}_all AS p
              ON p.gp_provider = k.gp_provider AND p.gp_model = k.gp_model
             AND p.context = k.gp_context"""
    )
    con.unregister(f"{name}_keys")
    con.unregister(f"{name}_all")
    exact = _to_money_scale(con, name)
    return PricedRequests(pricing_sql(relation, name, at_money_scale=exact), resolutions)


def _to_money_scale(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Retype the batch's prices to DECIMAL(38, 18) when no digit is lost; say whether it was."""
    lossless = " AND ".join(f"CAST({c} AS {MONEY_SQL}) = {c}" for c in _PRICE_COLUMNS)
    row = con.execute(f"SELECT coalesce(bool_and({lossless}), true) FROM {name}").fetchone()
    if not (row and row[0]):
        return False
    casts = ", ".join(f"CAST({c} AS {MONEY_SQL}) AS {c}" for c in _PRICE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * REPLACE ({casts}) FROM {name}")
    return True


def price_arrow(requests: pa.Table) -> tuple[pa.Table, list[str]]:
    """Price an Arrow table of requests (see `price_requests`) in a DuckDB of its own."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("costline_requests", requests)
        priced = price_requests(con, "costline_requests")
        return con.sql(priced.sql).arrow().read_all(), priced.warnings()
    finally:
        con.close()
