"""`costline demo`: the demo organization, written in real formats and run through the product."""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from costline.attribution.tags import cost_domain, team
from costline.budgets.status import current
from costline.cli.output import Format, dumps, emit_rows
from costline.cli.present import breach_row, budget_sentences, finding_row
from costline.cli.progress import Bar, progress_bar
from costline.economics.spend import spend_by
from costline.ledger.store import Ledger
from costline.money import format_money, total
from costline.pipeline import ingest_files, ingest_focus

if TYPE_CHECKING:
    from costline.budgets.evaluate import BudgetReport
    from costline.demo.activity import ActivityManifest
    from costline.demo.billing import BillingManifest
    from costline.sources.base import FileSource


def _spend_rows(ledger: Ledger, key: str) -> list[dict[str, Any]]:
    lines = ledger.table("cost_lines")
    dims = {
        "provider": lines.ProviderName.name("provider"),
        "team": team(lines),
        "domain": cost_domain(lines),
    }
    return spend_by(lines, [dims[key]]).to_pyarrow().to_pylist()


def _activity_parts(activity: ActivityManifest) -> list[tuple[str, list[Path], FileSource]]:
    """(name, files, source) of each part of the demo's activity, in ingestion order."""
    from costline.sources.annotations import ANNOTATIONS
    from costline.sources.dcgm_source import DCGM
    from costline.sources.llm import llm_file_source
    from costline.sources.metrics import METRICS
    from costline.sources.storage import STORAGE
    from costline.sources.storage.lifecycle import LIFECYCLE
    from costline.sources.workloads import KUBERNETES, REGISTRY, SLURM

    return [
        ("dcgm", list(activity.dcgm_files), DCGM),
        ("kubernetes", [activity.pods_file], KUBERNETES),
        ("slurm", [activity.sacct_file], SLURM),
        ("registry", [activity.registry_file], REGISTRY),
        ("llm", list(activity.llm_files), llm_file_source()),
        ("storage", list(activity.storage_manifests), STORAGE),
        ("lifecycle", list(activity.lifecycle_files), LIFECYCLE),
        (
            "metrics",
            [activity.metrics_file, *sorted(activity.metrics_file.parent.glob("*.jsonl"))],
            METRICS,
        ),
        ("annotations", [activity.annotations_file], ANNOTATIONS),
    ]


def _gpu_showback(ledger: Ledger, day_start: dt.datetime) -> list[dict[str, object]]:
    """`costline report showback --by team` for the first day with telemetry (whole UTC days)."""
    from costline.allocation.allocate import allocate
    from costline.allocation.reports import buckets, report_rows

    start = day_start.replace(hour=0, minute=0, second=0, microsecond=0)
    a = allocate(
        ledger.table("cost_lines"),
        ledger.table("gpu_samples"),
        ledger.table("workloads"),
        start,
        start + dt.timedelta(days=1),
        metrics=ledger.table("metrics"),
    )
    return report_rows(buckets(a, "team"), a, "team")


def _detect(ledger: Ledger, manifest: BillingManifest, bar: Bar) -> list[dict[str, Any]]:
    """The demo's daily successes (the value side), then `costline detect` over the window."""
    import json

    from costline.clock import SYSTEM_CLOCK
    from costline.config import Config, load_config
    from costline.detect.daily import detect_all
    from costline.sources.metrics import METRICS

    if manifest.successes_file is not None:
        ingest_files(ledger, [manifest.successes_file], METRICS)
    if manifest.days < 43:
        return []  # six weeks of history come before any judgement
    bar.step("Scanning spend for anomalies (costline detect) ...")
    config = load_config(manifest.config_file) if manifest.config_file else Config()
    days = (manifest.window_end - manifest.window_start).days
    found = detect_all(ledger, config, end=manifest.window_end, clock=SYSTEM_CLOCK, days=days)
    ledger.write([], source="detect", findings=found)
    rows = [finding_row(json.loads(f.model_dump_json())) for f in found]
    return sorted(rows, key=lambda r: -float(r["impact_usd"] or 0))


def _budgets(ledger: Ledger, manifest: BillingManifest, bar: Bar) -> BudgetReport | None:
    """`costline budgets` on the demo's costline.yaml, over every month of the window."""
    from costline.budgets.evaluate import evaluate_budgets
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config

    if manifest.config_file is None:
        return None
    bar.step("Checking budgets and experiment caps (costline budgets) ...")
    report = evaluate_budgets(
        ledger, load_config(manifest.config_file),
        (manifest.window_end - dt.timedelta(days=1)).date(), clock=SYSTEM_CLOCK,
        since=manifest.window_start.date(),
    )  # fmt: skip
    ledger.write([], source="budgets", findings=report.findings)
    return report


