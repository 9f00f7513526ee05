"""`costline ingest llm`: LLM usage files (OpenAI, Anthropic, LiteLLM, OTel GenAI, Usage API).

Heavy modules (the pipeline, genai-prices) load only when the command runs, so `costline --help`
stays fast. `costline.cli.usage.LLM` is the `FileSource` the command ingests with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.output import Format

if TYPE_CHECKING:
    from costline.sources.base import FileSource


def llm_source() -> FileSource:
    """`FileSource("llm", LLM_SUFFIXES, read_llm)`: LLM usage files into `llm_requests`."""
    from costline.sources.base import FileSource
    from costline.sources.llm import LLM_SUFFIXES, read_llm

    return FileSource("llm", LLM_SUFFIXES, read_llm)


def __getattr__(name: str) -> FileSource:
    if name == "LLM":
        return llm_source()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    """Add `costline ingest llm FILE...` to `ingest_app` (`app`, the root, is for later commands)."""

    @ingest_app.command("llm")
    def ingest_llm_cmd(
        paths: Annotated[
            list[str],
            typer.Argument(help="LLM usage files (.jsonl, .json, .csv), folders or globs"),
        ],
        fmt: Annotated[
            Format | None,
            typer.Option(
                "--format",
                "-f",
                help="table, json or csv (default: table on a terminal, else json)",
            ),
        ] = None,
    ) -> None:
        """Ingest LLM token usage into llm_requests, priced with genai-prices (format per file)."""
        from costline.cli.main import run_ingest

        run_ingest(paths, llm_source(), fmt)
