"""Budgets: periods, crossings, burn rate, days to exhaustion, findings, experiment caps."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pytest

from costline.budgets.evaluate import evaluate
from costline.budgets.experiments import cap_findings, experiment_rows
from costline.budgets.periods import Period, budget_period, period_of, periods_between
from costline.budgets.status import budget_findings, current, status_of
from costline.clock import FixedClock
from costline.config import Budget, Experiments, parse_config
from costline.errors import ConfigError
from costline.model import Window

MONEY = pa.decimal128(38, 18)
D = dt.date
NOW = FixedClock(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))


def lines(rows: list[dict[str, Any]]) -> ibis.Table:
    """Cost lines with the columns attribution reads: day, cost, tags, service, unit."""

    def col(name: str, default: Any = None) -> list[Any]:
        return [r.get(name, default) for r in rows]

    return ibis.memtable(pa.table({
        "ChargePeriodStart": pa.array(
            [dt.datetime.combine(r["day"], dt.time(), dt.UTC) for r in rows],
            pa.timestamp("us", tz="UTC")),
        "EffectiveCost": pa.array([Decimal(r["cost"]) for r in rows], MONEY),
        "BilledCost": pa.array([Decimal(r["cost"]) for r in rows], MONEY),
        "Tags": pa.array([list(r.get("tags", {}).items()) for r in rows],
                         pa.map_(pa.string(), pa.string())),
        "ChargeCategory": pa.array(col("category", "Usage"), pa.string()),
        "ProviderName": pa.array(col("provider", "AWS"), pa.string()),
        "ServiceName": pa.array(col("service", "Amazon EC2"), pa.string()),
        "ServiceCategory": pa.array(col("service_category", "Compute"), pa.string()),
        "RegionId": pa.array(col("region", "us-east-1"), pa.string()),
        "SubAccountId": pa.array(col("account", "111"), pa.string()),
        "SubAccountName": pa.array(col("account", "111"), pa.string()),
        "SkuId": pa.array(col("sku", "SKU1"), pa.string()),
        "ResourceId": pa.array(col("resource", "i-1"), pa.string()),
        "ResourceName": pa.array(col("resource", "i-1"), pa.string()),
        "ResourceType": pa.array(col("resource_type"), pa.string()),
        "ChargeDescription": pa.array(col("description"), pa.string()),
        "ConsumedUnit": pa.array(col("unit", "Hours"), pa.string()),
        "ConsumedQuantity": pa.array([Decimal(r.get("quantity", 1)) for r in rows], MONEY),
    }))  # fmt: skip


def days(first: dt.date, n: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def test_periods() -> None:
    assert period_of("month", D(2026, 12, 5)) == Period(D(2026, 12, 1), D(2027, 1, 1))
    assert period_of("quarter", D(2026, 2, 28)) == Period(D(2026, 1, 1), D(2026, 4, 1))
    assert period_of("year", D(2026, 7, 1)).days == 365
    assert [str(p) for p in periods_between(
        Budget(name="b", amount_usd=Decimal(1)), D(2026, 8, 20), D(2026, 10, 2))
    ] == ["2026-08", "2026-09", "2026-10"]  # fmt: skip
    custom = Budget(name="launch", amount_usd=Decimal(5), period="custom",
                    start=D(2026, 10, 10), end=D(2026, 10, 20))  # fmt: skip
    assert budget_period(custom, D(2026, 10, 19)) == Period(D(2026, 10, 10), D(2026, 10, 20))
    assert budget_period(custom, D(2026, 10, 20)) is None
    assert str(Period(D(2026, 10, 1), D(2027, 1, 1))) == "2026-Q4"


def test_custom_periods_need_dates_and_scopes_must_be_dimensions() -> None:
    with pytest.raises(ConfigError, match="period: custom needs start and end"):
        parse_config("budgets:\n- {name: x, amount_usd: 10, period: custom}\n")
    with pytest.raises(ConfigError, match="start and end are for period: custom"):
        parse_config("budgets:\n- {name: x, amount_usd: 10, start: 2026-01-01}\n")
    config = parse_config("budgets:\n- {name: x, amount_usd: 10, scope: {colour: red}}\n")
    t = lines([{"day": D(2026, 10, 1), "cost": "1"}])
    with pytest.raises(ConfigError, match=r"budgets\[0\] \(x\).scope: 'colour'"):
        evaluate(t, config.budgets, D(2026, 10, 1), forecast=False)


def test_crossings_burn_rate_and_days_to_exhaustion() -> None:
    budget = Budget(name="search", amount_usd=Decimal(3100))  # $100 a day in October
    daily = {day: Decimal(100) for day in days(D(2026, 10, 1), 10)}
    daily |= {day: Decimal(250) for day in days(D(2026, 10, 11), 5)}
    s = status_of(budget, period_of("month", D(2026, 10, 1)), D(2026, 10, 15), daily)
    assert s.spent == Decimal(2250)
    # 50% = $1,550 is reached on day 13 (1000 + 3 x 250 = 1750); 75% = $2,325 is not yet.
    assert s.crossed == ((Decimal(50), D(2026, 10, 13)),)
    assert s.daily_rate == Decimal("207.14")  # (2 x 100 + 5 x 250) / 7
    assert s.burn_rate == Decimal("2.07") and s.state == "burning fast"
    assert s.days_left == 16
    assert s.days_to_exhaustion == 5 and s.exhausted_on == D(2026, 10, 20)  # 850 / 207.14
    quiet = status_of(budget, period_of("month", D(2026, 10, 1)), D(2026, 10, 15),
                      {d: Decimal(10) for d in days(D(2026, 10, 1), 15)})  # fmt: skip
    assert quiet.days_to_exhaustion is None and quiet.state == "ok"


def test_evaluate_reads_the_scope_and_findings_are_stable() -> None:
    team = {"team": "Search"}  # tag values fold to `search`
    rows = [{"day": d, "cost": "120", "tags": team} for d in days(D(2026, 9, 1), 61)]
    rows += [{"day": d, "cost": "999", "tags": {"team": "web"}} for d in days(D(2026, 9, 1), 61)]
    budgets = [Budget(name="search", scope={"team": "search"}, amount_usd=Decimal(3000))]
    statuses = evaluate(lines(rows), budgets, D(2026, 10, 31), since=D(2026, 9, 1),
                        forecast=False)  # fmt: skip
    assert [(str(s.period), s.spent) for s in statuses] == [
        ("2026-09", Decimal(3600)), ("2026-10", Decimal(3720))]  # fmt: skip
    october = current(statuses)[0]
    assert [pct for pct, _ in october.crossed] == [50, 75, 90, 100]
    assert october.exhausted_on == D(2026, 10, 25)  # 25 x 120 = 3000
    found = budget_findings(statuses, clock=NOW)
    assert len(found) == 8  # four thresholds in each month, nothing else: both months are over
    hundred = [f for f in found if f.evidence["threshold_pct"] == "100"]
    assert [str(f.impact_usd) for f in hundred] == ["600.00", "720.00"]
    assert {f.severity for f in hundred} == {"critical"}
    assert hundred[0].owner == "search"
    again = budget_findings(statuses, clock=NOW)
    assert [f.fingerprint for f in again] == [f.fingerprint for f in found]


def test_a_forecast_overrun_and_a_fast_burn_are_findings_before_the_money_is_gone() -> None:
    rows = [{"day": d, "cost": "100"} for d in days(D(2026, 8, 1), 80)]
    rows += [{"day": d, "cost": "400"} for d in days(D(2026, 10, 20), 5)]
    budgets = [Budget(name="all", amount_usd=Decimal(4000))]
    [s] = evaluate(lines(rows), budgets, D(2026, 10, 24))
    assert s.spent == Decimal(3900) and s.projection is not None
    assert s.projection.p10 <= s.projection.p50 <= s.projection.p90
    assert s.projection.p50 > Decimal(4000)  # 3,900 by the 24th, a week still to go
    signals = {f.evidence["signal"] for f in budget_findings([s], clock=NOW)}
    assert signals == {"threshold", "burn_rate", "forecast"}


def test_experiment_caps_default_and_own() -> None:
    declared = [
        {"name": "atlas-70b", "kind": "training_run", "team": "fm", "owner": "lead@x",
         "cost_usd": Decimal("90000"), "budget_usd": Decimal(100000)},
        {"name": "whisper", "kind": "inference_endpoint", "team": "a", "owner": None,
         "cost_usd": Decimal("99999"), "budget_usd": None},
    ]  # fmt: skip
    observed = [
        {"workload": "job/77", "kind": "sweep_trial", "team": "search",
         "cost_usd": Decimal("1250.6")},
        {"workload": "pod/claimed", "kind": "training_run", "team": "fm",
         "cost_usd": Decimal("5000")},
    ]  # fmt: skip
    settings = Experiments()
    rows = experiment_rows(declared, observed, {"pod/claimed": "atlas-70b"}, settings)
    assert [(r["experiment"], r["cap_usd"], r["used_pct"]) for r in rows] == [
        ("job/77", Decimal("1000.00"), Decimal("125.1")),
        ("atlas-70b", Decimal("100000.00"), Decimal("90.0")),
    ]  # fmt: skip
    window = Window(start=dt.datetime(2026, 8, 1, tzinfo=dt.UTC), end=NOW.now())
    found = cap_findings(rows, settings, window, clock=NOW)
    assert sorted((f.scope["experiment"], f.evidence["alert_pct"]) for f in found) == [
        ("atlas-70b", "80"), ("job/77", "100"), ("job/77", "80")]  # fmt: skip
    over = next(f for f in found if f.evidence["alert_pct"] == "100")
    assert str(over.impact_usd) == "250.60" and over.owner == "search"
    assert experiment_rows(declared, observed, {}, Experiments(cap_usd=None))[0]["cap_from"] == (
        "its budget_usd"
    )


def test_spent_out_without_a_100_threshold_and_no_forecast_is_unknown_not_spend() -> None:
    budget = Budget(name="b", amount_usd=Decimal(500), thresholds=[Decimal(50), Decimal(80)])
    daily = {day: Decimal(100) for day in days(D(2026, 10, 1), 10)}
    s = status_of(budget, period_of("month", D(2026, 10, 1)), D(2026, 10, 10), daily)
    assert s.exhausted_on == D(2026, 10, 5) and s.days_to_exhaustion == 0
    row = s.row()
    assert s.days_left == 21 and row["forecast_p50_usd"] is None  # running, not forecast
    ended = status_of(budget, period_of("month", D(2026, 9, 1)), D(2026, 10, 10), daily)
    assert ended.days_left == 0 and ended.row()["forecast_p50_usd"] == Decimal("0.00")


def _steady(first: dt.date, n: int, seed: int) -> list[dict[str, Any]]:
    """$100 a day on weekdays, $60 at weekends, 5% noise, seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for day in days(first, n):
        level = 60 if day.weekday() >= 5 else 100
        out.append({"day": day, "cost": f"{level * math.exp(rng.normal(0, 0.05)):.2f}"})
    return out


