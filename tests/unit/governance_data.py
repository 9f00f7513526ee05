"""Manifests and a small organization for the governance tests (manifests, estimate, gate)."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

from typer.testing import CliRunner, Result

from costline.cli.main import app
from tests.helpers import FOCUS_SAMPLE

GOOD = """
name: ranker-sft
kind: fine_tune
owner: ana@example.com
team: search
project: ranking
purpose: instruction-tune the ranker
environment: dev
ttl_hours: 24
budget_usd: 8
resources: {provider: aws, region: us-east-1, instance_type: g6.xlarge}
steps: 3000
steps_per_hour: 500
"""


def manifest(folder: Path, file: str, text: str, **changes: object) -> Path:
    """Write a manifest (YAML text, with top-level keys replaced by `changes`) to a file."""
    import yaml

    data = yaml.safe_load(textwrap.dedent(text))
    data.update(changes)
    path = folder / f"{file}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def search_ledger(folder: Path) -> tuple[str, Path]:
    """A ledger of the FOCUS sample (September 2024, $14.976514185860 effective) tagged team
    search, and a config whose budget `search` gives that team $20 a month."""
    rows = list(csv.DictReader(FOCUS_SAMPLE.open(encoding="utf-8")))
    for r in rows:
        r["Tags"] = json.dumps({"team": "search"})
    bill = folder / "bill.csv"
    with bill.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    url = f"duckdb:///{folder / 'ledger.duckdb'}"
    done = cli("--ledger", url, "ingest", "focus", str(bill), "-f", "json")
    assert done.exit_code == 0, done.output
    config = folder / "costline.yaml"
    config.write_text(
        "budgets:\n  - {name: search, scope: {team: search}, amount_usd: 20}\n", encoding="utf-8"
    )
    return url, config
