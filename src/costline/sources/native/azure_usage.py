"""Azure cost and usage details exports, native schema: Enterprise Agreement (EA) and Microsoft
Customer Agreement (MCA), actual or amortized.

EA files spell columns `CostInBillingCurrency`, `BillingCurrencyCode`, `Date`, `MeterCategory`
(older ones `Cost`, `BillingCurrency`, `Currency`, `SubscriptionGuid`); MCA files spell them
`costInBillingCurrency`, `billingCurrency`, `date`, `meterCategory`. Columns are found ignoring
case, spaces and underscores, and expressions quote each file's own spelling. The mapping follows
Microsoft's "Convert Cost Management data to FOCUS" (FinOps toolkit docs), with the differences
written down in `docs/mappings/azure.md`.

>>> from costline.sources.native.azure_usage import AZURE_USAGE
>>> AZURE_USAGE.detect(["date", "costInBillingCurrency", "meterCategory", "SubscriptionId"])
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache

from costline.sources.base import NativeDialect
from costline.sources.native.expressions import (
    EMPTY_TAGS,
    NULL_MONEY,
    NULL_TEXT,
    SourceColumns,
    case_map,
    iso,
    lookup,
    mul,
    parse_date,
    read_table,
)

COST = ("CostInBillingCurrency", "Cost", "PreTaxCost", "ExtendedCost")
DATE = ("Date", "UsageDateTime", "UsageDate")
SUBSCRIPTION = ("SubscriptionId", "SubscriptionGuid")
QUANTITY = ("Quantity", "UsageQuantity", "ConsumedQuantity")
RESOURCE_ID = ("ResourceId", "InstanceId", "InstanceName")
# Only MCA files carry pricing-currency columns; there BillingAccount* is the billing profile.
MCA_MARKERS = ("exchangeRatePricingToBilling", "paygCostInBillingCurrency", "costInPricingCurrency")

_CATEGORY = {
    "Usage": "Usage",
    "UnusedReservation": "Usage",
    "UnusedSavingsPlan": "Usage",
    "Purchase": "Purchase",
    "Refund": "Purchase",
    "Tax": "Tax",
    "Credit": "Credit",
}
_FREQUENCY = {"OneTime": "One-Time", "Recurring": "Recurring", "UsageBased": "Usage-Based"}
_PRICING = {
    "OnDemand": "Standard",
    "Spot": "Dynamic",
    "Reservation": "Committed",
    "SavingsPlan": "Committed",
}
_COMMITMENT_MODELS = "('Reservation', 'SavingsPlan')"


def detect(columns: Sequence[str]) -> bool:
    """An Azure usage export has a cost, a date, a meter category and a subscription column
    (any spelling), and no FOCUS `BilledCost`."""
    c = SourceColumns(columns, exact=False)
    return (
        not c.has("BilledCost")
        and c.has(*COST)
        and c.has(*DATE)
        and c.has("MeterCategory")
        and c.has(*SUBSCRIPTION)
    )


def _is_mca(c: SourceColumns) -> bool:
    return c.has(*MCA_MARKERS)


def _charge_type(c: SourceColumns) -> str:
    return c.ref("ChargeType")


def _pricing_model(c: SourceColumns) -> str:
    return c.ref("PricingModel")


def charge_category(c: SourceColumns) -> str:
    """Microsoft's rule: Refund is a Purchase (marked Correction), unknown types Adjustment."""
    if not c.has("ChargeType"):
        return "'Usage'"
    return case_map(_charge_type(c), _CATEGORY, "'Adjustment'")


def _costs(c: SourceColumns) -> list[tuple[str, str]]:
    """BilledCost is the cost column, zero on commitment-covered usage (as in an amortized export;
    an actual-cost export already has zero there). EffectiveCost is the cost column as exported."""
    cost = c.ref(*COST)
    billed = cost
    if c.has("ChargeType") and c.has("PricingModel"):
        covered = f"{_charge_type(c)} = 'Usage' AND {_pricing_model(c)} IN {_COMMITMENT_MODELS}"
        billed = f"CASE WHEN {covered} THEN '0' ELSE {cost} END"
    quantity = c.ref(*QUANTITY)
    fx = [c.ref("exchangeRatePricingToBilling")] if c.has("exchangeRatePricingToBilling") else []
    list_cost = NULL_MONEY
    if c.has("PayGPrice"):
        list_cost = mul(c.ref("PayGPrice"), quantity, *fx)
    if c.has("paygCostInBillingCurrency"):
        list_cost = f"coalesce({c.money('paygCostInBillingCurrency')}, {list_cost})"
    contracted = mul(c.ref("UnitPrice"), quantity, *fx) if c.has("UnitPrice") else NULL_MONEY
    return [
        ("BilledCost", billed),
        ("EffectiveCost", cost),
        ("ListCost", list_cost),
        ("ContractedCost", contracted),
    ]