def test_a_month_that_ends_over_its_mid_month_p90_is_a_miss() -> None:
    budgets = [Budget(name="search", amount_usd=Decimal(3000))]
    rows = _steady(D(2026, 7, 1), 107, seed=4)  # July 1 to October 15
    [mid] = evaluate(lines(rows), budgets, D(2026, 10, 15))  # what was said on the 15th
    assert mid.projection is not None and mid.projection.p90 < mid.budget.amount_usd
    # The second half of October spends so that the month ends 17% over that P90.
    daily = (mid.projection.p90 * Decimal("1.17") - mid.spent) / 16
    rows += [{"day": d, "cost": str(daily)} for d in days(D(2026, 10, 16), 16)]
    rows += _steady(D(2026, 11, 1), 20, seed=5)
    [nov] = evaluate(lines(rows), budgets, D(2026, 11, 5))
    [october] = nov.checks
    assert october.projection == mid.projection  # the same forecast, made again as of the 15th
    assert (str(october.period), october.as_of, october.closed) == (
        "2026-10",
        D(2026, 10, 15),
        True,
    )
    assert october.actual == pytest.approx(
        mid.projection.p90 * Decimal("1.17"), abs=Decimal("0.01")
    )
    assert nov.row()["forecast_miss"] == "2026-10: over P90 by 17.0%"
    assert october.row("search")["miss"] == "2026-10: over P90 by 17.0%"
    # A month that ran as forecast is no miss; past November's midpoint it is checked too.
    [late] = evaluate(lines(rows), budgets, D(2026, 11, 20))
    november = late.checks[1]
    assert (str(november.period), november.as_of, november.closed) == (
        "2026-11",
        D(2026, 11, 15),
        False,
    )
    assert november.projection.p10 <= november.actual * 30 / 20 <= november.projection.p90
    assert november.miss is None and late.row()["forecast_miss"] == "2026-10: over P90 by 17.0%"
    # Without forecasts (--no-forecast) nothing is checked.
    [quiet] = evaluate(lines(rows), budgets, D(2026, 11, 5), forecast=False)
    assert quiet.checks == () and quiet.row()["forecast_miss"] is None


def test_a_running_period_already_past_its_mid_period_p90_is_a_miss_before_it_ends() -> None:
    budgets = [Budget(name="search", amount_usd=Decimal(3000))]
    rows = _steady(D(2026, 8, 1), 76, seed=6)  # to October 15
    [mid] = evaluate(lines(rows), budgets, D(2026, 10, 15))
    assert mid.projection is not None
    rows += [{"day": d, "cost": "400"} for d in days(D(2026, 10, 16), 8)]  # a runaway job
    [now] = evaluate(lines(rows), budgets, D(2026, 10, 23))
    [october] = [c for c in now.checks if str(c.period) == "2026-10"]
    over = (now.spent - mid.projection.p90) / mid.projection.p90 * 100
    assert over > 0 and not october.closed
    assert now.row()["forecast_miss"] == f"2026-10 so far: over P90 by {over:.1f}%"
