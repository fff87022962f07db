"""How commands print: a table for people, one JSON document for scripts, progress only on a terminal."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import click

from experiments.plain import plain_json

T = TypeVar("T")


def emit_json(document: Any) -> None:
    """Print one strict JSON document on stdout."""
    click.echo(json.dumps(plain_json(document), indent=2, allow_nan=False))


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of a table.")


def show_progress(as_json: bool, wanted: bool = True) -> bool:
    """Whether to draw a progress bar: wanted, no ``--json``, and both stdout and stderr are terminals."""
    return wanted and not as_json and sys.stderr.isatty() and sys.stdout.isatty()


def progress_iter(items: Iterable[T], enabled: bool, *, desc: str, total: int | None = None,
                  unit: str = "it") -> Iterator[T]:
    """``items``, with a tqdm bar on stderr when ``enabled`` (see :func:`show_progress`)."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr) as bar:
        yield from bar


class Stages:
    """A progress bar over the named stages of a command that has no finer loop to report.

    ``with Stages(["read", "estimate"], enabled) as st: st.next(); ...`` advances the bar and
    names the stage now running; the elapsed time ticks twice a second while a stage runs.
    Draws nothing when not ``enabled``.
    """

    def __init__(self, names: list[str], enabled: bool, desc: str = "") -> None:
        self.names = names
        self.enabled = enabled
        self.desc = desc
        self.done = 0
        self.bar: Any = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Stages:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.names), desc=self.desc, unit="stage", leave=False,
                            file=sys.stderr)
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            bar = self.bar
            if bar is not None:
                bar.refresh()

    def next(self) -> None:
        """Mark the previous stage done and show the next one's name."""
        if self.bar is None:
            return
        if self.done:
            self.bar.update()
        if self.done < len(self.names):
            self.bar.set_postfix_str(self.names[self.done])
        self.done += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
