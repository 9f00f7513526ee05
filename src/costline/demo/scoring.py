"""Score detection on a scenario the way a daily job runs it: once a day, on the data so far.

    >>> scores = score(Path("/tmp/scenario-1000"))                       # doctest: +SKIP
    >>> round(scores.incident_recall, 2), round(scores.precision, 2)     # doctest: +SKIP
    (0.9, 0.95)

`score(scenario_dir)` ingests the scenario (`costline.demo.scenario`) into a real ledger in a
temporary folder with the code `costline ingest focus|metrics|annotations`
use, then for every day from the end of the warm-up to the last one runs
`costline.detect.daily.detect_all` (or the `detector` given, of the same signature) with the clock
at the end of that day, while the ledger shows only the lines, metrics and annotations up to it
(the later ones are deleted in a transaction rolled back after the run), and stores each run's
findings in the ledger's findings store, where they merge by fingerprint as in production.

A finding matches an incident when its window overlaps the incident's (or starts the day after
it ended) and names the incident: for a spend incident, its scope holds one of its dimension values
(resource, usage_type, account, team, service, region), or its root cause names the incident's
resource or SKU; for a metric incident, it names the metric and an identifying label (endpoint,
app, resource). A finding is true when it matches any incident an alert is expected for; its
dollars and its count go to the one incident it names most closely (`best_match`), so a team's
finding is not counted for every incident of the team. The scores (`Scores`) are those issue 15
sets targets for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from costline.clock import FixedClock
from costline.config import Config, load_config
from costline.demo.scenario import GROUND_TRUTH_FILE
from costline.ledger import fetch
from costline.ledger.sql import run
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.pipeline import ingest_files, ingest_focus
from costline.sources.annotations import ANNOTATIONS
from costline.sources.metrics import METRICS

DAY = dt.timedelta(days=1)
BROAD_LABELS = ("team", "service", "model")  # labels many series share: they identify nothing
CAUSE_KEYS = ("resource", "usage_type")  # root-cause values that identify a spend incident
SPECIFIC = ("resource", "usage_type", "account", "team", "service", "region")  # closest first

Detector = Callable[..., list[Finding]]  # detect_all(ledger, config, *, end, clock) -> findings


@dataclass(frozen=True)
class IncidentScore:
    id: str
    kind: str
    alert_expected: bool
    wasted_usd: Decimal | None
    reported_usd: Decimal  # the impact its matched findings report (see `reported`)
    findings: int  # stored findings that match it
    days_to_detect: int | None  # first run day with a matching finding, minus its start


@dataclass(frozen=True)
class Scores:
    """Scores of one scenario or, from `Scores.total`, of several."""

    seeds: tuple[int, ...]
    incidents: tuple[IncidentScore, ...]
    findings: int  # detection findings stored (findings calling an annotated launch value aside)
    true_findings: int  # of those, the ones matching an incident an alert is expected for
    launch_alerts: int  # findings matching an annotated launch, not calling it value
    runs: int = 0
    detect_seconds: float = 0.0  # in the detector, all runs together
    run_seconds: float = 0.0  # in each day's run (hiding the future, detecting, storing)

    @classmethod
    def total(cls, parts: Sequence[Scores]) -> Scores:
        return cls(tuple(s for p in parts for s in p.seeds),
                   tuple(i for p in parts for i in p.incidents),
                   sum(p.findings for p in parts), sum(p.true_findings for p in parts),
                   sum(p.launch_alerts for p in parts), sum(p.runs for p in parts),
                   sum(p.detect_seconds for p in parts),
                   sum(p.run_seconds for p in parts))  # fmt: skip

    @property
    def expected(self) -> list[IncidentScore]:
        return [i for i in self.incidents if i.alert_expected]

    @property
    def found(self) -> list[IncidentScore]:
        return [i for i in self.expected if i.days_to_detect is not None]

    @property
    def incident_recall(self) -> float:
        return len(self.found) / len(self.expected) if self.expected else 1.0

    @property
    def dollar_recall(self) -> float:
        waste = [i for i in self.expected if i.wasted_usd]
        truth = sum((i.wasted_usd or Decimal(0) for i in waste), Decimal(0))
        got = sum((min(i.reported_usd, i.wasted_usd or Decimal(0)) for i in waste), Decimal(0))
        return float(got / truth) if truth else 1.0

    @property
    def precision(self) -> float:
        return self.true_findings / self.findings if self.findings else 1.0

    @property
    def findings_per_incident(self) -> float:
        found = self.found
        return sum(i.findings for i in found) / len(found) if found else 0.0

    def days_to_detect(self, kind: str | None = None) -> list[int]:
        return [i.days_to_detect for i in self.found
                if i.days_to_detect is not None and kind in (None, i.kind)]  # fmt: skip

    @property
    def seconds_per_run(self) -> float:
        return self.run_seconds / self.runs if self.runs else 0.0

    def summary(self) -> dict[str, Any]:
        """The scores as one flat row (ratios rounded), as the bench and the docs print them."""
        days = self.days_to_detect()
        return {
            "seeds": len(self.seeds), "incidents": len(self.expected), "found": len(self.found),
            "incident_recall": round(self.incident_recall, 3),
            "dollar_recall": round(self.dollar_recall, 3),
            "precision": round(self.precision, 3), "findings": self.findings,
            "findings_per_incident": round(self.findings_per_incident, 2),
            "mean_days_to_detect": round(sum(days) / len(days), 1) if days else None,
            "max_creep_days": max(self.days_to_detect("slow_creep"), default=None),
            "launch_alerts": self.launch_alerts,
            "s_per_run": round(self.seconds_per_run, 3),
        }  # fmt: skip


def _at(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _values(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def strength(
    finding: Finding, incident: Mapping[str, Any], window_end: dt.datetime
) -> float | None:
    """How closely `finding` names `incident` (see the module), lower is closer: the rank of the
    most specific dimension they share (resource first, region last; a root cause's half a rank
    behind the scope's); None when they do not match."""
    if finding.window is None:
        return None
    start = _at(incident["start"])
    end = _at(incident["end"]) or window_end
    assert start is not None
    if not (finding.window.start < end + DAY and finding.window.end > start):
        return None
    scope = incident["scope"]
    causes = finding.evidence.get("root_cause")
    named = [(str(c["dimension"]), str(c["value"])) for c in causes or []
             if isinstance(c, dict)] if isinstance(causes, list) else []  # fmt: skip
    if "metric" in scope:
        said = {*finding.scope.values(), *(v for _, v in named),
                *(str(finding.evidence.get(k)) for k in ("signal", "metric"))}  # fmt: skip
        ids = [v for k, v in scope.items() if k != "metric" and k not in BROAD_LABELS]
        return 0.0 if scope["metric"] in said and any(v in said for v in ids) else None
    ranks = [float(SPECIFIC.index(k)) for k, v in finding.scope.items()
             if k in scope and k in SPECIFIC and v in _values(scope[k])]  # fmt: skip
    ranks += [SPECIFIC.index(k) + 0.5 for k, v in named
              if k in CAUSE_KEYS and k in scope and v in _values(scope[k])]  # fmt: skip
    return min(ranks, default=None)


def matches(finding: Finding, incident: Mapping[str, Any], window_end: dt.datetime) -> bool:
    """Whether `finding` is about `incident`: same time, and it names it."""
    return strength(finding, incident, window_end) is not None


def best_match(
    finding: Finding, incidents: Sequence[Mapping[str, Any]], window_end: dt.datetime
) -> str | None:
    """The id of the incident `finding` names most closely (a team's finding while two of its
    incidents run is about the one it names by resource, else the first), or None."""
    ranked = [(r, n) for n, i in enumerate(incidents)
              if (r := strength(finding, i, window_end)) is not None]  # fmt: skip
    return str(incidents[min(ranked)[1]]["id"]) if ranked else None


def reported(findings: Sequence[Finding]) -> Decimal:
    """The impact a set of matching findings reports: per kind of scope (its dimensions), the sum
    of its findings' impacts; the largest of those. One incident seen per service and per team
    is not twice the dollars; one seen as two episodes on one scope is their sum."""
    sums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for f in findings:
        sums[tuple(sorted(f.scope))] += f.impact_usd or Decimal(0)
    return max(sums.values(), default=Decimal(0))


def ingest(ledger: Ledger, root: Path) -> None:
    """The scenario's bills, metrics and annotations, through `costline ingest`'s code."""
    ingest_focus(ledger, sorted((root / "billing").rglob("*.csv")))
    ingest_files(ledger, [root / "metrics" / "daily.csv"], METRICS)
    ingest_files(ledger, [root / "annotations.yaml"], ANNOTATIONS)


@contextlib.contextmanager
def visible_until(ledger: Ledger, end: dt.datetime) -> Iterator[None]:
    """The ledger as a run at `end` sees it: lines, metrics and annotations from `end` on are
    deleted in a transaction that is rolled back afterwards."""
    shapes = run(ledger.con, "SELECT table_name FROM information_schema.tables "
                             "WHERE table_schema = 'parts'")  # fmt: skip
    run(ledger.con, "BEGIN TRANSACTION")
    try:
        for (name,) in shapes:
            run(ledger.con, f'DELETE FROM parts."{name}" WHERE "ChargePeriodStart" >= ?', [end])
        run(ledger.con, "DELETE FROM metrics WHERE ts >= ?", [end])
        run(ledger.con, "DELETE FROM annotations WHERE ts >= ?", [end])
        yield
    finally:
        run(ledger.con, "ROLLBACK")


@dataclass
class _Run:
    truth: dict[str, Any]
    window_end: dt.datetime
    first_day: dict[str, int] = field(default_factory=dict)
    fingerprints: set[str] = field(default_factory=set)
    runs: int = 0
    detect_seconds: float = 0.0
    run_seconds: float = 0.0

    def day(self, ledger: Ledger, config: Config, detector: Detector, day: int) -> None:
        """One daily run: the data up to the end of `day`, detection, its findings stored."""
        started = time.perf_counter()
        origin = _at(self.truth["window"]["start"])
        assert origin is not None
        end = origin + (day + 1) * DAY
        clock = FixedClock(end)
        with visible_until(ledger, end):
            t = time.perf_counter()
            found = detector(ledger, config, end=end, clock=clock)
            self.detect_seconds += time.perf_counter() - t
        ledger.write([], source="detect", findings=found)
        starts = {i["id"]: _at(i["start"]) for i in self.truth["incidents"]}
        for f in found:
            self.fingerprints.add(f.fingerprint)
            about = best_match(f, self.truth["incidents"], self.window_end)
            start = starts.get(about or "")
            if (
                about is not None
                and about not in self.first_day
                and start is not None
                and end - DAY >= start
            ):  # a run that has seen the incident's first day
                self.first_day[about] = (end - DAY - start).days
        self.runs += 1
        self.run_seconds += time.perf_counter() - started


def score(scenario_dir: Path, detector: Detector | None = None) -> Scores:
    """Run `detector` (default `detect_all`) once a day over the scenario and score what it
    stored against the scenario's ground truth."""
    if detector is None:
        from costline.detect.daily import detect_all

        detector = detect_all
    truth = json.loads((scenario_dir / GROUND_TRUTH_FILE).read_text(encoding="utf-8"))
    window_end = _at(truth["window"]["end"])
    assert window_end is not None
    state = _Run(truth, window_end)
    with (
        tempfile.TemporaryDirectory(prefix="costline-score-") as tmp,
        Ledger(f"duckdb://{Path(tmp) / 'ledger.duckdb'}") as ledger,
    ):
        ingest(ledger, scenario_dir)
        config = load_config(scenario_dir / "costline.yaml")
        for day in range(truth["warmup_days"], truth["days"]):
            state.day(ledger, config, detector, day)
        stored = _stored(ledger, state.fingerprints)
    return _scores(truth, state, stored)


def _stored(ledger: Ledger, fingerprints: set[str]) -> list[Finding]:
    t = ledger.table("findings")
    bodies = fetch.rows(t.filter(t.fingerprint.isin(sorted(fingerprints))).select("body"))
    return [Finding.model_validate_json(r["body"]) for r in bodies] if fingerprints else []


def _scores(truth: dict[str, Any], state: _Run, stored: list[Finding]) -> Scores:
    alert = [i for i in truth["incidents"] if i["alert_expected"]]
    quiet = [i for i in truth["incidents"] if not i["alert_expected"]]
    counted = true = launch_alerts = 0
    for f in stored:
        if any(matches(f, i, state.window_end) for i in alert):
            counted, true = counted + 1, true + 1
        elif any(matches(f, i, state.window_end) for i in quiet):
            if f.evidence.get("verdict") != "value":  # called value: right, and no alert
                counted, launch_alerts = counted + 1, launch_alerts + 1
        else:
            counted += 1
    about = [best_match(f, truth["incidents"], state.window_end) for f in stored]
    incidents = []
    for i in truth["incidents"]:
        mine = [f for f, a in zip(stored, about, strict=True) if a == i["id"]]
        wasted = Decimal(i["wasted_usd"]) if i["wasted_usd"] is not None else None
        incidents.append(IncidentScore(i["id"], i["kind"], i["alert_expected"], wasted,
                                       reported(mine), len(mine), state.first_day.get(i["id"])))  # fmt: skip
    return Scores((truth["seed"],), tuple(incidents), counted, true, launch_alerts,
                  state.runs, state.detect_seconds, state.run_seconds)  # fmt: skip
