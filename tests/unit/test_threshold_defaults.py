"""Thresholds that do not flood: each signal's default condition, one finding per episode across
checks, the documented configuration on a day of real traffic, and owners from the telemetry."""

from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from costline.attribution.rules import Rules
from costline.clock import FixedClock
from costline.config import Threshold, parse_config
from costline.detect.signals import SIGNALS
from costline.detect.thresholds import evaluate
from costline.ledger.store import Ledger
from costline.model import Finding, FindingKind
from costline.sync import check_thresholds, settle
from tests.unit.test_thresholds import MINUTE, T0, requests

ROOT = Path(__file__).resolve().parents[2]
AZURE = ROOT / "tests" / "fixtures" / "llm" / "azure_code_trace_2023.csv"
HOUR = dt.timedelta(hours=1)


def gpu_samples(hours: int, busy: dict[str, list[tuple[int, int, float]]]) -> pa.Table:
    """One sample a minute per host from T0 for `hours`: 80% busy (with a wobble), except in the
    (first minute, last minute, activity) spans given per host. Host h's pod is `ns-h/pod-h`."""
    rows: dict[str, list[Any]] = {k: [] for k in (
        "ts", "host", "gpu_uuid", "gr_engine_active", "gpu_util", "sample_seconds",
        "time_slice_share", "namespace", "pod", "job_id")}  # fmt: skip
    for host, spans in busy.items():
        for m in range(hours * 60):
            level = next((a for first, last, a in spans if first <= m < last),
                         0.8 + 0.1 * ((m * 7) % 5 - 2) / 2)  # fmt: skip
            for key, value in zip(rows, (T0 + m * MINUTE, host, f"GPU-{host}", level, None,
                                         60.0, None, f"ns-{host}", f"pod-{host}", None),
                                  strict=True):  # fmt: skip
                rows[key].append(value)
    return pa.table(rows, schema=pa.schema([
        ("ts", pa.timestamp("us", tz="UTC")), ("host", pa.string()), ("gpu_uuid", pa.string()),
        ("gr_engine_active", pa.float64()), ("gpu_util", pa.float64()),
        ("sample_seconds", pa.float64()), ("time_slice_share", pa.float64()),
        ("namespace", pa.string()), ("pod", pa.string()), ("job_id", pa.string())]))  # fmt: skip


def _insert(ledger: Ledger, table: str, rows: pa.Table) -> None:
    ledger.con.register("new_rows", rows)
    ledger.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_rows")
    ledger.con.unregister("new_rows")


def test_every_signal_ships_a_default_condition_and_gpus_idle_for_long_are_one_breach() -> None:
    """`signal: gpu_utilization` alone: under 10% busy for 30 minutes. A 10-minute dip is noise;
    three idle hours are one breach."""
    assert all(s.default is not None for s in SIGNALS.values())
    th = Threshold(name="idle", signal="gpu_utilization", by="host")
    samples = gpu_samples(12, {"h1": [(m, m + 10, 0.03) for m in range(400, 720, 120)],
                               "h2": [(480, 660, 0.01)]})  # fmt: skip
    as_of = T0 + 12 * HOUR
    [f] = evaluate({"gpu_samples": ibis.memtable(samples)}, [th], as_of=as_of,
                   lookback=dt.timedelta(hours=6), tiers=[], rules=Rules(),
                   clock=FixedClock(as_of))  # fmt: skip
    assert f.scope == {"threshold": "idle", "host": "h2"}
    assert f.window is not None and f.window.start == T0 + 8 * HOUR
    assert f.window.end == T0 + 11 * HOUR and f.evidence["minutes"] == 180
    assert "under threshold" in f.title and f.actions and "idle" in f.actions[0].text
    # what the threshold sets itself wins over the default: 3 buckets make h1's dips breaches
    dips = evaluate({"gpu_samples": ibis.memtable(samples)},
                    [th.model_copy(update={"min_buckets": 2})], as_of=as_of,
                    lookback=dt.timedelta(hours=6), tiers=[], rules=Rules(),
                    clock=FixedClock(as_of))  # fmt: skip
    assert sorted(d.scope["host"] for d in dips) == ["h1", "h1", "h1", "h2"]


def test_a_day_long_idle_namespace_is_one_finding_across_checks_owned_by_its_team(
    ledger: Ledger,
) -> None:
    """Checked every few hours as the scheduler does (24-hour lookback), a namespace idle for 30
    hours stays one finding, its start kept; its owner comes from the workload holding the GPUs
    (team search -> owner search-team, as spend findings are owned)."""
    _insert(ledger, "gpu_samples", gpu_samples(40, {"a": [(8 * 60, 40 * 60, 0.01)]}))
    ledger.con.execute(
        "INSERT INTO workloads (workload_id, kind, tags, owner, namespace) VALUES "
        "('ns-a/pod-a', 'inference_endpoint', MAP {'team': 'search'}, 'bob@example.com', 'ns-a')"
    )
    config = parse_config(
        "thresholds: [{name: idle, signal: gpu_utilization, by: namespace}]\n"
        "owners: [{name: search-team, match: {team: search}}]\n"
    )
    for hours in (10, 20, 30, 36, 40):
        clock = FixedClock(T0 + hours * HOUR)
        found, _ = check_thresholds(ledger, config, clock, as_of=T0 + hours * HOUR)
        ledger.write([], source="thresholds", findings=found)
        assert len(found) == 1
    stored = [Finding.model_validate_json(b) for (b,) in ledger.con.execute(
        "SELECT body FROM findings WHERE kind = 'threshold_breach'").fetchall()]  # fmt: skip
    [f] = stored
    assert f.window is not None and f.window.start == T0 + 8 * HOUR
    assert f.evidence["minutes"] == 32 * 60 and f.evidence["ongoing"] is True
    assert f.owner == "search-team" and f.evidence["team"] == "search"


