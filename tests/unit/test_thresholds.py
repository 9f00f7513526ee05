"""Spike thresholds on telemetry signals: the method on made traffic, and scored on the demo's
live incident (a tripled system prompt) over five seeds, with minutes of lag."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from costline.attribution.rules import Rules
from costline.cli.demo import _activity_parts
from costline.clock import FixedClock
from costline.config import Config, Threshold, Tier, load_config, parse_config
from costline.demo.activity import generate_activity
from costline.demo.billing import generate_billing
from costline.detect.signals import UnknownSignal, signal
from costline.detect.thresholds import evaluate, tier_of
from costline.errors import ConfigError
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind, Severity
from costline.pipeline import ingest_files
from costline.sync import check_thresholds

T0 = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def requests(
    minutes: int,
    *,
    app: str = "chat",
    per_minute: int = 4,
    tokens: int = 1000,
    spike_from: int | None = None,
    spike_tokens: int = 3000,
    cached: int = 400,
) -> pa.Table:
    """`per_minute` requests a minute for `minutes` from T0, each `tokens` input tokens (priced at
    $1 per 1M) with `cached` of them from the cache; from `spike_from`, `spike_tokens` instead."""
    rows: dict[str, list[Any]] = {k: [] for k in (
        "ts", "app", "model", "provider", "team", "project", "environment", "endpoint",
        "prompt_id", "user", "input_tokens", "cached_input_tokens", "output_tokens", "requests",
        "latency_ms", "status", "cost_usd", "output_cost_usd")}  # fmt: skip
    for m in range(minutes):
        n = tokens if spike_from is None or m < spike_from else spike_tokens
        for i in range(per_minute):
            wobble = (i * 37 + m * 11) % 50
            values = (T0 + m * MINUTE + dt.timedelta(seconds=i * 7), app, "m1", "openai", "t1",
                      "p1", "prod", "/chat", None, None, n + wobble, cached, 100, 1, 500.0, "ok",
                      Decimal(n + wobble + 100) / Decimal(10**6), Decimal(100) / Decimal(10**6))  # fmt: skip
            for key, value in zip(rows, values, strict=True):
                rows[key].append(value)
    return pa.table(rows)


def run(table: pa.Table, th: Threshold, as_of: dt.datetime, tiers: list[Tier] | None = None,
        lookback: dt.timedelta = dt.timedelta(hours=12)) -> list[Finding]:  # fmt: skip
    return evaluate(
        {"llm_requests": ibis.memtable(table)}, [th], as_of=as_of, lookback=lookback,
        tiers=tiers if tiers is not None else Config().escalation, rules=Rules(),
        clock=FixedClock(as_of),
    )  # fmt: skip


CONTEXT = Threshold(name="ctx", signal="avg_context_tokens", by="app", pct_over_baseline=40,
                    z=4, min_buckets=2)  # fmt: skip


def test_steady_traffic_breaches_nothing_and_a_tripled_prompt_is_one_breach() -> None:
    steady = requests(600)
    assert run(steady, CONTEXT, T0 + 600 * MINUTE) == []
    spiked = requests(600, spike_from=500)
    [f] = run(spiked, CONTEXT, T0 + 600 * MINUTE)
    assert f.kind is FindingKind.THRESHOLD_BREACH
    assert f.scope == {"threshold": "ctx", "app": "chat"}
    assert f.window is not None and f.window.start == T0 + 500 * MINUTE
    assert f.window.end == T0 + 600 * MINUTE  # it lasted to the last whole bucket
    assert f.evidence["ongoing"] is True and f.evidence["minutes"] == 100
    assert f.evidence["baseline"] == pytest.approx(1024, abs=30)
    assert f.evidence["peak_pct_over_baseline"] > 150
    # impact: the input side's dollars x the excess share, over the breach's buckets
    assert f.impact_usd == pytest.approx(Decimal("0.8"), abs=Decimal("0.05"))


def test_minutes_of_lag_and_the_same_breach_seen_again_is_the_same_finding() -> None:
    spiked = requests(600, spike_from=500)
    assert run(spiked, CONTEXT, T0 + 505 * MINUTE) == []  # one bucket: min_buckets is 2
    [early] = run(spiked, CONTEXT, T0 + 512 * MINUTE)  # two whole buckets, 12 minutes in
    [later] = run(spiked, CONTEXT, T0 + 600 * MINUTE)
    assert early.fingerprint == later.fingerprint
    assert early.evidence["minutes"] == 10 and later.evidence["minutes"] == 100
    assert early.impact_usd is not None and later.impact_usd is not None
    assert later.impact_usd > early.impact_usd
    # the bucket still filling is not judged: 504 minutes in, the 500-505 bucket waits
    assert run(spiked, CONTEXT.model_copy(update={"min_buckets": 1}), T0 + 504 * MINUTE) == []


def test_a_long_spike_does_not_become_its_own_baseline() -> None:
    """Breaching buckets leave the baselines after them: a 2.5-hour spike against a 6-hour
    window stays one breach to its end (a rolling median would absorb it after 3 hours)."""
    spiked = requests(600, spike_from=450)
    [f] = run(spiked, CONTEXT, T0 + 600 * MINUTE)
    assert f.evidence["minutes"] == 150


def test_tiers_escalate_by_minutes_and_dollars_and_set_routes_and_severity() -> None:
    tiers = [Tier(name="platform", routes=["p"]),
             Tier(name="finance", after_minutes=30, impact_usd=Decimal("0.2"), routes=["f"]),
             Tier(name="leadership", after_minutes=90, impact_usd=Decimal(5), routes=["l"])]  # fmt: skip
    spiked = requests(600, spike_from=500)
    [early] = run(spiked, CONTEXT, T0 + 512 * MINUTE, tiers)
    assert (early.evidence["tier"], early.evidence["routes"]) == ("platform", ["p"])
    assert early.severity is Severity.WARNING
    [later] = run(spiked, CONTEXT, T0 + 600 * MINUTE, tiers)
    assert later.evidence["tier"] == "finance" and later.evidence["tier_index"] == 1
    assert later.evidence["routes"] == ["p", "f"]
    assert tier_of(tiers, 100, Decimal(6)) == 2
    assert tier_of(tiers, 100, None) == 0  # unpriced: never a tier with a dollar condition
    [top] = run(spiked, CONTEXT, T0 + 600 * MINUTE, tiers[:2])
    assert top.severity is Severity.CRITICAL  # the last of several tiers


def test_a_drop_breaches_with_direction_below_and_absolute_alone_needs_no_baseline() -> None:
    spiked = requests(600, spike_from=500, spike_tokens=3000, cached=400)  # hit rate 40% -> 13%
    drop = Threshold(name="cache", signal="cache_hit_rate", by="app", direction="below",
                     pct_over_baseline=50, min_buckets=2)  # fmt: skip
    [f] = run(spiked, drop, T0 + 600 * MINUTE)
    assert f.window is not None and f.window.start == T0 + 500 * MINUTE
    assert f.impact_usd is None  # a rate carries no dollars: unpriced, not zero
    ceiling = Threshold(name="cap", signal="input_tokens_per_min", absolute=10_000)
    [c] = run(spiked, ceiling, T0 + 600 * MINUTE)
    assert c.scope == {"threshold": "cap"} and c.window is not None
    assert c.window.start == T0 + 500 * MINUTE


def test_config_names_tiers_thresholds_and_signals_that_exist() -> None:
    config = parse_config(
        "routes: [{type: webhook, name: hook, url: 'http://127.0.0.1:1/x'}]\n"
        "escalation: [{name: platform, routes: [hook]}, {name: finance, after_minutes: 60}]\n"
        "thresholds: [{name: a, signal: 'metric:queue_depth:max', by: endpoint, absolute: 50}]\n"
    )
    assert [t.name for t in config.escalation] == ["platform", "finance"]
    assert signal("metric:queue_depth:max").metric == "queue_depth"
    with pytest.raises(UnknownSignal, match="choose from"):
        signal("gpu_minutse")
    with pytest.raises(ValueError, match="at least one of"):
        Threshold(name="x", signal="metric:queue_depth")  # a metric has no default condition
    with pytest.raises(ConfigError, match="asks less"):
        parse_config("escalation: [{name: a, after_minutes: 60}, {name: b, after_minutes: 5}]")
    with pytest.raises(ConfigError, match="no route named 'nope'"):
        parse_config("escalation: [{name: a, routes: [nope]}]")


# -- the demo's live incident ----------------------------------------------------------------------

SEEDS = (1, 2, 3, 4, 5)


@pytest.fixture(scope="module")
def live_orgs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict[str, Any]]]:
    """Each seed's demo telemetry day (LLM usage and DCGM), ingested, with its truth."""
    root = tmp_path_factory.mktemp("live")
    out = []
    for seed in SEEDS:
        org = root / f"org-{seed}"
        manifest = generate_billing(org, seed=seed, days=2)
        activity = generate_activity(org, manifest, seed=seed, telemetry_days=1)
        with Ledger(f"duckdb://{org / 'ledger.duckdb'}") as ledger:
            for name, files, source in _activity_parts(activity):
                if name in ("llm", "dcgm"):
                    ingest_files(ledger, files, source)
        out.append((org, json.loads(activity.truth.read_text())))
    return out


