"""SQL compiled once per query shape: a query asked again with other dates reuses its SQL.

Compiling an Ibis expression (its rewrites, then SQLGlot) costs 5-60 ms, often more than DuckDB
takes to run the query on a day's data. A daily job asks the same queries every run with only
its dates moved (the window's start and end, the history before it) and its temporary tables
renamed (`fetch.kept`); the scenario scorer runs detection once a day over months of days.

`sql(backend, table)` is `backend.compiler.to_sqlglot(table)` as text. It keys the expression by
its *shape*: the expression with each distinct date, timestamp or text-list literal, each kept temporary
table and each in-memory table (whose rows the SQL does not hold) named by its position. The second time a shape is asked for, the expression is compiled
once more with a distinct sentinel date in place of each literal, and the sentinels' SQL is cut
out of it into a template, which is checked to give, filled with this call's literals, the SQL
compiling this call's expression gives (else the shape is never templated): the same text,
except that the columns of a `* EXCLUDE (...)` may come in another order, as they may from one
compilation to the next (Ibis writes a set of dropped columns in the set's order). From the
third time on, the template is filled with the call's literals rendered by the same compiler,
without compiling. A shape asked once (a query naming this
run's anomalies) costs one walk over its nodes more than compiling it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir
from ibis.backends.sql import SQLBackend
from sqlglot import ErrorLevel

KEPT_PREFIX = "ibis_kept_"  # temporary tables of `fetch.kept` (`ibis.util.gen_name("kept")`)
SHAPES = 512  # shapes remembered, the least recently asked forgotten first


@dataclass(frozen=True)
class _Template:
    """A shape's SQL cut at its literals and kept tables: `parts[0] + filler + parts[1] ...`,
    the filler before `parts[k]` being literal `slots[k - 1]` (>= 0) or kept table `-1 - n`."""

    parts: tuple[str, ...]
    slots: tuple[int, ...]

    def fill(self, literals: Sequence[str], kept: Sequence[str]) -> str:
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(literals[slot] if slot >= 0 else kept[-1 - slot])
            out.append(part)
        return "".join(out)


@dataclass
class _Seen:
    times: int = 1
    template: _Template | None = None
    refused: bool = False  # the template did not give the compiler's SQL: never use one


_lock = threading.Lock()
_shapes: OrderedDict[Hashable, _Seen] = OrderedDict()


def sql(backend: SQLBackend, table: ir.Table) -> str:
    """The SQL of `table` on `backend`, as `backend.compiler.to_sqlglot(table)` writes it."""
    op = table.op()
    key, literals, kept = _shape(op)
    with _lock:
        seen = _shapes.get(key)
        if seen is None:
            _shapes[key] = seen = _Seen(times=0)
            while len(_shapes) > SHAPES:
                _shapes.popitem(last=False)
        _shapes.move_to_end(key)
        seen.times += 1
        template, times, refused = seen.template, seen.times, seen.refused
    if template is not None:
        return template.fill([_render(backend, x) for x in literals], kept)
    text = _compile(backend, op)
    if times >= 2 and not refused:
        made = _template(backend, op, literals, kept, text)
        with _lock:
            seen.template, seen.refused = made, made is None
    return text


def _compile(backend: SQLBackend, op: ops.Node) -> str:
    """What `backend.compile` writes (without its logging)."""
    query = backend.compiler.to_sqlglot(op.to_expr())
    return str(query.sql(dialect=backend.dialect, copy=False, unsupported_level=ErrorLevel.RAISE))


def _render(backend: SQLBackend, literal: ops.Literal) -> str:
    """A literal's SQL as the compiler writes it inside a query (`MAKE_DATE(2026, 12, 1)`)."""
    node = backend.compiler.visit_node(literal, value=literal.value, dtype=literal.dtype)
    return str(node.sql(backend.dialect))


def _varies(literal: ops.Literal) -> bool:
    """Whether a literal is one a run moves: a date, a timestamp, a list of text values."""
    kind = literal.dtype
    return (
        kind.is_date() or kind.is_timestamp() or (kind.is_array() and kind.value_type.is_string())
    )


