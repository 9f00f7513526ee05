"""The CLI reference (docs/cli.md), generated from the commands themselves.

    uv run python -m costline.cli.reference > docs/cli.md     # or: make docs

A test fails when docs/cli.md differs from what this renders, so the reference cannot go stale.
"""

from __future__ import annotations

from typing import Any

import typer.main

from costline.cli.main import app

HEADER = """# CLI reference

Generated from the commands by `make docs` (`python -m costline.cli.reference`); do not edit.

Global options come before the command: `costline [--ledger URL] [--config PATH] COMMAND ...`.
Exit codes: 0 success, 1 a finding that fails a gate, 2 bad input (usage, config, data).
"""


def _param_row(p: Any) -> str:
    if p.param_type_name == "argument":
        name = f"`{p.metavar or p.name.upper()}`" + ("..." if p.nargs == -1 else "")
    else:
        name = ", ".join(f"`{o}`" for o in p.opts)
    help_text = (getattr(p, "help", None) or "").replace("|", "\\|")
    default = p.default
    extra = []
    if default not in (None, (), [], False) and p.param_type_name == "option":
        extra.append(f"default `{getattr(default, 'value', default)}`")
    if getattr(p, "envvar", None):
        extra.append(f"env `{p.envvar}`")
    if p.required:
        extra.append("required")
    tail = f" ({'; '.join(extra)})" if extra else ""
    return f"| {name} | {help_text}{tail} |"


def _section(path: list[str], command: Any) -> list[str]:
    lines = [f"## `{' '.join(path)}`", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    params = [p for p in command.params if p.name != "help"]
    if params:
        lines += ["| argument / option | meaning |", "|---|---|"]
        lines += [_param_row(p) for p in params]
        lines.append("")
    return lines


def render() -> str:
    root = typer.main.get_command(app)
    out = [HEADER]
    out += _section(["costline"], root)

    def walk(path: list[str], command: Any) -> None:
        for name in sorted(getattr(command, "commands", {})):
            sub = command.commands[name]
            if hasattr(sub, "commands"):
                walk([*path, name], sub)
            else:
                out.extend(_section([*path, name], sub))

    walk(["costline"], root)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
