"""Score `costline recommend` on the demo's planted waste: `score_recommendations(found, truth)`.

`found` are recommendations as `costline recommend --format json` prints them (kind, scope,
savings_monthly_usd; `inputs` when the caller kept the evidence's inputs), or the Findings
themselves; `truth` is the demo's `ground_truth.json` (`recommendations`, planted by
`demo.waste` with their true savings from `demo.waste_truth`, and `gpu_pools`).

- A planted item is **found** when a recommendation of its kind names it: a scope value is its
  resource or one of its aliases, or a path under one (`gs://bucket/...`, `job-20261030`).
- **Dollar recall** is the found items' true savings over all planted savings; kinds in
  `NOT_BUILT_YET` are expected missing and scored apart (`built_dollar_recall`).
- **Estimate error** of a found item: (its recommendation's P50 - the truth) / the truth.
- **Sign checks**: every recommendation on a planted item of its own kind must have the truth's
  sign; every `commitment` recommendation is checked against the pool's true on-demand hours
  over the whole window (`gpu_pools`): at the discount it proposes, the instances it commits
  must pay for themselves; a `spot_capacity` recommendation on a pool that only serves online
  inference or notebooks is a violation. Anything else is reported as unchecked.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.config import load_config
from costline.demo.billing import CONFIG_FILE, BillingManifest, generate_billing
from costline.ledger.store import Ledger
from costline.model import Finding
from costline.pipeline import ingest_files, ingest_focus
from costline.sources.metrics import METRICS

# Kinds planted in the demo whose recommender is not merged yet: their items are expected
# missing. Delete each kind from this set when its recommender is registered in
# `costline.optimize.run.KINDS` (tests/unit/test_recommend_demo.py fails until you do).
NOT_BUILT_YET: frozenset[str] = frozenset()
SEPARATORS = ("/", "-", ":")
MIN_SAVINGS = Decimal(100)  # `costline recommend`'s default floor, USD a month
LIVE_WORK = {"inference", "notebook"}  # work a person or a user waits on: never Spot


@dataclass(frozen=True)
class Item:
    """One planted item and what the recommendations said of it."""

    kind: str
    resource: str
    truth_usd: Decimal
    estimate_usd: Decimal | None  # P50s of the recommendations of its kind naming it, summed

    @property
    def found(self) -> bool:
        return self.estimate_usd is not None

    @property
    def error(self) -> float | None:
        """(estimate - truth) / truth, or None when not found."""
        if self.estimate_usd is None or not self.truth_usd:
            return None
        return float((self.estimate_usd - self.truth_usd) / self.truth_usd)


@dataclass(frozen=True)
class Check:
    """A recommendation checked against what the ground truth knows of its resource."""

    kind: str
    scope: Mapping[str, str]
    estimate_usd: Decimal
    verdict: str  # ok, negative (its true saving is not positive), unchecked
    reason: str


@dataclass(frozen=True)
class RecommendationScores:
    items: tuple[Item, ...]
    checks: tuple[Check, ...]

    def _recall(self, items: Sequence[Item]) -> float:
        total = sum((i.truth_usd for i in items), Decimal(0))
        found = sum((i.truth_usd for i in items if i.found), Decimal(0))
        return float(found / total) if total else 1.0

    @property
    def dollar_recall(self) -> float:
        return self._recall(self.items)

    @property
    def built_dollar_recall(self) -> float:
        """Dollar recall over the kinds whose recommender exists (not in `NOT_BUILT_YET`)."""
        return self._recall([i for i in self.items if i.kind not in NOT_BUILT_YET])

    @property
    def negative(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "negative"]

    def per_kind(self) -> dict[str, dict[str, Any]]:
        """kind -> items, found, dollar recall, mean absolute estimate error."""
        kinds: dict[str, list[Item]] = defaultdict(list)
        for i in self.items:
            kinds[i.kind].append(i)
        out = {}
        for kind, items in sorted(kinds.items()):
            errors = [abs(e) for i in items if (e := i.error) is not None]
            out[kind] = {
                "items": len(items), "found": sum(i.found for i in items),
                "dollar_recall": round(self._recall(items), 3),
                "mean_abs_error": round(sum(errors) / len(errors), 3) if errors else None,
                "not_built_yet": kind in NOT_BUILT_YET,
            }  # fmt: skip
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "items": len(self.items), "found": sum(i.found for i in self.items),
            "dollar_recall": round(self.dollar_recall, 3),
            "built_dollar_recall": round(self.built_dollar_recall, 3),
            "checked": sum(c.verdict != "unchecked" for c in self.checks),
            "negative": len(self.negative),
        }  # fmt: skip

    @classmethod
    def total(cls, parts: Sequence[RecommendationScores]) -> RecommendationScores:
        return cls(tuple(i for p in parts for i in p.items),
                   tuple(c for p in parts for c in p.checks))  # fmt: skip


def row(found: Finding | Mapping[str, Any]) -> dict[str, Any]:
    """A recommendation as the scorer reads it: kind, scope, P50 saving and, when known, the
    inputs of its method."""
    if isinstance(found, Finding):
        e = found.evidence
        savings = e.get("savings_monthly_usd")
        inputs = e.get("inputs")
        return {"kind": e.get("recommendation"), "scope": dict(found.scope),
                "savings_monthly_usd": savings.get("p50") if isinstance(savings, dict) else None,
                "inputs": inputs if isinstance(inputs, dict) else {}}  # fmt: skip
    return {**found, "scope": dict(found.get("scope") or {}), "inputs": found.get("inputs") or {}}


def names(value: str, resource: str) -> bool:
    """Whether a scope value names `resource`: equal, a path under it, or its URL."""
    return value == resource or any(
        value.startswith(resource + sep) for sep in SEPARATORS
    ) or f"/{resource}/" in f"{value}/"  # fmt: skip


def _names_item(rec: Mapping[str, Any], truth: Mapping[str, Any]) -> bool:
    ids = [truth["resource"], *truth.get("aliases", ())]
    values = [str(v) for k, v in rec["scope"].items() if k != "recommendation"]
    return any(names(v, i) for v in values for i in ids)


def _usd(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def score_recommendations(
    found: Sequence[Finding | Mapping[str, Any]], truth: Mapping[str, Any]
) -> RecommendationScores:
    """Score recommendations against a demo's ground truth (see the module)."""
    recs = [row(f) for f in found]
    planted = list(truth.get("recommendations", ()))
    items = []
    for t in planted:
        mine = [_usd(r["savings_monthly_usd"]) for r in recs
                if r["kind"] == t["kind"] and _names_item(r, t)]  # fmt: skip
        items.append(Item(t["kind"], t["resource"], Decimal(t["savings_usd_month"]),
                          sum(mine, Decimal(0)) if mine else None))  # fmt: skip
    pools = {p["pool"]: p for p in truth.get("gpu_pools", ())}
    checks = tuple(_check(r, planted, pools) for r in recs)
    return RecommendationScores(tuple(items), checks)


