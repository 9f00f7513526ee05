"""What an acted-on recommendation saved, from the bills after it: `with_realized`.

A recommendation a run no longer finds is resolved; before that, when it is about a pool, the
pool's cost per 30 days in the new window (its GPU instance lines, every pricing category) is
set against the cost it had when recommended: the difference is the realized saving, written
beside the estimate so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from costline.attribution.instances import gpu_lines
from costline.attribution.rules import derive_lines
from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.inputs import Inputs, pool_name

CENT = Decimal("0.01")


def pool_costs(inputs: Inputs) -> dict[str, Decimal]:
    """pool -> the effective cost of its GPU instance lines per 30 days, in the window."""
    g = gpu_lines(derive_lines(inputs.window_lines, inputs.rules))
    g = g.filter(g.instance_type.notnull())
    t = g.group_by(provider=g.type_provider, region=g.RegionId, itype=g.instance_type).aggregate(
        cost=g.EffectiveCost.sum()
    )
    return {
        pool_name((r["provider"], r["region"], r["itype"])): Decimal(r["cost"]) * inputs.per_month
        for r in fetch.rows(t)
    }


def with_realized(stale: Sequence[Finding], inputs: Inputs) -> list[Finding]:
    """The stale recommendations, those about a pool with their realized saving in evidence."""
    costs = pool_costs(inputs) if any("pool" in f.scope for f in stale) else {}
    out = []
    for f in stale:
        before = f.evidence.get("current_monthly_usd")
        if "pool" not in f.scope or before is None:
            out.append(f)
            continue
        now = costs.get(f.scope["pool"], Decimal(0))
        realized = (Decimal(str(before)) - now).quantize(CENT)
        estimate = f.impact_usd
        evidence = {
            **f.evidence,
            "realized_monthly_usd": str(realized),
            "realized_window": {"start": inputs.start.isoformat(), "end": inputs.end.isoformat()},
            "pool_monthly_usd_after": str(now.quantize(CENT)),
        }
        said = (f" No longer applies: the pool costs ${now:,.0f} a month now, ${realized:,.0f} "
                f"less than when recommended (estimated ${estimate or 0:,.0f}).")  # fmt: skip
        out.append(f.model_copy(update={"evidence": evidence, "summary": f.summary + said,
                                        "last_seen": max(f.last_seen, inputs.clock.now())}))  # fmt: skip
    return out
