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
    "ConfigError", "ConfigProblem", "EngineError", "EnvError", "InvalidSlateError", "LogFormatError",
    "LogValidationError", "OPEError", "PolicyError", "Problem", "ServingError", "SlatewiseError",
    "TrainingError", "WorldError",
]
