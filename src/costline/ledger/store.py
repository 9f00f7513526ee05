"""The ledger: the canonical tables over Ibis, and the only code that writes them.

Every ingestion is one DuckDB transaction: rows are streamed in from the sources' Arrow readers,
restated billing periods are replaced, the files are recorded by fingerprint, and only then is the
transaction committed. A failure (bad row, crash, kill) leaves the ledger exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import ibis
import pyarrow as pa
from ibis.backends.duckdb import Backend as DuckDBBackend
from ibis.backends.sql.datatypes import DuckDBType

from costline import faults, schema
from costline.clock import SYSTEM_CLOCK, Clock
from costline.errors import CostlineError, IngestError, LedgerError
from costline.fx import reporting_lines
from costline.ledger import DEFAULT_LEDGER_URL, locking, migrations, parts
from costline.ledger import findings as ledger_findings
from costline.ledger.locking import ledger_path
from costline.ledger.sql import run, run_one
from costline.model import Finding
from costline.sources.base import SourceBatch


@dataclass(frozen=True)
class RestatedPeriod:
    provider: str | None
    billing_account_id: str | None
    billing_period_start: dt.datetime | None
    replaced_rows: int


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str | None
    rows: int
    billed: Decimal | None
    effective: Decimal | None
    list: Decimal | None
    contracted: Decimal | None


@dataclass
class IngestionReport:
    totals: list[CurrencyTotals] = field(default_factory=list)
    billing_periods: set[dt.datetime] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)


@dataclass
class WriteResult:
    ingestion_id: str
    rows_by_file: dict[str, int] = field(default_factory=dict)
    restated: list[RestatedPeriod] = field(default_factory=list)
    replaced: dict[str, int] = field(default_factory=dict)  # table -> older rows replaced by key
    # table -> rows of this ingestion not kept: the ledger holds a newer state of their key
    superseded: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())


class Ledger:
    """A costline ledger on an embedded DuckDB file (the default engine)."""

    def __init__(
        self,
        url: str = DEFAULT_LEDGER_URL,
        *,
        read_only: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        fx_rates: Sequence[tuple[dt.date, str, Decimal]] = (),
    ) -> None:
        self.url = url
        # Rates into USD (`fx:` in costline.yaml) for the reporting view of cost_lines.
        self.fx_rates = list(fx_rates)
        self._reporting: ibis.Table | None = None  # cost_lines in USD, until lines are written
        self._tables: dict[str, ibis.Table] = {}  # each table's Ibis handle, read once
        self.path = ledger_path(url)
        self.clock = clock
        self.read_only = read_only
        if self.path != ":memory:":
            if read_only and not Path(self.path).exists():
                raise LedgerError(f"no ledger at {self.path}: ingest something first")
            if not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._connect()
        if not read_only:
            migrations.migrate(self.con)
        elif migrations.current_version(self.con) < migrations.LATEST:
            # A ledger written by an older costline: bring it up to date once (a brief write, in
            # one transaction), then read. Reports never fail just because costline was upgraded.
            self._ibis.disconnect()
            self._migrate_then_reopen()

    def _connect(self) -> None:
        # Another process's lock (a running `costline serve` copying or writing) is waited for.
        try:
            con = locking.connect(self.path, read_only=self.read_only)
        except duckdb.IOException as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc
        self._ibis: DuckDBBackend = ibis.duckdb.from_connection(con)
        self._tables = {}
        self.con: duckdb.DuckDBPyConnection = con
        self._run("SET TimeZone = 'UTC'")
        # Row order in the ledger carries no meaning; letting inserts run unordered parallelises them.
        self._run("SET preserve_insertion_order = false")

    def _migrate_then_reopen(self) -> None:
        wait = min(locking.wait_seconds(), locking.UPGRADE_WAIT_SECONDS)
        try:
            con = locking.connect(self.path, wait=wait)
        except (duckdb.Error, locking.LedgerBusy) as exc:
            why = f"in use by {exc.holder}" if isinstance(exc, locking.LedgerBusy) else str(exc)
            raise LedgerError(
                f"the ledger {self.path} is at an older schema and could not be upgraded now "
                f"({why.splitlines()[0]}); run `costline migrate` when nothing else has it open"
            ) from None
        try:
            migrations.migrate(con)
        finally:
            con.close()
        self._connect()

    def _run(self, sql: str, params: object = None) -> list[Any]:
        return run(self.con, sql, params)

    # -- reading -----------------------------------------------------------------------------

    @property
    def backend(self) -> DuckDBBackend:
        return self._ibis

    def table(self, name: str, *, raw: bool = False) -> ibis.Table:
        """An unexecuted Ibis table of the ledger: analytics start here.

        `cost_lines` comes in the reporting currency (`costline.fx.reporting_lines`: lines billed
        in another currency converted at their day's rate, or refused without one); `raw=True`
        gives the lines as billed (exports, ingestion checks).
        """
        table = self._tables.get(name)
        if table is None:
            if name not in schema.tables():
                raise LedgerError(f"no ledger table {name!r}; tables: {', '.join(schema.tables())}")
            # Reading a table's schema is a DESCRIBE (11 ms for the cost_lines view): once per
            # connection, as the tables' columns change only when it migrates the ledger.
            table = self._tables[name] = self._ibis.table(name)
        if name == "cost_lines" and not raw:
            # Checking the currencies is a scan: once per ledger state, not once per report table.
            if self._reporting is None:
                self._reporting = reporting_lines(table, self.fx_rates)
            return self._reporting
        return table

    def schema_version(self) -> int:
        return migrations.current_version(self.con)

    def known_fingerprints(self, fingerprints: Sequence[str]) -> dict[str, str]:
        """The fingerprints already ingested, mapped to the path they were first loaded from."""
        if not fingerprints:
            return {}
        rows = self.con.execute(
            "SELECT fingerprint, any_value(path) FROM ingestions "
            "WHERE fingerprint IN (SELECT unnest(?)) GROUP BY fingerprint",
            [list(fingerprints)],
        ).fetchall()
        return {fp: path for fp, path in rows}

    def state_from(self, table: str, scope: Mapping[str, str], fingerprint: str) -> bool:
        """Whether rows of `table` with the `scope` column values came from the file with this
        fingerprint: a registry file ingested again is a duplicate only while it is the state."""
        where = " AND ".join(f't."{k}" = ?' for k in scope)
        row = run_one(
            self.con,
            f'SELECT 1 FROM "{table}" t JOIN ingestions i ON i.ingestion_id = t.x_ingestion_id '
            f"WHERE i.fingerprint = ? AND {where} LIMIT 1",
            [fingerprint, *scope.values()],
        )
        return row is not None

    def ingestion_report(self, ingestion_id: str) -> IngestionReport:
        """Totals per currency, billing periods and providers of one ingestion, in one scan."""
        rows = self.con.execute(
            f"""SELECT BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost), sum(ListCost),
                      sum(ContractedCost), list(DISTINCT BillingPeriodStart),
                      list(DISTINCT ProviderName)
               FROM ({self._lines_of(ingestion_id)}) WHERE x_ingestion_id = ?
               GROUP BY 1 ORDER BY 1 NULLS LAST""",
            [ingestion_id],
        ).fetchall()
        report = IngestionReport()
        for currency, n, billed, effective, listed, contracted, periods, providers in rows:
            report.totals.append(
                CurrencyTotals(currency, int(n), billed, effective, listed, contracted)
            )
            report.billing_periods.update(p for p in periods if p is not None)
            report.providers.update(p for p in providers if p is not None)
        return report

    def ingestion_lines(self, ingestion_id: str) -> ibis.Table:
        """The cost lines one ingestion wrote, as billed: a scan of its parts' rows only, so
        summaries after an ingest cost the same however many files the ledger holds."""
        lines = self._ibis.sql(self._lines_of(ingestion_id), schema=schema.cost_lines_schema())
        return lines.filter(lines.x_ingestion_id == ingestion_id)

    def _lines_of(self, ingestion_id: str) -> str:
        """SQL for the cost lines of one ingestion's parts: it reads their rows only."""
        row = run_one(
            self.con,
            f"SELECT min(seq), max(seq) FROM {parts.REGISTRY} WHERE ingestion_id = ?",
            [ingestion_id],
        )
        if not row or row[0] is None:
            return "SELECT * FROM cost_lines WHERE false"
        where = f"{parts.PART} BETWEEN {int(row[0])} AND {int(row[1])}"
        return parts.lines_sql(self.con, schema.cost_lines_schema(), where)

    # -- writing -----------------------------------------------------------------------------

    def watermark(self, source: str, key: str) -> dt.datetime | None:
        """How far an incremental source has read (e.g. a Prometheus query's last sample time)."""
        row = run_one(
            self.con, "SELECT value FROM watermarks WHERE source = ? AND key = ?", [source, key]
        )
        return row[0] if row else None

    def write(
        self,
        batches: Sequence[SourceBatch],
        *,
        source: str,
        findings: Sequence[Finding] = (),
        watermarks: Mapping[str, dt.datetime] | None = None,
        replace_periods: bool = False,
    ) -> WriteResult:
        """Load every batch, and the findings about them, in one transaction: all or nothing.

        A restatement that would remove more than half of a period's rows or cost is refused
        unless `replace_periods` (see `_replace_restated_periods`)."""
        if batches:  # findings alone change no cost line, nor their currencies
            self._reporting = None
        if self.read_only:
            raise LedgerError("the ledger was opened read-only")
        ingestion_id = _ingestion_id(batches, self.clock.now())
        result = WriteResult(ingestion_id=ingestion_id)
        self._run("BEGIN TRANSACTION")
        try:
            for batch in batches:
                rows = self._insert(batch, ingestion_id)
                result.rows_by_file[batch.file.fingerprint] = rows
                faults.point("ingest.after_insert")
            if any(b.table == "cost_lines" for b in batches):
                result.restated = self._replace_restated_periods(
                    ingestion_id, batches, shrink=replace_periods
                )
            self._replace_state(batches, ingestion_id, result)
            replaced = sum(p.replaced_rows for p in result.restated)
            for i, batch in enumerate(batches):
                self._record(batch, source, ingestion_id, result, replaced if i == 0 else 0)
            ledger_findings.upsert(self.con, findings)
            for key, value in (watermarks or {}).items():
                self._run("DELETE FROM watermarks WHERE source = ? AND key = ?", [source, key])
                self._run(
                    "INSERT INTO watermarks (source, key, value, updated_at) VALUES (?, ?, ?, ?)",
                    [source, key, value, self.clock.now()],
                )
            faults.point("ingest.before_commit")
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise
        return result

    def _insert(self, batch: SourceBatch, ingestion_id: str) -> int:
        """Rows of one batch into their table; cost lines into their shape's table as a new part
        (see `parts`)."""
        target = schema.tables()[batch.table]
        cols = [name for name in batch.columns if name in target]
        exprs = []
        for name in cols:
            q = f'"{name}"'
            if name in batch.json_map_columns:
                # One parse straight into the map; 30% cheaper than CAST(json(x) AS MAP), and
                # as strict: malformed JSON and non-objects raise (then `diagnose` names them).
                spec = '"' + DuckDBType.to_string(target[name]) + '"'
                q = f"json_transform_strict({q}, '{spec}')"
            exprs.append(f'{q} AS "{name}"')
        exprs.append(f"{_literal(ingestion_id)} AS x_ingestion_id")
        names = [*cols, "x_ingestion_id"]
        into, part = f'"{batch.table}"', None
        if batch.table == parts.VIEW:
            part = parts.new_part(self.con, names, target, ingestion_id, batch.file.fingerprint)
            into, names = part.shape, [*names, parts.PART]
            exprs.append(f"{part.seq} AS {parts.PART}")
        head = f"SELECT {', '.join(exprs)} FROM "
        quoted = ", ".join(f'"{c}"' for c in names)
        insert = f"INSERT INTO {into} ({quoted}) "
        view = None
        try:
            if batch.duckdb_sql is not None:
                select = f"{head}({batch.duckdb_sql})"
            else:
                view = f"__costline_src_{batch.file.fingerprint[:16]}"
                self.con.register(view, batch.reader())
                select = head + view
            row = run_one(self.con, insert + select)
            for more in batch.more_duckdb_sql:
                extra = run_one(self.con, f"{insert}{head}({more})")
                row = (int(row[0] if row else 0) + int(extra[0] if extra else 0),)
            if part is not None:
                parts.summarise(self.con, part.shape, part.columns, part.seq)
        except CostlineError:
            raise
        except (duckdb.Error, pa.ArrowException) as exc:
            raise batch.diagnose(exc) from exc
        finally:
            if view is not None:
                with contextlib.suppress(duckdb.Error):  # an aborted transaction refuses even this
                    self.con.unregister(view)
        return int(row[0]) if row else 0

    def _replace_state(
        self, batches: Sequence[SourceBatch], ingestion_id: str, result: WriteResult
    ) -> None:
        """Earlier state the batches replace: whole scopes first, then rows by key."""
        for b in batches:
            if b.replace_scope:
                gone = self._replace_scope(b.table, b.replace_scope, ingestion_id)
                result.replaced[b.table] = result.replaced.get(b.table, 0) + gone
        replacing = {(b.table, tuple(b.replace_on), b.replace_skips_nulls, b.newest_by)
                     for b in batches if b.replace_on}  # fmt: skip
        for table, keys, skip_nulls, newest_by in sorted(replacing, key=str):
            if newest_by is None:
                gone = self._replace_by_key(table, keys, ingestion_id, skip_nulls=skip_nulls)
            else:
                gone, stale = self._keep_newest(
                    table, keys, newest_by, ingestion_id, skip_nulls=skip_nulls
                )
                result.superseded[table] = result.superseded.get(table, 0) + stale
            result.replaced[table] = result.replaced.get(table, 0) + gone

    def _replace_scope(self, table: str, scope: Mapping[str, str], ingestion_id: str) -> int:
        """Delete earlier rows whose `scope` columns hold these values (all of them)."""
        where = " AND ".join(f'"{k}" = ?' for k in scope)
        row = run_one(
            self.con,
            f'DELETE FROM "{table}" WHERE x_ingestion_id <> ? AND {where}',
            [ingestion_id, *scope.values()],
        )
        return int(row[0]) if row else 0

    def _keep_newest(
        self,
        table: str,
        keys: Sequence[str],
        newest_by: str,
        ingestion_id: str,
        *,
        skip_nulls: bool = False,
    ) -> tuple[int, int]:
        """One row per key this ingestion brought: the newest `newest_by` (null is oldest); on a
        tie this ingestion's, then the one inserted last. Returns (earlier rows deleted, rows of
        this ingestion deleted because the ledger held a newer state)."""
        same = "=" if skip_nulls else "IS NOT DISTINCT FROM"
        match = " AND ".join(f'n."{k}" {same} o."{k}"' for k in keys)
        by_key = ", ".join(f'o."{k}"' for k in keys)
        fresh = "(o.x_ingestion_id = $1)"
        self._run(
            f"""CREATE OR REPLACE TEMP TABLE __superseded AS
            SELECT rid, fresh FROM (
              SELECT o.rowid AS rid, {fresh} AS fresh, row_number() OVER (
                PARTITION BY {by_key}
                ORDER BY o."{newest_by}" DESC NULLS LAST, {fresh} DESC, o.rowid DESC) AS rank
              FROM "{table}" o
              WHERE EXISTS (SELECT 1 FROM "{table}" n WHERE n.x_ingestion_id = $1 AND {match}))
            WHERE rank > 1""",
            [ingestion_id],
        )
        row = run_one(
            self.con,
            "SELECT count(*) FILTER (WHERE NOT fresh), count(*) FILTER (WHERE fresh) "
            "FROM __superseded",
        )
        self._run(f'DELETE FROM "{table}" WHERE rowid IN (SELECT rid FROM __superseded)')
        self._run("DROP TABLE __superseded")
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _replace_by_key(
        self, table: str, keys: Sequence[str], ingestion_id: str, *, skip_nulls: bool = False
    ) -> int:
        """Delete older rows that share `keys` with rows this ingestion brought: newer state wins.
        With `skip_nulls`, a null key matches nothing."""
        same = "=" if skip_nulls else "IS NOT DISTINCT FROM"
        match = " AND ".join(f'n."{k}" {same} o."{k}"' for k in keys)
        row = run_one(
            self.con,
            f'DELETE FROM "{table}" o WHERE o.x_ingestion_id <> $1 AND EXISTS ('
            f'SELECT 1 FROM "{table}" n WHERE n.x_ingestion_id = $1 AND {match})',
            [ingestion_id],
        )
        return int(row[0]) if row else 0

    def _replace_restated_periods(
        self, ingestion_id: str, batches: Sequence[SourceBatch], *, shrink: bool
    ) -> list[RestatedPeriod]:
        """Delete older rows of every (provider, billing account, billing period) just loaded.

        Unless `shrink`, a restatement that keeps fewer than half of a period's rows, or of its
        positive billed cost, is refused: a partial file (one part of a split export, a day's
        extract) would otherwise silently replace the whole month. Keys, counts and costs come
        from the parts' key summary (`parts.KEYS`), so this reads no cost line."""
        keys, registry = parts.KEYS, parts.REGISTRY
        self._run(
            f"""CREATE OR REPLACE TEMP TABLE __restated AS
            WITH mine AS (SELECT seq FROM {registry} WHERE ingestion_id = $1),
            new_keys AS (
              SELECT provider AS p, account AS a, period AS s, sum(n) AS new_n,
                     sum(cost) AS new_cost
              FROM {keys} WHERE part IN (SELECT seq FROM mine) GROUP BY ALL)
            SELECT k.p, k.a, k.s, CAST(sum(o.n) AS BIGINT) AS n, sum(o.cost) AS cost,
                   CAST(any_value(k.new_n) AS BIGINT) AS new_n, any_value(k.new_cost) AS new_cost,
                   string_agg(DISTINCT o.currency, '/') AS currency
            FROM {keys} o JOIN new_keys k
              ON k.p IS NOT DISTINCT FROM o.provider
             AND k.a IS NOT DISTINCT FROM o.account
             AND k.s IS NOT DISTINCT FROM o.period
            WHERE o.part NOT IN (SELECT seq FROM mine)
            GROUP BY k.p, k.a, k.s""",
            [ingestion_id],
        )
        if not shrink:
            self._refuse_shrinking(ingestion_id, batches)
        found = self._run("SELECT p, a, s, n FROM __restated ORDER BY s, p, a")
        if found:
            parts.restate(self.con, "__restated", ingestion_id)
        self._run("DROP TABLE __restated")
        return [RestatedPeriod(p, a, s, int(n)) for p, a, s, n in found]

    def _refuse_shrinking(self, ingestion_id: str, batches: Sequence[SourceBatch]) -> None:
        """Raise when a restated period would lose more than half of its rows or billed cost."""
        row = run_one(
            self.con,
            """SELECT p, a, s, n, cost, new_n, new_cost, currency FROM __restated
               WHERE new_n * 2 < n OR (cost > 0 AND coalesce(new_cost, 0) * 2 < cost)
               ORDER BY s, p, a LIMIT 1""",
        )
        if row is None:
            return
        p, a, s, n, cost, new_n, new_cost, currency = row
        paths = {b.file.fingerprint: str(b.file.path) for b in batches}
        holder = run_one(
            self.con,
            f"""SELECT r.fingerprint FROM {parts.REGISTRY} r JOIN {parts.KEYS} k ON k.part = r.seq
                WHERE r.ingestion_id = ? AND k.provider IS NOT DISTINCT FROM ?
                  AND k.account IS NOT DISTINCT FROM ? AND k.period = ?
                ORDER BY r.seq LIMIT 1""",
            [ingestion_id, p, a, s],
        )
        path = paths.get(holder[0]) if holder else None
        money = f"{currency} " if currency else ""
        start = s.date().isoformat() if isinstance(s, dt.datetime) else s
        raise IngestError(
            f"restating provider {p}, billing account {a}, billing period {start} would replace "
            f"{n:,} rows ({money}{_amount(cost)}) with {new_n:,} rows ({money}{_amount(new_cost)}):"
            " more than half of the period would go. If this file is the whole period, ingest it "
            "again with --replace-period (in costline.yaml: `replace_period: true` on the source)",
            path=path,
        )

    def _record(
        self, batch: SourceBatch, source: str, ingestion_id: str, result: WriteResult, replaced: int
    ) -> None:
        self._run(
            "INSERT INTO ingestions (fingerprint, ingestion_id, source, dialect, focus_version, path, "
            "size_bytes, rows, replaced_rows, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch.file.fingerprint,
                ingestion_id,
                source,
                batch.dialect,
                batch.focus_version,
                str(batch.file.path),
                batch.file.size_bytes,
                result.rows_by_file.get(batch.file.fingerprint, 0),
                replaced,
                self.clock.now(),
            ],
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._ibis.disconnect()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ingestion_id(batches: Sequence[SourceBatch], now: dt.datetime) -> str:
    digest = hashlib.sha256(now.isoformat().encode())
    for b in batches:
        digest.update(b.file.fingerprint.encode())
    return digest.hexdigest()[:24]


def _amount(value: Decimal | None) -> str:
    """A billed total for a message: two decimals, or all of them when it is smaller than a cent."""
    if value is None:
        return "no cost"
    rounded = value.quantize(Decimal("0.01"))
    return f"{rounded:,}" if rounded or not value else f"{value.normalize():f}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


__all__ = ["DEFAULT_LEDGER_URL", "IngestError", "Ledger", "WriteResult", "ledger_path"]
