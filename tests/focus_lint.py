"""FOCUS validation of exported files by focus-data-toolkit, an independent implementation.

The toolkit's linter (`focus-toolkit validate`) checks FOCUS 1.4 datasets against the FOCUS 1.4 data
model. For the Cost and Usage dataset of 1.0 to 1.3 the same checks run against that version's
columns: the toolkit's own registry for 1.2 and 1.3; the toolkit has none for 1.0 and 1.1, whose
column sets come from the spec-derived catalogue costline ships (`data/`, see its SOURCES.md).
ProviderName and PublisherName, which 1.4 removed, are mandatory non-null strings before 1.4.
"""

from __future__ import annotations

import copy
import csv
from importlib import resources
from pathlib import Path
from typing import Any

from focus_data_toolkit.model import load_model
from focus_data_toolkit.model.validator import (
    LEVEL_STRUCTURAL,
    LintReport,
    lint_focus_1_4_structure,
)
from focus_data_toolkit.schema.registry import mandatory_columns, version_columns

CATALOGUE = "data/focus_cost_and_usage_columns_1.0-1.3.csv"
REMOVED_IN_1_4 = {
    "data_type": "String",
    "value_format": "Unspecified",
    "allows_nulls": False,
    "feature_level": "Mandatory",
}


def _version_model(version: str) -> dict[str, Any]:
    model = copy.deepcopy(load_model())
    cols = model["datasets"]["Cost and Usage"]["columns"]
    cols.update({"ProviderName": REMOVED_IN_1_4, "PublisherName": REMOVED_IN_1_4})
    if version in ("1.2", "1.3", "1.4"):
        names = version_columns("Cost and Usage", version)
        mandatory = mandatory_columns("Cost and Usage", version)
    else:
        text = resources.files("costline").joinpath(CATALOGUE).read_text(encoding="utf-8")
        rows = [
            r for r in csv.DictReader(text.splitlines()) if r["In_" + version.replace(".", "_")]
        ]
        names = frozenset(r["ColumnId"] for r in rows)
        mandatory = frozenset(r["ColumnId"] for r in rows if r["FeatureLevel"] == "Mandatory")
    model["datasets"]["Cost and Usage"]["columns"] = {
        n: {**cols[n], "feature_level": "Mandatory" if n in mandatory else "Conditional"}
        for n in names
    }
    return model


def lint(path: Path, dataset: str = "Cost and Usage", version: str = "1.4") -> LintReport:
    """The toolkit's structural and semantic lint of a CSV file, as FOCUS `version`."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    model = _version_model(version) if dataset == "Cost and Usage" else load_model()
    return lint_focus_1_4_structure(dataset, rows, model=model)


def structural(report: LintReport) -> dict[tuple[str, str | None], int]:
    """Structural violations counted by (rule, column)."""
    out: dict[tuple[str, str | None], int] = {}
    for v in report.violations:
        if v.level == LEVEL_STRUCTURAL:
            out[(v.rule, v.column)] = out.get((v.rule, v.column), 0) + 1
    return out
