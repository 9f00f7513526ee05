"""API tokens and roles: who may read, who may move findings, who may change the configuration.

Tokens come from three places, all at once:

- the configuration, `server.tokens`: each names the environment variable holding it (a token is
  never written in YAML) and its role;
- the environment variable `COSTLINE_API_TOKENS`: `role:token` entries separated by commas;
- `costline serve --token T --role R`.

With none, the API is open (a server on 127.0.0.1 for one person). With any, every `/api/v1`
call needs `Authorization: Bearer <token>` or the dashboard's `costline_token` cookie (HttpOnly,
SameSite=Strict, set by the login form): 401 without one or with a wrong one, 403 when the role is
too low. Roles are ordered: `viewer` reads, `operator` also acknowledges, resolves, snoozes and
reopens findings, `admin` also reads and reloads the configuration.

Tokens are kept only as SHA-256 digests and compared in constant time; no token is logged, echoed
in an error or put in a URL (uvicorn's access log shows paths and filters, nothing else).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from costline.config import Server
from costline.errors import ConfigError, CostlineError

TOKENS_ENV = "COSTLINE_API_TOKENS"
COOKIE = "costline_token"
MIN_TOKEN_LENGTH = 16
_MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Role(enum.IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ConfigError(f"unknown role {name!r}: viewer, operator or admin") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name and its role."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.ADMIN)  # when no token is configured


class Unauthorized(CostlineError):
    """No token, or one the server does not know (HTTP 401)."""


class Forbidden(CostlineError):
    """A known token whose role is too low for the call (HTTP 403)."""


@dataclass(frozen=True)
class Token:
    name: str
    secret: str
    role: Role


class Auth:
    """The tokens the server accepts; `Auth([])` accepts every call."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._digests: list[tuple[bytes, Principal]] = []
        seen: dict[bytes, str] = {}
        for t in tokens:
            if len(t.secret) < MIN_TOKEN_LENGTH:
                raise ConfigError(
                    f"API token {t.name!r} is shorter than {MIN_TOKEN_LENGTH} characters; "
                    f"{_MAKE_ONE}"
                )
            digest = _digest(t.secret)
            if digest in seen:
                raise ConfigError(
                    f"API tokens {seen[digest]!r} and {t.name!r} are the same token; give each "
                    "holder its own"
                )
            seen[digest] = t.name
            self._digests.append((digest, Principal(t.name, t.role)))

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, token: str | None) -> Principal | None:
        """The holder of `token`, or None; every stored digest is compared (constant time)."""
        if not token:
            return None
        presented = _digest(token)
        found = None
        for digest, principal in self._digests:
            if hmac.compare_digest(digest, presented):
                found = principal
        return found

    def check(self, token: str | None, need: Role) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        principal = self.identify(token)
        if principal is None:
            what = "a token that is not valid" if token else "no API token"
            raise Unauthorized(
                f"this call came with {what}: send `Authorization: Bearer <token>` (or log in "
                "to the dashboard)"
            )
        if principal.role < need:
            raise Forbidden(
                f"token {principal.name!r} is a {principal.role}'s; this needs {need} or above"
            )
        return principal

    @classmethod
    def from_sources(
        cls,
        server: Server,
        env: Mapping[str, str],
        *,
        token: str | None = None,
        role: str = "admin",
    ) -> Auth:
        """The tokens of the configuration, of `COSTLINE_API_TOKENS` and of `--token`."""
        tokens: list[Token] = []
        for i, t in enumerate(server.tokens):
            secret = env.get(t.token_env, "").strip()
            if not secret:
                raise ConfigError(
                    f"server.tokens[{i}] ({t.name}): the environment variable {t.token_env} is "
                    "not set or empty; set it to the token, or remove the entry"
                )
            tokens.append(Token(t.name, secret, Role.named(t.role)))
        tokens += parse_env_tokens(env.get(TOKENS_ENV, ""))
        if token is not None:
            tokens.append(Token("command-line", token.strip(), Role.named(role)))
        return cls(tokens)


def parse_env_tokens(text: str) -> list[Token]:
    """`viewer:abc...,admin:def...` -> tokens named `COSTLINE_API_TOKENS[i]`."""
    out = []
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    for i, entry in enumerate(entries):
        role, sep, secret = entry.partition(":")
        if not sep or role.strip().upper() not in Role.__members__ or not secret.strip():
            raise ConfigError(
                f"{TOKENS_ENV} entry {i + 1}: write role:token (roles: viewer, operator, "
                "admin), entries separated by commas"
            )
        out.append(Token(f"{TOKENS_ENV}[{i}]", secret.strip(), Role.named(role)))
    return out


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


bearer = HTTPBearer(
    auto_error=False,
    description="An API token (see docs/api.md); the dashboard's `costline_token` cookie works too.",
)


def require(need: Role) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller, if its token has at least role `need`."""

    def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        auth: Auth = request.app.state.auth
        token = credentials.credentials if credentials is not None else None
        if token is None:
            token = request.cookies.get(COOKIE)
        return auth.check(token, need)

    caller.__name__ = f"require_{need}"
    return caller
