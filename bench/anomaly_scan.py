"""Benchmark: scanning 10,000 daily spend series for anomalies, against the pure-Python scan.

    uv run python bench/anomaly_scan.py                        # 10,000 series x 365 days
    uv run python bench/anomaly_scan.py --series 1000 --days 120

The series (seeded): a lognormal level per series ($400 a day in the median, a long tail), a
weekend dip of its own, a drift, 2-15% noise; a third get one incident (1 to 10 days at 1.5-6x),
a twentieth start from zero part way, and 3% are bursty batch meters (about 5x every 5-12 days),
with a tripled burst in half of them.

Measured in one process, after imports and generation, with the default Settings and again with
every gate open (the worst case: every point goes through the z-score and new-high tests):
  - costline: `detect.anomaly.scan_many` over all the series at once (best of `--repeat` runs);
  - baseline: the pure-Python `scan` it replaced (`reference_scan` in
    tests/unit/test_anomaly_scan.py, a `statistics.median` per point) on `--sample` series spread
    over the set, extrapolated to all of them, and checked to find the same anomalies there.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costline.detect.anomaly import Anomaly, Settings, scan_many
from fresh import peak_mib

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 10.0  # for 10,000 series x 365 days
SETTINGS = [
    ("default Settings", Settings()),
    # The worst case: every point past `first` goes through every gate and the new-high test.
    ("every point through every gate (min_impact 0, min_pct 0, z 0, min_total_impact 0)",
     Settings(min_impact=0, min_pct=0, z=0, min_total_impact=0)),
]  # fmt: skip


def generate(series: int, days: int, seed: int) -> np.ndarray:
    """Daily cost series, one a row: weekly seasonality, noise, incidents, bursty meters."""
    rng = np.random.default_rng(seed)
    d = np.arange(days)
    level = rng.lognormal(6.0, 1.5, (series, 1))
    weekend = np.where(d % 7 >= 5, rng.uniform(0.5, 1.0, (series, 1)), 1.0)
    drift = 1.0 + rng.normal(0.0, 0.3, (series, 1)) * d / days
    noise = rng.normal(1.0, rng.uniform(0.02, 0.15, (series, 1)), (series, days))
    m = level * weekend * np.clip(drift, 0.2, None) * np.clip(noise, 0.1, None)
    for r in rng.choice(series, series // 3, replace=False):  # one incident each
        start = int(rng.integers(0, days))
        m[r, start : start + int(rng.integers(1, 11))] *= rng.uniform(1.5, 6.0)
    for r in rng.choice(series, series // 20, replace=False):  # new: zero before it started
        m[r, : int(rng.integers(0, days))] = 0.0
    for r in rng.choice(series, max(1, series * 3 // 100), replace=False):  # bursty batch meters
        every = int(rng.integers(5, 13))
        bursts = np.arange(int(rng.integers(0, every)), days, every)
        m[r] = level[r, 0] * rng.uniform(0.15, 0.35, days)
        m[r, bursts] *= rng.uniform(4.0, 6.0, bursts.size)
        late = bursts[bursts >= days // 2]
        if late.size and rng.random() < 0.5:
            m[r, rng.choice(late)] *= 3.0
    return m


def reference() -> tuple[Callable[[Sequence[float], Settings], list[Anomaly]], Callable[..., None]]:
    """The pure-Python scan and the comparison the tests use (tests/ is not an installed package)."""
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_anomaly_scan import assert_same, reference_scan

    return reference_scan, assert_same


@dataclass
class Run:
    """One setting's measurements: scan_many on all series, the reference on the sample."""

    times: list[float]
    anomalies: int
    sample_s: float
    sample_anomalies: int
    same: str


def measure(matrix: np.ndarray, picked: np.ndarray, settings: Settings, repeat: int) -> Run:
    reference_scan, assert_same = reference()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        found = scan_many(matrix, settings)
        times.append(time.perf_counter() - started)
    sample = [matrix[r].tolist() for r in picked]
    started = time.perf_counter()
    expected = [reference_scan(values, settings) for values in sample]
    sample_s = time.perf_counter() - started
    try:
        for r, want in zip(picked, expected, strict=True):
            assert_same(found[r], want)
        same = "yes"
    except AssertionError as e:
        same = f"NO ({e})"
    count = sum(len(f) for f in found)
    return Run(times, count, sample_s, sum(len(e) for e in expected), same)


def row(name: str, series: int, points: int, seconds: float, found: str) -> str:
    return (
        f"| {name} | {series:,} | {points:,} | {seconds:.2f} | {points / seconds:,.0f} | {found} |"
    )


def table(run: Run, series: int, days: int, sample: int) -> None:
    fast_s, slow_s = min(run.times), run.sample_s * series / sample
    print("| run | series | points | seconds | points/s | anomalies |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("costline `scan_many`, all", series, series * days, fast_s, f"{run.anomalies:,}"))
    print(row("pure-Python `scan`, sample", sample, sample * days, run.sample_s,
              f"{run.sample_anomalies:,}"))  # fmt: skip
    print(row("pure-Python `scan`, extrapolated", series, series * days, slow_s, "-"))
    runs = ", ".join(f"{t:.2f}s" for t in run.times)
    print(f"scan_many runs: {runs} (best counted); speed-up {slow_s / fast_s:,.1f}x")
    print(f"same anomalies as the pure-Python scan on the {sample} sampled series: {run.same}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sample", type=int, default=200, help="series the baseline scans")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    matrix = generate(args.series, args.days, args.seed)
    print(f"data: {args.series:,} series x {args.days} days, seed {args.seed} "
          f"({time.perf_counter() - started:.2f}s)")  # fmt: skip
    picked = np.linspace(0, args.series - 1, min(args.sample, args.series)).astype(int)
    budget = TARGET_S * args.series * args.days / (10_000 * 365)
    verdicts = []
    for title, settings in SETTINGS:
        print(f"\n{title}:")
        run = measure(matrix, picked, settings, args.repeat)
        table(run, args.series, args.days, len(picked))
        verdicts.append(min(run.times) < budget and run.same == "yes")
    print(f"\npeak RSS {peak_mib():,.0f} MiB")
    verdict = "PASS" if all(verdicts) else "FAIL"
    print(f"target ({TARGET_S:.0f}s for 10,000 x 365, {budget:.2f}s for this size): {verdict}")


if __name__ == "__main__":
    main()
