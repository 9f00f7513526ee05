"""The one exception hierarchy; every error carries the exit code the CLI returns for it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1
EXIT_BAD_INPUT = 2


class CostlineError(Exception):
    """Base of every error costline raises on purpose."""

    exit_code: int = EXIT_BAD_INPUT


class ConfigError(CostlineError):
    """The configuration is invalid: the message names the file, the line and the key."""


class IngestError(CostlineError):
    """An input could not be ingested: the message names the file, and the row and column where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        self.value = value
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class LedgerError(CostlineError):
    """The ledger cannot be opened or used (wrong URL, newer schema, refused statement)."""


class PolicyError(CostlineError):
    """A policy or experiment manifest is invalid."""


class DeliveryError(CostlineError):
    """A notification could not be delivered."""

    exit_code = 1
