"""How a source's column names become FOCUS 1.2 names, and which FOCUS version they reveal.

Renames come from the FOCUS changelog (REFERENCE.md): pre-1.0 names (AmortizedCost, ChargeType,
UsageQuantity, Region, Provider ...) and Azure's pre-1.2 `x_` names. Matching is case-insensitive,
because real exports are not always careful (`SkuPriceid` in the FOCUS 1.2 spec's own examples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from costline.schema import FOCUS_VERSIONS, focus_column_map, focus_columns

# Older or vendor spelling -> FOCUS 1.2 name, with the version the old spelling belongs to.
LEGACY_NAMES: dict[str, tuple[str, str]] = {
    "AmortizedCost": ("EffectiveCost", "1.0-preview"),
    "ChargeType": ("ChargeCategory", "1.0-preview"),
    "UsageQuantity": ("ConsumedQuantity", "1.0-preview"),
    "UsageUnit": ("ConsumedUnit", "1.0-preview"),
    "Region": ("RegionId", "1.0-preview"),
    "Provider": ("ProviderName", "0.5"),
    "Publisher": ("PublisherName", "0.5"),
    "InvoiceIssuer": ("InvoiceIssuerName", "0.5"),
    "ResourceID": ("ResourceId", "0.5"),
    "x_InvoiceId": ("InvoiceId", "1.0"),
    "x_PricingCurrency": ("PricingCurrency", "1.0"),
    "x_SkuMeterName": ("SkuMeter", "1.0"),
}

# Without these costline cannot place a line in money and time: their absence is an error.
REQUIRED = (
    "BilledCost",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)
# Values that must never be null, row by row.
NOT_NULL = ("BilledCost", "ChargePeriodStart")


@dataclass
class ColumnPlan:
    """Where each FOCUS column of the ledger comes from in one source file."""

    focus: dict[str, str] = field(default_factory=dict)  # FOCUS name -> source column
    extras: list[str] = field(default_factory=list)  # x_ and unknown source columns, kept as-is
    renamed: dict[str, str] = field(default_factory=dict)  # source column -> FOCUS name, for notes
    legacy_versions: set[str] = field(default_factory=set)

    @property
    def version(self) -> str:
        """The FOCUS version the columns reveal: the newest version any of them was introduced in."""
        seen = {focus_column_map()[name].introduced for name in self.focus} | self.legacy_versions
        order = {v: i for i, v in enumerate(FOCUS_VERSIONS)}
        if self.legacy_versions:
            # Old spellings mean the file predates 1.0: it is the newest draft its old names fit.
            return max(self.legacy_versions, key=order.__getitem__)
        known = [v for v in seen if v in order]
        newest = max(known, key=order.__getitem__, default="1.0")
        return "1.0" if order[newest] < order["1.0"] else newest


def plan_columns(source_columns: Sequence[str]) -> ColumnPlan:
    plan = ColumnPlan()
    by_lower = {c.name.lower(): c.name for c in focus_columns()}
    legacy_lower = {k.lower(): (k, v) for k, v in LEGACY_NAMES.items()}
    deferred: list[tuple[str, str, str]] = []
    for col in source_columns:
        clean = col.lstrip("\ufeff").strip()
        exact = by_lower.get(clean.lower())
        if exact is not None and exact not in plan.focus:
            plan.focus[exact] = col
            if exact != clean:
                plan.renamed[col] = exact
        elif clean.lower() in legacy_lower:
            _, (new, version) = legacy_lower[clean.lower()]
            deferred.append((col, new, version))
        else:
            plan.extras.append(col)
    for col, new, version in deferred:
        if new in plan.focus:  # the file also has the modern column: keep the old one as an extra
            plan.extras.append(col)
            continue
        plan.focus[new] = col
        plan.renamed[col] = new
        if not col.startswith("x_"):
            plan.legacy_versions.add(version)
    return plan


def missing_required(plan: ColumnPlan) -> list[str]:
    have = set(plan.focus)
    if "ProviderName" not in have and "ServiceProviderName" in have:
        have.add("ProviderName")
    return [c for c in REQUIRED if c not in have]


def missing_mandatory(plan: ColumnPlan, version: str) -> list[str]:
    """FOCUS-mandatory columns of `version` the file lacks: worth a warning, not a refusal."""
    check = version if version in ("1.0", "1.1", "1.2", "1.3", "1.4") else "1.0"
    have = set(plan.focus)
    # ProviderName and ServiceProviderName are filled from each other on ingest.
    if have & {"ProviderName", "ServiceProviderName"}:
        have.update({"ProviderName", "ServiceProviderName"})
    return [c.name for c in focus_columns() if c.mandatory_in(check) and c.name not in have]
