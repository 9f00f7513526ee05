"""`costline ingest llm`: LLM usage files (OpenAI, Anthropic, LiteLLM, OTel GenAI, Usage API)
and plain request traces read with a column mapping.

Heavy modules (the pipeline, genai-prices) load only when the command runs, so `costline --help`
stays fast. `costline.cli.usage.LLM` is the `FileSource` the command ingests with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from costline.cli.output import Format

if TYPE_CHECKING:
    from costline.config import LlmTrace
    from costline.sources.base import FileSource


def llm_source(trace: LlmTrace | None = None) -> FileSource:
    """What `costline ingest llm` reads: usage files by detection, or plain traces by `trace`."""
    from costline.sources.llm import llm_file_source

    return llm_file_source(trace)


def trace_spec(
    mapping: Sequence[str],
    default_model: str | None,
    provider: str | None,
    app: str | None,
    time_origin: str | None,
    time_unit: str | None,
) -> LlmTrace | None:
    """The plain-trace options as an `LlmTrace`, or None when none was given (detection)."""
    from pydantic import ValidationError

    from costline.config import TRACE_FIELDS, LlmTrace

    given = (default_model, provider, app, time_origin, time_unit)
    if not mapping and all(v is None for v in given):
        return None
    columns: dict[str, str] = {}
    for item in mapping:
        field, sep, column = item.partition("=")
        if not sep or not column or field not in TRACE_FIELDS:
            raise typer.BadParameter(
                f"expected FIELD=COLUMN with FIELD one of {', '.join(TRACE_FIELDS)} (got {item!r})",
                param_hint="--map",
            )
        columns[field] = column
    try:
        return LlmTrace.model_validate(
            {"columns": columns, "default_model": default_model, "provider": provider,
             "app": app, "time_origin": time_origin, "time_unit": time_unit}
        )  # fmt: skip
    except ValidationError as exc:
        err = exc.errors()[0]
        raise typer.BadParameter(
            err["msg"], param_hint="--" + str(err["loc"][0]).replace("_", "-")
        ) from None


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
        mapping: Annotated[
            list[str] | None,
            typer.Option(
                "--map",
                metavar="FIELD=COLUMN",
                help="read plain request traces: FIELD (ts, model, input_tokens, "
                "output_tokens, cached_input_tokens, app, ...) from COLUMN; repeat it",
            ),
        ] = None,
        default_model: Annotated[
            str | None,
            typer.Option("--default-model", help="trace: the model of rows without one"),
        ] = None,
        provider: Annotated[
            str | None,
            typer.Option("--provider", help="trace: the provider of rows without one"),
        ] = None,
        app: Annotated[
            str | None, typer.Option("--app", help="trace: the app of rows without one")
        ] = None,
        time_origin: Annotated[
            str | None,
            typer.Option(
                "--time-origin", help="trace: times are offsets from this ISO 8601 instant"
            ),
        ] = None,
        time_unit: Annotated[
            str | None,
            typer.Option("--time-unit", help="trace: unit of numeric times: s, ms, us or ns"),
        ] = None,
    ) -> None:
        """Ingest LLM token usage into llm_requests, priced with genai-prices (format per file).

        Provider logs are detected. A plain request trace (CSV or JSON lines of times and
        token counts) is read when --map or another trace option is given, e.g.
        --map ts=TIMESTAMP --map input_tokens=ContextTokens --map
        output_tokens=GeneratedTokens --default-model gpt-4o-mini --provider openai.
        """
        from costline.cli.ingest import run_ingest

        trace = trace_spec(mapping or [], default_model, provider, app, time_origin, time_unit)
        run_ingest(paths, llm_source(trace), fmt)
