"""The weekly review: what moved, what is open, what to change, and the quick wins, in one page.

`weekly_review` gathers, for the 7 days ending on a day (and optionally one owner's scope):

- **top movers**: spend per team and service against the week before, largest change first;
- **open incidents**: open anomaly findings, largest impact first;
- **recommendations**: open ones (new this week marked) with their savings, and those acted on
  this week with the saving the bills show;
- **budgets at risk**: periods past 90% of their amount or projected over it;
- **quick wins**: the playbooks' checklist on the organization's own data, each with its number,
  whether it passes, and the recommendation that follows.

Everything is read from the ledger (findings, cost lines, telemetry, LLM requests) and from the
budget evaluation; nothing is computed twice: the movers are `economics.spend.spend_by`, the
budgets `budgets.evaluate`. `markdown` renders it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ibis

from costline.attribution.rules import Rules, derive_lines
from costline.economics.spend import spend_by
from costline.ledger import fetch
from costline.model import Finding

WEEK = dt.timedelta(days=7)
CENT = Decimal("0.01")
AT_RISK = Decimal(90)  # percent of a budget spent


@dataclass
class Review:
    start: dt.date
    end: dt.date  # exclusive
    owner: str | None
    movers: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[Finding] = field(default_factory=list)
    recommendations: list[Finding] = field(default_factory=list)
    acted_on: list[Finding] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def movers(lines: ibis.Table, end: dt.date, rules: Rules, top: int = 10) -> list[dict[str, Any]]:
    """Effective spend per team and service this week and the week before, largest change first."""
    d = derive_lines(lines.filter(lines.ChargePeriodStart >= _at(end - 2 * WEEK),
                                  lines.ChargePeriodStart < _at(end)), rules)  # fmt: skip
    week = ibis.ifelse(d.ChargePeriodStart >= _at(end - WEEK), "this", "last").name("week")
    rows = fetch.rows(spend_by(d, [d.team.fill_null("(untagged)").name("team"),
                                   d.ServiceName.fill_null("(none)").name("service"), week]))  # fmt: skip
    cells: dict[tuple[str, str], dict[str, Decimal]] = {}
    for r in rows:
        cell = cells.setdefault((r["team"], r["service"]), {"this": Decimal(0), "last": Decimal(0)})
        cell[r["week"]] += Decimal(r["effective"] or 0)
    order = sorted(cells, key=lambda k: (-abs(cells[k]["this"] - cells[k]["last"]), k))
    return [_mover(team, service, cells[(team, service)]) for team, service in order[:top]]


def _mover(team: str, service: str, c: dict[str, Decimal]) -> dict[str, Any]:
    change = c["this"] - c["last"]
    return {"team": team, "service": service, "this_week_usd": c["this"].quantize(CENT),
            "last_week_usd": c["last"].quantize(CENT), "change_usd": change.quantize(CENT),
            "change_pct": round(float(change / c["last"] * 100), 1) if c["last"] else None}  # fmt: skip


def _findings(findings: ibis.Table, kind: str, statuses: list[str]) -> list[Finding]:
    t = findings.filter(findings.kind == kind, findings.status.isin(statuses))
    out = []
    for r in fetch.rows(t.select("body")):
        out.append(Finding.model_validate(r["body"] if isinstance(r["body"], dict)
                                          else json.loads(r["body"])))  # fmt: skip
    return sorted(out, key=lambda f: (-(f.impact_usd or 0), f.title))


def _mine(f: Finding, owner: str | None) -> bool:
    return owner is None or f.owner == owner or f.scope.get("team") == owner


def gather(
    tables: dict[str, ibis.Table],
    end: dt.date,
    rules: Rules,
    *,
    owner: str | None = None,
    budgets: list[dict[str, Any]] | None = None,
    top: int = 10,
) -> Review:
    """The review of the week ending before `end` (see the module), for `owner` when given."""
    start = end - WEEK
    review = Review(start, end, owner)
    review.movers = movers(tables["cost_lines"], end, rules, top=top)
    if owner is not None:
        review.movers = [m for m in review.movers if m["team"] == owner]
    f = tables["findings"]
    review.incidents = [x for x in _findings(f, "anomaly", ["open"]) if _mine(x, owner)][:top]
    recs = [x for x in _findings(f, "recommendation", ["open", "acknowledged"]) if _mine(x, owner)]
    review.recommendations = recs[:top]
    done = _findings(f, "recommendation", ["resolved"])
    review.acted_on = [x for x in done if _mine(x, owner) and "realized_monthly_usd" in x.evidence
                       and start <= x.last_seen.date() < end + dt.timedelta(days=1)]  # fmt: skip
    review.budgets = [b for b in budgets or [] if owner is None or b.get("owner") == owner]
    review.checks = quick_wins(tables, start, end, rules)
    return review


def quick_wins(
    tables: dict[str, ibis.Table], start: dt.date, end: dt.date, rules: Rules
) -> list[dict[str, Any]]:
    """The playbooks' checklist, each with its number, a pass, and what follows from a fail."""
    lo, hi = _at(start), _at(end)
    s = tables["gpu_samples"]
    s = s.filter(s.ts >= lo, s.ts < hi)
    busy = ibis.coalesce(s.gr_engine_active, s.gpu_util)
    secs = s.sample_seconds.fill_null(60.0)
    util = fetch.value((busy * secs).sum() / secs.sum(where=busy.notnull()))
    d = derive_lines(tables["cost_lines"].filter(tables["cost_lines"].ChargePeriodStart >= lo,
                                                 tables["cost_lines"].ChargePeriodStart < hi),
                     rules)  # fmt: skip
    domains = {r["cost_domain"]: Decimal(r["usd"] or 0) for r in fetch.rows(
        d.group_by("cost_domain").aggregate(usd=d.EffectiveCost.sum()))}  # fmt: skip
    inference = domains.get("online_inference", Decimal(0)) + domains.get("batch_ai", Decimal(0))
    training = domains.get("training", Decimal(0))
    w = tables["workloads"]
    started = fetch.value(w.filter(w.kind.isin(["training_run", "sweep_trial", "fine_tune"]),
                                   w.start >= lo, w.start < hi).count())  # fmt: skip
    q = tables["llm_requests"]
    q = q.filter(q.ts >= lo, q.ts < hi)
    unset = fetch.value(q.requests.fill_null(1).sum(where=q.max_tokens.isnull()))
    calls = fetch.value(q.requests.fill_null(1).sum())
    floors = fetch.rows(q.filter(q.input_tokens > 0).group_by(["app", "model"]).aggregate(
        floor=q.input_tokens.min()))  # fmt: skip
    long_prompts = sum(1 for r in floors if (r["floor"] or 0) > 500)
    return [
        _check("GPU utilization above 60%", None if util is None else f"{util:.0%}",
               None if util is None else util >= 0.6, "gpu_rightsizing, idle_capacity"),
        _check("Inference cost below training cost", f"${inference:,.0f} inference, "
               f"${training:,.0f} training", inference <= training or training == 0,
               "quantization, autoscaling"),
        _check("Experiments a week without manifests at most 20",
               f"{started or 0} training runs started (manifests: not tracked yet)",
               None, "experiment manifests (costline.yaml experiments:)"),
        _check("System prompts under 500 tokens", f"{long_prompts} app/model pairs whose "
               "smallest request sends over 500 input tokens", long_prompts == 0 if floors else None,
               "trim the fixed prompt; cache it"),
        _check("Outputs capped with max_tokens", None if not calls else
               f"{(unset or 0) / calls:.0%} of {calls:,} calls without max_tokens",
               None if not calls else (unset or 0) == 0, "set max_tokens per task"),
        _check("Frontier models kept off classification tasks", "not evaluated: task types "
               "are not recorded yet", None, "route simple tasks to a smaller model"),
    ]  # fmt: skip


