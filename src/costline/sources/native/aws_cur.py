"""AWS legacy Cost and Usage Report (CSV with `lineItem/...`, `bill/...`, `pricing/...` columns).

Mapped to FOCUS 1.2 column names after the FinOps Foundation's focus_converters plan
(`conversion_rules/aws-cur.csv`), with the changes written down in `docs/mappings/aws-cur.md`:
BilledCost is `lineItem/UnblendedCost` (so the ledger total is the CUR's own total), credits are
`Credit` as FOCUS 1.0+ has it, and tags come from the `resourceTags/*` columns.

>>> from costline.sources.native.aws_cur import AWS_CUR
>>> AWS_CUR.detect(["bill/PayerAccountId", "lineItem/UnblendedCost"])
False
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from costline.sources.base import NativeDialect, quote_literal
from costline.sources.native.expressions import (
    EMPTY_TAGS,
    NULL_MONEY,
    NULL_TEXT,
    SourceColumns,
    case_map,
    dec,
    in_list,
    lookup,
    mul,
    read_table,
)

# Present in every legacy CUR, whatever optional column groups the report was set up with.
REQUIRED = (
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedCost",
)
TAG_PREFIX = "resourceTags/"

# lineItem/LineItemType -> FOCUS ChargeCategory. Anything else is an `Adjustment`.
_CATEGORY = {
    "Usage": "Usage",
    "DiscountedUsage": "Usage",
    "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanNegation": "Usage",
    "BundledDiscount": "Usage",
    "Discount": "Usage",
    "EdpDiscount": "Usage",
    "PrivateRateDiscount": "Usage",
    "DistributorDiscount": "Usage",
    "Fee": "Purchase",
    "RIFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
    "SavingsPlanRecurringFee": "Purchase",
    "Tax": "Tax",
    "Credit": "Credit",
}
# Line item types that measure consumption (ConsumedQuantity is only set on these).
_CONSUMPTION = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")
_COMMITTED = ("DiscountedUsage", "SavingsPlanCoveredUsage", "SavingsPlanNegation")


@cache
def _service_categories() -> dict[str, str]:
    rows = read_table("aws_category_mapping.csv")
    return {row["product_code"].lower(): row["ServiceCategory"] for row in rows}


def detect(columns: Sequence[str]) -> bool:
    """A legacy CUR has every `REQUIRED` column, spelled exactly, and is not a FOCUS file."""
    names = set(columns)
    return "BilledCost" not in names and all(c in names for c in REQUIRED)


def _line_type(c: SourceColumns) -> str:
    return c.ref("lineItem/LineItemType")


def charge_category(c: SourceColumns) -> str:
    t = _line_type(c)
    refund = "'Usage'"
    if c.has("lineItem/TaxType"):
        refund = f"CASE WHEN {c.ref('lineItem/TaxType')} IS NOT NULL THEN 'Tax' ELSE 'Usage' END"
    by_type = case_map(t, _CATEGORY, "'Adjustment'")
    return f"CASE WHEN {t} = 'Refund' THEN {refund} ELSE {by_type} END"


def _charge_class(c: SourceColumns) -> str:
    """`Correction` when the charge period starts before the billing period it is billed in."""
    start = f"TRY_CAST({c.ref('lineItem/UsageStartDate')} AS TIMESTAMP)"
    period = f"TRY_CAST({c.ref('bill/BillingPeriodStartDate')} AS TIMESTAMP)"
    return f"CASE WHEN {start} < {period} THEN 'Correction' ELSE NULL END"


def _charge_frequency(c: SourceColumns) -> str:
    t = _line_type(c)
    anniversary = f"{c.ref('bill/BillType')} = 'Anniversary'"
    return (
        f"CASE WHEN {in_list(t, [k for k, v in _CATEGORY.items() if v == 'Usage'])} "
        f"THEN 'Usage-Based' "
        f"WHEN {in_list(t, ['RIFee', 'SavingsPlanRecurringFee'])} THEN 'Recurring' "
        f"WHEN {t} = 'Fee' AND {anniversary} THEN 'Recurring' "
        f"ELSE 'One-Time' END"
    )


def _effective_cost(c: SourceColumns) -> str:
    """Amortized cost: commitment fees spread onto the usage they cover (focus_converters' rule)."""
    t = _line_type(c)
    arms: list[str] = []
    if c.has("savingsPlan/SavingsPlanEffectiveCost"):
        sp_cost = c.money("savingsPlan/SavingsPlanEffectiveCost")
        arms.append(f"WHEN {t} = 'SavingsPlanCoveredUsage' THEN {sp_cost}")
    if c.has("savingsPlan/TotalCommitmentToDate", "savingsPlan/UsedCommitment"):
        total = f"coalesce({c.money('savingsPlan/TotalCommitmentToDate')}, 0)"
        used = f"coalesce({c.money('savingsPlan/UsedCommitment')}, 0)"
        arms.append(f"WHEN {t} = 'SavingsPlanRecurringFee' THEN {total} - {used}")
    arms.append(f"WHEN {in_list(t, ['SavingsPlanNegation', 'SavingsPlanUpfrontFee'])} THEN 0")
    if c.has("reservation/EffectiveCost"):
        arms.append(f"WHEN {t} = 'DiscountedUsage' THEN {c.money('reservation/EffectiveCost')}")
    unused = [
        name
        for name in (
            "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
            "reservation/UnusedRecurringFee",
        )
        if c.has(name)
    ]
    if unused:
        total_unused = " + ".join(f"coalesce({c.money(n)}, 0)" for n in unused)
        arms.append(f"WHEN {t} = 'RIFee' THEN {total_unused}")
    if c.has("reservation/ReservationARN"):
        arms.append(f"WHEN {t} = 'Fee' AND {c.ref('reservation/ReservationARN')} <> '' THEN 0")
    return dec(f"CASE {' '.join(arms)} ELSE {c.money('lineItem/UnblendedCost')} END")


def _list_cost(c: SourceColumns) -> str:
    """AWS's own `pricing/publicOnDemandCost` (rounded as UnblendedCost is), else rate x amount."""
    t = _line_type(c)
    computed = NULL_MONEY
    if c.has("pricing/publicOnDemandRate"):
        computed = mul(c.ref("pricing/publicOnDemandRate"), c.ref("lineItem/UsageAmount"))
    public_cost = c.ref("pricing/publicOnDemandCost")
    # CASE, not coalesce: the product is then only computed on rows that need it.
    public = f"CASE WHEN {public_cost} IS NOT NULL THEN {dec(public_cost)} ELSE {computed} END"
    return (
        f"CASE WHEN {t} = 'SavingsPlanNegation' THEN {dec('0')} "
        f"WHEN {t} = 'Tax' THEN {c.money('lineItem/UnblendedCost')} ELSE {public} END"
    )


def _contracted_cost(c: SourceColumns) -> str:
    """Unblended cost (negotiated rates, before commitment discounts); negations count once."""
    t = _line_type(c)
    return (
        f"CASE WHEN {t} = 'SavingsPlanNegation' THEN {dec('0')} "
        f"ELSE {c.money('lineItem/UnblendedCost')} END"
    )


def _pricing_category(c: SourceColumns) -> str:
    t = _line_type(c)
    spot = f"{c.ref('lineItem/UsageType')} LIKE '%SpotUsage%'"
    return (
        f"CASE WHEN {in_list(t, _COMMITTED)} THEN 'Committed' "
        f"WHEN {t} = 'Usage' AND {spot} THEN 'Dynamic' "
        f"WHEN {t} = 'Usage' THEN 'Standard' ELSE NULL END"
    )


def _quantities(c: SourceColumns) -> list[tuple[str, str]]:
    t = _line_type(c)
    amount = c.ref("lineItem/UsageAmount")
    unit = c.ref("pricing/unit")
    pricing_quantity = amount
    if c.has("reservation/TotalReservedUnits"):
        reserved = c.ref("reservation/TotalReservedUnits")
        pricing_quantity = (
            f"CASE WHEN {t} = 'RIFee' THEN coalesce({reserved}, {amount}) ELSE {amount} END"
        )
    consumed = in_list(t, _CONSUMPTION)
    return [
        ("PricingQuantity", f"CASE WHEN {t} = 'Tax' THEN NULL ELSE {pricing_quantity} END"),
        ("PricingUnit", f"CASE WHEN {t} = 'Tax' THEN NULL ELSE {unit} END"),
        ("ConsumedQuantity", f"CASE WHEN {consumed} THEN {amount} ELSE NULL END"),
        ("ConsumedUnit", f"CASE WHEN {consumed} THEN {unit} ELSE NULL END"),
        ("ListUnitPrice", c.ref("pricing/publicOnDemandRate")),
        ("ContractedUnitPrice", c.ref("lineItem/UnblendedRate")),
    ]


def _parties(c: SourceColumns) -> list[tuple[str, str]]:
    marketplace = f"{c.ref('bill/BillingEntity')} = 'AWS Marketplace'"
    seller = f"coalesce({c.ref('lineItem/LegalEntity')}, 'AWS Marketplace')"
    return [
        ("ProviderName", "'AWS'"),
        ("PublisherName", f"CASE WHEN {marketplace} THEN {seller} ELSE 'AWS' END"),
        ("InvoiceIssuerName", f"coalesce({c.ref('bill/InvoicingEntity')}, 'AWS')"),
        ("InvoiceId", c.ref("bill/InvoiceId")),
    ]


def _resource(c: SourceColumns) -> list[tuple[str, str]]:
    """ResourceId as AWS writes it; type and name split out of ARNs (`arn:...:type/name`)."""
    rid = c.ref("lineItem/ResourceId")
    parts = f"string_split({rid}, ':')"
    is_arn = f"starts_with({rid}, 'arn:')"
    rtype = (
        f"CASE WHEN NOT {is_arn} THEN NULL "
        f"WHEN len({parts}) >= 7 THEN {parts}[6] "
        f"WHEN contains({parts}[6], '/') THEN split_part({parts}[6], '/', 1) "
        f"ELSE NULL END"
    )
    rname = (
        f"CASE WHEN NOT {is_arn} THEN {rid} "
        f"WHEN len({parts}) >= 7 THEN {parts}[-1] "
        f"ELSE regexp_extract({parts}[6], '([^/]+)$', 1) END"
    )
    return [("ResourceId", rid), ("ResourceName", rname), ("ResourceType", rtype)]


def _service(c: SourceColumns) -> list[tuple[str, str]]:
    code = c.ref("lineItem/ProductCode")
    category = f"coalesce({lookup(_service_categories(), f'lower({code})')}, 'Other')"
    name = c.ref("product/ProductName", "product/servicename", "lineItem/ProductCode")
    if c.has("product/ProductName", "product/servicename"):
        name = f"coalesce({name}, {code})"
    return [("ServiceName", name), ("ServiceCategory", category)]


def _location(c: SourceColumns) -> list[tuple[str, str]]:
    region = c.ref("product/regionCode", "product/region")
    if c.has("product/regionCode") and c.has("product/region"):
        region = f"coalesce({c.ref('product/regionCode')}, {c.ref('product/region')})"
    located = f"{c.ref('product/locationType')} = 'AWS Region'"
    return [
        ("RegionId", region),
        (
            "RegionName",
            f"CASE WHEN {located} THEN {c.ref('product/location')} ELSE NULL END",
        ),
        ("AvailabilityZone", c.ref("lineItem/AvailabilityZone")),
    ]


def _sku(c: SourceColumns) -> list[tuple[str, str]]:
    price_id = c.ref("pricing/RateCode", "pricing/RateId")
    if c.has("pricing/RateCode") and c.has("pricing/RateId"):
        price_id = f"coalesce({c.ref('pricing/RateCode')}, {c.ref('pricing/RateId')})"
    return [("SkuId", c.ref("product/sku")), ("SkuPriceId", price_id)]


def _commitment(c: SourceColumns) -> list[tuple[str, str]]:
    """Savings Plan and Reserved Instance ARNs, only when the report has those column groups."""
    sp, ri = c.find("savingsPlan/SavingsPlanARN"), c.find("reservation/ReservationARN")
    if sp is None and ri is None:
        return []
    sp_ref = c.ref(sp) if sp else NULL_TEXT
    ri_ref = c.ref(ri) if ri else NULL_TEXT
    t = _line_type(c)

    def pick(sp_value: str, ri_value: str) -> str:
        return (
            f"CASE WHEN nullif({sp_ref}, '') IS NOT NULL THEN {sp_value} "
            f"WHEN nullif({ri_ref}, '') IS NOT NULL THEN {ri_value} ELSE NULL END"
        )

    covered = in_list(t, ["SavingsPlanCoveredUsage", "DiscountedUsage"])
    return [
        ("CommitmentDiscountId", pick(sp_ref, ri_ref)),
        ("CommitmentDiscountType", pick("'Savings Plan'", "'Reserved Instance'")),
        ("CommitmentDiscountCategory", pick("'Spend'", "'Usage'")),
        ("CommitmentDiscountStatus", f"CASE WHEN {covered} THEN 'Used' ELSE NULL END"),
    ]


def tag_key(column: str) -> str:
    """`resourceTags/user:team` -> `team`; `resourceTags/aws:createdBy` -> `aws:createdBy`."""
    key = column[len(TAG_PREFIX) :]
    return key[len("user:") :] if key.startswith("user:") else key


def _tags(c: SourceColumns) -> str:
    """A JSON object of the row's non-empty `resourceTags/*` values; the first column wins a key."""
    entries: dict[str, str] = {}
    for column in c.names:
        if column.startswith(TAG_PREFIX) and len(column) > len(TAG_PREFIX):
            entries.setdefault(tag_key(column), column)
    if not entries:
        return EMPTY_TAGS
    structs = ", ".join(
        f"{{'k': {quote_literal(k)}, 'v': {c.ref(col)}}}" for k, col in entries.items()
    )
    kept = f"list_filter([{structs}], lambda e: e.v IS NOT NULL AND e.v <> '')"
    return f"CAST(to_json(map_from_entries({kept})) AS VARCHAR)"


def select(columns: Sequence[str]) -> list[tuple[str, str]]:
    """FOCUS 1.2 columns as DuckDB expressions over a legacy CUR's raw (VARCHAR) columns."""
    c = SourceColumns(columns, exact=True)
    return [
        ("BilledCost", c.ref("lineItem/UnblendedCost")),
        ("EffectiveCost", _effective_cost(c)),
        ("ListCost", _list_cost(c)),
        ("ContractedCost", _contracted_cost(c)),
        ("BillingCurrency", c.ref("lineItem/CurrencyCode")),
        ("BillingAccountId", c.ref("bill/PayerAccountId")),
        ("BillingAccountName", c.ref("bill/PayerAccountName")),
        ("SubAccountId", c.ref("lineItem/UsageAccountId")),
        ("SubAccountName", c.ref("lineItem/UsageAccountName")),
        ("BillingPeriodStart", c.ref("bill/BillingPeriodStartDate")),
        ("BillingPeriodEnd", c.ref("bill/BillingPeriodEndDate")),
        ("ChargePeriodStart", c.ref("lineItem/UsageStartDate")),
        ("ChargePeriodEnd", c.ref("lineItem/UsageEndDate")),
        ("ChargeCategory", charge_category(c)),
        ("ChargeClass", _charge_class(c)),
        ("ChargeDescription", c.ref("lineItem/LineItemDescription")),
        ("ChargeFrequency", _charge_frequency(c)),
        ("PricingCategory", _pricing_category(c)),
        *_quantities(c),
        *_parties(c),
        *_location(c),
        *_resource(c),
        *_service(c),
        *_sku(c),
        *_commitment(c),
        ("Tags", _tags(c)),
    ]


AWS_CUR = NativeDialect(
    name="aws-cur",
    description="AWS legacy Cost and Usage Report (lineItem/, bill/, resourceTags/ columns)",
    detect=detect,
    select=select,
)
