"""Allocation: GPU hosts split by GPU-time held, exact decimals, money conserved (methodology)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costline.allocation.allocate import DIMENSIONS, Allocation, allocate
from costline.allocation.reports import IDLE, SHARED_BUCKET, UNALLOCATED, buckets
from costline.allocation.split import split
from costline.model import Selector
from costline.money import MONEY_CONTEXT, total
from costline.sources.dcgm import GPU_SAMPLE_ARROW

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
MONEY = pa.decimal128(38, 18)
TAGS = pa.map_(pa.string(), pa.string())
LINE_SCHEMA = pa.schema(
    [
        ("ProviderName", pa.string()),
        ("ChargePeriodStart", pa.timestamp("us", tz="UTC")),
        ("ChargePeriodEnd", pa.timestamp("us", tz="UTC")),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("ServiceCategory", pa.string()),
        ("ServiceName", pa.string()),
        ("Tags", TAGS),
        ("BilledCost", MONEY),
        ("EffectiveCost", MONEY),
    ]
)
SAMPLE_SCHEMA = GPU_SAMPLE_ARROW  # rows name the columns they need; the rest are NULL
WORKLOAD_SCHEMA = pa.schema(
    [
        ("workload_id", pa.string()),
        ("kind", pa.string()),
        ("owner", pa.string()),
        ("tags", TAGS),
        ("namespace", pa.string()),
    ]
)


def line(host: str | None, hour: int, cost: str, tags: dict[str, str] | None = None,
         provider: str = "AWS", hours: int = 1) -> dict[str, Any]:  # fmt: skip
    return {
        "ProviderName": provider,
        "ChargePeriodStart": T0 + hour * HOUR,
        "ChargePeriodEnd": T0 + (hour + hours) * HOUR,
        "ResourceId": f"i-{host}" if host else None,
        "ResourceName": host,
        "Tags": list((tags or {}).items()),
        "BilledCost": Decimal(cost),
        "EffectiveCost": Decimal(cost),
    }


def sample(host: str, gpu: int, minute: int, pod: str | None = None, *, share: float = 1.0,
           active: float | None = 0.9, mig: str | None = None, job: str | None = None,
           model: str = "NVIDIA H100 80GB HBM3") -> dict[str, Any]:  # fmt: skip
    return {
        "ts": T0 + dt.timedelta(minutes=minute),
        "host": host,
        "gpu_uuid": f"GPU-{host}-{gpu}",
        "gpu_index": gpu,
        "gpu_model": model,
        "mig_profile": mig,
        "gr_engine_active": active,
        "gpu_util": None,
        "namespace": "ml" if pod else None,
        "pod": pod,
        "job_id": job,
        "sample_seconds": 60.0,
        "time_slice_share": share,
    }


def workload(wid: str, team: str, kind: str = "training_run", **tags: str) -> dict[str, Any]:
    return {
        "workload_id": wid,
        "kind": kind,
        "owner": None,
        "tags": list({"team": team, **tags}.items()),
    }


def run(lines: Sequence[dict[str, Any]], samples: Sequence[dict[str, Any]],
        workloads: Sequence[dict[str, Any]] = (), *, hours: int = 24,
        where: Selector | None = None, schema: pa.Schema = WORKLOAD_SCHEMA) -> Allocation:  # fmt: skip
    return allocate(
        ibis.memtable(pa.Table.from_pylist(list(lines), LINE_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(list(samples), SAMPLE_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(list(workloads), schema)),
        T0,
        T0 + hours * HOUR,
        where=where,
    )


def by_team(allocation: Allocation, **kwargs: Any) -> dict[str, Decimal]:
    """Buckets by team, to 1e-12: GPU-seconds are float telemetry (MIG 3/7, shares 1/3), so a split
    by them is proportional to ~1e-15; the sum of the buckets is exact (checked in `buckets`)."""
    got = {b.name: b.amount for b in buckets(allocation, "team", **kwargs)}
    assert total(got.values()) == allocation.total
    return {k: v.quantize(Decimal("1e-12")).normalize() for k, v in got.items()}


def test_split_is_exact_and_proportional() -> None:
    parts = split(Decimal("55.04"), [Decimal(1)] * 3)
    assert sum(parts) == Decimal("55.04")
    assert parts == [Decimal("18.346666666666666667")] * 2 + [Decimal("18.346666666666666666")]
    assert split(Decimal("-10"), [Decimal(1), Decimal(3)]) == [Decimal("-2.5"), Decimal("-7.5")]
    with pytest.raises(ValueError, match="positive total"):
        split(Decimal(1), [Decimal(0)])


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**12), max_value=10**12, places=18, allow_nan=False),
    weights=st.lists(st.decimals(min_value=0, max_value=10**9, places=6), min_size=1, max_size=12),
)
def test_split_conserves_any_amount(amount: Decimal, weights: list[Decimal]) -> None:
    if sum(weights) == 0:
        weights = [*weights, Decimal(1)]
    parts = split(amount, weights)
    assert total(parts) == amount
    whole = total(weights)
    with localcontext(MONEY_CONTEXT):
        for p, w in zip(parts, weights, strict=True):
            assert abs(p - amount * w / whole) <= Decimal("1e-18")


def test_time_sliced_gpu_is_split_by_share_not_billed_twice() -> None:
    """One GPU host, one hour at $8; two pods share the GPU all hour: $4 each, no idle."""
    samples = [sample("h1", 0, m, p, share=0.5) for m in range(60) for p in ("a", "b")]
    got = by_team(
        run([line("h1", 0, "8")], samples, [workload("ml/a", "red"), workload("ml/b", "blue")])
    )
    assert got == {"red": Decimal(4), "blue": Decimal(4)}


def test_mig_slices_weigh_their_share_and_the_rest_is_idle() -> None:
    """An H100 split 3g + 2g (of 7): $7 -> $3, $2, and $2 of unheld slices."""
    samples = [sample("h1", 0, m, "a", mig="3g.40gb") for m in range(60)]
    samples += [sample("h1", 0, m, "b", mig="2g.20gb") for m in range(60)]
    got = by_team(
        run([line("h1", 0, "7")], samples, [workload("ml/a", "red"), workload("ml/b", "blue")])
    )
    assert got == {"red": Decimal(3), "blue": Decimal(2), IDLE: Decimal(2)}


def test_unheld_gpus_are_idle_and_held_idle_stays_with_the_holder() -> None:
    """Two GPUs, $10: GPU 0 held by a (idle engine for half the hour), GPU 1 by nobody."""
    samples = [sample("h1", 0, m, "a", active=0.9 if m < 30 else 0.0) for m in range(60)]
    samples += [sample("h1", 1, m) for m in range(60)]
    a = run([line("h1", 0, "10")], samples, [workload("ml/a", "red")])
    assert by_team(a) == {"red": Decimal(5), IDLE: Decimal(5)}
    rows = {r["kind"]: r["amount"] for r in a.rows.to_pylist()}
    assert rows == {
        "gpu_used": Decimal("2.5"),
        "gpu_held_idle": Decimal("2.5"),
        "gpu_unheld": Decimal(5),
    }
    # Shared idle: the pool's unheld cost goes to its holders.
    assert by_team(a, idle="shared") == {"red": Decimal(10)}


def test_over_claimed_time_is_scaled_to_the_line() -> None:
    samples = [sample("h1", 0, m, p) for m in range(60) for p in ("a", "b")]  # 2x the GPU's time
    got = by_team(
        run([line("h1", 0, "6")], samples, [workload("ml/a", "red"), workload("ml/b", "blue")])
    )
    assert got == {"red": Decimal(3), "blue": Decimal(3)}


def test_lines_without_telemetry_and_other_lines_follow_their_tags() -> None:
    lines = [
        line("h1", 0, "5", {"team": "red"}),
        line("h1", 1, "5", {"team": "red"}),  # no sample in hour 1: by tags, not idle
        line(None, 0, "1.25", {"Team": "Blue"}),
        line(None, 0, "0.75"),  # untagged
        line(None, 0, "2", {"team": "platform", "workload-type": "platform"}),  # shared platform
    ]
    samples = [sample("h1", 0, m, "unknown-pod") for m in range(60)]  # a holder nobody described
    a = run(lines, samples)
    assert by_team(a) == {
        "red": Decimal(5),
        "blue": Decimal("1.25"),
        UNALLOCATED: Decimal("5.75"),
        SHARED_BUCKET: Decimal(2),
    }
    assert by_team(a, idle="shared", shared="proportional") == {
        "red": Decimal("6.6"),  # 5 + 2 x 5 / 6.25
        "blue": Decimal("1.65"),  # 1.25 + 2 x 1.25 / 6.25
        UNALLOCATED: Decimal("5.75"),
    }


def test_slurm_jobs_hold_by_job_id() -> None:
    samples = [sample("h1", g, m, job="880131") for g in range(2) for m in range(60)]
    got = by_team(run([line("h1", 0, "3.5")], samples, [workload("880131", "atlas")]))
    assert got == {"atlas": Decimal("3.5")}


# -- the property: money is conserved, whatever the input, with and without filters ----------

costs = st.decimals(min_value=-50, max_value=500, places=18, allow_nan=False)


@st.composite
def organizations(
    draw: st.DrawFn,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    hosts = [f"h{i}" for i in range(draw(st.integers(1, 3)))]
    teams = ["red", "blue", "green"]
    pods = [f"p{i}" for i in range(draw(st.integers(0, 4)))]
    lines = []
    for host in hosts:
        for hour in draw(st.sets(st.integers(0, 5), max_size=4)):
            lines.append(
                line(host, hour, str(draw(costs)), provider=draw(st.sampled_from(["AWS", "GCP"])))
            )
    for _ in range(draw(st.integers(0, 4))):
        tags = draw(st.dictionaries(st.sampled_from(["team", "Team", "workload-type", "env"]),
                                    st.sampled_from([*teams, "platform", "training"]), max_size=3))  # fmt: skip
        lines.append(line(None, draw(st.integers(0, 5)), str(draw(costs)), tags,
                          provider=draw(st.sampled_from(["AWS", "GCP"])), hours=draw(st.integers(1, 3))))  # fmt: skip
    samples = []
    for host in hosts:
        gpus = draw(st.integers(1, 3))
        for _ in range(draw(st.integers(0, 30))):
            pod = draw(st.sampled_from([None, *pods]))
            samples.append(
                sample(
                    host,
                    draw(st.integers(0, gpus - 1)),
                    draw(st.integers(0, 6 * 60 - 1)),
                    pod,
                    share=draw(st.sampled_from([1.0, 0.5, 1 / 3])),
                    active=draw(st.sampled_from([None, 0.0, 0.5])),
                    mig=draw(st.sampled_from([None, None, "1g.10gb", "3g.40gb"])),
                    job=draw(st.sampled_from([None, "42"])),
                )
            )
    workloads = [
        workload(f"ml/{p}", draw(st.sampled_from(teams))) for p in pods if draw(st.booleans())
    ]
    return lines, samples, workloads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(org=organizations(), provider=st.sampled_from([None, "AWS"]))
def test_money_is_conserved_in_every_report(
    org: tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
    provider: str | None,
) -> None:
    lines, samples, workloads = org
    where = Selector.of(ProviderName=provider) if provider else None
    a = run(lines, samples, workloads, hours=6, where=where)
    billed = total(
        row["EffectiveCost"]
        for row in lines
        if row["ChargePeriodStart"] < T0 + 6 * HOUR
        and (provider is None or row["ProviderName"] == provider)
    )
    assert a.total == billed
    assert total(a.rows.column("amount").to_pylist()) == billed
    for by in DIMENSIONS:
        for idle, shared in (("shown", "shown"), ("shared", "proportional")):
            assert total(b.amount for b in buckets(a, by, idle=idle, shared=shared)) == billed  # type: ignore[arg-type]


def test_a_daily_line_splits_only_its_observed_hours_by_gpu_time() -> None:
    """$24 for a day, one GPU held by a in 3 observed hours: $3 to a, $21 by the line's tags."""
    samples = [sample("h1", 0, m, "a") for m in range(3 * 60)]
    got = by_team(
        run([line("h1", 0, "24", {"team": "blue"}, hours=24)], samples, [workload("ml/a", "red")])
    )
    assert got == {"red": Decimal(3), "blue": Decimal(21)}


