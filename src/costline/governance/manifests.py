"""Reading experiment manifests: one per YAML file, a file of `manifests:`, a `costline.yaml`
(its `experiments.manifests`), or, with no file named, the loaded configuration's.

Every problem names the file, the line and the dotted key, and the whole read fails (exit 2)
before anything is estimated or gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from costline.config import Config, ConfigValidationError
from costline.manifest import ExperimentManifest
from costline.yamlfile import Loc, Located, YamlIssue, read_yaml


@dataclass(frozen=True)
class Declared:
    """A manifest and where it was read from (a file, or the configuration)."""

    manifest: ExperimentManifest
    source: str


def read_manifests(paths: list[Path], config: Config) -> list[Declared]:
    """The manifests of `paths` (each a file), or the configuration's when none is named."""
    if not paths:
        where = ", ".join(str(f) for f in config.files) or "the configuration"
        return [Declared(m, where) for m in config.experiments.manifests]
    issues: list[YamlIssue] = []
    out: list[Declared] = []
    for path in paths:
        if not path.is_file():
            issues.append(YamlIssue(str(path), None, "", "no such manifest file"))
            continue
        document = read_yaml(path, issues)
        if document is not None:
            out += _manifests(document.data, document.located, str(path), issues)
    names = [d.manifest.name for d in out]
    for d in out:
        if names.count(d.manifest.name) > 1:
            issues.append(YamlIssue(d.source, None, "name",
                                    f"the manifest name {d.manifest.name!r} repeats"))  # fmt: skip
    if issues:
        raise ConfigValidationError(issues)
    return out


def _manifests(data: Any, located: Located, path: str, issues: list[YamlIssue]) -> list[Declared]:
    """One manifest, `manifests: [...]`, or `experiments: {manifests: [...]}`."""
    base: Loc = ()
    if isinstance(data, dict) and "experiments" in data:
        base, data = ("experiments",), data["experiments"]
    if isinstance(data, dict) and "manifests" in data:
        items = data["manifests"]
        if not isinstance(items, list):
            issues.append(located.issue((*base, "manifests"), "must be a list of manifests"))
            return []
        return [
            d
            for i, item in enumerate(items)
            if (d := _one(item, located, (*base, "manifests", i), path, issues)) is not None
        ]
    if not isinstance(data, dict):
        issues.append(YamlIssue(path, located.line, "", "a manifest must be a mapping of fields"))
        return []
    found = _one(data, located, base, path, issues)
    return [] if found is None else [found]


def _one(
    item: Any, located: Located, at: Loc, path: str, issues: list[YamlIssue]
) -> Declared | None:
    try:
        return Declared(ExperimentManifest.model_validate(item), path)
    except ValidationError as exc:
        for e in exc.errors(include_url=False):
            message = e["msg"].removeprefix("Value error, ")
            value = e.get("input")
            if e["type"] == "missing":
                message = "required key missing"
            elif e["type"] == "extra_forbidden":
                message = "unknown key"
            elif isinstance(value, str | int | float) and e["type"] != "value_error":
                message += f" (got {value!r})"
            issues.append(located.issue((*at, *e["loc"]), message))
        return None
