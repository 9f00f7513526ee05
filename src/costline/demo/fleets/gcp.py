"""The demo organization on Google Cloud (us-central1): hourly lines, labels in lowercase.

A3 (H100) and A2 Ultra (A100 80GB) training, an L4 image-generation pool and an A100 query encoder,
Vertex AI Gemini and embedding batches, GKE, Cloud Logging, Cloud Storage, egress, a warehouse ETL,
and an SDXL demo endpoint nobody labelled and nobody turned off.
"""

from __future__ import annotations

from costline.demo.fleets.base import (
    PLATFORM_CONTROL,
    PLATFORM_CPU,
    PLATFORM_OBS,
    FleetBuilder,
    catalogued,
    owner,
    slots,
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
from costline.demo.usage import Activity, Always, Runs, Traits, Volume

ACCOUNT = Account(
    provider="gcp",
    provider_name="Google Cloud",
    billing_account_id="01A2B3-C4D5E6-F7A8B9",
    billing_account_name="Costline Demo Billing",
    hourly=True,
    file_format="csv.gz",
    tag_style="gcp",
)
REGION = "us-central1"
ZONE = "us-central1-a"

TRAINING = SubAccount("atlas-gcp-training", "Atlas GCP Training")
VISION = SubAccount("vision-prod-4821", "Vision Prod")
SEARCH = SubAccount("search-prod-7730", "Search Prod")
PLATFORM = SubAccount("platform-shared-1187", "Platform Shared")
WAREHOUSE = SubAccount("data-warehouse-5512", "Data Warehouse")

COMPUTE = Service("Compute Engine", "Compute", "Virtual Machines")
GKE = Service("Kubernetes Engine", "Compute", "Containers")
GCS = Service("Cloud Storage", "Storage", "Object Storage")
NETWORK = Service("Networking", "Networking", "Network Connectivity")
LOGGING = Service("Cloud Logging", "Management and Governance", "Observability")
VERTEX = Service("Vertex AI", "AI and Machine Learning", "Generative AI")


def vm(
    f: FleetBuilder,
    name: str,
    machine: str,
    usage: Activity,
    who: Owner,
    sub: SubAccount,
    *,
    tagged: bool = True,
    commitment: str | None = None,
    traits: Traits | None = None,
) -> None:
    f.add(
        name,
        sub=sub,
        rid=f"//compute.googleapis.com/projects/{sub.id}/zones/{ZONE}/instances/{name}",
        name=name,
        rtype="compute.googleapis.com/Instance",
        region=REGION,
        service=COMPUTE,
        meters=(InstanceMeter(catalogued("gcp", machine, REGION)),),
        usage=usage,
        who=who,
        tagged=tagged,
        commitment=commitment,
        traits=traits,
    )


def metered(
    f: FleetBuilder,
    name: str,
    rid: str | None,
    rtype: str | None,
    service: Service,
    meters: tuple[RateMeter, ...],
    usage: Volume,
    who: Owner,
    sub: SubAccount,
) -> None:
    f.add(
        name,
        sub=sub,
        rid=rid,
        name=name,
        rtype=rtype,
        region=REGION,
        service=service,
        meters=meters,
        usage=usage,
        who=who,
    )


def _gpu(f: FleetBuilder) -> None:
    atlas = owner("foundation-models", "atlas", "atlas-8b", "training", "training", "gpu_compute")
    cluster = Runs("gcp/atlas-8b", duty=0.55, min_days=3, max_days=8)
    for i in range(f.count(2)):
        vm(f, f"a3-atlas-8b-{i}", "a3-highgpu-8g", cluster, atlas, TRAINING)
    vista = owner("vision", "vision-research", "vista-vit-l", "training", "training", "gpu_compute")
    runs = Runs("gcp/vista", duty=0.5, min_days=2, max_days=6)
    for i in range(f.count(1)):
        vm(f, f"a2u-vista-{i}", "a2-ultragpu-8g", runs, vista, VISION)
    sdxl = owner(
        "vision", "image-gen", "sdxl-turbo", "inference", "online_inference", "gpu_compute"
    )
    for name, slot in slots(f.pool("sdxl-l4", 2, 8)):
        vm(f, name, "g2-standard-8", slot, sdxl, VISION)
    encoder = owner(
        "search", "semantic-search", "e5-large-v2", "inference", "online_inference", "gpu_compute"
    )
    for name, slot in slots(f.pool("query-encoder-a100", 1, 3)):
        vm(f, name, "a2-highgpu-1g", slot, encoder, SEARCH)
    demo = owner(
        "vision",
        "image-gen",
        "sdxl-turbo",
        "inference",
        "online_inference",
        "gpu_compute",
        env="staging",
    )
    vm(f, "sdxl-demo-endpoint", "g2-standard-24", Always(), demo, VISION, tagged=False)


def _ai_services(f: FleetBuilder) -> None:
    captions = owner("vision", "image-gen", "gemini-2.0-flash", "captioning", "batch_ai", "tokens")
    flash = (f.volume("gcp.flash.in", "400000"), f.volume("gcp.flash.out", "60000"))
    bursty = Volume("bursty")
    metered(f, "vertex-gemini-captions", None, None, VERTEX, flash, bursty, captions, VISION)
    reindex = owner(
        "search", "semantic-search", "text-embedding-005", "embeddings", "batch_ai", "tokens"
    )
    embed = (f.volume("gcp.embed", "2000000"),)
    metered(f, "vertex-embeddings", None, None, VERTEX, embed, bursty, reindex, SEARCH)
    egress = owner("vision", "image-gen", None, "inference", "online_inference", "network_egress")
    out = (f.volume("gcp.egress", "1500"),)
    traffic = Volume("traffic", 0.003)
    metered(f, "image-gen-egress", None, None, NETWORK, out, traffic, egress, VISION)


def _platform(f: FleetBuilder) -> None:
    cluster = (
        f"//container.googleapis.com/projects/{PLATFORM.id}/locations/{REGION}/clusters/ml-gke"
    )
    fee = (f.volume("gcp.gke", "24", scaled=False),)
    kind = "container.googleapis.com/Cluster"
    metered(f, "ml-gke", cluster, kind, GKE, fee, Volume("flat"), PLATFORM_CONTROL, PLATFORM)
    for i in range(f.count(3)):
        vm(f, f"gke-ml-gke-pool-{i}", "n2-standard-8", Always(), PLATFORM_CPU, PLATFORM)
    logs = (f.volume("gcp.logging", "60"),)
    traffic = Volume("traffic", 0.002)
    metered(f, "platform-logs", None, None, LOGGING, logs, traffic, PLATFORM_OBS, PLATFORM)


def _data(f: FleetBuilder) -> None:
    data = owner("foundation-models", "atlas", "atlas-8b", "training", "training", "storage")
    images = owner("vision", "vision-research", "vista-vit-l", "training", "training", "storage")
    kind = "storage.googleapis.com/Bucket"
    for bucket, gb, who, sub in (
        ("atlas-8b-data", "250000", data, TRAINING),
        ("vision-datasets", "120000", images, VISION),
    ):
        rid = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
        meter = (f.volume("gcp.gcs", gb),)
        metered(f, bucket, rid, kind, GCS, meter, Volume("steady", 0.003), who, sub)
    etl = owner("data-platform", "warehouse", None, "etl", "non_ai", "cpu_compute")
    for i in range(f.count(4)):
        vm(f, f"dwh-etl-{i}", "n2-standard-16", Always(), etl, WAREHOUSE)
    vm(f, "dwh-mem-0", "n2-highmem-8", Always(), etl, WAREHOUSE)


def build(scale: float) -> list[Resource]:
    f = FleetBuilder(ACCOUNT, scale)
    _gpu(f)
    _ai_services(f)
    _platform(f)
    _data(f)
    return f.resources