def _thresholds(ledger: Ledger, manifest: BillingManifest, bar: Bar) -> list[dict[str, Any]]:
    """`costline thresholds` on the demo's costline.yaml, over the telemetry window."""
    from costline.clock import SYSTEM_CLOCK
    from costline.config import load_config
    from costline.sync import check_thresholds

    if manifest.config_file is None:
        return []
    bar.step("Checking spike thresholds on the telemetry (costline thresholds) ...")
    found, _ = check_thresholds(ledger, load_config(manifest.config_file), SYSTEM_CLOCK)
    ledger.write([], source="thresholds", findings=found)
    return [breach_row(f) for f in found]


def estimate_comment(ledger: Ledger, out: Path, config_file: Path | None, bar: Bar) -> str:
    """`costline estimate` of one of the demo's manifests (`demo.manifests.showcase`), with the
    organization's history and paid rates: the comment a pull request would get."""
    from costline.config import Config, load_config
    from costline.demo.manifests import MANIFEST_DIR, showcase
    from costline.governance.assess import estimates
    from costline.governance.estimate import markdown
    from costline.governance.manifests import read_manifests

    chosen = showcase(out / MANIFEST_DIR)
    if chosen is None:
        return ""
    bar.step(f"Estimating {chosen.name} before launch (costline estimate) ...")
    config = load_config(config_file) if config_file else Config()
    return markdown(estimates(read_manifests([chosen], config), config, ledger))


def _settle(ledger: Ledger, manifest: BillingManifest) -> None:
    """Resolve what is over, as a sync would: past months' budgets, anomalies long ended."""
    from costline.clock import SYSTEM_CLOCK
    from costline.sync import settle

    settle(ledger, SYSTEM_CLOCK, bills_day=(manifest.window_end - dt.timedelta(days=1)).date())


def _agreement(
    ledger: Ledger, manifest: BillingManifest, budgets: BudgetReport | None, bar: Bar
) -> dict[str, Any]:
    """Idle the same in every view (the last month); each run's cost the same in unit costs and
    budgets (`costline.economics.agreement`)."""
    from costline.attribution.rules import Rules
    from costline.config import load_config
    from costline.economics.agreement import idle_agrees, run_costs_agree
    from costline.economics.unit_report import TABLES
    from costline.model import Window

    config = load_config(manifest.config_file)
    tables = {name: ledger.table(name) for name in TABLES}
    month = Window.month(f"{manifest.window_end - dt.timedelta(days=1):%Y-%m}")
    bar.step("Checking that every view agrees (idle, run costs) ...")
    idle = idle_agrees(tables, Rules.from_config(config), month.start, month.end)
    runs = run_costs_agree(tables, config, budgets.experiments if budgets else [])
    return {"idle": idle, "run_costs": runs}


def _agreement_sentences(agreement: dict[str, Any]) -> list[str]:
    idle, runs = agreement["idle"], agreement["run_costs"]
    return [
        f"Idle GPU cost {idle['window']}: held idle {format_money(idle['held_idle_usd'])}, unheld "
        f"{format_money(idle['unheld_idle_usd'])}; GPU page, showback and chargeback "
        + ("agree to the cent." if idle["agree"] else f"DO NOT agree: {idle['views']}"),
        f"Registry run costs: {runs['runs']} runs the same in unit costs and budgets."
        if runs["agree"]
        else f"Registry run costs DO NOT agree between unit costs and budgets: {runs['mismatched']}",
    ]


def _print_budgets(report: BudgetReport, fmt: Format) -> None:
    latest = current(report.statuses)
    rows = sorted((s.row() for s in latest), key=lambda r: -r["used_pct"])
    emit_rows(
        rows[:8], fmt,
        columns=["budget", "period", "amount_usd", "spent_usd", "used_pct", "state",
                 "forecast_p50_usd", "days_to_exhaustion"],
        title=f"Budgets, {latest[0].period if latest else ''} (costline budgets; "
        f"{len(rows)} in all, from the demo's costline.yaml)",
    )  # fmt: skip
    over = [s for s in latest if s.state != "ok"]
    for line in budget_sentences(over[:3]):
        Console().print(line, soft_wrap=True)
    capped = [r for r in report.experiments if (r["used_pct"] or 0) >= 80]
    if capped:
        Console().print(
            f"{len(capped)} experiment(s) past 80% of their cap, largest "
            f"{capped[0]['experiment']} at {capped[0]['used_pct']}% of "
            f"${capped[0]['cap_usd']:,}.", soft_wrap=True,
        )  # fmt: skip


