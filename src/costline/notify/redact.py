"""Keeping secrets out of what costline writes down: error texts, logs, the outbox, the CLI, the
API's view of the configuration.

A route's secrets are the values of the environment variables it names (`webhook_url_env`,
`routing_key_env`, `secret_env`, a webhook's `url_env` and `headers_env`), read at send time
only, and the secrets written into the file itself (a webhook `url` with `?token=` or a password,
a literal `Authorization` header); `route_secrets` lists them all, in every form a receiver may
echo. Anything that may carry one goes through `redact` first:

- every secret value known at that moment is replaced by `[redacted]`;
- every URL keeps only its scheme, host and port: `https://hooks.slack.com/[redacted]`.

>>> redact("POST https://hooks.slack.com/services/T0/B0/xyz failed: key abc123", ["abc123"])
'POST https://hooks.slack.com/[redacted] failed: key [redacted]'
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus, urlsplit

if TYPE_CHECKING:
    from costline.config import Config, RouteConfig

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 300
MIN_SECRET_CHARS = 4  # shorter values would blank out unrelated text ("401", "v=1")

_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
# Query parameters and headers whose value is a credential, by name: `token=`, `api_key=`,
# `sig=`, `Authorization`, `X-Api-Key`, `X-Gitlab-Token`, `Cookie`, ...
SECRET_NAME = re.compile(
    r"token|key|secret|sig|pass|pwd|auth|credential|session|cookie|jwt|bearer|private",
    re.IGNORECASE,
)


def _host_only(match: re.Match[str]) -> str:
    try:
        parts = urlsplit(match.group(0))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port or bracket: keep nothing of it
        return REDACTED
    return f"{parts.scheme}://{host}{port}/{REDACTED}"


def hide(text: str, secrets: Iterable[str]) -> str:
    """`text` with every given secret value replaced by `[redacted]` (URLs otherwise kept)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secret values and without any URL's path, query or userinfo."""
    return _URL.sub(_host_only, hide(text, secrets))


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most `limit` characters (receivers can answer with whole HTML pages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- which values are secrets ---------------------------------------------------------------------


def url_secrets(url: str, *, whole: bool = False) -> list[str]:
    """The secrets in a URL, in the forms an echo may show them: its userinfo's password (and the
    Basic credential httpx sends for it) and the values of query parameters named like secrets.
    A URL that is a secret `whole` (read from an environment variable, like a Slack webhook
    URL) adds itself, its path, its query and every query value.

    >>> url_secrets("https://bot:pw-1234@hooks.example.com/in?team=finops&api_key=abc%2B123")
    ['pw-1234', 'Ym90OnB3LTEyMzQ=', 'abc%2B123', 'abc+123']
    """
    found = [url] if whole else []
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL one can take apart: all of it is hidden
        return [url]
    if password:
        plain = f"{unquote(user or '')}:{unquote(password)}"
        found += [password, unquote(password), base64.b64encode(plain.encode()).decode()]
    if whole:
        found += [parts.path, parts.query]
        if parts.query:
            found.append(f"{parts.path}?{parts.query}")
    for pair in re.split(r"[&;]", parts.query):
        name, _, value = pair.partition("=")
        if whole or SECRET_NAME.search(unquote_plus(name)):
            found += [value, unquote_plus(value)]
    return worth_hiding(found)


def header_secrets(headers: Mapping[str, str], *, whole: bool = False) -> list[str]:
    """The values of headers named like secrets (every header's, when `whole`), and the
    credential after an auth scheme (`Bearer abc123` -> also `abc123`).

    >>> header_secrets({"Authorization": "Bearer abc123", "X-Team": "finops"})
    ['Bearer abc123', 'abc123']
    """
    found: list[str] = []
    for name, value in headers.items():
        if whole or SECRET_NAME.search(name):
            _scheme, _, credential = value.strip().partition(" ")
            found += [value, credential.strip()]
    return worth_hiding(found)


def worth_hiding(values: Iterable[str]) -> list[str]:
    """The values long enough to hide, each once, in order."""
    return list(dict.fromkeys(v for v in values if len(v) >= MIN_SECRET_CHARS))


def route_secrets(route: RouteConfig, env: Mapping[str, str]) -> list[str]:
    """Every secret a route holds or reads: the values of the variables its `*_env` keys name
    (a URL whole, a header with its credential) and the secrets written in its URLs and headers.
    With `env={}`, the secrets the configuration file itself holds."""
    read: list[str] = []  # hidden whatever their length: the user said they are secrets
    found: list[str] = []
    for key, value in route:
        if key.endswith("_env"):
            named = value.items() if isinstance(value, Mapping) else [(None, value)]
            for header, variable in named:
                secret = env.get(variable) if isinstance(variable, str) else None
                if not secret:
                    continue
                read.append(secret)
                if header is not None:
                    found += header_secrets({header: secret}, whole=True)
                elif "://" in secret:
                    found += url_secrets(secret, whole=True)
        elif isinstance(value, str) and "://" in value:
            found += url_secrets(value)
        elif key == "headers" and isinstance(value, Mapping):
            found += header_secrets(value)
    return list(dict.fromkeys([*read, *worth_hiding(found)]))


def redacted_config(config: Config) -> dict[str, Any]:
    """The configuration as JSON, with the secrets written in its routes' URLs and headers
    replaced by `[redacted]` (variables' names are kept: they are not secrets)."""
    data = config.model_dump(mode="json")
    data["routes"] = [
        _hide_all(dumped, route_secrets(route, {}))
        for route, dumped in zip(config.routes, data.get("routes", []), strict=True)
    ]
    return data


def _hide_all(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return hide(value, secrets)
    if isinstance(value, Mapping):
        return {k: _hide_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_all(v, secrets) for v in value]
    return value


# -- logs -----------------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Rewrites log records so that no URL path and no known secret reaches a handler (httpx logs
    every request URL at INFO level: `HTTP Request: POST https://hooks.slack.com/services/...`)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
# Filters apply to the records of the logger they sit on, not to its children's: name each one.
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
                "httpcore.proxy", "httpcore.socks")  # fmt: skip
COSTLINE_LOGGERS = ("costline.notify", "costline.scheduler")


def guard_logs(secrets: Iterable[str] = ()) -> None:
    """Install the filter on httpx's, httpcore's and costline's delivery loggers (idempotent;
    called by `deliver` with its routes' secrets, which the filter then hides too)."""
    _FILTER.secrets.update(worth_hiding(secrets))
    for name in (*HTTP_LOGGERS, *COSTLINE_LOGGERS):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
