"""One sync: pull the configured sources, evaluate, store findings, queue and deliver alerts.

`sync` is what `costline sync` runs once and `costline serve`'s scheduler runs every few minutes:

1. **pull** every source of `costline.yaml`: watched folders (`type: focus` and `type: files`)
   ingest the files not loaded before (idempotent by content, so a folder re-read changes
   nothing), Prometheus (`type: prometheus`) pulls DCGM samples from its watermark on and the
   pods of the last minutes;
2. **evaluate**: spike thresholds on the telemetry (as of its newest row) and workload TTLs every
   sync; budgets and experiment caps (as of the last billed day) and daily spend anomalies (the 90
   days to it) when bills or the configuration changed since they last ran, or 6 hours passed
   (bills land daily: re-reading 90 days of them every five minutes would find nothing new);
3. **store** every finding in one transaction (the same finding seen again is updated), then
   **settle**: resolve the findings whose period is over (`settle`: a budget's closed period, an
   anomaly that ended two weeks before the latest bills, a breach that ended a day before the
   latest telemetry, a TTL whose workload is gone, an experiment alert no longer reached);
4. **notify**: queue the messages the outbox rule decides on and, on the first sync of an ISO
   week with bills, each owner's weekly review (`notify.weekly`: once a week, deduplicated in the
   outbox by owner, week and route), and deliver the due ones.

A source that cannot be read (bad input, a server down) is a `data_quality` finding on the source,
so it reaches the dashboard and the routes like any other.

Each step's failure is recorded in the report and the next steps still run: a source that is
down does not stop the alerts of the others. Everything a sync writes is idempotent, so a sync
cut short by a crash is simply run again. The time of the last finished sync is a watermark
(`scheduler` / `last_sync`), which lets a restarted scheduler keep its rhythm.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costline.clock import Clock
from costline.config import Config, FilesSource, FocusSource, LlmTrace, PrometheusSource
from costline.errors import CostlineError
from costline.ledger.sql import bill_days, run_one
from costline.ledger.store import Ledger
from costline.model import Finding

SYNC_SOURCE = "scheduler"
LAST_SYNC = "last_sync"
ANOMALY_DAYS = 90
THRESHOLD_LOOKBACK = dt.timedelta(hours=24)
BILLS_CHECKED = "bills_checked"  # watermark: when budgets and anomalies last ran
BILLS_STATE = "bills_state"  # watermark key holding the bills-and-config state they ran on
BILLS_EVERY = dt.timedelta(hours=6)
STALE_ANOMALY = dt.timedelta(days=14)  # an anomaly this long over before the latest bills resolves


@dataclass
class SyncReport:
    started: dt.datetime
    finished: dt.datetime | None = None
    pulled: list[dict[str, Any]] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)  # kind -> count
    queued: int = 0
    reviews: int = 0  # weekly reviews queued (each owner's, once per ISO week)
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "pulled": self.pulled,
            "findings": self.findings,
            "queued": self.queued,
            "reviews_queued": self.reviews,
            "sent": self.sent,
            "retrying": self.retrying,
            "failed": self.failed,
            "errors": self.errors,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def sync(
    ledger: Ledger,
    config: Config,
    *,
    clock: Clock,
    env: Mapping[str, str] = os.environ,
    deliver: bool = True,
) -> SyncReport:
    """One pull, evaluate, store, notify cycle (see the module)."""
    report = SyncReport(started=clock.now())

    def step(name: str, work: Callable[[], None]) -> None:
        started = time.perf_counter()
        try:
            work()
        except CostlineError as exc:
            report.errors.append(f"{name}: {exc}")
        report.seconds[name] = time.perf_counter() - started

    step("pull", lambda: report.pulled.extend(pull(ledger, config, clock)))
    by_step: dict[str, list[Finding]] = {}

    def evaluate(name: str, work: Callable[[], list[Finding]]) -> None:
        step(name, lambda: by_step.__setitem__(name, work()))

    telemetry: list[dt.datetime | None] = [None]

    def thresholds() -> list[Finding]:
        got, telemetry[0] = check_thresholds(ledger, config, clock)
        return got

    evaluate("thresholds", thresholds)
    bills = bills_due(ledger, config, clock)
    if bills is not None:
        evaluate("budgets", lambda: budget_findings(ledger, config, clock))
        evaluate("anomalies", lambda: anomaly_findings(ledger, config, clock))
    evaluate("ttl", lambda: ttl_findings(ledger, clock))
    found = [f for got in by_step.values() for f in got] + source_findings(report.pulled, clock)
    for f in found:
        report.findings[str(f.kind)] = report.findings.get(str(f.kind), 0) + 1
    ledger.write([], source=SYNC_SOURCE, findings=found)
    settle(ledger, clock, bills_day=bill_days(ledger.con)[1] if "anomalies" in by_step else None,
           telemetry_as_of=telemetry[0], ttl=by_step.get("ttl"),
           budgets=by_step.get("budgets"))  # fmt: skip
    if deliver:
        step("weekly", lambda: _weekly(ledger, config, clock, report))
        step("notify", lambda: _notify(ledger, config, clock, env, report))
    report.finished = clock.now()
    marks = {LAST_SYNC: report.finished}
    if bills is not None and not any(
        e.startswith(("budgets:", "anomalies:")) for e in report.errors
    ):
        marks[BILLS_CHECKED] = report.finished
        marks[f"{BILLS_STATE}:{bills}"] = report.finished
    ledger.write([], source=SYNC_SOURCE, watermarks=marks)
    return report


def bills_due(ledger: Ledger, config: Config, clock: Clock) -> str | None:
    """The state of the bills and the configuration when the bill-based checks are due (they
    never ran on it, or ran over `BILLS_EVERY` ago); None when they are not."""
    import hashlib

    row = run_one(
        ledger.con,
        "SELECT count(*), max(ingested_at) FROM ingestions WHERE source = 'focus' OR "
        "focus_version IS NOT NULL",
    )
    state = hashlib.sha256(f"{row}|{config.model_dump_json()}".encode()).hexdigest()[:16]
    checked = ledger.watermark(SYNC_SOURCE, BILLS_CHECKED)
    seen = ledger.watermark(SYNC_SOURCE, f"{BILLS_STATE}:{state}")
    if seen is None or checked is None or clock.now() - checked >= BILLS_EVERY:
        return state
    return None


def source_findings(pulled: list[dict[str, Any]], clock: Clock) -> list[Finding]:
    """A data-quality finding per source that failed, so the dashboard and its owner's routes
    hear of it: one per source (seen again, it moves `last_seen` and takes the newest error)."""
    from costline.model import FindingKind

    return [
        Finding.new(
            kind=FindingKind.DATA_QUALITY, scope={"source": p["source"]}, dedup_key="sync",
            clock=clock, severity="warning" if p["exit_code"] == 2 else "critical",
            title=f"source {p['source']} could not be read",
            summary=f"costline sync could not read source {p['source']}: {p['error']}",
            evidence={"error": p["error"], "bad_input": p["exit_code"] == 2},
            actions=[{"text": "Fix what the error names (the file, row and column, or the "
                      "server), then `costline sync` reads it again: until then its costs and "
                      "usage are missing from every report and check"}],
        )
        for p in pulled
        if p["status"] == "error"
    ]  # fmt: skip


def settle(
    ledger: Ledger,
    clock: Clock,
    *,
    bills_day: dt.date | None = None,
    telemetry_as_of: dt.datetime | None = None,
    ttl: list[Finding] | None = None,
    budgets: list[Finding] | None = None,
) -> list[Finding]:
    """Resolve the stored findings whose period is over, each with its reason: with `bills_day`
    (the last billed day), budgets' closed periods and anomalies that ended `STALE_ANOMALY`
    before it; with `telemetry_as_of`, breaches that ended a lookback before it; with `ttl` (a
    complete TTL run), the TTLs it no longer reports; with `budgets` (a complete budgets run), the
    experiment alerts it no longer reports. Returns the findings resolved."""
    from costline.budgets.digest import DIGEST_SCOPE
    from costline.ledger.findings import resolve_stale

    con, out = ledger.con, []
    if bills_day is not None:
        day = dt.datetime(bills_day.year, bills_day.month, bills_day.day, tzinfo=dt.UTC)
        for key in ("budget", DIGEST_SCOPE):
            out += resolve_stale(con, "budget_threshold", "its period closed ({end} was its last "
                                 "day)", clock=clock, ended_before=day, scope_key=key)  # fmt: skip
        out += resolve_stale(con, "anomaly", f"it ended {{end}}, {STALE_ANOMALY.days} days or "
                             "more before the latest bills", clock=clock,
                             ended_before=day + dt.timedelta(days=1) - STALE_ANOMALY)  # fmt: skip
    if telemetry_as_of is not None:
        out += resolve_stale(con, "threshold_breach", "it ended {end}, a day or more before the "
                             "latest telemetry", clock=clock,
                             ended_before=telemetry_as_of - THRESHOLD_LOOKBACK)  # fmt: skip
    if ttl is not None:
        out += resolve_stale(con, "ttl_expiry", "its workload is no longer running past its TTL",
                             clock=clock, absent_from=ttl)  # fmt: skip
    if budgets is not None:
        out += resolve_stale(con, "budget_threshold", "the experiment is no longer past this "
                             "alert level", clock=clock, absent_from=budgets,
                             scope_key="experiment")  # fmt: skip
    return out


def last_sync(ledger: Ledger) -> dt.datetime | None:
    return ledger.watermark(SYNC_SOURCE, LAST_SYNC)


# -- pull -----------------------------------------------------------------------------------------


def pull(ledger: Ledger, config: Config, clock: Clock) -> list[dict[str, Any]]:
    """Every configured source, each in its own transaction; a failing one is reported."""
    out: list[dict[str, Any]] = []
    for source in config.sources:
        try:
            if isinstance(source, FocusSource | FilesSource):
                out.append(_pull_files(ledger, config, source))
            elif isinstance(source, PrometheusSource):
                out.extend(_pull_prometheus(ledger, source, clock))
        except CostlineError as exc:  # bad input: exit_code 2, and nothing of it was written
            out.append({"source": source.label, "status": "error", "error": str(exc),
                        "exit_code": exc.exit_code})  # fmt: skip
    return out


def _source_of(fmt: str, trace: LlmTrace | None = None) -> Any:
    from costline.pipeline import FOCUS
    from costline.sources.annotations import ANNOTATIONS
    from costline.sources.dcgm_source import DCGM
    from costline.sources.llm import llm_file_source
    from costline.sources.metrics import METRICS
    from costline.sources.storage import STORAGE
    from costline.sources.storage.lifecycle import LIFECYCLE
    from costline.sources.workloads import KUBERNETES, REGISTRY, SLURM

    sources = {s.name: s for s in (FOCUS, ANNOTATIONS, DCGM, METRICS, STORAGE, LIFECYCLE,
                                   KUBERNETES, REGISTRY, SLURM)}  # fmt: skip
    sources["llm"] = llm_file_source(trace)
    return sources[fmt]


def _pull_files(
    ledger: Ledger, config: Config, source: FocusSource | FilesSource
) -> dict[str, Any]:
    from costline.pipeline import ingest_files

    fmt = source.format if isinstance(source, FilesSource) else "focus"
    paths: list[Path] = []
    for pattern in source.paths:
        full = pattern if Path(pattern).is_absolute() else str(config.base_dir / pattern)
        paths.extend(Path(p) for p in sorted(glob.glob(full, recursive=True)))
    if not paths:
        return {"source": source.label, "status": "no files", "files": 0, "rows": 0}
    trace = source.trace if isinstance(source, FilesSource) else None
    replace = isinstance(source, FocusSource) and source.replace_period
    summary = ingest_files(ledger, paths, _source_of(fmt, trace), replace_periods=replace)
    fresh = len(summary.files) - len(summary.duplicates)
    return {"source": source.label, "status": "ingested" if fresh else "up-to-date",
            "files": fresh, "rows": summary.rows}  # fmt: skip


def _pull_prometheus(
    ledger: Ledger, source: PrometheusSource, clock: Clock
) -> list[dict[str, Any]]:
    from costline.pulls import pull_dcgm, pull_kube_state_metrics

    now = clock.now()
    step = dt.timedelta(seconds=source.step_seconds)
    start = now - dt.timedelta(hours=source.first_pull_hours)
    out = []
    for kind in source.pull:
        if kind == "dcgm":
            r = pull_dcgm(ledger, source.url, start, now, step)
        else:
            r = pull_kube_state_metrics(ledger, source.url, now - 10 * step, now, step)
        out.append({"source": f"{source.label}:{kind}", "status": r.status, "rows": r.rows})
    return out


# -- evaluate -------------------------------------------------------------------------------------


def latest_telemetry(ledger: Ledger, tables: set[str]) -> dt.datetime | None:
    """Just after the newest row of the telemetry tables named: the `as_of` of thresholds."""
    found = []
    for name in sorted(tables):
        newest = ledger.table(name).ts.max().to_pyarrow().as_py()
        if newest is not None:
            found.append(newest)
    return max(found) + dt.timedelta(microseconds=1) if found else None


def host_rates(ledger: Ledger, as_of: dt.datetime) -> dict[str, float]:
    """host -> effective dollars per GPU-hour from its own bills (economics.nowcast.rates)."""
    from costline.economics.nowcast import rates

    start = as_of - dt.timedelta(days=1)
    known = rates(ledger.table("cost_lines"), ledger.table("gpu_samples"), start, as_of)
    return {host: float(info["rate"]) for host, info in known.items() if info["rate"] is not None}


def check_thresholds(
    ledger: Ledger,
    config: Config,
    clock: Clock,
    *,
    as_of: dt.datetime | None = None,
    lookback: dt.timedelta = THRESHOLD_LOOKBACK,
) -> tuple[list[Finding], dt.datetime | None]:
    """The findings of every configured threshold as of `as_of` (default: newest telemetry);
    an episode the ledger already holds unresolved goes on as the same finding."""
    from costline.attribution.rules import Rules
    from costline.detect.signals import signal
    from costline.detect.thresholds import evaluate

    if not config.thresholds:
        return [], as_of
    used: set[str] = {signal(th.signal).table for th in config.thresholds}
    as_of = as_of or latest_telemetry(ledger, used)
    if as_of is None:
        return [], None
    rates = host_rates(ledger, as_of) if "gpu_samples" in used else {}
    tables = {name: ledger.table(name) for name in used | {"workloads"}}
    found = evaluate(
        tables, config.thresholds, as_of=as_of, lookback=lookback, tiers=config.escalation,
        rules=Rules.from_config(config), clock=clock, host_rates=rates,
        known=known_episodes(ledger, config),
    )  # fmt: skip
    return found, as_of


def known_episodes(ledger: Ledger, config: Config) -> dict[tuple[str, str], Any]:
    """(threshold, key) -> the latest unresolved breach episode in the ledger (`Known`)."""
    from costline.detect.thresholds import Known
    from costline.ledger.sql import run

    by = {th.name: th.by for th in config.thresholds}
    out: dict[tuple[str, str], Known] = {}
    rows = run(ledger.con, "SELECT body FROM findings WHERE kind = 'threshold_breach' AND "
               "status <> 'resolved' ORDER BY window_end")  # fmt: skip
    for (body,) in rows:
        f = Finding.model_validate_json(body)
        name = f.scope.get("threshold")
        if name is None or name not in by or f.window is None:
            continue
        dim = by[name]
        key = f.scope.get(dim, "(all)") if dim else "(all)"
        out[(name, key)] = Known(f.window.start, f.window.end, f.impact_usd)
    return out


def threshold_findings(ledger: Ledger, config: Config, clock: Clock) -> list[Finding]:
    return check_thresholds(ledger, config, clock)[0]


def budget_findings(ledger: Ledger, config: Config, clock: Clock) -> list[Finding]:
    from costline.budgets.evaluate import evaluate_budgets

    day = bill_days(ledger.con)[1]
    if day is None or not config.budgets:
        return []
    return evaluate_budgets(ledger, config, day, clock=clock).findings


def anomaly_findings(ledger: Ledger, config: Config, clock: Clock) -> list[Finding]:
    from costline.detect.daily import detect_all

    day = bill_days(ledger.con)[1]
    if day is None:
        return []
    end = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return detect_all(ledger, config, end=end, clock=clock, days=ANOMALY_DAYS)


def ttl_findings(ledger: Ledger, clock: Clock) -> list[Finding]:
    from costline.detect.ttl import expired

    return expired(ledger.table("workloads"), clock.now(), clock=clock)


# -- notify ---------------------------------------------------------------------------------------


def _notify(
    ledger: Ledger, config: Config, clock: Clock, env: Mapping[str, str], report: SyncReport
) -> None:
    from costline.notify.deliver import deliver
    from costline.notify.outbox import current_findings, enqueue

    report.queued = len(enqueue(ledger, current_findings(ledger), config, clock))
    delivered = deliver(ledger, config, clock, env)
    report.sent = len(delivered.sent)
    report.retrying = len(delivered.retrying)
    report.failed = len(delivered.failed)


def _weekly(ledger: Ledger, config: Config, clock: Clock, report: SyncReport) -> None:
    from costline.notify.weekly import enqueue_reviews

    report.reviews = len(enqueue_reviews(ledger, config, clock))
