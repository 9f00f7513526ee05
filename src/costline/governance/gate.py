"""`costline gate`: a manifest checked against the organization's rules before it launches.

Every rule is a plain function over one input shape, `gate_input` (a dict of plain JSON data: the
manifest with its defaults applied, its estimate, its environment's rules, its team's remaining
budget, the settings), so that policies written later in another language can take the same
document. A rule returns `pass`, `warn`, `approval` (a person must approve) or `fail`, with the
value it saw and the fix. The gate's exit: 1 when any rule fails, else 3 when any needs approval,
else 0.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costline.catalog.gpu_prices import gpu_instances
from costline.config import Config
from costline.governance.estimate import Estimate
from costline.governance.history import WORKLOAD_KIND
from costline.manifest import ENDPOINT_KINDS, effective_budget, effective_ttl_hours
from costline.optimize.capacity import TOLERANT

EXIT_PASS, EXIT_FAIL, EXIT_APPROVAL = 0, 1, 3
REQUIRED = ("owner", "team", "project", "purpose", "environment")
ORDER = {"fail": 0, "approval": 1, "warn": 2, "pass": 3}


@dataclass(frozen=True)
class Verdict:
    """One rule's result on one manifest."""

    rule: str
    status: str  # pass, warn, approval, fail
    value: str
    fix: str = ""


Rule = Callable[[Mapping[str, Any]], Verdict]


