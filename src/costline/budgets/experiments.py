"""Experiment caps: every training run, sweep or fine-tune against its own budget or the default.

An experiment is a registry entry of a training kind (its cost whole: GPU, orchestration,
checkpoints and data, transfer; `economics.declared`), or an observed training workload (a pod
or Slurm job of kind training_run, sweep_trial or fine_tune) that no registry entry claims (its
GPU cost and orchestration; `economics.unit_costs.gpu_units`). Its cap is its own `budget_usd`,
else `experiments.cap_usd` from the configuration ($1,000 by default); a finding is raised at
each of `experiments.alert_at` (80% and 100% by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from costline.attribution.registry import TRAINING_KINDS
from costline.attribution.rules import Rules
from costline.budgets.status import closed
from costline.clock import Clock
from costline.config import Experiments
from costline.model import Finding, FindingKind, Window

CENT = Decimal("0.01")


def experiment_rows(
    declared_rows: Sequence[Mapping[str, Any]],
    workload_rows: Sequence[Mapping[str, Any]],
    links: Mapping[str, str],
    settings: Experiments,
) -> list[dict[str, Any]]:
    """Each experiment with its cost, cap, where the cap comes from and the share used."""
    out = []
    for r in declared_rows:
        if r["kind"] in TRAINING_KINDS:
            out.append(_row(r["name"], r["kind"], r["team"], r["owner"], r["cost_usd"],
                            r["budget_usd"], settings) | _covers(r))  # fmt: skip
    for w in workload_rows:
        if w["kind"] in TRAINING_KINDS and w["workload"] not in links:
            out.append(_row(w["workload"], w["kind"], w["team"], None, w["cost_usd"], None,
                            settings) | _covers(w))  # fmt: skip
    return sorted((r for r in out if r["cap_usd"] is not None), key=lambda r: -(r["used_pct"] or 0))


def _covers(row: Mapping[str, Any]) -> dict[str, Any]:
    """The window the cost covers and the share of its GPU-hours telemetry backs."""
    return {"window": row.get("window"), "coverage_pct": row.get("coverage_pct")}


def _row(name: str, kind: str, team: str | None, owner: str | None, cost: Decimal,
         own: Decimal | None, settings: Experiments) -> dict[str, Any]:  # fmt: skip
    cap = own if own is not None else settings.cap_usd
    return {
        "experiment": name,
        "kind": kind,
        "team": team,
        "owner": owner,
        "cost_usd": cost.quantize(CENT),
        "cap_usd": cap.quantize(CENT) if cap is not None else None,
        "cap_from": "its budget_usd" if own is not None else "experiments.cap_usd",
        "used_pct": (cost / cap * 100).quantize(Decimal("0.1")) if cap else None,
    }


def cap_findings(
    rows: Sequence[Mapping[str, Any]],
    settings: Experiments,
    window: Window,
    *,
    clock: Clock,
    rules: Rules | None = None,
) -> list[Finding]:
    """One finding per experiment per alert level reached (80% and 100% by default); only the
    highest open, the lower ones resolved as superseded by it."""
    rules = rules or Rules()
    out = []
    for r in rows:
        reached = [p for p in settings.alert_at if r["used_pct"] is not None and r["used_pct"] >= p]
        for pct in reached:
            over = max(r["cost_usd"] - r["cap_usd"], Decimal(0))
            owner = r["owner"] or rules.owner_of({"team": r["team"]}) or r["team"]
            f = Finding.new(
                kind=FindingKind.BUDGET_THRESHOLD, scope={"experiment": r["experiment"]},
                dedup_key=f"cap:{pct}%", clock=clock,
                title=f"Experiment {r['experiment']} used {r['used_pct']}% of its "
                f"${r['cap_usd']:,} cap",
                severity="critical" if pct >= 100 else "warning",
                summary=f"{r['experiment']} ({r['kind'].replace('_', ' ')}, team "
                f"{r['team'] or 'unknown'}) has cost ${r['cost_usd']:,} against a cap of "
                f"${r['cap_usd']:,} ({r['cap_from']}): past {pct}%.",
                owner=owner, window=window,
                impact_usd=over.quantize(CENT) if pct >= 100 else None,
                evidence={"signal": "experiment_cap", "experiment": r["experiment"],
                          "kind": r["kind"], "team": r["team"], "cost_usd": str(r["cost_usd"]),
                          "cap_usd": str(r["cap_usd"]), "cap_from": r["cap_from"],
                          "used_pct": str(r["used_pct"]), "alert_pct": str(pct)},
                actions=[{"text": f"Stop or shrink {r['experiment']} if it has what it needs "
                          f"(${r['cost_usd']:,} spent of a ${r['cap_usd']:,} cap), or give it "
                          "a budget_usd of its own in the registry if the spend is planned"}],
            )  # fmt: skip
            if pct != reached[-1]:
                f = closed(f, f"superseded by its {reached[-1]}% alert")
            out.append(f)
    return out
