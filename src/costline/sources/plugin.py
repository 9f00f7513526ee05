"""The built-in source plugin: registered through the `costline` entry-point group."""

from __future__ import annotations

from costline.plugins import hookimpl
from costline.sources.base import NativeDialect
from costline.sources.native import DIALECTS


@hookimpl
def costline_billing_dialects() -> list[NativeDialect]:
    return list(DIALECTS)
