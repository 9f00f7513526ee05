"""`create_app`: the FastAPI application of `costline serve`: API, dashboard, scheduler, liveness.

    app = create_app(ledger, config, auth=Auth.from_sources(config.server, os.environ))

The app reads the ledger through one `Reader` (see `server.reader`); the JSON API is mounted under
`/api/v1` (see `server.api`), the dashboard (`server.pages`, when it is installed) at `/`, and
`/healthz` answers liveness without a token. At startup (the lifespan) the cube is built
before the first request is answered, a forecast is made once in the background (its first call
imports statsforecast and compiles numba code, ~10 s) and the scheduler, when one is given, is
started; on shutdown the scheduler stops before the reader closes.
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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from costline.clock import SYSTEM_CLOCK, Clock
from costline.config import Config
from costline.ledger.store import Ledger
from costline.server import api
from costline.server.auth import Auth
from costline.server.reader import Reader

PAGES_MODULE = "costline.server.pages"
log = logging.getLogger("costline.server")


class Scheduler(Protocol):
    """What the app needs of a scheduler: started with the app, stopped before it closes.

    `start` and `stop` may be plain or `async` methods (`server.scheduler.Scheduler` is one).
    """

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


def create_app(
    ledger: Ledger,
    config: Config,
    *,
    auth: Auth | None = None,
    scheduler: Scheduler | None = None,
    config_path: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
    warm: bool = True,
) -> FastAPI:
    """The app over an open read-write `ledger`; it does not close the ledger.

    `auth` defaults to no tokens (an open API); `config_path` is what `POST /api/v1/config/reload`
    reads again (default: the files `config` was loaded from). `warm` builds the cube and compiles
    the forecast models in the background at startup.
    """
    reader = Reader(ledger, config, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=_compile_forecast, name="costline-warm", daemon=True).start()
            try:  # before the first request: ~12 s for 10M cost lines on two cores
                await asyncio.to_thread(reader.cube.warm)
            except Exception:  # the first request builds it again, and reports what failed
                log.exception("building the cost cube failed")
        if scheduler is not None:
            await _call(scheduler.start)
        try:
            yield
        finally:
            if scheduler is not None:
                await _call(scheduler.stop)
            reader.close()

    app = FastAPI(
        title="costline",
        summary="FinOps for AI workloads: spend, GPUs, tokens, budgets, forecasts and findings.",
        version="1",
        openapi_url=None,  # served by api.add_docs, behind the same auth as the API
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.reader = reader
    app.state.auth = auth or Auth([])
    app.state.scheduler = scheduler
    app.state.refresh_seconds = config.server.refresh_seconds
    app.state.config_path = config_path or _config_path(config)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Liveness, without a token: the process answers; `ready` once the cube is built."""
        return JSONResponse({"status": "ok", "ready": reader.cube.ready})

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


def _compile_forecast() -> None:
    """One small forecast, so that the first overview does not wait for numba to compile."""
    with contextlib.suppress(Exception):
        from costline.forecast.models import Series, forecast

        values = tuple(float(100 + (i % 7) * 10) for i in range(120))
        forecast([Series("warm", dt.date(2026, 1, 1), values)], 14)
