"""How commands print: a table for people, one JSON document for scripts."""

from __future__ import annotations

import json
import math
from typing import Any

import click
import numpy as np


def plain_json(value: Any) -> Any:
    """Make ``value`` strict JSON: numpy to Python, NaN and infinity to null."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, np.generic):
        return plain_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def emit_json(document: Any) -> None:
    """Print one strict JSON document on stdout."""
    click.echo(json.dumps(plain_json(document), indent=2, allow_nan=False))


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout instead of a table.")
