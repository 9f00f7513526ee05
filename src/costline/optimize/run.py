"""One recommendation run over a ledger: `recommend`, as `costline recommend` and the API call it.

It computes the recommendations of the kinds asked for over the window, and returns them with
the stored recommendations of those kinds that this run no longer finds (open or acknowledged),
each with the saving the bills since show (`realized`): those no longer apply, and the caller
stores and resolves them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import ibis

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.ledger import fetch
from costline.model import Finding
from costline.optimize import (
    arbitrage,
    autoscale,
    capacity,
    commitment,
    held,
    idle,
    packing,
    quantize,
    rightsizing,
    storage,
    tiering,
    tokens,
    windows,
)
from costline.optimize.inputs import Inputs
from costline.optimize.realized import with_realized

Recommender = Callable[[Inputs], list[Finding]]
KINDS: dict[str, Recommender] = {
    rightsizing.KIND: rightsizing.recommend_rightsizing,
    idle.KIND: idle.recommend_idle,
    capacity.KIND: capacity.recommend_spot,
    commitment.KIND: commitment.recommend_commitment,
    arbitrage.KIND: arbitrage.recommend_arbitrage,
    autoscale.KIND: autoscale.recommend_autoscaling,
    quantize.KIND: quantize.recommend_quantization,
    packing.KIND: packing.recommend_packing,
    held.KIND: held.recommend_commitment_use,
    storage.KIND: storage.recommend_storage_tiering,
    tiering.KIND: tiering.recommend_tiering,
    tokens.KIND: tokens.recommend_tokens,
    windows.KIND: windows.recommend_windows,
}
LIVE = ("open", "acknowledged")


class Tables(Protocol):
    """Where a run reads the ledger's tables: a `Ledger`, or the server's `Reader` of it."""

    def table(self, name: str) -> ibis.Table: ...


@dataclass(frozen=True)
class Run:
    found: list[Finding]
    # Stored recommendations this run no longer finds, with their realized saving where known
    # (`realized.with_realized`): the caller stores them and resolves them.
    stale: list[Finding]


def recommend(
    ledger: Tables,
    rules: Rules,
    *,
    end: dt.datetime,
    days: int,
    clock: Clock,
    kinds: Sequence[str] = tuple(KINDS),
    min_savings: Decimal = Decimal(0),
) -> Run:
    """The recommendations of `kinds` over the `days` before `end` (see the module)."""
    inputs = Inputs(ledger.table("cost_lines"), ledger.table("gpu_samples"),
                    ledger.table("workloads"), end - dt.timedelta(days=days), end, rules, clock,
                    min_savings, ledger.table("storage_objects"),
                    ledger.table("metrics"), ledger.table("contract_commitments"),
                    ledger.table("storage_lifecycle"), llm=ledger.table("llm_requests"))  # fmt: skip
    found: list[Finding] = []
    for kind in kinds:
        found += KINDS[kind](inputs)
    t = ledger.table("findings")
    stored = t.filter(t.kind == "recommendation", t.status.isin(list(LIVE)))
    now = {f.fingerprint for f in found}
    stale = []
    for r in fetch.rows(stored.select("fingerprint", "body")):
        body = r["body"] if isinstance(r["body"], dict) else json.loads(r["body"])
        if body.get("evidence", {}).get("recommendation") in kinds and r["fingerprint"] not in now:
            stale.append(Finding.model_validate(body))
    found.sort(key=lambda f: -(f.impact_usd or 0))
    stale.sort(key=lambda f: f.fingerprint)
    return Run(found, with_realized(stale, inputs))