def test_the_demo_live_prompt_spike_is_found_within_minutes_and_nothing_else_fires(
    live_orgs: list[tuple[Path, dict[str, Any]]],
) -> None:
    """Every seed: the demo's thresholds find the tripled prompt, starting in the bucket it began,
    and nothing else; 15 minutes after it began, it is already a finding."""
    for org, truth in live_orgs:
        [incident] = truth["live_incidents"]
        start = dt.datetime.fromisoformat(incident["start"].replace("Z", "+00:00"))
        config = load_config(org / "costline.yaml")
        with Ledger(f"duckdb://{org / 'ledger.duckdb'}") as ledger:
            clock = FixedClock(start)
            found, _ = check_thresholds(ledger, config, clock)
            early, _ = check_thresholds(
                ledger, config, clock, as_of=start + 15 * MINUTE, lookback=dt.timedelta(hours=1)
            )
        assert len(found) == 1, [f.title for f in found]
        [f] = found
        assert f.scope["app"] == incident["scope"]["app"]
        assert f.window is not None
        assert abs(f.window.start - start) <= dt.timedelta(minutes=5)
        end = dt.datetime.fromisoformat(incident["end"].replace("Z", "+00:00"))
        assert f.window.end >= end - dt.timedelta(minutes=15)  # to its end, or near it
        assert [e.fingerprint for e in early] == [f.fingerprint]


