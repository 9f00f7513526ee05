"""`costline serve`: the JSON API and the dashboard over the ledger, with the scheduler.

The server opens the ledger read-write once (DuckDB has one writing process: while it runs, other
costline commands on the same ledger cannot write it; use the API). It listens on its socket before
printing its URL, so `--port 0` picks a free port, the printed URL is the real one, and a request
sent while the server builds its cost cube (seconds on a large ledger) waits rather than fails.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import os
import socket
import sys
from typing import Annotated

import typer


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
    from costline.ledger.store import Ledger
    from costline.server.app import Scheduler, create_app
    from costline.server.auth import Auth

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
    with Ledger(ledger_url()) as ledger:
        scheduler: Scheduler | None = None
        changed: list[object] = []
        if not no_scheduler:
            from costline.server.scheduler import Scheduler as Periodic

            interval = dt.timedelta(minutes=config.server.interval_minutes)
            scheduler = Periodic(ledger, config, interval=interval,
                                 on_sync=lambda _report: _notify(changed))  # fmt: skip
        app = create_app(ledger, config, auth=auth, scheduler=scheduler,
                         config_path=resolve_config_path(state.config_path))  # fmt: skip
        changed.append(app.state.reader.changed)
        url = f"http://{_url_host(host)}:{bound}"
        out_console().print(
            f"costline is serving {ledger.path} at {url}/ (API {url}/api/v1, docs "
            f"{url}/api/v1/docs){'' if auth.enabled else '; no API tokens: the API is open'}",
            soft_wrap=True,
            highlight=False,
        )
        sys.stdout.flush()
        server = uvicorn.Server(
            uvicorn.Config(app, log_level=log_level, proxy_headers=False, server_header=False)
        )
        server.run(sockets=[sock])


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
