"""One detection run over a ledger, as the daily job, `costline detect`, sync and the demo run it.

`detect_all` is the single place that decides which detectors a run calls and on which window:
spend anomalies per dimension (an acknowledged one's level is the new normal from then on), and
anomalies of the metrics table. Every caller (the CLI, `costline sync`, the demo, the
scenario scorer) goes through it, so what a user sees is what the scores measure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.config import Config
from costline.detect.anomaly import Settings
from costline.detect.metrics import detect_metrics
from costline.detect.spend import detect_spend, first_day
from costline.detect.usage_sums import DEFAULT_DIMENSIONS, usage_sums
from costline.detect.zombies import detect_zombies
from costline.ledger import fetch
from costline.ledger.store import Ledger
from costline.model import Finding

DAYS = 90  # days of history a run reads, ending `end`


def detect_all(
    ledger: Ledger,
    config: Config,
    *,
    end: dt.datetime,
    clock: Clock,
    days: int = DAYS,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    settings: Settings | None = None,
) -> list[Finding]:
    """The findings of one detection run over the `days` whole UTC days before `end`. The usage
    lines are derived once (`usage_sums`), for spend and zombies alike."""
    start, rules, table = end - dt.timedelta(days=days), Rules.from_config(config), ledger.table
    with contextlib.ExitStack() as stack:
        first = first_day(start, settings or Settings())
        sums = fetch.kept(stack, usage_sums(table("cost_lines"), first, start, end, rules,
                                            dimensions))  # fmt: skip
        return detect_spend(
            table("cost_lines"), start, end,
            rules=rules, clock=clock, dimensions=dimensions,
            settings=settings, annotations=table("annotations"),
            metrics=table("metrics"), renewed=acknowledged(ledger), sums=sums,
        ) + detect_metrics(table("metrics"), start, end, clock=clock, rules=rules) + (
            detect_zombies(table, start, end, rules=rules, clock=clock, sums=sums)
        )  # fmt: skip


def acknowledged(ledger: Ledger) -> dict[tuple[str, str], list[dt.date]]:
    """Per (dimension, value) of an acknowledged anomaly's scope, the day after its last: its
    owner made that level the new normal, so it stops accruing there."""
    f = ledger.table("findings")
    f = f.filter(f.kind == "anomaly", f.status == "acknowledged", f.window_end.notnull())
    out: dict[tuple[str, str], list[dt.date]] = {}
    for r in fetch.rows(f.select("scope", "window_end")):
        for key in dict(r["scope"] or []).items():
            out.setdefault(key, []).append(r["window_end"].date())
    return out
