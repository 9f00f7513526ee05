"""Keeping secrets out of what costline writes down: error texts, logs, the outbox, the CLI.

Webhook URLs (a Slack incoming-webhook URL *is* its credential), routing keys and signing secrets
live in environment variables and are read at send time only. Anything that may echo them (an
httpx exception, a receiver's error body, httpx's own request log) goes through `redact` first:

- every secret value known at that moment is replaced by `[redacted]`;
- every URL keeps only its scheme, host and port: `https://hooks.slack.com/[redacted]`.

>>> redact("POST https://hooks.slack.com/services/T0/B0/xyz failed: key abc123", ["abc123"])
'POST https://hooks.slack.com/[redacted] failed: key [redacted]'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 300

_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")


def _host_only(match: re.Match[str]) -> str:
    try:
        parts = urlsplit(match.group(0))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port or bracket: keep nothing of it
        return REDACTED
    return f"{parts.scheme}://{host}{port}/{REDACTED}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secret values and without any URL's path, query or userinfo."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _URL.sub(_host_only, text)


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most `limit` characters (receivers can answer with whole HTML pages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RedactingFilter(logging.Filter):
    """Rewrites log records so that no URL path reaches a handler (httpx logs every request URL
    at INFO level: `HTTP Request: POST https://hooks.slack.com/services/...`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
# Filters apply to the records of the logger they sit on, not to its children's: name each one.
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
                "httpcore.proxy", "httpcore.socks")  # fmt: skip


def guard_http_logs() -> None:
    """Install the filter on httpx's and httpcore's loggers (idempotent; called by `deliver`)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
