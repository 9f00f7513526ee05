"""The shapes waste takes (issue 15): level shifts that stay open, slow creep, small sustained
rises, drops, unit-free and sub-daily series; and a daily job's findings keeping their starts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from random import Random

import pytest

from costline.clock import FixedClock
from costline.detect.anomaly import Anomaly, Settings, scan
from costline.detect.daily import acknowledged
from costline.detect.metrics import UNIT_FREE, detect_metrics, direction_of
from costline.detect.spend import SpendAnomaly, announced, renewals, shape_evidence
from costline.ledger.findings import transition
from costline.ledger.store import Ledger
from costline.model import Finding, Window
from costline.pipeline import ingest_files
from costline.sources.metrics import METRICS

DAY0 = dt.date(2026, 6, 1)


def weekly(days: int, seed: int, level: float = 1000.0, noise: float = 0.05) -> list[float]:
    """Daily spend with a weekend dip and a few percent of noise."""
    rng = Random(seed)
    return [
        level * (0.75 if d % 7 in (5, 6) else 1.0) * rng.uniform(1 - noise, 1 + noise)
        for d in range(days)
    ]


def covering(found: list[Anomaly], t: int) -> Anomaly | None:
    return next((a for a in found if a.start <= t <= a.end), None)


def test_a_level_shift_stays_open_accrues_to_the_end_and_keeps_its_start_run_after_run() -> None:
    values = weekly(120, seed=1)
    for d in range(60, 120):
        values[d] += 800.0  # replication left on: $800 a day more, to the last day
    starts = set()
    for end in range(61, 121):  # the daily job: one run a day on the data so far
        a = covering(scan(values[:end]), end - 1)
        assert a is not None, end
        starts.add(a.start)
    assert starts == {60}
    [a] = scan(values)
    assert (a.start, a.end, a.open, a.pattern) == (60, 119, True, "level_shift")
    assert len(a.points) == 60
    assert a.impact == pytest.approx(800 * 60, rel=0.05)
    assert a.baseline == pytest.approx(sum(values[:7]) / 7, rel=0.05)


def test_new_spend_from_zero_accrues_its_whole_cost_and_ends_when_it_stops() -> None:
    values = [0.0] * 50 + [600.0] * 40 + [0.0] * 30  # a forgotten endpoint, then deleted
    [a] = scan(values)
    assert (a.start, a.end, a.open, a.impact) == (50, 89, False, 600.0 * 40)
    still = scan(values[:90])
    assert (still[0].start, still[0].open, still[0].impact) == (50, True, 600.0 * 40)


def test_an_acknowledged_or_announced_level_is_the_new_normal_from_then_on() -> None:
    values = weekly(130, seed=2)
    for d in range(60, 130):
        values[d] += 800.0
    [a] = scan(values, rebases=[80])  # acknowledged after its last day 79
    assert (a.start, a.end, a.open) == (60, 79, False)
    assert a.impact == pytest.approx(800 * 20, rel=0.05)
    assert scan(values, rebases=[60]) == []  # a launch announced the day it began: no waste


def test_renewals_come_from_acknowledged_findings_and_launch_annotations(tmp_path: Path) -> None:
    end = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    shift = Finding.new(kind="anomaly", scope={"team": "search"}, dedup_key="spend:2026-07-01",
                        clock=FixedClock(end), title="team search: daily spend 1.8x",
                        severity="warning", window=Window(start=end - dt.timedelta(days=31),
                                                          end=end - dt.timedelta(days=10)))  # fmt: skip
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as ledger:
        ledger.write([], source="detect", findings=[shift])
        assert acknowledged(ledger) == {}
        transition(ledger.con, shift.fingerprint, "acknowledge")
        assert acknowledged(ledger) == {("team", "search"): [dt.date(2026, 7, 22)]}
    series = {("team", "search"): [1.0], ("team", "ads"): [1.0], ("service", "Bedrock"): [1.0]}
    launch = [(dt.date(2026, 7, 3), {"team": "ads"})]
    assert renewals(launch, series, {("team", "search"): [dt.date(2026, 7, 22)]}) == {
        ("team", "search"): [dt.date(2026, 7, 22)],
        ("team", "ads"): [dt.date(2026, 7, 3)],
    }
    # the launch also raised Bedrock, whose anomaly names team ads as a cause: the launch
    bedrock = SpendAnomaly("service", "Bedrock", dt.date(2026, 7, 4), dt.date(2026, 7, 9),
                           Anomaly(0, 5))  # fmt: skip
    causes = [{"dimension": "team", "value": "ads", "extra_per_day_usd": 900.0}]
    assert announced(launch, bedrock, causes)
    assert not announced(launch, bedrock, [])
    assert not announced([(dt.date(2026, 6, 20), {"team": "ads"})], bedrock, causes)


def test_a_creep_is_found_within_ten_days_with_its_projection_and_organic_growth_is_not() -> None:
    values = weekly(120, seed=3)
    for d in range(70, 120):
        values[d] *= 1.03 ** (d - 69)  # +3% a day from day 70
    first = next(end for end in range(71, 121) if any(a.pattern == "creep"
                                                      for a in scan(values[:end])))  # fmt: skip
    assert first - 1 - 70 <= 10
    [a] = [a for a in scan(values[:first]) if a.pattern == "creep"]
    assert a.start >= 70 and 0.01 <= a.growth <= 0.04  # the trend just begun: a first estimate
    [later] = scan(values[:100])
    assert (later.start, later.pattern) == (a.start, "creep")
    assert later.growth == pytest.approx(0.03, abs=0.003)
    evidence = shape_evidence(a)
    assert evidence["projected_month"] > 30 * a.level  # growing: more than flat at its level
    assert evidence["projected_month_excess"] > 0 and evidence["pattern"] == "creep"
    organic = weekly(240, seed=4)
    grown = [v * 1.001**d for d, v in enumerate(organic)]  # +3% a month, steadily
    assert scan(grown) == []


def test_a_small_sustained_rise_is_found_by_its_total() -> None:
    values = weekly(90, seed=5, level=300.0, noise=0.04)
    for d in range(60, 66):
        values[d] += 75.0  # +25%: $75 a day for six days, under the $100 daily gate
    [a] = scan(values)
    assert (a.start, a.end) == (60, 65)
    assert a.impact == pytest.approx(450, rel=0.3)


def test_a_recent_peak_does_not_hide_a_later_change() -> None:
    values = weekly(120, seed=6)
    values[50] *= 5  # an incident's peak, found
    for d in range(70, 120):
        values[d] *= 2  # a later doubling: under the old peak, still news
    found = scan(values)
    assert [a.start for a in found] == [50, 70]
    assert found[1].open


def test_a_sub_daily_series_is_judged_after_a_day() -> None:
    hourly = Settings(season=24, seasons=7, history=48, peaks=168, warmup=24, creep_window=72)
    rng = Random(7)
    values = [100.0 * (1.5 if 9 <= h % 24 <= 17 else 1.0) * rng.uniform(0.95, 1.05)
              for h in range(40)]  # fmt: skip
    values[30] = 800.0  # in the second day
    assert [a.start for a in scan(values, hourly)] == [30]


def test_drops_are_found_where_they_matter_and_unit_free_series_have_no_dollar_gate() -> None:
    rate = [0.99 * Random(d).uniform(0.995, 1.005) for d in range(70)]
    rate[60:63] = [0.52, 0.48, 0.55]  # a success-rate crash
    down = Settings(min_impact=0, min_total_impact=0, direction="down")
    [a] = scan(rate, down)
    assert (a.start, a.end, a.pattern) == (60, 62, "drop")
    assert scan(rate) == []  # looking for rises (and in dollars): nothing
    util = [40.0 * Random(d).uniform(0.95, 1.05) for d in range(70)]
    util[60:66] = [85.0] * 6
    assert scan(util) == []  # 45 points of a percent are no $100
    assert [x.start for x in scan(util, UNIT_FREE)] == [60]
    assert [direction_of(m) for m in ("inference_successes", "purchases", "cache_hit_rate",
            "latency_p95_ms", "error_rate", "gpu_utilization_pct")] == [
        "down", "down", "down", "up", "up", "both"]  # fmt: skip
    assert direction_of("purchases", {"purchases": "up"}) == "up"


def test_the_metrics_detector_finds_a_crash_and_a_utilization_shift(tmp_path: Path) -> None:
    rows = []
    for d in range(90):
        day = DAY0 + dt.timedelta(days=d)
        ok = 0.99 * Random(d).uniform(0.995, 1.005) * (0.5 if 80 <= d < 83 else 1.0)
        rows.append({"ts": f"{day}T00:00:00Z", "metric": "success_rate", "value": ok,
                     "labels": {"endpoint": "chat"}})  # fmt: skip
        for hour in (0, 12):  # two samples a day: averaged, a percent
            busy = 40 * Random(d * 2 + hour).uniform(0.95, 1.05) + (45 if d >= 84 else 0)
            rows.append({"ts": f"{day}T{hour:02d}:00:00Z", "metric": "gpu_utilization_pct",
                         "value": busy, "labels": {"resource": "gpu-7"}})  # fmt: skip
    csv = tmp_path / "metrics.jsonl"
    csv.write_text("".join(json.dumps(r) + "\n" for r in rows))
    end = dt.datetime.combine(DAY0 + dt.timedelta(days=90), dt.time(), dt.UTC)
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as ledger:
        ingest_files(ledger, [csv], METRICS)
        found = detect_metrics(ledger.table("metrics"), end - dt.timedelta(days=30), end,
                               clock=FixedClock(end))  # fmt: skip
    by_signal = {f.evidence["signal"]: f for f in found}
    assert set(by_signal) == {"metric:success_rate", "metric:gpu_utilization_pct"}
    crash, busy = by_signal["metric:success_rate"], by_signal["metric:gpu_utilization_pct"]
    assert crash.scope == {"metric": "success_rate", "endpoint": "chat"}
    assert (crash.evidence["direction"], crash.evidence["pattern"]) == ("down", "drop")
    assert crash.evidence["start"][:10] == "2026-08-20" and crash.impact_usd is None
    assert crash.evidence["change_pct"] == pytest.approx(-50, abs=2)
    assert (busy.evidence["direction"], busy.evidence["open"]) == ("up", True)
    assert busy.evidence["start"][:10] == "2026-08-24"
    assert busy.scope == {"metric": "gpu_utilization_pct", "resource": "gpu-7"}
