"""The import graph of `src/costline`: no circles, and the foundation does not import the sources.

Every `import` and `from ... import` counts, at module level, inside functions and under
`if TYPE_CHECKING:` alike: an import placed late to dodge a circle is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def modules(root: Path = SRC) -> dict[str, Path]:
    """Every module and package of costline by dotted name."""
    found = {}
    for path in sorted((root / "costline").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> Iterator[str]:
    """The costline modules one import statement names: `from pkg import sub` names the module
    `pkg.sub` when there is one, else `pkg` (a name defined in it)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            yield name


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the costline modules it imports anywhere in its body."""
    found = modules(root)
    known = set(found)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges.update(_imported(node, package, known))
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_anywhere_in_costline() -> None:
    found = cycles(import_graph())
    assert found == [], "import circles (each a group of modules importing each other):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_the_checker_sees_circles_through_imports_inside_functions(tmp_path: Path) -> None:
    """A circle closed by a late import inside a function, or one under TYPE_CHECKING, is found."""
    pkg = tmp_path / "costline"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "main.py").write_text("from costline.cli import detect\n")
    (pkg / "cli" / "detect.py").write_text("def f():\n    from costline.cli.main import app\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n"
    )
    (pkg / "b.py").write_text("import costline.a\n")
    assert cycles(import_graph(tmp_path)) == [
        ["costline.a", "costline.b"],
        ["costline.cli.detect", "costline.cli.main"],
    ]


def test_the_foundation_plugins_module_imports_no_source() -> None:
    """`costline.plugins` (foundation) declares the hooks; the sources register through them."""
    imported = import_graph()["costline.plugins"]
    assert not [m for m in imported if m.startswith("costline.sources")], imported


def test_cli_commands_do_not_import_each_other_or_main() -> None:
    """Each `cli/*.py` command module takes what commands share from the modules below it
    (context, options, output, present, ingest, progress), never a sibling command or main."""
    shared = {"context", "options", "output", "present", "ingest", "progress"}
    graph = import_graph()
    for name, imported in graph.items():
        if not name.startswith("costline.cli.") or name in {"costline.cli.main"}:
            continue
        siblings = {m for m in imported if m.startswith("costline.cli.")}
        allowed = {f"costline.cli.{s}" for s in shared}
        if name == "costline.cli.reference":
            allowed.add("costline.cli.main")  # the reference renders the whole app
        assert siblings <= allowed, f"{name} imports {sorted(siblings - allowed)}"
