"""`costline prices`: the GPU price catalog, normalized to $/GPU-hour, and the rates the bills show."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import typer

from costline.cli.options import FormatOpt

RATE = Decimal("0.0001")
SHARE = Decimal("0.001")


def prices_cmd(
    gpu: Annotated[
        str | None, typer.Option(help="GPU model or its prefix: H100, A100-80GB, L4, ...")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="aws, azure or gcp")] = None,
    region: Annotated[str | None, typer.Option(help="the provider's region id")] = None,
    capacity: Annotated[
        str | None, typer.Option(help="on_demand, spot, commit_1y or commit_3y")
    ] = None,
    paid: Annotated[
        bool,
        typer.Option(
            "--paid",
            help="Instead: the rates the ledger's bills show for GPU instances over --days, "
            "beside the catalog's on-demand price",
        ),
    ] = False,
    days: Annotated[int, typer.Option(help="With --paid: days of bills, to the last", min=1)] = 30,
    fmt: FormatOpt = None,
) -> None:
    """GPU prices per GPU-hour across providers, regions and capacity types, cheapest first, from
    the dated catalog shipped with costline (offline). A price the catalog lacks is not listed:
    unpriced, never zero."""
    from costline.catalog.gpu_prices import CAPACITIES, catalog_version, matching
    from costline.cli.output import default_format, emit_rows
    from costline.errors import CostlineError

    if capacity is not None and capacity not in CAPACITIES:
        raise CostlineError(f"--capacity {capacity!r}: choose from {', '.join(CAPACITIES)}")
    if paid:
        _paid(gpu, provider, days, fmt)
        return
    rows = [
        {"gpu": p.gpu.gpu_model, "provider": p.gpu.provider, "region": p.region,
         "instance_type": p.gpu.instance_type, "gpus": p.gpu.gpu_count, "capacity": p.capacity,
         "usd_per_hour": p.price_usd_per_hour, "usd_per_gpu_hour": p.per_gpu_hour.quantize(RATE),
         "as_of": p.as_of, "source": p.source}
        for p in matching(gpu, provider=provider, region=region, capacity=capacity)
    ]  # fmt: skip
    if not rows:
        asked = {"--gpu": gpu, "--provider": provider, "--region": region, "--capacity": capacity}
        said = "".join(f" {k} {v!r}" for k, v in asked.items() if v)
        raise CostlineError(f"no catalogued price matches{said}: `costline prices` lists them all")
    emit_rows(rows, default_format(fmt),
              title=f"GPU prices, catalog {catalog_version()}, cheapest GPU-hour first")  # fmt: skip


def _paid(gpu: str | None, provider: str | None, days: int, fmt: Any) -> None:
    from costline.attribution.rules import Rules
    from costline.catalog.gpu_prices import gpu_instances
    from costline.cli.context import open_ledger, state
    from costline.cli.output import default_format, emit_rows
    from costline.config import load_config
    from costline.ledger.sql import last_bill_day
    from costline.optimize.rates import effective_rates

    rules = Rules.from_config(load_config(state.config_path))
    with open_ledger(read_only=True) as ledger:
        last = last_bill_day(ledger.con)
        end = dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
        found = effective_rates(ledger.table("cost_lines"), end - dt.timedelta(days=days), end,
                                rules)  # fmt: skip
    models = {g.instance_type: g.gpu_model for g in gpu_instances().values()}
    rows = [
        {"provider": r.provider, "region": r.region, "instance_type": r.instance_type,
         "gpu": models.get(r.instance_type), "gpus": r.gpus, "hours": r.hours.normalize(),
         "paid_usd_per_hour": r.per_hour.quantize(RATE),
         "paid_usd_per_gpu_hour": r.per_gpu_hour.quantize(RATE),
         "catalog_on_demand_usd_per_hour": r.on_demand.price_usd_per_hour if r.on_demand else None,
         "discount_vs_catalog": None if r.discount_vs_catalog is None
         else r.discount_vs_catalog.quantize(SHARE) + 0}
        for r in found
        if (provider is None or r.provider == provider)
        and (gpu is None or (models.get(r.instance_type) or "").upper().startswith(gpu.upper()))
    ]  # fmt: skip
    emit_rows(rows, default_format(fmt),
              title=f"GPU instance rates paid, {days} days to {last}")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("prices")(prices_cmd)
