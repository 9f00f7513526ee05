"""The arithmetic of storage tiering (`optimize.storage`): which checkpoints a run keeps, which
colder tier pays once its minimum storage duration and retrieval fees are counted, and the
recommendation that says so. Pure Python over the few aggregate rows the engine returns."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costline.catalog.storage_prices import provider_key
from costline.model import Finding, Window
from costline.optimize.inputs import Inputs
from costline.optimize.lifecycle_rules import Move, action_text, rules
from costline.optimize.recommend import DAYS_PER_MONTH, Savings, recommendation
from costline.optimize.storage_rates import TierPrice

GIB = Decimal(2**30)  # a storage bill's GB (AWS, Google Cloud and Azure bill 2^30 bytes)
LONG_LIFE_DAYS = Decimal(365)  # data kept on purpose stays a year at least
_STEP = re.compile(r"(?i)(?:global_step|step|iter|checkpoint|ckpt)[-_=]?(\d+)")
_EPOCH = re.compile(r"(?i)epoch[-_=]?(\d+)")
_METRIC = re.compile(r"(?i)(val[_-]?loss|eval[_-]?loss|valid[_-]?loss|loss|val[_-]?acc(?:uracy)?"
                     r"|acc(?:uracy)?|f1|bleu|rouge\w*|ppl|perplexity|wer|cer|score|reward)"
                     r"[=_-]?(\d+(?:\.\d+)?)")  # fmt: skip
_LOWER_IS_BETTER = ("loss", "ppl", "perplexity", "wer", "cer")
_BEST = re.compile(r"(?i)(?:^|[^a-z])best(?:[^a-z]|$)")
_EXPIRES = re.compile(r"(?i)\b(?:expire|delete) after (\d+)d")


@dataclass(frozen=True)
class TieringSettings:
    """The choices of storage tiering (defaults fit most ML storage)."""

    unread_days: int = 30  # data not read (without access times: not written) this long is cold
    keep_last: int = 2  # checkpoints an ended run keeps, besides its best
    ended_days: int = 7  # a run ended this long ago is done with its checkpoints: those not read
    # (not written) for this long are deleted or moved
    prefix_depth: int = 2  # data is grouped by the first folders of its keys


@dataclass(frozen=True)
class Group:
    """A set of objects, and of them what a rule moving objects older than `unread_days` moves."""

    bytes: Decimal = Decimal(0)
    moved: Decimal = Decimal(0)  # bytes older than `unread_days`
    objects: int = 0  # objects moved
    read: Decimal = Decimal(0)  # moved bytes read within `unread_days`
    known: Decimal = Decimal(0)  # moved bytes whose access time is known
    age: Decimal = Decimal(0)  # sum of moved bytes x their age in days
    last_read: dt.datetime | None = None
    last_write: dt.datetime | None = None

    def plus(self, o: Group) -> Group:
        return Group(self.bytes + o.bytes, self.moved + o.moved, self.objects + o.objects,
                     self.read + o.read, self.known + o.known, self.age + o.age,
                     _latest(self.last_read, o.last_read),
                     _latest(self.last_write, o.last_write))  # fmt: skip

    @property
    def mean_age_days(self) -> Decimal:
        return self.age / self.moved if self.moved else Decimal(0)


@dataclass(frozen=True)
class Choice:
    """The colder tier proposed for what stays, and what moving there saves a month."""

    target: TierPrice
    savings: Savings
    life_days: Decimal  # the expected remaining life the move is priced over
    reads_gb_month: Decimal  # GB expected to be read back a month


@dataclass
class Plan:
    """What one recommendation proposes for one prefix (a run's, or a folder of data)."""

    provider: str
    bucket: str
    prefix: str
    uri: str
    now: TierPrice  # the current tier's price
    gone: Group  # superseded checkpoints to delete
    stays: Group  # everything else; its moved part goes to `choice`
    choice: Choice | None
    unpriced: list[str]  # colder tiers (or their retrieval fees) with no price
    existing: list[str]  # ids of lifecycle rules already covering the prefix
    team: str | None
    days: int  # unread this long is cold (the rules act on objects older than this)
    run: dict[str, Any] | None = None  # the ended run's workloads row
    deleted: list[str] = field(default_factory=list)  # checkpoint prefixes deleted
    kept: list[str] = field(default_factory=list)  # checkpoint prefixes kept (last N, best)
    recent: list[str] = field(default_factory=list)  # superseded, but written or read lately
    why: str | None = None  # why data without access times is known to be cold


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def step_of(ckpt: str) -> int | None:
    """The training step a checkpoint's name carries (else its epoch), or None."""
    name = ckpt.rstrip("/").rsplit("/", 1)[-1]
    found = _STEP.findall(name) or _EPOCH.findall(name)
    return int(found[-1]) if found else None


def kept_checkpoints(ckpts: Sequence[tuple[str, dt.datetime | None]], keep_last: int) -> set[str]:
    """Of a run's checkpoints (name, last write), the ones kept: the last `keep_last` (by step,
    then by last write) and the best (the best value of the metric most of their names carry,
    lower for losses and error rates; else any named `best`)."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    order = sorted(ckpts, key=lambda c: (step_of(c[0]) or -1, _aware(c[1]) or epoch, c[0]))
    kept = {c for c, _ in order[-keep_last:]} if keep_last > 0 else set()
    metrics: dict[str, list[tuple[Decimal, str]]] = {}
    for c, _ in ckpts:
        name = c.rstrip("/").rsplit("/", 1)[-1]
        if _BEST.search(name):
            kept.add(c)
        for metric, value in _METRIC.findall(name):
            metrics.setdefault(metric.lower(), []).append((Decimal(value), c))
    if metrics:
        metric = max(sorted(metrics), key=lambda m: len(metrics[m]))
        lower = any(w in metric for w in _LOWER_IS_BETTER)
        values = metrics[metric]
        kept.add((min(values) if lower else max(values))[1])
    return kept


def _aware(ts: dt.datetime | None) -> dt.datetime | None:
    return ts.replace(tzinfo=dt.UTC) if ts is not None and ts.tzinfo is None else ts


def expiry_days(actions: Iterable[str | None]) -> int | None:
    """The soonest expiry ("expire after 180d", "Delete after 30d") of existing rules, or None."""
    days = [int(d) for a in actions for d in _EXPIRES.findall(a or "")]
    return min(days) if days else None


def net_monthly(gb: Decimal, now: Decimal, to: TierPrice, life: Decimal, reads: Decimal
                ) -> Decimal | None:  # fmt: skip
    """What moving `gb` from a tier at `now` $/GB-month to `to` saves a month, over a remaining
    life of `life` days (the minimum storage duration charged when longer), less `reads` GB a
    month retrieved; None when reads happen and `to` prices no retrieval (unpriced)."""
    if reads > 0 and to.retrieval_per_gb is None:
        return None
    billed = max(life, Decimal(to.tier.min_storage_days)) / life
    return gb * now - gb * to.per_gb_month * billed - reads * (to.retrieval_per_gb or 0)


def best_move(stays: Group, now: TierPrice, targets: Sequence[TierPrice], expires: int | None,
              *, days: int, kept: bool) -> tuple[Choice | None, list[str]]:  # fmt: skip
    """The colder tier for the part of `stays` older than `days`, and the targets left unpriced
    because reads need a retrieval fee nobody priced.

    Remaining life: for data, its mean age so far (P50), half that (low), a year (high); for what
    an ended run keeps on purpose (`kept`), a year (P50, high) and its mean age (low). Never past
    an existing expiry. Reads: the bytes read within `days`, scaled from those with an access
    time to all, each month. The tier proposed saves most at P50 among those that lose nothing
    at the low end, else most at P50."""
    gb = stays.moved / GIB
    age = stays.mean_age_days
    lindy = max(age, Decimal(days))
    lives = [LONG_LIFE_DAYS, lindy, LONG_LIFE_DAYS] if kept else [lindy, lindy / 2,
                                                                  max(lindy, LONG_LIFE_DAYS)]  # fmt: skip
    if expires is not None:
        lives = [min(life, Decimal(expires) - age) for life in lives]
    if gb <= 0 or min(lives) <= 0:
        return None, []
    seen = stays.read * stays.moved / stays.known if stays.known else Decimal(0)
    reads = seen / GIB * DAYS_PER_MONTH / days
    found: list[Choice] = []
    unpriced = []
    for t in targets:
        p50, low, high = (net_monthly(gb, now.per_gb_month, t, life, r)
                          for life, r in zip(lives, (reads, 2 * reads, reads), strict=True))  # fmt: skip
        if p50 is None or low is None or high is None:
            unpriced.append(f"retrieval fee of {t.tier.name}")
        elif p50 > 0:
            found.append(Choice(t, Savings(p50, min(low, p50), max(high, p50)), lives[0], reads))
    safe = [c for c in found if c.savings.low >= 0] or found
    best = max(safe, key=lambda c: c.savings.p50, default=None)
    return best, unpriced


def plan_finding(p: Plan, inputs: Inputs, s: TieringSettings, kind: str) -> Finding | None:
    """The recommendation of one plan: delete what it deletes, move what it moves."""
    pc = p.now.per_gb_month
    deleted_gb = p.gone.moved / GIB
    saving = deleted_gb * pc
    c = p.choice
    savings = Savings(saving + (c.savings.p50 if c else 0), saving + (c.savings.low if c else 0),
                      saving + (c.savings.high if c else 0))  # fmt: skip
    if savings.p50 <= 0:
        return None
    total_gb = (p.gone.bytes + p.stays.bytes) / GIB
    moved = p.gone.moved + p.stays.moved
    known = p.gone.known + p.stays.known
    key = provider_key(p.provider) or "aws"
    moves = [Move(d, None, p.days) for d in p.deleted]
    moves += [Move(p.prefix, c.target.tier.name, p.days)] if c else []
    both = p.stays.plus(p.gone)
    return recommendation(
        kind=kind,
        scope={"resource": p.uri, **({"run": str(p.run["workload_id"])} if p.run else {})},
        title=_title(p, deleted_gb, s),
        summary=_summary(p, deleted_gb, total_gb, s),
        owner=inputs.owner(p.team) or (_run_owner(p.run, inputs) if p.run else None),
        current_monthly=total_gb * pc,
        savings=savings,
        method="keep the last checkpoints and the best of each ended run, delete the rest; move "
        "data older than the unread window to the colder tier saving most net of its minimum "
        "storage duration and of retrieving what is read (inventory, bill and list prices)",
        inputs=_inputs(p, key, moves, total_gb, deleted_gb, both, s),
        window=Window(start=inputs.start, end=inputs.end),
        coverage=float(known / moved) if moved else 0.0,
        risk=_risk(p, known < moved, s),
        action=action_text(key, p.bucket, moves),
        clock=inputs.clock,
        unpriced=p.unpriced if c is None else (),
    )


def _run_owner(run: dict[str, Any], inputs: Inputs) -> str | None:
    tags = dict(run.get("tags") or [])
    team = inputs.rules.tag_text(tags, "team", run.get("namespace"))
    return inputs.owner(team) or run.get("owner")


def _title(p: Plan, deleted_gb: Decimal, s: TieringSettings) -> str:
    c = p.choice
    to = f" to {c.target.tier.name}" if c else ""
    if p.run is not None:
        head = f"{p.uri}: run {p.run['name']} ended"
        if p.deleted:
            head += f"; delete {len(p.deleted)} superseded checkpoints ({deleted_gb:,.0f} GB)"
        return head + (f"; move the rest{to}" if c else "")
    gb = p.stays.moved / GIB
    verb = "read" if p.stays.known >= p.stays.moved else "written"
    return f"{p.uri}: {gb:,.0f} GB not {verb} in {p.days}+ days in {p.now.tier.name}{to}"


def _summary(p: Plan, deleted_gb: Decimal, total_gb: Decimal, s: TieringSettings) -> str:
    pc = p.now.per_gb_month
    parts = [f"{total_gb:,.0f} GB in {p.now.tier.name} at ${pc.normalize()}/GB-month "
             f"(${total_gb * pc:,.2f} a month)."]  # fmt: skip
    if p.run is not None:
        count = len(p.kept) + len(p.recent) + len(p.deleted)
        parts.append(f"Run {p.run['name']} ended {_day(p.run['end'])}. Of its {count} "
                     f"checkpoints, {len(p.kept)} are kept (the last {s.keep_last} and the "
                     f"best), {len(p.deleted)} unread for {p.days} days are deleted "
                     f"({deleted_gb:,.0f} GB), {len(p.recent)} written or read since are left "
                     "for now.")  # fmt: skip
    c = p.choice
    if c is not None:
        parts.append(f"{p.stays.moved / GIB:,.0f} GB older than {p.days} days move to "
                     f"{c.target.tier.name} at ${c.target.per_gb_month.normalize()}/GB-month, "
                     f"priced over {c.life_days:,.0f} more days (minimum "
                     f"{c.target.tier.min_storage_days}) with {c.reads_gb_month:,.1f} GB a month "
                     "read back.")  # fmt: skip
    elif p.unpriced:
        parts.append(f"Moving it colder is unpriced: {', '.join(p.unpriced)}.")
    if p.why is not None:
        parts.append(f"Its access times are unknown; it is {p.why}.")
    if p.existing:
        parts.append(f"Enabled lifecycle rules already cover the prefix "
                     f"({', '.join(p.existing)}), yet the inventory shows these objects in "
                     f"{p.now.tier.name}: check why they do not apply.")  # fmt: skip
    return " ".join(parts)


def _day(ts: Any) -> str:
    return ts.date().isoformat() if isinstance(ts, dt.datetime) else str(ts)


def _inputs(p: Plan, key: str, moves: list[Move], total_gb: Decimal, deleted_gb: Decimal,
            both: Group, s: TieringSettings) -> dict[str, Any]:  # fmt: skip
    c = p.choice
    out: dict[str, Any] = {
        "bucket": p.bucket, "prefix": p.prefix, "objects": both.objects,
        "gb": total_gb.quantize(Decimal("0.1")), "gb_deleted": deleted_gb.quantize(Decimal("0.1")),
        "gb_moved": (p.stays.moved / GIB).quantize(Decimal("0.1")) if c else Decimal(0),
        "last_access": both.last_read.isoformat() if both.last_read else "unknown",
        "last_write": both.last_write.isoformat() if both.last_write else "unknown",
        "unread_days": p.days, "current_tier": p.now.tier.name,
        "current_usd_per_gb_month": p.now.per_gb_month, "current_price_source": p.now.source,
        "existing_rules": p.existing, "unpriced_tiers": p.unpriced,
        "lifecycle": rules(key, p.bucket, moves),
    }  # fmt: skip
    if c is not None:
        out |= {"target_tier": c.target.tier.name, "target_usd_per_gb_month": c.target.per_gb_month,
                "target_price_source": c.target.source,
                "min_storage_days": c.target.tier.min_storage_days,
                "life_days": c.life_days.quantize(Decimal(1)),
                "retrieval_gb_month": c.reads_gb_month.quantize(Decimal("0.01")),
                "retrieval_usd_per_gb": _or_unpriced(c.target.retrieval_per_gb)}  # fmt: skip
    if p.why is not None:
        out["cold_because"] = p.why
    if p.run is not None:
        out |= {"run": p.run["workload_id"], "run_name": p.run["name"],
                "run_ended": _day(p.run["end"]), "keep_last": s.keep_last,
                "kept": p.kept, "deleted": p.deleted, "left_for_now": p.recent}  # fmt: skip
    return out


def _risk(p: Plan, unknown_access: bool, s: TieringSettings) -> str:
    parts, level = [], "low"
    if p.deleted:
        level = "medium"
        parts.append(
            "a deleted checkpoint is gone (unless the bucket keeps versions); the last "
            f"{s.keep_last} and the best stay"
        )
    c = p.choice
    if c is not None:
        t = c.target.tier
        if t.needs_restore:
            level = "medium"
            parts.append(f"{t.name} objects are read only after a restore ({t.first_byte})")
        else:
            parts.append(f"{t.name} reads stay immediate, at a retrieval fee per GB")
        parts.append(
            f"objects deleted or moved out within {t.min_storage_days} days are "
            f"charged for {t.min_storage_days}"
        )
    if unknown_access:
        level = "medium"
        parts.append(
            f"the inventory has no access times: not written for {p.days} days "
            "stands in for not read"
        )
    return f"{level}: " + "; ".join(parts)


def _or_unpriced(value: Decimal | None) -> Decimal | str:
    return value if value is not None else "unpriced"
