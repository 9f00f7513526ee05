"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright's sync API.

`costline serve` runs as a subprocess on 127.0.0.1 (an ephemeral port) over a small demo
organization built once for the module. Every page must load with no console error and no failed
request, draw its charts, follow a filter change, and persist a finding acknowledged from its row;
with a token configured, the dashboard asks for it first. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.helpers import stop

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKEN = "operator-token-for-the-browser-test"
PAGES = ("/", "/teams", "/models", "/gpus", "/tokens", "/showback", "/chargeback", "/unit-costs",
         "/budgets", "/recommendations", "/findings")  # fmt: skip

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (make setup-system)",
    ),
]

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Server:
    url: str
    token: str | None = None

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(
            method, f"{self.url}/api/v1/{path}", headers=headers, timeout=30, **kwargs
        )


@dataclass
class Watch:
    """What went wrong in the page: console errors, uncaught exceptions, failed requests."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}")
        )
        page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )


@contextlib.contextmanager
def _serve(org: Path, tokens: str | None = None) -> Iterator[str]:
    """`costline serve --port 0` on the org's ledger; yields the URL it prints once it answers."""
    env = {**os.environ, "COSTLINE_LEDGER": f"duckdb:///{org / 'ledger.duckdb'}",
           "COSTLINE_CONFIG": str(org / "costline.yaml")}  # fmt: skip
    env.pop("COSTLINE_API_TOKENS", None)
    if tokens:
        env["COSTLINE_API_TOKENS"] = tokens
    path = org / "serve.log"
    with path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "costline", "serve", "--host", "127.0.0.1", "--port", "0",
             "--no-scheduler", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield _wait_until_serving(proc, path)
        finally:
            stop(proc)


