"""Exact decimal splits: the parts of an amount always add up to it, to the last 10^-18."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal, localcontext

from costline.money import MONEY_CONTEXT, MONEY_SCALE

QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def split(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`amount` in parts proportional to `weights` (non-negative, not all zero), summing exactly.

    Each part is `amount x weight / total` rounded down to 18 decimals; the units of 10^-18 left
    over go one each to the parts with the largest remainders (Hamilton's method), ties to the
    earlier part. A negative amount (a credit) splits the same way, mirrored.
    """
    if not weights:
        raise ValueError("nothing to split into")
    with localcontext(MONEY_CONTEXT):
        whole = sum(weights, Decimal(0))
        if whole <= 0 or any(w < 0 for w in weights):
            raise ValueError(f"weights must be non-negative with a positive total, got {weights}")
        sign = -1 if amount < 0 else 1
        units = abs(amount).scaleb(
            MONEY_SCALE
        )  # an integer number of 10^-18 when `amount` is money
        exact = [units * w / whole for w in weights]
        floors = [e.to_integral_value(rounding=ROUND_FLOOR) for e in exact]
        left = int(units.to_integral_value(rounding=ROUND_FLOOR) - sum(floors, Decimal(0)))
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:left]:
            floors[i] += 1
        # An amount with more than 18 decimals keeps its sub-unit tail on the largest part.
        tail = abs(amount) - sum(floors, Decimal(0)).scaleb(-MONEY_SCALE)
        parts = [f.scaleb(-MONEY_SCALE) for f in floors]
        if tail:
            parts[order[0]] += tail
        return [sign * p for p in parts]