def _check(
    rec: Mapping[str, Any], planted: Sequence[Mapping[str, Any]],
    pools: Mapping[str, Mapping[str, Any]],
) -> Check:  # fmt: skip
    """What the ground truth says of one recommendation's saving (see the module)."""
    kind, scope, estimate = rec["kind"], rec["scope"], _usd(rec["savings_monthly_usd"])

    def verdict(ok: bool, reason: str) -> Check:
        return Check(kind, scope, estimate, "ok" if ok else "negative", reason)

    for t in planted:
        if t["kind"] == kind and _names_item(rec, t):
            true = Decimal(t["savings_usd_month"])
            return verdict((true > 0) == (estimate > 0),
                           f"planted {kind} on {t['resource']}: true saving ${true:,.2f}")  # fmt: skip
    pool = pools.get(str(scope.get("pool")))
    if pool is not None and kind == "commitment":
        saves = commitment_truth(pool, rec["inputs"])
        if saves is not None:
            return verdict(saves > 0, f"committing on its true hours saves ${saves:,.2f} a month")
    if pool is not None and kind == "spot_capacity":
        live = set(pool["workload_types"]) <= LIVE_WORK
        return verdict(not live, f"the pool's work: {', '.join(pool['workload_types'])}")
    return Check(kind, scope, estimate, "unchecked", "the ground truth holds nothing to check")


def commitment_truth(pool: Mapping[str, Any], inputs: Mapping[str, Any]) -> Decimal | None:
    """The saving a month of committing `inputs["instances"]` at `inputs["discount"]` off the
    pool's on-demand rate, over its true on-demand hours of the whole window: rate x the
    instance-hours the commitment covers - the commitment's cost every hour."""
    if "instances" not in inputs or "discount" not in inputs:
        return None
    commit, discount = int(inputs["instances"]), Decimal(str(inputs["discount"]))
    paid, hours = Decimal(pool["paid_usd_per_hour"]), int(pool["hours"])
    covered = sum(min(int(n), commit) * h for n, h in pool["on_demand_hours_at"].items())
    saving = paid * covered - paid * (1 - discount) * commit * hours
    return saving * 720 / hours


def bill_demo(out: Path, seed: int, days: int, scale: float = 1.0) -> BillingManifest:
    """The demo's bills of `seed` written under `out` and ingested into `out/ledger.duckdb`
    (with the daily successes), as `costline demo` ingests them."""
    manifest = generate_billing(out, seed=seed, days=days, scale=scale)
    with Ledger(f"duckdb://{out / 'ledger.duckdb'}") as ledger:
        ingest_focus(ledger, [out / f.path for f in manifest.files])
        if manifest.successes_file is not None:
            ingest_files(ledger, [manifest.successes_file], METRICS)
    return manifest


def recommend_demo(ledger: Ledger, manifest: BillingManifest, days: int) -> list[Finding]:
    """`costline recommend --days <days>` on a demo's ledger: every kind, over the days before
    the bills' end, with the rules of the demo's costline.yaml and the command's $100 floor."""
    from costline.optimize.run import recommend

    rules = Rules.from_config(load_config(manifest.root / CONFIG_FILE))
    end: dt.datetime = manifest.window_end
    run = recommend(ledger, rules, end=end, days=days, clock=FixedClock(end),
                    min_savings=MIN_SAVINGS)  # fmt: skip
    return run.found
