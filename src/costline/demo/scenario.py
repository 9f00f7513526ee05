"""Scenarios to score detection on: many shapes of daily spend and telemetry, with known incidents.

    >>> from pathlib import Path
    >>> s = generate(1000, Path("/tmp/scenario-1000"), shape="seasonal")   # doctest: +SKIP
    >>> [i["kind"] for i in s.incidents][:2]                                 # doctest: +SKIP
    ['token_surge', 'slow_creep']

`generate(seed, out, shape=...)` writes into `out` what a daily job would ingest:

- `billing/<provider>/focus-<month>.csv`: FOCUS 1.2 usage lines, one per resource, SKU and day,
  with readable SKU descriptions (`ChargeDescription`, `SkuMeter`, `SkuPriceDetails`);
- `metrics/daily.csv` (`costline ingest metrics`): requests and successes per app, p95 latency,
  GPU utilization per training instance, purchases;
- `annotations.yaml` (`costline ingest annotations`): the planned launches;
- `costline.yaml`: the owners of each team;
- `ground_truth.json`: the incidents (see `costline.demo.scenario_incidents`) with their scope,
  days, wasted dollars to the cent of the files, direction and whether an alert is expected.

The baseline (see `costline.demo.scenario_series`) does not depend on the incidents:
`generate(..., incidents=False)` writes the same organization without them, so the excess of each
incident is the difference of the two bills. The same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from costline.demo.charges import invoice_id
from costline.demo.focus_files import FOCUS_COLUMNS, FocusTable, write_csv
from costline.demo.scenario_catalog import PROVIDERS, REGION_NAMES, account_id, account_name
from costline.demo.scenario_incidents import WARMUP_DAYS, Incident, Planner
from costline.demo.scenario_series import Baseline, CostSeries, baseline, pick_shape
from costline.demo.schedule import Timeline

CENT = Decimal("0.01")
QUANTITY = Decimal("0.000001")
SKU_COLUMNS = ("SkuMeter", "SkuPriceDetails", "SkuPriceId")
GROUND_TRUTH_FILE = "ground_truth.json"

__all__ = ["GROUND_TRUTH_FILE", "Scenario", "cents", "generate"]


@dataclass(frozen=True)
class Scenario:
    """What `generate` wrote."""

    root: Path
    seed: int
    shape: str
    start: dt.date
    days: int
    series: int  # daily cost series, incidents' new ones included
    billing_files: tuple[Path, ...]
    metrics_file: Path
    annotations_file: Path
    config_file: Path
    ground_truth: Path
    incidents: tuple[dict[str, Any], ...]

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)


def cents(value: float) -> Decimal:
    """A float amount as an exact number of cents (what a line bills)."""
    return Decimal(repr(value)).quantize(CENT)


def generate(seed: int, out: Path, *, shape: str = "mixed", incidents: bool = True) -> Scenario:
    """Write the scenario of `seed` in `shape` (see `scenario_series.SHAPES`, or "mixed": drawn by
    the seed) under `out`; without `incidents`, the same organization with none."""
    chosen = pick_shape(seed, shape)
    base = baseline(seed, chosen)
    found = Planner(base, seed).plan() if incidents else []
    out.mkdir(parents=True, exist_ok=True)
    billing = _write_bills(base, out)
    metrics = _write_metrics(base, out / "metrics" / "daily.csv")
    notes = out / "annotations.yaml"
    notes.write_text(yaml.safe_dump({"annotations": [i.annotation for i in found if i.annotation]},
                                    sort_keys=False), encoding="utf-8")  # fmt: skip
    config = out / "costline.yaml"
    owners = [{"name": t, "kind": "team", "match": {"team": t}}
              for t in sorted({s.team for s in base.series})]  # fmt: skip
    config.write_text("# A scenario's organization (costline.demo.scenario): one owner per team.\n"
                      + yaml.safe_dump({"version": 1, "owners": owners}, sort_keys=False),
                      encoding="utf-8")  # fmt: skip
    truth = _truth(seed, chosen.name, base, found)
    truth_path = out / GROUND_TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return Scenario(out, seed, chosen.name, base.start, base.days, len(base.series), billing,
                    metrics, notes, config, truth_path, tuple(truth["incidents"]))  # fmt: skip


def _at(start: dt.date, day: int | None) -> str | None:
    if day is None:
        return None
    return f"{(start + dt.timedelta(days=day)).isoformat()}T00:00:00Z"


def _truth(seed: int, shape: str, base: Baseline, found: list[Incident]) -> dict[str, Any]:
    incidents = []
    for n, i in enumerate(found, 1):
        excess = (
            sum((cents(v) for s in i.series for v in s.extra), Decimal(0)) if i.series else None
        )
        incidents.append({
            "id": f"inc-{n:02d}", "kind": i.kind, "scope": i.scope,
            "start": _at(base.start, i.start), "end": _at(base.start, i.end),
            "excess_usd": None if excess is None else str(excess),
            "wasted_usd": str(excess) if i.waste and excess is not None else None,
            "direction": i.direction, "alert_expected": i.kind != "launch_surge",
            "verdict": ("waste" if i.waste else "value") if i.series else None,
        })  # fmt: skip
    return {
        "version": 1, "seed": seed, "shape": shape,
        "window": {"start": _at(base.start, 0), "end": _at(base.start, base.days)},
        "days": base.days, "warmup_days": WARMUP_DAYS, "series": len(base.series),
        "incidents": incidents,
    }  # fmt: skip


def _static(s: CostSeries) -> dict[str, str | Decimal | None]:
    """The columns of `s`'s lines that do not change from day to day."""
    provider_name, billing_account, _ = PROVIDERS[s.meter.provider]
    m = s.meter
    tags = {"team": s.team, "environment": "prod"}
    if s.app:
        tags["app"] = s.app
    if s.model:
        tags["model"] = s.model
    row: dict[str, str | Decimal | None] = dict.fromkeys(FOCUS_COLUMNS + SKU_COLUMNS)
    return row | {
        "BillingAccountId": billing_account, "BillingAccountName": f"{provider_name} organization",
        "BillingCurrency": "USD", "ChargeCategory": "Usage", "ChargeDescription": m.description,
        "ChargeFrequency": "Usage-Based", "ListUnitPrice": m.price, "ContractedUnitPrice": m.price,
        "PricingCategory": "Standard", "PricingUnit": m.unit, "ConsumedUnit": m.unit,
        "InvoiceIssuerName": provider_name, "ProviderName": provider_name,
        "PublisherName": provider_name, "RegionId": s.region, "RegionName": REGION_NAMES[s.region],
        "ResourceId": s.resource_id, "ResourceName": s.name, "ResourceType": m.resource_type,
        "ServiceCategory": m.category, "ServiceSubcategory": m.subcategory,
        "ServiceName": m.service, "SkuId": s.sku, "SkuMeter": m.meter,
        "SkuPriceDetails": m.details, "SkuPriceId": f"{s.sku}.{m.unit.replace(' ', '')}",
        "SubAccountId": account_id(s.team, m.provider),
        "SubAccountName": account_name(s.team, m.provider),
        "Tags": json.dumps(tags, separators=(",", ":")),
    }  # fmt: skip


