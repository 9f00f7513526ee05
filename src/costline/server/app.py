"""`create_app`: the FastAPI application of `costline serve`: API, dashboard, scheduler, liveness.

    app = create_app(ledger, config, auth=Auth.from_sources(config.server, os.environ))

The app reads the ledger through a `Served` ledger (see `server.shared`: a copy of the ledger, read
anew when another process writes it, or an open ledger served directly) and its current `Reader`
(`server.reader`); the JSON API is mounted under `/api/v1` (see `server.api`), the dashboard
(`server.pages`, when it is installed) at `/`, and `/healthz` answers liveness without a token.
At startup (the lifespan) nothing waits for the ledger: the pages answer at once while the ledger
is read in the background, its cube built and the dashboard's first views computed
(`warm_views`); a forecast is made once in the background (its first call imports statsforecast
and compiles numba code, ~10 s) and the scheduler, when one is given, is started; on shutdown the
scheduler stops before the served ledger closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import importlib.util
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from costline.clock import SYSTEM_CLOCK, Clock
from costline.config import Config
from costline.server import api
from costline.server.auth import Auth
from costline.server.shared import Served

if TYPE_CHECKING:
    from costline.ledger.store import Ledger
    from costline.server.reader import Reader

PAGES_MODULE = "costline.server.pages"
log = logging.getLogger("costline.server")
START_GRACE_SECONDS = 0.25  # the ledger is read this long after startup (see the lifespan)


class Scheduler(Protocol):
    """What the app needs of a scheduler: started with the app, stopped before it closes.

    `start` and `stop` may be plain or `async` methods (`server.scheduler.Scheduler` is one).
    """

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


def create_app(
    ledger: Ledger | Served,
    config: Config,
    *,
    auth: Auth | None = None,
    scheduler: Scheduler | None = None,
    config_path: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
    warm: bool = True,
) -> FastAPI:
    """The app over an open read-write `ledger` (served directly; it does not close it), or over
    a `Served` ledger (`costline serve`: a copy it reads, see `server.shared`; closed with it).

    `auth` defaults to no tokens (an open API); `config_path` is what `POST /api/v1/config/reload`
    reads again (default: the files `config` was loaded from). `warm` builds the cube, computes
    the dashboard's first views and compiles the forecast models in the background at startup.
    """
    served = ledger if isinstance(ledger, Served) else Served.direct(ledger, config, clock=clock)

    def ready(reader: Reader) -> None:
        app.state.reader = reader  # the latest, for tests and tools; requests ask `served`
        if warm:
            reader.cube.warm()
            warm_views(app, reader, lambda: served.latest() is reader)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Nothing here waits for the ledger: the first page is answered at once, and an API
        # request waits only for the first copy's reader (see `Served.current`). The ledger is
        # read a moment later, so that the requests already queued on the socket (a browser's
        # first page) do not share the interpreter with that work.
        served.on_ready.append(ready)

        def begin() -> None:
            if warm:  # beside the ledger's first read, so the first overview need not wait
                threading.Thread(
                    target=_compile_forecast, name="costline-warm", daemon=True
                ).start()
            served.start() if served.shared else served.announce()

        later = asyncio.get_running_loop().call_later(START_GRACE_SECONDS, begin)
        if scheduler is not None:
            await _call(scheduler.start)
        try:
            yield
        finally:
            later.cancel()
            if scheduler is not None:
                await _call(scheduler.stop)
            served.close()

    app = FastAPI(
        title="costline",
        summary="FinOps for AI workloads: spend, GPUs, tokens, budgets, forecasts and findings.",
        version="1",
        openapi_url=None,  # served by api.add_docs, behind the same auth as the API
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.served = served
    app.state.reader = served.current() if not served.shared else None
    app.state.auth = auth or Auth([])
    app.state.scheduler = scheduler
    app.state.refresh_seconds = config.server.refresh_seconds
    app.state.config_path = config_path or _config_path(config)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Liveness, without a token: the process answers; `ready` once the cube is built."""
        return JSONResponse({"status": "ok", "ready": served.ready})

    app.include_router(api.router)
    api.add_docs(app)
    api.add_error_handlers(app)
    mount_pages(app)
    return app


def mount_pages(app: FastAPI) -> bool:
    """Include the dashboard's router (and its static files) when `server.pages` is installed."""
    if importlib.util.find_spec(PAGES_MODULE) is None:
        return False
    pages = importlib.import_module(PAGES_MODULE)
    router = getattr(pages, "router", None)
    if router is not None:
        app.include_router(router)
    mount_static = getattr(pages, "mount_static", None)
    if callable(mount_static):
        mount_static(app)
    return router is not None


def _config_path(config: Config) -> Path | None:
    """The one file, or the folder, `config` was loaded from; None for the defaults."""
    files = config.files
    if not files:
        return None
    if len(files) == 1:
        return files[0]
    return files[0].parent


async def _call(method: Any) -> None:
    """Call a scheduler's start or stop, sync or async; a sync one runs off the event loop."""
    if inspect.iscoroutinefunction(method):
        await method()
    else:
        await asyncio.to_thread(method)


DASHBOARD_TOP = 11  # the dashboard's spend charts ask for this many series (the rest: other)


def warm_views(app: FastAPI, reader: Reader, current: Callable[[], bool] = lambda: True) -> None:
    """Compute the views the dashboard's pages ask for first (default window and parameters)
    on `reader`, so that their first visitors find them in the cache: each is computed once per
    ledger version anyway (see `Reader.cached`). A view that fails is left for its request; it
    stops when `current()` says a newer reader took over."""
    request = Request({"type": "http", "app": app, "method": "GET", "path": api.PREFIX,
                       "query_string": b"", "headers": []})  # fmt: skip
    request.state.reader = reader
    f = api.filters(request)
    views: list[Callable[[], object]] = [
        lambda: api.overview(request, f),
        lambda: api.annotation_list(request, f),
        lambda: api.meta_dimensions(request, f),
        lambda: api.spend(request, f, by="team", top=DASHBOARD_TOP),
        lambda: api.spend(request, f, by="model", top=DASHBOARD_TOP),
        lambda: api.findings(request, f, status=["open"]),
        lambda: api.recommendation_list(request, f),
        lambda: api.budgets(request, f),
        lambda: api.tokens(request, f),
        lambda: api.gpu_utilization(request, f, by="pool"),
        lambda: api.showback(request, f),
        lambda: api.gpu_idle(request, f),
        lambda: api.chargeback(request, f),
        lambda: api.unit_costs(request, f),
        lambda: api.forecast(request, f),
    ]
    for view in views:
        if not current():
            return
        try:
            view()
        except Exception:  # its request computes it again and reports the failure
            log.debug("warming a view failed", exc_info=True)


def _compile_forecast() -> None:
    """One small forecast, so that the first overview does not wait for numba to compile."""
    with contextlib.suppress(Exception):
        from costline.forecast.models import Series, forecast

        values = tuple(float(100 + (i % 7) * 10) for i in range(120))
        forecast([Series("warm", dt.date(2026, 1, 1), values)], 14)
