"""The batched session environment over the known-answer toy world."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from simulator.envs import (
    SESSION_ID,
    BatchSessionEnv,
    EnvError,
    InvalidSlateError,
    ResetNeededError,
    SessionEnv,
    ToyWorld,
    top_k,
)

N = 64


def best_actions(env: BatchSessionEnv) -> np.ndarray:
    world = env.world
    assert isinstance(world, ToyWorld)
    slates, _ = world.best_slate(env._state)
    return slates


def test_spaces_and_shapes() -> None:
    env = BatchSessionEnv(N, ToyWorld())
    obs, info = env.reset(seed=0)
    assert obs.shape == (N, 6) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert env.single_action_space.shape == (3,)
    assert info["action_mask"].shape == (N, 8)
    actions = env.action_space.sample()
    assert actions.shape == (N, 3)
    obs, reward, terminated, truncated, info = env.step(top_k(np.zeros((N, 8)), 3, info["action_mask"]))
    assert obs.shape == (N, 6) and reward.shape == terminated.shape == truncated.shape == (N,)
    for key in ("click", "purchase", "revenue", "cross_sell", "up_sell", "best_slate"):
        assert info[key].shape == (N, 3), key
    for key in ("expected_reward", "best_reward", "regret", "checkout", "abandon", "step"):
        assert info[key].shape == (N,), key


def test_same_seed_same_rollout() -> None:
    def run(seed: int) -> list[np.ndarray]:
        env = BatchSessionEnv(N, ToyWorld())
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = [obs]
        for _ in range(20):
            actions = top_k(rng.random((N, 8)), 3, info["action_mask"])
            obs, reward, terminated, truncated, info = env.step(actions)
            out += [obs, reward, terminated, truncated, info["click"]]
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_same_step_autoreset_and_final_obs() -> None:
    env = BatchSessionEnv(N, ToyWorld(max_steps=3, buy_prob=0.0, abandon_prob=0.0))
    env.reset(seed=0)
    actions = np.tile(np.array([5, 6, 7]), (N, 1))
    for step in range(1, 4):
        obs, _, terminated, truncated, info = env.step(actions)
        assert not terminated.any()
        assert truncated.all() == (step == 3)
        assert (info["step"] == step).all()
    assert info["_final_obs"].all()
    np.testing.assert_allclose(info["final_obs"][:, -2], 1.0)  # step fraction 3/3 at the end
    np.testing.assert_allclose(obs[:, -2], 0.0)  # already new sessions
    _, _, _, _, info = env.step(actions)
    assert (info["step"] == 1).all() and "final_obs" not in info


def test_batch_mean_reward_matches_single_env_and_truth() -> None:
    """Playing the best slate: both environments' mean reward is the closed-form best value."""
    truth = 0.85 + 0.65 / 2 + 0.45 / 3
    env = BatchSessionEnv(2000, ToyWorld(abandon_prob=1.0))
    env.reset(seed=0)
    rewards = [env.step(best_actions(env))[1] for _ in range(3)]
    batch_mean = float(np.mean(rewards))
    single = SessionEnv(ToyWorld(abandon_prob=1.0))
    total = 0.0
    obs, _ = single.reset(seed=0)
    for _ in range(2000):
        shopper = int(np.argmax(obs[:4]))
        _, reward, _, _, _ = single.step((shopper + np.arange(3)) % 8)
        total += float(reward)
        obs, _ = single.reset()
    # per-slate click sd < 1: four standard errors
    assert abs(batch_mean - truth) < 4 / np.sqrt(6000)
    assert abs(total / 2000 - truth) < 4 / np.sqrt(2000)


def test_reset_mask_resets_only_those_sessions() -> None:
    env = BatchSessionEnv(4, ToyWorld(buy_prob=0.0, abandon_prob=0.0))
    env.reset(seed=0)
    env.step(np.tile(np.array([0, 1, 2]), (4, 1)))
    obs, info = env.reset(options={"reset_mask": np.array([True, False, True, False])})
    assert info["step"].tolist() == [0, 1, 0, 1]
    assert obs[:, -2].tolist() == pytest.approx([0.0, 0.1, 0.0, 0.1])


def test_make_vec_and_vector_wrappers() -> None:
    envs = gym.make_vec(SESSION_ID, num_envs=16, world=ToyWorld())
    assert isinstance(envs, BatchSessionEnv) and envs.num_envs == 16
    envs = RecordEpisodeStatistics(envs)
    _, info = envs.reset(seed=0)
    done = 0
    for _ in range(30):
        _, _, terminated, truncated, info = envs.step(top_k(np.zeros((16, 8)), 3, info["action_mask"]))
        done += int((terminated | truncated).sum())
    assert done > 0
    # the sync vectoriser over single environments also works
    sync = gym.make_vec(SESSION_ID, num_envs=3, vectorization_mode="sync", world=ToyWorld())
    obs, _ = sync.reset(seed=0)
    assert obs.shape == (3, 6)


def test_step_before_reset() -> None:
    with pytest.raises(ResetNeededError, match=r"Call reset\(\) before step\(\)"):
        BatchSessionEnv(2, ToyWorld()).step(np.array([[0, 1, 2], [0, 1, 2]]))


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        pytest.param(np.array([0, 1, 2]), r"shape \(2, 3\).*found shape \(3,\)", id="1d"),
        pytest.param(np.array([[0, 1, 2]]), r"shape \(2, 3\).*found shape \(1, 3\)", id="rows"),
        pytest.param(np.array([[0, 1, 2], [0, 1, 9]]), r"\[0, 7\].*at row 1", id="range"),
        pytest.param(np.array([[0, 1, 2], [3, 3, 1]]), r"distinct.*at row 1", id="dup"),
    ],
)
def test_bad_actions(actions: Any, message: str) -> None:
    env = BatchSessionEnv(2, ToyWorld())
    env.reset(seed=0)
    with pytest.raises(InvalidSlateError, match=message):
        env.step(actions)


def test_ineligible_action_in_batch() -> None:
    env = BatchSessionEnv(8, ToyWorld(buy_prob=1.0, checkout_prob=0.0, abandon_prob=0.0, max_steps=50))
    _, info = env.reset(seed=0)
    actions = np.tile(np.array([0, 1, 2]), (8, 1))
    while info["action_mask"][:, :3].all():
        _, _, _, _, info = env.step(top_k(np.zeros((8, 8)), 3, info["action_mask"]))
    with pytest.raises(InvalidSlateError, match="ineligible items"):
        env.step(actions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"num_envs": 0}, "`num_envs` must be a positive integer", id="zero"),
        pytest.param({"num_envs": 2, "world": 3}, "`world` must be", id="world"),
    ],
)
def test_bad_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        BatchSessionEnv(**kwargs)


def test_bad_reset_mask() -> None:
    env = BatchSessionEnv(2, ToyWorld())
    env.reset(seed=0)
    with pytest.raises(EnvError, match=r"reset_mask.*shape \(2,\)"):
        env.reset(options={"reset_mask": np.array([1, 0])})
