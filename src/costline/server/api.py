"""The JSON API under `/api/v1`: FastAPI routes over `server.queries` and `server.telemetry`.

Routes are plain functions, so FastAPI runs them in its threadpool, each thread on its own cursor
of the ledger's connection (`server.reader`). Each answer is computed once per (endpoint,
parameters, ledger version) and kept for a minute; the JSON is encoded here, with money as exact
decimal strings (`"1234.56"`, never a float) and times as ISO-8601 UTC (`...Z`).

Errors have one shape everywhere: `{"error": {"status": 400, "code": "bad_request", "message":
"..."}}`: 400 a bad or unknown parameter, 401 no or a wrong token, 403 a role too low, 404 an
unknown finding, 409 a move a finding's lifecycle does not allow, 503 a move that could not open
the ledger (another process held it longer than `COSTLINE_LOCK_WAIT`).
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import json
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from costline.config import load_config
from costline.errors import ConfigError, CostlineError, LedgerError
from costline.ledger.findings import Action, UnknownFinding
from costline.model import InvalidSelector, InvalidTransition
from costline.money import MONEY_CONTEXT
from costline.server.auth import Forbidden, Principal, Role, Unauthorized, require
from costline.server.filters import (
    FILTER_DIMENSIONS,
    BadRequest,
    Filters,
    check_known,
    make_filters,
)

if TYPE_CHECKING:
    from costline.server import queries, reports, telemetry
    from costline.server import recommendations as recs
    from costline.server.reader import Reader
    from costline.server.shared import Served
else:

    class _Later:
        """A module imported when first used: the analysis stack (Ibis and all) is not needed to
        start answering, so the server answers its first page before it has imported it."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            return getattr(importlib.import_module(self._name), attr)

    queries = _Later("costline.server.queries")
    recs = _Later("costline.server.recommendations")
    reports = _Later("costline.server.reports")
    telemetry = _Later("costline.server.telemetry")

PREFIX = "/api/v1"
log = logging.getLogger("costline.server")

viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))
admin = Depends(require(Role.ADMIN))
router = APIRouter(prefix=PREFIX, dependencies=[viewer])


# -- encoding ------------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    """An exact decimal string without an exponent, at least two places: `1234.50`, `0.000012`."""
    if value == 0:
        return "0.00"
    text = format(value.normalize(MONEY_CONTEXT), "f")  # the default context would round
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encode(data: Any) -> bytes:
    return json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _answer(
    request: Request, endpoint: str, params: object, compute: Callable[[], Any]
) -> Response:
    return _json(_reader(request).cached(endpoint, params, lambda: encode(compute())))


def _answer_data(
    request: Request, endpoint: str, params: object, compute: Callable[[], Any]
) -> Response:
    """`_answer` for a view of the data alone (no findings in it): kept per data version, so a
    finding moved does not make the reports and telemetry views be computed again."""
    return _json(_reader(request).cached_data(endpoint, params, lambda: encode(compute())))


def _served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


def _reader(request: Request) -> Reader:
    """The reader this request reads from, the same for all of it (a newer copy of the ledger
    may be swapped in meanwhile: see `server.shared`)."""
    reader: Reader | None = getattr(request.state, "reader", None)
    if reader is None:
        reader = _served(request).current()
        request.state.reader = reader
    return reader


# -- common parameters ---------------------------------------------------------------------------

_ALLOWED: dict[int, frozenset[str]] = {}


