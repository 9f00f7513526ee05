"""Quantization and distillation candidates: models that cost more to serve than they cost to train.

Per model, over the window, the allocation gives what serving it cost (`online_inference` and
`batch_ai` GPU rows) and what training it cost (`training`). A model whose serving cost exceeds
its training cost, on GPUs that are busy (`BUSY` or more of the GPU-time its serving held was
busy, not held idle: it is throughput-bound, so more throughput per GPU means fewer GPUs), is a
candidate: INT8 or FP8 weights (or a distilled model) serve the playbooks' 2-4x more per GPU.
The saving per month is the serving cost x (1 - 1/x): P50 at 3x (67%), low at 2x (50%), high at
4x (75%). No benchmark of this model backs those factors: every such recommendation says to
measure quality and throughput before switching.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from costline.allocation.allocate import GPU_HELD_IDLE, GPU_USED, HELD_KINDS
from costline.ledger import fetch
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs
from costline.optimize.recommend import Savings, recommendation

KIND = "quantization"
SERVING = ("online_inference", "batch_ai")
BUSY = 0.6
SPEEDUPS = {"low": Decimal(2), "p50": Decimal(3), "high": Decimal(4)}


def _by_model(inputs: Inputs) -> list[dict[str, Any]]:
    """Per model: serving and training GPU dollars, and serving's busy and held-idle hours."""
    r = inputs.allocation.table()
    r = r.filter(r.kind.isin(list(HELD_KINDS)), r.model.notnull())
    serving = r.cost_domain.isin(list(SERVING))
    return fetch.rows(r.group_by("model").aggregate(
        serving=r.amount.sum(where=serving).fill_null(0),
        training=r.amount.sum(where=r.cost_domain == "training").fill_null(0),
        busy=r.gpu_seconds.sum(where=serving & (r.kind == GPU_USED)).fill_null(0) / 3600,
        idle=r.gpu_seconds.sum(where=serving & (r.kind == GPU_HELD_IDLE)).fill_null(0) / 3600,
        team=r.team.mode(),
    ))  # fmt: skip


def recommend_quantization(inputs: Inputs) -> list[Finding]:
    """One recommendation per model whose busy serving costs more than its training."""
    return inputs.kept(_finding(r, inputs) for r in _by_model(inputs))


def _finding(r: dict[str, Any], inputs: Inputs) -> Finding | None:
    serving, training = Decimal(r["serving"]), Decimal(r["training"])
    held = float(r["busy"]) + float(r["idle"])
    busy = float(r["busy"]) / held if held else 0.0
    if serving <= training or serving <= 0 or busy < BUSY:
        return None
    monthly = serving * inputs.per_month
    save = {k: monthly * (1 - 1 / x) for k, x in SPEEDUPS.items()}
    model, team = str(r["model"]), r["team"]
    return recommendation(
        kind=KIND,
        scope={"model": model, **({"team": team} if team else {})},
        title=f"model {model}: serving costs {serving / training:.1f}x its training"
        if training > 0
        else f"model {model}: serving costs ${monthly:,.0f} a month, "
        "training nothing in the window",
        summary=(
            f"Serving {model} cost ${monthly:,.0f} a month on GPUs busy {busy:.0%} of the time "
            f"it held them (throughput-bound), against ${training * inputs.per_month:,.0f} for "
            "training it. INT8/FP8 weights or a distilled model serve 2-4x more per GPU in the "
            "playbooks; at 3x the same traffic needs a third of the GPUs."
        ),
        owner=inputs.owner(team, model=model),
        current_monthly=monthly,
        savings=Savings(save["p50"], save["low"], save["high"]),
        method="serving cost x (1 - 1/speedup), speedup 2-4x (P50 3x), for busy serving GPUs",
        inputs={
            "serving_usd": serving,
            "training_usd": training,
            "busy_share": round(busy, 3),
            "speedups": {k: str(v) for k, v in SPEEDUPS.items()},
        },
        window=Window(start=inputs.start, end=inputs.end),
        coverage=1.0,
        risk="high: needs a benchmark of this model's quality and throughput quantized before "
        "acting; the 2-4x factor is the playbooks', not measured here",
        action=f"Benchmark {model} quantized (INT8 or FP8 weights, e.g. with vLLM or TensorRT-LLM) "
        "or a distilled variant on a copy of its traffic; if quality holds, serve it and scale "
        "its replicas down by the measured throughput gain.",
        clock=inputs.clock,
    )
