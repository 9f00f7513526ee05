"""The names a scenario's bills carry: meters (SKUs with readable descriptions), teams, accounts.

Each `Meter` is one priced SKU as a provider bills it: the service, the SKU's description
(`ChargeDescription`), its meter (`SkuMeter`), its price details (`SkuPriceDetails`), the pricing
unit and the list price. Prices are the providers' public on-demand prices (rounded); they only
set the quantities a line carries, the daily cost is drawn by the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from costline.demo.org import sku_id


@dataclass(frozen=True)
class Meter:
    role: str  # endpoint, training, batch, storage, transfer, tokens, database, kubernetes
    provider: str  # aws, gcp, azure
    service: str
    category: str  # ServiceCategory
    subcategory: str  # ServiceSubcategory
    label: str  # what the SKU id is derived from
    description: str  # ChargeDescription
    meter: str  # SkuMeter
    unit: str  # PricingUnit
    price: Decimal  # ListUnitPrice, USD per unit
    resource_type: str
    details: str  # SkuPriceDetails (JSON text)

    def sku(self, region: str) -> str:
        return sku_id(self.provider, self.label, region)


def _m(role: str, provider: str, service: str, cat: str, sub: str, label: str, description: str,
       meter: str, unit: str, price: str, rtype: str, details: str) -> Meter:  # fmt: skip
    return Meter(role, provider, service, cat, sub, label, description, meter, unit,
                 Decimal(price), rtype, details)  # fmt: skip


AI, COMPUTE, STORAGE, NETWORK, DB = (
    "AI and Machine Learning", "Compute", "Storage", "Networking", "Databases",
)  # fmt: skip
METERS: tuple[Meter, ...] = (
    _m("endpoint", "aws", "Amazon SageMaker", AI, "AI Platforms", "ml.g5.2xlarge-hosting",
       "$1.515 per Hosting ml.g5.2xlarge hour", "Hosting:ml.g5.2xlarge", "Hours", "1.515",
       "Endpoint", '{"InstanceType": "ml.g5.2xlarge", "Usage": "Hosting"}'),
    _m("endpoint", "gcp", "Vertex AI", AI, "AI Platforms", "online-prediction-l4",
       "Vertex AI: Online Prediction NVIDIA L4 GPU running in Iowa", "Online Prediction L4 GPU",
       "Hours", "0.644", "Endpoint", '{"Accelerator": "NVIDIA L4", "Usage": "Online Prediction"}'),
    _m("training", "aws", "Amazon Elastic Compute Cloud", COMPUTE, "Virtual Machines",
       "p4d.24xlarge", "$32.7726 per On Demand Linux p4d.24xlarge Instance Hour",
       "BoxUsage:p4d.24xlarge", "Hours", "32.7726", "Instance",
       '{"InstanceType": "p4d.24xlarge", "GPU": "8 x A100 40GB", "OperatingSystem": "Linux"}'),
    _m("training", "gcp", "Compute Engine", COMPUTE, "Virtual Machines", "a2-highgpu-1g",
       "Nvidia Tesla A100 GPU running in Americas", "A2 A100 GPU", "Hours", "2.933908",
       "Instance", '{"Accelerator": "NVIDIA A100 40GB", "Commitment": "OnDemand"}'),
    _m("batch", "aws", "AWS Batch", COMPUTE, "Containers", "g5.12xlarge-spot",
       "$2.1032 per Spot Linux g5.12xlarge Instance Hour", "SpotUsage:g5.12xlarge", "Hours",
       "2.1032", "Job Queue", '{"InstanceType": "g5.12xlarge", "PurchaseOption": "Spot"}'),
    _m("batch", "gcp", "BigQuery", DB, "Data Warehouses", "analysis-us",
       "Analysis (us multi-region), on-demand queries", "Analysis", "Tebibytes", "6.25",
       "Dataset", '{"PricingModel": "On-demand", "Location": "US"}'),
    _m("storage", "aws", "Amazon Simple Storage Service", STORAGE, "Object Storage",
       "TimedStorage-ByteHrs", "$0.023 per GB-Mo for the first 50 TB of S3 Standard storage",
       "TimedStorage-ByteHrs", "GB-Mo", "0.023", "Bucket",
       '{"StorageClass": "STANDARD", "Tier": "First 50 TB"}'),
    _m("storage", "gcp", "Cloud Storage", STORAGE, "Object Storage", "standard-us",
       "Standard Storage US Multi-region", "Standard Storage", "GiB-Mo", "0.026", "Bucket",
       '{"StorageClass": "STANDARD", "Location": "US"}'),
    _m("transfer", "aws", "Amazon Simple Storage Service", NETWORK, "Network Traffic",
       "USE1-USW2-AWS-Out-Bytes",
       "$0.020 per GB - US East (N. Virginia) data transfer to US West (Oregon)",
       "InterRegion Outbound", "GB", "0.02", "Bucket",
       '{"FromRegion": "us-east-1", "ToRegion": "us-west-2", "TransferType": "InterRegion"}'),
    _m("transfer", "azure", "Bandwidth", NETWORK, "Network Traffic", "inter-region-out",
       "Inter-Region Data Transfer Out - North America", "Inter Region Data Transfer Out", "GB",
       "0.02", "Storage Account", '{"Direction": "Out", "Zone": "North America"}'),
    _m("tokens", "aws", "Amazon Bedrock", AI, "Generative AI", "claude-3-5-sonnet-input",
       "Claude 3.5 Sonnet input tokens, on demand", "Input Tokens", "1M Tokens", "3",
       "Model", '{"Model": "Claude 3.5 Sonnet", "TokenType": "input"}'),
    _m("tokens", "azure", "Azure OpenAI", AI, "Generative AI", "gpt-4o-mini-input",
       "gpt-4o-mini-0718 Inp regnl Tokens", "gpt-4o-mini Input Tokens", "1K Tokens",
       "0.000165", "Cognitive Services Account",
       '{"Model": "gpt-4o-mini", "TokenType": "input", "Deployment": "regional"}'),
    _m("database", "aws", "Amazon Relational Database Service", DB, "Relational Databases",
       "db.r6g.2xlarge-multi-az", "RDS db.r6g.2xlarge Multi-AZ PostgreSQL instance hour",
       "InstanceUsage:db.r6g.2xl", "Hours", "1.798", "DB Instance",
       '{"InstanceType": "db.r6g.2xlarge", "Engine": "PostgreSQL", "Deployment": "Multi-AZ"}'),
    _m("kubernetes", "aws", "Amazon Elastic Compute Cloud", COMPUTE, "Containers",
       "m6i.4xlarge", "$0.768 per On Demand Linux m6i.4xlarge Instance Hour",
       "BoxUsage:m6i.4xlarge", "Hours", "0.768", "Node Group",
       '{"InstanceType": "m6i.4xlarge", "OperatingSystem": "Linux"}'),
    _m("kubernetes", "azure", "Virtual Machines", COMPUTE, "Virtual Machines",
       "D16s v5", "D16s v5 - Linux virtual machine hours", "D16s v5", "Hours", "0.768",
       "Virtual Machine Scale Set", '{"Series": "Dsv5", "OperatingSystem": "Linux"}'),
)  # fmt: skip
ROLES = tuple(dict.fromkeys(m.role for m in METERS))

PROVIDERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # provider: (ProviderName, BillingAccountId, regions)
    "aws": ("AWS", "112233445566", ("us-east-1", "us-west-2", "eu-west-1")),
    "gcp": ("Google Cloud", "01A2B3-C4D5E6-F7A8B9", ("us-central1", "europe-west4")),
    "azure": ("Microsoft", "8611537", ("eastus", "westeurope")),
}
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)",
    "eu-west-1": "Europe (Ireland)", "us-central1": "Iowa", "europe-west4": "Netherlands",
    "eastus": "East US", "westeurope": "West Europe",
}  # fmt: skip
TEAMS = ("search", "recommendations", "fraud", "foundation-models", "ads-ranking", "speech",
         "vision", "platform", "growth", "support-assistant")  # fmt: skip
APPS = ("checkout-assistant", "search-rerank", "fraud-scoring", "voice-notes", "doc-qa",
        "ad-copy", "image-tagging", "ticket-triage", "product-qa", "code-review")  # fmt: skip
MODELS = ("claude-3-5-sonnet", "gpt-4o-mini", "llama-3-1-70b", "mistral-large")
WORDS = ("alpha", "nova", "atlas", "orion", "delta", "lumen", "pixel", "quartz", "raven",
         "sierra", "tango", "vega", "willow", "zephyr")  # fmt: skip


def account_name(team: str, provider: str) -> str:
    """A sub-account (AWS account, GCP project, Azure subscription) named after its team."""
    return {"aws": f"{team}-prod", "gcp": f"{team}-ml", "azure": f"{team}-subscription"}[provider]


def account_id(team: str, provider: str) -> str:
    number = sum((i + 1) * ord(c) for i, c in enumerate(team)) % 10**6
    return {"aws": f"{300000000000 + number:012d}", "gcp": f"{team}-ml-{number:06d}",
            "azure": f"{number:08d}-5c1e-4a6b-9d2f-{team[:4].ljust(4, '0')}0a1b2c3d"}[provider]  # fmt: skip


def resource_id(meter: Meter, team: str, region: str, name: str) -> str:
    """A provider-shaped resource id for a resource of `meter`'s kind."""
    acct = account_id(team, meter.provider)
    if meter.provider == "gcp":
        kind = {"endpoint": "aiplatform.googleapis.com/projects/{a}/locations/{r}/endpoints/{n}",
                "training": "compute.googleapis.com/projects/{a}/zones/{r}-a/instances/{n}",
                "storage": "storage.googleapis.com/projects/{a}/buckets/{n}",
                "batch": "bigquery.googleapis.com/projects/{a}/datasets/{n}"}[meter.role]  # fmt: skip
        return "//" + kind.format(a=acct, r=region, n=name)
    if meter.provider == "azure":
        provider = {"tokens": "Microsoft.CognitiveServices/accounts",
                    "transfer": "Microsoft.Storage/storageAccounts",
                    "kubernetes": "Microsoft.Compute/virtualMachineScaleSets"}[meter.role]  # fmt: skip
        return f"/subscriptions/{acct}/resourceGroups/{team}-rg/providers/{provider}/{name}"
    arn = {"endpoint": f"sagemaker:{region}:{acct}:endpoint/{name}",
           "training": f"ec2:{region}:{acct}:instance/i-{name}",
           "batch": f"batch:{region}:{acct}:job-queue/{name}",
           "storage": f"s3:::{name}", "transfer": f"s3:::{name}",
           "tokens": f"bedrock:{region}:{acct}:inference-profile/{name}",
           "database": f"rds:{region}:{acct}:db:{name}",
           "kubernetes": f"eks:{region}:{acct}:nodegroup/{team}/{name}"}[meter.role]  # fmt: skip
    return f"arn:aws:{arn}"