def _known_parameters(request: Request) -> frozenset[str]:
    """The query parameters of the matched route and of its dependencies."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return frozenset()
    key = id(route)
    if key not in _ALLOWED:
        _ALLOWED[key] = frozenset(_query_names(dependant))
    return _ALLOWED[key]


def _query_names(dependant: Any) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


Values = Annotated[list[str] | None, Query(description="repeatable, or a|b")]


def filters(
    request: Request,
    start: Annotated[str | None, Query(description="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(description="day after the last, YYYY-MM-DD")] = None,
    team: Values = None,
    project: Values = None,
    environment: Values = None,
    provider: Values = None,
    service: Values = None,
    region: Values = None,
    model: Values = None,
    cost_domain: Values = None,
    cost_layer: Values = None,
) -> Filters:
    """The common filters: a window of days and any of the filter dimensions."""
    known = _known_parameters(request)
    if known:
        check_known(request.query_params.keys(), known)
    given = dict(zip(FILTER_DIMENSIONS, (team, project, environment, provider, service, region,
                                         model, cost_domain, cost_layer), strict=True))  # fmt: skip
    return make_filters(start, end, given)


Common = Annotated[Filters, Depends(filters)]
Cost = Annotated[str, Query(description="effective (amortized, the default) or billed")]


# -- health and metadata -------------------------------------------------------------------------


@router.get("/health")
def health(request: Request) -> Response:
    """The ledger this server reads, its schema version and its last billed day."""
    body = queries.health(_reader(request))
    scheduler = request.app.state.scheduler
    body["scheduler"] = _scheduler_status(scheduler) if scheduler is not None else None
    return _json(encode(body))


def _scheduler_status(scheduler: Any) -> dict[str, Any]:
    """Counts only, read from the scheduler's attributes: its `status()` reads the ledger on the
    scheduler's own connection (not this thread's), and a sync's errors may quote URLs, which
    can hold secrets."""
    interval = getattr(scheduler, "interval", None)
    return {
        "interval_minutes": interval.total_seconds() / 60
        if isinstance(interval, dt.timedelta)
        else None,
        "runs": getattr(scheduler, "runs", None),
        "failing": bool(getattr(scheduler, "last_error", None)),
    }


@router.get("/meta/dimensions")
def meta_dimensions(request: Request, f: Common) -> Response:
    """The values of each filter dimension present in the window: for filter dropdowns."""
    return _answer(request, "dimensions", f.key, lambda: queries.dimensions(_reader(request), f))


# -- cost ----------------------------------------------------------------------------------------


@router.get("/overview")
def overview(request: Request, f: Common, cost: Cost = "effective") -> Response:
    """Spend today and month to date against the budget, the month-end forecast, active anomalies,
    open findings, top movers week over week and month over month, and the daily line."""
    return _answer(request, "overview", (f.key, cost),
                   lambda: queries.overview(_reader(request), f, cost))  # fmt: skip


@router.get("/spend")
def spend(
    request: Request,
    f: Common,
    by: Annotated[str, Query(description="a filter dimension, or owner")] = "team",
    granularity: Annotated[str, Query(description="day, week or month")] = "day",
    cost: Cost = "effective",
    top: Annotated[int, Query(ge=1, le=1000, description="values kept; the rest as (other)")] = 20,
) -> Response:
    """Cost per period and value of a dimension, and the total."""
    params = (f.key, by, granularity, cost, top)
    return _answer(request, "spend", params, lambda: queries.spend(
        _reader(request), f, by=by, granularity=granularity, cost=cost, top=top))  # fmt: skip


By = Annotated[str, Query(description="team, project, model, environment, owner or cost_domain")]


@router.get("/showback")
def showback(
    request: Request,
    f: Common,
    by: By = "team",
    idle: Annotated[
        str, Query(description="shown: __idle__ a bucket; shared: over holders")
    ] = "shown",
    cost: Cost = "effective",
) -> Response:
    """`costline report showback`'s rows for the window: who spent what, GPU hosts split by
    GPU-time held; buckets add up to the bill with `__idle__`, `__shared__`, `__unallocated__`."""
    return _answer_data(request, "showback", (f.key, by, idle, cost), lambda: reports.showback(
        _reader(request), f, kind="showback", by=by, idle=idle, cost=cost))  # fmt: skip


@router.get("/chargeback")
def chargeback(request: Request, f: Common, by: By = "team", cost: Cost = "effective") -> Response:
    """`costline report chargeback`'s rows: showback with idle GPU cost shared over each pool's
    holders by GPU-time and the shared platform over owners."""
    return _answer_data(request, "chargeback", (f.key, by, cost), lambda: reports.showback(
        _reader(request), f, kind="chargeback", by=by, cost=cost))  # fmt: skip


@router.get("/unit-costs")
def unit_costs(
    request: Request,
    f: Common,
    cost: Cost = "effective",
    top: Annotated[int, Query(ge=1, le=1000, description="rows kept per section")] = 15,
) -> Response:
    """`costline report unit-costs` for the window: per LLM model and app, LLM app outcome (cost
    per valuable output), GPU workload, pool, business unit and declared run, with change
    against the previous period; its sentences; and
    cost per request, per 1K tokens, GPU utilization, p95 latency, queue depth and failed jobs
    side by side, week over week and month over month."""
    return _answer_data(request, "unit-costs", (f.key, cost, top), lambda: reports.unit_report(
        _reader(request), f, cost=cost, top=top))  # fmt: skip


@router.get("/budgets")
def budgets(request: Request, f: Common) -> Response:
    """Each budget in the filters: spend, thresholds crossed, burn rate, period-end forecast."""
    return _answer(request, "budgets", f.key, lambda: queries.budgets(_reader(request), f))


METRIC_HELP = "cost_usd, gpu_hours, tokens, storage_gb, training_jobs or a metric's name"


@router.get("/forecast")
def forecast(
    request: Request,
    f: Common,
    metric: Annotated[str, Query(description=METRIC_HELP)] = "cost_usd",
    by: Annotated[str | None, Query(description="a dimension; none: one series")] = None,
    horizon: Annotated[int, Query(ge=1, le=366, description="days ahead")] = 30,
    history: Annotated[int, Query(ge=7, le=1100, description="days learned from")] = 180,
    top: Annotated[int, Query(ge=1, le=200, description="largest series forecast")] = 20,
) -> Response:
    """`costline forecast`'s rows: model, P10/P50/P90 over the horizon, month end, scenarios."""
    params = (f.key, metric, by, horizon, history, top)
    return _answer(request, "forecast", params, lambda: queries.forecast(
        _reader(request), f, metric=metric, by=by, horizon=horizon, history=history,
        top=top))  # fmt: skip


