"""Provider-native billing dialects (placeholder until the AWS CUR and Azure mappings land)."""

from __future__ import annotations

from collections.abc import Sequence

from costline.sources.base import NativeDialect

DIALECTS: tuple[NativeDialect, ...] = ()


def detect_native(columns: Sequence[str]) -> NativeDialect | None:
    return next((d for d in DIALECTS if d.detect(columns)), None)
