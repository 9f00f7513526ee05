"""Provider-native billing formats read as FOCUS: AWS legacy CUR and Azure EA/MCA usage exports.

>>> detect_native(["BilledCost", "ChargePeriodStart", "ServiceName"]) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence

from costline.sources.base import NativeDialect
from costline.sources.native.aws_cur import AWS_CUR
from costline.sources.native.azure_usage import AZURE_USAGE

DIALECTS: tuple[NativeDialect, ...] = (AWS_CUR, AZURE_USAGE)


def detect_native(columns: Sequence[str]) -> NativeDialect | None:
    """The first dialect whose `detect` accepts these column names, or None (e.g. a FOCUS file)."""
    for dialect in DIALECTS:
        if dialect.detect(columns):
            return dialect
    return None


__all__ = ["AWS_CUR", "AZURE_USAGE", "DIALECTS", "detect_native"]
