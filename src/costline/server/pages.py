"""The dashboard: server-rendered HTML shells whose scripts read the `/api/v1` JSON and draw charts.

Each page is a small Jinja2 template (a shared nav, a shared filter bar and empty chart and table
slots); `static/costline.js` reads the filters from the URL's query string, fetches the API the
same way any client would, and draws with the plotly.js bundled inside the installed `plotly`
package (served at `/static/plotly.min.js`: no CDN, the machines have no internet). Nothing the
data says is put into the page as markup: scripts insert text with `textContent` only.

Login: when the API answers 401 the page goes to `/login`. Its form posts the token here; it is
checked in-process by asking `/api/v1/health` with it (as any client would, so this module knows
nothing of how tokens are configured) and, if taken, stored in the HttpOnly, SameSite=Strict
cookie `costline_token`, which the API accepts in place of a bearer token. How often pages
re-fetch comes from `app.state.refresh_seconds` (default 300).

The interface layer mounts this with `app.include_router(router)` and `mount_static(app)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import plotly
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

__all__ = [
    "COOKIE",
    "DEFAULT_REFRESH_SECONDS",
    "FILTERS",
    "PAGES",
    "mount_static",
    "plotly_js_path",
    "router",
]

COOKIE = "costline_token"
DEFAULT_REFRESH_SECONDS = 300
# The filters every page shares, in the order of the filter bar; kept in the query string.
FILTERS = ("start", "end", "team", "project", "environment", "provider", "model")
# (path, nav label, template, page id)
PAGES = (
    ("/", "Overview", "overview.html", "overview"),
    ("/teams", "Teams", "spend.html", "teams"),
    ("/models", "Models", "spend.html", "models"),
    ("/gpus", "GPUs", "gpus.html", "gpus"),
    ("/tokens", "Tokens", "tokens.html", "tokens"),
    ("/showback", "Showback", "report.html", "showback"),
    ("/chargeback", "Chargeback", "report.html", "chargeback"),
    ("/unit-costs", "Unit costs", "unit_costs.html", "unit-costs"),
    ("/budgets", "Budgets", "budgets.html", "budgets"),
    ("/recommendations", "Recommendations", "recommendations.html", "recommendations"),
    ("/findings", "Findings", "findings.html", "findings"),
)
_HERE = Path(__file__).parent
_MAX_FORM_BYTES = 16 * 1024
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
# Scripts only from this origin; plotly writes inline styles, so styles may be inline.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(include_in_schema=False)


def plotly_js_path() -> Path:
    """The plotly.js bundle shipped inside the installed `plotly` package."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _refresh_seconds(request: Request) -> int:
    value = getattr(request.app.state, "refresh_seconds", None)
    return int(value) if isinstance(value, int | float) and value > 0 else DEFAULT_REFRESH_SECONDS


def _filter_query(request: Request) -> str:
    """The shared filters of this request, as a query string the nav links carry (may be '')."""
    pairs = [(k, v) for k in FILTERS for v in request.query_params.getlist(k) if v]
    return urlencode(pairs)


def _render(request: Request, template: str, page: str, **context: Any) -> HTMLResponse:
    query = _filter_query(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "page": page,
            "pages": PAGES,
            "query": f"?{query}" if query else "",
            "filters": {k: request.query_params.get(k, "") for k in FILTERS},
            "refresh_seconds": _refresh_seconds(request),
            **context,
        },
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


def _page_route(path: str, template: str, page: str) -> None:
    async def show(request: Request) -> HTMLResponse:
        return _render(request, template, page)

    show.__name__ = f"page_{page}"
    router.add_api_route(path, show, methods=["GET"], response_class=HTMLResponse)


for _path, _label, _template, _page in PAGES:
    _page_route(_path, _template, _page)


@router.get("/findings/{fingerprint}", response_class=HTMLResponse)
async def finding_page(request: Request, fingerprint: str) -> HTMLResponse:
    """One finding in detail: the page alert messages link to."""
    if not _FINGERPRINT.match(fingerprint):
        response = _render(request, "finding.html", "findings", fingerprint="")
        response.status_code = 404
        return response
    return _render(request, "finding.html", "findings", fingerprint=fingerprint)


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/", error: str = "") -> HTMLResponse:
    messages = {
        "rejected": "That token was not accepted: check it and try again.",
        "empty": "Enter an API token.",
    }
    return _render(
        request,
        "login.html",
        "login",
        next=_safe_next(next),
        error=messages.get(error, ""),
    )


async def _form(request: Request) -> dict[str, str]:
    """The login form's fields (urlencoded; parsed here, python-multipart is not a dependency)."""
    raw = await request.body()
    if len(raw) > _MAX_FORM_BYTES:
        return {}
    fields = parse_qs(raw.decode("utf-8", errors="replace"), max_num_fields=8)
    return {k: v[0] for k, v in fields.items() if v}


async def _accepted(request: Request, token: str) -> bool:
    """Whether the API takes this token: asked in-process, as any client would ask it."""
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://costline.local") as client:
        answer = await client.get(
            "/api/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    return answer.status_code not in (401, 403)


@router.post("/login")
async def login(request: Request) -> Response:
    """Keep the token in an HttpOnly, SameSite=Strict cookie; the API checks it on every call."""
    form = await _form(request)
    target = _safe_next(form.get("next"))
    token = form.get("token", "").strip()
    if not token:
        return RedirectResponse(f"/login?{urlencode({'next': target, 'error': 'empty'})}", 303)
    if not await _accepted(request, token):
        return RedirectResponse(f"/login?{urlencode({'next': target, 'error': 'rejected'})}", 303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def _plotly_js() -> FileResponse:
    return FileResponse(
        plotly_js_path(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def mount_static(app: FastAPI) -> None:
    """Serve the dashboard's scripts and styles at /static, plotly.js from the plotly package."""
    app.add_api_route(
        "/static/plotly.min.js", _plotly_js, methods=["GET", "HEAD"], include_in_schema=False
    )
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
