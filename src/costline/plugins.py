"""Plugin hooks (pluggy). Built-in adapters register exactly as a third party's would: through the
`costline` entry-point group (see pyproject.toml), so the built-ins prove the extension path works.

A plugin module defines functions marked `@hookimpl` named after the specs below, and declares
itself in its package metadata:

    [project.entry-points.costline]
    my_dialects = "my_package.costline_plugin"
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from costline.sources.base import NativeDialect

PROJECT = "costline"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Specs:
    @hookspec
    def costline_billing_dialects(self) -> list[NativeDialect]:  # type: ignore[empty-body]
        """Provider-native billing formats that `costline ingest focus` maps to FOCUS."""


@functools.cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Specs)
    pm.load_setuptools_entrypoints(PROJECT)
    return pm


def billing_dialects() -> list[NativeDialect]:
    """Every registered dialect, built-in and third-party, in registration order."""
    found: list[NativeDialect] = []
    for dialects in reversed(manager().hook.costline_billing_dialects()):
        found.extend(dialects)
    return found
