"""Scenarios of many shapes with known incidents, and detection scored on them as a daily job runs.

The generator (`costline.demo.scenario`) is checked against its own files: the same seed gives the
same bytes, each incident's wasted dollars are the bills' excess over the same organization without
incidents, to the cent. The scorer (`costline.demo.scoring`) is checked with an oracle built from
the ground truth (every score perfect), a detector that finds nothing (recall 0), and a spy that
sees only the data up to its day. Then costline's detector is held to issue 15's targets on the
held-out seeds 1000-1004.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costline.clock import Clock
from costline.config import Config
from costline.demo.scenario import Scenario, generate
from costline.demo.scenario_incidents import KINDS
from costline.demo.scenario_series import SHAPES, baseline
from costline.demo.scoring import Detector, Scores, ingest, score
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind, Window

HELD_OUT = ((1000, "steady"), (1001, "seasonal"), (1002, "growing"), (1003, "noisy"),
            (1004, "mixed"))  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_same_seed_and_shape_give_the_same_bytes(tmp_path: Path) -> None:
    a = generate(7, tmp_path / "a", shape="seasonal")
    b = generate(7, tmp_path / "b", shape="seasonal")
    c = generate(8, tmp_path / "c", shape="seasonal")
    assert _files(a.root) == _files(b.root)
    assert _files(a.root)["ground_truth.json"] != _files(c.root)["ground_truth.json"]
    assert a.billing_files and a.metrics_file.exists() and a.annotations_file.exists()


def _lines(s: Scenario) -> dict[tuple[str, str, str], Decimal]:
    """(ResourceId, SkuId, day) -> EffectiveCost of the scenario's bills, read as text."""
    out: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for path in s.billing_files:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                assert row["ChargeDescription"] and row["SkuPriceDetails"] and row["ServiceName"]
                key = (row["ResourceId"], row["SkuId"], row["ChargePeriodStart"][:10])
                out[key] += Decimal(row["EffectiveCost"])
    return out


@pytest.mark.parametrize(("seed", "shape"), [(3, "mixed"), (11, "noisy")])
def test_wasted_dollars_are_the_bills_excess_to_the_cent(
    tmp_path: Path, seed: int, shape: str
) -> None:
    with_ = generate(seed, tmp_path / "with", shape=shape)
    without = generate(seed, tmp_path / "without", shape=shape, incidents=False)
    assert json.loads(without.ground_truth.read_text())["incidents"] == []
    billed, plain = _lines(with_), _lines(without)
    diff = {k: billed[k] - plain.get(k, Decimal(0)) for k in billed}
    assert all(v >= 0 for v in diff.values()) and plain.keys() <= billed.keys()
    accounted = Decimal(0)
    for i in with_.incidents:
        if i["excess_usd"] is None:
            assert "metric" in i["scope"] and i["wasted_usd"] is None
            continue
        rids = i["scope"]["resource"]
        rids = rids if isinstance(rids, list) else [rids]
        first = i["start"][:10]
        last = (i["end"] or with_.end.isoformat() + "T")[:10]
        excess = sum((v for (r, sku, day), v in diff.items() if r in rids
                      and sku == i["scope"]["usage_type"] and first <= day < last), Decimal(0))  # fmt: skip
        assert excess == Decimal(i["excess_usd"]) > 0, i["id"]
        if i["alert_expected"]:
            assert i["wasted_usd"] == i["excess_usd"]
        else:
            assert i["kind"] == "launch_surge" and i["wasted_usd"] is None
        accounted += excess
    assert accounted == sum(diff.values())  # no excess outside the incidents


def test_every_kind_appears_across_seeds_and_each_scenario_has_8_to_14(tmp_path: Path) -> None:
    kinds: set[str] = set()
    for seed in range(6):
        s = generate(seed, tmp_path / str(seed))
        assert 8 <= len(s.incidents) <= 14
        assert len({i["kind"] for i in s.incidents}) >= 8
        shape = SHAPES[s.shape]
        assert shape.days[0] <= s.days <= shape.days[1]
        kinds |= {i["kind"] for i in s.incidents}
        truth = json.loads(s.ground_truth.read_text())
        assert all(_at(i["start"]).date() >= s.start + dt.timedelta(days=truth["warmup_days"])
                   for i in truth["incidents"])  # fmt: skip
        launches = [i for i in s.incidents if i["kind"] == "launch_surge"]
        notes = s.annotations_file.read_text()
        assert all(i["start"][:10] in notes for i in launches)
    assert kinds == set(KINDS)