def test_a_breach_on_an_llm_app_is_owned_by_the_apps_team() -> None:
    """The app's requests say their team (t1); the configured owner of that team owns the
    breach, as it owns the team's spend findings."""
    config = parse_config(
        "thresholds: [{name: ctx, signal: avg_context_tokens, by: app}]\n"
        "owners: [{name: chat-team, match: {team: t1}}]\n"
    )
    spiked = requests(600, spike_from=500)
    as_of = T0 + 600 * MINUTE
    [f] = evaluate({"llm_requests": ibis.memtable(spiked)}, config.thresholds, as_of=as_of,
                   lookback=dt.timedelta(hours=12), tiers=[], rules=Rules.from_config(config),
                   clock=FixedClock(as_of))  # fmt: skip
    assert f.scope == {"threshold": "ctx", "app": "chat"}
    assert f.owner == "chat-team" and f.evidence["team"] == "t1"
    assert "(team t1)" in f.summary and f.actions


def _azure_day(tripled: int | None = None) -> tuple[pa.Table, dt.timedelta]:
    """The real Azure code-completion trace (about an hour, 8,819 requests) replayed back to back
    over a day, each request priced at $0.15 per 1M input and $0.60 per 1M output tokens; in
    replay `tripled` (an incident), every prompt three times as long. With the replay's span."""
    with AZURE.open() as fh:
        real = [(dt.datetime.fromisoformat(r["TIMESTAMP"][:26]).replace(tzinfo=dt.UTC),
                 int(r["ContextTokens"]), int(r["GeneratedTokens"]))
                for r in csv.DictReader(fh)]  # fmt: skip
    first, last = real[0][0], real[-1][0]
    span = (last - first) + dt.timedelta(seconds=1)
    rows: dict[str, list[Any]] = {k: [] for k in (
        "ts", "request_id", "app", "model", "provider", "team", "input_tokens",
        "cached_input_tokens", "output_tokens", "requests", "status", "cost_usd",
        "output_cost_usd")}  # fmt: skip
    repeats = int(dt.timedelta(hours=24) / span) + 1
    for k in range(repeats):
        for i, (ts, tokens_in, tokens_out) in enumerate(real):
            tokens_in *= 3 if k == tripled else 1
            out = Decimal(tokens_out) * Decimal("0.6") / 10**6
            values = (T0 + (ts - first) + k * span, f"az-{k}-{i}", "code-completion",
                      "gpt-4o-mini", "openai", "devtools", tokens_in, 0, tokens_out, 1, "ok",
                      Decimal(tokens_in) * Decimal("0.15") / 10**6 + out, out)  # fmt: skip
            for key, value in zip(rows, values, strict=True):
                rows[key].append(value)
    return pa.table(rows), span


def documented_thresholds() -> str:
    """The `thresholds:` example of docs/config.md, as written there."""
    text = (ROOT / "docs" / "config.md").read_text()
    section = text[text.index("## `thresholds`") :]
    match = re.search(r"```yaml\n(thresholds:\n.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_documented_thresholds_raise_a_handful_of_findings_on_a_day_of_real_traffic(
    ledger: Ledger,
) -> None:
    """Checked every 4 hours over the day: the bursty real traffic raises nothing by itself, and
    the one incident (prompts tripled for a replayed hour, from hour 17 or so) is found, as one
    finding per threshold it breaches, from the bucket it began in."""
    config = parse_config(documented_thresholds())
    assert {th.signal for th in config.thresholds} >= {"gpu_utilization", "tokens_per_min"}
    day, span = _azure_day(tripled=18)
    _insert(ledger, "llm_requests", day)
    found: dict[str, Finding] = {}
    for hours in (8, 12, 16, 20, 24):
        as_of = T0 + hours * HOUR
        now, _ = check_thresholds(ledger, config, FixedClock(as_of), as_of=as_of)
        ledger.write([], source="thresholds", findings=now)
        settle(ledger, FixedClock(as_of), telemetry_as_of=as_of)
        found |= {f.fingerprint: f for f in now}
        assert all(f.kind is FindingKind.THRESHOLD_BREACH and f.actions for f in now)
    assert 1 <= len(found) <= 10, [f.title for f in found.values()]
    began = T0 + 18 * span
    for f in found.values():
        assert f.scope["app"] == "code-completion" and f.window is not None
        # from the 5-minute bucket it began in (the token surge: once 15 minutes are over 2x)
        assert began - 5 * MINUTE < f.window.start < began + 15 * MINUTE, f.title
