"""Declared work (the registry) joined to what ran (pods, Slurm jobs): `declared` and `links`.

A registry entry says what a training run or an endpoint is: its owner, budget, storage and
outputs. The pods and jobs that did the work are other `workloads` rows, found by the entry's match
(`costline.sources.workloads.registry`): a name glob on `workloads.name`, a label selector on
`workloads.tags`, or both. An observed workload that two entries match belongs to the first by
name, so no GPU-second is counted twice.

    >>> name_glob_regex("atlas-70b-pretrain*")
    '^atlas\\\\-70b\\\\-pretrain.*$'
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import ibis
import pyarrow as pa

from costline.ledger import fetch
from costline.sources.workloads.registry import (
    MATCH_LABELS_TAG,
    MATCH_NAME_TAG,
    STORAGE_TAG,
    STORAGE_URI,
)

TRAINING_KINDS = ("training_run", "sweep_trial", "fine_tune")


@dataclass(frozen=True)
class Declared:
    """One registry entry, read back from `workloads`."""

    workload_id: str
    name: str
    kind: str
    team: str | None
    owner: str | None
    budget_usd: Decimal | None
    name_glob: str | None
    labels: dict[str, str]
    storage: tuple[tuple[str, str], ...]  # (bucket, key prefix), from s3://bucket/prefix

    @property
    def is_training(self) -> bool:
        return self.kind in TRAINING_KINDS


def name_glob_regex(glob: str) -> str:
    """A DuckDB-style GLOB on a workload name (`*`, `?`, `[...]`; `*` crosses `/`, unlike the
    path globs of `storage.checkpoints`) as an anchored regular expression (RE2 syntax)."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (close := glob.find("]", i + 1)) > i:
            body = glob[i + 1 : close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = close
        else:
            out.append(re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def _storage(text: str | None) -> tuple[tuple[str, str], ...]:
    found = []
    for uri in (text or "").splitlines():
        m = STORAGE_URI.match(uri.strip())
        if m is not None:
            found.append((m.group(2), (m.group(3) or "/").lstrip("/")))
    return tuple(found)


def declared(workloads: ibis.Table) -> list[Declared]:
    """The registry's entries, by name."""
    w = workloads.filter(workloads.source == "registry").order_by("workload_id")
    rows = w.select("workload_id", "name", "kind", "team", "owner", "budget_usd", "tags")
    out = []
    for r in fetch.rows(rows):
        tags = dict(r["tags"] or [])
        labels = dict(
            term.split("=", 1)
            for term in (tags.get(MATCH_LABELS_TAG) or "").split(",")
            if "=" in term
        )
        out.append(
            Declared(
                workload_id=r["workload_id"],
                name=r["name"],
                kind=r["kind"],
                team=r["team"],
                owner=r["owner"],
                budget_usd=r["budget_usd"],
                name_glob=tags.get(MATCH_NAME_TAG),
                labels=labels,
                storage=_storage(tags.get(STORAGE_TAG)),
            )
        )
    return out


def links(workloads: ibis.Table, entries: Sequence[Declared]) -> ibis.Table:
    """`(workload_id, entry)`: each observed workload and the registry entry it belongs to (the
    first entry that matches it), as one engine query; entries without a match are skipped."""
    observed = workloads.filter(workloads.source.fill_null("") != "registry")
    parts = []
    for rank, e in enumerate(entries):
        terms: list[ibis.BooleanValue] = []
        if e.name_glob is not None:
            terms.append(observed.name.re_search(name_glob_regex(e.name_glob)))
        terms.extend(observed.tags.get(k) == v for k, v in e.labels.items())
        if not terms:
            continue
        hit = observed.filter(functools.reduce(operator.and_, terms))
        parts.append(hit.select("workload_id", entry=ibis.literal(e.name), rank=ibis.literal(rank)))
    if not parts:
        empty = pa.table(
            {"workload_id": pa.array([], pa.string()), "entry": pa.array([], pa.string())}
        )
        return ibis.memtable(empty)
    both = functools.reduce(lambda a, b: a.union(b, distinct=False), parts)
    first = both.group_by("workload_id").aggregate(rank=both.rank.min())
    return both.join(first, ["workload_id", "rank"]).select("workload_id", "entry").distinct()
