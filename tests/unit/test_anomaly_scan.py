"""`scan` and `scan_many` (numpy) against the method as it was first written, point by point."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from random import Random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from costline.detect import anomaly
from costline.detect.anomaly import MAD_TO_SIGMA, Anomaly, Settings, scan, scan_many
from costline.detect.episodes import Candidate, assemble_row
from costline.detect.spend import find_anomalies
from costline.detect.trend import creep_at


def reference_expected(x: Sequence[float], t: int, s: Settings) -> float:
    phased = s.seasons >= 1 and s.season >= 1
    same_phase = [x[t - k * s.season] for k in range(1, s.seasons + 1)
                  if phased and t - k * s.season >= 0]  # fmt: skip
    return statistics.median(same_phase or x[max(0, t - s.history) : t])


def reference_candidates(values: Sequence[float], s: Settings) -> list[Candidate]:
    """Each point's gates (see `detect.anomaly`), one point at a time in plain Python."""
    sgn = -1.0 if s.direction == "down" else 1.0
    x = [sgn * v for v in values]
    out: list[Candidate] = []
    for t in range(max(s.warmup, 1), len(x)):
        expected = reference_expected(x, t, s)
        excess, plain = x[t] - expected, sgn * expected
        if excess <= 0 or (plain <= 0 and values[t] <= 0):
            continue
        if plain > 0 and excess / plain * 100 < s.min_pct:
            continue
        history = x[max(0, t - s.history) : t]
        center = statistics.median(history)
        mad = statistics.median(abs(v - center) for v in history) * MAD_TO_SIGMA
        z = excess / mad if mad > 0 else float("inf")
        if z < s.weak_z:
            continue
        past = x[max(0, t - s.peaks) : t]
        spikes = sum(1 for v in past if v - center > max(s.z * mad, s.min_impact))
        margin = s.spiky_new_high if spikes >= s.spiky else s.new_high
        beats = x[t] > max(past) + margin * abs(max(past))
        out.append((t, excess, z, excess >= s.min_impact and z >= s.z, beats, margin))
    return out


def reference_scan(
    values: Sequence[float],
    settings: Settings | None = None,
    rebases: Sequence[int] = (),
    monthly: Sequence[int] = (),
) -> list[Anomaly]:
    """The scan in plain Python: each point's gates and trend one at a time, then the same
    sequential part (`episodes.assemble_row`, whose behaviour the tests of test_detect check)."""
    s = settings or Settings()
    if len(values) <= max(s.warmup, 1):
        return []
    creeps = {t: g for t in range(max(s.warmup, 1), len(values))
              if (g := creep_at(values, t, s)) is not None}  # fmt: skip
    return assemble_row(values, reference_candidates(values, s), creeps, rebases, s, monthly)


def _close(x: float, y: float) -> bool:
    return x == y or math.isclose(x, y, rel_tol=1e-9)


def assert_same(got: Sequence[Anomaly], want: Sequence[Anomaly]) -> None:
    assert [(a.start, a.end, a.points) for a in got] == [(a.start, a.end, a.points) for a in want]
    for g, w in zip(got, want, strict=True):
        assert (g.pattern, g.open) == (w.pattern, w.open)
        for name in ("impact", "observed", "expected", "peak_z", "baseline", "growth"):
            assert _close(getattr(g, name), getattr(w, name)), (name, g, w)


SETTINGS = [
    Settings(),
    Settings(season=24, history=48, peaks=96, warmup=24),  # hourly: judged from point 96
    Settings(min_impact=1.0, min_pct=5.0, z=2.0, min_total_impact=0.0, gap=0),
    Settings(min_impact=10.0, new_high=0.0, spiky=1, gap=3, min_total_impact=50.0),
    Settings(
        season=7, seasons=3, history=9, peaks=5, warmup=10, min_impact=5.0, min_total_impact=0
    ),
    Settings(seasons=0, history=14, warmup=14, peaks=20, min_impact=20.0, z=3.0),
    Settings(direction="down", min_impact=0.0, min_total_impact=0.0, creep_pct=20.0),
    Settings(season=24, history=24, peaks=48, warmup=24, creep_window=72, sustain=4),
]
KINDS = ("flat", "seasonal", "spiky", "zero", "negative", "ties", "trend")


def _segment(kind: str, start: int, n: int, level: float, rng: Random) -> list[float]:
    ts = range(start, start + n)
    if kind == "flat":
        return [level] * n
    if kind == "seasonal":
        period = rng.choice((7, 24))
        return [
            level * (0.7 if t % period in (5, 6) else 1.0) * rng.uniform(0.95, 1.05) for t in ts
        ]
    if kind == "spiky":
        return [level * rng.uniform(0.9, 1.1) * (rng.uniform(2, 8) if rng.random() < 0.1 else 1) for _ in ts]  # fmt: skip
    if kind == "zero":
        return [0.0] * n
    if kind == "trend":  # a creep (or a decay) of a few percent a point
        rate = rng.choice((0.97, 1.03, 1.05))
        return [level * rate**i * rng.uniform(0.97, 1.03) for i in range(n)]
    if kind == "negative":  # credits and refunds
        return [-level * rng.uniform(0.5, 1.5) for _ in ts]
    return [float(round(level * rng.choice((0.9, 1.0, 1.0, 1.1, 3.0)))) for _ in ts]  # ties: MAD 0