def _unit_prices(c: SourceColumns) -> list[tuple[str, str]]:
    """Unit prices per UnitOfMeasure, in the billing currency (MCA prices times the FX rate)."""
    fx = [c.ref("exchangeRatePricingToBilling")] if c.has("exchangeRatePricingToBilling") else []

    def price(name: str) -> str:
        if not c.has(name):
            return NULL_MONEY
        return mul(c.ref(name), *fx) if fx else c.money(name)

    return [
        ("ListUnitPrice", price("PayGPrice")),
        ("ContractedUnitPrice", price("UnitPrice")),
    ]


def _accounts(c: SourceColumns) -> list[tuple[str, str]]:
    account_id, account_name = c.ref("BillingAccountId"), c.ref("BillingAccountName")
    if _is_mca(c) and c.has("BillingProfileId"):
        account_id = f"coalesce({c.ref('BillingProfileId')}, {account_id})"
        account_name = f"coalesce({c.ref('BillingProfileName')}, {account_name})"
    return [
        ("BillingCurrency", c.ref("BillingCurrencyCode", "BillingCurrency", "Currency")),
        ("BillingAccountId", account_id),
        ("BillingAccountName", account_name),
        ("SubAccountId", c.ref(*SUBSCRIPTION)),
        ("SubAccountName", c.ref("SubscriptionName")),
        ("InvoiceId", c.ref("InvoiceId")),
    ]


def _periods(c: SourceColumns) -> list[tuple[str, str]]:
    """Charge period: the day of `Date`. Billing period: the calendar month of
    BillingPeriodStartDate (or of `Date`), as [month start, next month start)."""
    date = c.ref(*DATE)
    day = f"date_trunc('day', {parse_date(date)})"
    month_of = parse_date(date)
    if c.has("BillingPeriodStartDate"):
        month_of = f"coalesce({parse_date(c.ref('BillingPeriodStartDate'))}, {month_of})"
    month = f"date_trunc('month', {month_of})"

    # Text that does not parse goes through as written, so the reader's error shows it.
    def text(ts: str, raw: str) -> str:
        return f"coalesce({iso(ts)}, {raw})"

    return [
        ("BillingPeriodStart", text(month, date)),
        ("BillingPeriodEnd", text(f"{month} + INTERVAL 1 MONTH", date)),
        ("ChargePeriodStart", text(day, date)),
        ("ChargePeriodEnd", text(f"{day} + INTERVAL 1 DAY", date)),
    ]


def _charge(c: SourceColumns) -> list[tuple[str, str]]:
    t = _charge_type(c)
    derived = (
        f"CASE WHEN {t} IN ('Purchase', 'Refund') THEN 'One-Time' "
        f"WHEN {t} IS NULL OR {t} IN ('Usage', 'UnusedReservation', 'UnusedSavingsPlan') "
        f"THEN 'Usage-Based' ELSE 'One-Time' END"
    )
    frequency = derived
    if c.has("Frequency"):
        frequency = case_map(c.ref("Frequency"), _FREQUENCY, derived)
    pricing = NULL_TEXT
    if c.has("PricingModel"):
        pricing = case_map(_pricing_model(c), _PRICING, NULL_TEXT)
        pricing = f"CASE WHEN {charge_category(c)} = 'Usage' THEN {pricing} ELSE NULL END"
    return [
        ("ChargeCategory", charge_category(c)),
        ("ChargeClass", f"CASE WHEN {t} = 'Refund' THEN 'Correction' ELSE NULL END"),
        ("ChargeDescription", c.ref("ProductName", "Product")),
        ("ChargeFrequency", frequency),
        ("PricingCategory", pricing),
    ]


