"""Progress bars for long work: on stderr, only when stderr is a terminal and the output is not JSON.

The one place that decides whether a bar is shown and draws it (rich, imported only when a bar is
drawn). The work itself (ingest, demo generation, forecasts) takes a plain callback,
`Callable[[int, int, str], None]` called with (done, total, what is being done), and never sees
rich.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from costline.cli.output import Format

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def progress_enabled(fmt: Format | None, stream: IO[str] | None = None) -> bool:
    """A bar only for a person watching: stderr a terminal (not piped, not a file), the output not
    JSON (a program reads it), and TERM not `dumb`."""
    stream = sys.stderr if stream is None else stream
    if fmt is Format.json or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Bar:
    """One bar: `update(done, total, what)` moves it (the callback the work is given); `step(what)`
    advances it by one for work counted in steps. Disabled, both do nothing."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def update(self, done: int, total: int, what: str = "") -> None:
        if self._progress is not None and self._task is not None:
            fields = {"description": what} if what else {}
            self._progress.update(self._task, completed=done, total=total, **fields)  # type: ignore[arg-type]

    def step(self, what: str = "") -> None:
        if self._progress is not None and self._task is not None:
            fields = {"description": what} if what else {}
            self._progress.advance(self._task)
            self._progress.update(self._task, **fields)  # type: ignore[arg-type]

    @property
    def shown(self) -> bool:
        return self._progress is not None


@contextlib.contextmanager
def progress_bar(
    what: str, *, total: int | None, fmt: Format | None, console: Console | None = None
) -> Iterator[Bar]:
    """A bar on stderr (or on `console`) while the block runs, removed when it ends; a bar that
    draws nothing when `progress_enabled` says no. `total=None`: it pulses until told a total."""
    if not progress_enabled(fmt, None if console is None else console.file):
        yield Bar(None, None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from costline.cli.output import err_console

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console or err_console(), transient=True) as progress:
        yield Bar(progress, progress.add_task(what, total=total))
