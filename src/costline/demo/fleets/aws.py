"""The demo organization on AWS (payer account 111122223333, us-east-1): its biggest bill.

Pre-training on p5, A100/L40S/A10G/L4 inference pools under a Compute Savings Plan, nightly embedding
jobs, Bedrock tokens, EKS, CloudWatch, an OpenSearch vector collection, S3, data transfer, a web tier
tagged the old way, and a sandbox account nobody tags.
"""

from __future__ import annotations

from costline.demo.fleets.base import (
    CENTRAL,
    PLATFORM_CONTROL,
    PLATFORM_CPU,
    PLATFORM_OBS,
    PLATFORM_STORAGE,
    SEARCH_VECTORS,
    FleetBuilder,
    catalogued,
    owner,
    slots,
    stable_hex,
)
from costline.demo.org import (
    Account,
    InstanceMeter,
    Owner,
    RateMeter,
    Resource,
    Service,
    SubAccount,
    TagStyle,
)
from costline.demo.usage import Activity, Always, Bursts, Runs, Volume

ACCOUNT = Account(
    provider="aws",
    provider_name="AWS",
    billing_account_id="111122223333",
    billing_account_name="Costline Demo Org",
    hourly=True,
    file_format="parquet",
    tag_style="aws",
)
REGION = "us-east-1"
SAVINGS_PLAN_ID = (
    "arn:aws:savingsplans::111122223333:savingsplan/5f0c7d2e-3b1a-4c8e-9d4f-2a6b8c0e1f3a"
)

TRAINING = SubAccount("210987654321", "ml-training")
SERVING = SubAccount("310987654321", "ml-serving")
SEARCH = SubAccount("410987654321", "search-prod")
PLATFORM = SubAccount("510987654321", "platform-shared")
WEB = SubAccount("610987654321", "web-prod")
SANDBOX = SubAccount("710987654321", "sandbox")

EC2 = Service("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines")
EKS = Service("Amazon Elastic Kubernetes Service", "Compute", "Containers")
S3 = Service("Amazon Simple Storage Service", "Storage", "Object Storage")
TRANSFER = Service("AWS Data Transfer", "Networking", "Network Connectivity")
CLOUDWATCH = Service("AmazonCloudWatch", "Management and Governance", "Observability")
OPENSEARCH = Service("Amazon OpenSearch Service", "Analytics", "Search")
BEDROCK = Service("Amazon Bedrock", "AI and Machine Learning", "Generative AI")
SAVINGS_PLANS = Service("Savings Plans for AWS Compute usage", "Compute", "Virtual Machines")


def _ec2(
    f: FleetBuilder,
    name: str,
    instance_type: str,
    who: Owner,
    usage: Activity,
    sub: SubAccount,
    *,
    tagged: bool = True,
    style: TagStyle | None = None,
    commitment: str | None = None,
) -> None:
    f.add(
        name,
        sub=sub,
        rid=f"i-0{stable_hex('aws/' + name, 16)}",
        name=name,
        rtype="Instance",
        region=REGION,
        service=EC2,
        meters=(InstanceMeter(catalogued("aws", instance_type, REGION)),),
        usage=usage,
        who=who,
        tagged=tagged,
        style=style,
        commitment=commitment,
    )


def _metered(
    f: FleetBuilder,
    name: str,
    rid: str,
    rtype: str,
    service: Service,
    meters: tuple[RateMeter, ...],
    usage: Volume,
    who: Owner,
    sub: SubAccount,
    *,
    tagged: bool = True,
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
        tagged=tagged,
    )