def _quantities(c: SourceColumns) -> list[tuple[str, str]]:
    """Quantities in UnitOfMeasure blocks as exported (cost = Quantity x EffectivePrice holds on
    the EA sample for `1 Hour`, `10K` and `1K` alike), so no block-size scaling is applied."""
    quantity, unit = c.ref(*QUANTITY), c.ref("UnitOfMeasure")
    usage = f"{charge_category(c)} = 'Usage'"
    return [
        ("PricingQuantity", quantity),
        ("PricingUnit", unit),
        ("ConsumedQuantity", f"CASE WHEN {usage} THEN {quantity} ELSE NULL END"),
        ("ConsumedUnit", f"CASE WHEN {usage} THEN {unit} ELSE NULL END"),
    ]


def _parties(c: SourceColumns) -> list[tuple[str, str]]:
    return [
        ("ProviderName", "'Microsoft'"),
        ("PublisherName", f"coalesce(nullif({c.ref('PublisherName')}, ''), 'Microsoft')"),
        ("InvoiceIssuerName", f"coalesce(nullif({c.ref('PartnerName')}, ''), 'Microsoft')"),
    ]


def resource_type(resource_id: str) -> str:
    """The lower-case ARM type of a resource id: `.../providers/Microsoft.Sql/servers/s1/databases
    /d1` -> `microsoft.sql/servers/databases` (the last `/providers/` segment wins). Plain string
    splits, no regex: this runs on every row."""
    after = f"string_split(lower({resource_id}), '/providers/')"
    parts = f"string_split({after}[-1], '/')"
    types = f"array_to_string(list_slice({parts}, 2, -1, 2), '/')"
    return f"CASE WHEN len({after}) < 2 THEN NULL ELSE {parts}[1] || '/' || {types} END"


def _resource(c: SourceColumns) -> list[tuple[str, str]]:
    rid = c.ref(*RESOURCE_ID)
    last = f"nullif(regexp_extract(rtrim({rid}, '/'), '[^/]*$'), '')"
    location = c.ref("ResourceLocation", "Location")
    region = f"lower(replace({location}, ' ', ''))"
    region = f"CASE WHEN {region} IN ('', 'unassigned', 'unknown') THEN NULL ELSE {region} END"
    return [
        ("RegionId", region),
        ("RegionName", NULL_TEXT),
        ("AvailabilityZone", c.ref("AvailabilityZone")),
        ("ResourceId", rid),
        ("ResourceName", f"coalesce(nullif({c.ref('ResourceName')}, ''), {last})"),
        ("ResourceType", resource_type(rid)),
    ]


_ATTRS = ("ServiceName", "ServiceCategory", "ServiceSubcategory")


@cache
def _services() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Services.csv as three lookups to `name|category|subcategory`: by ARM type where all rows of
    the type agree; by `service|type` for the few types that need the service to decide; by
    consumed service where all its rows agree (for rows without a resource id)."""
    by_pair: dict[str, str] = {}
    by_type: defaultdict[str, set[str]] = defaultdict(set)
    by_service: defaultdict[str, set[str]] = defaultdict(set)
    for row in read_table("azure_services.csv"):
        service, rtype = row["ConsumedService"].lower(), row["ResourceType"].lower()
        packed = "|".join(row[a] for a in _ATTRS)
        by_pair.setdefault(f"{service}|{rtype}", packed)
        by_type[rtype].add(packed)
        by_service[service].add(packed)

    def unique(found: dict[str, set[str]]) -> dict[str, str]:
        return {k: next(iter(v)) for k, v in found.items() if k and len(v) == 1}

    types = unique(by_type)
    pairs = {k: v for k, v in by_pair.items() if k.split("|", 1)[1] not in types}
    return pairs, types, unique(by_service)


@cache
def _service_categories() -> dict[str, str]:
    """Consumed service -> ServiceCategory: focus_converters' table, then Services.csv where all
    rows of a service agree on the category."""
    categories: defaultdict[str, set[str]] = defaultdict(set)
    for row in read_table("azure_services.csv"):
        categories[row["ConsumedService"].lower()].add(row["ServiceCategory"])
    merged = {k: next(iter(v)) for k, v in categories.items() if k and len(v) == 1}
    for row in read_table("azure_category_mapping.csv"):
        merged[row["ConsumedService"].lower()] = row["ServiceCategory"]
    return merged


def _service(c: SourceColumns) -> list[tuple[str, str]]:
    """ServiceName, ServiceCategory and ServiceSubcategory from Services.csv by consumed service
    and ARM type; else MeterCategory, the consumed service's category, and `Other (category)`."""
    service = f"lower({c.ref('ConsumedService')})"
    rtype = resource_type(c.ref(*RESOURCE_ID))
    by_pair, by_type, by_service = _services()
    pair_key = f"{service} || '|' || {rtype}"
    hits = [lookup(by_pair, pair_key), lookup(by_type, rtype), lookup(by_service, service)]
    hit = f"coalesce({', '.join(hits)})"
    fallbacks = f"{c.ref('MeterCategory')}, {c.ref('ConsumedService')}"
    name = f"coalesce(nullif(split_part({hit}, '|', 1), ''), {fallbacks})"
    found_category = lookup(_service_categories(), service)
    category = f"coalesce(nullif(split_part({hit}, '|', 2), ''), {found_category}, 'Other')"
    subcategory = f"coalesce(nullif(split_part({hit}, '|', 3), ''), 'Other (' || {category} || ')')"
    return [
        ("ServiceName", name),
        ("ServiceCategory", category),
        ("ServiceSubcategory", subcategory),
        ("SkuId", c.ref("ProductId")),
        ("SkuPriceId", NULL_TEXT),
        ("SkuMeter", c.ref("MeterName")),
    ]


