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
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import stop

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKEN = "operator-token-for-the-browser-test"
PAGES = ("/", "/teams", "/models", "/gpus", "/tokens", "/budgets", "/findings")

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
        drawn[path] = tab.evaluate(
            "() => Array.from(document.querySelectorAll('.chart'))"
            ".filter(c => c.querySelector('.plot-container svg.main-svg')).length"
        )
        _shot(tab, "finding" if path == detail else path.strip("/") or "overview")
    assert watch.problems == []
    assert drawn == {"/": 1, "/teams": 1, "/models": 1, "/gpus": 2, "/tokens": 3, "/budgets": 1,
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
