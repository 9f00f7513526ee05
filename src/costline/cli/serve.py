"""`costline serve`: the JSON API and the dashboard over the ledger, with the scheduler.

The server does not keep the ledger open: it reads a copy, taken again when another command has
written the ledger, and opens the ledger itself only for its own writes (`server.shared`), so every
other command works while it runs. It listens on its socket before printing its URL, so `--port 0`
picks a free port, the printed URL is the real one, and a request sent while the server reads the
ledger at startup waits rather than fails.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from costline.ledger.store import Ledger


class RoleName(enum.StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            help="An API token to accept (visible to other users in the process list: prefer "
            "COSTLINE_API_TOKENS or server.tokens in costline.yaml)"
        ),
    ] = None,
    role: Annotated[RoleName, typer.Option(help="The role of --token")] = RoleName.admin,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve only: no periodic pull and evaluation")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level")] = "info",
) -> None:
    """Serve the JSON API (/api/v1, OpenAPI at /api/v1/openapi.json) and the dashboard, and run
    the scheduler (pull sources, evaluate, notify every server.interval_minutes).

    With API tokens (server.tokens in the config, COSTLINE_API_TOKENS=role:token,..., or
    --token), every API call needs one; without, the API is open: keep it on 127.0.0.1."""
    import uvicorn

    from costline.cli.context import ledger_url, state
    from costline.cli.output import err_console, out_console
    from costline.config import load_config, resolve_config_path
    from costline.server.app import Scheduler, create_app
    from costline.server.auth import Auth
    from costline.server.shared import Served

    config = load_config(state.config_path)
    auth = Auth.from_sources(config.server, os.environ, token=token, role=role.value)
    if not auth.enabled and not _loopback(host):
        err_console().print(
            f"warning: no API tokens and listening on {host}: anyone who can reach it can read "
            "spend and move findings (set COSTLINE_API_TOKENS or use --token)",
            soft_wrap=True,
        )
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    from costline.ledger.locking import ledger_path

    url = ledger_url()
    path = ledger_path(url)
    if path == ":memory:":  # nobody else can open it: serve it directly
        from costline.fx import configured_rates
        from costline.ledger.store import Ledger

        ledger: Ledger | Served = Ledger(url, fx_rates=configured_rates(config.fx, config.base_dir))
    else:  # read from copies (see server.shared): opened, and the analysis imported, meanwhile
        ledger = Served(config, url=url)
    scheduler: Scheduler | None = None
    changed: list[object] = []
    if not no_scheduler:
        from costline.server.scheduler import Scheduler as Periodic

        interval = dt.timedelta(minutes=config.server.interval_minutes)
        opener = ledger.open_ledger if isinstance(ledger, Served) else ledger
        scheduler = Periodic(opener, config, interval=interval,
                             on_sync=lambda _report: _notify(changed))  # fmt: skip
    app = create_app(ledger, config, auth=auth, scheduler=scheduler,
                     config_path=resolve_config_path(state.config_path))  # fmt: skip
    changed.append(lambda: _changed(app))
    base = f"http://{_url_host(host)}:{bound}"
    out_console().print(
        f"costline is serving {path} at {base}/ (API {base}/api/v1, docs "
        f"{base}/api/v1/docs){'' if auth.enabled else '; no API tokens: the API is open'}",
        soft_wrap=True,
        highlight=False,
    )
    sys.stdout.flush()
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=log_level, proxy_headers=False, server_header=False)
    )
    if isinstance(ledger, Served):
        ledger.address = base  # named in its marker: see `ledger.locking`
    server.run(sockets=[sock])
    if not isinstance(ledger, Served):
        ledger.close()


def _changed(app: object) -> None:
    """The scheduler synced: what the server caches is stale (a copy is taken anew anyway)."""
    reader = getattr(getattr(app, "state", None), "served", None)
    latest = reader.latest() if reader is not None else None
    if latest is not None:
        latest.changed()


def _notify(callbacks: list[object]) -> None:
    for callback in callbacks:
        if callable(callback):
            callback()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    from costline.errors import CostlineError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CostlineError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port (0: any free)"
        ) from None
    # Listening now, not when uvicorn has started: a client that connects while the server warms
    # up waits for its answer instead of being refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"[{host}]" if ":" in host else host


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
