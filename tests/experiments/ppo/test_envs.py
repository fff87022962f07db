"""PPO's worlds: item features and the anchor relation point at the right columns; saved worlds load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.ppo.config import parse_train_config
from experiments.ppo.envs import anchor_relation, item_features, make_world
from simulator.envs import ToyWorld
from simulator.logs import import_obd
from simulator.world import World, calibrate, save_world


def test_anchor_relation_pairs_the_anchor_columns_with_the_item_features() -> None:
    world = World.default(seed=0)
    relation = anchor_relation(world)
    assert relation is not None
    phi = item_features(world)
    rng = np.random.default_rng(0)
    state = world.new_sessions(50, rng)
    context = world.context(state)
    # The anchor's own row of item features must match its context columns exactly:
    # the same category one-hot and the same standardised log price.
    anchor_phi = phi[state.anchor]
    np.testing.assert_array_equal(context[:, relation["group_context"]], anchor_phi[:, relation["group_items"]])
    np.testing.assert_allclose(context[:, relation["value_context"]], anchor_phi[:, relation["value_item"]],
                               rtol=1e-12)
    assert anchor_relation(ToyWorld(n_items=6, k=2)) is None


@pytest.fixture(scope="module")
def calibrated_world(obd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = import_obd(obd_dir, policy="random", campaign="men")
    path = tmp_path_factory.mktemp("calibrated") / "world_men.json"
    save_world(calibrate(log, n_simulated=3_000, seed=0).world, path)
    return path


def test_a_calibrated_world_loads_with_its_relation(calibrated_world: Path) -> None:
    config = parse_train_config({"world": {"kind": "calibrated", "path": str(calibrated_world), "reward": "click"}})
    world = make_world(config.world)
    assert isinstance(world, World) and world.n_items == 34
    relation = anchor_relation(world)
    assert relation is not None and len(relation["group_context"]) == len(np.unique(world.catalog.category))
