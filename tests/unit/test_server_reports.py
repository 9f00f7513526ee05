"""The API's reports on a small demo organization: showback and chargeback are `costline report`'s
rows to the cent, unit costs are the CLI's figures, and a model named one way on its bills and
another in its LLM logs is one model on the Models and Tokens views."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from costline.cli.demo import run_demo
from costline.cli.output import Format
from costline.config import Config, ModelNames, load_config
from costline.ledger.store import Ledger
from costline.server.app import create_app
from tests.helpers import api_ok

PERIOD, START, END = "2026-10", "2026-10-01", "2026-11-01"  # the demo's last billed month


@dataclass(frozen=True)
class Org:
    root: Path
    ledger: Ledger
    config: Config
    copy: Path  # the same ledger for the CLI (a DuckDB file has one writing process)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    out = tmp_path_factory.mktemp("reports") / "org"
    url = f"duckdb://{out / 'ledger.duckdb'}"
    run_demo(out=out, ledger_url=url, seed=11, days=16, scale=0.1, fmt=Format.json,
             err=Console(file=io.StringIO()))  # fmt: skip
    copy = out.parent / "cli.duckdb"
    shutil.copyfile(out / "ledger.duckdb", copy)
    with Ledger(url) as ledger:
        yield Org(out, ledger, load_config(out / "costline.yaml"), copy)


@pytest.fixture(scope="module")
def client(org: Org) -> Iterator[TestClient]:
    with TestClient(create_app(org.ledger, org.config, warm=False)) as c:
        yield c


ok = api_ok


def cli(org: Org, *args: str) -> Any:
    """`costline <args> --format json` on a copy of the org's ledger, parsed."""
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb://{org.copy}",
           "COSTLINE_CONFIG": str(org.root / "costline.yaml")}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "costline", *args, "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def exact(value: Any) -> Any:
    """JSON with every decimal string as a Decimal (`"715.52"` = `"715.520000"` = ...)."""
    if isinstance(value, list):
        return [exact(v) for v in value]
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?(E[+-]?\d+)?", value):
        return Decimal(value)  # `"0E-18"` too
    return value


def same_rows(api: list[dict[str, Any]], cli_rows: list[dict[str, Any]], by: str) -> None:
    """The same buckets in the same order, every figure the same to the last digit."""
    assert [r[by] for r in api] == [r[by] for r in cli_rows]
    for a, c in zip(exact(api), exact(cli_rows), strict=True):
        assert a.keys() == c.keys(), a[by]
        assert {k: a[k] for k in a if a[k] != c[k]} == {}, (c[by], c)


# -- showback and chargeback -----------------------------------------------------------------------


def test_showback_and_chargeback_are_the_cli_reports_to_the_cent(
    org: Org, client: TestClient
) -> None:
    for path, args, params, by in (
        ("showback", ["--by", "team"], {"by": "team"}, "team"),
        ("showback", ["--by", "model", "--idle", "shared"], {"by": "model", "idle": "shared"},
         "model"),
        ("chargeback", ["--by", "team", "--cost", "billed"], {"by": "team", "cost": "billed"},
         "team"),
        ("showback", ["--by", "owner", "--where", "ProviderName=AWS"],
         {"by": "owner", "provider": "AWS"}, "owner"),
    ):  # fmt: skip
        expected = cli(org, "report", path, "--period", PERIOD, *args)
        got = ok(client, f"/api/v1/{path}", start=START, end=END, **params)
        assert got["kind"] == path and got["by"] == by and got["ignored_filters"] == []
        same_rows(got["rows"], expected, by)
        # the buckets add up to the window's bill, exactly
        assert sum(Decimal(r["amount_usd"]) for r in got["rows"]) == Decimal(got["total_usd"])


def test_showback_buckets_idle_shared_and_unallocated(client: TestClient) -> None:
    shown = ok(client, "/api/v1/showback", by="team")  # the default window: the last month
    assert (shown["start"], shown["end"], shown["idle"]) == (START, END, "shown")
    names = [r["team"] for r in shown["rows"]]
    assert {"__idle__", "__shared__", "__unallocated__"} <= set(names)
    assert set(names[-3:]) == {"__idle__", "__shared__", "__unallocated__"}  # after the owners
    shared = ok(client, "/api/v1/showback", by="team", idle="shared")
    assert "__idle__" not in {r["team"] for r in shared["rows"]}
    assert shared["total_usd"] == shown["total_usd"]
    idle = {r["team"]: Decimal(r["unheld_idle_usd"]) for r in shared["rows"]}
    assert sum(idle.values()) == next(
        Decimal(r["amount_usd"]) for r in shown["rows"] if r["team"] == "__idle__"
    )
    # both kinds of idle, as the GPU page reports them (`allocation.idle`), to the cent
    gpu = ok(client, "/api/v1/gpu/idle")["totals"]
    for rows in (shown["rows"], shared["rows"]):
        for kind in ("held_idle_usd", "unheld_idle_usd"):
            assert sum(Decimal(r[kind]) for r in rows) == Decimal(gpu[kind])
    charged = ok(client, "/api/v1/chargeback", by="team")
    assert {"__idle__", "__shared__"}.isdisjoint(r["team"] for r in charged["rows"])
    assert charged["idle"] == "shared" and charged["total_usd"] == shown["total_usd"]