def _check(name: str, value: str | None, ok: bool | None, then: str) -> dict[str, Any]:
    status = "unknown" if ok is None else "pass" if ok else "fail"
    return {"check": name, "value": value or "no data", "status": status, "follow_up": then}


def _money(value: Decimal | None) -> str:
    if value is None:
        return "unpriced"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def markdown(review: Review) -> str:
    """The review as markdown (a pull-request comment, an email, a wiki page)."""
    who = f" for {review.owner}" if review.owner else ""
    last = review.end - dt.timedelta(days=1)
    out = [f"# Weekly review{who}: {review.start} to {last}", "", "## Top movers", ""]
    out += ["| team | service | this week | last week | change |", "|---|---|---:|---:|---:|"]
    out += [f"| {m['team']} | {m['service']} | {_money(m['this_week_usd'])} | "
            f"{_money(m['last_week_usd'])} | {_money(m['change_usd'])}"
            + (f" ({m['change_pct']:+.0f}%)" if m["change_pct"] is not None else "") + " |"
            for m in review.movers]  # fmt: skip
    out += ["", "## Open incidents", ""]
    out += [f"- **{f.title}** ({f.severity}, {f.owner or 'unassigned'}): "
            f"{_money(f.impact_usd)}" for f in review.incidents] or ["- None open."]  # fmt: skip
    out += ["", "## Recommendations", ""]
    out += [_rec_line(f, review) for f in review.recommendations] or ["- None open."]
    if review.acted_on:
        out += ["", "Acted on this week:", ""]
        out += [f"- {f.title}: realized {_money(Decimal(str(f.evidence['realized_monthly_usd'])))}"
                f"/month against {_money(f.impact_usd)} estimated" for f in review.acted_on]  # fmt: skip
    out += ["", "## Budgets at risk", ""]
    out += [f"- **{b['budget']}** ({b['period']}): {_money(b['spent_usd'])} of "
            f"{_money(b['amount_usd'])} spent ({b['spent_pct']}%)"
            + (f", projected {_money(b['projected_usd'])}" if b.get("projected_usd") else "")
            for b in review.budgets] or ["- None."]  # fmt: skip
    out += ["", "## Quick wins", "", "| check | on your data | status | what follows |",
            "|---|---|---|---|"]  # fmt: skip
    out += [f"| {c['check']} | {c['value']} | {c['status']} | {c['follow_up']} |"
            for c in review.checks]  # fmt: skip
    return "\n".join(out) + "\n"


