"""Which columns of a shop's impression log hold what, and how to read them.

A mapping comes from a ``--map`` string
(``event=imp_id,user=visitor,item=sku,position=slot,click=clicked,context=a,b,c``)
or a TOML file (keys at the top level or under ``[logs]``); both go through
:meth:`LogMapping.from_table`, which names every unknown key and bad value at
once (:class:`~simulator.errors.ConfigError`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, ConfigProblem

COLUMN_KEYS = ("event", "session", "user", "item", "position", "click", "purchase", "revenue",
               "pscore", "pscore_item", "timestamp", "context")
"""Roles a column can be mapped to (``context`` takes a list of columns)."""
OPTION_KEYS = ("position_base", "layout", "list_sep", "k", "reward", "logging_policy")
"""How to read the file; set in a mapping file or by command-line options."""
LAYOUTS = ("auto", "item", "slate")
REWARDS = ("click", "purchase", "revenue")


def config_table(path: str | os.PathLike[str], name: str, *, required: bool = False) -> dict[str, Any]:
    """The ``[name]`` table of a TOML file, or its top level when it has no such table.

    Args:
        path: the file (a mapping file, or a shop config with ``[catalog]`` and ``[logs]``).
        name: the table.
        required: the file must have the table (no top-level fallback).

    Raises:
        ConfigError: no such file, not TOML, or no such table when ``required``.
    """
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no config file at {source}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None
    if required and name not in data:
        raise ConfigError(f"{source} has no [{name}] table.")
    table = data.get(name, data)
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: `{name}` must be a table, found {type(table).__name__}.")
    return dict(table)


@dataclass(frozen=True, slots=True)
class LogMapping:
    """Columns of a shop's log and how to read them.

    Column roles (each the name of a column in the file, or None):

    Attributes:
        item: the shown item's id (a list of ids, in position order, in the slate layout).
        event: the impression: rows with the same event form one slate. Required in
            the item layout; in the slate layout each row is an event when unset.
        session: the shopping session (its decisions get steps 0, 1, ... in time order).
        user: the shopper; groups decisions into sessions when ``session`` is unset.
        position: the slot an item was shown in (item layout); unset: file order within the event.
        click: clicks (numbers >= 0, usually 0/1), per shown item.
        purchase: purchases (numbers >= 0), per shown item.
        revenue: revenue in the shop's currency (>= 0), per shown item.
        pscore: probability of the whole slate under the logging policy, in (0, 1]; the
            same on every row of an event.
        pscore_item: probability of each shown item at its slot, in (0, 1].
        timestamp: when (ISO 8601 text, a timestamp column, or Unix seconds); an
            event's time is its earliest row's.
        context: numeric columns describing the shopper and the page (the same on
            every row of an event).
        position_base: the number of the first slot in ``position``: 0 (slatewise's
            convention, the default) or 1.
        layout: ``item`` (one row per shown item), ``slate`` (one row per slate with
            list columns: Parquet lists, or text split at ``list_sep`` in CSV) or ``auto``
            (``slate`` when the item column is a list column, else ``item``).
        list_sep: separator of list cells in a CSV slate layout.
        k: slots per slate; default: the most common number of items per event.
        reward: which outcome is the log's reward (``click``, ``purchase``, ``revenue``);
            default: the first of them that is mapped.
        logging_policy: a name for the system that chose the logged slates.
    """

    item: str
    event: str | None = None
    session: str | None = None
    user: str | None = None
    position: str | None = None
    click: str | None = None
    purchase: str | None = None
    revenue: str | None = None
    pscore: str | None = None
    pscore_item: str | None = None
    timestamp: str | None = None
    context: tuple[str, ...] = ()
    position_base: int = 0
    layout: str = "auto"
    list_sep: str = "|"
    k: int | None = None
    reward: str | None = None
    logging_policy: str = "unknown"

    def columns(self) -> dict[str, str]:
        """Role -> column for every mapped column (``context 0``, ``context 1``, ... for the context)."""
        out = {key: getattr(self, key) for key in COLUMN_KEYS
               if key != "context" and getattr(self, key) is not None}
        out |= {f"context {i}": col for i, col in enumerate(self.context)}
        return out

    @property
    def reward_kind(self) -> str:
        """The outcome used as the reward: ``reward`` or the first mapped of click, purchase, revenue."""
        if self.reward is not None:
            return self.reward
        return next(r for r in REWARDS if getattr(self, r) is not None)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str = "mapping") -> LogMapping:
        """A mapping from a table of role -> column and option -> value.

        Raises:
            ConfigError: naming every unknown key (with the closest known one) and bad value.
        """
        known = (*COLUMN_KEYS, *OPTION_KEYS)
        problems: list[ConfigProblem] = []
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                problems.append(ConfigProblem(key, f"unknown key{hint}; known keys are {list(known)}"))
        values: dict[str, Any] = {}
        for key in COLUMN_KEYS:
            if key not in table:
                continue
            value = table[key]
            if key == "context":
                cols = [c for c in value.split(",") if c] if isinstance(value, str) else value
                if not isinstance(cols, list | tuple) or not all(isinstance(c, str) and c for c in cols):
                    problems.append(ConfigProblem(key, f"must be a list of column names, found {value!r}"))
                    continue
                if len(set(cols)) != len(cols):
                    problems.append(ConfigProblem(key, f"names a column twice: {list(cols)}"))
                values[key] = tuple(cols)
            elif not isinstance(value, str) or not value:
                problems.append(ConfigProblem(key, f"must be a column name, found {value!r}"))
            else:
                values[key] = value
        if "item" not in values and not any(p.key == "item" for p in problems):
            problems.append(ConfigProblem("item", "missing: map the column holding the shown item's id "
                                                  "(item=COLUMN)"))
        base = table.get("position_base", 0)
        if type(base) is not int or base not in (0, 1):
            problems.append(ConfigProblem("position_base", f"must be 0 or 1, found {base!r}"))
        layout = table.get("layout", "auto")
        if layout not in LAYOUTS:
            problems.append(ConfigProblem("layout", f"must be one of {list(LAYOUTS)}, found {layout!r}"))
        sep = table.get("list_sep", "|")
        if not isinstance(sep, str) or not sep:
            problems.append(ConfigProblem("list_sep", f"must be a non-empty text, found {sep!r}"))
        k = table.get("k")
        if k is not None and (type(k) is not int or k < 1):
            problems.append(ConfigProblem("k", f"must be a whole number >= 1, found {k!r}"))
        reward = table.get("reward")
        if reward is not None and reward not in REWARDS:
            problems.append(ConfigProblem("reward", f"must be one of {list(REWARDS)}, found {reward!r}"))
        elif reward is not None and reward not in values:
            problems.append(ConfigProblem("reward", f"is {reward!r} but no column is mapped to {reward}"))
        if not any(r in values for r in REWARDS):
            problems.append(ConfigProblem("click", "map at least one outcome: click=COL, purchase=COL "
                                                   "or revenue=COL"))
        policy = table.get("logging_policy", "unknown")
        if not isinstance(policy, str) or not policy:
            problems.append(ConfigProblem("logging_policy", f"must be a non-empty name, found {policy!r}"))
        if problems:
            raise ConfigError(problems, source)
        return cls(**values, position_base=base, layout=layout, list_sep=sep, k=k, reward=reward,
                   logging_policy=policy)

    @classmethod
    def parse(cls, text: str, **options: Any) -> LogMapping:
        """A mapping from ``role=column,...`` (``context=a,b,c`` takes the names up to the next ``=``).

        Args:
            text: the ``--map`` string.
            **options: option keys (:data:`OPTION_KEYS`) set on the command line.
        """
        table: dict[str, Any] = {}
        problems: list[ConfigProblem] = []
        last: str | None = None
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            if "=" in token:
                key, _, value = token.partition("=")
                key, value = key.strip(), value.strip()
                if key in table:
                    problems.append(ConfigProblem(key, "is mapped twice"))
                table[key] = [value] if key == "context" else value
                last = key
            elif last == "context":
                table["context"].append(token)
            else:
                problems.append(ConfigProblem(token, "is not `role=column`; only context takes several "
                                                     "columns (context=a,b,c)"))
        if problems:
            raise ConfigError(problems, "--map")
        return cls.from_table(table | {k: v for k, v in options.items() if v is not None}, "--map")

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **options: Any) -> LogMapping:
        """A mapping from a TOML file: keys at the top level, or under ``[logs]`` in a shop config.

        Args:
            path: the file.
            **options: option keys set on the command line; they win over the file.
        """
        table = config_table(path, "logs")
        return cls.from_table(table | {k: v for k, v in options.items() if v is not None}, str(path))

    def with_options(self, **options: Any) -> LogMapping:
        """The same mapping with some options changed (None leaves an option as it is)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown mapping options {unknown}; known: {sorted(known)}")
        return replace(self, **{k: v for k, v in options.items() if v is not None})
