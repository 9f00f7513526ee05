"""The demo's experiment manifests: `experiments/<name>.yaml`, one per training or fine-tuning run
(Slurm job) the demo has, as each team planned it before launch, and three proposals a CI gate
must stop.

A run's manifest states its GPUs (provider, region, instance type, GPU type, GPUs per node,
nodes) and its expected steps with the throughput the team
measured. The plan is drawn from the run that happened: its expected hours are its actual hours
over a planning error (log-normal, runs taking `PLAN_BIAS` longer than planned at the median,
spread `PLAN_SIGMA`), from the seed's own random stream. Each run carries what it expected in the
sacct comment (`expected_hours=...,manifest=...`), as a run launched from a manifest would, so
that estimates read the organization's history (`governance.history`). The registry's entries
(`registry.yaml`, `match: {name: "<group>*"}`) match the manifests by name.

The three proposals: one with no TTL (`ttl_hours: null` in production), one whose budget is over
what its team's monthly budget (the demo's `costline.yaml`) can hold, and one asking for H100s in
dev. `costline gate experiments/*.yaml` fails exactly those.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

import yaml

from costline.demo.workloads import SlurmJob

MANIFEST_DIR = "experiments"
PLAN_BIAS = 0.04  # runs take 4% longer than planned at the median
PLAN_SIGMA = 0.05
TTL_HOURS = 504  # 21 days, as the registry declares the training groups
BUDGET_MARGIN = Decimal("1.2")  # over the run at list price: room for a P50 a little longer
APPROVER = "finops@costline.example"
BAD = ("no-ttl", "over-team-budget", "h100-in-dev")


def _hours(j: SlurmJob, window_end: dt.datetime) -> float:
    return ((j.end or window_end) - j.start).total_seconds() / 3600


def plan(j: SlurmJob, window_end: dt.datetime, rng: Random) -> Decimal:
    """The hours the team expected: a finished run's actual hours over a planning error; a run
    still going was planned longer than it has run so far."""
    took = _hours(j, window_end)
    if j.end is None:
        return Decimal(repr(round(took * rng.uniform(1.2, 1.6), 1)))
    error = math.exp(rng.gauss(math.log1p(PLAN_BIAS), PLAN_SIGMA))
    return Decimal(repr(round(took / error, 1)))


def run_manifest(j: SlurmJob, expected: Decimal, rng: Random) -> dict[str, Any]:
    """One run's manifest as its team wrote it (see the module)."""
    who, price = j.resource.owner, j.resource.instance
    assert price is not None and price.gpu_model is not None
    per_hour = Decimal(rng.choice((150, 240, 400, 600, 900, 1500)))
    steps = max(1, round(expected * per_hour))
    resources = {"provider": j.resource.account.provider, "region": j.resource.region,
                 "instance_type": price.instance_type, "gpu_type": price.gpu_model,
                 "gpus": j.gpus_per_node, "nodes": len(j.nodes)}  # fmt: skip
    cost = price.price_usd_per_hour * len(j.nodes) * expected * BUDGET_MARGIN
    return {
        "name": f"{j.name}-{j.job_id}",
        "kind": "fine_tune" if who.workload_type == "fine-tuning" else "training_run",
        "owner": f"{who.project}-lead@costline.example",
        "team": who.team,
        "project": who.project,
        "purpose": f"{who.workload_type} of {who.model}",
        "environment": "production",
        "budget_usd": math.ceil(cost / 100) * 100,
        "ttl_hours": TTL_HOURS,
        "resources": resources,
        "steps": steps,
        "steps_per_hour": int(per_hour),
        "checkpoint": {"interval_minutes": 60},
        "tags": {"slurm_job": j.job_id},
        "approvals": [{"by": APPROVER, "role": "FinOps"}],
    }


def bad_manifests(
    template: dict[str, Any], team_budgets: dict[str, Decimal]
) -> list[dict[str, Any]]:
    """The three proposals the gate must fail, each wrong in one way only."""
    base = {k: v for k, v in template.items() if k != "tags"}
    team = str(base["team"])
    no_ttl = {**base, "name": f"{BAD[0]}-{base['name']}", "ttl_hours": None}
    over = {**base, "name": f"{BAD[1]}-{base['name']}",
            "budget_usd": int(team_budgets.get(team, Decimal(10**6)) * 2)}  # fmt: skip
    dev = {**base, "name": f"{BAD[2]}-{team}", "kind": "fine_tune", "environment": "dev",
           "ttl_hours": 48, "budget_usd": 2000, "steps": 4800, "steps_per_hour": 400,
           "resources": {"gpu_type": "H100", "gpus": 8, "nodes": 1}}  # fmt: skip
    return [no_ttl, over, dev]


def team_budgets(config_file: Path | None) -> dict[str, Decimal]:
    """team -> the amount of its monthly budget in the demo's costline.yaml."""
    if config_file is None or not config_file.is_file():
        return {}
    doc = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    return {
        b["scope"]["team"]: Decimal(str(b["amount_usd"]))
        for b in doc.get("budgets", [])
        if set(b.get("scope", {})) == {"team"}
    }


def write_manifests(
    out: Path, jobs: Sequence[SlurmJob], window_end: dt.datetime, seed: int, config: Path | None
) -> dict[str, str]:
    """Write every manifest under `out`; return job id -> the sacct comment's extra tags."""
    rng = Random(f"{seed}/manifests")
    out.mkdir(parents=True, exist_ok=True)
    tags: dict[str, str] = {}
    docs: list[dict[str, Any]] = []
    for j in jobs:
        expected = plan(j, window_end, rng)
        doc = run_manifest(j, expected, rng)
        docs.append(doc)
        tags[j.job_id] = f"expected_hours={expected},manifest={doc['name']}"
    finished = [d for d, j in zip(docs, jobs, strict=True) if j.end is not None]
    if finished:
        docs += bad_manifests(finished[0], team_budgets(config))
    for doc in docs:
        text = yaml.safe_dump(doc, sort_keys=False)
        (out / f"{doc['name']}.yaml").write_text(text, encoding="utf-8")
    return tags


def showcase(out: Path) -> Path | None:
    """The run manifest the demo prints an estimate for: the most GPUs, then the newest run."""

    def size(path: Path) -> tuple[int, str]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        r = doc.get("resources", {})
        return int(r.get("gpus") or 0) * int(r.get("nodes") or 1), str(doc["tags"]["slurm_job"])

    runs = [p for p in sorted(out.glob("*.yaml")) if not p.stem.startswith(BAD)]
    return max(runs, key=size, default=None)
