"""The server's view of the ledger: one connection, a cursor per thread, a daily cube, a version.

The server opens the ledger once, read-write (DuckDB allows one writing process; the scheduler
writes through the same `Ledger`). Requests run in FastAPI's threadpool, each thread on its own
cursor of that connection (a DuckDB connection is not safe to share between threads; its cursors
are) with its own Ibis backend over it, so requests never wait on one another in Python. No
request touches the ledger's own connection (`ledger.con`, or a `Ledger` method that uses it): it
is the scheduler's, and DuckDB refuses a second call on a connection that is busy ("connection is
busy with another call") rather than waiting.

**Version.** Everything cached is keyed by `Reader.version()`: the latest ingestion (time and
count), a checksum of the findings' fingerprints and statuses, and a generation that the server's
own writes and a configuration reload bump (`changed`). One small query over two state tables, at
most every half second (the server's own writes, and the scheduler's through `changed`, are seen
at once; anything else within `STATE_SECONDS`).

**The cube.** Overview, spend, dimensions and the cost forecast all read one table: effective and
billed cost per day and per value of every filter dimension (provider, service, region, team,
project, environment, model, cost domain, cost layer, owner), built once per ledger version from
`attribution.rules.derive_lines` (the attribution the CLI uses) into an in-memory database attached
to the ledger's connection. Sums of DECIMAL(38, 18) are exact, so any filter and grouping over the
cube gives to the last digit what the same query over the cost lines gives, in milliseconds
instead of seconds (deriving the attribution of 10M lines takes 12-25 s on two cores). When the
ledger changes, a cube that took under `SYNC_BUILD_SECONDS` to build is rebuilt before answering;
a slower one keeps answering while its successor is built in the background.

**Slices.** For a selector and one dimension, `Reader.slice` asks the cube once for the cost per
day and value and keeps it as prefix sums per value (exact, in decimal): the cost of any value over
any run of days is then a subtraction. Spend over any window and granularity, the overview's daily
line and its top movers are read from slices, so a new window costs no engine query at all.

**Responses** are cached per (endpoint, parameters, version), computed once when many clients ask
the same thing at the same time, and computed again in the background once `CACHE_SECONDS` old
(the aged answer is given meanwhile). Slices, allocations, the reports and the telemetry views,
which depend on the data alone (every write of data is an ingestion), are cached per data version
and never age: moving a finding does not drop them, and nothing recomputes them for age alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import duckdb
import ibis
from ibis.backends.duckdb import Backend as DuckDBBackend

from costline.attribution.rules import Rules, derive_lines, scope_column, select
from costline.clock import SYSTEM_CLOCK, Clock
from costline.config import Config
from costline.fx import configured_rates, reporting_lines
from costline.ledger import migrations
from costline.ledger.sql import run, run_one
from costline.ledger.store import Ledger
from costline.model import Selector
from costline.money import MONEY_CONTEXT

T = TypeVar("T")

CUBE_DIMENSIONS = (
    "ProviderName",
    "ServiceName",
    "region",
    "team",
    "project",
    "environment",
    "model",
    "cost_domain",
    "cost_layer",
    "owner",
)
SYNC_BUILD_SECONDS = 2.0  # a cube that builds faster than this is rebuilt before answering
CACHE_SECONDS = 60.0
STATE_SECONDS = 0.5  # the ledger's state is asked again after this long
DROP_AFTER_SECONDS = 30.0  # an old cube outlives the requests that began on it
CACHE_ENTRIES = 512
CACHE_BYTES = 256 * 2**20  # encoded answers kept, at most
_ATTACHED = itertools.count(1)

Version = tuple[Hashable, ...]
ALL = "all"  # the one key of a slice without a dimension
NONE_KEY = "(none)"  # the key of a missing value
ZERO = Decimal(0)


@dataclass
class _ThreadState:
    cursor: duckdb.DuckDBPyConnection
    backend: DuckDBBackend | None = None
    tables: dict[tuple[tuple[str, str] | None, str], ibis.Table] = field(default_factory=dict)


@dataclass(frozen=True)
class _Built:
    data_version: Version
    name: str
    seconds: float


class Reader:
    """The ledger as the server reads it; `Reader(ledger, config)`, `close()` when done."""

    def __init__(
        self,
        ledger: Ledger,
        config: Config,
        *,
        clock: Clock = SYSTEM_CLOCK,
        path: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.path = path or ledger.path  # the ledger served (`ledger` may be a copy of it)
        self.clock = clock
        self.config = config
        self.rules = Rules.from_config(config)
        self.fx_rates = configured_rates(config.fx, config.base_dir)
        self._generation = 0  # bumped by every write this server knows of
        self._rules_generation = 0  # bumped when the attribution rules change
        self._seen: tuple[float, int, tuple[Hashable, ...]] | None = None  # see _state_row
        self._threads: dict[int, _ThreadState] = {}
        self._lock = threading.Lock()
        self.catalog = f"costline_serve_{next(_ATTACHED)}"
        run(ledger.con, f"ATTACH ':memory:' AS {self.catalog}")
        self._maintenance = ledger.con.cursor()  # drops old cubes, from a timer thread
        self._maintenance_lock = threading.Lock()
        self.cube = Cube(self)
        self.cache = ResponseCache()

    # -- per-thread access ------------------------------------------------------------------

    def _state(self) -> _ThreadState:
        """This thread's cursor, backend and tables (kept here, not in a thread-local, so that
        `close` releases them whichever threads are still alive)."""
        ident = threading.get_ident()
        state = self._threads.get(ident)
        if state is None:
            con = self.ledger.con.cursor()
            run(con, "SET TimeZone = 'UTC'")
            state = _ThreadState(con)
            with self._lock:
                self._threads[ident] = state
        return state

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the ledger's connection (created on first use)."""
        return self._state().cursor

    def schema_version(self) -> int:
        """The ledger's schema version, on this thread's cursor (`Ledger.schema_version` asks the
        ledger's own connection, which a request must not use: see the module)."""
        return migrations.current_version(self.cursor())

    def backend(self) -> DuckDBBackend:
        """This thread's Ibis backend, over its cursor."""
        state = self._state()
        if state.backend is None:
            state.backend = ibis.duckdb.from_connection(state.cursor)
        return state.backend

    def table(self, name: str, database: tuple[str, str] | None = None) -> ibis.Table:
        """A ledger table as an unexecuted Ibis expression on this thread's backend."""
        backend = self.backend()
        tables = self._state().tables
        key = (database, name)
        if key not in tables:
            table = backend.table(name, database=database)
            if name == "cost_lines" and database is None:  # in USD, as `Ledger.table` gives it
                table = reporting_lines(table, self.fx_rates)
            tables[key] = table
        return tables[key]

    def cube_table(self) -> ibis.Table:
        """The daily cube (see the module) of the current ledger version."""
        return self.table(self.cube.current(), database=(self.catalog, "main"))

    # -- versions ---------------------------------------------------------------------------

    def version(self) -> Version:
        """Changes whenever anything this server shows could have changed."""
        return (*self._state_row(), self._generation)

    def data_version(self) -> Version:
        """Changes when cost lines may have: an ingestion, or attribution rules reloaded."""
        return (*self._state_row()[:2], self._rules_generation)

    def _state_row(self) -> tuple[Hashable, ...]:
        """The latest ingestion and a checksum of the findings, asked at most every
        `STATE_SECONDS` (writes through this server bump the generation and are seen at once)."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen
            if seen is not None and now - seen[0] < STATE_SECONDS and seen[1] == self._generation:
                return seen[2]
            generation = self._generation
        row = run_one(
            self.cursor(),
            """SELECT (SELECT max(ingested_at) FROM ingestions),
                      (SELECT count(*) FROM ingestions),
                      (SELECT count(*) FROM findings),
                      (SELECT sum(hash(fingerprint || status || coalesce(CAST(last_seen AS
                       VARCHAR), ''))) FROM findings)""",
        )
        state = tuple(row or (None, 0, 0, None))
        with self._lock:
            self._seen = (now, generation, state)
        return state

    def succeed(self, previous: Reader) -> None:
        """Take over from the reader of an earlier copy of the same ledger: its generations (so
        no version of this one is mistaken for one of that) and its cache (answers keyed by the
        data's version stay good when only findings moved)."""
        with previous._lock:
            generation, rules = previous._generation, previous._rules_generation
        with self._lock:
            self._generation = generation + 1
            self._rules_generation = rules
        self.cache = previous.cache

    def changed(self) -> None:
        """Something was written (a finding moved, the scheduler ingested): drop cached answers."""
        with self._lock:
            self._generation += 1

    def set_config(self, config: Config) -> None:
        """A reloaded configuration: new budgets, owners and attribution rules from now on."""
        self.config = config
        self.rules = Rules.from_config(config)
        with self._lock:
            self._rules_generation += 1
        self.changed()

    def cached(self, endpoint: str, params: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, or its answer for the same endpoint, parameters and ledger version."""
        key = (endpoint, params, self.version())
        return self.cache.get(key, compute)

    def cached_data(self, name: str, params: Hashable, compute: Callable[[], T]) -> T:
        """`cached`, for answers that depend on the ledger's data and rules only (not findings,
        not the time of day): kept while the data's version lasts, however old."""
        return self.cache.get((name, params, self.data_version()), compute, ages=False)

    def slice(self, selector: Selector, dimension: str | None, column: str) -> Slice:
        """The cost (`column`: effective or billed) per day and value of `dimension` (None: one
        value, `all`) of the cube rows within `selector`, as prefix sums; cached per data version."""
        terms = tuple(sorted((d, tuple(sorted(v))) for d, v in selector.root.items()))

        def build() -> Slice:
            c = select(self.cube_table(), selector)
            key = scope_column(c, dimension).fill_null(NONE_KEY) if dimension else ibis.literal(ALL)
            rows = c.group_by(day=c.day, key=key).aggregate(cost=c[column].sum()).to_pyarrow()
            return Slice.of(rows["day"].to_pylist(), rows["key"].to_pylist(),
                            rows["cost"].to_pylist())  # fmt: skip

        return self.cached_data("slice", (terms, dimension, column), build)

    def drop(self, table: str) -> None:
        """Drop a table of the reader's in-memory catalog (an old cube)."""
        with self._maintenance_lock, contextlib.suppress(duckdb.Error):  # may be closing
            run(self._maintenance, f"DROP TABLE IF EXISTS {self.catalog}.main.{table}")

    def close(self) -> None:
        self.cube.wait()
        with self._lock:
            states, self._threads = list(self._threads.values()), {}
        for con in [self._maintenance, *(state.cursor for state in states)]:
            with contextlib.suppress(duckdb.Error):
                con.close()
        with contextlib.suppress(duckdb.Error):
            run(self.ledger.con, f"DETACH {self.catalog}")


class Cube:
    """The daily cube of one `Reader` (see the module): built on demand, swapped atomically."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._built: _Built | None = None
        self._build_lock = threading.Lock()
        self._names = itertools.count(1)
        self._background: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    @property
    def ready(self) -> bool:
        return self._built is not None

    def current(self) -> str:
        """The name of the cube table to read for the ledger as it is now."""
        version = self.reader.data_version()
        built = self._built
        if built is not None and built.data_version == version:
            return built.name
        if built is not None and built.seconds >= SYNC_BUILD_SECONDS:
            self._build_in_background(version)
            return built.name
        return self._build(version).name

    def warm(self) -> None:
        """Build the cube for the ledger as it is now (the server does this before it answers)."""
        self._build(self.reader.data_version())

    def wait(self) -> None:
        """Let a build in progress finish; cancel the pending drops (the catalog goes anyway)."""
        thread = self._background
        if thread is not None:
            thread.join()
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _build_in_background(self, version: Version | None) -> None:
        if self._background is not None and self._background.is_alive():
            return

        def build() -> None:
            # A failure here is not lost: the next request builds again and reports it.
            with contextlib.suppress(Exception):
                self._build(version if version is not None else self.reader.data_version())

        self._background = threading.Thread(target=build, name="costline-cube", daemon=True)
        self._background.start()

    def _build(self, version: Version) -> _Built:
        with self._build_lock:
            built = self._built
            if built is not None and built.data_version == version:
                return built
            started = time.perf_counter()
            backend = self.reader.backend()
            expression = cube_expression(self.reader.table("cost_lines"), self.reader.rules)
            name = f"cube_{next(self._names)}"
            catalog = self.reader.catalog
            run(
                self.reader.cursor(),
                f"CREATE TABLE {catalog}.main.{name} AS {backend.compile(expression)}",
            )
            fresh = _Built(version, name, time.perf_counter() - started)
            previous, self._built = self._built, fresh
        if previous is not None:
            # Requests that started on the previous cube may still be reading it: drop it later.
            timer = threading.Timer(DROP_AFTER_SECONDS, self.reader.drop, args=(previous.name,))
            timer.daemon = True
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
            timer.start()
        return fresh


def cube_expression(lines: ibis.Table, rules: Rules) -> ibis.Table:
    """Cost per day and value of every cube dimension, from the derived attribution columns."""
    derived = derive_lines(lines, rules)
    day = derived.ChargePeriodStart.date().name("day")
    return derived.group_by([day, *CUBE_DIMENSIONS]).aggregate(
        effective=derived.EffectiveCost.sum(),
        billed=derived.BilledCost.sum(),
        lines=derived.count(),
    )


class Slice:
    """Cost per day and key as prefix sums: `total(key, start, end)` is exact and O(1).

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> day = [dt.date(2026, 10, d) for d in (1, 2, 3, 4)]
    >>> s = Slice.of([day[0], day[2]], ["a", "a"], [Decimal("1.5"), Decimal(2)])
    >>> s.total("a", day[0], day[3]), s.total("a", day[1], day[2]), s.total("b", day[0], day[3])
    (Decimal('3.5'), Decimal('0.0'), Decimal('0'))
    """

    def __init__(self, first: dt.date, days: int, sums: dict[str, list[Decimal]]) -> None:
        self.first = first
        self.days = days
        self.sums = sums  # key -> [0, day0, day0 + day1, ...]: days + 1 values

    @classmethod
    def of(
        cls, days: Sequence[dt.date], keys: Sequence[str], costs: Sequence[Decimal | None]
    ) -> Slice:
        if not days:
            return cls(dt.date(1970, 1, 1), 0, {})
        first = min(days)
        n = (max(days) - first).days + 1
        daily: dict[str, list[Decimal]] = {}
        for day, key, cost in zip(days, keys, costs, strict=True):
            values = daily.setdefault(key, [ZERO] * n)
            i = (day - first).days
            values[i] = MONEY_CONTEXT.add(values[i], cost or ZERO)
        sums = {}
        for key, values in daily.items():
            running = [ZERO]
            for v in values:
                running.append(MONEY_CONTEXT.add(running[-1], v))
            sums[key] = running
        return cls(first, n, sums)

    def _index(self, day: dt.date) -> int:
        return min(max((day - self.first).days, 0), self.days)

    def total(self, key: str, start: dt.date, end: dt.date) -> Decimal:
        """The key's cost over `[start, end)`; zero outside the data."""
        running = self.sums.get(key)
        if running is None:
            return ZERO
        return MONEY_CONTEXT.subtract(running[self._index(end)], running[self._index(start)])

    def totals(self, start: dt.date, end: dt.date) -> dict[str, Decimal]:
        """Every key's cost over `[start, end)`."""
        a, b = self._index(start), self._index(end)
        return {k: MONEY_CONTEXT.subtract(r[b], r[a]) for k, r in self.sums.items()}

    @property
    def last(self) -> dt.date | None:
        """The last day with data, None when empty."""
        return self.first + dt.timedelta(days=self.days - 1) if self.days else None


class ResponseCache:
    """A small LRU of computed answers; one computation per key at a time (the others wait for
    it). An answer older than `seconds` is still given, once, while its successor is computed in
    the background (`refresh`): a busy view is never recomputed while its clients wait."""

    def __init__(
        self,
        *,
        seconds: float = CACHE_SECONDS,
        entries: int = CACHE_ENTRIES,
        max_bytes: int = CACHE_BYTES,
    ) -> None:
        self.seconds = seconds
        self.entries = entries
        self.max_bytes = max_bytes
        self._bytes = 0  # of the encoded answers (bytes) held
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()
        self._refresher: ThreadPoolExecutor | None = None

    def get(self, key: Hashable, compute: Callable[[], T], *, ages: bool = True) -> T:
        """`compute()`'s answer for `key`; `ages=False` for an answer its key fully determines
        (the data's version is in it): never computed again for age alone."""
        hit = self._lookup(key)
        if hit is not None:
            if time.monotonic() - hit[0] > self.seconds:
                self._refresh(key, compute)
            return hit[1]
        with self._lock:
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            hit = self._lookup(key)
            if hit is not None:
                return hit[1]
            try:
                value = compute()
            finally:
                with self._lock:
                    self._pending.pop(key, None)
            self._store(key, value, ages)
            return value

    def _store(self, key: Hashable, value: object, ages: bool = True) -> None:
        with self._lock:
            self._forget(key)
            self._items[key] = (time.monotonic() if ages else math.inf, value)
            self._bytes += _size(value)
            while len(self._items) > self.entries or self._bytes > self.max_bytes:
                self._forget(next(iter(self._items)))

    def _refresh(self, key: Hashable, compute: Callable[[], Any]) -> None:
        """Compute an aged answer again in the background, once at a time per key."""
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(2, thread_name_prefix="costline-refresh")
            refresher = self._refresher

        def again() -> None:
            try:
                self._store(key, compute())
            except Exception:  # the aged answer stays until a request computes it and fails
                self._forget_locked(key)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        refresher.submit(again)

    def _forget_locked(self, key: Hashable) -> None:
        with self._lock:
            self._forget(key)

    def _forget(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= _size(item[1])

    def _lookup(self, key: Hashable) -> tuple[float, Any] | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item


def _size(value: object) -> int:
    return len(value) if isinstance(value, bytes) else 0
