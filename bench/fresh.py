"""Run one side of a benchmark in a fresh Python process, so its peak memory is its own.

A bench script calls `measure(__file__, kind, path, db)`; that runs the script again as
`SCRIPT --worker KIND PATH DB`, whose worker prints one JSON line with `rows`, `seconds` and
`peak_mib` (see `report`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def measure(script: str, kind: str, path: Path, db: Path | str) -> dict[str, float]:
    """Run `script --worker KIND PATH DB` on a new DB file (left in place for later queries).

    A `str` instead of a Path is passed to the worker as it is (no file is removed).
    """
    if isinstance(db, Path):
        for p in (db, Path(str(db) + ".wal")):
            p.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, script, "--worker", kind, str(path), str(db)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed on {path}:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peak_mib() -> float:
    """This process's peak resident memory.

    VmHWM, not `getrusage`: Linux carries ru_maxrss across exec, so a worker started by a parent
    that once held 19 GB would report 19 GB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(rows: int, seconds: float) -> None:
    """The worker's last line: what it did, how long it took, and its peak resident memory."""
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": peak_mib()}))


def arguments(doc: str | None, worker: Callable[..., None]) -> argparse.ArgumentParser | None:
    """In a worker process, run `worker(KIND, PATH, DB)` and return None; else a parser for `doc`."""
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
        return None
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
