"""`costline serve`'s JSON API on a small demo organization: every endpoint's shape, filters that
reach the engine and agree with SQL over the cost lines, finding transitions persisted, auth and
roles, no secret in any answer, and the real server process."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from costline.cli.demo import run_demo
from costline.cli.output import Format
from costline.config import Config, load_config
from costline.ledger.store import Ledger
from costline.server.api import money
from costline.server.app import create_app
from costline.server.auth import Auth
from tests.helpers import api_ok, stop

# The window the API shows by default: the month of the demo's last billed day (2026-10-31).
START, END = "2026-10-01", "2026-11-01"
VIEWER, OPERATOR, ADMIN = "viewer-token-0123456789", "operator-token-0123456789", "admin-token-0123456789"  # fmt: skip
WEBHOOK = "https://hooks.example.com/services/T0/B0/s3cr3t-webhook-path"
PAGER_KEY = "pagerduty-routing-key-s3cr3t"
WEBHOOK_WRITTEN = "https://bot:pw-s3cr3t@hooks.example.com/in?team=finops&token=written-s3cr3t"


@dataclass(frozen=True)
class Org:
    root: Path
    ledger: Ledger
    config: Config
    spare: Path  # a copy of the ledger for the server process (the file has one writer)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    root = tmp_path_factory.mktemp("serve")
    out = root / "org"
    url = f"duckdb://{out / 'ledger.duckdb'}"
    run_demo(out=out, ledger_url=url, seed=7, days=20, scale=0.2, fmt=Format.json,
             err=Console(file=io.StringIO()))  # fmt: skip
    spare = root / "spare.duckdb"
    shutil.copyfile(out / "ledger.duckdb", spare)
    with Ledger(url) as ledger:
        yield Org(out, ledger, load_config(out / "costline.yaml"), spare)


@pytest.fixture(scope="module")
def client(org: Org) -> Iterator[TestClient]:
    app = create_app(org.ledger, org.config, warm=False)
    with TestClient(app) as c:
        yield c


ok = api_ok


def sql_sum(org: Org, where: str = "", params: list[Any] | None = None) -> Decimal:
    con = org.ledger.con.cursor()
    try:
        row = con.execute(
            "SELECT coalesce(sum(EffectiveCost), 0) FROM cost_lines WHERE ChargePeriodStart >= ? "
            f"AND ChargePeriodStart < ? {where}",
            [dt.datetime.fromisoformat(f"{START}T00:00:00+00:00"),
             dt.datetime.fromisoformat(f"{END}T00:00:00+00:00"), *(params or [])],
        ).fetchone()  # fmt: skip
    finally:
        con.close()
    assert row is not None
    return Decimal(row[0])


# -- shapes ----------------------------------------------------------------------------------------


def test_every_endpoint_answers_in_its_documented_shape(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    health = ok(client, "/api/v1/health")
    assert health["last_bill_day"] == "2026-10-31" and health["schema_version"] >= 1
    dims = ok(client, "/api/v1/meta/dimensions")
    assert {"team", "project", "environment", "provider", "service", "model"} <= set(dims)
    assert {"AWS", "Microsoft", "Google Cloud", "Lambda"} <= set(dims["provider"])

    o = ok(client, "/api/v1/overview")
    assert o["as_of"] == "2026-10-31"
    assert {"today_usd", "month_to_date_usd", "budget_usd", "month_end_forecast",
            "active_anomalies", "open_findings", "top_movers", "daily"} <= set(o)  # fmt: skip
    assert set(o["top_movers"]) == {"week_over_week", "month_over_month"}
    mover = o["top_movers"]["week_over_week"][0]
    assert set(mover) == {"dimension", "value", "current_usd", "previous_usd", "change_usd",
                          "change_pct"}  # fmt: skip
    assert Decimal(mover["current_usd"]) - Decimal(mover["previous_usd"]) == Decimal(
        mover["change_usd"]
    )
    # 20 days of bills: the line starts at the first billed day, not at $0 on the 1st
    assert [d["day"] for d in o["daily"]][:2] == ["2026-10-12", "2026-10-13"]
    assert o["daily"][-1]["day"] == "2026-10-31"
    assert sum(Decimal(d["cost_usd"]) for d in o["daily"]) == Decimal(o["month_to_date_usd"])
    assert o["month_end_forecast"]["p50"] == o["month_to_date_usd"]  # the month is over
    assert isinstance(o["open_findings"], int) and o["open_findings"] > 0

    s = ok(client, "/api/v1/spend", by="team", granularity="week")
    assert s["by"] == "team" and s["granularity"] == "week"
    assert {"period", "key", "cost_usd"} == set(s["rows"][0])
    assert sum(Decimal(r["cost_usd"]) for r in s["rows"]) == Decimal(s["total_usd"])
    assert {r["period"] for r in s["rows"]} <= {"2026-09-28", "2026-10-05", "2026-10-12",
                                                 "2026-10-19", "2026-10-26"}  # fmt: skip

    units = ok(client, "/api/v1/unit-costs")["sections"]["llm"]
    assert units and {"model", "app", "per_1k_requests_usd", "per_1k_tokens_usd"} <= set(units[0])
    heat = ok(client, "/api/v1/gpu/utilization", by="gpu")
    assert heat["gpus"] and len(heat["z"]) == len(heat["gpus"]) <= 200
    assert all(len(row) == len(heat["hours"]) for row in heat["z"])
    cells = [v for row in heat["z"] for v in row if v is not None]
    assert cells and all(0 <= v <= 100 for v in cells)
    assert heat["hours"][0].endswith("Z")
    pools = ok(client, "/api/v1/gpu/utilization", by="pool")
    assert 0 < len(pools["gpus"]) < len(heat["gpus"])
    idle = ok(client, "/api/v1/gpu/idle")
    assert set(idle["rows"][0]) >= {"pool", "gpus", "gpu_hours", "used_gpu_hours",
                                    "held_idle_gpu_hours", "unheld_gpu_hours", "utilization_pct",
                                    "held_idle_usd", "unheld_idle_usd", "idle_usd"}  # fmt: skip
    assert sum(Decimal(r["idle_usd"]) for r in idle["rows"]) == Decimal(idle["idle_usd_total"])
    kinds = ("used", "held_idle", "unheld", "scheduled", "unobserved")
    assert all(sum(r[f"{k}_gpu_hours"] for k in kinds) == pytest.approx(r["gpu_hours"], abs=0.06)
               for r in idle["rows"])  # fmt: skip

    t = ok(client, "/api/v1/tokens", by="model")
    assert set(t["rows"][0]) >= {"key", "requests", "input_tokens", "output_tokens",
                                 "cached_input_tokens", "cost_usd", "cost_per_1k_tokens",
                                 "cache_hit_rate", "avg_context_tokens"}  # fmt: skip
    assert set(t["daily"][0]) >= {"day", "key", "input_tokens", "output_tokens",
                                  "avg_context_tokens", "cost_usd"}  # fmt: skip
    assert ok(client, "/api/v1/tokens", by="app")["rows"][0]["key"] != t["rows"][0]["key"]

    budgets = ok(client, "/api/v1/budgets")["rows"]
    assert budgets and {"budget", "spent_usd", "used_pct", "state", "forecast_p50_usd",
                        "days_to_exhaustion", "thresholds_crossed"} <= set(budgets[0])  # fmt: skip
    fc = ok(client, "/api/v1/forecast", metric="cost_usd", by="team", horizon=30)["rows"]
    assert fc and all(
        Decimal(r["horizon_p10"]) <= Decimal(r["horizon_p50"]) <= Decimal(r["horizon_p90"])
        for r in fc
    )
    assert all(r["horizon_days"] == 30 for r in fc)

    found = ok(client, "/api/v1/findings", status="open")["rows"]
    assert found and set(found[0]) >= {"fingerprint", "kind", "severity", "status", "title",
                                       "summary", "scope", "owner", "impact_usd", "start", "end",
                                       "first_seen", "last_seen", "actions", "evidence"}  # fmt: skip
    one = ok(client, f"/api/v1/findings/{found[0]['fingerprint']}")
    assert one["fingerprint"] == found[0]["fingerprint"]
    notes = ok(client, "/api/v1/annotations")["rows"]
    assert notes and set(notes[0]) == {"ts", "end", "kind", "scope", "text"}


def test_a_forecast_of_the_month_end_before_it_ends(client: TestClient) -> None:
    o = ok(client, "/api/v1/overview", end="2026-10-15")
    assert o["as_of"] == "2026-10-14"
    f = o["month_end_forecast"]
    mtd = Decimal(o["month_to_date_usd"])
    assert mtd < Decimal(f["p10"]) <= Decimal(f["p50"]) <= Decimal(f["p90"])


def test_money_is_an_exact_decimal_string() -> None:
    assert money(Decimal("1234.500000000000000000")) == "1234.50"
    assert money(Decimal("0.000000000000000001")) == "0.000000000000000001"
    assert money(Decimal("1E+3")) == "1000.00"
    assert money(Decimal("-0E-18")) == "0.00"
    huge = Decimal("12345678901234567890.123456789012345678")  # 38 digits: no rounding
    assert money(huge) == "12345678901234567890.123456789012345678"


# -- filters ---------------------------------------------------------------------------------------


def test_a_filter_changes_the_totals_and_they_match_sql_over_the_cost_lines(
    org: Org, client: TestClient
) -> None:
    everything = ok(client, "/api/v1/spend", by="provider")
    assert Decimal(everything["total_usd"]) == sql_sum(org)
    aws = ok(client, "/api/v1/spend", by="team", provider="AWS")
    assert Decimal(aws["total_usd"]) == sql_sum(org, "AND ProviderName = ?", ["AWS"])
    assert Decimal(aws["total_usd"]) < Decimal(everything["total_usd"])
    # a|b and a repeated parameter both mean either
    both = ok(client, "/api/v1/spend", by="team", provider="AWS|Lambda")
    again = client.get("/api/v1/spend", params=[("provider", "AWS"), ("provider", "Lambda")])
    expected = sql_sum(org, "AND ProviderName IN (?, ?)", ["AWS", "Lambda"])
    assert Decimal(both["total_usd"]) == Decimal(again.json()["total_usd"]) == expected
    # the overview agrees with spend, and the window moves it
    o = ok(client, "/api/v1/overview", provider="AWS")
    assert Decimal(o["month_to_date_usd"]) == Decimal(aws["total_usd"])
    week = ok(client, "/api/v1/spend", by="team", start="2026-10-20", end="2026-10-27")
    assert Decimal(week["total_usd"]) == sum(
        (Decimal(d["cost_usd"]) for d in ok(client, "/api/v1/overview")["daily"]
         if "2026-10-20" <= d["day"] < "2026-10-27"), Decimal(0),
    )  # fmt: skip
    # a derived dimension: the team's share of every provider's spend
    team = ok(client, "/api/v1/spend", by="provider", team="search")
    by_team = {r["key"]: Decimal(r["cost_usd"]) for r in
               ok(client, "/api/v1/spend", by="team", granularity="month")["rows"]}  # fmt: skip
    assert Decimal(team["total_usd"]) == by_team["search"] > 0


def test_unknown_filters_and_bad_values_are_400_with_a_message(client: TestClient) -> None:
    for path, params, says in (
        ("/api/v1/spend", {"colour": "red"}, "unknown query parameter 'colour'"),
        ("/api/v1/overview", {"teams": "search"}, "unknown query parameter 'teams'"),
        ("/api/v1/spend", {"by": "colour"}, "by='colour'"),
        ("/api/v1/spend", {"start": "2026-13-01"}, "start '2026-13-01': expected a day"),
        ("/api/v1/spend", {"start": "2026-10-10", "end": "2026-10-01"}, "must be before end"),
        ("/api/v1/spend", {"top": "lots"}, "top"),
        ("/api/v1/forecast", {"by": "colour"}, "colour"),
        ("/api/v1/forecast", {"metric": "gpu_hours", "by": "colour"}, "colour"),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        error = r.json()["error"]
        assert error["status"] == 400 and says in error["message"], error


# Every query parameter that names a day; an endpoint taking one is found from the OpenAPI
# document, so a new endpoint is covered without touching this test.
DAY_PARAMETERS = frozenset({"start", "end", "period", "day", "as_of", "since", "until"})
BAD_DAYS = ("9999-12-31", "0001-01-01", "2026-13-01", "2026-02-30", "yesterday")


def test_every_endpoint_taking_a_day_refuses_a_bad_one_with_a_400_that_names_it(
    client: TestClient,
) -> None:
    spec = ok(client, "/api/v1/openapi.json")
    taking: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        parameters = operations.get("get", {}).get("parameters", [])
        names = {p["name"] for p in parameters if p["in"] == "query"} & DAY_PARAMETERS
        if names and "{" not in path:
            taking[path] = names
    assert len(taking) >= 11, sorted(taking)  # overview, spend, budgets, findings, ...
    for path, names in sorted(taking.items()):
        asks = [({name: day}, f"{name} {day!r}") for name in sorted(names) for day in BAD_DAYS]
        if {"start", "end"} <= names:
            asks += [({"start": "2026-10-10", "end": "2026-10-01"}, "must be before end"),
                     ({"start": "2026-10-01", "end": "2026-10-01"}, "must be before end")]  # fmt: skip
        for params, says in asks:
            r = client.get(path, params=params)
            assert r.status_code == 400, (path, params, r.text)
            error = r.json()["error"]
            assert error["code"] == "bad_request" and says in error["message"], (path, error)
    r = client.get("/api/v1/spend", params={"start": "9999-12-31"})
    assert r.json()["error"]["message"] == (
        "start '9999-12-31' is out of range: give a day from 1970-01-01 to 2100-01-01"
    )
    # the ends of the range are days like any other
    widest = ok(client, "/api/v1/spend", start="1970-01-01", end="2100-01-01", granularity="month")
    assert (widest["start"], widest["end"]) == ("1970-01-01", "2100-01-01")


# -- findings --------------------------------------------------------------------------------------


def stored_status(org: Org, fingerprint: str) -> tuple[str, str]:
    con = org.ledger.con.cursor()
    try:
        row = con.execute(
            "SELECT status, body FROM findings WHERE fingerprint = ?", [fingerprint]
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return row[0], json.loads(row[1])["status"]


def test_acknowledge_resolve_snooze_reopen_persist_and_bad_moves_are_409(
    org: Org, client: TestClient
) -> None:
    before = ok(client, "/api/v1/overview")["open_findings"]
    fp = ok(client, "/api/v1/findings", status="open")["rows"][0]["fingerprint"]

    acked = client.post(f"/api/v1/findings/{fp}/ack")
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    assert stored_status(org, fp) == ("acknowledged", "acknowledged")
    assert ok(client, "/api/v1/overview")["open_findings"] == before - 1  # not a stale cache
    assert fp not in {
        r["fingerprint"] for r in ok(client, "/api/v1/findings", status="open")["rows"]
    }

    twice = client.post(f"/api/v1/findings/{fp}/ack")
    assert twice.status_code == 409
    assert "cannot acknowledge" in twice.json()["error"]["message"]
    assert stored_status(org, fp)[0] == "acknowledged"

    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    snoozed = client.post(f"/api/v1/findings/{fp}/snooze", json={"until": until})
    assert snoozed.status_code == 200 and snoozed.json()["snoozed_until"].endswith("Z")
    assert stored_status(org, fp) == ("snoozed", "snoozed")
    past = client.post(f"/api/v1/findings/{fp}/snooze", json={"until": "2020-01-01T00:00:00Z"})
    assert past.status_code == 409 and "not in the future" in past.json()["error"]["message"]
    naive = client.post(f"/api/v1/findings/{fp}/snooze", json={"until": "2030-01-01T00:00:00"})
    assert naive.status_code == 400
    assert client.post(f"/api/v1/findings/{fp}/snooze", json={}).status_code == 400

    assert client.post(f"/api/v1/findings/{fp}/resolve").json()["status"] == "resolved"
    assert client.post(f"/api/v1/findings/{fp}/snooze", json={"until": until}).status_code == 409
    assert client.post(f"/api/v1/findings/{fp}/reopen").json()["status"] == "open"
    assert stored_status(org, fp) == ("open", "open")
    assert ok(client, "/api/v1/overview")["open_findings"] == before

    missing = client.post(f"/api/v1/findings/{'0' * 64}/ack")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/findings/{'0' * 64}").status_code == 404


def test_concurrent_requests_on_their_own_cursors_agree_with_serial_ones(
    client: TestClient,
) -> None:
    asks = [("/api/v1/spend", {"by": d, "team": t}) for d in ("team", "service", "model")
            for t in ("search", "vision", "assistant")]  # fmt: skip
    asks += [("/api/v1/overview", {"provider": p}) for p in ("AWS", "Microsoft", "Lambda")]
    serial = [client.get(p, params=q).json() for p, q in asks]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda a: client.get(a[0], params=a[1]).json(), asks * 2))
    assert parallel == serial * 2


# -- auth and secrets ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(org: Org) -> Iterator[TestClient]:
    text = (org.root / "costline.yaml").read_text() + (
        "routes:\n"
        "  - {type: slack, name: finops-slack, webhook_url_env: TEST_SLACK_WEBHOOK}\n"
        "  - {type: pagerduty, name: oncall, routing_key_env: TEST_PAGER_KEY}\n"
        f"  - {{type: webhook, name: bot, url: '{WEBHOOK_WRITTEN}',\n"
        "      headers: {Authorization: Bearer written-s3cr3t-header, X-Team: finops}}\n"
        "server:\n"
        "  tokens:\n"
        "    - {name: dashboard, token_env: TEST_VIEWER_TOKEN, role: viewer}\n"
        "    - {name: oncall, token_env: TEST_OPERATOR_TOKEN, role: operator}\n"
    )
    (org.root / "secured.yaml").write_text(text)
    config = load_config(org.root / "secured.yaml")
    env = {"TEST_VIEWER_TOKEN": VIEWER, "TEST_OPERATOR_TOKEN": OPERATOR,
           "COSTLINE_API_TOKENS": f"admin:{ADMIN}"}  # fmt: skip
    app = create_app(org.ledger, config, auth=Auth.from_sources(config.server, env), warm=False)
    with pytest.MonkeyPatch.context() as mp, TestClient(app) as c:
        mp.setenv("TEST_SLACK_WEBHOOK", WEBHOOK)  # what the notifiers would read
        mp.setenv("TEST_PAGER_KEY", PAGER_KEY)
        yield c


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_and_roles(client: TestClient, secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200
    none = secured.get("/api/v1/overview")
    assert none.status_code == 401 and none.headers["WWW-Authenticate"] == "Bearer"
    assert none.json()["error"]["code"] == "unauthorized"
    assert (
        secured.get("/api/v1/overview", headers=as_("not-a-real-token-at-all")).status_code == 401
    )
    assert secured.get("/api/v1/openapi.json").status_code == 401
    assert secured.get("/api/v1/overview", headers=as_(VIEWER)).status_code == 200
    assert secured.get("/api/v1/whoami", headers=as_(VIEWER)).json() == {
        "name": "dashboard", "role": "viewer"}  # fmt: skip

    fp = ok(client, "/api/v1/findings", status="open")["rows"][0]["fingerprint"]
    refused = secured.post(f"/api/v1/findings/{fp}/ack", headers=as_(VIEWER))
    assert refused.status_code == 403 and "operator" in refused.json()["error"]["message"]
    assert secured.post(f"/api/v1/findings/{fp}/ack").status_code == 401
    done = secured.post(f"/api/v1/findings/{fp}/ack", headers=as_(OPERATOR))
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    assert secured.post(f"/api/v1/findings/{fp}/reopen", headers=as_(ADMIN)).status_code == 200

    assert secured.get("/api/v1/config", headers=as_(OPERATOR)).status_code == 403
    assert secured.get("/api/v1/config", headers=as_(ADMIN)).status_code == 200
    reloaded = secured.post("/api/v1/config/reload", headers=as_(ADMIN))
    assert reloaded.status_code == 200, reloaded.text

    # the dashboard's cookie stands in for the header
    secured.cookies.set("costline_token", VIEWER)
    try:
        assert secured.get("/api/v1/budgets").status_code == 200
        assert secured.post(f"/api/v1/findings/{fp}/ack").status_code == 403
    finally:
        secured.cookies.clear()


def test_a_secret_never_appears_in_an_answer(org: Org, secured: TestClient) -> None:
    secrets = (WEBHOOK, "s3cr3t", PAGER_KEY, VIEWER, OPERATOR, ADMIN)
    paths = ["/api/v1/health", "/api/v1/meta/dimensions", "/api/v1/overview", "/api/v1/spend",
             "/api/v1/unit-costs", "/api/v1/gpu/utilization", "/api/v1/gpu/idle",
             "/api/v1/tokens", "/api/v1/budgets", "/api/v1/forecast", "/api/v1/findings",
             "/api/v1/annotations", "/api/v1/openapi.json", "/api/v1/config", "/api/v1/whoami",
             "/api/v1/docs", "/healthz", "/api/v1/nowhere", "/"]  # fmt: skip
    seen = []
    for path in paths:
        for headers in ({}, as_(ADMIN), as_("wrong-" + ADMIN)):
            r = secured.get(path, headers=headers)
            seen.append((path, r.status_code, r.text + json.dumps(dict(r.headers))))
    for method, path in (("POST", "/api/v1/findings/nope/ack"), ("POST", "/api/v1/config/reload")):
        r = secured.request(method, path, headers=as_(ADMIN))
        seen.append((path, r.status_code, r.text))
    assert {s for _, s, _ in seen} >= {200, 401, 404}
    for path, _, text in seen:
        for secret in secrets:
            assert secret not in text, (path, secret)
    config = ok_with(secured, "/api/v1/config", ADMIN)
    assert "TEST_SLACK_WEBHOOK" in json.dumps(config)  # the variable's name, not its value
    # secrets written in the file itself show as [redacted], the rest of the route as written
    [bot] = [r for r in config["config"]["routes"] if r["name"] == "bot"]
    assert bot["url"] == "https://bot:[redacted]@hooks.example.com/in?team=finops&token=[redacted]"
    assert bot["headers"] == {"Authorization": "[redacted]", "X-Team": "finops"}


def ok_with(c: TestClient, path: str, token: str) -> dict[str, Any]:
    r = c.get(path, headers=as_(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_openapi_lists_every_path(client: TestClient) -> None:
    spec = ok(client, "/api/v1/openapi.json")
    paths = set(spec["paths"])
    for path in ("health", "meta/dimensions", "overview", "spend", "unit-costs", "showback",
                 "chargeback", "gpu/utilization", "gpu/idle", "tokens", "budgets", "forecast",
                 "findings",
                 "findings/{fingerprint}", "findings/{fingerprint}/ack",
                 "findings/{fingerprint}/resolve", "findings/{fingerprint}/reopen",
                 "findings/{fingerprint}/snooze", "annotations"):  # fmt: skip
        assert f"/api/v1/{path}" in paths, path
    spend = {p["name"] for p in spec["paths"]["/api/v1/spend"]["get"]["parameters"]}
    assert {"start", "end", "team", "provider", "cost_layer", "by", "granularity"} <= spend
    assert "text/html" in client.get("/api/v1/docs").headers["content-type"]


# -- the server process ----------------------------------------------------------------------------


@contextlib.contextmanager
def serving(org: Org, log: Path, **env: str) -> Iterator[tuple[str, str]]:
    """`costline serve --port 0` on the spare ledger in its own process: its base URL and the line
    it printed. Its stderr goes to `log` (a pipe nobody reads would stall it once full)."""
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb://{org.spare}",
           "COSTLINE_CONFIG": str(org.root / "costline.yaml"), **env}  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "costline", "serve", "--port", "0", "--no-scheduler",
             "--log-level", "warning"],
            env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            assert match, (line, log.read_text())
            yield match.group(1), line
        finally:
            stop(proc)


def test_costline_serve_runs_as_a_process_and_prints_its_url(org: Org, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(org, log, COSTLINE_API_TOKENS=f"viewer:{VIEWER}") as (base, line):
        assert httpx.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
        assert httpx.get(f"{base}/api/v1/overview", timeout=30).status_code == 401
        r = httpx.get(f"{base}/api/v1/overview", headers=as_(VIEWER), timeout=60)
        assert r.status_code == 200 and r.json()["as_of"] == "2026-10-31"
    assert VIEWER not in line + log.read_text()


# Health twice as often as the rest: its schema version was read on the ledger's own connection,
# which DuckDB refuses to a second caller while busy ("connection is busy"): ~4% of calls failed.
LOAD_PATHS = ("/api/v1/health", "/api/v1/overview", "/api/v1/health", "/api/v1/spend",
              "/api/v1/health", "/api/v1/findings", "/api/v1/health", "/api/v1/budgets",
              "/api/v1/health", "/api/v1/meta/dimensions")  # fmt: skip
CLIENTS, REQUESTS_EACH = 20, 10


def test_twenty_concurrent_clients_get_no_errors_from_the_real_server(
    org: Org, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving(org, log) as (base, _):
        start = threading.Barrier(CLIENTS)

        def client(i: int) -> list[tuple[str, int | str]]:
            answers: list[tuple[str, int | str]] = []
            with httpx.Client(base_url=base, timeout=60) as c:
                start.wait(timeout=60)  # every client connected: they ask at the same time
                for k in range(REQUESTS_EACH):
                    path = LOAD_PATHS[(i + k) % len(LOAD_PATHS)]
                    try:
                        answers.append((path, c.get(path).status_code))
                    except httpx.HTTPError as exc:  # a dropped connection counts as an error
                        answers.append((path, type(exc).__name__))
            return answers

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = [a for batch in pool.map(client, range(CLIENTS)) for a in batch]
    errors = [a for a in answers if a[1] != 200]
    assert len(answers) == CLIENTS * REQUESTS_EACH
    assert errors == [], (len(errors), log.read_text()[-3000:])
    assert "Traceback" not in log.read_text()


def test_an_empty_ledger_answers_every_endpoint(tmp_path: Path) -> None:
    paths = ["health", "meta/dimensions", "overview", "spend", "unit-costs", "showback",
             "showback?idle=shared&by=model", "chargeback", "gpu/utilization",
             "gpu/utilization?by=pool", "gpu/idle", "tokens", "budgets", "forecast",
             "forecast?metric=tokens", "findings", "annotations"]  # fmt: skip
    with (
        Ledger(f"duckdb://{tmp_path / 'empty.duckdb'}") as ledger,
        TestClient(create_app(ledger, Config(), warm=False)) as c,
    ):
        answers = {p: c.get(f"/api/v1/{p}") for p in paths}
    assert {p: r.status_code for p, r in answers.items()} == dict.fromkeys(paths, 200)
    assert answers["health"].json()["last_bill_day"] is None
    assert answers["overview"].json()["month_end_forecast"] is None
    assert answers["spend"].json()["total_usd"] == "0.00"
    assert answers["showback"].json()["rows"] == [] == answers["chargeback"].json()["rows"]


class Recording:
    """A scheduler that only records being started and stopped (the real one pulls sources)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


