"""Storage tiering (`storage_tiering`): checkpoints of runs that ended, and data nobody reads, in
a colder tier or deleted, net of the target tier's minimum storage duration and retrieval fees.

Read from each bucket's newest inventory (`storage_objects`) before the window ends, hot-tier
objects only (S3 Standard, Cloud Storage Standard, Azure Hot):

- **checkpoints of runs that ended** at least `ended_days` ago (`attribution.storage.
  ended_run_objects`, the rule zombie detection uses too): a run's checkpoints are its step
  folders (`global_step2000/`, `checkpoint-500/`) or files (`epoch=3-step=1200.ckpt`), ordered
  by step, then by last write. The last `keep_last` and the best (the best value of a metric the
  names carry, `val_loss=0.31`, or one named `best`) are kept; the others not read (not written)
  for `ended_days` are deleted. The rest of the run moves to a colder tier, as kept on purpose;
- **data not read for `unread_days`**: the other hot objects, by bucket and folder (the first
  `prefix_depth` folders of their keys). Without access times for at least half its old bytes,
  only data that registry entries declare, whose runs all ended `unread_days` ago, is moved:
  costline cannot tell other data is cold (`_data_plan`).

A lifecycle rule moves objects by age (days since their last write), so the rule for a prefix
moves every object older than its days; those of them read lately are read again from the colder
tier, each GB at its retrieval fee. The arithmetic, and how the tier is chosen, is
`storage_plan.best_move`. Prices: `storage_rates` (list, else the bill, else unpriced: no saving
claimed for that tier).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from costline.attribution.registry import declared, links
from costline.attribution.storage import ended_run_objects, newest_inventory, storage_uri
from costline.catalog.storage_prices import colder, hot_classes, provider_key, tier_of
from costline.ledger import fetch
from costline.model import Finding
from costline.optimize.inputs import Inputs
from costline.optimize.storage_plan import (
    Group,
    Plan,
    TieringSettings,
    best_move,
    expiry_days,
    kept_checkpoints,
    plan_finding,
)
from costline.optimize.storage_rates import StorageRates, TierPrice, storage_rates

KIND = "storage_tiering"
SETTINGS = TieringSettings()
_CKPT_FOLDER = r"(?i)^((?:[^/]*/)*?[^/]*(?:step|checkpoint|ckpt|iter|epoch)[-_=]?\d+[^/]*/)"
_CKPT_FILE = r"(?i)^(.*(?:step|checkpoint|ckpt|iter|epoch)[-_=]?\d+[^/]*)$"
_PARENT = r"^(.*/)"


def recommend_storage_tiering(
    inputs: Inputs, settings: TieringSettings = SETTINGS
) -> list[Finding]:
    """One recommendation per ended run's checkpoints and per bucket folder of cold data."""
    if inputs.storage is None:
        return []
    s = settings
    ended = inputs.end - dt.timedelta(days=s.ended_days)
    now = newest_inventory(inputs.storage, inputs.end.date())
    hot = now.filter(now.storage_class.upper().isin(hot_classes()))
    runs = ended_run_objects(hot, inputs.workloads, ended)
    ckpts = fetch.rows(_per_checkpoint(runs, ended, inputs.end))
    rest = hot.anti_join(runs, ["bucket", "key"])
    cut = inputs.end - dt.timedelta(days=s.unread_days)
    data = fetch.rows(_per_folder(rest, cut, inputs.end, s.prefix_depth))
    buckets = sorted({r["bucket"] for r in [*ckpts, *data]})
    if not buckets:
        return []
    rates = storage_rates(inputs.lines, inputs.rules, inputs.start, inputs.end, buckets)
    rules = _rules(inputs.lifecycle, buckets)
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ckpts:
        by_run[(r["bucket"], r["wid"])].append(r)
    workloads = _workloads(inputs, sorted({wid for _, wid in by_run}))
    found = [_run_plan(b, workloads[w], rows, rates, rules, inputs, s)
             for (b, w), rows in sorted(by_run.items()) if w in workloads]  # fmt: skip
    owners = _declared_owners(inputs, buckets)
    found += [_data_plan(r, rates, rules, owners, inputs, s) for r in data]
    return inputs.kept(plan_finding(p, inputs, s, KIND) for p in found if p is not None)


# -- the engine side: one row per checkpoint of an ended run, one per folder of other data ------