@st.composite
def series(draw: st.DrawFn, length: int) -> list[float]:
    out: list[float] = []
    while len(out) < length:
        kind = draw(st.sampled_from(KINDS))
        n = draw(st.integers(1, 50))
        level = draw(st.sampled_from([1.0, 50.0, 100.0, 300.0, 1000.0, 25_000.0]))
        seed = draw(st.integers(0, 2**16))
        out += _segment(kind, len(out), n, level, Random(seed))
    return out[:length]


@given(data=st.data())
@hypothesis_settings(max_examples=300, deadline=None)
def test_scan_and_scan_many_equal_the_reference(data: st.DataObject) -> None:
    s = data.draw(st.sampled_from(SETTINGS))
    n = data.draw(st.integers(0, 120))
    rows = data.draw(st.lists(series(n), min_size=1, max_size=4))
    rebases = [data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=2)) for _ in rows]
    monthly = [t - 30 if t >= 30 else -1 for t in range(n)] if data.draw(st.booleans()) else []
    want = [reference_scan(r, s, b, monthly) for r, b in zip(rows, rebases, strict=True)]
    got = scan_many(np.array(rows, dtype=np.float64).reshape(len(rows), n), s, rebases, monthly)
    assert len(got) == len(rows)
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)
    for r, b, w in zip(rows, rebases, want, strict=True):
        assert_same(scan(r, s, b, monthly), w)


def _weekly(days: int, seed: int, level: float = 1000.0) -> list[float]:
    rng = Random(seed)
    return [level * (0.72 if d % 7 in (5, 6) else 1.0) * rng.uniform(0.9, 1.1) for d in range(days)]


def test_a_block_of_series_finds_each_ones_anomalies_with_their_numbers() -> None:
    spike = [100.0] * 50 + [400.0, 380.0] + [100.0] * 5
    quiet = [100.0] * 57
    noisy = _weekly(57, seed=4)
    noisy[45] += 2000.0
    [[a], none, [b]] = scan_many([spike, quiet, noisy])
    assert (a.start, a.end, a.points, a.impact, a.observed, a.expected) == (
        50, 51, [50, 51], 580.0, 780.0, 200.0
    )  # fmt: skip
    assert a.peak_z == math.inf  # a flat history has no spread: any excess is infinitely unusual
    assert none == []
    assert (b.start, b.end) == (45, 45) and b.impact == pytest.approx(2000, rel=0.1)
    assert [scan(r) for r in (spike, quiet, noisy)] == [[a], [], [b]]


def test_a_point_continuing_an_anomaly_skips_the_new_high_test() -> None:
    values = [100.0] * 60
    values[40] = 400.0  # an earlier peak, within `peaks`
    values[50], values[52] = 500.0, 420.0  # 420 is no new high (< 1.1 x 400), but it continues
    [a] = scan(values)
    assert (a.start, a.end, a.points, a.impact) == (50, 52, [50, 52], 720.0)
    [alone] = scan(
        values, Settings(gap=0)
    )  # two apart, gap 0: 52 would start its own, and isn't new
    assert alone.points == [50]
    assert_same(scan(values), reference_scan(values))


def test_blocks_of_one_row_give_the_same_as_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_weekly(120, seed) for seed in range(6)]
    for i, r in enumerate(rows):
        r[60 + i : 63 + i] = [v * 3 for v in r[60 + i : 63 + i]]
    whole = scan_many(rows)
    monkeypatch.setattr(anomaly, "CHUNK_BYTES", 1)
    assert scan_many(rows) == whole
    assert all(len(found) == 1 for found in whole)


def test_find_anomalies_scans_the_series_of_each_length_as_one_block() -> None:
    series = {("team", f"t{i}"): _weekly(90 + i % 2 * 10, seed=i) for i in range(6)}
    for i, values in enumerate(series.values()):
        values[70 + i] *= 3
    origin = dt.date(2026, 1, 1)
    found = find_anomalies(series, origin, Settings())
    want = sorted(
        ((dim, value, a) for (dim, value), v in series.items() for a in reference_scan(v)),
        key=lambda x: -x[2].impact,
    )
    assert len(found) == 6
    assert [(f.dimension, f.value, f.start) for f in found] == [
        (dim, value, origin + dt.timedelta(days=a.start)) for dim, value, a in want
    ]
    assert_same([f.anomaly for f in found], [a for _, _, a in want])


def test_short_series_bad_shapes_and_bad_settings() -> None:
    assert scan([]) == [] and scan([5.0] * 10) == []
    assert scan_many(np.zeros((3, 0))) == [[], [], []]
    with pytest.raises(ValueError, match="2-D"):
        scan_many([1.0, 2.0])
    with pytest.raises(ValueError, match="history is 0"):
        scan([100.0] * 60, Settings(history=0))