def test_the_app_starts_and_stops_its_scheduler(tmp_path: Path) -> None:
    scheduler = Recording()
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as ledger:
        app = create_app(ledger, Config(), scheduler=scheduler, warm=False)
        with TestClient(app) as c:
            assert scheduler.calls == ["start"]
            assert c.get("/api/v1/health").json()["scheduler"]["failing"] is False
        assert scheduler.calls == ["start", "stop"]


def test_the_response_cache_computes_once_and_keeps_to_its_size() -> None:
    from costline.server.reader import ResponseCache

    cache = ResponseCache(max_bytes=10)
    calls: list[str] = []

    def compute(value: bytes) -> bytes:
        calls.append(value.decode())
        return value

    assert cache.get("a", lambda: compute(b"aaaaaa")) == b"aaaaaa"
    assert cache.get("a", lambda: compute(b"other")) == b"aaaaaa"  # kept
    cache.get("b", lambda: compute(b"bbbbbb"))  # 12 bytes > 10: the oldest goes
    assert cache.get("a", lambda: compute(b"aaaaaa")) == b"aaaaaa"
    assert calls == ["aaaaaa", "bbbbbb", "aaaaaa"]


def test_token_configuration_errors_say_what_to_do_and_never_echo_a_token() -> None:
    from costline.config import Server
    from costline.errors import ConfigError
    from costline.server.auth import Role

    server = Server.model_validate({"tokens": [{"name": "ci", "token_env": "CI_TOKEN"}]})
    for env, says in (
        ({}, "CI_TOKEN is not set or empty"),
        ({"CI_TOKEN": "tiny-secret"}, "shorter than 16 characters"),
        ({"CI_TOKEN": VIEWER, "COSTLINE_API_TOKENS": f"root:{ADMIN}"}, "write role:token"),
        ({"CI_TOKEN": VIEWER, "COSTLINE_API_TOKENS": f"admin:{VIEWER}"}, "are the same token"),
    ):
        with pytest.raises(ConfigError) as caught:
            Auth.from_sources(server, env)
        assert says in str(caught.value)
        assert not any(t in str(caught.value) for t in (VIEWER, ADMIN, "tiny-secret"))
    auth = Auth.from_sources(server, {"CI_TOKEN": VIEWER}, token=ADMIN, role="operator")
    viewer, operator = auth.identify(VIEWER), auth.identify(ADMIN)
    assert viewer is not None and (viewer.name, viewer.role) == ("ci", Role.VIEWER)
    assert operator is not None and operator.role is Role.OPERATOR
    assert auth.identify("not-a-token-of-ours") is None


