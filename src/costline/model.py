"""The foundation records: a half-open time `Window`, a scope `Selector` and the `Finding`.

Everything costline tells a human (an anomaly, a budget crossing, a policy violation, a TTL expiry,
a recommendation) is a `Finding`: one record type, one lifecycle, one stable fingerprint, so the
CLI, the dashboard and the notifiers all show and de-duplicate the same thing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    RootModel,
    ValidationInfo,
    model_validator,
)

from costline.clock import SYSTEM_CLOCK, Clock
from costline.errors import CostlineError

FINDING_SCHEMA_VERSION: Final = 1
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class InvalidSelector(CostlineError, ValueError):
    """A scope selector could not be parsed (`team=fraud,provider=AWS|Azure` is the shape)."""


class InvalidTransition(CostlineError, ValueError):
    """A finding was asked to move to a status its lifecycle does not allow from where it is."""


# -- shared field types -------------------------------------------------------------------------


def _to_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are refused."""


def _refuse_float(value: object, info: ValidationInfo) -> object:
    # JSON numbers arrive as floats and are accepted; a Python float is a bug at the call site.
    if isinstance(value, float) and info.mode == "python":
        raise ValueError("money must not be a float; pass a str or Decimal")
    return value


def _fixed_point(value: Decimal) -> str:
    return format(value, "f")  # "0.000000000000000001", never "1E-18"


Usd = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    PlainSerializer(_fixed_point, return_type=str, when_used="json"),
]
"""An amount of US dollars as an exact Decimal; in JSON, a fixed-point decimal string."""


def _require_aware(ts: dt.datetime) -> dt.datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{ts.isoformat()} is naive; costline needs timezone-aware UTC datetimes")
    return ts.astimezone(dt.UTC)


# -- Window ---------------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class Window(BaseModel):
    """A half-open interval `[start, end)` of timezone-aware UTC instants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(
                f"window start {self.start.isoformat()} must be before its end "
                f"{self.end.isoformat()} (windows are half-open: [start, end))"
            )
        return self

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start

    def contains(self, ts: dt.datetime) -> bool:
        """Whether `ts` falls in `[start, end)`; naive datetimes are refused, not guessed."""
        return self.start <= _require_aware(ts) < self.end

    @classmethod
    def month(cls, month: str) -> Window:
        """The calendar month `YYYY-MM` in UTC.

        >>> w = Window.month("2026-10")
        >>> w.contains(w.start), w.contains(w.end), w.duration.days
        (True, False, 31)
        """
        match = _MONTH.match(month)
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"expected a month as YYYY-MM (e.g. 2026-10), got {month!r}")
        year, number = int(match.group(1)), int(match.group(2))
        start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
        end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
        return cls(start=start, end=end)

    @classmethod
    def day(cls, day: dt.date | str) -> Window:
        """The UTC calendar day: `Window.day(date(2026, 10, 3))` or `Window.day("2026-10-03")`."""
        if isinstance(day, dt.datetime):
            raise ValueError("Window.day takes a date, not a datetime; pass ts.date()")
        if isinstance(day, str):
            try:
                day = dt.date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"expected a day as YYYY-MM-DD, got {day!r}") from None
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return cls(start=start, end=start + dt.timedelta(days=1))

    def __str__(self) -> str:
        return f"[{_iso(self.start)}, {_iso(self.end)})"


def _iso(ts: dt.datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


# -- Selector -------------------------------------------------------------------------------------


def _as_values(value: object) -> object:
    if isinstance(value, str | int | float | Decimal) and not isinstance(value, bool):
        return [value]
    return value


SelectorValues = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    Field(min_length=1),
    BeforeValidator(_as_values, json_schema_input_type=str | int | list[str | int]),
]


_SelectorTerms = dict[Annotated[str, Field(min_length=1)], SelectorValues]


class Selector(RootModel[_SelectorTerms]):
    """A scope filter: dimension -> one value or a list of accepted values.

    In YAML: `{team: fraud, provider: [AWS, Azure]}`; on the command line:
    `team=fraud,provider=AWS|Azure`. Every dimension must match (AND); the values of one dimension
    are alternatives (OR). An empty selector matches everything. Matching is exact and
    case-sensitive (tag rules fold case before matching, when configured).
    """

    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)

    root: _SelectorTerms = Field(default_factory=dict)

    @classmethod
    def of(cls, **dimensions: str | list[str]) -> Selector:
        """`Selector.of(team="fraud", provider=["AWS", "Azure"])`."""
        return cls.model_validate(dimensions)

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse `team=fraud,provider=AWS|Azure`; a repeated dimension adds alternatives.

        >>> s = Selector.parse("team=fraud,provider=AWS|Azure")
        >>> s.matches({"team": "fraud", "provider": "Azure", "region": "eu"})
        True
        """
        terms: dict[str, list[str]] = {}
        for raw in text.split(","):
            term = raw.strip()
            if not term:
                continue
            dimension, sep, values = term.partition("=")
            alternatives = [v.strip() for v in values.split("|")]
            if not sep or not dimension.strip() or not all(alternatives):
                raise InvalidSelector(
                    f"bad selector term {term!r} in {text!r}: write dimension=value, "
                    "e.g. team=fraud,provider=AWS|Azure"
                )
            known = terms.setdefault(dimension.strip(), [])
            known.extend(v for v in alternatives if v not in known)
        return cls.model_validate(terms)

    def values(self, dimension: str) -> tuple[str, ...]:
        """The accepted values of one dimension; empty when the selector does not constrain it."""
        return tuple(self.root.get(dimension, ()))

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(self.root)

    def matches(self, mapping: Mapping[str, object]) -> bool:
        """Whether a record's dimensions satisfy every term; a missing or null dimension fails."""
        for dimension, accepted in self.root.items():
            value = mapping.get(dimension)
            if value is None or str(value) not in accepted:
                return False
        return True

    def __str__(self) -> str:
        return ",".join(f"{k}={'|'.join(v)}" for k, v in self.root.items())


