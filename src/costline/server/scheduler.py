"""The server's scheduler: `costline.sync.sync` every `interval` minutes, in a background thread.

It keeps its rhythm across restarts: the time of the last finished sync is a ledger watermark, so
a server restarted two minutes after a sync waits the three left of a five-minute interval rather
than syncing at once (and one down for an hour syncs at once). A sync that raises is logged and
reported in `status()`; the next one runs on time. Everything a sync writes is idempotent, so one
cut short by a crash or a stop is simply done again by the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from costline.clock import SYSTEM_CLOCK, Clock
from costline.config import Config
from costline.ledger.store import Ledger
from costline.sync import SyncReport, last_sync, sync

log = logging.getLogger("costline.scheduler")


class Scheduler:
    def __init__(
        self,
        ledger: Ledger | Callable[[], Ledger],
        config: Config,
        *,
        interval: dt.timedelta = dt.timedelta(minutes=5),
        clock: Clock = SYSTEM_CLOCK,
        env: Mapping[str, str] = os.environ,
        on_sync: Callable[[SyncReport], None] | None = None,
    ) -> None:
        if interval <= dt.timedelta(0):
            raise ValueError(f"scheduler interval must be positive, not {interval}")
        # An open ledger, or how to open one for each use (`Served.open_ledger`: `costline
        # serve` holds the ledger only while it syncs, so other commands can have it between).
        self.ledger = ledger
        self.config = config
        self.interval = interval
        self.clock = clock
        self.env = env
        self.on_sync = on_sync
        self.lock = threading.Lock()  # one sync at a time: the timer's or run_now's
        self.last: SyncReport | None = None
        self.last_error: str | None = None
        self.runs = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def _opened(self) -> Iterator[Ledger]:
        if not callable(self.ledger):
            yield self.ledger
            return
        ledger = self.ledger()
        try:
            yield ledger
        finally:
            ledger.close()

    def next_due(self) -> dt.datetime:
        """When the next sync is due: the last one's end plus the interval (now, if never)."""
        with self._opened() as ledger:
            previous = last_sync(ledger)
        now = self.clock.now()
        return now if previous is None else max(now, previous + self.interval)

    def run_now(self) -> SyncReport | None:
        """One sync, now, in this thread; None (and `last_error` set) if it raised."""
        with self.lock:
            try:
                with self._opened() as ledger:
                    report = sync(ledger, self.config, clock=self.clock, env=self.env)
            except Exception as exc:  # a failed sync must not stop the next one
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("sync failed")
                return None
            self.last, self.last_error = report, None
            self.runs += 1
        for error in report.errors:
            log.warning("sync: %s", error)
        if self.on_sync is not None:
            self.on_sync(report)
        return report

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="costline-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def poke(self) -> None:
        """Run the next sync now rather than at its time."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = (self.next_due() - self.clock.now()).total_seconds()
            except Exception:  # the ledger could not be read now: look again in a minute
                log.exception("reading the last sync failed")
                wait = 60.0
            if wait > 0:
                self._wake.wait(wait)  # the time comes, or a poke or a stop wakes it early
            self._wake.clear()
            if self._stop.is_set():
                break
            self.run_now()

    def status(self) -> dict[str, Any]:
        with self._opened() as ledger:
            previous = last_sync(ledger)
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "interval_minutes": self.interval.total_seconds() / 60,
            "last_sync": previous.isoformat() if previous else None,
            "next_sync": self.next_due().isoformat(),
            "runs": self.runs,
            "last_error": self.last_error,
            "last": self.last.as_json() if self.last else None,
        }