def test_report_filters_narrow_the_lines_or_are_named_as_ignored(client: TestClient) -> None:
    everything = ok(client, "/api/v1/showback", by="team")
    aws = ok(client, "/api/v1/showback", by="team", provider="AWS")
    assert Decimal(aws["total_usd"]) < Decimal(everything["total_usd"])
    spend = ok(client, "/api/v1/spend", by="provider", provider="AWS")
    assert Decimal(aws["total_usd"]) == Decimal(spend["total_usd"])
    team = ok(client, "/api/v1/showback", by="team", team="search")
    assert team["ignored_filters"] == ["team"] and team["rows"] == everything["rows"]
    week = ok(client, "/api/v1/chargeback", start="2026-10-20", end="2026-10-27")
    days = ok(client, "/api/v1/overview")["daily"]
    assert Decimal(week["total_usd"]) == sum(
        (Decimal(d["cost_usd"]) for d in days if "2026-10-20" <= d["day"] < "2026-10-27"),
        Decimal(0),
    )
    for path, params, says in (
        ("/api/v1/showback", {"by": "colour"}, "by='colour'"),
        ("/api/v1/showback", {"idle": "hidden"}, "idle='hidden'"),
        ("/api/v1/chargeback", {"idle": "shown"}, "unknown query parameter 'idle'"),
        ("/api/v1/showback", {"start": "2026-10-32"}, "expected a day"),
        ("/api/v1/chargeback", {"cost": "list"}, "cost='list'"),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 400 and says in r.json()["error"]["message"], r.text


# -- unit costs ------------------------------------------------------------------------------------


def test_unit_costs_are_the_cli_report_with_its_sentences_and_scorecard(
    org: Org, client: TestClient
) -> None:
    expected = cli(org, "report", "unit-costs", "--period", PERIOD)
    got = ok(client, "/api/v1/unit-costs", start=START, end=END)
    assert (got["period"], got["previous"]) == (PERIOD, {"start": "2026-09-01", "end": START})
    assert set(got["sections"]) | {"scorecard"} == set(expected)
    for name, rows in got["sections"].items():
        assert exact(rows) == exact(expected[name]), name  # every figure, to the last digit
    assert exact(got["scorecard"]) == exact(expected["scorecard"])
    card = {r["figure"]: r for r in got["scorecard"]}
    assert Decimal(card["cost_per_request_usd"]["value"]) > 0
    assert 0 < card["gpu_utilization_pct"]["value"] <= 100
    assert card["latency_p95_ms"]["value"] > 0 and card["queue_depth"]["value"] is None
    # the sentences `costline report unit-costs` prints under its tables
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb://{org.copy}", "COLUMNS": "1000",
           "COSTLINE_CONFIG": str(org.root / "costline.yaml")}  # fmt: skip
    table = subprocess.run([sys.executable, "-m", "costline", "report", "unit-costs", "--period",
                            PERIOD, "--format", "table"], capture_output=True, text=True, env=env,
                           timeout=600).stdout  # fmt: skip
    said = [line for line in table.splitlines() if line.endswith("per prediction.")]
    assert said and [s for s in got["sentences"] if s.endswith("per prediction.")] == said
    assert ok(client, "/api/v1/unit-costs", team="search")["ignored_filters"] == ["team"]


# -- one name per model ----------------------------------------------------------------------------


def test_a_model_aliased_in_the_config_is_one_row_on_models_and_tokens(org: Org) -> None:
    """The bills tag `gpt-4o-mini`; OpenAI's log says `gpt-4o-mini-2024-07-18`. Without the
    alias the two views name two models; with it, one, and a filter by it reaches both."""
    plain = org.config.model_copy(update={"models": ModelNames()})
    aliased = org.config.model_copy(update={"models": ModelNames(aliases={
        "gpt-4o-mini-2024-07-18": "gpt-4o-mini", "Claude 3.5 Sonnet": "claude-3.5-sonnet",
        "claude-3-5-sonnet": "claude-3.5-sonnet"})})  # fmt: skip
    seen = {}
    for name, config in (("plain", plain), ("aliased", aliased)):
        with TestClient(create_app(org.ledger, config, warm=False)) as c:
            seen[name] = (
                # every model, not the top 20 (the demo's planted waste brings models of its own)
                {r["key"] for r in ok(c, "/api/v1/spend", by="model", top=100)["rows"]},
                {r["key"]: r for r in ok(c, "/api/v1/tokens", by="model")["rows"]},
                {r["model"] for r in ok(c, "/api/v1/showback", by="model")["rows"]},
                ok(c, "/api/v1/tokens", by="model", model="gpt-4o-mini")["rows"],
                ok(c, "/api/v1/spend", by="model", model="gpt-4o-mini")["total_usd"],
            )
    models, tokens, showback, _, _ = seen["plain"]
    assert "gpt-4o-mini" in models and "gpt-4o-mini" not in tokens
    assert "gpt-4o-mini-2024-07-18" in tokens and "claude-3-5-sonnet" in models
    models, tokens, showback, filtered, spend = seen["aliased"]
    assert "gpt-4o-mini" in models & set(tokens) & showback
    assert "gpt-4o-mini-2024-07-18" not in tokens
    assert "claude-3.5-sonnet" in models & showback and "claude-3-5-sonnet" not in models
    assert [r["key"] for r in filtered] == ["gpt-4o-mini"] and Decimal(spend) > 0
    before = seen["plain"][1]["gpt-4o-mini-2024-07-18"]
    assert tokens["gpt-4o-mini"]["requests"] == before["requests"]
    assert tokens["gpt-4o-mini"]["cost_usd"] == before["cost_usd"]
