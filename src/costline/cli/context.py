"""What every command shares: the global options (`--ledger`, `--config`) and the ledger they name.

The commands import this module, not `costline.cli.main` (which imports the commands to add them
to the app), so the CLI has no import circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from costline.ledger import DEFAULT_LEDGER_URL

if TYPE_CHECKING:
    from costline.ledger.store import Ledger


class State:
    ledger_url: str = DEFAULT_LEDGER_URL
    ledger_explicit: bool = False
    config_path: Path | None = None


state = State()


def ledger_url() -> str:
    """--ledger or COSTLINE_LEDGER, else costline.yaml's `ledger:`, else the default file."""
    if state.ledger_explicit:
        return state.ledger_url
    from costline.config import load_config

    return load_config(state.config_path).ledger or DEFAULT_LEDGER_URL


def open_ledger(read_only: bool = False) -> Ledger:
    """The ledger, its cost lines reported in USD with the configuration's `fx:` rates."""
    from costline.config import load_config
    from costline.fx import configured_rates
    from costline.ledger.store import Ledger

    config = load_config(state.config_path)
    rates = configured_rates(config.fx, config.base_dir)
    return Ledger(ledger_url(), read_only=read_only, fx_rates=rates)