def test_the_heatmap_keeps_at_most_its_row_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costline.server import telemetry
    from costline.server.filters import Filters

    every = ok(client, "/api/v1/gpu/utilization", by="gpu")
    assert not every["truncated"]
    monkeypatch.setattr(telemetry, "MAX_HEATMAP_ROWS", 10)
    capped = telemetry.gpu_utilization(client.app.state.reader, Filters(), by="gpu")  # type: ignore[attr-defined]
    assert capped["truncated"] and capped["gpus"] == every["gpus"][:10]
    assert len(capped["z"]) == 10


@pytest.fixture
def cli_json(org: Org, tmp_path: Path) -> Any:
    """`costline ARGS -f json` in-process on a copy of the demo ledger: its parsed output."""
    from typer.testing import CliRunner

    from costline.cli.main import app

    copy = tmp_path / "ledger.duckdb"
    shutil.copyfile(org.spare, copy)
    env = {
        "COSTLINE_LEDGER": f"duckdb://{copy}",
        "COSTLINE_CONFIG": str(org.root / "costline.yaml"),
    }

    def cli(*args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "-f", "json"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return cli


def test_idle_is_the_same_in_the_api_showback_and_chargeback(
    client: TestClient, cli_json: Any
) -> None:
    """One idle cost (docs/methodology/allocation.md): the GPU page's totals of both kinds equal
    showback's and chargeback's, computed through the CLI on the same window, to the cent."""
    idle = ok(client, "/api/v1/gpu/idle")
    totals = idle["totals"]
    assert Decimal(totals["unheld_idle_usd"]) > 0 and Decimal(totals["held_idle_usd"]) > 0
    period = f"{idle['start']}..{idle['end']}"
    cent = Decimal("0.01")
    for report in ("showback", "chargeback"):
        for by in ("team", "project"):
            rows = cli_json("report", report, "--period", period, "--by", by)
            held = sum(Decimal(r["held_idle_usd"]) for r in rows)
            unheld = sum(Decimal(r["unheld_idle_usd"]) for r in rows)
            assert held.quantize(cent) == Decimal(totals["held_idle_usd"]).quantize(cent)
            assert unheld.quantize(cent) == Decimal(totals["unheld_idle_usd"]).quantize(cent)
            hours = sum(r["held_idle_gpu_hours"] for r in rows)
            assert hours == pytest.approx(totals["held_idle_gpu_hours"], abs=0.05)
            if report == "showback":
                [bucket] = [r for r in rows if r[by] == "__idle__"]
                assert Decimal(bucket["amount_usd"]) == unheld
                assert bucket["unheld_idle_gpu_hours"] == pytest.approx(
                    totals["unheld_gpu_hours"], abs=0.05
                )


def test_a_runs_cost_is_the_same_in_unit_costs_budgets_and_the_api(
    client: TestClient, cli_json: Any
) -> None:
    """`costline budgets` states the window each experiment's cost covers; `report unit-costs`
    and `/api/v1/unit-costs` over that window give every registry run the same dollars, with
    the same coverage."""
    experiments = cli_json("budgets")["experiments"]
    [window] = {e["window"] for e in experiments}
    runs = {r["name"]: r for r in cli_json("report", "unit-costs", "--period", window,
                                           "--top", "1000")["declared"]}  # fmt: skip
    first, last = window.split("..")
    api = {r["name"]: r for r in ok(client, "/api/v1/unit-costs", start=first,
                                    end=last)["sections"]["declared"]}  # fmt: skip
    registry = [e for e in experiments if e["experiment"] in runs]
    assert len(registry) >= 3
    for e in registry:
        r = runs[e["experiment"]]
        assert Decimal(e["cost_usd"]) == Decimal(r["cost_usd"]).quantize(Decimal("0.01"))
        assert Decimal(api[e["experiment"]]["cost_usd"]) == Decimal(r["cost_usd"])
        assert e["coverage_pct"] == r["coverage_pct"] and r["window"] == window
    # Hours without telemetry follow the jobs' schedules: the demo has one day of telemetry in
    # 20 days of bills, so the training runs' coverage is low, and stated.
    assert any(r["coverage_pct"] is not None and r["coverage_pct"] < 50 for r in runs.values())
