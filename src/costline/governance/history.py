"""How long similar runs actually took against what they expected: the P50/P90 of an estimate.

A past run says what it expected in its tag `expected_hours` (a run launched from a manifest
carries it). The ratio of its wall-clock hours (`end - start`) to that is computed in the engine
for the finished runs of the manifest's team and kind; with fewer than `MIN_RUNS` of those, of
its kind in any team; with fewer still, the assumption is stated: P50 = 1.0x, P90 = 1.3x. The
P90 is the level a next run stays under nine times in ten (`predictive`), not the plain sample
quantile, which a next run exceeds more often when the runs are few.
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
        n = int(fetch.rows(chosen.aggregate(n=chosen.ratio.count()))[0]["n"])
        if n >= MIN_RUNS:
            row = fetch.rows(chosen.aggregate(p50=chosen.ratio.quantile(0.5),
                                              p90=chosen.ratio.quantile(predictive(0.9, n))))[0]  # fmt: skip
            p50, p90 = (Decimal(repr(row[k])).quantize(FACTOR) for k in ("p50", "p90"))
            basis = f"{n} finished runs of {scope}: actual / expected hours"
            return Factors(p50, max(p90, p50), n, basis)
    return ASSUMED


def predictive(p: float, n: int) -> float:
    """The linear-interpolation quantile level that puts the `p` quantile at rank (n + 1) p of
    `n` runs (Weibull's plotting position): the level a next run stays under with probability
    `p`. The plain sample quantile, at rank (n - 1) p + 1, covers fewer of the next runs when
    there are few (a tenth of the runs above it at n = 10, where a next run is above it with
    probability 2/11). The median is the same either way."""
    return min(1.0, max(0.0, ((n + 1) * p - 1) / (n - 1)))