def test_config_rules_reach_gpu_holders_namespace_defaults_and_owners() -> None:
    from costline.attribution.rules import Rules
    from costline.config import Owner

    samples = [sample("h1", 0, m, "a") for m in range(60)]
    unlabeled = {**workload("ml/a", "x"), "tags": [], "namespace": "ml"}
    rules = Rules(
        namespace_defaults={"ml": {"team": "Fraud"}},
        owners=(Owner.model_validate({"name": "fraud-oncall", "match": {"team": "fraud"}}),),
    )
    a = allocate(
        ibis.memtable(pa.Table.from_pylist([line("h1", 0, "2")], LINE_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(samples, SAMPLE_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist([unlabeled], WORKLOAD_SCHEMA)),
        T0,
        T0 + HOUR,
        rules=rules,
    )
    assert {b.name: b.amount for b in buckets(a, "team")} == {"fraud": Decimal(2)}
    assert {b.name: b.amount for b in buckets(a, "owner")} == {"fraud-oncall": Decimal(2)}


def test_unit_costs_per_workload_and_pool_and_llm_app() -> None:
    from costline.economics.unit_costs import compare, gpu_units, llm_units

    samples = [sample("h1", 0, m, "a", active=0.9 if m < 45 else 0.0) for m in range(60)]
    samples += [sample("h1", 1, m) for m in range(30)]  # GPU 1 seen with nobody on it
    a = run([line("h1", 0, "8")], samples, [workload("ml/a", "red")], hours=1)
    per_workload, per_pool = gpu_units(
        a,
        ibis.memtable(pa.Table.from_pylist([workload("ml/a", "red")], WORKLOAD_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(samples, SAMPLE_SCHEMA)),
    )
    [w] = per_workload
    assert (w["workload"], w["kind"], w["gpu_hours"], w["cost_usd"]) == (
        "ml/a",
        "training_run",
        1.0,
        Decimal(4),
    )
    assert w["per_gpu_hour_usd"] == Decimal(4) and w["held_idle_pct"] == 25.0
    assert w["sm_active_pct"] == 67.5  # no SM_ACTIVE exported: GR_ENGINE, weighted by time held
    [p] = per_pool
    assert p["unheld_idle_usd"] == Decimal(4) and p["unheld_idle_pct"] == Decimal("50.0")
    assert p["held_idle_usd"] == Decimal(1) and p["idle_usd"] == Decimal(5)  # both kinds
    assert (p["gpus"], p["unheld_gpu_hours"], p["held_idle_gpu_hours"]) == (2, 1.0, 0.25)
    assert compare([{"k": 1, "v": Decimal(12)}], [{"k": 1, "v": Decimal(10)}], ["k"], "v")[0][
        "change_pct"
    ] == Decimal("20.0")

    requests = pa.table(
        {
            "ts": pa.array([T0] * 4, pa.timestamp("us", tz="UTC")),
            "model": ["m"] * 4,
            "app": ["chat"] * 4,
            "requests": [1, 1, 1, 1],
            "status": ["ok", "ok", "error", "ok"],
            "input_tokens": [1000, 1000, 1000, 1000],
            "cached_input_tokens": [500, 0, 0, 0],
            "output_tokens": [250, 250, 250, 250],
            "cost_usd": pa.array([Decimal("0.002")] * 3 + [None], pa.decimal128(38, 18)),
            "output_cost_usd": pa.array([Decimal("0.0015")] * 3 + [None], pa.decimal128(38, 18)),
        }
    )
    [u] = llm_units(ibis.memtable(requests), T0, T0 + HOUR)
    assert u["requests"] == 4 and u["success_pct"] == 75.0 and u["unpriced_requests"] == 1
    assert u["cost_usd"] == Decimal("0.006") and u["per_1k_requests_usd"] == Decimal("1.5")
    assert u["per_success_usd"] == Decimal("0.002") and u["cache_hit_pct"] == 12.5
    # Priced calls only: 3 x $0.0005 input over 3,000 tokens; 3 x $0.0015 output over 750.
    assert u["per_1k_input_usd"] == Decimal("0.0005") and u["per_1k_output_usd"] == Decimal("0.006")


def test_shared_pools_split_by_their_configured_rule() -> None:
    """$10 gateway shared among red ($30 direct) and blue ($10 direct) by each rule."""
    from costline.attribution.rules import Rules
    from costline.config import SharedPool

    lines = [
        line(None, 0, "30", {"team": "red", "project": "r1"}),
        line(None, 0, "10", {"team": "blue", "project": "b1"}),
        line(None, 0, "10", {"team": "platform", "app": "gateway"}),
    ]
    metrics = pa.Table.from_pylist(
        [
            {"ts": T0, "metric": "gateway_requests", "value": 900.0, "labels": [("team", "Blue")]},
            {"ts": T0, "metric": "gateway_requests", "value": 100.0, "labels": [("team", "red")]},
            {
                "ts": T0 - HOUR,
                "metric": "gateway_requests",
                "value": 5e6,
                "labels": [("team", "red")],
            },
        ],
        pa.schema(
            [
                ("ts", pa.timestamp("us", tz="UTC")),
                ("metric", pa.string()),
                ("value", pa.float64()),
                ("labels", TAGS),
            ]
        ),
    )

    def charged(rule: dict[str, Any], by: str = "team") -> dict[str, Decimal]:
        pool = SharedPool.model_validate({"name": "gateway", "match": {"team": "platform"}, **rule})
        a = allocate(
            ibis.memtable(pa.Table.from_pylist(lines, LINE_SCHEMA)),
            ibis.memtable(pa.Table.from_pylist([], SAMPLE_SCHEMA)),
            ibis.memtable(pa.Table.from_pylist([], WORKLOAD_SCHEMA)),
            T0,
            T0 + HOUR,
            rules=Rules(shared_pools=(pool,)),
            metrics=ibis.memtable(metrics),
        )
        shown = {b.name: b.amount for b in buckets(a, by)}
        assert shown[SHARED_BUCKET] == Decimal(10)  # showback keeps it visible
        return {b.name: b.amount for b in buckets(a, by, idle="shared", shared="proportional")}

    assert charged({}) == {"red": Decimal("37.5"), "blue": Decimal("12.5")}
    assert charged({"split": "even"}) == {"red": Decimal(35), "blue": Decimal(15)}
    assert charged({"split": "fixed", "ratios": {"Red": 1, "blue": 4}}) == {
        "red": Decimal(32),
        "blue": Decimal(18),
    }
    assert charged({"split": "metric", "metric": "gateway_requests"}) == {
        "red": Decimal(31),
        "blue": Decimal(19),
    }
    # Fixed ratios are per team: a report by project splits that pool by direct cost.
    assert charged({"split": "fixed", "ratios": {"red": 1}}, by="project") == {
        "r1": Decimal("37.5"),
        "b1": Decimal("12.5"),
    }


def test_nowcast_learns_each_hosts_rate_from_earlier_bills_and_reconciles() -> None:
    """h1 (8 GPUs) billed $8/h the day before: 3 telemetry hours today estimate $24; the bill
    says $27. h2 has no bill yet: its model's average rate. Tokens at their own prices."""
    from costline.economics.nowcast import nowcast, reconcile

    day = T0 + 24 * HOUR
    earlier = [line("h1", h, "8") for h in range(20, 24)]
    today = [line("h1", 24 + h, "9") for h in range(3)]
    samples = [
        sample(host, g, 24 * 60 + m)
        for host in ("h1", "h2")
        for g in range(8)
        for m in range(0, 180, 30)
    ]
    requests = pa.table(
        {
            "ts": pa.array([day, day], pa.timestamp("us", tz="UTC")),
            "provider": ["openai", "openai"],
            "requests": [1, 1],
            "cost_usd": pa.array([Decimal("0.25"), None], pa.decimal128(38, 18)),
        }
    )
    tables = (
        ibis.memtable(pa.Table.from_pylist(earlier + today, LINE_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(samples, SAMPLE_SCHEMA)),
        ibis.memtable(requests),
    )
    got = {(r["provider"], r["source"]): r for r in nowcast(*tables, day, day + 24 * HOUR)}
    assert got[("AWS", "gpu")]["estimate_usd"] == Decimal(24)  # h1 only: h2 has no provider yet
    assert got[("(unknown)", "gpu")]["estimate_usd"] == Decimal(24)  # h2 at H100's average rate
    assert got[("openai", "tokens")]["estimate_usd"] == Decimal("0.25")
    assert got[("openai", "tokens")]["unpriced"] == 1
    rows = {r["provider"]: r for r in reconcile(*tables, day, day + 24 * HOUR)}
    r = rows["AWS"]
    assert (r["billed_usd"], r["error_usd"]) == (Decimal(27), Decimal(-3))
    assert rows["(unknown)"]["billed_usd"] is None  # no bill for h2 yet
    assert r["error_pct"] == Decimal("-11.11")


def test_cost_per_business_unit_from_a_metric() -> None:
    from costline.config import BusinessUnit
    from costline.economics.unit_costs import business_units

    lines = [line(None, 0, "30", {"team": "support"}), line(None, 0, "70", {"team": "search"})]
    samples = [sample("h1", 0, m, "bot") for m in range(60)]
    a = run([*lines, line("h1", 0, "10")], samples, [workload("ml/bot", "support")], hours=1)
    metrics = pa.Table.from_pylist(
        [
            {"ts": T0, "metric": "tickets_resolved", "value": 20.0, "labels": [("queue", "l1")]},
            {"ts": T0, "metric": "tickets_resolved", "value": 5.0, "labels": [("queue", "l2")]},
        ],
        pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("metric", pa.string()),
                   ("value", pa.float64()), ("labels", TAGS)]),
    )  # fmt: skip
    unit = BusinessUnit.model_validate(
        {"name": "ticket", "metric": "tickets_resolved", "scope": {"team": "support"}}
    )
    only_l1 = unit.model_copy(update={"labels": {"queue": "l1"}})
    got = business_units(a, ibis.memtable(metrics), [unit, only_l1])
    assert [(g["units"], g["cost_usd"], g["per_unit_usd"]) for g in got] == [
        (25.0, Decimal(40), Decimal("1.6")),  # $30 of lines + $10 of GPU-time held
        (20.0, Decimal(40), Decimal(2)),
    ]


def test_a_training_runs_cost_includes_its_share_of_the_control_plane() -> None:
    from costline.economics.unit_costs import gpu_units

    eks = {**line(None, 0, "3", {"team": "platform"}), "ServiceCategory": "Compute",
           "ServiceName": "Amazon Elastic Kubernetes Service"}  # fmt: skip
    samples = [
        sample("h1", g, m, pod) for g, pod in ((0, "a"), (1, "b"), (2, "b")) for m in range(60)
    ]
    described = [workload("ml/a", "red"), workload("ml/b", "blue")]
    a = run([line("h1", 0, "6"), eks], samples, described, hours=1)
    per_workload, _ = gpu_units(
        a,
        ibis.memtable(pa.Table.from_pylist(described, WORKLOAD_SCHEMA)),
        ibis.memtable(pa.Table.from_pylist(samples, SAMPLE_SCHEMA)),
    )
    got = {
        w["workload"]: (w["gpu_cost_usd"], w["orchestration_usd"], w["cost_usd"])
        for w in per_workload
    }
    assert got == {
        "ml/a": (Decimal(2), Decimal(1), Decimal(3)),
        "ml/b": (Decimal(4), Decimal(2), Decimal(6)),
    }


def test_a_filter_on_an_unknown_column_is_a_clear_error() -> None:
    from costline.errors import CostlineError

    with pytest.raises(CostlineError, match="--where NoSuch: not a column of cost_lines") as info:
        run([line(None, 0, "1")], [], where=Selector.of(NoSuch="x"))
    assert info.value.exit_code == 2


SCHEDULED_SCHEMA = pa.schema(
    [
        *WORKLOAD_SCHEMA,
        ("node", pa.string()),
        ("start", pa.timestamp("us", tz="UTC")),
        ("end", pa.timestamp("us", tz="UTC")),
        ("gpus_requested", pa.decimal128(18, 6)),
    ]
)


def scheduled(wid: str, team: str, node: str, start: int, end: int | None,
              gpus: int) -> dict[str, Any]:  # fmt: skip
    return {**workload(wid, team), "node": node, "start": T0 + start * HOUR,
            "end": None if end is None else T0 + end * HOUR,
            "gpus_requested": Decimal(gpus)}  # fmt: skip


def test_hours_without_telemetry_follow_the_schedule_and_coverage_says_how_much() -> None:
    """A 4-hour line of a 2-GPU host with telemetry for its first hour only: that hour splits by
    samples, the other three by the Slurm job's schedule (2 GPUs on `h[1-2]`: one GPU on each
    host), the rest of their capacity by the line's tags; the run's coverage is its telemetry
    share. A host that no sample ever names is split by schedule alone."""
    from costline.allocation.allocate import GPU_SCHEDULED, GPU_UNOBSERVED
    from costline.allocation.idle import idle_totals, pool_rows
    from costline.economics.unit_costs import gpu_units

    lines = [line("h1", 0, "80", {"team": "ops"}, hours=4), line("h2", 0, "40", hours=4)]
    samples = [sample("h1", g, m, "job-a") for g in (0, 1) for m in range(60)]
    jobs = [scheduled("ml/job-a", "red", "h[1-2]", 0, None, 2)]
    a = run(lines, samples, jobs, hours=4, schema=SCHEDULED_SCHEMA)
    rows = a.rows.to_pylist()
    assert total(r["amount"] for r in rows) == a.total == Decimal(120)
    h1 = {(r["kind"], r["team"]): r["amount"] for r in rows if r["host"] == "h1"}
    # Hour 0: both GPUs held by telemetry ($20); hours 1-3: one GPU by schedule ($30), one by tags.
    assert h1[("gpu_used", "red")] == Decimal(20)
    assert h1[(GPU_SCHEDULED, "red")] == Decimal(30)
    assert h1[(GPU_UNOBSERVED, "ops")] == Decimal(30)
    # h2 has no telemetry: its one scheduled GPU is all it has, for all four hours.
    h2 = {r["kind"]: r["amount"] for r in rows if r["host"] == "h2"}
    assert h2 == {GPU_SCHEDULED: Decimal(40)}
    assert by_team(a) == {"red": Decimal(90), "ops": Decimal(30)}
    assert a.host_gpus == {"h1": 2, "h2": 1}
    workloads = ibis.memtable(pa.Table.from_pylist(jobs, SCHEDULED_SCHEMA))
    [w], _ = gpu_units(a, workloads, ibis.memtable(pa.Table.from_pylist(samples, SAMPLE_SCHEMA)))
    # Held: 2 GPU-h by telemetry on h1, 3 by schedule on h1, 4 by schedule on h2.
    assert (w["gpu_hours"], w["telemetry_gpu_hours"]) == (9.0, 2.0)
    assert w["coverage_pct"] == 22.2 and w["cost_usd"] == Decimal(90)
    # Missing telemetry is never idle: no unheld GPU-time here.
    assert idle_totals(a).unheld_idle_usd == 0
    assert {p["pool"]: p["scheduled_gpu_hours"] for p in pool_rows(a)} == {
        "NVIDIA H100 80GB HBM3": 3.0,
        None: 4.0,
    }
