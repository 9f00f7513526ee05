"""Paths, folders and globs named on the command line, expanded to the files they mean."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from pathlib import Path

from costline.errors import IngestError


def expand_paths(paths: Iterable[str | Path], suffixes: Sequence[str]) -> list[Path]:
    """Files in the order named; folders recursively (only `suffixes`); globs expanded; no repeats."""
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        text = str(raw)
        if any(ch in text for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            matches = [m for m in matches if m.is_file()]
        else:
            p = Path(text)
            if p.is_dir():
                matches = sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file() and f.name.lower().endswith(tuple(suffixes))
                )
            elif p.is_file():
                matches = [p]
            else:
                raise IngestError("no such file or folder", path=text)
        if not matches:
            raise IngestError("matches no file", path=text)
        for m in matches:
            key = m.resolve()
            if key not in seen:
                seen.add(key)
                out.append(m)
    return out
