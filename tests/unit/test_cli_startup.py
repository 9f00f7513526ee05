"""`costline --help` and every `costline <command> --help` import only what the help needs: not
Ibis, pyarrow, DuckDB or the rest of the engine (docs/benchmarks.md, "CLI start-up")."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# What a help must not import: the engine and its data libraries (seconds together), rich (the help
# is click's plain one), the YAML and JSON-schema stack of the configuration.
ENGINE = (
    "ibis",
    "pyarrow",
    "duckdb",
    "numpy",
    "pandas",
    "sqlglot",
    "rich",
    "yaml",
    "costline.config",
)

PROBE = textwrap.dedent(
    """
    import contextlib, io, json, sys

    import typer.main

    from costline.cli.main import app

    def heavy():
        return sorted(m for m in sys.modules if m.split(".")[0] in ENGINE or m in ENGINE)

    def help_of(path):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            root.main([*path, "--help"], prog_name="costline", standalone_mode=False)
        return out.getvalue()

    ENGINE = set(json.loads(sys.argv[1]))
    root = typer.main.get_command(app)
    top = help_of([])
    report = {"root": {"heavy": heavy(), "pydantic": "pydantic" in sys.modules, "help": top}}
    paths = []

    def walk(path, command):
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append([*path, name])
            walk([*path, name], sub)

    walk([], root)
    report["commands"] = {" ".join(p): help_of(p) for p in paths}
    report["heavy"] = heavy()
    print(json.dumps(report))
    """
)


def _probe() -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(ENGINE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, object] = json.loads(proc.stdout)
    return report


def test_help_imports_no_engine_module_and_stays_helpful() -> None:
    report = _probe()
    root = report["root"]
    assert isinstance(root, dict)
    assert root["heavy"] == [], f"`costline --help` imported {root['heavy']}"
    assert root["pydantic"] is False
    for command in ("report", "detect", "budgets", "forecast", "ingest", "demo", "serve"):
        assert f"\n  {command} " in root["help"]
    commands = report["commands"]
    assert isinstance(commands, dict)
    # Every command and sub-command, each with its help, and none imports the engine.
    assert len(commands) >= 35
    assert report["heavy"] == [], f"a `<command> --help` imported {report['heavy']}"
    assert "--format" in commands["report showback"] and "--period" in commands["report showback"]
    assert "Usage: costline ingest focus" in commands["ingest focus"]
    assert all("Usage: costline" in text for text in commands.values())


def test_import_costline_is_light_and_still_gives_the_ledger() -> None:
    """`import costline` (which every costline module and command imports first) loads no engine;
    `costline.Ledger` and `costline.open` still reach the ledger, loading it when asked."""
    probe = textwrap.dedent(
        """
        import sys
        import costline
        light = "ibis" not in sys.modules and "duckdb" not in sys.modules
        from costline.ledger.store import Ledger
        with costline.open("duckdb://:memory:") as ledger:
            rows = ledger.con.execute("SELECT count(*) FROM cost_lines").fetchone()[0]
        print(light, costline.Ledger is Ledger, costline.DEFAULT_LEDGER_URL, rows)
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    assert proc.stdout.split() == ["True", "True", "duckdb://.costline/ledger.duckdb", "0"]
