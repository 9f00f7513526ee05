"""The API's recommendations: the stored ones, filtered and summed (`listing`), and a new run (`run`).

`GET /api/v1/recommendations` reads the findings of kind `recommendation` as `costline
recommend` (or a run through the API) stored them: nothing is recomputed on a read, so it answers
in milliseconds whatever the size of the bills. Each row is `optimize.store.row`: current monthly
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

from costline.model import FindingKind, FindingStatus
from costline.money import total
from costline.optimize.store import row, store, window_end
from costline.server.filters import BadRequest, Filters, choice, finding_matches
from costline.server.queries import last_bill_day, window

if TYPE_CHECKING:
    from costline.optimize.run import Run
    from costline.server.reader import Reader
    from costline.server.shared import Served

LIVE = (FindingStatus.OPEN.value, FindingStatus.ACKNOWLEDGED.value)
STATUSES = tuple(s.value for s in FindingStatus)
MONEY = ("current_monthly_usd", "savings_monthly_usd", "savings_low_usd", "savings_high_usd")


def _rows(reader: Reader, fingerprints: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every stored recommendation (or those of `fingerprints`) as rows."""
    t = reader.table("findings")
    t = t.filter(t.kind == FindingKind.RECOMMENDATION.value)
    if fingerprints is not None:
        t = t.filter(t.fingerprint.isin(list(fingerprints)))
    bodies = t.select("body").to_pyarrow().column("body").to_pylist()
    out = []
    for body in bodies:
        b = body if isinstance(body, dict) else json.loads(str(body))
        out.append({**row(b), "window": b.get("window"), "evidence": b.get("evidence", {})})
    return out


def _decimal(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _in_window(reader: Reader, filters: Filters, r: Mapping[str, Any]) -> bool:
    """Whether the window the recommendation was judged on meets the filters' days."""
    if filters.start is None and filters.end is None:
        return True
    span = window(reader, filters)
    judged = r["window"] or {}
    first, end = (f"{d.isoformat()}T00:00:00Z" for d in (span.start, span.end))
    return bool((judged.get("start") or "") < end and (judged.get("end") or "~") > first)


def sums(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count, current cost, savings (P50, low, high) and the realized savings of `rows`."""
    rows = list(rows)
    acted = [r for r in rows if r["realized_monthly_usd"] is not None]
    out: dict[str, Any] = {"count": len(rows)}
    for name in MONEY:
        out[name] = total(_decimal(r[name]) for r in rows)
    out["acted_on"] = len(acted)
    out["realized_monthly_usd"] = total(_decimal(r["realized_monthly_usd"]) for r in acted)
    out["estimated_for_acted_on_usd"] = total(_decimal(r["savings_monthly_usd"]) for r in acted)
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
    everything = _rows(reader)
    kept = [
        r for r in everything
        if r["status"] in status
        and (not kind or r["kind"] in kind)
        and (not owner or r["owner"] in owner)
        and (min_savings is None or _decimal(r["savings_monthly_usd"]) >= min_savings)
        and finding_matches(filters.selector, r["scope"], r["owner"])
        and _in_window(reader, filters, r)
    ]  # fmt: skip
    kept.sort(key=lambda r: (-_decimal(r["savings_monthly_usd"]), r["title"], r["fingerprint"]))
    kinds = sorted({r["kind"] for r in kept if r["kind"]})
    return {
        "as_of": last_bill_day(reader),
        "status": list(status),
        "rows": [{k: v for k, v in r.items() if k != "window"} for r in kept[:limit]],
        "total": len(kept),
        "totals": sums(kept),
        "by_kind": sorted(
            ({"kind": k, **sums(r for r in kept if r["kind"] == k)} for k in kinds),
            key=lambda s: (-s["savings_monthly_usd"], s["kind"]),
        ),
        "facets": {
            "kinds": sorted({r["kind"] for r in everything if r["kind"]}),
            "owners": sorted({r["owner"] for r in everything if r["owner"]}),
        },
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
        return [{k: v for k, v in stored[fp].items() if k != "window"} for fp in fps
                if fp in stored]  # fmt: skip

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