def _stats(seed: int, name: str) -> tuple[int, int, float, float]:
    """Series, days, median day-to-day variation, median growth over the window."""
    b = baseline(seed, SHAPES[name])
    steps = sorted(abs(s.base[d + 7] / s.base[d] - 1) for s in b.series for d in range(0, 21))
    growth = sorted(sum(s.base[-14:]) / sum(s.base[:14]) for s in b.series)
    return len(b.series), b.days, steps[len(steps) // 2], growth[len(growth) // 2]


def test_shapes_differ_in_size_noise_and_growth() -> None:
    stats = {name: [_stats(seed, name) for seed in range(4)] for name in SHAPES}
    for name, rows in stats.items():
        shape = SHAPES[name]
        assert all(shape.series[0] <= n <= shape.series[1] + 12 for n, _, _, _ in rows)
    mean = {name: [sum(r[k] for r in rows) / len(rows) for k in range(4)]
            for name, rows in stats.items()}  # fmt: skip
    assert mean["noisy"][0] > 2 * mean["steady"][0]  # more series
    assert mean["noisy"][2] > 2 * mean["steady"][2]  # noisier from week to week
    assert mean["growing"][3] > mean["steady"][3] + 0.2  # grows over the window
    lengths = {r[1] for rows in stats.values() for r in rows}
    assert len(lengths) >= 8  # lengths vary by seed and shape


def _oracle(truth: dict[str, Any], *, launches: bool = False) -> Detector:
    """A detector that knows the ground truth: one finding per incident from its first day, with
    its whole waste; with `launches`, it also alerts on annotated launches (wrongly)."""

    def detect(ledger: Ledger, config: Config, *, end: dt.datetime, clock: Clock,
               **_: Any) -> list[Finding]:  # fmt: skip
        out = []
        for i in truth["incidents"]:
            start = _at(i["start"])
            if start >= end or not (i["alert_expected"] or launches):
                continue
            finish = min(_at(i["end"]) if i["end"] else end, end)
            scope = i["scope"]
            rid = scope.get("resource")
            named = dict(scope) if "metric" in scope else {
                "resource": rid[0] if isinstance(rid, list) else rid}  # fmt: skip
            out.append(Finding.new(
                kind=FindingKind.ANOMALY, scope=named, dedup_key=f"oracle:{i['id']}",
                clock=clock, title=f"{i['kind']} {i['id']}", severity="warning",
                window=Window(start=start, end=finish),
                impact_usd=Decimal(i["wasted_usd"]) if i["wasted_usd"] else None,
                evidence={"verdict": "waste"},
            ))  # fmt: skip
        return out

    return detect


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return generate(21, tmp_path_factory.mktemp("scenario") / "21", shape="steady")


def test_an_oracle_scores_perfectly_and_sees_only_the_days_so_far(small: Scenario) -> None:
    truth = json.loads(small.ground_truth.read_text())
    oracle = _oracle(truth)
    seen: list[tuple[dt.datetime, Any, Any]] = []

    def spy(ledger: Ledger, config: Config, *, end: dt.datetime, clock: Clock,
            **kw: Any) -> list[Finding]:  # fmt: skip
        lines, metrics = ledger.table("cost_lines"), ledger.table("metrics")
        seen.append((end, fetch.rows(lines.aggregate(last=lines.ChargePeriodStart.max()))[0]["last"],
                     fetch.rows(metrics.aggregate(last=metrics.ts.max()))[0]["last"]))  # fmt: skip
        return oracle(ledger, config, end=end, clock=clock, **kw)

    s = score(small.root, spy)
    assert s.runs == truth["days"] - truth["warmup_days"] == len(seen)
    assert all(last_line == last_metric == end - dt.timedelta(days=1)
               for end, last_line, last_metric in seen)  # fmt: skip
    assert (s.incident_recall, s.dollar_recall, s.precision) == (1.0, 1.0, 1.0)
    assert s.findings_per_incident == 1.0 and s.launch_alerts == 0
    assert s.days_to_detect() == [0] * len(s.expected) and len(s.expected) >= 7
    assert s.findings == len(s.expected)  # merged by fingerprint: one stored per incident


def _nothing(ledger: Ledger, config: Config, **_: Any) -> list[Finding]:
    return []


def test_finding_nothing_scores_zero_and_alerting_on_a_launch_is_counted(small: Scenario) -> None:
    truth = json.loads(small.ground_truth.read_text())
    nothing = score(small.root, _nothing)
    assert (nothing.incident_recall, nothing.dollar_recall, nothing.findings) == (0.0, 0.0, 0)
    launches = sum(not i["alert_expected"] for i in truth["incidents"])
    loud = score(small.root, _oracle(truth, launches=True))
    assert loud.launch_alerts == launches >= 1
    assert loud.precision == pytest.approx(len(loud.expected) / (len(loud.expected) + launches))


def test_the_ledger_holds_the_bills_as_written(small: Scenario, tmp_path: Path) -> None:
    with Ledger(f"duckdb://{tmp_path / 'l.duckdb'}") as ledger:
        ingest(ledger, small.root)
        t = ledger.table("cost_lines")
        row = fetch.rows(t.aggregate(n=t.count(), cost=t.EffectiveCost.sum(),
                                     described=t.SkuPriceDetails.count()))[0]  # fmt: skip
    written = _lines(small)
    assert row["n"] == row["described"] == len(written)
    assert row["cost"] == sum(written.values())


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Scores:
    root = tmp_path_factory.mktemp("held-out")
    return Scores.total([score(generate(seed, root / str(seed), shape=shape).root)
                         for seed, shape in HELD_OUT])  # fmt: skip


@pytest.mark.xfail(
    reason="issue 15: incident recall (77% on 1000-1009) and creep delay (24 days) below target",
    strict=True,
)
def test_costline_meets_issue_15_targets_on_held_out_seeds(held_out: Scores) -> None:
    s = held_out
    assert s.incident_recall >= 0.90, s.summary()
    assert s.dollar_recall >= 0.95, s.summary()
    assert s.precision >= 0.90, s.summary()
    assert max(s.days_to_detect("slow_creep"), default=0) <= 10, s.summary()
    assert len(s.days_to_detect("slow_creep")) == sum(i.kind == "slow_creep" for i in s.expected)
    assert s.launch_alerts == 0, s.summary()
    assert s.findings_per_incident <= 1.25, s.summary()
