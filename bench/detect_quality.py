"""Benchmark: detection quality on generated scenarios, run the way a daily job runs it.

    uv run python bench/detect_quality.py --seeds 1000-1009           # held-out seeds, mixed shapes
    uv run python bench/detect_quality.py --seeds 1000-1001 --shape steady
    uv run python bench/detect_quality.py --seeds 1000-1004 --only baseline

Each seed's scenario (`costline.demo.scenario.generate`: 10-80 daily cost series over 90-150
days, weekly dips, growth, month-start jobs, bursty meters, 8-14 incidents of 11 kinds) is scored
by `costline.demo.scoring.score`: ingested into a real ledger, detection run once a day from the
end of the warm-up on the data up to that day, findings stored as production stores them, then
matched to the ground truth. Two detectors, in the same run:

- costline: `costline.detect.daily.detect_all`, what `costline detect` and `costline sync` run;
- baseline: a naive detector, a rolling 28-day mean + 3 standard deviations on each daily series
  (cost per resource and SKU, rises; every metric series, both ways), one finding per anomalous
  run of days.

Prints, per seed and overall: incident recall, wasted-dollar recall, precision, findings per found
incident, mean days to detect, the slowest creep's days to detect, alerts on annotated launches,
and seconds per daily run. Targets (issue 15): recall >= 90%, dollars >= 95%, precision >= 90%,
creeps within 10 days, no launch alert, about one finding per incident.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from costline.clock import Clock
from costline.config import Config
from costline.demo.scenario import generate
from costline.demo.scoring import Detector, Scores, score
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind, Window

WINDOW = 28  # days of the rolling mean and standard deviation
SIGMAS = 3.0
DAYS = 90  # days a run reads, as detect_all does
TARGETS = {"incident_recall": 0.90, "dollar_recall": 0.95, "precision": 0.90}


def _runs(values: np.ndarray, both: bool) -> list[tuple[int, int, float]]:
    """(first, last, excess) of each run of days beyond the rolling mean + 3 sd of the 28 before."""
    out: list[tuple[int, int, float]] = []
    current: list[Any] | None = None
    for t in range(WINDOW, len(values)):
        past = values[t - WINDOW : t]
        mean, sd = float(past.mean()), float(past.std())
        excess = float(values[t]) - mean
        if excess > SIGMAS * sd or (both and -excess > SIGMAS * sd):
            if current is not None and current[1] == t - 1:
                current[1], current[2] = t, current[2] + excess
            else:
                current = [t, t, excess]
                out.append(current)  # type: ignore[arg-type]
    return [(int(a), int(b), float(c)) for a, b, c in out]


def _series(rows: list[dict[str, Any]], key: Any, start: dt.date) -> dict[Any, np.ndarray]:
    out: dict[Any, np.ndarray] = {}
    for r in rows:
        i = (r["day"] - start).days
        if 0 <= i < DAYS:
            out.setdefault(key(r), np.zeros(DAYS))[i] += float(r["v"] or 0.0)
    return out


def baseline(ledger: Ledger, config: Config, *, end: dt.datetime, clock: Clock,
             **_: Any) -> list[Finding]:  # fmt: skip
    """The naive detector (see the module): rolling mean + 3 sd on every daily series."""
    first = end - dt.timedelta(days=DAYS)
    lines = ledger.table("cost_lines")
    lines = lines.filter(lines.ChargePeriodStart >= first, lines.ChargePeriodStart < end)
    cost = lines.group_by(rid=lines.ResourceId, sku=lines.SkuId,
                          day=lines.ChargePeriodStart.date()).aggregate(
        v=lines.EffectiveCost.sum().cast("float64"))  # fmt: skip
    m = ledger.table("metrics")
    m = m.filter(m.ts >= first, m.ts < end)
    metric = m.group_by(metric=m.metric, labels=m.labels,
                        day=m.ts.date()).aggregate(v=m.value.sum())  # fmt: skip
    found = []
    day0 = first.date()
    spend = _series(fetch.rows(cost), lambda r: (r["rid"], r["sku"]), day0)
    for (rid, sku), values in spend.items():
        for a, b, excess in _runs(values, both=False):
            found.append(_finding({"resource": rid, "usage_type": sku}, day0, a, b, excess, clock))
    for (name, labels), values in _series(
        fetch.rows(metric), lambda r: (r["metric"], tuple(sorted(r["labels"] or []))), day0
    ).items():
        scope = {"metric": name, **dict(labels)}
        found += [_finding(scope, day0, a, b, None, clock) for a, b, _ in _runs(values, both=True)]
    return found


def _finding(scope: dict[str, str], day0: dt.date, a: int, b: int, excess: float | None,
             clock: Clock) -> Finding:  # fmt: skip
    start = dt.datetime.combine(day0 + dt.timedelta(days=a), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(day0 + dt.timedelta(days=b + 1), dt.time(), tzinfo=dt.UTC)
    return Finding.new(
        kind=FindingKind.ANOMALY, scope=scope, dedup_key=f"baseline:{start.date()}", clock=clock,
        title=f"{' '.join(scope.values())}: beyond its 28-day mean + 3 sd since {start.date()}",
        severity="warning", window=Window(start=start, end=end),
        impact_usd=None if excess is None else Decimal(repr(max(excess, 0.0))).quantize(
            Decimal("0.01")),
    )  # fmt: skip


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _row(name: str, label: str, s: Scores, seconds: float) -> dict[str, Any]:
    return {"detector": name, "seed": label, **s.summary(), "wall_s": round(seconds, 1)}


def _print(rows: Sequence[dict[str, Any]]) -> None:
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1000-1009", help="a seed or a range, e.g. 1000-1009")
    parser.add_argument("--shape", default="mixed",
                        help="mixed (drawn by seed), steady, seasonal, growing, noisy")  # fmt: skip
    parser.add_argument("--only", choices=("costline", "baseline"), default=None)
    args = parser.parse_args(argv)
    from costline.detect.daily import detect_all

    detectors: list[tuple[str, Detector]] = [("costline", detect_all), ("baseline", baseline)]
    detectors = [d for d in detectors if args.only in (None, d[0])]
    rows: list[dict[str, Any]] = []
    totals: dict[str, list[Scores]] = {name: [] for name, _ in detectors}
    with tempfile.TemporaryDirectory(prefix="costline-bench-") as tmp:
        for seed in _seeds(args.seeds):
            s = generate(seed, Path(tmp) / str(seed), shape=args.shape)
            for name, detector in detectors:
                started = time.perf_counter()
                scores = score(s.root, detector)
                totals[name].append(scores)
                rows.append(_row(name, f"{seed} {s.shape}", scores, time.perf_counter() - started))
                print(f"seed {seed} ({s.shape}, {s.days} days, {s.series} series, "
                      f"{len(s.incidents)} incidents) {name}: {scores.summary()}",
                      file=sys.stderr, flush=True)  # fmt: skip
    for name, parts in totals.items():
        total = Scores.total(parts)
        rows.append(_row(name, "all", total, sum(r["wall_s"] for r in rows
                                                 if r["detector"] == name)))  # fmt: skip
    _print(rows)
    for name, parts in totals.items():
        summary = Scores.total(parts).summary()
        met = [f"{k} {summary[k]:.0%} ({'met' if summary[k] >= v else 'not met'}, target {v:.0%})"
               for k, v in TARGETS.items()]  # fmt: skip
        print(f"{name}: " + "; ".join(met))
    return 0


if __name__ == "__main__":
    sys.exit(main())
