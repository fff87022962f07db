"""Small worlds shared by the world tests."""

from __future__ import annotations

import pytest

from simulator.world import World, WorldConfig


@pytest.fixture(scope="module")
def tiny_world() -> World:
    """8 items in 4 categories, k = 3, no taste features (first states enumerable), click reward."""
    return World(WorldConfig(n_categories=4, items_per_category=2, k=3, n_segments=2, n_taste=0,
                             n_complements=1, max_steps=4, reward_type="click"), seed=3)


@pytest.fixture(scope="module")
def default_world() -> World:
    return World.default(seed=0)
