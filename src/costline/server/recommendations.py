"""The API's recommendations: the stored ones, filtered and summed (`listing`), and a new run (`run`).

`GET /api/v1/recommendations` reads the findings of kind `recommendation` as `costline
recommend` (or a run through the API) stored them: nothing is recomputed on a read, whatever the
size of the bills. The engine filters, sorts and reads the figures out of the stored JSON; only
the bodies of the rows answered are parsed here. Each row is `optimize.store.row`: current monthly
cost, the P50 saving and its low-high range, confidence, risk, method, the action (and its config
snippet), and the realized saving of one that was acted on. Rows come largest saving first;
`by_kind` and `totals` sum the rows kept (exactly, in decimal), and `facets` lists the kinds and
owners of every stored recommendation, for the dashboard's dropdowns.

`POST /api/v1/recommendations/run` runs `optimize.run.recommend` on the server's copy of the
ledger (the same window `costline recommend` judges: the days to the last bill) and keeps the
result with `optimize.store.store`, the one store-and-resolve step the CLI uses, through
`Served.write` (the ledger itself, and the copy the API reads).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from costline.ledger.sql import run as run_sql
from costline.model import FindingKind, FindingStatus
from costline.money import total
from costline.optimize.store import row, store, window_end
from costline.server.filters import BadRequest, Filters, choice
from costline.server.queries import last_bill_day, window

if TYPE_CHECKING:
    from costline.optimize.run import Run
    from costline.server.reader import Reader
    from costline.server.shared import Served

LIVE = (FindingStatus.OPEN.value, FindingStatus.ACKNOWLEDGED.value)
STATUSES = tuple(s.value for s in FindingStatus)
MONEY = ("current_monthly_usd", "savings_monthly_usd", "savings_low_usd", "savings_high_usd")


# A light row's figures: the engine reads them out of each stored body (no body parsed here).
FIGURES = {
    "kind": "$.evidence.recommendation",
    "current_monthly_usd": "$.evidence.current_monthly_usd",
    "savings_monthly_usd": "$.evidence.savings_monthly_usd.p50",
    "savings_low_usd": "$.evidence.savings_monthly_usd.low",
    "savings_high_usd": "$.evidence.savings_monthly_usd.high",
    "realized_monthly_usd": "$.evidence.realized_monthly_usd",
}


def _light(reader: Reader, filters: Filters, where: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stored recommendations in the filters, largest P50 saving first, each with its
    fingerprint and figures (money as `Decimal`): filtered, sorted and read out of the stored
    JSON by the engine, so no body is parsed in Python (see `_where`)."""
    clause, params = _where(reader, filters, where)
    paths = ", ".join(f"'{path}'" for path in FIGURES.values())
    rows = run_sql(reader.cursor(), f"SELECT fingerprint, json_extract_string(body, [{paths}]) "
                   f"FROM findings WHERE {clause} ORDER BY impact_usd DESC NULLS LAST, title, "
                   "fingerprint", params)  # fmt: skip
    out = []
    for fp, values in rows:
        figures = dict(zip(FIGURES, values, strict=True))
        out.append({"fingerprint": fp, **{k: v if k == "kind" or v is None else Decimal(v)
                                          for k, v in figures.items()}})  # fmt: skip
    return out


