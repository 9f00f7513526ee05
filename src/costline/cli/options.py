"""Options and argument parsers more than one command takes (`--format`, `--cost`, `--where`,
days), so that no command module imports another."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.output import Format
from costline.errors import CostlineError

if TYPE_CHECKING:
    from costline.model import Selector

FormatOpt = Annotated[
    Format | None, typer.Option("--format", "-f", help="table, json, csv, markdown or html")
]


class Cost(enum.StrEnum):
    effective = "effective"
    billed = "billed"


CostOpt = Annotated[Cost, typer.Option("--cost", help="effective (amortized) or billed")]


def parse_where(items: list[str] | None) -> Selector | None:
    """`--where KEY=VALUE` (repeatable) as one selector; None when not given."""
    from costline.model import Selector

    if not items:
        return None
    try:
        return Selector.parse(",".join(items))
    except ValueError as exc:
        raise CostlineError(f"--where: {exc}") from exc


def parse_day(option: str, text: str) -> dt.date:
    """A YYYY-MM-DD option's day; a clear error naming the option otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CostlineError(f"{option} {text!r}: expected YYYY-MM-DD") from None