def _stats(t: ir.Table, cut: dt.datetime, end: dt.datetime) -> dict[str, ir.Value]:
    """What a group of objects holds, and of it what a rule moving objects older than `cut` would
    move (`moved`): its bytes, objects, bytes read since `cut`, bytes with an access time, and
    bytes x age in days (for the mean age)."""
    size = t.size_bytes.fill_null(0)
    moved = t.last_modified < cut
    age = (ibis.literal(end.timestamp()) - t.last_modified.epoch_seconds()) / 86400
    return {
        "provider": t.provider.arbitrary(),
        "storage_class": t.storage_class.mode(),
        "bytes": size.sum(),
        "moved": size.sum(where=moved),
        "objects": t.object_count.fill_null(1).sum(where=moved),
        "read": size.sum(where=moved & (t.last_accessed >= cut)),
        "known": size.sum(where=moved & t.last_accessed.notnull()),
        "age": (size.cast("float64") * age).sum(where=moved),
        "touched": ibis.coalesce(t.last_accessed, t.last_modified).max(),
        "last_read": t.last_accessed.max(),
        "last_write": t.last_modified.max(),
    }


def _per_checkpoint(runs: ir.Table, cut: dt.datetime, end: dt.datetime) -> ir.Table:
    """(bucket, run, checkpoint): a checkpoint is its step folder, else its file, else its
    folder; the run's other objects have checkpoint ""."""
    key = runs.key
    ckpt = ibis.coalesce(key.re_extract(_CKPT_FOLDER, 1).nullif(""),
                         key.re_extract(_CKPT_FILE, 1).nullif(""),
                         key.re_extract(_PARENT, 1).nullif(""), key)  # fmt: skip
    r = runs.mutate(ckpt=ibis.ifelse(runs.is_checkpoint.fill_null(False), ckpt, ""))
    return r.group_by(["bucket", "wid", "ckpt"]).aggregate(
        prefix=r.prefix.min(), **_stats(r, cut, end)
    )


def _per_folder(t: ir.Table, cut: dt.datetime, end: dt.datetime, depth: int) -> ir.Table:
    r = t.mutate(folder=t.key.re_extract(rf"^((?:[^/]*/){{1,{depth}}})", 1))
    return r.group_by(["bucket", "folder"]).aggregate(**_stats(r, cut, end))


