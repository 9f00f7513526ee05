"""The AWS Compute Savings Plan: its hourly commitment and which instance hours it covers.

The commitment is sized a little above the always-on eligible capacity at the plan rate. Each hour,
the plan covers eligible instance-hours whole, highest discount first, while the commitment lasts;
what is left that hour is unused commitment. Everything is decimal, so used + unused = commitment
exactly, every hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from costline.demo.org import Resource
from costline.demo.rates import SAVINGS_PLAN_DISCOUNT
from costline.demo.usage import Always, Slot
from costline.money import total

CENT = Decimal("0.01")
COST_QUANTUM = Decimal("0.0000000001")  # costs carry 10 decimals in the demo bills
HEADROOM = Decimal("1.06")  # commitment / always-on eligible spend at the plan rate


def plan_rate(resource: Resource) -> Decimal:
    """The discounted hourly cost of an eligible instance under the plan."""
    price = resource.instance
    if price is None:
        raise ValueError(f"{resource.key}: only instance hours can use the savings plan")
    family = price.instance_type.split(".")[0]
    discount = SAVINGS_PLAN_DISCOUNT[family]
    return (price.price_usd_per_hour * (1 - discount)).quantize(COST_QUANTUM)


def _always_on(resource: Resource) -> bool:
    usage = resource.usage
    if isinstance(usage, Always):
        return usage.start_day <= 0 and usage.end_day is None
    return isinstance(usage, Slot) and usage.index < usage.pool.min_count


@dataclass(frozen=True)
class CommitmentPlan:
    commitment_id: str
    hourly: Decimal  # the committed spend per hour
    covered: dict[str, list[bool]]  # resource key -> hour -> covered by the plan
    unused: list[Decimal]  # unused commitment per hour


def plan_commitment(
    commitment_id: str, eligible: list[Resource], active: dict[str, list[bool]], hours: int
) -> CommitmentPlan:
    """Apply the plan hour by hour to the eligible resources' active hours."""
    baseline = total(plan_rate(r) for r in eligible if _always_on(r))
    hourly = (baseline * HEADROOM).quantize(CENT)
    order = sorted(eligible, key=lambda r: (-_discount(r), r.key))
    rates = {r.key: plan_rate(r) for r in order}
    covered = {r.key: [False] * hours for r in order}
    unused: list[Decimal] = []
    for h in range(hours):
        left = hourly
        for r in order:
            cost = rates[r.key]
            if active[r.key][h] and cost <= left:
                covered[r.key][h] = True
                left -= cost
        unused.append(left)
    return CommitmentPlan(commitment_id, hourly, covered, unused)


def _discount(resource: Resource) -> Decimal:
    price = resource.instance
    assert price is not None
    return SAVINGS_PLAN_DISCOUNT[price.instance_type.split(".")[0]]