# -- Finding --------------------------------------------------------------------------------------


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0, 1, 2 for info, warning, critical: compare with `a.rank >= b.rank`."""
        return list(Severity).index(self)


class FindingStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


class FindingKind(StrEnum):
    """What a finding is about. Adding a kind is a schema change: it lands in the published enum."""

    ANOMALY = "anomaly"
    SPIKE = "spike"
    BUDGET_THRESHOLD = "budget_threshold"
    THRESHOLD_BREACH = "threshold_breach"
    POLICY_VIOLATION = "policy_violation"
    TTL_EXPIRY = "ttl_expiry"
    RECOMMENDATION = "recommendation"
    DATA_QUALITY = "data_quality"


class Action(BaseModel):
    """A suggested action, with the monthly savings it is expected to bring where known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    estimated_monthly_savings_usd: Usd | None = None


def fingerprint_of(kind: FindingKind | str, scope: Mapping[str, str], dedup_key: str) -> str:
    """The stable identity of a finding: sha256 over kind, scope (order-insensitive), dedup_key."""
    canonical = json.dumps(
        {"kind": str(kind), "scope": sorted(scope.items()), "dedup_key": dedup_key},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_S = FindingStatus
# action -> the statuses it may start from
_ALLOWED_FROM: dict[str, frozenset[FindingStatus]] = {
    "acknowledge": frozenset({_S.OPEN, _S.SNOOZED}),
    "resolve": frozenset({_S.OPEN, _S.ACKNOWLEDGED, _S.SNOOZED}),
    "snooze": frozenset({_S.OPEN, _S.ACKNOWLEDGED, _S.SNOOZED}),
    "reopen": frozenset({_S.ACKNOWLEDGED, _S.RESOLVED, _S.SNOOZED}),
}


class Finding(BaseModel):
    """Something costline tells a human, with its lifecycle and a stable fingerprint.

    Immutable: the lifecycle methods return a new instance. `impact_usd` null means "not priced
    or not applicable", never zero. Money is a decimal string.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )

    version: Literal[1] = FINDING_SCHEMA_VERSION
    fingerprint: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of kind, scope and dedup_key: the same finding seen again keeps it",
    )
    kind: FindingKind
    dedup_key: str = Field(description="what makes two findings of one kind and scope distinct")
    severity: Severity
    status: FindingStatus = FindingStatus.OPEN
    title: str = Field(min_length=1)
    summary: str = ""
    scope: dict[str, str] = Field(
        default_factory=dict, description="the dimensions it is about, e.g. team, endpoint"
    )
    owner: str | None = None
    impact_usd: Usd | None = Field(
        default=None, description="USD at stake as a decimal string; null when not priced"
    )
    window: Window | None = Field(default=None, description="the half-open period it covers")
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    snoozed_until: UtcDatetime | None = Field(
        default=None, description="set exactly when the status is snoozed"
    )
    evidence: dict[str, JsonValue] = Field(
        default_factory=dict, description="the numbers behind it, as JSON"
    )
    actions: list[Action] = Field(default_factory=list)

    # Fields a newer sighting of the same finding replaces; see `merge`.
    _CONTENT: ClassVar[tuple[str, ...]] = (
        "severity",
        "title",
        "summary",
        "owner",
        "impact_usd",
        "window",
        "evidence",
        "actions",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        expected = fingerprint_of(self.kind, self.scope, self.dedup_key)
        if self.fingerprint != expected:
            raise ValueError(
                "fingerprint does not match kind, scope and dedup_key; build findings with "
                "Finding.new(...) or compute it with fingerprint_of(...)"
            )
        if self.first_seen > self.last_seen:
            raise ValueError("first_seen must not be after last_seen")
        if (self.status is FindingStatus.SNOOZED) != (self.snoozed_until is not None):
            raise ValueError("snoozed_until is set exactly when the status is snoozed")
        return self

    @classmethod
    def new(
        cls,
        *,
        kind: FindingKind | str,
        scope: Mapping[str, str],
        dedup_key: str,
        clock: Clock,
        title: str,
        severity: Severity | str,
        **fields: Any,
    ) -> Finding:
        """A new open finding, first and last seen now; `fields` are the optional fields.

        >>> import datetime as dt
        >>> from costline.clock import FixedClock
        >>> clock = FixedClock(dt.datetime(2026, 10, 3, tzinfo=dt.UTC))
        >>> f = Finding.new(kind="anomaly", scope={"team": "fraud"}, dedup_key="2026-10-03",
        ...                 clock=clock, title="GPU spend 4x baseline", severity="warning")
        >>> f.acknowledge().status
        <FindingStatus.ACKNOWLEDGED: 'acknowledged'>
        """
        now = clock.now()
        kind = FindingKind(kind)
        return cls.model_validate(
            {
                **fields,
                "fingerprint": fingerprint_of(kind, scope, dedup_key),
                "kind": kind,
                "scope": dict(scope),
                "dedup_key": dedup_key,
                "title": title,
                "severity": severity,
                "first_seen": now,
                "last_seen": now,
            }
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def acknowledge(self) -> Finding:
        """Someone owns it now; it stays visible but stops paging."""
        return self._move("acknowledge", FindingStatus.ACKNOWLEDGED)

    def resolve(self) -> Finding:
        return self._move("resolve", FindingStatus.RESOLVED)

    def snooze(self, until: dt.datetime, *, clock: Clock = SYSTEM_CLOCK) -> Finding:
        """Silence it until `until`, which must be in the future of `clock`."""
        until = _require_aware(until)
        if until <= clock.now():
            raise InvalidTransition(
                f"cannot snooze finding {self.fingerprint[:12]} until {_iso(until)}: "
                "that is not in the future"
            )
        return self._move("snooze", FindingStatus.SNOOZED, until)

    def reopen(self) -> Finding:
        """Back to open: a resolved issue came back, or a snooze ran out."""
        return self._move("reopen", FindingStatus.OPEN)

    def _move(
        self, action: str, to: FindingStatus, snoozed_until: dt.datetime | None = None
    ) -> Finding:
        allowed = _ALLOWED_FROM[action]
        if self.status not in allowed:
            starts = ", ".join(sorted(allowed))
            raise InvalidTransition(
                f"cannot {action} finding {self.fingerprint[:12]} ({self.title!r}): it is "
                f"{self.status}, and {action} applies only to findings that are {starts}"
            )
        return self.model_copy(update={"status": to, "snoozed_until": snoozed_until})

    def merge(self, newer: Finding) -> Finding:
        """Fold a new sighting of the same finding into this one.

        Keeps the identity, `first_seen` and the lifecycle status (whether a recurrence reopens a
        resolved finding is the caller's decision: see `reopen`); takes severity, text, impact,
        window, evidence and actions from whichever sighting is latest; `last_seen` is the latest.
        """
        if newer.fingerprint != self.fingerprint:
            raise ValueError(
                f"cannot merge finding {newer.fingerprint[:12]} into {self.fingerprint[:12]}: "
                "they are different findings"
            )
        latest = newer if newer.last_seen >= self.last_seen else self
        update: dict[str, Any] = {name: getattr(latest, name) for name in self._CONTENT}
        update["first_seen"] = min(self.first_seen, newer.first_seen)
        update["last_seen"] = max(self.last_seen, newer.last_seen)
        return self.model_copy(update=update)


def finding_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a finding as costline emits it (`version` 1)."""
    schema = Finding.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
