"""The JSON values of a usage file, each with where it is: a line, or a record of an array.

One reading for every JSON shape the LLM readers take: a single document (an OTLP export, a
Usage API page), a JSON array of records, or JSON lines; errors name the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from costline.sources.llm.records import line_error

Numbered = Iterator[tuple[int, object]]


def json_values(path: Path, body: str) -> tuple[str, Numbered]:
    """("line" or "record", (number, value) of each value): a whole document is line 1."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # more than one value: JSON lines
            return "line", _lines(path, body.splitlines())
        raise line_error(path, "line", exc.lineno, f"not JSON ({exc.msg})") from None
    if isinstance(doc, list):
        return "record", enumerate(doc, start=1)
    return "line", iter([(1, doc)])


def _lines(path: Path, lines: Iterable[str]) -> Numbered:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise line_error(path, "line", number, f"not JSON ({exc.msg})") from None
