"""ppo_agent: the experiment runner's way to a trained PPO policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bandits import PolicyError
from bandits.ppo import PPOSlatePolicy
from experiments.ppo.agent import ppo_agent
from simulator.envs import ToyWorld

WORLD = ToyWorld(n_items=6, k=2, n_types=3, max_steps=4)


def trained_like(tmp_path: Path) -> tuple[PPOSlatePolicy, Path, Path]:
    """A policy with non-trivial weights, saved in both formats."""
    policy = PPOSlatePolicy(6, 2, WORLD.dim_context, net_arch=(8,), seed=3)
    state = policy.network_state()
    state["action_net.bias"] = state["action_net.bias"] + torch.arange(6.0, dtype=torch.float64)
    policy.load_network_state(state)
    return policy, policy.save_sb3(tmp_path / "model.zip"), policy.save(tmp_path / "policy.npz")


@pytest.mark.parametrize("fmt", ["zip", "npz"])
def test_loads_the_weights_and_applies_overrides(tmp_path: Path, fmt: str) -> None:
    policy, zip_path, npz_path = trained_like(tmp_path)
    path = zip_path if fmt == "zip" else npz_path
    agent = ppo_agent(WORLD, {"model": str(path), "temperature": 0.5}, seed=7)
    ctx = np.random.default_rng(0).standard_normal((5, WORLD.dim_context))
    np.testing.assert_allclose(agent.scores(ctx), policy.scores(ctx) / 0.5)
    same = PPOSlatePolicy(**(policy.get_params() | {"temperature": 0.5, "seed": 7}))
    same.load_network_state(policy.network_state())
    np.testing.assert_array_equal(agent.select(ctx).slate, same.select(ctx).slate)


BAD = [
    pytest.param({}, "needs `model`", id="no-model"),
    pytest.param({"model": "nowhere.zip"}, "does not exist", id="missing-file"),
    pytest.param({"model": "MODEL", "colour": 1}, r"unknown `ppo` parameters \['colour'\]", id="unknown"),
]


@pytest.mark.parametrize(("params", "message"), BAD)
def test_bad_specs_are_clear_errors(tmp_path: Path, params: dict[str, object], message: str) -> None:
    _, zip_path, _ = trained_like(tmp_path)
    params = {key: (str(zip_path) if value == "MODEL" else value) for key, value in params.items()}
    with pytest.raises(PolicyError, match=message):
        ppo_agent(WORLD, params, seed=0)


def test_a_model_of_another_world_is_refused(tmp_path: Path) -> None:
    _, zip_path, _ = trained_like(tmp_path)
    with pytest.raises(PolicyError, match=r"trained for n_items, k, dim_context = \(6, 2, "):
        ppo_agent(ToyWorld(n_items=7, k=2, n_types=3), {"model": str(zip_path)}, seed=0)
