"""The command line of a catalog build tool: read the shared price tables, write one dated CSV.

Each `tools/build_*.py` passes its docstring, its default output, what the catalog is called, its
header and its `build(data) -> rows`; the CSV's first line names its version, the newest `as_of`.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "src/costline/catalog/data"


def main(doc: str, out: str, what: str, header: Sequence[str],
         build: Callable[[Path], list[tuple[str, ...]]], tool: str) -> None:  # fmt: skip
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data/prices folder")
    parser.add_argument("--out", type=Path, default=PACKAGE_DATA / out)
    args = parser.parse_args()
    rows = build(args.data)
    version = max(r[list(header).index("as_of")] for r in rows)
    buf = io.StringIO()
    buf.write(f"# costline {what}, version {version}: built by "
              f"tools/{tool} from public price tables (SOURCES.md)\n")  # fmt: skip
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    args.out.write_text(buf.getvalue(), encoding="utf-8")
    print(f"{len(rows)} prices, version {version} -> {args.out}")
