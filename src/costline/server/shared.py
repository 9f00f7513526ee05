"""The ledger as the server serves it, without locking anyone else out of it.

DuckDB lets one process open a file to write, or many to read. A server that kept the ledger open
would lock every `costline ingest` (and, open to write, every report) out for as long as it runs.
So `costline serve` reads a private copy of the ledger (`Snapshots`), taken under a brief
read-only lock, and holds the ledger itself only for moments:

- **Reads** run on the copy (a `Reader` over it: cube, caches, a cursor per thread; see
  `server.reader`). A watcher looks at the ledger's file every `POLL_SECONDS` (size and mtime of
  it and of its write-ahead log); when another process has written it, a fresh copy is taken, a
  new `Reader` is built over it and its cube warmed in the background, then swapped in: requests
  never wait for it, and the old one is closed once the requests begun on it are done.
- **Writes** of the server (a finding moved through the API, the scheduler's sync) open the ledger
  to write for the length of the write (`write`, `open_ledger`), waiting as any command does
  (`ledger.locking`); a finding moved is applied to the copy too, so the API shows it at once.
- **Other commands** meet the lock only during those moments, and wait for it (`ledger.locking`).

`Served.direct(ledger, ...)` serves an already open `Ledger` with no copy (an in-memory ledger,
the tests): reads and writes on it, as before.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from costline.clock import SYSTEM_CLOCK, Clock
from costline.config import Config
from costline.errors import CostlineError

if TYPE_CHECKING:
    import duckdb

    from costline.ledger.store import Ledger
    from costline.server.reader import Reader

T = TypeVar("T")
POLL_SECONDS = 0.25  # how often the watcher looks at the ledger's file
CLOSE_AFTER_SECONDS = 30.0  # a swapped-out reader outlives the requests that began on it
FIRST_READER_SECONDS = 600.0  # a request waits this long for the first copy to be read
log = logging.getLogger("costline.server")

Signature = tuple[tuple[int, int] | None, tuple[int, int] | None]


def signature(path: str) -> Signature:
    """(mtime, size) of the ledger's file and of its write-ahead log: changes when it is written."""

    def stat(p: str) -> tuple[int, int] | None:
        try:
            st = os.stat(p)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    return (stat(path), stat(f"{path}.wal"))


PREFIX = ".costline-serve-"


def remove_orphans(folder: Path) -> list[Path]:
    """Remove the copies a server that is gone left (killed before it could remove them: each is
    a whole ledger's size). A folder is `<PREFIX><pid>-<random>`; its server is gone when no
    process has that pid. Returns what was removed."""
    removed = []
    for found in folder.glob(f"{PREFIX}*"):
        pid = found.name[len(PREFIX) :].split("-", 1)[0]
        if not found.is_dir() or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(found, ignore_errors=True)
        removed.append(found)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


