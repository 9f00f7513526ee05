"""Cheaper windows (issue 16, point 7): deferrable work moved to cheaper hours, deadlines kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.model import Finding
from costline.optimize.hour_prices import quantile
from costline.optimize.inputs import Inputs
from costline.optimize.window_runs import name_pattern
from costline.optimize.windows import recommend_windows
from costline.schema import LLM_REQUESTS, WORKLOADS
from costline.sources.dcgm import GPU_SAMPLE_ARROW
from tests.unit.recommend_data import LINES, T0, line

DAYS = 7  # a week: every hour of the week seen once
END = T0 + dt.timedelta(days=DAYS)
L4 = Decimal("0.8048")  # g6.xlarge on-demand, us-east-1
CENT = Decimal("0.01")
MONTH = Decimal(30) / DAYS


def _inputs(lines: Sequence[dict[str, Any]], samples: Sequence[dict[str, Any]] = (),
            workloads: Sequence[dict[str, Any]] = (),
            llm: Sequence[dict[str, Any]] | None = None) -> Inputs:  # fmt: skip
    """A week's recommendation run over these rows, in the ledger's own table schemas."""
    llm_table = None
    if llm is not None:
        llm_table = ibis.memtable(pa.Table.from_pylist(list(llm), LLM_REQUESTS.to_pyarrow()))
    return Inputs(
        ibis.memtable(pa.Table.from_pylist(list(lines), schema=LINES)),
        ibis.memtable(pa.Table.from_pylist(list(samples), schema=GPU_SAMPLE_ARROW)),
        ibis.memtable(pa.Table.from_pylist(list(workloads), WORKLOADS.to_pyarrow())),
        T0, END, Rules(), FixedClock(END), llm=llm_table,
    )  # fmt: skip


def _idle_nights(idle_by_day: Decimal = Decimal(0), idle_at_night: Decimal = Decimal(10),
                 listed: Decimal | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """A Savings Plan of $10 an hour, `idle_at_night` of it unused from 00:00 to 06:00 UTC every
    night, used by day (but for `idle_by_day` unused each hour from 12:00 to 18:00); what it
    covered lists at `listed` times its cost (no list cost when None)."""
    out = []
    for h in range(DAYS * 24):
        unused = idle_at_night if h % 24 < 6 else idle_by_day if 12 <= h % 24 < 18 else 0
        for status, usd in (("Unused", unused), ("Used", 10 - unused)):
            if usd:
                out.append({**line(f"sp-{h}", "m7i.xlarge", h, usd),
                            "CommitmentDiscountId": "arn:sp/1", "CommitmentDiscountName": "ml-sp",
                            "CommitmentDiscountStatus": status, "PricingCategory": "Committed",
                            "ListCost": usd * listed if listed and status == "Used" else None})  # fmt: skip
    return out


def _daily_job(kind: str = "batch_job", at: int = 14, hours: int = 2, host: str = "eval",
               tags: dict[str, str] | None = None, lines: dict[str, Any] | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """(bill lines, samples, workloads) of a job run daily at `at`:00 UTC for `hours` on one
    g6.xlarge, each run its own pod (`atlas-eval-2026100N-x1y2z`), tagged team search."""
    bills, samples, work = [], [], []
    for day in range(DAYS):
        name = f"atlas-eval-{(T0 + dt.timedelta(days=day)):%Y%m%d}"
        pod = f"{name}-x1y2z"
        start = T0 + dt.timedelta(days=day, hours=at)
        for k in range(hours):
            h = day * 24 + at + k
            bills.append({**line(host, "g6.xlarge", h, L4), **(lines or {})})
            samples.append({"ts": T0 + dt.timedelta(hours=h), "host": host, "gpu_uuid": host,
                            "gpu_index": 0, "gpu_model": "NVIDIA L4", "sample_seconds": 3600.0,
                            "gr_engine_active": 0.9, "namespace": "ml", "pod": pod})  # fmt: skip
        work.append({"workload_id": f"ml/{pod}", "kind": kind, "name": name, "namespace": "ml",
                     "start": start, "end": start + dt.timedelta(hours=hours),
                     "tags": [("team", "search"), *(tags or {}).items()]})  # fmt: skip
    return bills, samples, work


def _eval_beside_idle_nights(idle: dict[str, Decimal] | None = None, **job: Any) -> list[Finding]:
    bills, samples, work = _daily_job(**job)
    return recommend_windows(_inputs(_idle_nights(**(idle or {})) + bills, samples, work))


def test_an_eval_job_in_peak_hours_moves_into_idle_committed_nights() -> None:
    found = _eval_beside_idle_nights()
    assert len(found) == 1
    f = found[0]
    # Each 2-hour run ($1.6096 on-demand) fits in the $10 idle hours: all of it saved.
    saving = L4 * 2 * DAYS * MONTH
    assert f.impact_usd == saving.quantize(CENT) == Decimal("48.29")
    e = f.evidence
    assert e["savings_monthly_usd"] == {"p50": "48.29", "low": "48.29", "high": "48.29"}
    assert e["current_monthly_usd"] == "48.29"
    assert f.scope == {"workload": "atlas-eval", "pool": "aws/us-east-1/g6.xlarge",
                       "team": "search", "recommendation": "cheaper_window"}  # fmt: skip
    inputs_ = e["inputs"]
    assert isinstance(inputs_, dict)
    # 00:00 is the first idle hour after 14:00: the least delay of the hours that save it all.
    assert inputs_["start_hour_now_utc"] == 14
    assert inputs_["start_hour_new_utc"] == 0
    assert inputs_["cron_utc"] == "0 0 * * *"
    assert inputs_["deadline_hours"] == [24.0] and inputs_["deadline_tagged"] is False
    assert inputs_["idle_commitments"] == ["ml-sp"]
    assert 'schedule: "0 0 * * *"' in f.actions[0].text


def test_a_run_that_cannot_wait_for_the_window_starts_when_it_did() -> None:
    # An eighth run of the job, started at 10:00 and due 2 hours later, cannot wait for 00:00:
    # it stays, paying what it paid; the other seven move.
    bills, samples, work = _daily_job()
    late, late_samples, late_work = _daily_job(at=10, tags={"deadline_hours": "2"})
    late_samples = [{**x, "pod": "atlas-eval-20261001-late1"} for x in late_samples[:2]]
    late_work = [{**late_work[0], "workload_id": "ml/atlas-eval-20261001-late1"}]
    found = recommend_windows(_inputs(_idle_nights() + bills + late[:2], samples + late_samples,
                                      work + late_work))  # fmt: skip
    assert [f.impact_usd for f in found] == [Decimal("48.29")]
    e = found[0].evidence
    assert e["current_monthly_usd"] == str((L4 * 2 * 8 * MONTH).quantize(CENT))
    inputs_ = e["inputs"]
    assert isinstance(inputs_, dict)
    assert (inputs_["runs"], inputs_["runs_moved"]) == (8, 7)
    assert inputs_["deadline_hours"] == [2.0]


def test_idle_in_the_hours_a_job_paid_on_demand_is_not_offered_and_leaves_the_low_at_zero() -> None:
    # The plan sat $1 idle at 14:00 while the job paid on-demand then: it did not cover the job
    # there, so that dollar is no saving, and the job may be outside the plan's scope.
    found = _eval_beside_idle_nights({"idle_by_day": Decimal(1)})
    assert len(found) == 1
    e = found[0].evidence
    assert e["savings_monthly_usd"] == {"p50": "48.29", "low": "0.00", "high": "48.29"}
    inputs_ = e["inputs"]
    assert isinstance(inputs_, dict)
    # What the $1 idle hours could have taken of the runs there: $0.8048 an hour, 2 h a day.
    assert inputs_["idle_usd_in_current_hours"] == str((L4 * 2 * DAYS).quantize(CENT))
    assert "check the job's instance family" in str(e["risk"])


def test_an_idle_committed_dollar_covers_its_discount_in_on_demand_dollars() -> None:
    # $0.50 of the plan idles each night hour; what it covered lists at 1.5x its cost, so those
    # $0.50 cover $0.75 an hour of the job's $0.8048 on-demand: $0.75 of each of its 2 hours.
    found = _eval_beside_idle_nights({"idle_at_night": Decimal("0.5"), "listed": Decimal("1.5")})
    assert [f.impact_usd for f in found] == [(Decimal("0.75") * 2 * DAYS * MONTH).quantize(CENT)]
    inputs_ = found[0].evidence["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["on_demand_usd_per_committed_usd"] == "1.5000"
    # Without list costs in the bills, a committed dollar covers one: $0.50 of each hour.
    found = _eval_beside_idle_nights({"idle_at_night": Decimal("0.5")})
    assert [f.impact_usd for f in found] == [(Decimal("0.5") * 2 * DAYS * MONTH).quantize(CENT)]


EVAL_TAGS = {"Tags": [("team", "search"), ("workload-type", "evaluation")]}


def test_a_job_seen_only_in_the_bills_is_moved_and_one_seen_twice_is_counted_once() -> None:
    # No workload record, no telemetry: instances tagged as an evaluation, billed 14:00-16:00
    # each day, are the runs.
    bills, samples, work = _daily_job(host="atlas-eval-0", lines=EVAL_TAGS)
    found = recommend_windows(_inputs(_idle_nights() + bills))
    assert [(f.impact_usd, f.scope["workload"]) for f in found] == [(Decimal("48.29"),
                                                                    "atlas-eval")]  # fmt: skip
    inputs_ = found[0].evidence["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["workload_kinds"] == ["evaluation"] and inputs_["start_hour_new_utc"] == 0
    # The same runs recorded as workloads too: the workload runs count, the bills' do not.
    found = recommend_windows(_inputs(_idle_nights() + bills, samples, work))
    assert [f.impact_usd for f in found] == [Decimal("48.29")]
    # Untagged instances billed the same way are nobody's deferrable work.
    bills, _, _ = _daily_job(host="atlas-eval-0")
    assert recommend_windows(_inputs(_idle_nights() + bills)) == []


def test_an_online_inference_endpoint_is_never_moved() -> None:
    assert _eval_beside_idle_nights(kind="inference_endpoint") == []
    assert _eval_beside_idle_nights(kind="notebook") == []


def test_a_deadline_that_leaves_no_cheaper_window_is_not_a_recommendation() -> None:
    # Started at 14:00 and due 10 h later (00:00), a 2-hour run cannot reach an idle hour.
    assert _eval_beside_idle_nights(tags={"deadline_hours": "10"}) == []
    # Due at 01:00, it can run 23:00-01:00: half of it in the idle hour from 00:00.
    half = _eval_beside_idle_nights(tags={"deadline_hours": "11"})
    assert [f.impact_usd for f in half] == [(L4 * DAYS * MONTH).quantize(CENT)]
    # Due at 02:00, all of it fits 00:00-02:00.
    found = _eval_beside_idle_nights(tags={"deadline_hours": "12"})
    assert [f.impact_usd for f in found] == [Decimal("48.29")]
    inputs_ = found[0].evidence["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["deadline_hours"] == [12.0] and inputs_["deadline_tagged"] is True
    # With the default deadline (24 h), a 30-hour run has no room to move at all.
    assert _eval_beside_idle_nights(hours=30) == []


def test_without_idle_hours_or_spot_prices_there_is_no_cheaper_window() -> None:
    bills, samples, work = _daily_job()
    assert recommend_windows(_inputs(bills, samples, work)) == []


SPOT = {"PricingCategory": "Dynamic", "ChargeDescription": "g6.xlarge Spot Linux"}


def _spot_price(hour: int) -> Decimal:
    """A pool's Spot price: $0.50 an hour from 08:00 to 20:00 UTC, $0.30 at night."""
    return Decimal("0.50") if 8 <= hour % 24 < 20 else Decimal("0.30")