def _rules(lifecycle: ir.Table | None, buckets: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """bucket -> its enabled lifecycle rules that act on every object of their prefix."""
    if lifecycle is None:
        return {}
    t = lifecycle.filter(lifecycle.bucket.isin(list(buckets)), lifecycle.rule_id.notnull(),
                         lifecycle.enabled, ~lifecycle.filtered_by_tag.fill_null(False))  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in fetch.rows(t.select("bucket", "rule_id", "prefix", "actions")):
        out[r["bucket"]].append(r)
    return out


def _workloads(inputs: Inputs, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    w = inputs.workloads.filter(inputs.workloads.workload_id.isin(list(ids)))
    rows = fetch.rows(w.select("workload_id", "name", "end", "tags", "namespace", "owner"))
    return {r["workload_id"]: r for r in rows}


# -- the plans -------------------------------------------------------------------------------------


def _group(rows: Iterable[dict[str, Any]], *, whole: bool = False) -> Group:
    """The rows' stats summed; `whole`: all their bytes move (unread checkpoints: all old)."""
    g = Group()
    for r in rows:
        g = g.plus(Group(
            bytes=Decimal(r["bytes"] or 0), moved=Decimal((r["bytes"] if whole else r["moved"]) or 0),
            objects=int(r["objects"] or 0), read=Decimal(r["read"] or 0),
            known=Decimal(r["known"] or 0), age=Decimal(repr(float(r["age"] or 0))),
            last_read=r["last_read"], last_write=r["last_write"]))  # fmt: skip
    return g


@dataclass(frozen=True)
class _Prefix:
    provider: str
    bucket: str
    prefix: str
    storage_class: str


def _prices(
    where: _Prefix, rates: StorageRates
) -> tuple[TierPrice | None, list[TierPrice], list[str]]:
    """The current tier's price, the priced colder tiers, and the colder tiers unpriced."""
    tier = tier_of(where.provider, where.storage_class)
    if tier is None:
        return None, [], []
    facts = rates.buckets.get(where.bucket)
    location = facts.location if facts else None
    targets, unpriced = [], []
    for t in colder(tier):
        p = rates.price(where.provider, location, t)
        if p is None:
            unpriced.append(f"{t.name} price")
        else:
            targets.append(p)
    return rates.price(where.provider, location, tier), targets, unpriced


def _run_plan(
    bucket: str, run: dict[str, Any], rows: list[dict[str, Any]], rates: StorageRates,
    rules: dict[str, list[dict[str, Any]]], inputs: Inputs, s: TieringSettings,
) -> Plan | None:  # fmt: skip
    """An ended run's checkpoints: delete the superseded unread ones, tier what is kept."""
    cut = inputs.end - dt.timedelta(days=s.ended_days)
    ckpts = [r for r in rows if r["ckpt"]]
    keep = kept_checkpoints([(r["ckpt"], r["last_write"]) for r in ckpts], s.keep_last)
    gone = [r for r in ckpts if r["ckpt"] not in keep and _utc(r["touched"]) < cut]
    stays = [r for r in rows if r not in gone]
    prefix = min(str(r["prefix"]) for r in rows)
    where = _Prefix(str(rows[0]["provider"]), bucket, prefix.rstrip("/") + "/", _main_class(rows))
    plan = _plan(
        where, _group(gone, whole=True), _group(stays), rates, rules, s.ended_days, kept=True
    )
    if plan is not None:
        plan.run, plan.deleted = run, sorted(r["ckpt"] for r in gone)
        plan.kept = sorted(c for c in keep if c)
        plan.recent = sorted(r["ckpt"] for r in ckpts if r not in gone and r["ckpt"] not in keep)
    return plan


def _data_plan(
    row: dict[str, Any], rates: StorageRates, rules: dict[str, list[dict[str, Any]]],
    owners: dict[str, list[tuple[str, _Owner]]], inputs: Inputs, s: TieringSettings,
) -> Plan | None:  # fmt: skip
    """A folder of data: moved when its access times say it is cold, or, without them (under
    half its old bytes have one), when registry entries declare it and every run of theirs ended
    more than `unread_days` ago. Data nobody can say is cold is left alone."""
    folder = row["folder"] or ""
    why = None
    if Decimal(row["known"] or 0) * 2 < Decimal(row["moved"] or 0):
        mine = [o for prefix, o in owners.get(row["bucket"], []) if folder.startswith(prefix)]
        cut = inputs.end - dt.timedelta(days=s.unread_days)
        if not mine or any(o.ended is None or o.ended >= cut for o in mine):
            return None
        last = max(o.ended for o in mine if o.ended is not None)
        why = (
            f"declared by {', '.join(sorted(o.name for o in mine))}, whose runs all ended "
            f"by {last.date().isoformat()}"
        )
    where = _Prefix(str(row["provider"]), row["bucket"], folder, str(row["storage_class"]))
    plan = _plan(where, Group(), _group([row]), rates, rules, s.unread_days, kept=False)
    if plan is not None:
        plan.why = why
    return plan


@dataclass(frozen=True)
class _Owner:
    """A registry entry that declares storage: its name, and when its last run ended if every
    run it matched has ended (None while one runs, or when none was seen)."""

    name: str
    ended: dt.datetime | None


def _declared_owners(inputs: Inputs, buckets: Sequence[str]) -> dict[str, list[tuple[str, _Owner]]]:
    """bucket -> (prefix, owner) for the registry's declared storage (`costline.storage`)."""
    entries = [e for e in declared(inputs.workloads) if any(b in buckets for b, _ in e.storage)]
    if not entries:
        return {}
    linked = links(inputs.workloads, entries)
    w = inputs.workloads
    j = linked.join(w, linked.workload_id == w.workload_id)
    g = j.group_by("entry").aggregate(runs=j.count(), ended=j["end"].count(), last=j["end"].max())
    done = {r["entry"]: _utc(r["last"]) for r in fetch.rows(g)
            if r["runs"] and r["runs"] == r["ended"]}  # fmt: skip
    out: dict[str, list[tuple[str, _Owner]]] = defaultdict(list)
    for e in entries:
        for bucket, prefix in e.storage:
            out[bucket].append((prefix, _Owner(e.name, done.get(e.name))))
    return out


def _plan(
    where: _Prefix, gone: Group, stays: Group, rates: StorageRates,
    rules: dict[str, list[dict[str, Any]]], days: int, *, kept: bool,
) -> Plan | None:  # fmt: skip
    """Delete `gone`, move the part of `stays` older than `days` to the tier saving most (`kept`:
    an ended run's, kept on purpose); None when the current tier is unpriced (nothing can be
    claimed) or there is nothing to do."""
    now, targets, unpriced = _prices(where, rates)
    if now is None or provider_key(where.provider) is None:
        return None
    covering = [r for r in rules.get(where.bucket, [])
                if where.prefix.startswith(r["prefix"] or "")]  # fmt: skip
    expires = expiry_days(r["actions"] for r in covering)
    choice, no_fee = best_move(stays, now, targets, expires, days=days, kept=kept)
    if gone.moved <= 0 and choice is None:
        return None
    facts = rates.buckets.get(where.bucket)
    return Plan(where.provider, where.bucket, where.prefix,
                storage_uri(where.provider, where.bucket, where.prefix), now, gone, stays,
                choice, unpriced + no_fee, [r["rule_id"] for r in covering],
                facts.team if facts else None, days)  # fmt: skip


def _main_class(rows: Sequence[dict[str, Any]]) -> str:
    weight: dict[str, int] = defaultdict(int)
    for r in rows:
        weight[str(r["storage_class"])] += int(r["bytes"] or 0)
    return max(sorted(weight), key=lambda k: weight[k])


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts
