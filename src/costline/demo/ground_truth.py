"""What the demo bills really contain: `ground_truth.json`, written beside the billing files.

It knows what the files do not say: the true team, project, model, cost domain and cost layer of every
resource, including the untagged ones, so attribution and detection can be scored against it.
Amounts are decimal strings, exact to the last decimal of the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from costline.demo.commitment import CommitmentPlan
from costline.demo.org import Resource
from costline.demo.schedule import Timeline
from costline.demo.totals import CostTotals, sum_totals
from costline.money import total

GROUND_TRUTH_VERSION = 1
UNTAGGED = "(untagged)"
SHARE_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class BillingFile:
    """One billing file written: its path relative to the output folder, and what it sums to."""

    path: str
    provider: str
    file_format: str
    totals: CostTotals


def group_totals(
    resources: Iterable[Resource],
    per_resource: dict[str, CostTotals],
    key: Callable[[Resource], str],
) -> dict[str, CostTotals]:
    """Totals per `key(resource)`, keys sorted."""
    groups: dict[str, list[CostTotals]] = {}
    for r in resources:
        groups.setdefault(key(r), []).append(per_resource.get(r.key, CostTotals()))
    return {k: sum_totals(groups[k]) for k in sorted(groups)}


def untagged_share(resources: list[Resource], per_resource: dict[str, CostTotals]) -> Decimal:
    """Share of EffectiveCost (amortized) on lines that show no team tag."""
    total = sum_totals([per_resource.get(r.key, CostTotals()) for r in resources])
    untagged = sum_totals(
        [per_resource.get(r.key, CostTotals()) for r in resources if not r.tagged]
    )
    if total.effective == 0:
        return Decimal(0)
    return (untagged.effective / total.effective).quantize(SHARE_QUANTUM)


def _resource_entry(r: Resource, totals: CostTotals) -> dict[str, object]:
    price = r.instance
    return {
        "key": r.key,
        "provider": r.account.provider,
        "resource_id": r.resource_id,
        "resource_name": r.name,
        "service_name": r.service.name,
        "sub_account_id": r.sub_account.id,
        "region": r.region,
        "instance_type": price.instance_type if price else None,
        "accelerator": price.gpu_model if price else None,
        "gpu_count": price.gpu_count if price else 0,
        "charge_kind": r.kind,
        "tagged": r.tagged,
        "tags": dict(r.tags),
        "team": r.owner.team,
        "project": r.owner.project,
        "model": r.owner.model,
        "environment": r.owner.environment,
        "workload_type": r.owner.workload_type,
        "cost_domain": r.owner.cost_domain,
        "cost_layer": r.owner.cost_layer,
        "totals": totals.as_json(),
    }


def _as_json(groups: dict[str, CostTotals]) -> dict[str, dict[str, int | str]]:
    return {k: v.as_json() for k, v in groups.items()}


def _commitment_entry(plan: CommitmentPlan, hours: int) -> dict[str, object]:
    committed = plan.hourly * hours
    unused = total(plan.unused)
    return {
        "id": plan.commitment_id,
        "name": plan.name,
        "type": plan.type,
        "hourly_commitment": format(plan.hourly, "f"),
        "hours": hours,
        "committed": format(committed, "f"),
        "used": format(committed - unused, "f"),
        "unused": format(unused, "f"),
    }


def build_ground_truth(
    *,
    seed: int,
    days: int,
    scale: float,
    timeline: Timeline,
    resources: list[Resource],
    per_resource: dict[str, CostTotals],
    files: list[BillingFile],
    plans: list[CommitmentPlan],
) -> dict[str, object]:
    """The ground-truth document; raises if the files and the per-resource totals disagree."""
    total = sum_totals([f.totals for f in files])
    if sum_totals(list(per_resource.values())) != total:
        raise RuntimeError("demo billing: per-resource totals do not add up to the files' totals")
    untagged = [r for r in resources if not r.tagged]
    return {
        "version": GROUND_TRUTH_VERSION,
        "generator": "costline.demo.billing",
        "seed": seed,
        "days": days,
        "scale": scale,
        "window": {"start": timeline.day_marks[0], "end": timeline.day_marks[-1]},
        "currency": "USD",
        "files": [
            {"path": f.path, "provider": f.provider, "format": f.file_format, **f.totals.as_json()}
            for f in files
        ],
        "totals": total.as_json(),
        "per_provider": _as_json(
            group_totals(resources, per_resource, lambda r: r.account.provider)
        ),
        "per_team": _as_json(group_totals(resources, per_resource, lambda r: r.owner.team)),
        "per_team_as_tagged": _as_json(
            group_totals(resources, per_resource, lambda r: r.owner.team if r.tagged else UNTAGGED)
        ),
        "per_cost_domain": _as_json(
            group_totals(resources, per_resource, lambda r: r.owner.cost_domain)
        ),
        "per_cost_layer": _as_json(
            group_totals(resources, per_resource, lambda r: r.owner.cost_layer)
        ),
        "untagged": {
            "share_of_effective_cost": format(untagged_share(resources, per_resource), "f"),
            "totals": sum_totals(
                [per_resource.get(r.key, CostTotals()) for r in untagged]
            ).as_json(),
            "per_true_team": _as_json(group_totals(untagged, per_resource, lambda r: r.owner.team)),
        },
        "teams": sorted({r.owner.team for r in resources}),
        "models": sorted({r.owner.model for r in resources if r.owner.model}),
        "commitments": [_commitment_entry(plan, timeline.hours) for plan in plans],
        "resources": [_resource_entry(r, per_resource.get(r.key, CostTotals())) for r in resources],
    }


def add_token_waste(path: Path, waste: list[dict[str, str]]) -> None:
    """Add `token_waste` to the ground truth at `path`: the waste planted in the LLM traffic
    ({lever, app, model, savings_usd_month}, `demo.token_waste`), which the activity writes after
    the bills."""
    truth = json.loads(path.read_text(encoding="utf-8"))
    truth["token_waste"] = waste
    path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