def _rec_line(f: Finding, review: Review) -> str:
    new = (
        " (new)" if review.start <= f.first_seen.date() < review.end + dt.timedelta(days=1) else ""
    )
    return f"- **{f.title}**{new}: saves {_money(f.impact_usd)}/month ({f.owner or 'unassigned'})"


def budgets_at_risk(statuses: list[Any]) -> list[dict[str, Any]]:
    """Budget periods past `AT_RISK` percent spent, or projected over their amount."""
    out = []
    for s in statuses:
        pct = s.spent / s.amount * 100 if s.amount else Decimal(0)
        projected = s.projection.p50 if s.projection is not None else None
        if pct >= AT_RISK or (projected is not None and projected > s.amount):
            teams = s.budget.scope.root.get("team") or []
            out.append({"budget": s.budget.name, "period": str(s.period.start),
                        "owner": next(iter(teams)) if len(teams) == 1 else None,
                        "spent_usd": s.spent.quantize(CENT), "amount_usd": s.amount,
                        "spent_pct": round(float(pct), 1),
                        "projected_usd": None if projected is None else projected.quantize(CENT)})  # fmt: skip
    return out


def html(review: Review) -> str:
    """The review as a self-contained HTML page (for email), from its markdown."""
    body: list[str] = []
    rows: list[list[str]] = []
    for line in [*markdown(review).splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
            continue
        if rows:
            head, *rest = rows
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                                  for r in rest) + "</table>")  # fmt: skip
            rows = []
        if line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line:
            body.append(f"<p>{_inline(line)}</p>")
    return ("<!doctype html><meta charset=\"utf-8\"><title>Weekly review</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>"
            + "\n".join(body) + "\n")  # fmt: skip


def _inline(text: str) -> str:
    """Escape `text`, and turn its **bold** runs into <strong>."""
    import html as html_

    parts = html_.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
