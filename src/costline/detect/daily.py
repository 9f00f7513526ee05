"""One detection run over a ledger, as the daily job, `costline detect`, sync and the demo run it.

`detect_all` is the single place that decides which detectors a run calls and on which window:
spend anomalies per dimension today. Every caller (the CLI, `costline sync`, the demo, the
scenario scorer) goes through it, so what a user sees is what the scores measure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from costline.attribution.rules import Rules
from costline.clock import Clock
from costline.config import Config
from costline.detect.anomaly import Settings
from costline.detect.spend import DEFAULT_DIMENSIONS, detect_spend
from costline.detect.zombies import detect_zombies
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
    """The findings of one detection run over the `days` whole UTC days before `end`."""
    return detect_spend(
        ledger.table("cost_lines"), end - dt.timedelta(days=days), end,
        rules=Rules.from_config(config), clock=clock, dimensions=dimensions,
        settings=settings, annotations=ledger.table("annotations"),
        metrics=ledger.table("metrics"),
    ) + detect_zombies(ledger.table, end - dt.timedelta(days=days), end,
                       rules=Rules.from_config(config), clock=clock)  # fmt: skip
