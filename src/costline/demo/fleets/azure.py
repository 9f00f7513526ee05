"""The demo organization on Azure (an EA enrollment): daily cost lines with a negotiated discount.

ND H100 v5 training, a Whisper fine-tune and inference pool on NC A100 v4, Azure OpenAI tokens, AKS,
Log Analytics, Azure AI Search, Blob storage, bandwidth, corporate apps, and an H100 VM left untagged.
"""

from __future__ import annotations

from dataclasses import dataclass

from costline.demo.fleets.base import (
    PLATFORM_CONTROL,
    PLATFORM_CPU,
    PLATFORM_OBS,
    SEARCH_VECTORS,
    FleetBuilder,
    catalogued,
    owner,
    slots,
    stable_guid,
)
from costline.demo.org import (
    Account,
    InstanceMeter,
    Owner,
    RateMeter,
    Resource,
    Service,
    SubAccount,
)
from costline.demo.usage import Activity, Always, Bursts, Runs, Traits, Volume

ACCOUNT = Account(
    provider="azure",
    provider_name="Microsoft",
    billing_account_id="78901234",
    billing_account_name="Costline Demo EA",
    hourly=False,
    file_format="csv",
    tag_style="azure",
)

RESEARCH = SubAccount(stable_guid("azure/ai-research"), "ai-research")
PROD = SubAccount(stable_guid("azure/ai-prod"), "ai-prod")
SHARED = SubAccount(stable_guid("azure/shared-services"), "shared-services")
CORP = SubAccount(stable_guid("azure/corp-apps"), "corp-apps")

VMS = Service("Virtual Machines", "Compute", "Virtual Machines")
AKS = Service("Azure Kubernetes Service", "Compute", "Containers")
STORAGE = Service("Storage Accounts", "Storage", "Object Storage")
BANDWIDTH = Service("Bandwidth", "Networking", "Network Connectivity")
MONITOR = Service("Azure Monitor", "Management and Governance", "Observability")
SEARCH = Service("Azure AI Search", "Analytics", "Search")
OPENAI = Service("Azure OpenAI", "AI and Machine Learning", "Generative AI")

_PROVIDER_PATH = {
    VMS.name: ("Microsoft.Compute/virtualMachines", "Virtual machine"),
    AKS.name: ("Microsoft.ContainerService/managedClusters", "Kubernetes service"),
    STORAGE.name: ("Microsoft.Storage/storageAccounts", "Storage account"),
    BANDWIDTH.name: ("Microsoft.Network/publicIPAddresses", "Public IP address"),
    MONITOR.name: ("Microsoft.OperationalInsights/workspaces", "Log Analytics workspace"),
    SEARCH.name: ("Microsoft.Search/searchServices", "Search service"),
    OPENAI.name: ("Microsoft.CognitiveServices/accounts", "Azure OpenAI"),
}


@dataclass(frozen=True)
class Place:
    """Where a resource lives: resource group, region, subscription."""

    group: str
    region: str
    sub: SubAccount


ATLAS = Place("rg-atlas-train", "eastus", RESEARCH)
VOICE_TRAIN = Place("rg-voice-train", "westeurope", RESEARCH)
VOICE_PROD = Place("rg-voice-prod", "westeurope", PROD)
SCRATCH = Place("rg-scratch", "eastus", RESEARCH)
AOAI = Place("rg-aoai", "eastus", PROD)
SEARCH_RG = Place("rg-search", "eastus", PROD)
PLATFORM = Place("rg-platform", "eastus", SHARED)
INTRANET = Place("rg-intranet", "eastus", CORP)


def _add(
    f: FleetBuilder,
    name: str,
    at: Place,
    service: Service,
    meters: tuple[InstanceMeter | RateMeter, ...],
    usage: Activity | Volume,
    who: Owner,
    *,
    tagged: bool = True,
    traits: Traits | None = None,
) -> None:
    path, rtype = _PROVIDER_PATH[service.name]
    rid = f"/subscriptions/{at.sub.id}/resourcegroups/{at.group}/providers/{path}/{name}".lower()
    f.add(
        name,
        sub=at.sub,
        rid=rid,
        name=name,
        rtype=rtype,
        region=at.region,
        service=service,
        meters=meters,
        usage=usage,
        who=who,
        tagged=tagged,
        extra=(("x_ResourceGroupName", at.group),),
        traits=traits,
    )


def vm(
    f: FleetBuilder,
    name: str,
    at: Place,
    sku: str,
    usage: Activity,
    who: Owner,
    *,
    tagged: bool = True,
    traits: Traits | None = None,
) -> None:
    meter = (InstanceMeter(catalogued("azure", sku, at.region)),)
    _add(f, name, at, VMS, meter, usage, who, tagged=tagged, traits=traits)