def gate_input(
    estimate: Estimate, config: Config, team_budget: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The one documented input of every rule (docs/methodology/governance.md, "Gate input")."""
    m = estimate.manifest
    settings = config.experiments
    rules = settings.environments.get(m.environment or "")
    chip, gpus = _gpus(estimate)
    return {
        "manifest": m.model_dump(mode="json"),
        "source": estimate.source,
        "budget_usd": _str(effective_budget(m, settings.cap_usd)),
        "ttl_hours": _str(effective_ttl_hours(m)),
        "gpu_chip": chip,
        "gpus_per_trial": gpus,
        "estimate": {
            "p50_usd": _str(_p50(estimate)),
            "p90_usd": _str(estimate.p90_usd),
            "hours_p50": _str(_hours(estimate, estimate.factors.p50)),
            "hours_p90": _str(_hours(estimate, estimate.factors.p90)),
            "unpriced": estimate.unpriced,
        },
        "environment_rules": None if rules is None else rules.model_dump(mode="json"),
        "environments": sorted(settings.environments),
        "team_budget": None if team_budget is None else dict(team_budget),
        "required_tags": list(settings.required_tags),
        "approve_above_usd": _str(settings.approve_above_usd or settings.cap_usd),
    }


def required_fields(d: Mapping[str, Any]) -> Verdict:
    m = d["manifest"]
    missing = [f for f in REQUIRED if not m.get(f)]
    missing += [f"tags.{t}" for t in d["required_tags"] if not m["tags"].get(t)]
    if missing:
        return Verdict("required_fields", "fail", f"missing: {', '.join(missing)}",
                       f"add {', '.join(missing)} to the manifest")  # fmt: skip
    return Verdict("required_fields", "pass", "owner, team, project, purpose, environment set")


def ttl(d: Mapping[str, Any]) -> Verdict:
    m, hours = d["manifest"], d["ttl_hours"]
    if m["kind"] in ENDPOINT_KINDS:
        return Verdict("ttl", "pass", "endpoints run until scaled down: no TTL needed")
    if hours is None:
        fix = "add ttl_hours (production gets no default; elsewhere it is 24)"
        return Verdict("ttl", "fail", "no TTL", fix)
    most = (d["environment_rules"] or {}).get("max_ttl_hours")
    if most is not None and Decimal(hours) > Decimal(most):
        return Verdict("ttl", "fail", f"{hours} h, over {m['environment']}'s {most} h",
                       f"set ttl_hours to {most} or less")  # fmt: skip
    stated = "" if "ttl_hours" in m and m["ttl_hours"] is not None else " (default)"
    return Verdict("ttl", "pass", f"{hours} h{stated}")


def run_within_ttl(d: Mapping[str, Any]) -> Verdict:
    """A run its own TTL would stop: the P50 hours over it fail, the P90 hours warn."""
    ttl_hours, est = d["ttl_hours"], d["estimate"]
    if ttl_hours is None or est["hours_p50"] is None:
        return Verdict("run_within_ttl", "pass", "no TTL or no duration to compare")
    p50, p90, most = Decimal(est["hours_p50"]), Decimal(est["hours_p90"]), Decimal(ttl_hours)
    seen = f"P50 {p50:,.1f} h, P90 {p90:,.1f} h against a {most} h TTL"
    if p50 > most:
        return Verdict("run_within_ttl", "fail", seen,
                       f"the TTL would stop the run: set ttl_hours to {p90:.0f}, or shorten it")  # fmt: skip
    if p90 > most:
        return Verdict("run_within_ttl", "warn", seen, f"ttl_hours {p90:.0f} leaves room")
    return Verdict("run_within_ttl", "pass", seen)


def environment_known(d: Mapping[str, Any]) -> Verdict:
    env = d["manifest"]["environment"]
    if env is not None and d["environment_rules"] is None:
        return Verdict("environment", "fail", f"{env!r} has no rules",
                       f"use one of {', '.join(d['environments'])}, or add it to "
                       "experiments.environments")  # fmt: skip
    return Verdict("environment", "pass", str(env))


def instance_allowed(d: Mapping[str, Any]) -> Verdict:
    rules, r = d["environment_rules"] or {}, d["manifest"]["resources"]
    env, chip = d["manifest"]["environment"], d["gpu_chip"]
    allowed_gpus, allowed_types = rules.get("allowed_gpus"), rules.get("allowed_instance_types")
    if (
        allowed_gpus is not None
        and chip is not None
        and chip.upper() not in {g.upper() for g in allowed_gpus}
    ):
        return Verdict("instance_allowed", "fail", f"{chip} in {env}",
                       f"{env} allows {', '.join(allowed_gpus)}: pick one of those, or run in an "
                       "environment that allows " + chip)  # fmt: skip
    kind = r.get("instance_type")
    if (
        allowed_types is not None
        and kind is not None
        and not any(fnmatch.fnmatchcase(kind, p) for p in allowed_types)
    ):
        return Verdict("instance_allowed", "fail", f"{kind} in {env}",
                       f"{env} allows {', '.join(allowed_types)}")  # fmt: skip
    return Verdict("instance_allowed", "pass", " ".join(x for x in (chip, kind) if x) or "no GPU")


def gpu_ceiling(d: Mapping[str, Any]) -> Verdict:
    most, gpus = (d["environment_rules"] or {}).get("max_gpus"), d["gpus_per_trial"]
    if most is not None and gpus is not None and gpus > most:
        return Verdict("gpu_ceiling", "fail", f"{gpus} GPUs, over {most}",
                       f"ask for {most} GPUs or fewer per trial (gpus x nodes)")  # fmt: skip
    return Verdict("gpu_ceiling", "pass", f"{gpus} GPUs" if gpus is not None else "no GPUs")


def team_budget(d: Mapping[str, Any]) -> Verdict:
    budget, team = d["budget_usd"], d["team_budget"]
    if team is None or budget is None:
        return Verdict("team_budget", "pass", "no team budget to check against")
    left = Decimal(team["remaining_usd"])
    if Decimal(budget) > left:
        return Verdict("team_budget", "fail",
                       f"budget ${Decimal(budget):,.0f} over the ${left:,.0f} left in "
                       f"{team['name']} ({team['period']})",
                       "lower budget_usd, wait for the next period, or raise the team's budget")  # fmt: skip
    return Verdict("team_budget", "pass", f"${Decimal(budget):,.0f} of ${left:,.0f} left")


def within_budget(d: Mapping[str, Any]) -> Verdict:
    """P50 over the budget fails; P90 over it, or a cost that cannot be estimated, needs an
    approval (an entry in `approvals` gives it)."""
    budget, est = d["budget_usd"], d["estimate"]
    if est["p90_usd"] is None:
        return _approved(d, Verdict("estimate_within_budget", "approval",
                                    f"unpriced: {est['unpriced']}", "give resources and a "
                                    "duration the catalog can price, or add approvals"))  # fmt: skip
    if budget is None:
        return Verdict("estimate_within_budget", "pass", "no budget (experiments.cap_usd: null)")
    p50, p90, cap = Decimal(est["p50_usd"]), Decimal(est["p90_usd"]), Decimal(budget)
    seen = f"P50 ${p50:,.0f}, P90 ${p90:,.0f} against a ${cap:,.0f} budget"
    if p50 > cap:
        return Verdict("estimate_within_budget", "fail", seen,
                       f"set budget_usd to at least {p90:.0f}, or shorten the run")  # fmt: skip
    if p90 > cap:
        return _approved(d, Verdict("estimate_within_budget", "approval", seen,
                                    f"add approvals, or set budget_usd to {p90:.0f}"))  # fmt: skip
    return Verdict("estimate_within_budget", "pass", seen)


def _approved(d: Mapping[str, Any], verdict: Verdict) -> Verdict:
    """An approval-needing verdict passes when the manifest lists who approved it."""
    approvals = d["manifest"]["approvals"]
    if not approvals:
        return verdict
    names = ", ".join(a["by"] for a in approvals)
    return Verdict(verdict.rule, "pass", f"{verdict.value}; approved by {names}")


def approval(d: Mapping[str, Any]) -> Verdict:
    above, p90 = d["approve_above_usd"], d["estimate"]["p90_usd"]
    if above is None or p90 is None or Decimal(p90) <= Decimal(above):
        return Verdict("approval", "pass", "under the approval threshold")
    seen = f"P90 ${Decimal(p90):,.0f} over ${Decimal(above):,.0f}"
    return _approved(d, Verdict("approval", "approval", seen, "add approvals: [{by: <approver>}]"))


def spot_for_tolerant(d: Mapping[str, Any]) -> Verdict:
    m = d["manifest"]
    capacity = m["resources"]["capacity_type"]
    if WORKLOAD_KIND.get(m["kind"], m["kind"]) in TOLERANT and capacity == "on_demand":
        return Verdict("spot_for_tolerant", "warn", f"{m['kind']} on on_demand",
                       "set resources.capacity_type: spot and checkpoint (see the estimate)")  # fmt: skip
    return Verdict("spot_for_tolerant", "pass", f"{m['kind']} on {capacity}")


def max_tokens(d: Mapping[str, Any]) -> Verdict:
    m = d["manifest"]
    if m["kind"] in ENDPOINT_KINDS and m["max_tokens"] is None:
        return Verdict("max_tokens", "fail", "endpoint without max_tokens",
                       "set max_tokens (the cap on output tokens per request)")  # fmt: skip
    return Verdict("max_tokens", "pass", str(m["max_tokens"] or "not an endpoint"))


RULES: tuple[Rule, ...] = (
    required_fields,
    environment_known,
    ttl,
    run_within_ttl,
    instance_allowed,
    gpu_ceiling,
    team_budget,
    within_budget,
    approval,
    spot_for_tolerant,
    max_tokens,
)


def check(d: Mapping[str, Any]) -> list[Verdict]:
    """Every rule on one gate input, worst first."""
    return sorted((rule(d) for rule in RULES), key=lambda v: ORDER[v.status])


def exit_code(verdicts: Sequence[Verdict]) -> int:
    statuses = {v.status for v in verdicts}
    return EXIT_FAIL if "fail" in statuses else EXIT_APPROVAL if "approval" in statuses else 0


def markdown(results: Sequence[tuple[str, Sequence[Verdict]]]) -> str:
    """Each manifest's outcome and every rule that did not simply pass, with value and fix."""
    words = {EXIT_PASS: "passes", EXIT_FAIL: "fails", EXIT_APPROVAL: "needs approval"}
    out: list[str] = []
    for name, verdicts in results:
        out += [f"### {name}: {words[exit_code(verdicts)]}", "",
                "| rule | result | value | fix |", "|---|---|---|---|"]  # fmt: skip
        out += [f"| {v.rule} | {v.status} | {v.value} | {v.fix} |" for v in verdicts]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _gpus(e: Estimate) -> tuple[str | None, int | None]:
    r = e.manifest.resources
    inst = next((g for (p, t), g in gpu_instances().items()
                 if t == r.instance_type and r.provider in (None, p)), None)  # fmt: skip
    chip = r.gpu_type.split("-")[0] if r.gpu_type else (inst.chip if inst else None)
    per_node = r.gpus or (inst.gpu_count if inst else None)
    return chip, None if per_node is None else per_node * r.nodes


def _hours(e: Estimate, factor: Decimal) -> Decimal | None:
    hours = e.manifest.hours
    return None if hours is None else (hours * factor).quantize(Decimal("0.1"))


def _p50(e: Estimate) -> Decimal | None:
    asked = e.option(e.manifest.resources.capacity_type) or e.option("on_demand")
    return asked.p50_usd if asked else None


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