class Snapshots:
    """Private copies of a ledger file, in a folder beside it (same disk), removed on `close`."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder = Path(path).resolve().parent
        remove_orphans(folder)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=folder))
        self._numbers = itertools.count(1)

    def take(self) -> tuple[Path, Signature]:
        """A copy of the ledger as it is now, and the signature it was taken at. The read-only
        lock held meanwhile keeps writers out, so the file (and a log a crashed writer left,
        copied with it) is a consistent state."""
        import duckdb

        from costline.ledger import locking
        from costline.ledger.sql import run

        try:
            con = locking.connect(self.path, read_only=True)
        except duckdb.ConnectionException:  # this process has it open to write: share that
            con = locking.connect(self.path)
            run(con, "CHECKPOINT")  # its log written into the file, which is copied
        try:
            taken = signature(self.path)
            target = self.folder / f"ledger-{next(self._numbers)}.duckdb"
            shutil.copyfile(self.path, target)
            if taken[1] is not None:
                shutil.copyfile(f"{self.path}.wal", f"{target}.wal")
        finally:
            con.close()
        return target, taken

    @staticmethod
    def remove(copy: Path) -> None:
        for p in (copy, Path(f"{copy}.wal")):
            with contextlib.suppress(OSError):
                p.unlink()

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class _Current:
    reader: Reader
    copy: Path | None  # None: a ledger served directly
    taken: Signature | None


class Served:
    """The current `Reader` of the served ledger, and the server's writes to the ledger."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock = SYSTEM_CLOCK,
        url: str | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.url = url
        self.path = ledger.path if ledger is not None else _path(url)
        self._ledger = ledger
        self._current: _Current | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._snapshots: Snapshots | None = None
        self.on_ready: list[Callable[[Reader], None]] = []  # called after each new reader
        self.address: str | None = None  # the server's URL, for the ledger's marker file
        self._marker: contextlib.ExitStack | None = None

    @classmethod
    def direct(cls, ledger: Ledger, config: Config, *, clock: Clock = SYSTEM_CLOCK) -> Served:
        """Serve an open ledger itself (no copy, no watcher): reads and writes on it."""
        from costline.server.reader import Reader

        served = cls(config, clock=clock, ledger=ledger)
        served._current = _Current(Reader(ledger, config, clock=clock), None, None)
        served._ready.set()
        return served

    def announce(self) -> None:
        """Call `on_ready` for the current reader (in the background), as a new one would."""
        current = self._current
        if current is not None and self.on_ready:
            threading.Thread(target=self._announce, args=(current.reader,),
                             name="costline-warm-views", daemon=True).start()  # fmt: skip

    @property
    def shared(self) -> bool:
        """Whether the server reads a copy (and other processes may write the ledger)."""
        return self._ledger is None

    @property
    def ready(self) -> bool:
        """A reader is there and its cube is built."""
        current = self._current
        return current is not None and current.reader.cube.ready

    # -- reading ------------------------------------------------------------------------------

    def current(self) -> Reader:
        """The reader of the latest copy; waits for the first one (read at startup)."""
        if not self._ready.wait(FIRST_READER_SECONDS):
            raise CostlineError("the server is still reading the ledger; try again shortly")
        current = self._current
        if current is None:
            failed = self._failed
            raise CostlineError(f"the server could not read the ledger: {failed}")
        return current.reader

    def start(self) -> None:
        """Take the first copy and build its reader, then watch the ledger: in the background."""
        if not self.shared:
            return
        from costline.ledger import locking

        self._marker = contextlib.ExitStack()
        self._marker.enter_context(locking.serving_marker(self.path, self.address or ""))
        self._snapshots = Snapshots(self.path)
        self._watcher = threading.Thread(target=self._watch, name="costline-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        from costline.ledger.store import Ledger

        try:
            Ledger(self.url or self.path).close()  # created, or brought to this schema, first
            self._refresh()
        except Exception as exc:  # the requests that wait for it say what failed
            log.exception("reading the ledger failed")
            self._failed = exc
            self._ready.set()
        while not self._stop.wait(POLL_SECONDS):
            current = self._current
            if current is None or signature(self.path) != current.taken:
                try:
                    self._refresh()
                except Exception:  # the old copy keeps answering; try again next time
                    log.exception("reading the changed ledger failed")
                    self._stop.wait(5.0)

    def _refresh(self) -> None:
        """A new copy of the ledger and its reader (cube built), swapped in for the old one."""
        from costline.ledger.store import Ledger
        from costline.server.reader import Reader

        assert self._snapshots is not None
        copy, taken = self._snapshots.take()
        ledger = Ledger(f"duckdb://{copy}", clock=self.clock)  # the reader converts currencies
        reader = Reader(ledger, self.config, clock=self.clock, path=self.path)
        previous = self._current
        if previous is not None:
            reader.succeed(previous.reader)
        try:
            reader.cube.warm()
        except Exception:  # the first request builds it again, and reports what failed
            log.exception("building the cost cube failed")
        self._set(_Current(reader, copy, taken))

    def _set(self, fresh: _Current) -> None:
        with self._swap_lock:
            previous, self._current = self._current, fresh
        self._ready.set()
        if previous is not None:
            timer = threading.Timer(CLOSE_AFTER_SECONDS, self._retire, args=(previous,))
            timer.daemon = True
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
        if self.on_ready:
            threading.Thread(target=self._announce, args=(fresh.reader,),
                             name="costline-warm-views", daemon=True).start()  # fmt: skip

    def _announce(self, reader: Reader) -> None:
        for callback in self.on_ready:
            try:
                callback(reader)
            except Exception:  # a request computes it again, and reports what failed
                log.exception("warming the server failed")

    def latest(self) -> Reader | None:
        """The current reader, without waiting for one; None before the first."""
        current = self._current
        return None if current is None else current.reader

    def _retire(self, old: _Current) -> None:
        old.reader.close()
        if old.copy is not None:
            with contextlib.suppress(Exception):
                old.reader.ledger.close()
            Snapshots.remove(old.copy)

    # -- writing ------------------------------------------------------------------------------

    def write(self, change: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Apply `change` to the ledger (opened to write for the moment) and to the copy read."""
        reader = self.current()
        if not self.shared:
            result = change(reader.cursor())
            reader.changed()
            return result
        from costline.ledger import locking
        from costline.ledger.sql import run

        with self._write_lock:
            con = locking.connect(self.path)
            try:
                run(con, "SET TimeZone = 'UTC'")
                before = signature(self.path)
                result = change(con)
                run(con, "CHECKPOINT")  # nothing left to write when it closes
                after = signature(self.path)
            finally:
                con.close()
            with self._swap_lock:
                current = self._current
                if current is not None and current.copy is not None:
                    with contextlib.suppress(CostlineError):  # the copy moves on its own then
                        change(current.reader.cursor())
                    if current.taken == before:  # nobody else wrote: the copy is this state
                        current.taken = after
                    current.reader.changed()
        return result

    def open_ledger(self) -> Ledger:
        """The ledger itself, open to write (the scheduler's sync); the caller closes it soon."""
        from costline.fx import configured_rates
        from costline.ledger.store import Ledger

        if self._ledger is not None:
            return self._ledger
        rates = configured_rates(self.config.fx, self.config.base_dir)
        return Ledger(self.url or self.path, clock=self.clock, fx_rates=rates)

    # -- configuration and lifecycle ------------------------------------------------------------

    def set_config(self, config: Config) -> None:
        """A reloaded configuration, for the current reader and the ones after it."""
        self.config = config
        self.current().set_config(config)

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(60)
        for timer in self._timers:
            timer.cancel()
        current, self._current = self._current, None
        if current is not None:
            if current.copy is None:
                current.reader.close()
            else:
                self._retire(current)
        if self._snapshots is not None:
            self._snapshots.close()
        if self._marker is not None:
            self._marker.close()


def _path(url: str | None) -> str:
    from costline.ledger.locking import ledger_path

    if url is None:
        raise ValueError("a served ledger needs a URL or an open ledger")
    return ledger_path(url)