def _write_bills(base: Baseline, out: Path) -> tuple[Path, ...]:
    """One FOCUS CSV per provider and month; a line per series and day that bills anything."""
    timeline = Timeline.of(base.start, base.days)
    tables: dict[tuple[str, int], FocusTable] = {}
    for s in base.series:
        static = _static(s)
        for d in range(base.days):
            cost = cents(s.base[d]) + cents(s.extra[d])
            if cost <= 0:
                continue
            month = timeline.months[timeline.month_of_day[d]]
            quantity = (cost / s.meter.price).quantize(QUANTITY)
            key = (s.meter.provider, timeline.month_of_day[d])
            table = tables.setdefault(key, FocusTable(FOCUS_COLUMNS + SKU_COLUMNS))
            table.append(static | {
                "BillingPeriodStart": month.period_start, "BillingPeriodEnd": month.period_end,
                "ChargePeriodStart": timeline.day_marks[d],
                "ChargePeriodEnd": timeline.day_marks[d + 1],
                "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost,
                "ContractedCost": cost, "PricingQuantity": quantity, "ConsumedQuantity": quantity,
                "InvoiceId": invoice_id(s.meter.provider, month.key),
            })  # fmt: skip
    paths = []
    for (provider, index), table in sorted(tables.items()):
        path = out / "billing" / provider / f"focus-{timeline.months[index].key}.csv"
        write_csv(table, path)
        paths.append(path)
    return tuple(paths)


def _write_metrics(base: Baseline, path: Path) -> Path:
    """Every metric series as daily rows of one CSV: ts, metric, value and its labels."""
    names = sorted({k for m in base.metrics for k in m.labels})
    lines = [",".join(["ts", "metric", "value", *names])]
    for d in range(base.days):
        ts = f"{(base.start + dt.timedelta(days=d)).isoformat()}T00:00:00Z"
        for m in base.metrics:
            v = m.values[d]
            if math.isnan(v):
                continue
            value = f"{max(0.0, v):.{m.decimals}f}"
            lines.append(",".join([ts, m.metric, value, *(m.labels.get(k, "") for k in names)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
