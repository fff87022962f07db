"""Errors raised when a log or a log file is not what slatewise expects."""

from __future__ import annotations

from dataclasses import dataclass


class SlatewiseError(Exception):
    """Base class of every error slatewise raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a log: which field, which row, expected and found."""

    field: str
    expected: str
    found: str
    row: int | None = None
    n_rows: int = 1
    fix: str = ""

    def __str__(self) -> str:
        where = ""
        if self.row is not None:
            more = f" (and {self.n_rows - 1} more rows)" if self.n_rows > 1 else ""
            where = f" at row {self.row}{more}"
        text = f"`{self.field}`{where}: expected {self.expected}, found {self.found}"
        return f"{text}. {self.fix}" if self.fix else text


class LogValidationError(SlatewiseError, ValueError):
    """A log failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem], source: str = "log") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source} is invalid ({n} problem{'s' if n != 1 else ''}):\n{lines}")


class LogFormatError(SlatewiseError, ValueError):
    """A file is not in the layout or format that was asked for."""