def _commitment(c: SourceColumns) -> list[tuple[str, str]]:
    """benefitId (newer exports) or ReservationId (older EA), only when the file has either."""
    if not c.has("benefitId", "ReservationId"):
        return []
    ids = [f"nullif({c.ref(n)}, '')" for n in ("benefitId", "ReservationId") if c.has(n)]
    cid = f"coalesce({', '.join(ids)})"
    model = _pricing_model(c)

    def kind(reservation: str, savings_plan: str) -> str:
        return (
            f"CASE WHEN {cid} IS NULL THEN NULL "
            f"WHEN lower({cid}) LIKE '%/microsoft.capacity/%' THEN {reservation} "
            f"WHEN lower({cid}) LIKE '%/microsoft.billingbenefits/%' THEN {savings_plan} "
            f"WHEN {model} = 'Reservation' THEN {reservation} "
            f"WHEN {model} = 'SavingsPlan' THEN {savings_plan} ELSE NULL END"
        )

    t = _charge_type(c)
    status = (
        f"CASE WHEN {t} IN ('UnusedReservation', 'UnusedSavingsPlan') THEN 'Unused' "
        f"WHEN {t} = 'Usage' AND {model} IN {_COMMITMENT_MODELS} THEN 'Used' ELSE NULL END"
    )
    names = [c.ref(n) for n in ("benefitName", "ReservationName") if c.has(n)]
    return [
        ("CommitmentDiscountId", cid),
        ("CommitmentDiscountName", f"coalesce({', '.join(names)})" if names else NULL_TEXT),
        ("CommitmentDiscountType", kind("'Reservation'", "'Savings Plan'")),
        ("CommitmentDiscountCategory", kind("'Usage'", "'Spend'")),
        ("CommitmentDiscountStatus", status),
    ]


def tags(c: SourceColumns) -> str:
    """Tags as a JSON object of strings. EA writes `"k": "v","k2": "v2"` without braces: wrapped.
    Empty is `{}`; text that is still not a JSON object (or repeats a key) becomes NULL."""
    if not c.has("Tags"):
        return EMPTY_TAGS
    raw = f"trim({c.ref('Tags')})"
    wrapped = (
        f"CASE WHEN {raw} IS NULL OR {raw} = '' THEN '{{}}' "
        f"WHEN starts_with({raw}, '{{') THEN {raw} ELSE '{{' || {raw} || '}}' END"
    )
    as_map = f"TRY_CAST(TRY_CAST({wrapped} AS JSON) AS MAP(VARCHAR, VARCHAR))"
    return f"CAST(to_json({as_map}) AS VARCHAR)"


def select(columns: Sequence[str]) -> list[tuple[str, str]]:
    """FOCUS 1.2 columns as DuckDB expressions over an EA or MCA export's raw columns."""
    c = SourceColumns(columns, exact=False)
    return [
        *_costs(c),
        *_accounts(c),
        *_periods(c),
        *_charge(c),
        *_quantities(c),
        *_unit_prices(c),
        *_parties(c),
        *_resource(c),
        *_service(c),
        *_commitment(c),
        ("Tags", tags(c)),
    ]


AZURE_USAGE = NativeDialect(
    name="azure-usage",
    description="Azure EA / MCA cost and usage details export, native schema (not FOCUS)",
    detect=detect,
    select=select,
)
