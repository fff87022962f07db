"""How commands print: a table for people, one JSON document for scripts."""

from __future__ import annotations

import json
from typing import Any

import click

from experiments.plain import plain_json


def emit_json(document: Any) -> None:
    """Print one strict JSON document on stdout."""
    click.echo(json.dumps(plain_json(document), indent=2, allow_nan=False))


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of a table.")
