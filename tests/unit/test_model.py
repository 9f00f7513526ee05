from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from costline.clock import FixedClock
from costline.errors import CostlineError
from costline.model import (
    Action,
    Finding,
    FindingKind,
    FindingStatus,
    InvalidSelector,
    InvalidTransition,
    Selector,
    Severity,
    Window,
    finding_json_schema,
    fingerprint_of,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 10, 3, 12, 0, tzinfo=UTC)


def _clock() -> FixedClock:
    return FixedClock(T0)


def _finding(clock: FixedClock | None = None, **overrides: Any) -> Finding:
    fields: dict[str, Any] = {
        "kind": "anomaly",
        "scope": {"team": "fraud", "endpoint": "scorer"},
        "dedup_key": "2026-10-03",
        "clock": clock or _clock(),
        "title": "GPU spend 4x baseline",
        "severity": "warning",
    }
    fields.update(overrides)
    return Finding.new(**fields)


# -- Window ---------------------------------------------------------------------------------------


def test_window_converts_to_utc_and_is_half_open() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    w = Window(
        start=dt.datetime(2026, 10, 3, 2, 0, tzinfo=paris),
        end=dt.datetime(2026, 10, 4, 2, 0, tzinfo=paris),
    )
    assert w.start == dt.datetime(2026, 10, 3, 0, 0, tzinfo=UTC)
    assert w.start.tzinfo == UTC
    assert w.duration == dt.timedelta(days=1)
    assert w.contains(w.start)
    assert not w.contains(w.end)
    assert w.contains(w.end - dt.timedelta(microseconds=1))
    assert not w.contains(w.start - dt.timedelta(microseconds=1))


def test_window_refuses_naive_and_reversed() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Window(start=dt.datetime(2026, 10, 3), end=dt.datetime(2026, 10, 4, tzinfo=UTC))
    with pytest.raises(ValidationError, match="must be before its end"):
        Window(start=T0, end=T0)
    with pytest.raises(ValidationError, match="must be before its end"):
        Window(start=T0, end=T0 - dt.timedelta(seconds=1))
    with pytest.raises(ValueError, match="naive"):
        Window.day("2026-10-03").contains(dt.datetime(2026, 10, 3, 1))


@pytest.mark.parametrize(
    ("month", "start", "end", "days"),
    [
        ("2026-10", (2026, 10, 1), (2026, 11, 1), 31),
        ("2026-12", (2026, 12, 1), (2027, 1, 1), 31),
        ("2028-02", (2028, 2, 1), (2028, 3, 1), 29),
        ("2026-02", (2026, 2, 1), (2026, 3, 1), 28),
        ("2026-01", (2026, 1, 1), (2026, 2, 1), 31),
    ],
)
def test_window_month_boundaries(
    month: str, start: tuple[int, int, int], end: tuple[int, int, int], days: int
) -> None:
    w = Window.month(month)
    assert w.start == dt.datetime(*start, tzinfo=UTC)
    assert w.end == dt.datetime(*end, tzinfo=UTC)
    assert w.duration == dt.timedelta(days=days)
    last_instant = w.end - dt.timedelta(microseconds=1)
    assert w.contains(last_instant)
    assert not w.contains(w.end)


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "2026-1", "26-10", "2026/10", ""])
def test_window_month_refuses_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        Window.month(bad)