# -- telemetry -----------------------------------------------------------------------------------


@router.get("/gpu/utilization")
def gpu_utilization(
    request: Request, f: Common, by: Annotated[str, Query(description="gpu or pool")] = "gpu"
) -> Response:
    """A GPU (or pool) x hour heatmap of utilization, 0-100; at most 200 rows."""
    return _answer_data(request, "gpu/utilization", (f.key, by),
                   lambda: telemetry.gpu_utilization(_reader(request), f, by=by))  # fmt: skip


@router.get("/gpu/idle")
def gpu_idle(request: Request, f: Common) -> Response:
    """Per GPU pool: GPUs, GPU-hours, busy and idle hours, utilization and idle cost."""
    return _answer_data(request, "gpu/idle", f.key, lambda: telemetry.gpu_idle(_reader(request), f))


@router.get("/tokens")
def tokens(
    request: Request,
    f: Common,
    by: Annotated[str, Query(description="model, app, team or provider")] = "model",
) -> Response:
    """LLM requests, tokens, cost, cost per 1K tokens, cache-hit rate and context, and per day."""
    return _answer_data(request, "tokens", (f.key, by),
                   lambda: telemetry.tokens(_reader(request), f, by=by))  # fmt: skip


# -- findings and annotations --------------------------------------------------------------------

Choices = Annotated[list[str] | None, Query(description="repeatable, or a|b")]


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for text in values or () for v in text.split("|") if v.strip())


@router.get("/findings")
def findings(
    request: Request,
    f: Common,
    status: Choices = None,
    kind: Choices = None,
    severity: Choices = None,
    owner: Choices = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 500,
) -> Response:
    """Findings by status, kind, severity and owner, in the filters' scope; largest impact first."""
    chosen = tuple(_split(v) for v in (status, kind, severity, owner))
    return _answer(request, "findings", (f.key, chosen, limit), lambda: queries.findings(
        _reader(request), f, status=chosen[0], kind=chosen[1], severity=chosen[2],
        owner=chosen[3], limit=limit))  # fmt: skip


