"""Benchmark: how long the `costline` command line takes to answer, against `import duckdb`.

    uv run python bench/cli_latency.py                  # every command's --help, best of 5
    uv run python bench/cli_latency.py --repeat 3 --only "" "report showback"
    uv run python bench/cli_latency.py --sections commands --demo demo-org   # reports, detect, ...

Section "start-up": the wall time of `costline --help` and of `costline <command> --help` for every
command and sub-command, each in a fresh process, best of --repeat, in two modes:
  - bytecode: the installed package's cached bytecode is used (after one warm-up run), as after
    `make setup` (`uv sync --compile-bytecode`) or any earlier run;
  - no bytecode: nothing cached is read or written (`PYTHONDONTWRITEBYTECODE=1` and an empty
    `PYTHONPYCACHEPREFIX`), so every module is compiled from source, as on the first run of an
    install that did not compile bytecode.
The baseline, timed the same way in the same run: `python -c 'import duckdb'`, run alternately
with each command (baseline, command, baseline, command, ...), so that a command's ratio (its best
time over the baseline's best time beside it, in the same mode; the target: 2.5 or less) compares
runs made under the same load on a shared machine.

Sections "commands" and "commands against SQL": each analysis command (reports, detect, budgets,
forecast, findings) on a 90-day demo ledger, best of 3, against `import duckdb` and against DuckDB
running the equivalent SQL by hand (`bench/command_latency.py` says what each SQL computes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BASELINE = "python -c 'import duckdb'"
MODES = ("bytecode", "no bytecode")


@dataclass(frozen=True)
class Row:
    """One timed thing: its section, what ran, its best wall time per mode (a way of running it,
    e.g. with and without bytecode) and the best time of the baseline run beside it in that mode.
    A section may use other modes, and name its own baseline."""

    section: str
    what: str
    seconds: dict[str, float]
    baseline: dict[str, float]
    baseline_name: str = BASELINE

    def ratio(self, mode: str) -> float:
        return self.seconds[mode] / self.baseline[mode]


def costline_argv() -> list[str]:
    """The installed `costline` script beside this interpreter, else `python -m costline`."""
    script = Path(sys.executable).with_name("costline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "costline"]


def mode_env(mode: str, empty_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if mode == "no bytecode":
        env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty_prefix}
    return env


def wall(argv: Sequence[str], env: dict[str, str]) -> float:
    """One run's wall time, in seconds."""
    began = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def best_beside(
    argv: Sequence[str], baseline: Sequence[str], env: dict[str, str], repeat: int
) -> tuple[float, float]:
    """The fastest of `repeat` runs of `argv` and of `baseline`, run alternately (the fastest is
    the run least disturbed by other work)."""
    runs = [(wall(argv, env), wall(baseline, env)) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def command_paths() -> list[str]:
    """Every command and sub-command of the CLI, as the words a user types ("" is the root)."""
    import typer.main

    from costline.cli.main import app

    paths = [""]

    def walk(prefix: str, command: object) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            path = f"{prefix} {name}".strip()
            paths.append(path)
            walk(path, sub)

    walk("", typer.main.get_command(app))
    return paths


def startup(repeat: int, only: Sequence[str] | None) -> list[Row]:
    """Section "start-up": `costline [<command>] --help` against `import duckdb`."""
    paths = list(only) if only is not None else command_paths()
    with tempfile.TemporaryDirectory(prefix="pycache-empty-") as empty:
        envs = {mode: mode_env(mode, empty) for mode in MODES}
        baseline_argv = [sys.executable, "-c", "import duckdb"]
        cli = costline_argv()
        # Warm-up: the bytecode mode reads what these runs cached.
        subprocess.run(baseline_argv, env=envs["bytecode"], check=True)
        for path in paths:
            subprocess.run([*cli, *path.split(), "--help"], env=envs["bytecode"],
                           stdout=subprocess.DEVNULL, check=True)  # fmt: skip
        rows = []
        for path in paths:
            argv = [*cli, *path.split(), "--help"]
            timed = {mode: best_beside(argv, baseline_argv, envs[mode], repeat) for mode in MODES}
            seconds = {mode: t[0] for mode, t in timed.items()}
            beside = {mode: t[1] for mode, t in timed.items()}
            rows.append(Row("start-up", f"costline {path} --help".replace("  ", " "), seconds,
                            beside))  # fmt: skip
            print(".", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        best = {mode: min(r.baseline[mode] for r in rows) for mode in MODES}
        return [Row("start-up", BASELINE, best, best), *rows]


def table(rows: Sequence[Row]) -> str:
    """One Markdown table per section (its own modes as columns), each with its worst ratios."""
    out = []
    for section in dict.fromkeys(r.section for r in rows):
        mine = [r for r in rows if r.section == section]
        modes = list(mine[0].seconds)
        head = ["what"]
        for mode in modes:
            head += [f"{mode} s", "baseline beside s", f"{mode} ratio"]
        lines = [f"### {section}", "", "| " + " | ".join(head) + " |",
                 "|---|" + "---:|" * (3 * len(modes))]  # fmt: skip
        for r in mine:
            cells = [f"`{r.what}`"]
            for mode in modes:
                cells += [f"{r.seconds[mode]:.3f}", f"{r.baseline[mode]:.3f}",
                          f"{r.ratio(mode):.2f}"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        timed = [r for r in mine if r.what != r.baseline_name] or mine
        for mode in modes:
            worst = max(timed, key=lambda r: r.ratio(mode))
            lines.append(f"\n{section}, {mode}: worst `{worst.what}` {worst.seconds[mode]:.3f} s, "
                         f"{worst.ratio(mode):.2f}x `{worst.baseline_name}`")  # fmt: skip
        out.append("\n".join(lines))
    return "\n\n".join(out)


def commands(demo: Path | None, repeat: int) -> list[Row]:
    """Sections "commands" and "commands against SQL": each analysis command's real work on a
    demo ledger (`bench/command_latency.py`), against `import duckdb` and against DuckDB running
    the equivalent SQL by hand, in the same run."""
    sys.path.insert(0, str(Path(__file__).parent))
    import command_latency

    with tempfile.TemporaryDirectory(prefix="cli-latency-demo-") as tmp:
        if demo is None:
            demo = Path(tmp) / "demo"
            subprocess.run([*costline_argv(), "demo", "--out", str(demo), "--days", "90"],
                           check=True, capture_output=True)  # fmt: skip
        timed = command_latency.rows(demo, repeat)
    out = []
    for r in timed:
        seconds = {"wall": float(str(r["seconds"]))}
        out.append(Row("commands", str(r["command"]), seconds,
                       {"wall": float(str(r["import_duckdb_s"]))}))  # fmt: skip
    for r in timed:
        out.append(Row("commands against SQL", str(r["command"]),
                       {"wall": float(str(r["seconds"]))}, {"wall": float(str(r["sql_s"]))},
                       "hand-written SQL"))  # fmt: skip
    return out


Section = Callable[[argparse.Namespace], list[Row]]
SECTIONS: dict[str, Section] = {
    "start-up": lambda args: startup(args.repeat, args.only),
    "commands": lambda args: commands(args.demo, min(args.repeat, 3)),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best of)")
    parser.add_argument("--only", nargs="*", help='commands to time, e.g. "" "report showback"')
    parser.add_argument("--demo", type=Path, help="a `costline demo --out` folder (commands "
                        "section; default: a 90-day demo made for the run)")  # fmt: skip
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    args = parser.parse_args(argv)
    rows = [row for name in args.sections for row in SECTIONS[name](args)]
    print(table(rows))


if __name__ == "__main__":
    main()
