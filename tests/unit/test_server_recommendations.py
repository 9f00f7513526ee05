"""Recommendations in the API and the dashboard (issue 16): the stored ones filtered, sorted and
summed exactly, the page that shows them, and a run through the API that stores what it finds and
resolves what it no longer finds, the one way `costline recommend` does, behind an operator's
token."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
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
from costline.clock import FixedClock
from costline.config import Config, load_config
from costline.ledger.store import Ledger
from costline.model import Finding, Window
from costline.optimize.recommend import Savings, recommendation
from costline.optimize.run import Run
from costline.optimize.store import store
from costline.server.app import create_app
from costline.server.auth import Auth
from tests.helpers import api_ok

CLOCK = FixedClock(dt.datetime(2026, 10, 20, tzinfo=dt.UTC))
JUDGED = Window(start=dt.datetime(2026, 10, 6, tzinfo=dt.UTC), end=CLOCK.now())
SNIPPET = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec:\n  minReplicaCount: 0"
VIEWER, OPERATOR = "viewer-token-0123456789", "operator-token-0123456789"


def rec(kind: str, key: str, value: str, owner: str, money: tuple[str, str, str, str],
        action: str = "Do the change") -> Finding:  # fmt: skip
    """A recommendation as a recommender builds it: current cost, then P50, low and high."""
    current, p50, low, high = (Decimal(m) for m in money)
    return recommendation(
        kind=kind, scope={key: value, "team": owner}, title=f"{value}: {kind}",
        summary=f"{value} could cost less", owner=owner, current_monthly=current,
        savings=Savings(p50, low, high), method=f"{kind} method", inputs={"n": 1},
        window=JUDGED, coverage=0.9, risk=f"{kind} risk", action=action, clock=CLOCK,
    )  # fmt: skip


RESIZE = rec("gpu_rightsizing", "pool", "aws/us-east-1/p4d.24xlarge", "search",
             ("40000", "12000", "9000", "12000"), "Move to g4dn.metal")  # fmt: skip
IDLE = rec("idle_capacity", "pool", "gcp/us-central1/a2-highgpu-8g", "vision",
           ("20000", "5000", "4000", "6000"))  # fmt: skip
SCALE = rec("autoscaling", "endpoint", "chat", "assistant", ("8000", "3000", "2500", "3500"),
            "Apply a KEDA ScaledObject:\n" + SNIPPET)  # fmt: skip
COMMIT = rec("commitment", "pool", "aws/us-east-1/g6e.12xlarge", "search",
             ("3000", "800", "600", "900"))  # fmt: skip
SMALL = rec("gpu_rightsizing", "pool", "aws/us-west-2/g5.xlarge", "vision",
            ("2000", "90", "60", "90"))  # fmt: skip
SPOT = rec("spot_capacity", "pool", "gcp/us-central1/a3-highgpu-8g", "vision",
           ("9000", "5000", "3000", "5500"))  # fmt: skip


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A ledger holding six recommendations: five live (one acknowledged), one acted on."""
    path = tmp_path_factory.mktemp("recs") / "ledger.duckdb"
    with Ledger(f"duckdb://{path}", clock=CLOCK) as ledger:
        ledger.write([], source="recommend", findings=[RESIZE, IDLE, SCALE, COMMIT, SMALL, SPOT])
        ledger.con.execute("UPDATE findings SET status = 'acknowledged', body = ? WHERE "
                           "fingerprint = ?", [COMMIT.acknowledge().model_dump_json(),
                                               COMMIT.fingerprint])  # fmt: skip
        acted = SPOT.model_copy(update={"evidence": {**SPOT.evidence,
                                                     "realized_monthly_usd": "4200.00"}})  # fmt: skip
        store(ledger.con, Run(found=[], stale=[acted]), CLOCK)
        app = create_app(ledger, Config(), clock=CLOCK, warm=False)
        with TestClient(app) as client:
            yield client


