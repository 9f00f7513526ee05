"""Progress bars: drawn on stderr when it is a terminal, never when piped or with `--format json`."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from costline.cli.output import Format
from costline.cli.progress import progress_bar, progress_enabled
from tests.helpers import FOCUS_SAMPLE

CURSOR_HIDDEN = "\x1b[?25l"  # what rich writes when it starts a live display
BAR = "\u2501"  # the bar's own line character


def test_a_bar_is_shown_only_on_a_terminal_and_never_for_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    leader, follower = pty.openpty()
    with open(follower, "w") as terminal:
        assert terminal.isatty()
        for fmt in (None, Format.table, Format.csv, Format.markdown):
            assert progress_enabled(fmt, terminal)
        assert not progress_enabled(Format.json, terminal)
        monkeypatch.setenv("TERM", "dumb")
        assert not progress_enabled(Format.table, terminal)
    os.close(leader)
    monkeypatch.setenv("TERM", "xterm-256color")
    piped = io.StringIO()
    assert not progress_enabled(Format.table, piped)


def test_a_disabled_bar_draws_nothing_and_accepts_every_call() -> None:
    with progress_bar("work", total=3, fmt=Format.json) as bar:
        bar.update(1, 3, "one")
        bar.step("two")
        assert not bar.shown


def _costline_on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run costline with stderr (and stdout) on a pseudo-terminal; everything it drew there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "costline", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    drawn = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        drawn += chunk
    assert proc.wait(timeout=60) == 0, drawn.decode(errors="replace")
    os.close(leader)
    return drawn.decode(errors="replace")


def test_ingest_draws_progress_on_a_terminal_and_nothing_when_piped(tmp_path: Path) -> None:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120",
           "COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'l.duckdb'}"}  # fmt: skip
    # CSV: the bar is the only thing drawn with the bar's line character.
    drawn = _costline_on_a_terminal(["ingest", "focus", str(FOCUS_SAMPLE), "-f", "csv"], env,
                                    tmp_path)  # fmt: skip
    assert CURSOR_HIDDEN in drawn and BAR in drawn
    assert any(step in drawn for step in ("Ingesting 1 path(s)", "fingerprinting", "writing"))

    # The same on a terminal with --format json: the JSON only, no bar.
    again = _costline_on_a_terminal(
        ["--ledger", f"duckdb:///{tmp_path / 'j.duckdb'}", "ingest", "focus",
         str(FOCUS_SAMPLE), "-f", "json"], env, tmp_path,
    )  # fmt: skip
    assert CURSOR_HIDDEN not in again and BAR not in again and "Ingesting" not in again
    assert '"rows": 1000' in again

    # Piped (stderr not a terminal), even asking for a table: no bar.
    piped = subprocess.run(
        [sys.executable, "-m", "costline", "--ledger", f"duckdb:///{tmp_path / 'p.duckdb'}",
         "ingest", "focus", str(FOCUS_SAMPLE), "-f", "table"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert CURSOR_HIDDEN not in piped.stdout + piped.stderr
    assert BAR not in piped.stderr and "Ingesting" not in piped.stderr
    assert "1000 rows from 1 file(s)" in piped.stdout


def test_a_report_draws_its_allocation_bar_only_on_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120",
           "COSTLINE_LEDGER": f"duckdb:///{tmp_path / 'l.duckdb'}"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "costline", "ingest", "focus", str(FOCUS_SAMPLE)],
                   cwd=tmp_path, env=env, capture_output=True, check=True, timeout=120)  # fmt: skip
    day = subprocess.run(
        [sys.executable, "-m", "costline", "sql",
         "SELECT strftime(min(ChargePeriodStart), '%Y-%m') AS m FROM cost_lines", "-f", "csv"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120,
    ).stdout.splitlines()[1]  # fmt: skip
    args = ["report", "showback", "--period", day]
    drawn = _costline_on_a_terminal([*args, "-f", "csv"], env, tmp_path)
    assert CURSOR_HIDDEN in drawn and BAR in drawn and f"Allocating {day}" in drawn
    piped = subprocess.run([sys.executable, "-m", "costline", *args, "-f", "csv"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert "Allocating" not in piped.stderr and CURSOR_HIDDEN not in piped.stderr
    assert piped.stdout.startswith("team,")
