"""The demo organization's bills for a seed, generated and ingested once per test session.

Generating and ingesting 84 days of the demo's bills takes seconds a seed; the detection tests
(`test_detect`) and the recommendation scoring (`test_recommend_demo`) share them through the
session fixture `demo_orgs` (tests/conftest.py). A test that writes to a ledger works on a copy
(`DemoOrgs.copy`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costline.demo.billing import BillingManifest
from costline.demo.recommend_scoring import bill_demo

DEMO_DAYS = 84  # six weeks of history, then five incidents a week apart


@dataclass(frozen=True)
class BilledOrg:
    """One seed's bills (under `out`), ingested into `out/ledger.duckdb`, with its ground truth."""

    out: Path
    manifest: BillingManifest
    truth: dict[str, Any]

    @property
    def ledger(self) -> Path:
        return self.out / "ledger.duckdb"


@dataclass
class DemoOrgs:
    """Billed demo organizations by seed, made on first use under `root`."""

    root: Path
    made: dict[int, BilledOrg] = field(default_factory=dict)

    def bills(self, seed: int) -> BilledOrg:
        if seed not in self.made:
            self.made[seed] = billed_org(self.root / f"org-{seed}", seed)
        return self.made[seed]

    def copy(self, seed: int, to: Path) -> Path:
        """A copy of the seed's ledger at `to` (a file), for a test that writes to it."""
        source = self.bills(seed).ledger
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, to)
        wal = source.with_name(source.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, to.with_name(to.name + ".wal"))
        return to


def billed_org(out: Path, seed: int, days: int = DEMO_DAYS) -> BilledOrg:
    """Generate the seed's bills under `out` and ingest them (and the daily successes)."""
    manifest = bill_demo(out, seed, days)
    return BilledOrg(out, manifest, json.loads(manifest.ground_truth.read_text()))