def titles(body: dict[str, Any]) -> list[str]:
    return [r["title"] for r in body["rows"]]


def test_live_recommendations_come_largest_saving_first_with_their_fields(
    stored: TestClient,
) -> None:
    body = api_ok(stored, "/api/v1/recommendations")
    assert titles(body) == [f.title for f in (RESIZE, IDLE, SCALE, COMMIT, SMALL)]
    assert body["status"] == ["open", "acknowledged"] and body["total"] == 5
    first = body["rows"][0]
    assert {k: first[k] for k in ("kind", "owner", "resource", "status", "current_monthly_usd",
                                  "savings_monthly_usd", "savings_low_usd", "savings_high_usd",
                                  "confidence", "risk", "method", "action", "snippet",
                                  "realized_monthly_usd")} == {
        "kind": "gpu_rightsizing", "owner": "search", "resource": "pool=aws/us-east-1/p4d.24xlarge",
        "status": "open", "current_monthly_usd": "40000.00", "savings_monthly_usd": "12000.00",
        "savings_low_usd": "9000.00", "savings_high_usd": "12000.00", "confidence": "high",
        "risk": "gpu_rightsizing risk", "method": "gpu_rightsizing method",
        "action": "Move to g4dn.metal", "snippet": None, "realized_monthly_usd": None,
    }  # fmt: skip
    assert (
        first["evidence"]["window"]["days"] == 14.0 and first["fingerprint"] == RESIZE.fingerprint
    )
    [scale] = [r for r in body["rows"] if r["kind"] == "autoscaling"]
    assert scale["snippet"] == SNIPPET and scale["action"].endswith(SNIPPET)
    # Totals are exact sums of the rows kept; by kind, largest saving first.
    assert body["totals"] == {"count": 5, "current_monthly_usd": "73000.00",
                              "savings_monthly_usd": "20890.00", "savings_low_usd": "16160.00",
                              "savings_high_usd": "22490.00", "acted_on": 0,
                              "realized_monthly_usd": "0.00",
                              "estimated_for_acted_on_usd": "0.00"}  # fmt: skip
    assert [(k["kind"], k["count"], k["savings_monthly_usd"]) for k in body["by_kind"]] == [
        ("gpu_rightsizing", 2, "12090.00"), ("idle_capacity", 1, "5000.00"),
        ("autoscaling", 1, "3000.00"), ("commitment", 1, "800.00"),
    ]  # fmt: skip
    assert body["facets"] == {
        "kinds": ["autoscaling", "commitment", "gpu_rightsizing", "idle_capacity",
                  "spot_capacity"],
        "owners": ["assistant", "search", "vision"],
    }  # fmt: skip