def test_window_day() -> None:
    w = Window.day(dt.date(2026, 12, 31))
    assert (w.start, w.end) == (
        dt.datetime(2026, 12, 31, tzinfo=UTC),
        dt.datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert Window.day("2026-12-31") == w
    assert str(w) == "[2026-12-31T00:00:00Z, 2027-01-01T00:00:00Z)"
    with pytest.raises(ValueError, match="not a datetime"):
        Window.day(T0)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        Window.day("yesterday")


def test_window_is_immutable_and_hashable() -> None:
    w = Window.month("2026-10")
    with pytest.raises(ValidationError):
        w.start = T0
    assert len({w, Window.month("2026-10")}) == 1


# -- Selector -------------------------------------------------------------------------------------


def test_selector_parse_and_match() -> None:
    s = Selector.parse("team=fraud, provider=AWS|Azure")
    assert s.root == {"team": ["fraud"], "provider": ["AWS", "Azure"]}
    assert s.matches({"team": "fraud", "provider": "Azure", "region": "eu-west-1"})
    assert not s.matches({"team": "fraud", "provider": "GCP"})
    assert not s.matches({"team": "Fraud", "provider": "AWS"})  # exact, case-sensitive
    assert not s.matches({"provider": "AWS"})  # a missing dimension fails
    assert not s.matches({"team": None, "provider": "AWS"})
    assert str(s) == "team=fraud,provider=AWS|Azure"
    assert Selector.parse(str(s)) == s


def test_selector_repeated_dimension_adds_alternatives() -> None:
    s = Selector.parse("provider=AWS,provider=Azure,provider=AWS")
    assert s.values("provider") == ("AWS", "Azure")
    assert s.values("team") == ()


def test_selector_empty_matches_everything() -> None:
    assert Selector.parse("").matches({})
    assert Selector().matches({"team": "x"})
    assert Selector().dimensions == ()


@pytest.mark.parametrize("bad", ["team", "=fraud", "team=", "team=a||b", "team=fraud,provider"])
def test_selector_parse_refuses_bad_terms(bad: str) -> None:
    with pytest.raises(InvalidSelector, match="dimension=value") as err:
        Selector.parse(bad)
    assert isinstance(err.value, CostlineError)
    assert err.value.exit_code == 2


def test_selector_from_mapping_reads_scalars_and_lists() -> None:
    s = Selector.model_validate({"team": "fraud", "account": 123456789012, "env": ["prod", 2]})
    assert s.root == {"team": ["fraud"], "account": ["123456789012"], "env": ["prod", "2"]}
    assert s.matches({"team": "fraud", "account": 123456789012, "env": "2"})
    assert Selector.of(team="fraud") == Selector.parse("team=fraud")
    with pytest.raises(ValidationError):
        Selector.model_validate({"team": []})
    with pytest.raises(ValidationError):
        Selector.model_validate({"team": ""})


# -- Finding: identity ----------------------------------------------------------------------------


def test_fingerprint_is_stable_and_order_insensitive() -> None:
    a = fingerprint_of("anomaly", {"team": "fraud", "endpoint": "scorer"}, "2026-10-03")
    b = fingerprint_of(FindingKind.ANOMALY, {"endpoint": "scorer", "team": "fraud"}, "2026-10-03")
    assert a == b
    assert len(a) == 64 and int(a, 16) >= 0
    assert _finding().fingerprint == a
    assert _finding(scope={"endpoint": "scorer", "team": "fraud"}).fingerprint == a


def test_fingerprint_pinned_value() -> None:
    # The exact value is part of the stored state; changing the recipe is a migration.
    assert fingerprint_of("anomaly", {"team": "fraud"}, "k") == (
        "e86f8a3f59b6621148d84abcb63d68f8a27b82982a0e87f3f8ea75454676a792"
    )


def test_fingerprint_differs_by_scope_kind_and_key() -> None:
    base = _finding().fingerprint
    assert _finding(scope={"team": "fraud", "endpoint": "ranker"}).fingerprint != base
    assert _finding(scope={"team": "fraud"}).fingerprint != base
    assert _finding(kind="spike").fingerprint != base
    assert _finding(dedup_key="2026-10-04").fingerprint != base
    # The same text split differently between key and value is a different scope.
    assert fingerprint_of("anomaly", {"a": "b=c"}, "") != fingerprint_of(
        "anomaly", {"a=b": "c"}, ""
    )


def test_new_sets_times_from_the_clock_and_opens() -> None:
    f = _finding()
    assert f.first_seen == f.last_seen == T0
    assert f.status is FindingStatus.OPEN
    assert f.kind is FindingKind.ANOMALY
    assert f.severity is Severity.WARNING
    assert f.version == 1
    assert f.impact_usd is None
    assert f.snoozed_until is None


def test_a_tampered_fingerprint_is_refused() -> None:
    data = _finding().model_dump()
    data["fingerprint"] = "0" * 64
    with pytest.raises(ValidationError, match="fingerprint does not match"):
        Finding.model_validate(data)


def test_unknown_kind_and_float_money_are_refused() -> None:
    with pytest.raises(ValueError):
        _finding(kind="vibes")
    with pytest.raises(ValidationError, match="float"):
        _finding(impact_usd=12.5)
    with pytest.raises(ValidationError, match="float"):
        Action.model_validate({"text": "stop it", "estimated_monthly_savings_usd": 1.5})


# -- Finding: lifecycle ---------------------------------------------------------------------------


def test_lifecycle_valid_transitions_return_new_instances() -> None:
    clock = _clock()
    f = _finding(clock)
    acked = f.acknowledge()
    assert acked.status is FindingStatus.ACKNOWLEDGED
    assert f.status is FindingStatus.OPEN  # the original is untouched
    until = T0 + dt.timedelta(days=2)
    snoozed = acked.snooze(until, clock=clock)
    assert snoozed.status is FindingStatus.SNOOZED
    assert snoozed.snoozed_until == until
    longer = snoozed.snooze(until + dt.timedelta(days=1), clock=clock)
    assert longer.snoozed_until == until + dt.timedelta(days=1)
    woken = snoozed.reopen()
    assert (woken.status, woken.snoozed_until) == (FindingStatus.OPEN, None)
    resolved = snoozed.resolve()
    assert (resolved.status, resolved.snoozed_until) == (FindingStatus.RESOLVED, None)
    assert resolved.reopen().status is FindingStatus.OPEN
    assert f.resolve().status is FindingStatus.RESOLVED
    assert snoozed.acknowledge().status is FindingStatus.ACKNOWLEDGED
    assert acked.reopen().status is FindingStatus.OPEN
    assert resolved.fingerprint == f.fingerprint


@pytest.mark.parametrize(
    ("start", "action"),
    [
        ("open", "reopen"),
        ("acknowledged", "acknowledge"),
        ("resolved", "acknowledge"),
        ("resolved", "resolve"),
        ("resolved", "snooze"),
    ],
)
def test_lifecycle_refuses_invalid_transitions(start: str, action: str) -> None:
    clock = _clock()
    f = _finding(clock)
    f = {
        "open": f,
        "acknowledged": f.acknowledge(),
        "resolved": f.resolve(),
    }[start]
    with pytest.raises(InvalidTransition, match=f"cannot {action}.*it is {start}"):
        if action == "snooze":
            f.snooze(T0 + dt.timedelta(hours=1), clock=clock)
        else:
            getattr(f, action)()


def test_snooze_must_end_in_the_future() -> None:
    clock = _clock()
    f = _finding(clock)
    with pytest.raises(InvalidTransition, match="not in the future"):
        f.snooze(T0, clock=clock)
    with pytest.raises(ValueError, match="naive"):
        f.snooze(dt.datetime(2026, 10, 5), clock=clock)


def test_snoozed_until_is_consistent_with_status() -> None:
    data = _finding().model_dump()
    with pytest.raises(ValidationError, match="snoozed_until"):
        Finding.model_validate({**data, "status": "snoozed"})
    with pytest.raises(ValidationError, match="snoozed_until"):
        Finding.model_validate({**data, "snoozed_until": T0})


# -- Finding: merge -------------------------------------------------------------------------------


def test_merge_keeps_first_seen_and_takes_the_latest_content() -> None:
    clock = _clock()
    first = _finding(clock, impact_usd=Decimal("100"), evidence={"ratio": 4}).acknowledge()
    clock.advance(hours=6)
    again = _finding(
        clock,
        impact_usd=Decimal("250.50"),
        evidence={"ratio": 6},
        severity="critical",
        title="GPU spend 6x baseline",
    )
    merged = first.merge(again)
    assert merged.fingerprint == first.fingerprint
    assert merged.first_seen == T0
    assert merged.last_seen == T0 + dt.timedelta(hours=6)
    assert merged.impact_usd == Decimal("250.50")
    assert merged.evidence == {"ratio": 6}
    assert merged.severity is Severity.CRITICAL
    assert merged.title == "GPU spend 6x baseline"
    assert merged.status is FindingStatus.ACKNOWLEDGED  # the lifecycle is the human's
    # A late-arriving older sighting changes nothing but can only widen the seen range.
    assert merged.merge(first) == merged
    assert again.merge(first).first_seen == T0
    assert again.merge(first).impact_usd == Decimal("250.50")


def test_merge_refuses_a_different_finding() -> None:
    with pytest.raises(ValueError, match="different findings"):
        _finding().merge(_finding(dedup_key="other"))


# -- Finding: JSON --------------------------------------------------------------------------------


def test_decimal_impact_survives_json_round_trip_exactly() -> None:
    impact = Decimal("12345.678901234567890123")
    savings = Decimal("0.000000000000000001")
    f = _finding(
        impact_usd=impact,
        actions=[Action(text="scale to zero", estimated_monthly_savings_usd=savings)],
        window=Window.day("2026-10-03"),
        owner="fraud",
        evidence={"baseline_usd": "25.10", "z": [1, 2.5, None]},
    )
    text = f.model_dump_json()
    raw = json.loads(text)
    assert raw["impact_usd"] == "12345.678901234567890123"
    assert raw["actions"][0]["estimated_monthly_savings_usd"] == "0.000000000000000001"
    assert raw["version"] == 1
    assert raw["window"] == {"start": "2026-10-03T00:00:00Z", "end": "2026-10-04T00:00:00Z"}
    back = Finding.model_validate_json(text)
    assert back == f
    assert back.impact_usd == impact and str(back.impact_usd) == str(impact)
    assert back.actions[0].estimated_monthly_savings_usd == savings


def test_none_impact_stays_none() -> None:
    f = _finding()
    raw = json.loads(f.model_dump_json())
    assert raw["impact_usd"] is None
    assert Finding.model_validate_json(f.model_dump_json()).impact_usd is None
    zero = _finding(impact_usd=Decimal(0))
    assert Finding.model_validate_json(zero.model_dump_json()).impact_usd == Decimal(0)


def test_finding_json_schema_is_published() -> None:
    schema = finding_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    props = schema["properties"]
    for name in ("version", "fingerprint", "kind", "severity", "status", "impact_usd", "scope"):
        assert name in props
    assert props["version"]["const"] == 1
    assert set(schema["required"]) >= {"fingerprint", "kind", "impact_usd", "first_seen"}
    assert props["impact_usd"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert schema["$defs"]["FindingKind"]["enum"] == [k.value for k in FindingKind]
    assert schema["additionalProperties"] is False
    json.dumps(schema)  # serialisable as is


def test_severity_rank_orders() -> None:
    assert Severity.INFO.rank < Severity.WARNING.rank < Severity.CRITICAL.rank
