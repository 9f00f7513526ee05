"""YAML read with the file and line of every value, so validation errors can point at them.

Configuration, policies and manifests are YAML validated by pydantic; pydantic reports a `loc`
path like `("budgets", 0, "amount_usd")`. `Located.issue(loc, message)` turns that into
`costline.yaml:12: budgets[0].amount_usd: message`. Reading composes the node tree
(`yaml.compose`), refuses duplicate keys and keeps decimals exact (`0.1` is `Decimal('0.1')`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeAlias

import yaml

Loc: TypeAlias = tuple[str | int, ...]

_MAX_DEPTH = 64  # deeper than any real file; stops recursive aliases


@dataclass(frozen=True)
class YamlIssue:
    """One thing wrong, and where: `file:line: key: message` (line and key when known)."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


@dataclass
class Located:
    """Where a YAML value came from, mirroring the data's shape (mapping keys as strings)."""

    file: str
    line: int
    key_line: int | None = None
    mapping: dict[str, Located] | None = None
    items: list[Located] | None = None
    tag: str | None = None  # a mapping's `type:` value: pydantic puts it in discriminated locs

    def find(self, loc: Loc) -> tuple[Located, Loc]:
        """The deepest node along `loc`, and the part of `loc` worth showing a human.

        A discriminator's tag (which pydantic inserts after a tagged item) is skipped; a key the
        file lacks (a missing field) is shown, reported at its mapping; parts after a scalar are
        pydantic's labels for union members and are dropped.
        """
        at, shown = self, []
        for part in loc:
            if at.mapping is not None:
                if str(part) in at.mapping:
                    at = at.mapping[str(part)]
                    shown.append(part)
                    continue
                if at.tag == str(part):
                    continue
                shown.append(part)
                break
            if at.items is not None and isinstance(part, int) and 0 <= part < len(at.items):
                at = at.items[part]
                shown.append(part)
                continue
            break
        return at, tuple(shown)

    def issue(self, loc: Loc, message: str) -> YamlIssue:
        """An issue at `loc`, on the line of its key (or of the list item)."""
        at, shown = self.find(loc)
        return YamlIssue(at.file, at.key_line or at.line, dotted(shown), message)


@dataclass
class YamlDocument:
    """Plain data (dicts, lists, scalars; decimals as `Decimal`) and where each value came from."""

    data: Any
    located: Located


class _Loader(yaml.SafeLoader):
    """Safe YAML, except that decimals stay exact."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return loader.construct_yaml_float(node)  # .inf, .nan, 1:30.5
    return value if value.is_finite() else loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def read_yaml(path: Path, issues: list[YamlIssue]) -> YamlDocument | None:
    """Read one YAML file; on failure, append to `issues` and return None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(YamlIssue(str(path), None, "", f"cannot read the file: {exc}"))
        return None
    return parse_yaml(text, str(path), issues)


def parse_yaml(text: str, filename: str, issues: list[YamlIssue]) -> YamlDocument | None:
    """Parse one YAML document; an empty one is `None` data. Errors go to `issues`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, Located(filename, 1))
        duplicates = _duplicate_keys(node, filename, (), 0)
        if duplicates:
            issues.extend(duplicates)
            return None
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        issues.append(YamlIssue(filename, line, "", f"invalid YAML: {problem}"))
        return None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. a date like 2026-13-01
        issues.append(YamlIssue(filename, None, "", f"invalid YAML: {exc}"))
        return None
    finally:
        loader.dispose()
    return YamlDocument(data, _locate(node, filename, None, 0))


def _duplicate_keys(node: yaml.Node, filename: str, path: Loc, depth: int) -> list[YamlIssue]:
    """Keys repeated in one mapping: YAML would silently keep the last, so refuse them."""
    if depth > _MAX_DEPTH:
        return []
    found: list[YamlIssue] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name, line = str(key.value), key.start_mark.line + 1
            if name in first:
                message = f"duplicate key (first at line {first[name]}); keep one of them"
                found.append(YamlIssue(filename, line, dotted((*path, name)), message))
            first.setdefault(name, line)
            found += _duplicate_keys(value, filename, (*path, name), depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, filename, (*path, i), depth + 1)
    return found


def _locate(node: yaml.Node, filename: str, key_line: int | None, depth: int) -> Located:
    here = Located(filename, node.start_mark.line + 1, key_line)
    if depth > _MAX_DEPTH:
        return here
    if isinstance(node, yaml.MappingNode):
        here.mapping = {}
        for key, value in node.value:
            name = str(key.value)
            here.mapping[name] = _locate(value, filename, key.start_mark.line + 1, depth + 1)
            if name == "type" and isinstance(value, yaml.ScalarNode):
                here.tag = str(value.value)
    elif isinstance(node, yaml.SequenceNode):
        here.items = [_locate(item, filename, None, depth + 1) for item in node.value]
    return here


def merge_documents(a: YamlDocument, b: YamlDocument, issues: list[YamlIssue]) -> YamlDocument:
    """Merge b into a: mappings by key, lists concatenated; differing scalars are refused, with
    both files and lines named in `issues`."""
    data, located = _merge(a.data, a.located, b.data, b.located, (), issues)
    return YamlDocument(data, located)


def _merge(
    a: Any, a_at: Located, b: Any, b_at: Located, path: Loc, issues: list[YamlIssue]
) -> tuple[Any, Located]:
    if isinstance(a, dict) and isinstance(b, dict):
        data, where = dict(a), dict(a_at.mapping or {})
        for key, value in b.items():
            name = str(key)
            value_at = (b_at.mapping or {}).get(name, b_at)
            if key in data:
                data[key], where[name] = _merge(
                    data[key], where.get(name, a_at), value, value_at, (*path, name), issues
                )
            else:
                data[key], where[name] = value, value_at
        return data, replace(a_at, mapping=where)
    if isinstance(a, list) and isinstance(b, list):
        return a + b, replace(a_at, items=[*(a_at.items or []), *(b_at.items or [])])
    if type(a) is type(b) and a == b:
        return a, a_at
    message = (
        f"conflicts with {a_at.file}:{a_at.key_line or a_at.line} "
        f"({show(a)} there, {show(b)} here); set it in one file only"
    )
    issues.append(YamlIssue(b_at.file, b_at.key_line or b_at.line, dotted(path), message))
    return a, a_at


def dotted(parts: Iterable[str | int]) -> str:
    """`("budgets", 0, "amount_usd")` -> `budgets[0].amount_usd`; odd keys are quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def show(value: object) -> str:
    """A scalar as a user would recognise it from their YAML; containers by kind."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "?"
