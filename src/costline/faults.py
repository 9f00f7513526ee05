"""Named fault points for crash tests: `COSTLINE_FAULT=ingest.after_insert` kills the process there.

A real SIGKILL, not an exception, so tests prove what a crash mid-ingest leaves behind.
"""

from __future__ import annotations

import os
import signal

ENV = "COSTLINE_FAULT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