def _sentinel(literal: ops.Literal, n: int) -> ops.Literal:
    """A value of the same type no query holds: a list of one odd text, a date in the year
    1001 + n at odd hours."""
    if literal.dtype.is_array():
        return ops.Literal((f"costline-sentinel-{n}",), literal.dtype)
    if literal.dtype.is_date():
        return ops.Literal(dt.date(1001 + n, 2, 3), literal.dtype)
    tz = dt.UTC if getattr(literal.dtype, "timezone", None) else None
    return ops.Literal(dt.datetime(1001 + n, 2, 3, 4, 5, 6, 7, tzinfo=tz), literal.dtype)


def _template(
    backend: SQLBackend,
    op: ops.Node,
    literals: Sequence[ops.Literal],
    kept: Sequence[str],
    expected: str,
) -> _Template | None:
    """The template of `op`'s shape, if filling it with `op`'s own literals gives `expected`."""
    sentinels = [_sentinel(x, n) for n, x in enumerate(literals)]
    text = _compile(backend, op.replace(dict(zip(literals, sentinels, strict=True))))
    marks = {_render(backend, s): n for n, s in enumerate(sentinels)}
    marks |= {name: -1 - n for n, name in enumerate(kept)}
    if len(marks) != len(literals) + len(kept):
        return None
    parts: list[str] = [text]
    slots: list[int] = []
    for mark, slot in marks.items():
        cut: list[str] = []
        new_slots: list[int] = []
        for k, part in enumerate(parts):
            pieces = part.split(mark)
            cut += pieces
            new_slots += [slot] * (len(pieces) - 1)
            if k < len(slots):
                new_slots.append(slots[k])
        parts, slots = cut, new_slots
    made = _Template(tuple(parts), tuple(slots))
    filled = made.fill([_render(backend, x) for x in literals], kept)
    return made if _unordered(filled) == _unordered(expected) else None


_EXCLUDE = re.compile(r"EXCLUDE \(([^()]*)\)")


def _unordered(text: str) -> str:
    """SQL with the columns of each `* EXCLUDE (...)` sorted: Ibis writes a dropped set of
    columns in the set's order, which two compilations of one expression need not share."""
    return _EXCLUDE.sub(lambda m: "EXCLUDE (" + ", ".join(sorted(m[1].split(", "))) + ")", text)


def _shape(op: ops.Node) -> tuple[Hashable, list[ops.Literal], list[str]]:
    """(the shape of `op`'s graph, its distinct literals that vary (`_varies`) in the order the
    shape numbers them, its kept and in-memory tables' names in that order). Each distinct node is one record
    of its type and arguments, nodes named by their number: a flat key that hashes in time
    linear in the graph, however much of it is shared."""
    number: dict[ops.Node, int] = {}
    records: list[Hashable] = []
    literals: dict[ops.Literal, int] = {}
    kept: dict[str, int] = {}

    def visit(node: ops.Node) -> int:
        found = number.get(node)
        if found is not None:
            return found
        if isinstance(node, ops.Literal) and _varies(node):
            record: Hashable = ("literal", literals.setdefault(node, len(literals)), node.dtype)
        elif isinstance(node, ops.DatabaseTable) and node.name.startswith(KEPT_PREFIX):
            record = ("kept", kept.setdefault(node.name, len(kept)), node.schema, node.namespace)
        elif isinstance(node, ops.InMemoryTable):  # named at random, its rows not in the SQL
            record = ("memtable", kept.setdefault(node.name, len(kept)), node.schema)
        elif isinstance(node, ops.DatabaseTable):
            record = ("table", node.name, node.schema, node.namespace)
        else:
            record = (type(node), tuple(arg(a) for a in node.__args__))
        number[node] = len(records)
        records.append(record)
        return number[node]

    def arg(value: Any) -> Hashable:
        if isinstance(value, ops.Node):
            return ("node", visit(value))
        if isinstance(value, tuple | list):
            return tuple(arg(v) for v in value)
        if isinstance(value, Mapping):
            return tuple((k, arg(v)) for k, v in value.items())
        return value

    visit(op)
    return tuple(records), list(literals), list(kept)
