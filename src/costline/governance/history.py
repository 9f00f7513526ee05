"""How long similar runs actually took against what they expected: the P50/P90 of an estimate.

A past run says what it expected in its tag `expected_hours` (a run launched from a manifest
carries it). The ratio of its wall-clock hours (`end - start`) to that is computed in the engine
for the finished runs of the manifest's team and kind; with fewer than `MIN_RUNS` of those, of
its kind in any team; with fewer still, the assumption is stated: P50 = 1.0x, P90 = 1.3x.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ibis

EXPECTED_TAG = "expected_hours"
MIN_RUNS = 5
ASSUMED_P50 = Decimal("1.0")
ASSUMED_P90 = Decimal("1.3")
# A manifest's kind and the workload kind of its runs in the ledger, where they differ.
WORKLOAD_KIND = {"sweep": "sweep_trial"}
FACTOR = Decimal("0.001")


@dataclass(frozen=True)
class Factors:
    """Multipliers on the stated hours: the median and the 90th percentile, and their basis."""

    p50: Decimal
    p90: Decimal
    runs: int
    basis: str


ASSUMED = Factors(ASSUMED_P50, ASSUMED_P90, 0, "no history: P90 assumed 1.3x the stated hours")


def duration_factors(workloads: ibis.Table | None, team: str | None, kind: str) -> Factors:
    """The P50/P90 of actual over expected hours of similar finished runs, or the assumption."""
    if workloads is None:
        return ASSUMED
    from costline.ledger import fetch

    wkind = WORKLOAD_KIND.get(kind, kind)
    w = workloads.filter(workloads.kind == wkind, workloads.start.notnull(),
                         workloads["end"].notnull())  # fmt: skip
    expected = w.tags.get(EXPECTED_TAG).try_cast("float64")
    took = (w["end"].epoch_seconds() - w.start.epoch_seconds()) / 3600
    runs = w.mutate(ratio=took / expected, same=w.team == (team or ""))
    runs = runs.filter(runs.ratio.notnull(), expected > 0)
    for same_team, scope in ((True, f"team {team}, kind {wkind}"), (False, f"kind {wkind}")):
        chosen = runs.filter(runs.same) if same_team else runs
        if same_team and team is None:
            continue
        row = fetch.rows(chosen.aggregate(n=chosen.ratio.count(), p50=chosen.ratio.quantile(0.5),
                                          p90=chosen.ratio.quantile(0.9)))[0]  # fmt: skip
        if row["n"] >= MIN_RUNS:
            p50, p90 = (Decimal(repr(row[k])).quantize(FACTOR) for k in ("p50", "p90"))
            basis = f"{row['n']} finished runs of {scope}: actual / expected hours"
            return Factors(p50, max(p90, p50), int(row["n"]), basis)
    return ASSUMED