def _where(reader: Reader, filters: Filters, where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The SQL condition of the filters: status, kind, owner and minimum P50 (`where`), each
    dimension of the selector matched in the scope (its owner standing in for a team it does
    not name, as `filters.finding_matches`), and the judged window meeting the filters' days."""
    terms = ["kind = ?", "list_contains(?::VARCHAR[], status)"]
    params: list[Any] = [FindingKind.RECOMMENDATION.value, list(where["status"])]
    if where["kind"]:
        terms.append(f"list_contains(?::VARCHAR[], json_extract_string(body, '{FIGURES['kind']}'))")
        params.append(list(where["kind"]))
    if where["owner"]:
        terms.append("list_contains(?::VARCHAR[], owner)")
        params.append(list(where["owner"]))
    if where["min_savings"] is not None:
        terms.append("impact_usd >= ?")  # the P50, to the cent
        params.append(where["min_savings"])
    for dimension, accepted in filters.selector.root.items():
        value = "map_extract_value(scope, ?)"
        if dimension == "team":
            value = f"coalesce({value}, owner)"
        terms.append(f"list_contains(?::VARCHAR[], {value})")
        params += [list(accepted), dimension]
    if filters.start is not None or filters.end is not None:
        first, end = window(reader, filters).at()
        terms.append("(window_start IS NULL OR window_start < ?) AND "
                     "(window_end IS NULL OR window_end > ?)")  # fmt: skip
        params += [end, first]
    return " AND ".join(terms), params


def _facets(reader: Reader) -> dict[str, list[str]]:
    """The kinds and owners of every stored recommendation (the dashboard's dropdowns)."""
    rows = run_sql(reader.cursor(), "SELECT DISTINCT json_extract_string(body, "
                   f"'{FIGURES['kind']}'), owner FROM findings WHERE kind = ?",
                   [FindingKind.RECOMMENDATION.value])  # fmt: skip
    return {"kinds": sorted({k for k, _ in rows if k}), "owners": sorted({o for _, o in rows if o})}


def _rows(reader: Reader, fingerprints: Sequence[str]) -> list[dict[str, Any]]:
    """The stored recommendations of `fingerprints`, in that order, as full rows (`store.row`
    and the evidence)."""
    found = {}
    for (body,) in run_sql(reader.cursor(), "SELECT body FROM findings WHERE "
                           "list_contains(?::VARCHAR[], fingerprint)", [list(fingerprints)]):  # fmt: skip
        b = body if isinstance(body, dict) else json.loads(str(body))
        found[b["fingerprint"]] = {**row(b), "evidence": b.get("evidence", {})}
    return [found[fp] for fp in fingerprints if fp in found]


def sums(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count, current cost, savings (P50, low, high) and the realized savings of light rows."""
    rows = list(rows)
    acted = [r for r in rows if r["realized_monthly_usd"] is not None]
    out: dict[str, Any] = {"count": len(rows)}
    for name in MONEY:
        out[name] = total(r[name] for r in rows)
    out["acted_on"] = len(acted)
    out["realized_monthly_usd"] = total(r["realized_monthly_usd"] for r in acted)
    out["estimated_for_acted_on_usd"] = total(r["savings_monthly_usd"] for r in acted)
    return out


def listing(
    reader: Reader,
    filters: Filters,
    *,
    kind: Sequence[str] = (),
    owner: Sequence[str] = (),
    status: Sequence[str] = LIVE,
    min_savings: Decimal | None = None,
    limit: int = 500,
) -> dict[str, Any]:
    """The stored recommendations in the filters, largest P50 saving first (see the module)."""
    for s in status:
        choice("status", s, STATUSES)
    where = {"status": status, "kind": kind, "owner": owner, "min_savings": min_savings}
    kept = _light(reader, filters, where)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in kept:
        if r["kind"]:
            by_kind.setdefault(r["kind"], []).append(r)
    return {
        "as_of": last_bill_day(reader),
        "status": list(status),
        "rows": _rows(reader, [r["fingerprint"] for r in kept[:limit]]),
        "total": len(kept),
        "totals": sums(kept),
        "by_kind": sorted(
            ({"kind": k, **sums(rs)} for k, rs in by_kind.items()),
            key=lambda s: (-s["savings_monthly_usd"], s["kind"]),
        ),
        "facets": _facets(reader),
    }


def run(
    served: Served,
    *,
    kinds: Sequence[str] | None,
    days: int,
    min_savings: Decimal,
) -> dict[str, Any]:
    """Run the recommenders of `kinds` (None: all) on the days to the last bill, store what they
    find and resolve what they no longer find; answer the stored rows of both."""
    from costline.optimize.run import KINDS, recommend

    chosen = list(kinds) if kinds else list(KINDS)
    for k in chosen:
        choice("kind", k, tuple(KINDS))
    reader = served.current()
    last = last_bill_day(reader)
    if last is None:
        raise BadRequest("no cost lines in the ledger: ingest bills first")
    done = recommend(reader, reader.rules, end=window_end(last), days=days, clock=served.clock,
                     kinds=chosen, min_savings=min_savings)  # fmt: skip
    served.write(lambda con: store(con, done, served.clock))
    stored = {r["fingerprint"]: r for r in _rows(served.current(), _fingerprints(done))}

    def shown(fps: Iterable[str]) -> list[dict[str, Any]]:
        return [stored[fp] for fp in fps if fp in stored]

    start = window_end(last) - dt.timedelta(days=days)
    return {
        "as_of": last,
        "window": {"start": start, "end": window_end(last), "days": days},
        "kinds": chosen,
        "found": shown(f.fingerprint for f in done.found),
        "resolved": shown(f.fingerprint for f in done.stale),
    }


def _fingerprints(done: Run) -> list[str]:
    return [f.fingerprint for f in (*done.found, *done.stale)]
