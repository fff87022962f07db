"""Strict TOML -> frozen dataclass loading that reports every problem at once.

A config file is read into nested dicts; :class:`Checker` walks it, converting
each key to the type a dataclass field asks for and collecting one
:class:`ConfigProblem` per mistake (unknown key with the choices, wrong type,
value out of range). :class:`ConfigError` lists them all, so a broken config
is fixed in one pass and nothing is written before it loads.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, ConfigProblem

#: What a run may be rewarded for (summed over the slate).
REWARDS = ("click", "purchase", "revenue")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning syntax errors into a :class:`ConfigError`."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError([ConfigProblem("<file>", f"no config file at {source}")], str(source))
    try:
        with source.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([ConfigProblem("<file>", f"not valid TOML: {err}")], str(source)) from None


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


@dataclass(slots=True)
class Checker:
    """Collects problems while reading values out of a parsed TOML table."""

    problems: list[ConfigProblem] = field(default_factory=list)

    def fail(self, key: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(ConfigProblem(key, message))

    def keys(self, table: dict[str, Any], allowed: Iterable[str], prefix: str) -> None:
        """Report every key of ``table`` not in ``allowed``, with the choices."""
        allowed = list(allowed)
        for key in table:
            if key not in allowed:
                self.fail(f"{prefix}{key}", f"unknown key{_suggest(key, allowed)}; "
                                            f"choose from {sorted(allowed)}")

    def get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], prefix: str,
            default: Any = ..., *, minimum: float | None = None, maximum: float | None = None,
            choices: Iterable[str] | None = None) -> Any:
        """Read ``table[key]`` as ``kind``; record a problem and return ``default`` when wrong."""
        name = f"{prefix}{key}"
        if key not in table:
            if default is ...:
                self.fail(name, "is required")
                return None
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            self.fail(name, f"expected {expected}, found {type(value).__name__} {value!r}")
            return None if default is ... else default
        if minimum is not None and isinstance(value, int | float) and value < minimum:
            self.fail(name, f"must be >= {minimum}, found {value!r}")
        if maximum is not None and isinstance(value, int | float) and value > maximum:
            self.fail(name, f"must be <= {maximum}, found {value!r}")
        if choices is not None:
            options = list(choices)
            if value not in options:
                self.fail(name, f"unknown value {value!r}{_suggest(str(value), options)}; "
                                f"choose from {options}")
        return value

    def raise_if_any(self, source: str) -> None:
        """Raise one :class:`ConfigError` with every problem, if there are any."""
        if self.problems:
            raise ConfigError(self.problems, source)