def test_a_checkpoint_jump_in_daily_inventories_breaches_and_needs_daily_buckets() -> None:
    days = 20
    rows: dict[str, list[Any]] = {"snapshot_date": [], "bucket": [], "size_bytes": [],
                                  "is_checkpoint": []}  # fmt: skip
    for d in range(days):
        gb = 1000 + 5 * d + (800 if d >= 17 else 0)  # a steady climb, then a jump on day 17
        for bucket, size, ckpt in (("ckpts", gb * 10**9, True), ("data", 50 * 10**9, False)):
            for key, value in zip(rows, ((T0 - dt.timedelta(days=days - d)).date(), bucket,
                                         size, ckpt), strict=True):  # fmt: skip
                rows[key].append(value)
    th = Threshold(name="ckpt", signal="checkpoint_gb", by="bucket", bucket_minutes=1440,
                   baseline_hours=24 * 10, pct_over_baseline=30)  # fmt: skip
    found = evaluate(
        {"storage_objects": ibis.memtable(pa.table(rows))}, [th], as_of=T0,
        lookback=dt.timedelta(days=7), tiers=[], rules=Rules(), clock=FixedClock(T0),
    )  # fmt: skip
    [f] = found
    assert f.scope == {"threshold": "ckpt", "bucket": "ckpts"}
    assert f.window is not None and f.window.start == T0 - dt.timedelta(days=3)
    assert f.impact_usd is None
    with pytest.raises(UnknownSignal, match="bucket_minutes: 1440"):
        evaluate({"storage_objects": ibis.memtable(pa.table(rows))},
                 [th.model_copy(update={"bucket_minutes": 5})], as_of=T0,
                 lookback=dt.timedelta(days=1), tiers=[], rules=Rules(), clock=FixedClock(T0))  # fmt: skip


def test_gpu_signals_read_either_activity_field_as_a_fraction_and_price_by_host() -> None:
    """gr_engine_active, else gpu_util: both are fractions in the ledger (0.5 is half busy)."""
    from costline.detect.signals import bucketed

    n = 10
    samples = pa.table({
        "ts": [T0 + i * MINUTE for i in range(n)] * 2,
        "host": ["h1"] * n + ["h2"] * n,
        "gr_engine_active": [0.5] * n + [None] * n,
        "gpu_util": [None] * n + [0.02] * n,  # h2: an older exporter, 2% busy: idle
        "sample_seconds": [60.0] * (2 * n),
        "time_slice_share": [None] * (2 * n),
    })  # fmt: skip
    t = ibis.memtable(samples)
    end = T0 + n * MINUTE

    def rows(name: str) -> dict[str, Any]:
        out = bucketed(signal(name), t, T0, end, minutes=n, by="host", host_rates={"h1": 6.0})
        return {r["key"]: r for r in out.to_pyarrow().to_pylist()}

    util = rows("gpu_utilization")
    assert util["h1"]["value"] == pytest.approx(50) and util["h2"]["value"] == pytest.approx(2)
    idle = rows("idle_gpu_minutes")
    assert idle["h1"]["value"] == 0 and idle["h2"]["value"] == pytest.approx(n)
    used = rows("gpu_minutes")
    assert used["h1"]["cost"] == pytest.approx(1.0)  # 10 GPU-minutes at $6 a GPU-hour
    assert used["h2"]["cost"] is None  # no rate for h2: unpriced


def test_the_signals_and_thresholds_commands(live_orgs: list[tuple[Path, dict[str, Any]]]) -> None:
    import subprocess
    import sys

    org, truth = live_orgs[0]

    def costline(*args: str) -> Any:
        cli = subprocess.run(
            [sys.executable, "-m", "costline", "--ledger", f"duckdb://{org / 'ledger.duckdb'}",
             "--config", str(org / "costline.yaml"), *args, "-f", "json"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        return json.loads(cli.stdout)

    listed = {r["signal"] for r in costline("signals")}
    assert {"avg_context_tokens", "gpu_minutes", "checkpoint_gb"} <= listed
    rows = costline("signals", "avg_context_tokens", "--by", "app", "--last", "30m")
    app = truth["live_incidents"][0]["scope"]["app"]
    last = [r for r in rows if r["key"] == app]
    # the spike's last half hour, above the plain rolling median of the 6 hours before
    assert len(last) == 6 and all(r["pct_over_baseline"] > 10 for r in last)
    [breach] = costline("thresholds")
    assert breach["scope"]["app"] == app and breach["tier"] == "platform"
