"""Valuable outputs of LLM apps: the outcome metrics a user ingests, read one way for every use.

An **outcome metric** is a `metrics` row that
- carries the label `app` (the `app` of `llm_requests`: the metadata key `app` of a request log),
- and whose name says it counts (or rates) a good outcome: it contains one of `OUTCOME_WORDS`
  (`accepted_answers`, `tickets_resolved`, `successful_extractions`, `eval_pass_rate`,
  `thumbs_up`, ...) and none of `BAD_WORDS` (`failed_...`, `rejected_...`).

Labels `model` (the model that produced the outcomes, named as the request logs name it; a
snapshot date such as `-2025-04-14` may be left off, `same_model`) and `task` narrow what the
outcomes belong to. A name that reads as a level (`..._rate`, `..._ratio`, `..._pct`: the
metrics' own rule, `detect.metrics.aggregation`) is a **rate**: its points are averaged (a
`pct`/`percent` name is in percent); any other is a **count**: its points are summed over the
window. Unit costs (`economics.unit_costs.llm_outcomes`) divide an app's LLM cost by it; model
tiering (`optimize.tiering`) compares it between models as the quality signal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ibis

from costline.detect.metrics import aggregation
from costline.ledger import fetch

OUTCOME_WORDS = ("success", "succeed", "accept", "resolv", "pass", "correct", "approv",
                 "helpful", "thumbs_up", "upvote", "convert", "conversion")  # fmt: skip
BAD_WORDS = ("fail", "error", "reject", "wrong", "incorrect", "unresolv", "thumbs_down")
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def is_outcome(metric: str) -> bool:
    """Whether a metric's name reads as a good outcome (see the module).

    >>> is_outcome("accepted_answers"), is_outcome("eval_pass_rate"), is_outcome("failed_calls")
    (True, True, False)
    """
    name = metric.lower()
    return any(w in name for w in OUTCOME_WORDS) and not any(w in name for w in BAD_WORDS)


def same_model(label: str | None, model: str | None) -> bool:
    """Whether a metric's `model` label names the model of a request: equal once case and a
    snapshot date suffix are left off (`gpt-4.1` names `gpt-4.1-2025-04-14`, not `gpt-4.1-mini`)."""
    if not label or not model:
        return False
    return _SNAPSHOT.sub("", label.lower()) == _SNAPSHOT.sub("", model.lower())


@dataclass(frozen=True)
class Outcome:
    """One outcome metric of an app over a window (optionally of one model and task)."""

    app: str
    model: str | None
    task: str | None
    metric: str
    rate: bool  # a rate (points averaged, a fraction) rather than a count (points summed)
    value: float  # the count over the window, or the mean rate as a fraction

    def count(self, requests: int) -> float:
        """The outcomes of `requests` requests: the count itself, or the rate times them."""
        return self.value * requests if self.rate else self.value

    def share(self, requests: int) -> float | None:
        """The outcome rate over `requests` requests (a fraction); None without requests."""
        if self.rate:
            return self.value
        return self.value / requests if requests else None


def outcome_table(metrics: ibis.Table, start: dt.datetime, end: dt.datetime) -> ibis.Table:
    """Outcome metrics in `[start, end)`, per app, model, task and metric: the sum and mean of
    their points (the engine does the work; Ibis in, Ibis out)."""
    pattern = "|".join(OUTCOME_WORDS)
    m = metrics.filter(metrics.ts >= start, metrics.ts < end, metrics.labels.get("app").notnull(),
                       metrics.metric.lower().re_search(pattern))  # fmt: skip
    m = m.mutate(app=m.labels.get("app"), model=m.labels.get("model"), task=m.labels.get("task"))
    return m.group_by(["app", "model", "task", "metric"]).aggregate(
        total=m.value.sum(), mean=m.value.mean()
    )


def outcomes(metrics: ibis.Table | None, start: dt.datetime, end: dt.datetime) -> list[Outcome]:
    """The outcome metrics of the window (see the module), sorted by app, metric and model."""
    if metrics is None:
        return []
    out = [_outcome(r) for r in fetch.rows(outcome_table(metrics, start, end))]
    found = [o for o in out if is_outcome(o.metric)]
    return sorted(found, key=lambda o: (o.app, o.metric, o.model or "", o.task or ""))


def _outcome(r: Mapping[str, Any]) -> Outcome:
    metric = str(r["metric"])
    rate = aggregation(metric) == "mean"
    value = float(r["mean"] if rate else r["total"])
    if rate and any(w in metric.lower() for w in ("pct", "percent")):
        value /= 100
    return Outcome(str(r["app"]), r["model"], r["task"], metric, rate, value)