def ingest_activity(
    ledger: Ledger, activity: ActivityManifest, err: Console, bar: Bar | None = None
) -> list[dict[str, Any]]:
    """Ingest every part of the activity through its real source; one report row per source."""
    rows: list[dict[str, Any]] = []
    for name, paths, source in _activity_parts(activity):
        if bar is not None:
            bar.step(f"Ingesting {name} ({len(paths)} file(s)) ...")
        summary = ingest_files(ledger, paths, source)
        dupes = len(summary.duplicates)
        err.print(
            f"  {name:<12} {summary.rows:>10,} rows from {len(paths)} file(s)"
            f"{f', {dupes} already in the ledger' if dupes else ''} in {summary.seconds:.1f}s"
        )
        rows.append(
            {
                "source": name,
                "files": len(paths),
                "rows": summary.rows,
                "duplicates": dupes,
                "seconds": round(summary.seconds, 3),
            }
        )
    return rows


@dataclass(frozen=True)
class DemoRun:
    """What the demo's steps found, for its report."""

    manifest: BillingManifest
    by: dict[str, list[dict[str, Any]]]
    activity: ActivityManifest
    activity_rows: list[dict[str, Any]]
    showback: list[dict[str, object]]
    findings: list[dict[str, Any]]
    budgets: BudgetReport | None
    breaches: list[dict[str, Any]]
    agreement: dict[str, Any]
    estimate: str  # one manifest's pre-launch estimate, as a pull-request comment


# The demo's steps, as its progress bar counts them: bills written, bills ingested, activity
# written, each activity source ingested, then showback, detect, budgets, thresholds, agreement,
# one manifest's estimate.
STEPS = 3 + 9 + 6


def run_demo(
    *,
    out: Path,
    ledger_url: str,
    seed: int,
    days: int,
    scale: float,
    fmt: Format,
    err: Console,
    telemetry_days: int = 1,
) -> None:
    """Generate the organization, run it through the product, print (or emit) what it found. A
    progress bar on `err` when it is a terminal and `fmt` is not JSON."""
    with progress_bar("Writing the demo organization's bills ...", total=STEPS, fmt=fmt,
                      console=err) as bar:  # fmt: skip
        run = _run_steps(out, ledger_url, seed, days, scale, err, bar, telemetry_days)
    _report(run, out=out, ledger_url=ledger_url, seed=seed, days=days, scale=scale, fmt=fmt)


def _run_steps(out: Path, ledger_url: str, seed: int, days: int, scale: float, err: Console,
               bar: Bar, telemetry_days: int) -> DemoRun:  # fmt: skip
    """Every step of the demo, each told to `bar`; what they found, for `_report`."""
    from costline.demo.activity import generate_activity
    from costline.demo.billing import generate_billing

    started = time.perf_counter()
    manifest = generate_billing(out, seed=seed, days=days, scale=scale)
    err.print(
        f"wrote {len(manifest.files)} billing files ({manifest.rows:,} lines, "
        f"{manifest.window_start:%Y-%m-%d} to {manifest.window_end:%Y-%m-%d}) and "
        f"{manifest.ground_truth.name} in {time.perf_counter() - started:.1f}s"
    )
    with Ledger(ledger_url) as ledger:
        bar.step(f"Ingesting through `costline ingest focus` into {ledger.path} ...")
        # The billing files only: the activity beside them has CSVs of its own. A demo run with
        # fewer --days rewrites its own bills: its restatements are meant to shrink.
        summary = ingest_focus(ledger, [out / f.path for f in manifest.files], replace_periods=True)
        err.print(
            f"ingested {summary.rows:,} lines from {len(summary.files) - len(summary.duplicates)} "
            f"file(s), {len(summary.duplicates)} already in the ledger, in {summary.seconds:.1f}s"
        )
        by = {key: _spend_rows(ledger, key) for key in ("provider", "team", "domain")}
        started = time.perf_counter()
        bar.step("Writing telemetry, workloads, LLM usage and storage inventories ...")
        activity = generate_activity(
            out, manifest, seed=seed, telemetry_days=min(telemetry_days, days)
        )
        err.print(
            f"wrote {len(activity.dcgm_files)} DCGM files ({activity.dcgm_samples:,} samples), "
            f"{activity.pods} pods, {activity.slurm_jobs} Slurm jobs, "
            f"{activity.llm_requests:,} LLM requests, {activity.storage_objects:,} objects in "
            f"{time.perf_counter() - started:.1f}s; ingesting:"
        )
        activity_rows = ingest_activity(ledger, activity, err, bar)
        bar.step("Showback of the first day with telemetry (costline report showback) ...")
        showback = _gpu_showback(ledger, activity.window_start)
        findings = _detect(ledger, manifest, bar)
        budgets = _budgets(ledger, manifest, bar)
        breaches = _thresholds(ledger, manifest, bar)
        _settle(ledger, manifest)
        agreement = _agreement(ledger, manifest, budgets, bar)
        comment = estimate_comment(ledger, out, manifest.config_file, bar)
    return DemoRun(manifest, by, activity, activity_rows, showback, findings, budgets, breaches,
                   agreement, comment)  # fmt: skip


