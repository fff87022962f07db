"""Every error slatewise raises on purpose, in one hierarchy.

All packages import their errors from here (``simulator`` is the bottom of the
dependency order, so everyone may). Each class means one thing; the message
names the field or key at fault, what was expected, what was found and the
fix. Two leaves live beside the framework they extend: ``ResetNeededError``
(also a Gymnasium ``ResetNeeded``) in ``simulator.envs.errors``, and the HTTP
answers (``BadRequest``, ``InvalidField``, ...) under :class:`ServingError` in
``serving.errors``.

::

    SlatewiseError
    ├── LogValidationError, LogFormatError   the log and its files
    ├── DataImportError                      rows of a shop's file that cannot be imported
    ├── WorldError                           the ground-truth world
    ├── EnvError
    │   └── InvalidSlateError                environments
    ├── PolicyError                          policies
    ├── OPEError                             off-policy estimators
    ├── ConfigError                          any config (experiments, training, serving)
    ├── EngineError                          where runs execute (local, Ray)
    ├── TrainingError                        a training run that cannot start
    └── ServingError                         the HTTP service (status + JSON body)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class SlatewiseError(Exception):
    """Base class of every error slatewise raises on purpose."""


# ---------------------------------------------------------------------- logs
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


@dataclass(frozen=True, slots=True)
class RowError:
    """One kind of bad row an importer found: how many rows, and the first of them.

    Attributes:
        kind: the error's name (``unknown_item``, ``bad_position``, ``duplicate_id``, ...).
        column: the file's column at fault (empty when no single column is).
        count: rows with this error.
        row: the first such row, 0-based, header excluded.
        expected: what a good row holds.
        found: what the first bad row holds.
        fix: how to repair the rows.
        line: the first bad row's line in a CSV file (1-based, header = line 1), else None.
        events: events (slates) these rows belong to, when the rows are grouped into slates.
    """

    kind: str
    column: str
    count: int
    row: int
    expected: str
    found: str
    fix: str = ""
    line: int | None = None
    events: int | None = None

    def __str__(self) -> str:
        rows = f"{self.count:,} row{'s' if self.count != 1 else ''}"
        if self.events is not None:
            rows += f" in {self.events:,} event{'s' if self.events != 1 else ''}"
        where = f"row {self.row}" + (f" (file line {self.line})" if self.line is not None else "")
        column = f", column `{self.column}`" if self.column else ""
        text = f"{self.kind}: {rows}; first at {where}{column}: expected {self.expected}, found {self.found}"
        return f"{text}. {self.fix}" if self.fix else text


class DataImportError(SlatewiseError, ValueError):
    """Rows of a file cannot be imported; ``errors`` counts each kind, with its first row.

    Args:
        errors: one entry per kind of error found (at least one).
        source: the file read, for the first line of the message.
        n_rows: rows read from the file.
        note: one more sentence (e.g. how to keep the good rows).
    """

    def __init__(self, errors: Sequence[RowError], source: str, n_rows: int, note: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        self.n_rows = n_rows
        lines = "\n".join(f"  - {e}" for e in self.errors)
        total = len(self.errors)
        head = (f"{source}: {total} kind{'s' if total != 1 else ''} of bad rows among "
                f"{n_rows:,} rows; nothing was written:")
        super().__init__(f"{head}\n{lines}" + (f"\n{note}" if note else ""))


# ---------------------------------------------------------------------- simulator
class WorldError(SlatewiseError, ValueError):
    """A world was configured or called with input that breaks its contract."""


class EnvError(SlatewiseError, ValueError):
    """An environment was built or called with input that breaks its contract."""


class InvalidSlateError(EnvError):
    """An action is not a valid slate: wrong shape, out of range, duplicate or ineligible item."""


# ---------------------------------------------------------------------- bandits
class PolicyError(SlatewiseError, ValueError):
    """A policy was built or called with input that breaks its contract."""


class OPEError(SlatewiseError, ValueError):
    """Input an off-policy estimator cannot use; the message names the field and the fix."""


# ---------------------------------------------------------------------- configs and runs
@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One mistake in a config: where (a dotted key), and what is wrong."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"`{self.key}`: {self.message}"


class ConfigError(SlatewiseError, ValueError):
    """A config cannot be used; ``problems`` lists every mistake found (at least one).

    Args:
        problems: the mistakes, or one message that already names the key and the fix.
        source: what was read (a file name), for the first line of the message.
    """

    def __init__(self, problems: str | Sequence[ConfigProblem], source: str = "config") -> None:
        self.source = source
        if isinstance(problems, str):
            self.problems: list[ConfigProblem] = []
            super().__init__(problems)
            return
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source} has {n} problem{'s' if n != 1 else ''}:\n{lines}")


class EngineError(SlatewiseError, RuntimeError):
    """An engine cannot start (e.g. Ray is missing or its cluster is unreachable)."""


class TrainingError(SlatewiseError, ValueError):
    """A training run cannot start (nothing to resume from, a config that does not fit the world)."""


# ---------------------------------------------------------------------- serving
class ServingError(SlatewiseError):
    """Base of every error the service answers with a JSON body.

    Args:
        message: what went wrong and how to fix it.
        field: the request field at fault (``None`` when no single field is).
        status: the HTTP status code of the answer.
    """

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        """The error body: ``{"error": {"code", "message", "field"}}``."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


__all__ = [
    "ConfigError", "ConfigProblem", "DataImportError", "EngineError", "EnvError", "InvalidSlateError",
    "LogFormatError", "LogValidationError", "OPEError", "PolicyError", "Problem", "RowError",
    "ServingError", "SlatewiseError", "TrainingError", "WorldError",
]