def test_a_spot_job_moves_to_the_hours_the_learned_spot_price_is_lowest() -> None:
    # A Spot fleet of the pool runs all week: its bills teach the price of every hour.
    fleet = [{**line("fleet", "g6.xlarge", h, _spot_price(h)), **SPOT} for h in range(DAYS * 24)]
    bills, samples, work = _daily_job(lines=SPOT)
    bills = [{**b, "EffectiveCost": _spot_price(14), "BilledCost": _spot_price(14)} for b in bills]
    found = recommend_windows(_inputs(fleet + bills, samples, work))
    assert len(found) == 1
    f = found[0]
    # Each run paid 2 x $0.50; at night the same 2 hours cost 2 x $0.30: 40% less.
    saving = Decimal("1.00") * (1 - Decimal("0.60") / Decimal("1.00")) * DAYS * MONTH
    assert f.impact_usd == saving.quantize(CENT) == Decimal("12.00")
    inputs_ = f.evidence["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["market"] == "spot"
    assert f.scope == {"workload": "atlas-eval", "pool": "aws/us-east-1/g6.xlarge",
                       "team": "search", "capacity": "spot", "recommendation": "cheaper_window"}  # fmt: skip
    assert inputs_["start_hour_new_utc"] == 20  # the first hour both run hours are cheap
    assert inputs_["spot_usd_per_hour_now"] == "0.5"
    assert inputs_["spot_usd_per_hour_new"] == "0.3"


def _request(hour: int, app: str, model: str, provider: str, workload: str | None,
             cost: Decimal) -> dict[str, Any]:  # fmt: skip
    return {"ts": T0 + dt.timedelta(hours=hour), "provider": provider, "model": model,
            "input_tokens": 1_000_000, "cached_input_tokens": 0, "cache_write_tokens": 0,
            "output_tokens": 1_000_000, "requests": 1000, "app": app, "team": "search",
            "tags": [("workload-type", workload)] if workload else [], "cost_usd": cost}  # fmt: skip


def test_batch_llm_requests_move_to_off_peak_token_prices_and_chat_does_not() -> None:
    # DeepSeek prices deepseek-chat by time of day (genai-prices): at 10:00 UTC a million input
    # and a million output tokens cost $0.27 + $1.10; off-peak (16:30-00:30 UTC) half of it.
    peak = Decimal("1.37")
    llm = [_request(24 * d + 10, "evals", "deepseek-chat", "deepseek", "evaluation", peak)
           for d in range(DAYS)]  # fmt: skip
    llm += [_request(24 * d + 10, "chat", "deepseek-chat", "deepseek", None, peak)
            for d in range(DAYS)]  # fmt: skip
    llm += [_request(24 * d + 10, "evals", "claude-sonnet-4-5", "anthropic", "evaluation",
                     Decimal("18")) for d in range(DAYS)]  # fmt: skip
    found = recommend_windows(_inputs([], llm=llm))
    assert len(found) == 1  # not the chat; not Claude, priced the same all day
    f = found[0]
    assert f.scope == {"workload": "evals", "model": "deepseek-chat", "team": "search",
                       "recommendation": "cheaper_window"}  # fmt: skip
    # A month is counted from the first request in the window (10:00 on the first day).
    logged_days = DAYS - Decimal(10) / 24
    saving = (peak - Decimal("0.685")) * DAYS * 30 / logged_days
    assert f.impact_usd == saving.quantize(CENT)
    inputs_ = f.evidence["inputs"]
    assert isinstance(inputs_, dict)
    assert inputs_["cheap_hours_utc"] == "17:00-00:00"
    assert inputs_["cron_utc"] == "0 17 * * *"


def test_run_suffixes_are_dropped_from_job_names_and_quantiles_are_samples() -> None:
    assert name_pattern("atlas-eval-20261031") == "atlas-eval"
    assert name_pattern("search-embed-29012345-abc12") == "search-embed"
    assert name_pattern("ft-8b") == "ft-8b"
    samples = tuple(Decimal(v) for v in range(1, 11))
    assert [quantile(samples, q) for q in (0.1, 0.5, 0.9)] == [1, 5, 9]
