"""The demo organization's cloud bills, as FOCUS 1.2 files in each provider's export format.

    >>> from pathlib import Path
    >>> manifest = generate_billing(Path("/tmp/costline-demo"), days=7)   # doctest: +SKIP
    >>> [f.path for f in manifest.files][:1]                               # doctest: +SKIP
    ['aws/focus-2026-10.parquet']

AWS as Parquet, Azure as CSV, Google Cloud as gzipped CSV, Lambda as CSV, one file per provider and
billing month, and `ground_truth.json` beside them. The same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml

from costline.demo.budgets import plan_budgets
from costline.demo.charges import BillSink, charge
from costline.demo.fleets import ACCOUNTS, organization
from costline.demo.focus_files import FocusTable, write_csv, write_parquet
from costline.demo.ground_truth import (
    BillingFile,
    build_ground_truth,
    group_totals,
    untagged_share,
)
from costline.demo.incidents import plan_incidents, write_daily_successes
from costline.demo.org import Account
from costline.demo.schedule import Timeline, UsageSeries
from costline.demo.totals import CostTotals, sum_totals
from costline.demo.usage import Volume
from costline.demo.waste import plant_waste, with_waste
from costline.demo.waste_truth import Drawn, gpu_pools, recommendations_truth

# The window ends here unless told otherwise: fixed, so runs never depend on the wall clock.
DEFAULT_END = dt.date(2026, 11, 1)
GROUND_TRUTH_FILE = "ground_truth.json"
CONFIG_FILE = "costline.yaml"
# The bills tag gpt-4o-mini; OpenAI's usage log names it with its snapshot date: one model.
DEMO_MODEL_ALIASES = {"gpt-4o-mini-2024-07-18": "gpt-4o-mini"}
# Spike thresholds of the demo's costline.yaml, on the minute-level telemetry (detect.thresholds).
DEMO_THRESHOLDS: list[dict[str, object]] = [
    {"name": "context-length-by-app", "signal": "avg_context_tokens", "by": "app",
     "pct_over_baseline": 40, "z": 4, "min_buckets": 2},
    {"name": "llm-spend-by-app", "signal": "llm_cost_usd", "by": "app",
     "pct_over_baseline": 150, "z": 6, "min_buckets": 3},
    {"name": "cache-hit-drop-by-app", "signal": "cache_hit_rate", "by": "app",
     "direction": "below", "pct_over_baseline": 50, "z": 5, "min_buckets": 3},
    {"name": "idle-gpus-by-namespace", "signal": "idle_gpu_minutes", "by": "namespace",
     "pct_over_baseline": 100, "z": 6, "min_buckets": 3},
    {"name": "latency-p95-by-app", "signal": "latency_p95_ms", "by": "app",
     "pct_over_baseline": 100, "z": 6, "min_buckets": 3},
]  # fmt: skip

__all__ = ["DEFAULT_END", "BillingFile", "BillingManifest", "CostTotals", "generate_billing"]


@dataclass(frozen=True)
class BillingManifest:
    """What `generate_billing` wrote, with the totals the ground truth holds."""

    root: Path
    seed: int
    days: int
    scale: float
    window_start: dt.datetime
    window_end: dt.datetime
    files: tuple[BillingFile, ...]
    ground_truth: Path
    total: CostTotals
    per_provider: Mapping[str, CostTotals]
    per_team: Mapping[str, CostTotals]
    per_cost_domain: Mapping[str, CostTotals]
    untagged_share: Decimal  # share of EffectiveCost on lines without a team tag
    successes_file: Path | None = None  # metrics/daily_successes.csv (see demo.incidents)
    config_file: Path | None = None  # costline.yaml with the demo's budgets (see demo.budgets)

    @property
    def rows(self) -> int:
        return self.total.rows


def _file_name(account: Account, month: str) -> str:
    return f"{account.provider}/focus-{month}.{account.file_format}"


def _write(account: Account, table: FocusTable, path: Path) -> None:
    if account.file_format == "parquet":
        write_parquet(table, path)
    else:
        write_csv(table, path, gzipped=account.file_format == "csv.gz")


def _write_files(sink: BillSink, timeline: Timeline, out: Path) -> list[BillingFile]:
    """Write one file per provider and month, providers in a fixed order."""
    files: list[BillingFile] = []
    for account in ACCOUNTS:
        for month in timeline.months:
            table = sink.tables.get((account.provider, month.key))
            if table is None:
                continue
            name = _file_name(account, month.key)
            _write(account, table, out / name)
            totals = CostTotals.of_table(table)
            files.append(BillingFile(name, account.provider, account.file_format, totals))
    return files


def generate_billing(
    out: Path,
    *,
    seed: int = 7,
    days: int = 90,
    scale: float = 1.0,
    end: dt.date | None = None,
) -> BillingManifest:
    """Write the bills of the `days` days before `end` under `out`, and their ground truth."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    end = end or DEFAULT_END
    out.mkdir(parents=True, exist_ok=True)
    timeline = Timeline.of(end - dt.timedelta(days=days), days)
    resources = organization(scale)
    incidents = plan_incidents(resources, timeline, seed)
    waste = plant_waste(seed, scale)
    resources = with_waste([*resources, *incidents.added], waste)
    sink = BillSink(timeline)
    plans = charge(resources, sink, seed, incidents, waste.reservations)
    series = UsageSeries(timeline, seed)
    levels = {r.key: series.levels(r) for r in resources
              if r.kind == "usage" and isinstance(r.usage, Volume)}  # fmt: skip
    successes = out / "metrics" / "daily_successes.csv"
    write_daily_successes(successes, resources, levels, incidents, timeline, seed)

    files = _write_files(sink, timeline, out)
    per_resource = {key: acc.freeze() for key, acc in sink.per_resource.items()}
    truth = build_ground_truth(
        seed=seed,
        days=days,
        scale=scale,
        timeline=timeline,
        resources=resources,
        per_resource=per_resource,
        files=files,
        plans=plans,
    )
    budgets, overruns = plan_budgets(resources, sink.per_day, incidents)
    config = out / CONFIG_FILE
    config.write_text(
        "# The demo organization's budgets (see costline.demo.budgets); experiments' default\n"
        "# cap is costline's own ($1,000, alerts at 80% and 100%). Spike thresholds on the\n"
        "# telemetry signals (costline signals) escalate through costline's default tiers.\n"
        "# Model aliases name a model the same on its bills and in its LLM usage logs.\n"
        + yaml.safe_dump(
            {
                "version": 1,
                "models": {"aliases": DEMO_MODEL_ALIASES},
                "budgets": budgets,
                "thresholds": DEMO_THRESHOLDS,
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    truth["incidents"] = [
        *incidents.truth(levels, {key: t.effective for key, t in per_resource.items()}),
        *overruns,
    ]
    active = {r.key: series.active(r) for r in resources if r.kind == "usage" and r.instance}
    drawn = Drawn(timeline, seed, active, plans)
    truth["recommendations"] = recommendations_truth(waste, drawn)
    truth["gpu_pools"] = gpu_pools(resources, drawn)
    truth_path = out / GROUND_TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    origin = dt.datetime(
        timeline.start.year, timeline.start.month, timeline.start.day, tzinfo=dt.UTC
    )
    return BillingManifest(
        root=out,
        seed=seed,
        days=days,
        scale=scale,
        window_start=origin,
        window_end=origin + dt.timedelta(days=days),
        files=tuple(files),
        ground_truth=truth_path,
        total=sum_totals([f.totals for f in files]),
        per_provider=group_totals(resources, per_resource, lambda r: r.account.provider),
        per_team=group_totals(resources, per_resource, lambda r: r.owner.team),
        per_cost_domain=group_totals(resources, per_resource, lambda r: r.owner.cost_domain),
        untagged_share=untagged_share(resources, per_resource),
        successes_file=successes,
        config_file=config,
    )