def _report(run: DemoRun, *, out: Path, ledger_url: str, seed: int, days: int,
            scale: float, fmt: Format) -> None:  # fmt: skip
    """The demo's report: one JSON object, or its tables and sentences."""
    report = _summary(run, out=out, ledger_url=ledger_url, seed=seed, days=days, scale=scale)
    if fmt is Format.json:
        sys.stdout.write(dumps(report) + "\n")
        return
    _print_tables(run, report, fmt)


def _summary(run: DemoRun, *, out: Path, ledger_url: str, seed: int, days: int,
             scale: float) -> dict[str, Any]:  # fmt: skip
    """What the demo found, as `costline demo -f json` prints it."""
    ledger_total = total(r["billed"] for r in run.by["provider"])
    matches = ledger_total == run.manifest.total.billed
    report = {
        "version": 1,
        "out": str(out),
        "ledger": ledger_url,
        "seed": seed,
        "days": days,
        "scale": scale,
        "lines": run.manifest.rows,
        "billed_total": str(ledger_total),
        "ground_truth_billed_total": str(run.manifest.total.billed),
        "ledger_matches_ground_truth": matches,
        "untagged_share_of_effective": str(run.manifest.untagged_share),
        "spend_by_provider": run.by["provider"],
        "spend_by_team": run.by["team"],
        "spend_by_cost_domain": run.by["domain"],
        "showback_last_day": run.showback,
        "findings": run.findings,
        "budgets": [s.row() for s in current(run.budgets.statuses)] if run.budgets else [],
        "threshold_breaches": run.breaches,
        "views_agree": run.agreement,
        "estimate_comment": run.estimate,
        "activity": {
            "window_start": run.activity.window_start.isoformat(),
            "window_end": run.activity.window_end.isoformat(),
            "truth": str(run.activity.truth),
            "sources": run.activity_rows,
        },
    }
    return report


def _print_tables(run: DemoRun, report: dict[str, Any], fmt: Format) -> None:
    """The demo's tables and sentences, for people."""
    ledger_total, matches = Decimal(report["billed_total"]), report["ledger_matches_ground_truth"]
    for key, title in (
        ("provider", "provider"),
        ("team", "team (from tags)"),
        ("domain", "cost domain (from tags)"),
    ):
        rows = [
            {
                key: r[key if key != "domain" else "cost_domain"],
                "lines": r["rows"],
                "billed": format_money(r["billed"]),
                "effective": format_money(r["effective"]),
            }
            for r in run.by[key]
        ]
        emit_rows(rows, fmt, title=f"Spend by {title}")
    emit_rows(
        run.showback,
        fmt,
        columns=["team", "amount_usd", "share_pct", "gpu_hours", "held_idle_gpu_hours"],
        title=f"Showback by team, {run.activity.window_start:%Y-%m-%d}: GPU hosts by GPU-time "
        "held, the rest by tags (costline report showback)",
    )
    emit_rows(
        run.findings[:10],
        fmt,
        columns=["severity", "title", "start", "impact_usd", "verdict", "owner"],
        title=f"Spend anomalies (costline findings; {len(run.findings)} in all, injected incidents "
        "in ground_truth.json)",
    )
    if run.budgets is not None:
        _print_budgets(run.budgets, fmt)
    if run.breaches:
        emit_rows(
            run.breaches, fmt,
            columns=["threshold", "scope", "start", "minutes", "peak", "baseline",
                     "pct_over_baseline", "impact_usd", "tier"],
            title="Spike thresholds on the live telemetry (costline thresholds; the live "
            "incident is in activity_truth.json)",
        )  # fmt: skip
    for line in _agreement_sentences(run.agreement):
        Console().print(line)
    if run.estimate:
        Console().print(f"Pre-launch estimate, as a pull-request comment (costline estimate "
                        f"{report['out']}/experiments/*.yaml; costline gate fails three):")  # fmt: skip
        Console().print(run.estimate, markup=False, highlight=False, soft_wrap=True)
    verdict = "matches" if matches else "DOES NOT match"
    Console().print(
        f"Billed total {format_money(ledger_total)} {verdict} the ground truth "
        f"({format_money(run.manifest.total.billed)}); ground truth per team and domain: "
        f"{run.manifest.ground_truth}"
    )
