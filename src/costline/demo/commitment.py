"""The demo's commitments: which instance hours each covers, and what it leaves unused.

The AWS Compute Savings Plan (`plan_commitment`) is sized a little above the always-on eligible
capacity at the plan rate. Each hour, the plan covers eligible instance-hours whole, highest
discount first, while the commitment lasts; what is left that hour is unused commitment. A
resource-based commitment (`Reservation`, e.g. a Google Cloud committed use discount planted by
`demo.waste`) pays `count` instances of one type every hour and covers up to `count` of its
eligible instances running that hour, in the order given. Everything is decimal, so used + unused
= commitment exactly, every hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from costline.demo.org import Resource
from costline.demo.rates import SAVINGS_PLAN_DISCOUNT
from costline.demo.usage import Always, Slot
from costline.money import total

CENT = Decimal("0.01")
COST_QUANTUM = Decimal("0.0000000001")  # costs carry 10 decimals in the demo bills
HEADROOM = Decimal("1.06")  # commitment / always-on eligible spend at the plan rate
SAVINGS_PLAN_NAME = "ml-serving-compute-sp-1yr"


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
class Reservation:
    """A resource-based commitment: `count` instances of `instance_type` at `rate` an
    instance-hour, paid every hour whether they run or not."""

    commitment_id: str
    name: str
    instance_type: str
    count: int
    rate: Decimal


@dataclass(frozen=True)
class CommitmentPlan:
    commitment_id: str
    hourly: Decimal  # the committed spend per hour
    covered: dict[str, list[bool]]  # resource key -> hour -> covered by the plan
    unused: list[Decimal]  # unused commitment per hour
    rates: dict[str, Decimal] = field(default_factory=dict)  # key -> amortized cost of its hour
    name: str = SAVINGS_PLAN_NAME
    category: str = "Spend"  # FOCUS CommitmentDiscountCategory
    type: str = "Compute Savings Plan"
    unit: str = "USD"  # CommitmentDiscountUnit: dollars (Spend) or instance-hours (Usage)
    description: str = "1 year No Upfront Compute Savings Plan, hourly commitment fee"

    def quantity(self, amount: Decimal, key: str | None = None) -> Decimal:
        """CommitmentDiscountQuantity of `amount` dollars of it (of resource `key`'s hours)."""
        if self.unit == "USD":
            return amount
        rate = self.rates[key] if key else next(iter(self.rates.values()))
        return amount / rate


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
    return CommitmentPlan(commitment_id, hourly, covered, unused, rates)


def plan_reservation(
    r: Reservation, eligible: list[Resource], active: dict[str, list[bool]], hours: int
) -> CommitmentPlan:
    """Cover up to `r.count` running instances of `eligible` (in its order) every hour."""
    covered = {e.key: [False] * hours for e in eligible}
    unused: list[Decimal] = []
    for h in range(hours):
        left = r.count
        for e in eligible:
            if left and active[e.key][h]:
                covered[e.key][h] = True
                left -= 1
        unused.append(r.rate * left)
    rates = dict.fromkeys(covered, r.rate)
    return CommitmentPlan(r.commitment_id, r.rate * r.count, covered, unused, rates, r.name,
                          "Usage", "Committed Use Discount", "Hours",
                          f"1 year commitment to {r.count} x {r.instance_type}, hourly fee")  # fmt: skip


def _discount(resource: Resource) -> Decimal:
    price = resource.instance
    assert price is not None
    return SAVINGS_PLAN_DISCOUNT[price.instance_type.split(".")[0]]
