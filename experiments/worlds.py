"""The world an experiment runs in, from its ``[data]`` table."""

from __future__ import annotations

from experiments.config import DataSpec
from simulator.world import World, WorldConfig


def build_world(data: DataSpec) -> World:
    """The world of ``data`` (default, from a world TOML, or calibrated), with the configured reward.

    Raises:
        ValueError: ``data.source = "log"``, which has no world to simulate in.
    """
    if data.source == "world":
        config = WorldConfig.from_toml(data.world_config) if data.world_config else WorldConfig()
        world = World(config, data.world_seed)
    elif data.source == "calibrated":
        from simulator.world.calibrate import load_world

        assert data.path is not None  # checked by the config
        world = load_world(data.path)
    else:
        raise ValueError(f"`data.source` = {data.source!r} has no world to simulate in; "
                         "simulate needs a world or a calibrated world.")
    return world.with_config(reward_type=data.reward) if world.reward_type != data.reward else world
