"""Opening a ledger another process holds: the command waits for it, and if it cannot have it,
says who has it in costline's words (exit 2), never DuckDB's lock message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costline.errors import LedgerError
from costline.ledger import locking
from costline.ledger.store import Ledger

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the ledger to write and keeps it `seconds`."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    Ledger(f"duckdb://{path}").close()
    return path


def test_a_command_waits_for_a_brief_holder(ledger_file: Path) -> None:
    proc = hold(ledger_file, 1.0)
    started = time.monotonic()
    with Ledger(f"duckdb://{ledger_file}", read_only=True) as ledger:
        assert ledger.schema_version() > 0
    assert time.monotonic() - started >= 0.5  # it waited for the other process to let go
    proc.wait(10)


def test_a_holder_past_the_wait_is_named_without_duckdbs_message(
    ledger_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(locking.WAIT_ENV, "0.3")
    proc = hold(ledger_file, 30)
    try:
        with pytest.raises(LedgerError) as caught:
            Ledger(f"duckdb://{ledger_file}")
        text = str(caught.value)
        assert f"in use by another process (PID {proc.pid})" in text
        assert "Could not set lock" not in text and "IO Error" not in text
        # A running server's marker names it as such.
        marker = locking.marker_path(str(ledger_file))
        marker.write_text(json.dumps({"pid": proc.pid, "url": "http://127.0.0.1:8123"}))
        env = {**os.environ, locking.WAIT_ENV: "0.3"}
        result = subprocess.run(
            [sys.executable, "-m", "costline", "--ledger", f"duckdb://{ledger_file}", "sql",
             "SELECT 1 AS one"], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 2
        said = " ".join(result.stderr.split())  # rich wraps long lines
        assert f"a costline server (PID {proc.pid}, http://127.0.0.1:8123)" in said
        assert "Could not set lock" not in said and "Traceback" not in said
    finally:
        proc.kill()
        proc.wait(10)


def test_the_marker_names_only_its_own_process(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.duckdb")
    with locking.serving_marker(path, "http://127.0.0.1:9"):
        assert locking.read_marker(path) == {"pid": os.getpid(), "url": "http://127.0.0.1:9"}
        assert locking.holder(path, "... (PID 1)") == "another process (PID 1)"
        assert locking.holder(path, f"... (PID {os.getpid()})").startswith("a costline server")
    assert locking.read_marker(path) is None