def _training_and_batch(f: FleetBuilder) -> None:
    pretrain = owner(
        "foundation-models", "atlas", "atlas-70b", "training", "training", "gpu_compute"
    )
    cluster = Runs("aws/atlas-70b-pretrain", duty=0.72, min_days=4, max_days=12)
    for i in range(f.count(4)):
        _ec2(f, f"atlas-70b-pretrain-{i}", "p5.48xlarge", pretrain, cluster, TRAINING)
    evals = owner(
        "foundation-models", "atlas-eval", "atlas-70b-chat", "evaluation", "batch_ai", "gpu_compute"
    )
    for i in range(f.count(1)):
        _ec2(
            f,
            f"atlas-eval-{i}",
            "p4de.24xlarge",
            evals,
            Bursts("aws/atlas-eval", 0.35, 4, 10),
            TRAINING,
        )
    embed = owner(
        "search", "semantic-search", "e5-large-v2", "embeddings", "batch_ai", "gpu_compute"
    )
    nightly = Bursts("aws/search-embed", 0.9, 2, 5, start_hour=1)
    for i in range(f.count(6)):
        _ec2(f, f"search-embed-batch-{i}", "g5.2xlarge", embed, nightly, SEARCH)
    guard = owner(
        "assistant", "safety", "llama-guard-3-8b", "evaluation", "batch_ai", "gpu_compute"
    )
    weekly = Bursts("aws/safety-eval", 0.25, 6, 14)
    for i in range(f.count(1)):
        _ec2(f, f"safety-eval-{i}", "g6.12xlarge", guard, weekly, SERVING)


def _inference(f: FleetBuilder) -> None:
    pools = (
        ("assistant-chat-a100", 2, 4, "p4d.24xlarge", "assistant", "assistant", "atlas-70b-chat"),
        ("assistant-lite-l40s", 2, 8, "g6e.2xlarge", "assistant", "assistant", "atlas-8b-instruct"),
        ("vision-api-a10g", 2, 6, "g5.2xlarge", "vision", "vision-api", "vista-vit-l"),
        ("search-rerank-l4", 2, 6, "g6.xlarge", "search", "semantic-search", "bge-reranker-large"),
    )
    for name, low, high, itype, team, project, model in pools:
        who = owner(team, project, model, "inference", "online_inference", "gpu_compute")
        sub = SEARCH if team == "search" else SERVING
        for slot_name, slot in slots(f.pool(name, low, high)):
            _ec2(f, slot_name, itype, who, slot, sub, commitment=SAVINGS_PLAN_ID)
    egress = owner(
        "assistant", "assistant", None, "inference", "online_inference", "network_egress"
    )
    alb = f"arn:aws:elasticloadbalancing:{REGION}:{SERVING.id}:loadbalancer/app/assistant-api"
    meter = (f.volume("aws.egress", "3000"),)
    traffic = Volume("traffic", 0.003)
    _metered(f, "assistant-api", alb, "Load balancer", TRANSFER, meter, traffic, egress, SERVING)


def _tokens(f: FleetBuilder) -> None:
    chat = owner(
        "assistant", "assistant", "claude-3-5-sonnet", "inference", "online_inference", "tokens"
    )
    rewrite = owner(
        "search", "semantic-search", "claude-3-haiku", "summarization", "batch_ai", "tokens"
    )
    for name, who, sub, model, per_day_in, per_day_out, usage in (
        (
            "assistant-claude-sonnet",
            chat,
            SERVING,
            "sonnet",
            "60000",
            "9000",
            Volume("traffic", 0.004),
        ),
        ("search-claude-haiku", rewrite, SEARCH, "haiku", "200000", "20000", Volume("bursty")),
    ):
        profile = f"application-inference-profile/{stable_hex(name, 12)}"
        rid = f"arn:aws:bedrock:{REGION}:{sub.id}:{profile}"
        meters = (
            f.volume(f"aws.{model}.in", per_day_in),
            f.volume(f"aws.{model}.out", per_day_out),
        )
        _metered(f, name, rid, "Inference profile", BEDROCK, meters, usage, who, sub)


def _platform(f: FleetBuilder) -> None:
    for cluster, sub in (("ml-serving", SERVING), ("ml-training", TRAINING)):
        rid = f"arn:aws:eks:{REGION}:{sub.id}:cluster/{cluster}"
        fee = (f.volume("aws.eks", "24", scaled=False),)
        flat = Volume("flat")
        _metered(f, f"eks-{cluster}", rid, "Cluster", EKS, fee, flat, PLATFORM_CONTROL, sub)
    for i in range(f.count(3)):
        name = f"eks-system-{i}"
        _ec2(f, name, "m7i.2xlarge", PLATFORM_CPU, Always(), PLATFORM, commitment=SAVINGS_PLAN_ID)
    logs = f"arn:aws:logs:{REGION}:{PLATFORM.id}:log-group:/aws/eks/ml-serving/cluster"
    meter = (f.volume("aws.logs", "220"),)
    usage = Volume("traffic", 0.002)
    _metered(f, "eks-logs", logs, "Log group", CLOUDWATCH, meter, usage, PLATFORM_OBS, PLATFORM)
    aoss = f"arn:aws:aoss:{REGION}:{SEARCH.id}:collection/{stable_hex('aoss', 20)}"
    meter = (f.volume("aws.aoss", "384"),)
    usage = Volume("steady", 0.001)
    _metered(
        f, "search-vectors", aoss, "Collection", OPENSEARCH, meter, usage, SEARCH_VECTORS, SEARCH
    )


