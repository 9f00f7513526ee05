"""Opening the ledger file while another process has it: wait a moment, then say who has it.

DuckDB lets one process open a database file to write, or many to read, never both; a second
opener gets `IO Error: Could not set lock on file ...: Conflicting lock is held in ... (PID n)`.
`costline serve` holds the ledger only for moments (a copy it reads from, its own writes: see
`server.shared`), so a command that meets the lock waits for it, with backoff, for up to
`COSTLINE_LOCK_WAIT` seconds (default `DEFAULT_WAIT_SECONDS`), saying on stderr after
`NOTICE_AFTER_SECONDS` what it waits for. If the lock cannot be had by then, a `LedgerError`
(exit 2) names the holder: "a costline server (PID n, http://...)" when the server's marker file
(`<ledger>.serving`, written by `costline serve`) names that process, else "another process
(PID n)". DuckDB's own message is never shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import duckdb

from costline.errors import LedgerError

DEFAULT_WAIT_SECONDS = 60.0
UPGRADE_WAIT_SECONDS = 2.0  # a reader that must upgrade an older ledger waits only this long
NOTICE_AFTER_SECONDS = 2.0
WAIT_ENV = "COSTLINE_LOCK_WAIT"
T = TypeVar("T")
_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.25
_PID = re.compile(r"\(PID (\d+)\)")


def ledger_path(url: str) -> str:
    """The DuckDB database path of a ledger URL (`duckdb:///abs/path`, `duckdb://rel/path`, a path)."""
    if url.startswith("duckdb://"):
        rest = url[len("duckdb://") :]
        if not rest:
            raise LedgerError(f"ledger URL {url!r} names no database file")
        return rest
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise LedgerError(
            f"ledger URL {url!r}: only duckdb:// ledgers can be written; "
            f"{scheme} engines are read through Ibis (costline.open_backend)"
        )
    return url


class LedgerBusy(LedgerError):
    """Another process held the ledger for longer than the wait; `holder` says who, in words."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def is_lock_error(exc: BaseException) -> bool:
    """Whether DuckDB refused the file because another process holds its lock."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def wait_seconds(env: Mapping[str, str] = os.environ) -> float:
    """How long to wait for the lock: `COSTLINE_LOCK_WAIT` (seconds), else the default."""
    text = env.get(WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_WAIT_SECONDS
    try:
        return max(0.0, float(text))
    except ValueError:
        raise LedgerError(f"{WAIT_ENV}={text!r} is not a number of seconds") from None


def connect(
    path: str, *, read_only: bool = False, wait: float | None = None
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect(path, read_only=...)`, waiting up to `wait` seconds for another process's
    lock (see the module)."""
    return retry(lambda: duckdb.connect(path, read_only=read_only), path, wait=wait)


def retry(
    open_: Callable[[], T], path: str, *, wait: float | None = None, notice: bool = True
) -> T:
    """`open_()`, called again with backoff while it fails on the ledger's lock, for at most
    `wait` seconds (default `wait_seconds()`); then a `LedgerError` naming the holder."""
    limit = wait_seconds() if wait is None else wait
    started = time.monotonic()
    pause = _FIRST_PAUSE
    told = not notice
    while True:
        try:
            return open_()
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise
            waited = time.monotonic() - started
            if waited >= limit:
                who = holder(path, str(exc))
                raise LedgerBusy(
                    f"the ledger {path} is in use by {who} and was not free after {waited:.0f} s "
                    f"of waiting; try again when it is done (or raise {WAIT_ENV}, in seconds)",
                    who,
                ) from None
            if not told and waited >= NOTICE_AFTER_SECONDS:
                told = True
                print(f"waiting for the ledger {path}: {holder(path, str(exc))} has it open",
                      file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(min(pause, max(limit - waited, 0.0)))
            pause = min(pause * 2, _LONGEST_PAUSE)


def holder(path: str, message: str) -> str:
    """Who holds the ledger's lock, in words, from DuckDB's message and the server's marker."""
    found = _PID.search(message)
    pid = int(found.group(1)) if found else None
    server = read_marker(path)
    if server is not None and (pid is None or server.get("pid") == pid):
        url = server.get("url")
        return f"a costline server (PID {server.get('pid')}{f', {url}' if url else ''})"
    return f"another process (PID {pid})" if pid is not None else "another process"


def marker_path(path: str) -> Path:
    return Path(f"{path}.serving")


def read_marker(path: str) -> dict[str, object] | None:
    """The running server's marker of this ledger (its PID and URL), if one is there."""
    try:
        data = json.loads(marker_path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def serving_marker(path: str, url: str) -> Iterator[None]:
    """Mark the ledger as served by this process (at `url`) while the block runs, so that a
    command kept waiting can say it is a costline server that has the ledger."""
    marker = marker_path(path)
    with contextlib.suppress(OSError):
        marker.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    try:
        yield
    finally:
        mine = read_marker(path)
        if mine is not None and mine.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                marker.unlink()