def _gpu(f: FleetBuilder) -> None:
    moe = owner(
        "foundation-models", "atlas", "atlas-moe-47b", "training", "training", "gpu_compute"
    )
    cluster = Runs("azure/atlas-moe", duty=0.6, min_days=3, max_days=9)
    for i in range(f.count(2)):
        vm(f, f"ndh100-atlas-moe-{i}", ATLAS, "Standard_ND96isr_H100_v5", cluster, moe)
    tune = owner("assistant", "voice", "whisper-large-v3", "fine-tuning", "training", "gpu_compute")
    runs = Runs("azure/whisper-ft", duty=0.3, min_days=1, max_days=3)
    vm(f, "nca100-whisper-ft", VOICE_TRAIN, "Standard_NC24ads_A100_v4", runs, tune)
    asr = owner(
        "assistant", "voice", "whisper-large-v3", "inference", "online_inference", "gpu_compute"
    )
    for name, slot in slots(f.pool("whisper-asr", 1, 4)):
        vm(f, name, VOICE_PROD, "Standard_NC24ads_A100_v4", slot, asr)
    evals = owner("assistant", "voice", "whisper-large-v3", "evaluation", "batch_ai", "gpu_compute")
    batch = Bursts("azure/whisper-eval", 0.3, 3, 8, weekdays_only=True)
    vm(f, "nca100-whisper-eval", VOICE_TRAIN, "Standard_NC48ads_A100_v4", batch, evals)
    # An H100 VM someone started on day 20 for an experiment and never tagged.
    scratch = owner(
        "foundation-models",
        "atlas",
        "atlas-moe-47b",
        "experiment",
        "training",
        "gpu_compute",
        env="dev",
    )
    later = Always(start_day=20)
    vm(f, "h100-scratch", SCRATCH, "Standard_NC40ads_H100_v5", later, scratch, tagged=False)


def _ai_services(f: FleetBuilder) -> None:
    chat = owner("assistant", "assistant", "gpt-4o", "inference", "online_inference", "tokens")
    mini = owner(
        "search", "semantic-search", "gpt-4o-mini", "query-rewrite", "online_inference", "tokens"
    )
    traffic = Volume("traffic", 0.004)
    for name, who, model, per_day_in, per_day_out in (
        ("aoai-assistant", chat, "gpt4o", "40000", "6000"),
        ("aoai-search", mini, "mini", "150000", "15000"),
    ):
        meters = (
            f.volume(f"azure.{model}.in", per_day_in),
            f.volume(f"azure.{model}.out", per_day_out),
        )
        _add(f, name, AOAI, OPENAI, meters, traffic, who)
    units = (f.volume("azure.search", "72"),)
    _add(f, "srch-semantic", SEARCH_RG, SEARCH, units, Volume("flat"), SEARCH_VECTORS)
    egress = owner("assistant", "voice", None, "inference", "online_inference", "network_egress")
    out = (f.volume("azure.egress", "800"),)
    _add(f, "pip-voice-gw", VOICE_PROD, BANDWIDTH, out, Volume("traffic", 0.003), egress)


def _platform(f: FleetBuilder) -> None:
    fee = (f.volume("azure.aks", "24", scaled=False),)
    _add(f, "aks-ml", PLATFORM, AKS, fee, Volume("flat"), PLATFORM_CONTROL)
    for i in range(f.count(3)):
        vm(f, f"aks-sys-{i}", PLATFORM, "Standard_D8s_v5", Always(), PLATFORM_CPU)
    logs = (f.volume("azure.logs", "40"),)
    _add(f, "law-ml-platform", PLATFORM, MONITOR, logs, Volume("traffic", 0.002), PLATFORM_OBS)
    ckpt = owner(
        "foundation-models", "atlas", "atlas-moe-47b", "checkpoints", "training", "storage"
    )
    blob = (f.volume("azure.blob", "300000"),)
    _add(f, "stgatlasckpt", ATLAS, STORAGE, blob, Volume("steady", 0.006), ckpt)
    corp = owner("web", "intranet", None, "web", "non_ai", "cpu_compute")
    for i in range(f.count(6)):
        vm(f, f"corp-app-{i}", INTRANET, "Standard_D8s_v5", Always(), corp)


def build(scale: float) -> list[Resource]:
    f = FleetBuilder(ACCOUNT, scale)
    _gpu(f)
    _ai_services(f)
    _platform(f)
    return f.resources