@router.get("/findings/{fingerprint}")
def finding(request: Request, fingerprint: str) -> Response:
    """One finding, with its evidence and suggested actions."""
    check_known(request.query_params.keys(), ())
    return _answer(request, "finding", fingerprint,
                   lambda: queries.finding(_reader(request), fingerprint))  # fmt: skip


class Snooze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime


def _move(
    request: Request, fingerprint: str, action: Action, until: dt.datetime | None
) -> Response:
    check_known(request.query_params.keys(), ())
    moved = queries.transition(_served(request), fingerprint, action, until)
    return _json(encode(moved))


@router.post("/findings/{fingerprint}/ack", dependencies=[operator])
def acknowledge(request: Request, fingerprint: str) -> Response:
    """Acknowledge a finding (open or snoozed): someone owns it; it stops paging."""
    return _move(request, fingerprint, "acknowledge", None)


@router.post("/findings/{fingerprint}/resolve", dependencies=[operator])
def resolve(request: Request, fingerprint: str) -> Response:
    """Resolve a finding that is open, acknowledged or snoozed."""
    return _move(request, fingerprint, "resolve", None)


@router.post("/findings/{fingerprint}/reopen", dependencies=[operator])
def reopen(request: Request, fingerprint: str) -> Response:
    """Reopen an acknowledged, resolved or snoozed finding."""
    return _move(request, fingerprint, "reopen", None)


@router.post("/findings/{fingerprint}/snooze", dependencies=[operator])
def snooze(request: Request, fingerprint: str, body: Snooze) -> Response:
    """Snooze a finding until a time in the future (JSON `{"until": "2026-11-08T00:00:00Z"}`)."""
    return _move(request, fingerprint, "snooze", body.until)


# -- recommendations -----------------------------------------------------------------------------


@router.get("/recommendations")
def recommendation_list(
    request: Request,
    f: Common,
    kind: Choices = None,
    owner: Choices = None,
    status: Choices = None,
    min_savings: Annotated[Decimal | None, Query(ge=0, description="P50 a month, USD")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 500,
) -> Response:
    """Stored recommendations (`costline recommend`), largest P50 saving a month first: current
    monthly cost, saving P50 and low-high, confidence, risk, method, evidence, the action (and its
    config snippet) and, for one acted on, the realized saving; with totals by kind. `status`:
    open|acknowledged by default, snoozed or resolved."""
    chosen = (_split(kind), _split(owner), _split(status) or recs.LIVE)
    return _answer(request, "recommendations", (f.key, chosen, min_savings, limit),
                   lambda: recs.listing(_reader(request), f, kind=chosen[0], owner=chosen[1],
                                        status=chosen[2], min_savings=min_savings,
                                        limit=limit))  # fmt: skip


class RecommendRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: list[str] | None = None
    days: int = Field(default=14, ge=1, le=366)
    min_savings: Decimal = Field(default=Decimal(100), ge=0)


@router.post("/recommendations/run", dependencies=[operator])
def recommendation_run(
    request: Request, body: Annotated[RecommendRun | None, Body()] = None
) -> Response:
    """Run the recommenders now, as `costline recommend` does (JSON `{"kind": [...], "days": 14,
    "min_savings": 100}`, all optional): store what they find, resolve the stored ones they no
    longer find (with their realized saving); answers the stored rows of both."""
    check_known(request.query_params.keys(), ())
    b = body or RecommendRun()
    done = recs.run(_served(request), kinds=b.kind, days=b.days, min_savings=b.min_savings)
    return _json(encode(done))


@router.get("/annotations")
def annotation_list(request: Request, f: Common) -> Response:
    """Deploys, launches and other events in the window, for markers on trend lines."""
    return _answer(request, "annotations", f.key,
                   lambda: queries.annotation_rows(_reader(request), f))  # fmt: skip


# -- configuration (admin) -----------------------------------------------------------------------


@router.get("/config", dependencies=[admin])
def config(request: Request) -> Response:
    """The configuration the server runs with (secrets are environment variables: only their
    names appear; one written in a route's URL or headers shows as `[redacted]`), and the files
    it was read from."""
    from costline.notify.redact import redacted_config

    cfg = _served(request).config
    body = {"files": [str(p) for p in cfg.files], "config": redacted_config(cfg)}
    return _json(encode(body))


@router.post("/config/reload", dependencies=[admin])
def reload_config(request: Request) -> Response:
    """Read the configuration files again: new budgets, owners, tag rules from now on (API
    tokens are read once, when the server starts)."""
    path = request.app.state.config_path
    if path is None:
        raise BadRequest(
            "this server's configuration was not read from a file, so there is nothing to read "
            "again: start it with --config (or COSTLINE_CONFIG)"
        )
    fresh = load_config(path)
    _served(request).set_config(fresh)
    return _json(encode({"status": "reloaded", "files": [str(p) for p in fresh.files]}))


@router.get("/whoami")
def whoami(caller: Annotated[Principal, viewer]) -> Response:
    """The caller's token name and role."""
    return _json(encode({"name": caller.name, "role": str(caller.role)}))


# -- OpenAPI, docs and errors --------------------------------------------------------------------


def add_docs(app: FastAPI) -> None:
    """OpenAPI at /api/v1/openapi.json and a reference page at /api/v1/docs, behind the same
    auth. The page is rendered here from the OpenAPI document, with no script: Swagger UI would
    load from a CDN, and the machines have no internet."""

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False, dependencies=[viewer])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(f"{PREFIX}/docs", include_in_schema=False, dependencies=[viewer])
    def docs() -> HTMLResponse:
        return HTMLResponse(reference_page(app.openapi()))