def _wait_until_serving(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    url = None
    while True:
        text = log.read_text(errors="replace")
        if proc.poll() is not None:
            pytest.fail(f"costline serve exited {proc.returncode}:\n{text[-3000:]}")
        found = url or re.search(r"at (http://127\.0\.0\.1:\d+)/", text)
        if found:
            url = found if isinstance(found, str) else found.group(1)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return url
        if time.monotonic() > deadline:
            pytest.fail(f"costline serve did not answer in 60 s:\n{text[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo organization: two weeks of bills, a day of GPU and LLM telemetry, findings."""
    out = tmp_path_factory.mktemp("dashboard") / "org"
    made = subprocess.run(
        [sys.executable, "-m", "costline", "demo", "--out", str(out), "--days", "14",
         "--scale", "0.1", "--format", "json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COSTLINE_LEDGER": f"duckdb:///{out / 'ledger.duckdb'}"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    # A second copy for the server with a token: one DuckDB file takes one writing process.
    second = out.parent / "org-with-token"
    second.mkdir()
    for name in ("ledger.duckdb", "costline.yaml"):
        shutil.copy2(out / name, second / name)
    return out


@pytest.fixture(scope="module")
def server(org: Path) -> Iterator[Server]:
    with _serve(org) as url:
        yield Server(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Watch]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    watch = Watch()
    watch.attach(tab)
    yield tab, watch
    context.close()


# The pages' CSP forbids eval: every expression given to the page below is a function.


def _loaded(tab: Any) -> None:
    """The page's loader finished: it stamps the time, the filter bar has its values, and every
    chart holds a plotly SVG."""
    tab.wait_for_function("() => document.getElementById('updated').textContent !== ''")
    tab.wait_for_function("() => document.getElementById('filters').dataset.filled === 'true'")
    tab.wait_for_function(
        "() => Array.from(document.querySelectorAll('.chart'))"
        ".every(c => c.querySelector('.plot-container svg.main-svg'))"
    )


def _unlabelled(tab: Any) -> list[list[str]]:
    """Text that shows a missing value any other way than the one label, "—" titled "no value"."""
    return list(
        tab.evaluate("""() => Array.from(document.querySelectorAll(
        'main td, main dd, main p, main small, main li')).filter(e => e.children.length === 0)
        .map(e => [e.textContent.trim(), e.getAttribute('title') || ''])
        .filter(([t, title]) => (t === '\u2014' && title !== 'no value')
          || /^(null|undefined|NaN|n\\/a|None|-)$/.test(t) || /\\bNaN\\b|\\bundefined\\b/.test(t))""")
    )


def usd(value: str, places: int = 2) -> str:
    """The page's text for an API decimal string: rounded half away from zero, thousands grouped."""
    d = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return f"-${-d:,}" if d < 0 else f"${d:,}"


def _cells(tab: Any, table: str) -> list[list[str]]:
    """The text of each cell of each body row of a table."""
    return list(tab.evaluate(
        "id => Array.from(document.querySelectorAll(`#${id} tbody tr`))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))", table))  # fmt: skip


def _shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_every_page_loads_and_draws_its_charts_without_errors(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    open_findings = server.api("GET", "findings", params={"status": "open"}).json()["rows"]
    assert open_findings, "the demo organization should have open findings"
    detail = f"/findings/{open_findings[0]['fingerprint']}"
    drawn: dict[str, int] = {}
    for path in (*PAGES, detail):
        tab.goto(server.url + path)
        _loaded(tab)
        assert tab.locator("#error").is_hidden(), tab.locator("#error").text_content()
        assert _unlabelled(tab) == [], path
        drawn[path] = tab.evaluate(
            "() => Array.from(document.querySelectorAll('.chart'))"
            ".filter(c => c.querySelector('.plot-container svg.main-svg')).length"
        )
        _shot(tab, "finding" if path == detail else path.strip("/") or "overview")
    assert watch.problems == []
    assert drawn == {"/": 1, "/teams": 1, "/models": 1, "/gpus": 2, "/tokens": 3, "/showback": 1,
                     "/chargeback": 1, "/unit-costs": 1, "/budgets": 1, "/recommendations": 1,
                     "/findings": 0, detail: 0}  # fmt: skip
    # Numbers reached the page: the overview's cards, the heatmap's rows, the finding's title.
    tab.goto(server.url + "/")
    _loaded(tab)
    assert re.fullmatch(r"\$[\d,]+\.\d\d", tab.locator("#mtd").text_content() or "")
    anomalies = int(tab.locator("#anomalies").text_content() or "-1")
    tab.click("#anomalies")  # the findings behind the count
    _loaded(tab)
    assert tab.locator("#findings-table tbody tr[data-fingerprint]").count() == anomalies > 0
    tab.goto(server.url + detail)
    _loaded(tab)
    assert tab.locator("#f-title").text_content() == open_findings[0]["title"]
    assert watch.problems == []


def test_a_team_filter_changes_the_numbers_the_url_and_the_nav_links(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    tab.goto(server.url + "/teams")
    _loaded(tab)
    everyone = tab.locator("#total").text_content()
    tab.wait_for_function("() => document.querySelectorAll('select[name=team] option').length > 2")
    teams = tab.locator("select[name=team] option").all_text_contents()
    rows = tab.locator("#spend-table tbody tr")
    shown = [(r.locator("td").nth(0).text_content(), r.locator("td").nth(1).text_content())
             for r in rows.all()]  # fmt: skip
    team, spend = [(t, s) for t, s in shown if t in teams][1]  # the second biggest team
    assert team and spend and everyone and spend not in everyone
    tab.select_option("select[name=team]", team)
    tab.wait_for_function("t => document.getElementById('total').textContent !== t", arg=everyone)
    assert tab.locator("#total").text_content() == f"total {spend}"
    assert f"team={team}" in tab.url
    assert rows.count() == 1 and rows.first.locator("td").first.text_content() == team
    tab.click("nav a[data-path='/']")
    tab.wait_for_url(re.compile(r"/\?team="))
    _loaded(tab)
    assert tab.locator("select[name=team]").input_value() == team
    _shot(tab, "overview-filtered")
    assert watch.problems == []


def test_acknowledging_a_finding_updates_its_row_and_is_stored(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    tab.goto(server.url + "/findings")
    _loaded(tab)
    row = tab.locator("#findings-table tbody tr").first
    fingerprint = row.get_attribute("data-fingerprint")
    assert fingerprint and re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    assert row.locator(".status").text_content() == "open"
    row.locator("button[data-action=ack]").click()
    tab.wait_for_function(
        "fp => document.querySelector(`tr[data-fingerprint='${fp}'] .status`)"
        ".textContent === 'acknowledged'",
        arg=fingerprint,
    )
    assert row.locator("button[data-action=ack]").count() == 0
    assert row.locator("button[data-action=reopen]").count() == 1
    _shot(tab, "findings-acknowledged")
    stored = server.api("GET", f"findings/{fingerprint}")
    assert stored.status_code == 200 and stored.json()["status"] == "acknowledged"
    # And on the detail page: reopen it again from there.
    tab.goto(f"{server.url}/findings/{fingerprint}")
    _loaded(tab)
    assert tab.locator("#f-buttons .status").text_content() == "acknowledged"
    tab.click("#f-buttons button[data-action=reopen]")
    tab.wait_for_function(
        "() => document.querySelector('#f-buttons .status').textContent === 'open'"
    )
    assert server.api("GET", f"findings/{fingerprint}").json()["status"] == "open"
    tab.click("#f-buttons button[data-action=snooze]")
    tab.wait_for_function(
        "() => document.querySelector('#f-buttons .status').textContent.startsWith('snoozed until')"
    )
    snoozed = server.api("GET", f"findings/{fingerprint}").json()
    assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"] > snoozed["last_seen"]
    assert watch.problems == []


def test_with_a_token_the_dashboard_asks_for_it_and_works_after_login(
    org: Path, page: tuple[Any, Watch]
) -> None:
    tab, _ = page
    with _serve(org.parent / "org-with-token", tokens=f"operator:{TOKEN}") as url:
        assert httpx.get(f"{url}/api/v1/overview", timeout=30).status_code == 401
        tab.goto(url + "/budgets?team=vision")
        tab.wait_for_url(re.compile(r"/login\?next="))
        _shot(tab, "login")
        tab.fill("input[name=token]", "not-the-token")
        tab.click("form.login button[type=submit]")
        tab.wait_for_url(re.compile(r"/login\?"))
        tab.wait_for_selector("form.login .error")
        tab.fill("input[name=token]", TOKEN)
        tab.click("form.login button[type=submit]")
        tab.wait_for_url(re.compile(r"/budgets\?team=vision$"))
        _loaded(tab)
        assert tab.locator("#budgets-table tbody tr").count() >= 1
        [cookie] = [c for c in tab.context.cookies() if c["name"] == "costline_token"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "costline_token" not in tab.evaluate("() => document.cookie")
        stored = json.dumps(tab.evaluate("() => Object.assign({}, localStorage, sessionStorage)"))
        assert TOKEN not in stored and TOKEN not in tab.content()


def test_showback_and_chargeback_pages_show_the_apis_buckets(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    for kind, query in (("showback", {}), ("showback", {"by": "model", "idle": "shared"}),
                        ("chargeback", {"by": "project", "cost": "billed"})):  # fmt: skip
        api = server.api("GET", kind, params=query).json()
        tab.goto(f"{server.url}/{kind}?{urlencode(query)}")
        _loaded(tab)
        shown = [(r[0], r[1]) for r in _cells(tab, "report-table")]
        assert shown == [(r[api["by"]], usd(r["amount_usd"])) for r in api["rows"]], kind
        assert f"total {usd(api['total_usd'])}" in (
            tab.locator("#report-total").text_content() or ""
        )
        _shot(tab, f"{kind}-{'-'.join(query.values()) or 'team'}")
    # The special buckets say what they are; choosing to share idle changes the rows and the URL.
    tab.goto(server.url + "/showback")
    _loaded(tab)
    idle = tab.locator("#report-table .special", has_text="__idle__")
    assert idle.get_attribute("title") == "GPU-time provisioned that no workload held"
    tab.select_option("#report-idle", "shared")
    tab.wait_for_function("() => !document.querySelector('#report-table').textContent"
                          ".includes('__idle__')")  # fmt: skip
    assert "idle=shared" in tab.url
    # Filters a report cannot apply are named, not silently dropped.
    tab.goto(server.url + "/chargeback?team=search")
    _loaded(tab)
    assert "Not applied here: team" in (tab.locator("#report-ignored").text_content() or "")
    assert watch.problems == []


def test_the_unit_costs_page_shows_the_reports_figures_and_sentences(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    api = server.api("GET", "unit-costs").json()
    tab.goto(server.url + "/unit-costs")
    _loaded(tab)
    said = tab.locator("#unit-sentences li").all_text_contents()
    assert said == api["sentences"] and any(s.endswith("per prediction.") for s in said)
    card = {r[0]: r for r in _cells(tab, "scorecard-table")}
    assert list(card) == [r["label"] for r in api["scorecard"]]
    figures = {r["figure"]: r for r in api["scorecard"]}
    cost = figures["cost_per_request_usd"]
    assert card["cost per LLM request"][1] == usd(cost["value"], 4)
    assert card["queue depth (mean)"][1] == "\u2014"  # the demo has no queue metric: no value
    llm = _cells(tab, "units-llm")
    assert [(r[0], r[1], r[4]) for r in llm] == [
        (r["model"], r["app"], usd(r["cost_usd"])) for r in api["sections"]["llm"]]  # fmt: skip
    _shot(tab, "unit-costs")
    assert watch.problems == []


def test_overview_gpus_models_and_tokens_read_as_the_issue_asks(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    # "Today" is the last billed day, and says so.
    tab.goto(server.url + "/")
    _loaded(tab)
    as_of = server.api("GET", "overview").json()["as_of"]
    assert tab.locator(".card h2").first.text_content() == "Last billed day"
    assert tab.locator("#today-day").text_content() == as_of
    # The GPU page opens on the pool table and a heatmap by pool; per-GPU rows on demand.
    tab.goto(server.url + "/gpus")
    _loaded(tab)
    assert tab.evaluate("() => document.querySelector('main table').id") == "idle-table"
    pools = server.api("GET", "gpu/utilization", params={"by": "pool"}).json()["gpus"]
    heatmap_rows = "() => document.getElementById('chart-heatmap').data[0].y"
    assert tab.evaluate(heatmap_rows) == pools
    gpus = server.api("GET", "gpu/utilization", params={"by": "gpu"}).json()["gpus"]
    tab.select_option("#heatmap-by", "gpu")
    tab.wait_for_function(f"n => ({heatmap_rows})().length === n", arg=len(gpus))
    assert "rows=gpu" in tab.url and len(gpus) > len(pools)
    # One model, one name: the bills' gpt-4o-mini and its log's gpt-4o-mini-2024-07-18 (the
    # demo's models.aliases); the filter bar's model reaches both pages.
    names = {}
    for path, table in (("/models", "spend-table"), ("/tokens", "tokens-table")):
        tab.goto(f"{server.url}{path}?model=gpt-4o-mini")
        _loaded(tab)
        names[path] = [r[0] for r in _cells(tab, table)]
    assert names == {"/models": ["gpt-4o-mini"], "/tokens": ["gpt-4o-mini"]}
    tab.goto(server.url + "/tokens")
    _loaded(tab)
    logged = {r[0] for r in _cells(tab, "tokens-table")}
    assert "gpt-4o-mini" in logged and "gpt-4o-mini-2024-07-18" not in logged
    assert watch.problems == []


def test_the_recommendations_page_shows_what_a_run_stored(
    server: Server, page: tuple[Any, Watch]
) -> None:
    tab, watch = page
    done = server.api("POST", "recommendations/run", json={"days": 14})
    assert done.status_code == 200, done.text
    api = server.api("GET", "recommendations").json()
    assert api["rows"], "the demo organization should have recommendations"
    tab.goto(server.url + "/recommendations")
    _loaded(tab)
    tab.wait_for_function("() => document.querySelector('#rec-table tbody tr[data-fingerprint]')")
    kinds = [(r[0], r[1], r[3]) for r in _cells(tab, "rec-kinds")]
    assert kinds == [(k["kind"].replace("_", " "), str(k["count"]), usd(k["savings_monthly_usd"]))
                     for k in api["by_kind"]]  # fmt: skip
    rows = _cells(tab, "rec-table")
    assert [(r[2], r[3], r[4]) for r in rows] == [
        (r["owner"] or "unowned", usd(r["current_monthly_usd"]), usd(r["savings_monthly_usd"]))
        for r in api["rows"]]  # fmt: skip
    assert [r[5] for r in rows] == [f"{usd(r['savings_low_usd'])}\u2013{usd(r['savings_high_usd'])}"
                                    for r in api["rows"]]  # fmt: skip
    total = tab.locator("#rec-total").text_content() or ""
    assert f"saving {usd(api['totals']['savings_monthly_usd'])} a month" in total
    snippets = [r["snippet"] for r in api["rows"] if r["snippet"]]
    assert tab.locator("#rec-table pre code").all_text_contents() == snippets
    # A kind chosen narrows the rows and is kept in the URL.
    kind = api["by_kind"][-1]["kind"]
    tab.select_option("#rec-kind", kind)
    tab.wait_for_function("n => document.querySelectorAll('#rec-table tbody tr').length === n",
                          arg=api["by_kind"][-1]["count"])  # fmt: skip
    assert f"kind={kind}" in tab.url
    _shot(tab, "recommendations")
    assert _unlabelled(tab) == [] and watch.problems == []
    # The Tokens page lists the token and model-tiering ones the same run stored.
    tokens = server.api("GET", "recommendations", params={"kind": "tokens|model_tiering"}).json()
    tab.goto(server.url + "/tokens")
    _loaded(tab)
    tab.wait_for_function("() => document.querySelector('#tokens-recs tbody tr')")
    shown = [(r[2], r[4]) for r in _cells(tab, "tokens-recs")]
    assert shown == [(r["owner"] or "unowned", usd(r["savings_monthly_usd"]))
                     for r in tokens["rows"]]  # fmt: skip
    assert {r["kind"] for r in tokens["rows"]} <= {"tokens", "model_tiering"}
    assert watch.problems == []
