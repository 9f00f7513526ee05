"""The demo organization on Lambda (a GPU cloud): fine-tunes, notebooks, an eval runner, sales tax.

Lambda's prices are the approximate figures in the catalogue (`gpu_cloud_prices_approx.csv`). There
are no sub-accounts; instance names carry the team, and one GH200 prototype carries nothing.
"""

from __future__ import annotations

from costline.demo.fleets.base import CENTRAL, FleetBuilder, catalogued, owner, stable_hex
from costline.demo.org import Account, InstanceMeter, Owner, Resource, Service, SubAccount
from costline.demo.usage import Activity, Always, Bursts, Runs, Volume

ACCOUNT = Account(
    provider="lambda",
    provider_name="Lambda",
    billing_account_id="lambda-org-5f3c9a",
    billing_account_name="costline-demo",
    hourly=True,
    file_format="csv",
    tag_style="lambda",
)
REGION = "us-south-1"
NO_SUB = SubAccount(None, None)

CLOUD = Service("Lambda On-Demand Cloud", "Compute", "Virtual Machines")
FILESYSTEMS = Service("Lambda Cloud Storage", "Storage", "File Storage")
TAX = Service("Sales Tax", "Other", "Other (Other)")


def _instance(
    f: FleetBuilder, name: str, itype: str, usage: Activity, who: Owner, *, tagged: bool = True
) -> None:
    f.add(
        name,
        sub=NO_SUB,
        rid=stable_hex("lambda/" + name, 32),
        name=name,
        rtype="Instance",
        region=REGION,
        service=CLOUD,
        meters=(InstanceMeter(catalogued("lambda", itype, REGION)),),
        usage=usage,
        who=who,
        tagged=tagged,
    )


def _instances(f: FleetBuilder) -> None:
    sft = owner(
        "foundation-models", "atlas", "atlas-8b-instruct", "fine-tuning", "training", "gpu_compute"
    )
    _instance(f, "ft-atlas-8b-instruct", "gpu_8x_h100_sxm5", Runs("lambda/ft-8b", 0.45, 1, 4), sft)
    chat = owner(
        "assistant", "assistant", "atlas-70b-chat", "fine-tuning", "training", "gpu_compute"
    )
    runs = Runs("lambda/ft-70b-chat", 0.35, 2, 5)
    for i in range(f.count(2)):
        _instance(f, f"ft-atlas-70b-chat-{i}", "gpu_8x_h100_sxm5", runs, chat)
    notebook = owner(
        "vision", "vision-research", "vista-vit-l", "notebook", "training", "gpu_compute", env="dev"
    )
    for i in range(f.count(2)):
        hours = Bursts(f"lambda/vision-nb-{i}", 0.7, 6, 10, start_hour=14, weekdays_only=True)
        _instance(f, f"vision-notebook-{i}", "gpu_1x_a10", hours, notebook)
    evals = owner(
        "assistant", "assistant", "atlas-70b-chat", "evaluation", "batch_ai", "gpu_compute"
    )
    _instance(f, "eval-runner", "gpu_8x_a100_80gb_sxm4", Bursts("lambda/eval", 0.3, 5, 12), evals)
    proto = owner(
        "search",
        "rag-prototype",
        "atlas-8b-instruct",
        "inference",
        "online_inference",
        "gpu_compute",
        env="dev",
    )
    _instance(f, "gh200-rag-proto", "gpu_1x_gh200", Always(start_day=10), proto, tagged=False)


def _storage_and_tax(f: FleetBuilder) -> None:
    data = owner(
        "foundation-models", "atlas", "atlas-8b-instruct", "fine-tuning", "training", "storage"
    )
    f.add(
        "fs-atlas-sft",
        sub=NO_SUB,
        rid=stable_hex("lambda/fs-atlas-sft", 32),
        name="fs-atlas-sft",
        rtype="Filesystem",
        region=REGION,
        service=FILESYSTEMS,
        meters=(f.volume("lambda.fs", "20000"),),
        usage=Volume("steady", 0.002),
        who=data,
    )
    f.add(
        "sales-tax",
        sub=NO_SUB,
        rid=None,
        name=None,
        rtype=None,
        region=None,
        service=TAX,
        meters=(),
        usage=Always(),
        who=CENTRAL,
        tagged=False,
        kind="tax",
    )


def build(scale: float) -> list[Resource]:
    f = FleetBuilder(ACCOUNT, scale)
    _instances(f)
    _storage_and_tax(f)
    return f.resources
