"""Unit prices of the non-instance services the demo organization uses (storage, egress, tokens, ...).

These are list prices as published on the providers' price pages, typed in by hand and approximate
(about mid-2025), except the GCP storage and egress rows, copied from the Cyclenerd price list
(Apache-2.0, see `costline/catalog/data/SOURCES.md`). They only feed the synthetic demo bills:
costline never prices real usage from this module. Instance prices come from `costline.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

TOKENS_1K = "1K Tokens"
APPROXIMATE = "price page, approximate (mid-2025)"
CHARACTERS_1K = "1K Characters"


@dataclass(frozen=True)
class Rate:
    """A metered price: `unit_price` USD per `pricing_unit`."""

    key: str
    provider: str
    sku: str  # provider's meter name, used in ChargeDescription and to derive SkuId
    pricing_unit: str
    unit_price: Decimal
    quantum: Decimal  # resolution of the quantity per charge period
    consumed_unit: str
    consumed_per_unit: (
        Decimal  # ConsumedQuantity per 1 PricingQuantity (1000 tokens per "1K Tokens")
    )
    monthly: bool = False  # priced per month: a day's quantity is the daily amount / days in month
    source: str = APPROXIMATE


def _rate(key: str, sku: str, unit: str, price: str, *, source: str = APPROXIMATE) -> Rate:
    return Rate(
        key=key,
        provider=key.split(".")[0],
        sku=sku,
        pricing_unit=unit,
        unit_price=Decimal(price),
        quantum=Decimal("0.001"),
        consumed_unit=unit,
        consumed_per_unit=Decimal(1),
        source=source,
    )


def _storage(key: str, sku: str, price: str, *, source: str = APPROXIMATE) -> Rate:
    """A GB-month price, charged daily as GB stored x (1 / days in the month)."""
    base = _rate(key, sku, "GB-Months", price, source=source)
    return replace(base, quantum=Decimal("0.0000000001"), monthly=True)


def _per_1k(key: str, sku: str, unit: str, price: str, consumed: str) -> Rate:
    """A price per 1,000 tokens or characters; ConsumedQuantity counts the single units."""
    base = _rate(key, sku, unit, price)
    return replace(base, consumed_unit=consumed, consumed_per_unit=Decimal(1000))


def _tokens(key: str, sku: str, price: str) -> Rate:
    return _per_1k(key, sku, TOKENS_1K, price, "Tokens")


_CYCLENERD = "Cyclenerd google-cloud-pricing-cost-calculator pricing.yml fd66b26 (Apache-2.0)"

RATES: dict[str, Rate] = {
    r.key: r
    for r in (
        # AWS, us-east-1 (aws.amazon.com/<service>/pricing)
        _rate("aws.eks", "USE1-AmazonEKS-Hours:perCluster", "Hours", "0.10"),
        _storage("aws.s3", "USE1-TimedStorage-ByteHrs", "0.023"),
        _rate("aws.egress", "USE1-DataTransfer-Out-Bytes", "GB", "0.09"),
        _rate("aws.interregion", "USE1-USW2-AWS-Out-Bytes", "GB", "0.02"),
        _rate("aws.logs", "USE1-DataProcessing-Bytes", "GB", "0.50"),
        _rate("aws.aoss", "USE1-SearchOCU", "Hours", "0.24"),
        _tokens("aws.sonnet.in", "USE1-Claude3.5Sonnet-input-tokens", "0.003"),
        _tokens("aws.sonnet.out", "USE1-Claude3.5Sonnet-output-tokens", "0.015"),
        _tokens("aws.haiku.in", "USE1-Claude3Haiku-input-tokens", "0.00025"),
        _tokens("aws.haiku.out", "USE1-Claude3Haiku-output-tokens", "0.00125"),
        # Azure, East US / West Europe (azure.microsoft.com/pricing)
        _rate("azure.aks", "Standard Uptime SLA", "Hours", "0.10"),
        _storage("azure.blob", "Hot LRS Data Stored", "0.018"),
        _rate("azure.egress", "Standard Data Transfer Out", "GB", "0.087"),
        _rate("azure.logs", "Analytics Logs Data Ingestion", "GB", "2.30"),
        _rate("azure.search", "Standard S1 Unit", "Hours", "0.336"),
        _tokens("azure.gpt4o.in", "gpt-4o-0806-Inp-glbl", "0.0025"),
        _tokens("azure.gpt4o.out", "gpt-4o-0806-Outp-glbl", "0.01"),
        _tokens("azure.mini.in", "gpt-4o-mini-0718-Inp-glbl", "0.00015"),
        _tokens("azure.mini.out", "gpt-4o-mini-0718-Outp-glbl", "0.0006"),
        # Google Cloud, us-central1 (cloud.google.com/<product>/pricing)
        _rate("gcp.gke", "Regional Kubernetes Clusters", "Hours", "0.10"),
        _storage("gcp.gcs", "Standard Storage US Central 1", "0.02", source=_CYCLENERD),
        # Not billed: the tier the planted checkpoints belong in (`demo.waste_truth`).
        _storage("gcp.gcs.coldline", "Coldline Storage US Central 1", "0.004", source=_CYCLENERD),
        _rate("gcp.egress", "Network Internet Egress Americas", "GB", "0.12", source=_CYCLENERD),
        _rate("gcp.logging", "Log Storage cost", "GB", "0.50"),
        _tokens("gcp.flash.in", "Gemini 2.0 Flash Text Input - Predictions", "0.00015"),
        _tokens("gcp.flash.out", "Gemini 2.0 Flash Text Output - Predictions", "0.0006"),
        _per_1k("gcp.embed", "Text Embedding 005 Online", CHARACTERS_1K, "0.000025", "Characters"),
        # Lambda (lambda.ai/pricing): persistent filesystem storage
        _storage("lambda.fs", "Persistent filesystem storage", "0.20"),
    )
}

# AWS Compute Savings Plan, 1 year, no upfront: discount off the on-demand rate by instance family.
# Approximate figures read off the Savings Plans price page; a demo assumption, not a price table.
SAVINGS_PLAN_DISCOUNT: dict[str, Decimal] = {
    "p4d": Decimal("0.30"),
    "g5": Decimal("0.27"),
    "g6": Decimal("0.27"),
    "g6e": Decimal("0.27"),
    "m7i": Decimal("0.34"),
}

# Demo assumptions, not published prices: the Azure EA discount on compute, Lambda's sales tax rate
# and AWS's monthly promotional credit.
AZURE_EA_COMPUTE_DISCOUNT = Decimal("0.10")
LAMBDA_SALES_TAX_RATE = Decimal("0.0625")
AWS_MONTHLY_PROMO_CREDIT = Decimal("2000")
