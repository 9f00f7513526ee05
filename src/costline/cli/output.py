"""One way to print results: table (rich), JSON, CSV, Markdown or HTML, chosen by `--format`.

rich and pyarrow are imported when something is printed, not with this module: every command
module imports it, and `costline --help` should not pay for them.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import functools
import html
import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


@functools.cache
def err_console() -> Console:
    """The console for notes, status and progress: stderr, so piped stdout stays data."""
    from rich.console import Console

    return Console(stderr=True)


@functools.cache
def out_console() -> Console:
    """The console for sentences a command prints beside its tables (stdout)."""
    from rich.console import Console

    return Console()


def default_format(fmt: Format | None) -> Format:
    """Tables on a terminal, JSON when piped."""
    if fmt is not None:
        return fmt
    return Format.table if sys.stdout.isatty() else Format.json


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(data: Any) -> str:
    return json.dumps(data, default=json_default, indent=2, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return (
            format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        )
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    if isinstance(value, dt.datetime | dt.date):
        return str(json_default(value))
    return str(value)


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: Format,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    console: Console | None = None,
) -> None:
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if fmt in (Format.table, Format.markdown, Format.html):
        rows = [_for_people(r) for r in rows]
    if fmt is Format.json:
        sys.stdout.write(dumps([dict(r) for r in rows]) + "\n")
    elif fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in cols])
        sys.stdout.write(buf.getvalue())
    elif fmt is Format.markdown:
        lines = [f"### {title}", ""] if title else []
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---:" if _numeric(rows, c) else "---" for c in cols) + "|")
        for r in rows:
            lines.append(
                "| " + " | ".join(_cell(r.get(c)).replace("|", "\\|") for c in cols) + " |"
            )
        sys.stdout.write("\n".join(lines) + "\n\n")
    elif fmt is Format.html:
        sys.stdout.write(html_table(rows, cols, title=title) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_lines=False)
        for c in cols:
            table.add_column(c, overflow="fold")
        for r in rows:
            # Text, not markup: a value like `[redacted]` or `[bold]` is shown as written.
            table.add_row(*[Text(_cell(r.get(c))) for c in cols])
        (console or Console()).print(table)


def emit_sections(
    sections: dict[str, list[dict[str, Any]]], fmt: Format | None, title: Callable[[str], str]
) -> Format:
    """A report of several tables: one JSON object, else each table under its title."""
    chosen = default_format(fmt)
    if chosen is Format.json:
        sys.stdout.write(dumps(sections) + "\n")
        return chosen
    for name, rows in sections.items():
        if chosen is Format.csv:
            sys.stdout.write(f"# {title(name)}\n")
        emit_rows(rows, chosen, title=title(name))
    return chosen


def _for_people(row: Mapping[str, Any]) -> dict[str, Any]:
    """Amounts in `*_usd` columns as `$1,234.57`, or `$0.002046` below a dollar (unit costs);
    JSON and CSV keep every decimal."""
    from costline.money import format_money

    return {
        k: format_money(v, places=2 if abs(v) >= 1 or not v else 6)
        if k.endswith("_usd") and isinstance(v, Decimal)
        else v
        for k, v in row.items()
    }


def _numeric(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [r.get(column) for r in rows if r.get(column) is not None]
    return bool(values) and all(isinstance(v, int | float | Decimal) for v in values)


def html_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> str:
    """A standalone HTML table (escaped), numbers right-aligned."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(
            f"<td{' class=num' if _numeric(rows, c) else ''}>{html.escape(_cell(r.get(c)))}</td>"
            for c in columns
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return (
        "<table>"
        + caption
        + f"<thead><tr>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def emit_arrow(table: pa.Table, fmt: Format, *, title: str | None = None) -> None:
    emit_rows(table.to_pylist(), fmt, title=title, columns=table.column_names)