def _storage(f: FleetBuilder) -> None:
    data = owner("foundation-models", "atlas", "atlas-70b", "training", "training", "storage")
    ckpt = owner("foundation-models", "atlas", "atlas-70b", "checkpoints", "training", "storage")
    assets = owner("web", "storefront", None, "web", "non_ai", "storage")
    buckets = (
        ("atlas-training-data", "900000", 0.002, data, TRAINING, True),
        ("atlas-checkpoints", "700000", 0.009, ckpt, TRAINING, False),  # nobody tagged it
        ("ml-model-artifacts", "60000", 0.003, PLATFORM_STORAGE, PLATFORM, True),
        ("web-assets", "200000", 0.001, assets, WEB, True),
    )
    for bucket, gb, growth, who, sub, tagged in buckets:
        meter = (f.volume("aws.s3", gb),)
        usage = Volume("steady", growth)
        _metered(f, bucket, bucket, "Bucket", S3, meter, usage, who, sub, tagged=tagged)
    # Cross-region replication of the training data, left on after a migration.
    who = owner(
        "foundation-models", "atlas", "atlas-70b", "replication", "training", "network_egress"
    )
    meter = (f.volume("aws.interregion", "8000"),)
    name = "atlas-training-data-replica"
    _metered(
        f, name, "atlas-training-data", "Bucket", TRANSFER, meter, Volume("steady"), who, TRAINING
    )


def _non_ai_and_sandbox(f: FleetBuilder) -> None:
    web = owner("web", "storefront", None, "web", "non_ai", "cpu_compute")
    for i in range(f.count(10)):
        _ec2(
            f,
            f"web-app-{i}",
            "m7i.2xlarge",
            web,
            Always(),
            WEB,
            style="aws-legacy",
            commitment=SAVINGS_PLAN_ID,
        )
    etl = owner("data-platform", "etl", None, "etl", "non_ai", "cpu_compute")
    nightly = Bursts("aws/etl", 1.0, 3, 5, start_hour=2)
    for i in range(f.count(4)):
        _ec2(f, f"etl-worker-{i}", "c7i.4xlarge", etl, nightly, WEB)
    notebook = owner(
        "vision", "vision-research", "vista-vit-l", "notebook", "training", "gpu_compute", env="dev"
    )
    for i in range(f.count(2)):
        _ec2(f, f"jupyter-gpu-{i}", "g6e.12xlarge", notebook, Always(), SANDBOX, tagged=False)
    scratch = owner(
        "data-platform", "analytics", None, "analytics", "non_ai", "cpu_compute", env="dev"
    )
    _ec2(f, "analytics-scratch", "r7i.2xlarge", scratch, Always(), SANDBOX, tagged=False)


def _billing(f: FleetBuilder) -> None:
    f.add(
        "savings-plan",
        sub=PLATFORM,
        rid=SAVINGS_PLAN_ID,
        name="ml-serving-compute-sp-1yr",
        rtype="Savings Plan",
        region=None,
        service=SAVINGS_PLANS,
        meters=(),
        usage=Always(),
        who=CENTRAL,
        kind="commitment",
    )
    f.add(
        "promotional-credit",
        sub=PLATFORM,
        rid=None,
        name=None,
        rtype=None,
        region=None,
        service=BEDROCK,
        meters=(),
        usage=Always(),
        who=CENTRAL,
        tagged=False,
        kind="credit",
    )


def build(scale: float) -> list[Resource]:
    f = FleetBuilder(ACCOUNT, scale)
    _training_and_batch(f)
    _inference(f)
    _tokens(f)
    _platform(f)
    _storage(f)
    _non_ai_and_sandbox(f)
    _billing(f)
    return f.resources
