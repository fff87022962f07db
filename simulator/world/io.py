"""Save and load a world as one JSON document (settings plus arrays as lists; no pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from simulator.errors import WorldError
from simulator.world.config import WorldConfig
from simulator.world.core import World
from simulator.world.params import WorldParams

WORLD_FORMAT_VERSION = 1


def world_to_json(world: World) -> dict[str, Any]:
    """The world as plain JSON: format version, seed, config and every array."""
    return {"format": "slatewise-world", "format_version": WORLD_FORMAT_VERSION, "seed": world.seed,
            "config": world.config.to_json(), "params": world.params.to_json()}


def world_from_json(data: dict[str, Any], source: str = "world") -> World:
    """Inverse of :func:`world_to_json`."""
    if not isinstance(data, dict) or data.get("format") != "slatewise-world":
        raise WorldError(f"{source} is not a saved slatewise world (no \"format\": \"slatewise-world\").")
    if data.get("format_version") != WORLD_FORMAT_VERSION:
        raise WorldError(f"{source} has world format version {data.get('format_version')}; this "
                         f"slatewise reads version {WORLD_FORMAT_VERSION}.")
    config = WorldConfig.from_dict(data["config"], source=source)
    return World(config, data.get("seed"), params=WorldParams.from_json(data["params"]))


def save_world(world: World, path: str | os.PathLike[str]) -> Path:
    """Write ``world`` to ``path`` as JSON, atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(world_to_json(world), fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_world(path: str | os.PathLike[str]) -> World:
    """Read a world written by :func:`save_world`."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise WorldError(f"world file {p} does not exist.") from None
    except json.JSONDecodeError as err:
        raise WorldError(f"world file {p} is not JSON: {err}") from None
    return world_from_json(data, source=str(p))