def reference_page(spec: Mapping[str, Any]) -> str:
    """The endpoints of an OpenAPI document as one HTML page (every text escaped)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(spec['info']['title'])} API</title><style>body{{font:14px sans-serif;"
        "max-width:60em;margin:2em auto}code{background:#f3f3f3}td{vertical-align:top;"
        "padding:2px 8px}</style></head><body>",
        f"<h1>{e(spec['info']['title'])} API</h1><p>The OpenAPI document: "
        f"<a href='{PREFIX}/openapi.json'>{PREFIX}/openapi.json</a>. Money is a decimal "
        "string; times are ISO-8601 UTC; see docs/api.md.</p>",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{e(method.upper())} {e(path)}</code></h2>")
            parts.append(f"<p>{e(op.get('description') or op.get('summary') or '')}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<table>")
                for prm in params:
                    text = prm.get("description") or prm.get("schema", {}).get("description", "")
                    parts.append(f"<tr><td><code>{e(prm['name'])}</code></td>"
                                 f"<td>{e(prm.get('in', ''))}</td><td>{e(text)}</td></tr>")  # fmt: skip
                parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


STATUS_OF: Mapping[type[Exception], tuple[int, str]] = {
    Unauthorized: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    UnknownFinding: (404, "not_found"),
    InvalidTransition: (409, "invalid_transition"),
    LedgerError: (503, "ledger_unavailable"),  # held by another process past the wait
    BadRequest: (400, "bad_request"),
    InvalidSelector: (400, "bad_request"),
    ConfigError: (400, "bad_configuration"),
}


def error(status: int, code: str, message: str) -> Response:
    body = encode({"error": {"status": status, "code": code, "message": message}})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Every error in one JSON shape; a crash says only that it happened (details in the log)."""

    async def costline_error(_request: Request, exc: Exception) -> Response:
        status, code = next(
            (v for cls, v in STATUS_OF.items() if isinstance(exc, cls)), (400, "bad_request")
        )
        return error(status, code, str(exc))

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'query')}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return error(400, "bad_request", "; ".join(problems) or "bad request")

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = "not_found" if exc.status_code == 404 else "http_error"
        return error(exc.status_code, code, str(exc.detail))

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error(500, "internal", "the server failed to answer; see its log")

    app.add_exception_handler(CostlineError, costline_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)