def test_filters_by_kind_owner_team_status_and_minimum_saving(stored: TestClient) -> None:
    def shown(**params: str) -> list[str]:
        return titles(api_ok(stored, "/api/v1/recommendations", **params))

    assert shown(kind="gpu_rightsizing") == [RESIZE.title, SMALL.title]
    assert shown(kind="commitment|gpu_rightsizing") == [RESIZE.title, COMMIT.title, SMALL.title]
    assert shown(owner="vision") == [IDLE.title, SMALL.title]
    assert shown(team="search") == [RESIZE.title, COMMIT.title]
    assert shown(status="acknowledged") == [COMMIT.title]
    assert shown(min_savings="100") == [f.title for f in (RESIZE, IDLE, SCALE, COMMIT)]
    assert shown(min_savings="3000", owner="search") == [RESIZE.title]
    assert shown(start="2026-11-01", end="2026-12-01") == []  # judged on days before that
    assert shown(start="2026-10-10", end="2026-10-12") == titles(
        api_ok(stored, "/api/v1/recommendations")
    )
    for bad in ({"status": "closed"}, {"min_savings": "-1"}, {"min_savings": "lots"},
                {"sort": "savings"}):  # fmt: skip
        r = stored.get("/api/v1/recommendations", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", bad


def test_one_acted_on_shows_its_realized_saving_beside_the_estimate(stored: TestClient) -> None:
    body = api_ok(stored, "/api/v1/recommendations", status="resolved")
    [acted] = body["rows"]
    assert acted["fingerprint"] == SPOT.fingerprint and acted["status"] == "resolved"
    assert acted["realized_monthly_usd"] == "4200.00" and acted["savings_monthly_usd"] == "5000.00"
    assert "no longer finds it" in acted["evidence"]["resolved_reason"]
    assert body["totals"]["acted_on"] == 1
    assert body["totals"]["realized_monthly_usd"] == "4200.00"
    assert body["totals"]["estimated_for_acted_on_usd"] == "5000.00"


def test_the_page_is_in_the_nav_and_has_its_tables_chart_and_filters(stored: TestClient) -> None:
    page = stored.get("/recommendations?team=search")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    text = page.text
    assert re.search(r'<a href="/recommendations\?team=search" data-path="/recommendations" '
                     r'class="current" aria-current="page">Recommendations</a>', text)  # fmt: skip
    for slot in ("rec-total", "rec-kind", "rec-owner", "rec-status", "rec-kinds",
                 "chart-rec-kinds", "rec-table", "rec-realized", "rec-realized-total"):  # fmt: skip
        assert f'id="{slot}"' in text, slot
    assert '<script src="/static/recommendations.js"></script>' in text
    assert "Content-Security-Policy" in page.headers
    assert 'href="/recommendations"' in stored.get("/").text  # every page links to it
    script = stored.get("/static/recommendations.js")
    assert script.status_code == 200 and 'C.get("recommendations"' in script.text
    spec = api_ok(stored, "/api/v1/openapi.json")["paths"]
    assert {"/api/v1/recommendations", "/api/v1/recommendations/run"} <= set(spec)
    params = {p["name"] for p in spec["/api/v1/recommendations"]["get"]["parameters"]}
    assert {"kind", "owner", "team", "status", "min_savings", "limit"} <= params


# -- a run through the API, on the demo organization -----------------------------------------------

GONE = rec("gpu_rightsizing", "pool", "aws/eu-north-1/p5.48xlarge", "search",
           ("30000", "9000", "7000", "9000"))  # fmt: skip


@dataclass(frozen=True)
class Org:
    ledger: Ledger
    config: Config
    client: TestClient


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    """The demo (20 days), with a recommendation about a pool its bills do not have."""
    out = tmp_path_factory.mktemp("recs-demo") / "org"
    url = f"duckdb://{out / 'ledger.duckdb'}"
    run_demo(out=out, ledger_url=url, seed=7, days=20, scale=0.2, fmt=Format.json,
             err=Console(file=io.StringIO()))  # fmt: skip
    with Ledger(url) as ledger:
        ledger.write([], source="recommend", findings=[GONE])
        config = load_config(out / "costline.yaml")
        with TestClient(create_app(ledger, config, warm=False)) as client:
            yield Org(ledger, config, client)


def stored_rows(org: Org) -> dict[str, tuple[str, dict[str, Any]]]:
    cur = org.ledger.con.cursor()
    try:
        rows = cur.execute("SELECT fingerprint, status, body FROM findings "
                           "WHERE kind = 'recommendation'").fetchall()  # fmt: skip
    finally:
        cur.close()
    return {fp: (status, json.loads(body)) for fp, status, body in rows}


def test_a_run_stores_what_it_finds_and_resolves_what_it_no_longer_finds(org: Org) -> None:
    done = org.client.post("/api/v1/recommendations/run", json={"days": 14})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["as_of"] == "2026-10-31" and body["window"]["days"] == 14
    found = body["found"]
    assert len(found) >= 5 and {r["kind"] for r in found} >= {"commitment", "spot_capacity"}
    saved = stored_rows(org)
    assert all(saved[r["fingerprint"]][0] == "open" for r in found)
    # The pool the demo never billed: resolved, its whole cost the realized saving.
    [gone] = body["resolved"]
    assert gone["fingerprint"] == GONE.fingerprint and gone["status"] == "resolved"
    assert gone["realized_monthly_usd"] == "30000.00"
    assert gone["evidence"]["pool_monthly_usd_after"] == "0.00"
    status, stored_gone = saved[GONE.fingerprint]
    assert status == "resolved"
    assert "gpu_rightsizing no longer finds it" in stored_gone["evidence"]["resolved_reason"]
    # A read answers the stored rows, largest saving first, summed exactly.
    live = api_ok(org.client, "/api/v1/recommendations", limit="1000")
    assert {r["fingerprint"] for r in live["rows"]} == {r["fingerprint"] for r in found}
    p50 = [Decimal(r["savings_monthly_usd"]) for r in live["rows"]]
    assert p50 == sorted(p50, reverse=True) and min(p50) >= 100  # the default minimum
    assert Decimal(live["totals"]["savings_monthly_usd"]) == sum(
        Decimal(str(saved[r["fingerprint"]][1]["impact_usd"])) for r in found
    )
    acted = api_ok(org.client, "/api/v1/recommendations", status="resolved")
    assert acted["totals"]["realized_monthly_usd"] == "30000.00"


def test_a_run_of_one_kind_keeps_the_others_and_an_acknowledged_status(org: Org) -> None:
    first = org.client.post("/api/v1/recommendations/run", json={"kind": ["commitment"]})
    assert first.status_code == 200, first.text
    commitments = [r["fingerprint"] for r in first.json()["found"]]
    assert commitments
    before = stored_rows(org)
    acked = org.client.post(f"/api/v1/findings/{commitments[0]}/ack")
    assert acked.status_code == 200
    again = org.client.post("/api/v1/recommendations/run", json={"kind": ["commitment"],
                                                                  "min_savings": "0"})  # fmt: skip
    assert again.status_code == 200 and again.json()["resolved"] == []
    after = stored_rows(org)
    assert after[commitments[0]][0] == "acknowledged"  # a run keeps what someone decided
    others = {fp for fp, (s, b) in before.items() if s == "open" and
              b["evidence"]["recommendation"] != "commitment"}  # fmt: skip
    assert others and all(after[fp][0] == "open" for fp in others)
    bad = org.client.post("/api/v1/recommendations/run", json={"kind": ["crystal_ball"]})
    assert bad.status_code == 400 and "gpu_rightsizing" in bad.json()["error"]["message"]
    extra = org.client.post("/api/v1/recommendations/run", json={"dayz": 3})
    assert extra.status_code == 400


def test_running_needs_an_operator_token_reading_a_viewer_s(org: Org, tmp_path: Path) -> None:
    env = {"COSTLINE_API_TOKENS": f"viewer:{VIEWER},operator:{OPERATOR}"}
    app = create_app(org.ledger, org.config, auth=Auth.from_sources(org.config.server, env),
                     warm=False)  # fmt: skip
    with TestClient(app) as secured:
        run = "/api/v1/recommendations/run"
        assert secured.post(run, json={"kind": ["commitment"]}).status_code == 401
        as_viewer = {"Authorization": f"Bearer {VIEWER}"}
        refused = secured.post(run, json={"kind": ["commitment"]}, headers=as_viewer)
        assert refused.status_code == 403 and "operator" in refused.json()["error"]["message"]
        assert secured.get("/api/v1/recommendations", headers=as_viewer).status_code == 200
        done = secured.post(run, json={"kind": ["commitment"]},
                            headers={"Authorization": f"Bearer {OPERATOR}"})  # fmt: skip
        assert done.status_code == 200 and done.json()["kinds"] == ["commitment"]
