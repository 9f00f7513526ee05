"""`costline estimate` and `costline gate`: experiment manifests priced and checked before launch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.options import FormatOpt

if TYPE_CHECKING:
    from costline.config import Config
    from costline.governance.estimate import Estimate
    from costline.ledger.store import Ledger

ManifestArgs = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="MANIFEST...",
        help="manifest YAML files (one manifest, `manifests:`, or a costline.yaml); "
        "default: the configuration's experiments.manifests",
    ),
]
NoLedgerOpt = Annotated[
    bool, typer.Option("--no-ledger", help="Use no ledger history, rates or budgets")
]
FORMAT_HELP = "markdown (default, for a pull-request comment) or json"


def estimate_cmd(manifests: ManifestArgs = None, no_ledger: NoLedgerOpt = False,
                 fmt: FormatOpt = None) -> None:  # fmt: skip
    """The pre-launch cost of each manifest: on-demand, Spot net of interruptions, committed at
    the rate your bills show and the catalog's commitments, across the catalog's providers and
    regions, plus checkpoint storage; P50 and P90 from how long similar runs took against what
    they expected (assumed P90 = 1.3x without history). Markdown for a pull-request comment,
    or JSON with --format json."""
    from costline.governance.estimate import markdown

    found, _, _ = _assess(manifests or [], no_ledger, budgets=False)
    _write(markdown(found), {"version": 1, "estimates": [e.row() for e in found]}, fmt)


def gate_cmd(manifests: ManifestArgs = None, no_ledger: NoLedgerOpt = False,
             fmt: FormatOpt = None) -> None:  # fmt: skip
    """Check each manifest before launch (for CI): required fields and tags, TTL within the
    environment's maximum and long enough for the run, GPUs and instance types allowed in the
    environment, GPU ceiling, the budget within the team's remaining budget, the estimate within
    the budget, approval above the threshold, Spot for interruption-tolerant kinds, max_tokens on
    endpoints. Exit 0 pass, 1 fail, 3 needs approval, 2 a bad manifest."""
    from costline.governance.gate import check, exit_code, gate_input, markdown

    found, config, teams = _assess(manifests or [], no_ledger, budgets=True)
    results = [
        (e.manifest.name, check(gate_input(e, config, teams.get(e.manifest.team or ""))))
        for e in found
    ]
    rows = [{"manifest": name, "exit": exit_code(v), "rules": [vars(x) for x in v]}
            for name, v in results]  # fmt: skip
    worst = max((exit_code(v) for _, v in results), default=0, key=lambda c: (c == 1, c == 3))
    _write(markdown(results), {"version": 1, "exit": worst, "manifests": rows}, fmt)
    raise typer.Exit(worst)


def _assess(
    paths: list[Path], no_ledger: bool, *, budgets: bool
) -> tuple[list[Estimate], Config, dict[str, dict[str, object]]]:
    from costline.cli.context import state
    from costline.config import load_config
    from costline.errors import CostlineError
    from costline.governance.assess import estimates, team_budgets
    from costline.governance.manifests import read_manifests

    config = load_config(state.config_path)
    declared = read_manifests(paths, config)
    if not declared:
        raise CostlineError("no manifests: name files, or add experiments.manifests to the config")
    ledger = None if no_ledger else _ledger()
    try:
        teams = team_budgets(config, ledger) if budgets else {}
        return estimates(declared, config, ledger), config, teams
    finally:
        if ledger is not None:
            ledger.close()


def _ledger() -> Ledger | None:
    """The ledger when its file exists (never created here), else None: no history."""
    from costline.cli.context import ledger_url, open_ledger

    url = ledger_url()
    path = url.removeprefix("duckdb://")
    if url.startswith("duckdb://") and not Path(path).is_file():
        return None
    return open_ledger(read_only=True)


def _write(text: str, data: dict[str, object], fmt: object) -> None:
    """Markdown (the default; `table` too) or JSON; csv and html are refused (exit 2)."""
    from costline.cli.output import Format, dumps
    from costline.errors import CostlineError

    if fmt in (Format.csv, Format.html):
        raise CostlineError(f"--format {fmt}: {FORMAT_HELP}")
    sys.stdout.write(dumps(data) + "\n" if fmt == Format.json else text)


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate_cmd)
    app.command("gate")(gate_cmd)
