"""Plugin hooks (pluggy). Built-in adapters register exactly as a third party's would: through the
`costline` entry-point group (see pyproject.toml), so the built-ins prove the extension path works.

A plugin module defines functions marked `@hookimpl` named after the specs below, and declares
itself in its package metadata:

    [project.entry-points.costline]
    my_dialects = "my_package.costline_plugin"
"""

from __future__ import annotations

import functools
from typing import Any

import pluggy

PROJECT = "costline"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Specs:
    @hookspec
    def costline_billing_dialects(self) -> list[Any]:  # type: ignore[empty-body]
        """Provider-native billing formats that `costline ingest focus` maps to FOCUS: a list of
        `costline.sources.base.NativeDialect` (the sources read them with
        `costline.sources.base.billing_dialects`; this foundation module does not import them)."""


@functools.cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Specs)
    pm.load_setuptools_entrypoints(PROJECT)
    return pm
